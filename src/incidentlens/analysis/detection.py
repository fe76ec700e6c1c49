"""Incident detection: the robust detector's numpy core for one series, and `detect` over the store's series.

Per series (`detect_points`): a robust baseline that the incident cannot contaminate (`baseline.py`), a robust score
`(value - expected) / scale`, hysteresis (a window opens at `open_threshold` and extends while the score stays past
`extend_threshold`, so a ramp is covered from its onset to its recovery: the edges are where the data leaves and
rejoins its baseline), nearby runs merged, and a minimum sustained duration so one spike is not an incident.

Over many series (`detect`): spans of all `service/metric` series are merged where they overlap into incident
windows; a window needs two series moving together, or one series far past the bar for a sustained time.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
from pydantic import BaseModel, Field

from incidentlens.analysis.baseline import fit_baseline
from incidentlens.analysis.evidence import Evidence
from incidentlens.analysis.periods import sql_in
from incidentlens.analysis.points import PreparedSeries, SeriesDetection, Span, prepare_series, runs
from incidentlens.analysis.seed_zscore import seed_points
from incidentlens.errors import InputError


@dataclass(frozen=True)
class RobustSettings:
    open_threshold: float = 5.0  # robust score that opens a window
    extend_threshold: float = 2.5  # robust score that keeps it open
    min_sustained_steps: int = 5  # points past extend_threshold a window needs (one spike is not an incident)
    merge_gap_steps: int = 5  # runs closer than this many steps are one window
    smoothness: timedelta = timedelta(hours=12)  # the baseline does not follow changes faster than this
    min_points: int = 30  # shorter series have no baseline
    seasonal: bool = True  # over 3+ days, try a time-of-day profile (baseline.py)
    # With a reference period (see opening_bar); 0 turns each off:
    tail_factor: float = 0.0  # open only past this x the reference's largest |score|
    history_factor: float = 0.0  # ... and past this x the largest |score| of every earlier point


DEFAULT_SETTINGS = RobustSettings()


def detect_points(
    ts: np.ndarray,
    values: np.ndarray,
    *,
    reference_end: np.datetime64 | None = None,
    settings: RobustSettings = DEFAULT_SETTINGS,
) -> SeriesDetection:
    """Detect anomalous windows in one series (timestamps, values); never raises on bad data, gives a reason.

    `reference_end`: measure the noise scale on the points before it only (e.g. before an alert, or NAB's
    probationary period), so the period under test does not set its own yardstick.
    """
    series = prepare_series(ts, values)
    problem = unusable_reason(series, settings)
    if problem:
        return SeriesDetection(series=series, reason=problem)
    t_ns = series.t.astype(np.int64)
    reference = None
    if reference_end is not None:
        reference = t_ns < np.datetime64(reference_end, "ns").astype(np.int64)
    smoothness_ns = int(settings.smoothness / timedelta(microseconds=1)) * 1000
    base = fit_baseline(t_ns, series.y, smoothness_ns, reference, seasonal=settings.seasonal)
    scale = max(base.scale, _scale_floor(series.y))
    score = (series.y - base.expected) / scale
    bar = opening_bar(score, reference, settings)
    spans = find_spans(score, series, base.expected, settings, bar)
    reason = None if spans else f"no sustained deviation past {float(bar.min()):g} robust σ"
    return SeriesDetection(series=series, spans=spans, score=score, baseline=base.expected, reason=reason)


def opening_bar(score: np.ndarray, reference: np.ndarray | None, settings: RobustSettings) -> np.ndarray:
    """Per point, the |score| that opens a window: `open_threshold`, raised by the series' own history when a
    reference period is given: past `tail_factor` x the largest |score| of the reference, and past
    `history_factor` x the largest |score| of every earlier point (what a heavy-tailed series already did, it may
    do again: only what comes close to a record is news)."""
    bar = np.full(len(score), settings.open_threshold)
    if reference is None or reference.sum() < settings.min_points:
        return bar
    magnitude = np.abs(score)
    if settings.tail_factor > 0:
        bar = np.maximum(bar, settings.tail_factor * float(magnitude[reference].max()))
    if settings.history_factor > 0:
        record_before = np.concatenate(([0.0], np.maximum.accumulate(magnitude)[:-1]))
        bar = np.maximum(bar, settings.history_factor * record_before)
    return bar


def unusable_reason(series: PreparedSeries, settings: RobustSettings) -> str | None:
    """Why a series cannot be scored (too short for a baseline, constant), or None."""
    if len(series.y) < settings.min_points:
        return f"too short for a baseline: {len(series.y)} points, need {settings.min_points}"
    if np.ptp(series.y) == 0:
        return f"constant series: every value is {series.y[0]:g}"
    return None


def _scale_floor(y: np.ndarray) -> float:
    """A floor on the noise scale so a near-constant series does not turn rounding into huge scores."""
    return 1e-3 * float(np.median(np.abs(y - np.median(y)))) + 1e-9 * float(np.max(np.abs(y))) + 1e-12


def find_spans(
    score: np.ndarray, series: PreparedSeries, expected: np.ndarray, settings: RobustSettings, bar: np.ndarray
) -> list[Span]:
    """Hysteresis windows on the signed score, per direction, merged across short gaps, sustained only."""
    spans = [
        span
        for direction, past_extend in (("up", score >= settings.extend_threshold),
                                       ("down", score <= -settings.extend_threshold))
        for span in _direction_spans(score, past_extend, direction, series, expected, settings, bar)
    ]
    return sorted(spans, key=lambda span: span.start)


def _direction_spans(
    score: np.ndarray,
    past_extend: np.ndarray,
    direction: str,
    series: PreparedSeries,
    expected: np.ndarray,
    settings: RobustSettings,
    bar: np.ndarray,
) -> list[Span]:
    starts, ends = runs(past_extend)
    if len(starts) == 0:
        return []
    starts, ends = _merge_close(starts, ends, series.t.astype(np.int64), settings.merge_gap_steps * series.step_ns)
    sustained = np.concatenate(([0], np.cumsum(past_extend)))
    opened = np.concatenate(([0], np.cumsum(np.abs(score) >= bar)))
    keep = ((sustained[ends + 1] - sustained[starts]) >= settings.min_sustained_steps) & (
        opened[ends + 1] - opened[starts] > 0
    )
    return [
        _span(int(s), int(e), direction, score, series, expected, int(opened[e + 1] - opened[s]))
        for s, e in zip(starts[keep], ends[keep], strict=True)
    ]


def _merge_close(
    starts: np.ndarray, ends: np.ndarray, t_ns: np.ndarray, max_gap_ns: int
) -> tuple[np.ndarray, np.ndarray]:
    """Join consecutive runs whose gap (end of one to start of the next) is at most max_gap_ns."""
    gap = t_ns[starts[1:]] - t_ns[ends[:-1]]
    new_group = np.concatenate(([True], gap > max_gap_ns))
    return starts[new_group], ends[np.concatenate((new_group[1:], [True]))]


def _span(start: int, end: int, direction: str, score: np.ndarray, series: PreparedSeries,
          expected: np.ndarray, strong_points: int) -> Span:
    peak = start + int(np.argmax(np.abs(score[start:end + 1])))
    return Span(start=start, end=end, peak=peak, direction=direction, baseline=float(expected[peak]),
                peak_value=float(series.y[peak]), shift=float(score[peak]), strong_points=strong_points)


# ---------------------------------------------------------------------------------------------------------------
# Many series from the store: per-series spans combined into incident windows.
# ---------------------------------------------------------------------------------------------------------------

DETECTORS = ("robust", "seed-zscore")
MIN_AGREEING_SERIES = 2  # a window one series alone moved needs a strong sustained shift instead
STRONG_SUSTAINED_STEPS = 15  # ... at least this many points past the open threshold
SHIFT_CAP = 50.0  # one enormous score should not outweigh many series moving together
SERIES_CAP = 20  # evidence lists at most this many series


class SeriesShift(BaseModel):
    """How one series moved inside an incident window."""

    series: str
    direction: str
    baseline: float
    peak: float
    shift: float
    onset: datetime
    peak_at: datetime


class IncidentWindow(BaseModel):
    start: datetime  # first anomalous sample
    end: datetime  # exclusive: one step after the last anomalous sample
    peak: datetime
    severity: float  # sum over moved series of |robust shift| capped at SHIFT_CAP
    series: list[SeriesShift]


class DetectionResult(BaseModel):
    detector: str
    detected: bool
    reason: str | None = None
    window: IncidentWindow | None = None  # the incident: the most severe window, or the one anchored by `at`
    baseline_window: tuple[datetime, datetime] | None = None
    windows: list[IncidentWindow] = Field(default_factory=list)  # every qualifying window, most severe first
    series_checked: int = 0
    notes: list[str] = Field(default_factory=list)  # data cleaning and unusable series, one line each
    evidence: list[Evidence] = Field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """The `detected`, `reason`, `incident_window`, `baseline_window`, `peak` and `detection` blocks of
        analysis.json (docs/architecture.md), plus the evidence records they cite."""
        window = self.window
        return {
            "detected": self.detected,
            "reason": self.reason,
            "incident_window": {"start": iso_z(window.start), "end": iso_z(window.end)} if window else None,
            "baseline_window": (
                {"start": iso_z(self.baseline_window[0]), "end": iso_z(self.baseline_window[1])}
                if self.baseline_window else None
            ),
            "peak": iso_z(window.peak) if window else None,
            "detection": {
                "detector": self.detector,
                "first_anomalous": (iso_z(min((s.onset for s in window.series), default=window.start)) if window
                                    else None),
                "series": [_shift_dict(s) for s in window.series] if window else [],
                "windows": [_window_summary(w) for w in self.windows],
                "series_checked": self.series_checked,
                "notes": self.notes,
                "evidence": [e.id for e in self.evidence],
            },
            "evidence": [e.to_dict() for e in self.evidence],
        }


def parse_time(text: str, option: str = "--at") -> datetime:
    """A user's time (ISO-8601; a zone is converted, none means UTC) as naive UTC."""
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        example = "2024-05-01T16:00:00Z"
        raise InputError(f"{option} {text!r}: cannot parse as a time (use ISO-8601, e.g. {example})") from None
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    return moment


def iso_z(moment: datetime) -> str:
    """ISO-8601 UTC with a Z, to the second."""
    return moment.replace(microsecond=0).isoformat() + "Z"


def _shift_dict(shift: SeriesShift) -> dict[str, Any]:
    return {"series": shift.series, "direction": shift.direction, "baseline": _round(shift.baseline),
            "peak": _round(shift.peak), "shift": round(shift.shift, 2), "onset": iso_z(shift.onset),
            "peak_at": iso_z(shift.peak_at)}


def _window_summary(window: IncidentWindow) -> dict[str, Any]:
    return {"start": iso_z(window.start), "end": iso_z(window.end), "peak": iso_z(window.peak),
            "severity": round(window.severity, 2), "series": [s.series for s in window.series][:SERIES_CAP]}


def _round(value: float) -> float:
    return float(f"{value:.6g}")


def series_sql(metrics: list[str] | None = None) -> str:
    """The one query that reads every series: one row per series and timestamp (duplicates averaged, NaN as NULL)."""
    where = ""
    if metrics:
        where = f"WHERE metric IN {sql_in(metrics)} "
    return (
        "SELECT service || '/' || metric AS series, ts, "
        "avg(value) FILTER (WHERE NOT isnan(value)) AS value, count(*) AS n_rows "
        f"FROM metrics {where}GROUP BY ALL ORDER BY series, ts"
    )


@dataclass(frozen=True)
class _Series:
    name: str
    t: np.ndarray
    y: np.ndarray
    duplicates: int


def detect(store: Any, metrics: list[str] | None = None, at: datetime | None = None,
           detector: str = "robust") -> DetectionResult:
    """Find incident windows over every `service/metric` series of the store's `metrics` view.

    robust: per-series spans (`detect_points`) merged across series into windows; a window counts when at least
    two series moved, or one moved strongly for a sustained time. seed-zscore: the tutorial's rule, the longest
    flagged run over all series. `at` (naive UTC) anchors on an alert: the window containing it or nearest to it,
    and the noise scale is measured before it.
    """
    if detector not in DETECTORS:
        raise InputError(f"unknown detector '{detector}': choose one of {', '.join(DETECTORS)}")
    sql = series_sql(metrics)
    if not store.has("metrics"):
        return _nothing(detector, "no metrics were loaded: detection needs a metrics source", sql, [], 0)
    all_series = _read_series(store, sql)
    if metrics:
        _check_metric_names(metrics, all_series)
    if not all_series:
        return _nothing(detector, "the metrics view has no rows", sql, [], 0)
    reference_end = np.datetime64(at, "ns") if at is not None else None
    detections = {s.name: _run_detector(detector, s, reference_end) for s in all_series}
    notes = _cleaning_notes(all_series, detections)
    if detector == "seed-zscore":
        windows = _seed_windows(detections)
    else:
        windows = _robust_windows(detections, _merge_gap_ns(detections))
    if not windows:
        return _nothing(detector, _why_nothing(detections), sql, notes, len(all_series))
    chosen = _anchor(windows, at) if at is not None else windows[0]
    data_start = min(d.series.t[0] for d in detections.values() if len(d.series.t))
    data_end = max(d.series.t[-1] for d in detections.values() if len(d.series.t))
    baseline_window = _baseline_window(chosen, _to_datetime(data_start), _to_datetime(data_end))
    evidence = Evidence.make(
        "detection",
        f"{detector}: {len(chosen.series)} series moved between {iso_z(chosen.start)} and {iso_z(chosen.end)}",
        sql,
        {"window": {"start": iso_z(chosen.start), "end": iso_z(chosen.end), "peak": iso_z(chosen.peak)},
         "severity": round(chosen.severity, 2), "series": [_shift_dict(s) for s in chosen.series[:SERIES_CAP]],
         "series_cut": max(0, len(chosen.series) - SERIES_CAP), "windows_found": len(windows),
         "series_checked": len(all_series), "notes": notes[:SERIES_CAP]},
    )
    return DetectionResult(detector=detector, detected=True, window=chosen, baseline_window=baseline_window,
                           windows=windows, series_checked=len(all_series), notes=notes, evidence=[evidence])


def _read_series(store: Any, sql: str) -> list[_Series]:
    table = store.fetch(sql)
    if table.num_rows == 0:
        return []
    names = table.column("series").combine_chunks().dictionary_encode()
    codes = names.indices.to_numpy(zero_copy_only=False)
    t = table.column("ts").to_numpy().astype("datetime64[ns]")
    y = table.column("value").to_numpy(zero_copy_only=False).astype(np.float64)
    rows = table.column("n_rows").to_numpy(zero_copy_only=False)
    bounds = np.concatenate(([0], np.flatnonzero(np.diff(codes)) + 1, [len(codes)]))
    dictionary = names.dictionary.to_pylist()
    return [
        _Series(name=dictionary[codes[a]], t=t[a:b], y=y[a:b], duplicates=int((rows[a:b] > 1).sum()))
        for a, b in itertools.pairwise(bounds)
    ]


def _check_metric_names(metrics: list[str], all_series: list[_Series]) -> None:
    found = {s.name.rsplit("/", 1)[-1] for s in all_series}
    missing = [m for m in metrics if m not in found]
    if missing:
        raise InputError(f"metrics: no series for metric {', '.join(missing)}")


def _run_detector(detector: str, series: _Series, reference_end: np.datetime64 | None) -> SeriesDetection:
    if detector == "seed-zscore":
        return seed_points(series.t, series.y)
    return detect_points(series.t, series.y, reference_end=reference_end)


def _cleaning_notes(all_series: list[_Series], detections: dict[str, SeriesDetection]) -> list[str]:
    notes = []
    for source in all_series:
        detection = detections[source.name]
        cleaning = detection.series.notes()
        if source.duplicates:
            cleaning.insert(0, f"{source.duplicates} duplicated timestamps averaged")
        if detection.score is None and detection.reason:
            cleaning.append(f"skipped: {detection.reason}")
        if cleaning:
            notes.append(f"{source.name}: " + "; ".join(cleaning))
    return notes


def _merge_gap_ns(detections: dict[str, SeriesDetection]) -> int:
    steps = [d.series.step_ns for d in detections.values() if d.series.step_ns > 0]
    return DEFAULT_SETTINGS.merge_gap_steps * int(np.median(steps)) if steps else 0


Timed = tuple[int, int, str, Span]  # (start ns, exclusive end ns, series name, span)


def _robust_windows(detections: dict[str, SeriesDetection], merge_gap_ns: int) -> list[IncidentWindow]:
    """Incident windows: cores where two or more series are anomalous at once (or one far past the bar for a
    sustained time), each widened to the spans that touch it, so the first series to move sets the onset and the
    last to recover the end, while single-series spans strung one after another do not chain incidents together."""
    spans = sorted((_timed(name, d, s) for name, d in detections.items() for s in d.spans), key=lambda i: i[0])
    if not spans:
        return []
    groups = [
        [item for item in spans if item[0] <= core_end + merge_gap_ns and item[1] >= core_start - merge_gap_ns]
        for core_start, core_end in _cores(spans, merge_gap_ns)
    ]
    windows = [_window(group, detections) for group in _merge_overlapping(groups)]
    return sorted(windows, key=lambda w: w.severity, reverse=True)


def _cores(spans: list[Timed], merge_gap_ns: int) -> list[tuple[int, int]]:
    """Intervals covered by at least MIN_AGREEING_SERIES spans at once, plus strong sustained single spans;
    merged across gaps up to merge_gap_ns."""
    times = np.array([item[0] for item in spans] + [item[1] for item in spans], dtype=np.int64)
    delta = np.concatenate((np.ones(len(spans)), -np.ones(len(spans))))
    order = np.lexsort((delta, times))  # at the same time, an end before a start: touching is not overlapping
    coverage = np.cumsum(delta[order])
    agreed_starts, agreed_ends = runs(coverage[:-1] >= MIN_AGREEING_SERIES)
    sorted_times = times[order]
    cores = list(zip(sorted_times[agreed_starts].tolist(), sorted_times[agreed_ends + 1].tolist(), strict=True))
    cores += [(item[0], item[1]) for item in spans if item[3].strong_points >= STRONG_SUSTAINED_STEPS]
    merged: list[tuple[int, int]] = []
    for core_start, core_end in sorted(cores):
        if merged and core_start <= merged[-1][1] + merge_gap_ns:
            merged[-1] = (merged[-1][0], max(merged[-1][1], core_end))
        else:
            merged.append((core_start, core_end))
    return merged


def _merge_overlapping(groups: list[list[Timed]]) -> list[list[Timed]]:
    """Groups whose extents overlap (they share spans) become one."""
    merged: list[list[Timed]] = []
    extent_end = None
    for group in sorted(groups, key=lambda g: min(item[0] for item in g)):
        group_start = min(item[0] for item in group)
        if merged and extent_end is not None and group_start < extent_end:
            known = {(item[2], item[0]) for item in merged[-1]}
            merged[-1].extend(item for item in group if (item[2], item[0]) not in known)
        else:
            merged.append(list(group))
        extent_end = max(item[1] for item in merged[-1])
    return merged


def _seed_windows(detections: dict[str, SeriesDetection]) -> list[IncidentWindow]:
    """The tutorial's rule: the longest flagged run over all series is the window (every run is kept, longest
    first); series moved are those flagged inside it."""
    timed = [_timed(name, d, s) for name, d in detections.items() for s in d.spans]
    by_length = sorted(timed, key=lambda item: item[1] - item[0], reverse=True)
    windows = []
    seen: set[tuple[int, int]] = set()
    for longest in by_length:
        if longest[:2] in seen:
            continue
        seen.add(longest[:2])
        group = [longest] + [item for item in timed
                             if item[2] != longest[2] and item[0] < longest[1] and item[1] > longest[0]]
        window = _window(group, detections)
        windows.append(window.model_copy(update={"start": _ns_to_datetime(longest[0]),
                                                 "end": _ns_to_datetime(longest[1])}))
        if len(windows) == SERIES_CAP:
            break
    return windows


def _timed(name: str, detection: SeriesDetection, span: Span) -> tuple[int, int, str, Span]:
    """(start ns, end ns, series name, span) for sorting and merging spans of different series.

    The end is exclusive: a sample at t stands for [t, t + step), so the window ends one step after its last
    anomalous sample (a one-sample span lasts one step, and windows compare with end-exclusive truth)."""
    t = detection.series.t
    end = int(t[span.end].astype(np.int64)) + detection.series.step_ns
    return int(t[span.start].astype(np.int64)), end, name, span


def _window(group: list[tuple[int, int, str, Span]], detections: dict[str, SeriesDetection]) -> IncidentWindow:
    """An incident window from the spans of one group: per series its strongest span and earliest onset."""
    strongest: dict[str, Span] = {}
    onset: dict[str, int] = {}
    for start_ns, _, name, span in group:
        if name not in strongest or abs(span.shift) > abs(strongest[name].shift):
            strongest[name] = span
        onset[name] = min(onset.get(name, start_ns), start_ns)
    shifts = [
        SeriesShift(series=name, direction=span.direction, baseline=span.baseline, peak=span.peak_value,
                    shift=span.shift, onset=_ns_to_datetime(onset[name]),
                    peak_at=_to_datetime(detections[name].series.t[span.peak]))
        for name, span in strongest.items()
    ]
    shifts.sort(key=lambda s: abs(s.shift), reverse=True)
    top = shifts[0]
    return IncidentWindow(
        start=_ns_to_datetime(min(g[0] for g in group)),
        end=_ns_to_datetime(max(g[1] for g in group)),
        peak=top.peak_at,
        severity=float(sum(min(abs(s.shift), SHIFT_CAP) for s in shifts)),
        series=shifts,
    )


def _anchor(windows: list[IncidentWindow], at: datetime) -> IncidentWindow:
    """The window containing `at`, else the nearest one (distance to its nearer edge)."""
    def distance(window: IncidentWindow) -> timedelta:
        if window.start <= at <= window.end:
            return timedelta(0)
        return min(abs(window.start - at), abs(window.end - at))
    return min(windows, key=distance)


def _baseline_window(
    window: IncidentWindow, data_start: datetime, data_end: datetime
) -> tuple[datetime, datetime] | None:
    """A comparison period as long as the incident (at least an hour) just before it; after it when the incident
    starts with the data; None when the incident covers all of it."""
    length = max(window.end - window.start, timedelta(hours=1))
    if window.start > data_start:
        return max(data_start, window.start - length), window.start
    if window.end < data_end:
        return window.end, min(data_end, window.end + length)
    return None


def _why_nothing(detections: dict[str, SeriesDetection]) -> str:
    usable = [d for d in detections.values() if d.score is not None]
    if not usable:
        reasons = sorted({d.reason for d in detections.values() if d.reason})
        return "no series could be scored: " + "; ".join(reasons[:3])
    if any(d.spans for d in usable):
        return (f"deviations in {sum(bool(d.spans) for d in usable)} of {len(usable)} series were short or isolated "
                f"(one series, under {STRONG_SUSTAINED_STEPS} points past the opening bar): not an incident")
    return f"no series deviated from its baseline for a sustained time ({len(usable)} series checked)"


def _nothing(detector: str, reason: str, sql: str, notes: list[str], checked: int) -> DetectionResult:
    evidence = Evidence.make("detection", f"{detector}: no incident found", sql,
                             {"reason": reason, "series_checked": checked, "notes": notes[:SERIES_CAP]})
    return DetectionResult(detector=detector, detected=False, reason=reason, series_checked=checked, notes=notes,
                           evidence=[evidence])


def _to_datetime(moment: np.datetime64) -> datetime:
    """numpy datetime64 -> naive UTC datetime (microseconds)."""
    return np.datetime64(moment, "us").astype(datetime)


def _ns_to_datetime(ns: int) -> datetime:
    return _to_datetime(np.datetime64(ns, "ns"))
