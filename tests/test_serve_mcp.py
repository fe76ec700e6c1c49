"""The MCP tools through the official SDK's own client: `incidentlens mcp` on stdio, and `/mcp` on a running
`incidentlens serve` over streamable HTTP with the bearer token."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import anyio
import httpx2
import pytest
from mcp import Client
from mcp.client.stdio import StdioServerParameters
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client

from cli_process import assert_one_line_error, run_cli
from serve_helpers import AUTH, alert, notification, running_server, source_args, wait_for

TOOLS = {"analyze", "detect", "sql", "templates", "list_incidents", "get_review"}


@pytest.fixture(scope="module")
def data(scenario_dir) -> Path:
    return scenario_dir("db-pool-exhaustion", hours=6, logs=5000)


def structured(result: Any) -> Any:
    assert not result.is_error, result.content
    return result.structured_content if result.structured_content is not None else json.loads(result.content[0].text)


def stdio_server(data: Path, *extra: str) -> StdioServerParameters:
    return StdioServerParameters(command=sys.executable, args=[
        "-c", "from incidentlens.cli import main; main()", "mcp", *source_args(data), *extra],
        env={**os.environ, "HAYSTACK_TELEMETRY_ENABLED": "false"})


def test_mcp_on_stdio_offers_the_read_only_tools(data: Path) -> None:
    async def session() -> dict[str, Any]:
        async with Client(stdio_server(data)) as client:
            tools = (await client.list_tools()).tools
            return {
                "tools": {tool.name: tool for tool in tools},
                "count": structured(await client.call_tool("sql", {"query": "SELECT count(*) AS n FROM logs"})),
                "analysis": structured(await client.call_tool("analyze", {"at": "2024-05-01T03:10:00Z"})),
                "templates": structured(await client.call_tool("templates", {})),
                "drop": await client.call_tool("sql", {"query": "DROP TABLE logs"}),
                "bad_at": await client.call_tool("detect", {"at": "teatime"}),
                "bad_sensitivity": await client.call_tool("detect", {"sensitivity": "extreme"}),
                "bad_onset": await client.call_tool("analyze", {"onset": "sometime"}),
                "onset_without_at": await client.call_tool("analyze", {"onset": "at"}),
                "low": structured(await client.call_tool("detect", {"sensitivity": "low"})),
                "late": structured(await client.call_tool("detect", {"at": "2024-05-09T03:10:00Z"})),
                "no_state": await client.call_tool("list_incidents", {}),
                "no_query": await client.call_tool("sql", {}),
                "wrong_type": await client.call_tool("detect", {"metrics": "error_ratio"}),
            }

    found = anyio.run(session)
    assert set(found["tools"]) == TOOLS
    assert all(tool.annotations.read_only_hint for tool in found["tools"].values())
    assert found["count"]["rows"] == [[5000]]
    assert found["analysis"]["hypotheses"][0]["service"] == "db-proxy"
    assert found["templates"]["templates"] and found["templates"]["incident_window"]["start"].startswith("2024-05-01")
    assert found["drop"].is_error and "SELECT" in found["drop"].content[0].text
    assert found["bad_at"].is_error and "at 'teatime': cannot parse as a time" in found["bad_at"].content[0].text
    # the tool's parameter, not the CLI's flag (`--sensitivity`)
    assert found["bad_sensitivity"].is_error and found["bad_sensitivity"].content[0].text.startswith(
        "Error executing tool detect: sensitivity 'extreme': use low, medium, high")
    assert found["bad_onset"].content[0].text == (
        "Error executing tool analyze: onset sometime: expected one of detect, at")
    assert found["onset_without_at"].content[0].text == (
        "Error executing tool analyze: onset at needs at TIME (the incident's known start)")
    assert found["low"]["detection"]["sensitivity"].startswith("low: opening bar 7 robust σ")
    assert "note" not in found["analysis"] and "note" not in found["low"]
    assert found["late"]["note"].startswith("the alert time 2024-05-09T03:10:00Z lies outside the data (2024-05-01")
    assert found["no_state"].is_error and "--state" in found["no_state"].content[0].text
    assert found["no_query"].content[0].text == "Error executing tool sql: query: Field required"
    assert found["wrong_type"].content[0].text == "Error executing tool detect: metrics: Input should be a valid list"


def test_mcp_refuses_a_state_directory_with_no_state(tmp_path: Path) -> None:
    """A mistyped --state is said at once, not answered with an empty incident list from a state made there."""
    result = run_cli("mcp", "--metrics", "m.csv", "--state", str(tmp_path / "typo"))
    assert_one_line_error(result, f"--state {tmp_path / 'typo'}: no IncidentLens state here")
    assert not (tmp_path / "typo").exists()


@pytest.mark.parametrize("command", [["mcp"], ["serve", "--port", "0", "--state", "state"]], ids=["mcp", "serve"])
def test_a_source_that_cannot_be_read_is_refused_before_serving(tmp_path: Path, command: list[str]) -> None:
    """An empty metrics file is said at start, in the one line `analyze` says, not at the assistant's first call or
    as every alert's failed investigation (`serve` listened, then failed each one)."""
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    result = run_cli(*command, "--metrics", str(empty), stdin=subprocess.DEVNULL, cwd=tmp_path, timeout=60)
    assert_one_line_error(result, f"{empty}: no rows")
    assert result.stdout == ""
    assert not (tmp_path / "state").exists()  # refused before anything was written


HOUR_AGO_NS = time.time_ns() - 3600 * 10**9
ONE = "ts,service,message\n2024-05-01T10:00:00Z,api,up\n"
TWO = "ts,service,message\n2024-05-01T10:00:00Z,api,up\n2024-05-01T10:01:00Z,api,down\n"


def _written(path: Path, text: str, mtime_ns: int = HOUR_AGO_NS) -> Path:
    """`path` holding `text`, last modified at `mtime_ns` (an hour ago: not just written, see `RACY_NS`)."""
    path.write_text(text)
    os.utime(path, ns=(mtime_ns, mtime_ns))
    return path


def _sql_counter(sources: Any, monkeypatch: pytest.MonkeyPatch,
                 at_start: Any = None) -> tuple[Any, list[object]]:
    """A function counting the logs through the `sql` tool, and the list of the times it opened the sources
    (`at_start`: the store the command opened at start)."""
    from incidentlens.server.mcp_tools import build_mcp
    from incidentlens.server.settings import Sources

    opened: list[object] = []
    open_files = Sources.open
    monkeypatch.setattr(Sources, "open", lambda self, at=None: opened.append(at) or open_files(self, at))
    server = build_mcp(sources, None, at_start)

    def count() -> int:
        result = anyio.run(server.call_tool, "sql", {"query": "SELECT count(*) AS n FROM logs"})
        return structured(result)["rows"][0][0]

    return count, opened


def test_the_tools_keep_the_files_read_until_one_changes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each call read and validated every file again (most of a call's time on a day of telemetry); now a call reads
    them only when one was rewritten, added or removed since."""
    from incidentlens.server.settings import Sources

    logs = tmp_path / "logs"
    logs.mkdir()
    _written(logs / "a.csv", ONE)
    count, opened = _sql_counter(Sources(logs=[str(logs / "*.csv")]), monkeypatch)

    assert (count(), count(), len(opened)) == (1, 1, 1)
    _written(logs / "a.csv", TWO)
    assert (count(), count(), len(opened)) == (2, 2, 2)
    _written(logs / "b.csv", "ts,service,message\n2024-05-01T10:02:00Z,db,slow\n")
    assert (count(), len(opened)) == (3, 3)


def test_the_sql_tool_keeps_its_sandbox_until_a_file_changes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each `sql` call copied the whole store into a sandbox of its own (~3 s a Nezha day); now the copy is kept
    with the store, each call capping its rows as it asks, and a changed file gets a new one."""
    from incidentlens.analysis import sql_sandbox
    from incidentlens.server.mcp_tools import build_mcp
    from incidentlens.server.settings import Sources

    copies: list[Path] = []
    copy = sql_sandbox._copy_catalog
    monkeypatch.setattr(sql_sandbox, "_copy_catalog", lambda con, path: copies.append(path) or copy(con, path))
    logs = _written(tmp_path / "logs.csv", TWO)
    server = build_mcp(Sources(logs=[str(logs)]), None)

    def messages(max_rows: int) -> dict[str, Any]:
        query = {"query": "SELECT message FROM logs ORDER BY ts", "max_rows": max_rows}
        return structured(anyio.run(server.call_tool, "sql", query))

    one, both = messages(1), messages(5)
    assert (one["rows"], one["truncated"]) == ([["up"]], "only the first 1 row is shown")
    assert both["rows"] == [["up"], ["down"]] and "truncated" not in both
    assert len(copies) == 1
    _written(logs, ONE)
    assert messages(5)["rows"] == [["up"]]
    assert len(copies) == 2
    assert not copies[0].exists()  # the first sandbox closed once no call read its store


def test_sigterm_removes_the_sql_tools_kept_sandbox(tmp_path: Path) -> None:
    """The `sql` tool's sandbox (a copy of the telemetry) is kept while the server runs; it is made in a tool's
    worker thread, where no signal handler can be set, so the server sets them at start: a SIGTERM'd server leaves
    no copy behind in the temporary directory."""
    temp = tmp_path / "temp"
    temp.mkdir()
    logs = _written(tmp_path / "logs.csv", TWO)
    env = {**os.environ, "TMPDIR": str(temp), "PYTHONPATH": str(Path(__file__).parents[1] / "src")}
    server = subprocess.Popen([sys.executable, "-c", "from incidentlens.cli import main; main()", "mcp", "--logs",
                               str(logs)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env)

    def ask(message: dict[str, Any]) -> dict[str, Any] | None:
        server.stdin.write(json.dumps({"jsonrpc": "2.0", **message}).encode() + b"\n")
        server.stdin.flush()
        return json.loads(server.stdout.readline()) if "id" in message else None

    try:
        ask({"id": 1, "method": "initialize", "params": {"protocolVersion": "2025-06-18", "capabilities": {},
                                                          "clientInfo": {"name": "test", "version": "1"}}})
        ask({"method": "notifications/initialized"})
        answer = ask({"id": 2, "method": "tools/call", "params": {"name": "sql", "arguments": {
            "query": "SELECT count(*) AS n FROM logs"}}})
        assert json.loads(answer["result"]["content"][0]["text"])["rows"] == [[2]]
        assert [p.name[:len("incidentlens-sql-")] for p in temp.iterdir()] == ["incidentlens-sql-"]
    finally:
        server.terminate()
        server.wait(timeout=30)
    assert list(temp.iterdir()) == []


def test_the_store_read_at_start_is_the_tools_until_a_file_changes(tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """`serve` and `mcp` read every file at start to refuse one they cannot read, then threw the store away: the
    first call read them all again."""
    from incidentlens.server.mcp_tools import open_noting_files
    from incidentlens.server.settings import Sources

    logs = _written(tmp_path / "logs.csv", ONE)
    sources = Sources(logs=[str(logs)])
    at_start = open_noting_files(sources, sources.open)
    count, opened = _sql_counter(sources, monkeypatch, at_start)

    assert (count(), count(), len(opened)) == (1, 1, 0)
    _written(logs, TWO)
    assert (count(), len(opened)) == (2, 1)


def test_the_commands_hand_the_store_read_at_start_to_the_tools_but_not_one_lacking_prometheus(
        tmp_path: Path) -> None:
    from incidentlens.cli import _refuse_unreadable_sources
    from incidentlens.server.settings import Sources

    logs = str(_written(tmp_path / "logs.csv", ONE))
    at_start = _refuse_unreadable_sources(Sources(logs=[logs]))

    assert at_start is not None
    assert at_start.files == Sources(logs=[logs]).file_states()
    assert at_start.store.fetch("SELECT count(*) AS n FROM logs").to_pylist() == [{"n": 1}]
    # the check reads the files alone: the tools pull Prometheus around each call's time
    assert _refuse_unreadable_sources(Sources(logs=[logs], prometheus="http://127.0.0.1:9")) is None


def test_clickhouse_logs_are_checked_at_start_and_no_store_is_handed_over(monkeypatch: pytest.MonkeyPatch) -> None:
    # a clickhouse:// URL is no file whose state could be looked at ("no such file")
    from incidentlens import cli
    from incidentlens.server.settings import Sources

    checked: list[object] = []
    monkeypatch.setattr(cli, "_open_store", lambda *args, **kwargs: checked.append(args))
    sources = Sources(logs=["clickhouse://reader@127.0.0.1:9/prod.logs"])

    assert cli._refuse_unreadable_sources(sources) is None
    assert len(checked) == 1


def test_held_tables_are_released_only_when_no_call_is_running(tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """A server explaining window after window kept each window's held tables (~130 MB on a Nezha day) for ever; a
    table is dropped only once no call that may name one in a query runs."""
    from incidentlens.server import mcp_tools
    from incidentlens.server.settings import Sources

    monkeypatch.setattr(mcp_tools, "HELD_KEPT", 0)
    kept = mcp_tools._KeptStore(Sources(logs=[str(_written(tmp_path / "logs.csv", ONE))]))
    with kept.reading(None) as store:
        held = store.hold("SELECT count(*) AS n FROM logs", "window")
        with kept.reading(None):
            pass  # a call beside it ends
        assert store.fetch(f"SELECT n FROM {held}").to_pylist() == [{"n": 1}]

    assert store.fetch(f"SELECT count(*) AS n FROM duckdb_tables() WHERE table_name = '{held}'").to_pylist() == [
        {"n": 0}]


def test_a_file_copied_in_with_its_old_size_and_time_is_read_again(tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """`cp -p` or `rsync -t` of a new version of the same size keeps the old modification time: the store kept by
    path, size and modification time alone answered from the old file."""
    from incidentlens.server.settings import Sources

    logs = _written(tmp_path / "logs.csv", ONE.replace("up", "ok"))
    count, opened = _sql_counter(Sources(logs=[str(logs)]), monkeypatch)
    assert count() == 1
    _written(tmp_path / "new.csv", ONE.replace("10:00", "10:01"))  # the new version, the same size
    (tmp_path / "new.csv").replace(logs)

    assert (count(), len(opened)) == (1, 2)


def test_a_file_written_just_before_the_store_was_opened_is_not_kept_by_its_times(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A file system whose clock ticks once a second gives a file written twice in one second the same times: the
    store opened between the writes is not kept on them."""
    from incidentlens.server import settings
    from incidentlens.server.settings import Sources

    logs = _written(tmp_path / "logs.csv", ONE, mtime_ns=time.time_ns())
    # the state a coarse clock gives both writes: the same size, times and inode
    state = (str(logs), 53, logs.stat().st_mtime_ns, 1, 1)
    monkeypatch.setattr(settings, "_file_state", lambda path: state)
    count, _ = _sql_counter(Sources(logs=[str(logs)]), monkeypatch)
    assert count() == 1
    logs.write_text(TWO)

    assert count() == 2


def test_mcp_over_http_on_the_server_needs_the_token_and_reads_the_incidents(data: Path, tmp_path: Path) -> None:
    with running_server([*source_args(data), "--state", str(tmp_path / "state"), "--llm", "offline"],
                        tmp_path / "server.log") as server:
        server.client.post("/api/v1/alerts/alertmanager", json=notification("HighErrorRate", [alert("fp-1")]))
        wait_for(lambda: server.client.get("/api/v1/incidents/1").json()["investigation"]["state"] == "done",
                 timeout=120)
        assert httpx2.post(f"{server.url}/mcp", json={}).status_code == 401

        async def session() -> dict[str, Any]:
            async with create_mcp_http_client(headers=AUTH) as http, \
                    Client(streamable_http_client(f"{server.url}/mcp", http_client=http)) as client:
                return {
                    "tools": {tool.name for tool in (await client.list_tools()).tools},
                    "incidents": structured(await client.call_tool("list_incidents", {})),
                    "review": structured(await client.call_tool("get_review", {"incident_id": 1})),
                    "missing": await client.call_tool("get_review", {"incident_id": 7}),
                    "detect": structured(await client.call_tool("detect", {"at": "2024-05-01T03:10:00Z"})),
                }

        found = anyio.run(session)
    assert found["tools"] == TOOLS
    [incident] = found["incidents"]["incidents"]
    assert incident["title"].startswith("HighErrorRate on checkout") and incident["investigation"]["state"] == "done"
    assert found["review"]["root_cause"]["service"] == "db-proxy"
    assert found["missing"].is_error and "no incident 7" in found["missing"].content[0].text
    assert found["detect"]["incident_window"]["start"] == "2024-05-01T03:04:00Z"
