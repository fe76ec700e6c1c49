"""A count said with its noun in the number it takes, in every layer's warnings and notes."""

from __future__ import annotations

from pathlib import Path

from cli_helpers import incidentlens
from incidentlens.telemetry import load_telemetry
from incidentlens.telemetry.words import counted, counted_words


def test_a_count_of_one_takes_the_singular() -> None:
    assert [counted(n, "row") for n in (0, 1, 2, 1200)] == ["0 rows", "1 row", "2 rows", "1,200 rows"]
    assert counted(1, "entry", "entries") == "1 entry" and counted(3, "entry", "entries") == "3 entries"
    assert counted_words(1, "rows not numeric, kept as NULL") == "1 row not numeric, kept as NULL"
    assert counted_words(2, "spans with no trace ID") == "2 spans with no trace ID"


def test_one_row_with_no_time_is_said_as_one(tmp_path: Path) -> None:
    # was "1 rows have no time, left out"
    path = tmp_path / "metrics.csv"
    path.write_text("ts,service,metric,value\n2024-05-01T10:00:00Z,api,p95_ms,1\n,api,p95_ms,2\n")
    assert load_telemetry(metrics=path).warnings == [
        f"{path}: column 'ts': 1 row has no time, left out; the first, row 2"]


def test_the_sql_command_counts_one_row_as_one(tmp_path: Path) -> None:
    # was "1 rows in 4 ms"
    metrics = tmp_path / "metrics.csv"
    metrics.write_text("ts,service,metric,value\n2024-05-01T10:00:00Z,api,p95_ms,1\n")
    result = incidentlens("sql", "SELECT count(*) AS n FROM metrics", "--metrics", str(metrics))
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1].startswith("1 row in ")


def test_a_series_of_one_point_is_said_too_short_in_the_singular(tmp_path: Path) -> None:
    # was "too short for a baseline: 1 points, need 12"
    metrics = tmp_path / "metrics.csv"
    metrics.write_text("ts,service,metric,value\n2024-05-01T10:00:00Z,api,p95_ms,12\n")
    result = incidentlens("detect", "--metrics", str(metrics))
    assert result.returncode == 0, result.stderr
    assert "note: api/p95_ms: skipped: too short for a baseline: 1 point, need 12" in result.stdout


def test_a_row_cap_of_one_is_said_in_the_singular(tmp_path: Path) -> None:
    # was "the query returned more than 1 rows; the first 1 are shown"
    metrics = tmp_path / "metrics.csv"
    metrics.write_text("ts,service,metric,value\n2024-05-01T10:00:00Z,api,p95_ms,1\n2024-05-01T10:01:00Z,api,p95_ms,2\n")
    result = incidentlens("sql", "SELECT value FROM metrics", "--metrics", str(metrics), "--max-rows", "1")
    assert result.returncode == 0, result.stderr
    assert "the query returned more than 1 row; the first 1 is shown" in " ".join(result.stdout.split())


def test_their_after_a_count_of_one_is_its() -> None:
    words = "rows whose time does not parse, their duration kept as NULL"
    assert counted_words(1, words) == "1 row whose time does not parse, its duration kept as NULL"
    assert counted_words(2, words) == "2 rows whose time does not parse, their duration kept as NULL"
