"""The parts of the level-shift rule on their own: medians over periods of time, and how long a shifted level held."""

from __future__ import annotations

import numpy as np

from incidentlens.analysis.baseline import period_medians
from incidentlens.analysis.detection import held_shifts
from incidentlens.analysis.points import Span

HOUR = 3_600 * 10**9
DAY = 24 * HOUR


def hourly(days: int) -> np.ndarray:
    return np.arange(days * 24, dtype=np.int64) * HOUR


def test_the_medians_either_side_of_a_step_are_the_levels_before_and_after_it():
    t = hourly(6)
    y = np.where(t >= 3 * DAY, 10.0, 0.0)
    medians = period_medians(t, y, DAY, HOUR, min_points=4)
    at_step = int(np.searchsorted(medians.edges, 3 * DAY))
    assert medians.edges[at_step] == 3 * DAY
    assert (medians.before[at_step], medians.after[at_step]) == (0.0, 10.0)
    assert (medians.points_before[at_step], medians.points_after[at_step]) == (24, 24)


def test_a_gap_is_bridged_by_its_neighbours_and_a_day_that_holds_too_few_points_is_not_measured():
    t = hourly(8)
    kept = (t < 3 * DAY) | (t >= 3 * DAY + 21 * HOUR)  # 21 hours missing: that day holds 3 points
    t, y = t[kept], np.ones(kept.sum())
    medians = period_medians(t, y, DAY, HOUR, min_points=4)
    short = np.minimum(medians.points_before, medians.points_after) < 4
    assert short.any()
    assert np.isnan(medians.after[short]).all()
    assert (medians.after[~short] == 1.0).all()  # the empty bins took the level around them, not zero


def test_jittered_timestamps_give_the_levels_of_the_same_series_on_a_grid():
    rng = np.random.default_rng(3)
    grid = hourly(6)
    jittered = np.sort(grid + rng.integers(-10, 10, grid.size) * 60 * 10**9)
    y = np.where(grid >= 3 * DAY, 5.0, 1.0)
    even, uneven = period_medians(grid, y, DAY, HOUR, 4), period_medians(jittered, y, DAY, HOUR, 4)
    step_even = int(np.nanargmax(even.after - even.before))
    step_uneven = int(np.nanargmax(uneven.after - uneven.before))
    assert abs(int(even.edges[step_even]) - int(uneven.edges[step_uneven])) <= HOUR
    assert (uneven.before[step_uneven], uneven.after[step_uneven]) == (1.0, 5.0)


def shift(start: int, direction: str, before: float, after: float, strength: float = 10.0) -> Span:
    return Span(start=start, end=start + 23, peak=start, direction=direction, baseline=before, peak_value=after,
                shift=after - before, strength=strength)


def test_a_level_that_never_returns_holds_to_the_last_point():
    (up,) = held_shifts([shift(100, "up", 0.0, 10.0)], bar=5.0, last=499)
    assert up.held_end == 499


def test_a_return_to_the_level_before_is_the_recovery_and_ends_the_level_before_it():
    kept = held_shifts([shift(100, "up", 0.0, 10.0), shift(200, "down", 10.0, 1.0)], bar=5.0, last=499)
    assert [s.start for s in kept] == [100]  # the recovery is not an incident of its own
    assert kept[0].held_end == 199


def test_an_overshoot_past_the_level_before_is_not_a_recovery_but_a_shift_of_its_own():
    kept = held_shifts([shift(100, "up", 0.0, 10.0), shift(200, "down", 10.0, -8.0)], bar=5.0, last=499)
    assert [(s.start, s.direction, s.held_end) for s in kept] == [(100, "up", 199), (200, "down", 499)]


def test_a_weak_shift_that_does_not_reach_the_bar_opens_nothing_and_ends_nothing():
    kept = held_shifts([shift(100, "up", 0.0, 10.0), shift(150, "up", 10.0, 11.0, strength=2.0)], bar=5.0,
                       last=499)
    assert [s.held_end for s in kept] == [499, None]


def test_a_return_in_two_steps_ends_the_level_at_the_stronger_step():
    kept = held_shifts([shift(100, "up", 0.0, 10.0), shift(200, "down", 10.0, 4.0, strength=6.0),
                        shift(210, "down", 10.0, 0.5, strength=12.0)], bar=5.0, last=499)
    assert [s.start for s in kept] == [100]
    assert kept[0].held_end == 209
