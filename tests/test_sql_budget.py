"""Every sandboxed query has a budget: memory, temporary disk, threads, time (parsing included), result rows and
bytes. A query over any of them stops promptly with one line saying which budget it hit, and the sandbox goes on."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from cli_process import SRC
from incidentlens.analysis.sql_sandbox import Budget, SqlRefused, SqlSandbox
from incidentlens.analysis.sql_worker import Worker
from incidentlens.cli import main
from incidentlens.errors import InputError
from incidentlens.telemetry import load_telemetry

#: the slack the issue allows past a time limit: the worker is interrupted, then killed, within it
STOP_SLACK_S = 3.0
LIMIT_S = 2.0


@pytest.fixture(scope="module")
def logs_store(tmp_path_factory: pytest.TempPathFactory):
    directory = tmp_path_factory.mktemp("budget")
    logs = directory / "logs.csv"
    logs.write_text("ts,service,level,message\n" + "".join(
        f"2024-05-01T10:{i // 60 % 60:02d}:{i % 60:02d}Z,api,{'ERROR' if i % 7 == 0 else 'INFO'},"
        f"request {i} took {i % 500} ms on host-{i % 13}\n" for i in range(3_000)))
    return load_telemetry(logs=logs)


@pytest.fixture(scope="module")
def small(logs_store):
    """A sandbox with a 64 MB memory budget and a 2 s time limit: attacks stop quickly."""
    with SqlSandbox(logs_store, budget=Budget(timeout_s=LIMIT_S, memory_mb=64, temp_disk_mb=64, threads=1,
                                              result_bytes=20_000, row_cap=100)) as box:
        yield box


def _refused_within(box: SqlSandbox, sql: str, limit_s: float) -> tuple[str, float]:
    started = time.monotonic()
    with pytest.raises(SqlRefused) as refused:
        box.run(sql)
    elapsed = time.monotonic() - started
    message = str(refused.value)
    assert "\n" not in message and message.startswith("sql: ")
    assert elapsed <= limit_s, (elapsed, message)
    return message, elapsed


def test_a_self_join_aggregating_text_stops_at_the_memory_budget(small: SqlSandbox) -> None:
    message, _ = _refused_within(small, "SELECT string_agg(a.message, ',') FROM logs a, logs b, logs c",
                                 LIMIT_S + STOP_SLACK_S)
    assert "64 MB memory budget" in message or "time limit" in message
    assert small.run("SELECT count(*) FROM logs").rows == [[3000]]


def test_an_endless_recursive_cte_stops_at_the_time_limit(small: SqlSandbox) -> None:
    message, _ = _refused_within(
        small, "WITH RECURSIVE t(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM t) SELECT count(*) FROM t",
        LIMIT_S + STOP_SLACK_S)
    assert "2 s time limit" in message


def test_one_long_string_operation_is_stopped_by_the_time_limit_or_the_memory_watch(small: SqlSandbox) -> None:
    message, _ = _refused_within(small, "SELECT length(repeat('x', 4000000000))", LIMIT_S + STOP_SLACK_S)
    assert "time limit" in message or "memory" in message
    assert small.run("SELECT 1 AS one").rows == [[1]], "a fresh worker takes the next query"


def test_parsing_counts_against_the_time_limit(small: SqlSandbox) -> None:
    message, _ = _refused_within(small, "SELECT " + "1+" * 49_000 + "1", LIMIT_S + STOP_SLACK_S)
    # a busy machine stops it at the limit; an idle one parses it and DuckDB refuses the depth: one line either way
    assert any(reason in message for reason in ("time limit", "nested too deeply", "expression depth"))


def test_a_query_over_the_length_budget_is_refused_before_parsing(small: SqlSandbox) -> None:
    message, _ = _refused_within(small, "SELECT " + "1+" * 600_000 + "1", 0.5)
    assert "over the 100,000-character budget" in message


@pytest.mark.parametrize("depth", [45, 400])
def test_deeply_nested_parentheses_are_one_line(small: SqlSandbox, depth: int) -> None:
    try:
        result = small.run("SELECT " + "(" * depth + "1" + ")" * depth + " AS one")
    except SqlRefused as refused:
        assert "nested too deeply" in str(refused)
    else:
        assert result.rows == [[1]]


def test_results_are_capped_in_bytes_as_well_as_rows(small: SqlSandbox) -> None:
    result = small.run("SELECT repeat('x', 1000) AS big FROM logs")
    assert result.truncated and result.cut_by == "bytes"
    assert 10 <= len(result.rows) < 20
    assert result.to_dict()["truncated"] == (f"only the first {len(result.rows)} rows are shown: the result budget "
                                             "is 20 kB")
    assert small.run("SELECT ts FROM logs").to_dict()["truncated"] == "only the first 100 rows are shown"
    with pytest.raises(SqlRefused, match="first row alone is over the 20 kB result budget"):
        small.run("SELECT repeat('x', 50000) AS huge")


def test_times_with_a_zone_are_utc_text(small: SqlSandbox) -> None:
    result = small.run("SELECT TIMESTAMPTZ '2024-05-01 10:00:00+02' AS t, now() AS n, INTERVAL 5 MINUTE AS i")
    assert result.rows[0][0] == "2024-05-01T08:00:00Z"
    assert result.rows[0][1].endswith("Z")
    assert result.rows[0][2] == "0:05:00"


@pytest.mark.parametrize("options", [
    {"timeout_s": 0}, {"timeout_s": -1}, {"timeout_s": math.nan}, {"timeout_s": math.inf},
    {"row_cap": -1}, {"row_cap": 0}, {"memory_mb": 10}, {"row_cap": 2.5},
])
def test_a_budget_must_be_positive_and_finite(options: dict) -> None:
    with pytest.raises(InputError, match="must be a"):
        Budget(**options)


def test_the_sandbox_files_go_on_sigterm(logs_store, tmp_path: Path) -> None:
    logs = tmp_path / "logs.csv"
    logs.write_text("ts,service,level,message\n2024-05-01T10:00:00Z,api,INFO,hello\n")
    script = textwrap.dedent(f"""
        import sys, time
        from incidentlens.analysis.sql_sandbox import SqlSandbox
        from incidentlens.telemetry import load_telemetry
        box = SqlSandbox(load_telemetry(logs={str(logs)!r}))
        box.run("SELECT 1")
        print(box._dir, flush=True)
        time.sleep(60)
    """)
    process = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True,
                               env={**os.environ, "PYTHONPATH": str(SRC)})
    directory = Path(process.stdout.readline().strip())
    assert (directory / "sandbox.duckdb").exists()
    process.send_signal(signal.SIGTERM)
    process.wait(timeout=30)
    assert process.returncode == -signal.SIGTERM
    assert not directory.exists()


# --- through the command line -------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def logs_file(logs_store) -> str:
    return str(logs_store.paths[0])


def _sql(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """`incidentlens sql ARGS` through the console entry point, in this process: (exit code, stdout, stderr)."""
    monkeypatch.setattr(sys, "argv", ["incidentlens", "sql", *args])
    code = 0
    try:
        main()
    except SystemExit as exited:
        code = exited.code or 0
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize(("option", "value"), [
    ("--timeout", "0"), ("--timeout", "-1"), ("--timeout", "nan"), ("--timeout", "inf"), ("--max-rows", "-1"),
    ("--max-rows", "0"), ("--memory-mb", "10"),
])
def test_the_sql_command_validates_its_budget(logs_file: str, option: str, value: str, monkeypatch, capsys) -> None:
    code, _, err = _sql(monkeypatch, capsys, "--logs", logs_file, option, value, "SELECT 1")
    assert code == 2 and err.startswith(f"error: {option} ") and err.count("\n") == 1, err


@pytest.mark.parametrize("query", ["LOAD httpfs", "CALL pragma_version()", "SELECT " + "(" * 60 + "1" + ")" * 60])
def test_refusals_are_exactly_one_stderr_line(logs_file: str, query: str, monkeypatch, capsys) -> None:
    code, _, err = _sql(monkeypatch, capsys, "--logs", logs_file, query)
    assert code == 2 and err.startswith("error: sql: ") and err.count("\n") == 1, err


def test_a_timestamptz_result_prints_as_utc_text(logs_file: str, monkeypatch, capsys) -> None:
    code, out, err = _sql(monkeypatch, capsys, "--logs", logs_file, "--json",
                          "SELECT TIMESTAMPTZ '2024-05-01 10:00:00+02' AS t")
    assert code == 0 and err == "", err
    assert json.loads(out)["rows"] == [["2024-05-01T08:00:00Z"]]


def test_a_tiny_time_limit_never_stops_the_worker_from_starting(logs_store) -> None:
    with SqlSandbox(logs_store, budget=Budget(timeout_s=0.1)) as box:
        try:
            assert box.run("SELECT 1 AS one").rows == [[1]]
        except SqlRefused as refused:
            assert "0.1 s time limit" in str(refused)


def test_an_interrupt_surfacing_from_the_row_stream_is_the_time_limit() -> None:
    """pyarrow's reader raises DuckDB's interrupt as an OSError: still a one-line refusal, the worker goes on."""
    worker = Worker(con=None, budget=Budget(timeout_s=2.0), tables=[], remote=[])
    assert worker._failure(OSError("INTERRUPT Error: Interrupted!")) == (
        "sql: query interrupted after the 2 s time limit")
    assert "512 MB memory budget" in worker._failure(OSError("Out of Memory Error: could not allocate block"))
