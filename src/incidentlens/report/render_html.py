"""The incident review as one self-contained HTML page: inline CSS and server-drawn SVG charts, no script.

Everything from the data (log lines, model prose, titles) goes through Jinja's autoescape; nothing from the data is
ever marked safe.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from incidentlens.analysis.series import key_series, overview_names
from incidentlens.report import formatting as fmt
from incidentlens.report.build import duration_label, is_confirmed
from incidentlens.report.charts import BarChart, LineChart, bar_chart, line_chart, timeline_chart
from incidentlens.report.playbooks import kind_label, playbook
from incidentlens.report.schema import EVIDENCE_FILE, Postmortem

MAX_METRIC_CHARTS = 6


@dataclass(frozen=True)
class _Card:
    key: str
    value: str
    sub: str


@dataclass(frozen=True)
class _ImpactRow:
    label: str
    value: str
    baseline: str = ""


def render_html(pm: Postmortem, store: Any = None) -> str:
    """The review as HTML; with a telemetry `store`, key metrics are charted over time."""
    env = Environment(loader=PackageLoader("incidentlens.report", "templates"),
                      autoescape=select_autoescape(["html", "html.j2"], default=True), undefined=StrictUndefined,
                      trim_blocks=False, lstrip_blocks=False)
    env.globals.update(when=fmt.when, pct=fmt.pct, num=fmt.num,
                       series_value=fmt.series_value, kind_label=kind_label,
                       readable_pattern=fmt.readable_pattern)
    line_charts, charts_note = _line_charts(pm, store)
    return env.get_template("report.html.j2").render(
        pm=pm,
        evidence_file=EVIDENCE_FILE,
        duration=fmt.minutes(pm.impact.duration_minutes) if pm.impact else "",
        duration_label=duration_label(pm),
        cards=_cards(pm) if pm.detected else [],
        impact_rows=_impact_rows(pm),
        line_charts=line_charts,
        charts_note=charts_note,
        root_cause_label=playbook(pm.root_cause.kind).label if pm.root_cause else "",
        contributor_chart=_contributor_chart(pm),
        template_chart=_template_chart(pm),
        timeline_svg=_timeline(pm),
        examined=_examined(pm, store),
        suspected=pm.root_cause is not None and not is_confirmed(pm.root_cause),
    )


def _examined(pm: Postmortem, store: Any) -> str:
    """With no incident, the span of data that was checked (the review has no incident date to show)."""
    span = store.time_range() if store is not None and not pm.detected else None
    return f"{fmt.when(span[0])} → {fmt.when(span[1])}" if span else ""


def _cards(pm: Postmortem) -> list[_Card]:
    impact = pm.impact
    cards = []
    if impact and impact.duration_minutes is not None:
        cards.append(_Card(duration_label(pm), fmt.minutes(impact.duration_minutes, short=True),
                           f"from {fmt.when(pm.incident_window.start, clock=True)}" if pm.incident_window else ""))
    if impact and impact.peak_error_rate:
        e = impact.peak_error_rate
        cards.append(_Card("Peak error rate", fmt.pct(e.value),
                           f"baseline {fmt.pct(e.baseline)}" if e.baseline is not None else e.metric))
    if impact and impact.peak_latency:
        lat = impact.peak_latency
        baseline = f", baseline {fmt.measure(lat.metric, lat.baseline)}" if lat.baseline is not None else ""
        cards.append(_Card("Peak latency", fmt.measure(lat.metric, lat.value), f"{lat.metric}{baseline}"))
    if impact and impact.requests_failed is not None:
        cards.append(_Card("Requests failed", fmt.num(impact.requests_failed),
                           f"{fmt.pct(impact.failed_share)} of {fmt.num(impact.requests_total)}"
                           if impact.requests_total else ""))
    if impact and impact.users_affected is not None:
        cards.append(_Card("Users affected", fmt.num(impact.users_affected), "distinct user ids"))
    if impact and impact.services_affected:
        cards.append(_Card("Services affected", str(len(impact.services_affected)),
                           ", ".join(impact.services_affected[:3]) + ("…" if len(impact.services_affected) > 3
                                                                      else "")))
    if pm.detection.onset == "given" and pm.incident_window:
        cards.append(_Card("Start (given)", fmt.when(pm.incident_window.start, clock=True),
                           "alert, injection or page; not detected"))
    elif pm.detection.detected_at is not None:
        cards.append(_Card("Detected", fmt.when(pm.detection.detected_at, clock=True),
                           f"first anomalous point ({pm.detection.detector or 'detector'})"))
    return cards


def _impact_rows(pm: Postmortem) -> list[_ImpactRow]:
    impact = pm.impact
    if not impact:
        return []
    rows = [_ImpactRow(duration_label(pm), fmt.minutes(impact.duration_minutes))]
    if impact.peak_error_rate:
        e = impact.peak_error_rate
        at = f" at {fmt.when(e.at, clock=True)}" if e.at else ""
        rows.append(_ImpactRow(f"Peak error rate ({e.metric}){at}", fmt.pct(e.value), fmt.pct(e.baseline)))
    if impact.peak_latency:
        lat = impact.peak_latency
        at = f" at {fmt.when(lat.at, clock=True)}" if lat.at else ""
        rows.append(_ImpactRow(f"Peak latency ({lat.metric}){at}", fmt.measure(lat.metric, lat.value),
                               fmt.measure(lat.metric, lat.baseline)))
    if impact.requests_total is not None:
        rows.append(_ImpactRow("Requests in the window", fmt.num(impact.requests_total)))
    if impact.requests_failed is not None:
        rows.append(_ImpactRow("Requests failed (rate x error ratio)", fmt.num(impact.requests_failed)))
    if impact.users_affected is not None:
        rows.append(_ImpactRow("Users affected", fmt.num(impact.users_affected)))
    if impact.services_affected:
        rows.append(_ImpactRow("Services affected", ", ".join(impact.services_affected)))
    if impact.regions_affected:
        rows.append(_ImpactRow("Regions affected", ", ".join(impact.regions_affected)))
    return rows


def _line_charts(pm: Postmortem, store: Any) -> tuple[list[LineChart], str]:
    if store is None:
        return [], "Metric charts need the metrics: pass --metrics to `incidentlens report`."
    if not pm.detected or pm.incident_window is None:
        return _overview_charts(store), "The metrics hold no error or latency series to show."
    names = [s.series for s in pm.detection.series][:MAX_METRIC_CHARTS]
    window = (pm.incident_window.start, pm.incident_window.end)
    view = _view(window)
    series = key_series(store, names, view)
    if not series:
        return [], "The metrics hold none of the detected series."
    baselines = {s.series: s.baseline for s in pm.detection.series}
    detected = {s.series: s for s in pm.detection.series}
    charts = []
    for s in series:
        onset, peak_at = detected[s.name].onset, detected[s.name].peak_at
        markers = {"onset": onset or window[0], "peak": peak_at or pm.peak,
                   "recovery": pm.recovery.recovered_at if pm.recovery else None}  # None: a given start's window
        if pm.trigger and pm.trigger.t:
            markers["trigger"] = pm.trigger.t
        charts.append(line_chart(s, window, view, markers, baselines.get(s.name)))
    return charts, ""


def _overview_charts(store: Any) -> list[LineChart]:
    """With no incident, the error and latency series over the whole range: what the detector looked at."""
    span = store.time_range()
    if span is None:
        return []
    return [line_chart(s, None, span, {}) for s in key_series(store, overview_names(store), span)]


def _view(window: tuple[dt.datetime, dt.datetime]) -> tuple[dt.datetime, dt.datetime]:
    """The incident with context on both sides: as long again before it (at least 30 min), half after it."""
    span = window[1] - window[0]
    return window[0] - max(span, dt.timedelta(minutes=30)), window[1] + max(span / 2, dt.timedelta(minutes=15))


def _contributor_chart(pm: Postmortem) -> BarChart | None:
    rows = [(_shorten(f"{c.dimension}={c.value}"), c.window_share, c.baseline_share) for c in pm.contributors[:8]]
    return bar_chart(rows) if rows else None


def _shorten(label: str, width: int = 26) -> str:
    return label if len(label) <= width else label[: width - 1] + "…"


def _template_chart(pm: Postmortem) -> BarChart | None:
    rows = [(f"T{i}", float(t.count_window), float(t.count_baseline)) for i, t in enumerate(pm.templates[:8], start=1)]
    return bar_chart(rows, percent=False) if rows else None


def _timeline(pm: Postmortem):
    if not pm.timeline:
        return None
    window = (pm.incident_window.start, pm.incident_window.end) if pm.incident_window else None
    return timeline_chart([e.t for e in pm.timeline], [e.phase for e in pm.timeline], window)
