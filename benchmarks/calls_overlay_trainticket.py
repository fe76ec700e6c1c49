"""The call-metrics wait rule (`analysis.callmetrics`, shaped on OnlineBoutique's per-edge p50s) on the other system's
topology: TrainTicket's call metrics, made from its spans, with a network delay overlaid on one service.

The shared TrainTicket day has spans for three minutes around each fault (no call metrics, no network-delay fault).
From them, per minute and call edge, the p50 of the caller's span around each call (the client side) and of the
callee's span (the server side), as a service mesh would report them. A delay of DELAY ms is overlaid on every call
into one service from AT on (`overlay_delay_trainticket.overlay`: the caller's span and its ancestors last that much
longer, the service's own spans do not change). Then `analyze(store, at=AT, onset="at")` on the day's per-pod metrics
and these call metrics only, no spans and no logs, gives the service's rank. Each AT opens a three-minute block of
trace files (a fault of another service is injected in it: a competitor, not noise removed); without an overlay the
same run says what the rule names where no delay was added.

    .venv/bin/python benchmarks/calls_overlay_trainticket.py [DELAY_MS] [SERVICES]
    # default 30 ms into each of the 20 most called services, at each AT
"""

from __future__ import annotations

import importlib.util
import sys
import tempfile
from datetime import datetime, timedelta
from pathlib import Path

import duckdb

from incidentlens.analysis import analyze
from incidentlens.eval.nezha import MetricsCut
from incidentlens.telemetry import load_telemetry

DAY = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "nezha-trainticket" / "rca_data" / "2023-01-29"
#: the onsets: each opens a block of three trace minutes (10:50-52: ts-travel2-service's exception at 10:50:16;
#: 11:36-38: ts-price-service's at 11:36:06), after an hour and more of traced minutes before
ATS = (datetime(2023, 1, 29, 10, 49), datetime(2023, 1, 29, 11, 35))
#: the metrics before AT (the day's, from its first sample), as a user's Prometheus keeps them
METRIC_HISTORY = timedelta(hours=3)
_SPEC = importlib.util.spec_from_file_location("overlay_delay",
                                               Path(__file__).with_name("overlay_delay_trainticket.py"))
_OVERLAY = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(_OVERLAY)
SERVICE = _OVERLAY.SERVICE


def call_metrics(con: duckdb.DuckDBPyConnection, spans: str, out: Path) -> None:
    """Per minute and call edge, the p50 of the caller's spans around the calls (client) and of the callee's
    (server), long form as a service mesh reports them; `spans`: a relation of Nezha's span columns."""
    con.execute(f"""COPY (
    WITH sp AS (
        SELECT TraceID AS t, SpanID AS id, ParentID AS parent, {SERVICE.format('PodName')} AS service,
               make_timestamp(CAST(CAST(StartTimeUnixNano AS HUGEINT) // 1000 AS BIGINT)) AS start_ts,
               CAST(Duration AS DOUBLE) / 1000 AS ms
        FROM {spans}
    ), edges AS (
        SELECT date_trunc('minute', p.start_ts) + INTERVAL 30 SECOND AS ts, p.service AS caller, c.service AS callee,
               median(p.ms) AS client, median(c.ms) AS server
        FROM sp AS c JOIN sp AS p ON c.t = p.t AND c.parent = p.id WHERE c.service <> p.service GROUP BY ALL
    )
    UNPIVOT edges ON client, server INTO NAME side VALUE latency_ms
) TO '{out}' (FORMAT parquet)""")


def arguments() -> tuple[float, int]:
    """[DELAY_MS] [SERVICES] from the command line: 30 ms into each of the 20 most called services by default."""
    args = sys.argv[1:]
    return float(args[0]) if args else 30.0, int(args[1]) if len(args) > 1 else 20


def most_called(con: duckdb.DuckDBPyConnection, count: int) -> list[str]:
    """The day's spans loaded as table `base`, and its `count` most called services."""
    con.execute(f"CREATE TABLE base AS SELECT * FROM read_csv('{DAY}/trace/*_trace.csv.gz', header=true, "
                "all_varchar=true)")
    return [row[0] for row in con.execute(f"""
        SELECT {SERVICE.format('c.PodName')} AS service, count(*) FROM base AS p JOIN base AS c
            ON c.TraceID = p.TraceID AND c.ParentID = p.SpanID
        WHERE {SERVICE.format('c.PodName')} <> {SERVICE.format('p.PodName')}
        GROUP BY 1 ORDER BY 2 DESC, 1""").fetchall()][:count]


def main() -> None:
    if not DAY.is_dir():
        print(f"skipped: {DAY} not found")
        return
    delay_ms, count = arguments()
    con = duckdb.connect()
    services = most_called(con, count)
    first = runs = 0
    with tempfile.TemporaryDirectory(prefix="incidentlens-calls-overlay-") as scratch:
        metrics = MetricsCut(DAY, Path(scratch) / "metrics", METRIC_HISTORY)
        for at in ATS:
            cut = metrics.around(at)
            # before AT as it was; the overlay reads only the spans up to the window's end
            con.execute(f"CREATE OR REPLACE TABLE s AS SELECT * FROM base WHERE CAST(StartTimeUnixNano AS HUGEINT) "
                        f"< {_ns(at + timedelta(minutes=3))}")
            calls = Path(scratch) / "calls.parquet"
            call_metrics(con, "s", calls)
            top = _ranked(cut, calls, at)
            print(f"{at:%H:%M} no delay: top {top[:2]}", flush=True)
            for service in services:
                spans = Path(scratch) / "spans.csv"
                _OVERLAY.overlay(con, service, delay_ms, spans, at)
                call_metrics(con, f"read_csv('{spans}', header=true, all_varchar=true)", calls)
                ranked = _ranked(cut, calls, at)
                names = [name for name, _, _ in ranked]
                rank = names.index(service) + 1 if service in names else None
                first += rank == 1
                runs += 1
                print(f"{at:%H:%M} {service:34s} rank {rank}  top {ranked[:2]}", flush=True)
    print(f"{delay_ms:g} ms into each of {len(services)} services at {len(ATS)} onsets, metrics and call metrics "
          f"only: first in {first} of {runs}")


def _ranked(metrics: Path | None, calls: Path, at: datetime) -> list[tuple[str, str, float]]:
    """(service, kind, confidence) of each hypothesis, best first."""
    result = analyze(load_telemetry(metrics=metrics, calls=calls), at=at, onset="at")
    return [(h.service, h.kind, h.confidence) for h in result.hypotheses]


def _ns(moment: datetime) -> int:
    return int((moment - datetime(1970, 1, 1)).total_seconds() * 1e9)


if __name__ == "__main__":
    main()
