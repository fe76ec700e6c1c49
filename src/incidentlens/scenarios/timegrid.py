"""The time range every scenario covers: one-minute steps from a fixed start, and daily seasonality."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np

from incidentlens.errors import InputError

RANGE_START = datetime(2024, 5, 1, tzinfo=UTC)
MINUTE_MS = 60_000
MAX_HOURS = 366 * 24


@dataclass(frozen=True)
class TimeGrid:
    """`minutes` one-minute steps starting at `start_ms` (epoch milliseconds, UTC)."""

    start_ms: int
    minutes: int

    @classmethod
    def for_hours(cls, hours: float) -> TimeGrid:
        if not math.isfinite(hours) or hours > MAX_HOURS:
            raise InputError(f"--hours {hours}: the time range must be 1 to {MAX_HOURS} hours (a year)")
        minutes = round(hours * 60)
        if minutes < 60:
            raise InputError(f"--hours {hours}: the time range must be at least 1 hour")
        return cls(int(RANGE_START.timestamp() * 1000), minutes)

    @property
    def ms(self) -> np.ndarray:
        """Epoch milliseconds of every step."""
        return self.start_ms + np.arange(self.minutes, dtype=np.int64) * MINUTE_MS

    def at(self, minute: float) -> int:
        """Epoch milliseconds of a (fractional) minute offset."""
        return int(self.start_ms + round(minute * MINUTE_MS))

    def daily_load(self, peak_hour: float = 15.0, amplitude: float = 0.35) -> np.ndarray:
        """Relative traffic (mean 1) with a daily sine peaking at `peak_hour` UTC."""
        hour_of_day = (np.arange(self.minutes) / 60.0) % 24
        return 1.0 + amplitude * np.cos(2 * np.pi * (hour_of_day - peak_hour) / 24)


def spread_within_minutes(rng: np.random.Generator, grid: TimeGrid, minute_index: np.ndarray) -> np.ndarray:
    """Epoch ms for log lines: their minute plus a uniform offset inside it."""
    offsets = rng.integers(0, MINUTE_MS, size=len(minute_index), dtype=np.int64)
    return grid.start_ms + minute_index.astype(np.int64) * MINUTE_MS + offsets


def allocate_lines(rng: np.random.Generator, total: int, weights: np.ndarray) -> np.ndarray:
    """Split `total` log lines over the cells of `weights` (any shape): the cell index of every line, in cell order."""
    flat = np.clip(weights.reshape(-1).astype(np.float64), 0, None)
    counts = rng.multinomial(total, flat / flat.sum())
    return np.repeat(np.arange(flat.size), counts)
