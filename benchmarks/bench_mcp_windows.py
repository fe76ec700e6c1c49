"""What explaining one window after another costs the next `sql` call of a long-running `incidentlens mcp`.

Over a whole Nezha day (as `bench_mcp_calls.py` serves it), `analyze --onset at` at each of the day's first N faults
in turn, each followed by `sql` (the log count): every new window holds relations of its own in the server's store
(a window's masked log messages, `TelemetryStore.hold`). Prints each `sql` call's wall time and the server's
resident memory after it (VmRSS, and its peak VmHWM, from /proc). `--against SRC` runs the package from another
source tree too (e.g. a checkout whose sandbox copied every table of the store), one after the other. Needs
../shared/datasets and Linux's /proc.

    .venv/bin/python benchmarks/bench_mcp_windows.py [--against SRC] [faults] [system]
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from bench_mcp_calls import run_on_first_day, sources
from mcp import Client
from mcp.client.stdio import StdioServerParameters

ARGS = sys.argv[1:]
AGAINST = ARGS[1] if ARGS[:1] == ["--against"] else None
ARGS = ARGS[2:] if ARGS[:1] == ["--against"] else ARGS
FAULTS = int(ARGS[0]) if ARGS else 6
SYSTEM = ARGS[1] if len(ARGS) > 1 else "nezha-trainticket"


def faults(day: Path) -> list[str]:
    by_hour = json.loads(next(day.glob("*-fault_list.json")).read_text())
    times = sorted(item["inject_time"] for items in by_hour.values() for item in items)
    return [at.replace(" ", "T") + "Z" for at in times[:FAULTS]]


def server_memory_mb() -> tuple[float, float]:
    """The resident and peak resident memory (MB) of this process' child, the server."""
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            fields = dict(line.split(":", 1) for line in status.read_text().splitlines() if ":" in line)
        except OSError:
            continue
        if int(fields.get("PPid", "0").strip()) == os.getpid() and "VmRSS" in fields:
            return (int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024)
    return (float("nan"), float("nan"))


async def session(day: Path, src: str | None) -> list[dict[str, Any]]:
    env = {**os.environ, "HAYSTACK_TELEMETRY_ENABLED": "false", **({"PYTHONPATH": src} if src else {})}
    server = StdioServerParameters(command=sys.executable, args=[
        "-c", "from incidentlens.cli import main; main()", "mcp", *sources(day)], env=env)
    rows = []
    async with Client(server) as client:
        for at in faults(day):
            started = time.perf_counter()
            analyzed = await client.call_tool("analyze", {"at": at, "onset": "at"})
            analyze_s = time.perf_counter() - started
            started = time.perf_counter()
            counted = await client.call_tool("sql", {"query": "SELECT count(*) AS n FROM logs"})
            sql_s = time.perf_counter() - started
            for result in (analyzed, counted):
                if result.is_error:
                    raise SystemExit(f"{at}: {result.content[0].text}")
            answer = analyzed.structured_content or json.loads(analyzed.content[0].text)
            top = answer["hypotheses"][0]["service"] if answer["hypotheses"] else None
            rss, peak = server_memory_mb()
            rows.append({"at": at, "analyze_s": analyze_s, "sql_s": sql_s, "rss_mb": rss, "peak_mb": peak,
                         "top": top})
    return rows


def report(label: str, rows: list[dict[str, Any]]) -> None:
    for row in rows:
        print(f"  {label} {row['at']}  analyze {row['analyze_s']:6.2f} s  then sql {row['sql_s']:5.2f} s  "
              f"server {row['rss_mb']:6.0f} MB (peak {row['peak_mb']:.0f})  top {row['top']}")


def main() -> None:
    run_on_first_day(SYSTEM, AGAINST, f"analyze at each of the first {FAULTS} faults, each followed by sql", session,
                     report)


if __name__ == "__main__":
    main()
