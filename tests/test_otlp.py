"""OpenTelemetry OTLP JSON files (the collector's file exporter: one TracesData/LogsData/MetricsData per line) read
into spans, logs and metrics with --traces/--logs/--metrics and no other flag."""

from __future__ import annotations

import gzip
import json
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import pytest

from cut_gzip import read_up_to_the_cut, write_cut_in_half
from incidentlens.analysis.templates import mine_all_templates
from incidentlens.errors import InputError
from incidentlens.telemetry import load_telemetry

T0 = 1714557600_000_000_000  # 2024-05-01T10:00:00Z in ns


def resource(service: str) -> dict:
    return {"attributes": [{"key": "host.name", "value": {"stringValue": "node-1"}},
                           {"key": "service.name", "value": {"stringValue": service}}]}


def span(trace: str, span_id: str, parent: str, name: str, start_ms: int, ms: int, kind: int, code: int) -> dict:
    return {"traceId": trace, "spanId": span_id, "parentSpanId": parent, "name": name, "kind": kind,
            "startTimeUnixNano": str(T0 + start_ms * 1_000_000), "endTimeUnixNano": str(T0 + (start_ms + ms) * 10**6),
            "status": {"code": code, "message": "deadline exceeded" if code == 2 else ""}}


TRACES = [
    {"resourceSpans": [{"resource": resource("frontend"), "scopeSpans": [{"scope": {"name": "http"}, "spans": [
        span("5B8EFFF798038103D269B633813FC60C", "EEE19B7EC3C1B174", "", "GET /checkout", 0, 250, 2, 2)]}]},
        {"resource": resource("payments"), "scopeSpans": [{"scope": {}, "spans": [
            span("5B8EFFF798038103D269B633813FC60C", "EEE19B7EC3C1B175", "EEE19B7EC3C1B174", "charge", 10, 200, 3, 2),
            span("5B8EFFF798038103D269B633813FC60C", "EEE19B7EC3C1B176", "EEE19B7EC3C1B175", "db", 20, 5, 3, 1)]}]}]},
    {"resourceSpans": [{"resource": resource("frontend"), "scopeSpans": [{"scope": {}, "spans": [
        span("0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331", "", "GET /", 1000, 12, 2, 0)]}]}]},
]
LOGS = [{"resourceLogs": [{"resource": resource("payments"), "scopeLogs": [{"scope": {}, "logRecords": [
    {"timeUnixNano": str(T0), "severityNumber": 17, "severityText": "", "body": {"stringValue": "charge failed"},
     "traceId": "5b8efff798038103d269b633813fc60c", "spanId": "eee19b7ec3c1b175"},
    {"timeUnixNano": "0", "observedTimeUnixNano": str(T0 + 10**9), "severityNumber": 9, "severityText": "Information",
     "body": {"kvlistValue": {"values": [{"key": "order", "value": {"intValue": "42"}}]}}},
]}]}]}]
METRICS = [{"resourceMetrics": [{"resource": resource("payments"), "scopeMetrics": [{"scope": {}, "metrics": [
    {"name": "queue.depth", "gauge": {"dataPoints": [{"timeUnixNano": str(T0), "asInt": "7"}]}},
    {"name": "http.requests", "sum": {"aggregationTemporality": 2, "isMonotonic": True,
                                      "dataPoints": [{"timeUnixNano": str(T0), "asDouble": 120.5}]}},
    {"name": "latency", "histogram": {"dataPoints": [{"timeUnixNano": str(T0), "count": "4", "sum": 1.25,
                                                      "bucketCounts": ["1", "3"], "explicitBounds": [0.5]}]}},
    # left out without a word before
    {"name": "rpc", "exponentialHistogram": {"dataPoints": [{"timeUnixNano": str(T0), "count": "6", "sum": 0.5,
                                                             "scale": 2, "positive": {"bucketCounts": ["6"]}}]}},
    {"name": "gc", "summary": {"dataPoints": [{"timeUnixNano": str(T0), "count": "3", "sum": 0.03,
                                               "quantileValues": [{"quantile": 0.99, "value": 0.02}]}]}},
]}]}]}]


def write_lines(path: Path, documents: list[dict]) -> Path:
    path.write_text("".join(json.dumps(doc) + "\n" for doc in documents))
    return path


def test_otlp_spans_read_with_hex_ids_service_from_the_resource_and_error_status(tmp_path: Path) -> None:
    store = load_telemetry(traces=write_lines(tmp_path / "traces.json", TRACES))

    rows = store.fetch("SELECT trace_id, span_id, parent_id, service, operation, start_ts, duration_ms, is_error, "
                       "span_kind FROM spans ORDER BY start_ts").to_pylist()

    assert rows[:2] == [
        {"trace_id": "5b8efff798038103d269b633813fc60c", "span_id": "eee19b7ec3c1b174", "parent_id": None,
         "service": "frontend", "operation": "GET /checkout", "start_ts": datetime(2024, 5, 1, 10, 0),
         "duration_ms": 250.0, "is_error": True, "span_kind": "server"},
        {"trace_id": "5b8efff798038103d269b633813fc60c", "span_id": "eee19b7ec3c1b175",
         "parent_id": "eee19b7ec3c1b174", "service": "payments", "operation": "charge",
         "start_ts": datetime(2024, 5, 1, 10, 0, 0, 10000), "duration_ms": 200.0, "is_error": True,
         "span_kind": "client"},
    ]
    assert [(r["operation"], r["is_error"]) for r in rows[2:]] == [("db", False), ("GET /", False)]


def attribute(key: str, value: str | int) -> dict:
    return {"key": key, "value": {"intValue": str(value)} if isinstance(value, int) else {"stringValue": value}}


@pytest.mark.parametrize(("kind", "attributes", "peer"), [
    (3, {"peer.service": "billing", "db.system": "postgresql"}, "billing"),
    (3, {"db.system": "postgresql", "db.name": "orders", "server.address": "db-1"}, "postgresql orders"),
    (3, {"db.system.name": "redis", "db.namespace": "0"}, "redis 0"),
    (3, {"db.system": "mysql"}, "mysql"),
    (3, {"server.address": "api.stripe.com", "server.port": 443}, "api.stripe.com"),
    (3, {"net.peer.name": "ldap.corp"}, "ldap.corp"),
    (3, {"network.peer.address": "10.0.0.9", "network.peer.port": 6379}, "10.0.0.9:6379"),
    (3, {"url.full": "https://user@api.example.com:8443/v1/pay?x=1"}, "api.example.com"),
    (3, {"http.host": "legacy.example.com:8080"}, "legacy.example.com"),
    (3, {"rpc.service": "inventory.Stock"}, "inventory.Stock"),
    (4, {"messaging.system": "kafka"}, "kafka"),
    (3, {"messaging.system": "kafka"}, None),  # a client span's messaging system names no peer: a producer's does
    (2, {"peer.service": "billing"}, None),  # a server span calls no one
    (3, {"peer.service": "  ", "db.system": "postgresql"}, "postgresql"),  # a blank attribute names no peer " "
], ids=["peer.service", "db.system+db.name", "db.system.name+db.namespace", "db.system", "server.address",
        "net.peer.name", "address+port", "url.full", "http.host", "rpc.service", "producer", "client-messaging",
        "server", "blank"])
def test_a_calls_peer_is_named_by_its_attributes_in_the_semantic_conventions_order(
        tmp_path: Path, kind: int, attributes: dict, peer: str | None) -> None:
    call = {**span("5b8efff798038103d269b633813fc60c", "eee19b7ec3c1b175", "", "call", 0, 10, kind, 0),
            "attributes": [attribute(key, value) for key, value in attributes.items()]}
    traces = [{"resourceSpans": [{"resource": resource("orders"), "scopeSpans": [{"scope": {}, "spans": [call]}]}]}]

    rows = load_telemetry(traces=write_lines(tmp_path / "traces.json", traces)).fetch(
        "SELECT service, peer, inferred FROM spans ORDER BY inferred").to_pylist()

    inferred = [{"service": peer, "peer": None, "inferred": True}] if peer else []
    assert rows == [{"service": "orders", "peer": peer, "inferred": False}, *inferred]


def test_a_pretty_printed_otlp_document_reads_as_one_per_line_does(tmp_path: Path) -> None:
    # `jq . traces.json`, or an OTLP/HTTP request body saved: it was "8 of 8 lines unreadable (not valid JSON)"
    path = tmp_path / "traces.json"
    path.write_text(json.dumps(TRACES[0], indent=2))

    spans = load_telemetry(traces=path).fetch("SELECT service, operation FROM spans ORDER BY start_ts").to_pylist()

    assert spans == [{"service": "frontend", "operation": "GET /checkout"},
                     {"service": "payments", "operation": "charge"}, {"service": "payments", "operation": "db"}]


@pytest.mark.parametrize("answer", [
    lambda spans: {"batches": spans},  # Tempo's /api/traces/<id>
    lambda spans: {"trace": {"resourceSpans": spans}},  # its /api/v2/traces/<id>
    # older Tempo and OTLP before 0.15: a resource's spans under `instrumentationLibrarySpans`
    lambda spans: {"batches": json.loads(json.dumps(spans).replace("scopeSpans", "instrumentationLibrarySpans"))},
], ids=["batches", "v2", "instrumentation library spans"])
def test_a_trace_saved_from_tempo_reads_as_otlp_does(tmp_path: Path, answer: Callable[[list], dict]) -> None:
    # it was "no trace_id column (looked for traceid)"
    path = tmp_path / "trace.json"
    path.write_text(json.dumps(answer(TRACES[0]["resourceSpans"]), indent=2))

    spans = load_telemetry(traces=path).fetch("SELECT service, operation FROM spans ORDER BY start_ts").to_pylist()

    assert spans == [{"service": "frontend", "operation": "GET /checkout"},
                     {"service": "payments", "operation": "charge"}, {"service": "payments", "operation": "db"}]


@pytest.mark.parametrize("answer", [{"batches": []}, {"trace": {}}, {"trace": {"resourceSpans": []}},
                                    {"resourceSpans": []}], ids=["batches", "v2", "v2 resource spans", "otlp"])
def test_an_empty_trace_saved_from_tempo_says_it_holds_no_spans(tmp_path: Path, answer: dict) -> None:
    # it was "no trace_id column (looked for traceid)", or "no rows (the file is empty or has only a header)"
    path = tmp_path / "trace.json"
    path.write_text(json.dumps(answer))

    with pytest.raises(InputError) as refused:
        load_telemetry(traces=path)
    assert str(refused.value) == f"{path}: no spans in it"


def test_an_otlp_file_with_no_spans_is_left_out_and_the_files_after_it_read(tmp_path: Path) -> None:
    # `--traces 'traces/*.json'` with a quiet minute's file first: it stopped the load, the spans after it unread
    write_lines(tmp_path / "a.json", [{"resourceSpans": []}])
    write_lines(tmp_path / "b.json", TRACES)

    store = load_telemetry(traces=str(tmp_path / "*.json"))

    assert store.fetch("SELECT count(*) AS spans FROM spans").to_pylist() == [{"spans": 4}]
    assert store.warnings == [f"{tmp_path / 'a.json'}: no spans in it, left out"]


def test_otlp_logs_read_severity_body_and_trace_context(tmp_path: Path) -> None:
    store = load_telemetry(logs=write_lines(tmp_path / "logs.jsonl", LOGS))

    rows = store.fetch("SELECT ts, service, level, message, trace_id FROM logs ORDER BY ts").to_pylist()

    assert rows[0] == {"ts": datetime(2024, 5, 1, 10, 0), "service": "payments", "level": "ERROR",
                       "message": "charge failed", "trace_id": "5b8efff798038103d269b633813fc60c"}
    assert rows[1]["ts"] == datetime(2024, 5, 1, 10, 0, 1), "no time: the observed time"
    assert rows[1]["level"] == "INFO"
    assert json.loads(rows[1]["message"]) == {"kvlistValue": {"values": [{"key": "order",
                                                                          "value": {"intValue": "42"}}]}}


def test_otlp_log_records_whose_resource_names_no_service_are_filed_under_global_and_counted(tmp_path: Path) -> None:
    logs = json.loads(json.dumps(LOGS))
    logs[0]["resourceLogs"][0]["resource"] = {"attributes": [{"key": "host.name", "value": {"stringValue": "n1"}}]}
    path = write_lines(tmp_path / "logs.jsonl", logs)
    store = load_telemetry(logs=path)
    assert store.warnings == [f"{path}: column 'service': 2 rows whose resource has no service.name, filed under "
                              "service 'global'"]
    assert store.fetch("SELECT DISTINCT service FROM logs").to_pylist() == [{"service": "global"}]


def test_otlp_metrics_read_gauges_sums_and_the_counts_of_histograms_and_summaries(tmp_path: Path) -> None:
    store = load_telemetry(metrics=write_lines(tmp_path / "metrics.json", METRICS))

    rows = store.fetch("SELECT service, metric, value FROM metrics ORDER BY metric").to_pylist()

    assert rows == [{"service": "payments", "metric": "gc.count", "value": 3.0},
                    {"service": "payments", "metric": "gc.sum", "value": 0.03},
                    {"service": "payments", "metric": "http.requests", "value": 120.5},
                    {"service": "payments", "metric": "latency.count", "value": 4.0},
                    {"service": "payments", "metric": "latency.sum", "value": 1.25},
                    {"service": "payments", "metric": "queue.depth", "value": 7.0},
                    {"service": "payments", "metric": "rpc.count", "value": 6.0},
                    {"service": "payments", "metric": "rpc.sum", "value": 0.5}]


def test_otlp_metrics_of_two_pods_of_a_service_keep_each_pod(tmp_path: Path) -> None:
    """The resource's `k8s.pod.name` is the pod: two replicas' points are two series of one service."""
    def replica(pod: str, depth: str) -> dict:
        attributes = [*resource("payments")["attributes"], {"key": "k8s.pod.name", "value": {"stringValue": pod}}]
        return {"resource": {"attributes": attributes}, "scopeMetrics": [{"scope": {}, "metrics": [
            {"name": "queue.depth", "gauge": {"dataPoints": [{"timeUnixNano": str(T0), "asInt": depth}]}}]}]}

    pods = [replica("payments-5f6585d649-fnmft", "7"), replica("payments-5f6585d649-x2k8q", "9")]
    documents = [{"resourceMetrics": pods}]
    store = load_telemetry(metrics=write_lines(tmp_path / "metrics.json", documents))

    rows = store.fetch("SELECT service, pod, value FROM metrics ORDER BY pod").to_pylist()

    assert rows == [{"service": "payments", "pod": "payments-5f6585d649-fnmft", "value": 7.0},
                    {"service": "payments", "pod": "payments-5f6585d649-x2k8q", "value": 9.0}]


def test_a_broken_otlp_line_is_set_aside_and_a_misplaced_file_named(tmp_path: Path) -> None:
    path = write_lines(tmp_path / "traces.json", TRACES)
    path.write_text(path.read_text() + '{"resourceSpans": [{"resource": \n')

    store = load_telemetry(traces=path)

    assert store.fetch("SELECT count(*) AS n FROM spans").to_pylist() == [{"n": 4}]
    assert [r.note() for r in store.rejected] == ["1 of 3 records of traces.json unreadable (line 3)"]
    with pytest.raises(InputError, match=r"traces.json: holds OpenTelemetry spans \(resourceSpans\): pass it with "
                                         r"--traces"):
        load_telemetry(logs=path)


@pytest.mark.parametrize(("document", "shape"), [
    ({"resourceSpans": {"x": 1}}, 'Expected ARRAY, but got OBJECT: {"x":1}'),
    ({"resourceSpans": [{"resource": {}, "scopeSpans": [{"spans": "none"}]}]},
     'Expected ARRAY, but got VARCHAR: "none"'),
])
def test_an_otlp_field_of_another_shape_is_one_line(tmp_path: Path, document: dict, shape: str) -> None:
    # a list in OTLP given as an object or a string: DuckDB's ConversionException was a traceback
    path = write_lines(tmp_path / "spans.json", [document])
    with pytest.raises(InputError) as refused:
        load_telemetry(traces=path)
    assert str(refused.value) == f"{path}: cannot read as OTLP JSON: {shape}"


def test_an_otlp_span_past_what_a_timestamp_holds_is_left_out_and_counted(tmp_path: Path) -> None:
    # its microseconds a BIGINT's end: 'cannot read as OTLP JSON: Timestamp microseconds out of range' before
    late = span("0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203332", "", "GET /", 0, 1, 2, 0)
    late["startTimeUnixNano"] = "9223372036854775807000"
    document = {"resourceSpans": [{"resource": resource("frontend"), "scopeSpans": [{"scope": {}, "spans": [late]}]}]}
    path = write_lines(tmp_path / "traces.json", [*TRACES, document])
    store = load_telemetry(traces=path)
    assert store.warnings == [f"{path}: column 'start_ts': 1 row has no time, left out; the first, row 5"]
    assert store.fetch("SELECT count(*) AS n FROM spans").to_pylist() == [{"n": 4}]


def test_an_otlp_span_without_an_end_time_that_reads_is_kept_and_counted(tmp_path: Path) -> None:
    # its duration was NULL without a word: the span was left out of every latency in silence
    unended = span("0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203332", "", "GET /", 0, 1, 2, 0)
    garbled = span("0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203333", "", "GET /", 0, 1, 2, 0)
    del unended["endTimeUnixNano"]
    garbled["endTimeUnixNano"] = "soon"
    document = {"resourceSpans": [{"resource": resource("frontend"), "scopeSpans": [{"scope": {},
                                                                                      "spans": [unended, garbled]}]}]}
    path = write_lines(tmp_path / "traces.json", [*TRACES, document])

    store = load_telemetry(traces=path)

    assert store.warnings == [f"{path}: column 'duration_ms': 2 rows with no duration (its end time or duration "
                              "missing, or not a number), their duration kept as NULL"]
    assert store.fetch("SELECT count(*) AS n FROM spans").to_pylist() == [{"n": 6}]


def test_the_templates_of_otlp_logs_are_mined(tmp_path: Path) -> None:
    # `incidentlens templates --logs logs.json` failed with a traceback: OTLP records say no line of their own;
    # then lines.csv left their file empty. A record is numbered in the order the file gives them.
    path = write_lines(tmp_path / "logs.json", LOGS)
    mined = mine_all_templates(load_telemetry(logs=path))

    assert mined.templates.column("count").to_pylist() == [1, 1]
    assert mined.lines.select(["file", "line"]).to_pylist() == [{"file": str(path), "line": 1},
                                                                 {"file": str(path), "line": 2}]


def test_a_gzipped_otlp_file_cut_short_is_read_up_to_the_cut(tmp_path: Path) -> None:
    # DuckDB's "Unexpected end of GZIP stream" ended the load in a traceback
    path = tmp_path / "traces.jsonl.gz"
    lines = write_cut_in_half(path, "".join(json.dumps(doc) + "\n" for doc in TRACES * 500))

    store = load_telemetry(traces=path)

    assert store.warnings == [read_up_to_the_cut(path, lines)]
    # TRACES alternates a document of three spans and one of one
    assert store.fetch("SELECT count(*) AS n FROM spans").to_pylist() == [{"n": 4 * (lines // 2) + 3 * (lines % 2)}]


def test_a_small_gzipped_otlp_file_cut_short_is_read_up_to_the_cut_too(tmp_path: Path) -> None:
    # under the 4 KiB its first bytes are read in to find its view: that read ran into the cut, a traceback
    whole = gzip.compress("".join(json.dumps(doc) + "\n" for doc in TRACES).encode())
    path = tmp_path / "traces.jsonl.gz"
    path.write_bytes(whole[:-10])  # the end marker and the second document's end cut off

    store = load_telemetry(traces=path)

    assert store.warnings == [f"{path}: the gzip stream ends early: the file is cut short (a copy or download that "
                              "did not finish?): its first 1 line read; the start of line 2, cut off, left out"]
    assert store.fetch("SELECT count(*) AS n FROM spans").to_pylist() == [{"n": 3}]
