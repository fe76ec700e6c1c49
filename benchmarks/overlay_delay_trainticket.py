"""A network delay overlaid on TrainTicket spans: the wait-on-calls rule, shaped on OnlineBoutique, scored on the
other system's span shapes (the shared TrainTicket day has no network-delay fault).

The day's fault-free reference minute (`construct_data/`, logs and traces) with, from its middle on, DELAY ms added
to every call into one service: the caller's client span and each of its ancestors last that much longer, the
service's own spans do not change (a delay on its network). For each of the most called services in turn, the rank
`analyze(store, at=middle, onset="at")` gives it.

    .venv/bin/python benchmarks/overlay_delay_trainticket.py [DELAY_MS] [SERVICES] [--already] [--both-ways] [--pairs]
    # default 30 ms into each of 20 services; --already: the delay runs from the minute's start, before the alert;
    # --both-ways: the service's calls to others are delayed too; --pairs: two delays, one already under way on
    # another service (SERVICES: how many of the most called to pair, e.g. 6)
"""

from __future__ import annotations

import itertools
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

import duckdb

from incidentlens.analysis import analyze
from incidentlens.telemetry import load_telemetry

REFERENCE = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "nezha-trainticket" / "construct_data" / \
    "2023-01-29"
AT = datetime(2023, 1, 29, 8, 49, 30)
EPOCH = datetime(1970, 1, 1)
SERVICE = "regexp_replace({}, '-[a-z0-9]+-[a-z0-9]+$', '')"  # the pod name without its replica-set suffix


def overlay(con: duckdb.DuckDBPyConnection, service: str, delay_ms: float, out: Path, since: datetime = AT,
            outgoing: bool = False) -> None:
    """The reference spans with `delay_ms` added to each call into `service` from `since` on (and, `outgoing`, to
    each of its calls to other services and to its database round trips: a delay on its network slows both ways),
    and to their ancestors."""
    at_ns = int((since - datetime(1970, 1, 1)).total_seconds() * 1e9)
    into = f"{SERVICE.format('c.PodName')} = '{service}' AND {SERVICE.format('p.PodName')} <> '{service}'"
    out_of = f"{SERVICE.format('p.PodName')} = '{service}' AND {SERVICE.format('c.PodName')} <> '{service}'"
    calls = f"(({into}) OR ({out_of}))" if outgoing else f"({into})"
    # its database round trips: the spans of its own with no children (JDBC statements), when its calls out are hit
    database = (f"""UNION ALL SELECT l.TraceID, l.SpanID FROM s AS l
            WHERE {SERVICE.format('l.PodName')} = '{service}' AND CAST(l.StartTimeUnixNano AS HUGEINT) >= {at_ns}
              AND NOT EXISTS (SELECT 1 FROM s AS k WHERE k.TraceID = l.TraceID AND k.ParentID = l.SpanID)"""
                if outgoing else "")
    con.execute(f"""COPY (
        WITH RECURSIVE hit AS (
            SELECT p.TraceID AS t, p.SpanID AS id
            FROM s AS p JOIN s AS c ON c.TraceID = p.TraceID AND c.ParentID = p.SpanID
            WHERE {calls} AND CAST(p.StartTimeUnixNano AS HUGEINT) >= {at_ns}
            {database}
        ), ancestors(t, id) AS (
            SELECT t, id FROM hit
            UNION ALL
            SELECT s.TraceID, s.ParentID FROM ancestors JOIN s ON s.TraceID = ancestors.t AND s.SpanID = ancestors.id
            WHERE s.ParentID <> 'root'
        ), bumps AS (SELECT t, id, count(*) AS n FROM ancestors GROUP BY ALL)
        SELECT s.TraceID, s.SpanID, s.ParentID, s.PodName, s.OperationName, s.StartTimeUnixNano,
               CAST(CAST(s.EndTimeUnixNano AS HUGEINT) + coalesce(b.n, 0) * {int(delay_ms * 1e6)} AS VARCHAR)
                   AS EndTimeUnixNano,
               CAST(CAST(s.Duration AS BIGINT) + coalesce(b.n, 0) * {int(delay_ms * 1e3)} AS VARCHAR) AS Duration
        FROM s LEFT JOIN bumps AS b ON b.t = s.TraceID AND b.id = s.SpanID
    ) TO '{out}' (HEADER)""")


def main() -> None:
    if not REFERENCE.is_dir():
        print(f"skipped: {REFERENCE} not found")
        return
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    # --already: the delay is there from the first span on, before the alert too (an earlier injection still going)
    since = EPOCH if "--already" in sys.argv else AT
    outgoing = "--both-ways" in sys.argv  # its calls to other services are delayed too
    delay_ms = float(args[0]) if args else 30.0
    count = int(args[1]) if len(args) > 1 else 20
    con = duckdb.connect()
    con.execute(f"CREATE TABLE base AS SELECT * FROM read_csv('{REFERENCE}/trace/08_50_trace.csv.gz', header=true, "
                "all_varchar=true)")
    con.execute("CREATE TABLE s AS SELECT * FROM base")
    # the services other services call (a delay on the calls into one with no callers adds nothing)
    services = [row[0] for row in con.execute(f"""
        SELECT {SERVICE.format('c.PodName')} AS service, count(*) FROM s AS p JOIN s AS c
            ON c.TraceID = p.TraceID AND c.ParentID = p.SpanID
        WHERE {SERVICE.format('c.PodName')} <> {SERVICE.format('p.PodName')}
        GROUP BY 1 ORDER BY 2 DESC, 1""").fetchall()]
    with tempfile.TemporaryDirectory(prefix="incidentlens-overlay-") as scratch:
        if "--pairs" in sys.argv:
            pairs(con, services[:count], delay_ms, outgoing, Path(scratch))
            return
        first = 0
        for service in services[:count]:
            started = time.perf_counter()
            spans = Path(scratch) / "spans.csv"
            overlay(con, service, delay_ms, spans, since, outgoing)
            rank, ranked = _rank(spans, service)
            first += rank == 1
            print(f"{service:34s} rank {rank}  top {ranked[:3]}  {time.perf_counter() - started:.1f} s", flush=True)
    print(f"{delay_ms:g} ms into each of {min(count, len(services))} services: first for {first}")


def pairs(con: duckdb.DuckDBPyConnection, services: list[str], delay_ms: float, outgoing: bool,
          scratch: Path) -> None:
    """Two delays: one on `old`'s calls from the minute's start (still going when the alert fires), one on `new`'s
    from the alert on; for each ordered pair of `services`, whether `new` comes first."""
    first = total = 0
    for old, new in itertools.permutations(services, 2):
        con.execute("CREATE OR REPLACE TABLE s AS SELECT * FROM base")
        overlay(con, old, delay_ms, scratch / "old.csv", EPOCH, outgoing)
        con.execute(f"CREATE OR REPLACE TABLE s AS SELECT * FROM read_csv('{scratch / 'old.csv'}', header=true, "
                    "all_varchar=true)")
        overlay(con, new, delay_ms, scratch / "spans.csv", AT, outgoing)
        rank, ranked = _rank(scratch / "spans.csv", new)
        first += rank == 1
        total += 1
        print(f"{old:30s} (already) {new:30s} rank {rank}  top {ranked[:3]}", flush=True)
    print(f"{delay_ms:g} ms from the alert on one service, another's already under way: the new one first in "
          f"{first} of {total} pairs")


def _rank(spans: Path, service: str) -> tuple[int | None, list[str]]:
    store = load_telemetry(traces=spans, logs=REFERENCE / "log" / "08_50_log.csv.gz")
    ranked = [h.service for h in analyze(store, at=AT, onset="at").hypotheses]
    return (ranked.index(service) + 1 if service in ranked else None), ranked


if __name__ == "__main__":
    main()
