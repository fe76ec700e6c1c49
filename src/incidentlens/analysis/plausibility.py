"""Latency percentiles set against the traces: whether the calls they summarise bear them out.

A latency percentile (`p99_ms`, `PodServerLatencyP95(s)`, `PodClientLatencyP99(s)`) says that a share of a
service's calls took at least that long. Where the traces hold those calls, the claim can be checked: the service's
own spans (its server-side latency) and the spans of the calls it makes (another service's span whose parent is one
of its spans: its client-side latency). A histogram's percentile over a handful of samples can read as seconds while
every call took milliseconds (the top bucket's bound, or an interpolation across a wide bucket); a reviewer who sees
"p99 from 5 ms to 286 s" beside traces whose slowest call took 4 ms does not call it latency anyone waited.

Rule: a series' peak is not borne out when the traces hold at least `MIN_TRACED_CALLS` of the service's spans and
its calls, started from `LOOKBACK` before the window to its end (a percentile sampled early in the window summarises
the minutes before it), and the peak is more than `FAR_BEYOND` times the longest of them. With fewer traced calls
(or no traces) the percentile stands as measured and its check says so. Sampled traces can miss a slow few, so the
words say what the traces show ("not borne out"), not that the metric is wrong.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

from pydantic import BaseModel

from incidentlens.analysis.evidence import Evidence
from incidentlens.analysis.links import span_links
from incidentlens.analysis.periods import Span, in_span, sql_in
from incidentlens.analysis.units import in_ms, three_figures

#: a latency metric named for a percentile: `p99_ms`, `latency_p95`, `PodClientLatencyP99(s)`
PERCENTILE = re.compile(r"p(\d{2,3})(?!\d)", re.IGNORECASE)
LATENCY_NAME = re.compile(r"latency|duration|response_time|_ms$|\(m?s\)$|seconds", re.IGNORECASE)
#: a percentile more than this many times the longest traced call is not near any of them
FAR_BEYOND = 10.0
#: the traced calls a service needs in the window for its percentiles to be checked against them
MIN_TRACED_CALLS = 20
#: how far before the window the traced calls are read from
LOOKBACK = timedelta(minutes=5)


class TraceCheck(BaseModel):
    """One latency percentile's peak against the traced calls it summarises."""

    service: str
    metric: str
    peak: float  # in the metric's unit
    traced_calls: int
    longest_ms: float | None
    borne_out: bool | None  # None: too few traced calls to check it
    evidence: str

    @property
    def series(self) -> str:
        return f"{self.service}/{self.metric}"

    def words(self) -> str:
        """What the traces show of it (`traced_calls_words`)."""
        return traced_calls_words(self.traced_calls, self.longest_ms)

    def unchecked(self) -> str | None:
        """Why the traces could not check it, in words (`no traced call covers it`, `its 5 traced calls are too few
        to check it`); None when they did."""
        if self.borne_out is not None:
            return None
        if not self.traced_calls:
            return "no traced call covers it"
        return f"its {self.traced_calls:,} traced calls are too few to check it"


class PastWindow(BaseModel):
    """A latency percentile whose peak is longer than any request the window holds could take (`past_the_window`)."""

    service: str
    metric: str
    peak: float  # in the metric's unit
    longest_s: float  # the window with a metric step either side, in seconds: the longest a request in it could take


def past_the_window(peaks: list[tuple[str, str, float]], window: Span, step: timedelta | None) -> list[PastWindow]:
    """The latency percentiles among `peaks` ((service, metric, peak in the window)) longer than the window with a
    metric `step` either side (a sample holds the step before it; the window's last is read up to half a step after
    it): a request that long began before the incident did, and whatever slowed it, the incident added at most that
    span to it. TrainTicket 08:58's ts-consign-price-service was affected by a client p99 of 1,742 s (29 minutes)
    inside a window of 117 s. No traces needed: the bound is the window's."""
    longest = (window[1] - window[0] + 2 * (step or timedelta(0))).total_seconds()
    return [PastWindow(service=service, metric=metric, peak=peak, longest_s=longest)
            for service, metric, peak in peaks
            if is_latency_percentile(metric) and (in_ms(metric, peak) or 0.0) > longest * 1000.0]


def traced_calls_words(calls: int, longest_ms: float | None) -> str:
    """What the traces show of a percentile's calls: `its 40 traced calls took at most 4.31 ms`."""
    return f"its {calls:,} traced calls took at most {three_figures(longest_ms or 0.0)} ms"


def is_latency_percentile(metric: str) -> bool:
    """Whether a metric is a latency percentile in a time unit (`p95_ms`, `PodServerLatencyP99(s)`)."""
    return bool(PERCENTILE.search(metric) and LATENCY_NAME.search(metric)) and in_ms(metric, 1.0) is not None


def traced_calls_sql(span: Span, services: list[str], links: str) -> str:
    """Per service, its spans and the spans of its calls (another service's span whose parent is one of its own) that
    started in `span`: how many and the longest. `links`: the spans joined to their parents (`links.span_links`).
    Services are named in lower case, compared without case: OnlineBoutique's front-end metric file names the
    service `Frontend`, its traces `frontend` (its p50 read "no traced call covers it" beside 922 traced requests)."""
    names = sql_in(sorted({name.lower() for name in services}))
    return f"""SELECT service, count(duration_ms) AS calls, max(duration_ms) AS longest_ms FROM (
    SELECT lower(service) AS service, duration_ms FROM spans
    WHERE lower(service) IN {names} AND {in_span('start_ts', span)}
    UNION ALL
    SELECT lower(parent_service) AS service, duration_ms FROM {links}
    WHERE lower(parent_service) IN {names} AND service IS DISTINCT FROM parent_service
      AND {in_span('start_ts', span)} AND {in_span('parent_start', span)}
) AS calls
GROUP BY service"""


def check_percentiles(store: Any, window: Span, peaks: list[tuple[str, str, float]]
                      ) -> tuple[list[TraceCheck], list[Evidence]]:
    """Each latency percentile among `peaks` ((service, metric, peak in the window)) against its service's traced
    calls (see the module's rule); nothing to check without spans or such percentiles."""
    wanted = [(service, metric, peak) for service, metric, peak in peaks if is_latency_percentile(metric)]
    if not wanted or not store.has("spans"):
        return [], []
    span = (window[0] - LOOKBACK, window[1])
    sql = traced_calls_sql(span, sorted({service for service, _, _ in wanted}), span_links(store))
    traced = {str(r["service"]): (int(r["calls"]), r["longest_ms"]) for r in store.fetch(sql).to_pylist()}
    rows = []
    for service, metric, peak in wanted:
        calls, longest = traced.get(service.lower(), (0, None))
        peak_ms = in_ms(metric, peak) or 0.0
        borne = None if calls < MIN_TRACED_CALLS or longest is None else peak_ms <= FAR_BEYOND * float(longest)
        rows.append((service, metric, peak, calls, None if longest is None else float(longest), borne))
    not_borne = [f"{s}/{m}" for s, m, *_, borne in rows if borne is False]
    evidence = Evidence.make(
        "trace", f"latency percentiles against the traced calls: {len(not_borne)} of {len(rows)} not borne out",
        sql,
        {"not_borne_out": not_borne[:20], "checked": [
            {"series": f"{s}/{m}", "peak": p, "traced_calls": c, "longest_ms": lg, "borne_out": b}
            for s, m, p, c, lg, b in rows[:20]],
         "cut": max(0, len(rows) - 20),
         "rule": f"a latency percentile's peak is not borne out when the traces hold >= {MIN_TRACED_CALLS} of the "
                 "service's spans and its calls (spans of another service whose parent is one of its spans) from "
                 f"{LOOKBACK.total_seconds() / 60:g} min before the window to its end, and the peak is more than "
                 f"{FAR_BEYOND:g}x the longest of them; with fewer it is not checked"},
    )
    return [TraceCheck(service=s, metric=m, peak=p, traced_calls=c, longest_ms=lg, borne_out=b, evidence=evidence.id)
            for s, m, p, c, lg, b in rows], [evidence]
