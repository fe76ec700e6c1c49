"""A network delay overlaid on the real TrainTicket day, read as `eval nezha` reads a fault: the hour of the day's
log and trace files before it (earlier faults' minutes and all) and the day's per-pod metrics of the hour before.

The shared day has trace files only for the three minutes around each of its 28 faults, so a delay cannot start
minutes after a fault: there is no span there. It starts just before the next one instead, at `eval nezha --null`'s
pseudo-onset (`NULL_LEAD` before the injection's minute, with the injection minute's file, which holds the minute
before it, and the hour of files before that: `fault_inputs(minutes=(0,))`). Everything from the fault's own
injection on is cut away (its spans, log lines and metric samples), so the window holds the delay and whatever
earlier faults left, not the next fault: a clean delay with a history full of faults, as on a day of injections.
From the pseudo-onset on, DELAY ms is added to every call into one service (`overlay_delay_trainticket.overlay`;
`--both-ways`: its calls out and database round trips too, as chaosblade's delay on its pod slows its egress), and
`analyze(store, at=pseudo-onset, onset="at")` ranks the services.

    .venv/bin/python benchmarks/delay_day_trainticket.py [DELAY_MS] [SERVICES] [ONSETS] [--both-ways] [--repeat]
    # default 30 ms into each of the 10 most called services, before every 4th fault from the 4th (7 onsets);
    # --repeat: the same delay on the same service in the previous fault's three minutes, from its injection on
"""

from __future__ import annotations

import importlib.util
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

import duckdb

from incidentlens.analysis.spans import MIN_SPANS
from incidentlens.eval.nezha import (
    DAY,
    NULL_LEAD,
    MetricsCut,
    NezhaFault,
    Ranking,
    analysis_ranker,
    fault_files,
    fault_inputs,
    fault_store,
    load_faults,
    rca_dir,
)

_SPEC = importlib.util.spec_from_file_location("calls_overlay",
                                               Path(__file__).with_name("calls_overlay_trainticket.py"))
_CALLS = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(_CALLS)
_OVERLAY = _CALLS._OVERLAY
DATA = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "nezha-trainticket"


def main() -> None:
    if not (DATA / "rca_data" / DAY).is_dir():
        print(f"skipped: {DATA / 'rca_data' / DAY} not found")
        return
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    delay_ms = float(args[0]) if args else 30.0
    count = int(args[1]) if len(args) > 1 else 10
    onsets = int(args[2]) if len(args) > 2 else 7
    outgoing = "--both-ways" in sys.argv
    day = rca_dir(DATA, DAY)
    repeat = "--repeat" in sys.argv
    listed = load_faults(DATA, DAY)
    picked = list(range(3, len(listed), 4))[:onsets]  # the 4th on: an hour with earlier faults' minutes in it
    con = duckdb.connect()
    services = _CALLS.most_called(con, count)
    runs: list[tuple[int | None, Ranking, int]] = []
    seconds = 0.0
    with tempfile.TemporaryDirectory(prefix="incidentlens-delay-day-") as scratch:
        metrics = MetricsCut(day, Path(scratch) / "metrics")
        for number in picked:
            fault, previous = listed[number], listed[number - 1] if repeat else None
            at = fault.inject_time.replace(second=0, microsecond=0) - NULL_LEAD
            inputs = _before(con, day, fault, previous, metrics, Path(scratch))
            _delay(con, inputs, "", 0.0, at, previous, outgoing)
            print(f"{at:%H:%M:%S} (before {fault.service}'s {fault.kind}) no delay: {_top(_rank(inputs, at))}",
                  flush=True)
            for service in services:
                started = time.perf_counter()
                _delay(con, inputs, service, delay_ms, at, previous, outgoing)
                ranking = _rank(inputs, at)
                rank = ranking.services.index(service) + 1 if service in ranking.services else None
                calls = _calls(con, service, at, outgoing)
                runs.append((rank, ranking, calls))
                seconds += time.perf_counter() - started
                print(f"{at:%H:%M:%S} {service:34s} busiest edge {calls:3d} calls, rank {rank}  top {_top(ranking)}"
                      f"  {time.perf_counter() - started:.1f} s", flush=True)
    label = f"{delay_ms:g} ms{' both ways' if outgoing else ''}{', repeated' if repeat else ''}"
    print(f"{label} into each of {len(services)} services at {len(picked)} pseudo-onsets: {_summary(runs)}; "
          f"{seconds / len(runs):.1f} s a run")


def _summary(runs: list[tuple[int | None, Ranking, int]]) -> str:
    """First and top-3 among the runs where the delay is measurable (an edge of the service with `MIN_SPANS` calls
    after the onset), and the runs whose verdict named another service, with its confidence."""
    seen = [rank for rank, _, calls in runs if calls >= MIN_SPANS]
    wrong = [f"{r.services[0]} {r.confidences[0]:.0%}" for rank, r, _ in runs
             if r.verdict == "root_cause" and rank != 1]
    return (f"first {sum(rank == 1 for rank in seen)}, top-3 {sum(rank is not None and rank <= 3 for rank in seen)} "
            f"of the {len(seen)} measurable ({len(runs) - len(seen)} with under {MIN_SPANS} calls on every edge, "
            f"of them first "
            f"{sum(rank == 1 for rank, _, calls in runs if calls < MIN_SPANS)}); named wrong {len(wrong)}"
            f"{' (' + ', '.join(wrong) + ')' if wrong else ''}")


def _calls(con: duckdb.DuckDBPyConnection, service: str, at: datetime, outgoing: bool) -> int:
    """How many calls its busiest edge carried into `service` (`outgoing`: or out of it) from `at` on, in table
    `own`: a wait is measured on an edge with `MIN_SPANS` calls after the onset, so with fewer the delay is unseen."""
    callee, caller = _OVERLAY.SERVICE.format("c.PodName"), _OVERLAY.SERVICE.format("p.PodName")
    out_of = f"OR ({caller} = '{service}' AND {callee} <> '{service}')" if outgoing else ""
    found = con.execute(f"""SELECT count(*) FROM own AS p JOIN own AS c
        ON c.TraceID = p.TraceID AND c.ParentID = p.SpanID
        WHERE (({callee} = '{service}' AND {caller} <> '{service}') {out_of})
          AND CAST(p.StartTimeUnixNano AS HUGEINT) >= {_CALLS._ns(at)}
        GROUP BY {caller}, {callee} ORDER BY 1 DESC LIMIT 1""").fetchone()
    return found[0] if found else 0


def _before(con: duckdb.DuckDBPyConnection, day: Path, fault: NezhaFault, previous: NezhaFault | None,
            metrics: MetricsCut, scratch: Path) -> dict[str, list[Path]]:
    """The inputs of `eval nezha --null`'s pseudo-onset before `fault` (`fault_inputs(minutes=(0,))`: the hour's
    files and the injection minute's), everything from its injection on cut away: the injection minute's spans as
    table `own` (overlaid into the last trace path), its log lines and the hour's metrics into `scratch`; the spans
    of `previous`'s three minutes as table `previous` (overlaid into the path before it), when given."""
    files = fault_inputs(day, fault, minutes=(0,))
    *earlier, own = files["traces"]
    *logs, own_logs = files["logs"]
    until = _CALLS._ns(fault.inject_time)
    con.execute(f"CREATE OR REPLACE TABLE own AS SELECT * FROM read_csv('{own}', header=true, all_varchar=true) "
                f"WHERE CAST(StartTimeUnixNano AS HUGEINT) < {until}")
    con.execute(f"COPY (SELECT * FROM read_csv('{own_logs}', header=true, all_varchar=true) "
                f"WHERE CAST(TimeUnixNano AS HUGEINT) < {until}) TO '{scratch / 'logs.csv'}' (HEADER)")
    con.execute(f"COPY (SELECT * FROM '{metrics.around(fault.inject_time)}' WHERE ts < '{fault.inject_time}') "
                f"TO '{scratch / 'metrics.parquet'}' (FORMAT parquet)")
    overlaid = [scratch / "spans.csv"]
    if previous is not None:
        block = fault_files(day, previous)["traces"]
        con.execute(f"CREATE OR REPLACE TABLE previous AS SELECT * FROM read_csv({[str(p) for p in block]}, "
                    "header=true, all_varchar=true)")
        earlier = [path for path in earlier if path not in block]
        overlaid.insert(0, scratch / "previous.csv")
    return {"traces": [*earlier, *overlaid], "logs": [*logs, scratch / "logs.csv"],
            "metrics": [scratch / "metrics.parquet"]}


def _delay(con: duckdb.DuckDBPyConnection, inputs: dict[str, list[Path]], service: str, delay_ms: float,
           at: datetime, previous: NezhaFault | None, outgoing: bool) -> None:
    """Write the overlaid spans: the delay on `service` from `at` on, and from `previous`'s injection on in its
    minutes (the same service injected again, as TrainTicket does two to four times in a row)."""
    for table, since, out in [*((("previous", previous.inject_time, inputs["traces"][-2]),) if previous else ()),
                              ("own", at, inputs["traces"][-1])]:
        con.execute(f"CREATE OR REPLACE TABLE s AS SELECT * FROM {table}")
        _OVERLAY.overlay(con, service, delay_ms, out, since, outgoing)


def _rank(files: dict[str, list[Path]], at: datetime) -> Ranking:
    store, _ = fault_store({"traces": files["traces"], "logs": files["logs"]}, files["metrics"][0])
    return analysis_ranker(store, at)


def _top(ranking: Ranking) -> str:
    """The best hypothesis, its confidence, and whether the verdict names it (`!`: a root cause named)."""
    if not ranking.services:
        return "none"
    named = "!" if ranking.verdict == "root_cause" else ""
    return (f"{ranking.services[0]} {ranking.mechanisms[0]} {ranking.confidences[0]:.0%}{named}, then "
            f"{ranking.services[1:3]}")


if __name__ == "__main__":
    main()
