"""The `scenarios` and `generate` commands."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from incidentlens.cli import app
from incidentlens.scenarios import list_scenarios

runner = CliRunner()


def test_scenarios_lists_every_scenario_with_one_line():
    result = runner.invoke(app, ["scenarios"], terminal_width=200)
    assert result.exit_code == 0
    for name, description in list_scenarios():
        assert any(line.split()[:1] == [name] and description in line for line in result.output.splitlines()), name


def test_generate_writes_the_requested_format_range_and_line_count(tmp_path):
    result = runner.invoke(
        app,
        ["generate", "--scenario", "seed-tutorial", "--out", str(tmp_path), "--seed", "3", "--hours", "6",
         "--logs", "500", "--format", "jsonl"],
    )
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["logs.jsonl", "metrics.jsonl", "truth.json"]
    assert len((tmp_path / "logs.jsonl").read_text().splitlines()) == 500
    assert len((tmp_path / "metrics.jsonl").read_text().splitlines()) == 6 * 60
    assert json.loads((tmp_path / "truth.json").read_text())["seed"] == 3


def _run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", "from incidentlens.cli import main; main()", *args],
        capture_output=True, text=True, check=False,
    )


def test_unknown_scenario_exits_2_with_one_line_naming_the_choices(tmp_path):
    completed = _run_cli("generate", "--scenario", "no-such-thing", "--out", str(tmp_path))
    assert completed.returncode == 2
    assert completed.stderr.count("\n") == 1
    assert "no-such-thing" in completed.stderr and "seed-tutorial" in completed.stderr


def test_generate_a_causal_scenario_writes_its_events_file(tmp_path):
    result = runner.invoke(app, ["generate", "--scenario", "bad-deploy", "--out", str(tmp_path), "--hours", "4",
                                 "--format", "parquet"])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "events.parquet", "logs.parquet", "metrics.parquet", "truth.json"
    ]
    assert json.loads((tmp_path / "truth.json").read_text())["trigger"]["kind"] == "deploy"


def test_unknown_format_exits_2_with_one_line(tmp_path):
    completed = _run_cli("generate", "--scenario", "seed-tutorial", "--out", str(tmp_path), "--format", "xml")
    assert completed.returncode == 2
    assert completed.stderr == ("error: Invalid value for '--format': Value error, 'xml' is not one of 'csv', "
                                "'parquet', 'jsonl'. (see incidentlens generate --help)\n")


@pytest.mark.parametrize("hours", ["nan", "inf", "1e12"])
def test_hours_no_grid_can_hold_exit_2_with_one_line(tmp_path, hours):
    # nan and inf ended in a traceback converting to minutes, 1e12 in numpy's 437 TiB allocation
    completed = _run_cli("generate", "--scenario", "seed-tutorial", "--out", str(tmp_path), f"--hours={hours}")
    assert completed.returncode == 2
    assert completed.stderr == f"error: --hours {float(hours)}: the time range must be 1 to 8784 hours (a year)\n"


@pytest.mark.parametrize("command", [["generate", "--scenario", "quiet", "--out", "{out}"],
                                     ["eval", "scenarios", "--seeds", "1", "--scenario", "quiet"]])
def test_more_log_lines_than_memory_holds_exit_2_with_one_line(tmp_path, command):
    # 10^14 lines ended in numpy's 728 TiB allocation (a traceback); 2*10^9 in the kernel's OOM kill
    args = [arg.format(out=tmp_path) for arg in command]
    completed = _run_cli(*args, "--logs", "100000000000000")
    assert completed.returncode == 2
    assert completed.stderr == ("error: --logs 100,000,000,000,000: at most 20,000,000 log lines (each takes about "
                                "350 bytes of memory while they are built)\n")


def test_eval_piped_prints_nothing_but_its_result(tmp_path):
    # the progress bar, shown to no terminal, left an empty line on stdout: before the table, or alone before an error
    refused = _run_cli("eval", "scenarios", "--seeds", "1", "--scenario", "no-such-thing")
    assert (refused.returncode, refused.stdout) == (2, "")
    scored = _run_cli("eval", "scenarios", "--seeds", "1", "--scenario", "quiet", "--logs", "2000")
    assert scored.returncode == 0, scored.stderr
    assert scored.stdout.startswith("scenario ")
