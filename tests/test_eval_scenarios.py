"""`eval scenarios`: scoring one analysis against truth.json, seed parsing, and the command on a small subset."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from cli_process import assert_one_line_error, run_cli
from incidentlens.cli import app
from incidentlens.errors import InputError
from incidentlens.eval.calibration import calibration
from incidentlens.eval.scenarios import confidence_pairs, parse_seeds, score_run, window_iou

TRUTH = {"window": {"start": "2024-05-01T10:00:00Z", "end": "2024-05-01T11:00:00Z"},
         "root_cause": {"service": "db-proxy", "kind": "connection_pool_exhaustion", "region": None}}


def _analysis(start: str, end: str, ranked: list[str], kind: str = "connection_pool_exhaustion",
              verdict: dict | None = None) -> dict:
    return {"detected": True, "reason": None, "incident_window": {"start": start, "end": end},
            "hypotheses": [{"service": s, "kind": kind, "confidence": 0.6 / (i + 1)} for i, s in enumerate(ranked)],
            "verdict": verdict}


def test_window_iou_is_overlap_over_union():
    assert window_iou(TRUTH["window"], {"start": "2024-05-01T10:00:00Z", "end": "2024-05-01T11:00:00Z"}) == 1
    half = window_iou(TRUTH["window"], {"start": "2024-05-01T10:30:00Z", "end": "2024-05-01T11:30:00Z"})
    assert half == pytest.approx(30 / 90)
    assert window_iou(TRUTH["window"], {"start": "2024-05-01T12:00:00Z", "end": "2024-05-01T13:00:00Z"}) == 0
    assert window_iou(TRUTH["window"], None) == 0


def test_a_run_scores_top1_top3_and_kind():
    run = score_run("db-pool-exhaustion", 1, TRUTH,
                    _analysis("2024-05-01T10:00:00Z", "2024-05-01T11:00:00Z", ["payments", "db-proxy"]), 1.0)
    assert (run.top1, run.top3, run.kind_match, run.iou) == (False, True, True, 1.0)
    assert run.false_incident is None


def test_the_verdict_is_right_when_it_names_the_true_root_cause():
    named = {"status": "root_cause", "service": "db-proxy"}
    run = score_run("db-pool-exhaustion", 1, TRUTH,
                    _analysis("2024-05-01T10:00:00Z", "2024-05-01T11:00:00Z", ["db-proxy"], verdict=named), 1.0)
    assert (run.verdict, run.verdict_right) == ("root_cause", True)
    unsure = {"status": "inconclusive", "service": None}
    run = score_run("db-pool-exhaustion", 1, TRUTH,
                    _analysis("2024-05-01T10:00:00Z", "2024-05-01T11:00:00Z", ["db-proxy"], verdict=unsure), 1.0)
    assert run.verdict_right is False


def test_no_single_root_cause_is_right_where_the_truth_has_none():
    spread = {"window": TRUTH["window"], "root_cause": None}
    unsure = {"status": "inconclusive", "service": None}
    run = score_run("seed-tutorial", 1, spread, _analysis("2024-05-01T10:00:00Z", "2024-05-01T11:00:00Z",
                                                          ["db-proxy", "api"], verdict=unsure), 1.0)
    assert run.verdict_right is True and run.top1 is None
    assert confidence_pairs(run) == [(0.6, False), (0.3, False)]  # no hypothesis is right: none is the cause
    named = {"status": "root_cause", "service": "db-proxy"}
    run = score_run("seed-tutorial", 1, spread, _analysis("2024-05-01T10:00:00Z", "2024-05-01T11:00:00Z",
                                                          ["db-proxy"], verdict=named), 1.0)
    assert run.verdict_right is False


def test_calibration_compares_stated_confidence_with_the_share_right():
    # ten hypotheses at 80% of which 8 right, ten at 20% of which 2 right: calibrated; at 95% with half right: not
    calibrated = calibration([(0.8, i < 8) for i in range(10)] + [(0.2, i < 2) for i in range(10)])
    assert calibrated.ece == pytest.approx(0.0)
    assert [(b.hypotheses, b.share_right) for b in calibrated.bins if b.hypotheses] == [(10, 0.2), (10, 0.8)]
    overconfident = calibration([(0.95, i < 5) for i in range(10)])
    assert overconfident.ece == pytest.approx(0.45)
    assert overconfident.lines() == ["90%-100%: 10 hypotheses, 95% confident on average, 50% right"]


def test_an_incident_on_a_quiet_day_is_a_false_incident():
    quiet = {"window": None, "root_cause": None}
    run = score_run("quiet", 1, quiet, _analysis("2024-05-01T10:00:00Z", "2024-05-01T11:00:00Z", ["auth"]), 1.0)
    assert run.false_incident is True and run.top1 is None and run.iou is None


def test_a_missed_incident_scores_zero_overlap():
    missed = {"detected": False, "reason": "nothing", "incident_window": None, "hypotheses": []}
    run = score_run("db-pool-exhaustion", 1, TRUTH, missed, 1.0)
    assert (run.iou, run.top1, run.top3) == (0.0, False, False)


@pytest.mark.parametrize(("text", "seeds"), [("1-3", [1, 2, 3]), ("4", [4]), ("1,4,7", [1, 4, 7]),
                                             ("1-2,5", [1, 2, 5])])
def test_seeds_parse_as_ranges_and_lists(text, seeds):
    assert parse_seeds(text) == seeds


# a number too long for int() (Python's limit on digits) and digits of another script are refused as well
@pytest.mark.parametrize("text", ["", "a-b", "5-1", "1-", "1-" + "9" * 5000, "\u0661-\u0663"])
def test_bad_seeds_are_one_line_errors(text):
    with pytest.raises(InputError, match="--seeds"):
        parse_seeds(text)


def test_overlapping_ranges_count_once_against_the_cap():
    assert len(parse_seeds("1-1000,500-1000")) == 1000
    with pytest.raises(InputError, match=r"1001 seeds; at most 1000"):
        parse_seeds("1-600,401-1001")


@pytest.mark.parametrize(("seeds", "message"), [
    ("1-1000000", "error: --seeds '1-1000000': 1000000 seeds; at most 1000 in one run"),
    ("5-1", "error: --seeds '5-1': the range 5-1 runs backwards; write it low to high, 1-5"),
    ("a-b", "error: --seeds 'a-b': expected seeds like 1-10, 3 or 1,4,7 (whole numbers under 10^9)"),
    ("", "error: --seeds '': expected seeds like 1-10, 3 or 1,4,7 (whole numbers under 10^9)"),
])
def test_cli_refuses_too_many_or_malformed_seeds_before_running_any(seeds, message):
    assert assert_one_line_error(run_cli("eval", "scenarios", "--seeds", seeds, timeout=30)) == message


def test_cli_evaluates_a_small_subset_as_json():
    args = ["eval", "scenarios", "--seeds", "1", "--scenario", "db-pool-exhaustion", "--scenario", "quiet",
            "--logs", "20000", "--json"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    summary = {s["scenario"]: s for s in report["summaries"]}
    assert summary["db-pool-exhaustion"]["top1"] == 1.0
    assert summary["db-pool-exhaustion"]["mean_iou"] >= 0.8
    assert summary["quiet"]["false_incidents"] == 0
    assert [r["scenario"] for r in report["runs"]] == ["db-pool-exhaustion", "quiet"]


def test_cli_prints_a_table():
    args = ["eval", "scenarios", "--seeds", "2", "--scenario", "seed-tutorial"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "seed-tutorial" in result.output and "IoU" in result.output


def test_cli_table_at_80_columns_cuts_no_figure():
    # every header and a kind of "100%" were cut ("ru…", "10…"): the time per run gives way instead
    args = ["eval", "scenarios", "--seeds", "1", "--scenario", "provider-throttling", "--logs", "20000"]
    result = CliRunner().invoke(app, args, env={"COLUMNS": "80"})
    assert result.exit_code == 0, result.output
    assert "…" not in result.output
    assert "provider-throttling     1  1.000   100%   100%  100%     100%      0       0" in result.output
    assert "s/run left out to fit 80 columns" in result.output


def test_cli_unknown_scenario_is_a_one_line_error():
    result = CliRunner().invoke(app, ["eval", "scenarios", "--scenario", "nope"])
    assert result.exit_code != 0
    assert isinstance(result.exception, InputError) and "nope" in str(result.exception)
