"""One command line: --json wherever a result is printed, choices and flags in --help, tables that keep whole times
at 80 columns, row caps that say how to raise them, hints that work as printed, and a model that must be used."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from fake_openai import FakeOpenAI
from incidentlens import cli
from incidentlens.agents.brains import LLM_CHOICES
from incidentlens.analysis.anchored import ONSETS
from incidentlens.analysis.detection import DETECTORS
from incidentlens.cli import EXIT_NO_MODEL, app
from incidentlens.scenarios.output import FORMATS

runner = CliRunner()
COMMANDS = [["scenarios"], ["generate"], ["detect"], ["analyze"], ["templates"], ["sql"], ["report"], ["investigate"],
            ["demo"], ["serve"], ["mcp"], ["eval", "templates"],
            ["eval", "nab"], ["eval", "scenarios"], ["eval", "nezha"]]
REPO = Path(__file__).resolve().parents[1]


def run_cli(*args: str, columns: int = 80, cwd: Path | None = None) -> subprocess.CompletedProcess:
    """The console script as a user runs it, its output piped (not a terminal)."""
    env = {**os.environ, "COLUMNS": str(columns), "PYTHONPATH": str(REPO / "src")}
    return subprocess.run([sys.executable, "-c", "from incidentlens.cli import main; main()", *args],
                          capture_output=True, text=True, check=False, env=env, cwd=cwd)


@pytest.fixture(scope="module")
def tutorial(scenario_dir) -> Path:
    return scenario_dir("seed-tutorial")


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_help_uses_one_placeholder_style_and_shows_flags_as_flags(command: list[str]):
    result = runner.invoke(app, [*command, "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "<" not in result.output and "{" not in result.output  # no <str>, <bool>, <path>, {query}
    for line in result.output.splitlines():
        if re.search(r"--(json|help|require-llm|null)\b", line):
            assert not re.search(r"--[\w-]+\s+(BOOLEAN|TEXT|[A-Z]{3,})\b", line), line


def test_help_lists_the_choices_of_every_enumerated_option():
    investigate = runner.invoke(app, ["investigate", "--help"], env={"COLUMNS": "200"}).output
    assert "[auto|offline|openai|openai-compatible]" in investigate and "[detect|at]" in investigate
    assert "[robust|seed-zscore]" in runner.invoke(app, ["detect", "--help"], env={"COLUMNS": "200"}).output
    assert "[csv|parquet|jsonl]" in runner.invoke(app, ["generate", "--help"], env={"COLUMNS": "200"}).output
    # the CLI's choices are the library's own
    assert [b.value for b in cli.Brain] == list(LLM_CHOICES)
    assert [o.value for o in cli.OnsetMode] == list(ONSETS)
    assert [d.value for d in cli.DetectorName] == list(DETECTORS)
    assert [f.value for f in cli.FileFormat] == list(FORMATS)


def test_a_value_that_is_not_a_choice_is_one_line_and_exit_2():
    completed = run_cli("investigate", "--llm", "gpt")
    assert completed.returncode == 2
    assert completed.stderr.startswith("error: Invalid value for '--llm'") and completed.stderr.count("\n") == 1
    assert "(see incidentlens investigate --help)" in completed.stderr


def test_help_asks_for_the_clickhouse_password_from_the_environment_not_in_the_url():
    # "clickhouse://user:pass@host:8123/db.table URL": a password on the command line stays in the shell's history
    analyze = runner.invoke(app, ["analyze", "--help"], env={"COLUMNS": "200"}).output
    assert "clickhouse://user@host:8123/db.table URL (password: env CLICKHOUSE_PASSWORD)" in analyze
    assert "user:pass@" not in analyze


def test_the_help_a_bad_value_points_to_is_the_subcommands_own():
    completed = run_cli("eval", "nezha", "--without", "spans")
    assert completed.returncode == 2 and completed.stderr.count("\n") == 1
    assert completed.stderr.startswith("error: Invalid value for '--without'")
    assert completed.stderr.rstrip().endswith("(see incidentlens eval nezha --help)")


def test_every_command_that_prints_a_result_prints_json_with_json(tutorial: Path, tmp_path: Path):
    files = ["--metrics", str(tutorial / "metrics.csv"), "--logs", str(tutorial / "logs.csv")]
    scenarios = json.loads(runner.invoke(app, ["scenarios", "--json"]).output)
    assert {"name": "seed-tutorial"} | scenarios[0] == scenarios[0]
    generated = json.loads(runner.invoke(app, ["generate", "--scenario", "quiet", "--hours", "2", "--out",
                                               str(tmp_path / "quiet"), "--json"]).output)
    assert Path(generated["metrics"]).exists()
    investigated = runner.invoke(app, ["investigate", *files, "--llm", "offline", "--out", str(tmp_path / "i"),
                                       "--json"])
    review = json.loads(investigated.output)
    assert review["verdict"]["status"] == "inconclusive"  # the tutorial day has no single root cause
    assert review == json.loads((tmp_path / "i" / "report.json").read_text())
    analyzed = runner.invoke(app, ["analyze", *files, "--out", str(tmp_path / "a"), "--json"])
    assert json.loads(analyzed.output)["detected"] is True
    reported = runner.invoke(app, ["report", "--analysis", str(tmp_path / "a" / "analysis.json"), "--out",
                                   str(tmp_path / "r"), "--json"])
    assert json.loads(reported.output)["schema_version"] == "1.0"


def test_tables_keep_whole_times_at_80_columns_when_piped(tutorial: Path):
    detected = run_cli("detect", "--metrics", str(tutorial / "metrics.csv"))
    assert detected.returncode == 0, detected.stderr
    lines = detected.stdout.splitlines()
    assert all(len(line) <= 80 for line in lines)
    assert "2024-05-01T14:53:00Z" in detected.stdout and "2024-05-01T17:17:00Z" in detected.stdout
    assert "…" not in detected.stdout
    assert "peak, severity left out to fit 80 columns" in detected.stdout  # said, not silently cut
    wide = run_cli("detect", "--metrics", str(tutorial / "metrics.csv"), columns=140)
    assert "2024-05-01T17:15:00Z" in wide.stdout and "left out" not in wide.stdout  # the peak, with room for it


def test_a_series_name_too_long_for_80_columns_folds_with_no_character_lost(tmp_path: Path):
    # Nezha's pod metrics: "ts-food-delivery-service" then "ientLatencyP99(s) up" on the next line, "/PodCl" lost,
    # the header cut to "series moved (robust shi"
    minutes = [f"2024-05-01T{m // 60:02d}:{m % 60:02d}:00Z" for m in range(600)]
    rows = [f"{t},ts-food-delivery-service,{300.0 if 400 <= m < 430 else 1.0 + m % 7 / 100}"
            for m, t in enumerate(minutes)]
    metrics = tmp_path / "metrics.csv"
    metrics.write_text("ts,service,PodClientLatencyP99(s)\n" + "\n".join(rows) + "\n")

    detected = run_cli("detect", "--metrics", str(metrics))

    assert detected.returncode == 0, detected.stderr
    table = detected.stdout.split("\n* incident window")[0].splitlines()
    assert all(len(line) <= 80 for line in table)
    at = table[0].index("series moved")
    folded = "".join(line[at:].strip() for line in table)  # the last column's lines, joined
    assert "series moved (robust shift)" in " ".join(line[at:].strip() for line in table[:2])
    assert "ts-food-delivery-service/PodClientLatencyP99(s)up" in folded.replace(" ", "")


def test_detect_says_once_what_it_says_of_many_series(tmp_path: Path):
    # a Nezha day's pod metrics: 204 lines "note: <series>: skipped: constant series: every value is 0", one a series
    names = [f"idle_{i}" for i in range(6)]
    rows = [f"2024-05-01T{m // 60:02d}:{m % 60:02d}:00Z,api,{1.0 + m % 7 / 100}," + ",".join("0" for _ in names)
            for m in range(120)]
    metrics = tmp_path / "metrics.csv"
    metrics.write_text("ts,service,rps," + ",".join(names) + "\n" + "\n".join(rows) + "\n")

    detected = run_cli("detect", "--metrics", str(metrics), columns=400)

    assert detected.returncode == 0, detected.stderr
    notes = [line for line in detected.stdout.splitlines() if line.startswith("note: ")]
    assert notes == ["note: 6 series: skipped: constant series: every value is 0 (api/idle_0, api/idle_1, api/idle_2 "
                     "and 3 more; --json lists each)"]
    listed = json.loads(run_cli("detect", "--metrics", str(metrics), "--json").stdout)["detection"]["notes"]
    assert len([note for note in listed if "constant series" in note]) == 6


def test_sql_keeps_whole_times_and_says_how_to_raise_the_row_cap(tutorial: Path):
    completed = run_cli("sql", "--logs", str(tutorial / "logs.csv"), "--max-rows", "5",
                        "SELECT ts, service, level, message FROM logs ORDER BY ts")
    assert completed.returncode == 0, completed.stderr
    assert all(len(line) <= 80 for line in completed.stdout.splitlines())
    times = re.findall(r"^\s*(\d{4}-\d{2}-\d{2}T[\d:.]+Z?)\s", completed.stdout, flags=re.MULTILINE)
    assert len(times) == 5 and all(len(t) >= 20 for t in times)
    assert "more than 5 rows; the first 5 are shown (raise --max-rows" in " ".join(completed.stdout.split())


def test_the_demo_ends_with_a_hint_that_runs_as_printed(tmp_path: Path):
    completed = run_cli("demo", "--out", str(tmp_path / "demo"), columns=400)
    assert completed.returncode == 0, completed.stderr
    hint = completed.stdout.split("try: ", 1)[1].strip()
    rerun = subprocess.run(shlex.split(hint), capture_output=True, text=True, check=False,
                           env={**os.environ, "COLUMNS": "120"})
    assert rerun.returncode == 0, rerun.stderr
    assert "ERROR" in rerun.stdout and "INFO" in rerun.stdout


def test_make_demo_shows_progress_while_it_installs():
    makefile = (REPO / "Makefile").read_text()
    install = makefile.split("$(VENV)/.installed:", 1)[1].split("\n\n", 1)[0]
    assert "echo" in install and " -q " not in install  # a line per step, and pip's own progress


def text_only(body: dict, n: int) -> dict:
    return {"role": "assistant", "content": "It is probably the database."}


def test_require_llm_exits_3_when_the_model_made_no_tool_call_and_still_writes_the_review(tutorial: Path,
                                                                                           tmp_path: Path):
    with FakeOpenAI(text_only) as fake:
        result = runner.invoke(app, ["investigate", "--metrics", str(tutorial / "metrics.csv"), "--logs",
                                     str(tutorial / "logs.csv"), "--llm", "openai-compatible", "--llm-url", fake.url,
                                     "--llm-max-tokens", "200", "--require-llm", "--out", str(tmp_path)])
    assert result.exit_code == EXIT_NO_MODEL
    assert "the model could not be used: the model made no tool call" in result.output
    assert all(body["max_tokens"] == 200 for body in fake.requests)
    assert json.loads((tmp_path / "report.json").read_text())["generated_by"]["degraded"] is True


def test_require_llm_without_a_model_exits_3_before_reading_anything(tmp_path: Path):
    completed = run_cli("investigate", "--metrics", str(tmp_path / "missing.csv"), "--llm", "offline",
                        "--require-llm")
    assert completed.returncode == EXIT_NO_MODEL
    assert completed.stderr.startswith("error: --require-llm: no model to use")
