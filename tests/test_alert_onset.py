"""`analyze --at T` without `--onset at`: an alert time where no incident window can be detected or explained is
taken as the incident's start, and the result and the review say so and why (on a generated gateway -> order ->
payment system without metrics, and on real OnlineBoutique faults, where the day's faults every eight minutes chain
the detector's windows into one that starts with the data)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from cli_process import assert_one_line_error, run_cli
from incidentlens.analysis import analyze
from incidentlens.analysis.pipeline import ALERT_LOOKBACK
from incidentlens.cli import app
from incidentlens.eval.nezha import evaluate_nezha
from incidentlens.report import build_postmortem, executive_summary
from incidentlens.report.render_html import render_html
from incidentlens.report.render_markdown import render_markdown
from incidentlens.telemetry import load_telemetry
from test_analyze_bad_input import incident_series, quiet_store, traffic_surge, write_metrics
from test_spans import AT, _system

runner = CliRunner()
AT_ISO = "2024-05-01T10:20:00Z"


@pytest.fixture(scope="module")
def system(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return _system(tmp_path_factory.mktemp("gateway-order-payment"))


@pytest.fixture(scope="module")
def at_alert(system: tuple[Path, Path]):
    spans, logs = system
    return analyze(load_telemetry(traces=spans, logs=logs), at=AT)


def test_an_alert_time_where_nothing_can_be_detected_is_taken_as_the_start(at_alert):
    assert at_alert.detected
    assert at_alert.detection["detector"] == "known onset"
    assert "no metrics" in at_alert.detection["undetected"]
    assert at_alert.incident_window["start"] == AT_ISO
    assert at_alert.hypotheses[0].service == "payment"


def test_the_detectors_own_answer_stays_in_the_evidence(at_alert):
    titles = [e.title for e in at_alert.evidence if e.kind == "detection"]
    assert any(t.startswith("known onset:") and "no window detected there" in t for t in titles)
    assert any("no incident found" in t for t in titles)


def test_without_an_alert_time_nothing_is_taken_as_a_start(system: tuple[Path, Path]):
    spans, logs = system
    result = analyze(load_telemetry(traces=spans, logs=logs))
    assert not result.detected and "no metrics" in result.reason


def test_an_alert_after_the_data_is_not_taken_as_the_start(system: tuple[Path, Path], tmp_path: Path):
    # an alert whose time the data does not reach (a lagging export): the detector's answer, not an input error
    spans, logs = system
    result = runner.invoke(app, ["analyze", "--traces", str(spans), "--logs", str(logs), "--at",
                                 "2024-05-02T10:20:00Z", "--json", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    analysis = json.loads(result.stdout)
    assert analysis["detected"] is False and "no metrics" in analysis["reason"]
    assert analysis["detection"]["undetected"] is None
    assert "warning: --at 2024-05-02T10:20:00Z lies outside the data" in result.stderr  # said, on stderr


def test_an_alert_in_a_surge_of_demand_without_harm_is_not_made_an_incident(tmp_path: Path):
    # the detector's window is load, and T taken as the start shows the same load, so nothing is explained; a
    # start the user gives (--onset at) is still an incident's
    store = traffic_surge(tmp_path)
    alert = datetime(2024, 5, 1, 6, 50)
    result = analyze(store, at=alert)
    assert result.detected is False and result.reason.startswith("only load moved")
    assert result.detection["detector"] == "robust" and result.hypotheses == []
    assert analyze(store, at=alert, onset="at").detected


def test_an_alert_on_a_quiet_day_names_nothing(tmp_path: Path):
    # noise around a steady level all day, the alert at 06:40: nothing is detected there and nothing moved after it
    result = analyze(quiet_store(tmp_path), at=datetime(2024, 5, 1, 6, 40))
    assert result.detected is False and result.hypotheses == [] and result.verdict is None
    assert result.reason.startswith("no incident window detected at 2024-05-01T06:40:00Z and nothing moved after it")
    titles = [e.title for e in result.evidence]
    assert any("2024-05-01T06:40:00Z taken as the start" in t for t in titles), "what was tried is cited"


@pytest.fixture(scope="module")
def after_a_burst(tmp_path_factory: pytest.TempPathFactory):
    # payment fails for two minutes from AT and recovers as the alert (held for two minutes) fires: nothing moved
    # after the alert time itself
    spans, logs = _system(tmp_path_factory.mktemp("burst"), recovers_at=AT + timedelta(minutes=2))
    return analyze(load_telemetry(traces=spans, logs=logs), at=AT + timedelta(minutes=2))


def test_where_nothing_moved_after_the_alert_time_the_start_is_the_first_minute_before_it_that_did(after_a_burst):
    assert after_a_burst.detected
    assert after_a_burst.incident_window["start"] == "2024-05-01T10:21:00Z"
    assert after_a_burst.detection["alert_at"] == "2024-05-01T10:22:00Z"
    assert after_a_burst.hypotheses[0].service == "payment"
    titles = [e.title for e in after_a_burst.evidence if e.kind == "detection"]
    assert any("2024-05-01T10:21:00Z taken as the start, 1 min before the alert time 2024-05-01T10:22:00Z" in t
               for t in titles)


def test_the_review_says_the_start_lies_before_the_alert_time(after_a_burst):
    pm = build_postmortem(after_a_burst)
    assert pm.detection.alert_at == datetime(2024, 5, 1, 10, 22, tzinfo=UTC)
    assert pm.summary.text.startswith("From 2024-05-01 10:21 UTC, 1 min before the alert time, to ")
    assert any(line.startswith("Start: 1 min before the alert time given (--at, or an alert's startsAt: "
                               "2024-05-01 10:22 UTC)") for line in executive_summary(pm))
    assert "Nothing after the alert time itself could be explained" in pm.detection.narrative.text
    # the attempt at the alert time, which found nothing to explain, is cited beside the start taken before it
    cited = {e.id: e.title for e in after_a_burst.evidence if e.id in after_a_burst.detection["evidence"]}
    assert any("2024-05-01T10:22:00Z taken as the start (the alert time given" in t for t in cited.values())
    assert pm.timeline[0].event.startswith("1 min before the alert time taken as the incident's start")
    assert "| **Examined (from 1 min before the alert time)** |" in render_markdown(pm)
    assert "Start (before the alert)" in render_html(pm)
    assert pm.grounding.issues == []


def test_a_start_is_looked_for_no_further_back_than_the_lookback(tmp_path: Path):
    # noise all day and nothing else: neither the alert time nor any of the minutes before it shows a change
    result = analyze(quiet_store(tmp_path), at=datetime(2024, 5, 1, 6, 40))
    assert result.detected is False
    assert result.reason.endswith(f"nor after any of the {ALERT_LOOKBACK.total_seconds() / 60:g} minutes before it")


def test_a_start_is_not_looked_for_where_too_little_data_lies_before_it(tmp_path: Path):
    # a quiet day alerting at its third minute: a start at its first would hold one sample of baseline, against
    # which hours of noise move
    result = analyze(quiet_store(tmp_path), at=datetime(2024, 5, 1, 0, 3))
    assert result.detected is False
    assert result.detection["alert_at"] is None
    assert result.reason.endswith("nothing moved after it: no service's metric series or WARN/ERROR lines shifted "
                                  "against the data before it (no traces for this period)"), \
        "no minute before it was tried"


def test_nothing_moved_names_only_the_sources_that_held_data(tmp_path: Path):
    # metrics and logs, no traces (as Nezha OnlineBoutique 12:27:23 with its traces and metrics has no log file):
    # "no service's metric series, WARN/ERROR lines or traced requests shifted" said the traces had been seen quiet
    result = analyze(quiet_store(tmp_path), at=datetime(2024, 5, 1, 6, 40))
    assert ("no service's metric series or WARN/ERROR lines shifted against the data before it (no traces for this "
            "period)") in result.reason
    assert "traced requests" not in result.reason


def test_one_minute_tried_before_the_alert_time_is_said_so(tmp_path: Path):
    # an alert 21 minutes into a quiet day: only its 20th minute leaves enough data before it to be tried
    result = analyze(quiet_store(tmp_path), at=datetime(2024, 5, 1, 0, 21))
    assert result.detected is False
    assert result.reason.endswith("; nor after the minute before it")


def test_the_review_says_the_start_is_the_at_time_and_why_nothing_was_detected(at_alert):
    pm = build_postmortem(at_alert)
    assert pm.detection.onset == "given" and "no metrics" in pm.detection.undetected
    assert "detected no incident window at the alert time" in pm.detection.narrative.text
    start = "Start: the alert time given (--at, or an alert's startsAt); no incident window detected there"
    assert any(line.startswith(start) for line in executive_summary(pm))
    assert pm.grounding.issues == []


def test_the_review_calls_a_start_taken_from_an_alert_the_alert_time_not_the_given_start(at_alert):
    pm = build_postmortem(at_alert)
    text = render_markdown(pm)
    assert "given start" not in text and "start was given" not in text and "(start given)" not in text
    assert pm.summary.text.startswith("From 2024-05-01 10:20 UTC, the alert time, to ")
    assert pm.timeline[0].event == "the alert time taken as the incident's start; no incident window detected there"
    assert "at the alert time" in pm.detection.sooner[0]
    assert "| **Examined (from the alert time)** |" in text


def test_the_cli_reports_why_the_at_time_became_the_start(system: tuple[Path, Path], tmp_path: Path):
    spans, logs = system
    result = runner.invoke(app, ["analyze", "--traces", str(spans), "--logs", str(logs), "--at", AT_ISO, "--json",
                                 "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    detection = json.loads(result.output)["detection"]
    assert detection["detector"] == "known onset" and "no metrics" in detection["undetected"]


@pytest.mark.dataset
def test_onlineboutique_faults_are_named_from_an_alert_a_minute_after_them(datasets: Path):
    data = datasets / "nezha-onlineboutique"
    if not data.is_dir():
        pytest.skip(f"{data} not found")
    # 12:10 and 12:18: the detector's windows over the hour before chain into one that starts with the data (no
    # baseline before it), or nothing stands out at the alert; from the alert time, frontend comes first
    report = evaluate_nezha(data, limit=3, alert_after=timedelta(seconds=60))
    ranks = {f.inject_time[11:16]: f.rank for f in report.faults}
    assert ranks["12:10"] == 1 and ranks["12:18"] == 1
    assert report.summary()["alert_after"] == 60


@pytest.mark.parametrize(("value", "words"), [
    (["-1"], ("--alert-after", "greater than or equal to 0")),
    (["soon"], ("--alert-after", "valid integer")),
    (["60", "--ranker", "signals"], ("--alert-after: only with --ranker analysis",)),
    (["60", "--null"], ("--null and --alert-after",)),
])
def test_a_bad_alert_delay_is_one_line_and_exit_2_with_nothing_on_stdout(tmp_path: Path, value: list[str],
                                                                        words: tuple[str, ...]):
    ran = run_cli("eval", "nezha", "--data", str(tmp_path), "--json", "--alert-after", *value)
    assert_one_line_error(ran, *words)
    assert ran.stdout == ""


@pytest.fixture(scope="module")
def after_an_earlier_incident(tmp_path_factory: pytest.TempPathFactory):
    # inventory's latency and errors rose from 10:08 to 10:15 and came back; payment fails from AT (10:20) and the
    # alert fires a minute later: the detector's nearest window is inventory's, over before the alert
    folder = tmp_path_factory.mktemp("earlier-incident")
    spans, logs = _system(folder)
    minutes = np.arange(-60, 26)  # 09:00 .. 10:25, minutes from START (10:00)
    metrics = write_metrics(folder / "metrics.csv", minutes + 600, incident_series(minutes, 8, 15),
                            service="inventory")
    return analyze(load_telemetry(metrics=metrics, traces=spans, logs=logs), at=AT + timedelta(minutes=1))


def test_a_window_over_before_the_alert_gives_way_to_what_moved_at_the_alert(after_an_earlier_incident):
    result = after_an_earlier_incident
    assert result.hypotheses[0].service == "payment"
    assert result.incident_window["start"] >= "2024-05-01T10:20:00Z"
    titles = [e.title for e in result.evidence if e.kind == "detection"]
    assert any("series moved between 2024-05-01T10:08" in t for t in titles), "the earlier window stays cited"


def test_an_alert_after_a_window_set_aside_is_tried_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    # the surge (06:40-07:40, load without harm) is the window nearest an 08:00 alert, over before it: the alert time
    # and the minutes before it are tried once, not again after the surge is set aside
    from incidentlens.analysis import pipeline

    starts: list[datetime] = []
    tried = pipeline._from_known_onset
    monkeypatch.setattr(pipeline, "_from_known_onset", lambda store, at, *a, **k: starts.append(at) or tried(
        store, at, *a, **k))
    result = analyze(traffic_surge(tmp_path), at=datetime(2024, 5, 1, 8, 0))
    assert result.detected is False and result.reason.startswith("no incident window detected at 2024-05-01T08:00")
    assert len(starts) == len(set(starts)) == 1 + int(ALERT_LOOKBACK / timedelta(minutes=1))
    titles = [e.title for e in result.evidence if e.kind == "detection"]
    assert any(t.startswith("window 2024-05-01T06:40:00Z .. 2024-05-01T07:40:00Z set aside: only load") for t in titles)
