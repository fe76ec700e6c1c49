"""What reading structured (JSON) log lines by their fields costs, and what it costs logs that are plain text.

1. Generated: N rows (default 2M) in Parquet, read in place (so every query reads the lines again), whose message
   column holds container-wrapped JSON lines of three libraries' shapes (logrus, pino, structlog), then the same
   rows with plain-text messages: load, a count by level and a count of distinct messages.
2. The real Nezha log minutes when present (../shared/datasets): TrainTicket's 84 minutes (plain text in a
   container wrapper) and OnlineBoutique's minute (JSON lines of Go, Node and Python services); small CSV files are
   canonicalised once at load, so the load carries the cost there.
Best of three runs per step, wall and CPU seconds (CPU: steadier on a shared machine).
Run: .venv/bin/python benchmarks/bench_structured_logs.py [rows]
"""

from __future__ import annotations

import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import duckdb

from incidentlens.telemetry import load_telemetry

ROWS = int(sys.argv[1]) if len(sys.argv) > 1 else 2_000_000
DATASETS = Path(__file__).resolve().parents[2] / "shared" / "datasets"

# One line in three from each library; the level an error one time in fifty.
LEVEL = "CASE WHEN i % 50 = 0 THEN 'error' ELSE 'info' END"
JSON_LINE = f"""CASE i % 3
    WHEN 0 THEN json_object('message', 'TraceID: ' || md5(i::VARCHAR) || ' List products end', 'severity', {LEVEL},
                            'timestamp', '2024-05-01T10:00:00Z')
    WHEN 1 THEN json_object('level', CASE WHEN i % 50 = 1 THEN 50 ELSE 30 END, 'time', 1714557600000 + i, 'pid', 1,
                            'hostname', 'currencyservice-cf787dd48-vpjrd', 'msg', 'conversion request ' || i, 'v', 1)
    ELSE json_object('event', 'recommendations for ' || (i % 997), 'level', {LEVEL}, 'logger', 'recommender')
END"""
TEXT_LINE = f"'12:00:00.000 ' || upper({LEVEL}) || ' t.s.Service: List products end for ' || md5(i::VARCHAR)"
LOGS_SQL = """
SELECT TIMESTAMP '2024-05-01' + INTERVAL (i // 100) SECOND AS ts, 'svc-' || (i % 12) AS pod,
       json_object('log', ({line}) || chr(10), 'stream', 'stdout') AS log
FROM range({rows}) t(i)
"""
QUERIES = {
    "count by level": "SELECT level, count(*) FROM logs GROUP BY level",
    "distinct messages": "SELECT count(DISTINCT message) FROM logs",
}


def best_of(runs: int, work: Callable[[], object]) -> tuple[float, float, object]:
    """The least wall and CPU seconds (all threads) of `runs` runs, and the result."""
    walls, cpus, result = [], [], None
    for _ in range(runs):
        wall, cpu = time.perf_counter(), time.process_time()
        result = work()
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
    return min(walls), min(cpus), result


def measure(label: str, logs: object) -> None:
    wall, cpu, store = best_of(3, lambda: load_telemetry(logs=logs))
    rows = store.fetch("SELECT count(*) AS n FROM logs").column("n")[0].as_py()
    errors = store.fetch("SELECT count(*) AS n FROM logs WHERE level = 'ERROR'").column("n")[0].as_py()
    print(f"{label}: {rows:,} rows, {errors:,} ERROR")
    print(f"  {'load (incl. validation)':<24} {wall:6.3f} s wall, {cpu:6.3f} s CPU")
    for name, sql in QUERIES.items():
        wall, cpu, _ = best_of(3, lambda q=sql: store.fetch(q))
        print(f"  {name:<24} {wall:6.3f} s wall, {cpu:6.3f} s CPU ({cpu / rows * 1e6:.2f} us CPU a row)")


def generated() -> None:
    con = duckdb.connect()
    with tempfile.TemporaryDirectory() as tmp:
        for kind, line in (("JSON lines", JSON_LINE), ("plain text", TEXT_LINE)):
            path = Path(tmp) / f"{kind.replace(' ', '_')}.parquet"
            con.execute(f"COPY ({LOGS_SQL.format(line=line, rows=ROWS)}) TO '{path}' (FORMAT parquet)")
            measure(f"generated Parquet, container-wrapped {kind}", path)


def nezha_minutes() -> None:
    for name, day in (("TrainTicket", "nezha-trainticket/rca_data/2023-01-29"),
                      ("OnlineBoutique", "nezha-onlineboutique/rca_data/2022-08-23")):
        folder = DATASETS / day / "log"
        if not folder.is_dir():
            print(f"{folder} not found: skipped")
            continue
        measure(f"Nezha {name} log minutes ({len(list(folder.glob('*.csv.gz')))} files)",
                str(folder / "*.csv.gz"))


if __name__ == "__main__":
    generated()
    nezha_minutes()
