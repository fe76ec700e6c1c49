"""Nezha's shared days as an unseen day might differ from them: is the ranking still right, and still honest?

Each variant writes a perturbed copy of a Nezha dataset (the same folders, file names and columns) into a temporary
directory, linking what it leaves as it is, and scores it as `incidentlens eval nezha --data COPY --json` does (the
CLI itself, in a subprocess). Every variant is seeded: the same copy on every run.

- `sample50`, `sample20`: traces head-sampled, whole traces kept whose TraceID hashes into 50% (20%); the logs keep
  their lines (and the TraceIDs of dropped traces).
- `skew+2s`, `skew-2s`, `skew+30s`, `skew-30s`: every span's start and end 2 s (30 s) later (earlier) than the logs,
  metrics and labels say.
- `metrics+15s`, `metrics+30s`: every metric file's times (`Time`, `TimeStamp`; the call latency's `time`,
  `timestamp`) 15 s (30 s) later.
- `missing30`, `missing20`: a seeded 30% (20%) of the pods' `<pod>_metric.csv` files removed (the labelled pods
  neither spared nor aimed at; the 20% are among the 30%).
- `thin50`, `thin20`: a seeded 50% (20%) of the log lines kept.
- `sample50+skew2s`: `sample50` and `skew+2s` together.

A shifted span stays in the minute file it was in (a skewed tracer would name a few of them a minute later).

    .venv/bin/python benchmarks/perturb_nezha.py [--data DIR]... [--variant NAME]... [--out /tmp/perturb25] [--reuse]

The table: per variant and system, top-1 and top-3 counts, the root causes named and of those the wrong ones, the
calibration's ECE and seconds per fault; below it, each fault whose best hypothesis or its confidence changed.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb

from incidentlens.eval.nezha import POD_METRIC_SUFFIX
from incidentlens.telemetry.columns import literal, quote

SHARED = Path(__file__).resolve().parents[2] / "shared" / "datasets"
DAYS = (SHARED / "nezha-trainticket", SHARED / "nezha-onlineboutique")
SEED = "perturb25"
UNPERTURBED = "unperturbed"
NANOS = 10**9


@dataclass(frozen=True)
class Variant:
    """How a copy differs from the day: the share of traces (and of log lines) kept, the seconds the spans' and the
    metrics' clocks are off by, and the share of pods whose metric file is missing."""

    name: str
    trace_keep: float = 1.0
    trace_shift_s: int = 0
    metric_shift_s: int = 0
    pods_missing: float = 0.0
    log_keep: float = 1.0


VARIANTS = (
    Variant("sample50", trace_keep=0.5),
    Variant("sample20", trace_keep=0.2),
    Variant("skew+2s", trace_shift_s=2),
    Variant("skew-2s", trace_shift_s=-2),
    Variant("metrics+15s", metric_shift_s=15),
    Variant("missing30", pods_missing=0.3),
    Variant("thin50", log_keep=0.5),
    Variant("sample50+skew2s", trace_keep=0.5, trace_shift_s=2),
    Variant("skew+30s", trace_shift_s=30),
    Variant("skew-30s", trace_shift_s=-30),
    Variant("metrics+30s", metric_shift_s=30),
    Variant("missing20", pods_missing=0.2),
    Variant("thin20", log_keep=0.2),
)


def kept_sql(key_sql: str, share: float) -> str:
    """The condition of a row being kept, `share` of the values of `key_sql` (seeded, the same on every run)."""
    return f"(md5_number({literal(SEED + ':')} || {key_sql}) % 1000000) < {round(share * 1_000_000)}"


def shifted_time_sql(column: str, seconds: int) -> str:
    """Go's time string (`2023-01-29 08:41:09.712997733 +0000 UTC m=+0.78`) `seconds` later, the rest as it was."""
    name = quote(column)
    return (f"strftime(strptime(left({name}, 19), '%Y-%m-%d %H:%M:%S') + INTERVAL ({seconds}) SECOND, "
            f"'%Y-%m-%d %H:%M:%S') || substr({name}, 20)")


def trace_select(columns: list[str], variant: Variant) -> str:
    """The spans kept (whole traces), their start and end moved by the variant's skew."""
    shift = {name: f"CAST(CAST({quote(name)} AS HUGEINT) + {variant.trace_shift_s * NANOS} AS VARCHAR)"
             for name in ("StartTimeUnixNano", "EndTimeUnixNano") if name in columns and variant.trace_shift_s}
    where = kept_sql('"TraceID"', variant.trace_keep) if variant.trace_keep < 1 else "true"
    return _select(columns, shift, where)


def log_select(columns: list[str], variant: Variant) -> str:
    """The log lines kept: each line's whole text decides."""
    fields = ", ".join(f"coalesce({quote(c)}, '')" for c in columns)
    line = f"concat_ws('|', {fields})"
    return _select(columns, {}, kept_sql(line, variant.log_keep))


def metric_select(columns: list[str], variant: Variant) -> str:
    """A metric file's rows `metric_shift_s` later: Go's time string and the epoch seconds."""
    shift = {}
    for name in columns:
        if name.lower() == "time":
            shift[name] = shifted_time_sql(name, variant.metric_shift_s)
        elif name.lower() == "timestamp":
            shift[name] = f"CAST(CAST({quote(name)} AS BIGINT) + {variant.metric_shift_s} AS VARCHAR)"
    return _select(columns, shift, "true")


def _select(columns: list[str], replaced: dict[str, str], where: str) -> str:
    items = ", ".join(f"{replaced[c]} AS {quote(c)}" if c in replaced else quote(c) for c in columns)
    return f"SELECT {items} FROM source WHERE {where}"


def rewrite(con: duckdb.DuckDBPyConnection, source: Path, target: Path, select: Any, variant: Variant) -> bool:
    """`source` (CSV, gzipped or not) through `select(columns, variant)` into `target`, the same columns and
    compression; a file DuckDB cannot read (empty, truncated) is copied as it is (the loader then meets it as on the
    real day). Returns whether it was rewritten."""
    try:
        con.execute(f"CREATE OR REPLACE VIEW source AS SELECT * FROM read_csv({literal(str(source))}, "
                    "all_varchar = true, header = true)")
        columns = [row[0] for row in con.execute("DESCRIBE source").fetchall()]
        compression = "gzip" if source.name.endswith(".gz") else "none"
        con.execute(f"COPY ({select(columns, variant)}) TO {literal(str(target))} "
                    f"(FORMAT csv, HEADER, COMPRESSION {compression})")
        return True
    except duckdb.Error:
        shutil.copyfile(source, target)
        return False


def missing_pods(files: Iterable[Path], share: float) -> set[str]:
    """The names of a seeded `share` of the per-pod metric files (rounded), to leave out."""
    pods = sorted(path.name for path in files if POD_METRIC_SUFFIX in path.name)
    return set(random.Random(f"{SEED}:{len(pods)}").sample(pods, round(share * len(pods))))


def perturbed_copy(data: Path, out: Path, variant: Variant) -> Path:
    """`data` (a Nezha dataset directory) as `variant` makes it, in `out`: the folders a variant changes written
    anew, everything else linked. Returns `out`."""
    out.mkdir(parents=True, exist_ok=True)
    for item in data.iterdir():
        if item.name != "rca_data":
            (out / item.name).symlink_to(item)
    changed = {"trace": (trace_select, variant.trace_keep < 1 or variant.trace_shift_s != 0),
               "log": (log_select, variant.log_keep < 1),
               "metric": (metric_select, variant.metric_shift_s != 0 or variant.pods_missing > 0)}
    for day in sorted(p for p in (data / "rca_data").iterdir() if p.is_dir()):
        copy = out / "rca_data" / day.name
        copy.mkdir(parents=True)
        for item in day.iterdir():
            select, changes = changed.get(item.name, (None, False))
            if not (changes and item.is_dir()):
                (copy / item.name).symlink_to(item)
                continue
            _perturb_folder(item, copy / item.name, select, variant)
    return out


def _perturb_folder(folder: Path, target: Path, select: Any, variant: Variant) -> None:
    target.mkdir()
    files = sorted(folder.iterdir())
    left_out = missing_pods(files, variant.pods_missing) if folder.name == "metric" else set()
    con = duckdb.connect()
    try:
        for path in files:
            if path.name in left_out:
                continue
            timed = folder.name != "metric" or (variant.metric_shift_s and path.name != "dependency.csv")
            if timed and path.name.endswith((".csv", ".csv.gz")):
                rewrite(con, path, target / path.name, select, variant)
            else:
                (target / path.name).symlink_to(path)
    finally:
        con.close()


def run_eval(data: Path) -> dict[str, Any]:
    """`incidentlens eval nezha --data DATA --json` (the CLI, its error handling included); a failure's stderr."""
    done = subprocess.run([sys.executable, "-c", "from incidentlens.cli import main; main()", "eval", "nezha",
                           "--data", str(data), "--json"], capture_output=True, text=True, env=os.environ.copy(),
                          check=False)
    if done.returncode:
        return {"failed": done.returncode, "stderr": done.stderr[-2000:]}
    return json.loads(done.stdout)


def scored(data: Path, variant: Variant | None, out: Path, reuse: bool, tag: str = "") -> dict[str, Any]:
    """The variant's report on `data` (None: the day as it is), written to `out/<system>-<variant>[-tag].json`."""
    path = out / f"{system(data)}-{variant.name if variant else UNPERTURBED}{'-' + tag if tag else ''}.json"
    if reuse and path.is_file() and path.stat().st_size:
        return json.loads(path.read_text())
    if variant is None:
        report = run_eval(data)
    else:
        with tempfile.TemporaryDirectory(prefix=f"perturb-{variant.name}-") as scratch:
            report = run_eval(perturbed_copy(data, Path(scratch), variant))
    path.write_text(json.dumps(report, indent=1))
    return report


def system(data: Path) -> str:
    return data.name.removeprefix("nezha-")


def row(name: str, report: dict[str, Any]) -> str:
    if "failed" in report:
        return f"{name:<18} FAILED (exit {report['failed']}): {report['stderr'].strip().splitlines()[-1:]}"
    faults = report["faults"]
    return (f"{name:<18} {report['top1_count']:>2}/{faults:<3} {report['top3_count']:>2}/{faults:<3} "
            f"{report['named']:>5} {report['named_wrong']:>11} {report['calibration']['ece']:>6.3f} "
            f"{report['mean_seconds']:>6.1f}")


def changes(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    """Each fault whose best hypothesis, its confidence (by a point or more) or its verdict changed."""
    lines = []
    for old, new in zip(before["per_fault"], after["per_fault"], strict=True):
        was, now = _answer(old), _answer(new)
        if was[0] != now[0] or abs(was[1] - now[1]) >= 0.01 or was[2] != now[2]:
            lines.append(f"  {old['inject_time'][11:19]} {old['service']} ({old['kind']}): "
                         f"{_said(was, old['service'])} -> {_said(now, new['service'])}")
    return lines


def _answer(fault: dict[str, Any]) -> tuple[str, float, str]:
    top = fault["ranked"][0] if fault["ranked"] else "-"
    confidence = fault["confidences"][0] if fault["confidences"] else 0.0
    return top, confidence, fault["verdict"] or "-"


def _said(answer: tuple[str, float, str], labelled: str) -> str:
    top, confidence, verdict = answer
    return f"{'RIGHT' if top == labelled else top} {confidence:.0%} {verdict}"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, action="append", help="a Nezha dataset directory (repeatable)")
    parser.add_argument("--variant", action="append", choices=[v.name for v in VARIANTS], help="only these")
    parser.add_argument("--out", type=Path, default=Path(tempfile.gettempdir()) / "perturb25")
    parser.add_argument("--reuse", action="store_true", help="read a report already in --out instead of running")
    parser.add_argument("--tag", default="", help="a suffix of the reports' file names (a code change measured)")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    variants = [v for v in VARIANTS if not args.variant or v.name in args.variant]
    for data in args.data or DAYS:
        base = scored(data, None, args.out, args.reuse, args.tag)
        print(f"\n{system(data)}\n{'variant':<18} {'top-1':<6} {'top-3':<6} named named_wrong    ECE  s/flt")
        print(row(UNPERTURBED, base), flush=True)
        details = []
        for variant in variants:
            report = scored(data, variant, args.out, args.reuse, args.tag)
            print(row(variant.name, report), flush=True)
            if "failed" not in report and "failed" not in base:
                details.append((variant.name, changes(base, report)))
        for name, lines in details:
            print(f"{name}: {len(lines)} faults changed", *lines, sep="\n")


if __name__ == "__main__":
    main()
