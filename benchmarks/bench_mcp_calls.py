"""Seconds per MCP tool call of `incidentlens mcp` over a whole Nezha day, as an assistant calls it on stdio.

The day's whole metric folder (`*_metric.csv`, `front_service.csv`), every log and trace minute file, served by one
`incidentlens mcp`; `sql` (the log count), `detect` and `analyze` at the day's first fault (`--onset at`), each
called ROUNDS times in turn. Prints each call's wall time, the median per tool, and whether every call of a tool
answered the same (the window, the hypotheses, the rows). `--against SRC` runs the package from another source tree
too (e.g. a checkout before the store was kept between calls), one after the other. Needs ../shared/datasets.

    .venv/bin/python benchmarks/bench_mcp_calls.py [--against SRC] [rounds] [system]
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import anyio
from mcp import Client
from mcp.client.stdio import StdioServerParameters

DATASETS = Path(__file__).resolve().parents[2] / "shared" / "datasets"
ARGS = sys.argv[1:]
AGAINST = ARGS[1] if ARGS[:1] == ["--against"] else None
ARGS = ARGS[2:] if ARGS[:1] == ["--against"] else ARGS
ROUNDS = int(ARGS[0]) if ARGS else 3
SYSTEM = ARGS[1] if len(ARGS) > 1 else "nezha-trainticket"


def sources(day: Path) -> list[str]:
    return ["--metrics", str(day / "metric" / "*_metric.csv"), "--metrics", str(day / "metric" / "front_service.csv"),
            "--logs", str(day / "log" / "*_log.csv*"), "--traces", str(day / "trace" / "*_trace.csv*")]


def first_fault(day: Path) -> str:
    by_hour = json.loads(next(day.glob("*-fault_list.json")).read_text())
    return min(item["inject_time"] for items in by_hour.values() for item in items).replace(" ", "T") + "Z"


def answer_of(tool: str, answer: dict[str, Any]) -> Any:
    """What must be the same on every call of a tool."""
    if tool == "sql":
        return answer["rows"]
    if tool == "detect":
        return answer.get("windows")
    return answer["incident_window"], [(h["service"], h["confidence"]) for h in answer["hypotheses"]]


async def session(day: Path, src: str | None) -> dict[str, list[tuple[float, Any]]]:
    env = {**os.environ, "HAYSTACK_TELEMETRY_ENABLED": "false", **({"PYTHONPATH": src} if src else {})}
    server = StdioServerParameters(command=sys.executable, args=[
        "-c", "from incidentlens.cli import main; main()", "mcp", *sources(day)], env=env)
    at = first_fault(day)
    calls = {"sql": {"query": "SELECT count(*) AS n FROM logs"}, "detect": {"at": at},
             "analyze": {"at": at, "onset": "at"}}
    timed: dict[str, list[tuple[float, Any]]] = {tool: [] for tool in calls}
    async with Client(server) as client:
        for _ in range(ROUNDS):
            for tool, arguments in calls.items():
                started = time.perf_counter()
                result = await client.call_tool(tool, arguments)
                wall = time.perf_counter() - started
                if result.is_error:
                    raise SystemExit(f"{tool}: {result.content[0].text}")
                answer = result.structured_content or json.loads(result.content[0].text)
                timed[tool].append((wall, answer_of(tool, answer)))
    return timed


def report(label: str, timed: dict[str, list[tuple[float, Any]]]) -> None:
    for tool, runs in timed.items():
        walls = [wall for wall, _ in runs]
        same = all(answer == runs[0][1] for _, answer in runs)
        print(f"  {label} {tool:8s} " + " ".join(f"{w:6.2f}" for w in walls)
              + f"  median {statistics.median(walls):.2f} s, first {walls[0]:.2f} s, "
              + ("every answer the same" if same else "ANSWERS DIFFER"))


def run_on_first_day(system: str, against: str | None, headline: str, session: Callable[..., Awaitable[Any]],
                     report: Callable[[str, Any], None]) -> None:
    """Run `session(day, src)` on `system`'s first Nezha day with this tree, then with the package of `against` if
    given, `report` printing each; a note and nothing else when no day is there."""
    days = sorted(d for d in (DATASETS / system / "rca_data").glob("*") if d.is_dir())
    if not days:
        print(f"skipped: no Nezha day under {DATASETS / system}")
        return
    print(f"{system} {days[0].name}: {headline}")
    report("this tree", anyio.run(session, days[0], None))
    if against:
        report("against  ", anyio.run(session, days[0], against))


def main() -> None:
    run_on_first_day(SYSTEM, AGAINST, f"{ROUNDS} rounds of sql, detect, analyze; seconds per call (wall)", session,
                     report)


if __name__ == "__main__":
    main()
