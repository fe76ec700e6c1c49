"""Structured (JSON) application log lines: their message and level come from their fields, whatever the source.

Every fixture is generated here: lines shaped like logrus, pino, structlog, python-json-logger and Serilog's output.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from incidentlens.analysis.templates import mine_all_templates
from incidentlens.errors import InputError
from incidentlens.telemetry import TelemetryStore, load_telemetry, sql_ts
from test_telemetry import row_groups_scanned
from test_telemetry_cli import incidentlens

T0 = datetime(2022, 8, 23, 13, 28, 0)


def iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def container_line(app_line: str, at: datetime) -> str:
    """What a container runtime's json-file driver writes for one line of the application."""
    return json.dumps({"log": app_line + "\n", "stream": "stdout", "time": iso(at)})


def logrus(message: str, severity: str, at: datetime) -> str:
    return json.dumps({"message": message, "severity": severity, "timestamp": iso(at)})


def pino(message: str, level: int | str, at: datetime, service: str) -> str:
    return json.dumps({"level": level, "time": int(at.timestamp() * 1000), "pid": 1, "hostname": f"{service}-7d9f",
                       "name": service, "msg": message, "v": 1})


def structlog(event: str, level: str, at: datetime) -> str:
    return json.dumps({"event": event, "level": level, "timestamp": iso(at), "logger": "recommendations"})


def nezha_csv(path: Path, lines: list[tuple[datetime, str, str]]) -> Path:
    """A Nezha-shaped log file: one row per container line, the pod's name, the wrapped line in `Log`."""
    body = "".join(f'{iso(at)},{pod},"{container_line(app, at).replace(chr(34), chr(34) * 2)}"\n'
                   for at, pod, app in lines)
    path.write_text("Timestamp,PodName,Log\n" + body)
    return path


@pytest.fixture
def onlineboutique_like(tmp_path: Path) -> TelemetryStore:
    """Go, Node and Python services logging JSON (each in its library's shape), a C# service logging plain text."""
    lines = []
    for i in range(30):
        at = T0 + timedelta(seconds=i)
        lines += [
            (at, "productcatalogservice-668d5f85fb-jhwx9",
             logrus(f"TraceID: {i:032x} SpanID: {i:016x} List products end", "info", at)),
            (at, "currencyservice-cf787dd48-vpjrd",
             pino(f"TraceID: {i:032x} SpanID: {i:016x} conversion request successful", 30, at, "currencyservice")),
            (at, "recommendationservice-5f8c456796-mlrz5",
             structlog(f"[Recv ListRecommendations] product_ids=['{i:08X}']", "info", at)),
            (at, "cartservice-74f56fd4b-tg9vl", f"TraceID: {i:032x} GetCartAsync called with userId={i}"),
        ]
    at = T0 + timedelta(seconds=31)
    lines.append((at, "currencyservice-cf787dd48-vpjrd",
                  pino("conversion failed: upstream unavailable", 50, at, "currencyservice")))
    lines.append((at, "productcatalogservice-668d5f85fb-jhwx9",
                  logrus("failed to read catalog file", "error", at)))
    return load_telemetry(logs=nezha_csv(tmp_path / "13_29_log.csv", lines))


def test_an_error_in_a_json_field_is_counted_as_an_error(onlineboutique_like: TelemetryStore) -> None:
    errors = onlineboutique_like.fetch(
        "SELECT service, message FROM logs WHERE level = 'ERROR' ORDER BY service").to_pylist()

    assert errors == [
        {"service": "currencyservice", "message": "conversion failed: upstream unavailable"},
        {"service": "productcatalogservice", "message": "failed to read catalog file"},
    ]


def test_every_json_line_has_its_level_and_plain_text_keeps_none(onlineboutique_like: TelemetryStore) -> None:
    levels = onlineboutique_like.fetch(
        "SELECT service, level, count(*) AS n FROM logs GROUP BY ALL ORDER BY ALL").to_pylist()

    assert levels == [
        {"service": "cartservice", "level": None, "n": 30},
        {"service": "currencyservice", "level": "ERROR", "n": 1},
        {"service": "currencyservice", "level": "INFO", "n": 30},
        {"service": "productcatalogservice", "level": "ERROR", "n": 1},
        {"service": "productcatalogservice", "level": "INFO", "n": 30},
        {"service": "recommendationservice", "level": "INFO", "n": 30},
    ]


def test_templates_are_mined_from_the_messages_not_the_json_skeleton(onlineboutique_like: TelemetryStore) -> None:
    templates = set(mine_all_templates(onlineboutique_like).templates.column("template").to_pylist())

    assert "TraceID: <*> SpanID: <*> List products end" in templates
    assert "TraceID: <*> SpanID: <*> conversion request successful" in templates
    assert "[Recv ListRecommendations] product_ids=[<*>]" in templates
    assert not [t for t in templates if t.startswith("{")]


@pytest.mark.parametrize(("level", "expected"), [
    (10, "TRACE"), (20, "DEBUG"), (30, "INFO"), (40, "WARN"), (50, "ERROR"), (60, "FATAL"),
])
def test_pino_and_bunyan_numeric_levels(tmp_path: Path, level: int, expected: str) -> None:
    # Docker's json-file log of a Node service: the `log` field is the message column, and it holds pino's line.
    app_line = pino("request handled", level, T0, "paymentservice")
    path = tmp_path / "container-json.log"
    path.write_text(container_line(app_line, T0) + "\n")

    assert load_telemetry(logs=path).fetch("SELECT level, message FROM logs").to_pylist() == [
        {"level": expected, "message": "request handled"}]


@pytest.mark.parametrize(("app_line", "level", "message"), [
    ('{"level":"warn","ts":1661261299.49,"caller":"pool/pool.go:88","msg":"pool nearly full"}',  # zap
     "WARN", "pool nearly full"),
    ('{"time":"2022-08-23T13:28:00Z","level":"ERROR","msg":"db timeout","attempt":3}',  # Go slog
     "ERROR", "db timeout"),
    ('{"asctime":"2022-08-23 13:28:00","levelname":"WARNING","name":"email","message":"slow SMTP"}',  # Python
     "WARN", "slow SMTP"),
    ('{"@t":"2022-08-23T13:28:00Z","@mt":"Order {OrderId} failed","@l":"Error","OrderId":7}',  # Serilog compact
     "ERROR", "Order {OrderId} failed"),
    ('{"@timestamp":"2022-08-23T13:28:00Z","log.level":"error","message":"card declined"}',  # ECS
     "ERROR", "card declined"),
    ('{"@timestamp":"2022-08-23T13:28:00Z","log":{"level":"warn","logger":"pay"},"message":"retrying"}',  # nested
     "WARN", "retrying"),
    ('{"severity":"info","message":"","msg":"the first non-empty one"}', "INFO", "the first non-empty one"),
    ('{"level":"info","event":{"kind":"audit"},"msg":"msg is looked for before event"}',
     "INFO", "msg is looked for before event"),
])
def test_common_json_log_shapes(tmp_path: Path, app_line: str, level: str, message: str) -> None:
    path = tmp_path / "logs.jsonl"
    path.write_text(json.dumps({"ts": iso(T0), "log": app_line}) + "\n")

    assert load_telemetry(logs=path).fetch("SELECT level, message FROM logs").to_pylist() == [
        {"level": level, "message": message}]


def test_a_serilog_compact_json_file_reads_its_time_level_message_and_source(tmp_path: Path) -> None:
    # Serilog's file sink with CompactJsonFormatter (`.clef`): it was "no time column (looked for ...); its columns:
    # @t, @mt, ..."; the logger (SourceContext) names the service, as logstash's logger_name does
    path = tmp_path / "app.clef"
    path.write_text("\n".join(json.dumps(line) for line in (
        {"@t": "2022-08-23T13:28:00.0000000Z", "@mt": "Order {OrderId} placed", "OrderId": 7,
         "SourceContext": "Shop.Payments"},
        {"@t": "2022-08-23T13:28:00.0000000Z", "@mt": "Card declined for {OrderId}", "@l": "Error", "OrderId": 8,
         "@x": "System.InvalidOperationException: declined", "SourceContext": "Shop.Payments"},
    )) + "\n")

    assert load_telemetry(logs=path).fetch("SELECT ts, service, level, message FROM logs").to_pylist() == [
        {"ts": T0, "service": "Shop.Payments", "level": None, "message": "Order {OrderId} placed"},
        {"ts": T0, "service": "Shop.Payments", "level": "ERROR", "message": "Card declined for {OrderId}"}]


def test_structlogs_json_lines_are_read_by_their_event_key(tmp_path: Path) -> None:
    # structlog's JSONRenderer writes the message as `event`: the file was refused, "no message column"
    path = tmp_path / "app.jsonl"
    path.write_text("\n".join(json.dumps(line) for line in (
        {"event": "payment accepted", "level": "info", "timestamp": iso(T0), "service": "payments"},
        {"event": "payment declined: card expired", "level": "error", "timestamp": iso(T0), "service": "payments"},
    )) + "\n")

    assert load_telemetry(logs=path).fetch("SELECT level, message FROM logs").to_pylist() == [
        {"level": "INFO", "message": "payment accepted"},
        {"level": "ERROR", "message": "payment declined: card expired"}]


def test_a_json_line_without_a_message_field_is_kept_whole(tmp_path: Path) -> None:
    app_line = '{"severity":"error","http.status":503,"path":"/cart"}'
    path = tmp_path / "logs.jsonl"
    path.write_text(json.dumps({"ts": iso(T0), "message": app_line}) + "\n")

    assert load_telemetry(logs=path).fetch("SELECT level, message FROM logs").to_pylist() == [
        {"level": "ERROR", "message": app_line}]


def test_json_records_without_a_message_are_kept_and_counted(tmp_path: Path) -> None:
    # a health check's record with no `message`: kept with none, and no warning said so (only `templates` did)
    path = tmp_path / "api.jsonl"
    path.write_text("\n".join(json.dumps(record) for record in (
        {"timestamp": iso(T0), "level": "info", "message": "order 1 placed"},
        {"timestamp": iso(T0), "level": "info", "probe": "readiness"},
        {"timestamp": iso(T0), "level": "info", "message": "order 2 placed"},
    )) + "\n")

    store = load_telemetry(logs=path)

    assert store.fetch("SELECT message FROM logs").column("message").to_pylist() == [
        "order 1 placed", None, "order 2 placed"]
    assert store.warnings == [f"{path}: column 'message': 1 row empty or absent, kept with no message"]


def test_a_json_line_without_a_level_field_has_the_level_word_of_its_message(tmp_path: Path) -> None:
    path = tmp_path / "logs.jsonl"
    path.write_text(json.dumps({"ts": iso(T0), "message": '{"msg":"WARN disk 91% full","path":"/data"}'}) + "\n")

    assert load_telemetry(logs=path).fetch("SELECT level, message FROM logs").to_pylist() == [
        {"level": "WARN", "message": "WARN disk 91% full"}]


@pytest.mark.parametrize(("line", "level"), [
    ("13:28:43.812 INFO  - TraceID: 0200bd Get Ads by Category", "INFO"),
    ("the user reported an error in passing", None),  # lower-case prose is no level
    ("{not json} level=error", "ERROR"),  # not JSON: read as text, as before
    ('["level", "error"]', None),  # JSON, but no object
])
def test_lines_that_are_not_json_objects_read_as_text(tmp_path: Path, line: str, level: str | None) -> None:
    structured = logrus("a JSON line elsewhere in the file", "info", T0)
    path = tmp_path / "logs.jsonl"
    path.write_text("".join(json.dumps({"ts": iso(T0), "message": m}) + "\n" for m in (structured, line)))

    read = load_telemetry(logs=path).fetch("SELECT level, message FROM logs").to_pylist()
    assert read[1] == {"level": level, "message": line}


def test_a_level_column_comes_first_and_a_json_field_fills_its_gaps(tmp_path: Path) -> None:
    path = tmp_path / "logs.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in [
        {"ts": iso(T0), "level": "warning", "message": logrus("column says warn", "info", T0)},
        {"ts": iso(T0), "level": "", "message": logrus("the field says error", "error", T0)},
        {"ts": iso(T0), "level": "", "message": "plain text ERROR, no column level"},
    ]))

    assert load_telemetry(logs=path).fetch("SELECT level, message FROM logs").to_pylist() == [
        {"level": "WARN", "message": "column says warn"},
        {"level": "ERROR", "message": "the field says error"},
        {"level": None, "message": "plain text ERROR, no column level"},
    ]


def test_kubernetes_node_log_files_with_json_lines(tmp_path: Path) -> None:
    # /var/log/pods/...: containerd's CRI format, the application's JSON after the stream and tag
    path = tmp_path / "currencyservice.log"
    path.write_text(
        f"{iso(T0)} stdout F {pino('Getting supported currencies', 30, T0, 'currencyservice')}\n"
        f"{iso(T0)} stderr F {pino('the lower-case word error in a message', 30, T0, 'currencyservice')}\n"
        f"{iso(T0)} stderr F ERROR: OCI runtime hook failed\n"
    )

    assert load_telemetry(logs=path).fetch("SELECT service, level, message FROM logs").to_pylist() == [
        {"service": "currencyservice", "level": "INFO", "message": "Getting supported currencies"},
        {"service": "currencyservice", "level": "INFO", "message": "the lower-case word error in a message"},
        {"service": "currencyservice", "level": "ERROR", "message": "ERROR: OCI runtime hook failed"},
    ]


@pytest.mark.parametrize("path", [
    "containers/currencyservice-cf787dd48-vpjrd_default_server-" + "0a" * 32 + ".log",
    "pods/default_currencyservice-cf787dd48-vpjrd_3f1c2a9e-8d4b-4c1e-9f0a-2b6d7e8f9a01/server/0.log",
], ids=["/var/log/containers", "/var/log/pods"])
def test_a_kubernetes_node_log_file_names_its_pod_whose_service_it_is(tmp_path: Path, path: str) -> None:
    log = tmp_path / path
    log.parent.mkdir(parents=True)
    log.write_text(f"{iso(T0)} stdout F {pino('Getting supported currencies', 30, T0, 'currencyservice')}\n")

    assert load_telemetry(logs=log).fetch("SELECT service FROM logs").to_pylist() == [
        {"service": "currencyservice"}]


def test_a_plain_text_log_file_of_json_lines_reads_their_fields(tmp_path: Path) -> None:
    # A text log whose lines are JSON after a time prefix: the level word INFO in the message is not its level.
    path = tmp_path / "api.log"
    path.write_text(f'{iso(T0)} {{"level":"error","msg":"retrying after INFO from upstream"}}\n')

    assert load_telemetry(logs=path).fetch("SELECT level, message FROM logs").to_pylist() == [
        {"level": "ERROR", "message": "retrying after INFO from upstream"}]


def test_a_time_filter_still_reaches_the_parquet_row_groups(tmp_path: Path) -> None:
    # the line and its message are computed below the view's SELECT: a time filter must still skip row groups
    times = [T0 + timedelta(seconds=6 * i) for i in range(600 * 6)]
    logs = [container_line(logrus(f"request {i} done", "info", at), at) for i, at in enumerate(times)]
    path = tmp_path / "logs.parquet"
    pq.write_table(pa.table({"ts": pa.array(times, pa.timestamp("ms", tz="UTC")), "log": logs}), path,
                   row_group_size=600)
    store = load_telemetry(logs=path)
    hour = f"ts >= {sql_ts(T0 + timedelta(hours=2))} AND ts < {sql_ts(T0 + timedelta(hours=3))}"

    assert store.fetch(f"SELECT count(*) AS n, min(message) AS first FROM logs WHERE {hour}").to_pylist() == [
        {"n": 600, "first": "request 1200 done"}]
    assert row_groups_scanned(store, f"SELECT ts, level, message FROM logs WHERE {hour}") == "1 / 6"


def test_analyze_from_the_command_line_finds_the_errors_a_json_field_reports(tmp_path: Path) -> None:
    # Two services logging JSON; after 13:40 currencyservice logs pino errors (level 50) beside its usual lines.
    lines = []
    for i in range(600):
        at = T0 + timedelta(seconds=6 * i)
        lines.append((at, "productcatalogservice-668d5f85fb-jhwx9",
                      logrus(f"TraceID: {i:032x} List products end", "info", at)))
        lines.append((at, "currencyservice-cf787dd48-vpjrd",
                      pino(f"conversion request {i} successful", 30, at, "currencyservice")))
        if at >= datetime(2022, 8, 23, 13, 40):
            lines.append((at, "currencyservice-cf787dd48-vpjrd",
                          pino(f"conversion failed for request {i}: upstream unavailable", 50, at, "currencyservice")))
    logs = nezha_csv(tmp_path / "logs.csv", lines)

    result = incidentlens("analyze", "--logs", str(logs), "--at", "2022-08-23T13:40:00Z", "--onset", "at",
                          "--out", str(tmp_path / "out"))
    assert result.returncode == 0, result.stderr
    analysis = json.loads((tmp_path / "out" / "analysis.json").read_text())
    assert analysis["verdict"]["service"] == "currencyservice"
    assert [(t["template"], t["status"], t["services"]) for t in analysis["templates"]] == [
        ("conversion failed for request <*>: upstream unavailable", "new", ["currencyservice"])]



@pytest.mark.parametrize(("where", "service"), [
    ({"service": {"name": "payments"}}, "payments"),  # an ECS encoder
    ({"kubernetes": {"pod": {"name": "payments-7d9f8b6c5d-x2x9q"}}}, "payments"),  # a Filebeat export
])
def test_a_json_lines_file_with_nested_fields_reads_its_level_and_service(
    tmp_path: Path, where: dict, service: str
) -> None:
    # the level and the service are fields of objects in each record, not top-level keys
    path = tmp_path / "ecs.jsonl"
    path.write_text("".join(json.dumps({"@timestamp": iso(T0), "log": {"level": level, "logger": "pay"}, **where,
                                        "message": message}) + "\n"
                            for level, message in [("error", "card declined"), ("info", "card charged")]))

    assert load_telemetry(logs=path).fetch("SELECT service, level, message FROM logs").to_pylist() == [
        {"service": service, "level": "ERROR", "message": "card declined"},
        {"service": service, "level": "INFO", "message": "card charged"},
    ]


def test_a_loggers_name_is_the_service_where_no_column_names_one(tmp_path: Path) -> None:
    # python-json-logger's `name` (the logger's: `logging.getLogger("payments.api")`) was left aside: every line's
    # service was `global`
    path = tmp_path / "app.jsonl"
    path.write_text("".join(json.dumps({"asctime": f"2022-08-23 13:28:0{i},250", "levelname": "ERROR",
                                        "name": name, "message": "SMTP refused"}) + "\n"
                            for i, name in enumerate(["payments.api", "payments.db"])))
    assert load_telemetry(logs=path).fetch("SELECT service FROM logs ORDER BY ts").column("service").to_pylist() == [
        "payments.api", "payments.db"]


@pytest.mark.parametrize(("record", "service"), [
    ({"service": "payments", "levelname": "ERROR", "name": "payments.api"}, "payments"),  # a service column first
    ({"level": "error", "name": "alice"}, "global"),  # a `name` without the logging record's `levelname`: a user's
    ({"level": "error", "logger": "payments.api"}, "payments.api"),  # structlog's
])
def test_a_logger_name_is_read_as_the_service_only_where_it_is_one(tmp_path: Path, record: dict,
                                                                   service: str) -> None:
    path = tmp_path / "app.jsonl"
    path.write_text(json.dumps({"ts": iso(T0), **record, "message": "card declined"}) + "\n")
    assert load_telemetry(logs=path).fetch("SELECT service FROM logs").column("service").to_pylist() == [service]


@pytest.mark.parametrize("logger", [
    {"log": {"level": "error", "logger": "payments.api"}},  # ECS as its encoders nest it
    {"log.level": "error", "log.logger": "payments.api"},  # ECS written with dotted keys (ecs-logging-python)
])
def test_an_ecs_loggers_name_is_the_service_where_no_field_names_one(tmp_path: Path, logger: dict) -> None:
    # ECS's `log.logger` was not read: every line's service was `global`
    path = tmp_path / "ecs.jsonl"
    path.write_text(json.dumps({"@timestamp": iso(T0), **logger, "message": "card declined"}) + "\n")
    assert load_telemetry(logs=path).fetch("SELECT service, level FROM logs").to_pylist() == [
        {"service": "payments.api", "level": "ERROR"}]


def test_a_logger_written_as_an_object_is_read_by_its_name_not_as_json_text(tmp_path: Path) -> None:
    # the service was the object's JSON text, '{"name":"payments.api"}', as no other column's object is read
    path = tmp_path / "app.jsonl"
    loggers = [{"name": "payments.api", "thread": "main"}, "payments.db", {"thread": "io"}]
    path.write_text("".join(json.dumps({"ts": iso(T0), "level": "error", "logger": logger, "message": "declined"})
                            + "\n" for logger in loggers))
    assert load_telemetry(logs=path).fetch("SELECT service FROM logs").column("service").to_pylist() == [
        "payments.api", "payments.db", "global"]


@pytest.mark.parametrize(("labels", "service"), [
    ({"app": "payments", "namespace": "shop", "level": "error"}, "payments"),
    ({"pod": "payments-7d9f8b6c5d-x2x9q", "detected_level": "error"}, "payments"),  # the pod's service
])
def test_logcli_json_lines_are_read_by_their_line_and_labels(tmp_path: Path, labels: dict, service: str) -> None:
    # `logcli query --output=jsonl`: it was "no message column"; its labels were no service or level
    path = tmp_path / "loki.jsonl"
    path.write_text(json.dumps({"labels": labels, "line": "card declined", "timestamp": "2022-08-23T15:28:00+02:00"})
                    + "\n")
    assert load_telemetry(logs=path).fetch("SELECT ts, service, level, message FROM logs").to_pylist() == [
        {"ts": T0, "service": service, "level": "ERROR", "message": "card declined"}]


def test_a_docker_json_file_log_read_as_is_keeps_no_line_break_in_its_messages(tmp_path: Path) -> None:
    # `/var/lib/docker/containers/<id>/<id>-json.log`: every message ended in the line break the driver keeps
    path = tmp_path / "0a1b-json.log"
    path.write_text(container_line("card declined", T0) + "\n" + container_line("card charged", T0) + "\n")
    assert load_telemetry(logs=path).fetch("SELECT message FROM logs").column("message").to_pylist() == [
        "card declined", "card charged"]


def test_docker_json_file_logs_read_as_is_are_each_their_containers(tmp_path: Path) -> None:
    # `/var/lib/docker/containers/<id>/<id>-json.log` names no service: every container's lines were filed under
    # `global`, as one. Each is its container's, by the short id `docker ps` shows.
    web, db = "a1b2c3d4e5f6" + "0" * 52, "0f9e8d7c6b5a" + "1" * 52
    for container, line in ((web, "GET /cart 200"), (db, "checkpoint complete")):
        (tmp_path / container).mkdir()
        (tmp_path / container / f"{container}-json.log").write_text(container_line(line, T0) + "\n")

    store = load_telemetry(logs=str(tmp_path / "*" / "*-json.log"))

    assert store.fetch("SELECT service, message FROM logs ORDER BY service").to_pylist() == [
        {"service": "0f9e8d7c6b5a", "message": "checkpoint complete"},
        {"service": "a1b2c3d4e5f6", "message": "GET /cart 200"}]


def test_a_saved_cloudwatch_logs_answer_reads_its_events(tmp_path: Path) -> None:
    # `aws logs filter-log-events --log-group-name /shop/payments > logs.json`: it was "no time column ...; its
    # columns: events, searchedLogStreams"
    path = tmp_path / "logs.json"
    events = [{"logStreamName": "payments/7d9f", "timestamp": int(T0.replace(tzinfo=UTC).timestamp() * 1000),
               "message": "ERROR card declined", "ingestionTime": 0, "eventId": "1"}]
    path.write_text(json.dumps({"events": events, "searchedLogStreams": []}, indent=2))
    store = load_telemetry(logs=path)
    assert store.fetch('SELECT ts, level, message, "logStreamName" FROM logs').to_pylist() == [
        {"ts": T0, "level": "ERROR", "message": "ERROR card declined", "logStreamName": "payments/7d9f"}]
    with pytest.raises(InputError) as refused:
        load_telemetry(metrics=path)
    assert str(refused.value) == f"{path}: holds CloudWatch log events: pass it with --logs"


@pytest.mark.parametrize("bad", ["garbage", 99999999999999999], ids=["a string", "too large"])
def test_a_cloudwatch_event_with_a_bad_time_is_left_out_and_named_by_its_number(tmp_path: Path, bad) -> None:
    # a string among the numbers made the whole answer "cannot parse '1714557600000' as a time"; a number too large
    # for a time was a traceback (the error path read the answer as JSON records: 'Referenced column "timestamp"
    # not found')
    moment = int(T0.replace(tzinfo=UTC).timestamp() * 1000)
    events = [{"logStreamName": "web/1", "timestamp": moment + i * 1000, "message": f"event {i}"} for i in range(4)]
    events[2]["timestamp"] = bad
    path = tmp_path / "logs.json"
    path.write_text(json.dumps({"events": events}, indent=2))

    store = load_telemetry(logs=path)

    assert store.fetch("SELECT message FROM logs ORDER BY ts").column("message").to_pylist() == [
        "event 0", "event 1", "event 3"]
    assert store.warnings == [f"{path}: column 'timestamp': 1 row with a bad time left out; the first, row 3: cannot "
                              f"parse {str(bad)!r} as a time (the column's other values read as epoch ms)"]


def test_the_templates_of_saved_cloudwatch_answers_name_each_events_file(tmp_path: Path) -> None:
    # lines.csv left the file of every event empty, and numbered the events of two answers as one
    moment = int(T0.replace(tzinfo=UTC).timestamp() * 1000)
    answers = []
    for name in ("payments.json", "orders.json"):
        answers.append(tmp_path / name)
        answers[-1].write_text(json.dumps({"events": [
            {"logStreamName": "web/1", "timestamp": moment + i, "message": f"{name} event {i}"} for i in range(2)]}))

    mined = mine_all_templates(load_telemetry(logs=answers))

    assert mined.lines.select(["file", "line"]).to_pylist() == [
        {"file": str(path), "line": line} for path in sorted(answers) for line in (1, 2)]


def test_google_cloud_logging_entries_read_their_payload_severity_and_resource(tmp_path: Path) -> None:
    # `gcloud logging read --format=json`: it was "no message column"; a GKE cluster's entries hold their message in
    # `textPayload` or, for a JSON line, `jsonPayload`, and name the container in their resource's labels
    def entry(container: str, payload: dict) -> dict:
        return {"insertId": container, "timestamp": iso(T0), "logName": "projects/shop/logs/stdout",
                "resource": {"type": "k8s_container", "labels": {"container_name": container, "namespace_name": "shop",
                                                                 "pod_name": f"{container}-7d9f8b6c5d-x2x9q"}},
                **payload}

    path = tmp_path / "entries.json"
    path.write_text(json.dumps([
        entry("payments", {"jsonPayload": {"message": "card declined", "orderId": 7}, "severity": "ERROR"}),
        entry("checkout", {"textPayload": "order placed", "severity": "INFO"}),
    ], indent=2))
    assert load_telemetry(logs=path).fetch("SELECT service, level, message FROM logs").to_pylist() == [
        {"service": "payments", "level": "ERROR", "message": "card declined"},
        {"service": "checkout", "level": "INFO", "message": "order placed"}]


def test_a_coloured_container_line_reads_its_level_without_the_colour_codes(tmp_path: Path) -> None:
    # a container's log keeps the escape codes its app wrapped the level in: every line had no level
    path = tmp_path / "checkout.jsonl"
    path.write_text("\n".join(container_line(f"{iso(T0 + timedelta(seconds=n))} {level} checkout: order placed",
                                              T0 + timedelta(seconds=n))
                              for n, level in enumerate(["\x1b[32mINFO\x1b[39m", "\x1b[31mERROR\x1b[39m"])) + "\n")

    store = load_telemetry(logs=path)

    assert store.fetch("SELECT level, message FROM logs ORDER BY ts").to_pylist() == [
        {"level": "INFO", "message": f"{iso(T0)} INFO checkout: order placed"},
        {"level": "ERROR", "message": f"{iso(T0 + timedelta(seconds=1))} ERROR checkout: order placed"}]


def test_colour_codes_written_as_json_escapes_in_a_structured_line_are_dropped_too(tmp_path: Path) -> None:
    # a JSON logger's line inside a container's: its colour codes are JSON escapes (\u001b[31m), not ESC bytes,
    # until its fields are read; the level was '\x1b[31MERROR\x1b[0M' and the message kept the codes
    path = tmp_path / "checkout.jsonl"
    lines = [json.dumps({"level": "\u001b[31merror\u001b[0m", "msg": "\u001b[1mcard declined\u001b[0m"}),
             json.dumps({"level": "info", "msg": "\u001B[1;32morder placed\u001B[0m"})]
    path.write_text("\n".join(container_line(line, T0 + timedelta(seconds=n)) for n, line in enumerate(lines)) + "\n")

    store = load_telemetry(logs=path)

    assert store.fetch("SELECT level, message FROM logs ORDER BY ts").to_pylist() == [
        {"level": "ERROR", "message": "card declined"}, {"level": "INFO", "message": "order placed"}]


def test_a_datadog_log_export_takes_its_level_from_its_status_column(tmp_path: Path) -> None:
    # the Log Explorer's CSV export: its level was read from the messages' words, which hold none (every line NULL)
    path = tmp_path / "extract.csv"
    path.write_text('"Date","Host","Service","Status","Message"\n'
                    '"2022-08-23T13:28:00.000Z","ip-10-0-1-5","checkout","info","GET /api/cart 200"\n'
                    '"2022-08-23T13:28:01.000Z","ip-10-0-1-5","checkout","warn","retrying the gateway"\n'
                    '"2022-08-23T13:28:02.000Z","ip-10-0-1-5","checkout","error","gateway timeout after 3000 ms"\n'
                    '"2022-08-23T13:28:03.000Z","ip-10-0-1-5","checkout","critical","no gateway left"\n')

    store = load_telemetry(logs=path)

    assert store.fetch("SELECT level FROM logs ORDER BY ts").column("level").to_pylist() == [
        "INFO", "WARN", "ERROR", "FATAL"]


def datadog_event(n: int, status: str, message: str) -> dict[str, object]:
    """One event of Datadog's Logs API answer (/api/v2/logs/events)."""
    return {"attributes": {"attributes": {"http": {"status_code": 200}}, "host": "ip-10-0-1-5", "message": message,
                           "service": "checkout", "status": status, "tags": ["env:prod", "service:checkout"],
                           "timestamp": iso(T0 + timedelta(seconds=n))},
            "id": f"AQAAAY{n}", "type": "log"}


def test_a_saved_datadog_logs_answer_reads_its_events_and_their_status(tmp_path: Path) -> None:
    # `curl .../api/v2/logs/events > logs.json`: it said to give its 'data' one a line with jq, and those lines were
    # 'no time column; its columns: id, type, attributes' (their time inside attributes, where --map cannot reach)
    events = [datadog_event(0, "info", "order placed"), datadog_event(1, "error", "card declined")]
    answer, lines = tmp_path / "logs.json", tmp_path / "events.jsonl"
    answer.write_text(json.dumps({"data": events, "links": {"next": None}, "meta": {"page": {"after": None}}}))
    lines.write_text("".join(json.dumps(event) + "\n" for event in events))
    for path in (answer, lines):
        store = load_telemetry(logs=path)
        assert store.fetch("SELECT ts, service, level, message, host, tags FROM logs ORDER BY ts").to_pylist() == [
            {"ts": T0, "service": "checkout", "level": "INFO", "message": "order placed", "host": "ip-10-0-1-5",
             "tags": "env:prod,service:checkout"},
            {"ts": T0 + timedelta(seconds=1), "service": "checkout", "level": "ERROR", "message": "card declined",
             "host": "ip-10-0-1-5", "tags": "env:prod,service:checkout"}]
    with pytest.raises(InputError) as refused:
        load_telemetry(metrics=answer)
    assert str(refused.value) == f"{answer}: holds Datadog log events: pass it with --logs"


def test_a_datadog_event_with_a_bad_time_is_left_out_and_said_by_its_file_line(tmp_path: Path) -> None:
    # it was a DuckDB traceback: the error path read the file again as JSON records, whose columns are data, meta...
    events = [datadog_event(n, "info", "order placed") for n in range(4)]
    events[2]["attributes"]["timestamp"] = "garbage"
    answer, lines = tmp_path / "logs.json", tmp_path / "events.jsonl"
    answer.write_text(json.dumps({"data": events, "links": {}, "meta": {}}, indent=2))
    lines.write_text("".join(json.dumps(event) + "\n" + ("oops\n" if n == 0 else "") for n, event in enumerate(events)))
    for path, where in ((answer, "row 3"), (lines, "row 4")):  # the answer's third event; the line's file line
        store = load_telemetry(logs=path)
        assert store.fetch("SELECT count(*) AS n FROM logs").to_pylist() == [{"n": 3}]
        assert store.warnings == [f"{path}: column 'timestamp': 1 row with a bad time left out; the first, {where}: "
                                  "cannot parse 'garbage' as a time (the column's other values read as ISO-8601 text)"]


def test_datadog_tags_written_as_a_string_are_read_as_a_list_is(tmp_path: Path) -> None:
    # a pipeline's export writes them `"env:prod,service:checkout"`: the whole file was refused, "cannot read as
    # Datadog Logs API JSON: Expected ARRAY, but got VARCHAR"
    events = [datadog_event(n, "info", "order placed") for n in range(3)]
    events[1]["attributes"]["tags"] = "env:prod,service:checkout"  # type: ignore[index]
    del events[2]["attributes"]["tags"]  # type: ignore[attr-defined]
    answer, lines = tmp_path / "logs.json", tmp_path / "events.jsonl"
    answer.write_text(json.dumps({"data": events, "meta": {}}))
    lines.write_text("".join(json.dumps(event) + "\n" for event in events))
    for path in (answer, lines):
        store = load_telemetry(logs=path)
        assert store.fetch("SELECT tags FROM logs ORDER BY ts").column("tags").to_pylist() == [
            "env:prod,service:checkout", "env:prod,service:checkout", None]
        assert store.warnings == []


def test_a_datadog_answer_of_no_events_says_its_query_matched_none(tmp_path: Path) -> None:
    # it was "no time column (...); its columns: data, meta, links; use --map time=COLUMN"
    path = tmp_path / "logs.json"
    path.write_text(json.dumps({"data": [], "meta": {"page": {}}, "links": {}}))
    with pytest.raises(InputError) as refused:
        load_telemetry(logs=path)
    assert str(refused.value) == f"{path}: no log events in it (its query matched none)"


def test_a_datadog_answer_of_other_items_is_refused_saying_what_they_are(tmp_path: Path) -> None:
    # the Events API's answer (/api/v2/events) is alike in shape: its items are no log lines
    path = tmp_path / "events.json"
    path.write_text(json.dumps({"data": [{**datadog_event(0, "info", "deployed checkout 1.4"), "type": "event"}]}))
    with pytest.raises(InputError) as refused:
        load_telemetry(logs=path)
    assert str(refused.value) == f"{path}: a Datadog answer holding items of type 'event', not log events (type 'log')"


def test_an_http_status_column_is_no_level(tmp_path: Path) -> None:
    path = tmp_path / "access.csv"
    path.write_text("ts,service,status,message\n"
                    "2022-08-23T13:28:00Z,web,200,ERROR upstream reset\n"
                    "2022-08-23T13:28:01Z,web,503,retrying\n")

    store = load_telemetry(logs=path)

    assert store.fetch("SELECT level FROM logs ORDER BY ts").column("level").to_pylist() == ["ERROR", None]


def test_python_json_loggers_asctime_is_the_time(tmp_path: Path) -> None:
    # `JsonFormatter("%(asctime)s %(levelname)s %(name)s %(message)s")`: it was "no time column", and with
    # --map time=asctime "cannot parse '2022-08-23 13:28:00,250' as a time"
    path = tmp_path / "app.jsonl"
    path.write_text(json.dumps({"asctime": "2022-08-23 13:28:00,250", "levelname": "ERROR", "name": "email",
                                "message": "SMTP refused"}) + "\n")

    assert load_telemetry(logs=path).fetch("SELECT ts, level, message FROM logs").to_pylist() == [
        {"ts": T0 + timedelta(milliseconds=250), "level": "ERROR", "message": "SMTP refused"}]


def test_a_datadog_event_with_no_timestamp_is_left_out_and_its_row_named(tmp_path: Path) -> None:
    # finding the row to name read the answer as a JSON file's records (data, meta): 'Binder Error: Referenced
    # column "timestamp" not found', a traceback
    late = datadog_event(1, "error", "card declined")
    del late["attributes"]["timestamp"]  # type: ignore[attr-defined]
    answer = tmp_path / "logs.json"
    answer.write_text(json.dumps({"data": [datadog_event(0, "info", "order placed"), late], "meta": {}}))

    store = load_telemetry(logs=answer)

    assert store.fetch("SELECT count(*) AS n FROM logs").to_pylist() == [{"n": 1}]
    assert f"{answer}: column 'timestamp': 1 row has no time, left out; the first, row 2" in store.warnings
