"""JSON records whose fields are objects (ECS, Filebeat, OpenTelemetry's resource) are read by the fields' dotted
names for metrics, spans and events as for logs: `{"service": {"name": "api"}}` is service `api`, not the text
`{"name": "api"}` and not `global`."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from incidentlens.errors import InputError
from incidentlens.telemetry import load_telemetry


def write_lines(path: Path, records: list[dict]) -> Path:
    path.write_text("".join(json.dumps(record) + "\n" for record in records))
    return path


def test_metrics_whose_service_and_metric_are_objects_are_read_by_their_fields(tmp_path: Path) -> None:
    path = write_lines(tmp_path / "metrics.jsonl", [
        {"@timestamp": f"2024-05-01T10:0{m}:00Z", "service": {"name": "api"},
         "metric": {"name": "p95_ms", "value": 100 + m}} for m in range(3)])
    store = load_telemetry(metrics=path)
    assert store.warnings == []
    assert store.fetch("SELECT service, metric, value FROM metrics ORDER BY ts").to_pylist() == [
        {"service": "api", "metric": "p95_ms", "value": 100.0 + m} for m in range(3)]
    # the objects' columns, which hold nothing else, are not kept beside their fields (as `source_service`)
    assert store.fetch("SELECT * FROM metrics").column_names == ["ts", "service", "metric", "value", "pod"]


def test_opentelemetrys_resource_service_name_names_the_service_of_metrics_and_spans(tmp_path: Path) -> None:
    # it was read as service `global` (the column `resource` is no service name), with no word said
    resource = {"service.name": "checkout"}
    metrics = write_lines(tmp_path / "metrics.jsonl", [
        {"ts": "2024-05-01T10:00:00Z", "resource": resource, "name": "p95_ms", "value": 12}])
    spans = write_lines(tmp_path / "spans.jsonl", [
        {"trace_id": "t1", "span_id": "s1", "parent_id": None, "resource": resource, "name": "GET /cart",
         "start": "2024-05-01T10:00:00Z", "duration_ms": 8}])
    store = load_telemetry(metrics=metrics, traces=spans)
    assert store.fetch("SELECT service, metric FROM metrics").to_pylist() == [{"service": "checkout",
                                                                               "metric": "p95_ms"}]
    assert store.fetch("SELECT service, operation FROM spans").to_pylist() == [{"service": "checkout",
                                                                                "operation": "GET /cart"}]


def test_a_column_holding_objects_and_strings_reads_the_objects_fields_and_fails_on_none(tmp_path: Path) -> None:
    # json_extract ran on the string `"web"` and failed the whole load, logs included
    records = [{"ts": f"2024-05-01T10:0{m}:00Z", "service": {"name": "api"} if m % 2 else "web", "message": "ok",
                "metric": "rps", "value": m} for m in range(4)]
    path = write_lines(tmp_path / "both.jsonl", records)
    store = load_telemetry(metrics=path, logs=path)
    # the log lines and the metrics keep the plain names too (they were NULL: the metrics' objects were flattened
    # into their fields, the column itself left out, before any role was chosen)
    assert store.fetch("SELECT service FROM logs ORDER BY ts").column("service").to_pylist() == [
        "web", "api", "web", "api"]
    assert store.fetch("SELECT service FROM metrics ORDER BY ts").column("service").to_pylist() == [
        "web", "api", "web", "api"]
    assert store.warnings == []


def test_a_metric_name_written_as_an_object_in_some_records_keeps_the_plain_ones(tmp_path: Path) -> None:
    # the flattened `metric.name` was read, and `"metric": "rps"` lost (NULL); then the other way round
    records = [{"ts": f"2024-05-01T10:0{m}:00Z", "service": "api", "metric": {"name": "p95_ms"} if m % 2 else "rps",
                "value": m} for m in range(4)]
    store = load_telemetry(metrics=write_lines(tmp_path / "metrics.jsonl", records))
    assert store.fetch("SELECT metric, value FROM metrics ORDER BY ts").to_pylist() == [
        {"metric": "p95_ms" if m % 2 else "rps", "value": float(m)} for m in range(4)]
    assert store.warnings == []


def test_a_metric_value_written_as_an_object_in_some_records_is_counted_not_dropped_unsaid(tmp_path: Path) -> None:
    # which of the object's fields is the value is not known: its rows read NULL, and nothing said so
    records = [{"ts": f"2024-05-01T10:0{m}:00Z", "service": "api", "metric": "p95_ms",
                "value": {"avg": m} if m % 2 else m} for m in range(4)]
    path = write_lines(tmp_path / "metrics.jsonl", records)
    store = load_telemetry(metrics=path)
    assert store.fetch("SELECT value FROM metrics ORDER BY ts").column(0).to_pylist() == [0.0, None, 2.0, None]
    assert store.warnings == [f"{path}: column 'value': 2 rows holding a JSON object, not a number, kept as NULL "
                              "(its fields: value.avg)"]


def test_a_metric_value_written_as_an_object_in_every_record_is_refused_with_what_to_map(tmp_path: Path) -> None:
    # read wide, every metric's values became one series `value.avg` (p95_ms and cpu mixed), `metric` left aside
    records = [{"ts": f"2024-05-01T10:0{m}:00Z", "service": "api", "metric": metric, "value": {"avg": m, "max": m}}
               for m in range(3) for metric in ("p95_ms", "cpu")]
    path = write_lines(tmp_path / "metrics.jsonl", records)
    with pytest.raises(InputError) as refused:
        load_telemetry(metrics=path)
    assert str(refused.value) == (f"{path}: column 'value' holds a JSON object, not a number, in every row (its "
                                  "fields: value.avg, value.max): say which field is the value, e.g. --map "
                                  "value=value.avg")
    store = load_telemetry(metrics=path, mapping={"value": "value.max"})
    assert store.fetch("SELECT metric, max(value) AS top FROM metrics GROUP BY metric ORDER BY metric").to_pylist() \
        == [{"metric": "cpu", "top": 2.0}, {"metric": "p95_ms", "top": 2.0}]


def test_a_wide_metric_written_as_an_object_in_some_records_is_counted(tmp_path: Path) -> None:
    # its object's field is a series of its own (`p95_ms.avg`); the rows it leaves NULL in `p95_ms` went unsaid
    records = [{"ts": f"2024-05-01T10:0{m}:00Z", "service": "api", "p95_ms": {"avg": m} if m % 2 else m}
               for m in range(4)]
    path = write_lines(tmp_path / "metrics.jsonl", records)
    store = load_telemetry(metrics=path)
    assert store.fetch("SELECT metric, value FROM metrics WHERE value IS NOT NULL ORDER BY ts").to_pylist() == [
        {"metric": "p95_ms", "value": 0.0}, {"metric": "p95_ms.avg", "value": 1.0},
        {"metric": "p95_ms", "value": 2.0}, {"metric": "p95_ms.avg", "value": 3.0}]
    assert store.warnings == [f"{path}: column 'p95_ms': 2 rows holding a JSON object, not a number, kept as NULL "
                              "(its fields, series of their own: p95_ms.avg)"]


def test_a_span_whose_service_is_an_object_in_some_records_keeps_the_plain_ones(tmp_path: Path) -> None:
    records = [{"trace_id": "t1", "span_id": f"s{m}", "service": {"name": "api"} if m % 2 else "web",
                "name": "GET /", "start": f"2024-05-01T10:0{m}:00Z", "duration_ms": 5} for m in range(4)]
    store = load_telemetry(traces=write_lines(tmp_path / "spans.jsonl", records))
    assert store.fetch("SELECT service FROM spans ORDER BY start_ts").column("service").to_pylist() == [
        "web", "api", "web", "api"]


def test_a_level_column_holding_one_object_keeps_every_other_lines_level(tmp_path: Path) -> None:
    # one `"level": {...}` left the column out: every line's level was read from its message, and the errors of
    # lines that say none there were no longer counted
    records = [{"ts": f"2024-05-01T10:0{m}:00Z", "service": "api", "level": {"code": 3} if m == 1 else "ERROR",
                "message": "payment declined"} for m in range(4)]
    store = load_telemetry(logs=write_lines(tmp_path / "levels.jsonl", records))
    assert store.fetch("SELECT level FROM logs ORDER BY ts").column("level").to_pylist() == [
        "ERROR", None, "ERROR", "ERROR"]


def test_a_time_inside_an_object_is_not_looked_for_and_the_error_names_the_columns(tmp_path: Path) -> None:
    path = write_lines(tmp_path / "metrics.jsonl", [
        {"event": {"time": "2024-05-01T10:00:00Z"}, "service": {"name": "api"}, "metric": {"name": "m", "value": 1}}])
    code = "from incidentlens.cli import main; main()"
    result = subprocess.run([sys.executable, "-c", code, "detect", "--metrics", str(path)], capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 2 and result.stderr.count("\n") == 1, result.stderr
    assert result.stderr.startswith(f"error: {path}: no time column (looked for ts, time, ")
    # --map cannot name a field inside an object: the error says how to lift them
    assert result.stderr.endswith(
        "its columns: event, metric.name, metric.value, service.name; its time, 'time', sits inside 'event', an "
        f"object: lift its fields into each record, e.g. jq -c '. + .event' {path} > records.jsonl\n")


def test_an_elasticsearch_search_answer_saved_whole_says_where_its_records_are(tmp_path: Path) -> None:
    # curl .../_search > logs.json: it said 'use --map time=COLUMN', which cannot name a field of hits.hits[]._source
    hits = [{"_index": "logs-app", "_id": str(n), "_score": None,
             "_source": {"@timestamp": f"2024-05-01T10:0{n}:00Z", "message": f"request {n}"}} for n in range(2)]
    path = tmp_path / "logs.json"
    path.write_text(json.dumps({"took": 3, "timed_out": False, "_shards": {"total": 1, "failed": 0},
                                "hits": {"total": {"value": 2, "relation": "eq"}, "max_score": None, "hits": hits}},
                               indent=2))
    with pytest.raises(InputError) as refused:
        load_telemetry(logs=path)
    assert str(refused.value).endswith(
        "its columns: took, timed_out, _shards, hits; an Elasticsearch or OpenSearch _search answer: its records sit "
        f"in hits.hits, each under _source: give them one a line, e.g. jq -c '.hits.hits[]._source' {path} > "
        "records.jsonl")
