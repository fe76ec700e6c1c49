"""Reading and analysing 1 GB of plain-text logs: the bar is 60 s on this machine.

Generates (not committed) a log4j-style file of about 1 GB: a day of 40 services' lines, a Java stack trace under
one line in fifty, and a new error from one service for the last half hour. Then times, as the CLI runs them:
reading the file (format detection, splitting every line in DuckDB, joining the stack traces), `analyze` at the
known onset, and `templates` (every entry masked and mined, lines.csv written).
Run: .venv/bin/python benchmarks/bench_textlogs.py [gigabytes]
"""

from __future__ import annotations

import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

import duckdb
import pyarrow.csv as pacsv

from incidentlens.analysis import analyze
from incidentlens.analysis.templates import mine_all_templates
from incidentlens.telemetry import load_telemetry

GIGABYTES = float(sys.argv[1]) if len(sys.argv) > 1 else 1.0
LINE_BYTES = 118  # about, with the stack traces
ONSET = datetime(2024, 5, 1, 23, 30)

# One entry per i: a time across the day, a level, a thread, a logger and a message; one in fifty carries a
# two-line stack trace; from 23:30 svc-7 logs a new pool timeout.
LINES_SQL = """
SELECT strftime(TIMESTAMP '2024-05-01' + to_microseconds(CAST(i * 86400e6 / {n} AS BIGINT)),
                '%Y-%m-%d %H:%M:%S.%g') || ' ' ||
       CASE WHEN i % 50 = 0 THEN 'ERROR' WHEN i % 9 = 0 THEN 'WARN ' ELSE 'INFO ' END ||
       ' [pool-' || (i % 8) || '-thread-' || (i % 13) || '] com.shop.svc' || (i % 40) || '.Handler - ' ||
       CASE WHEN i * 86400 / {n} >= 84600 AND i % 40 = 7 THEN 'Timeout acquiring connection from pool main after '
                                                             || (5000 + i % 7) || ' ms'
            WHEN i % 50 = 0 THEN 'request ' || i || ' failed: upstream returned 503' || chr(10) ||
                 'java.io.IOException: upstream 10.0.' || (i % 9) || '.' || (i % 250) || ':8080 returned 503' ||
                 chr(10) || chr(9) || 'at com.shop.Client.call(Client.java:' || (i % 300) || ')'
            WHEN i % 3 = 0 THEN 'GET /api/orders/' || (i % 100000) || ' 200 in ' || (i % 120) || ' ms'
            WHEN i % 3 = 1 THEN 'cache hit for user ' || md5(CAST(i % 5000 AS VARCHAR))[:12]
            ELSE 'query ok rows=' || (i % 40) || ' in ' || (i % 90) || 'ms trace ' || md5(CAST(i AS VARCHAR))
       END AS line
FROM range({n}) t(i)
"""


def timed(label: str, run):
    began = time.perf_counter()
    result = run()
    print(f"{label:<52} {time.perf_counter() - began:6.1f} s")
    return result


def main() -> None:
    entries = int(GIGABYTES * 1e9 / LINE_BYTES)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "app.log"
        con = duckdb.connect()
        timed(f"generate {entries:,} entries", lambda: con.execute(
            f"COPY ({LINES_SQL.format(n=entries)}) TO '{path}' (FORMAT csv, HEADER false, QUOTE '', ESCAPE '', "
            "DELIMITER '\\x01')"))
        print(f"{'file size':<52} {path.stat().st_size / 1e9:6.2f} GB")
        began = time.perf_counter()
        store = timed("read (detect, split, join stack traces)", lambda: load_telemetry(logs=str(path)))
        result = timed("analyze at the known onset", lambda: analyze(store, at=ONSET, onset="at"))
        mined = timed("templates (mask, mine, lines.csv)", lambda: mine_all_templates(store))
        timed("write templates.csv and lines.csv", lambda: (pacsv.write_csv(mined.templates, Path(tmp) / "t.csv"),
                                                           pacsv.write_csv(mined.lines, Path(tmp) / "l.csv")))
        total = time.perf_counter() - began
        count = store.fetch("SELECT count(*) AS n FROM logs").to_pylist()[0]["n"]
        print(f"{'entries read':<52} {count:,}")
        print(f"{'templates':<52} {mined.templates.num_rows}")
        first = result.templates[0]["template"] if result.templates else None
        print(f"{'first template in the window':<52} {first}")
        print(f"{'read + analyze + templates':<52} {total:6.1f} s (bar: 60 s)")


if __name__ == "__main__":
    main()
