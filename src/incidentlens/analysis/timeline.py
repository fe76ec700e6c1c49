"""The incident's timeline, from the data: each entry is a time the data gives and the evidence it came from.

Entries: deploys and config changes from the `events` view near the window, the first line of each top log
template, one row per service in time order (when it started to move: the one onset per service that the ranking's
tests and the verdict cite; else the first of its series detection flagged), only the earliest labelled first, so
the rows show how the failure propagated; the peak, and the recovery (the window's end, when the data goes on after
it).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from pydantic import BaseModel

from incidentlens.analysis.evidence import Evidence
from incidentlens.analysis.periods import Span, UtcTime, check_periods, in_span, iso_z
from incidentlens.analysis.shifts import log_surges
from incidentlens.analysis.templates import LogTemplate

#: deploys and config changes this long before the window count as near it
EVENT_LEAD = timedelta(hours=1)
#: flagged series listed: one per service with no move of its own, the first flagged
MAX_ONSETS = 5
MAX_TEMPLATES = 5
MAX_EVENTS = 20
#: services whose onsets are listed (the first few show the propagation)
MAX_SERVICES = 8


class ServiceOnset(BaseModel):
    """When a service started to move, what showed it, and the evidence: one value per service."""

    service: str
    t: datetime
    sign: str
    evidence: list[str]


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
    service_onsets: Sequence[ServiceOnset] | None = None,
) -> Timeline:
    """Sorted timeline entries for the incident. `onsets` are (series, onset) pairs from detection, `peak` its
    peak time, `detection_evidence` the ids that back them; `templates` the reported log templates, top first;
    `data_end` the last time in the data (asked of the store when not given: a scan of every view);
    `service_onsets` when each service started to move (the ranking's, `verdict.service_onsets`), else the onsets
    of the services' WARN/ERROR surges (`shifts.log_surges`, the same test)."""
    window, baseline = check_periods(window, baseline)
    timeline = Timeline()
    detection_ids = list(detection_evidence) or [_window_evidence(window, timeline)]
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
    if service_onsets is None and store.has("logs"):
        service_onsets = _surge_onsets(store, window, baseline, timeline)
    _add_onsets(timeline, onsets, service_onsets or [], detection_ids)
    if peak is not None:
        timeline.entries.append(TimelineEntry(t=peak, event="peak of the incident", evidence=detection_ids))
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


def _surge_onsets(store: Any, window: Span, baseline: Span, timeline: Timeline) -> list[ServiceOnset]:
    """Each service's WARN/ERROR surge onset (its first problem line), by the ranking's test."""
    surges, evidence = log_surges(store, window, baseline)
    timeline.evidence.extend(evidence)
    return [ServiceOnset(service=s.service, t=(s.first_problem or s.onset).replace(microsecond=0),
                         sign=f"WARN/ERROR lines at {s.ratio:.3g}x their baseline rate", evidence=[s.evidence])
            for s in surges if s.significant]


def _add_onsets(timeline: Timeline, onsets: Sequence[tuple[str, datetime]], service_onsets: Sequence[ServiceOnset],
                ids: list[str]) -> None:
    """One row per service, in time order: when it started to move (`service_onsets`), else its first series the
    detector flagged (`onsets`); only the earliest row is labelled first: `first to move: db (...)` or
    `first anomalous point: db/p95_ms`, then `api moves (...)` or `api/error_ratio becomes anomalous`; none when
    several share the earliest time (three services' one-minute metrics moving at the same sample: the data cannot
    say which came first)."""
    moves = sorted(service_onsets, key=lambda o: (o.t, o.service))[:MAX_SERVICES]
    moved = {o.service for o in moves}
    flagged: dict[str, tuple[str, datetime]] = {}
    for series, t in sorted(onsets, key=lambda pair: pair[1]):
        service = series.split("/")[0]
        if service not in moved and service not in flagged:
            flagged[service] = (series, t)
    # at the same time a service's move comes before another's flagged series (its sign says why it moved)
    rows = [(o.t, 0, o) for o in moves] + [(t, 1, series) for series, t in list(flagged.values())[:MAX_ONSETS]]
    rows.sort(key=lambda r: (r[0], r[1]))
    alone = len(rows) < 2 or rows[1][0] > rows[0][0]
    for rank, (t, _, row) in enumerate(rows):
        first = rank == 0 and alone
        if isinstance(row, ServiceOnset):
            label = f"first to move: {row.service}" if first else f"{row.service} moves"
            timeline.entries.append(TimelineEntry(t=t, event=f"{label} ({row.sign})", evidence=row.evidence))
        else:
            label = f"first anomalous point: {row}" if first else f"{row} becomes anomalous"
            timeline.entries.append(TimelineEntry(t=t, event=label, evidence=ids))


def _add_recovery(timeline: Timeline, window: Span, data_end: datetime, ids: list[str]) -> None:
    if data_end > window[1]:
        timeline.entries.append(TimelineEntry(t=window[1], event="recovery: signals back within baseline",
                                              evidence=ids))
    elif data_end >= window[0]:
        timeline.entries.append(TimelineEntry(t=data_end, event="end of data: incident still ongoing", evidence=ids))
