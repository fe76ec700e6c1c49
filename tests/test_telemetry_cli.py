"""From the command line: --map overrides reach the loader, and bad input is one `error:` line with exit code 2."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

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


def write_epoch_parquet(path: Path, times: list[int], kind: pa.DataType) -> Path:
    """Long metrics in Parquet, their times integer epoch numbers of the column's type."""
    rows = len(times)
    pq.write_table(pa.table({"ts": pa.array(times, kind), "service": ["api"] * rows, "metric": ["p95_ms"] * rows,
                             "value": [12.0] * rows}), path)
    return path


@pytest.mark.parametrize(("times", "kind", "first", "unit"), [
    ([1714521600 + 60 * i for i in range(9)] + [9_000_000_000_000_000], pa.int64(), "9000000000000000", "s"),
    ([1714521600_000 + 60_000 * i for i in range(9)] + [1714522140_000_000_000], pa.int64(), "1714522140000000000",
     "ms"),
    ([1714521600 + 60 * i for i in range(9)] + [10**19], pa.uint64(), "10000000000000000000", "s"),
], ids=["9e15 among seconds", "nanoseconds among milliseconds", "10**19 among seconds, uint64"])
def test_a_parquet_epoch_time_too_large_for_its_unit_is_left_out_and_counted(
        tmp_path: Path, times: list[int], kind: pa.DataType, first: str, unit: str) -> None:
    # multiplied to microseconds it overflowed: 'cannot read as Parquet: Overflow in multiplication of INT64', no
    # column or row, where the same value in a CSV file is a time that does not parse, its row set aside
    metrics = write_epoch_parquet(tmp_path / "metrics.parquet", times, kind)
    result = incidentlens("sql", "SELECT count(*) AS n FROM metrics", "--metrics", str(metrics), "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["rows"] == [[9]]
    assert result.stderr == (f"warning: {metrics}: column 'ts': 1 row with a bad time left out; the first, row 10: "
                             f"cannot parse {first} as a time (the column's other values read as epoch {unit})\n")


def test_a_parquet_epoch_column_too_large_for_any_unit_is_one_error_line(tmp_path: Path) -> None:
    metrics = write_epoch_parquet(tmp_path / "metrics.parquet", [10**19 + i for i in range(5)], pa.uint64())
    result = incidentlens("analyze", "--metrics", str(metrics), "--out", str(tmp_path))
    assert (result.returncode, result.stderr) == (
        2, f"error: {metrics}: column 'ts' row 1: cannot parse 10000000000000000000 as a time (the column's other "
           "values read as epoch ns); 5 of the 5 timed rows so: not the time format it looks like\n")


def test_a_parquet_span_end_too_large_for_its_unit_leaves_that_duration_out(tmp_path: Path) -> None:
    starts = [1714521600_000 + 1000 * i for i in range(10)]
    ends = [start + 50 for start in starts[:-1]] + [starts[-1] * 1_000_000]  # nanoseconds among milliseconds
    spans = tmp_path / "spans.parquet"
    pq.write_table(pa.table({"trace_id": [f"t{i}" for i in range(10)], "span_id": [f"s{i}" for i in range(10)],
                             "service": ["api"] * 10, "start_time": starts, "end_time": ends}), spans)
    result = incidentlens("sql", "SELECT count(*) AS n, count(duration_ms) AS timed FROM spans", "--traces", str(spans),
                          "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["rows"] == [[10, 9]]
    assert result.stderr == (f"warning: {spans}: column 'end_time': 1 row whose time does not parse, its duration "
                             "kept as NULL\n")


@pytest.mark.parametrize("pad", ["\t", "\u00a0"], ids=["tabs", "no-break spaces"])
def test_numbers_padded_past_64_bytes_with_tabs_or_no_break_spaces_are_still_numbers(tmp_path: Path, pad: str) -> None:
    # padded so, a number was no number to the profile: in the wide form the metric was silently not one, in the
    # long form the file was refused, "column 'value' holds no numbers"
    cells = [pad * 70 + str(50 + i) for i in range(9)]
    wide = tmp_path / "wide.csv"
    wide.write_text("ts,cpu,errors\n" + "".join(f"2024-05-01T10:0{i}:00Z,{cell},{i % 2}\n"
                                                for i, cell in enumerate(cells)))
    long = tmp_path / "long.csv"
    long.write_text("ts,service,metric,value\n" + "".join(f"2024-05-01T10:0{i}:00Z,api,cpu,{cell}\n"
                                                          for i, cell in enumerate(cells)))
    for metrics in (wide, long):
        result = incidentlens("sql", "SELECT sum(value) AS total FROM metrics WHERE metric = 'cpu'", "--metrics",
                              str(metrics), "--json")
        assert (result.returncode, result.stderr) == (0, ""), metrics.name
        assert json.loads(result.stdout)["rows"] == [[sum(range(50, 59))]], metrics.name


def test_a_json_epoch_column_of_bigint_ends_only_is_one_error_line(tmp_path: Path) -> None:
    metrics = tmp_path / "metrics.jsonl"
    metrics.write_text("".join(f'{{"ts": {t}, "service": "api", "metric": "p95_ms", "value": 12.0}}\n'
                               for t in (9223372036854775807, -9223372036854775807, 9223372036854775807)))
    result = incidentlens("analyze", "--metrics", str(metrics), "--out", str(tmp_path))
    assert (result.returncode, result.stderr) == (
        2, f"error: {metrics}: column 'ts' row 1: '9223372036854775807' is a time outside the years 1678-2261; 3 of "
           "the 3 timed rows so: not the time format it looks like\n")


@pytest.mark.parametrize(("outer", "inner", "numbers"), [
    ("\u00a0", "\t", True),  # trim takes the no-break spaces, then the cast skips the tabs
    ("\t", "\u00a0", False),  # the cast skips the tabs, then stops at a no-break space; trim stops at a tab
], ids=["no-break spaces outside tabs", "tabs outside no-break spaces"])
@pytest.mark.parametrize("repeat", [1, 35], ids=["short", "past 64 bytes"])
def test_a_padded_number_is_one_to_the_profile_exactly_where_its_cast_reads_one(
        tmp_path: Path, outer: str, inner: str, numbers: bool, repeat: int) -> None:
    # past 64 bytes the profile trimmed any mix of padding, so took tabs outside no-break spaces for numbers, which
    # the cast then refused: a metric of no values, "column 'cpu': 9 rows not numeric, kept as NULL"
    from incidentlens.telemetry import load_telemetry

    cells = [outer * repeat + inner + f"{50 + i}.5" + inner + outer * repeat for i in range(9)]
    wide = tmp_path / "wide.csv"
    wide.write_text("ts,cpu,errors\n" + "".join(f"2024-05-01T10:0{i}:00Z,{cell},{i % 2}\n"
                                                for i, cell in enumerate(cells)))
    store = load_telemetry(metrics=wide)
    assert store.warnings == []
    counts = store.fetch("SELECT metric, count(value) AS n FROM metrics GROUP BY metric ORDER BY metric").to_pylist()
    assert counts == [{"metric": "cpu", "n": 9}] * numbers + [{"metric": "errors", "n": 9}]
