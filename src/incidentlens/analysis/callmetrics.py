"""The wait around each call edge from aggregated call latency (`calls`: per interval, the latency its caller's
side measured and the one its callee's side measured, as a service mesh reports them), for when no spans show it.

A network delay on a service leaves its own work flat: what moves is how long its callers wait for it. Spans show
that wait call by call (`spans.wait_sql`); call metrics show it per interval: the client side's latency less the
server side's, of the same edge and minute. A delay between the services raises the client side alone; a callee
slow in its own work raises both sides together, and the difference stays. The rows have the shape of the spans'
edges, so one `spans.wait_shifts` decides over both.
"""

from __future__ import annotations

from incidentlens.analysis.periods import Span, in_span

#: per-minute waits an edge needs on each side of the onset: the median of three needs two slow minutes, so a
#: single slow minute (a burst, a pause) moves no edge; and with the window of a known onset at a few metric samples
#: (`anchored.METRIC_WINDOW_STEPS`), more would leave most windows without a measure
MIN_INTERVALS = 3
#: the minutes before are held at their p90, not their median: a minute's wait is the difference of two
#: percentiles, each read from a latency histogram whose buckets widen with the latency (0.25 s apart at 1.5 s), so
#: a busy edge's wait wanders by a bucket from minute to minute; a delay is a wait past what nine minutes in ten
#: before reached (the p90 the own-time measure cuts at, `spans.own_time_sql`)
BEFORE_QUANTILE = 0.9
#: what the edges measured so are called in the evidence and the review
SOURCE = "call metrics"


def calls_wait_sql(window: Span, baseline: Span) -> str:
    """Per call edge (caller, callee): the wait of each minute, the client side's latency less the server side's in
    the same minute (each side's median over the minute's rows); after the onset their median, before it their p90
    (`BEFORE_QUANTILE`); with the minutes on each side, the first time after, and whether the minutes before are
    enough to be its history."""
    return f"""WITH sides AS (
    SELECT caller, callee, date_trunc('minute', ts) AS minute, {in_span('ts', window)} AS after, min(ts) AS first_ts,
           median(latency_ms) FILTER (WHERE side = 'client') AS client_ms,
           median(latency_ms) FILTER (WHERE side = 'server') AS server_ms
    FROM calls
    WHERE caller <> callee AND ({in_span('ts', window)} OR {in_span('ts', baseline)})
    GROUP BY caller, callee, minute, after
), waits AS (
    SELECT caller, callee, after, first_ts, greatest(client_ms - server_ms, 0) AS wait_ms
    FROM sides WHERE client_ms IS NOT NULL AND server_ms IS NOT NULL
)
SELECT caller, callee, count(*) FILTER (WHERE NOT after) AS minutes_before,
       count(*) FILTER (WHERE after) AS minutes_after,
       quantile_cont(wait_ms, {BEFORE_QUANTILE}) FILTER (WHERE NOT after) AS wait_before,
       median(wait_ms) FILTER (WHERE after) AS wait_after,
       min(first_ts) FILTER (WHERE after) AS first_after,
       count(*) FILTER (WHERE NOT after) >= {MIN_INTERVALS} AS history,
       '{SOURCE}' AS source
FROM waits GROUP BY caller, callee HAVING count(*) FILTER (WHERE after) >= {MIN_INTERVALS}
ORDER BY callee, caller"""
