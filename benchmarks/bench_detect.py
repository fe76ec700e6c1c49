"""Detection speed: one series of 1 million points, one day x 50 services x 4 metrics through the store, and one
10,000-point series through the `incidentlens detect` command (wall time, start-up included).

Run: .venv/bin/python benchmarks/bench_detect.py
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from incidentlens.analysis.detection import detect, detect_points
from incidentlens.analysis.seed_zscore import seed_points
from incidentlens.telemetry import load_telemetry

REPEATS = 3


def best_of(run, repeats: int = REPEATS) -> tuple[float, object]:
    times, result = [], None
    for _ in range(repeats):
        began = time.perf_counter()
        result = run()
        times.append(time.perf_counter() - began)
    return min(times), result


def one_million_points() -> None:
    rng = np.random.default_rng(0)
    n = 1_000_000
    ts = np.datetime64("2024-01-01", "ns") + np.arange(n).astype("timedelta64[s]")
    values = 100 + 10 * np.sin(np.arange(n) * 2 * np.pi / 86_400) + rng.normal(0, 1, n)
    values[600_000:603_600] += 8  # an hour-long shift
    elapsed, found = best_of(lambda: detect_points(ts, values))
    print(f"robust detect_points, 1,000,000 points (1 s step): {elapsed:.3f} s, spans found: {len(found.spans)}")
    elapsed, _ = best_of(lambda: seed_points(ts, values))
    print(f"seed-zscore, 1,000,000 points: {elapsed:.3f} s")


def fifty_services(directory: Path) -> None:
    rng = np.random.default_rng(1)
    minutes = 1440
    ts = np.datetime64(datetime(2024, 5, 1), "s") + np.arange(minutes).astype("timedelta64[m]")
    daily = np.sin(np.arange(minutes) * 2 * np.pi / minutes)
    parts = []
    for service in range(50):
        for metric, level, amplitude, noise in (("rps", 500, 200, 20), ("p95_ms", 180, 20, 8),
                                                ("error_ratio", 0.01, 0.0, 0.002), ("cpu", 0.4, 0.1, 0.03)):
            values = level + amplitude * daily + rng.normal(0, noise, minutes)
            if service < 3 and metric in ("p95_ms", "error_ratio"):
                values[900:1000] += 10 * noise
            parts.append(pa.table({"ts": ts, "service": [f"svc-{service:02d}"] * minutes,
                                   "metric": [metric] * minutes, "value": values}))
    path = directory / "metrics.parquet"
    pq.write_table(pa.concat_tables(parts), path)
    store = load_telemetry(metrics=str(path))
    for detector in ("robust", "seed-zscore"):
        elapsed, result = best_of(lambda detector=detector: detect(store, detector=detector))
        window = f"{result.window.start:%H:%M}-{result.window.end:%H:%M}" if result.detected else result.reason
        print(f"{detector} detect(store), 1 day x 50 services x 4 metrics (288,000 points): {elapsed:.3f} s, "
              f"window {window}, {len(result.window.series) if result.detected else 0} series moved")


def cli_ten_thousand_points(directory: Path) -> None:
    """`incidentlens detect --metrics series.csv --json` on one 5-minute series of 10,000 points, as a user runs it."""
    rng = np.random.default_rng(2)
    n = 10_000
    ts = np.datetime64("2024-01-01", "s") + (np.arange(n) * 300).astype("timedelta64[s]")
    values = 100 + 10 * np.sin(np.arange(n) * 2 * np.pi / 288) + rng.normal(0, 1, n)
    values[7000:7012] += 8  # an hour-long shift
    path = directory / "series.csv"
    pacsv.write_csv(pa.table({"ts": ts, "service": ["api"] * n, "metric": ["latency"] * n, "value": values}), path)
    command = [shutil.which("incidentlens") or str(Path(sys.executable).with_name("incidentlens")),
               "detect", "--metrics", str(path), "--json"]
    elapsed, _ = best_of(lambda: subprocess.run(command, check=True, capture_output=True))
    print(f"incidentlens detect --metrics series.csv --json, 10,000 points: {elapsed:.2f} s wall")


def main() -> None:
    one_million_points()
    with tempfile.TemporaryDirectory() as directory:
        fifty_services(Path(directory))
        cli_ten_thousand_points(Path(directory))
    print(f"(each figure: the best of {REPEATS} runs)")


if __name__ == "__main__":
    main()
