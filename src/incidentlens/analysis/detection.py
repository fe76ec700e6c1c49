"""Incident detection: the robust detector's numpy core for one series, and `detect` over the store's series.

Per series (`detect_points`): a robust baseline that the incident cannot contaminate (`baseline.py`), a robust score
`(value - expected) / scale`, hysteresis (a window opens at `open_threshold` and extends while the score stays past
`extend_threshold`, so a ramp is covered from its onset to its recovery: the edges are where the data leaves and
rejoins its baseline), nearby runs merged, and a minimum sustained duration so one spike is not an incident.
A run is measured at several time scales: its peak score, and its scan evidence, the z of the mean score over 2,
4, 8 or 16 steps (against the spread such means have in this series), each against the series' own history at that
scale, so a shift held for a few steps counts for what it is even when no single point is extreme, and a level held
for hours stands apart from short spikes to the same level
(`with_scan_evidence`, `weigh_against_history`). A level held for days, which the baseline follows within hours, is
found as a change of level: the median of the day after each point against the day before, weighed against the
series' own such changes (`level_shift_runs`); its return to the level before is its recovery, not a new incident
(`with_level_shifts`).

Over many series (`detect`): spans of all `service/metric` series are merged where they overlap into incident
windows; a window needs two series moving together, or one series far past the bar for a sustained time.
"""

from __future__ import annotations

import heapq
import itertools
import math
import re
from collections import Counter
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from statistics import NormalDist
from typing import Any

import numpy as np
import pyarrow as pa
from pydantic import BaseModel, Field

from incidentlens.analysis.baseline import PeriodMedians, fit_baseline, period_medians, robust_scale
from incidentlens.analysis.evidence import Evidence
from incidentlens.analysis.extremes import BlockTail, block_tail, blocks_of
from incidentlens.analysis.periods import PROBLEM_LEVELS, iso_end, sql_in
from incidentlens.analysis.points import NearMiss, PreparedSeries, SeriesDetection, Span, prepare_series, runs
from incidentlens.analysis.seed_zscore import seed_points, span_within
from incidentlens.analysis.words import counted
from incidentlens.errors import InputError
from incidentlens.telemetry import arrays
from incidentlens.telemetry.timeparse import epoch_unit, wall_clock_utc, without_zone_id


@dataclass(frozen=True)
class RobustSettings:
    """The robust detector's rules. Every duration is in time or in steps of the series' own cadence, so the same
    incident is found whether it was sampled every 10 s or once a day."""

    open_threshold: float = 5.0  # robust score that opens a window (see SENSITIVITY)
    extend_threshold: float = 3.0  # robust score that keeps it open
    min_duration: timedelta = timedelta(minutes=5)  # time past extend_threshold a window needs (at least one step)
    merge_gap_steps: int = 5  # runs closer than this many steps are one window
    smoothness: timedelta = timedelta(hours=12)  # the baseline does not follow changes faster than this ...
    smoothness_steps: int = 144  # ... nor faster than this many steps (12 h at 5-minute steps; hourly or daily data)
    min_points: int = 12  # shorter series have no baseline
    seasonal: bool = True  # over 3+ days, try a time-of-day profile (baseline.py)
    history_factor: float = 1.3  # open only past this x the history_rank-th largest earlier peak; 0: off
    history_rank: int = 3
    bar_points: int = 8000  # open_threshold is the bar of a series this long; see length_bar
    scan_steps: tuple[int, ...] = (1, 2, 4, 8, 16)  # window means (in steps) a run's evidence is measured over
    shift_periods: tuple[timedelta, ...] = (timedelta(days=1),)  # level shifts: median after vs before
    tail_alarms_per_day: float = 0.3  # open only past the series' own tail at this rate (extremes.py); 0: off
    tail_factor: float = 1.0  # ... times this (moved with the opening bar by --sensitivity, as history_factor)
    min_scale: float = 0.0  # the noise scale's floor: 1 for counts made Poisson-stable (`anscombe`), else none


DEFAULT_SETTINGS = RobustSettings()
# `--sensitivity`: the opening bar in robust standard deviations. medium is the default. The history bar moves in
# proportion, so a user asking for more also sees a series' recurring incidents (which the history bar hides).
SENSITIVITY = {"low": 7.0, "medium": 5.0, "high": 4.0}
MAX_OPENING_BAR = 30.0  # the normal tail past about 38 σ is below the smallest float: the bars could not be set


def settings_for(sensitivity: str | float | None, option: str = "--sensitivity") -> RobustSettings:
    """The settings for a `--sensitivity` (low, medium, high, or the opening bar itself as a number): the opening
    bar, and the history bar's and the tail bar's factors scaled by the same ratio to the default (high: 1.04 x the
    third-largest earlier peak instead of 1.3 x, 0.8 x the tail bar). `option`: what a bad value's error calls it
    (an MCP tool's parameter, `sensitivity`)."""
    if sensitivity is None:
        return DEFAULT_SETTINGS
    if isinstance(sensitivity, str) and sensitivity in SENSITIVITY:
        bar = SENSITIVITY[sensitivity]
    else:
        try:
            bar = float(sensitivity)
        except ValueError:
            raise InputError(f"{option} {sensitivity!r}: use low, medium, high or a number of robust σ "
                             f"(medium = {SENSITIVITY['medium']:g})") from None
        if not DEFAULT_SETTINGS.extend_threshold < bar <= MAX_OPENING_BAR:
            raise InputError(f"{option} {bar:g}: the opening bar must be above "
                             f"{DEFAULT_SETTINGS.extend_threshold:g} robust σ and at most {MAX_OPENING_BAR:g}")
    ratio = bar / DEFAULT_SETTINGS.open_threshold
    return replace(DEFAULT_SETTINGS, open_threshold=bar, history_factor=DEFAULT_SETTINGS.history_factor * ratio,
                   tail_factor=DEFAULT_SETTINGS.tail_factor * ratio)


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
    smoothness_ns = max(_ns(settings.smoothness), settings.smoothness_steps * series.step_ns)
    base = fit_baseline(t_ns, series.y, smoothness_ns, reference, seasonal=settings.seasonal)
    scale = max(base.scale, _scale_floor(series.y), settings.min_scale)
    if base.spread is not None:
        scale = scale * base.spread
    score = (series.y - base.expected) / scale
    runs_any = find_runs(score, series, base.expected, settings)
    rho = lag_one_correlation(score)
    scans = scan_scores(score, settings.scan_steps, rho)
    runs_any = with_scan_evidence(runs_any, scans)
    needed = _min_sustained_ns(series, settings)
    floor = length_bar(len(series.y), settings)
    weighed = weigh_against_history(runs_any, settings, floor, tail_bars(t_ns, series.step_ns, scans, settings))
    shifts = level_shift_runs(series, scale, rho, base.profile, settings, floor)
    weighed = with_level_shifts(weighed, shifts, settings.open_threshold, needed, len(series.y) - 1)
    candidates = [span for span in weighed if span.sustained_ns >= needed]
    spans = [span for span in candidates if span.strength >= settings.open_threshold]
    near_miss = None if spans else _near_miss(weighed, score, series, base.expected, settings, needed, floor)
    reason = None if spans else f"no sustained deviation past {floor:.1f} robust σ"
    return SeriesDetection(series=series, spans=spans, score=score, baseline=base.expected, reason=reason,
                           candidates=candidates, near_miss=near_miss)


def _ns(duration: timedelta) -> int:
    return int(duration / timedelta(microseconds=1)) * 1000


def length_bar(points: int, settings: RobustSettings) -> float:
    """The opening bar of a series of this many points: `open_threshold` for `bar_points`, lower for a shorter
    series and higher for a longer one, so every series has the same chance of a false window (the normal tail
    past the bar, times the number of points, stays that of `bar_points` points past `open_threshold`); never
    below the extend threshold."""
    tail = 0.5 * math.erfc(settings.open_threshold / math.sqrt(2)) * settings.bar_points / max(points, 1)
    return max(-NormalDist().inv_cdf(min(tail, 0.5)), settings.extend_threshold + 0.5)


def scan_scores(score: np.ndarray, steps: tuple[int, ...], rho: float) -> dict[int, np.ndarray]:
    """Per window length w of `steps` (those the series is long enough for), the z of the w-point mean of the
    score ending at each point (0 where fewer than w points came before). A shift held for several points is
    stronger evidence than its peak alone: the mean of w points has a smaller standard deviation, by how much
    depends on how correlated the residuals are (`rho`, their lag-one correlation: `window_mean_spread`)."""
    scans: dict[int, np.ndarray] = {}
    for w in steps:
        if w <= len(score):
            means = _trailing_means(score, w)
            scans[w] = means / window_mean_spread(means[w - 1:], w, rho)
    return scans


def with_scan_evidence(spans: list[Span], scans: dict[int, np.ndarray]) -> list[Span]:
    """Each run's scan evidence (`Span.scales`): per window length of `scans` (`scan_scores`), the largest z of a
    window mean over the windows that overlap it (a scan statistic)."""
    return [replace(span, scales=_run_scales(span, scans)) for span in spans]


def tail_bars(t_ns: np.ndarray, step_ns: int, scans: dict[int, np.ndarray],
              settings: RobustSettings) -> dict[tuple[int, str], BlockTail]:
    """Per scan window (its index in `scans`) and direction, the tail of the series' own window-mean z per hour
    (`extremes.BlockTail`); empty when the series is too short for a tail or `tail_alarms_per_day` is 0."""
    blocks = blocks_of(t_ns, step_ns, settings.tail_alarms_per_day)
    if blocks is None:
        return {}
    return {(index, direction): block_tail(blocks, sign * z, w - 1)
            for index, (w, z) in enumerate(scans.items()) for sign, direction in ((1.0, "up"), (-1.0, "down"))}


def window_mean_spread(means: np.ndarray, window: int, rho: float) -> float:
    """The yardstick of a `window`-point mean of the score: the larger of what residuals as correlated as `rho`
    give (`mean_sd`) and the robust spread of the series' own window means (`means`, one per full window of the
    score). The lag-one model misses slower structure (a baseline a little off for hours, the edges of the day),
    which only long windows add up; the empirical spread sees it, and a run's few windows cannot move a
    median-based spread. On a mostly idle series, where over half the window means are equal, `robust_scale` falls
    back to their mean deviation, which the run's windows do enter: there a long mean's yardstick is about one
    point's (no credit for averaging)."""
    spread = mean_sd(window, rho)
    if window > 1:
        spread = max(spread, robust_scale(means))
    return spread


def _run_scales(span: Span, scans: dict[int, np.ndarray]) -> tuple[float, ...]:
    """Per window length, the largest signed window-mean z over the windows that overlap the run (they end inside
    it or up to w - 1 points after it: the points just after a run that dipped under the extend threshold still
    belong to it)."""
    sign = 1.0 if span.direction == "up" else -1.0
    return tuple(float(np.max(sign * z[span.start:span.end + w])) for w, z in scans.items())


def lag_one_correlation(score: np.ndarray) -> float:
    """The residuals' lag-one correlation, robustly: first differences of an AR(1) series with correlation ρ have
    variance 2σ²(1 - ρ); clipped to [0, 0.9]."""
    spread = robust_scale(score)
    if spread == 0:
        return 0.0
    ratio = robust_scale(np.diff(score)) / (np.sqrt(2) * spread)
    return float(np.clip(1 - ratio**2, 0.0, 0.9))


def mean_sd(window: int, rho: float) -> float:
    """Standard deviation of the mean of `window` consecutive unit-variance AR(1) values with correlation `rho`."""
    lags = np.arange(1, window)
    return float(np.sqrt((1 + 2 * np.sum((1 - lags / window) * rho**lags)) / window))


def _trailing_means(score: np.ndarray, window: int) -> np.ndarray:
    """Mean of the `window` points ending at each index; 0 where fewer points came before."""
    total = np.concatenate(([0.0], np.cumsum(score)))
    means = np.zeros(len(score))
    means[window - 1:] = (total[window:] - total[:-window]) / window
    return means


def run_size(span: Span) -> float:
    """How far a run went, in robust σ, at the scan window its strength came from (its peak without a scan)."""
    return span.evidence if span.evidence > 0 else abs(span.shift)


def weigh_against_history(candidates: list[Span], settings: RobustSettings, floor: float,
                          tails: dict[tuple[int, str], BlockTail] | None = None) -> list[Span]:
    """Each run's strength: its size measured against the bar where it starts, scaled to the opening threshold
    (strength >= open_threshold opens a window). Per scan window (`Span.scales`; its peak without a scan), the bar
    is `floor` (`length_bar`), raised to `history_factor` x the `history_rank`-th largest size of the series'
    earlier runs at that window: what a heavy-tailed series has already done several times, it will do again, so
    only what comes close to that is news, and an incident seen once or twice before does not hide the next one.
    The history is kept per window length, so one-point spikes set the bar for one-point peaks, not for a shift held
    for hours. On a series of 200 hours or more (`tails`, from `tail_bars`), the bar is also at least
    `tail_factor` x the value the series' own hourly peaks at that window and in that direction pass
    `tail_alarms_per_day` times a day (a Generalized Pareto fit to their tail, without the hours the run touches:
    `extremes.BlockTail`): a burst the series has about daily is its ordinary behaviour even before three of them
    are history, and hourly and five-minute data give the same bar. The strength is the best over the windows
    (`Span.evidence` the size it came from)."""
    heaps: dict[int, list[float]] = {}  # per scan window, a min-heap of the `history_rank` largest earlier sizes
    weighed = []
    for span in sorted(candidates, key=lambda s: s.start):
        best = (0.0, 0.0)  # (strength, size)
        for window, size in enumerate(span.scales or (abs(span.shift),)):
            largest = heaps.setdefault(window, [])
            record = largest[0] if len(largest) == settings.history_rank else 0.0
            bar = max(floor, settings.history_factor * record)
            if tails and (window, span.direction) in tails:
                steps = settings.scan_steps[window]  # the run's blocks and those of the window means overlapping it
                tail = tails[(window, span.direction)].bar(span.start - steps, span.end + steps)
                bar = max(bar, settings.tail_factor * tail)
            best = max(best, (size * settings.open_threshold / bar, size))
            if len(largest) < settings.history_rank:
                heapq.heappush(largest, size)
            else:
                heapq.heappushpop(largest, size)
        weighed.append(replace(span, strength=best[0], evidence=best[1]))
    return weighed


MIN_SHIFT_STEPS = 4  # a median of fewer points is no level: a period needs this many steps, and this many points


def level_shift_runs(series: PreparedSeries, scale: float | np.ndarray, rho: float,
                     profile: np.ndarray | None, settings: RobustSettings, floor: float) -> list[Span]:
    """Level shifts the smoother follows (a level held for days is the baseline after a few hours): per period p
    of `shift_periods` (a span of time, not of points: `baseline.period_medians`, so jittered timestamps and gaps
    give the same answer), the median of the series over the time p after each moment minus its median over the
    time p before it (of the series less its time-of-day or time-of-week profile, when the baseline has one), in
    robust σ of the points, as a z against the larger of the standard error such a difference has in residuals as
    correlated as the series' own (`median_difference_sd`, over the points each period holds: a period a gap
    leaves few points in is measured by those few) and the robust spread of that difference over the series
    (slower structure, as for window means); each run past the extend threshold is weighed against the series'
    own earlier runs at that period (`weigh_against_history`). A shift starts at the first point at or after its
    largest change (the change point) and lasts p; its baseline and peak value are the levels before and after.
    Series shorter than four periods, and periods of fewer than MIN_SHIFT_STEPS steps, have none; a change needs
    MIN_SHIFT_STEPS points in each period."""
    step = series.step_ns
    t_ns = series.t.astype(np.int64)
    level = series.y if profile is None else series.y - profile  # less its time-of-day (or week) profile
    sigma = float(np.median(scale))
    found: list[Span] = []
    for period in settings.shift_periods:
        period_ns = _ns(period)
        if step <= 0 or period_ns < MIN_SHIFT_STEPS * step or t_ns[-1] - t_ns[0] + step < 4 * period_ns:
            continue
        medians = period_medians(t_ns, level, period_ns, step, MIN_SHIFT_STEPS)
        change = (medians.after - medians.before) / sigma
        measured = ~np.isnan(change)
        if not measured.any():
            continue
        spread = np.maximum(median_difference_sd(medians, rho), robust_scale(change[measured]))
        z = np.where(measured, change, 0.0) / spread
        shifts = [_shift(t_ns, sign * z[a:b + 1], medians, int(a), period_ns, sigma)
                  for sign in (1.0, -1.0) for a, b in zip(*runs(sign * z >= settings.extend_threshold), strict=True)]
        found += weigh_against_history(shifts, settings, floor)
    return found


def median_difference_sd(medians: PeriodMedians, rho: float) -> np.ndarray:
    """Per edge, the standard error of the difference of its two periods' medians in unit-variance residuals with
    lag-one correlation `rho`: each median's `mean_sd` over the points its period holds, x sqrt(π/2) for a median.
    A period a gap leaves a few points in (the rest of its bins interpolated) measures its level from those few."""
    sd = {int(n): mean_sd(int(n), rho) for n in np.unique(np.concatenate((medians.points_before,
                                                                         medians.points_after))) if n > 0}
    before = np.array([sd.get(int(n), np.inf) for n in medians.points_before])
    after = np.array([sd.get(int(n), np.inf) for n in medians.points_after])
    return math.sqrt(math.pi / 2) * np.hypot(before, after)


def _shift(t_ns: np.ndarray, z: np.ndarray, medians: PeriodMedians, first: int, period_ns: int,
           sigma: float) -> Span:
    """One level shift from a run of its change z (`z`, from edge `first`, signed so the change is positive):
    from the first point at or after its largest change, through the last point of the period after it."""
    edge = first + int(np.argmax(z))
    at_ns = int(medians.edges[edge])
    start = int(np.searchsorted(t_ns, at_ns))
    end = max(start, int(np.searchsorted(t_ns, at_ns + period_ns)) - 1)
    change = float(medians.after[edge] - medians.before[edge])
    return Span(start=start, end=end, peak=start, direction="up" if change > 0 else "down",
                baseline=float(medians.before[edge]), peak_value=float(medians.after[edge]),
                shift=change / sigma, strong_points=end - start + 1,
                sustained_ns=period_ns, scales=(float(z[edge - first]),))


def with_level_shifts(weighed: list[Span], shifts: list[Span], bar: float, needed: int, last: int) -> list[Span]:
    """The runs with the level shifts joined in, in time order. A shift that opens a window holds until its level
    ends (`held_shifts`: its recovery, the next shift that opens the other way, or `last`, the series' last point),
    and so does the run it joins (`Span.held_end`); a recovery is not a new incident. A shift whose change point
    lies in a run in the same direction lends that run its strength when larger; one that only overlaps a run that
    opens on its own adds nothing (that run reports it); any other is a run of its own. Only runs sustained for
    `needed` ns count: a shorter one (a one-minute spike inside the shift's day) could not carry the shift into a
    window. Of shifts in the same direction that overlap, the strongest stands (a weak change a few hours before
    the change point does not take its place). Overlaps are over a shift's period after its change point, not
    over the time its level held, so an incident later in that time stays an incident of its own."""
    merged = list(weighed)
    added: list[Span] = []
    for shift in held_shifts(shifts, bar, last):
        same = [i for i, run in enumerate(merged)
                if run.direction == shift.direction and run.sustained_ns >= needed
                and run.start <= shift.end and shift.start <= run.end]
        holding = [i for i in same if merged[i].start <= shift.start]
        for i in same if shift.held_end is not None else []:
            merged[i] = replace(merged[i], held_end=max(merged[i].end, merged[i].held_end or 0, shift.held_end))
        if holding:
            if shift.strength > merged[holding[0]].strength:
                merged[holding[0]] = replace(merged[holding[0]], strength=shift.strength, evidence=shift.evidence)
        elif not any(merged[i].strength >= bar for i in same):
            added = _strongest(added, shift)
    return sorted(merged + added, key=lambda s: s.start)


def held_shifts(shifts: list[Span], bar: float, last: int) -> list[Span]:
    """The shifts in time order less the recoveries, each that opens a window (strength >= `bar`) with the last
    point its level held (`held_end`). A shift back to the level before the ones that opened (`_returns`) is their
    recovery: their level held to the point before it; a stronger such shift within the period after the first (a
    return in two steps, the first the weaker) moves the end to the point before it. A shift that
    opens the other way without returning ends the level too; one that opens the same way adds to it, and the
    level before both holds until the later one's ends. A level that never ends holds to `last`."""
    kept: list[Span] = []
    holding: list[int] = []  # indices into `kept` of opened shifts, one direction, whose level still holds
    returned: tuple[list[int], Span] | None = None  # the shifts the last recovery ended, and that recovery

    def end_at(indices: list[int], point: int) -> None:
        for i in indices:
            kept[i] = replace(kept[i], held_end=max(kept[i].start, point))

    for shift in sorted(shifts, key=lambda s: s.start):
        if holding and _returns(shift, [kept[i] for i in holding]):
            end_at(holding, shift.start - 1)
            returned, holding = (holding, shift), []
            continue
        if returned and shift.start <= returned[1].end and shift.strength > returned[1].strength \
                and _returns(shift, [kept[i] for i in returned[0]]):
            end_at(returned[0], shift.start - 1)
            returned = (returned[0], shift)
            continue
        if shift.strength >= bar:
            returned = None
            if holding and kept[holding[-1]].direction != shift.direction:
                end_at(holding, shift.start - 1)
                holding = []
            holding.append(len(kept))
        kept.append(shift)
    end_at(holding, last)
    return kept


def _returns(shift: Span, opened: list[Span]) -> bool:
    """Whether `shift` goes back to the level before the `opened` shifts (one direction, in time order): it goes
    the other way and its level after lies within half their change of the level before the first."""
    before = opened[0].baseline
    return shift.direction != opened[-1].direction and \
        abs(shift.peak_value - before) < abs(opened[-1].peak_value - before) / 2


def _strongest(added: list[Span], shift: Span) -> list[Span]:
    """The shifts kept so far with `shift` joined in: in place of those it overlaps in its direction when stronger
    than all of them, else not at all."""
    rivals = [other for other in added if other.direction == shift.direction
              and other.start <= shift.end and shift.start <= other.end]
    if any(other.strength >= shift.strength for other in rivals):
        return added
    return [other for other in added if other not in rivals] + [shift]


def unusable_reason(series: PreparedSeries, settings: RobustSettings) -> str | None:
    """Why a series cannot be scored (too short for a baseline, constant), or None."""
    if len(series.y) < settings.min_points:
        return f"too short for a baseline: {counted(len(series.y), 'point')}, need {settings.min_points}"
    if np.ptp(series.y) == 0:
        return f"constant series: every value is {series.y[0]:g}"
    return None


def _scale_floor(y: np.ndarray) -> float:
    """A floor on the noise scale so a near-constant series does not turn rounding into huge scores."""
    return 1e-3 * float(np.median(np.abs(y - np.median(y)))) + 1e-9 * float(np.max(np.abs(y))) + 1e-12


def find_runs(score: np.ndarray, series: PreparedSeries, expected: np.ndarray,
              settings: RobustSettings) -> list[Span]:
    """Hysteresis runs on the signed score, per direction, past the extend threshold and merged across short gaps,
    each with how long it stayed past that threshold."""
    return [
        span
        for direction, past_extend in (("up", score >= settings.extend_threshold),
                                       ("down", score <= -settings.extend_threshold))
        for span in _direction_runs(score, past_extend, direction, series, expected, settings)
    ]


def _min_sustained_ns(series: PreparedSeries, settings: RobustSettings) -> int:
    return max(series.step_ns, _ns(settings.min_duration))


def _direction_runs(score: np.ndarray, past_extend: np.ndarray, direction: str, series: PreparedSeries,
                    expected: np.ndarray, settings: RobustSettings) -> list[Span]:
    starts, ends = runs(past_extend)
    if len(starts) == 0:
        return []
    starts, ends = _merge_close(starts, ends, series.t.astype(np.int64), settings.merge_gap_steps * series.step_ns)
    sustained = np.concatenate(([0], np.cumsum(past_extend)))
    opened = np.concatenate(([0], np.cumsum(np.abs(score) >= settings.open_threshold)))
    return [
        _span(int(s), int(e), direction, score, series, expected, int(opened[e + 1] - opened[s]),
              int(sustained[e + 1] - sustained[s]) * series.step_ns)
        for s, e in zip(starts, ends, strict=True)
    ]


def _merge_close(
    starts: np.ndarray, ends: np.ndarray, t_ns: np.ndarray, max_gap_ns: int
) -> tuple[np.ndarray, np.ndarray]:
    """Join consecutive runs whose gap (end of one to start of the next) is at most max_gap_ns."""
    gap = t_ns[starts[1:]] - t_ns[ends[:-1]]
    new_group = np.concatenate(([True], gap > max_gap_ns))
    return starts[new_group], ends[np.concatenate((new_group[1:], [True]))]


def _span(start: int, end: int, direction: str, score: np.ndarray, series: PreparedSeries,
          expected: np.ndarray, strong_points: int, sustained_ns: int) -> Span:
    peak = start + int(np.argmax(np.abs(score[start:end + 1])))
    return Span(start=start, end=end, peak=peak, direction=direction, baseline=float(expected[peak]),
                peak_value=float(series.y[peak]), shift=float(score[peak]), strong_points=strong_points,
                strength=float(abs(score[peak])), sustained_ns=sustained_ns)


def _near_miss(weighed: list[Span], score: np.ndarray, series: PreparedSeries, expected: np.ndarray,
               settings: RobustSettings, needed_ns: int, floor: float) -> NearMiss:
    """The strongest run past the extend threshold (of any duration) and why it did not open a window; without
    one, the largest |score| of the series."""
    if not weighed:
        peak = int(np.argmax(np.abs(score)))
        span = _span(peak, peak, "up" if score[peak] > 0 else "down", score, series, expected, 0, 0)
        # the 3 σ is where a run begins (and what keeps a window open), not the bar that opens one
        return NearMiss(span, f"it stayed under {settings.extend_threshold:g} σ, where a run begins; a window opens "
                              f"at {floor:.1f} σ")
    best = max(weighed, key=lambda span: span.strength)
    shortfalls = []
    if best.strength < settings.open_threshold:
        bar = run_size(best) * settings.open_threshold / best.strength
        raised = " (the series' own peaks raised it)" if bar > floor * (1 + 1e-9) else ""
        shortfalls.append(f"{_size_text(best, settings)} is under the {bar:.1f} σ bar{raised}")
    if best.sustained_ns < needed_ns:
        shortfalls.append(f"it lasted {_duration_text(best.sustained_ns)}, under the {_duration_text(needed_ns)} "
                          "a window needs")
    return NearMiss(best, "; ".join(shortfalls) or "it did not open a window")


def _size_text(span: Span, settings: RobustSettings) -> str:
    """`4.2 σ`, or `3.9 σ over 4 steps` when the run's strength came from a window mean."""
    steps = [w for w, size in zip(settings.scan_steps, span.scales, strict=False) if size == span.evidence]
    over = f" over {steps[0]} steps" if steps and steps[0] > 1 else ""
    return f"{run_size(span):.1f} σ{over}"


def _duration_text(ns: int) -> str:
    seconds = ns / 1e9
    if seconds < 120:
        return f"{seconds:g} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    if seconds < 172800:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"


# ---------------------------------------------------------------------------------------------------------------
# Many series from the store: per-series spans combined into incident windows.
# ---------------------------------------------------------------------------------------------------------------

DETECTORS = ("robust", "seed-zscore")
#: why nothing was detected where no metrics were given (logs or traces alone need their start given)
NO_METRICS = "no metrics were loaded: detection needs a metrics source"
LOGS_QUIET = ("no metrics were loaded, and no service's WARN/ERROR/FATAL lines per minute moved: without metrics, "
              "detection finds only a surge of them")
MIN_AGREEING_SERIES = 2  # a window one series alone moved needs a higher bar when many series were checked
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
    pod: str | None = None  # the pod that moved, where the service has several (each pod's samples a series)


class IncidentWindow(BaseModel):
    start: datetime  # first anomalous sample
    end: datetime  # exclusive: one step after the last anomalous sample
    peak: datetime
    severity: float  # sum over moved series of |robust shift| (seed-zscore: |z|) capped at SHIFT_CAP
    series: list[SeriesShift]


class DetectionResult(BaseModel):
    detector: str
    detected: bool
    reason: str | None = None
    window: IncidentWindow | None = None  # the incident: the most severe window, or the one anchored by `at`
    baseline_window: tuple[datetime, datetime] | None = None
    # every qualifying window, most severe first (seed-zscore: longest first)
    windows: list[IncidentWindow] = Field(default_factory=list)
    series_checked: int = 0
    notes: list[str] = Field(default_factory=list)  # data cleaning and unusable series, one line each
    evidence: list[Evidence] = Field(default_factory=list)
    closest_miss: dict[str, Any] | None = None  # when nothing qualified: what came closest, and why it fell short
    sensitivity: str | None = None
    #: with a known onset taken from --at because no window could be detected or explained there: why not
    undetected: str | None = None
    #: the alert time, when the start was taken before it (nothing after the alert time itself could be explained)
    alert_at: datetime | None = None

    def to_dict(self) -> dict[str, Any]:
        """The `detected`, `reason`, `incident_window`, `baseline_window`, `peak` and `detection` blocks of
        analysis.json (docs/architecture.md), plus the evidence records they cite."""
        window = self.window
        return {
            "detected": self.detected,
            "reason": self.reason,
            "incident_window": {"start": iso_z(window.start), "end": iso_end(window.end)} if window else None,
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
                "sensitivity": self.sensitivity,
                "closest_miss": self.closest_miss,
                "undetected": self.undetected,
                "alert_at": iso_z(self.alert_at) if self.alert_at else None,
                "notes": self.notes,
                "evidence": [e.id for e in self.evidence],
            },
            "evidence": [e.to_dict() for e in self.evidence],
        }


#: an epoch number given for a time (`1714557600`, `1714557600123`): at least 9 digits, so no year or date is one
_EPOCH = re.compile(r"[0-9]{9,19}(\.[0-9]+)?")


def parse_time(text: str, option: str = "--at", zone: str = "") -> datetime:
    """A user's time (ISO-8601; a zone is converted, none means UTC, or `zone`'s wall clock: `--timezone`; or an
    epoch number, as an alert's payload may give it, in the unit its size says, as a file's time column is read) as
    naive UTC."""
    if _EPOCH.fullmatch(text.strip()):
        _refuse_compact_date(text.strip(), option)
        number = float(text)
        per_second = {"s": 1, "ms": 1e3, "us": 1e6, "ns": 1e9}[epoch_unit(abs(number))]
        return datetime(1970, 1, 1) + timedelta(seconds=number / per_second)
    try:
        moment = datetime.fromisoformat(without_zone_id(text))
    except ValueError:
        example = "2024-05-01T16:00:00Z"
        raise InputError(f"{option} {text!r}: cannot parse as a time (use ISO-8601, e.g. {example})") from None
    return wall_clock_utc(moment, zone)


def _refuse_compact_date(text: str, option: str) -> None:
    """Refuse digits that read as a date and time written without separators (`2024050112`, `202405011200`,
    `20240501120000`, as logs and file names write them) as well as an epoch number: read by their size, they were
    2034, 1976 and 2611."""
    for layout in _COMPACT_LAYOUTS.get(len(text), ()):
        try:
            moment = datetime.strptime(text, layout)
        except ValueError:
            continue
        if not _COMPACT_YEARS[0] <= moment.year <= _COMPACT_YEARS[1]:  # 978307200000: 2001 in ms, no year 9783
            continue
        raise InputError(f"{option} {text!r}: reads as {moment:%Y-%m-%d %H:%M} written without separators or as an "
                         "epoch number; write it as ISO-8601 (e.g. 2024-05-01T16:00:00Z), or an epoch in s or ms")


#: date-times written as digits alone that an epoch number's size could also be (`_refuse_compact_date`)
_COMPACT_LAYOUTS = {10: ("%Y%m%d%H",), 12: ("%Y%m%d%H%M",), 14: ("%Y%m%d%H%M%S",)}
#: ... and the years such a date-time is read in: past them the digits are an epoch number only (ten digits of
#: seconds read as a date of these years from May 2033 on: 2000010100)
_COMPACT_YEARS = (2000, 2199)


def iso_z(moment: datetime) -> str:
    """ISO-8601 UTC with a Z, to the second."""
    return moment.replace(microsecond=0).isoformat() + "Z"


def _shift_dict(shift: SeriesShift) -> dict[str, Any]:
    return {"series": shift.series, "direction": shift.direction, "baseline": _round(shift.baseline),
            "peak": _round(shift.peak), "shift": round(shift.shift, 2), "onset": iso_z(shift.onset),
            "peak_at": iso_z(shift.peak_at), **({"pod": shift.pod} if shift.pod else {})}


def _window_summary(window: IncidentWindow) -> dict[str, Any]:
    return {"start": iso_z(window.start), "end": iso_end(window.end), "peak": iso_z(window.peak),
            "severity": round(window.severity, 2), "series": [s.series for s in window.series][:SERIES_CAP],
            "moved": [_shift_dict(s) for s in window.series[:SERIES_CAP]]}


def _round(value: float) -> float:
    """Six significant digits, but never short of the whole units (2,973,531.03 is 2973531, not 2973530): the
    review writes a value of a million or more to the unit, and reads the same value elsewhere at full precision."""
    return float(round(value)) if math.isfinite(value) and abs(value) >= 1e6 else float(f"{value:.6g}")


def series_sql(metrics: list[str] | None = None) -> str:
    """The one query that reads every series: one row per series, pod (where the metrics name pods: each pod's
    samples are a series of their own) and timestamp (duplicates averaged; no value, or only NaN, as NaN); a row
    with no service is `global`'s, as the log problems are, and one with no metric name is named `?`."""
    where = ""
    if metrics:
        where = f"WHERE metric IN {sql_in(metrics)} "
    return (
        "SELECT coalesce(service, 'global') || '/' || coalesce(metric, '?') AS series, coalesce(pod, '') AS pod, ts, "
        "coalesce(avg(value) FILTER (WHERE NOT isnan(value)), CAST('NaN' AS DOUBLE)) AS value, count(*) AS n_rows "
        f"FROM metrics {where}GROUP BY ALL ORDER BY series, pod, ts"
    )


@dataclass(frozen=True)
class _Series:
    name: str
    t: np.ndarray
    y: np.ndarray
    duplicates: int
    pod: str = ""  # the pod whose samples these are, where the metrics name pods


def detect(store: Any, metrics: list[str] | None = None, at: datetime | None = None,
           detector: str = "robust", sensitivity: str | float | None = None) -> DetectionResult:
    """Find incident windows over every `service/metric` series of the store's `metrics` view.

    robust: per-series spans (`detect_points`) merged across series into windows; a window counts when at least
    two series moved together, or one moved past the lone-series bar (`lone_series_bar`). Every window is listed,
    most severe first. seed-zscore: the tutorial's rule, every flagged run, longest first. `at` (naive UTC) anchors
    on an alert: the window containing it or nearest to it, and the noise scale is measured before it.
    `sensitivity`: low, medium (default), high, or the opening bar in robust σ (`SENSITIVITY`). When nothing
    qualifies, the result says what came closest and why it fell short.
    """
    if detector not in DETECTORS:
        raise InputError(f"unknown detector '{detector}': choose one of {', '.join(DETECTORS)}")
    settings = settings_for(sensitivity)
    sql = series_sql(metrics)
    all_series = _read_series(store, sql) if store.has("metrics") else []
    if metrics and store.has("metrics"):
        _check_metric_names(store, metrics, all_series)
    run = _Run.of(all_series, detector, at, sensitivity, settings)
    log_series = None
    if not run.windows and detector == "robust" and not metrics and store.has("logs"):
        # an incident seen only in the logs (no metrics given, or none moved) is still found: the same detector
        # over each service's problem lines per minute; only then, so a metric window is never moved by them
        log_series = _log_problem_series(store)
        logged = _Run.of_counts(log_series, at, settings)
        if logged.windows:
            sql, all_series, run = LOG_PROBLEMS_SQL, log_series, logged
            run.notes.insert(0, LOG_PROBLEMS_NOTE)
        else:  # the logs were read too: a review of no incident says so, not only the metric series checked
            run.notes.append(_logs_read_note(len(log_series)))
    if not all_series:
        if store.has("metrics"):
            return _nothing(detector, "the metrics view has no rows", sql, [], 0)
        if log_series is not None:
            return _nothing(detector, LOGS_QUIET, LOG_PROBLEMS_SQL, [], len(log_series))
        return _nothing(detector, NO_METRICS, sql, [], 0)
    detections, notes, lone_bar, windows = run.detections, run.notes, run.lone_bar, run.windows
    if not windows:
        miss = closest_miss(detections, lone_bar, settings) if detector == "robust" else None
        return _nothing(detector, _why_nothing(detections, lone_bar), sql, notes, len(all_series), miss,
                        _sensitivity_text(sensitivity, settings) if detector == "robust" else None)
    chosen = _anchor(windows, at) if at is not None else windows[0]
    data_start = min(d.series.t[0] for d in detections.values() if len(d.series.t))
    data_end = max(d.series.t[-1] for d in detections.values() if len(d.series.t))
    baseline_window = _baseline_window(chosen, _to_datetime(data_start), _to_datetime(data_end))
    others = [_window_summary(w) for w in windows if w is not chosen][:SERIES_CAP]
    evidence = Evidence.make(
        "detection",
        f"{detector}: {len(chosen.series)} series moved between {iso_z(chosen.start)} and {iso_end(chosen.end)}"
        + (f"; {len(windows) - 1} other window(s) in the range" if len(windows) > 1 else ""),
        sql,
        {"window": {"start": iso_z(chosen.start), "end": iso_end(chosen.end), "peak": iso_z(chosen.peak)},
         "severity": round(chosen.severity, 2), "series": [_shift_dict(s) for s in chosen.series[:SERIES_CAP]],
         "series_cut": max(0, len(chosen.series) - SERIES_CAP), "windows_found": len(windows),
         "other_windows": others, "chosen_by": _chosen_by(at, chosen, detector),
         "series_checked": len(all_series), "notes": notes[:SERIES_CAP]},
    )
    return DetectionResult(detector=detector, detected=True, window=chosen, baseline_window=baseline_window,
                           windows=windows, series_checked=len(all_series), notes=notes, evidence=[evidence],
                           sensitivity=_sensitivity_text(sensitivity, settings))


@dataclass(frozen=True)
class _Run:
    """The detector over a set of series: each series' detection (by key), the cleaning notes, the lone-series bar
    and the windows found, most severe first."""

    detections: dict[str, SeriesDetection]
    notes: list[str]
    lone_bar: float
    windows: list[IncidentWindow]

    @classmethod
    def of(cls, all_series: list[_Series], detector: str, at: datetime | None, sensitivity: str | float | None,
           settings: RobustSettings) -> _Run:
        pods = _pods_by_key(all_series)
        detections = {_key(s, pods): detect_series(s.t, s.y, detector=detector, at=at, sensitivity=sensitivity)
                      for s in all_series}
        return cls.of_detections(all_series, pods, detections, detector, settings)

    @classmethod
    def of_counts(cls, all_series: list[_Series], at: datetime | None, settings: RobustSettings) -> _Run:
        """The robust detector over counts per step: on their Anscombe transform, whose noise is about 1 wherever
        the counts are Poisson, so a scale of at least 1 (a series of mostly zeros has a robust spread of 0, and
        then any one line would be thousands of σ); each span's baseline and peak given back as counts."""
        counted = replace(settings, min_scale=1.0)
        reference_end = np.datetime64(at, "ns") if at is not None else None
        detections = {}
        for s in all_series:
            found = detect_points(s.t, anscombe(s.y), reference_end=reference_end, settings=counted)
            detections[s.name] = replace(found, spans=[_as_counts(span) for span in found.spans],
                                         candidates=[_as_counts(span) for span in found.candidates])
        return cls.of_detections(all_series, {}, detections, "robust", counted)  # one series a service: no pods

    @classmethod
    def of_detections(cls, all_series: list[_Series], pods: dict[str, tuple[str, str]],
                      detections: dict[str, SeriesDetection], detector: str, settings: RobustSettings) -> _Run:
        lone_bar = lone_series_bar(len(detections), settings)
        if not detections:
            windows = []
        elif detector == "seed-zscore":
            windows = _seed_windows(detections)
        else:
            windows = _robust_windows(detections, _merge_gap_ns(detections, settings), lone_bar)
        return cls(detections, _cleaning_notes(all_series, detections, pods), lone_bar, _naming_pods(windows, pods))


#: the series of a service's WARN/ERROR/FATAL log lines: their count per minute
LOG_PROBLEMS = "log_problem_lines"
LOG_PROBLEMS_SQL = (
    f"SELECT coalesce(service, 'global') AS service, date_trunc('minute', ts) AS minute, "
    f"count(*) FILTER (WHERE level IN {sql_in(PROBLEM_LEVELS)}) AS problems "
    "FROM logs WHERE ts IS NOT NULL GROUP BY ALL ORDER BY service, minute"
)
LOG_PROBLEMS_NOTE = (f"no metric series moved (or none were given): the window is where services' problem lines "
                     f"({'/'.join(PROBLEM_LEVELS)}) per minute moved, each a series `service/{LOG_PROBLEMS}`")


def _logs_read_note(services: int) -> str:
    if not services:
        return "the logs too, which hold no WARN/ERROR/FATAL line"
    whose = "1 service's" if services == 1 else f"{services} services'"
    return f"the logs too: {whose} WARN/ERROR/FATAL lines per minute ({LOG_PROBLEMS}), none moved"


def anscombe(counts: np.ndarray) -> np.ndarray:
    """2 sqrt(x + 3/8): a Poisson count's variance-stabilising transform (its standard deviation about 1)."""
    return 2 * np.sqrt(np.maximum(counts, 0) + 0.375)


def _from_anscombe(value: float) -> float:
    return max((value / 2) ** 2 - 0.375, 0.0)


def _as_counts(span: Span) -> Span:
    return replace(span, baseline=_from_anscombe(span.baseline), peak_value=_from_anscombe(span.peak_value))


def _log_problem_series(store: Any) -> list[_Series]:
    """Each service with a problem line, its count of them in every minute the logs hold a line of any service's (0
    where it logged none): a minute with no line at all is a gap, not a quiet minute, so a stray line a year early
    costs one point, not a year of them."""
    table = store.fetch(LOG_PROBLEMS_SQL)
    if table.num_rows == 0:
        return []
    minutes = arrays.ints(table.column("minute").cast(pa.timestamp("ns")))
    problems = arrays.floats(table.column("problems").cast(pa.float64()))
    services = arrays.texts(table.column("service"))
    held, slot = np.unique(minutes, return_inverse=True)
    grid = held.view("datetime64[ns]")
    series = []
    for service in sorted({str(s) for s in services[problems > 0]}):  # one array per service, not per row
        mine = services == service
        counts = np.zeros(len(grid))
        np.add.at(counts, slot[mine], problems[mine])
        series.append(_Series(name=f"{service}/{LOG_PROBLEMS}", t=grid, y=counts, duplicates=0))
    return series


def _chosen_by(at: datetime | None, chosen: IncidentWindow, detector: str) -> str:
    if at is None:
        return "the longest window" if detector == "seed-zscore" else "the most severe window"
    if chosen.start <= at <= chosen.end:
        return f"the window containing --at {iso_z(at)}"
    return f"the window nearest --at {iso_z(at)} (none contains it)"


def _sensitivity_text(sensitivity: str | float | None, settings: RobustSettings) -> str:
    """The bars a `--sensitivity` sets, as the result states them: the opening bar, and the history bar it moves
    (a run must clear both: `weigh_against_history`)."""
    name = sensitivity if isinstance(sensitivity, str) and sensitivity in SENSITIVITY else None
    if sensitivity is None:
        name = "medium"
    label = f"{name}: " if name else ""
    return (f"{label}opening bar {settings.open_threshold:g} robust σ for a series of {settings.bar_points:,} points "
            "(lower for a shorter series, higher for a longer one), raised to "
            f"{settings.history_factor:.3g} x the least of the series' {settings.history_rank} largest earlier peaks "
            "at the same time scale when that is higher")


def _read_series(store: Any, sql: str) -> list[_Series]:
    table = store.fetch(sql)
    if table.num_rows == 0:
        return []
    names = table.column("series").combine_chunks().dictionary_encode()
    pods = table.column("pod").combine_chunks().dictionary_encode()
    codes, pod_codes = arrays.ints(names.indices), arrays.ints(pods.indices)
    t = arrays.ints(table.column("ts").cast(pa.timestamp("ns"))).view("datetime64[ns]")
    y = arrays.floats(table.column("value"))
    rows = arrays.ints(table.column("n_rows"))
    changes = (np.diff(codes) != 0) | (np.diff(pod_codes) != 0)
    bounds = np.concatenate(([0], np.flatnonzero(changes) + 1, [len(codes)]))
    dictionary, pod_names = names.dictionary.to_pylist(), pods.dictionary.to_pylist()
    return [
        _Series(name=dictionary[codes[a]], t=t[a:b], y=y[a:b], duplicates=int((rows[a:b] > 1).sum()),
                pod=pod_names[pod_codes[a]])
        for a, b in itertools.pairwise(bounds)
    ]


#: how a series of one of a service's several pods is told apart from its twins while windows are built
POD_KEY = " on pod "


def _pods_by_key(all_series: list[_Series]) -> dict[str, tuple[str, str]]:
    """Each series of a service with several pods, by its key (`service/metric on pod X`): (name, pod). Every pod's
    samples are a series of their own, so one bad replica shows undiluted by its healthy twin, and a replica's
    incident at one time is not hidden by its twin's at another."""
    several = Counter(s.name for s in all_series)
    return {f"{s.name}{POD_KEY}{s.pod}": (s.name, s.pod) for s in all_series if several[s.name] > 1}


def _key(source: _Series, pods: dict[str, tuple[str, str]]) -> str:
    key = f"{source.name}{POD_KEY}{source.pod}"
    return key if key in pods else source.name


def _naming_pods(windows: list[IncidentWindow], pods: dict[str, tuple[str, str]]) -> list[IncidentWindow]:
    """Each window's moved series by its name, with the pod that moved where its service has several (of two of its
    pods that moved in one window, the one that moved most: a service's metric counts once)."""
    if not pods:
        return windows
    named = []
    for window in windows:
        kept: dict[str, SeriesShift] = {}
        for shift in window.series:  # largest |shift| first
            name, pod = pods.get(shift.series, (shift.series, None))
            kept.setdefault(name, shift.model_copy(update={"series": name, "pod": pod}))
        series = list(kept.values())
        named.append(window.model_copy(update={
            "series": series, "severity": float(sum(min(abs(s.shift), SHIFT_CAP) for s in series))}))
    return sorted(named, key=lambda w: w.severity, reverse=True)


def _check_metric_names(store: Any, metrics: list[str], all_series: list[_Series]) -> None:
    """A metric asked for that the data has no series of is an error naming the metrics there are (the first 10)."""
    found = {s.name.rsplit("/", 1)[-1] for s in all_series}
    missing = [m for m in metrics if m not in found]
    if missing:
        names = [row["metric"] for row in
                 store.fetch("SELECT DISTINCT metric FROM metrics ORDER BY metric").to_pylist()]
        shown = ", ".join(names[:10]) + (f" and {len(names) - 10} more" if len(names) > 10 else "")
        raise InputError(f"metrics: no series for metric {', '.join(missing)}; the metrics are {shown}")


def detect_series(t: np.ndarray, y: np.ndarray, *, detector: str = "robust", at: datetime | None = None,
                  sensitivity: str | float | None = None) -> SeriesDetection:
    """One series as `detect` (so `incidentlens detect`) runs it: the robust detector at the settings of
    `--sensitivity`, its noise scale measured before `at` (naive UTC), or over the whole series without `at`; or the
    seed z-score. `eval nab` scores this function, so the benchmark measures the detector a user runs."""
    if detector == "seed-zscore":
        return seed_points(t, y)
    reference_end = np.datetime64(at, "ns") if at is not None else None
    return detect_points(t, y, reference_end=reference_end, settings=settings_for(sensitivity))


def _cleaning_notes(all_series: list[_Series], detections: dict[str, SeriesDetection],
                    pods: dict[str, tuple[str, str]]) -> list[str]:
    notes = []
    for source in all_series:
        detection = detections[_key(source, pods)]
        cleaning = detection.series.notes()
        if source.duplicates:
            cleaning.insert(0, f"{source.duplicates} duplicated timestamps averaged")
        if detection.score is None and detection.reason:
            cleaning.append(f"skipped: {detection.reason}")
        if cleaning:
            notes.append(f"{_key(source, pods)}: " + "; ".join(cleaning))
    return notes


def _merge_gap_ns(detections: dict[str, SeriesDetection], settings: RobustSettings) -> int:
    steps = [d.series.step_ns for d in detections.values() if d.series.step_ns > 0]
    return settings.merge_gap_steps * int(np.median(steps)) if steps else 0


Timed = tuple[int, int, str, Span]  # (start ns, exclusive end ns, series name, span)


def lone_series_bar(series_count: int, settings: RobustSettings) -> float:
    """The strength one series moving alone needs to make a window: the opening bar when it is the only series;
    over n series, the bar whose normal tail probability is the opening bar's divided by n (Bonferroni: the chance
    that any one of n quiet series crosses it stays the chance that one series crosses the opening bar)."""
    if series_count <= 1:
        return settings.open_threshold
    tail = 0.5 * math.erfc(settings.open_threshold / math.sqrt(2)) / series_count  # P(Z > bar) / n
    return -NormalDist().inv_cdf(tail)


def _robust_windows(detections: dict[str, SeriesDetection], merge_gap_ns: int,
                    lone_bar: float) -> list[IncidentWindow]:
    """Incident windows: cores where two or more series are anomalous at once (or one far past the bar for a
    sustained time), each widened to the spans that touch it, so the first series to move sets the onset and the
    last to recover the end, while single-series spans strung one after another do not chain incidents together."""
    spans = sorted((_timed(name, d, s) for name, d in detections.items() for s in d.spans), key=lambda i: i[0])
    if not spans:
        return []
    groups = [
        [item for item in spans if item[0] <= core_end + merge_gap_ns and item[1] >= core_start - merge_gap_ns]
        for core_start, core_end in _cores(spans, merge_gap_ns, lone_bar)
    ]
    windows = [_window(group, detections) for group in _merge_overlapping(groups)]
    return sorted(windows, key=lambda w: w.severity, reverse=True)


def _cores(spans: list[Timed], merge_gap_ns: int, lone_bar: float) -> list[tuple[int, int]]:
    """Intervals covered by at least MIN_AGREEING_SERIES spans at once, plus single spans past `lone_bar`;
    merged across gaps up to merge_gap_ns."""
    times = np.array([item[0] for item in spans] + [item[1] for item in spans], dtype=np.int64)
    delta = np.concatenate((np.ones(len(spans)), -np.ones(len(spans))))
    order = np.lexsort((delta, times))  # at the same time, an end before a start: touching is not overlapping
    coverage = np.cumsum(delta[order])
    agreed_starts, agreed_ends = runs(coverage[:-1] >= MIN_AGREEING_SERIES)
    sorted_times = times[order]
    cores = list(zip(sorted_times[agreed_starts].tolist(), sorted_times[agreed_ends + 1].tolist(), strict=True))
    cores += [(item[0], item[1]) for item in spans if item[3].strength >= lone_bar]
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
    """The tutorial's rule: the longest flagged run over all series is the window. Every run that overlaps no longer
    one is a window too, longest first (a shorter run inside a window is part of it, not a window of its own); a
    window's series are those flagged inside it, each read over its part inside it (onset and peak there)."""
    timed = [_timed(name, d, s) for name, d in detections.items() for s in d.spans]
    by_length = sorted(timed, key=lambda item: item[1] - item[0], reverse=True)
    windows: list[IncidentWindow] = []
    taken: list[tuple[int, int]] = []
    for longest in by_length:
        start_ns, end_ns = longest[:2]
        if any(start_ns < end and end_ns > start for start, end in taken):
            continue
        taken.append((start_ns, end_ns))
        group = [_timed(name, detections[name], _seed_part(detections[name], span, start_ns, end_ns))
                 for item_start, item_end, name, span in timed if item_start < end_ns and item_end > start_ns]
        windows.append(_window(group, detections))
        if len(windows) == SERIES_CAP:
            break
    return windows


def _seed_part(detection: SeriesDetection, span: Span, start_ns: int, end_ns: int) -> Span:
    """The part of a seed z-score run inside [start_ns, end_ns)."""
    t = detection.series.t.astype(np.int64)
    first = int(np.searchsorted(t, start_ns, side="left"))
    last = int(np.searchsorted(t, end_ns, side="left")) - 1
    return span_within(detection, span, first, last)


def _timed(name: str, detection: SeriesDetection, span: Span) -> tuple[int, int, str, Span]:
    """(start ns, end ns, series name, span) for sorting and merging spans of different series.

    The end is exclusive: a sample at t stands for [t, t + step), so the window ends one step after its last
    anomalous sample (a one-sample span lasts one step, and windows compare with end-exclusive truth)."""
    t = detection.series.t
    end = int(t[span.end].astype(np.int64)) + detection.series.step_ns
    return int(t[span.start].astype(np.int64)), end, name, span


def _held_end_ns(detection: SeriesDetection, span: Span, end_ns: int) -> int:
    """The exclusive end of a span's window: of a level shift, one step after the last point its level held."""
    if span.held_end is None:
        return end_ns
    return int(detection.series.t[span.held_end].astype(np.int64)) + detection.series.step_ns


def _window(group: list[tuple[int, int, str, Span]], detections: dict[str, SeriesDetection]) -> IncidentWindow:
    """An incident window from the spans of one group: per series its strongest span and earliest onset; it ends
    where the last of them ends, a level shift where its level ended (`Span.held_end`)."""
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
        end=_ns_to_datetime(max(_held_end_ns(detections[name], span, end) for _, end, name, span in group)),
        peak=top.peak_at,
        severity=float(sum(min(abs(s.shift), SHIFT_CAP) for s in shifts)),
        series=shifts,
    )


def _anchor(windows: list[IncidentWindow], at: datetime) -> IncidentWindow:
    """The window containing `at`, else the nearest one (distance to its nearer edge); of windows containing it
    (an incident during a level shift that still holds), the shortest."""
    def distance(window: IncidentWindow) -> tuple[timedelta, timedelta]:
        if window.start <= at <= window.end:
            return timedelta(0), window.end - window.start
        return min(abs(window.start - at), abs(window.end - at)), timedelta(0)
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


def _why_nothing(detections: dict[str, SeriesDetection], lone_bar: float) -> str:
    usable = [d for d in detections.values() if d.score is not None]
    if not usable:
        reasons = sorted({d.reason for d in detections.values() if d.reason})
        return "no series could be scored: " + "; ".join(reasons[:3])
    if any(d.spans for d in usable):
        return (f"deviations in {sum(bool(d.spans) for d in usable)} of {len(usable)} series were isolated: one "
                f"series alone, under the {lone_bar:.1f} σ one series needs when {len(usable)} are checked; "
                "not an incident")
    return f"no series deviated from its baseline for a sustained time ({len(usable)} series checked)"


def closest_miss(detections: dict[str, SeriesDetection], lone_bar: float,
                 settings: RobustSettings) -> dict[str, Any] | None:
    """What came closest to an incident: the series, when, its size against its baseline, and why it fell short
    (under the bar, too short, or one series alone among many); None when no series could be scored."""
    best: tuple[float, str, SeriesDetection, Span, str] | None = None
    for name, found in detections.items():
        for span in found.spans:  # opened a window on its own series, but stood alone
            why = (f"it moved alone: one series of {len(detections)} needs {lone_bar:.1f} σ, it reached "
                   f"{span.strength:.1f} σ against its bar")
            if best is None or span.strength / lone_bar > best[0]:
                best = (span.strength / lone_bar, name, found, span, why)
        miss = found.near_miss
        if miss is not None and (best is None or miss.span.strength / settings.open_threshold > best[0]):
            best = (miss.span.strength / settings.open_threshold, name, found, miss.span, miss.why)
    if best is None:
        return None
    _, name, found, span, why = best
    t = found.series.t
    end = int(t[span.end].astype(np.int64)) + found.series.step_ns
    return {
        "series": name, "start": iso_z(_to_datetime(t[span.start])), "end": iso_end(_ns_to_datetime(end)),
        "peak_at": iso_z(_to_datetime(t[span.peak])), "direction": span.direction,
        "baseline": _round(span.baseline), "peak": _round(span.peak_value), "shift": round(span.shift, 2),
        "strength": round(span.strength, 2), "why_short": why, "ask_for_more": _ask_for_more(span, settings),
    }


def _ask_for_more(span: Span, settings: RobustSettings) -> str:
    """How to lower the bars from where they are: `--sensitivity high` only while the bar is above high's (a user
    already at high was told to ask for high), and nothing where no opening bar could be met."""
    extend = DEFAULT_SETTINGS.extend_threshold
    if span.strength < extend:
        return f"no --sensitivity opens a window on it: every opening bar is above {extend:g} σ"
    if settings.open_threshold > SENSITIVITY["high"]:
        return (f"--sensitivity high (detect, analyze, investigate; opening bar {SENSITIVITY['high']:g} σ) or "
                "--sensitivity <σ> lowers the bars")
    return (f"--sensitivity <σ> under the {settings.open_threshold:g} σ given, and above {extend:g} (detect, analyze, "
            "investigate), lowers the bars further")


def _nothing(detector: str, reason: str, sql: str, notes: list[str], checked: int,
             miss: dict[str, Any] | None = None, sensitivity: str | None = None) -> DetectionResult:
    data: dict[str, Any] = {"reason": reason, "series_checked": checked, "notes": notes[:SERIES_CAP]}
    if miss is not None:
        data["closest_miss"] = miss
    evidence = Evidence.make("detection", f"{detector}: no incident found", sql, data)
    return DetectionResult(detector=detector, detected=False, reason=reason, series_checked=checked, notes=notes,
                           evidence=[evidence], closest_miss=miss, sensitivity=sensitivity)


def _to_datetime(moment: np.datetime64) -> datetime:
    """numpy datetime64 -> naive UTC datetime (microseconds)."""
    return np.datetime64(moment, "us").astype(datetime)


def _ns_to_datetime(ns: int) -> datetime:
    return _to_datetime(np.datetime64(ns, "ns"))
