"""Kubernetes events (`kubectl get events -o json`, or one event a line) read as log lines.

Every fixture is written here, shaped as kubectl writes it: a List, its keys sorted, pretty-printed.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import pytest

from incidentlens.errors import InputError
from incidentlens.telemetry import load_telemetry
from test_telemetry_cli import incidentlens


def event(reason: str, message: str, kind: str = "Pod", name: str = "cart-7d9f8b6c5d-x2k4q",
          type_: str = "Normal", last: str | None = "2024-05-01T10:00:00Z", event_time: str | None = None,
          first: str | None = None) -> dict[str, object]:
    """One core/v1 Event as the API serves it (times kubectl shows as null kept null)."""
    return {"apiVersion": "v1", "count": 1, "eventTime": event_time, "firstTimestamp": first or last,
            "involvedObject": {"apiVersion": "v1", "kind": kind, "name": name, "namespace": "shop",
                               "resourceVersion": "81", "uid": "4f1c"},
            "kind": "Event", "lastTimestamp": last, "message": message,
            "metadata": {"creationTimestamp": "2024-05-01T09:59:00Z", "name": f"{name}.17c", "namespace": "shop"},
            "reason": reason, "reportingComponent": "", "reportingInstance": "",
            "source": {"component": "kubelet", "host": "node-1"}, "type": type_}


def kubectl_json(path: Path, events: list[dict[str, object]]) -> Path:
    """What `kubectl get events -o json > path` writes."""
    path.write_text(json.dumps({"apiVersion": "v1", "items": events, "kind": "List",
                                "metadata": {"resourceVersion": ""}}, indent=4, sort_keys=True) + "\n")
    return path


def test_kubectl_events_are_log_lines_of_the_service_of_their_object(tmp_path: Path) -> None:
    # it was "no time column (looked for ...); its columns: apiVersion, items, kind, metadata"
    path = kubectl_json(tmp_path / "events.json", [
        event("Pulled", "Container image \"cart:1.4\" already present on machine"),
        event("Unhealthy", "Readiness probe failed: HTTP probe failed with statuscode: 503", type_="Warning",
              last="2024-05-01T10:01:00Z"),
        event("SuccessfulCreate", "Created pod: cart-7d9f8b6c5d-x2k4q", kind="ReplicaSet", name="cart-7d9f8b6c5d",
              last="2024-05-01T10:02:00Z"),
        event("ScalingReplicaSet", "Scaled up replica set cart-7d9f8b6c5d to 3", kind="Deployment", name="cart",
              last="2024-05-01T10:03:00Z"),
        event("Scheduled", "Successfully assigned shop/db-0 to node-2", name="db-0", last=None,
              event_time="2024-05-01T10:04:00.250000Z"),
    ])

    store = load_telemetry(logs=path)

    rows = store.fetch("SELECT ts, service, level, message, object FROM logs ORDER BY ts").to_pylist()
    assert [(r["service"], r["level"], r["message"]) for r in rows] == [
        ("cart", "INFO", "Pulled: Container image \"cart:1.4\" already present on machine"),
        ("cart", "WARN", "Unhealthy: Readiness probe failed: HTTP probe failed with statuscode: 503"),
        ("cart", "INFO", "SuccessfulCreate: Created pod: cart-7d9f8b6c5d-x2k4q"),
        ("cart", "INFO", "ScalingReplicaSet: Scaled up replica set cart-7d9f8b6c5d to 3"),
        ("db", "INFO", "Scheduled: Successfully assigned shop/db-0 to node-2")]
    assert rows[0]["object"] == "Pod/cart-7d9f8b6c5d-x2k4q"
    assert rows[-1]["ts"] == datetime(2024, 5, 1, 10, 4, 0, 250000)  # its eventTime: no lastTimestamp
    assert store.warnings == []


def test_an_event_with_no_time_is_left_out_and_counted(tmp_path: Path) -> None:
    path = kubectl_json(tmp_path / "events.json", [
        event("Pulled", "pulled", last="2024-05-01T10:00:00Z"),
        event("Killing", "Stopping container cart", last=None),
        event("Pulled", "pulled", last="2024-05-01T10:01:00Z"),
    ])

    store = load_telemetry(logs=path)

    assert store.fetch("SELECT count(*) AS n FROM logs").to_pylist() == [{"n": 2}]
    assert store.warnings == [f"{path}: 1 of 3 events has no time (no lastTimestamp, eventTime or "
                              "firstTimestamp), left out; the first, event 2"]


def test_events_one_a_line_are_read_alike_and_a_broken_line_set_aside(tmp_path: Path) -> None:
    # `kubectl get events -o json | jq -c '.items[]'`, as an events exporter writes them; it read eventTime as the
    # time, null in all but the scheduler's: '2 rows have no time, left out'
    lines = [json.dumps(event("Pulled", "pulled", last=f"2024-05-01T10:0{minute}:00Z")) for minute in range(4)]
    path = tmp_path / "events.jsonl"
    path.write_text("\n".join([*lines[:2], '{"kind": "Event", "involvedObj', *lines[2:]]) + "\n")

    store = load_telemetry(logs=path)

    assert store.fetch("SELECT count(*) AS n FROM logs").to_pylist() == [{"n": 4}]
    assert [rows.note() for rows in store.rejected] == ["1 of 5 records of events.jsonl unreadable (line 3)"]


def test_events_one_a_line_are_said_by_their_file_line(tmp_path: Path) -> None:
    # a blank line and a broken one above them: the event with no time was 'event 2' (its number among the good
    # lines), the bad time 'row 3', and the entries' lines were those numbers; a bad time was a DuckDB traceback
    lines = [json.dumps(event("Pulled", "pulled")), "", '{"kind": "Event", "involvedObj',
             json.dumps(event("Killing", "stopping", last=None)), json.dumps(event("Started", "started", last="soon")),
             json.dumps(event("Pulled", "pulled", last="2024-05-01T10:05:00Z"))]
    path = tmp_path / "events.jsonl"
    path.write_text("\n".join(lines) + "\n")

    store = load_telemetry(logs=path)

    assert store.warnings == [
        f"{path}: 1 of 4 events has no time (no lastTimestamp, eventTime or firstTimestamp), left out; the first, "
        "line 4",
        f"{path}: column 'ts': 1 row with a bad time left out; the first, row 5: cannot parse 'soon' as a time (the "
        "column's other values read as ISO-8601 text)"]
    assert store.fetch(f"SELECT line FROM ({store.log_origins_sql()})").column("line").to_pylist() == [1, 6]


def test_an_event_of_a_list_with_a_bad_time_is_said_by_its_number_in_the_list(tmp_path: Path) -> None:
    # its number among the events with a time (row 2) was said; the List's third event is the one
    path = kubectl_json(tmp_path / "events.json", [
        event("Pulled", "pulled"), event("Killing", "stopping", last=None), event("Started", "started", last="soon"),
        event("Pulled", "pulled", last="2024-05-01T10:05:00Z")])

    assert load_telemetry(logs=path).warnings[1] == (
        f"{path}: column 'ts': 1 row with a bad time left out; the first, row 3: cannot parse 'soon' as a time (the "
        "column's other values read as ISO-8601 text)")


def test_an_event_seen_many_times_says_how_often_since_when_in_its_one_line(tmp_path: Path) -> None:
    # seventeen back-offs were one WARN line like a single one: the count was in a column no surge reads
    backoff = {**event("BackOff", "Back-off restarting failed container", type_="Warning",
                       first="2024-05-01T10:01:02Z", last="2024-05-01T10:09:00Z"), "count": 17}
    # events.k8s.io/v1's: its count in series, its first time its eventTime, its last the series' (was its time)
    series = {"apiVersion": "events.k8s.io/v1", "eventTime": "2024-05-01T10:02:00.000000Z", "kind": "Event",
              "note": "Readiness probe failed", "reason": "Unhealthy", "type": "Warning",
              "regarding": {"kind": "Pod", "name": "cart-7d9f8b6c5d-x2k4q", "namespace": "shop"},
              "series": {"count": 4, "lastObservedTime": "2024-05-01T10:08:00.000000Z"}}
    path = kubectl_json(tmp_path / "events.json", [backoff, series, event("Pulled", "pulled")])

    rows = load_telemetry(logs=path).fetch("SELECT ts, message FROM logs ORDER BY ts").to_pylist()

    assert rows == [
        {"ts": datetime(2024, 5, 1, 10, 0), "message": "Pulled: pulled"},
        {"ts": datetime(2024, 5, 1, 10, 8), "message": "Unhealthy: Readiness probe failed (x4 since "
                                                       "2024-05-01T10:02:00.000000Z)"},
        {"ts": datetime(2024, 5, 1, 10, 9), "message": "BackOff: Back-off restarting failed container (x17 since "
                                                       "2024-05-01T10:01:02Z)"}]


def test_the_lists_items_as_an_array_are_read_alike(tmp_path: Path) -> None:
    # `kubectl get events -o json | jq '.items'`: read as records, eventTime (null but for the scheduler's) was the time
    path = tmp_path / "events.json"
    path.write_text(json.dumps([event("Pulled", "pulled", last=f"2024-05-01T10:0{minute}:00Z") for minute in range(3)],
                               indent=2))

    store = load_telemetry(logs=path)

    assert store.fetch("SELECT count(*) AS n FROM logs").to_pylist() == [{"n": 3}]
    assert store.warnings == []


def test_events_given_as_deploys_are_refused_with_where_they_go(tmp_path: Path) -> None:
    # a product decision: an event is a line of what Kubernetes did, not a change someone made
    path = kubectl_json(tmp_path / "events.json", [event("Pulled", "pulled")])

    with pytest.raises(InputError) as refused:
        load_telemetry(events=path)

    assert str(refused.value) == f"{path}: holds Kubernetes events, read as log lines: pass it with --logs"


def test_analyze_finds_the_new_warning_among_kubectl_events(tmp_path: Path) -> None:
    metrics = tmp_path / "metrics.csv"
    metrics.write_text("ts,service,metric,value\n" + "".join(
        f"2024-05-01T10:{minute:02d}:00Z,cart,p95_ms,{120 if minute < 30 else 900}\n" for minute in range(40)))
    pulled = [event("Pulled", "pulled", last=f"2024-05-01T10:{minute:02d}:10Z") for minute in range(0, 30, 3)]
    unhealthy = [event("Unhealthy", "Readiness probe failed", type_="Warning",
                       last=f"2024-05-01T10:{minute:02d}:{second:02d}Z")
                 for minute in range(30, 40) for second in (5, 35)]
    logs = kubectl_json(tmp_path / "events.json", pulled + unhealthy)

    result = incidentlens("analyze", "--metrics", str(metrics), "--logs", str(logs), "--at", "2024-05-01T10:30:00Z",
                          "--onset", "at", "--json", "--out", str(tmp_path / "out"))

    assert result.returncode == 0, result.stderr
    templates = json.loads(result.stdout)["templates"]
    assert [(t["template"], t["status"], t["services"]) for t in templates] == [
        ("Unhealthy: Readiness probe failed", "new", ["cart"])]


def test_kubectls_list_of_nothing_says_it_holds_no_items(tmp_path: Path) -> None:
    # `kubectl get events -o json` where there are none; it was "no time column (...); its columns: apiVersion,
    # items, kind, metadata; use --map time=COLUMN"
    path = kubectl_json(tmp_path / "events.json", [])

    with pytest.raises(InputError) as refused:
        load_telemetry(logs=path)

    assert str(refused.value) == f"{path}: no items in it (kubectl's List of nothing)"


def test_kubectl_events_in_yaml_are_refused_saying_how_to_write_them(tmp_path: Path) -> None:
    # it read as lines of text with no time: "line format not recognised"
    path = tmp_path / "events.yaml"
    path.write_text("apiVersion: v1\nitems:\n- apiVersion: v1\n  count: 1\n  involvedObject:\n    kind: Pod\n"
                    "    name: cart-7d9f8b6c5d-x2k4q\n  kind: Event\n  lastTimestamp: \"2024-05-01T10:00:00Z\"\n"
                    "  message: pulled\n  reason: Pulled\n  type: Normal\nkind: List\n")

    with pytest.raises(InputError) as refused:
        load_telemetry(logs=path)

    assert str(refused.value) == (f"{path}: Kubernetes events in YAML, which IncidentLens does not read: write them "
                                  "as JSON (kubectl get events -o json)")


@pytest.mark.parametrize("header", ["LAST SEEN   TYPE      REASON      OBJECT                      MESSAGE",
                                    "NAMESPACE   LAST SEEN   TYPE      REASON      OBJECT          MESSAGE"])
def test_kubectls_table_of_events_is_refused_saying_its_times_are_ages(tmp_path: Path, header: str) -> None:
    # `kubectl get events > events.txt`: it read as lines with no time, "line format not recognised"
    path = tmp_path / "events.txt"
    path.write_text(f"{header}\n2m          Warning   Unhealthy   pod/cart-7d9f8b6c5d-x2k4q   Readiness probe "
                    "failed\n")

    with pytest.raises(InputError) as refused:
        load_telemetry(logs=path)

    assert str(refused.value) == (f"{path}: kubectl's table of events, whose times are ages (LAST SEEN), not times: "
                                  "write them as JSON (kubectl get events -o json)")


def test_an_event_whose_time_does_not_parse_is_left_out_and_its_row_named(tmp_path: Path) -> None:
    # finding the row to name read the file as a JSON file's records, whose columns are apiVersion, items, ...:
    # 'Binder Error: Referenced column "ts" not found', a traceback
    path = kubectl_json(tmp_path / "events.json", [event("Pulled", "pulled"), event("Pulled", "pulled", last="soon")])

    store = load_telemetry(logs=path)

    assert store.fetch("SELECT count(*) AS n FROM logs").to_pylist() == [{"n": 1}]
    assert any("1 row with a bad time left out; the first, row 2: cannot parse 'soon'" in w for w in store.warnings)
