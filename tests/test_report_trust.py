"""What a review claims against what its data carries: each test a sentence a senior SRE read in a Nezha review
(`investigate` as a user runs it, session 29) that said more than its evidence, on a small generated analysis."""

from __future__ import annotations

from incidentlens.report import build_postmortem
from incidentlens.report.build import runbook_checklist
from incidentlens.report.render_markdown import render_markdown
from test_report_data import top_cause_analysis


def test_with_no_events_given_the_review_says_no_trigger_could_be_looked_for_not_that_none_was_seen():
    # every Nezha review read "The data shows no deploy, config change or other event that set it off" with no
    # events given at all: what was not looked for read as looked for and not found
    analysis = top_cause_analysis("unknown", "db-proxy changed")
    analysis["sources"] = {"used": ["metrics", "logs"], "missing": ["traces"], "events_given": False}
    pm = build_postmortem(analysis)
    text = render_markdown(pm)
    assert "The data shows no deploy" not in text
    assert ("No deploys, config changes or other events were given, so what set it off could not be looked for"
            in text)
    assert pm.action_items[0].description.startswith(
        "Look for a change to db-proxy before the onset (no deploy or config events were given to show one) and "
        "revert it if there is one")
    assert any("no deploy or config events were given" in step for step in runbook_checklist(pm))


def test_with_events_given_and_none_before_the_onset_the_review_says_the_data_shows_none():
    analysis = top_cause_analysis("unknown", "db-proxy changed")
    analysis["sources"] = {"used": ["metrics", "logs"], "missing": ["traces"], "events_given": True}
    pm = build_postmortem(analysis)
    assert "The data shows no deploy, config change or other event that set it off." in render_markdown(pm)
    assert "which the data does not show" in pm.action_items[0].description
