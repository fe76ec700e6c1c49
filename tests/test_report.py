"""The postmortem: schema, severity, grounding, and how a model's narrative is accepted or replaced."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

from incidentlens.report import (
    Postmortem,
    build_postmortem,
    check_grounding,
    executive_summary,
    mitigations_for,
    postmortem_json_schema,
    runbook_checklist,
)
from incidentlens.report import formatting as fmt
from incidentlens.report.build import validate_grounding
from incidentlens.report.playbooks import playbook_kind
from incidentlens.report.render_markdown import render_markdown
from test_report_data import no_incident_analysis, pool_exhaustion_analysis

SCHEMA_FILE = Path(__file__).resolve().parents[1] / "docs" / "postmortem.schema.json"
TOP_LEVEL_KEYS = {"schema_version", "detected", "title", "incident_window", "summary", "impact", "root_cause",
                  "trigger", "hypotheses", "detection", "timeline", "action_items", "lessons", "runbook", "evidence",
                  "generated_by"}


@pytest.fixture
def analysis() -> dict:
    return pool_exhaustion_analysis()


def test_a_built_postmortem_validates_against_the_published_json_schema(analysis):
    document = build_postmortem(analysis).to_dict()
    jsonschema.validate(document, json.loads(SCHEMA_FILE.read_text()))
    assert document.keys() >= TOP_LEVEL_KEYS
    assert Postmortem.model_validate(document).to_dict() == document


def test_the_schema_file_is_current():
    current = json.dumps(postmortem_json_schema(), indent=2) + "\n"
    assert SCHEMA_FILE.read_text() == current, (
        "docs/postmortem.schema.json is stale: regenerate it with "
        "python -c 'import json; from incidentlens.report import postmortem_json_schema as s; "
        "print(json.dumps(s(), indent=2))' > docs/postmortem.schema.json")


def test_the_review_carries_the_analysis_findings(analysis):
    pm = build_postmortem(analysis)
    assert pm.status == "draft"
    assert pm.root_cause.service == "db-proxy"
    assert pm.root_cause.kind == "connection_pool_exhaustion"
    assert pm.trigger.description == "deploy payments v2.3.1"
    assert [h.rank for h in pm.hypotheses] == [1, 2]
    assert pm.impact.requests_failed == 9234
    assert pm.impact.failed_share == pytest.approx(9234 / 162000)
    assert pm.recovery.time_to_recover_minutes == 54
    assert pm.incident_window.start.isoformat() == "2024-05-01T10:12:00+00:00"
    assert pm.to_dict()["incident_window"]["start"] == "2024-05-01T10:12:00Z"


def test_severity_follows_the_stated_rule(analysis):
    assert build_postmortem(analysis).severity == "SEV2"  # peak error rate 18.7% against 0.4%: >= 5, < 20 points
    analysis["impact"]["peak_error_rate"]["value"] = 0.31
    pm = build_postmortem(analysis)
    assert pm.severity == "SEV1"
    assert "error rate >= 20 points over its baseline (error_ratio 31.0% against 0.4% before)" in pm.severity_rule


def test_every_timeline_entry_cites_evidence_in_the_appendix(analysis):
    pm = build_postmortem(analysis)
    ids = {e.id for e in pm.evidence}
    assert pm.timeline == sorted(pm.timeline, key=lambda e: e.t)
    assert all(entry.evidence and set(entry.evidence) <= ids for entry in pm.timeline)
    assert {e.phase for e in pm.timeline} >= {"lead-up", "onset", "peak", "recovery"}


def test_the_validator_checks_every_statement_before_the_review_is_written(analysis):
    pm = build_postmortem(analysis)
    assert pm.grounding.statements >= 20
    assert pm.grounding.issues == []
    pm.timeline[0].event = "deploy payments v2.3.1 took 17 minutes"
    issues = validate_grounding(pm, analysis).issues
    assert issues == ["timeline[1]: number '17 minutes' is not in the evidence"]


def test_template_prose_is_itself_grounded(analysis):
    pm = build_postmortem(analysis)
    texts = [pm.summary.text, pm.impact.narrative.text, pm.root_cause.narrative.text, pm.detection.narrative.text,
             pm.recovery.narrative.text, *[e.event for e in pm.timeline], *executive_summary(pm)[1:6]]
    assert {text: check_grounding(text, analysis) for text in texts} == {text: [] for text in texts}


def test_grounding_rejects_an_invented_number_and_an_invented_time(analysis):
    reasons = check_grounding("The error rate peaked at 23.4% at 10:47 UTC.", analysis)
    assert reasons == ["time '10:47 UTC' is not in the evidence", "number '23.4%' is not in the evidence"]


@pytest.mark.parametrize("text", [
    "Error rate peaked at 18.7% (0.187) against 0.4% before.",
    "About 9.2k of 162,000 requests (5.7%) failed; 1,873 users were affected.",
    "It lasted 54 minutes, from 10:12 to 11:06 UTC on 2024-05-01.",
    "Started 2024-05-01T10:12:00Z; the deploy landed at 10:09:30 and the first timeout at May 1, 2024 10:13:05.",
    "p95 latency reached 2,450 ms, 13.6x its 180 ms baseline; errors were 46.8x the baseline.",
    "db-proxy's errors led its callers by 3 min; the pool sat at 100 of 100 connections.",
    "The 3 services affected were db-proxy, payments and api-gateway, after deploy payments v2.3.1.",
])
def test_grounding_accepts_real_figures_however_they_are_formatted(analysis, text):
    assert check_grounding(text, analysis) == []


@pytest.mark.parametrize(("text", "unsupported"), [
    ("It lasted 75 minutes.", "75 minutes"),
    ("About 12,000 requests failed.", "12,000"),
    ("It began at 2024-05-01 09:58 UTC.", "2024-05-01 09:58 UTC"),
    ("The deploy of v2.4.0 caused it.", "v2.4.0"),
    ("Latency was 20x the baseline.", "20x"),
])
def test_grounding_names_what_it_cannot_find(analysis, text, unsupported):
    reasons = check_grounding(text, analysis)
    assert len(reasons) == 1 and f"'{unsupported}'" in reasons[0]


def test_a_narrative_that_invents_a_number_and_a_time_is_replaced_by_the_template(analysis):
    invented = "Checkout failed for 42,000 users from 09:47 UTC until noon."
    honest = "db-proxy's pool stayed at 100 connections from 10:12 to 11:06 UTC, failing 9,234 requests."
    pm = build_postmortem(analysis, narrative={"summary": invented, "impact": honest})
    assert pm.summary.grounded_by == "template"
    assert "42,000" not in pm.summary.text and "09:47" not in pm.summary.text
    assert any("42,000" in reason for reason in pm.summary.rejected)
    assert any("09:47" in reason for reason in pm.summary.rejected)
    assert pm.impact.narrative.grounded_by == "model"
    assert pm.impact.narrative.text == honest
    document = pm.to_dict()
    document["summary"]["rejected"] = []
    assert "42,000" not in json.dumps(document)  # only the rejection reasons mention the invented figure


def test_generated_by_is_recorded(analysis):
    author = {"llm": "openai", "model": "gpt-4o-mini", "degraded": True,
              "degraded_reason": "HTTP 429 after 3 attempt(s)",
              "model_requests": 1, "http_requests": 3, "model_tool_calls": 0, "planner_tool_calls": 11,
              "tokens": {"prompt": 0, "completion": 0}}
    pm = build_postmortem(analysis, generated_by=author)
    assert pm.to_dict()["generated_by"] == author


def test_action_items_and_runbook_come_from_the_root_cause_playbook(analysis):
    pm = build_postmortem(analysis)
    types = {a.type for a in pm.action_items}
    assert types == {"mitigate", "prevent", "detect", "process"}
    assert all("db-proxy" in a.description or a.owner == "payments team" for a in pm.action_items)
    # the deploy that set it off earns a canary item for the deploying service
    assert any(a.owner == "payments team" and "canary" in a.description for a in pm.action_items)
    assert all(set(a.evidence) <= {e.id for e in pm.evidence} and a.evidence for a in pm.action_items)
    checklist = runbook_checklist(pm)
    assert checklist[0].startswith("[ ] Confirm: db-proxy")
    assert any("Verify" in step for step in checklist)


@pytest.mark.parametrize(("kind", "expected"), [
    ("connection_pool_exhaustion", "connection_pool_exhaustion"), ("db_pool_exhausted", "connection_pool_exhaustion"),
    ("cache_miss_storm", "cache_miss_storm"), ("bad_deploy", "bad_deploy"), ("region_outage", "region_outage"),
    ("oom_restart_loop", "oom_restart_loop"), ("provider_throttling", "provider_throttling"),
    ("cpu_saturation", "cpu_saturation"), ("cosmic rays", "unknown"), (None, "unknown"),
])
def test_every_mechanism_has_a_playbook(kind, expected):
    assert playbook_kind(kind) == expected
    items = mitigations_for(kind, ["orders"])
    assert {"mitigate", "detect"} <= {a.type for a in items}
    assert all("orders" in a.description for a in items)


def test_executive_summary_fits_ten_lines(analysis):
    lines = executive_summary(build_postmortem(analysis))
    assert 5 <= len(lines) <= 10
    assert lines[0].startswith("SEV2")
    assert any(line.startswith("Root cause: database connection pool exhaustion in db-proxy") for line in lines)


def test_no_incident_says_so_and_lists_what_was_checked():
    pm = build_postmortem(no_incident_analysis())
    assert not pm.detected and pm.severity is None and pm.root_cause is None
    assert pm.summary.text.startswith("No incident was detected: no series left its baseline band")
    assert pm.checked and "Robust detector over 6 series" in pm.checked[0]
    assert executive_summary(pm)[0].startswith("No incident detected")
    jsonschema.validate(pm.to_dict(), json.loads(SCHEMA_FILE.read_text()))


def test_every_narrative_section_reports_its_own_rejection(analysis):
    invented = "It cost 98,765 requests."
    sections = ("summary", "impact", "root_cause", "detection", "response", "recovery", "lessons")
    pm = build_postmortem(analysis, narrative=dict.fromkeys(sections, invented))
    narratives = pm.narratives()
    assert set(narratives) == set(sections)
    for name in sections:
        assert narratives[name].grounded_by == "template"
        assert narratives[name].rejected == ["number '98,765' is not in the evidence"], name


@pytest.mark.parametrize(("text", "unsupported"), [
    ("It started at 3pm.", "3pm"),
    ("The error budget burned for 3 days.", "3 days"),
    ("The cluster ran out of its 8GB of memory.", "8GB"),
    ("Latency reached 4.2 s.", "4.2 s"),
])
def test_grounding_reads_units_and_clock_hours(analysis, text, unsupported):
    assert [f"'{unsupported}'" in reason for reason in check_grounding(text, analysis)] == [True]


def test_grounding_skips_names_that_contain_digits(analysis):
    text = "p95 and 5xx errors on the 1st retry in eu-west-1, request 7a01e364ff9fc10d, evidence impact-7ddefa3c."
    assert check_grounding(text, analysis) == []


def test_grounding_converts_milliseconds_to_seconds(analysis):
    assert check_grounding("p95 latency reached 2.45 s, timeouts fired after 5 s.", analysis) == []


def test_a_hypothesis_whose_test_failed_is_only_suspected(analysis):
    analysis["hypotheses"][0]["test_passed"] = False
    pm = build_postmortem(analysis)
    assert pm.title.startswith("Suspected database connection pool exhaustion in db-proxy")
    assert "The leading hypothesis, which the data does not confirm, is" in pm.summary.text
    assert pm.grounding.issues == []


def test_an_unknown_mechanism_is_named_as_such(analysis):
    analysis["hypotheses"][0]["kind"] = "unknown"
    pm = build_postmortem(analysis)
    assert pm.title == "Failure in db-proxy after deploy payments v2.3.1 (mechanism undetermined)"
    assert {a.type for a in pm.action_items} >= {"mitigate", "detect"}


def test_requests_whose_failures_the_data_does_not_record_are_not_called_unfailed(analysis):
    analysis["impact"]["requests_failed"] = None  # e.g. traces with no status column
    pm = build_postmortem(analysis)
    text = pm.impact.narrative.text
    # was "whether they failed is not recorded in the data", beside the error rate (18.7%) that says some did
    assert "162,000 requests in the window (no failure count in the data)" in text and "Error rate" in text
    assert "whether they failed" not in text
    assert "of 162,000 requests" not in text  # no "0 of N requests failed (0.0%)"
    assert "| Requests failed | no count in the data |" in render_markdown(pm)
    assert not check_grounding(pm.impact.narrative.text, analysis)


def test_only_new_problem_lines_are_said_to_name_the_failure(analysis):
    named = "Logs named the failure directly: new error templates appeared with the onset"
    analysis["templates"][0]["count_problems_window"] = 812  # the pool timeouts, logged as errors
    assert named in build_postmortem(analysis).lessons.went_well
    analysis["templates"][0]["count_problems_window"] = 0  # a new INFO line: a request type, not a failure
    assert named not in build_postmortem(analysis).lessons.went_well


def test_a_share_from_an_empty_baseline_has_no_lift(analysis):
    analysis["contributors"][0].update(baseline_share=0.0, lift=36.0)  # the lift of a floor of half a line
    factor = build_postmortem(analysis).contributing_factors[0].description
    assert "against 0.0% of" in factor and "none in the baseline" in factor and "36.0x" not in factor


@pytest.mark.parametrize(("minutes", "text"), [(1, "60 s"), (2, "2 minutes"), (1.5, "90 s"), (2.5, "2.5 minutes"),
                                               (0, "0 minutes")])
def test_minutes_read_as_english(minutes, text):
    assert fmt.minutes(minutes) == text


def test_info_lines_alone_new_or_surging_are_no_contributing_factor(analysis):
    def factors() -> list[str]:
        return [f.description for f in build_postmortem(analysis).contributing_factors]

    analysis["templates"][0]["count_problems_window"] = 812  # the pool timeouts, logged as errors
    assert any("Timeout acquiring connection" in f for f in factors())
    analysis["templates"][0]["count_problems_window"] = 0  # a request type the baseline did not happen to hold
    assert not any("Timeout acquiring connection" in f for f in factors())
    analysis["templates"][0]["status"] = "surging"  # more INFO lines, payments logged as the traffic rose: context
    assert not any("Timeout acquiring connection" in f for f in factors())


def test_the_runbook_searches_for_lines_that_mark_the_failure_not_a_new_info_line(analysis):
    def searches() -> list[str]:
        return [step for step in build_postmortem(analysis).runbook if step.startswith("Search ")]

    analysis["templates"][0]["count_problems_window"] = 812
    assert searches() and "Timeout acquiring connection" in searches()[0]
    analysis["templates"][0]["count_problems_window"] = 0
    assert searches() == []
