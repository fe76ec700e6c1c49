"""Short events in generated series: event recall, precision and F1 of the robust detector and the tutorial's
z-score (no real series of these kinds ships with the project).

Two sets, each series with five events, up or down:
- `hourly`: eight weeks of hourly values, a daily cycle, a slow random walk, Student-t noise (5 degrees of freedom:
  heavy-tailed, the odd single hour 4-5 σ out); events of 4-8 hours at 4-8 noise scales.
- `minute`: two weeks of one-minute values, a daily cycle, noise correlated from minute to minute (AR(1), ρ 0.6,
  Student-t innovations with 4 degrees of freedom); events of 10-60 minutes at 4-8 noise standard deviations,
  level shifts or ramps up and back down.
An event is found when a window the detector opens starts inside it; a window starting outside every event is a
false alarm.

Run: .venv/bin/python benchmarks/bench_short_events.py [hourly|minute ...]
"""

from __future__ import annotations

import sys
from collections.abc import Callable

import numpy as np
from scipy.signal import lfilter

from incidentlens.analysis.detection import detect_points
from incidentlens.analysis.seed_zscore import seed_points

Events = list[tuple[int, int]]
Generator = Callable[[np.random.Generator], tuple[np.ndarray, np.ndarray, Events]]
SERIES = 40
EVENTS = 5


def hourly_series(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, Events]:
    hours = np.arange(1400)
    values = (100 + 20 * np.sin(2 * np.pi * hours / 24) + 3 * rng.standard_t(5, len(hours))
              + np.cumsum(rng.normal(0, 0.2, len(hours))))
    events = []
    for start in np.sort(rng.choice(np.arange(250, len(hours) - 20, 40), EVENTS, replace=False)):
        length = int(rng.integers(4, 9))
        values[start:start + length] += rng.uniform(4, 8) * 3 * rng.choice([-1, 1])
        events.append((int(start), int(start) + length - 1))
    return np.datetime64("2024-01-01T00:00", "ns") + hours * np.timedelta64(1, "h"), values, events


def minute_series(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, Events]:
    minutes = np.arange(14 * 1440)
    rho, innovation_scale = 0.6, 3.0
    noise = lfilter([1.0], [1.0, -rho], innovation_scale * rng.standard_t(4, len(minutes)))
    noise_sd = innovation_scale * np.sqrt(2 / (1 - rho**2))  # a t(4) innovation has variance 2
    values = 200 * (1 + 0.4 * np.sin(2 * np.pi * minutes / 1440)) + noise + np.cumsum(rng.normal(0, 0.05, len(minutes)))
    events = []
    for start in np.sort(rng.choice(np.arange(3000, len(minutes) - 100, 400), EVENTS, replace=False)):
        length = int(rng.integers(10, 61))
        shape = np.ones(length) if rng.random() < 0.6 else 1 - np.abs(np.linspace(-1, 1, length))
        values[start:start + length] += rng.uniform(4, 8) * noise_sd * rng.choice([-1, 1]) * shape
        events.append((int(start), int(start) + length - 1))
    return np.datetime64("2024-01-01T00:00", "ns") + minutes * np.timedelta64(1, "m"), values, events


SETS: dict[str, Generator] = {"hourly": hourly_series, "minute": minute_series}


def score_set(generate: Generator) -> None:
    rng = np.random.default_rng(0)
    totals = {"robust": [0, 0, 0], "seed-zscore": [0, 0, 0]}  # events found, windows opened, windows in an event
    for _ in range(SERIES):
        ts, values, events = generate(rng)
        for name, found in (("robust", detect_points(ts, values)), ("seed-zscore", seed_points(ts, values))):
            onsets = [span.start for span in found.spans]
            totals[name][0] += sum(any(a <= onset <= b for onset in onsets) for a, b in events)
            totals[name][1] += len(onsets)
            totals[name][2] += sum(any(a <= onset <= b for a, b in events) for onset in onsets)
    for name, (found, opened, inside) in totals.items():
        recall = found / (SERIES * EVENTS)
        precision = inside / opened if opened else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        print(f"  {name}: recall {recall:.2f}, precision {precision:.2f}, event F1 {f1:.2f}")


def main() -> None:
    for name in sys.argv[1:] or list(SETS):
        print(f"{name}: {SERIES} series x {EVENTS} events", flush=True)
        score_set(SETS[name])


if __name__ == "__main__":
    main()
