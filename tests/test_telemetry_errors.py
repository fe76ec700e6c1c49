"""Bad input gets one clear line naming the file, the column and (where it applies) the row — at load time."""

from __future__ import annotations

import gzip
import json
from datetime import datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from cut_gzip import CUT_SHORT, read_up_to_the_cut, write_cut_in_half
from incidentlens.errors import InputError
from incidentlens.telemetry import load_telemetry


def write(path: Path, text: str) -> Path:
    path.write_bytes(gzip.compress(text.encode()) if path.suffix == ".gz" else text.encode())
    return path


def load_error(**inputs: object) -> str:
    with pytest.raises(InputError) as caught:
        load_telemetry(**inputs)
    message = str(caught.value)
    assert "\n" not in message, "errors are one line"
    return message


def test_a_missing_file_is_named(tmp_path: Path) -> None:
    assert load_error(metrics=tmp_path / "nope.csv") == f"{tmp_path / 'nope.csv'}: no such file"


def test_a_glob_matching_nothing_is_named(tmp_path: Path) -> None:
    assert load_error(logs=str(tmp_path / "*.jsonl")) == f"{tmp_path / '*.jsonl'}: no file matches this pattern"


def test_a_file_whose_name_has_glob_characters_is_read_as_named(tmp_path: Path) -> None:
    # a browser's or an export's copy, `logs [1].csv`: it was "no file matches this pattern", the brackets read as
    # a character class
    path = tmp_path / "logs [1].csv"
    path.write_text("ts,message\n2024-05-01T10:00:00Z,hello\n")
    assert load_telemetry(logs=str(path)).fetch("SELECT message FROM logs").to_pylist() == [{"message": "hello"}]


def test_a_directory_is_not_a_file(tmp_path: Path) -> None:
    assert load_error(metrics=tmp_path).startswith(f"{tmp_path}: is a directory")


def test_a_directory_given_with_its_slash_is_offered_a_glob_with_one_slash(tmp_path: Path) -> None:
    assert load_error(metrics=f"{tmp_path}/") == (f"{tmp_path}/: is a directory; give a file or a glob such as "
                                                  f"'{tmp_path}/*.csv'")


def test_nothing_to_load_is_an_error() -> None:
    assert load_error() == "no telemetry given: pass metrics and/or logs files"


@pytest.mark.parametrize("text", ["", "ts,value\n"], ids=["zero bytes", "header only"])
def test_an_empty_file_is_named(tmp_path: Path, text: str) -> None:
    path = write(tmp_path / "metrics.csv", text)
    assert load_error(metrics=path) == f"{path}: no rows (the file is empty or has only a header)"


def test_an_empty_file_beside_files_with_rows_is_left_out_with_a_warning(tmp_path: Path) -> None:
    full = write(tmp_path / "10_00.csv.gz", "ts,msg\n2024-05-01T10:00:00Z,a\n")
    empty = write(tmp_path / "10_01.csv.gz", "")
    store = load_telemetry(logs=str(tmp_path / "*.csv.gz"))
    assert store.fetch("SELECT count(*) AS n FROM logs").to_pylist() == [{"n": 1}]
    assert store.warnings == [f"{empty}: no rows (the file is empty or has only a header), left out"]
    assert store.paths == [full, empty]


@pytest.mark.parametrize("text", [
    "# HELP http_p95_ms p95 latency\n# TYPE http_p95_ms gauge\n",  # a scrape of no sample
    "\ufeff# ts,service,metric,value\n\n# 2024-05-01T10:00:00Z,api,p95_ms,12\n",  # every row commented out
], ids=["scrape", "csv"])
def test_a_file_of_comment_lines_alone_is_said_to_hold_no_data(tmp_path: Path, text: str) -> None:
    # it was called "Prometheus text exposition format", or "no time column ...; its columns: # HELP ..."
    path = write(tmp_path / "metrics.csv", text)
    assert load_error(metrics=path) == f"{path}: no data: its lines are all comments (#)"


def test_a_file_of_comment_lines_beside_files_with_rows_is_left_out_with_a_warning(tmp_path: Path) -> None:
    write(tmp_path / "10_00.log", "2024-05-01T10:00:00Z ERROR card declined\n")
    commented = write(tmp_path / "10_01.log", "# rotated\n")
    store = load_telemetry(logs=str(tmp_path / "*.log"))
    assert store.fetch("SELECT count(*) AS n FROM logs").to_pylist() == [{"n": 1}]
    assert store.warnings == [f"{commented}: no data: its lines are all comments (#), left out"]


def test_an_empty_gzip_file_is_named(tmp_path: Path) -> None:
    path = write(tmp_path / "logs.jsonl.gz", "")
    assert load_error(logs=path).startswith(f"{path}: ")


@pytest.mark.parametrize(("name", "line"), [
    ("logs.jsonl.gz", '{{"ts": "2024-05-01T10:00:{s:02d}Z", "msg": "ok {i}"}}'),
    ("logs.csv.gz", "2024-05-01T10:00:{s:02d}Z,ok {i}"),
    ("app.log.gz", "2024-05-01 10:00:{s:02d} INFO ok {i}")])
def test_a_gzip_file_cut_short_is_read_up_to_the_cut_and_said_so(tmp_path: Path, name: str, line: str) -> None:
    # a copy that did not finish: the whole file was refused, the lines before the cut with it
    header = "ts,msg\n" * name.endswith(".csv.gz")
    text = header + "".join(line.format(s=i % 60, i=i) + "\n" for i in range(3000))
    path = tmp_path / name
    lines = write_cut_in_half(path, text)

    store = load_telemetry(logs=path)

    assert store.warnings == [read_up_to_the_cut(path, lines)]
    entries = lines - len(header.splitlines())
    assert store.fetch("SELECT count(*) AS n, max(message) AS last FROM logs").to_pylist() == [
        {"n": entries, "last": max(f"ok {i}" for i in range(entries))}]


@pytest.mark.parametrize("name", ["logs.jsonl.gz", "logs.json.gz"])
def test_a_small_json_lines_file_cut_short_is_read_up_to_the_cut_too(tmp_path: Path, name: str) -> None:
    # less than the 1 KiB its first bytes are checked in: the check read past the cut and refused the file in
    # Python's words ('Compressed file ended before the end-of-stream marker was reached')
    text = "".join(f'{{"ts": "2024-05-01T10:00:{i:02d}Z", "msg": "ok {i}"}}\n' for i in range(8))
    whole = gzip.compress(text.encode())
    path = tmp_path / name
    path.write_bytes(whole[:-10])  # the end marker and the last line's end cut off

    store = load_telemetry(logs=path)

    assert store.warnings == [f"{path}: the gzip stream ends early: the file is cut short (a copy or download that "
                              "did not finish?): its first 7 lines read; the start of line 8, cut off, left out"]
    assert store.fetch("SELECT count(*) AS n FROM logs").to_pylist() == [{"n": 7}]


@pytest.mark.parametrize(("name", "text"), [("logs.jsonl.gz", '{"ts": "2024-05-01T10:00:00Z", "msg": "ok"}\n'),
                                           ("logs.csv.gz", "ts,msg\n2024-05-01T10:00:00Z,ok\n")])
def test_a_file_cut_short_in_its_gzip_header_says_so(tmp_path: Path, name: str, text: str) -> None:
    path = tmp_path / name
    path.write_bytes(gzip.compress(text.encode())[:5])
    assert load_error(logs=path) == (f"{path}: cannot read: the gzip stream ends early: the file is cut short (a copy "
                                     "or download that did not finish?)")


def test_a_small_rotated_log_cut_short_is_read_up_to_the_cut_too(tmp_path: Path) -> None:
    # a name that says no format (`syslog.1.gz`): its lines are sampled to find one, and the sample ran into the cut
    text = "".join(f"2024-05-01 10:00:{i:02d} INFO api request {i}\n" for i in range(8))
    path = tmp_path / "syslog.1.gz"
    path.write_bytes(gzip.compress(text.encode())[:-10])

    store = load_telemetry(logs=path)

    assert store.warnings == [f"{path}: the gzip stream ends early: the file is cut short (a copy or download that "
                              "did not finish?): its first 7 lines read; the start of line 8, cut off, left out"]
    assert store.fetch("SELECT count(*) AS n FROM logs").to_pylist() == [{"n": 7}]


def test_a_gzip_file_of_two_members_with_a_latin1_byte_is_read_whole(tmp_path: Path) -> None:
    # as `cat monday.log.gz tuesday.log.gz` writes it: its UTF-8 copy is unzipped member after member
    first = "ts,msg\n" + "".join(f"2024-05-01T10:00:{i:02d}Z,ok {i}\n" for i in range(30))
    second = "2024-05-01T10:01:00Z,caf\xe9 closed\n2024-05-01T10:01:01Z,ok again\n"
    path = tmp_path / "logs.csv.gz"
    path.write_bytes(gzip.compress(first.encode()) + gzip.compress(second.encode("latin-1")))
    store = load_telemetry(logs=path)
    assert store.warnings == [f"{path}: 1 byte sequence(s) that are not UTF-8, the first on line 32, read as U+FFFD "
                              "(the lines are kept)"]
    assert store.fetch("SELECT count(*) AS n FROM logs").to_pylist() == [{"n": 32}]


def test_a_json_document_cut_short_is_named_once_with_what_happened_to_it(tmp_path: Path) -> None:
    # a JSON document has no records to read before the cut
    path = tmp_path / "logs.json.gz"
    write_cut_in_half(path, json.dumps([{"ts": "2024-05-01T10:00:00Z", "msg": f"ok {i}"} for i in range(3000)]))
    assert load_error(logs=path) == f"{path}: cannot read as JSON: {CUT_SHORT}"


def test_json_lines_in_a_json_file_cut_short_are_read_up_to_the_cut(tmp_path: Path) -> None:
    # one record a line, named .json as many exporters name it: read as the same lines named .jsonl are
    text = "".join(json.dumps({"ts": f"2024-05-01T10:{i // 60 % 60:02d}:{i % 60:02d}Z", "msg": f"ok {i}"}) + "\n"
                   for i in range(3000))
    path = tmp_path / "logs.json.gz"
    lines = write_cut_in_half(path, text)

    store = load_telemetry(logs=path)

    assert store.warnings == [read_up_to_the_cut(path, lines)]
    assert store.fetch("SELECT count(*) AS n FROM logs").to_pylist() == [{"n": lines}]


def test_a_pretty_printed_json_document_cut_short_is_named_once_with_what_happened_to_it(tmp_path: Path) -> None:
    # its lines before the cut are no document: the error says why, not what the lines before it lack
    records = [{"ts": "2024-05-01T10:00:00Z", "msg": f"ok {i}"} for i in range(3000)]
    path = tmp_path / "logs.json.gz"
    write_cut_in_half(path, json.dumps(records, indent=2))
    assert load_error(logs=path) == f"{path}: cannot read as JSON: {CUT_SHORT}"


def test_a_plain_file_named_gz_is_said_to_be_no_gzip_data(tmp_path: Path) -> None:
    path = tmp_path / "metrics.csv.gz"
    path.write_text("ts,service,metric,value\n2024-05-01T10:00:00Z,api,p95_ms,12\n")
    assert load_error(metrics=path) == (f"{path}: cannot read as CSV: not gzip data, though its name ends in .gz "
                                        "(a plain file renamed?)")


@pytest.mark.parametrize(("view", "name", "text"), [
    ("metrics", "metrics.csv.gz", "ts,service,metric,value\n2024-05-01T10:00:00Z,api,p95_ms,12\n"),
    ("logs", "app.jsonl.gz", '{"ts": "2024-05-01T10:00:00Z", "level": "error", "msg": "card declined"}\n'),
    ("logs", "app.log.gz", "2024-05-01 10:00:00,000 ERROR card declined\n"),
], ids=["csv", "json-lines", "plain-text"])
def test_zero_padding_after_a_gzip_stream_is_ignored_and_said(tmp_path: Path, view: str, name: str,
                                                                text: str) -> None:
    # a tape or rotation tool pads the file to its block size; gzip -d reads it ("trailing zero bytes ignored"):
    # it was refused as "not gzip data" (a plain-text log's reader stopped with a traceback)
    path = tmp_path / name
    path.write_bytes(gzip.compress(text.encode()) + bytes(512))
    store = load_telemetry(**{view: path})
    assert store.fetch(f"SELECT count(*) AS n FROM {view}").column("n").to_pylist() == [1]
    assert store.warnings == [f"{path}: 512 zero bytes after the end of its gzip stream (padding) ignored, as gzip -d "
                              "ignores them"]


@pytest.mark.parametrize("lines", [1, 100_000])  # read by Python's gzip reader alone; by DuckDB's, then a copy
def test_other_bytes_after_a_gzip_stream_are_said_to_be_no_gzip_data(tmp_path: Path, lines: int) -> None:
    path = tmp_path / "metrics.csv.gz"
    text = "ts,service,metric,value\n" + "2024-05-01T10:00:00Z,api,p95_ms,12\n" * lines
    path.write_bytes(gzip.compress(text.encode()) + bytes(8) + b"garbage")
    assert load_error(metrics=path) == (f"{path}: cannot read: bytes after the end of its gzip stream are not gzip "
                                        "data (trailing garbage, which gzip -d ignores with a warning): cut them "
                                        "off, or give the file gunzipped")


def test_a_row_whose_time_does_not_parse_is_left_out_and_counted(tmp_path: Path) -> None:
    rows = [f"2024-05-01T10:{m:02d}:00Z,{m}" for m in range(20)]
    rows[16] = "2024-13-45,16"
    path = write(tmp_path / "metrics.csv", "ts,rps\n" + "\n".join(rows) + "\n")
    store = load_telemetry(metrics=path)
    assert store.warnings == [
        f"{path}: column 'ts': 1 row with a bad time left out; the first, row 17: cannot parse '2024-13-45' as a "
        "time (the column's other values read as ISO-8601 text)"
    ]
    values = [row[0] for row in store.con.execute("SELECT value FROM metrics ORDER BY ts").fetchall()]
    assert values == [m for m in range(20) if m != 16]


def test_a_time_column_mostly_unparseable_is_refused_naming_the_first(tmp_path: Path) -> None:
    # most times bad: not the format it looks like, and leaving them out would lose most of the file
    path = write(tmp_path / "metrics.csv", "ts,rps\n2024-05-01T10:00:00Z,1\n2024-05-01T10:01:00Z,2\n"
                                           "2024-05-01T10:02:00Z,3\n10h03,4\n10h04,5\n10h05,6\n10h06,7\n")
    assert load_error(metrics=path) == (
        f"{path}: column 'ts' row 4: cannot parse '10h03' as a time (the column's other values read as ISO-8601 "
        "text); 4 of the 7 timed rows so: not the time format it looks like"
    )


def test_a_bad_time_in_one_of_many_files_names_that_file(tmp_path: Path) -> None:
    good = write(tmp_path / "a.csv.gz", "ts,rps\n2024-05-01T10:00:00Z,1\n2024-05-01T10:01:00Z,2\n")
    bad = write(tmp_path / "b.csv.gz", "ts,rps\n2024-05-01T10:02:00Z,3\nyesterday,4\n")
    (warning,) = load_telemetry(metrics=[good, bad]).warnings
    assert f"1 row with a bad time left out; the first, {bad} row 2: cannot parse 'yesterday' as a time" in warning


def test_the_bad_file_is_found_even_with_a_column_called_filename(tmp_path: Path) -> None:
    good = write(tmp_path / "a.csv", "ts,filename,rps\n2024-05-01T10:00:00Z,x.log,1\n")
    bad = write(tmp_path / "b.csv", "ts,filename,rps\n2024-05-01T10:02:00Z,y.log,3\nnever,z.log,4\n")
    (warning,) = load_telemetry(metrics=[good, bad]).warnings
    assert f"the first, {bad} row 2: cannot parse 'never'" in warning


def test_a_bad_epoch_time_is_reported_with_its_unit(tmp_path: Path) -> None:
    path = write(tmp_path / "logs.jsonl", '{"ts": 1714557600000, "msg": "a"}\n{"ts": "soon", "msg": "b"}\n'
                                          '{"ts": 1714557660000, "msg": "c"}\n')
    assert load_telemetry(logs=path).warnings == [
        f"{path}: column 'ts': 1 row with a bad time left out; the first, row 2: cannot parse 'soon' as a time "
        "(the column's other values read as epoch ms)"
    ]


def test_epoch_seconds_among_milliseconds_name_the_first_such_row(tmp_path: Path) -> None:
    # read as milliseconds, 1714557660 would be a time in January 1970: no value is quietly moved decades away
    path = write(tmp_path / "metrics.csv", "ts,rps\n1714557600000,1\n1714557660,2\n1714557720000,3\n")
    assert load_telemetry(metrics=path).warnings == [
        f"{path}: column 'ts': 1 row with a bad time left out; the first, row 2: '1714557660' is epoch s by its "
        "size, the column read as epoch ms"
    ]


@pytest.mark.parametrize("when", ["99999-01-01T00:00:00Z", "1500-01-01T00:00:00Z"])
def test_a_time_no_analysis_can_hold_names_its_row(tmp_path: Path, when: str) -> None:
    # the analysis' nanosecond timestamps end in 2262 and start in 1677: such a time ended in a traceback
    path = write(tmp_path / "metrics.csv", f"ts,rps\n2024-05-01T00:00:00Z,1\n{when},2\n2024-05-01T00:01:00Z,3\n")
    assert load_telemetry(metrics=path).warnings == [
        f"{path}: column 'ts': 1 row with a bad time left out; the first, row 2: '{when}' is a time outside the "
        "years 1678-2261"
    ]


@pytest.mark.parametrize("value", ["9000000000000000", "9e15", "1e300", "inf", "-Infinity"])
def test_an_epoch_time_too_large_for_its_unit_names_its_row(tmp_path: Path, value: str) -> None:
    # multiplied to microseconds it overflowed, and the whole file was 'cannot read as CSV' with no row
    path = write(tmp_path / "metrics.csv", f"ts,rps\n1714521600,1\n{value},2\n1714521720,3\n")
    assert load_telemetry(metrics=path).warnings == [
        f"{path}: column 'ts': 1 row with a bad time left out; the first, row 2: cannot parse '{value}' as a time "
        "(the column's other values read as epoch s)"
    ]


@pytest.mark.parametrize("value", ["9223372036854775807", "-9223372036854775807"])
@pytest.mark.parametrize("name", ["metrics.csv", "metrics.jsonl"])
def test_a_bigint_end_among_epoch_microseconds_names_its_row(tmp_path: Path, name: str, value: str) -> None:
    # a BIGINT's end is +-infinity to make_timestamp, which failed the whole file: 'cannot read as CSV: Timestamp
    # microseconds out of range', no column or row. The last time, padded past 18 bytes, is read after the test.
    rows = [("1714521600000000", 0), (value, 1), ('"  1714521720000000  "', 2)]
    text = ("ts,rps\n" + "".join(f"{ts},{rps}\n" for ts, rps in rows) if name.endswith(".csv")
            else "".join(f'{{"ts": {ts}, "rps": {rps}}}\n' for ts, rps in rows))
    path = write(tmp_path / name, text)
    store = load_telemetry(metrics=path)
    assert store.warnings == [
        f"{path}: column 'ts': 1 row with a bad time left out; the first, row 2: cannot parse '{value}' as a time "
        "(the column's other values read as epoch us)"
    ]
    assert store.fetch("SELECT value, ts FROM metrics ORDER BY ts").to_pylist() == [
        {"value": 0.0, "ts": datetime(2024, 5, 1)}, {"value": 2.0, "ts": datetime(2024, 5, 1, 0, 2)}]


@pytest.mark.parametrize("value", [float("nan"), float("inf")])
def test_a_parquet_epoch_time_not_finite_is_left_out_and_counted(tmp_path: Path, value: float) -> None:
    path = tmp_path / "metrics.parquet"
    pq.write_table(pa.table({"ts": [1714521600.0, value, 1714521720.0], "rps": [1, 2, 3]}), path)
    store = load_telemetry(metrics=path)
    (warning,) = store.warnings
    assert warning.startswith(f"{path}: column 'ts': 1 row with a bad time left out; the first, row 2: ")
    assert store.fetch("SELECT count(*) AS n FROM metrics").to_pylist() == [{"n": 2}]


def test_a_time_column_with_no_parseable_value_is_named(tmp_path: Path) -> None:
    path = write(tmp_path / "logs.csv", "time,message\nlunch,a\n")
    assert load_error(logs=path) == (
        f"{path}: column 'time' row 1: cannot parse 'lunch' as a time (times are read as ISO 8601 such as "
        "2026-12-06 10:00:00 or 2026-12-06T10:00:00+01:00, yyyy/mm/dd hh:mm:ss, epoch s/ms/us/ns, Go time strings, "
        "access-log times such as 06/Dec/2026:10:00:00 +0000, RFC 2822 times such as Sun, 06 Dec 2026 10:00:00 GMT or "
        "Kibana's such as Dec 6, 2026 @ 10:00:00.000)")


@pytest.mark.parametrize("value", ["06/12/2026 10:00:00", "06.12.2026 10:00", "06-12-2026",
                                   "6/12/2026, 10:00:00.000 AM"])  # Azure's portal export
def test_a_date_written_day_first_is_refused_not_guessed(tmp_path: Path, value: str) -> None:
    # 06/12/2026 is 6 December in Berlin and 12 June in Boston: neither is chosen for the user
    path = write(tmp_path / "metrics.csv", f'ts,service,metric,value\n"{value}",api,p95_ms,1\n')
    assert load_error(metrics=path) == (
        f"{path}: column 'ts' row 1: cannot parse {value!r} as a time (the day and month of a date written before "
        "its year could be either way round and are not guessed: write the year first; times are read as ISO 8601 "
        "such as 2026-12-06 10:00:00 or 2026-12-06T10:00:00+01:00, yyyy/mm/dd hh:mm:ss, epoch s/ms/us/ns, Go time "
        "strings, access-log times such as 06/Dec/2026:10:00:00 +0000, RFC 2822 times such as Sun, 06 Dec 2026 "
        "10:00:00 GMT or Kibana's such as Dec 6, 2026 @ 10:00:00.000)")


def test_a_two_digit_year_read_as_iso_says_the_order_is_not_guessed(tmp_path: Path) -> None:
    path = write(tmp_path / "metrics.csv", "ts,service,metric,value\n12-06-26,api,p95_ms,1\n")
    assert load_error(metrics=path) == (
        f"{path}: column 'ts' row 1: '12-06-26' is a time outside the years 1678-2261 (the day and month of a date "
        "written before its year could be either way round and are not guessed: write the year first); 1 of the 1 "
        "timed row so: not the time format it looks like")


def test_a_day_first_date_among_iso_times_is_counted_and_said_so(tmp_path: Path) -> None:
    rows = "".join(f"2026-12-06T10:0{m}:00Z,api,p95_ms,1\n" for m in range(4))
    path = write(tmp_path / "metrics.csv", f"ts,service,metric,value\n{rows}13/12/2026 10:05:00,api,p95_ms,1\n")
    assert load_telemetry(metrics=path).warnings == [
        f"{path}: column 'ts': 1 row with a bad time left out; the first, row 5: cannot parse '13/12/2026 10:05:00' "
        "as a time (the day and month of a date written before its year could be either way round and are not "
        "guessed: write the year first; the column's other values read as ISO-8601 text)"]


def test_an_empty_time_column_is_named(tmp_path: Path) -> None:
    path = write(tmp_path / "logs.csv", "ts,message\n,a\n,b\n")
    assert load_error(logs=path) == f"{path}: column 'ts': no time values (every row is empty)"


def test_no_time_column_says_what_was_looked_for(tmp_path: Path) -> None:
    path = write(tmp_path / "metrics.csv", "when,rps\n2024-05-01,1\n")
    message = load_error(metrics=path)
    assert message.startswith(f"{path}: no time column (looked for ts, time, timestamp")
    assert message.endswith("use --map time=COLUMN")


@pytest.mark.parametrize("under", ["logs", "items"])  # an app's export, `kubectl get events -o json`
def test_records_under_a_list_are_named_with_how_to_give_them(tmp_path: Path, under: str) -> None:
    # "use --map time=COLUMN": no --map names a field of the records a list holds
    records = [{"timestamp": "2024-05-01T10:00:00Z", "message": "card declined"}]
    path = write(tmp_path / "export.json", json.dumps({"kind": "List", under: records}))

    message = load_error(logs=path)

    assert message.endswith(f"its records sit under {under!r}, a list: give them one a line, e.g. "
                            f"jq -c '.{under}[]' {path} > records.jsonl")


def test_a_time_inside_an_object_is_named_with_how_to_give_the_objects(tmp_path: Path) -> None:
    # an Elasticsearch dump (elasticdump, a _search answer's hits): "use --map time=COLUMN", which cannot name a
    # field inside an object
    hit = {"_index": "logs-2024.05.01", "_id": "1", "_source": {"@timestamp": "2024-05-01T10:00:00Z",
                                                                "message": "card declined"}}
    path = write(tmp_path / "hits.jsonl", json.dumps(hit) + "\n")

    message = load_error(logs=path)

    assert message.endswith("; its columns: _index, _id, _source; its time, '@timestamp', sits inside '_source', an "
                            f"object: lift its fields into each record, e.g. jq -c '. + ._source' {path} > "
                            "records.jsonl")


def test_no_time_column_names_the_columns_there_are_to_map_one_from(tmp_path: Path) -> None:
    path = write(tmp_path / "metrics.csv", "when_utc,service,metric,value\n2024-05-01 10:00:00,api,p95_ms,12\n")
    assert load_error(metrics=path).endswith("; its columns: when_utc, service, metric, value; use --map time=COLUMN")
    wide = write(tmp_path / "wide.csv", ",".join(["when"] + [f"m{i}" for i in range(20)]) + "\n"
                 + ",".join(["2024-05-01"] + ["1"] * 20) + "\n")
    shown = "; its columns: when, m0, m1, m2, m3, m4, m5, m6, m7, m8, m9, m10 and 9 more; use --map time=COLUMN"
    assert load_error(metrics=wide).endswith(shown)


def test_no_time_column_in_logs_names_the_files_columns_not_where_their_rows_were_read(tmp_path: Path) -> None:
    # a logs file's rows carry their line (and, of several files, their file) in hidden columns: they were listed
    # among "its columns" to map the time from ('service, message, _incidentlens_origin_line')
    path = write(tmp_path / "a.csv", "service,message\napi,hello\n")
    write(tmp_path / "b.csv", "service,message\napi,bye\n")
    assert load_error(logs=path).endswith("; its columns: service, message; use --map time=COLUMN")
    assert load_error(logs=str(tmp_path / "*.csv")).endswith("; its columns: service, message; use --map time=COLUMN")
    assert load_error(logs=path, mapping={"time": "when"}).endswith(
        "no column 'when' (--map time=when); its columns: service, message")


def test_a_table_with_no_time_beside_time_series_is_left_out_with_a_warning(tmp_path: Path) -> None:
    # `metric/*.csv` of a Nezha day matches its list of call pairs too
    write(tmp_path / "cart_metric.csv", "Time,PodName,CpuUsage(m)\n2024-05-01T10:00:00Z,cart-5f6585d649-fnmft,1.5\n")
    pairs = write(tmp_path / "dependency.csv", "Source,Target,Weight\nfrontend,cart,1\n")
    store = load_telemetry(metrics=str(tmp_path / "*.csv"))
    assert store.fetch("SELECT service, metric, value FROM metrics").to_pylist() == [
        {"service": "cart", "metric": "CpuUsage(m)", "value": 1.5}]
    assert len(store.warnings) == 1 and store.warnings[0].startswith(f"{pairs}: no time column (looked for ts, ")
    assert store.warnings[0].endswith("use --map time=COLUMN, left out")
    assert load_error(metrics=pairs).startswith(f"{pairs}: no time column")  # alone, it is an error


def test_logs_without_a_message_column(tmp_path: Path) -> None:
    path = write(tmp_path / "logs.csv", "ts,service\n2024-05-01,api\n")
    assert load_error(logs=path).startswith(f"{path}: no message column (looked for message, msg")


def test_spans_without_ids(tmp_path: Path) -> None:
    path = write(tmp_path / "spans.csv", "ts,operation\n2024-05-01,GET\n")
    assert load_error(traces=path).startswith(f"{path}: no trace_id column")


def test_metrics_with_no_numbers(tmp_path: Path) -> None:
    path = write(tmp_path / "metrics.csv", "ts,host\n2024-05-01,a\n")
    assert load_error(metrics=path).startswith(f"{path}: no metric columns")


def test_a_corrupt_parquet_file_is_unreadable(tmp_path: Path) -> None:
    path = write(tmp_path / "logs.parquet", "PAR1 this is not parquet PAR1")
    assert load_error(logs=path).startswith(f"{path}: cannot read as Parquet: ")


def test_a_mostly_garbage_json_lines_file_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path / "logs.jsonl", '{"ts": "2024-05-01", "msg": "a"}\n{"ts": \nGET / HTTP/1.1\n')
    assert load_error(logs=path) == (f"{path}: cannot read as JSON lines: 2 of 3 lines unreadable "
                                     "(line 2: not valid JSON)")


@pytest.mark.parametrize("lines", ["[1, 2, 3]\n[4, 5, 6]\n", "1\n2\n"])
def test_json_lines_of_arrays_or_numbers_alone_are_refused_as_not_objects(tmp_path: Path, lines: str) -> None:
    # DuckDB types such a file's one `json` column BIGINT[] or BIGINT: it was read, and found to have no time column
    path = write(tmp_path / "metrics.jsonl", lines)
    assert load_error(metrics=path) == (f"{path}: cannot read as JSON lines: 2 of 2 lines unreadable "
                                        "(line 1: not a JSON object)")


def test_one_broken_json_line_is_set_aside_with_its_line_number(tmp_path: Path) -> None:
    lines = [f'{{"ts": "2024-05-01T10:{i // 60:02d}:{i % 60:02d}Z", "msg": "req {i}", "ms": {i}}}' for i in range(200)]
    lines[57] = '{"ts": "2024-05-01T10:00:57Z", "msg": "cut sh'
    path = write(tmp_path / "logs.jsonl", "\n".join(lines) + "\n")

    store = load_telemetry(logs=path)

    assert store.fetch("SELECT count(*) AS n, max(ms) AS top FROM logs").to_pylist() == [{"n": 199, "top": 199}]
    [rejected] = store.rejected
    assert rejected.note() == "1 of 200 records of logs.jsonl unreadable (line 58)"
    assert rejected.rows == ((58, "not valid JSON", lines[57]),)
    assert store.warnings == [f"{path}: 1 of 200 records of logs.jsonl unreadable (line 58), set aside"]


def test_a_binary_file_named_csv_is_unreadable(tmp_path: Path) -> None:
    path = tmp_path / "metrics.csv"
    path.write_bytes(b"\xff\xfe\x00\x01binary\x00\xff")
    assert load_error(metrics=path).startswith(f"{path}: cannot read as CSV: line 1: ")


def test_a_mostly_ragged_csv_names_its_first_bad_line(tmp_path: Path) -> None:
    path = write(tmp_path / "metrics.csv", "ts,rps,p95\n2024-05-01,1,2\n2024-05-02,1\n2024-05-03,1\n")
    assert load_error(metrics=path).startswith(f"{path}: cannot read as CSV: line 3: ")


def test_a_mapping_to_an_absent_column_is_an_error(tmp_path: Path) -> None:
    path = write(tmp_path / "logs.csv", "ts,msg\n2024-05-01,a\n")
    assert load_error(logs=path, mapping={"message": "text"}) == f"--map message=text: no column 'text' in {path}"


def test_a_time_mapping_to_an_absent_column_names_it_not_the_usual_names(tmp_path: Path) -> None:
    # it said "no time column (looked for ts, time, ...); use --map time=COLUMN" to a user who had given one
    path = write(tmp_path / "metrics.csv", "when,service,metric,value\n2024-05-01T00:00:00Z,api,lat,1\n")
    assert load_error(metrics=path, mapping={"time": "nosuch"}) == (
        f"{path}: no column 'nosuch' (--map time=nosuch); its columns: when, service, metric, value")


def test_a_few_malformed_csv_lines_are_skipped_and_counted(tmp_path: Path) -> None:
    rows = [f"2024-05-01T10:{m // 60:02d}:{m % 60:02d}Z,api,line {m}" for m in range(300)]
    rows[150] = "2024-05-01T10:02:30Z,api,line 150 cut2024-05-01T10:02:30Z,api,x"  # two log lines run together
    bad = write(tmp_path / "b.csv.gz", "ts,service,message\n" + "\n".join(rows) + "\n")
    clean = write(tmp_path / "a.csv.gz", "ts,service,message\n2024-05-01T09:00:00Z,db,ok\n")
    store = load_telemetry(logs=[clean, bad])
    assert store.fetch("SELECT count(*) AS n FROM logs").to_pylist() == [{"n": 300}]
    assert store.warnings == [f"{bad}: 1 of 300 records of b.csv.gz unreadable (line 152), set aside"]
    [rejected] = store.rejected
    assert rejected.rows[0][1].startswith("Expected Number of Columns: 3")
    assert rejected.rows[0][2] == rows[150]


def test_an_unterminated_quote_is_an_error_not_a_lost_file(tmp_path: Path) -> None:
    rows = [f"2024-05-01T10:{m // 60:02d}:{m % 60:02d}Z,api,line {m}" for m in range(300)]
    rows[100] = '2024-05-01T10:01:40Z,api,"cut short'  # swallows every later line into one quoted value
    path = write(tmp_path / "logs.csv", "ts,service,message\n" + "\n".join(rows) + "\n")
    assert load_error(logs=path).startswith(f"{path}: cannot read as CSV: line 102: Value with unterminated quote")


def test_a_last_line_cut_short_inside_a_quote_is_set_aside_not_the_whole_file(tmp_path: Path) -> None:
    # a log file copied while it was written: its last line stops inside a quoted message. DuckDB skips that line
    # without listing it among its rejects, and the file was refused for it
    rows = [f"2024-05-01T10:{m // 60:02d}:{m % 60:02d}Z,api,line {m}" for m in range(300)]
    cut = '2024-05-01T10:05:00Z,api,"timeout calling db: conn'
    path = write(tmp_path / "logs.csv", "ts,service,message\n" + "\n".join(rows) + "\n" + cut)
    store = load_telemetry(logs=path)
    assert store.fetch("SELECT count(*) AS n FROM logs").to_pylist() == [{"n": 300}]
    assert store.warnings == [f"{path}: 1 of 301 records of logs.csv unreadable (line 302), set aside"]
    [rejected] = store.rejected
    assert rejected.rows == ((302, "Value with unterminated quote found.", cut),)


def test_a_last_line_cut_inside_a_quote_after_a_ragged_row_is_set_aside_and_counted_too(tmp_path: Path) -> None:
    # the ragged row was listed, and then the cut line was lost in silence: "1 of 40 lines unreadable (line 12)"
    rows = [f"2024-05-01T10:{m:02d}:00Z,api,line {m}" for m in range(40)]
    rows[10] = "2024-05-01T10:10:00Z,api,x,extra"
    cut = '2024-05-01T11:00:00Z,api,"timeout calling db: conn'
    path = write(tmp_path / "logs.csv", "ts,service,message\n" + "\n".join(rows) + "\n" + cut + "\n")
    store = load_telemetry(logs=path)
    assert store.fetch("SELECT count(*) AS n FROM logs").to_pylist() == [{"n": 39}]
    [rejected] = store.rejected
    assert rejected.rows == ((12, "Expected Number of Columns: 3 Found: 4", rows[10]),
                             (42, "Value with unterminated quote found.", cut))
    assert store.warnings == [f"{path}: 2 of 41 records of logs.csv unreadable (the first on line 12), set aside"]


def test_a_file_cut_inside_a_quote_beside_one_with_a_ragged_row_is_set_aside_too(tmp_path: Path) -> None:
    # the cut file was left among the clean ones and read strictly again: a traceback (`_Malformed`)
    rows = [f"2024-05-01T10:{m:02d}:00Z,api,line {m}" for m in range(40)]
    ragged = write(tmp_path / "a.csv", "ts,service,message\n" + "\n".join([*rows[:10], rows[10] + ",extra",
                                                                          *rows[11:]]) + "\n")
    # another service's file (the same lines twice would be a copy, read once: tests/test_log_copies.py)
    other = [row.replace(",api,", ",web,") for row in rows]
    cut = write(tmp_path / "b.csv", "ts,service,message\n" + "\n".join(other) + '\n2024-05-01T11:00:00Z,api,"cut sh\n')
    store = load_telemetry(logs=str(tmp_path / "*.csv"))
    assert store.fetch("SELECT count(*) AS n FROM logs").to_pylist() == [{"n": 79}]
    assert store.warnings == [f"{ragged}: 1 of 40 records of a.csv unreadable (line 12), set aside",
                              f"{cut}: 1 of 41 records of b.csv unreadable (line 42), set aside"]


@pytest.mark.parametrize("ragged", [("c",), ("b", "d")])
def test_ragged_lines_in_some_of_many_files_are_set_aside_each_at_its_own_line(
        tmp_path: Path, ragged: tuple[str, ...]) -> None:
    # the malformed lines are looked for in the file the reader's error names first (`views._file_named`); with a
    # second such file, in every file: either way each is listed at its line and every kept line keeps its own
    paths = {}
    for name in "abcde":
        rows = [f"2024-05-01T10:{m:02d}:00Z,{name}-svc,line {m} of {name}" for m in range(30)]
        if name in ragged:
            rows[12] += ",extra"
        paths[name] = write(tmp_path / f"{name}.csv.gz", "ts,service,message\n" + "\n".join(rows) + "\n")
    store = load_telemetry(logs=list(paths.values()))
    assert store.warnings == [f"{paths[name]}: 1 of 30 records of {name}.csv.gz unreadable (line 14), set aside"
                              for name in ragged]
    origins = store.fetch(f"SELECT file, line, message FROM ({store.log_origins_sql()})").to_pylist()
    assert len(origins) == 5 * 30 - len(ragged)
    for row in origins:
        assert gzip.decompress(Path(row["file"]).read_bytes()).decode().splitlines()[row["line"] - 1].endswith(
            f",{row['message']}")


def test_lines_an_unterminated_quote_swallowed_are_counted_not_lost_in_silence(tmp_path: Path) -> None:
    # "1 of 4 lines unreadable (line 4)": line 5 went into the quote's value, read by no one and counted by no one
    rows = [f"2024-05-01T10:0{m}:00Z,api,line {m}" for m in range(4)]
    rows[2] = '2024-05-01T10:02:00Z,api,"cut sh'
    path = write(tmp_path / "logs.csv", "ts,service,message\n" + "\n".join(rows) + "\n")
    store = load_telemetry(logs=path)
    assert store.fetch("SELECT count(*) AS n FROM logs").to_pylist() == [{"n": 2}]
    assert store.warnings == [f"{path}: 2 of 4 records of logs.csv unreadable (line 4; 1 more line read into an "
                              "unterminated quote's value, each taken as a record), set aside"]


def test_a_row_with_text_after_its_closing_quote_is_counted_among_all_the_file_s_lines(tmp_path: Path) -> None:
    # as in Nezha's TrainTicket log minute 10_06: a lenient reader's count (11 records here) said "1 of 11 lines"
    rows = [f'2024-05-01T10:{m:02d}:00Z,api,"msg {{""k"":""v {m}""}}"' for m in range(40)]
    rows[10] = '2024-05-01T10:10:00Z,api,"msg {""k"":""v""}"tail of another] ""x""}"'
    path = write(tmp_path / "logs.csv", "ts,service,message\n" + "\n".join(rows) + "\n")
    store = load_telemetry(logs=path)
    assert store.fetch("SELECT count(*) AS n FROM logs").to_pylist() == [{"n": 39}]
    assert store.warnings == [f"{path}: 1 of 40 records of logs.csv unreadable (line 12), set aside"]


@pytest.mark.parametrize(("row", "glue", "lines_per_row"), [
    ("2024-05-01T10:{m:02d}:00Z,api,line {m}", "\n\n", 2),  # a blank line after each row
    ('2024-05-01T10:{m:02d}:00Z,api,"line {m}\nat Pool.take()\nat Db.query()"', "\n", 3),  # quoted stack traces
], ids=["blank lines", "stack traces"])
def test_a_ragged_row_among_blank_lines_or_multi_line_values_is_set_aside_at_its_own_line(
        tmp_path: Path, row: str, glue: str, lines_per_row: int) -> None:
    # each blank line, or each line of a quoted stack trace, counted as a lost line: "40 of 79 lines unreadable",
    # the file refused; and the row was listed at its record's number (line 12), not the file's line
    rows = [row.format(m=m) for m in range(40)]
    rows[10] = "2024-05-01T10:10:00Z,api,x,extra"
    path = write(tmp_path / "logs.csv", "ts,service,message\n" + glue.join(rows) + "\n")
    store = load_telemetry(logs=path)
    assert store.fetch("SELECT count(*) AS n FROM logs").to_pylist() == [{"n": 39}]
    line = 1 + 10 * lines_per_row + 1
    [rejected] = store.rejected
    assert (rejected.records, rejected.rows[0][0], rejected.rows[0][2]) == (40, line, rows[10])
    assert path.read_text().splitlines()[line - 1] == rows[10]
    # 40 records, not lines, of a file of 81 or 121 lines: "1 of 40 lines of logs.csv" was untrue
    assert rejected.note() == f"1 of 40 records of logs.csv unreadable (line {line})"


def test_a_last_line_cut_inside_a_quote_after_stack_traces_is_listed_at_its_own_line_among_files(
        tmp_path: Path) -> None:
    # listed at line 42 (DuckDB's record number) with the text of line 42 ("at foo"); beside a second file with
    # stack traces, both were taken for short and the whole load refused
    rows = "".join(f'2024-05-01T10:{m:02d}:00Z,api,"line {m}\nat foo\nat bar"\n' for m in range(40))
    write(tmp_path / "a.csv", "ts,service,message\n" + rows)
    # another service's file (the same lines twice would be a copy, read once: tests/test_log_copies.py)
    other = rows.replace(",api,", ",web,")
    cut = write(tmp_path / "b.csv", "ts,service,message\n" + other + '2024-05-01T11:00:00Z,api,"cut sh\n')
    store = load_telemetry(logs=str(tmp_path / "*.csv"))
    assert store.fetch("SELECT count(*) AS n FROM logs").to_pylist() == [{"n": 80}]
    [rejected] = store.rejected
    assert (rejected.file, rejected.rows) == (str(cut), ((122, "Value with unterminated quote found.",
                                                          '2024-05-01T11:00:00Z,api,"cut sh'),))


@pytest.mark.parametrize(("kind", "header", "row", "names"), [
    ("metrics", "ts,service,p95_ms,p95_ms", "2024-05-01,api,1,2", "'p95_ms' (columns 3 and 4)"),  # two series
    ("logs", "ts,service,message,level,Message", "2024-05-01,api,hello,INFO,x",
     "'message' and 'Message' (columns 3 and 5)"),
    ("metrics", "time,time,rps", "2024-05-01,2024-05-02,1", "'time' (columns 1 and 2)"),
])
def test_a_column_read_for_a_role_given_twice_in_the_header_is_refused(
        tmp_path: Path, kind: str, header: str, row: str, names: str) -> None:
    # which of the two is meant cannot be told: the reader named the second `<name>_1` silently
    path = write(tmp_path / f"{kind}.csv", f"{header}\n{row}\n")
    assert load_error(**{kind: path}) == (f"{path}: two columns are named {names}, and IncidentLens reads one: "
                                          "rename one")


def test_a_column_given_twice_that_no_role_reads_is_kept_with_a_warning(tmp_path: Path) -> None:
    path = write(tmp_path / "logs.csv", "ts,service,message,pod,pod\n2024-05-01,api,hello,a,b\n")
    store = load_telemetry(logs=path)
    assert store.fetch("SELECT pod, pod_1 FROM logs").to_pylist() == [{"pod": "a", "pod_1": "b"}]
    assert store.warnings == [f"{path}: two columns are named 'pod' (columns 4 and 5): the second is kept as "
                              "'pod_1'"]


def test_metrics_whose_numbers_have_decimal_commas_say_so(tmp_path: Path) -> None:
    # a spreadsheet export in a decimal-comma locale: ';' between fields, ',' before the decimals
    path = write(tmp_path / "metrics.csv", "time;service;latency_ms\n2024-05-01T10:00:00Z;api;12,5\n"
                                           "2024-05-01T10:01:00Z;api;1.013,25\n")
    assert load_error(metrics=path).endswith("; column 'latency_ms' is no number (written with a decimal comma, e.g. "
                                             "'1.013,25': write a decimal point)")


@pytest.mark.parametrize(("values", "says"), [
    # it was no word of why
    (("1,250.5", "1,300.25"), "written with thousands separators, e.g. '1,250.5': write numbers without them"),
    # it was "written with a decimal comma": a comma before three digits may as well separate thousands
    (("1,250", "1,300"), "written with a comma, e.g. '1,250': a decimal comma or a thousands separator, which is not "
                         "guessed: write a decimal point and no separators"),
], ids=["with a decimal point", "either"])
def test_metrics_whose_numbers_have_thousands_separators_say_so(tmp_path: Path, values: tuple[str, str],
                                                                 says: str) -> None:
    path = write(tmp_path / "metrics.csv", "time,service,rps\n" + "".join(
        f'2024-05-01T10:0{i}:00Z,api,"{value}"\n' for i, value in enumerate(values)))
    assert load_error(metrics=path).endswith(f"; column 'rps' is no number ({says})")


def test_a_column_with_decimal_commas_beside_numbers_is_named_in_a_warning(tmp_path: Path) -> None:
    mostly = write(tmp_path / "mostly.csv", "time;service;latency_ms;rps\n2024-05-01T10:00:00Z;api;12,5;3\n"
                                            "2024-05-01T10:01:00Z;api;13,5;4\n2024-05-01T10:02:00Z;api;14;5\n")
    store = load_telemetry(metrics=mostly)  # kept as text, so no latency series: said, not silently dropped
    assert store.fetch("SELECT DISTINCT metric FROM metrics").to_pylist() == [{"metric": "rps"}]
    assert store.warnings == [f"{mostly}: column 'latency_ms': read as text, not as numbers (written with a decimal "
                              "comma, e.g. '12,5': write a decimal point)"]
    few = write(tmp_path / "few.csv", "time;service;latency_ms\n2024-05-01T10:00:00Z;api;12,5\n"
                                      "2024-05-01T10:01:00Z;api;13\n2024-05-01T10:02:00Z;api;14\n")
    assert load_telemetry(metrics=few).warnings == [
        f"{few}: column 'latency_ms': 1 row not numeric (written with a decimal comma, e.g. '12,5': write a decimal "
        "point), kept as NULL"]


def test_a_parquet_file_naming_a_metric_column_twice_is_refused(tmp_path: Path) -> None:
    # pyarrow writes such a schema; DuckDB read the second as another series, `p95_ms_1`
    path = tmp_path / "metrics.parquet"
    table = pa.Table.from_arrays([pa.array([datetime(2024, 5, 1, 10)]), pa.array([1.0]), pa.array([2.0])],
                                 names=["ts", "p95_ms", "p95_ms"])
    pq.write_table(table, path)
    assert load_error(metrics=path) == (f"{path}: two columns are named 'p95_ms' (columns 2 and 3), and IncidentLens "
                                        "reads one: rename one")


def test_json_keys_that_differ_only_in_case_are_read_each_and_checked_as_a_repeated_column(tmp_path: Path) -> None:
    # DuckDB's reader took them for one column: the second's values came back NULL, lost without a word
    lines = "".join(f'{{"ts": "2024-05-01T10:0{i}:00Z", "msg": "req {i}", "Pod": "a", "pod": "b"}}\n' for i in range(3))
    kept = write(tmp_path / "kept.jsonl", lines.replace('"msg"', '"service": "api", "msg"'))
    store = load_telemetry(logs=kept)
    assert store.fetch("SELECT Pod, pod_1 FROM logs LIMIT 1").to_pylist() == [{"Pod": "a", "pod_1": "b"}]
    assert store.warnings == [f"{kept}: two keys are named 'Pod' and 'pod': the second is kept as 'pod_1'"]
    read = write(tmp_path / "read.jsonl", lines)  # no service key: the pod names the service
    assert load_error(logs=read) == (f"{read}: two keys are named 'Pod' and 'pod', and IncidentLens reads one: "
                                     "rename one")


def test_an_excel_delimiter_hint_above_the_header_is_named(tmp_path: Path) -> None:
    # a European Excel export starts `sep=;`: read as the header, every line after it was "unreadable"
    path = write(tmp_path / "metrics.csv", "sep=;\r\ntime;service;p95_ms\r\n2024-05-01 10:00:00;api;12\r\n")
    assert load_error(metrics=path) == (f"{path}: line 1 'sep=;' is Excel's delimiter hint, not a header: delete "
                                        "that line")


@pytest.mark.parametrize("spelling", ["null", "None", "NaN", "NaT", "N/A", "-"])
def test_a_time_spelt_as_none_is_left_out_and_counted_like_an_empty_one(tmp_path: Path, spelling: str) -> None:
    # what pandas or Python write for a missing time: one such row refused the whole file ("cannot parse 'NaT'")
    path = write(tmp_path / "logs.csv", f"ts,service,message\n2024-05-01T10:00:00Z,api,up\n{spelling},api,lost\n")
    store = load_telemetry(logs=path)
    assert store.fetch("SELECT message FROM logs").to_pylist() == [{"message": "up"}]
    assert store.warnings == [f"{path}: column 'ts': 1 row has no time, left out; the first, row 2"]


def test_a_missing_epoch_time_spelt_nan_is_counted_once_as_missing(tmp_path: Path) -> None:
    # 'NaN' casts to a double larger than any unit's bound: it was also taken for epoch of another unit (a traceback)
    rows = "".join(f"{1714521600 + 60 * m},{m}\n" for m in range(4))
    path = write(tmp_path / "metrics.csv", f"ts,rps\n{rows}NaN,9\n")
    store = load_telemetry(metrics=path)
    assert store.warnings == [f"{path}: column 'ts': 1 row has no time, left out; the first, row 5"]
    assert store.fetch("SELECT count(*) AS n FROM metrics").to_pylist() == [{"n": 4}]


def test_a_step_index_is_not_taken_for_epoch_times(tmp_path: Path) -> None:
    # Yahoo's A1 series number their hours 1, 2, 3, ...: read as epoch seconds they would all fall on 1 January 1970
    path = write(tmp_path / "series.csv", "timestamp,value\n1,10\n2,11\n3,10\n")
    assert load_error(metrics=path) == (
        f"{path}: column 'timestamp' row 1: cannot parse '1' as a time (a number under 1e8 is read as a counter "
        "or a step index, not as epoch seconds: write the times)"
    )


def test_a_long_form_value_column_without_numbers_is_named_with_its_first_row(tmp_path: Path) -> None:
    path = write(tmp_path / "metrics.csv", "ts,service,metric,value\n2024-05-01T10:00:00Z,api,rps,\n"
                                           "2024-05-01T10:01:00Z,api,rps,abc\n")
    assert load_error(metrics=path).endswith("; column 'value' holds no numbers (row 2: 'abc')")


def test_a_json_line_without_its_time_is_named_by_file_and_row_among_files(tmp_path: Path) -> None:
    first = write(tmp_path / "a.jsonl", '{"ts": "2024-05-01T10:00:00Z", "msg": "up"}\n')
    late = write(tmp_path / "b.jsonl", '{"ts": "2024-05-01T10:01:00Z", "msg": "up"}\n{"msg": "no time"}\n')
    store = load_telemetry(logs=str(tmp_path / "*.jsonl"))
    assert store.warnings == [f"{first} (and 1 more): column 'ts': 1 row has no time, left out; "
                              f"the first, {late} row 2"]


def test_an_unterminated_quote_before_blank_lines_at_the_end_is_listed_at_its_own_line(tmp_path: Path) -> None:
    # a blank line after the cut line was read into the quote's value: "line 5" (its next line, 'short'), not 4
    rows = [f"2024-05-01T10:0{m}:00Z,api,line {m}" for m in range(3)]
    path = write(tmp_path / "logs.csv", "ts,service,message\n" + "\n".join(rows) + '\n2024-05-01T10:03:00Z,api,"cut\n'
                 "short\n\n")
    store = load_telemetry(logs=path)
    assert store.fetch("SELECT count(*) AS n FROM logs").to_pylist() == [{"n": 3}]
    [rejected] = store.rejected
    assert rejected.rows == ((5, "Value with unterminated quote found.", '2024-05-01T10:03:00Z,api,"cut'),)
    assert store.warnings == [f"{path}: 3 of 6 records of logs.csv unreadable (line 5; 2 more lines read into an "
                              "unterminated quote's value, each taken as a record), set aside"]


@pytest.mark.parametrize("name", ["metrics.prom", "metrics.txt", "scrape"])
def test_prometheus_text_exposition_is_named_with_what_to_do(tmp_path: Path, name: str) -> None:
    # a /federate scrape or `promtool tsdb dump`: read as CSV, it was "1440 of 1441 lines unreadable"
    path = write(tmp_path / name, '# HELP http_p95_ms p95 latency\n# TYPE http_p95_ms gauge\n'
                 + "".join(f'http_p95_ms{{service="checkout",instance="10.0.0.1:9090"}} {120 + i}.5 '
                           f'{1714543200000 + 60_000 * i}\n' for i in range(5)))

    assert load_error(metrics=path) == (
        f"{path}: Prometheus text exposition format, which IncidentLens does not read: give the server "
        "(--prometheus URL), a saved /api/v1/query_range answer, or CSV with columns ts,service,metric,value")


def test_a_promtool_tsdb_dump_is_named_as_prometheus_text(tmp_path: Path) -> None:
    # its name among its labels, the line opens with a brace: it was read as JSON lines, "not valid JSON"
    path = write(tmp_path / "dump.txt", "".join(
        f'{{__name__="http_p95_ms", job="checkout"}} {120 + i}.5 {1714543200000 + 60_000 * i}\n' for i in range(5)))

    assert load_error(metrics=path).startswith(f"{path}: Prometheus text exposition format, which IncidentLens does "
                                               "not read")


def test_a_log_of_two_word_lines_is_no_prometheus_exposition(tmp_path: Path) -> None:
    path = write(tmp_path / "app.log", "started 1\nready 2\n")

    assert load_telemetry(logs=path).fetch("SELECT message FROM logs").to_pylist() == [
        {"message": "started 1"}, {"message": "ready 2"}]


def test_a_header_repeated_inside_the_file_is_said_to_be_one(tmp_path: Path) -> None:
    # `cat monday.csv tuesday.csv > metrics.csv`: it was "cannot parse 'ts' as a time (the column's other values read
    # as ISO-8601 text)"
    header = "ts,service,metric,value\n"
    rows = [f"2024-05-01T10:{m:02d}:00Z,api,p95_ms,{m}\n" for m in range(4)]
    path = write(tmp_path / "metrics.csv", header + "".join(rows[:2]) + header + "".join(rows[2:]))
    assert load_telemetry(metrics=path).warnings == [
        f"{path}: column 'ts': 1 row with a bad time left out; the first, row 3: 'ts', the header again (files "
        "joined end to end, as cat does?)"]


def test_a_time_with_a_zones_abbreviation_says_it_is_not_guessed(tmp_path: Path) -> None:
    # PDT, CEST, IST (India's, Israel's or Ireland's): it said only which formats are read
    path = write(tmp_path / "metrics.csv", "ts,service,metric,value\n2024-05-01 10:00:00 CEST,api,p95_ms,1\n")
    assert load_error(metrics=path).startswith(
        f"{path}: column 'ts' row 1: cannot parse '2024-05-01 10:00:00 CEST' as a time (a zone's abbreviation (CEST) "
        "may be several zones' and is not guessed: write its offset instead, e.g. 2026-12-06 10:00:00+01:00; times "
        "are read as ISO 8601")
