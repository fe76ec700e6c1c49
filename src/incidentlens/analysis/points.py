"""One metric series as numpy arrays: cleaning it, and the point-level detection types detectors return.

Detectors (the robust one in `detection.py`, the original tutorial's in `seed_zscore.py`) share these types so the
multi-series logic and the NAB scorer can treat them alike.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

NS_PER_MINUTE = 60 * 10**9


@dataclass(frozen=True)
class PreparedSeries:
    """A series sorted by time, one value per timestamp, no NaN; with counts of what cleaning changed."""

    t: np.ndarray  # datetime64[ns], strictly increasing
    y: np.ndarray  # float64
    duplicates: int = 0  # timestamps that carried more than one value (their values were averaged)
    missing: int = 0  # NaN values dropped
    gaps: int = 0  # holes longer than three regular steps

    @cached_property
    def step_ns(self) -> int:
        """The regular step: the median spacing (0 for fewer than two points)."""
        if len(self.t) < 2:
            return 0
        return int(np.median(np.diff(self.t.astype(np.int64))))

    def notes(self) -> list[str]:
        """What cleaning did, in words (empty when the series was clean)."""
        notes = []
        if self.duplicates:
            notes.append(f"{self.duplicates} duplicated timestamps averaged")
        if self.missing:
            # NaN here: an empty value, or one kept as NULL when read (not a number, not finite, past +-1e150)
            notes.append(f"{self.missing:,} value{'s' * (self.missing != 1)} missing (empty, or kept as NULL when "
                         "read: not a number, or not finite) skipped")
        if self.gaps:
            notes.append(f"{self.gaps} gaps longer than 3 steps")
        return notes


@dataclass(frozen=True)
class Span:
    """One anomalous window of one series, as indices into its PreparedSeries (end inclusive)."""

    start: int
    end: int
    peak: int
    direction: str  # "up" | "down"
    baseline: float  # expected value at the peak
    peak_value: float
    shift: float  # robust score at the peak: (peak - baseline) / scale
    strong_points: int = 1  # points past the detector's opening bar (a long span of many is a sustained shift)
    strength: float = 0.0  # the largest |score| measured against the bar where it happened (>= the bar: opens)
    sustained_ns: int = 0  # how long the series stayed past the extend threshold inside the span
    scales: tuple[float, ...] = ()  # per scan window, the run's largest window-mean z (detection.with_scan_evidence)
    evidence: float = 0.0  # the one of `scales` its strength came from (where it stood out most); 0: its peak alone
    held_end: int | None = None  # a level shift's: the last point its new level held (its window's end); None: end


@dataclass(frozen=True)
class NearMiss:
    """The deviation that came closest to opening a window, and why it fell short."""

    span: Span
    why: str


@dataclass(frozen=True)
class SeriesDetection:
    """A detector's answer for one series: scores, point flags, and the anomalous spans (empty when none)."""

    series: PreparedSeries
    spans: list[Span] = field(default_factory=list)
    score: np.ndarray | None = None  # per-point signed score (z-like); None when the series was unusable
    baseline: np.ndarray | None = None  # per-point expected value
    reason: str | None = None  # why nothing was found, or why the series could not be used
    candidates: list[Span] = field(default_factory=list)  # every sustained run past the extend bar, any strength
    near_miss: NearMiss | None = None  # the strongest deviation that did not open a window

    @property
    def flags(self) -> np.ndarray:
        """Per-point booleans: inside one of the spans."""
        marks = np.zeros(len(self.series.t) + 1, dtype=np.int32)
        for span in self.spans:
            marks[span.start] += 1
            marks[span.end + 1] -= 1
        return np.cumsum(marks[:-1]) > 0


def prepare_series(ts: np.ndarray, values: np.ndarray) -> PreparedSeries:
    """Sort by time, average values sharing a timestamp, drop NaN, and count each of those changes."""
    t = np.asarray(ts).astype("datetime64[ns]")
    y = np.asarray(values, dtype=np.float64)
    if t.shape != y.shape:
        raise ValueError(f"timestamps ({t.shape}) and values ({y.shape}) differ in length")
    valid_time = ~np.isnat(t)
    t, y = t[valid_time], y[valid_time]
    is_nan = np.isnan(y)
    missing = int(is_nan.sum())
    t, y = t[~is_nan], y[~is_nan]
    order = np.argsort(t, kind="stable")
    t, y = t[order], y[order]
    unique_t, first, counts = np.unique(t, return_index=True, return_counts=True)
    duplicates = int((counts > 1).sum())
    if duplicates:
        y = np.add.reduceat(y, first) / counts
    prepared = PreparedSeries(t=unique_t, y=y, duplicates=duplicates, missing=missing)
    return PreparedSeries(t=unique_t, y=y, duplicates=duplicates, missing=missing, gaps=_count_gaps(prepared))


def _count_gaps(series: PreparedSeries) -> int:
    step = series.step_ns
    if step <= 0:
        return 0
    return int((np.diff(series.t.astype(np.int64)) > 3 * step).sum())


def runs(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Start and inclusive end indices of the contiguous True runs of a boolean array."""
    padded = np.concatenate(([False], mask, [False])).astype(np.int8)
    edges = np.diff(padded)
    return np.flatnonzero(edges == 1), np.flatnonzero(edges == -1) - 1
