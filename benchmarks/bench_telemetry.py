"""Loading speed: 10 million log rows in Parquet (typed and text times), and 1 million rows of wide CSV metrics.

Loading includes validation (one aggregate pass over every row); then the real Nezha day if present.
Prints seconds per step.
Run: .venv/bin/python benchmarks/bench_telemetry.py [rows]
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import duckdb

from incidentlens.telemetry import load_telemetry

LOG_ROWS = int(sys.argv[1]) if len(sys.argv) > 1 else 10_000_000
METRIC_ROWS = 1_000_000

LOGS_SQL = """
SELECT {time} AS ts,
       'svc-' || (i % 40) AS service,
       {level} AS level,
       'request ' || i || ' took ' || (i % 997) || ' ms' AS message,
       i % 997 AS latency_ms
FROM range({rows}) t(i)
"""
TYPED_TIME = "TIMESTAMP '2024-05-01' + INTERVAL (i // 100) SECOND"
TEXT_TIME = f"strftime({TYPED_TIME}, '%Y-%m-%dT%H:%M:%SZ')"
LEVEL_SQL = "CASE WHEN i % 50 = 0 THEN 'error' WHEN i % 10 = 0 THEN 'warning' ELSE 'info' END"


def timed(label: str, run) -> object:
    began = time.perf_counter()
    result = run()
    print(f"{label:<58} {time.perf_counter() - began:6.2f} s")
    return result


def write(con: duckdb.DuckDBPyConnection, sql: str, path: Path, options: str) -> Path:
    con.execute(f"COPY ({sql}) TO '{path}' ({options})")
    return path


def main() -> None:
    con = duckdb.connect()
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        typed = write(con, LOGS_SQL.format(time=TYPED_TIME, level=LEVEL_SQL, rows=LOG_ROWS),
                      out / "logs_typed.parquet", "FORMAT parquet")
        text = write(con, LOGS_SQL.format(time=TEXT_TIME, level=LEVEL_SQL, rows=LOG_ROWS),
                     out / "logs_text.parquet", "FORMAT parquet")
        print(f"{LOG_ROWS:,} log rows; {METRIC_ROWS:,} wide metric rows x 3 metrics")
        for label, path in (("typed times", typed), ("ISO text times", text)):
            store = timed(f"load Parquet logs, {label} (incl. validation)", lambda p=path: load_telemetry(logs=p))
            timed(f"  count by level, {label}",
                  lambda s=store: s.fetch("SELECT level, count(*) FROM logs GROUP BY level"))
        one_hour(con, out, typed)
        no_level = write(con, f"SELECT ts, service, message FROM '{typed}'", out / "logs_nolevel.parquet",
                         "FORMAT parquet")
        store = timed("load Parquet logs without a level column", lambda: load_telemetry(logs=no_level))
        timed("  count by level read from the message text",
              lambda: store.fetch("SELECT level, count(*) FROM logs GROUP BY level"))
        metrics = write(con, f"SELECT strftime(TIMESTAMP '2024-05-01' + INTERVAL (i) SECOND, '%Y-%m-%dT%H:%M:%SZ') "
                             f"AS ts, i % 100 AS rps, i % 977 AS p95_ms, (i % 13) / 100 AS error_rate "
                             f"FROM range({METRIC_ROWS}) t(i)", out / "metrics.csv.gz", "FORMAT csv, HEADER")
        store = timed("load gzip CSV wide metrics (incl. validation)", lambda: load_telemetry(metrics=metrics))
        timed("  avg per metric and hour",
              lambda: store.fetch("SELECT metric, date_trunc('hour', ts), avg(value) FROM metrics GROUP BY ALL"))


def one_hour(con: duckdb.DuckDBPyConnection, out: Path, typed: Path) -> None:
    """An hour's count through the `logs` view against the Parquet file itself, zoned times as the generator writes
    them (row groups outside the hour are skipped only when the time filter reaches the Parquet scan)."""
    zoned = write(con, f"SELECT timezone('UTC', ts) AS ts, * EXCLUDE (ts) FROM '{typed}'", out / "logs_zoned.parquet",
                  "FORMAT parquet")
    store = load_telemetry(logs=zoned)
    hour = "ts >= TIMESTAMP '2024-05-01 12:00:00' AND ts < TIMESTAMP '2024-05-01 13:00:00'"
    timed("  one hour's count, zoned times, through the logs view", lambda: store.fetch(
        f"SELECT count(*) FROM logs WHERE {hour}"))
    timed("  one hour's count, zoned times, the Parquet file directly", lambda: store.fetch(
        f"SELECT count(*) FROM '{zoned}' WHERE {hour.replace('TIMESTAMP', 'TIMESTAMPTZ')}"))


def nezha_day() -> None:
    """The real Nezha day (../shared/datasets), when present: 84 gzip CSV log files, 84 trace files, 47 metric files."""
    day = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "nezha-trainticket" / "rca_data" / "2023-01-29"
    if not day.is_dir():
        print(f"Nezha day not found at {day}: skipped")
        return
    store = timed("load the Nezha day (logs, traces, metrics)", lambda: load_telemetry(
        metrics=str(day / "metric" / "*.csv"), logs=str(day / "log" / "*.csv.gz"),
        traces=str(day / "trace" / "*.csv.gz")))
    for view in store.views:
        count = timed(f"  count {view} by service", lambda v=view: store.fetch(
            f"SELECT service, count(*) AS n FROM {v} GROUP BY service")).column("n").to_pylist()
        print(f"    {sum(count):,} rows")
    print(f"  warnings: {store.warnings}")


if __name__ == "__main__":
    main()
    nezha_day()
