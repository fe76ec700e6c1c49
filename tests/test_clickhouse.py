"""ClickHouse as a logs source: the analysis's DuckDB SQL, pushed down, gives the answers DuckDB gives.

The ClickHouse SQL runs on a real ClickHouse engine: chdb (ClickHouse in-process). A live server is used too when
INCIDENTLENS_CLICKHOUSE_URL names a table the test may create and drop.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pyarrow as pa
import pytest

from incidentlens.analysis.detection import LOG_PROBLEMS_SQL
from incidentlens.analysis.periods import logged_minutes_sql
from incidentlens.analysis.shifts import log_surge_sql
from incidentlens.errors import InputError, SourceError
from incidentlens.telemetry import load_telemetry
from incidentlens.telemetry.clickhouse import ClickHouseLogs, ClickHouseTarget, connect_clickhouse_logs, redact
from incidentlens.telemetry.dialect import to_clickhouse

chdb_session = pytest.importorskip("chdb.session", reason="chdb (ClickHouse in-process) is a dev dependency")

WINDOW = "ts >= TIMESTAMP '2024-05-01 15:00:00' AND ts < TIMESTAMP '2024-05-01 17:30:00'"
BASELINE = "ts >= TIMESTAMP '2024-05-01 10:00:00' AND ts < TIMESTAMP '2024-05-01 15:00:00'"

# The kinds of query the evidence engine writes over `logs`: counts by dimension and time bucket, window-vs-baseline
# contrasts, masked-template counts, samples, quantiles. Written once, in DuckDB's dialect.
ANALYSIS_QUERIES = {
    "per-minute counts by service and level": f"""
        SELECT date_trunc('minute', ts) AS minute, service, level, count(*) AS n
        FROM logs WHERE {WINDOW} GROUP BY ALL ORDER BY ALL""",
    "error share by region, window against baseline": f"""
        SELECT region,
               count(*) FILTER (WHERE {WINDOW} AND level = 'ERROR') AS window_errors,
               count(*) FILTER (WHERE {BASELINE} AND level = 'ERROR') AS baseline_errors,
               count(*) FILTER (WHERE {WINDOW})::DOUBLE / greatest(count(*), 1) AS window_share
        FROM logs GROUP BY region ORDER BY region""",
    "masked templates with first sighting": f"""
        SELECT regexp_replace(regexp_replace(message, '[0-9a-f]{{16,}}', '<HEX>', 'g'), '[0-9]+', '<N>', 'g')
                   AS template,
               count(*) AS n, min(ts) AS first_seen, min(message) AS example, count(DISTINCT service) AS services
        FROM logs WHERE {WINDOW} GROUP BY template ORDER BY n DESC, template LIMIT 20""",
    "first match only without the g flag": """
        SELECT regexp_replace(message, '[0-9]+', '<N>') AS once, count(*) AS n FROM logs
        GROUP BY once ORDER BY n DESC, once LIMIT 10""",
    "error samples": f"""
        SELECT ts, service, level, message FROM logs WHERE level IN ('ERROR', 'FATAL') AND {WINDOW}
        ORDER BY ts, message LIMIT 5""",
    "five-minute buckets": """
        SELECT time_bucket(INTERVAL '5 minutes', ts) AS bucket, count(*) AS n, count(DISTINCT user_id) AS users
        FROM logs GROUP BY bucket ORDER BY bucket""",
    "latency quantiles by endpoint": """
        SELECT endpoint, quantile_cont(latency_ms, 0.95) AS p95, median(latency_ms) AS p50, avg(latency_ms) AS mean
        FROM logs GROUP BY endpoint ORDER BY endpoint""",
    "time range in epoch seconds": "SELECT min(ts) AS lo, max(ts) AS hi, min(epoch(ts)) AS lo_epoch FROM logs",
    "a CTE with a case expression and a having clause": f"""
        WITH tagged AS (
            SELECT service, CASE WHEN {WINDOW} THEN 'window' ELSE 'other' END AS period, level FROM logs
        )
        SELECT service, period, count(*) FILTER (WHERE level = 'ERROR') AS errors, count(*) AS n
        FROM tagged GROUP BY service, period HAVING count(*) > 10 ORDER BY service, period""",
    "the log surge counts, in minutes from an onset 10 s into a minute": log_surge_sql(
        (datetime(2024, 5, 1, 15, 0, 10), datetime(2024, 5, 1, 17, 30)),
        (datetime(2024, 5, 1, 10, 0), datetime(2024, 5, 1, 15, 0, 10))) + " ORDER BY service, minute",
    "the minutes the logs cover, window and baseline, from an onset 10 s into a minute": logged_minutes_sql(
        (datetime(2024, 5, 1, 15, 0, 10), datetime(2024, 5, 1, 17, 30)),
        (datetime(2024, 5, 1, 10, 0), datetime(2024, 5, 1, 15, 0, 10))),
    "each service's problem lines per minute, as detection reads them": LOG_PROBLEMS_SQL,
    "a message search": """
        SELECT service, count(*) AS n FROM logs
        WHERE message ILIKE '%timeout%' OR regexp_matches(message, 'pool|exhaust') GROUP BY service ORDER BY service""",
}


@pytest.fixture(scope="module")
def chdb() -> Iterator[object]:
    session = chdb_session.Session()
    yield session
    session.close()


def chdb_runner(session: object) -> Callable[[str], pa.Table]:
    return lambda sql: session.query(sql, "ArrowTable")


def clickhouse_logs_of(chdb: object, table: str, csv: Path, schema: str) -> ClickHouseLogs:
    """A CSV file as a ClickHouse table of the given column types, seen as the logs view."""
    chdb.query("CREATE DATABASE IF NOT EXISTS incidents")
    chdb.query(f"CREATE TABLE {table} ({schema}) ENGINE = Memory")
    chdb.query(f"INSERT INTO {table} SELECT * FROM file('{csv}', CSVWithNames, '{schema}')")
    return ClickHouseLogs(chdb_runner(chdb), table, f"chdb {table}")


def csv_quoted(text: str) -> str:
    return '"' + text.replace('"', '""') + '"'


@pytest.fixture(scope="module")
def logs_csv(scenario_dir: Callable[..., Path]) -> Path:
    return scenario_dir("seed-tutorial") / "logs.csv"


@pytest.fixture(scope="module")
def pushed_down(chdb: object, logs_csv: Path) -> ClickHouseLogs:
    """The scenario's logs in a ClickHouse table, exactly as the file holds them (ClickHouse infers the types)."""
    chdb.query("CREATE DATABASE IF NOT EXISTS incidents")
    chdb.query(
        "CREATE TABLE incidents.app_logs ENGINE = MergeTree ORDER BY tuple() "
        f"AS SELECT * FROM file('{logs_csv}', CSVWithNames)"
    )
    return ClickHouseLogs(chdb_runner(chdb), "incidents.app_logs", "chdb incidents.app_logs")


@pytest.mark.parametrize("name", list(ANALYSIS_QUERIES))
def test_pushed_down_queries_answer_like_duckdb(name: str, pushed_down: ClickHouseLogs, logs_csv: Path):
    sql = ANALYSIS_QUERIES[name]
    expected = load_telemetry(logs=logs_csv).fetch(sql)
    answered = pushed_down.fetch(sql)

    assert answered.schema == expected.schema
    assert expected.num_rows > 0
    assert_same_rows(answered, expected)


def assert_same_rows(answered: pa.Table, expected: pa.Table) -> None:
    assert answered.num_rows == expected.num_rows
    for got, want in zip(answered.to_pylist(), expected.to_pylist(), strict=True):
        for column, value in want.items():
            if isinstance(value, float) and not math.isnan(value):
                assert got[column] == pytest.approx(value, rel=1e-9), column
            else:
                assert got[column] == value, column


@pytest.mark.slow
def test_the_investigation_with_logs_in_clickhouse_matches_the_files(chdb: object, scenario_dir: Callable[..., Path]):
    """Every query the analysis makes over logs is pushed down; the findings are those of the files."""
    try:
        from incidentlens.analysis import analyze
        from incidentlens.scenarios import list_scenarios
    except (ImportError, AttributeError):
        pytest.skip("incidentlens.analysis.analyze is not available yet")
    if "db-pool-exhaustion" not in {name for name, _ in list_scenarios()}:
        pytest.skip("scenario db-pool-exhaustion is not available yet")
    data = scenario_dir("db-pool-exhaustion")
    chdb.query("CREATE DATABASE IF NOT EXISTS incidents")
    chdb.query(
        "CREATE TABLE incidents.pool_logs ENGINE = MergeTree ORDER BY tuple() "
        f"AS SELECT * FROM file('{data / 'logs.csv'}', CSVWithNames)"
    )
    events = data / "events.csv"
    others = {"metrics": data / "metrics.csv", "events": events if events.exists() else None}
    in_clickhouse = load_telemetry(**others)
    backend = ClickHouseLogs(chdb_runner(chdb), "incidents.pool_logs", "chdb incidents.pool_logs")
    pushed: list[str] = []
    in_clickhouse.logs_backend = _Recording(backend, pushed)

    found = analyze(in_clickhouse).to_dict()
    expected = analyze(load_telemetry(logs=data / "logs.csv", **others)).to_dict()

    assert len(pushed) >= 5
    assert found["hypotheses"][0]["service"] == json.loads((data / "truth.json").read_text())["root_cause"]["service"]
    # Evidence ids hash the evidence's data, and two engines may word it differently where the analysis leaves
    # room (approx_count_distinct estimates; the order of tied rows): every finding must be the same.
    for section in ("incident_window", "hypotheses", "contributors", "templates", "impact", "trigger", "timeline"):
        assert without_evidence_ids(found[section]) == without_evidence_ids(expected[section]), section


def without_evidence_ids(value: object) -> object:
    if isinstance(value, dict):
        return {k: without_evidence_ids(v) for k, v in value.items() if k not in ("evidence", "supporting",
                                                                                   "contradicting")}
    if isinstance(value, list):
        return [without_evidence_ids(v) for v in value]
    return value


class _Recording:
    """The backend, noting each query it is sent."""

    def __init__(self, backend: ClickHouseLogs, sent: list[str]) -> None:
        self.views, self._backend, self._sent = backend.views, backend, sent

    def fetch(self, sql: str) -> pa.Table:
        self._sent.append(sql)
        return self._backend.fetch(sql)


def test_only_the_aggregate_comes_back(pushed_down: ClickHouseLogs):
    answered = pushed_down.fetch("SELECT service, count(*) AS n FROM logs GROUP BY service ORDER BY service")
    assert answered.num_rows == len({row["service"] for row in answered.to_pylist()}) <= 10
    assert sum(answered.column("n").to_pylist()) == 9000


def test_the_logs_view_is_substituted_and_times_are_utc():
    sql = "SELECT count(*) FROM logs AS l WHERE l.ts >= TIMESTAMP '2024-05-01 10:00:00'"
    clickhouse = to_clickhouse(sql, {"logs": "SELECT 1 AS ts FROM db.t AS src"})
    assert "FROM (SELECT 1 AS ts FROM db.t AS src) AS l" in clickhouse
    assert "toDateTime64('2024-05-01 10:00:00', 6, 'UTC')" in clickhouse


def test_log_masking_reads_the_same_in_clickhouse(chdb: object):
    # every value masked alike on both engines: times, ids, numbers, addresses
    from incidentlens.analysis.masking import mask, masked_sql

    line = "18:45:08.130 INFO t.s.TravelServiceImpl#372 TraceID: fb4cfd3ae1e4 took 42 ms from 10.0.3.17:8080"
    sql = to_clickhouse(f"SELECT {masked_sql('message')} AS template FROM logs",
                        {"logs": f"SELECT '{line}' AS message"})
    answered = chdb_runner(chdb)(sql).column("template").to_pylist()
    assert answered == [mask(line)] == ["<*> INFO t.s.TravelServiceImpl#<*> TraceID: <*> took <*> from <*>"]


def test_a_long_line_of_other_scripts_is_cut_at_the_same_character_in_clickhouse(chdb: object):
    # a template is the first 200 masked characters: ClickHouse must count characters, not the bytes of UTF-8
    from incidentlens.analysis.masking import MAX_TEMPLATE_CHARS, mask, masked_sql

    line = "WARN 订单服务 " + "车票已售出, café fermé " * 40
    sql = to_clickhouse(f"SELECT {masked_sql('message')} AS template FROM logs",
                        {"logs": f"SELECT '{line}' AS message"})
    answered = chdb_runner(chdb)(sql).column("template").to_pylist()
    assert answered == [mask(line)] and len(answered[0]) == MAX_TEMPLATE_CHARS


def test_logs_in_clickhouse_with_trace_ids_beside_trace_files_leave_the_span_signals_to_the_spans(
        chdb: object, tmp_path: Path):
    # web calls cart in every request until 10:20, then stops; each request logs a line with its trace id. The logs
    # are in ClickHouse, the spans in a file: the two cannot meet in one query, so the spans are read on their own
    from datetime import timedelta

    from incidentlens.analysis.anchored import known_periods
    from incidentlens.analysis.spans import trace_signals

    start, at = datetime(2024, 5, 1, 10, 0), datetime(2024, 5, 1, 10, 20)
    spans, lines = [], ["ts,service,level,message,trace_id"]
    for i in range(156):
        begun = start + timedelta(seconds=10 * i)
        when = begun.isoformat() + "Z"
        spans.append({"trace_id": f"t{i}", "span_id": f"w{i}", "parent_id": "", "service": "web",
                      "operation": "GET /", "start": when, "duration_ms": 20.0})
        if begun < at:
            spans.append({"trace_id": f"t{i}", "span_id": f"c{i}", "parent_id": f"w{i}", "service": "cart",
                          "operation": "GET /items", "start": when, "duration_ms": 5.0})
        lines.append(f"{when},web,INFO,request served,t{i}")
    (tmp_path / "spans.jsonl").write_text("\n".join(json.dumps(span) for span in spans) + "\n")
    (tmp_path / "logs.csv").write_text("\n".join(lines) + "\n")
    chdb.query("CREATE DATABASE IF NOT EXISTS incidents")
    chdb.query("CREATE TABLE incidents.traced ENGINE = MergeTree ORDER BY tuple() "
               f"AS SELECT * FROM file('{tmp_path / 'logs.csv'}', CSVWithNames)")
    store = load_telemetry(traces=tmp_path / "spans.jsonl")
    store.logs_backend = ClickHouseLogs(chdb_runner(chdb), "incidents.traced", "chdb incidents.traced")

    window, baseline, _ = known_periods(store, at)
    signals, _ = trace_signals(store, window, baseline)
    assert signals["web"].significant and signals["web"].event == "call cart GET /items"


def test_container_json_lines_and_pod_names_read_like_files(chdb: object, tmp_path: Path):
    lines = tmp_path / "pods.csv"
    lines.write_text(
        "Timestamp,PodName,Log\n"
        '2023-01-29T08:40:01Z,ts-contacts-service-866bd68c97-xcqfx,'
        '"{""log"":""08:40:01.010 ERROR c.Contacts: boom\\n"",""stream"":""stdout""}"\n'
        '2023-01-29T08:40:02Z,ts-route-service-b6c59fb57-zv8dt,"{""log"":""level=warning route slow\\n""}"\n'
    )
    chdb.query(
        "CREATE TABLE incidents.pods ENGINE = MergeTree ORDER BY tuple() "
        f"AS SELECT * FROM file('{lines}', CSVWithNames)"
    )
    logs = ClickHouseLogs(chdb_runner(chdb), "incidents.pods", "chdb incidents.pods")
    sql = "SELECT ts, service, level, message, PodName FROM logs ORDER BY ts"

    assert logs.fetch(sql).to_pylist() == load_telemetry(logs=lines).fetch(sql).to_pylist()
    assert logs.fetch(sql).column("service").to_pylist() == ["ts-contacts-service", "ts-route-service"]


def test_structured_json_lines_read_like_files(chdb: object, tmp_path: Path):
    # logrus and ECS (its `log` an object) in container wrappers, pino's numeric level, a JSON line with no message
    # field, a JSON line with no level field, plain text: message and level as the file views read them
    app_lines = [
        json.dumps({"log": json.dumps({"message": "List products end", "severity": "error"}) + "\n",
                    "stream": "stdout"}),
        json.dumps({"level": 40, "pid": 1, "msg": "conversion slow", "v": 1}),
        json.dumps({"log": json.dumps({"@timestamp": "2022-08-23T13:28:02Z", "log": {"level": "error"},
                                       "message": "card declined"}), "stream": "stderr"}),
        json.dumps({"severity": "INFO", "path": "/cart"}),
        json.dumps({"event": "WARN cache cold"}),
        "13:28:43.812 INFO  - Get Ads by Category",
    ]
    lines = tmp_path / "structured.csv"
    lines.write_text("Timestamp,PodName,Log\n" + "".join(
        f"2022-08-23T13:28:0{i}Z,frontend-6b7d7f8b9-abcde,{csv_quoted(line)}\n" for i, line in enumerate(app_lines)))
    logs = clickhouse_logs_of(chdb, "incidents.structured", lines, "Timestamp String, PodName String, Log String")
    sql = "SELECT level, message FROM logs ORDER BY ts"

    expected = [
        {"level": "ERROR", "message": "List products end"},
        {"level": "WARN", "message": "conversion slow"},
        {"level": "ERROR", "message": "card declined"},
        {"level": "INFO", "message": app_lines[3]},
        {"level": "WARN", "message": "WARN cache cold"},
        {"level": "INFO", "message": app_lines[5]},
    ]
    assert load_telemetry(logs=lines).fetch(sql).to_pylist() == expected
    assert logs.fetch(sql).to_pylist() == expected


def test_plain_text_logs_pay_nothing_for_json(pushed_down: ClickHouseLogs):
    # the sample holds no wrapper and no JSON line: the canonical SELECT reads the message column as it is
    assert (pushed_down.wrapped, pushed_down.structured) == (False, False)
    assert "JSON" not in pushed_down.canonical_sql


def test_a_level_column_comes_first_and_a_json_field_fills_its_gaps_as_in_files(chdb: object, tmp_path: Path):
    rows = [("warning", json.dumps({"message": "column says warn", "severity": "info"})),
            ("", json.dumps({"message": "the field says error", "severity": "error"})),
            ("", "plain text ERROR, no column level")]
    lines = tmp_path / "level_and_json.csv"
    lines.write_text("ts,level,message\n" + "".join(f"2024-05-01T10:00:0{i}Z,{level},{csv_quoted(message)}\n"
                                                     for i, (level, message) in enumerate(rows)))
    logs = clickhouse_logs_of(chdb, "incidents.level_and_json", lines, "ts String, level String, message String")
    sql = "SELECT level, message FROM logs ORDER BY ts"

    expected = [{"level": "WARN", "message": "column says warn"}, {"level": "ERROR", "message": "the field says error"},
                {"level": None, "message": "plain text ERROR, no column level"}]
    assert load_telemetry(logs=lines).fetch(sql).to_pylist() == expected
    assert logs.fetch(sql).to_pylist() == expected


@pytest.mark.parametrize(("level_type", "raw", "expected"), [
    ("UInt8", [30, 50, 4, 60, 20], ["INFO", "ERROR", "WARN", "FATAL", "DEBUG"]),
    ("String", ["30", " warning ", "err", "Critical", ""], ["INFO", "WARN", "ERROR", "FATAL", None]),
], ids=["pino and syslog numbers", "aliases"])
def test_levels_normalise_as_in_files(chdb: object, tmp_path: Path, level_type: str, raw: list, expected: list):
    lines = tmp_path / "levels.csv"
    lines.write_text("ts,level,message\n" + "".join(f'2024-05-01T10:00:0{i}Z,"{value}",line {i}\n'
                                                     for i, value in enumerate(raw)))
    logs = clickhouse_logs_of(chdb, f"incidents.levels_{level_type.lower()}", lines,
                              f"ts String, level {level_type}, message String")
    sql = "SELECT level FROM logs ORDER BY ts"

    assert load_telemetry(logs=lines).fetch(sql).column("level").to_pylist() == expected
    assert logs.fetch(sql).column("level").to_pylist() == expected


def test_levels_read_from_the_message_text_as_in_files(chdb: object, tmp_path: Path):
    messages = ["16:42:22.382 INFO  t.s.Travel: ok", "x" * 250 + " ERROR after a long prefix", "msg=slow Level=warn",
                "LeVeL=error in an odd case", "nothing to read"]
    lines = tmp_path / "text_levels.csv"
    lines.write_text("ts,message\n" + "".join(f"2024-05-01T10:00:0{i}Z,{m}\n" for i, m in enumerate(messages)))
    logs = clickhouse_logs_of(chdb, "incidents.text_levels", lines, "ts String, message String")
    sql = "SELECT level FROM logs ORDER BY ts"

    expected = ["INFO", "ERROR", "WARN", None, None]  # a `level=` key is looked for in three spellings only
    assert load_telemetry(logs=lines).fetch(sql).column("level").to_pylist() == expected
    assert logs.fetch(sql).column("level").to_pylist() == expected


def test_go_time_strings_read_as_utc(chdb: object):
    chdb.query("CREATE DATABASE IF NOT EXISTS incidents")
    chdb.query("CREATE TABLE incidents.go_times (Time String, Log String) ENGINE = Memory")
    chdb.query("INSERT INTO incidents.go_times VALUES "
               "('2023-01-29 16:41:09.858280782 +0800 CST m=+0.934442642', 'started')")
    logs = ClickHouseLogs(chdb_runner(chdb), "incidents.go_times", "chdb incidents.go_times")
    assert logs.fetch("SELECT ts FROM logs").column("ts").to_pylist() == [datetime(2023, 1, 29, 8, 41, 9, 858280)]


def test_a_table_without_a_time_column_is_refused(chdb: object):
    chdb.query("CREATE TABLE incidents.no_time (service String, message String) ENGINE = Memory")
    with pytest.raises(InputError, match=r"incidents.no_time: no time column .* --map time=COLUMN"):
        ClickHouseLogs(chdb_runner(chdb), "incidents.no_time", "chdb incidents.no_time")


def test_a_mapped_column_must_exist(chdb: object, pushed_down: ClickHouseLogs):
    with pytest.raises(InputError, match=r"column 'when' \(mapped to time\) is not in the table"):
        ClickHouseLogs(chdb_runner(chdb), "incidents.app_logs", "chdb incidents.app_logs", mapping={"time": "when"})


def test_a_row_whose_time_does_not_parse_is_left_out_and_counted(chdb: object):
    chdb.query("CREATE TABLE incidents.bad_time (ts String, message String) ENGINE = Memory")
    chdb.query("INSERT INTO incidents.bad_time VALUES ('2024-05-01 10:00:00', 'ok'), ('yesterday-ish', 'bad'), "
               "('2024-05-01 10:01:00', 'ok too')")
    logs = ClickHouseLogs(chdb_runner(chdb), "incidents.bad_time", "chdb incidents.bad_time")
    assert logs.warnings == ["chdb incidents.bad_time: column 'ts': 1 row with a bad time left out; one of them: "
                             "cannot parse 'yesterday-ish' as a time"]
    assert logs.fetch("SELECT message FROM logs ORDER BY ts").column("message").to_pylist() == ["ok", "ok too"]


def test_a_time_column_mostly_unparseable_is_refused(chdb: object):
    chdb.query("CREATE TABLE incidents.bad_times (ts String, message String) ENGINE = Memory")
    chdb.query("INSERT INTO incidents.bad_times VALUES ('2024-05-01 10:00:00', 'ok'), ('yesterday-ish', 'bad'), "
               "('yesterday-ish', 'bad')")
    with pytest.raises(InputError, match=r"column 'ts': cannot parse 'yesterday-ish' as a time; 2 of the 3 timed"):
        ClickHouseLogs(chdb_runner(chdb), "incidents.bad_times", "chdb incidents.bad_times")


def test_a_time_filter_reads_only_its_granules_of_a_table_ordered_by_time(chdb: object):
    # the time column was exposed through toDateTime64(...), which hid it from the filter: every granule was read
    chdb.query("CREATE DATABASE IF NOT EXISTS incidents")
    chdb.query("CREATE TABLE incidents.ordered (ts DateTime64(9, 'Europe/Berlin'), message String) ENGINE = MergeTree "
               "ORDER BY ts SETTINGS index_granularity = 1024")
    chdb.query("INSERT INTO incidents.ordered SELECT toDateTime64('2024-05-01 00:00:00', 9, 'UTC') + "
               "toIntervalSecond(number), 'line' FROM numbers(200000)")
    logs = ClickHouseLogs(chdb_runner(chdb), "incidents.ordered", "chdb incidents.ordered")
    sql = ("SELECT count(*) AS n, min(date_trunc('hour', ts)) AS hour FROM logs "
           "WHERE ts >= TIMESTAMP '2024-05-01 10:00:00' AND ts < TIMESTAMP '2024-05-01 10:10:00'")
    plan = chdb.query("EXPLAIN indexes = 1 " + to_clickhouse(sql, {"logs": logs.canonical_sql}), "TSV").bytes().decode()
    read, total = [line.split(":")[1] for line in plan.splitlines() if "Granules" in line][-1].split("/")
    assert int(read) == 1 and int(total) > 100  # ten minutes of 200,000 seconds: one granule of 1,024 rows
    assert logs.fetch(sql).to_pylist() == [{"n": 600, "hour": datetime(2024, 5, 1, 10)}]  # hours of UTC


def epoch_logs(chdb: object, table: str, column_type: str, times: list[object]) -> ClickHouseLogs:
    chdb.query("CREATE DATABASE IF NOT EXISTS incidents")
    chdb.query(f"CREATE TABLE incidents.{table} (ts {column_type}, message String) ENGINE = Memory")
    rows = ", ".join(f"({time}, 'line {i}')" for i, time in enumerate(times))
    chdb.query(f"INSERT INTO incidents.{table} VALUES {rows}")
    return ClickHouseLogs(chdb_runner(chdb), f"incidents.{table}", f"chdb incidents.{table}")


def test_one_epoch_value_past_its_unit_is_left_out_not_the_whole_column_read_in_nanoseconds(chdb: object):
    # the unit was the largest value's: a BIGINT's end among seconds read every row in nanoseconds, in 1970, and
    # no row was counted
    seconds = [1714557600 + 60 * i for i in range(5)]
    logs = epoch_logs(chdb, "epoch_end", "Int64", [*seconds, 9223372036854775807])
    assert logs.fetch("SELECT min(ts) AS first FROM logs").column("first").to_pylist() == [datetime(2024, 5, 1, 10)]
    assert logs.fetch("SELECT count(*) AS n FROM logs").column("n").to_pylist() == [5]
    assert logs.warnings == ["chdb incidents.epoch_end: column 'ts': 1 row with a bad time left out; one of them: "
                             "'9223372036854775807' is epoch ns by its size, the column read as epoch s"]


def test_epoch_seconds_outside_the_years_held_are_left_out_and_counted(chdb: object):
    # 1e10 s is the year 2286, past what the analysis' nanosecond times hold: it was read as that time and kept
    logs = epoch_logs(chdb, "epoch_years", "Float64", [1714557600.5, 1714557660.25, 1714557720, 10_000_000_000])
    assert logs.fetch("SELECT count(*) AS n FROM logs").column("n").to_pylist() == [3]
    assert logs.warnings == ["chdb incidents.epoch_years: column 'ts': 1 row with a bad time left out; one of them: "
                             "'10000000000' is a time outside the years 1678-2261"]


def test_the_unit_is_the_typical_values_as_in_files(chdb: object):
    # milliseconds, with one row in seconds: read in milliseconds, the row in seconds left out and counted
    millis = [1714557600000 + 60_000 * i for i in range(4)]
    logs = epoch_logs(chdb, "epoch_millis", "UInt64", [*millis, 1714557600])
    assert logs.fetch("SELECT max(ts) AS last FROM logs").column("last").to_pylist() == [datetime(2024, 5, 1, 10, 3)]
    assert logs.warnings == ["chdb incidents.epoch_millis: column 'ts': 1 row with a bad time left out; one of them: "
                             "'1714557600' is epoch s by its size, the column read as epoch ms"]


def test_a_query_clickhouse_rejects_is_one_line(pushed_down: ClickHouseLogs):
    # DuckDB has hamming(); ClickHouse does not.
    with pytest.raises(SourceError, match=r"^ClickHouse chdb incidents.app_logs: .*hamming") as raised:
        pushed_down.fetch("SELECT hamming(message, 'ab') AS distance FROM logs")
    assert "\n" not in str(raised.value)


def test_a_query_duckdb_rejects_is_an_input_error(pushed_down: ClickHouseLogs):
    with pytest.raises(InputError, match="no_such_column"):
        pushed_down.fetch("SELECT no_such_column FROM logs")


def test_a_missing_table_is_a_source_error(chdb: object):
    with pytest.raises(SourceError, match=r"incidents\.nowhere"):
        ClickHouseLogs(chdb_runner(chdb), "incidents.nowhere", "chdb incidents.nowhere")


def test_the_url_names_host_port_database_and_table_and_hides_the_password(monkeypatch: pytest.MonkeyPatch):
    target = ClickHouseTarget.parse("clickhouse://reader:s3cret@ch.internal:9000/prod.app_logs")
    assert (target.host, target.port, target.user, target.password) == ("ch.internal", 9000, "reader", "s3cret")
    assert (target.database, target.table) == ("prod", "app_logs")
    assert "s3cret" not in target.name
    assert redact("clickhouse://reader:s3cret@ch.internal/prod.t") == "clickhouse://reader:***@ch.internal/prod.t"
    monkeypatch.setenv("CLICKHOUSE_PASSWORD", "from-env")
    assert ClickHouseTarget.parse("clickhouses://ch.internal/prod.t").password == "from-env"
    with pytest.raises(InputError, match=r"db\.table"):
        ClickHouseTarget.parse("clickhouse://ch.internal/just_a_db")


def test_an_unreachable_server_is_a_source_error():
    with pytest.raises(SourceError, match=r"^ClickHouse clickhouse://default@127.0.0.1:\d+/db.t: unreachable"):
        connect_clickhouse_logs(f"clickhouse://127.0.0.1:{_free_port()}/db.t", timeout=2)


def test_refused_credentials_are_a_source_error():
    """A server answering like ClickHouse does to a wrong password (HTTP 516 error body)."""
    with _refusing_server() as port, pytest.raises(SourceError, match="authentication refused") as raised:
        connect_clickhouse_logs(f"clickhouse://reader:wrong-password@127.0.0.1:{port}/db.t", timeout=5)
    assert "wrong-password" not in str(raised.value)


def test_the_cli_says_in_one_line_when_clickhouse_is_unreachable(tmp_path: Path):
    completed = subprocess.run(
        [sys.executable, "-c", "from incidentlens.cli import main; main()", "analyze",
         "--logs", f"clickhouse://reader:hunter2@127.0.0.1:{_free_port()}/prod.app_logs", "--out", str(tmp_path)],
        capture_output=True, text=True, check=False, timeout=60,
    )
    assert completed.returncode == 2
    assert completed.stderr.startswith("error: ClickHouse clickhouse://reader@127.0.0.1:")
    assert "unreachable" in completed.stderr and "hunter2" not in completed.stderr
    assert completed.stderr.count("\n") == 1


@pytest.mark.skipif(not os.environ.get("INCIDENTLENS_CLICKHOUSE_URL"), reason="set INCIDENTLENS_CLICKHOUSE_URL")
def test_a_live_server_answers_like_duckdb(logs_csv: Path):
    """INCIDENTLENS_CLICKHOUSE_URL=clickhouse://user:pass@host:8123/db.table (the table is created and dropped)."""
    import clickhouse_connect

    url = os.environ["INCIDENTLENS_CLICKHOUSE_URL"]
    target = ClickHouseTarget.parse(url)
    client = clickhouse_connect.get_client(
        host=target.host, port=target.port, username=target.user, password=target.password, secure=target.secure
    )
    rows = load_telemetry(logs=logs_csv).fetch("SELECT * EXCLUDE (level, message) FROM logs")
    client.command(f"DROP TABLE IF EXISTS {target.qualified_table}")
    client.command(
        f"CREATE TABLE {target.qualified_table} (ts DateTime64(3, 'UTC'), service String, region String, "
        "endpoint String, latency_ms Nullable(Float64), user_id String, level String, message String) "
        "ENGINE = MergeTree ORDER BY ts"
    )
    try:
        source = load_telemetry(logs=logs_csv).fetch(
            "SELECT ts, service, region, endpoint, latency_ms::DOUBLE AS latency_ms, user_id, level, message FROM logs"
        )
        client.insert_arrow(target.qualified_table, source)
        logs = connect_clickhouse_logs(url)
        sql = ANALYSIS_QUERIES["per-minute counts by service and level"]
        assert_same_rows(logs.fetch(sql), load_telemetry(logs=logs_csv).fetch(sql))
        assert rows.num_rows == 9000
    finally:
        client.command(f"DROP TABLE IF EXISTS {target.qualified_table}")


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class _RefuseCredentials(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        body = b"Code: 516. DB::Exception: reader: Authentication failed: password is incorrect. " \
               b"(AUTHENTICATION_FAILED)"
        self.send_response(516)
        self.send_header("X-ClickHouse-Exception-Code", "516")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST

    def log_message(self, *args: object) -> None:
        pass


class _refusing_server:
    def __enter__(self) -> int:
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _RefuseCredentials)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self.server.server_address[1]

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


def _front_end_in_two_cases(chdb: object, tmp_path: Path, table: str, logged: list[str]) -> tuple[Path, object]:
    """A metric file naming the front end `frontend`, and a ClickHouse logs table naming the services `logged`."""
    metrics = tmp_path / "metrics.csv"
    metrics.write_text("ts,service,metric,value\n" + "".join(
        f"2024-05-01T10:0{minute}:00Z,frontend,cpu,0.2\n" for minute in range(3)))
    (tmp_path / "logs.csv").write_text("ts,service,level,message\n" + "".join(
        f"2024-05-01T10:00:0{n}Z,{service},INFO,served\n" for n, service in enumerate(logged)))
    chdb.query("CREATE DATABASE IF NOT EXISTS incidents")
    chdb.query(f"CREATE TABLE {table} ENGINE = MergeTree ORDER BY tuple() "
               f"AS SELECT * FROM file('{tmp_path / 'logs.csv'}', CSVWithNames)")
    return metrics, ClickHouseLogs(chdb_runner(chdb), table, f"chdb {table}")


def test_files_name_a_service_as_the_logs_in_clickhouse_spell_it(chdb: object, tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch):
    # the metric file says `frontend`, the ClickHouse logs `Frontend`: its queries run there as written, so the
    # files' name is read as the logs', one service either way
    from incidentlens.telemetry import clickhouse
    from incidentlens.telemetry.sources import open_store

    metrics, backend = _front_end_in_two_cases(chdb, tmp_path, "incidents.front_logs", ["Frontend"])
    monkeypatch.setattr(clickhouse, "connect_clickhouse_logs", lambda url, mapping=None: backend)
    store = open_store(metrics=metrics, logs="clickhouse://reader@127.0.0.1:8123/incidents.front_logs")
    assert store.fetch("SELECT DISTINCT service FROM metrics").column("service").to_pylist() == ["Frontend"]
    assert "service names that differ only in case, read as one service's: frontend as Frontend" in store.warnings


def test_names_the_logs_in_clickhouse_spell_in_two_cases_are_said_to_stay_apart(chdb: object, tmp_path: Path):
    metrics, backend = _front_end_in_two_cases(chdb, tmp_path, "incidents.front_logs_2", ["Frontend", "frontend"])
    store = load_telemetry(metrics=metrics)
    store.logs_backend = backend
    store.one_name_per_service()
    assert store.fetch("SELECT DISTINCT service FROM metrics").column("service").to_pylist() == ["frontend"]
    assert ("service names that differ only in case in the logs in ClickHouse, kept apart (a query there runs as "
            "written): Frontend, frontend") in store.warnings
