"""From the command line: --map overrides reach the loader, and bad input is one `error:` line with exit code 2."""

from __future__ import annotations

import json
from pathlib import Path

from cli_helpers import incidentlens

LOGS = """when,component,text,latency_ms
2024-05-01T10:00:00Z,api,GET /a,12
2024-05-01T10:00:01Z,db,slow query,n/a
2024-05-01T10:00:02Z,api,GET /b,15
"""


def test_map_options_name_the_columns(tmp_path: Path) -> None:
    logs = tmp_path / "logs.csv"
    logs.write_text(LOGS)
    result = incidentlens("sql", "SELECT service, count(*) AS n, sum(latency_ms) AS total FROM logs "
                          "GROUP BY service ORDER BY service", "--logs", str(logs), "--map", "time=when",
                          "--map", "service=component", "--map", "message=text", "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["rows"] == [["api", 2, 27], ["db", 1, None]]


def test_bad_input_is_one_error_line_and_exit_code_2(tmp_path: Path) -> None:
    logs = tmp_path / "logs.csv"
    logs.write_text(LOGS)
    result = incidentlens("sql", "SELECT 1", "--logs", str(logs))
    assert result.returncode == 2
    assert result.stderr.startswith(f"error: {logs}: no time column (looked for ts, time, timestamp")
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr


def test_a_day_first_date_is_one_error_line_naming_the_formats_read(tmp_path: Path) -> None:
    metrics = tmp_path / "metrics.csv"
    metrics.write_text("ts,service,metric,value\n06/12/2026 10:00:00,api,p95_ms,1\n")
    result = incidentlens("detect", "--metrics", str(metrics))
    assert result.returncode == 2 and result.stderr.count("\n") == 1, result.stderr
    assert result.stderr.startswith(f"error: {metrics}: column 'ts' row 1: cannot parse '06/12/2026 10:00:00' as a "
                                    "time (the day and month of a date written before its year could be either way "
                                    "round and are not guessed: write the year first; times are read as ISO 8601 ")
    assert "epoch s/ms/us/ns" in result.stderr


def test_a_bad_map_option_is_one_error_line(tmp_path: Path) -> None:
    logs = tmp_path / "logs.csv"
    logs.write_text(LOGS)
    result = incidentlens("sql", "SELECT 1", "--logs", str(logs), "--map", "when")
    assert (result.returncode, result.stderr) == (2, "error: --map 'when': expected role=column, e.g. --map "
                                                      "time=when\n")


def test_a_role_mapped_twice_is_one_error_line(tmp_path: Path) -> None:
    # the second --map time=... quietly replaced the first
    logs = tmp_path / "logs.csv"
    logs.write_text(LOGS)
    result = incidentlens("sql", "SELECT 1", "--logs", str(logs), "--map", "time=ts", "--map", "time=level")
    assert (result.returncode, result.stderr) == (
        2, "error: --map 'time=level': role 'time' is already mapped to 'ts'; one column per role\n")


def test_a_plain_text_log_led_by_a_day_first_date_says_why_it_has_no_times(tmp_path: Path) -> None:
    """Its lines were read as entries with no time, the warning not saying that the date was the reason."""
    from incidentlens.telemetry import load_telemetry

    log = tmp_path / "app.log"
    log.write_text("\n06/12/2026 10:00:00 ERROR payment failed\n06/12/2026 10:00:01 INFO retried\n")
    [warning] = load_telemetry(logs=log).warnings
    assert warning.endswith("time-based analysis has no times from it); the day and month of a date written before "
                            "its year could be either way round and are not guessed: write the year first")
