"""Two faults at once on a real system: is a second fault named beside the first, or taken for its victim?

For each ordered pair (A, B) of a Nezha day's first error faults (`exception`, `return`) of two different services,
B's log and trace files (its own minutes: the one before its injection and the two after) are overlaid on A's (its
own minutes and the hour before them, as `eval nezha` gives a fault), every time in them moved so that B's injection
comes OFFSET seconds after A's; A's metrics are kept, B's are not (its fault shows in its logs and traces alone).
Then `analyze(store, at=A's injection, onset="at")`, as `eval nezha` runs a fault. Each service then serves both
stretches' requests, in traces of their own: a change in one service's requests that its callee's new errors do not
touch is a second fault, not the callee's error passed up.

Reported per system: the pairs whose best hypothesis is A's or B's service, those with both in the top three, the
root causes named and of those the wrong ones (neither A's nor B's service), how often the best hypothesis stated
80% or more while the other fault's service was not in the top three (one fault named for sure, the other hidden) and
in how many of those B's own injection lies in the hour of A's logs and traces before A (B's service already failing
in A's baseline, so its overlaid minutes are no change), the pairs where the other fault's service is named a second,
independent suspect beside the first (`verdict.second`) and those where a second suspect is neither fault's service,
and how often the best stated 80% or more without the other named as a second suspect.

    .venv/bin/python benchmarks/concurrent_nezha.py [--data DIR]... [--offset 30] [--json OUT]
"""

from __future__ import annotations

import argparse
import csv
import gzip
import itertools
import json
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import duckdb

from incidentlens.analysis import analyze
from incidentlens.eval import nezha
from incidentlens.telemetry import load_telemetry

DATASETS = Path(__file__).resolve().parents[2] / "shared" / "datasets"
ERROR_FAULTS = ("exception", "return")
CONFIDENT = 0.8


def first_error_faults(data: Path) -> list[nezha.NezhaFault]:
    """Each service's first fault of each error kind: its baseline holds no earlier fault of its own."""
    seen: set[tuple[str, str]] = set()
    chosen = []
    for fault in sorted(nezha.read_labels(data).faults, key=lambda f: f.inject_time):
        if fault.kind in ERROR_FAULTS and (fault.service, fault.kind) not in seen:
            seen.add((fault.service, fault.kind))
            chosen.append(fault)
    return chosen


def shifted_copy(con: duckdb.DuckDBPyConnection, role: str, paths: list[Path], shift: timedelta, out: Path) -> Path:
    """The files of one role (logs, traces) as one CSV, every time in them `shift` later."""
    nanos = int(shift.total_seconds() * 1e9)
    if role == "logs":
        moved = (f"strftime(CAST(Timestamp AS TIMESTAMPTZ) + to_microseconds({nanos // 1000}), "
                 f"'%Y-%m-%dT%H:%M:%S.%fZ') AS Timestamp, CAST(CAST(TimeUnixNano AS HUGEINT) + {nanos} AS VARCHAR) "
                 "AS TimeUnixNano")
    else:
        moved = (f"CAST(CAST(StartTimeUnixNano AS HUGEINT) + {nanos} AS VARCHAR) AS StartTimeUnixNano, "
                 f"CAST(CAST(EndTimeUnixNano AS HUGEINT) + {nanos} AS VARCHAR) AS EndTimeUnixNano")
    reads = "\nUNION ALL BY NAME\n".join(f"SELECT * REPLACE ({moved}) FROM {_as_text(path)}" for path in paths)
    con.execute(f"COPY ({reads}) TO '{out}' (HEADER)")
    return out


def _as_text(path: Path) -> str:
    """One minute file read as text by its own header (a file of long quoted lines defeats DuckDB's sniffer)."""
    with gzip.open(path, "rt") if path.suffix == ".gz" else path.open() as lines:
        header = next(csv.reader(lines))
    columns = "{" + ", ".join(f"'{name}': 'VARCHAR'" for name in header) + "}"
    return (f"read_csv('{path}', auto_detect = false, header = true, delim = ',', quote = '\"', escape = '\"', "
            f"columns = {columns}, ignore_errors = true, parallel = false)")  # as the loader sets bad rows aside


def run_pair(data: Path, a: nezha.NezhaFault, b: nezha.NezhaFault, offset: timedelta, metrics: nezha.MetricsCut,
             scratch: Path, con: duckdb.DuckDBPyConnection) -> dict[str, Any]:
    day_dir = nezha.rca_dir(data, a.day)
    files_a = nezha.fault_inputs(day_dir, a)
    # B's own minutes alone (the minute before its injection and two after): its hour before holds the day's other
    # faults, A's service's among them, which would land in A's baseline
    files_b = nezha.fault_inputs(nezha.rca_dir(data, b.day), b, history=timedelta(0))
    shift = a.inject_time + offset - b.inject_time
    extra = {role: [shifted_copy(con, role, paths, shift, scratch / f"b_{role}.csv")] if paths else []
             for role, paths in files_b.items()}
    store = load_telemetry(metrics=metrics.around(a.inject_time), logs=files_a["logs"] + extra["logs"],
                           traces=files_a["traces"] + extra["traces"])
    result = analyze(store, at=a.inject_time, onset="at")
    ranked = [h.service for h in result.hypotheses]
    named = result.verdict.service if result.verdict and result.verdict.status == "root_cause" else None
    second = result.verdict.second if result.verdict else None
    return {"a": f"{a.inject_time:%H:%M} {a.service} {a.kind}", "b": f"{b.inject_time:%H:%M} {b.service} {b.kind}",
            "ranked": ranked, "confidences": [h.confidence for h in result.hypotheses],
            "a_rank": ranked.index(a.service) + 1 if a.service in ranked else None,
            "b_rank": ranked.index(b.service) + 1 if b.service in ranked else None, "named": named, "second": second,
            # B's own injection in the hour of A's logs and traces before A: B's service failing in A's baseline
            "b_in_a_history": timedelta(0) < a.inject_time - b.inject_time <= nezha.LOG_HISTORY,
            "named_wrong": named is not None and named not in (a.service, b.service)}


def summary(rows: list[dict[str, Any]]) -> dict[str, Any]:
    first = sum(1 for r in rows if r["a_rank"] == 1 or r["b_rank"] == 1)
    both = sum(1 for r in rows if r["a_rank"] and r["b_rank"])
    hidden = [r for r in rows if r["confidences"] and r["confidences"][0] >= CONFIDENT
              and not (r["a_rank"] and r["b_rank"])]
    faults = [{r["a"].split()[1], r["b"].split()[1]} for r in rows]
    # the other fault's service named as a second, independent suspect beside the first (`verdict.second`)
    second = [r for r, pair in zip(rows, faults, strict=True) if r["second"] in pair and r["ranked"][0] in pair]
    return {"pairs": len(rows), "top1_either": first, "both_in_top3": both,
            "named": sum(1 for r in rows if r["named"]), "named_wrong": sum(1 for r in rows if r["named_wrong"]),
            "confident_with_the_other_hidden": len(hidden),
            "of_them_b_in_a_history": sum(1 for r in hidden if r["b_in_a_history"]),
            "second_named": len(second),
            "second_wrong": sum(1 for r, pair in zip(rows, faults, strict=True)
                                if r["second"] and r["second"] not in pair),
            "confident_without_the_other_as_second": sum(
                1 for r in rows if r["confidences"] and r["confidences"][0] >= CONFIDENT and r not in second)}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, action="append", help="a Nezha dataset directory (repeatable)")
    parser.add_argument("--offset", type=float, default=30.0, help="seconds from A's injection to B's")
    parser.add_argument("--json", type=Path, help="write every pair's result here")
    args = parser.parse_args(argv)
    datasets = args.data or [DATASETS / "nezha-trainticket", DATASETS / "nezha-onlineboutique"]
    report: dict[str, Any] = {}
    for data in datasets:
        if not data.is_dir():
            sys.exit(f"{data}: no such dataset (see ../shared/datasets/README.md)")
        faults = first_error_faults(data)
        rows = []
        started = time.perf_counter()
        con = duckdb.connect()
        con.execute("SET TimeZone = 'UTC'")
        for day in sorted({f.day for f in faults}):
            with tempfile.TemporaryDirectory() as tmp:
                scratch = Path(tmp)
                metrics = nezha.MetricsCut(nezha.rca_dir(data, day), scratch, nezha.METRIC_HISTORY)
                for a, b in itertools.permutations([f for f in faults if f.day == day], 2):
                    if a.service != b.service:
                        rows.append(run_pair(data, a, b, timedelta(seconds=args.offset), metrics, scratch, con))
        report[data.name] = {"summary": summary(rows), "seconds": round(time.perf_counter() - started, 1),
                             "pairs": rows}
        print(data.name, json.dumps(report[data.name]["summary"]), f"{report[data.name]['seconds']} s", flush=True)
    if args.json:
        args.json.write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
