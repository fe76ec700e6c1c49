"""CPU seconds to read each view of one Nezha fault's files, as `analyze --at T --onset at` reads them.

For a fault of a Nezha day (`bench_fault_cli.py`'s files: the day's whole metric folder, the log and trace minute
files of the hour before the fault and its own three minutes), each view (metrics, logs, spans) is read alone by a
new store (`TelemetryStore.add_files`, what each of `load_telemetry`'s threads runs), twice in a process (the first
read also imports what reading needs), in `--runs` processes, and the least process CPU seconds of a read are
printed (one view alone: the process's CPU is that read's, on every thread DuckDB uses). `--against SRC`: the same
reads by the package of another source tree (e.g. `src` of a `git worktree` of an older commit), the processes of
the two in alternating order, so a busy shared machine slows both alike.

    .venv/bin/python benchmarks/bench_load_views.py [--against SRC] [--runs N] [system] [HH:MM ...]

The default: nezha-trainticket's 10:20 fault, whose hour holds a log minute file with a malformed line (10_06).
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from bench_fault_cli import DATASETS, command, faults_of

VIEWS = {"--metrics": "metrics", "--logs": "logs", "--traces": "spans"}


def view_files(system: str, at: str) -> dict[str, list[str]]:
    """The files of each view `bench_fault_cli` gives the CLI for the fault of `system`'s day at `at` (HH:MM)."""
    day_dir = next(d for d in sorted((DATASETS / system / "rca_data").glob("*")) if d.is_dir())
    fault = next(t for t, _ in faults_of(day_dir) if f"{t:%H:%M}" == at)
    args = command(day_dir, fault, Path("unused"))
    files: dict[str, list[str]] = {view: [] for view in VIEWS.values()}
    for option, value in itertools.pairwise(args):
        if option in VIEWS:
            files[VIEWS[option]].append(value)
    return files


def least_cpu(files: dict[str, list[str]], runs: int) -> dict[str, float]:
    """The least process CPU seconds of reading each view's files alone, over `runs` reads."""
    from incidentlens.telemetry.store import TelemetryStore

    least = {}
    for view, paths in files.items():
        seconds = []
        for _ in range(runs):
            started = time.process_time()
            store = TelemetryStore()
            store.add_files(view, paths)
            seconds.append(time.process_time() - started)
            store.con.close()
        least[view] = min(seconds)
    return least


def measured(files: dict[str, list[str]], src: str | None) -> dict[str, float]:
    """`least_cpu` of two reads in a process of its own, with `src` (a source tree) first on its path if given."""
    env = {**os.environ, "PYTHONPATH": src} if src else None
    done = subprocess.run([sys.executable, __file__, "--child", json.dumps(files), "2"], env=env,
                          capture_output=True, text=True, check=True)
    return json.loads(done.stdout.splitlines()[-1])


def main() -> None:
    if sys.argv[1:2] == ["--child"]:
        print(json.dumps(least_cpu(json.loads(sys.argv[2]), int(sys.argv[3]))))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--against")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("system", nargs="?", default="nezha-trainticket")
    parser.add_argument("at", nargs="*", default=["10:20"])
    options = parser.parse_args()
    if not (DATASETS / options.system).is_dir():
        print(f"skipped: no {options.system} under {DATASETS}")
        return
    for at in options.at:
        files = view_files(options.system, at)
        trees = [None, options.against] if options.against else [None]
        # a process of each tree after another, `runs` times over: the least of each tree's
        best: dict[str | None, dict[str, float]] = {}
        for _ in range(options.runs):
            for src in trees:
                once = measured(files, src)
                best[src] = {view: min(s, best.get(src, {}).get(view, s)) for view, s in once.items()}
        for src in trees:
            shown = ", ".join(f"{view} {seconds:.2f} s" for view, seconds in best[src].items())
            print(f"{options.system} {at} {'against ' + src if src else 'this tree'}: least CPU of "
                  f"{options.runs}: {shown}, in all {sum(best[src].values()):.2f} s")


if __name__ == "__main__":
    main()
