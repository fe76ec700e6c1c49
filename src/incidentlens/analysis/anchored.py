"""A known onset: when the caller knows when the incident started (an alert, an injection, a page), trust it.

Detection looks for the window itself; with a known onset there is nothing to look for: the window runs from `at` to
the end of the shortest source that runs past it (metrics alone: `METRIC_WINDOW_STEPS` of their samples, the change
the alert is about and not the rest of the day; logs and traces: on to the metric samples taken within half a step
after they end, which measure the stretch before them), at most `MAX_WINDOW` long, and the baseline is the data
before `at` (at most `MAX_BASELINE` of it). A start the caller gives holds at least the first metric sample that
measures the time after it, where logs and traces end too soon after it to reach one (a minute's file ending 6 s after
the start); an alert time taken as the start keeps the stretch every source covers.
Short bursts of logs and traces around an alert leave too little history for detection's baseline rule (which
ends 15 minutes before the first anomalous point); here every line before `at` counts, however little.
`known_onset_detection` states this window in the shape of a detection result (the series that moved in it, by
the before/after shift test) so the rest of the pipeline reads it like a detected one.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, NamedTuple

from incidentlens.analysis.detection import DetectionResult, IncidentWindow, SeriesShift, iso_z
from incidentlens.analysis.evidence import Evidence
from incidentlens.analysis.periods import END_STEP, Span, in_span, iso_end, sampling_step_sql
from incidentlens.analysis.shifts import MetricShift, metric_shift_sql, metric_shifts
from incidentlens.analysis.sources import GIVEN_ONLY, SOURCES
from incidentlens.analysis.words import listed
from incidentlens.errors import InputError
from incidentlens.telemetry import sql_ts

#: how `analyze` finds the incident's start: detect it, or trust `at`
ONSETS = ("detect", "at")
KNOWN_ONSET = "known onset"
#: the window runs to the end of the shortest source that runs past the onset, at most this long
MAX_WINDOW = timedelta(hours=6)
#: ... and when the metrics (or call metrics) are that source, over this many of their samples (5 min of one-minute
#: metrics, 5 h of hourly ones): the change the alert is about, not whatever the rest of a day went on to hold
METRIC_WINDOW_STEPS = 5
#: the sources that hold a value per series and step (a day of them runs on past the incident), and their series
AGGREGATE_SERIES = {"metrics": "service, pod, metric", "calls": "caller, callee, side"}
#: the window's rule, in the detection evidence
WINDOW_RULE = (f"from the given start to the end of the shortest source (metrics, call metrics, logs, spans) that "
               f"runs past it, at most {METRIC_WINDOW_STEPS} metric samples when the metrics or call metrics are "
               f"that source, else with the metric samples taken within half a step after it where it lies half a "
               f"step or more after the start (a sample measures the step before its time), and, where the start "
               f"was given, on to the first metric sample taken half a step or more after it; at most "
               f"{MAX_WINDOW.total_seconds() / 3600:g} h")
#: each view as a reader calls the source (`sources.SOURCES`: spans are traces)
SOURCE_WORDS = {view: name for name, (view, _) in {**SOURCES, **GIVEN_ONLY}.items()}
#: the baseline is the data before the onset, at most this much of it
MAX_BASELINE = timedelta(hours=24)
#: detection lists at most this many series
SERIES_CAP = 20
#: a span's metric step is read from its last stretch this long, not from all of it (a day of a busy system's
#: metrics is hundreds of thousands of rows read to say "one minute"): a regular series' mean gap is its step over any
#: stretch holding two of its samples, so the step read is the span's where every series' step is at most half of
#: this, or all share one step; where no series has two samples there (hourly metrics), the whole span's is read
STEP_READ = timedelta(hours=1)


def check_onset(onset: str, at: datetime | None, flags: bool = True) -> None:
    """Refuse an unknown onset mode, or `at` mode without a time. `flags`: the errors name the CLI's options
    (`--onset`, `--at`), else the parameters of an MCP tool (`onset`, `at`)."""
    dashes = "--" if flags else ""
    if onset not in ONSETS:
        raise InputError(f"{dashes}onset {onset}: expected one of {', '.join(ONSETS)}")
    if onset == "at" and at is None:
        raise InputError(f"{dashes}onset at needs {dashes}at TIME (the incident's known start)")


def can_start_at(store: Any, at: datetime) -> bool:
    """Whether `at` can be an incident's start: after the data's first sample and not past its last."""
    span = store.time_range()
    return span is not None and span[0] < at <= span[1]


def outside_data(store: Any, at: datetime, called: str) -> str | None:
    """`<called> <at> lies outside the data (<start> .. <end>)` when `at` lies outside the data's time range (an
    alert after an export that lags it: the window nearest it, perhaps days away, is all that can be shown), else
    None. Not an error: each face says it its own way (the CLI on stderr, the server in the review's summary)."""
    span = store.time_range()
    if span is None or span[0] <= at <= span[1]:
        return None
    return f"{called} {iso_z(at)} lies outside the data ({iso_z(span[0])} .. {iso_z(span[1])})"


class KnownWindow(NamedTuple):
    """A known onset's periods (`known_window`)."""

    window: Span
    baseline: Span
    rule: str  # the baseline's
    #: the first metric sample after a given start, which the window holds at least (`_first_sample_after`; the start
    #: itself where there is none); None where it was not looked for (an alert time taken as the start, or the metrics
    #: or call metrics the shortest source): `window_end` reads it to say why the window ends where it does
    first_sample: datetime | None


def known_periods(store: Any, at: datetime, given: bool = True) -> tuple[Span, Span, str]:
    """(window, baseline, the baseline's rule) for an incident known to start at `at` (`known_window`)."""
    window, baseline, rule, _ = known_window(store, at, given)
    return window, baseline, rule


def known_window(store: Any, at: datetime, given: bool = True) -> KnownWindow:
    """The window, baseline and the baseline's rule for an incident known to start at `at`: `given` by the caller
    (the window holds at least the first metric sample that measures the time after it, `_first_sample_after`), or an
    alert time taken as the start (the stretch every source covers: from an alert time the analysis walks back a
    minute at a time until something can be explained, and a metric sample past the logs let noise be explained at
    the alert time itself: TrainTicket at a minute after each injection, 20 of 28 right against 22)."""
    ranges, span = store.view_ranges(), store.time_range()
    if span is None:
        raise InputError("--at: no row of the sources given has a time to place it among (a plain-text log in a "
                         "format not recognised has none)")
    data_start, data_end = span
    if not can_start_at(store, at):
        raise InputError(f"--at {iso_z(at)}: outside the data ({iso_z(data_start)} .. {iso_z(data_end)}); with "
                         f"--onset at {_why_not_a_start(at, data_start)}")
    end, first_sample = _covered_end(ranges, at, data_end), None
    aggregates = [view for view in AGGREGATE_SERIES if view in ranges and end >= ranges[view][1]]
    if aggregates:
        # the metrics' own step where there are metrics (a mesh's call metrics are scraped alike)
        view = "metrics" if "metrics" in ranges else aggregates[0]
        # the step is the series', read after the start too where too few samples lie before it (a start at the
        # data's second sample left the window at its longest, hours of noise after it)
        step = (metric_step(store, (max(data_start, at - MAX_BASELINE), at), view)
                or metric_step(store, (data_start, end + END_STEP), view))
        end = min(end, at + METRIC_WINDOW_STEPS * step) if step else end
    else:
        end = _with_closing_samples(store, ranges, at, (max(data_start, at - MAX_BASELINE), end))
        if given:
            first_sample = _first_sample_after(store, ranges, at, data_start)
            end = max(end, first_sample)
    window = (at, min(end + END_STEP, at + MAX_WINDOW))
    start = max(data_start, at - MAX_BASELINE)
    rule = (f"known onset: every sample before {iso_z(at)}"
            + (f" (the last {MAX_BASELINE.total_seconds() / 3600:g} h)" if start > data_start else " (from the start "
               "of the data)"))
    return KnownWindow(window, (start, at), rule, first_sample)


def _first_sample_after(store: Any, ranges: dict[str, tuple[datetime, datetime]], at: datetime,
                        data_start: datetime) -> datetime:
    """The first metric sample that measures mostly what came after `at` (taken half a step or more after it; a
    sample holds the step before its time), where the metrics run that far: a given start's window holds at least
    it, whatever the logs and traces cover (a minute's file ending 6 s after the start left the window no such
    sample, and a CPU at 100% from the next minute on unseen). `at` when there is none."""
    if "metrics" not in ranges or ranges["metrics"][1] <= at:
        return at
    step = metric_step(store, (max(data_start, at - MAX_BASELINE), at))
    if step is None:
        return at
    first = store.fetch("SELECT min(ts) AS first FROM metrics "
                        f"WHERE {in_span('ts', (at + step / 2, at + step * 1.5))}").to_pylist()[0]["first"]
    return first or at


def _why_not_a_start(at: datetime, data_start: datetime) -> str:
    """Why `at` cannot start a known incident: no data after it to examine, or none before it for a baseline."""
    if at > data_start:
        return "it must not lie after the data's last sample: there is nothing after it to examine"
    return "it must lie after the data's first sample: the baseline is the data before it"


def _with_closing_samples(store: Any, ranges: dict[str, tuple[datetime, datetime]], at: datetime,
                          span: Span) -> datetime:
    """The end of `span` (the stretch every source covers, from the baseline's start), moved on to take in the
    metric samples that measure the window from `at` to it: a sample stamped at t holds the step before t (a rate,
    an average, a percentile over the scrape interval), so one stamped less than half a step after the logs and
    traces end measures mostly what they cover (Nezha's CPU sampled 9 s after a minute's log file ends). Only where
    they cover half a step after `at` or more: then every such sample's step lies mostly after `at` too, whatever
    second each series is sampled at. An alert time taken as the start 54 s into a minute is not: the sample at :09
    measures mostly what came before the alert, and says nothing of a change after it."""
    end = span[1]
    if "metrics" not in ranges or ranges["metrics"][1] <= end:
        return end
    step = metric_step(store, span)
    if step is None or end - at < step / 2:
        return end
    last = store.fetch(f"SELECT max(ts) AS last FROM metrics WHERE ts > {sql_ts(end)} "
                       f"AND ts < {sql_ts(end + step / 2)}").to_pylist()[0]["last"]
    return last or end


def window_end(store: Any, window: Span, first_sample: datetime | None) -> str:
    """Why a known onset's window ends where it does (`known_window`, whose `first_sample` it takes): its longest
    span, the metric samples it keeps when the metrics are the shortest source, the first metric sample after a given
    start where the logs and traces end too soon to reach one, or the end of the stretch every source covers (and the
    metric samples it takes in after it, `_with_closing_samples`)."""
    at, end = window
    if end - at >= MAX_WINDOW:
        return f"{MAX_WINDOW.total_seconds() / 3600:g} h after the start, the longest window examined"
    ranges = store.view_ranges()
    covered = _covered_end(ranges, at, store.time_range()[1])
    if end - END_STEP < covered:
        return f"{METRIC_WINDOW_STEPS} metric samples after the start, the longest window the metrics alone give"
    # the sources that end where the stretch every source covers does, while others run on (a day of metrics beside
    # a minute of logs and traces): "the end of the data" would say there was nothing after it. Not every source
    # ending before the window's end: past a closing metric sample, traces that end 5 s after the logs are no
    # shortest source
    spoken = {view: SOURCE_WORDS.get(view, view) for view, (_, last) in ranges.items() if view != "events"}
    ending = [view for view in spoken if at <= ranges[view][1] < covered + END_STEP]
    if ending and len(ending) < len(spoken):
        plural = "s" if len(ending) > 1 else ""
        if first_sample is not None and covered < first_sample == end - END_STEP:
            # every source's name is a plural noun (logs, traces, call metrics)
            return (f"the first metric sample that measures the time after the start: the "
                    f"{listed([spoken[view] for view in ending])} end {_after(covered - at)} after the start and say "
                    f"nothing of the rest")
        closing = (", and the metric samples taken within half a step after it, which measure the stretch before them"
                   if end - END_STEP > covered else "")
        return f"the end of the {listed([spoken[view] for view in ending])}, the shortest source{plural}{closing}"
    return "the end of the data"


def _after(delta: timedelta) -> str:
    """`45 s`, `1.5 min`: how long after the start a source ends."""
    seconds = delta.total_seconds()
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.1f} min"


def _covered_end(ranges: dict[str, tuple[datetime, datetime]], at: datetime, data_end: datetime) -> datetime:
    """The end of the shortest source that runs past `at`: the stretch every source covers. Events (deploys,
    config changes) are sparse, so where their list ends says nothing about coverage."""
    ends = [hi for view, (_, hi) in ranges.items() if view != "events" and hi >= at]
    return min(ends) if ends else data_end


def metric_step(store: Any, span: Span, view: str = "metrics") -> timedelta | None:
    """The typical sampling step in `span` of the metrics (or of another `AGGREGATE_SERIES` view): the median over
    series of each one's mean gap, read from the span's last `STEP_READ` where a series has two samples there."""
    recent = (max(span[0], span[1] - STEP_READ), span[1])
    return _step_in(store, recent, view) or (_step_in(store, span, view) if recent != span else None)


def _step_in(store: Any, span: Span, view: str) -> timedelta | None:
    rows = f"(SELECT * FROM {view} WHERE {in_span('ts', span)})"
    row = store.fetch(sampling_step_sql(rows, AGGREGATE_SERIES[view])).to_pylist()[0]
    return timedelta(seconds=float(row["step"])) if row["step"] else None


def known_onset_detection(
    store: Any, at: datetime, undetected: str | None = None, alert_at: datetime | None = None
) -> tuple[DetectionResult, Span, str, tuple[list[MetricShift], list[Evidence]]]:
    """The incident as the caller knows it, as a detection result: window `[at, end]`, the metric series that moved
    in it against everything before `at` (strongest first), the baseline with its rule, and the metric shifts it
    read (`metric_shifts` over that window and baseline, so that explaining the window need not read them again).

    `detected` is true even when no metric moved: the caller says there is an incident (logs or traces may hold
    it). `undetected`: why detection found no window to explain at `at`, when `at` is taken as the start for that
    reason (an alert time, `--onset detect`) rather than given as the start (`--onset at`); `alert_at`: that alert
    time, when `at` lies minutes before it (nothing after the alert time itself could be explained)."""
    window, baseline, rule, first_sample = known_window(store, at, given=undetected is None)
    shifts, shift_evidence = metric_shifts(store, window, baseline)
    moved = [s for s in shifts if s.significant]
    series = [_series_shift(s, at) for s in moved]
    peak = incident_peak(moved)
    incident = IncidentWindow(start=window[0], end=window[1], peak=peak or at,
                              severity=round(sum(min(abs(s.shift), 50.0) for s in moved), 3), series=series)
    sql = metric_shift_sql(window, baseline) if store.has("metrics") else "-- no metrics: the window is the known onset"
    start = (f"the incident starts at {iso_z(at)} (given)" if undetected is None
             else f"{iso_z(at)} taken as the start (the alert time given: no window detected there)" if alert_at is None
             else f"{iso_z(at)} taken as the start, {minutes_before(at, alert_at)} before the alert time "
                  f"{iso_z(alert_at)} (no window detected there, and nothing after it could be explained)")
    evidence = Evidence.make(
        "detection",
        f"{KNOWN_ONSET}: {start}; {len(series)} series moved after it",
        sql,
        {"window": {"start": iso_z(window[0]), "end": iso_end(window[1])}, "window_rule": WINDOW_RULE,
         "window_end": window_end(store, window, first_sample),
         "baseline_rule": rule, **({"undetected": undetected} if undetected else {}),
         "series": [{"series": s.series, "direction": s.direction, "shift": round(s.shift, 2),
                     "onset": iso_z(s.onset)} for s in series[:SERIES_CAP]],
         "series_cut": max(0, len(series) - SERIES_CAP)},
    )
    detection = DetectionResult(
        detector=KNOWN_ONSET, detected=True, window=incident, baseline_window=baseline, windows=[incident],
        series_checked=len(shifts), evidence=[evidence], undetected=undetected, alert_at=alert_at,
    )
    return detection, baseline, rule, (shifts, shift_evidence)


def minutes_before(start: datetime, alert_at: datetime) -> str:
    """How long before the alert time a start taken before it lies, in words ("2 min")."""
    return f"{(alert_at - start).total_seconds() / 60:g} min"


def incident_peak(moved: list[MetricShift]) -> datetime | None:
    """When the series that moved furthest peaked, of those the traces bear out: a latency percentile its traced
    calls contradict (a client's p99 at 286 s where its 60 calls took at most 4.31 ms) says when a histogram bucket
    filled, not when the incident was at its worst; one no traced call covers is taken only when every shift is of
    these two kinds, and a contradicted one only when all are."""
    trusted = [s for s in moved if not s.not_borne_out and not s.unchecked]
    unconfirmed = [s for s in moved if not s.not_borne_out]
    candidates = trusted or unconfirmed or moved
    return max(candidates, key=lambda s: abs(s.peak_shift)).peak_at if candidates else None


def _series_shift(shift: MetricShift, at: datetime) -> SeriesShift:
    """A before/after shift as a detection series; an onset found in the margin before `at` counts from `at`."""
    onset = max(shift.onset or at, at)
    return SeriesShift(series=shift.series, direction=shift.direction, baseline=shift.baseline, peak=shift.peak,
                       shift=shift.shift, onset=onset, peak_at=shift.peak_at or onset,
                       pod=shift.pod if shift.on_pod else None)
