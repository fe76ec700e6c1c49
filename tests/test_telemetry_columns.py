"""Column auto-detection by the usual names, and `--map role=column` overrides."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from incidentlens.errors import InputError
from incidentlens.telemetry import load_telemetry, parse_mapping

TIME_TEXT = "2024-05-01T10:00:00Z"
TIME_NANOS = 1714557600 * 10**9


def write_jsonl(path: Path, records: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def one_log(tmp_path: Path, record: dict, mapping: dict[str, str] | None = None) -> dict:
    store = load_telemetry(logs=write_jsonl(tmp_path / "logs.jsonl", [record]), mapping=mapping)
    return store.fetch("SELECT ts::VARCHAR AS ts, service, level, message FROM logs").to_pylist()[0]


@pytest.mark.parametrize("name", ["ts", "time", "timestamp", "@timestamp", "Timestamp", "TimeStamp", "datetime"])
def test_time_column_names(tmp_path: Path, name: str) -> None:
    assert one_log(tmp_path, {name: TIME_TEXT, "message": "m"})["ts"] == "2024-05-01 10:00:00"


def test_time_unix_nano(tmp_path: Path) -> None:
    assert one_log(tmp_path, {"TimeUnixNano": TIME_NANOS, "message": "m"})["ts"] == "2024-05-01 10:00:00"


@pytest.mark.parametrize("name", ["service", "service_name", "service.name", "ServiceName", "app", "application",
                                  "job"])
def test_service_column_names(tmp_path: Path, name: str) -> None:
    assert one_log(tmp_path, {"ts": TIME_TEXT, name: "checkout", "message": "m"})["service"] == "checkout"


@pytest.mark.parametrize("name", ["PodName", "pod"])
def test_pod_column_names_map_to_the_service(tmp_path: Path, name: str) -> None:
    record = {"ts": TIME_TEXT, name: "checkout-866bd68c97-xcqfx", "message": "m"}
    assert one_log(tmp_path, record)["service"] == "checkout"


@pytest.mark.parametrize("name", ["level", "severity", "severity_text", "lvl", "loglevel", "LEVEL", "Severity",
                                  "SeverityText", "LogLevel"])
def test_level_column_names_in_any_case(tmp_path: Path, name: str) -> None:
    assert one_log(tmp_path, {"ts": TIME_TEXT, name: "warning", "message": "m"})["level"] == "WARN"


@pytest.mark.parametrize("name", ["message", "msg", "body", "log", "Log", "Content"])
def test_message_column_names(tmp_path: Path, name: str) -> None:
    assert one_log(tmp_path, {"ts": TIME_TEXT, name: "disk full"})["message"] == "disk full"


def test_a_splunk_search_exported_as_csv_reads_its_raw_events(tmp_path: Path) -> None:
    # it was "no message column"
    path = tmp_path / "splunk.csv"
    path.write_text('"_time","host","source","sourcetype","_raw"\n"2024-05-01T12:00:00.000+0200","web1",'
                    '"/var/log/payments.log","payments","2024-05-01 10:00:00 ERROR card declined"\n')
    assert load_telemetry(logs=path).fetch("SELECT ts::VARCHAR AS ts, level, message FROM logs").to_pylist() == [
        {"ts": "2024-05-01 10:00:00", "level": "ERROR", "message": "2024-05-01 10:00:00 ERROR card declined"}]


@pytest.mark.parametrize("message", ["LogMessage", "LogEntry"])  # ContainerLogV2's, ContainerLog's
def test_azure_monitors_container_logs_read_their_time_and_message(tmp_path: Path, message: str) -> None:
    # `az monitor log-analytics query ... -o json`: it was "no time column", then "no message column"
    record = {"TimeGenerated": "2024-05-01T10:00:00.000Z", "PodName": "payments-7d9f8b6c5d-x2x9q",
              message: "ERROR card declined", "LogSource": "stderr"}
    assert one_log(tmp_path, record) == {"ts": "2024-05-01 10:00:00", "service": "payments", "level": "ERROR",
                                         "message": "ERROR card declined"}


def test_mapping_overrides_every_log_role(tmp_path: Path) -> None:
    record = {"ts": "not used", "when": TIME_TEXT, "component": "db", "sev": "err", "text": "boom", "msg": "x"}
    mapping = {"time": "when", "service": "component", "level": "sev", "message": "text"}
    assert one_log(tmp_path, record, mapping) == {"ts": "2024-05-01 10:00:00", "service": "db", "level": "ERROR",
                                                  "message": "boom"}


def test_mapping_metric_and_value_selects_long_form(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "metrics.jsonl", [{"at": TIME_TEXT, "series": "rps", "reading": "12.5"}])
    store = load_telemetry(metrics=path, mapping={"time": "at", "metric": "series", "value": "reading"})
    assert store.fetch("SELECT service, metric, value FROM metrics").to_pylist() == [
        {"service": "global", "metric": "rps", "value": 12.5}]


def test_a_grafana_export_with_its_series_as_rows_is_read_in_long_form(tmp_path: Path) -> None:
    # read wide, every series' values were one series 'Value' (duplicated times averaged: p95 and CPU mixed)
    path = tmp_path / "grafana.csv"
    path.write_text('"Series","Time","Value"\n"payments_p95","2024-05-01 10:00:00",52\n'
                    '"cpu_seconds","2024-05-01 10:00:00",0.2\n')
    assert load_telemetry(metrics=path).fetch("SELECT metric, value FROM metrics").to_pylist() == [
        {"metric": "payments_p95", "value": 52.0}, {"metric": "cpu_seconds", "value": 0.2}]


UNITS = "export the values without units (Grafana: Formatted data off)"


def test_a_metric_written_with_its_unit_is_named_not_left_aside_unsaid(tmp_path: Path) -> None:
    # Grafana's CSV with "Formatted data" on: `checkout p95` was kept as text beside the metrics, nothing said
    path = tmp_path / "grafana.csv"
    path.write_text('"Time","payments p95","checkout p95"\n"2024-05-01 10:00:00",52,"20 ms"\n')
    store = load_telemetry(metrics=path)
    assert store.fetch("SELECT metric, value FROM metrics").to_pylist() == [{"metric": "payments p95", "value": 52.0}]
    assert store.warnings == [f"{path}: column 'checkout p95' holds numbers written with a unit ('20 ms'), not read "
                              f"as a metric: {UNITS}"]


def test_metrics_all_written_with_their_units_are_refused_with_what_to_do(tmp_path: Path) -> None:
    # it was "no metric columns" with advice to map columns that hold no numbers either
    path = tmp_path / "grafana.csv"
    path.write_text('"Time","payments p95"\n"2024-05-01 10:00:00","52 ms"\n')
    with pytest.raises(InputError) as refused:
        load_telemetry(metrics=path)
    assert str(refused.value).endswith(f"; column 'payments p95' holds numbers written with a unit ('52 ms'), not "
                                       f"read as a metric: {UNITS}")


def test_a_value_mapped_to_a_column_of_no_numbers_is_refused_not_read_as_wide_form(tmp_path: Path) -> None:
    # `--map value=service` read the file in wide form, every metric of a service averaged into one series 'value'
    path = write_jsonl(tmp_path / "metrics.jsonl", [{"ts": TIME_TEXT, "service": "api", "metric": "rps", "value": 3}])
    with pytest.raises(InputError) as refused:
        load_telemetry(metrics=path, mapping={"value": "service"})
    assert str(refused.value) == (f"{path}: --map value=service: column 'service' holds no numbers (row 1: 'api'); "
                                  "the value column is the long form's numbers (beside --map metric=COLUMN)")


def test_mapping_span_roles(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "spans.jsonl", [{"tid": "t", "sid": "s", "up": "p", "svc": "api", "op": "GET",
                                                   "began": TIME_TEXT, "took_ms": 12, "outcome": "error"}])
    mapping = {"trace_id": "tid", "span_id": "sid", "parent_id": "up", "service": "svc", "operation": "op",
               "start": "began", "duration": "took_ms", "status": "outcome"}
    store = load_telemetry(traces=path, mapping=mapping)
    assert store.fetch("SELECT trace_id, span_id, parent_id, service, operation, start_ts::VARCHAR AS start, "
                       "duration_ms, is_error FROM spans").to_pylist() == [
        {"trace_id": "t", "span_id": "s", "parent_id": "p", "service": "api", "operation": "GET",
         "start": "2024-05-01 10:00:00", "duration_ms": 12.0, "is_error": True}]


def test_a_mapping_applies_only_where_the_column_exists(tmp_path: Path) -> None:
    metrics = write_jsonl(tmp_path / "metrics.jsonl", [{"when": TIME_TEXT, "rps": 1}])
    logs = write_jsonl(tmp_path / "logs.jsonl", [{"ts": TIME_TEXT, "message": "m"}])
    store = load_telemetry(metrics=metrics, logs=logs, mapping={"time": "when"})
    assert store.time_range() is not None


def test_parse_mapping() -> None:
    assert parse_mapping(["time=when", "message = text", "service=service.name"]) == {
        "time": "when", "message": "text", "service": "service.name"}
    assert parse_mapping(None) == {}


@pytest.mark.parametrize(("item", "error"), [
    ("time", "--map 'time': expected role=column, e.g. --map time=when"),
    ("=when", "--map '=when': expected role=column, e.g. --map time=when"),
    ("colour=red", "--map 'colour=red': unknown role 'colour'; roles are time, service, level, message"),
])
def test_parse_mapping_rejects_bad_items(item: str, error: str) -> None:
    with pytest.raises(InputError) as caught:
        parse_mapping([item])
    assert str(caught.value).startswith(error)


@pytest.mark.parametrize("header", ["Timestamp (UTC)", "time_utc", "ts_utc", "DateTime UTC"])
def test_a_time_header_naming_its_zone_is_the_time(tmp_path: Path, header: str) -> None:
    # a spreadsheet's or an export's header: it was "no time column (looked for ts, time, ...)"
    path = tmp_path / "metrics.csv"
    path.write_text(f'"{header}",service,metric,value\n{TIME_TEXT},api,rps,1\n')
    store = load_telemetry(metrics=path)
    assert store.fetch("SELECT ts::VARCHAR AS ts FROM metrics").to_pylist() == [{"ts": "2024-05-01 10:00:00"}]
