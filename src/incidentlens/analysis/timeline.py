"""The incident's timeline, from the data: each entry is a time the data gives and the evidence it came from.

Entries: the first anomalous point and the next series' onsets (from detection), deploys and config changes from
the `events` view near the window, the first line of each top log template, each service's first minute of
WARN/ERROR/FATAL lines above its baseline rate (in order, this shows how the failure propagated), the peak, and
the recovery (the window's end, when the data goes on after it).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from pydantic import BaseModel

from incidentlens.analysis.evidence import Evidence
from incidentlens.analysis.periods import (
    PROBLEM_LEVELS,
    Span,
    UtcTime,
    check_periods,
    in_span,
    iso_z,
    span_minutes,
    sql_in,
)
from incidentlens.analysis.tails import poisson_at_least
from incidentlens.analysis.templates import LogTemplate

#: deploys and config changes this long before the window count as near it
EVENT_LEAD = timedelta(hours=1)
#: series onsets listed (the first one is the first anomalous point)
MAX_ONSETS = 5
MAX_TEMPLATES = 5
MAX_EVENTS = 20
#: services whose first errors are listed (the first few show the propagation; the evidence lists up to 20)
MAX_SERVICES = 8
#: a service's minute counts as a surge when a count this unlikely under its baseline rate (one-sided Poisson,
#: Bonferroni-corrected over the minutes searched) and at least MIN_SURGE_LINES lines
SURGE_P_VALUE = 1e-3
MIN_SURGE_LINES = 3


class TimelineEntry(BaseModel):
    t: UtcTime
    event: str
    evidence: list[str]


class Timeline(BaseModel):
    entries: list[TimelineEntry] = []
    evidence: list[Evidence] = []

    def to_list(self) -> list[dict[str, Any]]:
        """The `timeline` block of analysis.json."""
        return [entry.model_dump(mode="json") for entry in self.entries]


def build_timeline(
    store: Any,
    window: Span,
    baseline: Span,
    *,
    onsets: Sequence[tuple[str, datetime]] = (),
    peak: datetime | None = None,
    detection_evidence: Sequence[str] = (),
    templates: Sequence[LogTemplate] = (),
    data_end: datetime | None = None,
) -> Timeline:
    """Sorted timeline entries for the incident. `onsets` are (series, onset) pairs from detection, `peak` its
    peak time, `detection_evidence` the ids that back them; `templates` the reported log templates, top first;
    `data_end` the last time in the data (asked of the store when not given: a scan of every view)."""
    window, baseline = check_periods(window, baseline)
    timeline = Timeline()
    detection_ids = list(detection_evidence) or [_window_evidence(window, timeline)]
    _add_detection(timeline, window, onsets, peak, detection_ids)
    for template in list(templates)[:MAX_TEMPLATES]:
        # a new template's first line may precede the detected window; a surging one existed before
        first = template.first_seen_overall if template.status == "new" else template.first_seen
        services = ", ".join(template.services[:3])
        timeline.entries.append(TimelineEntry(
            t=first,
            event=f"first '{template.template}' ({template.status} log template, {services})",
            evidence=[template.evidence],
        ))
    if store.has("events"):
        _add_events(timeline, store, window)
    if store.has("logs"):
        _add_first_problems(timeline, store, window, baseline)
    if data_end is None:
        data_range = store.time_range()
        data_end = data_range[1] if data_range else None
    if data_end is not None:
        _add_recovery(timeline, window, data_end, detection_ids)
    timeline.entries.sort(key=lambda entry: entry.t)
    return timeline


def detection_inputs(detection: Any) -> dict[str, Any]:
    """`onsets`, `peak` and `detection_evidence` from a detection result (`analysis.detection.DetectionResult`)."""
    incident = detection.window
    if incident is None:
        return {}
    return {
        "onsets": [(s.series, s.onset) for s in incident.series],
        "peak": incident.peak,
        "detection_evidence": [e.id for e in detection.evidence],
    }


def _window_evidence(window: Span, timeline: Timeline) -> str:
    item = Evidence.make(
        "detection", "incident window", "incident window as given to the timeline",
        {"start": iso_z(window[0]), "end": iso_z(window[1])},
    )
    timeline.evidence.append(item)
    return item.id


def _add_detection(
    timeline: Timeline, window: Span, onsets: Sequence[tuple[str, datetime]], peak: datetime | None, ids: list[str]
) -> None:
    ordered = sorted(onsets, key=lambda pair: pair[1])
    first_of_series = list(dict.fromkeys(series for series, _ in ordered))[:MAX_ONSETS]
    onset_of = {series: t for series, t in reversed(ordered)}
    for rank, series in enumerate(first_of_series):
        label = f"first anomalous point: {series}" if rank == 0 else f"{series} becomes anomalous"
        timeline.entries.append(TimelineEntry(t=onset_of[series], event=label, evidence=ids))
    if peak is not None:
        timeline.entries.append(TimelineEntry(t=peak, event="peak of the incident", evidence=ids))


def _add_events(timeline: Timeline, store: Any, window: Span) -> None:
    near = (window[0] - EVENT_LEAD, window[1])
    sql = (
        f"SELECT ts, service, kind, description FROM events WHERE {in_span('ts', near)} "
        f"ORDER BY ts LIMIT {MAX_EVENTS}"
    )
    for row in store.fetch(sql).to_pylist():
        what = " ".join(str(row[k]) for k in ("kind", "service") if row[k] is not None) or "event"
        description = f": {row['description']}" if row["description"] else ""
        item = Evidence.make("event", f"{what}{description}", sql, {**row, "ts": iso_z(row["ts"])})
        timeline.evidence.append(item)
        timeline.entries.append(TimelineEntry(t=row["ts"], event=f"{what}{description}", evidence=[item.id]))


def _add_first_problems(timeline: Timeline, store: Any, window: Span, baseline: Span) -> None:
    """Each service's first minute of WARN/ERROR/FATAL lines above its baseline rate, between baseline and window
    end (the detected window can start late; the baseline ends before the trouble)."""
    search = (min(baseline[1], window[0]), window[1])
    sql = first_problem_sql(search, baseline)
    table = store.fetch(sql)
    if table.num_rows == 0:
        return
    rows = table.to_pylist()
    base_counts = {r["service"]: r["n"] for r in rows if r["minute"] is None}
    minutes = sorted((r for r in rows if r["minute"] is not None), key=lambda r: r["minute"])
    rate = {s: base_counts.get(s, 0) / span_minutes(baseline) for s in {r["service"] for r in minutes}}
    # every minute of every service is a test: Bonferroni over the minutes searched
    p_value = SURGE_P_VALUE / max(span_minutes(search), 1.0)
    firsts: dict[str, dict[str, Any]] = {}
    for row in minutes:
        surged = row["n"] >= MIN_SURGE_LINES and poisson_at_least(row["n"], max(rate[row["service"]], 1e-9)) <= p_value
        if row["service"] not in firsts and surged:
            firsts[row["service"]] = row
    if not firsts:
        return
    ordered = sorted(firsts.values(), key=lambda r: r["first_ts"])
    data = [
        {"service": r["service"], "first": iso_z(r["first_ts"]), "lines_that_minute": r["n"],
         "baseline_per_minute": round(rate[r["service"]], 4)}
        for r in ordered[:20]
    ]
    item = Evidence.make(
        "sql",
        "first minute of WARN/ERROR/FATAL lines above the baseline rate, per service (propagation order)",
        sql,
        {"services": data, "cut": max(0, len(ordered) - 20),
         "rule": f"the first minute with >= {MIN_SURGE_LINES} lines, more than the baseline's Poisson rate allows at "
                 f"p < {SURGE_P_VALUE:g} / minutes searched"},
    )
    timeline.evidence.append(item)
    for rank, row in enumerate(ordered[:MAX_SERVICES]):
        label = "first errors" if rank == 0 else "errors reach"
        timeline.entries.append(TimelineEntry(
            t=row["first_ts"], event=f"{label}: {row['service']} ({row['n']} WARN/ERROR lines that minute)",
            evidence=[item.id],
        ))


def first_problem_sql(search: Span, baseline: Span) -> str:
    """Problem lines per service: per minute in the search span, one total (minute NULL) in the baseline."""
    return f"""SELECT service, CASE WHEN {in_span('ts', search)} THEN date_trunc('minute', ts) END AS minute,
       count(*) AS n, min(ts) AS first_ts
FROM logs
WHERE level IN {sql_in(PROBLEM_LEVELS)} AND (({in_span('ts', search)}) OR ({in_span('ts', baseline)}))
GROUP BY service, minute"""


def _add_recovery(timeline: Timeline, window: Span, data_end: datetime, ids: list[str]) -> None:
    if data_end > window[1]:
        timeline.entries.append(TimelineEntry(t=window[1], event="recovery: signals back within baseline",
                                              evidence=ids))
    elif data_end >= window[0]:
        timeline.entries.append(TimelineEntry(t=data_end, event="end of data: incident still ongoing", evidence=ids))
