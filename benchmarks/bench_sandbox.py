"""The SQL sandbox under the attacks of issue 12, through the command line as a user runs it: what each prints, its
exit code, its wall time and the peak memory (max RSS) of the whole process tree; and, through the API, how long
after the query is handed over each time-limited case stops.

Data: `incidentlens generate --scenario db-pool-exhaustion` (50,000 log lines, a day of metrics).

Run: .venv/bin/python benchmarks/bench_sandbox.py [--data DIR]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# Runs one command in a fresh process and reports its wall time and the largest max RSS among its descendants
# (RUSAGE_CHILDREN of this wrapper: the CLI and the sandbox's worker).
WRAPPER = """
import json, resource, subprocess, sys, time
started = time.monotonic()
done = subprocess.run(sys.argv[1:], capture_output=True, text=True)
print(json.dumps({"rc": done.returncode, "seconds": time.monotonic() - started, "stderr": done.stderr,
                  "stdout": done.stdout[-300:],
                  "max_rss_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024}))
"""

CLI_CASES = [
    ("4-way self-join", ["SELECT count(*) FROM logs a, logs b, logs c, logs d"]),
    ("string_agg over a self-join", ["SELECT string_agg(a.message, ',') FROM logs a, logs b"]),
    ("list over a self-join", ["SELECT list(a.message) FROM logs a, logs b"]),
    ("repeat(message, 20000) --json", ["--json", "SELECT repeat(message, 20000) FROM logs"]),
    ("repeat('x', 4e9), --timeout 5", ["--timeout", "5", "SELECT length(repeat('x', 4000000000))"]),
    ("endless recursive CTE, --timeout 2",
     ["--timeout", "2", "WITH RECURSIVE t(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM t) SELECT count(*) FROM t"]),
    ("CTE-scope bypass to pg_settings",
     ["SELECT name, setting FROM (WITH pg_settings AS (SELECT 1) SELECT 1) x, pg_settings"]),
    ("SELECT now()", ["SELECT now()"]),
    ("LOAD httpfs", ["LOAD httpfs"]),
    ("CALL pragma_version()", ["CALL pragma_version()"]),
    ("45 nested parentheses", ["SELECT " + "(" * 45 + "1" + ")" * 45]),
    ("--timeout 0", ["--timeout", "0", "SELECT 1"]),
    ("--timeout inf", ["--timeout", "inf", "SELECT 1"]),
    ("--timeout nan", ["--timeout", "nan", "SELECT 1"]),
    ("--max-rows -1", ["--max-rows", "-1", "SELECT 1"]),
]

CLI = [sys.executable, "-c", "from incidentlens.cli import main; main()"]

API_CASES = [
    ("repeat('x', 4e9)", 5.0, "SELECT length(repeat('x', 4000000000))"),
    ("endless recursive CTE", 2.0,
     "WITH RECURSIVE t(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM t) SELECT count(*) FROM t"),
    ("1+1+... (99 KB, parsed under the limit)", 5.0, "SELECT " + "1+" * 49_000 + "1"),
    ("1+1+... (1.2 MB)", 5.0, "SELECT " + "1+" * 600_000 + "1"),
    ("4-way self-join", 5.0, "SELECT count(*) FROM logs a, logs b, logs c, logs d"),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, help="a generated db-pool-exhaustion directory (default: generate one)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        data = args.data or _generate(Path(scratch) / "data")
        files = ["--metrics", str(data / "metrics.csv"), "--logs", str(data / "logs.csv")]
        print("| case | exit | wall s | peak RSS MB | stderr / result |\n|---|---|---|---|---|")
        for name, query in CLI_CASES:
            run = _measure([*CLI, "sql", *files, *query])
            said = run["stderr"].strip().splitlines() or [run["stdout"].strip().splitlines()[-1]]
            print(f"| {name} | {run['rc']} | {run['seconds']:.1f} | {run['max_rss_mb']:.0f} | "
                  f"{' / '.join(said)[:150]} ({len(said)} line{'s' if len(said) > 1 else ''}) |")
        print("\n| case (API) | limit s | stopped after s | answer |\n|---|---|---|---|")
        for name, limit, seconds, answer in _stop_times(files):
            print(f"| {name} | {limit:g} | {seconds:.2f} | {answer[:110]} |")


def _generate(out: Path) -> Path:
    subprocess.run([*CLI, "generate", "--scenario", "db-pool-exhaustion",
                    "--out", str(out)], check=True, capture_output=True)
    return out


def _measure(command: list[str]) -> dict:
    done = subprocess.run([sys.executable, "-c", WRAPPER, *command], capture_output=True, text=True, check=True)
    return json.loads(done.stdout)


def _stop_times(files: list[str]) -> list[tuple[str, float, float, str]]:
    from incidentlens.analysis.sql_sandbox import Budget, SqlRefused, SqlSandbox
    from incidentlens.telemetry import load_telemetry

    store = load_telemetry(metrics=files[1], logs=files[3])
    found = []
    for name, limit, sql in API_CASES:
        with SqlSandbox(store, budget=Budget(timeout_s=limit)) as box:
            box.run("SELECT 1")  # the worker is up: the clock below is the query's alone
            started = time.monotonic()
            try:
                answer = f"{len(box.run(sql).rows)} rows"
            except SqlRefused as refused:
                answer = str(refused)
            found.append((name, limit, time.monotonic() - started, answer))
    return found


if __name__ == "__main__":
    main()
