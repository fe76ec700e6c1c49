"""`incidentlens eval nab`: NAB's own score, event-level measures, the fixed halves and the resampled cadences."""

from __future__ import annotations

import json
import re
import shutil

import numpy as np
import pytest
from typer.testing import CliRunner

from incidentlens.analysis.detection import detect_points, detect_series
from incidentlens.analysis.points import SeriesDetection, Span, prepare_series
from incidentlens.cli import app
from incidentlens.eval.nab import anomaly_rows, evaluate_nab, resample, score_series, split_of
from incidentlens.eval.nab_score import CostMatrix, nab_score, optimise_threshold, scaled_sigmoid, sweep_file

SUBSET = [
    "realKnownCause/ec2_request_latency_system_failure.csv",
    "realKnownCause/machine_temperature_system_failure.csv",
    "realAWSCloudwatch/ec2_cpu_utilization_825cc2.csv",
    "artificialNoAnomaly/art_noisy.csv",
]
STANDARD = CostMatrix(tp=1.0, fp=0.11, fn=1.0)
TS = np.datetime64("2024-01-01T00:00", "ns") + (np.arange(1000) * 5).astype("timedelta64[m]")


def flagged(*indices: int, strength: float = 9.0) -> SeriesDetection:
    """A detection that opened a one-point window at each given row."""
    spans = [Span(start=i, end=i, peak=i, direction="up", baseline=0.0, peak_value=1.0, shift=strength,
                  strength=strength) for i in indices]
    return SeriesDetection(series=prepare_series(TS, np.zeros(len(TS))), spans=spans, candidates=spans)


def test_detections_are_counted_as_events_against_the_windows():
    windows = np.array([[TS[400], TS[450]], [TS[800], TS[850]]])
    # 100 is probationary (not scored); 410 and 420 both land in the first window; 600 is a false alarm.
    scored = score_series("s", TS, windows, flagged(100, 410, 420, 600))
    assert (scored.windows, scored.found, scored.detections, scored.false_alarms) == (2, 1, 3, 1)
    assert scored.delays_minutes == [50.0]  # 10 steps of 5 minutes after the window opened
    assert scored.days == (999 - 150) * 5 / 1440
    # per file, what a false alarm and a miss have in common can be looked up: when each opened, which were missed
    assert scored.false_alarms_at == ["2024-01-03T02:00Z"]  # row 600: 3000 minutes in
    assert scored.missed == [("2024-01-03T18:40Z", "2024-01-03T22:50Z")]  # rows 800-850


def test_a_window_over_before_scoring_starts_is_not_counted():
    # rows 0-149 are probationary: a window inside them can be neither found nor missed, as in NAB's own scorer
    windows = np.array([[TS[50], TS[100]], [TS[140], TS[200]], [TS[400], TS[450]]])
    scored = score_series("s", TS, windows, flagged(60, 410))
    assert (scored.windows, scored.found, scored.detections, scored.false_alarms) == (2, 1, 1, 0)


def test_nab_rewards_the_left_edge_of_a_window_and_charges_false_positives_by_distance():
    windows = np.array([[TS[400], TS[499]]])
    at_left_edge = sweep_file("s", TS, anomaly_rows(flagged(400), TS), windows, 0)
    assert nab_score([at_left_edge], 1.0, STANDARD, "standard").raw == pytest.approx(1.0)  # tpWeight, full
    halfway = sweep_file("s", TS, anomaly_rows(flagged(450), TS), windows, 0)
    expected = float(scaled_sigmoid(np.array(-50 / 100)) / scaled_sigmoid(np.array(-1.0)))
    assert nab_score([halfway], 1.0, STANDARD, "standard").raw == pytest.approx(expected)
    # a false positive before any window costs the full fpWeight; the missed window costs fnWeight
    early_false = sweep_file("s", TS, anomaly_rows(flagged(200), TS), windows, 0)
    score = nab_score([early_false], 1.0, STANDARD, "standard")
    assert score.raw == pytest.approx(-1.0 - 0.11)
    assert score.normalized == pytest.approx(100 * (-1.11 + 1) / 2)  # null -1, perfect +1
    # right after the window's end a false positive costs almost nothing (scaled sigmoid near 0)
    just_after = sweep_file("s", TS, anomaly_rows(flagged(400, 501), TS), windows, 0)
    assert nab_score([just_after], 1.0, STANDARD, "standard").raw == pytest.approx(1.0 - 0.11 * 0.0494, abs=1e-3)


def test_the_threshold_is_the_one_with_the_best_total():
    windows = np.array([[TS[400], TS[499]]])
    rows = anomaly_rows(flagged(410), TS) + anomaly_rows(flagged(700, 800, 900, strength=5.0), TS)
    swept = sweep_file("s", TS, rows, windows, 0)
    # the three weaker rows are all false: the best threshold keeps only the strong one
    assert optimise_threshold([swept], STANDARD) == pytest.approx(9.0)


def test_the_halves_alternate_inside_each_category():
    keys = ["b/x.csv", "a/2.csv", "a/1.csv", "a/3.csv", "b/y.csv"]
    assert split_of(keys) == {"a/1.csv": "shaping", "a/2.csv": "held-out", "a/3.csv": "shaping",
                              "b/x.csv": "shaping", "b/y.csv": "held-out"}


def test_resampling_averages_each_step_and_maps_the_windows_to_the_steps_they_touch():
    values = np.arange(1000, dtype=float)
    windows = np.array([[TS[100], TS[130]]])  # 08:20 .. 10:50
    ts, means, mapped = resample(TS, values, windows, 3600 * 10**9)
    assert len(ts) == int(np.ceil(1000 / 12)) and means[0] == pytest.approx(5.5)
    assert mapped.tolist() == np.array([[ts[8], ts[10]]]).tolist()


def test_robust_beats_the_original_on_a_nab_subset(datasets):
    report = evaluate_nab(datasets / "nab", only=SUBSET)
    by_detector = {}
    for scores in report.scores.values():
        for score in scores:
            by_detector.setdefault(score.detector, []).append(score)
    robust_f1 = np.mean([s.f1 for s in by_detector["robust"]])
    seed_f1 = np.mean([s.f1 for s in by_detector["seed-zscore"]])
    assert robust_f1 >= 1.5 * seed_f1
    assert sum(s.windows for s in by_detector["robust"]) == 7  # 8 labelled; one ends inside the probation


def test_eval_nab_cli_prints_the_nab_score_and_json(datasets, tmp_path):
    nab = tmp_path / "nab"  # a two-file NAB: one of each half (links to the real files, nothing copied)
    shutil.copytree(datasets / "nab" / "config", nab / "config")
    (nab / "labels").mkdir()
    labels = json.loads((datasets / "nab" / "labels" / "combined_windows.json").read_text())
    keep = ["realKnownCause/ambient_temperature_system_failure.csv",
            "realKnownCause/ec2_request_latency_system_failure.csv"]
    (nab / "labels" / "combined_windows.json").write_text(json.dumps({k: labels[k] for k in keep}))
    for key in keep:
        (nab / "data" / key).parent.mkdir(parents=True, exist_ok=True)
        (nab / "data" / key).symlink_to(datasets / "nab" / "data" / key)
    runner = CliRunner()
    table = runner.invoke(app, ["eval", "nab", "--data", str(nab), "--cadence", "native"])
    assert table.exit_code == 0, table.output
    assert "held-out" in table.output and "reward_low_FP" in table.output and "seed-zscore" in table.output
    # at 80 columns the event table cut every cell ("0.7…" for an F1): columns give way, figures stay whole
    assert "…" not in table.output
    assert re.search(r"native\s+robust\s+held-out\s+\d+/\d+\s+\d\.\d{3}\s+\d\.\d{3}\s+\d\.\d{3}", table.output)
    as_json = runner.invoke(app, ["eval", "nab", "--data", str(nab), "--json", "--detector", "robust",
                                  "--cadence", "native", "--cadence", "1h"])
    assert as_json.exit_code == 0, as_json.output
    result = json.loads(as_json.output)
    assert set(result["nab_score"]["robust"]) == {"standard", "reward_low_FP", "reward_low_FN"}
    assert result["split"] == {"shaping": [keep[0]], "held-out": [keep[1]]}
    assert set(result["event"]) == {"native/shaping", "native/held-out", "1h/shaping", "1h/held-out"}
    assert "1h" in result["nab_score_by_cadence"]
    per_file = result["event_by_file"]["native/held-out"]["robust"]
    assert [f["file"] for f in per_file] == [keep[1]]
    assert {"false_alarms_at", "missed", "delays_minutes"} <= set(per_file[0])


def test_a_missing_nab_directory_is_one_line_of_error(tmp_path):
    result = CliRunner().invoke(app, ["eval", "nab", "--data", str(tmp_path)])
    assert result.exit_code != 0
    assert "combined_windows.json: not found" in str(result.exception)


def quiet_start_nab(root):
    """A one-file NAB whose first 15% (its probation) is three times quieter than the rest, with a labelled 40-step
    shift of 8 σ: the case where a noise scale measured on the probation alone opens windows `detect` does not."""
    rng = np.random.default_rng(1)
    ts = np.datetime64("2024-01-01T00:00", "ns") + (np.arange(2000) * 5).astype("timedelta64[m]")
    values = 50 + rng.normal(0, 1, len(ts))
    values[:300] = 50 + rng.normal(0, 0.3, 300)
    values[1400:1440] += 8
    key = "realKnownCause/quiet_start.csv"
    (root / "data" / "realKnownCause").mkdir(parents=True)
    (root / "data" / key).write_text("timestamp,value\n" + "".join(
        f"{np.datetime_as_string(t, unit='s').replace('T', ' ')},{v:.4f}\n" for t, v in zip(ts, values, strict=True)))
    (root / "labels").mkdir()
    window = [np.datetime_as_string(ts[i], unit="s").replace("T", " ") + ".000000" for i in (1380, 1480)]
    (root / "labels" / "combined_windows.json").write_text(json.dumps({key: [window]}))
    (root / "config").mkdir()
    weights = {"tpWeight": 1.0, "fnWeight": 1.0, "fpWeight": 0.11, "tnWeight": 1.0}
    (root / "config" / "profiles.json").write_text(json.dumps({"standard": {"CostMatrix": weights}}))
    return root / "data" / key, ts, values


def test_eval_nab_scores_the_robust_detector_exactly_as_detect_runs_one_series(tmp_path):
    path, ts, values = quiet_start_nab(tmp_path / "nab")
    cli = CliRunner().invoke(app, ["detect", "--metrics", str(path), "--json"])
    assert cli.exit_code == 0, cli.output
    windows = json.loads(cli.output)["detection"]["windows"]
    # the library function the CLI runs per series, and eval nab with it, give the CLI's windows
    step = np.timedelta64(5, "m")
    own = detect_series(ts, values).spans
    assert sorted((w["start"], w["end"]) for w in windows) == [
        (f"{np.datetime_as_string(ts[s.start], unit='s')}Z", f"{np.datetime_as_string(ts[s.end] + step, unit='s')}Z")
        for s in own]
    scored = evaluate_nab(tmp_path / "nab", detectors=["robust"]).scores[("native", "shaping")][0].series[0]
    label_start, label_end = "2024-01-05T19:00", "2024-01-06T03:20"  # rows 1380 and 1480
    onsets = sorted(w["start"][:16] for w in windows if w["start"][:16] >= "2024-01-02T01:00")  # past row 300
    assert scored.detections == len(onsets) == 1
    assert scored.false_alarms_at == [f"{t}Z" for t in onsets if not label_start <= t <= label_end] == []
    assert scored.found == 1
    # the noise scale of the quiet probation alone (what eval nab once ran) opened a false window soon after it
    probation_scale = detect_points(ts, values, reference_end=ts[300]).spans
    assert len(probation_scale) > len(own) and ts[probation_scale[0].start] < ts[400]


def test_eval_nab_takes_detects_sensitivity(tmp_path):
    path, _, _ = quiet_start_nab(tmp_path / "nab")
    runner = CliRunner()
    for level in ("high", "4.5"):
        detected = runner.invoke(app, ["detect", "--metrics", str(path), "--json", "--sensitivity", level])
        onsets = [w["start"] for w in json.loads(detected.output)["detection"]["windows"]]
        scored = runner.invoke(app, ["eval", "nab", "--data", str(tmp_path / "nab"), "--json", "--detector", "robust",
                                     "--cadence", "native", "--sensitivity", level])
        assert scored.exit_code == 0, scored.output
        result = json.loads(scored.output)
        assert result["sensitivity"] == level
        per_file = result["event_by_file"]["native/shaping"]["robust"][0]
        assert per_file["detections"] == len([t for t in onsets if t >= "2024-01-02T01:00"])  # past the probation
    bad = runner.invoke(app, ["eval", "nab", "--data", str(tmp_path / "missing"), "--sensitivity", "extreme"])
    assert "--sensitivity 'extreme': use low, medium, high" in str(bad.exception)  # before any file is read
