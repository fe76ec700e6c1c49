"""One fault's analysis when the logs are as busy as a real system's: OnlineBoutique's one shared log minute (real
Go, Node and Python JSON lines in their container wrappers) replicated to LINES a minute over the hour before the
fault and the fault's minutes, the way `eval nezha` gives them (`--log-history` 60), with the day's metric and trace
files. The shared copy of that day left out every log minute over 4 MiB gzipped, so a user's complete day is at least
this busy; TrainTicket writes about 2,500 lines a minute.

    .venv/bin/python benchmarks/bench_busy_logs.py [LINES]    # default 54,000 a minute (about 3.4M lines in all)

Prints the lines written, then `incidentlens eval nezha` on the one fault (13:27:51, currencyservice CPU
contention): seconds per fault, the run's CPU seconds (over both cores: on a shared machine the wall time grows with
the other work, the CPU time far less), the fault's rank, and the run's peak memory.
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path

import duckdb

DAY = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "nezha-onlineboutique" / "rca_data" / "2022-08-23"
MINUTE_FILE = DAY / "log" / "13_29_log.csv.gz"
FAULT = datetime(2022, 8, 23, 13, 27, 51)
HISTORY = timedelta(minutes=60)
EPOCH = datetime(1970, 1, 1)


def nanos(moment: datetime) -> int:
    return int((moment - EPOCH).total_seconds()) * 10**9


def write_day(out: Path, lines_a_minute: int) -> int:
    """The Nezha layout under `out` with the one fault, the day's metrics and traces linked, and busy log minutes;
    returns the log lines written."""
    day = out / "rca_data" / DAY.name
    (day / "log").mkdir(parents=True)
    for folder in ("metric", "trace", "traceid"):
        (day / folder).symlink_to(DAY / folder)
    labels = json.loads((DAY / f"{DAY.name}-fault_list.json").read_text())
    fault = [item for items in labels.values() for item in items if item["inject_time"] == f"{FAULT:%Y-%m-%d %H:%M:%S}"]
    (day / f"{DAY.name}-fault_list.json").write_text(json.dumps({f"{FAULT:%H}": fault}))
    con = duckdb.connect()
    con.execute(f"CREATE TABLE minute AS SELECT * FROM read_csv('{MINUTE_FILE}', all_varchar = true)")
    first = con.execute("SELECT min(TimeUnixNano::HUGEINT) FROM minute").fetchone()[0]
    copies = max(1, round(lines_a_minute / con.execute("SELECT count(*) FROM minute").fetchone()[0]))
    written = 0
    # file HH_MM holds [HH:MM - 1 min, HH:MM): one per minute from the hour before the fault to two after it
    start = (FAULT - HISTORY).replace(second=0) + timedelta(minutes=1)
    for minute in range(int(HISTORY.total_seconds() // 60) + 3):
        end = start + timedelta(minutes=minute)
        # copies of the minute's lines, each offset by a share of a minute and folded into the file's minute
        offset = f"(TimeUnixNano::HUGEINT - {first} + k * {60 * 10**9 // copies}) % {60 * 10**9}"
        moment = f"({nanos(end - timedelta(minutes=1))} + {offset})"
        path = day / "log" / f"{end:%H_%M}_log.csv.gz"
        con.execute(f"""COPY (
            SELECT strftime(make_timestamp(({moment})::BIGINT // 1000), '%Y-%m-%dT%H:%M:%S.%fZ') AS Timestamp,
                   ({moment})::VARCHAR AS TimeUnixNano, Node, PodName, Container, TraceID, SpanID, Log
            FROM minute, range({copies}) AS c(k)
        ) TO '{path}' (HEADER, COMPRESSION gzip)""")
        written += con.execute(f"SELECT count(*) FROM read_csv('{path}')").fetchone()[0]
    return written


def main() -> None:
    if not MINUTE_FILE.exists():
        sys.exit(f"needs {MINUTE_FILE} (../shared/datasets/nezha-onlineboutique)")
    lines_a_minute = int(sys.argv[1]) if len(sys.argv) > 1 else 54_000
    with tempfile.TemporaryDirectory() as scratch:
        written = write_day(Path(scratch), lines_a_minute)
        print(f"log lines: {written:,} over {HISTORY.total_seconds() / 60 + 3:.0f} minute files")
        started = time.perf_counter()
        command = [str(Path(sys.executable).parent / "incidentlens"), "eval", "nezha", "--data", scratch, "--json"]
        run = subprocess.run(command, capture_output=True, text=True, check=True)
        wall = time.perf_counter() - started
    fault = json.loads(run.stdout)["per_fault"][0]
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    print(f"eval nezha, one fault: {fault['seconds']:.1f} s for the fault ({wall:.1f} s wall with start-up, "
          f"{usage.ru_utime + usage.ru_stime:.1f} s CPU on every core, which other work on the machine does not "
          f"inflate as it does the wall time), rank {fault['rank']} ({fault['ranked'][0]}), "
          f"peak memory {usage.ru_maxrss / 2**20:.1f} GB")


if __name__ == "__main__":
    main()
