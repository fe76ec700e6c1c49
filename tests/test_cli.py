"""The command line's own contract: help, version, and one-line errors."""

import json
import subprocess
import sys
from datetime import datetime, timedelta

from typer.testing import CliRunner

from cli_process import run_cli
from incidentlens import __version__
from incidentlens.cli import app
from incidentlens.errors import InputError

runner = CliRunner()


def test_version_prints_the_package_version():
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0
    assert __version__ in result.output


def test_help_lists_the_commands():
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    assert "incident" in result.output.lower()


def test_console_script_runs():
    completed = subprocess.run(
        [sys.executable, "-c", "from incidentlens.cli import main; main()", "--version"],
        capture_output=True, text=True, check=False,
    )
    assert completed.returncode == 0
    assert __version__ in completed.stdout


def test_analyze_prints_bracketed_data_verbatim(scenario_dir, tmp_path):
    tutorial = scenario_dir("seed-tutorial")
    events = tmp_path / "events.csv"
    events.write_text('ts,service,kind,description\n'
                      '2024-05-01T14:40:00Z,api-gateway,config,"pool [/x] [bold]5[/bold]"\n')
    result = runner.invoke(app, ["analyze", "--metrics", str(tutorial / "metrics.csv"), "--logs",
                                 str(tutorial / "logs.csv"), "--events", str(events), "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "config api-gateway: pool [/x] [bold]5[/bold]" in result.output


def test_sql_prints_bracketed_values_and_names_verbatim(scenario_dir):
    logs = scenario_dir("seed-tutorial") / "logs.csv"
    result = runner.invoke(app, ["sql", "--logs", str(logs), "SELECT '[/x] [bold]b[/bold]' AS \"[/c]\""])
    assert result.exit_code == 0, result.output
    assert [line.strip() for line in result.output.splitlines()[:2]] == ["[/c]", "[/x] [bold]b[/bold]"]


def commands(group=None, prefix=""):
    """(name, click command) for every command, `eval` subcommands included."""
    import typer.main

    group = group or typer.main.get_command(app)
    for name, command in group.commands.items():
        if hasattr(command, "commands"):
            yield from commands(command, f"{prefix}{name} ")
        else:
            yield f"{prefix}{name}", command


def test_every_command_has_a_one_line_help_and_every_option_a_help():
    for name, command in commands():
        assert command.help and len(command.help.strip().splitlines()) == 1, name
        for option in command.params:
            assert option.help, f"{name} {option.opts}"


def test_telemetry_options_read_alike_in_every_command_that_reads_telemetry():
    seen: dict[str, set[str]] = {}
    for name, command in commands():
        if name in ("detect", "analyze", "investigate", "report", "sql"):
            for option in command.params:
                if option.opts[0] in ("--metrics", "--logs", "--traces", "--events", "--map", "--at", "--detector",
                                      "--onset"):
                    seen.setdefault(option.opts[0], set()).add(f"{option.metavar} {option.help}")
    assert set(seen) == {"--metrics", "--logs", "--traces", "--events", "--map", "--at", "--detector", "--onset"}
    assert {option: len(helps) for option, helps in seen.items()} == dict.fromkeys(seen, 1)


def test_a_bracketed_scenario_name_is_the_unknown_scenario_error(tmp_path):
    result = runner.invoke(app, ["generate", "--scenario", "[/x]", "--out", str(tmp_path)])
    assert isinstance(result.exception, InputError), result.exception
    assert str(result.exception).startswith("unknown scenario '[/x]'")


def test_an_investigation_with_no_incident_prints_no_tool_failure_noise(tmp_path):
    from incidentlens.scenarios import generate

    generate("quiet", tmp_path / "data", seed=1, logs=5000)
    completed = subprocess.run(
        [sys.executable, "-c", "from incidentlens.cli import main; main()", "investigate", "--llm", "offline",
         "--metrics", str(tmp_path / "data" / "metrics.csv"), "--logs", str(tmp_path / "data" / "logs.csv"),
         "--out", str(tmp_path / "review")],
        capture_output=True, text=True, check=False,
    )
    assert completed.returncode == 0, completed.stderr
    assert "No incident detected" in completed.stdout
    assert "Failed to invoke Tool" not in completed.stdout + completed.stderr


def test_analyze_prints_the_verdict_the_window_length_and_what_the_sources_lacked(tmp_path):
    # a day of steady metrics beside 25 s of logs after a given start: the summary said neither that no single root
    # cause was found (the table alone), nor how short the window was, nor that there were no traces
    day = datetime(2024, 5, 1)
    at = day + timedelta(hours=10, seconds=45)
    metrics = [{"ts": (day + timedelta(minutes=m)).isoformat() + "Z", "service": "api", "metric": "latency_ms",
                "value": 20.0 + (m % 7)} for m in range(1440)]
    logs = [{"ts": (day + timedelta(hours=10, seconds=s)).isoformat() + "Z", "service": "api", "level": "INFO",
             "message": "request served"} for s in range(0, 71, 5)]
    (tmp_path / "metrics.jsonl").write_text("\n".join(json.dumps(r) for r in metrics) + "\n")
    (tmp_path / "logs.jsonl").write_text("\n".join(json.dumps(r) for r in logs) + "\n")
    result = runner.invoke(app, ["analyze", "--metrics", str(tmp_path / "metrics.jsonl"), "--logs",
                                 str(tmp_path / "logs.jsonl"), "--at", at.isoformat() + "Z", "--onset", "at",
                                 "--out", str(tmp_path)], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    # on to the first metric sample that measures the time after the start (10:02, 76 s after it)
    assert ("(76 s, to the first metric sample that measures the time after the start: the logs end 25 s after the "
            "start and say nothing of the rest)") in result.output
    assert "No single root cause found: no service moved beyond its baseline's noise" in result.output
    assert "note: no traces for this period" in result.output
    assert "root-cause hypotheses" not in result.output  # no empty table


def _steady_day(tmp_path) -> str:
    day = datetime(2024, 5, 1)
    rows = [{"ts": (day + timedelta(minutes=m)).isoformat() + "Z", "service": "api", "metric": "latency_ms",
             "value": 20.0 + (m % 7) + (30.0 if 600 <= m < 640 else 0.0)} for m in range(1440)]
    path = tmp_path / "metrics.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    return str(path)


def test_an_alert_time_outside_the_data_is_said_not_silently_replaced_by_the_nearest_window(tmp_path):
    # NAB's machine temperature (Dec 2013 - Feb 2014) with --at 2015-01-01: the last window was listed and explained
    # as the alert's without a word (not an error: an alert can come after an export that lags it)
    metrics = _steady_day(tmp_path)
    for command in (["detect"], ["analyze", "--out", str(tmp_path)]):
        result = run_cli(*command, "--metrics", metrics, "--at", "2024-06-01T00:00:00Z")
        assert result.returncode == 0, result.stderr
        assert result.stderr.splitlines() == [
            "warning: --at 2024-06-01T00:00:00Z lies outside the data (2024-05-01T00:00:00Z .. 2024-05-01T23:59:00Z):"
            " nothing at that time can be seen, only what is nearest it"]


def test_a_known_start_after_the_data_is_one_line_saying_why_it_cannot_be_one(tmp_path):
    # it said a warning, then "with --onset at it must lie after the data's first sample", which it did
    metrics = _steady_day(tmp_path)
    for command in (["analyze", "--out", str(tmp_path)], ["investigate", "--out", str(tmp_path / "review")]):
        result = run_cli(*command, "--metrics", metrics, "--at", "2024-06-01T00:00:00Z", "--onset", "at")
        assert result.returncode == 2
        assert result.stderr.splitlines() == [
            "error: --at 2024-06-01T00:00:00Z: outside the data (2024-05-01T00:00:00Z .. 2024-05-01T23:59:00Z); with "
            "--onset at it must not lie after the data's last sample: there is nothing after it to examine"]
    before = run_cli("analyze", "--metrics", metrics, "--at", "2024-05-01T00:00:00Z", "--onset", "at")
    assert before.returncode == 2
    assert before.stderr.strip().endswith("it must lie after the data's first sample: the baseline is the data "
                                          "before it")


def test_the_hypotheses_table_says_a_test_the_data_could_not_decide_is_undecided(tmp_path):
    # one service moved, so there is nothing to order it against: the review says "undecided", the table said "-"
    result = runner.invoke(app, ["analyze", "--metrics", _steady_day(tmp_path), "--out", str(tmp_path)],
                           env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    row = next(line for line in result.output.splitlines() if line.startswith("1 "))
    assert row.split()[-1] == "undecided"
    assert "nothing to order it against" in result.output


def test_detect_says_the_window_it_chose_does_not_contain_the_alert_time(tmp_path):
    result = runner.invoke(app, ["detect", "--metrics", _steady_day(tmp_path), "--at", "2024-05-01T15:00:00Z"],
                           env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "the window nearest --at 2024-05-01T15:00:00Z (none contains it)" in result.output


def test_analyze_of_logs_alone_says_how_to_give_the_start(tmp_path):
    # the README's `journalctl -o json ... && incidentlens analyze --logs journal.json` answered "no incident found:
    # no metrics were loaded" and nothing more
    logs = tmp_path / "app.log"
    logs.write_text("2024-05-01T10:00:17Z ERROR payments timeout after 3000ms\n"
                    "2024-05-01T10:00:18Z INFO payments charged\n")
    result = runner.invoke(app, ["analyze", "--logs", str(logs), "--out", str(tmp_path)], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "no incident found: no metrics were loaded" in result.output
    assert "logs or traces alone are explained from a start you give: --at TIME --onset at" in result.output


def test_a_given_start_over_logs_without_times_says_so_in_the_users_words(tmp_path):
    # "error: --at: the store holds no data" for a log whose line format was not recognised (its lines have no time)
    logs = tmp_path / "weird.log"
    logs.write_text("hello world\nfoo bar 12\nbaz\n")
    result = run_cli("analyze", "--logs", str(logs), "--at", "2024-05-01T00:00:00Z", "--onset", "at", "--out",
                     str(tmp_path))
    assert result.returncode == 2
    assert result.stderr.splitlines()[-1] == ("error: --at: no row of the sources given has a time to place it among "
                                              "(a plain-text log in a format not recognised has none)")
    assert "store" not in result.stderr


def test_generate_prints_each_path_on_one_line_on_a_narrow_terminal_too(tmp_path):
    """The paths written are copied into the next command: rich cut them at the console's width."""
    out = tmp_path / "a-directory-name-long-enough-to-pass-the-edge-of-a-narrow-terminal"
    result = runner.invoke(app, ["generate", "--scenario", "quiet", "--hours", "1", "--out", str(out)],
                           env={"COLUMNS": "40"})
    assert result.exit_code == 0, result.output
    assert f"truth    {out / 'truth.json'}" in result.output.splitlines()
