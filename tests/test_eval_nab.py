"""`incidentlens eval nab`: event-level scores of the robust and the original detector on NAB series."""

from __future__ import annotations

import json

import numpy as np
from typer.testing import CliRunner

from incidentlens.analysis.points import SeriesDetection, Span, prepare_series
from incidentlens.cli import app
from incidentlens.eval.nab import evaluate_nab, score_series

SUBSET = [
    "realKnownCause/ec2_request_latency_system_failure.csv",
    "realKnownCause/machine_temperature_system_failure.csv",
    "realAWSCloudwatch/ec2_cpu_utilization_825cc2.csv",
    "artificialNoAnomaly/art_noisy.csv",
]


def flags_at(*indices: int):
    """A detector double that flags exactly the given points, one run each."""

    def detector(ts, values, reference_end):
        series = prepare_series(ts, values)
        spans = [Span(start=i, end=i, peak=i, direction="up", baseline=0.0, peak_value=1.0, shift=9.0)
                 for i in indices]
        return SeriesDetection(series=series, spans=spans)

    return detector


def test_detections_are_counted_as_events_against_the_windows():
    ts = np.datetime64("2024-01-01T00:00", "ns") + (np.arange(1000) * 5).astype("timedelta64[m]")
    windows = np.array([[ts[400], ts[450]], [ts[800], ts[850]]])
    # 100 is probationary (not scored); 410 and 420 both land in the first window; 600 is a false alarm.
    scored = score_series("s", ts, np.zeros(1000), windows, flags_at(100, 410, 420, 600))
    assert (scored.windows, scored.found, scored.detections, scored.false_alarms) == (2, 1, 3, 1)
    assert scored.delays_minutes == [50.0]  # 10 steps of 5 minutes after the window opened
    assert scored.days == (999 - 150) * 5 / 1440


def test_robust_beats_the_original_on_a_nab_subset(datasets):
    report = evaluate_nab(datasets / "nab", only=SUBSET)
    robust, seed = report.scores
    assert robust.detector == "robust" and seed.detector == "seed-zscore"
    assert robust.windows == seed.windows == 8
    assert robust.f1 >= 1.5 * seed.f1
    assert robust.false_alarms_per_day < seed.false_alarms_per_day
    assert robust.precision > 0.5


def test_eval_nab_cli_prints_a_table_and_json(datasets, monkeypatch):
    import incidentlens.eval.nab as nab

    full = nab.evaluate_nab
    monkeypatch.setattr(nab, "evaluate_nab", lambda data, detectors: full(data, detectors, only=SUBSET[:2]))
    runner = CliRunner()
    table = runner.invoke(app, ["eval", "nab", "--data", str(datasets / "nab")])
    assert table.exit_code == 0, table.output
    assert "robust" in table.output and "seed-zscore" in table.output
    as_json = runner.invoke(app, ["eval", "nab", "--data", str(datasets / "nab"), "--json", "--detector", "robust"])
    assert as_json.exit_code == 0, as_json.output
    scores = json.loads(as_json.output)["detectors"]
    assert [s["detector"] for s in scores] == ["robust"]
    assert scores[0]["windows"] == 7


def test_a_missing_nab_directory_is_one_line_of_error(tmp_path):
    result = CliRunner().invoke(app, ["eval", "nab", "--data", str(tmp_path)])
    assert result.exit_code != 0
    assert "combined_windows.json: not found" in str(result.exception)
