"""Zipkin's JSON v2 spans (`/api/v2/trace/{id}`, `/api/v2/traces`, the UI's download) read into spans with --traces
and no other flag."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import pytest

from incidentlens.errors import InputError
from incidentlens.telemetry import load_telemetry

T0_US = 1714557600_000_000  # 2024-05-01T10:00:00Z in microseconds

TRACE = [
    {"traceId": "5B8EFFF798038103", "id": "eee19b7ec3c1b174", "kind": "SERVER", "name": "get /checkout",
     "timestamp": T0_US, "duration": 250_000, "localEndpoint": {"serviceName": "frontend", "ipv4": "10.0.0.7"},
     "tags": {"http.path": "/checkout", "error": "timeout"}},
    {"traceId": "5B8EFFF798038103", "parentId": "eee19b7ec3c1b174", "id": "eee19b7ec3c1b175", "kind": "CLIENT",
     "name": "charge", "timestamp": T0_US + 10_000, "duration": 200_000,
     "localEndpoint": {"serviceName": "payments"}, "remoteEndpoint": {"serviceName": "provider"}},
]


@pytest.mark.parametrize("document", [TRACE, [TRACE]], ids=["one-trace", "traces"])
def test_zipkin_spans_read_with_service_parent_and_error_tag(tmp_path: Path, document: list) -> None:
    # read as JSON records they were "no span_id column", and after --map span_id=id all of service 'global'
    path = tmp_path / "trace.json"
    path.write_text(json.dumps(document, indent=2))

    rows = load_telemetry(traces=path).fetch(
        "SELECT trace_id, span_id, parent_id, service, operation, start_ts, duration_ms, is_error, span_kind "
        "FROM spans WHERE NOT inferred ORDER BY start_ts").to_pylist()

    assert rows == [
        {"trace_id": "5b8efff798038103", "span_id": "eee19b7ec3c1b174", "parent_id": None, "service": "frontend",
         "operation": "get /checkout", "start_ts": datetime(2024, 5, 1, 10, 0), "duration_ms": 250.0,
         "is_error": True, "span_kind": "server"},
        {"trace_id": "5b8efff798038103", "span_id": "eee19b7ec3c1b175", "parent_id": "eee19b7ec3c1b174",
         "service": "payments", "operation": "charge", "start_ts": datetime(2024, 5, 1, 10, 0, 0, 10000),
         "duration_ms": 200.0, "is_error": False, "span_kind": "client"},
    ]


@pytest.mark.parametrize(("remote", "tags", "peer"), [
    ({"serviceName": "provider", "ipv4": "10.0.0.9", "port": 443}, {"peer.service": "other"}, "provider"),
    ({"ipv4": "10.0.0.9", "port": 5432}, {"db.system": "postgresql", "db.name": "orders"}, "postgresql orders"),
    ({"ipv4": "10.0.0.9", "port": 5432}, {}, "10.0.0.9:5432"),
], ids=["remote-service", "database-tags", "remote-address"])
def test_a_zipkin_call_with_nothing_traced_under_it_has_its_peer_inferred_under_it(
        tmp_path: Path, remote: dict, tags: dict, peer: str) -> None:
    path = tmp_path / "trace.json"
    path.write_text(json.dumps([TRACE[0], {**TRACE[1], "remoteEndpoint": remote, "tags": tags}]))

    rows = load_telemetry(traces=path).fetch(
        "SELECT span_id, parent_id, service, operation, duration_ms, span_kind, peer, inferred FROM spans "
        "ORDER BY start_ts, inferred").to_pylist()

    assert rows[1:] == [
        {"span_id": "eee19b7ec3c1b175", "parent_id": "eee19b7ec3c1b174", "service": "payments", "operation": "charge",
         "duration_ms": 200.0, "span_kind": "client", "peer": peer, "inferred": False},
        {"span_id": "eee19b7ec3c1b175-peer", "parent_id": "eee19b7ec3c1b175", "service": peer, "operation": "charge",
         "duration_ms": 200.0, "span_kind": "server", "peer": None, "inferred": True},
    ]


def test_zipkin_spans_given_as_logs_are_named(tmp_path: Path) -> None:
    path = tmp_path / "trace.json"
    path.write_text(json.dumps(TRACE))

    with pytest.raises(InputError) as refused:
        load_telemetry(logs=path)
    assert str(refused.value) == f"{path}: holds Zipkin traces: pass it with --traces"


def test_a_json_array_of_log_records_with_trace_ids_is_no_zipkin_file(tmp_path: Path) -> None:
    # a Kubernetes-enriched log record holds a traceId and annotations, but no endpoint
    path = tmp_path / "logs.json"
    path.write_text(json.dumps([{"ts": "2024-05-01T10:00:00Z", "traceId": "5b8efff798038103", "level": "error",
                                 "message": "card declined", "kubernetes": {"annotations": {"team": "pay"}}}]))

    assert load_telemetry(logs=path).fetch("SELECT level, message FROM logs").to_pylist() == [
        {"level": "ERROR", "message": "card declined"}]


def test_a_server_span_sharing_its_clients_id_is_that_clients_child(tmp_path: Path) -> None:
    # B3 propagation (Brave, Spring Sleuth): the server half of a call reports the client's id with "shared": true.
    # The id named two spans, so the database call under it joined both: once as the frontend's, once the orders'.
    # The client span names its peer, but a span was traced under it: nothing is inferred there
    trace = "5b8efff798038103"
    spans = [
        {"traceId": trace, "id": "a1", "kind": "SERVER", "name": "get /order", "timestamp": T0_US,
         "duration": 90_000, "localEndpoint": {"serviceName": "frontend"}},
        {"traceId": trace, "parentId": "a1", "id": "b2", "kind": "CLIENT", "name": "get", "timestamp": T0_US + 1_000,
         "duration": 80_000, "localEndpoint": {"serviceName": "frontend"}, "remoteEndpoint": {"serviceName": "orders"}},
        {"traceId": trace, "parentId": "a1", "id": "b2", "kind": "SERVER", "name": "get", "shared": True,
         "timestamp": T0_US + 2_000, "duration": 70_000, "localEndpoint": {"serviceName": "orders"}},
        {"traceId": trace, "parentId": "b2", "id": "c3", "kind": "CLIENT", "name": "select",
         "timestamp": T0_US + 3_000, "duration": 60_000, "localEndpoint": {"serviceName": "orders"}},
    ]
    path = tmp_path / "trace.json"
    path.write_text(json.dumps(spans))

    links = load_telemetry(traces=path).fetch(
        "SELECT child.service, child.span_kind, parent.service AS parent_service, parent.span_kind AS parent_kind "
        "FROM spans AS child LEFT JOIN spans AS parent ON parent.trace_id = child.trace_id "
        "AND parent.span_id = child.parent_id ORDER BY child.start_ts").to_pylist()

    assert links == [
        {"service": "frontend", "span_kind": "server", "parent_service": None, "parent_kind": None},
        {"service": "frontend", "span_kind": "client", "parent_service": "frontend", "parent_kind": "server"},
        {"service": "orders", "span_kind": "server", "parent_service": "frontend", "parent_kind": "client"},
        {"service": "orders", "span_kind": "client", "parent_service": "orders", "parent_kind": "server"},
    ]


def test_a_zipkin_file_cut_short_is_one_line(tmp_path: Path) -> None:
    path = tmp_path / "trace.json"
    path.write_text(json.dumps(TRACE)[:-40])

    with pytest.raises(InputError) as refused:
        load_telemetry(traces=path)
    assert str(refused.value).startswith(f"{path}: cannot read as Zipkin JSON: ")
    assert "\n" not in str(refused.value)


def test_a_zipkin_span_starting_at_a_bigint_end_is_left_out_and_counted(tmp_path: Path) -> None:
    # 'cannot read as Zipkin JSON: Timestamp microseconds out of range' for the whole file before
    path = tmp_path / "trace.json"
    path.write_text(json.dumps([TRACE[0], {**TRACE[1], "timestamp": -9223372036854775807}]))
    store = load_telemetry(traces=path)
    assert store.warnings == [f"{path}: column 'start_ts': 1 row has no time, left out; the first, row 2"]
    assert store.fetch("SELECT count(*) AS n FROM spans").to_pylist() == [{"n": 1}]
