"""The original tutorial's detector, kept for side-by-side comparison with the robust one.

For each series: a rolling z-score against the mean and standard deviation (ddof=1, as pandas computes it) of the
previous 75 points, |z| > 3.2 flags a point, and each contiguous flagged run is a span. On several series the
tutorial's window is the single longest flagged run over all of them (`detection.detect` does that for
`detector="seed-zscore"`). Its known failure: a trailing window that swallows the incident's own points cannot
see a ramp, so it flags only the ramp's first minutes and the recovery.
"""

from __future__ import annotations

import numpy as np

from incidentlens.analysis.points import SeriesDetection, Span, prepare_series, runs
from incidentlens.analysis.words import counted

SEED_WINDOW = 75
SEED_THRESHOLD = 3.2


def seed_points(ts: np.ndarray, values: np.ndarray) -> SeriesDetection:
    """Flag |z| > 3.2 against the trailing 75 points; every flagged run is a span."""
    series = prepare_series(ts, values)
    if len(series.y) <= SEED_WINDOW:
        too_short = f"too short: {counted(len(series.y), 'point')}, need {SEED_WINDOW + 1}"
        return SeriesDetection(series=series, reason=too_short)
    mean, std = trailing_mean_std(series.y, SEED_WINDOW)
    with np.errstate(divide="ignore", invalid="ignore"):
        score = np.where(std > 0, (series.y - mean) / std, 0.0)
    score[:SEED_WINDOW] = 0.0
    starts, ends = runs(np.abs(score) > SEED_THRESHOLD)
    spans = [_span(int(s), int(e), score, series.y, mean) for s, e in zip(starts, ends, strict=True)]
    reason = None if spans else f"no point with |z| > {SEED_THRESHOLD:g} against the trailing {SEED_WINDOW} points"
    return SeriesDetection(series=series, spans=spans, score=score, baseline=mean, reason=reason)


def trailing_mean_std(y: np.ndarray, window: int) -> tuple[np.ndarray, np.ndarray]:
    """Mean and sample std of the `window` points before each point (NaN for the first `window` points)."""
    centred = y - np.mean(y)  # cumulative sums of centred values lose less precision
    sums = np.concatenate(([0.0], np.cumsum(centred)))
    squares = np.concatenate(([0.0], np.cumsum(centred**2)))
    mean = np.full(len(y), np.nan)
    var = np.full(len(y), np.nan)
    window_sum = sums[window:-1] - sums[: -window - 1]
    window_squares = squares[window:-1] - squares[: -window - 1]
    mean[window:] = window_sum / window
    var[window:] = (window_squares - window_sum**2 / window) / (window - 1)
    return mean + np.mean(y), np.sqrt(np.clip(var, 0, None))


def span_within(detection: SeriesDetection, span: Span, first: int, last: int) -> Span:
    """The part of a flagged run from point `first` to `last` (inclusive, clipped to the run): its strongest point
    there is its peak, so a window read over that part never peaks outside it."""
    start, end = max(span.start, first), min(span.end, last)
    return _span(start, end, detection.score, detection.series.y, detection.baseline)


def _span(start: int, end: int, score: np.ndarray, y: np.ndarray, mean: np.ndarray) -> Span:
    peak = start + int(np.argmax(np.abs(score[start:end + 1])))
    return Span(start=start, end=end, peak=peak, direction="up" if score[peak] > 0 else "down",
                baseline=float(mean[peak]), peak_value=float(y[peak]), shift=float(score[peak]),
                strong_points=end - start + 1)
