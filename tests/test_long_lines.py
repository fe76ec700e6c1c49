"""A line longer than DuckDB's default 16 MiB (`textlogs.MAX_LINE_BYTES`): one OTLP export batch written as a line,
a log line holding a dump. It was a DuckDB traceback: an OTLP file is now read as JSON documents, and a log's line
is one line naming the file and the line. The limit is not raised: DuckDB's reader of a compressed file takes
sixteen times it in one block, and two gzipped log minutes ran out of memory at 1 GiB."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from incidentlens.analysis.templates import mine_all_templates
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


def test_a_log_line_past_16_mib_is_one_line_naming_the_file_and_the_line(tmp_path: Path) -> None:
    path = tmp_path / "app.log"
    path.write_text("2024-05-01 10:00:00 INFO start\n"
                    f"2024-05-01 10:00:01 ERROR heap dump {'x' * PAST_16_MIB}\n"
                    "2024-05-01 10:00:02 INFO end\n")

    with pytest.raises(InputError) as refused:
        load_telemetry(logs=path)

    assert str(refused.value).startswith(f"{path}: line 2 is longer than the 16,777,216 bytes a line may be (")


def test_a_json_line_past_what_the_reader_takes_is_one_line_naming_the_file_and_the_line(tmp_path: Path) -> None:
    # it was DuckDB's '"maximum_object_size" of 16777216 bytes exceeded while reading file ...', no line named
    path = tmp_path / "app.jsonl"
    path.write_text('{"ts": "2024-05-01T10:00:00Z", "msg": "start"}\n'
                    f'{{"ts": "2024-05-01T10:00:01Z", "msg": "heap dump {"x" * (2 * PAST_16_MIB)}"}}\n')

    with pytest.raises(InputError) as refused:
        load_telemetry(logs=path)

    assert str(refused.value) == (f"{path}: cannot read as JSON lines: line 2 holds {2 * PAST_16_MIB + 51:,} bytes, "
                                  "more than the JSON reader takes in one record (16,777,216 bytes): shorten it")


def test_a_csv_record_past_2_mb_is_read_as_a_text_logs_line_is(tmp_path: Path) -> None:
    # DuckDB's CSV reader takes 2 MB by default: a stack trace logged whole was set aside, "Maximum line size of
    # 2000000 bytes exceeded", while a plain-text log's line of the same may be 16 MiB
    dump = "heap dump " + "x" * 3_000_000
    path = tmp_path / "app.csv"
    path.write_text(f"ts,service,message\n2024-05-01T10:00:00Z,api,start\n2024-05-01T10:00:01Z,api,{dump}\n")

    store = load_telemetry(logs=path)

    assert store.fetch("SELECT length(message) AS n FROM logs ORDER BY ts").to_pylist() == [{"n": 5}, {"n": len(dump)}]
    assert store.rejected == []


def test_a_csv_record_past_16_mib_is_set_aside_saying_how_long_it_is(tmp_path: Path) -> None:
    path = tmp_path / "app.csv"
    path.write_text(f"ts,service,message\n2024-05-01T10:00:00Z,api,start\n"
                    f"2024-05-01T10:00:01Z,api,heap dump {'x' * PAST_16_MIB}\n")

    store = load_telemetry(logs=path)

    [rejected] = store.rejected
    assert [(line, reason) for line, reason, _ in rejected.rows] == [
        (3, f"a record of {PAST_16_MIB + 35:,} bytes, longer than the 16,777,216 a record may be")]
    # numbering the file's lines for `templates` reads it again: that was a DuckDB traceback
    with pytest.raises(InputError) as refused:
        mine_all_templates(store)
    assert str(refused.value) == f"{path}: line 3 is longer than the 16,777,216 bytes a line may be " \
                                 f"({PAST_16_MIB + 35:,} bytes)"


def test_the_lines_of_gzipped_log_files_are_read_without_running_out_of_memory(tmp_path: Path) -> None:
    # `templates` numbers the lines of each file (`store.log_origins_sql`); with a reader's line limit of 1 GiB,
    # DuckDB asked for a 16 GiB block for each gzipped file and two log minutes ran out of memory
    files = []
    for minute in (1, 2):
        path = tmp_path / f"10_0{minute}_log.csv.gz"
        with gzip.open(path, "wt") as handle:
            handle.write("ts,service,message\n" + "".join(f"2024-05-01T10:0{minute}:{s:02d}Z,api,served {s}\n"
                                                           for s in range(60)))
        files.append(path)
    store = load_telemetry(logs=files)
    store.con.execute("SET memory_limit = '2GB'")

    origins = store.fetch(f"SELECT count(*) AS n FROM ({store.log_origins_sql()})").to_pylist()

    assert origins == [{"n": 120}]


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
