"""How far a series' scores go on their own: a bar set by a rate of false alarms in time, from the series' tail.

Peaks over threshold, as SPOT does (Siffer et al., "Anomaly detection in streams with extreme value theory", KDD
2017): the largest values of the score are fitted with a Generalized Pareto law, and the bar is its quantile that a
score passes `alarms_per_day` times a day. The values fitted are the score's maxima per block of time (an hour, or
one step when steps are longer), so five-minute and hourly data give the same bar for the same behaviour: an hour
of correlated five-minute scores is one value, as it is one value at hourly steps, and a long incident does not
fill the tail with its own points. A run is measured against the tail of the rest of the series: the blocks it
touches are left out of the fit, so it never raises its own bar, while the series' other excursions, before or
after it, do (what a series does several times over its days is its ordinary behaviour).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

HOUR_NS = 3_600 * 10**9
DAY_NS = 86_400 * 10**9
TAIL_FRACTION = 0.05  # the largest 5% of the block maxima are the tail ...
MIN_TAIL = 10  # ... and a fit needs this many: a series of 200 blocks (8.3 days of hours) or more
MAX_SHAPE = 0.5  # the fitted shape is held within +-0.5: a few blocks cannot make the tail unbounded


@dataclass(frozen=True)
class Blocks:
    """A series' points grouped in blocks of time: an hour, or one step when steps are longer."""

    block: np.ndarray  # per point, the index of its block
    starts: np.ndarray  # per block, the index of its first point
    probability: float  # per block, the chance of passing the tail bar: the alarms a day over the blocks a day


def blocks_of(t_ns: np.ndarray, step_ns: int, alarms_per_day: float) -> Blocks | None:
    """The blocks of a series, or None when it has too few for a tail (`MIN_TAIL` / `TAIL_FRACTION`) or no block
    has a chance of a false alarm under the tail's own fraction (steps of a day: one block a day holds no tail for
    a rate of alarms per day under one per 20 days)."""
    block_ns = max(HOUR_NS, step_ns)
    probability = alarms_per_day * block_ns / DAY_NS
    if alarms_per_day <= 0 or probability >= TAIL_FRACTION:
        return None
    ids = (t_ns - t_ns[0]) // block_ns
    new = np.concatenate(([False], ids[1:] != ids[:-1]))
    starts = np.concatenate(([0], np.flatnonzero(new)))
    if len(starts) * TAIL_FRACTION < MIN_TAIL:
        return None
    return Blocks(block=np.cumsum(new), starts=starts, probability=probability)


@dataclass(frozen=True)
class BlockTail:
    """A score's maxima per block, to fit the tail of the blocks a run does not touch."""

    blocks: Blocks
    maxima: np.ndarray  # per block, the largest value of the score in it (-inf: no value)
    order: np.ndarray = field(init=False)  # the blocks with a value, largest maximum first
    counted: np.ndarray = field(init=False)  # blocks with a value before each block (one more entry: all)
    bars: dict[tuple[int, int], float] = field(init=False, default_factory=dict)  # per left-out range of blocks

    def __post_init__(self) -> None:
        finite = np.isfinite(self.maxima)
        object.__setattr__(self, "order", np.flatnonzero(finite)[np.argsort(-self.maxima[finite], kind="stable")])
        object.__setattr__(self, "counted", np.concatenate(([0], np.cumsum(finite))))

    def bar(self, first: int, last: int) -> float:
        """The quantile of the tail fitted without the blocks of points `first`..`last` (indices into the series,
        clipped to it); 0.0 when the rest is too short for a tail."""
        block = self.blocks.block
        low, high = int(block[max(first, 0)]), int(block[min(last, len(block) - 1)])
        if (low, high) not in self.bars:
            left_out = int(self.counted[high + 1] - self.counted[low])
            count = len(self.order) - left_out
            size = int(TAIL_FRACTION * count)
            head = self.order[:size + 1 + left_out]
            top = self.maxima[head[(head < low) | (head > high)]][:size + 1]  # largest first
            self.bars[(low, high)] = pareto_bar(top[:-1][::-1] - top[-1], float(top[-1]), count,
                                                self.blocks.probability) if size >= MIN_TAIL else 0.0
        return self.bars[(low, high)]


def block_tail(blocks: Blocks, score: np.ndarray, skip: int) -> BlockTail:
    """The tail of `score` over `blocks`, leaving out its first `skip` values (a window mean not yet full)."""
    first = blocks.block[skip] if skip < len(score) else len(blocks.starts)
    maxima = np.full(len(blocks.starts), -np.inf)
    if first < len(blocks.starts):
        starts = np.maximum(blocks.starts[first:] - skip, 0)
        maxima[first:] = np.maximum.reduceat(score[skip:], starts)
    return BlockTail(blocks=blocks, maxima=maxima)


def pareto_bar(excess: np.ndarray, threshold: float, count: int, probability: float) -> float:
    """The value one of `count` values passes with `probability`, from a Generalized Pareto fit (probability-
    weighted moments, Hosking and Wallis 1987) to the `excess`es (ascending) of its largest ones over `threshold`;
    0.0 when `probability` is not beyond them or the fit fails (no spread)."""
    size = len(excess)
    if probability >= size / count:
        return 0.0
    a0 = float(np.mean(excess))
    a1 = float(np.mean(excess * np.arange(size - 1, -1, -1) / (size - 1)))
    if a0 <= 0 or a0 <= 2 * a1:
        return 0.0
    shape = float(np.clip(2 - a0 / (a0 - 2 * a1), -MAX_SHAPE, MAX_SHAPE))
    scale = 2 * a0 * a1 / (a0 - 2 * a1)
    ratio = probability * count / size  # the chance of passing the bar for a value already past the threshold
    if abs(shape) < 1e-9:
        return threshold - scale * math.log(ratio)
    return threshold + scale / shape * (ratio ** -shape - 1)
