"""How long `generate` takes for 1 million and 10 million log lines (parquet), per scenario kind.

Prints wall time and this process's CPU time: on a shared machine the wall time mostly measures the neighbours.

Run: .venv/bin/python benchmarks/bench_generate.py [--lines 1000000 10000000] [--scenario db-pool-exhaustion]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from incidentlens.scenarios import generate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, nargs="+", default=[1_000_000, 10_000_000])
    parser.add_argument("--scenario", nargs="+", default=["db-pool-exhaustion", "seed-tutorial"])
    parser.add_argument("--format", default="parquet", choices=["csv", "parquet", "jsonl"])
    args = parser.parse_args()
    print(f"{'scenario':22} {'lines':>12} {'format':>8} {'wall s':>8} {'cpu s':>7} {'lines/s':>12} {'logs MB':>9}")
    for scenario in args.scenario:
        for lines in args.lines:
            with tempfile.TemporaryDirectory() as out:
                started, cpu_started = time.perf_counter(), time.process_time()
                paths = generate(scenario, Path(out), seed=1, logs=lines, fmt=args.format)
                seconds, cpu = time.perf_counter() - started, time.process_time() - cpu_started
                size = paths["logs"].stat().st_size / 1e6
            print(f"{scenario:22} {lines:>12,} {args.format:>8} {seconds:>8.1f} {cpu:>7.1f} {lines / seconds:>12,.0f}"
                  f" {size:>9.1f}")


if __name__ == "__main__":
    main()
