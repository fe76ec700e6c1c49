"""Pushed-down ClickHouse logs against pulling the same rows into DuckDB: rows moved and time.

A table of generated log lines lives in ClickHouse (chdb, in-process: the same engine and SQL as a server). The
analysis's kind of queries (counts by service and minute, window-vs-baseline contrast by a dimension, masked
template counts, error samples) run two ways:

- pushdown: `ClickHouseLogs.fetch(sql)` rewrites each query for ClickHouse; only the aggregates come back;
- pull: every row of the canonical logs view is fetched once as Arrow and the queries run in DuckDB over it.

    .venv/bin/python benchmarks/bench_clickhouse.py [--rows 2000000]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import duckdb
import pyarrow as pa

from incidentlens.telemetry.clickhouse import ClickHouseLogs

WINDOW = "ts >= TIMESTAMP '2024-05-01 15:00:00' AND ts < TIMESTAMP '2024-05-01 17:00:00'"
BASELINE = "ts >= TIMESTAMP '2024-05-01 10:00:00' AND ts < TIMESTAMP '2024-05-01 15:00:00'"
QUERIES = {
    "per-minute counts": "SELECT service, date_trunc('minute', ts) AS minute, count(*) AS n, "
                         "count(*) FILTER (WHERE level = 'ERROR') AS errors FROM logs GROUP BY ALL",
    "contrast by region": f"SELECT region, count(*) FILTER (WHERE {WINDOW} AND level = 'ERROR') AS window_errors, "
                          f"count(*) FILTER (WHERE {BASELINE} AND level = 'ERROR') AS baseline_errors "
                          "FROM logs GROUP BY region",
    "masked templates": f"SELECT regexp_replace(message, '[0-9]+', '<*>', 'g') AS template, count(*) AS n, "
                        f"min(ts) AS first_seen FROM logs WHERE {WINDOW} GROUP BY template ORDER BY n DESC LIMIT 20",
    "error samples": f"SELECT ts, service, message FROM logs WHERE level = 'ERROR' AND {WINDOW} "
                     "ORDER BY ts LIMIT 5",
}


def generate_logs(rows: int, path: Path) -> Path:
    """A day of log lines: 12 services, 4 regions, levels, messages with numbers in them."""
    duckdb.sql(
        f"""
        COPY (
          SELECT TIMESTAMP '2024-05-01 00:00:00' + to_microseconds((i * 86400000000 // {rows})::BIGINT) AS ts,
                 'svc-' || (hash(i) % 12) AS service,
                 ['us-east-1', 'us-west-2', 'eu-west-1', 'ap-south-1'][1 + (hash(i * 7) % 4)::BIGINT] AS region,
                 CASE WHEN hash(i * 13) % 100 < 3 THEN 'ERROR' WHEN hash(i * 13) % 100 < 10 THEN 'WARN'
                      ELSE 'INFO' END AS level,
                 'GET /api/items/' || (hash(i * 17) % 5000) || ' ' ||
                 CASE WHEN hash(i * 13) % 100 < 3 THEN '503 upstream timeout after ' ELSE '200 in ' END ||
                 (hash(i * 19) % 900) || ' ms' AS message
          FROM range({rows}) t(i)
        ) TO '{path}' (FORMAT parquet)
        """
    )
    return path


def measure(rows: int) -> None:
    import chdb.session

    with tempfile.TemporaryDirectory(prefix="bench-clickhouse-") as scratch:
        parquet = generate_logs(rows, Path(scratch) / "logs.parquet")
        session = chdb.session.Session()
        session.query("CREATE DATABASE IF NOT EXISTS bench")
        session.query(
            "CREATE TABLE bench.logs ENGINE = MergeTree ORDER BY ts SETTINGS allow_nullable_key = 1 "
            f"AS SELECT * FROM file('{parquet}', Parquet)"
        )
        logs = ClickHouseLogs(lambda sql: session.query(sql, "ArrowTable"), "bench.logs", "chdb bench.logs")

        started = time.perf_counter()
        pushed = {name: logs.fetch(sql) for name, sql in QUERIES.items()}
        pushdown_seconds = time.perf_counter() - started
        pushdown_rows = sum(t.num_rows for t in pushed.values())
        pushdown_bytes = sum(t.nbytes for t in pushed.values())

        started = time.perf_counter()
        everything = session.query(f"SELECT * FROM ({logs.canonical_sql})", "ArrowTable")
        con = duckdb.connect()
        con.register("logs", everything)
        pulled = {name: con.sql(sql).to_arrow_table() for name, sql in QUERIES.items()}
        pull_seconds = time.perf_counter() - started
        session.close()

    same = all(_sorted(pushed[name]).num_rows == _sorted(pulled[name]).num_rows for name in QUERIES)
    print(f"{rows:,} log rows in ClickHouse (chdb); {len(QUERIES)} analysis queries; same row counts: {same}")
    print(f"{'path':10} {'rows moved':>12} {'bytes moved':>14} {'seconds':>9}")
    print(f"{'pushdown':10} {pushdown_rows:>12,} {pushdown_bytes:>14,} {pushdown_seconds:>9.2f}")
    print(f"{'pull':10} {everything.num_rows:>12,} {everything.nbytes:>14,} {pull_seconds:>9.2f}")
    print(f"pushdown moves {everything.num_rows / max(pushdown_rows, 1):,.0f}x fewer rows and is "
          f"{pull_seconds / pushdown_seconds:.1f}x faster")


def _sorted(table: pa.Table) -> pa.Table:
    return table.sort_by([(name, "ascending") for name in table.column_names])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=2_000_000, help="log lines in the ClickHouse table")
    measure(parser.parse_args().rows)


if __name__ == "__main__":
    main()
