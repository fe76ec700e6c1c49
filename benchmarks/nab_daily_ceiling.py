"""How many NAB windows any detector that alarms on a day's distance from its series' median could find at 1 day.

NAB resampled to one point a day as `incidentlens eval nab --cadence 1d` does it (`eval.nab.resample`: the mean of
each UTC day; a labelled window becomes the days it touches). For each labelled window: does its most extreme daily
mean (its distance from a baseline) lie beyond every daily mean outside the windows after the probationary 15%? If
so, some threshold on that distance, chosen per series with the labels in hand, finds it with no false alarm; if
not, no such threshold does. Three baselines, each a family of detectors: the series' median; the days before it
(median and MAD of every earlier day, as a detector that learns as it goes); a straight line fitted to the series
(least squares, for a trend). Printed per half (`eval.nab.split_of`) and baseline: the windows so findable, and the
event F1 they would give at precision 1 (an upper bound for that family; it says nothing of detectors reading the
5-minute data inside each day, which a daily series does not have). Then, for detectors trading precision for recall,
the event F1 of alarming on each series' k most distant days (k = 1, 2, 3) from each baseline, with no bar at all.

    .venv/bin/python benchmarks/nab_daily_ceiling.py [NAB dir, default ../shared/datasets/nab]
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from incidentlens.eval.nab import (
    CADENCES,
    HALVES,
    PROBATIONARY_FRACTION,
    load_labels,
    load_series,
    resample,
    split_of,
)

DATA = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parents[2] / "shared/datasets/nab"


def from_median(means: np.ndarray) -> np.ndarray:
    return np.abs(means - np.nanmedian(means))


def from_days_before(means: np.ndarray) -> np.ndarray:
    """Each day's distance from the median of the days before it, in their MAD (NaN for the first three days)."""
    distance = np.full(len(means), np.nan)
    for day in range(3, len(means)):  # a few hundred days at most
        before = means[:day]
        centre = np.nanmedian(before)
        distance[day] = abs(means[day] - centre) / (np.nanmedian(np.abs(before - centre)) + 1e-9)
    return distance


def from_trend(means: np.ndarray) -> np.ndarray:
    """Each day's distance from a least-squares line through the series (its residual's distance from their median)."""
    known = np.isfinite(means)
    if known.sum() < 3:
        return np.full(len(means), np.nan)
    t = np.arange(len(means))
    residual = means - np.polyval(np.polyfit(t[known], means[known], 1), t)
    return np.abs(residual - np.nanmedian(residual))


ALARMS = (1, 2, 3)
BASELINES = {"the series' median": from_median, "the days before": from_days_before, "a straight line": from_trend}


def findable(days: np.ndarray, distance: np.ndarray, windows: np.ndarray) -> tuple[int, int]:
    """(windows whose most extreme daily distance is beyond every distance outside the windows, windows with a scored
    day)."""
    scored = np.arange(len(days)) >= int(PROBATIONARY_FRACTION * len(days))
    inside = np.zeros(len(days), dtype=bool)
    for start, end in windows:
        inside |= (days >= start) & (days <= end)
    outside = distance[scored & ~inside & np.isfinite(distance)]
    bar = outside.max() if outside.size else -np.inf
    found = counted = 0
    for start, end in windows:
        mine = distance[scored & (days >= start) & (days <= end) & np.isfinite(distance)]
        counted += bool(mine.size)  # a window wholly in the probationary days is not scored
        found += bool(mine.size and mine.max() > bar)
    return found, counted


def most_extreme_days(days: np.ndarray, distance: np.ndarray, windows: np.ndarray, k: int) -> tuple[int, int, int, int]:
    """A detector that alarms on the k most distant scored days of every series, whatever their size: (windows with a
    scored day, windows an alarm fell in, alarms, alarms inside a window). It trades precision for recall, which the
    precision-1 bound above does not."""
    first_scored = int(PROBATIONARY_FRACTION * len(days))
    scored_windows = windows[windows[:, 1] >= days[first_scored]]
    ranked = np.where(np.arange(len(days)) >= first_scored, np.nan_to_num(distance, nan=-np.inf), -np.inf)
    alarms = days[[i for i in np.argsort(-ranked)[:k] if np.isfinite(ranked[i])]]
    inside = (alarms[:, None] >= scored_windows[None, :, 0]) & (alarms[:, None] <= scored_windows[None, :, 1])
    return len(scored_windows), int(inside.any(axis=0).sum()), len(alarms), int(inside.any(axis=1).sum())


def main() -> None:
    if not (DATA / "labels" / "combined_windows.json").is_file():
        print(f"skipped: NAB not found at {DATA}")
        return
    labels = load_labels(DATA)
    halves = split_of(labels)
    totals = {(half, baseline): [0, 0] for half in HALVES for baseline in BASELINES}
    always = {(half, baseline, k): np.zeros(4, int) for half in HALVES for baseline in BASELINES for k in ALARMS}
    for key, windows in labels.items():
        ts, values = load_series(DATA / "data" / key)
        days, means, mapped = resample(ts, values, windows, CADENCES["1d"])
        for baseline, distance in BASELINES.items():
            found, scored = findable(days, distance(means), mapped)
            totals[(halves[key], baseline)][0] += found
            totals[(halves[key], baseline)][1] += scored
            for k in ALARMS:
                always[(halves[key], baseline, k)] += most_extreme_days(days, distance(means), mapped, k)
    for (half, baseline), (found, scored) in totals.items():
        recall = found / scored if scored else 0.0
        best_f1 = 2 * recall / (1 + recall) if recall else 0.0
        print(f"{half}, from {baseline}: {found} of {scored} windows findable from daily means; recall at most "
              f"{recall:.2f}, event F1 at most {best_f1:.2f}")
    print("A detector alarming on each series' k most distant days (no threshold; precision traded for recall):")
    for (half, baseline, k), (scored, found, alarms, inside) in always.items():
        recall, precision = found / scored, inside / alarms
        f1 = 2 * recall * precision / (recall + precision) if recall + precision else 0.0
        print(f"  {half}, from {baseline}, k {k}: recall {recall:.2f}, precision {precision:.2f}, event F1 {f1:.2f}")


if __name__ == "__main__":
    main()
