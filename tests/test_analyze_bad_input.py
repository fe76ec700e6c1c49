"""`analyze` on awkward input: every case gives an answer with a stated reason, never a crash."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pytest
from typer.testing import CliRunner

from incidentlens.analysis import analyze
from incidentlens.analysis.detection import parse_time
from incidentlens.cli import app
from incidentlens.errors import InputError
from incidentlens.telemetry import load_telemetry

START = np.datetime64("2024-05-01T00:00:00", "s")


def write_metrics(path: Path, minutes: np.ndarray, values: dict[str, np.ndarray], service: str = "api") -> Path:
    """Long metrics CSV: one row per minute offset and metric."""
    ts = np.datetime_as_string(START + minutes.astype("timedelta64[m]"), unit="s")
    tables = [pa.table({"ts": [t + "Z" for t in ts], "service": [service] * len(ts), "metric": [name] * len(ts),
                        "value": series}) for name, series in values.items()]
    pacsv.write_csv(pa.concat_tables(tables), path)
    return path


def write_logs(path: Path, minutes: np.ndarray, level: str = "INFO", service: str = "api") -> Path:
    ts = np.datetime_as_string(START + minutes.astype("timedelta64[m]"), unit="s")
    pacsv.write_csv(pa.table({"ts": [t + "Z" for t in ts], "service": [service] * len(ts),
                              "level": [level] * len(ts), "message": ["GET /items 200"] * len(ts)}), path)
    return path


def incident_series(minutes: np.ndarray, start: int, end: int, seed: int = 3) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    hot = (minutes >= start) & (minutes < end)
    return {"latency_p95_ms": 150 + rng.normal(0, 5, len(minutes)) + hot * 800,
            "error_ratio": 0.01 + np.abs(rng.normal(0, 0.002, len(minutes))) + hot * 0.3}


def test_a_series_too_short_for_a_baseline_is_not_an_incident(tmp_path):
    minutes = np.arange(10)  # a baseline needs 12 points
    store = load_telemetry(metrics=write_metrics(tmp_path / "m.csv", minutes, incident_series(minutes, 5, 10)))
    result = analyze(store).to_dict()
    assert result["detected"] is False
    assert "too short" in result["reason"]
    assert result["incident_window"] is None and result["hypotheses"] == []
    assert result["evidence"], "the evidence still lists what was checked"


def test_a_constant_series_is_not_an_incident(tmp_path):
    minutes = np.arange(600)
    path = write_metrics(tmp_path / "m.csv", minutes, {"latency_p95_ms": np.full(600, 120.0)})
    result = analyze(load_telemetry(metrics=path)).to_dict()
    assert result["detected"] is False
    assert "constant" in result["reason"]


def test_an_incident_at_the_very_start_has_no_baseline(tmp_path):
    minutes = np.arange(600)
    path = write_metrics(tmp_path / "m.csv", minutes, incident_series(minutes, 0, 60))
    result = analyze(load_telemetry(metrics=path)).to_dict()
    assert result["detected"] is False
    assert result["reason"]


def test_gaps_and_duplicated_timestamps_still_find_the_incident(tmp_path):
    minutes = np.arange(720)
    kept = minutes[(minutes % 17 != 0) | (minutes > 500)]  # gaps before the incident
    doubled = np.sort(np.concatenate([kept, kept[::50]]))  # some timestamps twice
    path = write_metrics(tmp_path / "m.csv", doubled, incident_series(doubled, 400, 460))
    logs = write_logs(tmp_path / "l.csv", minutes)
    result = analyze(load_telemetry(metrics=path, logs=logs)).to_dict()
    assert result["detected"] is True
    assert "06:40:00" in result["incident_window"]["start"]
    assert result["hypotheses"][0]["service"] == "api"


def test_an_incident_with_no_logs_in_its_window_is_explained_from_metrics(tmp_path):
    minutes = np.arange(720)
    metrics = write_metrics(tmp_path / "m.csv", minutes, incident_series(minutes, 400, 460))
    logs = write_logs(tmp_path / "l.csv", np.arange(0, 300))  # the logs stop long before the incident
    result = analyze(load_telemetry(metrics=metrics, logs=logs)).to_dict()
    assert result["detected"] is True
    assert result["hypotheses"][0]["service"] == "api"
    assert result["templates"] == [] and result["contributors"] == []
    listed = {e["id"] for e in result["evidence"]}
    assert set(result["hypotheses"][0]["supporting"]) <= listed


def test_logs_without_metrics_say_why_nothing_was_detected(tmp_path):
    logs = write_logs(tmp_path / "l.csv", np.arange(0, 300), level="ERROR")
    result = analyze(load_telemetry(logs=logs)).to_dict()
    assert result["detected"] is False and "metrics" in result["reason"]


def test_cli_reports_no_incident_plainly(tmp_path):
    minutes = np.arange(600)
    path = write_metrics(tmp_path / "m.csv", minutes, {"latency_p95_ms": np.full(600, 120.0)})
    result = CliRunner().invoke(app, ["analyze", "--metrics", str(path), "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "no incident found" in result.output
    assert json.loads((tmp_path / "analysis.json").read_text())["detected"] is False


def test_cli_bad_at_time_is_a_one_line_error(tmp_path):
    minutes = np.arange(600)
    path = write_metrics(tmp_path / "m.csv", minutes, incident_series(minutes, 400, 460))
    result = CliRunner().invoke(app, ["analyze", "--metrics", str(path), "--at", "yesterday", "--out", str(tmp_path)])
    assert result.exit_code != 0
    assert "--at" in str(result.exception)


def traffic_surge(tmp_path: Path):
    """A store of 12 h: 200 -> 500 requests a minute and CPU up for an hour from 06:40, errors and latency flat."""
    return steady_day(tmp_path, surge=True, seed=5)


def quiet_store(tmp_path: Path):
    """A store of 12 h of noise around a steady level, 1% of requests failing all day."""
    return steady_day(tmp_path, surge=False, seed=7)


def steady_day(tmp_path: Path, surge: bool, seed: int):
    """12 h of one service's requests, CPU, errors and latency around a steady level, with `surge`: 200 -> 500
    requests a minute and CPU up for an hour from 06:40."""
    minutes = np.arange(720)
    rng = np.random.default_rng(seed)
    busy = surge & (minutes >= 400) & (minutes < 460)
    values = {"request_rate": 200 + rng.normal(0, 4, 720) + busy * 300,
              "cpu_utilization": 0.4 + rng.normal(0, 0.01, 720) + busy * 0.3,
              "error_ratio": 0.01 + np.abs(rng.normal(0, 0.002, 720)),
              "latency_p95_ms": 150 + rng.normal(0, 5, 720)}
    return load_telemetry(metrics=write_metrics(tmp_path / "m.csv", minutes, values),
                          logs=write_logs(tmp_path / "l.csv", minutes))


def test_a_traffic_surge_without_errors_or_latency_is_load_not_an_incident(tmp_path):
    result = analyze(traffic_surge(tmp_path)).to_dict()
    assert result["detected"] is False
    assert result["reason"].startswith("only load moved") and "api/request_rate" in result["reason"]
    assert result["detection"]["series"], "what the detector saw is still reported"


def test_a_bigger_load_surge_does_not_hide_a_real_incident(tmp_path):
    minutes = np.arange(900)
    rng = np.random.default_rng(6)
    busy = (minutes >= 300) & (minutes < 420)  # a long, large traffic surge: the most severe window
    broken = (minutes >= 700) & (minutes < 740)  # later, a smaller real incident
    values = {"request_rate": 200 + rng.normal(0, 4, 900) + busy * 600,
              "cpu_utilization": 0.3 + rng.normal(0, 0.01, 900) + busy * 0.5,
              "error_ratio": 0.01 + np.abs(rng.normal(0, 0.002, 900)) + broken * 0.05,
              "latency_p95_ms": 150 + rng.normal(0, 5, 900) + broken * 100}
    store = load_telemetry(metrics=write_metrics(tmp_path / "m.csv", minutes, values),
                           logs=write_logs(tmp_path / "l.csv", minutes))
    result = analyze(store).to_dict()
    assert result["detected"] is True
    assert result["incident_window"]["start"].startswith("2024-05-01T11:40")
    assert any("set aside: only load moved" in e["title"] for e in result["evidence"])


@pytest.mark.parametrize("given", ["1714557600", "1714557600000", "1714557600.5"])
def test_an_alert_time_given_as_epoch_is_read_in_the_unit_its_size_says(given: str) -> None:
    # an alert's payload may give its time so (Datadog's last_triggered_at_epoch, ms); it was "cannot parse as a
    # time (use ISO-8601, ...)"
    assert parse_time(given).replace(microsecond=0) == datetime(2024, 5, 1, 10, 0, 0)


def test_a_date_written_as_digits_is_no_epoch_time() -> None:
    assert parse_time("20240501") == datetime(2024, 5, 1)  # ISO 8601's basic form, not 20,240,501 s after 1970


@pytest.mark.parametrize("given", ["2024050112", "202405011200", "20240501120000"])
def test_an_alert_time_in_compact_digits_is_not_misread_as_an_epoch(given: str) -> None:
    # 2024-05-01 12:00 written without separators, as logs and file names do: read as an epoch by its size, it was
    # 2034-02-20 (s), 1976-05-31 (ms) and 2611-05-26 (ms), an alert time no data holds, said nowhere
    with pytest.raises(InputError, match=r"reads as 2024-05-01 12:00 .*ISO-8601"):
        parse_time(given)


def test_an_epoch_whose_digits_are_no_plausible_date_is_still_an_epoch() -> None:
    # 12 digits, as 202405011200, but 'year 9783' is no date a user writes; 10, as 2024050112, but 'year 1901'
    assert parse_time("978307200000") == datetime(2001, 1, 1)
    assert parse_time("1901010100") == datetime(2030, 3, 29, 10, 21, 40)
