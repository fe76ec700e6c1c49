"""The real Nezha TrainTicket files (../shared/datasets) load into the canonical views; skipped when absent."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest

from incidentlens.telemetry import load_telemetry

DAY = "nezha-trainticket/rca_data/2023-01-29"


@pytest.fixture(scope="module")
def nezha(datasets: Path) -> Path:
    day = datasets / DAY
    if not day.is_dir():
        pytest.skip(f"Nezha data not found at {day}")
    return day


def test_a_nezha_pod_metric_file(nezha: Path) -> None:
    path = nezha / "metric" / "ts-contacts-service-866bd68c97-xcqfx_metric.csv"
    first_time = path.read_text().splitlines()[1].split(",")[0]  # "2023-01-29 08:41:09.858280123 +0000 UTC m=+..."
    store = load_telemetry(metrics=path)
    assert store.columns("metrics")[:5] == ["ts", "service", "metric", "value", "pod"]  # `PodName`, as `pod`
    assert store.fetch("SELECT DISTINCT pod FROM metrics").column("pod").to_pylist() == [
        "ts-contacts-service-866bd68c97-xcqfx"]
    summary = store.fetch(
        "SELECT DISTINCT service, min(ts) OVER () AS first, count(DISTINCT metric) OVER () AS metrics FROM metrics"
    ).to_pylist()
    # `Time` is Go's time.String() form; it parses, and `TimeStamp` (epoch seconds) agrees with it.
    assert summary == [{"service": "ts-contacts-service",
                        "first": datetime.strptime(first_time[:26], "%Y-%m-%d %H:%M:%S.%f"), "metrics": 19}]
    assert store.fetch("SELECT count(*) AS n FROM metrics WHERE abs(epoch(ts) - TimeStamp) >= 1").to_pylist() == [
        {"n": 0}]
    # Prometheus writes NaN for a latency quantile of a minute without requests: counted, kept as NULL.
    assert [w.split(": column ")[1].split(":")[0] for w in store.warnings] == [
        "'PodServerLatencyP90(s)'", "'PodServerLatencyP95(s)'", "'PodServerLatencyP99(s)'"]
    assert all("rows not finite" in w and w.endswith("kept as NULL") for w in store.warnings)


def test_a_nezha_log_file(nezha: Path) -> None:
    store = load_telemetry(logs=nezha / "log" / "08_43_log.csv.gz")
    assert store.columns("logs")[:4] == ["ts", "service", "level", "message"]
    first = store.fetch("SELECT ts, service, level, message FROM logs ORDER BY ts LIMIT 1").to_pylist()[0]
    assert first["ts"].date() == datetime(2023, 1, 29).date()
    pods = store.fetch("SELECT DISTINCT service, PodName FROM logs").to_pylist()
    assert all(row["PodName"].startswith(row["service"] + "-") for row in pods)
    assert {"service": "ts-travel-service", "PodName": "ts-travel-service-64469b5b48-25zj6"} in pods
    assert not first["message"].startswith("{") and not first["message"].endswith("\n")
    levels = {row["level"] for row in store.fetch("SELECT DISTINCT level FROM logs").to_pylist()}
    assert "INFO" in levels and levels <= {"TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL", None}
    pods_left = store.fetch("SELECT count(*) AS n FROM logs WHERE regexp_matches(service, '-[a-z0-9]{5}$')")
    assert pods_left.to_pylist() == [{"n": 0}]


def test_a_nezha_trace_file(nezha: Path) -> None:
    store = load_telemetry(traces=nezha / "trace" / "08_43_trace.csv.gz")
    assert store.columns("spans")[:8] == ["trace_id", "span_id", "parent_id", "service", "operation", "start_ts",
                                          "duration_ms", "is_error"]
    check = store.fetch(
        "SELECT count(*) FILTER (parent_id IS NULL) AS roots, count(*) FILTER (parent_id = 'root') AS literal_root, "
        "max(abs(duration_ms - (EndTimeUnixNano - epoch_ns(start_ts)) / 1e6)) AS worst_ms FROM spans"
    ).to_pylist()[0]
    assert check["roots"] > 0 and check["literal_root"] == 0
    # Duration (microseconds) agrees with end - start (nanoseconds) to within a microsecond or two.
    assert check["worst_ms"] < 0.01


def test_a_nezha_log_minute_with_two_broken_quotes_counts_them_among_all_its_lines(nezha: Path) -> None:
    # two lines of 10_06 hold a message glued to another's tail; a lenient reader's count said "2 of 2,000 lines"
    path = nezha / "log" / "10_06_log.csv.gz"
    store = load_telemetry(logs=path)
    assert store.fetch("SELECT count(*) AS n FROM logs").to_pylist() == [{"n": 2127}]
    assert store.warnings == [f"{path}: 2 of 2,129 records of 10_06_log.csv.gz unreadable (the first on line 631), "
                              "set aside"]
