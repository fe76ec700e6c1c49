"""A line longer than DuckDB's default 16 MiB: one OTLP export batch written as a line, a log line holding a dump.
Read whole up to `textlogs.MAX_LINE_BYTES` (it was a DuckDB traceback); past it, a log's line is one line naming the
file and the line, and an OTLP file is read as JSON documents."""

from __future__ import annotations

from pathlib import Path

import pytest

from incidentlens.errors import InputError
from incidentlens.telemetry import load_telemetry, textlogs
from test_otlp import resource, span, write_lines

PAST_16_MIB = 17 * 2**20


def test_an_otlp_export_batch_past_16_mib_on_one_line_is_read(tmp_path: Path) -> None:
    # before: a DuckDB traceback ("Maximum line size of 16777216 bytes exceeded")
    spans = [{**span(f"{n:032x}", f"{n:016x}", "", "GET /" + "x" * 400, n, 5, 2, 0)} for n in range(40_000)]
    path = write_lines(tmp_path / "traces.json", [{"resourceSpans": [
        {"resource": resource("api"), "scopeSpans": [{"scope": {}, "spans": spans}]}]}])
    assert path.stat().st_size > PAST_16_MIB

    assert load_telemetry(traces=path).fetch("SELECT count(*) AS n FROM spans").to_pylist() == [{"n": 40_000}]


def test_a_log_line_past_16_mib_is_kept_whole(tmp_path: Path) -> None:
    path = tmp_path / "app.log"
    path.write_text("2024-05-01 10:00:00 INFO start\n"
                    f"2024-05-01 10:00:01 ERROR heap dump {'x' * PAST_16_MIB}\n"
                    "2024-05-01 10:00:02 INFO end\n")

    rows = load_telemetry(logs=path).fetch("SELECT level, length(message) AS size FROM logs ORDER BY ts").to_pylist()

    assert [row["level"] for row in rows] == ["INFO", "ERROR", "INFO"]
    assert rows[1]["size"] > PAST_16_MIB


def test_a_log_line_past_the_limit_is_one_line_naming_the_file_and_the_line(tmp_path: Path,
                                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(textlogs, "MAX_LINE_BYTES", 4096)  # the limit is 1 GiB: a test does not write one
    path = tmp_path / "app.log"
    path.write_text("2024-05-01 10:00:00 INFO start\n" f"2024-05-01 10:00:01 ERROR {'x' * 5000}\n")

    with pytest.raises(InputError) as refused:
        load_telemetry(logs=path)

    assert str(refused.value) == f"{path}: line 2 is longer than the 4,096 bytes a line may be (5,026 bytes)"


def test_an_otlp_line_past_the_limit_is_read_as_a_document(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(textlogs, "MAX_LINE_BYTES", 4096)
    spans = [span(f"{n:032x}", f"{n:016x}", "", "GET /" + "x" * 100, n, 5, 2, 0) for n in range(40)]
    path = write_lines(tmp_path / "traces.json", [{"resourceSpans": [
        {"resource": resource("api"), "scopeSpans": [{"scope": {}, "spans": spans}]}]}])

    assert load_telemetry(traces=path).fetch("SELECT count(*) AS n FROM spans").to_pylist() == [{"n": 40}]
