"""False leads of the call-metrics wait where no fault is: OnlineBoutique's metrics, with and without its call metrics,
at a pseudo-onset before each fault.

`eval nezha --null` cannot test call metrics: its window runs from 30 s before the injection minute to the end of the
trace minute, too short for the minutes the wait needs (`callmetrics.MIN_INTERVALS`). Here the pseudo-onset is
LEAD before each injection (the earlier fault, about 8.5 min before it, has run its course for about two minutes),
the data cut at the injection minute (nothing of the fault itself), and the hour before it as the baseline; no logs
or traces, so only the metrics and the call metrics speak. Every hypothesis named there is a false lead: fewer, and
less sure, is better.

    .venv/bin/python benchmarks/calls_null_onlineboutique.py
"""

from __future__ import annotations

import tempfile
from datetime import timedelta
from pathlib import Path

import duckdb

from incidentlens.analysis import analyze
from incidentlens.eval.nezha import CallsCut, MetricsCut, load_faults, rca_dir
from incidentlens.telemetry import load_telemetry, sql_ts

DATA = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "nezha-onlineboutique"
LEAD = timedelta(minutes=4)


def main() -> None:
    if not DATA.is_dir():
        print(f"skipped: {DATA} not found")
        return
    faults = load_faults(DATA)
    stated: dict[str, list[tuple[float, str | None, str | None]]] = {"metrics": [], "metrics + calls": []}
    with tempfile.TemporaryDirectory(prefix="incidentlens-calls-null-") as scratch:
        cuts: dict[str, tuple[MetricsCut, CallsCut]] = {}
        for fault in faults:
            if fault.day not in cuts:
                folder = rca_dir(DATA, fault.day)
                cuts = {fault.day: (MetricsCut(folder, Path(scratch) / "m"), CallsCut(folder, Path(scratch) / "c"))}
            metrics, calls = cuts[fault.day]
            at = fault.inject_time - LEAD
            end = fault.inject_time.replace(second=0, microsecond=0)
            sources = {"metrics": _before(metrics.around(at), end, Path(scratch) / "metrics.parquet"),
                       "calls": _before(calls.around(at), end, Path(scratch) / "calls.parquet")}
            if sources["metrics"] is None:
                continue
            if at < _first_time(sources["metrics"]):
                continue  # the day's first fault: no data that long before it
            for name, given in (("metrics", {"metrics": sources["metrics"]}), ("metrics + calls", sources)):
                result = analyze(load_telemetry(**given), at=at, onset="at")
                top = result.hypotheses[0] if result.hypotheses else None
                stated[name].append((top.confidence if top else 0.0, top.kind if top else None,
                                     result.verdict.status if result.verdict else None))
                print(f"{at:%H:%M:%S} {name:16s} {(top.service, top.kind, top.confidence) if top else None} "
                      f"{result.verdict.status if result.verdict else result.reason}", flush=True)
    for name, runs in stated.items():
        count = len(runs)
        print(f"{name}: {count} pseudo-onsets, mean stated confidence {sum(c for c, _, _ in runs) / count:.3f}, "
              f"root cause named {sum(v == 'root_cause' for _, _, v in runs)}, at >= 50/70/90%: "
              f"{'/'.join(str(sum(c >= bar for c, _, _ in runs)) for bar in (0.5, 0.7, 0.9))}, "
              f"network delay named {sum(k == 'network_delay' for _, k, _ in runs)}")


def _first_time(path: Path) -> object:
    with duckdb.connect() as con:
        return con.execute(f"SELECT min(ts) FROM '{path}'").fetchone()[0]


def _before(path: Path | None, end: object, out: Path) -> Path | None:
    """The rows of `path` before `end` (nothing of the fault itself), as `out`; None when there are none."""
    if path is None:
        return None
    with duckdb.connect() as con:
        con.execute(f"COPY (SELECT * FROM '{path}' WHERE ts < {sql_ts(end)}) TO '{out}' (FORMAT parquet)")
        rows = con.execute(f"SELECT count(*) FROM '{out}'").fetchone()[0]
    return out if rows else None


if __name__ == "__main__":
    main()
