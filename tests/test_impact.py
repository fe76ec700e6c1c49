"""Impact: duration, requests, users, affected services and regions, peaks — checked against hand computations."""

from __future__ import annotations

from datetime import datetime, timedelta

import duckdb
import pytest

from duck_store import DuckStore
from incidentlens.analysis.impact import Impact, _over_pods_sql, estimate_impact
from incidentlens.report.schema import Impact as ReportImpact
from incidentlens.report.schema import Narrative
from incidentlens.report.severity import derive_severity

BASELINE = (datetime(2024, 5, 1, 0, 0), datetime(2024, 5, 1, 2, 0))
WINDOW = (datetime(2024, 5, 1, 2, 0), datetime(2024, 5, 1, 2, 30))

METRICS = """
    CREATE VIEW metrics AS
    SELECT CAST(NULL AS VARCHAR) AS pod,
           TIMESTAMP '2024-05-01 00:00:00' + to_minutes(i) AS ts, service, metric,
           CAST(CASE
               WHEN metric = 'rps' THEN CASE service WHEN 'api-gateway' THEN 10 ELSE 30 END
               WHEN metric = 'error_ratio' AND service = 'api-gateway' AND i >= 120 THEN 0.2
               WHEN metric = 'error_ratio' THEN 0.01 + (i % 3) * 0.001
               WHEN service = 'db' AND i >= 125 THEN 400 + CASE WHEN i = 140 THEN 50 ELSE i % 3 END
               ELSE 100 + i % 5
           END AS DOUBLE) AS value
    FROM range(150) t(i), (VALUES ('api-gateway'), ('db')) s(service),
         (VALUES ('rps'), ('error_ratio'), ('p95_ms')) m(metric)
"""

# A line a second for 2.5 h, alternating api-gateway/db and three regions. In the window db's eu-west lines fail
# for users u0..u6; before it one line in 600 is a WARN.
LOGS = """
    CREATE VIEW logs AS
    SELECT TIMESTAMP '2024-05-01 00:00:00' + to_seconds(i) AS ts, service, region,
           CASE WHEN i >= 7200 AND service = 'db' AND region = 'eu-west' THEN 'ERROR'
                WHEN i % 600 = 0 THEN 'WARN' ELSE 'INFO' END AS level,
           'line ' || i AS message,
           'u' || (i % 7) AS user_id
    FROM (SELECT i, ['api-gateway', 'db'][i % 2 + 1] AS service,
                 ['eu-west', 'us-east', 'ap-south'][(i // 2) % 3 + 1] AS region FROM range(9000) t(i))
"""


@pytest.fixture(scope="module")
def store() -> DuckStore:
    return DuckStore(METRICS, LOGS)


def test_requests_are_rate_times_seconds_at_the_entry_service(store: DuckStore) -> None:
    impact = estimate_impact(store, WINDOW, BASELINE).impact

    assert impact.duration_minutes == 30
    assert impact.requests_total == 10 * 30 * 60  # api-gateway is the front door though db is busier
    assert impact.requests_failed == round(0.2 * 10 * 30 * 60)


def test_users_services_and_regions_affected(store: DuckStore) -> None:
    impact = estimate_impact(store, WINDOW, BASELINE).impact

    assert impact.users_affected == 7
    # each half hour of the baseline has three WARN lines, a line every ten minutes, for three different users
    assert (impact.users_baseline, impact.users_excess) == (3, 4)
    assert impact.services_affected == ["db", "api-gateway"]  # db by its errors, api-gateway by its error ratio
    assert impact.regions_affected == ["eu-west"]


def test_peaks_against_baseline(store: DuckStore) -> None:
    impact = estimate_impact(store, WINDOW, BASELINE).impact

    assert impact.peak_latency is not None and impact.peak_error_rate is not None
    assert (impact.peak_latency.service, impact.peak_latency.metric) == ("db", "p95_ms")
    assert impact.peak_latency.value == 450
    assert impact.peak_latency.baseline == 102
    assert impact.peak_latency.at == datetime(2024, 5, 1, 2, 20)
    assert impact.peak_latency.samples == 30  # its typical level, the window median, is of a sample a minute
    assert (impact.peak_error_rate.service, impact.peak_error_rate.value) == ("api-gateway", 0.2)


def test_the_peak_evidence_reruns_to_the_peak_and_states_its_scale(store: DuckStore) -> None:
    result = estimate_impact(store, WINDOW, BASELINE)
    peaks = next(e for e in result.evidence if "peak_latency" in e.data)

    rows = {(r["service"], r["metric"]): r for r in store.fetch(peaks.query).to_pylist()}
    assert rows["db", "p95_ms"]["up_peak"] == peaks.data["peak_latency"]["value"] == 450
    assert "5% of |baseline median|" in peaks.data["rule"]


def test_a_small_rise_on_a_flat_series_is_not_impact() -> None:
    flat = DuckStore("""
        CREATE VIEW metrics AS
        SELECT CAST(NULL AS VARCHAR) AS pod,
               TIMESTAMP '2024-05-01 00:00:00' + to_minutes(i) AS ts, service, 'p95_ms' AS metric,
               CAST(CASE WHEN i < 120 THEN 100 WHEN service = 'db' THEN 160 ELSE 110 END AS DOUBLE) AS value
        FROM range(150) t(i), (VALUES ('api'), ('db')) s(service)
    """)
    impact = estimate_impact(flat, WINDOW, BASELINE).impact

    # api's 10% is 2 robust sd under impact's 5% noise floor (5 under the root-cause tests' 2%); db's 60% is 12
    assert impact.services_affected == ["db"]
    assert impact.peak_latency is not None and (impact.peak_latency.service, impact.peak_latency.value) == ("db", 160)


def test_every_number_cites_evidence_with_its_query(store: DuckStore) -> None:
    result = estimate_impact(store, WINDOW, BASELINE)
    by_id = {e.id: e for e in result.evidence}

    assert result.impact.evidence == list(by_id)
    assert all(e.kind == "impact" for e in result.evidence)
    requests = next(e for e in result.evidence if "requests_total" in e.data)
    assert store.fetch(requests.query).to_pylist()[0]["mean_rate"] == 10
    block = result.impact.model_dump(mode="json")
    assert block["peak_latency"]["at"].endswith("Z")


def test_without_request_metrics_log_lines_stand_in() -> None:
    impact = estimate_impact(DuckStore(LOGS), WINDOW, BASELINE).impact

    assert impact.requests_total == 900  # api-gateway's lines in 30 min, one every 2 s
    assert impact.requests_failed == 0
    assert impact.peak_latency is None
    assert impact.services_affected == ["db"]
    # every minute of the window: 10 of its 60 lines are db's eu-west errors; before it only WARNs, no errors
    assert impact.peak_error_rate is not None
    assert impact.peak_error_rate.metric == "log_error_ratio"
    assert impact.peak_error_rate.value == pytest.approx(10 / 60)
    assert impact.peak_error_rate.baseline == 0
    assert impact.peak_error_rate.at == WINDOW[0]


def test_quiet_logs_have_no_peak_and_no_affected_users() -> None:
    quiet = DuckStore("""
        CREATE VIEW logs AS
        SELECT TIMESTAMP '2024-05-01 00:00:00' + to_seconds(i) AS ts, 'api' AS service, 'INFO' AS level,
               'ok' AS message, 'u' || (i % 5) AS user_id
        FROM range(9000) t(i)
    """)
    impact = estimate_impact(quiet, WINDOW, BASELINE).impact

    assert impact.peak_error_rate is None
    assert impact.users_affected == 0
    assert impact.services_affected == []
    assert (impact.requests_total, impact.requests_failed) == (1800, 0)


def users_store(logs_from_minute: int, ids_from_minute: int = 0) -> DuckStore:
    """Logs from `logs_from_minute` to 02:30: a WARN line a minute, each for a user of its own (minute m: user
    u<m>), carrying the user id from `ids_from_minute` on; the same rate before 02:00 and after."""
    return DuckStore(f"""
        CREATE VIEW logs AS
        SELECT TIMESTAMP '2024-05-01 00:00:00' + to_minutes(i) AS ts, 'api' AS service, 'WARN' AS level,
               'slow' AS message, CASE WHEN i >= {ids_from_minute} THEN 'u' || i END AS user_id
        FROM range({logs_from_minute}, 150) t(i)
    """)


def test_a_baseline_the_logs_cover_in_part_counts_its_users_over_what_they_cover() -> None:
    # the logs begin at 01:45: the baseline's 15 logged minutes hold 15 users, 30 for the window's 30 minutes,
    # which holds 30 as well (not 15 more: a baseline taken as two hours of users would have read half its rate)
    impact = estimate_impact(users_store(logs_from_minute=105), WINDOW, BASELINE)

    assert impact.impact.users_affected == 30
    assert (impact.impact.users_baseline, impact.impact.users_excess) == (30, 0)
    said = next(e.title for e in impact.evidence if "users_baseline" in e.data)
    assert said == ("30 distinct users on WARN/ERROR/FATAL lines per 30 min: 15 in the 15 min of the baseline its "
                    "logs cover, scaled up: 0 more in the window")


def test_a_baseline_whose_lines_carry_no_user_id_is_no_baseline_of_users() -> None:
    # user ids are logged from the window's start: the baseline's lines cannot say how many users saw errors
    impact = estimate_impact(users_store(logs_from_minute=0, ids_from_minute=120), WINDOW, BASELINE).impact

    assert impact.users_affected == 30
    assert (impact.users_baseline, impact.users_excess) == (None, None)  # were (0, 30): all 30 "beyond"


# Two latency series: `cache` was already at 900 ms for the 5 minutes before the start and creeps to 910 after it;
# `db` is at 100 ms until the start, then climbs to 400 ms. Only db's rise is the incident's.
ALREADY_HIGH = """
    CREATE VIEW metrics AS
    SELECT CAST(NULL AS VARCHAR) AS pod,
           TIMESTAMP '2024-05-01 00:00:00' + to_minutes(i) AS ts, service, 'p95_ms' AS metric,
           CAST(CASE
               WHEN service = 'cache' AND i >= 115 THEN 900 + CASE WHEN i >= 120 THEN 10 ELSE 0 END
               WHEN service = 'db' AND i >= 120 THEN 400
               ELSE 100 + i % 5
           END AS DOUBLE) AS value
    FROM range(150) t(i), (VALUES ('cache'), ('db')) s(service)
"""


def test_impact_counts_only_what_changed_at_or_after_the_start() -> None:
    result = estimate_impact(DuckStore(ALREADY_HIGH), WINDOW, BASELINE)
    peak = result.impact.peak_latency
    assert (peak.service, peak.value) == ("db", 400.0)  # not cache's 910, which it nearly had before the start
    assert result.impact.services_affected == ["db"]


SPANS = """
    CREATE VIEW spans AS
    SELECT 't' || i AS trace_id, 's' || i AS span_id, CAST(NULL AS VARCHAR) AS parent_id, 'edge-proxy' AS service,
           'GET /' AS operation, TIMESTAMP '2024-05-01 00:00:00' + to_seconds(i * 10) AS start_ts,
           12.0 AS duration_ms, i >= 720 AND i % 4 = 0 AS is_error
    FROM range(900) t(i)
"""


def test_with_traces_requests_are_the_root_spans_where_they_entered(store: DuckStore) -> None:
    impact = estimate_impact(DuckStore(METRICS, LOGS, SPANS), WINDOW, BASELINE).impact
    assert impact.entry_service == "edge-proxy"  # not the busiest service by rate: where requests entered
    assert impact.requests_total == 180 and impact.requests_failed == 45  # one a 10 s for 30 min, every 4th failed


# Logs that cover only the last 2 minutes of the 2 h baseline and the window's first 2 minutes (a fault's log
# files under a day of metrics): 'orders' logs 6 WARN lines a minute throughout, 'pay' 1 a minute before the start
# and 6 after it.
SHORT_LOGS = """
    CREATE VIEW logs AS
    SELECT TIMESTAMP '2024-05-01 01:58:00' + to_seconds(i) AS ts, service,
           CASE WHEN service = 'orders' AND i % 10 = 0 THEN 'WARN'
                WHEN service = 'pay' AND (i % 60 = 1 OR (i >= 120 AND i % 10 = 1)) THEN 'WARN'
                ELSE 'INFO' END AS level,
           'line ' || i AS message
    FROM range(240) t(i), (VALUES ('orders'), ('pay')) s(service)
"""


def test_affected_services_compare_rates_over_the_minutes_the_logs_cover() -> None:
    impact = estimate_impact(DuckStore(SHORT_LOGS), WINDOW, BASELINE).impact
    # per minute of the 2 h baseline orders' 12 lines would be 0.1 a minute against 6 in the window: 'affected'
    assert impact.services_affected == ["pay"]


def test_spans_without_an_error_status_leave_failures_uncounted() -> None:
    # traces with no status column: is_error is NULL on every span, which says nothing about failures
    no_status = SPANS.replace("i >= 720 AND i % 4 = 0 AS is_error", "CAST(NULL AS BOOLEAN) AS is_error")
    result = estimate_impact(DuckStore(no_status), WINDOW, BASELINE)
    assert result.impact.requests_total == 180
    assert result.impact.requests_failed is None  # not "0 failed (0.0%)"
    assert any("failures not recorded" in e.title for e in result.evidence)


def test_the_window_is_not_called_the_incidents_duration() -> None:
    # with a given start the window runs to the end of the data, which need not be the incident's end
    ninety_seconds = (WINDOW[0], WINDOW[0] + timedelta(seconds=90))
    result = estimate_impact(DuckStore(SHORT_LOGS), ninety_seconds, BASELINE)
    titles = [e.title for e in result.evidence]
    assert "incident window: 1.5 min from its start to its end" in titles
    assert not any("lasted" in title for title in titles)


# Two minutes of baseline without errors, two whole minutes of the window at 1 error in 100 lines, then 8 s in
# which 4 of 20 lines fail, where the data ends
SLIVER_LOGS = """
    CREATE VIEW logs AS
    SELECT TIMESTAMP '2024-05-01 01:58:00' + to_milliseconds(i * 100) AS ts, 'api' AS service,
           CASE WHEN i >= 2400 AND i % 5 = 0 THEN 'ERROR' WHEN i >= 1200 AND i % 100 = 0 THEN 'ERROR'
                ELSE 'INFO' END AS level,
           'line ' || i AS message
    FROM range(2480) t(i) WHERE i < 2400 OR i % 4 = 0
"""


def test_the_error_peak_is_a_whole_minute_not_the_sliver_where_the_data_ends() -> None:
    ends_inside_a_minute = (WINDOW[0], WINDOW[0] + timedelta(seconds=128))
    peak = estimate_impact(DuckStore(SLIVER_LOGS), ends_inside_a_minute, BASELINE).impact.peak_error_rate
    # the last 8 s hold 4 errors in 20 lines: 20%, of a sliver; every whole minute of the window is at 1%
    assert (peak.value, peak.baseline, peak.at) == (pytest.approx(0.01), 0.0, WINDOW[0])


def test_the_peak_latency_is_the_one_requests_were_served_with_not_a_clients_wait() -> None:
    # db serves 2x slower from the start; api's client-side p99 on its calls holds a 3,456 s outlier (a client
    # percentile's quirk): the peak the users saw is db's server latency
    metrics = DuckStore("""
        CREATE VIEW metrics AS
        SELECT CAST(NULL AS VARCHAR) AS pod,
               TIMESTAMP '2024-05-01 00:00:00' + to_minutes(i) AS ts, service, metric,
               CAST(CASE WHEN metric = 'client_latency_p99_s' THEN (CASE WHEN i = 140 THEN 3456 ELSE 0.2 END)
                         WHEN i >= 120 THEN 0.2 ELSE 0.1 + (i % 3) * 0.001 END AS DOUBLE) AS value
        FROM range(150) t(i),
             (VALUES ('api', 'client_latency_p99_s'), ('db', 'server_latency_p99_s')) s(service, metric)
    """)
    peak = estimate_impact(metrics, WINDOW, BASELINE).impact.peak_latency

    assert peak is not None and (peak.service, peak.metric, peak.value) == ("db", "server_latency_p99_s", 0.2)


# edge-proxy's latency and error ratio flat all day: only its root spans show the failures
FLAT_METRICS = """
    CREATE VIEW metrics AS
    SELECT CAST(NULL AS VARCHAR) AS pod,
           TIMESTAMP '2024-05-01 00:00:00' + to_minutes(i) AS ts, 'edge-proxy' AS service, metric,
           CAST(CASE metric WHEN 'rps' THEN 10 WHEN 'error_ratio' THEN 0.01 + (i % 3) * 0.001 ELSE 100 + i % 5 END
                AS DOUBLE) AS value
    FROM range(150) t(i), (VALUES ('rps'), ('error_ratio'), ('p95_ms')) m(metric)
"""


def test_root_spans_failing_from_the_start_mark_their_service_affected_and_count_toward_severity() -> None:
    impact = estimate_impact(DuckStore(FLAT_METRICS, SPANS), WINDOW, BASELINE).impact
    assert impact.harm_checked == ["latency and error metrics", "failed, cut-short or slowed traced requests"]
    assert impact.services_affected == ["edge-proxy"]  # 45 of 180 failed in the window, none in the baseline
    assert (impact.requests_failed, impact.requests_failed_excess) == (45, 45)
    report_impact = ReportImpact(**impact.model_dump(exclude={"evidence", "requests_failed_excess"}),
                                 failed_share=45 / 180, failed_excess=45, narrative=Narrative(text=""))
    level, why = derive_severity(report_impact)
    assert (level, why.split(" (")[0]) == ("SEV1", "SEV1 because >= 10% of requests failed beyond the baseline's "
                                                   "share")  # was SEV4, "no user-visible impact"


def test_root_spans_failing_as_often_as_before_the_start_are_the_window_s_ordinary_failures() -> None:
    all_day = SPANS.replace("i >= 720 AND i % 4 = 0 AS is_error", "i % 4 = 0 AS is_error")
    impact = estimate_impact(DuckStore(FLAT_METRICS, all_day), WINDOW, BASELINE).impact
    assert impact.requests_failed == 45
    assert impact.harm_checked == ["latency and error metrics", "failed, cut-short or slowed traced requests"]
    assert impact.services_affected == []


def test_logs_with_no_line_in_the_window_count_no_requests_and_check_no_lines() -> None:
    # the logs stop before the window (a gap, as on an OnlineBoutique day): that is no evidence that nothing failed
    gap = LOGS.replace("range(9000)", "range(7000)")
    impact = estimate_impact(DuckStore(gap), WINDOW, BASELINE).impact
    assert impact.requests_total is None and impact.requests_failed is None  # not "0 requests, 0 failed"
    assert "WARN/ERROR lines" not in impact.harm_checked
    assert impact.peak_error_rate is None


def test_the_lines_of_a_logger_that_is_no_front_door_are_not_counted_as_requests() -> None:
    # TrainTicket without traces or a request-rate metric: "0 of 666 requests at ts-seat-service failed" counted the
    # busiest logger's lines; with a front door named (api-gateway) its lines still stand in for requests
    no_front_door = LOGS.replace("['api-gateway', 'db']", "['seat', 'db']")
    impact = estimate_impact(DuckStore(no_front_door), WINDOW, BASELINE).impact
    assert impact.requests_total is None and impact.entry_service is None
    assert estimate_impact(DuckStore(LOGS), WINDOW, BASELINE).impact.entry_service == "api-gateway"


# recs serves in 10 ms, but for five minutes an hour before the start (an earlier fault) and from the start on it
# takes 2.3 s
REPEATED_FAULT = """
    CREATE VIEW metrics AS
    SELECT CAST(NULL AS VARCHAR) AS pod,
           TIMESTAMP '2024-05-01 00:00:00' + to_minutes(i) AS ts, 'recs' AS service, 'p95_ms' AS metric,
           CAST(CASE WHEN i >= 120 OR i BETWEEN 60 AND 64 THEN 2300 ELSE 10 + i % 3 END AS DOUBLE) AS value
    FROM range(150) t(i)
"""


def test_a_latency_held_far_above_its_median_is_harm_though_an_earlier_fault_in_the_baseline_went_as_high() -> None:
    # OnlineBoutique 15:21: recommendationservice's p95 from 0.025 to 2.3 s through the window, "no service's
    # latency rose" because its 15:12 fault widened the baseline's quantile range
    impact = estimate_impact(DuckStore(REPEATED_FAULT), WINDOW, BASELINE).impact

    assert impact.services_affected == ["recs"]
    assert impact.peak_latency is not None and impact.peak_latency.typical == 2300.0
    assert [(m.service, m.held) for m in impact.metric_marks] == [("recs", True)]  # by the held-level test


# A request every 10 s enters at gateway, which calls food; no span carries a status (as Nezha's traces). food writes
# one line in each request's trace: an ERROR when its food list lookup fails (one request in 40 before the start, those
# `NEW` picks after it), an ERROR when it finds no stores (those `OLD` picks, on both sides), else a WARN, so its
# WARN/ERROR lines per minute do not change.
TRACED = """
    CREATE VIEW spans AS
    SELECT 't' || i AS trace_id, 's' || i || service AS span_id,
           CASE service WHEN 'food' THEN 's' || i || 'gateway' END AS parent_id, service, 'GET /food' AS operation,
           TIMESTAMP '2024-05-01 00:00:00' + to_seconds(i * 10) AS start_ts, 12.0 AS duration_ms,
           CAST(NULL AS BOOLEAN) AS is_error
    FROM range(900) t(i), (VALUES ('gateway'), ('food')) s(service)
"""
TRACED_LOGS = """
    CREATE VIEW logs AS
    SELECT TIMESTAMP '2024-05-01 00:00:00' + to_seconds(i * 10) AS ts, 'food' AS service, 't' || i AS trace_id,
           CASE WHEN lookup OR OLD THEN 'ERROR' ELSE 'WARN' END AS level,
           CASE WHEN lookup THEN 'food list lookup failed for ' || i WHEN OLD THEN 'no stores for ' || i
                ELSE 'slow food query ' || i END AS message
    FROM (SELECT i, (i < 720 AND i % 40 = 0) OR (i >= 720 AND NEW) AS lookup FROM range(900) t(i))
"""


def _as_reported(impact: Impact) -> ReportImpact:
    """The impact as the review's schema holds it, with no narrative yet."""
    return ReportImpact(**impact.model_dump(exclude={"evidence", "requests_failed_excess"}),
                        narrative=Narrative(text=""))


def _traced(new: str, old: str = "FALSE") -> DuckStore:
    return DuckStore(TRACED, TRACED_LOGS.replace("NEW", new).replace("OLD", old))


def test_a_service_whose_traced_requests_fail_from_the_start_is_affected() -> None:
    # TrainTicket 09:34: ts-food-service failed 7 of its 9 traced requests after the onset with a new ERROR line,
    # which 5 of its 149 requests before had, and neither a metric nor its WARN/ERROR lines per minute counted it
    result = estimate_impact(_traced("i % 4 = 0"), WINDOW, BASELINE)

    assert result.impact.harm_checked == ["failed, cut-short or slowed traced requests", "WARN/ERROR lines"]
    assert result.impact.services_affected == ["food"]
    cited = next(e for e in result.evidence if "failed, cut-short or slowed traced requests" in e.title)
    assert cited.title == ("affected: 1 service by failed, cut-short or slowed traced requests: food 45 of 180 "
                           "requests failed with an ERROR line: food list lookup failed for <*>, 18 of 720 before")


def test_a_new_way_of_failing_counts_though_an_earlier_fault_fills_the_baseline_with_another() -> None:
    # TrainTicket 09:34 again: 91 of food's 149 requests before the onset failed with 'foodStoresListResult is null'
    # (earlier faults): all failures together went from 61% to 78%, the new one from 3% to 78%. Here 3 in 5 requests
    # find no stores on both sides: 70% failed after the start against 60% before, the lookup 25% against 2.5%
    impact = estimate_impact(_traced("i % 4 = 0", old="i % 5 < 3"), WINDOW, BASELINE).impact

    assert impact.services_affected == ["food"]


def test_traced_requests_failing_as_often_as_before_or_too_few_to_tell_mark_no_service() -> None:
    as_before = estimate_impact(_traced("i % 40 = 0"), WINDOW, BASELINE).impact  # 5 of 180, 18 of 720 before
    four = estimate_impact(_traced("i IN (720, 721, 722, 723)"), WINDOW, BASELINE).impact  # under MIN_PROBLEMS

    assert as_before.services_affected == [] and four.services_affected == []
    assert "failed, cut-short or slowed traced requests" in as_before.harm_checked


def test_a_service_whose_traced_requests_failed_in_the_minutes_before_the_start_is_said_already_failing() -> None:
    # TrainTicket 11:04: ts-travel2-service failed 12 of its 12 requests in the 5 minutes before the start, 34 of 321
    # earlier, and the review said nothing of it. Here food finds no stores for every other request from 01:55 on
    old = estimate_impact(_traced("FALSE", old="i >= 690 AND i % 2 = 0"), WINDOW, BASELINE)
    new = estimate_impact(_traced("i % 4 = 0"), WINDOW, BASELINE)

    (failing,) = old.impact.failing_before
    assert (failing.service, failing.window_failed, failing.window_requests) == ("food", 15, 30)
    assert (failing.baseline_failed, failing.baseline_requests) == (18, 690)
    assert failing.failed_as_after == 15  # all of them as after the start: the same failure, going on
    cited = next(e for e in old.evidence if e.title.startswith("failing before the start"))
    assert cited.title == ("failing before the start: 1 service whose traced requests failed in the 5 min before it "
                           "beyond their earlier share: food 15 of 30 requests failed, begun from "
                           "2024-05-01T01:55:00Z to 2024-05-01T01:59:40Z, 18 of 690 earlier")
    assert new.impact.failing_before == []  # failing from the start on is the incident's


def test_a_service_failing_before_the_start_in_another_way_than_after_it_is_told_apart() -> None:
    # TrainTicket 09:25: ts-basic-service failed 83 of 143 requests in the 5 minutes before the start ('Get Route By
    # Ids Failed', the 09:21 fault's, the last at 09:23:06), and 5 of 53 after it with 'catch price exception', a
    # line none before wrote. Here food finds no stores for every other request from 01:55 to 01:57:20, then after
    # the start its list lookups fail
    impact = estimate_impact(_traced("i % 4 = 0", old="i BETWEEN 690 AND 704 AND i % 2 = 0"), WINDOW, BASELINE).impact

    (failing,) = impact.failing_before
    assert (failing.window_failed, failing.window_requests) == (8, 30)
    assert (failing.first_failed, failing.last_failed) == (datetime(2024, 5, 1, 1, 55),
                                                           datetime(2024, 5, 1, 1, 57, 20))
    assert failing.failed_as_after == 0  # none in the way they failed after the start
    assert [f.way for f in impact.traced_failures] == ["an ERROR line: food list lookup failed for <*>"]


def test_a_failure_before_the_start_is_not_said_to_be_the_way_after_it_when_no_one_way_was() -> None:
    # after the start food fails in two new ways, a lookup and a menu query, neither alone as far past its share as
    # the two together: its requests "failed", in no one way. Before it, 8 of 30 found no stores: whether that is the
    # way they failed after the start is not known, and is not said ("all of them in the way ...")
    menu = "WHEN OLD AND i >= 720 THEN 'menu query timed out ' || i WHEN OLD THEN"
    logs = (TRACED_LOGS.replace("WHEN OLD THEN", menu).replace("NEW", "i % 4 = 0")
            .replace("OLD", "((i BETWEEN 690 AND 704 AND i % 2 = 0) OR (i >= 720 AND i % 4 = 1))"))
    impact = estimate_impact(DuckStore(TRACED, logs), WINDOW, BASELINE).impact

    assert [(f.service, f.way, f.window_failed) for f in impact.traced_failures] == [("food", None, 90)]
    (failing,) = impact.failing_before
    assert (failing.window_failed, failing.failed_as_after) == (8, None)


# The requests of `TRACED`: gateway writes a line in each, food one that says it served the list, but in those `LOST`
# picks after the start, and in one request in three a cache miss before it (`MISSES` picks those after it). All INFO:
# no status, no WARN or ERROR line, only the lines food no longer writes show what its requests did.
LOGGED = """
    CREATE VIEW logs AS
    SELECT TIMESTAMP '2024-05-01 00:00:00' + to_seconds(i * 10) AS ts, service, 't' || i AS trace_id,
           'INFO' AS level, message || ' ' || i AS message
    FROM range(900) t(i), (VALUES ('gateway', 'routed'), ('food', 'served the food list'),
                                  ('food', 'cache miss for the food list')) s(service, message)
    WHERE service = 'gateway'
       OR (message = 'served the food list' AND NOT (i >= 720 AND LOST))
       OR (message LIKE 'cache miss%' AND CASE WHEN i < 720 THEN i % 3 = 0 ELSE MISSES END)
"""


def _logged(lost: str, misses: str = "i % 3 = 0") -> DuckStore:
    return DuckStore(TRACED, LOGGED.replace("LOST", lost).replace("MISSES", misses))


def test_requests_that_stop_writing_the_line_their_kind_wrote_mark_their_service_affected() -> None:
    # TrainTicket 11:04, ts-route-service's exception: 58 of its 59 routes/byIds requests wrote no 'getRouteById'
    # line, 60 of 488 before, with no error status or ERROR line, and the review said "no impact measured" at SEV4
    result = estimate_impact(_logged("i % 3 > 0"), WINDOW, BASELINE)

    assert result.impact.services_affected == ["food"]
    (failure,) = result.impact.traced_failures
    assert (failure.kind, failure.window_failed, failure.window_requests) == ("GET /food", 120, 180)
    cited = next(e for e in result.evidence if "cut-short" in e.title)
    assert cited.title == ("affected: 1 service by failed, cut-short or slowed traced requests: food 120 of 180 GET "
                           "/food requests ended without writing the line 'served the food list <*>', 0 of 720 "
                           "before")
    report_impact = _as_reported(result.impact)
    assert derive_severity(report_impact)[0] == "SEV3"
    assert ("food: 120 of 180 GET /food requests ended without writing the line 'served the food list <*>', 0 of 720 "
            "before") in derive_severity(report_impact)[1]


def test_a_failure_an_error_line_shows_is_said_before_a_line_the_requests_no_longer_wrote() -> None:
    # TrainTicket 09:49: "10 of 10 ... requests ended without writing the line '...GET Code By cookieId'" was said
    # of ts-verification-code-service, and not that 7 of them failed with an ERROR line '...[Code not found]'
    # food's list lookup fails with an ERROR line in one request in four from the start on
    errors = (LOGGED.replace("WHERE service = 'gateway'",
                             "WHERE service = 'gateway' OR (message = 'no code' AND i >= 720 AND i % 4 = 0)")
              .replace("('food', 'served the food list'),", "('food', 'served the food list'), ('food', 'no code'),")
              .replace("'INFO' AS level", "CASE message WHEN 'no code' THEN 'ERROR' ELSE 'INFO' END AS level"))
    logs = errors.replace("LOST", "i % 3 > 0").replace("MISSES", "FALSE")
    impact = estimate_impact(DuckStore(TRACED, logs), WINDOW, BASELINE).impact

    (failure,) = impact.traced_failures
    assert (failure.way, failure.window_failed) == ("an ERROR line: no code <*>", 45)


def test_a_line_written_in_some_requests_only_or_a_service_not_logged_in_the_window_marks_nothing() -> None:
    # a cache miss in one request in three before and none after is no request failing; a service none of whose
    # lines the window holds was not logged there (gateway's lines show the window was), which says nothing of it
    no_misses = estimate_impact(_logged("FALSE", misses="FALSE"), WINDOW, BASELINE).impact
    unlogged = estimate_impact(_logged("TRUE", misses="FALSE"), WINDOW, BASELINE).impact

    assert no_misses.services_affected == [] and unlogged.services_affected == []


# Every 10 s checkout is entered by PlaceOrder, which calls payment, then cart to empty it; from the start on `CUT`
# picks the orders that end after payment. One request in ten is a GetQuote, which calls neither; `QUOTES` picks the
# extra GetQuotes after the start. No status, no logs: only the calls show what the requests did.
ORDERS = """
    CREATE VIEW spans AS
    SELECT 't' || i AS trace_id, 't' || i || service AS span_id,
           CASE WHEN service <> 'checkout' THEN 't' || i || 'checkout' END AS parent_id, service,
           CASE service WHEN 'payment' THEN 'Charge' WHEN 'cart' THEN 'EmptyCart'
                ELSE CASE WHEN ordered THEN 'PlaceOrder' ELSE 'GetQuote' END END AS operation,
           TIMESTAMP '2024-05-01 00:00:00' + to_seconds(i * 10) AS start_ts, 12.0 AS duration_ms,
           CAST(NULL AS BOOLEAN) AS is_error
    FROM (SELECT i, i % 10 <> 9 AND NOT (i >= 720 AND QUOTES) AS ordered FROM range(900) t(i)),
         (VALUES ('checkout'), ('payment'), ('cart')) s(service)
    WHERE service = 'checkout' OR (ordered AND NOT (service = 'cart' AND i >= 720 AND CUT))
"""


def test_requests_cut_short_with_no_error_to_show_it_mark_their_service_affected() -> None:
    # OnlineBoutique 13:10: 16 of checkoutservice's 17 PlaceOrder requests ended without calling cartservice's
    # EmptyCart, 4 of 259 before, and nothing else counted it
    cut = DuckStore(ORDERS.replace("QUOTES", "FALSE").replace("CUT", "i % 4 = 0"))
    result = estimate_impact(cut, WINDOW, BASELINE)

    assert result.impact.services_affected == ["checkout"]
    cited = next(e for e in result.evidence if "cut-short" in e.title)
    assert cited.title == ("affected: 1 service by failed, cut-short or slowed traced requests: checkout 45 of 162 "
                           "PlaceOrder requests ended without calling cart EmptyCart, 0 of 648 before")


def test_requests_slowed_with_no_error_or_metric_to_show_it_mark_their_service_affected() -> None:
    # OnlineBoutique 14:12, paymentservice's network delayed: checkoutservice's PlaceOrder requests waited half a
    # second longer on each call to it, with no status, line or metric to show it, and the review said "no sustained
    # impact" beside a root cause whose callers waited 532 ms more on each call
    slowed = DuckStore(ORDERS.replace("QUOTES", "FALSE").replace("CUT", "FALSE").replace(
        "12.0 AS duration_ms", "CASE WHEN service = 'checkout' AND ordered THEN 10.0 + i % 7 "
                               "+ CASE WHEN i >= 720 THEN 500 ELSE 0 END ELSE 12.0 END AS duration_ms"))
    result = estimate_impact(slowed, WINDOW, BASELINE)

    assert result.impact.services_affected == ["checkout"]
    (failure,) = result.impact.traced_failures
    assert (failure.kind, failure.slower_than_ms) == ("PlaceOrder", 16.0)
    cited = next(e for e in result.evidence if "slowed" in e.title)
    assert cited.title == ("affected: 1 service by failed, cut-short or slowed traced requests: checkout 162 of 162 "
                           "PlaceOrder requests took longer than 16 ms (the p90 of their kind before), 0 of 648 "
                           "before")
    assert (failure.window_median_ms, failure.baseline_median_ms) == (513.0, 13.0)  # how much slower
    report_impact = _as_reported(result.impact)
    assert ("PlaceOrder requests took longer than 16 ms, their kind's p90 before, 0 of 648 before; the kind's median "
            "request 513 ms, 13 ms before") in derive_severity(report_impact)[1]


def _charges_slowed_by(added_ms: float) -> DuckStore:
    """`ORDERS` with checkout's requests taking 100 ms and payment's Charge about 1 ms, `added_ms` more after the
    start."""
    return DuckStore(ORDERS.replace("QUOTES", "FALSE").replace("CUT", "FALSE").replace(
        "12.0 AS duration_ms", "CASE service WHEN 'checkout' THEN 100.0 WHEN 'payment' THEN 1.0 + i % 7 / 100 "
                               f"+ CASE WHEN i >= 720 THEN {added_ms} ELSE 0 END ELSE 12.0 END AS duration_ms"))


def test_requests_slowed_by_too_little_for_a_user_to_feel_mark_no_service_affected() -> None:
    # OnlineBoutique 14:47 listed currencyservice affected: its GetSupportedCurrencies requests past their p90, the
    # median one 0.35 ms against 0.273 ms, inside frontend requests of half a second. Here every Charge after the
    # start takes 0.1 ms more, inside orders of 100 ms: under 5% of them, no harm; 10 ms more is
    little = estimate_impact(_charges_slowed_by(0.1), WINDOW, BASELINE)
    felt = estimate_impact(_charges_slowed_by(10.0), WINDOW, BASELINE).impact

    assert little.impact.services_affected == [] and little.impact.traced_failures == []
    (slowed,) = little.impact.slowed_too_little
    assert (slowed.service, slowed.kind, round(slowed.added_ms or 0, 3), slowed.request_ms) == (
        "payment", "Charge", 0.1, 100.0)
    cited = next(e for e in little.evidence if "slowed" in e.title)
    assert cited.title.endswith("slower, too little to matter: payment 162 of 162 Charge requests took longer than "
                                "1.06 ms (the p90 of their kind before), 0 of 648 before")
    assert felt.services_affected == ["payment"] and felt.slowed_too_little == []


def test_requests_whose_median_barely_slowed_but_whose_tail_did_are_not_too_little_to_matter() -> None:
    # OnlineBoutique 15:47: shippingservice's GetQuote requests past their p90 took 1.47 ms at the median, 1.05 ms over
    # the kind's 0.42 ms, "too little to matter" inside requests of 546 ms; their p90 took 122 ms. Here every Charge
    # after the start takes 0.1 ms more and one in five 50 ms more, inside orders of 100 ms
    tail = DuckStore(ORDERS.replace("QUOTES", "FALSE").replace("CUT", "FALSE").replace(
        "12.0 AS duration_ms", "CASE service WHEN 'checkout' THEN 100.0 WHEN 'payment' THEN 1.0 + i % 7 / 100 "
                               "+ CASE WHEN i >= 720 THEN 0.1 + CASE WHEN i % 5 = 0 THEN 50 ELSE 0 END ELSE 0 END "
                               "ELSE 12.0 END AS duration_ms"))
    impact = estimate_impact(tail, WINDOW, BASELINE).impact

    assert impact.services_affected == ["payment"] and impact.slowed_too_little == []
    (slowed,) = impact.traced_failures
    assert round(slowed.added_ms or 0, 2) == 0.11 and round(slowed.tail_added_ms or 0) == 50  # median, p90


def test_requests_slowed_past_a_baseline_half_of_earlier_incidents_minutes_mark_their_service_affected() -> None:
    # OnlineBoutique 14:12 with the hour of traces: 7 of checkoutservice's 14 PlaceOrder minutes before were earlier
    # faults' (medians 0.79-7.4 s against 0.15-0.29 s), the pooled p90 1.9 s, and the review said "no sustained
    # impact" though its requests waited half a second longer. Here every other minute before took 2 s more
    slowed = DuckStore(ORDERS.replace("QUOTES", "FALSE").replace("CUT", "FALSE").replace(
        "12.0 AS duration_ms", "CASE WHEN service = 'checkout' AND ordered THEN 10.0 + i % 7 "
                               "+ CASE WHEN i >= 720 THEN 500 WHEN i // 6 % 2 = 0 THEN 2000 ELSE 0 END "
                               "ELSE 12.0 END AS duration_ms"))
    result = estimate_impact(slowed, WINDOW, BASELINE)

    assert result.impact.services_affected == ["checkout"]
    (failure,) = result.impact.traced_failures
    assert (failure.slower_than_ms, failure.baseline_minutes, failure.minutes_left_out) == (16.0, 120, 60)
    report_impact = _as_reported(result.impact)
    assert ("162 of 162 PlaceOrder requests took longer than 16 ms, their kind's p90 before, 0 of 324 before; the "
            "kind's median request 513 ms, 13 ms before; 60 of the 120 minutes before left out as earlier incidents' "
            "(their typical request 1.5x slower or faster than the usual)"
            in derive_severity(report_impact)[1])


def test_minutes_of_requests_failing_fast_before_the_start_make_no_ordinary_request_slowed() -> None:
    # OnlineBoutique before 15:21: the front door's requests failed fast in 5 of its 20 minutes (earlier faults' 6 ms
    # against 0.1 s); taking the usual speed from the faster minutes made its ordinary requests after the start slow
    fast = DuckStore(ORDERS.replace("QUOTES", "FALSE").replace("CUT", "FALSE").replace(
        "12.0 AS duration_ms", "CASE WHEN service = 'checkout' AND ordered THEN CASE WHEN i < 720 AND i // 6 % 3 = 0 "
                               "THEN 1.0 ELSE 10.0 + i % 7 END ELSE 12.0 END AS duration_ms"))
    result = estimate_impact(fast, WINDOW, BASELINE)

    assert result.impact.services_affected == []


def test_more_requests_of_a_kind_that_never_made_the_call_cut_nothing_short() -> None:
    # after the start every other request is a GetQuote, which never calls cart: 55% of checkout's requests lack the
    # call against 10% before, but every PlaceOrder still makes it
    mix = DuckStore(ORDERS.replace("QUOTES", "i % 2 = 0").replace("CUT", "FALSE"))

    assert estimate_impact(mix, WINDOW, BASELINE).impact.services_affected == []


def test_traced_requests_failing_set_sev3_and_the_reason_says_whose_and_how() -> None:
    # checkout's orders end short (harm seen), and with no metric or log line to read the severity said "no
    # user-visible impact reached the SEV3 floor"; OnlineBoutique 13:10 read its SEV3 off currencyservice's latency,
    # which nothing marked affected, where what showed the harm was checkoutservice's cut orders
    cut = DuckStore(ORDERS.replace("QUOTES", "FALSE").replace("CUT", "i % 4 = 0"))
    impact = estimate_impact(cut, WINDOW, BASELINE).impact
    report_impact = _as_reported(impact)

    level, why = derive_severity(report_impact)

    assert level == "SEV3"
    assert why.split(" (rule")[0] == (
        "SEV3 because a service's traced requests failed, cut short or slowed beyond its baseline's share (its "
        "requests, not the users': SEV3 at most) (checkout: 45 of 162 PlaceOrder requests ended without calling cart "
        "EmptyCart, 0 of 648 before)")


def _front(success: str, spans_failing: str | None = None) -> DuckStore:
    """`Frontend`'s SuccessRate(%) a minute (`success`, an SQL expression of the minute i; the window from i = 120),
    with `frontend`'s traced requests, one each 10 s, failing where `spans_failing` holds (no traces: None)."""
    views = [f"""
        CREATE VIEW metrics AS
        SELECT CAST(NULL AS VARCHAR) AS pod,
               TIMESTAMP '2024-05-01 00:00:00' + to_minutes(i) AS ts, 'Frontend' AS service,
               'SuccessRate(%)' AS metric, CAST({success} AS DOUBLE) AS value
        FROM range(150) t(i)
    """]
    if spans_failing is not None:
        views.append(SPANS.replace("'edge-proxy'", "'frontend'").replace("i >= 720 AND i % 4 = 0", spans_failing))
    return DuckStore(*views)


def test_a_success_rate_that_falls_is_read_as_an_error_rate_and_sets_severity() -> None:
    # OnlineBoutique 14:47: the front door's SuccessRate(%) from 100 to 18.3, and the review stayed SEV3
    impact = estimate_impact(_front("CASE WHEN i >= 120 THEN 20 ELSE 100 - (i % 3) * 0.1 END"), WINDOW,
                             BASELINE).impact
    peak = impact.peak_error_rate
    assert peak is not None and (peak.service, peak.metric) == ("Frontend", "100% - SuccessRate(%)")
    assert (peak.typical, peak.baseline) == (pytest.approx(0.8), pytest.approx(0.001))
    assert impact.services_affected == ["Frontend"]
    report_impact = _as_reported(impact)
    assert derive_severity(report_impact)[1].startswith("SEV1 because error rate >= 20 points over its baseline")


def test_an_error_rate_held_at_the_sev3_floor_is_harm_though_an_earlier_fault_in_the_baseline_went_higher() -> None:
    # OnlineBoutique 16:13: the front door failed 13-17% of its requests for three minutes against 0% before, "a
    # single peak, not sustained" and SEV4, because its 12:10 fault (half its requests failing) widened the baseline's
    # quantile range; as a latency held at 1.5x, every value at 1% and 2x the baseline median or more is harm
    earlier_fault = "WHEN i BETWEEN 60 AND 69 THEN 50 ELSE 100 END"
    held = estimate_impact(_front(f"CASE WHEN i >= 120 THEN 85 {earlier_fault}"), WINDOW, BASELINE).impact
    assert held.services_affected == ["Frontend"]
    report_impact = _as_reported(held)
    assert derive_severity(report_impact)[1].startswith("SEV2 because error rate >= 5 points over its baseline")
    # one minute at 15% is a peak, and 0.5% held is under the floor: neither marks the front door
    for window in ("i = 125 THEN 85", "i >= 120 THEN 99.5"):
        impact = estimate_impact(_front(f"CASE WHEN {window} {earlier_fault}"), WINDOW, BASELINE).impact
        assert impact.services_affected == [], window


def test_a_success_rate_of_0_is_all_failing_only_where_the_requests_show_it() -> None:
    # TrainTicket's front end reads SuccessRate(%) 0 all day (no requests counted): a 0 with no requests to show
    # failing, or with traced requests that succeed, is no reading, not 100% failed
    stops = "CASE WHEN i >= 120 THEN 0 ELSE 100 - (i % 3) * 0.1 END"
    for store in (_front("0"), _front(stops), _front(stops, spans_failing="FALSE")):
        impact = estimate_impact(store, WINDOW, BASELINE).impact
        assert (impact.peak_error_rate, impact.services_affected) == (None, [])
    failing = estimate_impact(_front(stops, spans_failing="i >= 720"), WINDOW, BASELINE).impact
    assert failing.peak_error_rate is not None and failing.peak_error_rate.typical == 1.0
    assert "Frontend" in failing.services_affected


def test_a_success_rate_below_0_is_no_reading_whatever_the_requests() -> None:
    # an exporter's -1 for "no data" beside a request rate above 0 read as 101% of the requests failing: SEV1
    metrics = """
        CREATE VIEW metrics AS
        SELECT CAST(NULL AS VARCHAR) AS pod, TIMESTAMP '2024-05-01 00:00:00' + to_minutes(i) AS ts,
               'Frontend' AS service, metric,
               CAST(CASE WHEN metric = 'request_rate' THEN 50 WHEN i >= 120 THEN -1 ELSE 100 END AS DOUBLE) AS value
        FROM range(150) t(i), (VALUES ('SuccessRate(%)'), ('request_rate')) m(metric)
    """
    impact = estimate_impact(DuckStore(metrics), WINDOW, BASELINE).impact
    assert (impact.peak_error_rate, impact.services_affected) == (None, [])


def test_the_peak_latency_is_of_a_service_something_marked_affected() -> None:
    # OnlineBoutique 12:10: "latency (shippingservice/PodServerLatencyP99(s)) peaked at 0.00795 s" where nothing
    # marked shippingservice, and its window median was its baseline's: one spike, not the incident's latency
    spikes = """
        CREATE VIEW metrics AS
        SELECT CAST(NULL AS VARCHAR) AS pod,
               TIMESTAMP '2024-05-01 00:00:00' + to_minutes(i) AS ts, service, metric,
               CAST(CASE WHEN metric = 'error_ratio' THEN (CASE WHEN i >= 120 THEN 0.2 ELSE 0.01 END)
                         WHEN i = 140 THEN (CASE service WHEN 'shipping' THEN 1000 ELSE 300 END)
                         ELSE 100 + i % 5 END AS DOUBLE) AS value
        FROM range(150) t(i),
             (VALUES ('api', 'p99_ms'), ('api', 'error_ratio'), ('shipping', 'p99_ms')) s(service, metric)
    """
    impact = estimate_impact(DuckStore(spikes), WINDOW, BASELINE).impact
    assert impact.services_affected == ["api"]  # by its error ratio
    assert impact.peak_latency is not None and (impact.peak_latency.service, impact.peak_latency.value) == ("api", 300)
    # the front door's latency is what the users wait for (TrainTicket 10:12: Frontend/LatencyP50(s) 0.25 s against
    # 0.133 s, its traces entering at ts-gateway-service)
    front = estimate_impact(DuckStore(spikes.replace("'shipping'", "'frontend'")), WINDOW, BASELINE).impact.peak_latency
    assert front is not None and (front.service, front.value) == ("frontend", 1000)
    # with nothing marked, the window's largest stands, which the review words as no impact measured
    unmarked = estimate_impact(DuckStore(spikes.replace("THEN 0.2 ELSE", "THEN 0.01 ELSE")), WINDOW, BASELINE).impact
    assert unmarked.services_affected == []
    assert unmarked.peak_latency is not None and unmarked.peak_latency.service == "shipping"


def test_an_error_rate_named_a_percentage_is_read_in_percent_though_it_stays_under_1() -> None:
    # `http_error_pct` from 0.2 to 0.6 is 0.2% -> 0.6% of requests failing: SEV3 at most (under 1%, SEV4), not
    # "60.6% over the window" and SEV1, as it read when only a value above 1 said "percent"
    store = DuckStore("""
        CREATE VIEW metrics AS
        SELECT CAST(NULL AS VARCHAR) AS pod,
               TIMESTAMP '2024-05-01 00:00:00' + to_minutes(i) AS ts, 'checkout' AS service, metric,
               CAST(CASE WHEN metric = 'rps' THEN 50
                         WHEN i >= 120 THEN 0.6 ELSE 0.2 + (i % 3) * 0.001 END AS DOUBLE) AS value
        FROM range(150) t(i), (VALUES ('rps'), ('http_error_pct')) m(metric)
    """)
    impact = estimate_impact(store, WINDOW, BASELINE).impact
    peak = impact.peak_error_rate
    assert peak is not None and peak.typical == pytest.approx(0.006)
    assert impact.requests_failed == round(50 * 0.006 * 30 * 60)
    report_impact = _as_reported(impact)
    assert derive_severity(report_impact)[0] not in ("SEV1", "SEV2")


def test_a_services_rate_summed_over_its_pods_is_the_same_whatever_order_the_pods_come_in() -> None:
    # 0.1 + 0.2 + 0.3 requests/s on three pods: added in the order the rows come, 0.6000000000000001 or 0.6, and the
    # threads bring them in any order; added in the order of their values, one sum whatever the order
    def summed(rates: list[float]) -> float:
        rows = ", ".join(f"(TIMESTAMP '2024-05-01 00:00:00' + to_minutes({m}), 'p{rate}', {rate}, NULL)"
                         for rate in rates for m in range(2))
        sql = (f"WITH rows(ts, pod, rate, failed_rate) AS (VALUES {rows}), {_over_pods_sql('rows', '')} "
               "SELECT rate FROM steps ORDER BY bucket LIMIT 1")
        return duckdb.connect().execute(sql).fetchall()[0][0]

    assert summed([0.1, 0.2, 0.3]) == summed([0.3, 0.2, 0.1])


# shop's error ratio, one sample a minute stamped at its end: 0.1% for two hours but for an earlier fault at 50% (its
# minutes 60-69, which widen the baseline's quantile range); the incident starts 5 s before the 02:01 sample, which
# measures mostly the minute before (0.6%), then 3-4% is held
FIRST_SAMPLE_BEFORE = """
    CREATE VIEW metrics AS
    SELECT CAST(NULL AS VARCHAR) AS pod, TIMESTAMP '2024-05-01 00:00:00' + to_minutes(i) AS ts, 'shop' AS service,
           'error_ratio' AS metric,
           CAST(CASE WHEN i BETWEEN 60 AND 69 THEN 0.5 WHEN i = 121 THEN 0.006 WHEN i > 121 THEN 0.03 + (i % 2) * 0.01
                     ELSE 0.001 END AS DOUBLE) AS value
    FROM range(127) t(i)
"""


def test_an_error_rate_held_from_the_first_sample_that_measures_the_window_is_harm() -> None:
    # OnlineBoutique 12:27: frontend's errors at 0.76% in the sample 5 s after the start, then 2.2% and 4.0%, against
    # 0% before: the level held was read from the 0.76%, under the 1% floor, and the review said no impact (SEV4)
    start = datetime(2024, 5, 1, 2, 0, 55)
    impact = estimate_impact(DuckStore(FIRST_SAMPLE_BEFORE), (start, datetime(2024, 5, 1, 2, 6)),
                             (datetime(2024, 5, 1, 0, 0), start)).impact

    assert impact.services_affected == ["shop"]
    assert impact.peak_error_rate is not None and impact.peak_error_rate.value == 0.04


# mail's server latency, one sample a minute stamped at its end: 4-5 ms for two hours, then 220 ms from 02:01 on
ONE_SAMPLE_SLOWER = """
    CREATE VIEW metrics AS
    SELECT CAST(NULL AS VARCHAR) AS pod, TIMESTAMP '2024-05-01 00:00:00' + to_minutes(i) AS ts, 'mail' AS service,
           'p90_ms' AS metric, CAST(CASE WHEN i IN (121, AFTER) THEN 220 ELSE 4 + i % 2 END AS DOUBLE) AS value
    FROM range(124) t(i)
"""


def test_a_window_holding_one_sample_of_a_latency_marks_no_service_affected() -> None:
    # OnlineBoutique 13:45 said "emailservice degraded" off "PodServerLatencyP90(s) 0.22 s over the window (its one
    # sample)": one sample is a single peak, which sets no severity level either. Two samples there are a level
    start = datetime(2024, 5, 1, 2, 0, 30)
    baseline = (datetime(2024, 5, 1, 0, 0), start)
    held = DuckStore(ONE_SAMPLE_SLOWER.replace("AFTER", "122"))
    one = estimate_impact(held, (start, datetime(2024, 5, 1, 2, 1, 10)), baseline).impact
    two = estimate_impact(held, (start, datetime(2024, 5, 1, 2, 2, 10)), baseline).impact

    assert (one.services_affected, one.metric_marks) == ([], [])
    assert one.peak_latency is not None and one.peak_latency.samples == 1  # the window's largest, no impact measured
    assert two.services_affected == ["mail"] and [m.samples for m in two.metric_marks] == [2]


def test_a_window_of_two_samples_one_of_them_back_at_the_baseline_marks_no_service_affected() -> None:
    # TrainTicket 08:58 listed ts-config-service affected by "PodServerLatencyP99(s) 0.111 s over the window (the
    # median of its 2 samples)": 0.217 s, then 0.00496 s, its baseline. The median of two is their mean: one sample
    start = datetime(2024, 5, 1, 2, 0, 30)
    impact = estimate_impact(DuckStore(ONE_SAMPLE_SLOWER.replace("AFTER", "0")),
                             (start, datetime(2024, 5, 1, 2, 2, 10)), (datetime(2024, 5, 1, 0, 0), start)).impact

    assert (impact.services_affected, impact.metric_marks) == ([], [])


def test_a_peak_in_the_windows_last_sample_is_said_to_be_there() -> None:
    # TrainTicket 14:49: ts-food-service's p90 0.09 s, then 0.95 s as the window ended (2.2 s the minute after) was
    # "a single peak, not sustained"; whether it held, a window that ends there does not say
    start = datetime(2024, 5, 1, 2, 0, 30)
    window, baseline = (start, datetime(2024, 5, 1, 2, 2, 10)), (datetime(2024, 5, 1, 0, 0), start)
    ending = estimate_impact(DuckStore(ONE_SAMPLE_SLOWER.replace("121, AFTER", "122")), window, baseline).impact
    ended = estimate_impact(DuckStore(ONE_SAMPLE_SLOWER.replace("AFTER", "0")), window, baseline).impact

    assert ending.peak_latency is not None and ending.peak_latency.at_end  # 4 ms at 02:01, 220 ms at 02:02
    assert ended.peak_latency is not None and not ended.peak_latency.at_end  # 220 ms at 02:01, back to 4 ms


def test_a_peak_reached_again_in_the_windows_last_sample_is_said_to_be_there() -> None:
    # 4 ms, then 220 ms in the window's last two samples: the peak's time is the first of the tied ones (02:04), and
    # the window's last sample (02:05, 220 ms too) read as back below it: "a single peak, not sustained"
    start = datetime(2024, 5, 1, 2, 0, 30)
    store = DuckStore(ONE_SAMPLE_SLOWER.replace("IN (121, AFTER)", "IN (124, 125)").replace("range(124)", "range(126)"))
    impact = estimate_impact(store, (start, datetime(2024, 5, 1, 2, 5, 10)), (datetime(2024, 5, 1, 0, 0), start)).impact

    assert impact.peak_latency is not None and impact.peak_latency.value == 220
    assert impact.peak_latency.at_end
