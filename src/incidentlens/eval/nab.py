"""Score the detectors on the Numenta Anomaly Benchmark (NAB): NAB's own score and event-level measures.

**Halves.** NAB's files are split in two, fixed here (`split_of`): inside each category, files sorted by name, the
1st, 3rd, 5th ... are the *shaping* half (where the detector's settings and NAB's threshold were chosen) and the
2nd, 4th, 6th ... the *held-out* half (reported, never tuned on).

**Cadences.** Each file is scored at its native step (mostly 5 minutes), and resampled to 1 hour and to 1 day
(the mean of each step; a labelled window becomes the steps it touches), to show the result does not depend on the
sampling step.

**The detector under test** is the one `incidentlens detect --metrics series.csv` runs on one series without
`--at`: the same function (`detection.detect_series`), at the default settings or those of `--sensitivity`, with its
noise scale measured over the whole series, as a user gets it (the eval once measured it on NAB's first 15% only,
which no user's run does). The robust baseline is a smoother fitted over the whole series, so this is a
batch run, not NAB's streaming protocol: it sees the series' future when it fits the baseline.

**NAB score** (`nab_score.py`): per row an anomaly score: the window's strength (its peak robust score against the
bar) at the first row of each candidate window, 0 elsewhere; NAB's sweep over thresholds per profile, the threshold
chosen on the shaping half and applied to both halves; normalised to NAB's 0 (null detector) .. 100 (perfect).

**Event level** (at the detector's own bar, as `detect` reports): one detection per window the detector opens, at
its first row; a labelled window is found when a detection falls inside it; detections outside every window are
false alarms (those in the first 15% are not scored, nor are windows that end inside it, as NAB does); F1; false
alarms per day of scored data; detection delay = first detection in a found window minus the window's start.
Per file (JSON `event_by_file`): the same counts, when each false alarm opened and which windows were missed.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import numpy as np

from incidentlens.analysis.detection import DETECTORS, detect_series, settings_for
from incidentlens.analysis.points import SeriesDetection, Span
from incidentlens.errors import InputError
from incidentlens.eval.nab_score import (
    CostMatrix,
    ScoredFile,
    load_profiles,
    nab_score,
    optimise_threshold,
    sweep_file,
)

PROBATIONARY_FRACTION = 0.15
NS_PER_DAY = 86_400 * 10**9
NS_PER_MINUTE = 60 * 10**9
HALVES = ("shaping", "held-out")
CADENCES: dict[str, int | None] = {"native": None, "1h": 3600 * 10**9, "1d": NS_PER_DAY}

def split_of(keys: Iterable[str]) -> dict[str, str]:
    """{file key: "shaping" | "held-out"}: alternate files, sorted by name, inside each category."""
    by_category: dict[str, list[str]] = {}
    for key in sorted(keys):
        by_category.setdefault(key.split("/", 1)[0], []).append(key)
    return {key: HALVES[i % 2] for members in by_category.values() for i, key in enumerate(members)}


@dataclass
class SeriesScore:
    """One detector on one NAB series at one cadence (event level)."""

    name: str
    windows: int
    found: int
    detections: int
    false_alarms: int
    days: float
    delays_minutes: list[float] = field(default_factory=list)
    false_alarms_at: list[str] = field(default_factory=list)  # first row of each window opened outside the labels
    missed: list[tuple[str, str]] = field(default_factory=list)  # labelled windows (start, end) nothing opened in

    def detail(self) -> dict[str, object]:
        """This file's events, for finding what false alarms and misses have in common."""
        return {"file": self.name, "windows": self.windows, "found": self.found, "detections": self.detections,
                "false_alarms": self.false_alarms, "false_alarms_at": self.false_alarms_at, "missed": self.missed,
                "delays_minutes": [round(d, 1) for d in self.delays_minutes]}


@dataclass
class DetectorScore:
    """One detector over a set of files at one cadence: event-level counts and NAB's per-row view of them."""

    detector: str
    series: list[SeriesScore] = field(default_factory=list)
    swept: list[ScoredFile] = field(default_factory=list)

    @property
    def windows(self) -> int:
        return sum(s.windows for s in self.series)

    @property
    def found(self) -> int:
        return sum(s.found for s in self.series)

    @property
    def detections(self) -> int:
        return sum(s.detections for s in self.series)

    @property
    def false_alarms(self) -> int:
        return sum(s.false_alarms for s in self.series)

    @property
    def recall(self) -> float:
        return self.found / self.windows if self.windows else 0.0

    @property
    def precision(self) -> float:
        return (self.detections - self.false_alarms) / self.detections if self.detections else 0.0

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0

    @property
    def false_alarms_per_day(self) -> float:
        days = sum(s.days for s in self.series)
        return self.false_alarms / days if days else 0.0

    @property
    def mean_delay_minutes(self) -> float | None:
        delays = [d for s in self.series for d in s.delays_minutes]
        return float(np.mean(delays)) if delays else None

    def summary(self) -> dict[str, object]:
        delay = self.mean_delay_minutes
        return {
            "detector": self.detector, "series": len(self.series), "windows": self.windows, "found": self.found,
            "recall": round(self.recall, 4), "detections": self.detections, "false_alarms": self.false_alarms,
            "precision": round(self.precision, 4), "f1": round(self.f1, 4),
            "false_alarms_per_day": round(self.false_alarms_per_day, 4),
            "mean_delay_minutes": round(delay, 1) if delay is not None else None,
        }


@dataclass
class NabReport:
    data_dir: Path
    split: dict[str, str]
    # (cadence, half) -> one DetectorScore per detector
    scores: dict[tuple[str, str], list[DetectorScore]]
    profiles: dict[str, CostMatrix]
    sensitivity: str | float | None = None  # `--sensitivity` the robust detector ran at (None: medium, the default)

    def nab_scores(self, cadence: str = "native") -> dict[str, dict[str, dict[str, dict[str, float]]]]:
        """{detector: {half: {profile: {score, threshold, windows found...}}}}: thresholds chosen on the shaping
        half (NAB's optimisation, per profile) and applied to both halves."""
        shaping = {s.detector: s for s in self.scores.get((cadence, "shaping"), [])}
        held_out = {s.detector: s for s in self.scores.get((cadence, "held-out"), [])}
        table: dict[str, dict[str, dict[str, dict[str, float]]]] = {}
        for detector, shaped in shaping.items():
            table[detector] = {"shaping": {}, "held-out": {}}
            for profile, cost in self.profiles.items():
                threshold = optimise_threshold(shaped.swept, cost)
                for half, score in (("shaping", shaped), ("held-out", held_out.get(detector))):
                    if score is None:
                        continue
                    result = nab_score(score.swept, threshold, cost, profile)
                    table[detector][half][profile] = {
                        "score": round(result.normalized, 2), "threshold": round(threshold, 3),
                        "windows": result.windows, "windows_found": result.true_positives,
                        "false_positive_rows": result.false_positive_rows}
        return table

    def to_dict(self) -> dict[str, object]:
        nab = self.nab_scores("native")
        return {
            "data": str(self.data_dir),
            "split": {half: sorted(k for k, h in self.split.items() if h == half) for half in HALVES},
            "split_rule": "inside each category, files sorted by name: 1st, 3rd, ... shaping; 2nd, 4th, ... held-out",
            "sensitivity": "medium" if self.sensitivity is None else self.sensitivity,
            "nab_score": {detector: by_half["held-out"] for detector, by_half in nab.items()},
            "nab_score_by_half": nab,
            "nab_method": "NAB's sweeper rules (windows, scaled sigmoid over relative position, profile weights from "
                          "config/profiles.json, 15% probation capped at 750 rows); one threshold per profile, "
                          "chosen on the shaping half, applied to both halves",
            "event_method": "event-level: a window is found when a detection (the first row of a window the "
                            "detector opens) falls inside it; detections outside every window are false alarms; the "
                            "first 15% of each series is probationary (not scored: neither detections nor windows "
                            "that end inside it); each detector runs as `incidentlens detect` runs it on one series "
                            "without --at (the robust detector's noise scale over the whole series)",
            "event": {
                f"{cadence}/{half}": [s.summary() for s in scores] for (cadence, half), scores in self.scores.items()
            },
            "event_by_file": {
                f"{cadence}/{half}": {s.detector: [series.detail() for series in s.series] for s in scores}
                for (cadence, half), scores in self.scores.items()
            },
            "nab_score_by_cadence": {cadence: self.nab_scores(cadence) for cadence in self.cadences()
                                     if cadence != "native"},
        }

    def cadences(self) -> list[str]:
        return list(dict.fromkeys(cadence for cadence, _ in self.scores))


def evaluate_nab(
    data_dir: Path,
    detectors: Iterable[str] = ("robust", "seed-zscore"),
    only: Iterable[str] | None = None,
    cadences: Iterable[str] = ("native",),
    sensitivity: str | float | None = None,
) -> NabReport:
    """Run each detector over every labelled NAB series (or the `only` keys, e.g. 'realKnownCause/nyc_taxi.csv')
    at each cadence, kept apart by half, as `incidentlens detect [--sensitivity S]` runs it on one series."""
    settings_for(sensitivity)  # a bad value stops here, before any file is read
    labels = load_labels(data_dir)
    profiles = load_profiles(data_dir)
    keys = sorted(labels) if only is None else list(only)
    unknown = [k for k in keys if k not in labels]
    if unknown:
        raise InputError(f"{data_dir / 'labels' / 'combined_windows.json'}: no labels for {', '.join(unknown)}")
    chosen = list(detectors)
    for name in chosen:
        if name not in DETECTORS:
            raise InputError(f"unknown detector '{name}': choose from {', '.join(DETECTORS)}")
    for cadence in cadences:
        if cadence not in CADENCES:
            raise InputError(f"unknown cadence '{cadence}': choose from {', '.join(CADENCES)}")
    split = split_of(labels)
    scores: dict[tuple[str, str], list[DetectorScore]] = {}
    window_ids = 0
    for key in keys:
        native_ts, native_values = load_series(data_dir / "data" / key)
        for cadence in cadences:
            ts, values, windows = resample(native_ts, native_values, labels[key], CADENCES[cadence])
            bucket = scores.setdefault((cadence, split[key]), [DetectorScore(detector=name) for name in chosen])
            for score in bucket:
                found = detect_series(ts, values, detector=score.detector, sensitivity=sensitivity)
                score.series.append(score_series(key, ts, windows, found))
                score.swept.append(sweep_file(key, ts, anomaly_rows(found, ts), windows, window_ids))
            window_ids += len(windows)
    return NabReport(data_dir=data_dir, split={k: split[k] for k in keys}, scores=scores, profiles=profiles,
                     sensitivity=sensitivity)


def load_labels(data_dir: Path) -> dict[str, np.ndarray]:
    """NAB's combined windows: {file key: array of (start, end) datetime64[ns] pairs}."""
    path = data_dir / "labels" / "combined_windows.json"
    if not path.is_file():
        raise InputError(f"{path}: not found (expected the NAB layout: data/, labels/combined_windows.json)")
    raw = json.loads(path.read_text())
    return {key: np.array(pairs, dtype="datetime64[ns]").reshape(-1, 2) for key, pairs in raw.items()}


def load_series(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """One NAB csv (`timestamp,value`) as (datetime64[ns], float64) arrays."""
    if not path.is_file():
        raise InputError(f"{path}: not found")
    table = duckdb.sql(
        f"SELECT CAST(timestamp AS TIMESTAMP) AS ts, CAST(value AS DOUBLE) AS value "
        f"FROM read_csv('{path.as_posix()}', header = true) ORDER BY ts"
    ).to_arrow_table()
    return (table.column("ts").to_numpy().astype("datetime64[ns]"),
            table.column("value").to_numpy(zero_copy_only=False).astype(np.float64))


def resample(ts: np.ndarray, values: np.ndarray, windows: np.ndarray,
             step_ns: int | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The series at a coarser step (the mean of each step, stamped at its start) and its windows mapped to the steps
    they touch; unchanged when `step_ns` is None."""
    if step_ns is None:
        return ts, values, windows
    t = ts.astype(np.int64)
    bucket = t - t % step_ns
    starts, first = np.unique(bucket, return_index=True)
    sums = np.add.reduceat(np.nan_to_num(values), first)
    counts = np.add.reduceat((~np.isnan(values)).astype(np.int64), first)
    with np.errstate(invalid="ignore", divide="ignore"):
        means = np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)
    edges = windows.astype("datetime64[ns]").astype(np.int64)
    mapped = (edges - edges % step_ns).astype("datetime64[ns]")
    return starts.astype("datetime64[ns]"), means, mapped


def anomaly_rows(found: SeriesDetection, ts: np.ndarray) -> np.ndarray:
    """NAB's per-row anomaly score: each candidate window's strength at its first row, 0 elsewhere (the detector
    opens a window where the strength reaches its bar; NAB's threshold sweep plays the part of that bar)."""
    scores = np.zeros(len(ts))
    spans = found.candidates or found.spans
    if spans:
        rows = np.searchsorted(ts, found.series.t[[span.start for span in spans]])
        np.maximum.at(scores, rows, [_strength(span) for span in spans])
    return scores


def _strength(span: Span) -> float:
    return span.strength if span.strength > 0 else abs(span.shift)


def score_series(name: str, ts: np.ndarray, windows: np.ndarray, found: SeriesDetection) -> SeriesScore:
    """Event-level counts of one detector's windows on one series against its labelled windows."""
    probation_end = ts[int(PROBATIONARY_FRACTION * len(ts))]
    windows = windows[windows[:, 1] >= probation_end]  # a window over before scoring starts cannot be found
    onsets = found.series.t[[span.start for span in found.spans]] if found.spans else np.array([], "datetime64[ns]")
    onsets = onsets[onsets >= probation_end]
    inside = (onsets[:, None] >= windows[None, :, 0]) & (onsets[:, None] <= windows[None, :, 1])
    found_windows = inside.any(axis=0)
    delays = [
        float((onsets[inside[:, w]].min() - windows[w, 0]).astype(np.int64)) / NS_PER_MINUTE
        for w in range(len(windows)) if inside[:, w].any()
    ]
    return SeriesScore(
        name=name, windows=len(windows), found=int(found_windows.sum()), detections=len(onsets),
        false_alarms=int((~inside.any(axis=1)).sum()),
        days=float((ts[-1] - probation_end).astype(np.int64)) / NS_PER_DAY, delays_minutes=delays,
        false_alarms_at=[_minute(t) for t in onsets[~inside.any(axis=1)]],
        missed=[(_minute(start), _minute(end)) for start, end in windows[~found_windows]],
    )


def _minute(moment: np.datetime64) -> str:
    """A time as ISO text to the minute, UTC (`2014-04-10T09:00Z`)."""
    return f"{np.datetime_as_string(moment, unit='m')}Z"
