"""Severity rests on what the incident changed, not on the system's normal state: a service that always fails 6% of
its requests is not SEV2 for it; its error rate counts by its rise over the same series' baseline, its failed
requests by how many more failed than the baseline's share predicts, and its users by how many more saw errors than
the baseline had in as long, each stated beside the raw figure."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pytest

from incidentlens.analysis import analyze
from incidentlens.report import build_postmortem
from incidentlens.report.render_markdown import render_markdown
from incidentlens.report.schema import Impact, Narrative, Postmortem, TracedFailure
from incidentlens.report.severity import CHANCE_Z, traced_words, users_words
from incidentlens.telemetry import load_telemetry
from test_analyze_bad_input import START, write_logs, write_metrics


def chronic_errors_day(path: Path, errors_in_window: float, users_per_minute: tuple[int, int] | None = None
                       ) -> Postmortem:
    return build_postmortem(chronic_errors_analysis(path, errors_in_window, users_per_minute))


def chronic_errors_analysis(path: Path, errors_in_window: float, users_per_minute: tuple[int, int] | None = None
                            ) -> dict[str, Any]:
    """analysis.json of 12 h at 200 requests/s with 6% of them failing all day; from 06:40 for an hour CPU
    saturates, latency rises from 150 to 250 ms and the error ratio goes to `errors_in_window`. `users_per_minute`:
    (all day, in that hour) ERROR lines a minute, each for a user drawn from 200,000, instead of one INFO line a
    minute."""
    minutes = np.arange(720)
    rng = np.random.default_rng(11)
    hot = (minutes >= 400) & (minutes < 460)
    values = {"request_rate": 200 + rng.normal(0, 4, 720),
              "cpu_utilization": 0.4 + rng.normal(0, 0.01, 720) + hot * 0.5,
              "error_ratio": np.where(hot, errors_in_window, 0.06) + rng.normal(0, 0.003, 720),
              "latency_p95_ms": 150 + rng.normal(0, 5, 720) + hot * 100}
    logs = (write_logs(path / "l.csv", minutes) if users_per_minute is None
            else write_user_errors(path / "l.csv", np.where(hot, users_per_minute[1], users_per_minute[0])))
    store = load_telemetry(metrics=write_metrics(path / "m.csv", minutes, values), logs=logs)
    return analyze(store).to_dict()


def write_user_errors(path: Path, per_minute: np.ndarray) -> Path:
    """`per_minute[m]` ERROR lines in minute m, spread over it, each with a user id drawn from 200,000."""
    rng = np.random.default_rng(12)
    seconds = np.concatenate([m * 60 + np.sort(rng.integers(0, 60, n)) for m, n in enumerate(per_minute)])
    ts = np.datetime_as_string(START + seconds.astype("timedelta64[s]"), unit="s")
    pacsv.write_csv(pa.table({"ts": [t + "Z" for t in ts], "service": ["api"] * len(ts),
                              "level": ["ERROR"] * len(ts), "message": ["GET /items 500"] * len(ts),
                              "user_id": [f"u{u}" for u in rng.integers(0, 200_000, len(ts))]}), path)
    return path


def test_a_chronic_error_rate_the_incident_did_not_change_does_not_make_it_sev2(tmp_path: Path):
    pm = chronic_errors_day(tmp_path, errors_in_window=0.06)
    assert pm.root_cause.service == "api" and pm.root_cause.kind == "cpu_saturation"
    assert pm.impact.peak_error_rate.value >= 0.05, "the absolute rate alone would have said SEV2"
    assert pm.severity == "SEV3"  # was SEV2, "because peak error rate >= 5%"
    assert "peak error rate" not in pm.severity_rule.split(" (rule:")[0]
    assert pm.impact.narrative.text.startswith("Error rate (api/error_ratio) peaked at 6.8% against 6.0% before")


@pytest.mark.parametrize(("errors", "severity", "why", "peak"), [
    (0.15, "SEV2", "error rate >= 5 points over its baseline (api/error_ratio 15.1% over the window, peak 15.8%, "
                   "against 6.0% before)", "15.8%"),
    (0.30, "SEV1", "error rate >= 20 points over its baseline (api/error_ratio 30.1% over the window, peak 30.8%, "
                   "against 6.0% before)", "30.8%"),
])
def test_a_rise_over_a_chronic_error_rate_counts_by_its_size_with_both_rates_stated(
        tmp_path: Path, errors: float, severity: str, why: str, peak: str):
    pm = chronic_errors_day(tmp_path, errors_in_window=errors)
    assert pm.severity == severity  # 6% -> 15% was SEV1, "because >= 10% of requests failed"
    assert pm.severity_rule.startswith(f"{severity} because {why}")
    assert f"error rate (api/error_ratio) peaked at {peak} against 6.0% before" in render_markdown(pm)


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


def test_users_who_see_errors_every_hour_do_not_make_an_ordinary_hour_sev2(tmp_path: Path):
    # 40 users a minute hit an error all day: about 2,400 distinct users in any hour, the incident's included
    pm = chronic_errors_day(tmp_path, errors_in_window=0.06, users_per_minute=(40, 40))
    impact = pm.impact
    assert impact.users_affected > 1_000, "the raw count alone would have said SEV2"
    assert impact.users_baseline == pytest.approx(impact.users_affected, rel=0.05)
    assert impact.users_excess < CHANCE_Z * math.sqrt(impact.users_baseline)
    assert pm.severity == "SEV3"  # was SEV2, "because >= 1,000 users affected"
    assert pm.severity_rule.startswith("SEV3 because latency >= 1.5x baseline")
    assert (f"{impact.users_excess:,} more users affected than the baseline's {impact.users_baseline:,.0f} for a "
            f"window this long ({impact.users_affected:,} on WARN/ERROR lines)") in impact.narrative.text
    assert f"| Users affected beyond the baseline's | {impact.users_excess:,} |" in render_markdown(pm)


def test_a_rise_in_users_seeing_errors_still_makes_it_sev2_with_both_counts_stated(tmp_path: Path):
    pm = chronic_errors_day(tmp_path, errors_in_window=0.06, users_per_minute=(40, 120))
    impact = pm.impact
    assert 1_000 <= impact.users_excess < 10_000 and impact.users_baseline > 1_000
    assert pm.severity == "SEV2"
    assert pm.severity_rule.startswith(
        f"SEV2 because >= 1,000 users affected beyond the baseline's ({impact.users_excess:,} more users affected "
        f"than the baseline's {impact.users_baseline:,.0f} for a window this long ({impact.users_affected:,} on "
        "WARN/ERROR lines))")
    # the rule says against what both excesses are counted (it read "users beyond its (past ...)")
    assert ("any failed requests beyond the baseline's share or users beyond the baseline's (each past 3.09 Poisson σ "
            "of what the baseline predicts)") in pm.severity_rule
    assert pm.grounding.issues == []


def test_users_with_no_baseline_to_compare_against_are_called_raw_and_set_no_level(tmp_path: Path):
    analysis = chronic_errors_analysis(tmp_path, errors_in_window=0.06, users_per_minute=(40, 120))
    for key in ("users_baseline", "users_excess"):
        del analysis["impact"][key]  # an analysis.json written before users had a baseline
    pm = build_postmortem(analysis)
    assert pm.impact.users_affected > 1_000
    assert pm.severity == "SEV3"  # was SEV2 on the raw count
    assert (f"{pm.impact.users_affected:,} users on WARN/ERROR lines (a raw count: no baseline to compare against)"
            in pm.impact.narrative.text)


def test_one_user_reads_as_one_user():
    # a quiet 5 minutes from a given start: one user on a WARN line, 2.3 in 5 minutes of the day before
    quiet = Impact(duration_minutes=5, users_affected=1, users_baseline=2.3, users_excess=0,
                   narrative=Narrative(text=""))
    assert users_words(quiet, affected=False) == ("1 user on WARN/ERROR lines against the baseline's 2.3 for a window "
                                                  "this long")  # was "1 users"
    one_more = quiet.model_copy(update={"users_affected": 4, "users_excess": 1})
    assert users_words(one_more, affected=True) == ("1 more user affected than the baseline's 2.3 for a window this "
                                                    "long (4 on WARN/ERROR lines)")


def test_a_way_of_failing_by_an_error_line_quotes_its_pattern_without_masked_identifiers():
    # TrainTicket 09:21: the way that marked ts-basic-service, in its severity reason
    failure = TracedFailure(service="ts-basic-service", window_requests=64, window_failed=52, baseline_requests=564,
                            baseline_failed=61, way="an ERROR line: <*> ERROR  f.m.s.BasicServiceImpl#<*> TraceID: <*> "
                                                    "SpanID: <*> [getRoutesByRouteIds][Get Route By Ids Failed]")
    assert traced_words(failure) == ("ts-basic-service: 52 of 64 requests failed with an ERROR line 'ERROR "
                                     "f.m.s.BasicServiceImpl#<*> [getRoutesByRouteIds][Get Route By Ids Failed]', "
                                     "61 of 564 before")
    status = failure.model_copy(update={"way": "an error status on GET /routes"})
    assert "failed with an error status on GET /routes, 61" in traced_words(status)
