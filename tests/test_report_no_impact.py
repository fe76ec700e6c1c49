"""A review says only what the data carries: where the window shows no harm (no service's latency or error metrics
rose and no WARN/ERROR lines surged against the baseline), its severity and summary claim no degradation: the
severity is undetermined when nothing moved at all, SEV4 when only load did, and the window's ordinary failed
requests and users no longer make it SEV3."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest

from incidentlens.analysis import analyze
from incidentlens.report import build_postmortem, executive_summary
from incidentlens.report.build import CHECK_THE_ALERT, _Builder
from incidentlens.report.render_html import render_html
from incidentlens.report.render_markdown import render_markdown
from incidentlens.report.schema import GeneratedBy
from test_analyze_bad_input import quiet_store, traffic_surge
from test_report_data import pool_exhaustion_analysis, top_cause_analysis

ALERT = datetime(2024, 5, 1, 6, 40)


def nothing_moved(analysis: dict, keep_series: int = 0) -> dict:
    """The analysis as if no service's before/after tests had moved: no hypothesis, an inconclusive verdict, and
    only the first `keep_series` of the series the detector found."""
    analysis["detection"]["series"] = analysis["detection"]["series"][:keep_series]
    analysis["hypotheses"] = []
    analysis["verdict"] = {"status": "inconclusive", "services": [],
                           "reason": "No single root cause found: no service moved beyond its baseline's noise"}
    return analysis


@pytest.fixture(scope="module")
def quiet_day(tmp_path_factory: pytest.TempPathFactory):
    """12 h of noise around a steady level (1% of requests failing all day), the start given at 06:40."""
    return build_postmortem(analyze(quiet_store(tmp_path_factory.mktemp("quiet")), at=ALERT, onset="at"))


def test_a_given_start_where_nothing_moved_has_no_severity_and_claims_no_degradation(quiet_day):
    assert quiet_day.verdict.status == "inconclusive" and quiet_day.verdict.services == []
    assert quiet_day.impact.requests_failed > 0, "the day's ordinary failures are still in the window"
    assert quiet_day.severity is None  # was SEV3, "because requests failed"
    assert quiet_day.severity_rule.startswith("undetermined: no impact measured (no service's latency and error "
                                              "metrics or WARN/ERROR lines rose beyond the baseline's noise over the "
                                              "window)")
    summary = quiet_day.summary.text
    assert "degraded" not in summary
    assert ("no impact was measured: no service's latency and error metrics or WARN/ERROR lines rose beyond the "
            "baseline's noise over the window, nor did anything else move beyond it (checked: 4 metric series, the "
            "logs of 1 service; no traces for this period)" in summary)
    assert quiet_day.impact.narrative.text.startswith("No impact was measured:")


def test_where_nothing_moved_the_title_and_first_steps_name_no_service(quiet_day):
    assert quiet_day.title == "No single root cause found: nothing moved beyond its baseline's noise"
    assert quiet_day.runbook[0].startswith("Check what raised the alert against this data before acting")
    assert quiet_day.action_items[0].description.startswith("Check what raised the alert")
    assert "Find which of  moved first" not in render_markdown(quiet_day)


def test_where_nothing_moved_no_step_is_about_an_affected_service_or_its_hypotheses(quiet_day):
    # the steps after the check were the unknown mechanism's, for "the affected service": "Review the leading
    # hypotheses with the affected service's owners" of a review with none, "Mitigate the service shown to have
    # moved first" where none moved
    assert [a.description for a in quiet_day.action_items] == [quiet_day.runbook[0]]
    assert len(quiet_day.runbook) == 1
    assert "the affected service" not in render_markdown(quiet_day)
    assert quiet_day.detection.sooner == [] and "Signals an alert could watch" not in render_markdown(quiet_day)


def test_the_summary_the_impact_section_and_the_headline_say_no_impact_in_the_same_words(quiet_day):
    said = ("no impact was measured: no service's latency and error metrics or WARN/ERROR lines rose beyond the "
            "baseline's noise")
    opening = said[0].upper() + said[1:]
    headline = [line for line in executive_summary(quiet_day) if line.startswith(opening)]
    assert said in quiet_day.summary.text and quiet_day.impact.narrative.text.startswith(opening) and headline
    for text in (quiet_day.summary.text, quiet_day.impact.narrative.text, headline[0]):
        assert ". In the window, " in text


def test_a_bare_request_count_after_the_no_impact_opening_says_in_the_window_once():
    # OnlineBoutique 12:53: "In the window, 506 requests at frontend in the window (no failure count in the data)"
    analysis = nothing_moved(pool_exhaustion_analysis())
    analysis["impact"].update(services_affected=[], harm_checked=["latency and error metrics"], peak_error_rate=None,
                              peak_latency=None, requests_total=506, requests_failed=None, users_affected=None,
                              entry_service="frontend")
    pm = build_postmortem(analysis)
    said = ". In the window, 506 requests at frontend (no failure count in the data)"
    headline = next(line for line in executive_summary(pm) if line.startswith("No impact was measured"))
    for text in (pm.summary.text, pm.impact.narrative.text, headline):
        assert said in text and "in the window (no failure count" not in text


def test_the_headline_and_the_rendered_review_say_undetermined(quiet_day):
    lines = executive_summary(quiet_day)
    assert lines[0].startswith("Severity undetermined, no impact measured (draft): ")
    assert any(line.startswith("No impact was measured: no service's") for line in lines)
    assert "| **Severity** | undetermined (no impact measured) |" in render_markdown(quiet_day)


def test_load_alone_after_a_given_start_is_a_shift_without_impact_not_sev3(tmp_path: Path):
    # requests and CPU up, errors (1% all day) and latency flat: the failures in the window are the day's own
    pm = build_postmortem(analyze(traffic_surge(tmp_path), at=ALERT, onset="at"))
    assert pm.severity == "SEV4"  # was SEV3, "because requests failed"
    said = "no service's latency and error metrics or WARN/ERROR lines rose beyond the baseline's noise over the window"
    assert said in pm.severity_rule
    assert "degraded" not in pm.summary.text
    assert "users affected" not in pm.summary.text


def test_a_lone_latency_peak_where_nothing_moved_does_not_set_a_severity():
    # nothing moved (no series, no hypothesis) and no service's latency rose over the window: a P90 six times its
    # baseline at one sample is the noise the shift tests saw through
    analysis = nothing_moved(pool_exhaustion_analysis())
    analysis["impact"].update(services_affected=[], harm_checked=["latency and error metrics"], peak_error_rate=None,
                              requests_failed=None, users_affected=None,
                              peak_latency={"metric": "p90_s", "value": 0.0302, "baseline": 0.00496})
    pm = build_postmortem(analysis)
    assert pm.severity is None  # was SEV3, "because latency >= 1.5x baseline"
    assert "no impact was measured" in pm.summary.text


def test_a_latency_under_its_baseline_in_the_window_is_not_said_to_have_peaked():
    # TrainTicket 10:56:45, 24 s after the start: "latency (ts-basic-service/PodServerLatencyP90(s)) peaked at
    # 0.16 s against 0.325 s"
    analysis = nothing_moved(pool_exhaustion_analysis())
    analysis["impact"].update(services_affected=[], harm_checked=["latency and error metrics"], peak_error_rate=None,
                              requests_failed=None, users_affected=None,
                              peak_latency={"service": "basic", "metric": "p90_s", "value": 0.16, "baseline": 0.325})
    pm = build_postmortem(analysis)
    said = "latency (basic/p90_s) stayed under its baseline, at most 0.16 s against 0.325 s"
    assert said in pm.summary.text and said in pm.impact.narrative.text
    assert "peaked at 0.16" not in pm.summary.text
    assert pm.grounding.issues == []


def test_a_series_the_detector_found_is_named_though_no_service_s_tests_showed_anything():
    # one metric of one series (a single-column csv: service 'global') opened the window, and the before/after
    # tests have no service to test: the review names what moved instead of "nothing moved"
    analysis = nothing_moved(pool_exhaustion_analysis(), keep_series=1)
    pm = build_postmortem(analysis)
    assert pm.title == "No single root cause found: db-proxy/pool_in_use moved"  # was "nothing moved beyond ..."
    assert pm.runbook[0].startswith("Look at db-proxy/pool_in_use around the window")
    assert pm.action_items[0].description.startswith("Look at db-proxy/pool_in_use around the window")
    assert ("No single root cause could be named from this data: db-proxy/pool_in_use moved, and no service's "
            "before/after tests showed why") in pm.lessons.went_wrong


def test_the_severity_is_the_same_whichever_section_is_written_first():
    analysis = pool_exhaustion_analysis()
    builder = _Builder(analysis, {}, GeneratedBy())
    summary = builder._summary_text(builder.measured)  # before the impact section, which used to set the severity
    pm = build_postmortem(analysis)
    assert (pm.severity, pm.severity_rule) == builder.severity
    assert pm.summary.text == summary


def test_users_on_warn_lines_where_no_impact_was_measured_are_not_called_affected_in_the_tables():
    # the prose said "5 users on WARN/ERROR lines against the baseline's 4", the tables "Users affected | 5"
    analysis = nothing_moved(pool_exhaustion_analysis())
    analysis["impact"].update(services_affected=[], harm_checked=["WARN/ERROR lines"], peak_error_rate=None,
                              peak_latency=None, requests_failed=None, users_affected=5, users_baseline=4.0,
                              users_excess=1)
    pm = build_postmortem(analysis)
    assert pm.severity is None and "5 users on WARN/ERROR lines against the baseline's 4" in pm.summary.text
    markdown = render_markdown(pm)
    assert "| Users on WARN/ERROR lines | 5 | 4 |" in markdown
    assert "| Users on WARN/ERROR lines beyond the baseline's | 1 |" in markdown
    assert "Users affected" not in markdown and "Users affected" not in render_html(pm)


def test_sources_with_no_row_in_the_window_are_said_missing_not_checked():
    # an OnlineBoutique fault with no log or trace minute in its window: "checked: the logs of 10 services" read as
    # if the logs had been looked at and were quiet (the verdict counts no service of a missing source)
    analysis = nothing_moved(pool_exhaustion_analysis())
    analysis["impact"].update(services_affected=[], harm_checked=["latency and error metrics"], peak_error_rate=None,
                              peak_latency=None, requests_failed=None, users_affected=None)
    analysis["verdict"]["checked"] = {"metric_series": 195, "services_with_logs": 0, "services_in_traces": 0}
    analysis["sources"] = {"used": ["metrics"], "missing": ["logs", "traces"],
                           "notes": ["no logs for this period", "no traces for this period"]}
    summary = build_postmortem(analysis).summary.text
    assert "(checked: 195 metric series; no logs or traces for this period)" in summary
    assert "the logs of 10 services" not in summary


def test_a_missing_source_is_said_where_harm_was_seen_too():
    analysis = pool_exhaustion_analysis()
    analysis["sources"] = {"used": ["metrics", "logs"], "missing": ["traces"], "notes": ["no traces for this period"]}
    assert "No traces for this period." in build_postmortem(analysis).summary.text


def test_no_service_affected_is_said_in_the_impact_table_not_left_blank():
    # "| Services affected |  | |" on every review where no service's latency, errors or WARN/ERROR lines rose
    analysis = nothing_moved(pool_exhaustion_analysis())
    analysis["impact"]["services_affected"] = []
    assert "| Services affected | none measured | |" in render_markdown(build_postmortem(analysis))


def test_an_undetermined_change_with_no_sustained_harm_is_not_titled_a_failure():
    # OnlineBoutique 12:27: "Failure in checkoutservice (mechanism undetermined)" over "No sustained impact was
    # measured": its own span time rose, and no service's latency, errors or WARN/ERROR lines did
    analysis = top_cause_analysis("undetermined", "db-proxy changed")
    analysis["impact"].update(services_affected=[], harm_checked=["latency and error metrics"], peak_error_rate=None,
                              requests_failed=None, users_affected=None)
    pm = build_postmortem(analysis)
    assert pm.title == "Change in db-proxy (mechanism undetermined)"
    assert "The most likely cause is a change of undetermined mechanism in db-proxy" in pm.summary.text
    assert pm.root_cause.narrative.text.startswith("db-proxy: a change of undetermined mechanism.")
    assert any(line.startswith("Root cause: a change of undetermined mechanism in db-proxy")
               for line in executive_summary(pm))
    # the Markdown root-cause section said "a failure of undetermined mechanism" under that title; the HTML did not
    assert "**db-proxy: a change of undetermined mechanism** (confidence" in render_markdown(pm)
    assert "db-proxy · a change of undetermined mechanism" in render_html(pm)
    analysis["impact"]["services_affected"] = ["db-proxy"]  # harm seen: a failure
    assert build_postmortem(analysis).title == "Failure in db-proxy (mechanism undetermined)"


def test_where_nothing_moved_and_logs_and_traces_are_missing_the_first_step_says_what_could_not_show():
    # OnlineBoutique 13:54 (a network delay at emailservice, no log or trace minute in the window): "no service's
    # metrics, WARN/ERROR lines or traced requests moved" claimed lines and requests nobody could see
    analysis = nothing_moved(pool_exhaustion_analysis())
    analysis["sources"] = {"used": ["metrics"], "missing": ["logs", "traces"]}
    first = build_postmortem(analysis).action_items[0].description
    assert first == ("Check what raised the alert against this data before acting: no service's metric series "
                     "moved beyond their baseline's noise after the start, and with no logs or traces for this period "
                     "a fault seen only in log lines (errors or exceptions logged) or requests (a delay, errors, wrong "
                     "answers) cannot show here")


def test_where_nothing_moved_and_the_logs_are_missing_the_first_step_says_a_logged_fault_could_not_show():
    # OnlineBoutique 12:27:23 (an exception at frontend) with its traces and metrics, the day having no log file for
    # it: "with no logs for this period a fault seen only in requests ... cannot show here", though the traces were
    # there to show requests and an exception shows in the logs
    analysis = nothing_moved(pool_exhaustion_analysis())
    analysis["sources"] = {"used": ["metrics", "traces"], "missing": ["logs"]}
    first = build_postmortem(analysis).action_items[0].description
    assert first.endswith("and with no logs for this period a fault seen only in log lines (errors or exceptions "
                          "logged) cannot show here")


def test_where_nothing_moved_and_only_the_call_metrics_are_missing_the_first_step_is_the_plain_check():
    # call metrics hold no fault the metrics, logs and traces cannot: it said "a fault seen only in  cannot show here"
    analysis = nothing_moved(pool_exhaustion_analysis())
    analysis["sources"] = {"used": ["metrics", "logs", "traces"], "missing": ["call metrics"]}
    assert build_postmortem(analysis).action_items[0].description == CHECK_THE_ALERT
    # in the analysis' words for what each source could show moving (`pipeline.SEEN_MOVING`)
    assert "no service's metric series, WARN/ERROR lines or traced requests moved" in CHECK_THE_ALERT
