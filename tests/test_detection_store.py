"""`detect(store)` and `incidentlens detect`: incident windows over many series read from the store."""

from __future__ import annotations

import itertools
import json
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pytest
from typer.testing import CliRunner

from incidentlens.analysis.detection import LOGS_QUIET, NO_METRICS, detect
from incidentlens.cli import app
from incidentlens.errors import InputError
from incidentlens.telemetry import load_telemetry

DAY_START = datetime(2024, 5, 1)
MINUTES = 1440


def truth_window(directory: Path) -> tuple[datetime, datetime]:
    window = json.loads((directory / "truth.json").read_text())["window"]
    return tuple(datetime.fromisoformat(window[k].rstrip("Z")) for k in ("start", "end"))


def iou(a: tuple[datetime, datetime], b: tuple[datetime, datetime]) -> float:
    overlap = max(timedelta(0), min(a[1], b[1]) - max(a[0], b[0]))
    return overlap / (max(a[1], b[1]) - min(a[0], b[0]))


def write_long_metrics(path: Path, series: dict[str, np.ndarray], seed: int = 0) -> Path:
    """Write `service/metric -> values` (one value a minute from DAY_START) as a long csv."""
    ts = np.datetime64(DAY_START, "s") + np.arange(MINUTES).astype("timedelta64[m]")
    parts = []
    for name, values in series.items():
        service, metric = name.split("/")
        parts.append(pa.table({"ts": ts, "service": [service] * len(values), "metric": [metric] * len(values),
                               "value": values}))
    pacsv.write_csv(pa.concat_tables(parts), path)
    return path


def quiet(seed: int, level: float = 100.0, noise: float = 4.0) -> np.ndarray:
    return level + np.random.default_rng(seed).normal(0, noise, MINUTES)


def shifted(seed: int, start: int, stop: int, by: float) -> np.ndarray:
    values = quiet(seed)
    values[start:stop] += by
    return values


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_the_tutorial_incident_is_found_onset_to_recovery(scenario_dir, seed):
    directory = scenario_dir("seed-tutorial", seed=seed)
    store = load_telemetry(metrics=str(directory / "metrics.csv"))
    robust = detect(store)
    original = detect(store, detector="seed-zscore")
    truth = truth_window(directory)
    assert robust.detected
    assert iou((robust.window.start, robust.window.end), truth) >= 0.95
    assert iou((original.window.start, original.window.end), truth) <= 0.15  # the original's failure


CAUSAL = ["db-pool-exhaustion", "cache-miss-storm", "bad-deploy", "region-outage", "oom-restart-loop",
          "provider-throttling"]


@pytest.mark.parametrize("seed", [1, 2])
@pytest.mark.parametrize("name", CAUSAL)
def test_causal_incidents_are_found_despite_spikes_and_benign_bursts(scenario_dir, name, seed):
    directory = scenario_dir(name, seed=seed)
    result = detect(load_telemetry(metrics=str(directory / "metrics.csv")))
    assert result.detected, result.reason
    assert iou((result.window.start, result.window.end), truth_window(directory)) >= 0.9
    assert len(result.windows) == 1  # the scenario's one-point spikes and error bursts are not incidents


@pytest.mark.parametrize("seed", [1, 2])
def test_a_quiet_scenario_day_has_no_incident(scenario_dir, seed):
    result = detect(load_telemetry(metrics=str(scenario_dir("quiet", seed=seed) / "metrics.csv")))
    assert not result.detected
    assert result.reason.startswith("no series deviated") or "short or isolated" in result.reason


def test_the_result_serialises_to_the_analysis_json_blocks(scenario_dir):
    store = load_telemetry(metrics=str(scenario_dir("seed-tutorial", seed=1) / "metrics.csv"))
    result = detect(store).to_dict()
    window, baseline = result["incident_window"], result["baseline_window"]
    assert result["detected"] is True and result["reason"] is None
    assert baseline["end"] == window["start"] and baseline["start"] < baseline["end"]
    assert window["start"] <= result["peak"] <= window["end"]
    moved = {s["series"]: s for s in result["detection"]["series"]}
    assert moved["global/p95_ms"]["direction"] == "up" and moved["global/error_rate"]["direction"] == "up"
    assert moved["global/p95_ms"]["peak"] > moved["global/p95_ms"]["baseline"] + 300
    assert result["detection"]["first_anomalous"] == window["start"]
    evidence = result["evidence"][0]
    assert result["detection"]["evidence"] == [evidence["id"]] and evidence["kind"] == "detection"
    assert "FROM metrics" in evidence["query"]


def test_services_agreeing_make_an_incident(tmp_path):
    path = write_long_metrics(tmp_path / "m.csv", {
        "checkout/latency_ms": shifted(1, 600, 700, 40),
        "payments/error_ratio": shifted(2, 610, 700, 30),
        "search/latency_ms": quiet(3),
    })
    result = detect(load_telemetry(metrics=str(path)))
    assert result.detected
    assert (result.window.start, result.window.end) == (DAY_START + timedelta(minutes=600),
                                                        DAY_START + timedelta(minutes=700))
    onsets = {s.series: s.onset for s in result.window.series}
    assert onsets == {"checkout/latency_ms": DAY_START + timedelta(minutes=600),
                      "payments/error_ratio": DAY_START + timedelta(minutes=610)}


def test_a_short_burst_on_one_series_is_not_an_incident_and_is_the_closest_miss(tmp_path):
    path = write_long_metrics(tmp_path / "m.csv", {
        "checkout/rps": shifted(1, 600, 603, 60),  # a 3-minute burst, one series
        "checkout/latency_ms": quiet(2),
    })
    result = detect(load_telemetry(metrics=str(path)))
    assert not result.detected
    assert result.to_dict()["incident_window"] is None
    assert result.evidence[0].data["series_checked"] == 2
    miss = result.to_dict()["detection"]["closest_miss"]
    assert miss["series"] == "checkout/rps" and miss["start"] == "2024-05-01T10:00:00Z"
    assert miss["baseline"] == pytest.approx(100, abs=2) and miss["peak"] > 150
    assert "lasted 3 min, under the 5 min a window needs" in miss["why_short"]
    assert result.evidence[0].data["closest_miss"] == miss


def test_a_quiet_day_has_no_incident_and_says_so(tmp_path):
    path = write_long_metrics(tmp_path / "m.csv", {f"svc{i}/latency_ms": quiet(i) for i in range(6)})
    result = detect(load_telemetry(metrics=str(path)))
    assert not result.detected
    assert result.reason == "no series deviated from its baseline for a sustained time (6 series checked)"


def test_single_series_blips_in_a_row_do_not_chain_two_incidents_together(tmp_path):
    def blip(seed: int, start: int) -> np.ndarray:
        values = shifted(seed, start, start + 75, 12)  # 3 sigma for 75 minutes: past 2.5, not past 5 ...
        values[start + 30] += 40  # ... but for one point
        return values

    series = {
        "api/latency_ms": shifted(1, 300, 360, 50) + shifted(2, 900, 960, 50) - 100,
        "api/error_ratio": shifted(3, 300, 360, 50) + shifted(4, 900, 960, 50) - 100,
    }
    # one series after another, each starting a few minutes after the previous ends: 360 .. 960
    series |= {f"worker{i}/queue_depth": blip(10 + i, 362 + 80 * i) for i in range(7)}
    result = detect(load_telemetry(metrics=str(write_long_metrics(tmp_path / "m.csv", series))))
    # the two incidents where services agree are the most severe (the last worker's shift, held for 75 minutes,
    # touches the second and may open it earlier); each other worker's shift is at most its own window
    first, second = sorted(result.windows[:2], key=lambda w: w.start)
    assert first.start == DAY_START + timedelta(minutes=300)
    assert DAY_START + timedelta(minutes=842) <= second.start <= DAY_START + timedelta(minutes=900) < second.end
    assert all(w.end - w.start < timedelta(hours=2) for w in result.windows)


def test_at_anchors_on_the_window_nearest_the_alert(tmp_path):
    path = write_long_metrics(tmp_path / "m.csv", {
        "api/latency_ms": shifted(1, 300, 360, 50) + shifted(2, 900, 1000, 50) - 100,
        "api/error_ratio": shifted(3, 300, 360, 50) + shifted(4, 900, 1000, 50) - 100,
    })
    store = load_telemetry(metrics=str(path))
    morning = detect(store, at=DAY_START + timedelta(hours=5, minutes=10))  # inside the first
    evening = detect(store, at=DAY_START + timedelta(hours=17))  # after the second
    assert morning.window.start == DAY_START + timedelta(minutes=300)
    assert evening.window.start == DAY_START + timedelta(minutes=900)
    assert len(morning.windows) == 2


def test_unusable_series_give_reasons_not_crashes(tmp_path):
    path = write_long_metrics(tmp_path / "m.csv", {"db/connections": np.full(MINUTES, 50.0)})
    result = detect(load_telemetry(metrics=str(path)))
    assert not result.detected
    assert result.reason == "no series could be scored: constant series: every value is 50"
    assert result.notes == ["db/connections: skipped: constant series: every value is 50"]


def test_duplicated_timestamps_are_averaged_and_noted(tmp_path):
    path = write_long_metrics(tmp_path / "m.csv", {"api/latency_ms": shifted(1, 600, 700, 40),
                                                   "api/error_ratio": shifted(2, 600, 700, 40)})
    with path.open("a") as extra:  # the same minute reported twice
        extra.write('"2024-05-01T00:00:00",api,latency_ms,100.0\n')
    result = detect(load_telemetry(metrics=str(path)))
    assert result.detected
    assert "api/latency_ms: 1 duplicated timestamps averaged" in result.notes


def test_an_unknown_metric_name_is_an_input_error(tmp_path):
    path = write_long_metrics(tmp_path / "m.csv", {"api/latency_ms": quiet(1)})
    with pytest.raises(InputError, match="no series for metric p99"):
        detect(load_telemetry(metrics=str(path)), metrics=["p99"])


def test_an_unknown_metric_name_is_answered_with_the_names_there_are(tmp_path):
    # the README's `detect --metric p95_ms` on a generated day, whose metric is latency_p95_ms
    path = write_long_metrics(tmp_path / "m.csv", {"api/latency_p95_ms": quiet(1), "api/error_ratio": quiet(2)})
    with pytest.raises(InputError) as caught:
        detect(load_telemetry(metrics=str(path)), metrics=["p95_ms"])
    assert str(caught.value) == "metrics: no series for metric p95_ms; the metrics are error_ratio, latency_p95_ms"


def test_detect_cli_prints_a_table_and_json(scenario_dir):
    metrics = str(scenario_dir("seed-tutorial", seed=1) / "metrics.csv")
    runner = CliRunner()
    table = runner.invoke(app, ["detect", "--metrics", metrics, "--metric", "p95_ms", "--metric", "error_rate"])
    assert table.exit_code == 0, table.output
    assert "2024-05-01T14:53:00Z" in table.output and "global/p95_ms" in table.output
    as_json = runner.invoke(app, ["detect", "--metrics", metrics, "--json", "--detector", "seed-zscore",
                                  "--at", "2024-05-01T15:00:00+00:00"])
    assert as_json.exit_code == 0, as_json.output
    result = json.loads(as_json.output)
    assert result["detection"]["detector"] == "seed-zscore"
    assert result["incident_window"]["start"] == "2024-05-01T14:53:00Z"


def test_the_seed_zscore_lists_each_run_once_with_its_peak_inside(scenario_dir):
    """db-pool-exhaustion's flagged runs overlap across its 15 series: the longest is the window, a shorter run
    inside it is part of it (it was listed too, 17:37-17:50 "peak 17:35"), and every window peaks inside itself."""
    metrics = str(scenario_dir("db-pool-exhaustion", seed=7) / "metrics.csv")
    result = detect(load_telemetry(metrics=metrics), detector="seed-zscore")
    windows = result.windows
    assert (windows[0].start, windows[0].end) == (datetime(2024, 5, 1, 17, 35), datetime(2024, 5, 1, 17, 48))
    assert [w.end - w.start for w in windows] == sorted((w.end - w.start for w in windows), reverse=True)
    for earlier, later in itertools.combinations(windows, 2):
        assert earlier.end <= later.start or later.end <= earlier.start, (earlier, later)
    for window in windows:
        assert window.start <= window.peak < window.end
        assert all(window.start <= s.onset <= s.peak_at < window.end for s in window.series)
    table = CliRunner().invoke(app, ["detect", "--metrics", metrics, "--detector", "seed-zscore"],
                               env={"COLUMNS": "200"})
    assert "series moved (z-score)" in table.output and "the longest window" in table.output


def test_detect_cli_rejects_a_bad_time_in_one_line(scenario_dir):
    metrics = str(scenario_dir("seed-tutorial", seed=1) / "metrics.csv")
    result = CliRunner().invoke(app, ["detect", "--metrics", metrics, "--at", "yesterday"])
    assert result.exit_code != 0
    assert str(result.exception) == "--at 'yesterday': cannot parse as a time (use ISO-8601, e.g. 2024-05-01T16:00:00Z)"


def write_logs(path: Path, bursts: dict[str, tuple[int, int, int]]) -> Path:
    """A day of INFO lines from three services (one every 20 s each, a WARN now and then), plus `service -> (start
    minute, minutes, ERROR lines a minute)` bursts."""
    rng = np.random.default_rng(5)
    rows = []
    for minute in range(MINUTES):
        for service in ("checkout", "payments", "search"):
            for second in (0, 20, 40):
                level = "WARN" if rng.random() < 0.01 else "INFO"
                rows.append((DAY_START + timedelta(minutes=minute, seconds=second), service, level, "request served"))
    for service, (start, minutes, per_minute) in bursts.items():
        rows += [(DAY_START + timedelta(minutes=start + m, seconds=60 * i / per_minute), service, "ERROR",
                  "payment provider timeout") for m in range(minutes) for i in range(per_minute)]
    ts, service, level, message = zip(*rows, strict=True)
    pacsv.write_csv(pa.table({"ts": ts, "service": service, "level": level, "message": message}), path)
    return path


def test_an_incident_only_the_logs_show_is_found_from_each_services_problem_lines(tmp_path):
    metrics = write_long_metrics(tmp_path / "m.csv", {f"svc{i}/latency_ms": quiet(i) for i in range(3)})
    logs = write_logs(tmp_path / "logs.csv", {"checkout": (600, 12, 40)})
    result = detect(load_telemetry(metrics=str(metrics), logs=str(logs)))
    assert result.detected
    assert (result.window.start, result.window.end) == (DAY_START + timedelta(minutes=600),
                                                        DAY_START + timedelta(minutes=612))
    (moved,) = result.window.series
    assert moved.series == "checkout/log_problem_lines" and moved.peak == 40 and moved.baseline < 1
    assert result.notes[0].startswith("no metric series moved (or none were given): the window is where services' "
                                      "problem lines (WARN/ERROR/FATAL) per minute moved")
    assert "FROM logs" in result.evidence[0].query


def test_logs_alone_find_their_incident(tmp_path):
    logs = write_logs(tmp_path / "logs.csv", {"payments": (300, 8, 25)})
    result = detect(load_telemetry(logs=str(logs)))
    assert result.detected and result.window.start == DAY_START + timedelta(minutes=300)
    assert [s.series for s in result.window.series] == ["payments/log_problem_lines"]


def test_a_short_burst_of_errors_or_a_metric_incident_leaves_the_logs_unread(tmp_path):
    quiet_metrics = write_long_metrics(tmp_path / "quiet.csv", {f"svc{i}/latency_ms": quiet(i) for i in range(3)})
    blip = write_logs(tmp_path / "blip.csv", {"checkout": (600, 2, 10)})  # two minutes: not an incident
    assert not detect(load_telemetry(metrics=str(quiet_metrics), logs=str(blip))).detected
    moved = write_long_metrics(tmp_path / "moved.csv", {"checkout/latency_ms": shifted(1, 900, 960, 40),
                                                        "payments/latency_ms": shifted(2, 905, 960, 40)})
    burst = write_logs(tmp_path / "burst.csv", {"checkout": (600, 12, 40)})
    result = detect(load_telemetry(metrics=str(moved), logs=str(burst)))
    # the metrics' incident, not the logs': the problem lines are read only where no metric series moved
    assert result.window.start == DAY_START + timedelta(minutes=900)
    assert all("log_problem_lines" not in s.series for w in result.windows for s in w.series)


def test_quiet_logs_alone_say_their_problem_lines_were_read(tmp_path):
    # it said "no metrics were loaded: detection needs a metrics source" though the logs had been read for a window
    result = detect(load_telemetry(logs=str(write_logs(tmp_path / "logs.csv", {}))))
    assert not result.detected
    assert result.reason == LOGS_QUIET
    assert result.series_checked == 3 and "FROM logs" in result.evidence[0].query


def test_a_metric_asked_for_without_metrics_says_none_were_loaded(tmp_path):
    # as before the logs were read: not "no series for metric latency_ms", which reads as a misspelt name
    result = detect(load_telemetry(logs=str(write_logs(tmp_path / "logs.csv", {}))), metrics=["latency_ms"])
    assert not result.detected and result.reason == NO_METRICS


def test_a_stray_log_line_long_before_costs_one_point_not_a_day_of_quiet_minutes(tmp_path):
    logs = write_logs(tmp_path / "logs.csv", {"payments": (300, 8, 25)})
    with logs.open("a") as out:  # one ERROR a day early: a minute with no line at all is a gap, not a quiet minute
        out.write(f"{(DAY_START - timedelta(days=1)).isoformat()},payments,ERROR,disk full\n")
    result = detect(load_telemetry(logs=str(logs)))
    assert result.detected and result.window.start == DAY_START + timedelta(minutes=300)


def test_a_window_only_the_logs_show_is_not_set_aside_as_load(tmp_path):
    from incidentlens.analysis import analyze

    metrics = write_long_metrics(tmp_path / "m.csv", {"checkout/latency_ms": quiet(1), "checkout/rps": quiet(2)})
    logs = write_logs(tmp_path / "logs.csv", {"checkout": (600, 12, 40)})
    result = analyze(load_telemetry(metrics=str(metrics), logs=str(logs)))
    assert result.detected and result.hypotheses[0].service == "checkout"


def test_a_quiet_day_with_logs_says_the_logs_were_read_too(tmp_path):
    metrics = write_long_metrics(tmp_path / "m.csv", {f"svc{i}/latency_ms": quiet(i) for i in range(3)})
    result = detect(load_telemetry(metrics=str(metrics), logs=str(write_logs(tmp_path / "logs.csv", {}))))
    assert not result.detected
    assert result.notes[-1] == ("the logs too: 3 services' WARN/ERROR/FATAL lines per minute (log_problem_lines), "
                                "none moved")
