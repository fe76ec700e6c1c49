"""`investigate --onset at`: the agent team and the incident review when the incident's start is known (an alert, an
injection, a page) — on a small generated gateway -> order -> payment system and on a real Nezha TrainTicket fault."""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from datetime import datetime, timedelta
from pathlib import Path

import jsonschema
import pytest
from typer.testing import CliRunner

from fake_openai import FakeOpenAI, replay_planner, role_of, tool_call
from incidentlens.agents import investigate
from incidentlens.agents.brains import RetryPolicy
from incidentlens.agents.context import InvestigationContext
from incidentlens.agents.investigation import _brief
from incidentlens.agents.planner import Transcript, _facts
from incidentlens.agents.tools import bounded, detect_incident_window
from incidentlens.cli import app
from incidentlens.errors import InputError
from incidentlens.report import build_postmortem, write_reports
from incidentlens.telemetry import load_telemetry
from test_anchored import _cpu_contention_beside_logs
from test_spans import AT, _system

runner = CliRunner()
AT_ISO = "2024-05-01T10:20:00Z"
ROUTE_EXCEPTION = datetime(2023, 1, 29, 11, 4, 5)
SCHEMA_FILE = Path(__file__).resolve().parents[1] / "docs" / "postmortem.schema.json"


@pytest.fixture(scope="module")
def system(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return _system(tmp_path_factory.mktemp("gateway-order-payment"))


@pytest.fixture(scope="module")
def known_onset_run(system: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory):
    spans, logs = system
    trace = tmp_path_factory.mktemp("trace") / "trace.jsonl"
    store = load_telemetry(traces=spans, logs=logs)
    return investigate(store, llm="offline", at=AT, onset="at", trace_path=trace)


def test_the_offline_team_with_a_known_onset_names_payment_from_the_given_start(known_onset_run):
    pm = known_onset_run.postmortem
    assert known_onset_run.exit_reason != "error"
    assert pm.root_cause is not None and pm.root_cause.service == "payment"
    assert pm.incident_window.start.replace(tzinfo=None) == AT
    assert known_onset_run.analysis.detection["detector"] == "known onset"
    assert known_onset_run.trace_path.is_file()
    assert len(known_onset_run.trace_path.read_text().splitlines()) == len(known_onset_run.trace) > 0
    assert pm.grounding.issues == []


def test_the_review_says_the_start_was_given_and_claims_no_detection_or_recovery(known_onset_run, tmp_path: Path):
    pm = known_onset_run.postmortem
    detection = pm.detection
    assert detection.onset == "given" and detection.detected_at is None and detection.time_to_detect_minutes is None
    assert detection.narrative.text.startswith("The incident's start was given (an alert, an injection or a page at "
                                               "2024-05-01 10:20 UTC); IncidentLens did not detect it")
    # the first signals after the start, each placed against it, then the catalogue's detection advice
    assert "would have fired at its first line, 2024-05-01 10:20 UTC, at the given start" in detection.sooner[0]
    assert pm.recovery.recovered_at is None and pm.recovery.time_to_recover_minutes is None
    assert pm.recovery.narrative.text.startswith("Not measured: with a given start the window runs to")
    start, *_, end = pm.timeline
    assert start.t.replace(tzinfo=None) == AT and start.event.startswith("incident start given")
    assert end.event == "end of the examined window (the end of the data); recovery not assessed"
    assert "recovery" not in {entry.phase for entry in pm.timeline}
    assert not any("peak" in entry.event for entry in pm.timeline)  # no metric moved: no peak was measured
    assert pm.peak is None
    assert any(line.startswith("Time to detect cannot be measured") for line in pm.lessons.went_wrong)
    assert pm.lessons.got_lucky == []  # "recovered without an intervention" is not known
    paths = write_reports(pm, tmp_path)
    jsonschema.validate(pm.to_dict(), json.loads(SCHEMA_FILE.read_text()))
    for path in paths.values():
        text = path.read_text()
        for claim in ("detector flagged", "Detected:", "back within their baseline band", "recovered without",
                      "caught in the metrics", "The incident lasted", "detected it sooner"):
            assert claim not in text, (path.name, claim)
    summary = "Start: given (an alert, an injection or a page), not detected by IncidentLens"
    assert summary in paths["markdown"].read_text()
    assert "Start (given)" in paths["html"].read_text()


def test_prose_that_has_a_given_start_detected_or_recovered_falls_back_to_the_template(known_onset_run):
    narrative = {"detection": "The incident was detected at 10:20 UTC.",
                 "recovery": "Payment recovered at 10:25:51 UTC.",
                 "summary": "Payment failed from 10:20 UTC; the start was given and was not detected by IncidentLens."}
    pm = build_postmortem(known_onset_run.analysis, narrative)
    verdicts = pm.narratives()
    assert verdicts["detection"].grounded_by == "template" and "'detected at'" in verdicts["detection"].rejected[0]
    assert verdicts["recovery"].grounded_by == "template" and "'recovered'" in verdicts["recovery"].rejected[0]
    assert verdicts["summary"].grounded_by == "model"


def test_report_from_an_analyze_onset_at_analysis_says_the_start_was_given(system: tuple[Path, Path],
                                                                          tmp_path: Path):
    spans, logs = system
    analyzed = runner.invoke(app, ["analyze", "--traces", str(spans), "--logs", str(logs), "--at", AT_ISO, "--onset",
                                   "at", "--out", str(tmp_path)])
    assert analyzed.exit_code == 0, analyzed.output
    reported = runner.invoke(app, ["report", "--analysis", str(tmp_path / "analysis.json"), "--out", str(tmp_path)])
    assert reported.exit_code == 0, reported.output
    assert "Start: given (an alert, an injection or a page), not detected by IncidentLens" in reported.output
    assert json.loads((tmp_path / "report.json").read_text())["detection"]["onset"] == "given"


def test_the_coordinator_is_told_the_start_is_known(system: tuple[Path, Path]):
    store = load_telemetry(traces=system[0], logs=system[1])
    known = _brief(store, AT, "at")
    assert f"Its start is known: {AT.isoformat()}Z" in known and "not detected" in known
    detected = _brief(store, AT, "detect")
    assert "known" not in detected and f"near {AT.isoformat()}Z" in detected


def test_a_model_cannot_move_a_given_start_or_switch_detection_back_on(system: tuple[Path, Path]):
    store = load_telemetry(traces=system[0], logs=system[1])
    ctx = InvestigationContext(store, at=AT, onset="at")
    payload, state = detect_incident_window(ctx, at="2024-05-01T10:05:00Z")
    assert ctx.at == AT and ctx.onset == "at"
    assert payload["onset"] == "given" and payload["start_given"] == AT_ISO
    assert "was not used" in payload["at_ignored"]
    assert state["incident_window"]["start"] == AT_ISO
    # in detect mode the model's pick still steers detection, and is not taken as a start where nothing can be
    # detected (no metrics to detect in): only the user's alert time is
    free = InvestigationContext(store, at=None, onset="detect")
    payload, _ = detect_incident_window(free, at="2024-05-01T10:05:00Z")
    assert free.at == datetime(2024, 5, 1, 10, 5) and payload["onset"] == "detected"
    assert payload["detected"] is False and "no metrics" in payload["reason"]
    alert = InvestigationContext(store, at=AT, onset="detect")
    payload, _ = detect_incident_window(alert, at=AT_ISO)
    assert payload["onset"] == "the at time" and "no metrics" in payload["note"]
    assert payload["incident_window"]["start"] == AT_ISO


def test_a_model_over_http_that_asks_for_another_start_still_gets_the_given_one(system: tuple[Path, Path]):
    def wanders(body: dict, n: int) -> dict:
        """A model whose first move asks detection to look at 10:05, fifteen minutes before the given start."""
        first = role_of(body) == "coordinator" and not any(m["role"] == "assistant" for m in body["messages"])
        if first:
            return tool_call("detect_incident_window", {"at": "2024-05-01T10:05:00Z"}, "wander-1")
        return replay_planner(body, n)

    store = load_telemetry(traces=system[0], logs=system[1])
    with FakeOpenAI(wanders) as fake:
        result = investigate(store, llm="openai-compatible", llm_url=fake.url, at=AT, onset="at",
                             retry=RetryPolicy(attempts=2, backoff_s=0.01, timeout_s=5.0))
    brief = next(m["content"] for m in fake.requests[0]["messages"] if m["role"] == "user")
    assert f"Its start is known: {AT.isoformat()}Z" in brief
    answered = next(m["content"] for m in fake.requests[1]["messages"] if m["role"] == "tool")
    assert '"onset":"given"' in answered and "was not used" in answered
    assert not result.generated_by["degraded"]
    assert result.postmortem.incident_window.start.replace(tzinfo=None) == AT
    assert result.postmortem.detection.onset == "given"
    assert result.postmortem.root_cause.service == "payment"


def test_the_model_is_told_when_the_start_was_taken_before_the_alert_time(tmp_path: Path):
    # payment fails for two minutes and recovers as the alert fires: nothing moved after the alert time itself
    spans, logs = _system(tmp_path, recovers_at=AT + timedelta(minutes=2))
    ctx = InvestigationContext(load_telemetry(traces=spans, logs=logs), at=AT + timedelta(minutes=2),
                               onset="detect")
    payload, _ = detect_incident_window(ctx)
    assert payload["onset"] == "before the at time"
    note = payload["note"]
    assert "nothing after it could be explained (nothing moved, or only load)" in note
    assert "the window runs from 2024-05-01T10:21:00Z, the first minute before it at which something did" in note


def test_a_shortened_templates_result_still_hands_the_specialists_their_facts():
    # long Java log lines (as on Nezha) shorten a tool result until its lists end in a "... N more cut" note
    rows = [{"template": f"error {i} " + "x" * 280, "sample": "y" * 280, "services": ["s" * 200] * 10}
            for i in range(6)]
    shortened = bounded({"templates": rows})
    assert isinstance(shortened["templates"][-1], str) and len(shortened["templates"]) <= 3
    transcript = Transcript(results={"surging_templates": [{"error": False, "payload": shortened, "text": ""}]})
    facts = _facts(transcript)
    assert [name.split()[:2] for name in facts["templates"]] == [["error", "0"], ["error", "1"]]


def test_a_known_onset_needs_a_time(system: tuple[Path, Path]):
    store = load_telemetry(traces=system[0], logs=system[1])
    with pytest.raises(InputError, match="--onset at needs --at"):
        investigate(store, llm="offline", onset="at")
    with pytest.raises(InputError, match="--onset sometime: expected one of detect, at"):
        InvestigationContext(store, at=AT, onset="sometime")


def test_investigate_from_the_cli_with_a_known_onset(system: tuple[Path, Path], tmp_path: Path):
    spans, logs = system
    ran = runner.invoke(app, ["investigate", "--traces", str(spans), "--logs", str(logs), "--at", AT_ISO,
                              "--onset", "at", "--llm", "offline", "--out", str(tmp_path)])
    assert ran.exit_code == 0, ran.output
    for name in ("report.json", "report.md", "report.html", "evidence.json", "trace.jsonl"):
        assert (tmp_path / name).is_file(), name
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["root_cause"]["service"] == "payment"
    assert report["incident_window"]["start"] == AT_ISO


def test_investigate_onset_at_without_at_is_one_line_and_exit_2(system: tuple[Path, Path], tmp_path: Path):
    spans, logs = system
    completed = subprocess.run(
        [sys.executable, "-c", "from incidentlens.cli import main; main()", "investigate", "--traces", str(spans),
         "--logs", str(logs), "--onset", "at", "--llm", "offline", "--out", str(tmp_path)],
        capture_output=True, text=True, timeout=120,
    )
    assert completed.returncode == 2
    assert completed.stderr == "error: --onset at needs --at TIME (the incident's known start)\n"
    assert not (tmp_path / "report.json").exists()


@pytest.mark.dataset
def test_a_real_nezha_fault_investigated_from_its_injection_time_names_ts_route_service(datasets: Path,
                                                                                        tmp_path: Path):
    from incidentlens.eval.nezha import MetricsCut, fault_files, fault_store, load_faults, rca_dir

    data = datasets / "nezha-trainticket"
    if not data.is_dir():
        pytest.skip(f"{data} not found")
    fault = next(f for f in load_faults(data) if f.inject_time == ROUTE_EXCEPTION)
    day = rca_dir(data, fault.day)
    with tempfile.TemporaryDirectory(prefix="incidentlens-nezha-") as scratch:
        store, _ = fault_store(fault_files(day, fault), MetricsCut(day, Path(scratch)).around(fault.inject_time))
        result = investigate(store, llm="offline", at=fault.inject_time, onset="at",
                             trace_path=tmp_path / "trace.jsonl")
    assert result.exit_reason != "error"
    report = result.postmortem.to_dict()  # what report.json holds
    assert report["root_cause"]["service"] == fault.service == "ts-route-service"
    assert report["incident_window"]["start"] == "2023-01-29T11:04:05Z"
    assert report["detection"]["onset"] == "given" and report["grounding"]["issues"] == []


def test_the_model_is_told_where_a_given_start_window_over_metrics_alone_ends(tmp_path: Path):
    # a day of metrics alone, latency up from 09:30: the window is five samples, not the rest of the day, and what
    # the coordinator and the detection tool say must match the review's detection evidence
    day = datetime(2024, 5, 1)
    metrics = [{"ts": f"2024-05-01T{m // 60:02d}:{m % 60:02d}:00Z", "service": "api", "metric": "latency_ms",
                "value": 20.0 + (m % 7) + (60.0 if m >= 570 else 0.0)} for m in range(1440)]
    (tmp_path / "metrics.jsonl").write_text("\n".join(json.dumps(r) for r in metrics) + "\n")
    store = load_telemetry(metrics=tmp_path / "metrics.jsonl")
    at = day.replace(hour=9, minute=30)
    five_samples = "5 metric samples after the start, the longest window the metrics alone give"
    brief = _brief(store, at, "at")
    assert f"the window runs from it to {five_samples}" in brief and "end of the data" not in brief
    payload, _ = detect_incident_window(InvestigationContext(store, at=at, onset="at"))
    assert f"the window runs from it to {five_samples}" in payload["note"]
    assert "end of the data" not in payload["note"]


def test_the_tools_re_run_steps_over_the_window_the_analysis_used_so_no_finding_is_cited_twice(
        system: tuple[Path, Path]):
    # the analysis writes its window to the second; over the written one a tool's step queried a window a fraction
    # of a second off and gave the same finding again under a new id (TrainTicket 10:26: window end 10:28:12.006
    # read as 10:28:13, 14 of 46 evidence items twice)
    spans, logs = system
    at = AT + timedelta(milliseconds=250)
    run = investigate(load_telemetry(traces=spans, logs=logs), llm="offline", at=at, onset="at")

    assert run.analysis.spans[0][0] == at
    titles = [e.title for e in run.analysis.evidence]
    assert len(titles) == len(set(titles)), sorted(t for t in titles if titles.count(t) > 1)


def test_the_model_is_told_a_given_start_window_holds_the_first_metric_sample_after_it(tmp_path: Path):
    # the logs end 6 s after the start, and the window reaches on to the CPU sample at 13:33:09: the coordinator's
    # brief says why it ends there, as the detection evidence does, not "the end of the logs"
    at = datetime(2024, 5, 1, 13, 31, 54)
    store = _cpu_contention_beside_logs(tmp_path, at, logs_from=at.replace(second=0), seconds=61)
    brief = _brief(store, at, "at")
    assert ("the window runs from it to the first metric sample that measures the time after the start: the logs "
            "end 6 s after the start and say nothing of the rest") in brief
