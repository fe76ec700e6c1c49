"""Short events on hourly data: event recall, precision and F1 of the robust detector and the tutorial's z-score on
generated series (no real series of this kind ships with the project).

Each series: eight weeks of hourly values, a daily cycle, a slow random walk, Student-t noise (5 degrees of
freedom: heavy-tailed, the odd single hour 4-5 σ out) and five events of 4-8 hours at 4-8 noise scales, up or down.
An event is found when a window the detector opens starts inside it; a window starting outside every event is a
false alarm.

Run: .venv/bin/python benchmarks/bench_hourly_events.py
"""

from __future__ import annotations

import numpy as np

from incidentlens.analysis.detection import detect_points
from incidentlens.analysis.seed_zscore import seed_points

SERIES = 40
EVENTS = 5
HOURS = 1400


def one_series(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, list[tuple[int, int]]]:
    hours = np.arange(HOURS)
    values = (100 + 20 * np.sin(2 * np.pi * hours / 24) + 3 * rng.standard_t(5, HOURS)
              + np.cumsum(rng.normal(0, 0.2, HOURS)))
    events = []
    for start in np.sort(rng.choice(np.arange(250, HOURS - 20, 40), EVENTS, replace=False)):
        length = int(rng.integers(4, 9))
        values[start:start + length] += rng.uniform(4, 8) * 3 * rng.choice([-1, 1])
        events.append((int(start), int(start) + length - 1))
    return np.datetime64("2024-01-01T00:00", "ns") + hours * np.timedelta64(1, "h"), values, events


def main() -> None:
    rng = np.random.default_rng(0)
    totals = {"robust": [0, 0, 0], "seed-zscore": [0, 0, 0]}  # events found, windows opened, windows in an event
    for _ in range(SERIES):
        ts, values, events = one_series(rng)
        for name, found in (("robust", detect_points(ts, values)), ("seed-zscore", seed_points(ts, values))):
            onsets = [span.start for span in found.spans]
            totals[name][0] += sum(any(a <= onset <= b for onset in onsets) for a, b in events)
            totals[name][1] += len(onsets)
            totals[name][2] += sum(any(a <= onset <= b for a, b in events) for onset in onsets)
    for name, (found, opened, inside) in totals.items():
        recall = found / (SERIES * EVENTS)
        precision = inside / opened if opened else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        print(f"{name}: recall {recall:.2f}, precision {precision:.2f}, event F1 {f1:.2f} "
              f"({SERIES} series x {EVENTS} events)")


if __name__ == "__main__":
    main()
