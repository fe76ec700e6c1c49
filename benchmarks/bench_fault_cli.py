"""Seconds per fault for `incidentlens analyze --at T --onset at` given a whole day's metric folder, as a user runs it.

For each Nezha day found (TrainTicket 2023-01-29: 47 per-pod files, about 800k metric rows; OnlineBoutique
2022-08-23), every labelled fault (or the first N) is analysed by the CLI in a fresh process:

    incidentlens analyze --at <inject_time> --onset at --metrics '<day>/metric/<glob>' \
        --logs <the day's log minute files of the hour before the fault's and its own> --traces <the same for traces> \
        --json --out <scratch>

so the figure includes starting Python, loading and validating the day's metrics, the analysis and writing
analysis.json. Each fault's rank of the labelled service (the injected pod without its replica-set suffix) in
analysis.json's hypotheses is printed too, with top-1 and top-3 per day: the accuracy of this path, where nothing
cuts the metrics to the hour around the fault as `incidentlens eval nezha` does. The metric glob is
`*_metric.csv` plus `front_service.csv` (the per-pod files and the front end's; OnlineBoutique's `dependency.csv`
is a call list with no time column). A day with per-edge call latency (OnlineBoutique's wide `source_50.csv` and
`destination_50.csv`, one column per call pair of `dependency.csv`) has it given as `--calls`, in the long `calls`
layout the CLI reads (time, caller, callee, side, latency): the file a user would write from them once, here written
once per day by `eval nezha`'s own conversion (`CallsCut`), the whole day of it, as the metrics are; not timed, as
the user's one step before. Prints each fault's wall seconds and the process's CPU seconds, then the
median and the worst per day. `--log-history MIN` (first; default 60, as `incidentlens eval nezha`): the minutes of
the day's log and trace files before the fault's own given too; 0, the fault's own three minutes alone.
`--against SRC` (first): each fault is also run with the package from another source tree (e.g. `src` of a
`git worktree` of an older commit) on its PYTHONPATH, the two runs side by side in alternating order, so a busy
shared machine slows both alike; both medians (wall and CPU) are printed, and whether the labelled service's rank
agrees. Needs ../shared/datasets/nezha-*.

    .venv/bin/python benchmarks/bench_fault_cli.py [--against SRC] [--log-history MIN] [faults per day] [system ...]
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path

from incidentlens.eval.nezha import ROLES, CallsCut, minute_file
from incidentlens.telemetry.logfields import service_of_pod

DATASETS = Path(__file__).resolve().parents[2] / "shared" / "datasets"
ARGS = sys.argv[1:]
AGAINST = ARGS[1] if ARGS[:1] == ["--against"] else None
ARGS = ARGS[2:] if ARGS[:1] == ["--against"] else ARGS
LOG_HISTORY = int(ARGS[1]) if ARGS[:1] == ["--log-history"] else 60
ARGS = ARGS[2:] if ARGS[:1] == ["--log-history"] else ARGS
SYSTEMS = tuple(ARGS[1:]) or ("nezha-trainticket", "nezha-onlineboutique")
METRIC_GLOBS = ("*_metric.csv", "front_service.csv")
# Log/trace files are one minute each, named for the minute they end at: the injection's minute and the next two,
# after the day's files of the LOG_HISTORY minutes before them (the files there are earlier faults' minutes)
FILE_MINUTES = range(-LOG_HISTORY, 3)


def faults_of(day_dir: Path) -> list[tuple[datetime, str]]:
    """The day's injections (`inject_time`, UTC, and the injected service), in order."""
    labels = next(day_dir.glob("*-fault_list.json"))
    by_hour = json.loads(labels.read_text())
    return sorted((datetime.fromisoformat(item["inject_time"]), service_of_pod(item["inject_pod"]))
                  for items in by_hour.values() for item in items)


def rank_of(service: str, out: Path) -> int | None:
    """The labelled service's place among analysis.json's hypotheses (None: not among them)."""
    analysis = out / "analysis.json"
    if not analysis.is_file():
        return None
    ranked = [h["service"] for h in json.loads(analysis.read_text()).get("hypotheses", [])]
    return ranked.index(service) + 1 if service in ranked else None


def command(day_dir: Path, at: datetime, out: Path, calls: Path | None = None) -> list[str]:
    """The CLI call a user would make for the fault at `at` (`calls`: the day's call latency in the long layout)."""
    minute = at.replace(second=0)
    names = [f"{minute + timedelta(minutes=k):%H_%M}" for k in FILE_MINUTES]
    args = [str(Path(sys.executable).parent / "incidentlens"), "analyze", "--at", f"{at.isoformat()}Z",
            "--onset", "at", "--json", "--out", str(out)]
    for glob in METRIC_GLOBS:
        args += ["--metrics", str(day_dir / "metric" / glob)]
    if calls is not None:
        args += ["--calls", str(calls)]
    for option, (_, folder, kind) in zip(("--logs", "--traces"), ROLES, strict=True):
        for name in names:
            path = minute_file(day_dir / folder, f"{name}{kind}")  # gzipped or plain
            if path is not None:
                args += [option, str(path)]
    return args


def run(args: list[str], src: str | None = None) -> tuple[float, float, int]:
    """(wall seconds, CPU seconds of the child, exit code); `src`: the package's source tree to run instead."""
    env = {**os.environ, "PYTHONPATH": src} if src else None
    before = os.times()
    started = time.perf_counter()
    done = subprocess.run(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, check=False, env=env)
    wall = time.perf_counter() - started
    after = os.times()
    if done.returncode:
        print(f"    exit {done.returncode}: {done.stderr.strip().splitlines()[-1:]}")
    cpu = (after.children_user - before.children_user) + (after.children_system - before.children_system)
    return wall, cpu, done.returncode


def main() -> None:
    limit = int(ARGS[0]) if ARGS else None
    days = [d for system in SYSTEMS for d in sorted((DATASETS / system / "rca_data").glob("*")) if d.is_dir()]
    if not days:
        print(f"skipped: no Nezha days under {DATASETS}")
        return
    with tempfile.TemporaryDirectory(prefix="incidentlens-bench-fault-") as scratch:
        for day_dir in days:
            walls, cpus, ranks, others, agree = [], [], [], [], 0
            calls = CallsCut(day_dir, Path(scratch) / day_dir.name).day
            for k, (at, service) in enumerate(faults_of(day_dir)[:limit]):
                out = Path(scratch) / f"{at:%H%M%S}"
                if AGAINST and k % 2:  # the other tree first on every second fault
                    others.append(run(command(day_dir, at, out / "against", calls), AGAINST)[:2])
                wall, cpu, code = run(command(day_dir, at, out, calls))
                if AGAINST and not k % 2:
                    others.append(run(command(day_dir, at, out / "against", calls), AGAINST)[:2])
                ranks.append(rank_of(service, out))
                agree += AGAINST is not None and rank_of(service, out / "against") == ranks[-1]
                print(f"  {day_dir.parts[-3]} {at:%Y-%m-%d %H:%M:%S}  {wall:.1f} s (cpu {cpu:.1f} s)  {service} rank "
                      f"{ranks[-1]}" + (f"  exit {code}" if code else "")
                      + (f"  (against: {others[-1][0]:.1f} s, cpu {others[-1][1]:.1f} s)" if AGAINST else ""),
                      flush=True)
                walls.append(wall)
                cpus.append(cpu)
            top1 = sum(rank == 1 for rank in ranks)
            top3 = sum(rank is not None and rank <= 3 for rank in ranks)
            print(f"{day_dir.parts[-3]} {day_dir.name}: {len(walls)} faults, seconds per fault median "
                  f"{statistics.median(walls):.1f}, worst {max(walls):.1f} (cpu median {statistics.median(cpus):.1f}); "
                  f"top-1 {top1}/{len(ranks)}, top-3 {top3}/{len(ranks)}; log history {LOG_HISTORY} min"
                  + ("; call latency given" if calls else "") + f"; load average {os.getloadavg()[0]:.1f}",
                  flush=True)
            if AGAINST:
                other_walls, other_cpus = zip(*others, strict=True)
                print(f"  against {AGAINST}, side by side: median {statistics.median(other_walls):.1f}, worst "
                      f"{max(other_walls):.1f} (cpu median {statistics.median(other_cpus):.1f}); the labelled "
                      f"service's rank the same on {agree}/{len(ranks)} faults", flush=True)


if __name__ == "__main__":
    main()
