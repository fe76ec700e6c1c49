"""Per-service before/after tests: which metrics and which services' error logs moved, how much, and when.

The metric test is BARO's (RCAEval): every series is scaled by its baseline median and a robust scale (the
inter-quartile range, floored by the 1%-99% range and by a noise floor relative to the median), so a shift is "how
many robust standard deviations away from normal"; the onset is the first point of a sustained run (three points in
a row) beyond the threshold. `metric_shift_sql` is the one query for it: the root-cause ranking, the known-onset
window and impact (with its own noise floor) all read their metric shifts from it. The log test does the same for
each service's WARN/ERROR lines: the window's count against the baseline's by the exact test of two Poisson rates
(`surge_z`), per minute and per ordinary line of the service (its traffic: more requests write more warnings too),
a surge when both pass the same bar as a metric's shift, and an onset by CUSUM on the lines per minute.
Both run as one aggregate query each; numpy does the rest.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from typing import Any, Literal

import numpy as np
import pyarrow as pa
from pydantic import BaseModel

from incidentlens.analysis.evidence import Evidence
from incidentlens.analysis.periods import (
    PROBLEM_LEVELS,
    Span,
    UtcTime,
    in_span,
    iso_seconds,
    minute_from_sql,
    minutes_within,
    span_minutes,
    sql_in,
    sql_str,
)
from incidentlens.analysis.plausibility import PastWindow, check_percentiles
from incidentlens.telemetry import arrays, sql_ts

#: robust z beyond which a point counts as shifted
SHIFT_THRESHOLD = 3.0
#: how far before the detected window an onset may lie (detected edges can be a little late)
ONSET_MARGIN = timedelta(minutes=15)
#: the least noise a series is credited with, as a fraction of its baseline median: a series flat at one value is
#: not "many sigmas" away after a change of a few percent
NOISE_FLOOR = 0.02


class MetricShift(BaseModel):
    """One series' robust before/after shift, in robust standard deviations of its baseline (`metric_shift_sql`):
    `shift` of the window's median point, `peak_shift` of its most extreme point in `direction`."""

    service: str
    metric: str
    direction: Literal["up", "down"]
    baseline: float
    window_median: float
    peak: float
    peak_at: UtcTime | None
    shift: float
    peak_shift: float
    onset: UtcTime | None
    evidence: str
    #: a latency percentile whose peak the traced calls do not bear out: what they show (`its 40 traced calls took at
    #: most 4.31 ms`, `plausibility.TraceCheck.words`); None when they do, or could not say
    not_borne_out: str | None = None
    #: a latency percentile the traces could not check, where the data holds traces: why (`no traced call covers it`,
    #: `plausibility.TraceCheck.unchecked`); None when they checked it, or the data holds no traces
    unchecked: str | None = None
    #: a latency percentile the impact left out for a peak longer than any request in the window could take
    #: (`plausibility.past_the_window`): that longest, in seconds; None otherwise. Words only: the ranking reads the
    #: traces' verdict (`not_borne_out`, `unchecked`), not this
    past_window: float | None = None
    #: the pod whose series this is, where the metrics name pods: of a service's several pods, the one that moved most
    pod: str | None = None
    #: how many of the service's pods have this metric in the window (one series each)
    pods: int = 1

    @property
    def series(self) -> str:
        return f"{self.service}/{self.metric}"

    @property
    def on_pod(self) -> str:
        """` on pod X` where the service has several pods (which one moved), else nothing: one pod is the service."""
        return f" on pod {self.pod}" if self.pod and self.pods > 1 else ""

    @property
    def significant(self) -> bool:
        """A sustained shift: a run beyond the threshold, and either a large typical or a very large peak shift."""
        strong = abs(self.shift) >= SHIFT_THRESHOLD or abs(self.peak_shift) >= 2 * SHIFT_THRESHOLD
        return self.onset is not None and strong


class LogSurge(BaseModel):
    """One service's WARN/ERROR log rate in the window against its baseline."""

    service: str
    baseline_per_minute: float
    window_per_minute: float
    window_problems: int
    ratio: float
    z: float = 0.0  # how far the window's problem lines are past the baseline's rate, per minute and per ordinary
    # line (`surge_z`, `_beyond_its_traffic`): the smaller
    onset: datetime | None
    first_problem: datetime | None
    evidence: str
    #: a burst that ended in the window (`burst_ends`): the end of its last minute past the bar, the lines since
    #: back at their usual rate; None when the surge lasts to the window's end (or the logs cannot tell)
    ended: datetime | None = None
    #: ... and how long the logs show them back at their usual rate, to the window's end or the logs' last minute
    quiet_minutes: float = 0.0

    @property
    def significant(self) -> bool:
        """A sustained rise past chance: an onset, at least `MIN_SURGE_LINES` lines, and a z (`surge_z`) past the bar a
        metric's shift has to pass (`SHIFT_THRESHOLD`)."""
        return self.onset is not None and self.z >= SHIFT_THRESHOLD and self.window_problems >= MIN_SURGE_LINES


#: the largest z a shift or a surge counts for in the ranking: past it, all are certain alike
Z_CAP = 30.0
#: the fewest WARN/ERROR lines in the window that make a surge
MIN_SURGE_LINES = 5
#: a series' scale is at least its baseline's `RANGE_TAIL`..1-`RANGE_TAIL` quantile range over this many sigmas (the
#: width of that range for normal noise): a series flat at one value with rare spikes (quantised latency buckets) is
#: not shifted by one more spike. (A 5% tail moved only one OnlineBoutique fault and no TrainTicket one: not kept.)
RANGE_TAIL = 0.01
RANGE_SIGMAS = 4.65
#: the fewest of the log test's minutes a surge's lines must be back at their usual rate, to the window's end, for
#: it to be a burst that ended (and never fewer than the burst lasted): one quiet minute is as likely a lull
QUIET_MINUTES = 2


def onset_search_start(window: Span, baseline: Span) -> datetime:
    """Onsets are searched from `ONSET_MARGIN` before the window (detected edges can be late), never inside the
    baseline: with a known onset the baseline ends where the window starts, and what began before is not news."""
    return max(window[0] - ONSET_MARGIN, min(baseline[1], window[0]))


def robust_scale_rule(noise_floor: float = NOISE_FLOOR) -> str:
    """The scale `metric_shift_sql` divides by, in words (for evidence)."""
    return (f"max(baseline IQR / 1.349, baseline {RANGE_TAIL:.0%}-{1 - RANGE_TAIL:.0%} range / {RANGE_SIGMAS:g}, "
            f"{noise_floor:.0%} of |baseline median|)")


def metric_shift_sql(window: Span, baseline: Span, service: str | None = None, *, metrics: list[str] | None = None,
                     noise_floor: float = NOISE_FLOOR, source: str = "metrics", held_from: datetime | None = None
                     ) -> str:
    """The BARO-style before/after query over the metrics view, for every series (or one service's, or the named
    metrics'): per series the baseline median, the window's median, extreme (z, value, time) each way, and onsets.
    z = (value - baseline median) / `robust_scale_rule(noise_floor)`; `window_points` is how many values the window
    has; from `held_from` (the window's start unless given: `impact` gives the first time a sample measures mostly
    the window), `held_min` is the least value, `held_points` how many there are, and `least_z_iqr` the least z on a
    scale without the quantile range (which an earlier fault in the baseline widens); `second_z` is the window's second
    highest z and `second_value` its value (NULL with one value): a level two values reached; `last_value` its last
    value (the peak's time is the first of tied ones: a peak reached again in the last sample is there too).
    `source`: the metrics view, or a query of the same columns standing in for it (`impact`'s success rates read as
    failed shares).

    A series is one pod's where the metrics name pods: each pod is scored against its own baseline, and the row of a
    service's metric is its most changed pod's (the largest |median z| in the window; `pod` names it, `pods` counts
    the pods with a point there). Two replicas' samples read as one series would interleave, and one bad replica
    would be diluted by its healthy twin; a change of the whole service moves every pod, so it still shows. A pod
    with no baseline sample (started since) is scored against its service's baseline, all its pods' together."""
    only = f" AND service = {sql_str(service)}" if service else ""
    only += f" AND metric IN {sql_in(metrics)}" if metrics else ""
    t = SHIFT_THRESHOLD
    w0 = sql_ts(window[0])
    # the points: from where onsets are searched to the window's end, the sample at its end too
    searched = in_span('ts', (onset_search_start(window, baseline), window[1]), end_included=True)
    h0 = sql_ts(held_from or window[0])
    return f"""WITH base AS (
    SELECT service, pod, metric, grouping(pod) AS pooled, median(value) AS base_median,
           quantile_cont(value, 0.75) - quantile_cont(value, 0.25) AS base_iqr,
           quantile_cont(value, {1 - RANGE_TAIL}) - quantile_cont(value, {RANGE_TAIL}) AS base_range,
           count(*) AS base_points
    FROM {source}
    WHERE {in_span('ts', baseline)} AND isfinite(value){only}
    GROUP BY GROUPING SETS ((service, pod, metric), (service, metric))
), points AS (
    SELECT service, pod, metric, ts, avg(value) AS value
    FROM {source}
    WHERE {searched} AND isfinite(value){only}
    GROUP BY service, pod, metric, ts
), based AS (
    -- a pod with no baseline of its own (a replica started since: a rollout, a reschedule) is held against its
    -- service's, all its pods' baseline samples together
    SELECT p.*, coalesce(own.base_median, pooled.base_median) AS base_median,
           coalesce(own.base_iqr, pooled.base_iqr) AS base_iqr,
           coalesce(own.base_range, pooled.base_range) AS base_range
    FROM points p
    LEFT JOIN base own ON own.pooled = 0 AND p.service = own.service AND p.pod IS NOT DISTINCT FROM own.pod
                          AND p.metric = own.metric
    LEFT JOIN base pooled ON pooled.pooled = 1 AND p.service = pooled.service AND p.metric = pooled.metric
), scored AS (
    SELECT service, pod, metric, ts, value, base_median,
           (value - base_median) / greatest(base_iqr / 1.349, base_range / {RANGE_SIGMAS},
                                            abs(base_median) * {noise_floor:g}, 1e-6) AS z,
           (value - base_median) / greatest(base_iqr / 1.349, abs(base_median) * {noise_floor:g}, 1e-6) AS z_iqr
    FROM based WHERE base_median IS NOT NULL
), flagged AS (
    SELECT *, {{'service': service, 'pod': pod, 'metric': metric}} AS series,
           CASE WHEN z > {t} THEN 1 ELSE 0 END AS up, CASE WHEN z < -{t} THEN 1 ELSE 0 END AS down
    FROM scored
), runs AS (
    -- a run: the point and the next two of its series (as many as it has) all past the bar. Over all series in one
    -- order, not partitioned by series: DuckDB's partitioned window cost ~0.15 s for 2,500 points in 900 series
    SELECT * EXCLUDE (series, up, down),
           up = 1 AND (lead(series, 1) OVER o IS DISTINCT FROM series OR lead(up, 1) OVER o = 1)
                  AND (lead(series, 2) OVER o IS DISTINCT FROM series OR lead(up, 2) OVER o = 1) AS up_run,
           down = 1 AND (lead(series, 1) OVER o IS DISTINCT FROM series OR lead(down, 1) OVER o = 1)
                    AND (lead(series, 2) OVER o IS DISTINCT FROM series OR lead(down, 2) OVER o = 1) AS down_run
    FROM flagged
    WINDOW o AS (ORDER BY service, pod, metric, ts)
), per_pod AS (
SELECT service, pod, metric, any_value(base_median) AS baseline,
       median(value) FILTER (WHERE ts >= {w0}) AS window_median,
       median(z) FILTER (WHERE ts >= {w0}) AS median_z, min(z_iqr) FILTER (WHERE ts >= {h0}) AS least_z_iqr,
       count(*) FILTER (WHERE ts >= {w0}) AS window_points,
       min(value) FILTER (WHERE ts >= {h0}) AS held_min, count(*) FILTER (WHERE ts >= {h0}) AS held_points,
       max(z) FILTER (WHERE ts >= {w0}) AS max_z, min(z) FILTER (WHERE ts >= {w0}) AS min_z,
       (max(z, 2) FILTER (WHERE ts >= {w0}))[2] AS second_z,
       (max(value, 2) FILTER (WHERE ts >= {w0}))[2] AS second_value,
       arg_max(value, ts) FILTER (WHERE ts >= {w0}) AS last_value,
       -- a peak reached more than once is its first time: which of the tied points the threads keep varies
       arg_max(value, z) FILTER (WHERE ts >= {w0}) AS up_peak,
       arg_max(ts, [z, -epoch(ts)]) FILTER (WHERE ts >= {w0} AND z IS NOT NULL) AS up_peak_at,
       arg_min(value, z) FILTER (WHERE ts >= {w0}) AS down_peak,
       arg_min(ts, [z, epoch(ts)]) FILTER (WHERE ts >= {w0} AND z IS NOT NULL) AS down_peak_at,
       min(ts) FILTER (WHERE up_run) AS up_onset, min(ts) FILTER (WHERE down_run) AS down_onset
FROM runs
GROUP BY service, pod, metric
)
SELECT * EXCLUDE (pod_rank) FROM (
    SELECT *, count(median_z) OVER per_series AS pods,
           row_number() OVER (per_series ORDER BY abs(median_z) DESC NULLS LAST, pod) AS pod_rank
    FROM per_pod
    WINDOW per_series AS (PARTITION BY service, metric)
)
WHERE pod_rank = 1
ORDER BY service, metric"""


def metric_shifts(store: Any, window: Span, baseline: Span) -> tuple[list[MetricShift], list[Evidence]]:
    """Every metric series' before/after shift, strongest first, with one `metric_shift` evidence per service."""
    if not store.has("metrics"):
        return [], []
    rows = store.fetch(metric_shift_sql(window, baseline)).to_pylist()
    shifts = [_shift_from_row(row) for row in rows if row["median_z"] is not None]
    evidence = _check_against_traces(store, window, shifts)
    by_service: dict[str, list[MetricShift]] = {}
    for shift in shifts:
        by_service.setdefault(shift.service, []).append(shift)
    for service, service_shifts in by_service.items():
        moved = sorted((s for s in service_shifts if s.significant), key=lambda s: -abs(s.shift))
        if not moved:
            continue
        item = Evidence.make(
            "metric_shift", shift_title(service, moved), metric_shift_sql(window, baseline, service),
            {"service": service, "series": [_shift_data(s) for s in moved[:20]], "cut": max(0, len(moved) - 20)},
        )
        evidence.append(item)
        for s in service_shifts:
            s.evidence = item.id
    shifts.sort(key=lambda s: -abs(s.shift))
    return shifts, evidence


def shift_title(service: str, moved: list[MetricShift]) -> str:
    """`api: p99_ms up 12.3σ, cpu up 8.1σ at its peak (0.4σ typical)`: each series' shift (its window median's), or,
    where only its peak moved that far (`MetricShift.significant`), the peak's with the median's beside it: a series
    listed as moved "up 0.0σ" reads as one that did not move."""
    def sigmas(s: MetricShift) -> str:
        if abs(s.shift) >= SHIFT_THRESHOLD:
            return f"{abs(s.shift):,.1f}σ"
        return f"{abs(s.peak_shift):,.1f}σ at its peak ({abs(s.shift):,.1f}σ typical)"

    return f"{service}: {', '.join(f'{s.metric} {s.direction} {sigmas(s)}{s.on_pod}' for s in moved[:4])}"


def _check_against_traces(store: Any, window: Span, shifts: list[MetricShift]) -> list[Evidence]:
    """Mark the latency percentiles that rose to a peak the traced calls do not bear out, and those with too few
    traced calls to check (`plausibility.check_percentiles`); the check's evidence."""
    rose = [s for s in shifts if s.significant and s.direction == "up"]
    checks, evidence = check_percentiles(store, window, [(s.service, s.metric, s.peak) for s in rose])
    unsupported = {c.series: c.words() for c in checks if c.borne_out is False}
    unchecked = {c.series: c.unchecked() for c in checks}
    for shift in rose:
        shift.not_borne_out = unsupported.get(shift.series)
        shift.unchecked = unchecked.get(shift.series)
    return evidence


def mark_past_window(shifts: list[MetricShift], past: list[PastWindow]) -> None:
    """Mark the shifts of the latency percentiles the impact left out as longer than the window (`past`), so the
    words that quote a service's change say so: TrainTicket 08:58's hypothesis and onset gave ts-consign-price-service
    as "changed (PodClientLatencyP99(s) from 0.00496 to 3,456 ...)", a p99 the impact set aside as longer than any
    request in its 236 s window could take."""
    longest = {(p.service, p.metric): p.longest_s for p in past}
    for shift in shifts:
        shift.past_window = longest.get((shift.service, shift.metric))


def _shift_from_row(row: dict[str, Any]) -> MetricShift:
    median_z = float(row["median_z"])
    up = median_z > 0 if abs(median_z) >= 1 else (row["max_z"] or 0) >= -(row["min_z"] or 0)
    peak_shift = float(row["max_z"] if up else row["min_z"])
    return MetricShift(
        service=row["service"],
        metric=row["metric"],
        direction="up" if up else "down",
        baseline=float(row["baseline"]),
        window_median=float(row["window_median"]),
        peak=float(row["up_peak"] if up else row["down_peak"]),
        peak_at=row["up_peak_at"] if up else row["down_peak_at"],
        shift=round(median_z, 3),
        peak_shift=round(peak_shift, 3),
        onset=row["up_onset"] if up else row["down_onset"],
        evidence="",
        pod=row.get("pod"),
        pods=max(1, row.get("pods") or 1),
    )


def _shift_data(shift: MetricShift) -> dict[str, Any]:
    return {
        "metric": shift.metric,
        "direction": shift.direction,
        "baseline": round(shift.baseline, 4),
        "window_median": round(shift.window_median, 4),
        "peak": round(shift.peak, 4),
        "shift": round(shift.shift, 2),
        **({"not_borne_out": shift.not_borne_out} if shift.not_borne_out else {}),
        **({"unchecked": shift.unchecked} if shift.unchecked else {}),
        "peak_shift": round(shift.peak_shift, 2),
        "onset": iso_seconds(shift.onset),
        **({"pod": shift.pod, "pods": shift.pods} if shift.on_pod else {}),
    }


def log_surge_sql(window: Span, baseline: Span, services: list[str] | None = None) -> str:
    """Per service and minute: all lines, WARN/ERROR/FATAL lines, the first problem line's time and the first line's.
    `minute` counts whole minutes from the window's start (negative before it), so no minute holds lines from both
    sides of it (a calendar minute that straddles an onset at 10:45:10 would put the incident's first lines into the
    baseline); plain arithmetic on epoch seconds, which reads the same pushed down to ClickHouse."""
    only = ""
    if services:
        only = " AND service IN " + sql_in(sorted(services))
    minute = minute_from_sql("ts", window[0])
    return f"""SELECT service, {minute} AS minute, count(*) AS lines,
       count(*) FILTER (WHERE level IN {sql_in(PROBLEM_LEVELS)}) AS problems,
       min(ts) FILTER (WHERE level IN {sql_in(PROBLEM_LEVELS)}) AS first_problem, min(ts) AS first_line
FROM logs
WHERE {in_span('ts', (baseline[0], window[1]))} AND service IS NOT NULL{only}
GROUP BY service, {minute}"""


#: CUSUM on each service's problems per minute, standardised by its baseline Poisson rate: the allowance per
#: minute (in sigmas) and the decision threshold; the onset is the start of the excess that crossed it
CUSUM_ALLOWANCE = 1.0
CUSUM_THRESHOLD = 5.0
ONSET_RULE = (
    f"per service, problems per minute x standardised by the baseline rate r: (x - r) / sqrt(max(r, 1)); CUSUM with "
    f"allowance {CUSUM_ALLOWANCE:g} and threshold {CUSUM_THRESHOLD:g} from {ONSET_MARGIN.seconds // 60} min before "
    "the window (never inside the baseline); onset = the first problem line of the minute the crossing excess began"
)


def fetch_log_counts(store: Any, window: Span, baseline: Span) -> pa.Table | None:
    """The per-service, per-minute counts of `log_surge_sql` (one scan; the surges and the tests both use it)."""
    return store.fetch(log_surge_sql(window, baseline)) if store.has("logs") else None


def log_surges(store: Any, window: Span, baseline: Span,
               counts: pa.Table | None = None) -> tuple[list[LogSurge], list[Evidence]]:
    """Each service's WARN/ERROR surge in the window: rate ratio and z (`surge_z`) against the baseline, and onset
    (by CUSUM).
    `counts`: the result of `fetch_log_counts`, if already fetched."""
    if counts is None:
        counts = fetch_log_counts(store, window, baseline)
    if counts is None:
        return [], []
    surges = surges_from_counts(counts, window, baseline)
    moved = [s for s in surges if s.significant]
    if not moved:
        return surges, []
    item = Evidence.make(
        "metric_shift",
        "WARN/ERROR log surge by service: " + ", ".join(f"{s.service} x{s.ratio:.0f}" for s in moved[:5]),
        log_surge_sql(window, baseline),
        {"rule": ONSET_RULE, "services": [_surge_data(s) for s in moved[:20]], "cut": max(0, len(moved) - 20)},
    )
    for surge in surges:
        surge.evidence = item.id
    return surges, [item]


def surges_from_counts(table: pa.Table, window: Span, baseline: Span) -> list[LogSurge]:
    """Surges (strongest first) from the per-service, per-minute counts of `log_surge_sql`."""
    if table.num_rows == 0:
        return []
    grid = _MinuteGrid.build(table, baseline[0], window[1], origin=window[0])
    # the baseline's lines are counted by whole minute column (counted from the window's start), so its time is too:
    # to the end of its last column (a detected window's baseline ends off the grid), never into the window
    columns = grid.minutes[grid.minutes < np.datetime64(baseline[1], "us")]
    base_end = min(window[0], (columns[-1] + MINUTE).astype(datetime)) if len(columns) else baseline[1]
    base_minutes = grid.covered_minutes((baseline[0], base_end))
    start = grid.index(window[0])
    stop = max(start + 1, grid.end_index(window[1]))  # a window under a minute is one
    window_minutes = grid.covered_minutes(window)
    onset_from = grid.index(onset_search_start(window, baseline))
    base_logged = grid.logged(baseline)
    base_problems = grid.problems[:, base_logged].sum(axis=1)  # a column with problem lines is a logged one
    base_rate = base_problems / base_minutes
    window_problems = grid.problems[:, start:stop].sum(axis=1)
    window_rate = window_problems / window_minutes
    has_onset, onset_offset = cusum_onsets(grid.problems[:, onset_from:stop], base_rate)
    onset_index = onset_from + onset_offset
    ratio = window_rate / np.maximum(base_rate, 1.0 / base_minutes)
    z = surge_z(window_problems, window_minutes, base_problems, base_minutes)
    z = np.minimum(z, _beyond_its_traffic(grid, window_problems, base_problems, slice(start, stop), base_logged))
    rows = np.arange(len(grid.services))
    first = grid.first_problem[rows, onset_index]
    ends, quiet = burst_ends(grid, window, np.maximum(onset_index, start), stop, base_problems, base_minutes)
    surges = [
        LogSurge(
            service=service,
            baseline_per_minute=round(float(base_rate[i]), 4),
            window_per_minute=round(float(window_rate[i]), 4),
            window_problems=int(window_problems[i]),
            ratio=round(float(ratio[i]), 2),
            z=round(float(z[i]), 2),
            onset=grid.minutes[onset_index[i]].astype("datetime64[us]").item() if has_onset[i] else None,
            first_problem=first[i].astype("datetime64[us]").item() if has_onset[i] and not np.isnat(first[i]) else None,
            evidence="",
            ended=ends[i].astype("datetime64[us]").item() if has_onset[i] and not np.isnat(ends[i]) else None,
            quiet_minutes=round(float(quiet[i]), 2) if has_onset[i] else 0.0,
        )
        for i, service in enumerate(grid.services)
    ]
    return sorted(surges, key=lambda s: -s.ratio)


def burst_ends(grid: _MinuteGrid, window: Span, first: np.ndarray, stop: int, base_problems: np.ndarray,
               base_minutes: float) -> tuple[np.ndarray, np.ndarray]:
    """Per service, where its surge ended within the window (NaT where it did not) and how many minutes since its
    lines have been back at their usual rate. A minute is past the bar when its own lines are (`surge_z` against the
    baseline's rate, the bar a surge passes); the burst ends with the last such minute from the service's onset
    (`first`, a column) on, when the lines after it up to the logs' last minute in the window are no surge by the
    same test, every one of those minutes held lines of some service (a minute with none is the logs' gap or end,
    not quiet), and they last `QUIET_MINUTES` and as long as the burst did: a surge that ends in the window's last
    minute, or whose pause is shorter than itself, may still be under way."""
    columns = np.arange(len(grid.minutes))
    starts = np.maximum(grid.minutes, np.datetime64(window[0], "us"))
    ends_at = np.minimum(grid.minutes + MINUTE, np.datetime64(window[1], "us"))
    length = np.clip((ends_at - starts) / MINUTE, 0.0, None)
    inside = (columns < stop) & (length > 0)
    z = surge_z(grid.problems, np.maximum(length, 1e-9), base_problems[:, None], base_minutes)
    past = (z >= SHIFT_THRESHOLD) & inside & (columns >= first[:, None])
    logged = grid.lines.sum(axis=0) > 0
    last_logged = int(columns[inside & logged].max()) if (inside & logged).any() else -1
    last_past = np.where(past.any(axis=1), columns.max() - np.argmax(past[:, ::-1], axis=1), -1)
    after = (columns[None, :] > last_past[:, None]) & (columns <= last_logged)
    quiet_minutes = (after * length).sum(axis=1)
    quiet = surge_z((grid.problems * after).sum(axis=1), np.maximum(quiet_minutes, 1e-9), base_problems,
                    base_minutes) < SHIFT_THRESHOLD
    gapless = ~(after & ~logged).any(axis=1)
    ended_at = grid.minutes[np.maximum(last_past, 0)] + MINUTE
    burst = (ended_at - grid.minutes[np.clip(first, 0, len(columns) - 1)]) / MINUTE
    ended = (last_past >= 0) & quiet & gapless & (quiet_minutes >= np.maximum(QUIET_MINUTES, burst))
    return np.where(ended, ended_at, np.datetime64("NaT")), np.where(ended, quiet_minutes, 0.0)


def _beyond_its_traffic(grid: _MinuteGrid, window_problems: np.ndarray, base_problems: np.ndarray,
                        window_columns: slice, base_columns: np.ndarray) -> np.ndarray:
    """Per service, the surge's z with its ordinary lines (all but WARN/ERROR/FATAL) as the exposure instead of the
    minutes: problem lines per ordinary line, window against baseline. A service that serves more requests writes
    more of every line, its warnings too; that is traffic, not a change in how it fails (an error rate is errors per
    request, not per minute). Where the baseline holds no ordinary line of the service there is nothing to hold its
    traffic against, and the minutes' test stands alone (inf here)."""
    ordinary = grid.lines - grid.problems
    base_ordinary = ordinary[:, base_columns].sum(axis=1)
    z = surge_z(window_problems, ordinary[:, window_columns].sum(axis=1), base_problems,
                np.maximum(base_ordinary, 1.0))
    return np.where(base_ordinary > 0, z, np.inf)


def surge_z(window: np.ndarray, window_minutes: float | np.ndarray, baseline: np.ndarray,
            baseline_minutes: float | np.ndarray) -> np.ndarray:
    """Per service, how far its window's problem lines are past its baseline's rate: the one-sided z (normal
    quantile) of the exact test of two Poisson rates. Given the lines of both sides, those in the window are binomial
    with the window's share of the minutes (or of any exposure given per service in their place: the ordinary lines,
    `_beyond_its_traffic`) if the rate did not change, so the baseline's own uncertainty counts: 20
    lines in 3 minutes after none in 1 is z 2.7, after none in 60 past the cap. On the scale of a metric's robust
    shift (sigmas past the baseline), and capped at `Z_CAP` as that is in the ranking; no lines in the window, 0."""
    from scipy.special import betainc, ndtri  # here, as `tails` imports its own

    share = window_minutes / (window_minutes + baseline_minutes)
    with np.errstate(divide="ignore", invalid="ignore"):
        # P(X >= k) for X ~ Binomial(n, share) is the regularised incomplete beta I_share(k, n - k + 1)
        p = np.where(window > 0, betainc(np.maximum(window, 1.0), baseline + 1, share), 1.0)
        z = -ndtri(np.clip(p, 0.0, 0.5))
    return np.clip(np.nan_to_num(z, nan=0.0, posinf=Z_CAP), 0.0, Z_CAP)


def cusum_onsets(counts: np.ndarray, base_rate: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per row (service) of per-minute counts: whether an upward CUSUM alarm fires, and the column where the
    excess that fired it began (the minute after the cumulative sum's last minimum before the alarm)."""
    increments = (counts - base_rate[:, None]) / np.sqrt(np.maximum(base_rate, 1.0))[:, None] - CUSUM_ALLOWANCE
    cumulative = np.concatenate([np.zeros((len(counts), 1)), np.cumsum(increments, axis=1)], axis=1)
    excess = cumulative - np.minimum.accumulate(cumulative, axis=1)
    fired = excess > CUSUM_THRESHOLD
    has_alarm = fired.any(axis=1)
    alarm = np.argmax(fired, axis=1)
    columns = np.arange(cumulative.shape[1])[None, :]
    before_alarm = np.where(columns <= alarm[:, None], cumulative, np.inf)
    # the last minimum: argmin over the reversed prefix
    last_min = cumulative.shape[1] - 1 - np.argmin(before_alarm[:, ::-1], axis=1)
    return has_alarm, np.minimum(last_min, counts.shape[1] - 1)


def _surge_data(surge: LogSurge) -> dict[str, Any]:
    return {
        "service": surge.service,
        "baseline_per_minute": surge.baseline_per_minute,
        "window_per_minute": surge.window_per_minute,
        "window_problems": surge.window_problems,
        "ratio": surge.ratio,
        "z": surge.z,
        "onset": iso_seconds(surge.onset),
        "first_problem": iso_seconds(surge.first_problem),
        **({"ended": iso_seconds(surge.ended), "quiet_minutes": surge.quiet_minutes} if surge.ended else {}),
    }


class _MinuteGrid:
    """Dense service x minute matrices from the sparse per-minute aggregate (minutes with no lines are zero)."""

    def __init__(self, services: list[str], minutes: np.ndarray, lines: np.ndarray, problems: np.ndarray,
                 first_problem: np.ndarray, first_line: np.datetime64):
        self.services = services
        self.minutes = minutes
        self.lines = lines
        self.problems = problems
        self.first_problem = first_problem
        self.first_line = first_line  # the first line of all

    @classmethod
    def build(cls, table: pa.Table, start: datetime, end: datetime, origin: datetime) -> _MinuteGrid:
        """The minutes from `start` to `end`, counted from `origin` (`log_surge_sql`'s minutes)."""
        before = _minutes_between(start, origin)
        first_minute = np.datetime64(origin, "us") - before * MINUTE
        minutes = np.arange(first_minute, np.datetime64(end, "us") + MINUTE, MINUTE)
        names = np.asarray(table["service"].to_pylist(), dtype=object)
        service_names, service_idx = np.unique(names, return_inverse=True)
        minute_idx = arrays.ints(table["minute"]) + before
        keep = (minute_idx >= 0) & (minute_idx < len(minutes))
        cells = service_idx[keep], minute_idx[keep]

        def dense(values: np.ndarray, fill: Any) -> np.ndarray:
            matrix = np.full((len(service_names), len(minutes)), fill, dtype=values.dtype)
            matrix[cells] = values[keep]
            return matrix

        first_lines = arrays.times(table["first_line"])
        return cls([str(s) for s in service_names], minutes, dense(arrays.floats(table["lines"]), 0.0),
                   dense(arrays.floats(table["problems"]), 0.0),
                   dense(arrays.times(table["first_problem"]), np.datetime64("NaT")),
                   first_lines.min() if len(first_lines) else np.datetime64("NaT"))

    def covered_minutes(self, span: Span) -> float:
        """Minutes of the span the logs cover, as `periods.logged_minutes` counts them: its minutes in which any
        service logged, each cut to the span and from the logs' first line on (logs that start late or come in
        pieces, a few files around an alert or a reference minute from hours before, must not make the baseline's
        rate look lower than it was; a file that begins 41 s into the baseline's last minute holds 19 s of it, not
        a minute); the span's length when no line was logged in it."""
        origin = np.datetime64(span[0], "us")
        start = origin if np.isnat(self.first_line) else max(origin, self.first_line)
        columns = (self.minutes[self.logged(span)] - origin) / MINUTE
        return (minutes_within(columns, (start - origin) / MINUTE, (np.datetime64(span[1], "us") - origin) / MINUTE)
                or span_minutes(span))

    def logged(self, span: Span) -> np.ndarray:
        """The columns of the span's minutes in which any service logged (all of them when none did)."""
        inside = (self.minutes > np.datetime64(span[0], "us") - MINUTE) & (self.minutes < np.datetime64(span[1], "us"))
        logged = inside & (self.lines.sum(axis=0) > 0)
        return logged if logged.any() else inside

    def index(self, t: datetime) -> int:
        return int(np.clip((np.datetime64(t, "us") - self.minutes[0]) // MINUTE, 0, len(self.minutes) - 1))

    def end_index(self, end: datetime) -> int:
        """The column after the last minute that holds time before `end` (a window's end is exclusive): a window
        from 10:00 to 10:05 holds 5 minutes, one to 10:05:30 six (its last one in part)."""
        minutes_to_end = -((self.minutes[0] - np.datetime64(end, "us")) // MINUTE)  # rounded up
        return int(np.clip(minutes_to_end, 0, len(self.minutes)))


MINUTE = np.timedelta64(60_000_000, "us")


def _minutes_between(start: datetime, origin: datetime) -> int:
    """Whole minutes from the one holding `start` to `origin` (`start` before `origin`; 0 otherwise)."""
    return max(0, math.ceil((origin - start).total_seconds() / 60))

