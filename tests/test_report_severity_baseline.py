"""Severity rests on what the incident changed, not on the system's normal state: a service that always fails 6% of
its requests is not SEV2 for it; its error rate counts by its rise over the same series' baseline, and its failed
requests by how many more failed than the baseline's share predicts, each stated beside the raw figure."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from incidentlens.analysis import analyze
from incidentlens.report import build_postmortem
from incidentlens.report.render_markdown import render_markdown
from incidentlens.report.schema import Postmortem
from incidentlens.report.severity import CHANCE_Z
from incidentlens.telemetry import load_telemetry
from test_analyze_bad_input import write_logs, write_metrics


def chronic_errors_day(path: Path, errors_in_window: float) -> Postmortem:
    """12 h at 200 requests/s with 6% of them failing all day; from 06:40 for an hour CPU saturates, latency rises
    from 150 to 250 ms and the error ratio goes to `errors_in_window`."""
    minutes = np.arange(720)
    rng = np.random.default_rng(11)
    hot = (minutes >= 400) & (minutes < 460)
    values = {"request_rate": 200 + rng.normal(0, 4, 720),
              "cpu_utilization": 0.4 + rng.normal(0, 0.01, 720) + hot * 0.5,
              "error_ratio": np.where(hot, errors_in_window, 0.06) + rng.normal(0, 0.003, 720),
              "latency_p95_ms": 150 + rng.normal(0, 5, 720) + hot * 100}
    store = load_telemetry(metrics=write_metrics(path / "m.csv", minutes, values),
                           logs=write_logs(path / "l.csv", minutes))
    return build_postmortem(analyze(store))


def test_a_chronic_error_rate_the_incident_did_not_change_does_not_make_it_sev2(tmp_path: Path):
    pm = chronic_errors_day(tmp_path, errors_in_window=0.06)
    assert pm.root_cause.service == "api" and pm.root_cause.kind == "cpu_saturation"
    assert pm.impact.peak_error_rate.value >= 0.05, "the absolute rate alone would have said SEV2"
    assert pm.severity == "SEV3"  # was SEV2, "because peak error rate >= 5%"
    assert "peak error rate" not in pm.severity_rule.split(" (rule:")[0]
    assert pm.impact.narrative.text.startswith("Error rate (api/error_ratio) peaked at 6.8% against 6.0% before")


@pytest.mark.parametrize(("errors", "severity", "why"), [
    (0.15, "SEV2", "peak error rate >= 5 points over its baseline (api/error_ratio 15.8% against 6.0% before)"),
    (0.30, "SEV1", "peak error rate >= 20 points over its baseline (api/error_ratio 30.8% against 6.0% before)"),
])
def test_a_rise_over_a_chronic_error_rate_counts_by_its_size_with_both_rates_stated(
        tmp_path: Path, errors: float, severity: str, why: str):
    pm = chronic_errors_day(tmp_path, errors_in_window=errors)
    assert pm.severity == severity  # 6% -> 15% was SEV1, "because >= 10% of requests failed"
    assert pm.severity_rule.startswith(f"{severity} because {why}")
    assert f"error rate (api/error_ratio) peaked at {why.split()[-4]} against 6.0% before" in render_markdown(pm)


def test_failed_requests_count_as_the_excess_over_the_baselines_share_beside_the_raw_count(tmp_path: Path):
    pm = chronic_errors_day(tmp_path, errors_in_window=0.06)
    impact = pm.impact
    assert impact.baseline_failed_share == pytest.approx(0.06, abs=0.001)
    assert impact.requests_failed > 40_000, "6% of 720,000 requests failed, as every hour of the day"
    assert impact.failed_excess == round(impact.requests_failed - impact.baseline_failed_share * impact.requests_total)
    assert impact.failed_excess / impact.requests_total < 0.01  # was 6.0% of requests, SEV2
    text = impact.narrative.text
    assert (f"{impact.failed_excess:,} more requests at api failed than the baseline's 6.0% predicts "
            f"({impact.requests_failed:,} of {impact.requests_total:,} failed, 6.0%)") in text
    assert f"| Requests failed beyond the baseline's share | {impact.failed_excess:,} |" in render_markdown(pm)


def test_an_excess_of_failed_requests_chance_could_give_sets_no_severity(tmp_path: Path):
    # 522 more failures than the baseline's 6.0% predicts, of about 43,000 expected: 2.5 Poisson σ, chance
    pm = chronic_errors_day(tmp_path, errors_in_window=0.06)
    assert 0 < pm.impact.failed_excess < CHANCE_Z * math.sqrt(0.06 * pm.impact.requests_total)
    assert pm.severity_rule.startswith("SEV3 because latency >= 1.5x baseline")  # was "requests failed beyond ..."
