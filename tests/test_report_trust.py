"""What a review claims against what its data carries: each test a sentence a senior SRE read in a Nezha review
(`investigate` as a user runs it, session 29) that said more than its evidence, on a small generated analysis."""

from __future__ import annotations

from incidentlens.analysis.units import LOG_ERROR_SHARE
from incidentlens.report import build_postmortem
from incidentlens.report.build import executive_summary, runbook_checklist
from incidentlens.report.render_markdown import render_markdown
from test_report_claims import split_between_db_proxy_and_payments
from test_report_data import pool_exhaustion_analysis, top_cause_analysis


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


def test_a_move_that_is_no_change_of_the_services_own_is_neither_the_onset_nor_the_incident_spreading():
    # TrainTicket 10:20: "onset | first to move: ts-rebook-service (PodClientLatencyP90(s) ...: a percentile the
    # traces cannot confirm ...)" above a headline whose own changes start with ts-travel-service 37 s later;
    # OnlineBoutique 13:10: "propagation | emailservice moves (its host's NodeCpuUsageRate(%) from 1.94 to 1.68)"
    analysis = top_cause_analysis("unknown", "db-proxy changed")
    host = "cache moves (its host's NodeCpuUsageRate(%) from 1.94 to 1.68 (-13%))"
    percentile = ("first to move: search (client_p90_ms from 4.4 to 20,000 (over a thousandfold): a percentile the "
                  "traces cannot confirm (no traced call covers it))")
    analysis["timeline"][1:1] = [{"t": "2024-05-01T10:12:00Z", "event": percentile, "evidence": []},
                                 {"t": "2024-05-01T10:20:00Z", "event": host, "evidence": []}]
    analysis["verdict"] = {"status": "root_cause", "service": "db-proxy", "reason": "db-proxy stands out",
                           "services": [{"service": "search", "own": False, "onset": "2024-05-01T10:12:00Z"},
                                        {"service": "db-proxy", "own": True, "own_onset": "2024-05-01T10:12:00Z",
                                         "onset": "2024-05-01T10:12:00Z"},
                                        {"service": "cache", "own": False, "onset": "2024-05-01T10:20:00Z"}]}
    rows = {row.event: row.phase for row in build_postmortem(analysis).timeline}
    assert rows[host] == "other"
    assert rows[percentile.removeprefix("first to move: ").replace("search (", "search moves (", 1)] == "other"
    assert not any(event.startswith("first to move: search") for event in rows)
    assert rows["first anomalous point: db-proxy/pool_in_use"] == "onset"


def test_a_services_rows_before_its_own_change_are_not_its_onset():
    # TrainTicket 08:52: ts-verification-code-service's client p90, which its 50 traced calls deny, at 08:52:10,
    # two minutes before its own change (its server latency, 08:54:10)
    analysis = top_cause_analysis("unknown", "db-proxy changed")
    before = ("payments moves (client_p90_ms from 4.2 to 156,000 (over a thousandfold): a percentile the traces do "
              "not bear out)")
    own = "payments moves (p95_ms from 180 to 900 (+400%))"
    analysis["timeline"][1:1] = [{"t": "2024-05-01T10:14:00Z", "event": before, "evidence": []},
                                 {"t": "2024-05-01T10:16:00Z", "event": own, "evidence": []}]
    analysis["verdict"] = {"status": "root_cause", "service": "db-proxy", "reason": "db-proxy stands out",
                           "services": [{"service": "payments", "own": True, "own_onset": "2024-05-01T10:16:00Z",
                                         "onset": "2024-05-01T10:14:00Z"}]}
    rows = {row.event: row.phase for row in build_postmortem(analysis).timeline}
    assert rows[before] == "other" and rows[own] == "propagation"


def test_the_incidents_peak_is_not_a_series_the_review_itself_discounts():
    # OnlineBoutique 13:10: "peak | peak of the incident: paymentservice/PodClientLatencyP99(s) at 0.242 s ...; a
    # percentile the traces do not bear out", beside an impact whose peak is the front door failing 5.9%
    analysis = top_cause_analysis("unknown", "db-proxy changed")
    analysis["detection"]["series"] = [
        {"series": "payments/client_p99_ms", "direction": "up", "baseline": 5.0, "peak": 286000.0, "shift": 90.0,
         "onset": "2024-05-01T10:14:00Z", "peak_at": iso_peak()},
        {"series": "db-proxy/pool_in_use", "direction": "up", "baseline": 22.0, "peak": 100.0, "shift": 41.3,
         "onset": "2024-05-01T10:12:00Z", "peak_at": "2024-05-01T10:30:00Z"}]
    analysis["impact"]["not_borne_out"] = [{"service": "payments", "metric": "client_p99_ms", "peak": 286000.0,
                                            "traced_calls": 60, "longest_ms": 4.31}]
    analysis["impact"]["peak_error_rate"]["at"] = "2024-05-01T10:30:00Z"
    analysis["timeline"][-1]["event"] = "peak of the incident"  # as the analysis writes it
    pm = build_postmortem(analysis)
    peaks = [row for row in pm.timeline if row.event.startswith("peak of the incident")]
    assert [row.event for row in peaks] == ["peak of the incident: error rate (error_ratio) at 18.7% (baseline 0.4%)"]
    assert fmt_time(peaks[0].t) == fmt_time(pm.peak) == "2024-05-01 10:30"
    assert not any("client_p99_ms at" in row.event for row in pm.timeline)


def test_a_peak_the_review_does_not_discount_stays_the_series_detection_saw():
    analysis = top_cause_analysis("unknown", "db-proxy changed")
    analysis["detection"]["series"][0]["peak_at"] = iso_peak()
    analysis["timeline"][-1]["event"] = "peak of the incident"  # as the analysis writes it
    pm = build_postmortem(analysis)
    assert [row.event for row in pm.timeline if row.event.startswith("peak of the incident")] == [
        "peak of the incident: db-proxy/pool_in_use at 100 (baseline 22)"]


def iso_peak() -> str:
    """The fixture's peak (`analysis.peak`), as analysis.json writes a time."""
    return top_cause_analysis("unknown", "")["peak"]


def fmt_time(moment) -> str:
    return moment.strftime("%Y-%m-%d %H:%M")


def test_a_share_of_error_lines_is_the_peak_only_where_no_metric_measured_one_and_says_its_minute():
    # TrainTicket 09:34: the peak moved off a percentile no traced call covers; the impact's latency comes before a
    # share of ERROR/FATAL log lines, which counts no failed request
    analysis = top_cause_analysis("unknown", "db-proxy changed")
    analysis["detection"]["series"] = [
        {"series": "payments/client_p99_ms", "direction": "up", "baseline": 5.0, "peak": 286000.0, "shift": 90.0,
         "onset": "2024-05-01T10:14:00Z", "peak_at": iso_peak()}]
    analysis["impact"]["not_borne_out"] = [{"service": "payments", "metric": "client_p99_ms", "peak": 286000.0,
                                            "traced_calls": 60, "longest_ms": 4.31}]
    analysis["impact"]["peak_error_rate"] = {"metric": "log_error_ratio", "service": "all", "value": 0.062,
                                             "baseline": 0.011, "at": "2024-05-01T10:13:00Z"}
    analysis["impact"]["peak_latency"]["at"] = "2024-05-01T10:20:00Z"
    analysis["timeline"][-1]["event"] = "peak of the incident"
    rows = [row for row in build_postmortem(analysis).timeline if row.event.startswith("peak of the incident")]
    assert [row.event for row in rows] == ["peak of the incident: latency (p95_ms) at 2,450 ms (baseline 180 ms)"]
    analysis["impact"]["peak_latency"] = None
    rows = [row for row in build_postmortem(analysis).timeline if row.event.startswith("peak of the incident")]
    assert [row.event for row in rows] == ["peak of the incident: the share of ERROR/FATAL log lines at 6.2% in the "
                                           "minute from then (baseline 1.1%)"]


def test_every_service_affected_is_said_with_what_marked_it():
    # TrainTicket 08:52: "Services affected: ts-preserve-service, ts-preserve-other-service, ts-auth-service,
    # ts-admin-user-service", two of them said why; ts-admin-user-service on a client p90 no traced call covers
    analysis = top_cause_analysis("unknown", "db-proxy changed")
    analysis["impact"].update(
        services_affected=["db-proxy", "payments", "api-gateway"], lines_marked=["payments"],
        metric_marks=[{"service": "api-gateway", "metric": "client_p90_ms", "typical": 42000.0, "baseline": 19.0,
                       "samples": 3, "unchecked": "no traced call covers it"},
                      {"service": "db-proxy", "metric": "p95_ms", "typical": 900.0, "baseline": 180.0,
                       "samples": 1}])
    text = build_postmortem(analysis).impact.narrative.text
    assert ("Marked by its WARN/ERROR lines (at 3x the baseline's rate or more, past chance): payments. Marked by "
            "their latency or error metrics over the window: db-proxy (p95_ms 900 ms over the window (its one "
            "sample), against 180 ms before) and api-gateway (client_p90_ms 42,000 ms over the window (the median of "
            "its 3 samples), against 19 ms before: a percentile the traces cannot confirm (no traced call covers "
            "it)).") in text


def test_a_service_whose_error_rate_and_latency_both_held_is_named_once():
    # bad-deploy, seed 3: "Marked by their error rate or latency over the window: inventory (error rate ...) and
    # inventory (latency ...)"
    analysis = top_cause_analysis("unknown", "db-proxy changed")
    analysis["impact"].update(services_affected=["db-proxy"], requests_total=None, requests_failed=None,
                              users_affected=None)
    analysis["impact"]["peak_error_rate"].update(service="db-proxy", typical=0.18)
    analysis["impact"]["peak_latency"].update(service="db-proxy", typical=2000.0)
    text = build_postmortem(analysis).impact.narrative.text
    assert "Marked by its error rate or latency over the window: db-proxy (error rate" in text
    assert text.count("db-proxy (") == 1


def test_a_rollback_the_data_records_is_not_asked_for_again():
    # bad-deploy, seed 3: "P0 | Roll inventory back to the last known-good release ... | immediately" where the
    # Response section read "17:11 UTC inventory rollback rollback inventory to v1.3.6 (from v1.3.7)"
    analysis = top_cause_analysis("bad_deploy", "a change to db-proxy shortly before the onset introduced failures")
    rollback = {"ts": "2024-05-01T10:50:00Z", "service": "db-proxy", "kind": "rollback",
                "description": "rollback db-proxy to v4.1.0"}
    analysis["evidence"].append({"id": "event-0000aaaa", "kind": "event", "title": "rollback", "query": "SELECT 1",
                                 "data": [rollback]})
    mitigation = next(a for a in build_postmortem(analysis).action_items if a.type == "mitigate")
    assert mitigation.description == ("Keep db-proxy on the release it was rolled back to (rollback db-proxy to "
                                      "v4.1.0, at 2024-05-01 10:50 UTC, as the data records) and hold further "
                                      "rollouts until a fix is verified")
    rollback["service"] = "payments"  # another service's rollback leaves the root cause's to do
    mitigation = next(a for a in build_postmortem(analysis).action_items if a.type == "mitigate")
    assert mitigation.description.startswith("Roll db-proxy back to the last known-good release")


def test_with_no_single_root_cause_the_lesson_does_not_deny_the_order_the_headline_gives():
    # TrainTicket 08:52: the title "ts-seat-service moved first, then ts-train-service and ts-auth-service" above
    # the lesson "nothing in it says which one led"
    pm = build_postmortem(split_between_db_proxy_and_payments())
    assert any("nothing in it says which one set off the others or why" in text for text in pm.lessons.went_wrong)
    assert not any("which one led" in text for text in pm.lessons.went_wrong)


def test_a_service_named_with_its_mechanism_undetermined_asks_for_telemetry_that_would_name_the_mechanism():
    # TrainTicket 10:20: ts-travel-service at 96%, and "Add the telemetry that would have named the cause"
    def telemetry(analysis: dict) -> str:
        return next(a.description for a in build_postmortem(analysis).action_items
                    if a.description.startswith("Add the telemetry"))

    assert telemetry(top_cause_analysis("unknown", "db-proxy changed")).startswith(
        "Add the telemetry that would have named its mechanism:")
    assert telemetry(split_between_db_proxy_and_payments()).startswith(
        "Add the telemetry that would have named the cause:")


def test_a_change_that_harmed_nothing_measured_is_watched_not_taken_out_of_rotation():
    # OnlineBoutique 12:27: "No impact was measured" above "[P2] ... otherwise take the instances that show the
    # change out of rotation (or restart them)"
    analysis = top_cause_analysis("unknown", "db-proxy changed")
    analysis["impact"].update(services_affected=[], requests_failed=None, users_affected=None,
                              harm_checked=["latency and error metrics"])
    pm = build_postmortem(analysis)
    assert "No sustained impact was measured" in pm.impact.narrative.text and pm.title.startswith("Change in")
    assert pm.action_items[0].description == (
        "Look for a change to db-proxy before the onset, which the data does not show, and revert it if there is "
        "one; nothing measured here harmed requests, so watch db-proxy rather than take its instances out of "
        "rotation while the change is investigated")
    harmed = build_postmortem(top_cause_analysis("unknown", "db-proxy changed")).action_items[0]
    assert "take the instances that show the change out of rotation" in harmed.description


def test_with_no_logs_in_the_window_no_contributing_factor_is_not_said_to_be_none_found():
    # OnlineBoutique 14:12 (no logs for this period): "Contributing factors: none found in the data", where they are
    # looked for in the log lines alone
    analysis = top_cause_analysis("unknown", "db-proxy changed")
    analysis.update(contributors=[], templates=[], hypotheses=analysis["hypotheses"][:1])
    analysis["sources"] = {"used": ["metrics", "traces"], "missing": ["logs"], "events_given": False}
    assert ("- none found in the data: they are looked for in the log lines, and the data holds no logs for this "
            "period") in render_markdown(build_postmortem(analysis))
    analysis["sources"] = {"used": ["metrics", "traces", "logs"], "missing": [], "events_given": False}
    assert "- none found in the data\n" in render_markdown(build_postmortem(analysis))


def test_an_inconclusive_summary_says_first_what_the_services_that_changed_of_their_own_showed():
    # TrainTicket 08:52: the summary's first four services moved only by percentiles the traces deny or cannot
    # confirm; ts-seat-service, which the headline names first, came fifth
    analysis = split_between_db_proxy_and_payments()
    analysis["verdict"]["services"][0].update(own=False, showed=["its host's cpu from 2% to 3%"])
    analysis["verdict"]["services"][1].update(own=True, own_onset="2024-05-01T10:11:00Z")
    analysis["verdict"]["services"][2].update(own=True, own_onset="2024-05-01T10:12:00Z")
    summary = build_postmortem(analysis).summary.text
    assert summary.index("db-proxy from") < summary.index("payments from") < summary.index("api-gateway from")


def test_an_alert_on_the_first_series_says_the_earliest_it_could_fire_not_that_it_would_have_at_the_onset():
    # TrainTicket 08:52: "An alert on ts-train-service/PodServerLatencyP99(s) (baseline 0.00995 s, peak 0.0244 s)
    # would have fired at its onset, 08:53:10 UTC": the onset is where the series moved past its baseline's noise
    # (three samples past the detector's bar); no threshold is set, so when an alert would have fired is not known
    analysis = top_cause_analysis("unknown", "db-proxy changed")
    alert = next(line for line in build_postmortem(analysis).detection.sooner if line.startswith("An alert on"))
    assert "would have fired" not in alert
    assert "could have fired from its onset, 2024-05-01 10:" in alert
    assert alert.endswith("when it moved past its baseline's noise; how much later depends on the threshold chosen")


def test_the_inconclusive_title_orders_no_services_whose_onsets_the_data_cannot_order():
    # TrainTicket 08:52: "No single root cause found: ts-seat-service moved first, then ts-train-service and
    # ts-auth-service", 14 s and 73 s apart where the precedence tests call onsets within 90 s one moment (one-minute
    # data), ts-seat-service's one change at the candidate bar, which chance passes at 50%
    analysis = split_between_db_proxy_and_payments()
    analysis["hypotheses"] = analysis["hypotheses"][:1]
    for showing, onset in zip(analysis["verdict"]["services"], ("10:10:00", "10:10:14", "10:11:13"), strict=True):
        showing["onset"] = f"2024-05-01T{onset}Z"
    analysis["evidence"].append({"id": "hypothesis_test-0001", "kind": "hypothesis_test", "title": "if db-proxy ...",
                                 "query": "SELECT 1", "data": {"passed": None, "same_moment_seconds": 90.0}})
    pm = build_postmortem(analysis)
    assert pm.title == ("No single root cause found: api-gateway, db-proxy and payments moved, too close together for "
                        "the data to order")
    # a service past the data's moment after the first is later to it
    analysis["verdict"]["services"][2]["onset"] = "2024-05-01T10:11:40Z"
    assert build_postmortem(analysis).title == ("No single root cause found: api-gateway and db-proxy moved first, "
                                                "then payments")


def _marked_by_an_unconfirmed_percentile(analysis: dict) -> dict:
    """`analysis` with api-gateway affected by its client p90 alone, which no traced call covers."""
    analysis["impact"]["metric_marks"] = [{"service": "api-gateway", "metric": "client_p90_ms", "typical": 42000.0,
                                           "baseline": 19.0, "samples": 3, "unchecked": "no traced call covers it"}]
    return analysis


def test_the_summary_does_not_call_degraded_a_service_whose_one_mark_is_a_percentile_the_traces_cannot_confirm():
    # TrainTicket 08:52: "ts-auth-service, ts-admin-user-service, ts-preserve-other-service, ts-preserve-service
    # degraded", ts-admin-user-service on a client p90 of 42 s that no traced call covers
    analysis = _marked_by_an_unconfirmed_percentile(top_cause_analysis("unknown", "db-proxy changed"))
    analysis["impact"].update(services_affected=["db-proxy", "payments", "api-gateway"],
                              lines_marked=["db-proxy", "payments"])
    summary = build_postmortem(analysis).summary.text
    assert ("db-proxy, payments degraded, and api-gateway's latency rose by a percentile the traces cannot confirm: "
            in summary)


def test_a_severity_resting_on_a_percentile_the_traces_cannot_confirm_says_so_and_what_it_would_be_without():
    # OnlineBoutique 14:21: "SEV3 because latency >= 1.5x baseline (paymentservice/PodServerLatencyP99(s) 0.146 s
    # ...)" and "paymentservice degraded", a percentile its 19 traced calls are too few to check, said nowhere
    analysis = _marked_by_an_unconfirmed_percentile(top_cause_analysis("unknown", "db-proxy changed"))
    analysis["impact"].update(services_affected=["api-gateway"], peak_error_rate=None, requests_failed=None,
                              users_affected=None, duration_minutes=5)
    analysis["impact"]["peak_latency"].update(service="api-gateway", metric="client_p90_ms", value=45000.0,
                                              typical=42000.0, baseline=19.0, samples=3)
    pm = build_postmortem(analysis)
    assert pm.severity == "SEV3"  # of the servers' percentiles the traces could check, 379 of 382 held
    assert pm.severity_rule.startswith(
        "SEV3 because latency >= 1.5x baseline (api-gateway/client_p90_ms 42,000 ms over the window (the median of its "
        "3 samples), peak 45,000 ms, against 19 ms before): a percentile the traces cannot confirm (no traced call "
        "covers it), the one figure this level rests on (without it, SEV4)")
    assert ("api-gateway's latency rose by a percentile the traces cannot confirm (no traced call covers it): latency "
            "(api-gateway/client_p90_ms) peaked at 45,000 ms") in pm.summary.text
    assert "degraded" not in pm.summary.text
    assert ("api-gateway (latency (api-gateway/client_p90_ms) 42,000 ms over the window (the median of its 3 "
            "samples), peak 45,000 ms, against 19 ms before: a percentile the traces cannot confirm (no traced call "
            "covers it))") in pm.impact.narrative.text


def test_the_runbook_watches_a_change_that_harmed_nothing_measured_as_its_action_does():
    # OnlineBoutique 12:27: "[P2] ... nothing measured here harmed requests, so watch checkoutservice rather than take
    # its instances out of rotation" above the runbook's "Mitigate: ..., or take its affected instances out of rotation"
    analysis = top_cause_analysis("unknown", "db-proxy changed")
    analysis["impact"].update(services_affected=[], harm_checked=["latency and error metrics"])
    pm = build_postmortem(analysis)
    assert "watch db-proxy rather than take its instances out of rotation" in pm.action_items[0].description
    mitigate = next(step for step in pm.runbook if step.startswith("Mitigate:"))
    assert "out of rotation" not in mitigate.replace("rather than take its instances out of rotation", "")
    assert mitigate.endswith("so watch db-proxy rather than take its instances out of rotation while the change is "
                             "investigated")


def test_the_timeline_calls_no_service_first_to_move_where_the_data_cannot_order_the_next_after_it():
    # TrainTicket 14:23: "onset | first to move: ts-verification-code-service" and, 27 s later, "propagation |
    # ts-inside-payment-service moves", where the precedence tests call onsets within 90 s one moment; the root
    # cause's own test: "they start within 2 min of it (ts-auth-service 27 s later), which the data cannot order"
    analysis = top_cause_analysis("unknown", "db-proxy changed")
    first = "first to move: db-proxy (pool_in_use from 22 to 100 (+355%))"
    then = "payments moves (p95_ms from 180 to 900 (+400%))"
    analysis["timeline"][1:2] = [{"t": "2024-05-01T10:12:30Z", "event": first, "evidence": []},
                                 {"t": "2024-05-01T10:12:57Z", "event": then, "evidence": []}]
    analysis["evidence"].append({"id": "hypothesis_test-0002", "kind": "hypothesis_test", "title": "if db-proxy ...",
                                 "query": "SELECT 1", "data": {"passed": None, "same_moment_seconds": 90.0}})
    rows = {row.event: row.phase for row in build_postmortem(analysis).timeline}
    assert rows["db-proxy moves (pool_in_use from 22 to 100 (+355%))"] == "onset"
    assert rows[then] == "onset"  # was "propagation": the data cannot say it came after
    assert not any(event.startswith("first to move") for event in rows)
    # past the moment, the first stands alone and what follows is the incident spreading
    analysis["timeline"][2]["t"] = "2024-05-01T10:14:30Z"
    rows = {row.event: row.phase for row in build_postmortem(analysis).timeline}
    assert rows[first] == "onset" and rows[then] == "propagation"


def test_a_hosts_series_row_is_neither_the_onset_nor_the_incident_spreading():
    # TrainTicket 15:42: "15:43:09 | other | ts-config-service moves (its host's NodeCpuUsageRate(%) ...)" beside
    # "15:43:10 | onset | ts-execute-service/NodeCpuUsageRate(%) becomes anomalous", the same node's CPU; 08:52's
    # "onset | ts-travel2-service/NodeNetworkReceiveBytes becomes anomalous" under a root cause list that calls it
    # "its host's"
    analysis = top_cause_analysis("unknown", "db-proxy changed")
    analysis["timeline"][1:1] = [{"t": "2024-05-01T10:20:00Z", "event": "cache/NodeCpuUsageRate(%) becomes anomalous",
                                  "evidence": []},
                                 {"t": "2024-05-01T10:21:00Z", "event": "cache/cpu_pct becomes anomalous",
                                  "evidence": []}]
    rows = {row.event: row.phase for row in build_postmortem(analysis).timeline}
    assert rows["cache/NodeCpuUsageRate(%) becomes anomalous (its host's, not cache's own)"] == "other"
    assert rows["cache/cpu_pct becomes anomalous"] == "propagation"


def test_the_summary_times_what_a_service_showed_from_when_it_showed_it_not_from_its_own_later_change():
    # TrainTicket 08:52: "ts-verification-code-service from 08:54:10 UTC: PodClientLatencyP90(s) from 0.0042 to 156
    # ...: percentiles the traces do not bear out", the client percentiles of 08:52:10 (so its root cause bullet and
    # timeline) under the time of its own server latency's change
    analysis = split_between_db_proxy_and_payments()
    payments = analysis["verdict"]["services"][2]
    payments.update(own=True, own_onset="2024-05-01T10:14:00Z",
                    showed=["client_p90_ms from 4.2 to 156,000 (over a thousandfold): a percentile the traces do not "
                            "bear out", "then at 10:14:00 UTC: p99_ms from 9.9 to 4.96 (-50%)"])
    summary = build_postmortem(analysis).summary.text
    assert ("payments from 2024-05-01 10:12 UTC: client_p90_ms from 4.2 to 156,000 (over a thousandfold): a "
            "percentile the traces do not bear out; then at 10:14:00 UTC: p99_ms from 9.9 to 4.96 (-50%).") in summary


CHECKOUT_SLOWED = {"service": "checkoutservice", "way": None, "kind": "hipstershop.CheckoutService/PlaceOrder",
                   "slower_than_ms": 444.0, "window_requests": 19, "window_failed": 19, "baseline_requests": 172,
                   "baseline_failed": 18}


def test_a_summary_with_no_error_rate_or_latency_says_what_marked_the_service_it_calls_degraded():
    # OnlineBoutique 13:19: "checkoutservice degraded: 507 requests at frontend in the window (no failure count in
    # the data)": the figure after the colon shows no degradation; its traced requests, which marked it, were said
    # only in the impact section
    analysis = pool_exhaustion_analysis()
    analysis["impact"].update(peak_error_rate=None, peak_latency=None, requests_total=507, requests_failed=None,
                              failed_share=None, entry_service="frontend", services_affected=["checkoutservice"],
                              traced_failures=[CHECKOUT_SLOWED], users_affected=None)
    pm = build_postmortem(analysis)
    said = ("checkoutservice degraded (in its traces, 19 of 19 hipstershop.CheckoutService/PlaceOrder requests took "
            "longer than 444 ms, their kind's p90 before, 18 of 172 before): 507 requests at frontend in the window "
            "(no failure count in the data)")
    assert f"{said}." in pm.summary.text
    assert f"Impact: {said}" in executive_summary(pm)


def test_requests_slowed_past_their_p90_are_said_with_how_much_slower_the_median_one_was():
    # OnlineBoutique 14:47: "currencyservice (80 of 148 grpc.hipstershop.CurrencyService/GetSupportedCurrencies
    # requests took longer than 0.345 ms, their kind's p90 before, 12 of 124 before)" listed it degraded, with
    # nothing to show its median request went from 0.273 to 0.346 ms, a tenth of a millisecond
    analysis = pool_exhaustion_analysis()
    slowed = {**CHECKOUT_SLOWED, "window_median_ms": 1234.5, "baseline_median_ms": 301.0}
    analysis["impact"].update(services_affected=["checkoutservice"], traced_failures=[slowed])
    assert ("checkoutservice (19 of 19 hipstershop.CheckoutService/PlaceOrder requests took longer than 444 ms, their "
            "kind's p90 before, 18 of 172 before; the kind's median request 1,234 ms, 301 ms before)"
            ) in build_postmortem(analysis).impact.narrative.text


def test_requests_slowed_too_little_to_matter_are_said_so_not_listed_affected():
    # OnlineBoutique 14:47 called currencyservice degraded: its slowed requests 0.108 ms longer than its median before,
    # inside frontend requests of 520 ms; the analysis no longer marks it, and the review says why it is not listed
    analysis = pool_exhaustion_analysis()
    currency = {**CHECKOUT_SLOWED, "service": "currencyservice", "kind": "GetSupportedCurrencies",
                "slower_than_ms": 0.345, "window_requests": 148, "window_failed": 80, "baseline_requests": 124,
                "baseline_failed": 12, "window_median_ms": 0.3505, "baseline_median_ms": 0.2725,
                "added_ms": 0.1085, "request_ms": 520.4}
    analysis["impact"].update(services_affected=["checkoutservice"], traced_failures=[CHECKOUT_SLOWED],
                              slowed_too_little=[currency])
    narrative = build_postmortem(analysis).impact.narrative.text

    assert "Services affected: checkoutservice." in narrative
    assert ("Slower, too little to matter: currencyservice (80 of 148 GetSupportedCurrencies requests took longer "
            "than 0.345 ms, their kind's p90 before, 12 of 124 before; the kind's median request 0.35 ms, 0.273 ms "
            "before; the slowed ones' median 0.108 ms over the kind's before, under 5% of the 520 ms the "
            "users' requests they sat in took).") in narrative
    # the test reads their p90 (0.197 ms there): the words say which percentile was measured
    currency["tail_added_ms"] = 0.1975
    assert ("the slowed ones' median 0.108 ms and p90 0.198 ms over the kind's before, under 5% of the 520 ms"
            ) in build_postmortem(analysis).impact.narrative.text


def test_a_summary_whose_peaks_are_of_services_nothing_marked_says_what_marked_the_one_it_calls_degraded():
    # TrainTicket 11:04: "ts-route-service degraded: the share of ERROR/FATAL log lines peaked at 0.9% against 0.7%
    # before; latency (ts-gateway-service/PodServerLatencyP90(s)) peaked at 3 s against 0.467 s": neither figure is
    # route's, nor harm; what marked it, its requests no longer writing their line, was said only in the impact
    analysis = pool_exhaustion_analysis()
    analysis["impact"].update(
        peak_error_rate={"metric": LOG_ERROR_SHARE, "service": "all", "value": 0.009,
                         "baseline": 0.007, "at": "2024-05-01T10:13:00Z", "typical": 0.008},
        peak_latency={"metric": "p90_ms", "service": "frontend", "value": 3000.0, "baseline": 467.0,
                      "at": "2024-05-01T10:13:00Z", "typical": 442.0, "samples": 3},
        requests_total=117, requests_failed=None, failed_share=None, entry_service="frontend",
        services_affected=["checkoutservice"], lines_marked=[], users_affected=None,
        traced_failures=[{**CHECKOUT_SLOWED, "slower_than_ms": None, "way": "the line: <*> INFO order placed <*>",
                          "window_failed": 18}])
    pm = build_postmortem(analysis)
    said = ("checkoutservice degraded (in its traces, 18 of 19 hipstershop.CheckoutService/PlaceOrder requests ended "
            "without writing the line 'INFO order placed <*>', 18 of 172 before): the share of ERROR/FATAL log lines "
            "peaked at 0.9% against 0.7% before")
    assert said in pm.summary.text
    assert any(line.startswith(f"Impact: {said}") for line in executive_summary(pm))
    # TrainTicket 10:56: "Impact: latency (ts-route-service/PodServerLatencyP90(s)) peaked at 0.03 s against 0.0235
    # s": a peak of the service its traced requests marked, which no metric of its marked
    analysis["impact"]["peak_latency"].update(service="checkoutservice", value=30.0, baseline=23.5, typical=24.0)
    assert "checkoutservice degraded (in its traces, 18 of 19" in build_postmortem(analysis).summary.text


def test_a_service_already_failing_before_the_start_is_said_so_in_the_summary_and_the_impact():
    # TrainTicket 09:34: ts-travel-service, the leading hypothesis, failed 18 of its 76 requests in the 5 minutes
    # before the start (30 of 475 earlier), after the 09:30 fault: a responder must not blame what began at the start
    analysis = pool_exhaustion_analysis()
    analysis["impact"]["failing_before"] = [{"service": "db-proxy", "way": None, "window_requests": 76,
                                             "window_failed": 18, "baseline_requests": 475, "baseline_failed": 30,
                                             "first_failed": "2024-05-01T10:08:12Z"}]
    pm = build_postmortem(analysis)
    said = ("Already failing before the start: db-proxy (18 of its 76 traced requests in the 5 minutes before failed, "
            "the earliest of them begun at 10:08:12 UTC; 30 of 475 earlier).")
    assert said in pm.summary.text and said in pm.impact.narrative.text
    assert "Already failing" not in build_postmortem(pool_exhaustion_analysis()).summary.text


def test_a_failure_before_the_start_is_told_apart_from_the_one_after_it():
    # TrainTicket 09:25: "ts-basic-service degraded (in its traces, 5 of 53 requests failed with an ERROR line
    # '...[catch price exception]', 0 of 671 before) ... Already failing before the start: ts-basic-service (83 of
    # its 143 traced requests in the 5 minutes before failed, the earliest of them begun at 09:20:39 UTC; 100 of 528
    # earlier)": the older failures, another line's, had stopped at 09:23:06, 2.5 minutes before the start
    analysis = pool_exhaustion_analysis()
    analysis["impact"]["failing_before"] = [{"service": "db-proxy", "way": None, "window_requests": 143,
                                             "window_failed": 83, "baseline_requests": 528, "baseline_failed": 100,
                                             "first_failed": "2024-05-01T10:05:39Z",
                                             "last_failed": "2024-05-01T10:08:06Z", "failed_as_after": 0}]
    pm = build_postmortem(analysis)
    said = ("Already failing before the start: db-proxy (83 of its 143 traced requests in the 5 minutes before "
            "failed, begun from 10:05:39 to 10:08:06 UTC, none of them in the way its requests failed after the "
            "start; 100 of 528 earlier).")
    assert said in pm.summary.text and said in pm.impact.narrative.text
    analysis["impact"]["failing_before"][0]["failed_as_after"] = 83  # the same failure, going on
    assert "all of them in the way its requests failed after the start" in build_postmortem(analysis).summary.text


def test_no_series_moving_by_detection_s_test_is_said_beside_the_metric_the_impact_counts_held():
    # OnlineBoutique 16:05: "No metric series moved against the data before the start" in the detection section,
    # under a summary of "frontend degraded", its LatencyP50(s) at 0.594 s through the window against 0.134 s
    analysis = pool_exhaustion_analysis()
    analysis["detection"].update(detector="known onset", series=[])
    analysis["impact"]["metric_marks"] = [{"service": "frontend", "metric": "LatencyP50(s)", "typical": 0.594,
                                           "baseline": 0.134, "samples": 3, "held": True}]
    said = build_postmortem(analysis).detection.narrative.text
    assert ("No metric series moved against the data before the start. Detection's scale takes in the baseline's "
            "1%-99% range, earlier faults' values included; the impact's held-level test leaves that range out and "
            "counts frontend (LatencyP50(s) 0.594 s over the window (the median of its 3 samples), against 0.134 s "
            "before).") in said
    # a mark the held-level test did not set (a client's percentile, its median's shift alone) is not that test's
    analysis["impact"]["metric_marks"][0].update(metric="PodClientLatencyP50(s)", held=False)
    said = build_postmortem(analysis).detection.narrative.text
    assert said.endswith("No metric series moved against the data before the start. The data holds no record of a "
                         "page or alert.")


def test_two_leads_one_cut_after_calling_the_other_are_one_change_to_tell_apart_not_two_moves_to_order():
    # OnlineBoutique 13:10: "No single root cause found: checkoutservice and paymentservice moved, too close together
    # for the data to order" and "Find which of checkoutservice and paymentservice moved first": both "moved" by one
    # change, checkoutservice's requests ending right after calling paymentservice, which a failure of either makes
    analysis = split_between_db_proxy_and_payments()
    analysis["hypotheses"] = analysis["hypotheses"][:1]
    gateway, proxy, payments = analysis["verdict"]["services"]
    gateway.update(own=False)
    proxy.update(ends_after="payments")
    payments.update(onset=proxy["onset"])  # its move is the cut, seen in the same traces
    pm = build_postmortem(analysis)
    cut = "db-proxy's requests now end right after calling payments"
    assert pm.title == f"No single root cause found: {cut}, and the data does not say which of the two cut them"
    assert pm.action_items[0].description == (
        "Find whether payments failed on db-proxy's calls (its errors, a wrong return) or db-proxy failed after them "
        f"(its own errors after the call), before reverting or scaling either: {cut}, one change that points at both")
    steps = runbook_checklist(pm)
    assert steps[0].startswith("[ ] Find whether payments failed on db-proxy's calls")
    assert any(step.startswith("[ ] Mitigate the service found to have cut them:") for step in steps)
    assert f"No single root cause could be named from this data: {cut}, and nothing in it says which of the two cut " \
           "them" in pm.lessons.went_wrong
