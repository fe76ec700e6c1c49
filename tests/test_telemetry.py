"""Loading telemetry files into canonical views: formats, compression, globs, wide/long metrics, logs, spans, events."""

from __future__ import annotations

import gzip
import json
import re
import tempfile
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from incidentlens.errors import InputError
from incidentlens.telemetry import TelemetryStore, load_telemetry, sql_ts, views
from incidentlens.telemetry.views import duration_unit

T0 = datetime(2024, 5, 1, 10, 0, 0)


def write_csv(path: Path, header: str, rows: list[str]) -> Path:
    text = "\n".join([header, *rows]) + "\n"
    if path.suffix == ".gz":
        path.write_bytes(gzip.compress(text.encode()))
    else:
        path.write_text(text)
    return path


def write_jsonl(path: Path, records: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def rows(store: TelemetryStore, sql: str) -> list[dict]:
    return store.fetch(sql).to_pylist()


# --- metrics ---------------------------------------------------------------------------------------------------


def test_wide_metrics_are_unpivoted_to_long_form_with_a_global_service(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "metrics.csv", "ts,rps,p95_ms,error_rate",
                     [f"{iso(T0 + timedelta(minutes=i))},{100 + i},{200 + i},0.0{i}" for i in range(3)])
    store = load_telemetry(metrics=path)
    assert store.columns("metrics")[:4] == ["ts", "service", "metric", "value"]
    got = rows(store, "SELECT metric, count(*) AS n, sum(value) AS total FROM metrics GROUP BY metric ORDER BY metric")
    assert got == [{"metric": "error_rate", "n": 3, "total": pytest.approx(0.03)},
                   {"metric": "p95_ms", "n": 3, "total": 603.0},
                   {"metric": "rps", "n": 3, "total": 303.0}]
    assert rows(store, "SELECT DISTINCT service FROM metrics") == [{"service": "global"}]
    assert store.warnings == []


def test_a_wide_column_named_service_slash_metric_is_that_services_series(tmp_path: Path) -> None:
    # one column per series, named as `detect` names a series: every one was service 'global' before
    path = write_csv(tmp_path / "metrics.csv", "ts,payments/p95_ms,checkout/p95_ms,rps",
                     [f"{iso(T0 + timedelta(minutes=i))},{900 + i},{120 + i},{50 + i}" for i in range(2)])

    got = rows(load_telemetry(metrics=path), "SELECT service, metric, sum(value) AS total FROM metrics "
                                             "GROUP BY ALL ORDER BY ALL")

    assert got == [{"service": "checkout", "metric": "p95_ms", "total": 241.0},
                   {"service": "global", "metric": "rps", "total": 101.0},
                   {"service": "payments", "metric": "p95_ms", "total": 1801.0}]


def test_long_metrics_keep_service_metric_value_and_label_columns(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "metrics.csv", "ts,service,region,metric,value", [
        f"{iso(T0)},api,eu,rps,10", f"{iso(T0)},db,us,rps,5", f"{iso(T0 + timedelta(minutes=1))},api,eu,p95_ms,250.5",
    ])
    store = load_telemetry(metrics=path)
    assert store.columns("metrics") == ["ts", "service", "metric", "value", "pod", "region"]
    assert rows(store, "SELECT service, metric, value, region FROM metrics ORDER BY ts, service") == [
        {"service": "api", "metric": "rps", "value": 10.0, "region": "eu"},
        {"service": "db", "metric": "rps", "value": 5.0, "region": "us"},
        {"service": "api", "metric": "p95_ms", "value": 250.5, "region": "eu"},
    ]


def twenty_values_one_bad(tmp_path: Path) -> Path:
    """A minute's p95_ms for 20 minutes, the 17th "oops"."""
    values = [str(i) for i in range(20)]
    values[16] = "oops"
    return write_csv(tmp_path / "metrics.csv", "ts,p95_ms",
                     [f"{iso(T0 + timedelta(minutes=i))},{v}" for i, v in enumerate(values)])


def assert_one_bad_value_counted(path: Path) -> None:
    store = load_telemetry(metrics=path)
    assert rows(store, "SELECT count(*) AS n, count(value) AS numbers FROM metrics") == [{"n": 20, "numbers": 19}]
    assert store.warnings == [f"{path}: column 'p95_ms': 1 row not numeric, kept as NULL"]


def test_bad_metric_values_are_kept_as_null_and_counted(tmp_path: Path) -> None:
    assert_one_bad_value_counted(twenty_values_one_bad(tmp_path))


def test_metric_values_read_as_numbers_are_the_values_their_text_casts_to(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # a CSV metric column past the sample is read as DOUBLE by the CSV reader: the numbers its text casts to
    monkeypatch.setattr(views, "SAMPLE_ROWS", 3)
    values = ["1.5", " 2", "1_000", "1e3", "", "NaN", "-0.25"]
    path = write_csv(tmp_path / "metrics.csv", "ts,p95_ms",
                     [f'{iso(T0 + timedelta(minutes=i))},"{v}"' for i, v in enumerate(values)])
    store = load_telemetry(metrics=path)
    assert [r["value"] for r in rows(store, "SELECT value FROM metrics ORDER BY ts")] == [
        1.5, 2.0, 1000.0, 1000.0, None, None, -0.25]
    assert store.warnings == [f"{path}: column 'p95_ms': 1 row not finite (NaN, Infinity or beyond +-1e+150), "
                              "kept as NULL"]


def test_a_bad_metric_value_past_the_sample_is_still_counted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # the sample saw numbers only, so the column is read as numbers; the CSV reader cannot take "oops" and the
    # source is read as text instead, where the value is counted
    monkeypatch.setattr(views, "SAMPLE_ROWS", 10)
    assert_one_bad_value_counted(twenty_values_one_bad(tmp_path))


def test_a_fixed_width_metric_column_padded_past_64_bytes_is_still_numbers(tmp_path: Path) -> None:
    # a fixed-width export pads every cell to its width: a blank cell of 80 spaces is empty, not text, and a
    # right-aligned number is a number, however long its padding
    cells = [" " * 80 if i % 3 else f"{50 + i:>80}" for i in range(9)]
    path = write_csv(tmp_path / "metrics.csv", "ts,cpu", [f"{iso(T0 + timedelta(minutes=i))},{cell}"
                                                          for i, cell in enumerate(cells)])
    store = load_telemetry(metrics=path)
    assert [r["value"] for r in rows(store, "SELECT value FROM metrics ORDER BY ts")] == [
        50.0, None, None, 53.0, None, None, 56.0, None, None]


def test_per_pod_metric_files_are_held_in_time_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # a day of per-pod files reads as one pod's day after another's; held in time order, a query of an hour reads
    # the blocks of rows of that hour, not every block
    monkeypatch.setattr(views, "SAMPLE_ROWS", 3)
    for pod in ("cart-1", "shop-1"):
        write_csv(tmp_path / f"{pod}_metric.csv", "ts,pod,cpu",
                  [f"{iso(T0 + timedelta(minutes=i))},{pod},{i}" for i in range(5)])
    store = load_telemetry(metrics=str(tmp_path / "*_metric.csv"))
    held = [r["ts"] for r in rows(store, "SELECT ts FROM metrics")]  # as stored: no ORDER BY
    assert held == sorted(held) and len(held) == 10


# --- time formats ------------------------------------------------------------------------------------------------

EPOCH = T0.replace(tzinfo=UTC).timestamp()


@pytest.mark.parametrize(("text", "expected"), [
    ("2024-05-01 10:00:00", T0),
    ("2024-05-01T10:00:00", T0),
    ("2024-05-01T10:00:00Z", T0),
    ("2024-05-01T10:00:00.250Z", T0 + timedelta(milliseconds=250)),
    ("2024-05-01T12:00:00+02:00", T0),
    ("2024-05-01T05:00:00-0500", T0),
    # a comma before the fraction, as ISO 8601 allows and Python's asctime and log4j write it: refused before
    ("2024-05-01 10:00:00,250", T0 + timedelta(milliseconds=250)),
    ("2024-05-01T12:00:00,250+02:00", T0 + timedelta(milliseconds=250)),
    ("2024-05-01 10:00:00.470514006 +0000 UTC m=+0.546675867", T0 + timedelta(microseconds=470514)),
    ("01/May/2024:12:00:00 +0200", T0),
    ("2024/05/01 10:00:00", T0),
    ("2024/05/01 10:00:00.250", T0 + timedelta(milliseconds=250)),
    # RFC 2822 (HTTP's Date, JavaScript's toUTCString) and a Kibana CSV report's: refused before
    ("Wed, 01 May 2024 10:00:00 GMT", T0),
    ("Wed, 1 May 2024 12:00:00 +0200", T0),
    ("May 1, 2024 @ 10:00:00.250", T0 + timedelta(milliseconds=250)),
    (str(int(EPOCH)), T0),
    (str(EPOCH + 0.5), T0 + timedelta(milliseconds=500)),
    (str(int(EPOCH * 1e3)), T0),
    (str(int(EPOCH * 1e6) + 7), T0 + timedelta(microseconds=7)),
    (str(int(EPOCH) * 10**9 + 7000), T0 + timedelta(microseconds=7)),
])
def test_every_time_format_becomes_naive_utc(tmp_path: Path, text: str, expected: datetime) -> None:
    path = write_csv(tmp_path / "metrics.csv", "ts,value", [f'"{text}",1', f'"{text}",2'])
    store = load_telemetry(metrics=path)
    assert rows(store, "SELECT DISTINCT ts FROM metrics") == [{"ts": expected}]


def test_native_parquet_timestamps_with_a_zone_are_converted_to_utc(tmp_path: Path) -> None:
    zoned = datetime(2024, 5, 1, 12, 0, tzinfo=timezone(timedelta(hours=2)))
    table = pa.table({"timestamp": pa.array([zoned], pa.timestamp("us", tz="+02:00")), "cpu": [0.5]})
    pq.write_table(table, tmp_path / "metrics.parquet")
    store = load_telemetry(metrics=tmp_path / "metrics.parquet")
    assert rows(store, "SELECT ts, metric, value FROM metrics") == [{"ts": T0, "metric": "cpu", "value": 0.5}]


@pytest.mark.parametrize(("column", "expected"), [
    (pa.array([T0], pa.timestamp("ns")), T0),
    (pa.array([int(EPOCH * 1000)], pa.int64()), T0),
    (pa.array([EPOCH], pa.float64()), T0),
    (pa.array([T0.date()], pa.date32()), datetime(2024, 5, 1)),
    (pa.array([T0.replace(tzinfo=UTC)], pa.timestamp("ns", tz="UTC")), T0),
], ids=["timestamp ns", "epoch ms int64", "epoch s double", "date", "timestamp ns with zone (pandas)"])
def test_typed_parquet_time_columns(tmp_path: Path, column: pa.Array, expected: datetime) -> None:
    pq.write_table(pa.table({"ts": column, "cpu": [0.5]}), tmp_path / "metrics.parquet")
    assert rows(load_telemetry(metrics=tmp_path / "metrics.parquet"), "SELECT ts FROM metrics") == [{"ts": expected}]


def write_hourly_row_groups(path: Path, hours: int, zone: str | None = "UTC", every_nth_time_missing: int = 0) -> Path:
    """A Parquet log file with one row group per hour (600 lines each), times typed as the generator writes them."""
    times = [T0 + timedelta(seconds=6 * i) for i in range(600 * hours)]
    if every_nth_time_missing:
        times = [None if i % every_nth_time_missing == 0 else t for i, t in enumerate(times)]
    table = pa.table({"ts": pa.array(times, pa.timestamp("ms", tz=zone)), "message": ["GET /"] * len(times)})
    pq.write_table(table, path, row_group_size=600)
    return path


def row_groups_scanned(store: TelemetryStore, sql: str) -> str:
    """`k / n` from the Parquet scan of the query's profile (an aggregate's profile prints no operators, so
    `sql` selects rows)."""
    plan = store.cursor().execute(f"EXPLAIN ANALYZE {sql}").fetchone()[1]
    return re.search(r"Row Groups Scanned: *(\d+ / \d+)", plan).group(1)


@pytest.mark.parametrize("zone", ["UTC", None], ids=["TIMESTAMPTZ", "TIMESTAMP"])
@pytest.mark.parametrize("every_nth_time_missing", [0, 7], ids=["all times", "some times missing"])
def test_a_time_filter_on_the_logs_view_skips_parquet_row_groups(
    tmp_path: Path, zone: str | None, every_nth_time_missing: int
) -> None:
    path = write_hourly_row_groups(tmp_path / "logs.parquet", hours=6, zone=zone,
                                   every_nth_time_missing=every_nth_time_missing)
    store = load_telemetry(logs=path)
    hour = f"ts >= {sql_ts(T0 + timedelta(hours=2))} AND ts < {sql_ts(T0 + timedelta(hours=3))}"
    with_a_time = sum(1 for i in range(1200, 1800) if not every_nth_time_missing or i % every_nth_time_missing)
    assert rows(store, f"SELECT count(*) AS n FROM logs WHERE {hour}") == [{"n": with_a_time}]
    assert row_groups_scanned(store, f"SELECT ts FROM logs WHERE {hour}") == "1 / 6"


def test_zoned_times_read_as_utc_whatever_the_session_zone(tmp_path: Path) -> None:
    store = load_telemetry(logs=write_hourly_row_groups(tmp_path / "logs.parquet", hours=1))
    cursor = store.con.cursor()
    cursor.execute("SET TimeZone = 'America/New_York'")
    assert cursor.execute("SELECT min(ts) FROM logs").fetchone() == (T0,)


def test_the_first_time_candidate_that_parses_is_used(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "metrics.csv", "time,TimeStamp,cpu", [f"not a time,{int(EPOCH)},1"])
    store = load_telemetry(metrics=path)
    assert rows(store, "SELECT ts, metric FROM metrics") == [{"ts": T0, "metric": "cpu"}]


def test_a_held_query_is_computed_once_and_again_after_a_source_is_added(tmp_path: Path) -> None:
    first = write_csv(tmp_path / "a.csv", "ts,message", ["2024-05-01T10:00:00Z,one", "2024-05-01T10:01:00Z,two"])
    store = load_telemetry(logs=first)
    held = store.hold("SELECT count(*) AS n FROM logs", "lines")
    store.con.execute(f"INSERT INTO {held} VALUES (99)")  # a second hold reads the table, not the logs

    assert held.startswith("lines_") and store.hold("SELECT count(*) AS n FROM logs", "lines") == held
    assert sorted(store.fetch(f"SELECT n FROM {held}").column(0).to_pylist()) == [2, 99]
    store.add_files("logs", write_csv(tmp_path / "b.csv", "ts,message", ["2024-05-01T10:02:00Z,three"]))
    again = store.hold("SELECT count(*) AS n FROM logs", "lines")
    assert store.fetch(f"SELECT n FROM {again}").column(0).to_pylist() == [3]


def test_rows_made_in_python_are_held_once_under_a_name_of_their_content(tmp_path: Path) -> None:
    store = load_telemetry(logs=write_csv(tmp_path / "a.csv", "ts,message", ["2024-05-01T10:00:00Z,it's one"]))
    rows = pa.table({"masked": ["it's <*>", "two"], "template": ["it's <*>", "<*>"]})
    held = store.hold_table(rows, "statements")
    store.con.execute(f"INSERT INTO {held} VALUES ('three', 'x')")  # a second hold of the same rows reads the table

    assert held.startswith("statements_") and store.hold_table(rows, "statements") == held
    assert store.fetch(f"SELECT * FROM {held} ORDER BY masked").to_pylist() == [
        {"masked": "it's <*>", "template": "it's <*>"}, {"masked": "three", "template": "x"},
        {"masked": "two", "template": "<*>"}]
    assert store.hold_table(rows.slice(0, 1), "statements") != held


def test_held_tables_but_those_asked_for_last_are_released(tmp_path: Path) -> None:
    # a long-running server held every window's masked messages for ever
    store = load_telemetry(logs=write_csv(tmp_path / "a.csv", "ts,message", ["2024-05-01T10:00:00Z,one"]))
    first, second, third = (store.hold(f"SELECT {n} AS n", "window") for n in (1, 2, 3))
    assert store.hold("SELECT 1 AS n", "window") == first  # asked for again: now the last

    assert store.release_held(keep=2) == [second]
    tables = set(store.fetch("SELECT table_name FROM duckdb_tables()").column(0).to_pylist())
    assert {first, third} <= tables and second not in tables
    again = store.hold("SELECT 2 AS n", "window")  # computed again when asked for
    assert store.fetch(f"SELECT n FROM {again}").to_pylist() == [{"n": 2}]


def test_sql_ts_inlines_a_utc_timestamp_literal() -> None:
    assert sql_ts(T0) == "TIMESTAMP '2024-05-01 10:00:00'"
    assert sql_ts(datetime(2024, 5, 1, 12, 0, tzinfo=timezone(timedelta(hours=2)))) == sql_ts(T0)


# --- formats, compression, globs -----------------------------------------------------------------------------------


def _log_records(n: int, start: datetime = T0) -> list[dict]:
    return [{"ts": iso(start + timedelta(seconds=i)), "service": "api", "level": "info", "message": f"line {i}"}
            for i in range(n)]


@pytest.mark.parametrize("fmt", ["csv", "csv.gz", "jsonl", "jsonl.gz", "parquet"])
def test_logs_load_from_each_format(tmp_path: Path, fmt: str) -> None:
    records = _log_records(5)
    path = tmp_path / f"logs.{fmt}"
    if fmt.startswith("csv"):
        write_csv(path, "ts,service,level,message", [",".join(r.values()) for r in records])
    elif fmt.startswith("jsonl"):
        text = "".join(json.dumps(r) + "\n" for r in records).encode()
        path.write_bytes(gzip.compress(text) if fmt.endswith(".gz") else text)
    else:
        pq.write_table(pa.Table.from_pylist(records), path)
    store = load_telemetry(logs=path)
    assert store.columns("logs") == ["ts", "service", "level", "message"]
    assert rows(store, "SELECT ts, service, level, message FROM logs ORDER BY ts LIMIT 1") == [
        {"ts": T0, "service": "api", "level": "INFO", "message": "line 0"}]
    assert store.paths == [path]


@pytest.mark.parametrize(("name", "delimiter"), [("metrics.tsv", "\t"), ("metrics.csv", ";"), ("metrics.txt", "|")])
def test_csv_delimiters_are_read_from_the_header(tmp_path: Path, name: str, delimiter: str) -> None:
    path = write_csv(tmp_path / name, delimiter.join(["ts", "service", "p95_ms"]),
                     [delimiter.join([iso(T0), "api", "1.5"])])
    assert rows(load_telemetry(metrics=path), "SELECT service, metric, value FROM metrics") == [
        {"service": "api", "metric": "p95_ms", "value": 1.5}]


def test_comment_lines_above_a_csv_header_are_skipped(tmp_path: Path) -> None:
    # they were taken for the header: 'cannot read as CSV: line 3: Expected Number of Columns: 1 Found: 4'
    path = tmp_path / "metrics.csv.gz"
    path.write_bytes(gzip.compress("# exported by grafana\n\n# tz=UTC\nts,service,metric,value\n"
                                   f"{iso(T0)},api,rps,1\n".encode()))
    store = load_telemetry(metrics=path)
    assert rows(store, "SELECT service, metric, value FROM metrics") == [{"service": "api", "metric": "rps",
                                                                          "value": 1.0}]
    assert store.warnings == []


def test_a_log_lines_origin_counts_the_comment_lines_above_the_header(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "logs.csv", "# exported by grafana\n\nts,service,message",
                     [f"{iso(T0)},api,started", "", f"{iso(T0)},api,bad,line", f"{iso(T0)},api,ready"])
    store = load_telemetry(logs=path)
    assert store.warnings == [f"{path}: 1 of 3 records of logs.csv unreadable (line 6), set aside"]
    assert store.con.execute(f"SELECT line, message FROM ({store.log_origins_sql()})").fetchall() == [
        (4, "started"), (7, "ready")]


def test_a_blank_first_line_above_a_csv_header_reads_as_before(tmp_path: Path) -> None:
    # blank lines alone are no comment block: max() of no comment line raised a traceback
    path = write_csv(tmp_path / "metrics.csv", "\nts,service,metric,value", [f"{iso(T0)},api,rps,1"])
    assert rows(load_telemetry(metrics=path), "SELECT service, value FROM metrics") == [{"service": "api",
                                                                                        "value": 1.0}]


def test_numpys_commented_header_is_still_the_header(tmp_path: Path) -> None:
    # `numpy.savetxt(..., header="ts,p95_ms", delimiter=",")` writes its header as a comment above the numbers
    path = write_csv(tmp_path / "metrics.csv", "# produced by bench.py\n# ts,p95_ms", ["1714557600,1.5"])
    assert rows(load_telemetry(metrics=path), "SELECT metric, value FROM metrics") == [
        {"metric": "p95_ms", "value": 1.5}]


def test_a_json_array_file(tmp_path: Path) -> None:
    path = tmp_path / "events.json"
    path.write_text(json.dumps([{"time": iso(T0), "app": "checkout", "kind": "deploy", "description": "v2"}]))
    assert rows(load_telemetry(events=path), "SELECT ts, service, kind, description FROM events") == [
        {"ts": T0, "service": "checkout", "kind": "deploy", "description": "v2"}]


def test_a_glob_loads_every_matching_file_even_with_different_headers(tmp_path: Path) -> None:
    write_csv(tmp_path / "a_metrics.csv.gz", "ts,service,metric,value", [f"{iso(T0)},api,rps,1"])
    write_csv(tmp_path / "b_metrics.csv.gz", "ts,service,metric,value", [f"{iso(T0)},db,rps,2"])
    write_csv(tmp_path / "c_metrics.csv", "timestamp,cpu", [f"{iso(T0)},0.5"])
    store = load_telemetry(metrics=str(tmp_path / "*_metrics.csv*"))
    assert rows(store, "SELECT service, metric, value FROM metrics ORDER BY value") == [
        {"service": "global", "metric": "cpu", "value": 0.5},
        {"service": "api", "metric": "rps", "value": 1.0},
        {"service": "db", "metric": "rps", "value": 2.0},
    ]
    assert len(store.paths) == 3


def test_a_json_field_first_seen_late_in_the_file_is_kept(tmp_path: Path) -> None:
    records = _log_records(25_000)
    records[-1]["region"] = "eu-west-1"
    store = load_telemetry(logs=write_jsonl(tmp_path / "logs.jsonl", records))
    assert rows(store, "SELECT region FROM logs WHERE region IS NOT NULL") == [{"region": "eu-west-1"}]


def test_a_list_of_paths_is_one_view(tmp_path: Path) -> None:
    first = write_jsonl(tmp_path / "one.jsonl", _log_records(2))
    second = write_jsonl(tmp_path / "two.jsonl", _log_records(3, T0 + timedelta(hours=1)))
    store = load_telemetry(logs=[first, second])
    assert rows(store, "SELECT count(*) AS n FROM logs") == [{"n": 5}]
    assert store.time_range() == (T0, T0 + timedelta(hours=1, seconds=2))


# --- logs ----------------------------------------------------------------------------------------------------------


def test_container_runtime_json_messages_are_unwrapped(tmp_path: Path) -> None:
    wrapped = json.dumps({"log": "16:42:22.382 ERROR t.s.Travel boom\n", "stream": "stdout", "time": iso(T0)})
    path = write_jsonl(tmp_path / "logs.jsonl", [
        {"Timestamp": iso(T0), "PodName": "ts-travel-service-64469b5b48-25zj6", "Log": wrapped},
        {"Timestamp": iso(T0), "PodName": "ts-travel-service-64469b5b48-25zj6", "Log": "plain {text"},
    ])
    store = load_telemetry(logs=path)
    assert rows(store, "SELECT service, level, message FROM logs") == [
        {"service": "ts-travel-service", "level": "ERROR", "message": "16:42:22.382 ERROR t.s.Travel boom"},
        {"service": "ts-travel-service", "level": None, "message": "plain {text"},
    ]


@pytest.mark.parametrize(("message", "level"), [
    ("16:42:22.382 INFO  t.s.TravelServiceImpl#532 done", "INFO"),
    ("2024-05-01 WARNING disk almost full", "WARN"),
    ("[ERR] cannot connect", "ERROR"),
    ('ts=2024 level=error msg="pool exhausted"', "ERROR"),
    ("CRITICAL: out of memory", "FATAL"),
    ("user said error in passing", None),
])
def test_the_level_is_read_from_the_message_when_there_is_no_level_column(
    tmp_path: Path, message: str, level: str | None
) -> None:
    path = write_jsonl(tmp_path / "logs.jsonl", [{"ts": iso(T0), "msg": message}])
    assert rows(load_telemetry(logs=path), "SELECT level FROM logs") == [{"level": level}]


@pytest.mark.parametrize(("raw", "level"), [
    ("warning", "WARN"), ("Warn", "WARN"), ("err", "ERROR"), ("critical", "FATAL"), ("fatal", "FATAL"),
    ("debug", "DEBUG"), ("INFO", "INFO"), ("", None), ("30", "INFO"), ("50", "ERROR"), ("60", "FATAL"),
    ("3", "ERROR"), ("4", "WARN"),
])
def test_level_values_are_upper_cased_and_normalised(tmp_path: Path, raw: str, level: str | None) -> None:
    path = write_jsonl(tmp_path / "logs.jsonl", [{"ts": iso(T0), "level": raw, "message": "m"}])
    assert rows(load_telemetry(logs=path), "SELECT level FROM logs") == [{"level": level}]


@pytest.mark.parametrize(("pod", "service"), [
    ("ts-contacts-service-866bd68c97-xcqfx", "ts-contacts-service"),
    ("ts-gateway-service-6f6cfc45b-h5m2n", "ts-gateway-service"),
    ("redis-0", "redis"),
    ("kafka-broker-12", "kafka-broker"),
    ("plain-service", "plain-service"),
])
def test_a_pod_name_maps_to_its_service(tmp_path: Path, pod: str, service: str) -> None:
    path = write_jsonl(tmp_path / "logs.jsonl", [{"ts": iso(T0), "pod": pod, "message": "m"}])
    store = load_telemetry(logs=path)
    assert rows(store, "SELECT service, pod FROM logs") == [{"service": service, "pod": pod}]


def test_several_log_files_read_in_their_order_row_for_row(tmp_path: Path) -> None:
    # each file's rows are numbered as read (for `templates`' lines.csv); the view keeps the files' order
    for k in range(3):
        write_csv(tmp_path / f"minute{k}.csv", "ts,service,message",
                  [f"{iso(T0 + timedelta(minutes=k, seconds=i / 100))},api,line {k} {i}" for i in range(2000)])
    store = load_telemetry(logs=str(tmp_path / "minute*.csv"))
    assert store.fetch("SELECT message FROM logs").column("message").to_pylist() == [
        f"line {k} {i}" for k in range(3) for i in range(2000)]


def test_log_rest_columns_are_typed_and_bad_numbers_counted(tmp_path: Path) -> None:
    latencies = ["12", "15", "n/a", "9"]
    path = write_csv(tmp_path / "logs.csv", "ts,service,message,latency_ms,region",
                     [f"{iso(T0)},api,GET /x,{lat},eu" for lat in latencies])
    store = load_telemetry(logs=path)
    assert store.columns("logs") == ["ts", "service", "level", "message", "latency_ms", "region"]
    assert rows(store, "SELECT sum(latency_ms) AS total, count(*) AS n FROM logs") == [{"total": 36, "n": 4}]
    assert store.warnings == [f"{path}: column 'latency_ms': 1 row not numeric, kept as NULL"]


def test_a_decimal_makes_a_column_decimal_or_if_unseen_null_never_rounded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    counts = [str(i) for i in range(20)]
    counts[15] = "15.5"
    path = write_csv(tmp_path / "logs.csv", "ts,message,retries", [f"{iso(T0)},m,{n}" for n in counts])
    assert rows(load_telemetry(logs=path), "SELECT max(retries) AS top FROM logs WHERE retries < 16") == [
        {"top": 15.5}]
    monkeypatch.setattr(views, "SAMPLE_ROWS", 10)  # the sample sees whole numbers only: the column is BIGINT
    store = load_telemetry(logs=path)
    assert rows(store, "SELECT count(retries) AS n, max(retries) AS top FROM logs") == [{"n": 19, "top": 19}]
    assert store.warnings == [f"{path}: column 'retries': 1 row not numeric, kept as NULL"]


def test_rows_without_a_time_are_left_out_and_counted(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "logs.csv", "ts,message", [f"{iso(T0)},a", ",b", f"{iso(T0)},c"])
    store = load_telemetry(logs=path)
    assert rows(store, "SELECT message FROM logs ORDER BY message") == [{"message": "a"}, {"message": "c"}]
    assert store.warnings == [f"{path}: column 'ts': 1 row has no time, left out; the first, row 2"]


# --- spans and events ------------------------------------------------------------------------------------------------

NEZHA_TRACE_HEADER = "TraceID,SpanID,ParentID,PodName,OperationName,StartTimeUnixNano,EndTimeUnixNano,Duration"


def test_nezha_shaped_traces_become_spans(tmp_path: Path) -> None:
    start = int(EPOCH) * 10**9
    path = write_csv(tmp_path / "trace.csv.gz", NEZHA_TRACE_HEADER, [
        f"t1,s1,root,ts-gateway-service-6f6cfc45b-h5m2n,/*,{start},{start + 318_316_530},318316",
        f"t1,s2,s1,ts-order-service-5d8f7c8b9-abcde,getOrder,{start + 1000},{start + 101000},100",
    ])
    store = load_telemetry(traces=path)
    assert store.columns("spans")[:8] == ["trace_id", "span_id", "parent_id", "service", "operation", "start_ts",
                                          "duration_ms", "is_error"]
    assert rows(store, "SELECT trace_id, span_id, parent_id, service, operation, start_ts, duration_ms, is_error "
                       "FROM spans ORDER BY span_id") == [
        {"trace_id": "t1", "span_id": "s1", "parent_id": None, "service": "ts-gateway-service", "operation": "/*",
         "start_ts": T0, "duration_ms": 318.316, "is_error": None},
        {"trace_id": "t1", "span_id": "s2", "parent_id": "s1", "service": "ts-order-service",
         "operation": "getOrder", "start_ts": T0 + timedelta(microseconds=1), "duration_ms": 0.1, "is_error": None},
    ]


def test_opentelemetry_style_spans_with_status_and_nanosecond_durations(tmp_path: Path) -> None:
    start = int(EPOCH) * 10**9
    path = write_jsonl(tmp_path / "spans.jsonl", [
        {"traceId": "t", "spanId": "a", "parentSpanId": "", "service.name": "api", "name": "GET /",
         "startTimeUnixNano": start, "durationNano": 2_500_000, "status": "STATUS_CODE_ERROR"},
        {"traceId": "t", "spanId": "b", "parentSpanId": "a", "service.name": "db", "name": "SELECT",
         "startTimeUnixNano": start, "durationNano": 1_000_000, "status": "STATUS_CODE_OK"},
        {"traceId": "t", "spanId": "c", "parentSpanId": "a", "service.name": "db", "name": "SELECT",
         "startTimeUnixNano": start, "durationNano": 1_000_000, "status": "503"},
    ])
    store = load_telemetry(traces=path)
    assert rows(store, "SELECT span_id, parent_id, service, operation, duration_ms, is_error FROM spans "
                       "ORDER BY span_id") == [
        {"span_id": "a", "parent_id": None, "service": "api", "operation": "GET /", "duration_ms": 2.5,
         "is_error": True},
        {"span_id": "b", "parent_id": "a", "service": "db", "operation": "SELECT", "duration_ms": 1.0,
         "is_error": False},
        {"span_id": "c", "parent_id": "a", "service": "db", "operation": "SELECT", "duration_ms": 1.0,
         "is_error": True},
    ]


@pytest.mark.parametrize(("column", "unit"), [
    ("Duration", "us"), ("durationNano", "ns"), ("duration_ns", "ns"), ("duration_us", "us"),
    ("durationMicros", "us"), ("duration_ms", "ms"), ("elapsedMillis", "ms"), ("duration_s", "s"),
    ("duration_seconds", "s"),
])
def test_span_duration_units_come_from_the_column_name(column: str, unit: str) -> None:
    assert duration_unit(column) == unit


def test_span_duration_comes_from_end_minus_start_without_a_duration_column(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "spans.csv", "trace_id,span_id,start_time,end_time",
                     [f"t,a,{iso(T0)},2024-05-01T10:00:01.5Z"])
    assert rows(load_telemetry(traces=path), "SELECT duration_ms FROM spans") == [{"duration_ms": 1500.0}]


def test_a_span_whose_end_does_not_parse_keeps_no_duration_and_is_counted(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "spans.csv", "trace_id,span_id,start_time,end_time",
                     [f"t,a,{iso(T0)},2024-05-01T10:00:01.5Z", f"t,b,{iso(T0)},not a time", f"t,c,{iso(T0)},"])
    store = load_telemetry(traces=path)
    assert rows(store, "SELECT span_id, duration_ms FROM spans ORDER BY span_id") == [
        {"span_id": "a", "duration_ms": 1500.0}, {"span_id": "b", "duration_ms": None},
        {"span_id": "c", "duration_ms": None}]
    assert store.warnings == [f"{path}: column 'end_time': 1 row whose time does not parse, its duration kept as "
                              "NULL"]


def test_spans_one_file_writes_twice_are_kept_once_and_counted(tmp_path: Path) -> None:
    # overlapping minute files (Nezha's hold 261 spans twice in an hour) or a retried export within one source: each
    # span was kept once without a word
    first = write_csv(tmp_path / "10_01.csv", "trace_id,span_id,start_time,duration_ms",
                      [f"t,a,{iso(T0)},12", f"t,b,{iso(T0)},3"])
    second = write_csv(tmp_path / "10_02.csv", "trace_id,span_id,start_time,duration_ms",
                       [f"t,b,{iso(T0)},3", f"t,c,{iso(T0 + timedelta(minutes=1))},5"])
    store = load_telemetry(traces=[first, second])
    assert rows(store, "SELECT span_id FROM spans ORDER BY span_id") == [
        {"span_id": "a"}, {"span_id": "b"}, {"span_id": "c"}]
    assert store.warnings == [f"{first} (and 1 more): 1 span written twice (the same trace, span, times and "
                              "attributes; overlapping files or a retried export), counted once"]


def test_a_negative_span_duration_is_kept_as_null_and_counted(tmp_path: Path) -> None:
    # an end before the start, or a clock stepped back, would enter the latencies as a negative time
    ended = write_csv(tmp_path / "ended.csv", "trace_id,span_id,start_time,end_time",
                      [f"t,a,{iso(T0)},2024-05-01T10:00:01Z", f"t,b,{iso(T0)},2024-05-01T09:59:59Z"])
    timed = write_csv(tmp_path / "timed.csv", "trace_id,span_id,start_time,duration_ms",
                      [f"t,a,{iso(T0)},12", f"t,b,{iso(T0)},-3"])
    for path, column in ((ended, "end_time"), (timed, "duration_ms")):
        store = load_telemetry(traces=path)
        assert rows(store, "SELECT span_id, duration_ms FROM spans ORDER BY span_id")[1] == {
            "span_id": "b", "duration_ms": None}
        assert store.warnings == [f"{path}: column {column!r}: 1 row with a negative duration (an end before the "
                                  "start), its duration kept as NULL"]



def test_a_span_longer_than_a_day_and_the_whole_file_or_not_finite_keeps_no_duration_and_is_counted(
        tmp_path: Path) -> None:
    # 1e300 ms, NaN, and 25 h in a file whose spans start within 2 h would enter the latencies as they are
    path = write_csv(tmp_path / "spans.csv", "trace_id,span_id,start_time,duration_ms", [
        f"t,a,{iso(T0)},12", f"t,b,{iso(T0)},1e300", f"t,c,{iso(T0)},nan", f"t,d,{iso(T0)},90000000",
        f"t,e,{iso(T0 + timedelta(hours=2))},3600000"])
    store = load_telemetry(traces=path)
    assert rows(store, "SELECT span_id, duration_ms FROM spans ORDER BY span_id") == [
        {"span_id": "a", "duration_ms": 12.0}, {"span_id": "b", "duration_ms": None},
        {"span_id": "c", "duration_ms": None}, {"span_id": "d", "duration_ms": None},
        {"span_id": "e", "duration_ms": 3_600_000.0}]  # an hour-long span is rare, not impossible
    assert store.warnings == [f"{path}: column 'duration_ms': 3 rows with a duration not finite or past 24 h (longer "
                              "than a day and the spans' whole time range), their duration kept as NULL"]


def test_a_span_file_covering_days_keeps_a_span_as_long_as_its_range(tmp_path: Path) -> None:
    # a batch job's span may last days when the file covers them: the bar is the file's range, not a fixed day
    path = write_csv(tmp_path / "spans.csv", "trace_id,span_id,start_time,end_time", [
        f"t,a,{iso(T0)},{iso(T0 + timedelta(days=3))}", f"t,b,{iso(T0 + timedelta(days=3))},"
        f"{iso(T0 + timedelta(days=3, seconds=1))}", f"t,c,{iso(T0)},{iso(T0 + timedelta(days=4))}"])
    store = load_telemetry(traces=path)
    assert rows(store, "SELECT span_id, duration_ms FROM spans ORDER BY span_id") == [
        {"span_id": "a", "duration_ms": 3 * 86_400_000.0}, {"span_id": "b", "duration_ms": 1000.0},
        {"span_id": "c", "duration_ms": None}]
    assert store.warnings == [f"{path}: column 'end_time': 1 row with a duration not finite or past 72 h (longer "
                              "than a day and the spans' whole time range), its duration kept as NULL"]

def test_events_view(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "events.csv", "timestamp,service,type,description,version",
                     [f"{iso(T0)},checkout,deploy,deploy v2.3.1,2.3.1"])
    store = load_telemetry(events=path)
    assert rows(store, "SELECT * FROM events") == [
        {"ts": T0, "service": "checkout", "kind": "deploy", "description": "deploy v2.3.1", "version": "2.3.1"}]


def test_an_events_file_whose_kind_and_description_are_not_found_says_which_columns_it_has(tmp_path: Path) -> None:
    # they were NULL in silence: each event was `event` on the timeline
    path = write_csv(tmp_path / "changes.csv", "ts,app,change,note", [f"{iso(T0)},checkout,deploy,v2.3.1"])
    store = load_telemetry(events=path)
    assert rows(store, "SELECT kind, description, change, note FROM events") == [
        {"kind": None, "description": None, "change": "deploy", "note": "v2.3.1"}]
    assert store.warnings == [
        f"{path}: no kind or description column (looked for kind: kind, type, eventtype, event, category, action; "
        "description: description, desc, details, summary, message, msg, text, body): its events are read without "
        "either; its other columns: change, note; use --map kind=COLUMN --map description=COLUMN"]
    mapped = load_telemetry(events=path, mapping={"kind": "change", "description": "note"})
    assert rows(mapped, "SELECT kind, description FROM events") == [{"kind": "deploy", "description": "v2.3.1"}]
    assert mapped.warnings == []


def test_an_events_file_with_no_other_column_to_map_is_not_told_to_map_one(tmp_path: Path) -> None:
    # a deploy log of kinds alone: no column is left that --map could name as the description
    path = write_csv(tmp_path / "deploys.csv", "ts,service,kind", [f"{iso(T0)},checkout,deploy"])
    store = load_telemetry(events=path)
    assert rows(store, "SELECT kind, description FROM events") == [{"kind": "deploy", "description": None}]
    assert store.warnings == [
        f"{path}: no description column (looked for description: description, desc, details, summary, message, msg, "
        "text, body): its events are read without one (the file has no other column to map)"]


# --- the store -------------------------------------------------------------------------------------------------------


def test_store_api(tmp_path: Path) -> None:
    metrics = write_csv(tmp_path / "metrics.csv", "ts,rps", [f"{iso(T0)},1", f"{iso(T0 + timedelta(hours=2))},2"])
    logs = write_jsonl(tmp_path / "logs.jsonl", _log_records(1, T0 - timedelta(minutes=5)))
    store = load_telemetry(metrics=metrics, logs=logs)
    assert (store.has("metrics"), store.has("logs"), store.has("spans")) == (True, True, False)
    assert store.views == ["metrics", "logs"]
    assert store.time_range() == (T0 - timedelta(minutes=5), T0 + timedelta(hours=2))
    assert store.paths == [metrics, logs]
    window = f"ts >= {sql_ts(T0)} AND ts < {sql_ts(T0 + timedelta(hours=1))}"
    assert store.fetch(f"SELECT count(*) AS n FROM metrics WHERE {window}").to_pylist() == [{"n": 1}]
    cursor = store.cursor()
    assert cursor.execute("SELECT current_setting('TimeZone')").fetchone() == ("UTC",)
    assert cursor.execute("SELECT count(*) FROM logs").fetchone() == (1,)


def test_parquet_views_read_the_files_lazily(tmp_path: Path) -> None:
    path = tmp_path / "metrics.parquet"
    pq.write_table(pa.table({"ts": [T0], "rps": [1.0]}), path)
    store = load_telemetry(metrics=path)
    pq.write_table(pa.table({"ts": [T0, T0 + timedelta(minutes=1)], "rps": [1.0, 2.0]}), path)
    assert rows(store, "SELECT count(*) AS n FROM metrics") == [{"n": 2}]


def test_text_files_are_parsed_once_at_load(tmp_path: Path) -> None:
    """A CSV read in place would be parsed again by every query: an hour of a busy system's logs, 34 times over in
    one analysis; it is read once, into a table, whatever its size."""
    path = write_csv(tmp_path / "metrics.csv", "ts,rps", [f"{iso(T0)},1"])
    store = load_telemetry(metrics=path)
    path.write_text("ts,rps\n")
    assert rows(store, "SELECT count(*) AS n FROM metrics") == [{"n": 1}]


def test_what_outgrows_memory_spills_to_a_private_temporary_directory() -> None:
    store = TelemetryStore()
    store.con.execute("SET memory_limit = '64MB'")
    store.con.execute("CREATE TABLE lines AS SELECT repeat(md5(i::VARCHAR), 8) AS message FROM range(800000) t(i)")
    spill = Path(store.con.execute("SELECT current_setting('temp_directory')").fetchone()[0])
    assert spill.parent == Path(tempfile.gettempdir()) and any(spill.iterdir())  # 200 MB held in 64
    store.con.close()
    assert not spill.exists()


def test_an_arrow_table_becomes_a_canonical_view() -> None:
    store = TelemetryStore()
    table = pa.table({"timestamp": pa.array([T0], pa.timestamp("s")), "job": ["api"], "metric": ["up"],
                      "value": [1.0], "instance": ["host:9090"]})
    store.add_arrow("metrics", table, "prometheus up")
    assert rows(store, "SELECT * FROM metrics") == [
        {"ts": T0, "service": "api", "metric": "up", "value": 1.0, "pod": "host:9090", "instance": "host:9090"}]


def test_an_arrow_table_with_bad_times_is_named_by_its_label() -> None:
    store = TelemetryStore()
    table = pa.table({"ts": ["2024-05-01T10:00:00Z", "later", "soon"], "metric": ["up"] * 3, "value": [1.0, 0.0, 0.0]})
    with pytest.raises(InputError, match=r"^prometheus up: column 'ts' row 2: cannot parse 'later' as a time"):
        store.add_arrow("metrics", table, "prometheus up")


def test_asking_for_the_columns_of_a_view_not_loaded_is_an_error(tmp_path: Path) -> None:
    store = load_telemetry(metrics=write_csv(tmp_path / "metrics.csv", "ts,rps", [f"{iso(T0)},1"]))
    with pytest.raises(InputError, match=r"^no spans loaded$"):
        store.columns("spans")


class FakeLogsBackend:
    """A stand-in for a remote logs store: answers any query over `logs` with a marker table."""

    views = frozenset({"logs"})

    def __init__(self) -> None:
        self.queries: list[str] = []

    def fetch(self, sql: str) -> pa.Table:
        self.queries.append(sql)
        return pa.table({"answered_by": ["backend"]})


def test_fetch_routes_queries_over_logs_only_to_the_logs_backend(tmp_path: Path) -> None:
    metrics = write_csv(tmp_path / "metrics.csv", "ts,rps", [f"{iso(T0)},1"])
    store = load_telemetry(metrics=metrics)
    backend = FakeLogsBackend()
    store.logs_backend = backend
    assert store.has("logs")
    assert store.fetch("WITH w AS (SELECT * FROM logs) SELECT count(*) FROM w").to_pylist() == [
        {"answered_by": "backend"}]
    assert store.fetch("SELECT count(*) AS n FROM metrics").to_pylist() == [{"n": 1}]
    assert len(backend.queries) == 1


def test_a_wide_column_named_as_a_rate_is_no_service_of_its_own(tmp_path: Path) -> None:
    # `req/s` is requests per second, not service 'req''s metric 's'
    path = write_csv(tmp_path / "metrics.csv", "ts,req/s,errors/min,payments/p95_ms",
                     [f"{iso(T0 + timedelta(minutes=i))},{50 + i},{i},{900 + i}" for i in range(2)])

    got = rows(load_telemetry(metrics=path), "SELECT DISTINCT service, metric FROM metrics ORDER BY ALL")

    assert got == [{"service": "global", "metric": "errors/min"}, {"service": "global", "metric": "req/s"},
                   {"service": "payments", "metric": "p95_ms"}]
