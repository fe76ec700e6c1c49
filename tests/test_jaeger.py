"""Jaeger's JSON trace export (the UI's "Download JSON", `/api/traces`) read into spans with --traces and no other
flag, as the same spans in OTLP JSON are."""

from __future__ import annotations

import gzip
import json
from datetime import datetime
from pathlib import Path

import pytest

from cut_gzip import CUT_SHORT, write_cut_in_half
from incidentlens.errors import InputError
from incidentlens.telemetry import load_telemetry

T0_US = 1714557600_000_000  # 2024-05-01T10:00:00Z in microseconds


def jaeger_span(span_id: str, parent: str | None, name: str, start_ms: int, ms: int, process: str,
                tags: list[dict]) -> dict:
    references = [{"refType": "CHILD_OF", "traceID": "5b8efff798038103", "spanID": parent}] if parent else []
    return {"traceID": "5b8efff798038103", "spanID": span_id, "operationName": name, "references": references,
            "startTime": T0_US + start_ms * 1000, "duration": ms * 1000, "tags": tags, "processID": process,
            "logs": [], "warnings": None}


EXPORT = {"data": [{"traceID": "5b8efff798038103", "spans": [
    jaeger_span("eee19b7ec3c1b174", None, "GET /checkout", 0, 250, "p1",
                [{"key": "span.kind", "type": "string", "value": "server"},
                 {"key": "error", "type": "bool", "value": True}]),
    jaeger_span("eee19b7ec3c1b175", "eee19b7ec3c1b174", "charge", 10, 200, "p2",
                [{"key": "span.kind", "type": "string", "value": "client"},
                 {"key": "otel.status_code", "type": "string", "value": "ERROR"}]),
    jaeger_span("eee19b7ec3c1b176", "eee19b7ec3c1b175", "db", 20, 5, "p2", []),
], "processes": {"p1": {"serviceName": "frontend", "tags": []}, "p2": {"serviceName": "payments", "tags": []}},
    "warnings": None}], "total": 0, "limit": 0, "offset": 0, "errors": None}


@pytest.mark.parametrize("write", [
    lambda path: path.write_text(json.dumps(EXPORT)),  # /api/traces
    lambda path: path.write_text(json.dumps(EXPORT, indent=2)),  # pretty-printed
    lambda path: path.with_suffix(".json.gz").write_bytes(gzip.compress(json.dumps(EXPORT).encode())),
], ids=["one-line", "pretty", "gzip"])
def test_a_jaeger_export_reads_as_spans_with_services_parents_and_errors(tmp_path: Path, write) -> None:
    write(tmp_path / "trace.json")
    [path] = tmp_path.iterdir()

    rows = load_telemetry(traces=path).fetch(
        "SELECT trace_id, span_id, parent_id, service, operation, start_ts, duration_ms, is_error, span_kind "
        "FROM spans ORDER BY start_ts").to_pylist()

    assert rows == [
        {"trace_id": "5b8efff798038103", "span_id": "eee19b7ec3c1b174", "parent_id": None, "service": "frontend",
         "operation": "GET /checkout", "start_ts": datetime(2024, 5, 1, 10, 0), "duration_ms": 250.0,
         "is_error": True, "span_kind": "server"},
        {"trace_id": "5b8efff798038103", "span_id": "eee19b7ec3c1b175", "parent_id": "eee19b7ec3c1b174",
         "service": "payments", "operation": "charge", "start_ts": datetime(2024, 5, 1, 10, 0, 0, 10000),
         "duration_ms": 200.0, "is_error": True, "span_kind": "client"},
        {"trace_id": "5b8efff798038103", "span_id": "eee19b7ec3c1b176", "parent_id": "eee19b7ec3c1b175",
         "service": "payments", "operation": "db", "start_ts": datetime(2024, 5, 1, 10, 0, 0, 20000),
         "duration_ms": 5.0, "is_error": False, "span_kind": None},
    ]


def tag(key: str, value: str) -> dict:
    return {"key": key, "type": "string", "value": value}


def test_a_jaeger_call_to_an_untraced_database_has_the_database_inferred_under_it(tmp_path: Path) -> None:
    # the "db" span of payments, a client span naming its database, has nothing under it; the "charge" call has
    db = jaeger_span("eee19b7ec3c1b176", "eee19b7ec3c1b175", "db", 20, 5, "p2",
                     [tag("span.kind", "client"), tag("db.system", "postgresql"), tag("db.name", "payments")])
    charge = EXPORT["data"][0]["spans"][1]
    charge = {**charge, "tags": [*charge["tags"], tag("peer.service", "payments")]}
    export = {"data": [{**EXPORT["data"][0], "spans": [EXPORT["data"][0]["spans"][0], charge, db]}]}
    path = tmp_path / "trace.json"
    path.write_text(json.dumps(export))

    rows = load_telemetry(traces=path).fetch(
        "SELECT span_id, parent_id, service, operation, duration_ms, peer, inferred FROM spans "
        "ORDER BY start_ts, inferred").to_pylist()

    assert [(r["service"], r["peer"], r["inferred"]) for r in rows] == [
        ("frontend", None, False), ("payments", "payments", False), ("payments", "postgresql payments", False),
        ("postgresql payments", None, True)]
    assert rows[-1] == {"span_id": "eee19b7ec3c1b176-peer", "parent_id": "eee19b7ec3c1b176",
                        "service": "postgresql payments", "operation": "db", "duration_ms": 5.0, "peer": None,
                        "inferred": True}


def test_a_jaeger_export_given_as_logs_is_named(tmp_path: Path) -> None:
    # read as JSON records it was "no time column (looked for ts, time, ...)"
    path = tmp_path / "trace.json"
    path.write_text(json.dumps(EXPORT))

    with pytest.raises(InputError) as refused:
        load_telemetry(logs=path)
    assert str(refused.value) == f"{path}: holds Jaeger traces: pass it with --traces"


def test_a_jaeger_export_of_another_shape_is_one_line(tmp_path: Path) -> None:
    path = tmp_path / "trace.json"
    path.write_text(json.dumps({"data": [{"traceID": "ab", "spans": "none"}]}))

    with pytest.raises(InputError) as refused:
        load_telemetry(traces=path)
    assert str(refused.value).startswith(f"{path}: cannot read as a Jaeger JSON export: ")
    assert "\n" not in str(refused.value)


def test_a_jaeger_span_starting_at_a_bigint_end_is_left_out_and_counted(tmp_path: Path) -> None:
    # 'cannot read as a Jaeger JSON export: Timestamp microseconds out of range' for the whole file before
    export = json.loads(json.dumps(EXPORT))
    export["data"][0]["spans"][2]["startTime"] = 9223372036854775807
    path = tmp_path / "trace.json"
    path.write_text(json.dumps(export))
    store = load_telemetry(traces=path)
    assert store.warnings == [f"{path}: column 'start_ts': 1 row has no time, left out; the first, row 3"]
    assert store.fetch("SELECT count(*) AS n FROM spans").to_pylist() == [{"n": 2}]


def test_a_jaeger_span_without_its_duration_is_kept_and_counted(tmp_path: Path) -> None:
    # its duration was NULL without a word: the span was left out of every latency in silence
    export = json.loads(json.dumps(EXPORT))
    del export["data"][0]["spans"][2]["duration"]
    path = tmp_path / "trace.json"
    path.write_text(json.dumps(export))

    store = load_telemetry(traces=path)

    assert store.warnings == [f"{path}: column 'duration_ms': 1 row with no duration (its end time or duration "
                              "missing, or not a number), its duration kept as NULL"]
    assert store.fetch("SELECT count(*) AS n FROM spans").to_pylist() == [{"n": 3}]


def test_a_jaeger_span_without_a_process_or_an_id_is_kept_and_counted(tmp_path: Path) -> None:
    # filed under service 'global' and kept without its id in silence: 'global' looked like a service of its own
    export = json.loads(json.dumps(EXPORT))
    del export["data"][0]["spans"][2]["processID"]
    del export["data"][0]["spans"][1]["spanID"]
    path = tmp_path / "trace.json"
    path.write_text(json.dumps(export))

    store = load_telemetry(traces=path)

    assert store.warnings == [
        f"{path}: column 'service': 1 span with no process (no serviceName), filed under service 'global'",
        f"{path}: column 'span_id': 1 span with no span ID, kept (no span can name such a span its parent)"]
    assert store.fetch("SELECT service FROM spans ORDER BY start_ts").column("service").to_pylist() == [
        "frontend", "payments", "global"]


def test_a_gzipped_jaeger_export_cut_short_says_so_in_one_line(tmp_path: Path) -> None:
    # one document: nothing before the cut can be read, as a JSON lines file's lines can
    export = json.loads(json.dumps(EXPORT))
    export["data"] *= 3000
    path = tmp_path / "trace.json.gz"
    write_cut_in_half(path, json.dumps(export))
    with pytest.raises(InputError) as refused:
        load_telemetry(traces=path)
    assert str(refused.value) == f"{path}: cannot read as a Jaeger JSON export: {CUT_SHORT}"


def test_a_small_gzipped_jaeger_export_cut_short_says_so_in_one_line_too(tmp_path: Path) -> None:
    # under the 256 bytes its first bytes are read in: that read ran into the cut, a traceback
    path = tmp_path / "trace.json.gz"
    path.write_bytes(gzip.compress(json.dumps(EXPORT).encode(), 0)[:200])
    with pytest.raises(InputError) as refused:
        load_telemetry(traces=path)
    assert str(refused.value) == (f"{path}: cannot read as a Jaeger JSON export: the gzip stream ends early: the file "
                                  "is cut short (a copy or download that did not finish?)")


@pytest.mark.parametrize(("answer", "says"), [
    ({"data": [], "total": 0, "limit": 0, "offset": 0, "errors": None},
     "a Jaeger answer with no traces (its query matched none)"),
    ({"data": None, "total": 0, "limit": 0, "offset": 0,
      "errors": [{"code": 400, "msg": "parameter 'service' is required"}]},
     "a Jaeger answer with errors: 400 parameter 'service' is required"),
])
def test_a_jaeger_answer_with_no_traces_says_why_in_one_line(tmp_path: Path, answer: dict, says: str) -> None:
    # it was "no trace_id column (looked for traceid); use --map trace_id=COLUMN"
    path = tmp_path / "trace.json"
    path.write_text(json.dumps(answer))
    with pytest.raises(InputError) as refused:
        load_telemetry(traces=path)
    assert str(refused.value) == f"{path}: {says}"


def test_a_jaeger_answer_with_no_traces_cut_short_is_one_line(tmp_path: Path) -> None:
    path = tmp_path / "trace.json"
    path.write_text('{"data": [], "total": 0, "limit"')
    with pytest.raises(InputError) as refused:
        load_telemetry(traces=path)
    assert str(refused.value) == (f"{path}: cannot read as a Jaeger answer: Expecting ':' delimiter: line 1 column 33 "
                                  "(char 32)")


def test_a_gzipped_jaeger_answer_with_no_traces_cut_short_is_one_line(tmp_path: Path) -> None:
    # an EOFError's traceback before
    answer = {"data": [], "total": 0, "limit": 0, "offset": 0, "errors": [{"code": 400, "msg": "bad query " * 300}]}
    path = tmp_path / "trace.json.gz"
    path.write_bytes(gzip.compress(json.dumps(answer).encode())[:-10])
    with pytest.raises(InputError) as refused:
        load_telemetry(traces=path)
    assert str(refused.value) == (f"{path}: cannot read as a Jaeger answer: the gzip stream ends early: the file is "
                                  "cut short (a copy or download that did not finish?)")
