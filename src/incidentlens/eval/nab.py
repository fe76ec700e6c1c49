"""Score the detectors on the Numenta Anomaly Benchmark (NAB) with simple event-level measures.

Per series, each detector's point flags become detections: one detection per contiguous flagged run, at the run's
first point. Detections inside NAB's probationary period (the first 15% of each series) are not counted, as in NAB.
The same probationary period is the robust detector's reference: its noise scale is measured there only. (The
robust baseline itself is a smoother fitted over the whole series, so it sees ahead: this is not a streaming run.)

The robust detector runs with `NAB_SETTINGS`: NAB labels point anomalies (one extreme sample is an anomaly
there, while for an incident it is not), so one point past the bar is enough; and the bar is raised by the series'
own past (`detection.opening_bar`): past 1.1 x the largest score of the probationary period, and past the largest
score of every earlier point, so a heavy-tailed series alarms only on what comes close to a record. These three
settings were chosen on NAB itself (no held-out split); neighbouring values score within a few F1 points. The
time-of-day profile is off: on NAB it lowers F1 (0.58 -> 0.53; many NAB series have no stable daily shape).

- a labelled window is found when a detection falls inside it (recall over windows);
- a detection outside every window is a false alarm (precision over detections);
- F1 of those two; false alarms per day of scored data; detection delay = first detection in a found window
  minus the window's start.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import numpy as np

from incidentlens.analysis.detection import RobustSettings, detect_points
from incidentlens.analysis.points import SeriesDetection
from incidentlens.analysis.seed_zscore import seed_points
from incidentlens.errors import InputError

PROBATIONARY_FRACTION = 0.15
NS_PER_DAY = 86_400 * 10**9
NS_PER_MINUTE = 60 * 10**9
NAB_SETTINGS = RobustSettings(min_sustained_steps=1, extend_threshold=3.0, tail_factor=1.1, history_factor=1.0,
                              seasonal=False)


def _robust(ts: np.ndarray, values: np.ndarray, reference_end: np.datetime64) -> SeriesDetection:
    return detect_points(ts, values, reference_end=reference_end, settings=NAB_SETTINGS)


def _seed(ts: np.ndarray, values: np.ndarray, reference_end: np.datetime64) -> SeriesDetection:
    return seed_points(ts, values)


NAB_DETECTORS: dict[str, Callable[[np.ndarray, np.ndarray, np.datetime64], SeriesDetection]] = {
    "robust": _robust,
    "seed-zscore": _seed,
}


@dataclass
class SeriesScore:
    """One detector on one NAB series."""

    name: str
    windows: int
    found: int
    detections: int
    false_alarms: int
    days: float
    delays_minutes: list[float] = field(default_factory=list)


@dataclass
class DetectorScore:
    """One detector over the whole benchmark (or the files scored)."""

    detector: str
    series: list[SeriesScore] = field(default_factory=list)

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
    scores: list[DetectorScore]
    data_dir: Path

    def to_dict(self) -> dict[str, object]:
        return {
            "data": str(self.data_dir),
            "method": "event-level: a window is found when a detection (the first point of a flagged run) falls "
                      "inside it; detections outside every window are false alarms; the first 15% of each series "
                      "is probationary (not scored, and the robust detector's noise reference)",
            "detectors": [s.summary() for s in self.scores],
            "per_series": {s.detector: [vars(x) for x in s.series] for s in self.scores},
        }


def evaluate_nab(
    data_dir: Path, detectors: Iterable[str] = ("robust", "seed-zscore"), only: Iterable[str] | None = None
) -> NabReport:
    """Run each detector over every labelled NAB series (or the `only` keys, e.g. 'realKnownCause/nyc_taxi.csv')."""
    labels = load_labels(data_dir)
    keys = sorted(labels) if only is None else list(only)
    unknown = [k for k in keys if k not in labels]
    if unknown:
        raise InputError(f"{data_dir / 'labels' / 'combined_windows.json'}: no labels for {', '.join(unknown)}")
    chosen = list(detectors)
    for name in chosen:
        if name not in NAB_DETECTORS:
            raise InputError(f"unknown detector '{name}': choose from {', '.join(NAB_DETECTORS)}")
    scores = [DetectorScore(detector=name) for name in chosen]
    for key in keys:
        ts, values = load_series(data_dir / "data" / key)
        windows = labels[key]
        for score in scores:
            score.series.append(score_series(key, ts, values, windows, NAB_DETECTORS[score.detector]))
    return NabReport(scores=scores, data_dir=data_dir)


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


def score_series(
    name: str,
    ts: np.ndarray,
    values: np.ndarray,
    windows: np.ndarray,
    detector: Callable[[np.ndarray, np.ndarray, np.datetime64], SeriesDetection],
) -> SeriesScore:
    """Event-level counts of one detector on one series against its labelled windows."""
    probation_end = ts[int(PROBATIONARY_FRACTION * len(ts))]
    found = detector(ts, values, probation_end)
    onsets = found.series.t[[span.start for span in found.spans]] if found.spans else np.array([], "datetime64[ns]")
    onsets = onsets[onsets >= probation_end]
    inside = (onsets[:, None] >= windows[None, :, 0]) & (onsets[:, None] <= windows[None, :, 1])
    delays = [
        float((onsets[inside[:, w]].min() - windows[w, 0]).astype(np.int64)) / NS_PER_MINUTE
        for w in range(len(windows)) if inside[:, w].any()
    ]
    return SeriesScore(
        name=name, windows=len(windows), found=int(inside.any(axis=0).sum()), detections=len(onsets),
        false_alarms=int((~inside.any(axis=1)).sum()),
        days=float((ts[-1] - probation_end).astype(np.int64)) / NS_PER_DAY, delays_minutes=delays,
    )
