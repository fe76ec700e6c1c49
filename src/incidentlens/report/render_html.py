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
from incidentlens.analysis.units import LOG_ERROR_SHARE
from incidentlens.report import formatting as fmt
from incidentlens.report.build import duration_label, root_cause_label, source_lines, start_label, suspicion
from incidentlens.report.charts import MIN_SHADE_PX, BarChart, LineChart, bar_chart, line_chart, timeline_chart
from incidentlens.report.playbooks import kind_label
from incidentlens.report.schema import EVIDENCE_FILE, Postmortem
from incidentlens.report.severity import users_label
from incidentlens.telemetry import naive_utc

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
    env.globals.update(sample_line=fmt.sample_line, when=fmt.when, pct=fmt.pct, num=fmt.num,
                       table_value=fmt.table_value, kind_label=kind_label,
                       readable_pattern=fmt.readable_pattern, template_counts=fmt.template_counts)
    line_charts, charts_note = _line_charts(pm, store)
    return env.get_template("report.html.j2").render(
        pm=pm,
        evidence_file=EVIDENCE_FILE,
        duration=fmt.minutes(pm.impact.duration_minutes) if pm.impact else "",
        duration_label=duration_label(pm),
        sources=source_lines(pm),
        cards=_cards(pm) if pm.detected else [],
        impact_rows=_impact_rows(pm),
        line_charts=line_charts,
        charts_note=charts_note,
        root_cause_label=root_cause_label(pm) if pm.root_cause else "",
        contributor_chart=_contributor_chart(pm),
        populations=_contributor_populations(pm),
        template_chart=_template_chart(pm),
        timeline_svg=_timeline(pm),
        examined=_examined(pm, store),
        suspected=suspicion(pm.root_cause) if pm.root_cause else None,
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
        name = "Peak error rate" if e.metric != LOG_ERROR_SHARE else "Peak share of ERROR/FATAL lines"
        cards.append(_Card(name, fmt.pct(e.value),
                           f"baseline {fmt.pct(e.baseline)}" if e.baseline is not None else e.metric))
    if impact and impact.peak_latency:
        lat = impact.peak_latency
        baseline = f", baseline {fmt.measure(lat.metric, lat.baseline)}" if lat.baseline is not None else ""
        cards.append(_Card("Peak latency", fmt.measure(lat.metric, lat.value),
                           f"{fmt.series_name(lat.service, lat.metric)}{baseline}"))
    if impact and impact.requests_failed is not None:
        beyond = (f"; {fmt.num(impact.failed_excess)} beyond the baseline's {fmt.pct(impact.baseline_failed_share)}"
                  if impact.baseline_failed_share is not None else "")
        cards.append(_Card("Requests failed", fmt.num(impact.requests_failed),
                           f"{fmt.pct(impact.failed_share)} of {fmt.num(impact.requests_total)}{beyond}"
                           if impact.requests_total else ""))
    if impact and impact.users_affected is not None:
        beyond = ("no baseline: a raw count" if impact.users_baseline is None else
                  f"{fmt.num(impact.users_excess)} beyond the baseline's {fmt.num(impact.users_baseline)}")
        cards.append(_Card(users_label(impact, pm.severity), fmt.num(impact.users_affected),
                           f"distinct user ids; {beyond}"))
    if impact and impact.services_affected:
        cards.append(_Card("Services affected", str(len(impact.services_affected)),
                           ", ".join(impact.services_affected[:3]) + ("…" if len(impact.services_affected) > 3
                                                                      else "")))
    if pm.detection.onset == "given" and pm.incident_window and pm.detection.undetected:
        before = pm.detection.alert_at is not None
        cards.append(_Card("Start (before the alert)" if before else "Start (alert time)",
                           fmt.when(pm.incident_window.start, clock=True),
                           f"{start_label(pm)}: nothing after the alert could be explained" if before
                           else "no incident window detected there"))
    elif pm.detection.onset == "given" and pm.incident_window:
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
        rows.append(_ImpactRow(f"Peak {fmt.error_rate_name(e.service, e.metric, '')}{at}", fmt.pct(e.value),
                               fmt.pct(e.baseline)))
    if impact.peak_latency:
        lat = impact.peak_latency
        at = f" at {fmt.when(lat.at, clock=True)}" if lat.at else ""
        rows.append(_ImpactRow(f"Peak latency ({fmt.series_name(lat.service, lat.metric)}){at}",
                               fmt.measure(lat.metric, lat.value),
                               fmt.measure(lat.metric, lat.baseline)))
    if impact.requests_total is not None:
        rows.append(_ImpactRow(f"Requests in the window{_counted_at(impact)}", fmt.num(impact.requests_total)))
    if impact.requests_failed is not None:
        usual = impact.baseline_failed_share
        rows.append(_ImpactRow(f"Requests failed{_counted_at(impact)}", fmt.num(impact.requests_failed),
                               "" if usual is None else f"{fmt.pct(usual)} of requests"))
        if usual is not None:
            rows.append(_ImpactRow("Requests failed beyond the baseline's share", fmt.num(impact.failed_excess)))
    elif impact.requests_total is not None:
        rows.append(_ImpactRow(f"Requests failed{_counted_at(impact)}", "no count in the data"))
    if impact.users_affected is not None:
        usual = impact.users_baseline
        label = users_label(impact, pm.severity)
        rows.append(_ImpactRow(label, fmt.num(impact.users_affected),
                               "no baseline" if usual is None else fmt.num(usual)))
        if usual is not None:
            rows.append(_ImpactRow(f"{label} beyond the baseline's", fmt.num(impact.users_excess)))
    if impact.services_affected:
        rows.append(_ImpactRow("Services affected", ", ".join(impact.services_affected)))
    if impact.regions_affected:
        rows.append(_ImpactRow("Regions affected", ", ".join(impact.regions_affected)))
    return rows


def _counted_at(impact: Any) -> str:
    """Where requests were counted, for a label: ' (at ts-gateway-service)'; nothing for wide metrics' `global`."""
    entry = impact.entry_service
    return f" (at {entry})" if fmt.names_service(entry) else ""


#: why there are no metric charts when the review was written without the metrics
NO_METRICS_GIVEN = "Metric charts need the metrics: pass --metrics to `incidentlens report`."
#: ... and when the investigation itself read none for its window: passing them would not help
NO_METRICS_READ = "No metric charts: the investigation read no metrics for this period."


def metrics_elsewhere(pm: Postmortem, store: Any) -> str | None:
    """What to say when the metrics given to chart the review hold no sample near its window (another day's files
    given to `incidentlens report`); None when they do, or there is no window or metrics."""
    if store is None or not store.has("metrics") or pm.incident_window is None:
        return None
    span = store.view_ranges().get("metrics")
    view = _view((naive_utc(pm.incident_window.start), naive_utc(pm.incident_window.end)))
    if span is None or (span[1] >= view[0] and span[0] <= view[1]):
        return None
    return (f"The metrics given run {fmt.when(span[0])} to {fmt.when(span[1])}, none of it near the incident "
            f"({fmt.when(pm.incident_window.start)} to {fmt.when(pm.incident_window.end)}): no chart of them can "
            "show it.")


def _line_charts(pm: Postmortem, store: Any) -> tuple[list[LineChart], str]:
    if store is None or not store.has("metrics"):
        read_none = pm.sources is not None and "metrics" not in pm.sources.used
        return [], NO_METRICS_READ if read_none else NO_METRICS_GIVEN
    if elsewhere := metrics_elsewhere(pm, store):
        return [], elsewhere
    if not pm.detected or pm.incident_window is None:
        return _overview_charts(store), "The metrics hold no error or latency series to show."
    window = (pm.incident_window.start, pm.incident_window.end)
    view = _view(window)
    picked = key_metrics(pm, store)
    # of a service with several pods, the chart is of the pod that moved (as its baseline and markers are)
    pods = {**{name: pod for name, _, pod in picked if pod}, **{s.series: s.pod for s in pm.detection.series if s.pod}}
    series = {s.name: s for s in key_series(store, [name for name, _, _ in picked], view, pods=pods)}
    if not series:
        return [], _nothing_to_chart(pm, store, (naive_utc(window[0]), naive_utc(window[1])))
    detected = {s.series: s for s in pm.detection.series}
    charts = []
    for name, role, _ in picked:
        if name not in series:
            continue
        markers = _markers(pm, detected.get(name), window)
        baseline = detected[name].baseline if name in detected else None
        title, unit = _chart_title(name, role, pods.get(name))
        chart = line_chart(series[name], window, view, markers, baseline, title=title, unit=unit)
        if chart.shade_x is None or chart.shade_width < MIN_SHADE_PX:
            chart.zoom, chart.zoom_note = _zoom(store, name, window, markers, baseline, title, unit, pods)
        charts.append(chart)
    return charts, ""


def key_metrics(pm: Postmortem, store: Any) -> list[tuple[str, str, str | None]]:
    """The series to chart, each with why and the pod that moved where its service has several (else None): the root
    cause's, the entry service's, then the others that moved most after the start (strongest shift first), at most
    `MAX_METRIC_CHARTS`."""
    from incidentlens.analysis.impact import moved_after_start

    if not store.has("metrics"):
        return []
    window = (naive_utc(pm.incident_window.start), naive_utc(pm.incident_window.end))
    candidates = [s for s in pm.detection.series if "/" in s.series]
    changed = moved_after_start(store, window, [(*s.series.rsplit("/", 1), s.direction or "up", s.baseline)
                                                for s in candidates], {s.series: s.pod for s in candidates if s.pod})
    moved = sorted((s for s in pm.detection.series if s.series in changed or "/" not in s.series),
                   key=lambda s: -abs(s.shift or 0))
    picked: dict[str, tuple[str, str | None]] = {}
    focus = [(pm.root_cause.service, "root cause", 2)] if pm.root_cause else []
    entry = (pm.impact.entry_service or "").split(",")[0].strip() if pm.impact else ""
    if fmt.names_service(entry):
        focus.append((entry, "entry service", 1))
    for service, role, count in focus:
        own = [(s.series, s.pod) for s in moved if s.series.rsplit("/", 1)[0] == service]
        for name, pod in (own or _strongest_series(store, service, pm, prefer_felt=role == "entry service"))[:count]:
            picked.setdefault(name, (role, pod))
    for s in moved:
        picked.setdefault(s.series, ("moved most", s.pod))
    return [(name, role, pod) for name, (role, pod) in picked.items()][:MAX_METRIC_CHARTS]


def _strongest_series(store: Any, service: str, pm: Postmortem,
                      prefer_felt: bool = False) -> list[tuple[str, str | None]]:
    """A service's series that shifted most in the incident (the detection lists only what crossed its bar), each
    with its most changed pod where it has several; with `prefer_felt`, its latency and error series first: what the
    service's callers feel."""
    from incidentlens.analysis.impact import ERROR_RATIO, LATENCY
    from incidentlens.analysis.shifts import metric_shift_sql

    if pm.incident_window is None or pm.baseline_window is None:
        return []
    window = (naive_utc(pm.incident_window.start), naive_utc(pm.incident_window.end))
    baseline = (naive_utc(pm.baseline_window.start), naive_utc(pm.baseline_window.end))
    rows = [r for r in store.fetch(metric_shift_sql(window, baseline, service)).to_pylist()
            if r["median_z"] is not None]
    rows.sort(key=lambda r: (not (prefer_felt and (LATENCY.search(r["metric"]) or ERROR_RATIO.search(r["metric"]))),
                             -max(abs(r["max_z"] or 0), abs(r["min_z"] or 0))))
    return [(f"{r['service']}/{r['metric']}", r["pod"] if (r.get("pods") or 1) > 1 else None) for r in rows[:2]]


def _chart_title(name: str, role: str, pod: str | None = None) -> tuple[str, str | None]:
    service, _, metric = name.rpartition("/")
    unit = fmt.unit_of(metric)
    if unit is None and any(w in metric.lower() for w in ("ratio", "error_rate")):
        unit = "%"
    shown = fmt.series_name(service, metric) + (f" on pod {pod}" if pod else "")
    return f"{role}: {shown}" + (f" ({unit})" if unit and f"({unit})" not in metric else ""), unit


def _markers(pm: Postmortem, series: Any, window: tuple[dt.datetime, dt.datetime]) -> dict[str, dt.datetime | None]:
    """What a chart marks, each only where it means what it says: the start (given or detected), where this series
    itself moved when that is later, its peak (a trough when it fell), the recovery, the trigger."""
    markers: dict[str, dt.datetime | None] = {"given start" if pm.detection.onset == "given" else "start": window[0]}
    if series is not None and series.onset and naive_utc(series.onset) > naive_utc(window[0]):
        markers["moved"] = series.onset
    if series is not None and series.peak_at:
        markers["trough" if series.direction == "down" else "peak"] = series.peak_at
    if pm.recovery and pm.recovery.recovered_at:
        markers["recovery"] = pm.recovery.recovered_at
    if pm.trigger and pm.trigger.t:
        markers["trigger"] = pm.trigger.t
    return markers


def _zoom(store: Any, name: str, window: tuple[dt.datetime, dt.datetime], markers: dict[str, dt.datetime | None],
          baseline: float | None, title: str, unit: str | None,
          pods: dict[str, str]) -> tuple[LineChart | None, str]:
    """The same series (of the same pod) around a short window, on a scale where the window is wide enough to read."""
    span = max(window[1] - window[0], dt.timedelta(minutes=1))
    view = (window[0] - 2 * span, window[1] + 2 * span)
    found = key_series(store, [name], view, max_points=120, pods=pods)
    if not found or found[0].t.size < 2:
        return None, ""
    note = f"zoom: the {fmt.minutes((window[1] - window[0]).total_seconds() / 60)} window with twice as long around it"
    return line_chart(found[0], window, view, markers, baseline, title=title, unit=unit), note


def _nothing_to_chart(pm: Postmortem, store: Any, window: tuple[dt.datetime, dt.datetime]) -> str:
    """Why no series that moved is charted: the window was found from the logs' problem lines (no metric series
    moved: detection's fallback), none did, or the metrics hold no sample in the window at all (a given start 20 s
    before the end of a minute of logs, beside one-minute metrics), where nothing could be seen to move."""
    from incidentlens.analysis.anchored import metric_step
    from incidentlens.analysis.detection import LOG_PROBLEMS
    from incidentlens.analysis.periods import PROBLEM_LEVELS, in_span

    logged = [s.series.removesuffix(f"/{LOG_PROBLEMS}") for s in pm.detection.series]
    if logged and all(s.series.endswith(f"/{LOG_PROBLEMS}") for s in pm.detection.series):
        return (f"No metric series moved: the window was found from the logs, where the {'/'.join(PROBLEM_LEVELS)} "
                f"lines per minute of {fmt.listed(logged)} moved.")
    samples = store.fetch(f"SELECT count(*) AS n FROM metrics WHERE {in_span('ts', window)}").to_pylist()[0]["n"]
    if samples:
        return "The metrics hold none of the series that moved."
    step = metric_step(store, _view(window))
    every = f" (metrics every {fmt.minutes(step.total_seconds() / 60)})" if step else ""
    return f"No metric samples in the window{every}: the metrics cannot show whether anything moved in it."


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
    rows = [(f"{c.dimension}={c.value}", c.window_share, c.baseline_share) for c in pm.contributors[:8]]
    return bar_chart(rows) if rows else None


def _contributor_populations(pm: Postmortem) -> tuple[str, str]:
    """What the contributor shares are shares of, as the contrast evidence names it (one statement for the chart)."""
    ids = {c.evidence for c in pm.contributors if c.evidence}
    data = next((e.data for e in pm.evidence if e.id in ids and isinstance(e.data, dict)
                 and e.data.get("window_population")), {})
    return (data.get("window_population") or "problem lines in the incident",
            data.get("baseline_population") or "problem lines before it")


def _template_chart(pm: Postmortem) -> BarChart | None:
    rows = [(f"T{i} · {', '.join(t.services[:2]) + ' · ' if t.services else ''}{fmt.readable_pattern(t.template)}",
             float(t.count_window), float(t.count_baseline)) for i, t in enumerate(pm.templates[:8], start=1)]
    return bar_chart(rows, percent=False) if rows else None


def _timeline(pm: Postmortem):
    if not pm.timeline:
        return None
    window = (pm.incident_window.start, pm.incident_window.end) if pm.incident_window else None
    return timeline_chart([e.t for e in pm.timeline], [e.phase for e in pm.timeline], window)
