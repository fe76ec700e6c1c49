"""A baseline the incident cannot contaminate: a robust smoother fitted with the anomalous points weighted out.

The expected value of a series is a Whittaker smoother (penalised second differences, a banded solve: O(n)) fitted
by iteratively reweighted least squares with Tukey's bisquare weights. Points far from the fit get weight zero,
so an incident's own points do not pull the baseline towards them, and inside the incident the baseline is the
smooth continuation of the data around it. The smoother is stiff enough not to follow a change shorter than
`smoothness` (hours) but follows a daily pattern and slow trends. The first fit starts from a rolling median over
`smoothness`, so a long incident is already mostly weighted out before the first least-squares fit.

Long series are fitted on at most `MAX_BINS` equal-count bins (each bin's median), then interpolated back.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

MAX_BINS = 3000
DAY_NS = 86_400 * 10**9
SEASONAL_MIN_DAYS = 3  # a daily profile needs several days: an incident must be the odd one out at its hour
SEASONAL_GAIN = 0.9  # keep the seasonal fit only when it shrinks the residual scale by 10% or more
SEASONAL_TREND_DAYS = 3  # the trend under the profile is this stiff, so the daily swing goes to the profile
PHASES_PER_DAY = 288  # the profile's resolution: five minutes
SPREAD_WINDOW = 3600 * 10**9  # the time-of-day noise is averaged over an hour either side
SPREAD_SAMPLE = 100_000  # points enough for the time-of-day medians (a million-point series uses every 10th)
BISQUARE_C = 4.685
IRLS_ITERATIONS = 6
MAD_TO_SIGMA = 1.4826
BODY_QUANTILE_Z = 1.2816  # the standard normal's 80th percentile


@dataclass(frozen=True)
class Baseline:
    expected: np.ndarray  # per input point
    scale: float  # robust standard deviation of the residuals (over the reference points)
    spread: np.ndarray | None = None  # per point, how much noisier its time of day is (>= 1); None: not seasonal
    profile: np.ndarray | None = None  # per point, the time-of-day (or week) part of `expected`; None: not seasonal


def robust_scale(residuals: np.ndarray) -> float:
    """Robust standard deviation: MAD, falling back to the mean absolute deviation when over half are equal."""
    if residuals.size == 0:
        return 0.0
    centre = np.median(residuals)
    deviations = np.abs(residuals - centre)
    mad = MAD_TO_SIGMA * float(np.median(deviations))
    mean_deviation = 1.2533 * float(np.mean(deviations))
    # Over half the values equal (a quantised or mostly idle series) leaves a MAD of zero or rounding noise.
    if mad > 1e-6 * mean_deviation:
        return mad
    return mean_deviation


def body_scale(residuals: np.ndarray) -> float:
    """The standard deviation implied by the 80th percentile of absolute deviations (equal to the MAD's for normal
    noise). On a quantised or heavy-tailed series, where over half the values sit on one level, the MAD says
    nearly nothing varies; this still sees the body's spread, and up to 20% anomalous points do not move it."""
    if residuals.size == 0:
        return 0.0
    return float(np.quantile(np.abs(residuals - np.median(residuals)), 0.8)) / BODY_QUANTILE_Z


def fit_baseline(t_ns: np.ndarray, y: np.ndarray, smoothness_ns: int, reference: np.ndarray | None = None,
                 seasonal: bool = True) -> Baseline:
    """Fit the robust baseline of one series (times as int64 ns, sorted) and its residual scale.

    Over at least SEASONAL_MIN_DAYS days the baseline may be seasonal: a robust time-of-day profile plus the
    smoother over what the profile leaves, kept when it explains the series clearly better than the smoother alone;
    over as many weeks, a time-of-week profile (weekdays and weekends differ), kept when it is clearly better still.
    Both are fitted on at most MAX_BINS bin medians and interpolated back to every point.
    `reference` (booleans per point) restricts where the scale is measured, e.g. the period before an alert;
    `seasonal=False` keeps to the smoother.
    """
    bin_t, bin_y, bin_size = _bin_medians(t_ns, y)
    point_noise = robust_scale(np.diff(y)) / np.sqrt(2) if len(y) > 2 else 0.0
    fit = _smooth_fit(bin_t, bin_y, smoothness_ns, point_noise)
    profile = None
    for period in (DAY_NS, 7 * DAY_NS):
        if seasonal and t_ns[-1] - t_ns[0] >= SEASONAL_MIN_DAYS * period:
            with_profile, its_profile = _seasonal_fit(bin_t, bin_y, smoothness_ns, point_noise, period)
            if robust_scale(bin_y - with_profile) < SEASONAL_GAIN * robust_scale(bin_y - fit):
                fit, profile = with_profile, its_profile
    expected, profile = (_to_points(t_ns, bin_t, part, bin_size) if part is not None else None
                         for part in (fit, profile))
    residuals = y - expected
    spread = time_of_day_spread(t_ns, residuals) if profile is not None else None
    if reference is not None and reference.sum() >= 10:
        residuals = residuals[reference]
    return Baseline(expected=expected, scale=max(robust_scale(residuals), body_scale(residuals)), spread=spread,
                    profile=profile)


def _to_points(t_ns: np.ndarray, bin_t: np.ndarray, per_bin: np.ndarray, bin_size: int) -> np.ndarray:
    """Values fitted per bin, back at every point (interpolated when bins hold several points)."""
    return np.interp(t_ns.astype(np.float64), bin_t, per_bin) if bin_size > 1 else per_bin


def time_of_day_spread(t_ns: np.ndarray, residuals: np.ndarray) -> np.ndarray:
    """Per point, how much noisier the residuals are at its time of day than over the whole series (never below
    1): the median absolute residual per five-minute phase (or per step, when coarser), averaged over the phases
    within SPREAD_WINDOW either side, over the series' median. A daily job or a busy hour that is noisy every day
    is then judged against its own noise; an incident is one day of several at its hour, so it moves that median
    little."""
    step = int(np.median(np.diff(t_ns)))
    phase_width = max(step, DAY_NS // PHASES_PER_DAY)
    phases = max(1, DAY_NS // phase_width)
    phase = ((t_ns - t_ns[0]) % DAY_NS) // phase_width % phases
    deviation = np.abs(residuals - np.median(residuals))
    overall = float(np.median(deviation))
    if overall == 0:
        return np.ones(len(residuals))
    every = max(1, len(residuals) // SPREAD_SAMPLE)  # a long series: every k-th point gives the same medians
    per_phase = _group_medians(phase[::every], deviation[::every])
    reach = int(SPREAD_WINDOW // phase_width)
    circular = np.concatenate((per_phase[-reach:], per_phase, per_phase[:reach])) if reach else per_phase
    smoothed = np.convolve(circular, np.ones(2 * reach + 1) / (2 * reach + 1), mode="valid")
    return np.maximum(1.0, smoothed[phase] / overall)


def _smooth_fit(t: np.ndarray, y: np.ndarray, smoothness_ns: float, point_noise: float) -> np.ndarray:
    """The robust smoother over (roughly regular) times t (float ns)."""
    step = float(np.median(np.diff(t))) if len(t) > 1 else 1.0
    samples_per_period = max(smoothness_ns / max(step, 1.0), 3.0)
    return _robust_whittaker(y, samples_per_period, point_noise)


def _seasonal_fit(t: np.ndarray, y: np.ndarray, smoothness_ns: float, point_noise: float,
                  period: int = DAY_NS) -> tuple[np.ndarray, np.ndarray]:
    """Time-of-day (or of-week: `period`) profile (median per phase over the periods: an incident is one period of
    several, so it does not move it) around a stiff trend, then the regular smoother over the deseasonalised
    series: (the fit, its profile)."""
    step = float(np.median(np.diff(t)))
    phase_width = max(step, period / PHASES_PER_DAY)
    phase = (((t - t[0]) % period) // phase_width).astype(np.int64)
    profile = np.zeros_like(y)
    for _ in range(2):
        trend = _smooth_fit(t, y - profile, SEASONAL_TREND_DAYS * period, point_noise)
        per_phase = _group_medians(phase, y - trend)
        profile = per_phase[phase] - np.median(per_phase)
    return profile + _smooth_fit(t, y - profile, smoothness_ns, point_noise), profile


def _group_medians(groups: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Median of `values` per integer group 0..max (NaN-free; empty groups get 0)."""
    order = np.lexsort((values, groups))
    sorted_groups, sorted_values = groups[order], values[order]
    size = int(groups.max()) + 1
    starts = np.searchsorted(sorted_groups, np.arange(size), side="left")
    ends = np.searchsorted(sorted_groups, np.arange(size), side="right")
    counts = ends - starts
    low = np.clip(starts + (counts - 1) // 2, 0, len(values) - 1)
    high = np.clip(starts + counts // 2, 0, len(values) - 1)
    return np.where(counts > 0, (sorted_values[low] + sorted_values[high]) / 2, 0.0)


def _bin_medians(t_ns: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
    """Equal-count bins: (bin centre times as float ns, bin medians, points per bin)."""
    n = len(y)
    size = max(1, int(np.ceil(n / MAX_BINS)))
    if size == 1:
        return t_ns.astype(np.float64), y, 1
    padded = int(np.ceil(n / size)) * size
    y_bins = np.full(padded, np.nan)
    y_bins[:n] = y
    t_bins = np.full(padded, np.nan)
    t_bins[:n] = (t_ns - t_ns[0]).astype(np.float64)
    medians = np.nanmedian(y_bins.reshape(-1, size), axis=1)
    centres = np.nanmean(t_bins.reshape(-1, size), axis=1) + float(t_ns[0])
    return centres, medians, size


def _robust_whittaker(y: np.ndarray, samples_per_period: float, point_noise: float) -> np.ndarray:
    """IRLS Whittaker smoother with bisquare weights, started from a rolling median's residuals.

    `point_noise` (the per-point noise, from first differences) floors the bisquare scale: a bin median is far less
    noisy than a point, and without the floor the smoother's own small bias would weight good bins out.
    """
    lam = (samples_per_period / (2 * np.pi)) ** 4
    fit = rolling_median(y, round(samples_per_period))
    for _ in range(IRLS_ITERATIONS):
        weights = _bisquare(y - fit, point_noise)
        fit = _whittaker(y, weights, lam)
    return fit


def _bisquare(residuals: np.ndarray, scale_floor: float) -> np.ndarray:
    scale = max(robust_scale(residuals), scale_floor)
    if scale == 0:
        return np.ones_like(residuals)
    u = residuals / (BISQUARE_C * scale)
    return np.where(np.abs(u) < 1, (1 - u**2) ** 2, 0.0)


def _whittaker(y: np.ndarray, weights: np.ndarray, lam: float) -> np.ndarray:
    """Minimise sum w (y - z)^2 + lam * sum (second difference of z)^2 by a banded Cholesky solve."""
    m = len(y)
    if m < 5 or np.count_nonzero(weights) < 3:
        return np.full(m, np.median(y))
    # Upper banded form of W + lam * D'D, D the (m-2) x m second-difference matrix.
    main = np.full(m, 6.0)
    main[[0, -1]] = 1.0
    main[[1, -2]] = 5.0
    first = np.full(m - 1, -4.0)
    first[[0, -1]] = -2.0
    bands = np.zeros((3, m))
    bands[0, 2:] = lam
    bands[1, 1:] = lam * first
    bands[2] = lam * main + weights
    # Solve for the departure from the weighted straight line: lines are the penalty's null space, where a stiff
    # penalty over a long, mostly weighted-out series leaves the system ill-conditioned (wrong fits, or a Cholesky
    # failure); the residual of the weighted line has no component there, so the solve stays accurate.
    # scipy.linalg is imported here: the analysis of a known onset never fits a baseline, and its import costs a
    # run that does not about 0.05 s beside scipy.special's (and 0.3 s alone).
    from scipy.linalg import LinAlgError, solveh_banded

    line = _weighted_line(y, weights)
    try:
        return line + solveh_banded(bands, weights * (y - line), check_finite=False)
    except LinAlgError:
        return line


def _weighted_line(y: np.ndarray, weights: np.ndarray) -> np.ndarray:
    x = np.arange(len(y), dtype=np.float64)
    slope, intercept = np.polyfit(x, y, 1, w=np.sqrt(weights))
    return intercept + slope * x


def rolling_median(y: np.ndarray, window: int) -> np.ndarray:
    """Centred rolling median over `window` samples (clipped to the series).

    A wide window is computed on block medians (at most ~31 blocks a window) and interpolated back: the same
    robustness at a fraction of the cost of a median over every full window.
    """
    n = len(y)
    window = max(3, min(window, n // 2 * 2 - 1))
    if n < 3:
        return np.full(n, np.median(y))
    block = max(1, window // 31)
    if block == 1:
        return _sliding_median(y, window)
    padded = np.full(int(np.ceil(n / block)) * block, np.nan)
    padded[:n] = y
    block_medians = np.nanmedian(padded.reshape(-1, block), axis=1)
    centres = np.arange(len(block_medians)) * block + (block - 1) / 2
    smoothed = _sliding_median(block_medians, max(3, window // block // 2 * 2 + 1))
    return np.interp(np.arange(n), centres, smoothed)


def _sliding_median(y: np.ndarray, window: int) -> np.ndarray:
    """Rolling median with the edges padded by point reflection about a robust end level (2 * level - mirrored
    values), which keeps a trend running through the edge: a plain mirror would bend it back and bias the median."""
    window = max(3, min(window, len(y) // 2 * 2 - 1))
    if len(y) < 3:
        return np.full(len(y), np.median(y))
    half = window // 2
    anchor = max(3, half // 8)
    head = 2 * np.median(y[:anchor]) - y[half:0:-1]
    tail = 2 * np.median(y[-anchor:]) - y[-2:-half - 2:-1]
    padded = np.concatenate((head, y, tail))
    return np.median(sliding_window_view(padded, 2 * half + 1), axis=1)


PERIOD_BINS = 96  # a period's median is taken over at most this many bins in time (of 15 minutes for a day)


@dataclass(frozen=True)
class PeriodMedians:
    """The median of a series over the period of time before and after each of a grid of times (`edges`): for
    edge e, `before` over [e - period, e) and `after` over [e, e + period); NaN where either period holds fewer
    points than asked for. Jittered timestamps or a gap change how many points a period holds, not its time."""

    edges: np.ndarray  # ns
    before: np.ndarray
    after: np.ndarray
    points_before: np.ndarray  # how many points the period before each edge holds
    points_after: np.ndarray  # ... and the period after it


def period_medians(t_ns: np.ndarray, y: np.ndarray, period_ns: int, step_ns: int, min_points: int) -> PeriodMedians:
    """Medians over the period before and after each edge of bins of time of at least one step (at most
    PERIOD_BINS to a period): each bin's median, a bin with no points taking the level interpolated between its
    neighbours, then the median of a period's bins, as `rolling_median` does with blocks of points. The edges
    start one period after the first point and end one period before the last bin's end. `t_ns` sorted."""
    width = step_ns * max(1, period_ns // step_ns // PERIOD_BINS)
    per_period = max(1, round(period_ns / width))
    bins = (t_ns - t_ns[0]) // width
    count = np.bincount(bins)
    if len(count) < 2 * per_period:
        return PeriodMedians(*(np.zeros(0) for _ in range(5)))
    medians = _medians_by_bin(bins, y, count)
    totals = np.concatenate(([0], np.cumsum(count)))
    points = totals[per_period:] - totals[:-per_period]  # points in bins j .. j + per_period - 1
    level = np.median(sliding_window_view(medians, per_period), axis=1)  # of bins j .. j + per_period - 1
    edges = np.arange(per_period, len(count) - per_period + 1)
    enough = np.minimum(points[edges], points[edges - per_period]) >= min_points
    return PeriodMedians(edges=t_ns[0] + edges * width, before=np.where(enough, level[edges - per_period], np.nan),
                         after=np.where(enough, level[edges], np.nan), points_before=points[edges - per_period],
                         points_after=points[edges])


def _medians_by_bin(bins: np.ndarray, y: np.ndarray, count: np.ndarray) -> np.ndarray:
    """The median of each bin's points (`bins` sorted, `count` points a bin); an empty bin interpolated."""
    if (count[:-1] == count[0]).all():  # evenly sampled: a reshape, no sort
        cut = (len(count) - 1) * int(count[0])
        return np.append(np.median(y[:cut].reshape(len(count) - 1, -1), axis=1), np.median(y[cut:]))
    sorted_y = y[np.lexsort((y, bins))]
    first = np.concatenate(([0], np.cumsum(count)[:-1]))
    held = count > 0
    medians = np.zeros(len(count))
    medians[held] = (sorted_y[(first + (count - 1) // 2)[held]] + sorted_y[(first + count // 2)[held]]) / 2
    return _interpolated(medians, count)


def _interpolated(medians: np.ndarray, count: np.ndarray) -> np.ndarray:
    held = count > 0
    if held.all():
        return medians
    where = np.arange(len(count))
    return np.interp(where, where[held], medians[held])
