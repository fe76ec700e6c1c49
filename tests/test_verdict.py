"""What each service showed, as the review's bullets give it: the signal that moved at its onset first."""

from __future__ import annotations

from datetime import UTC, datetime

from incidentlens.analysis.rootcause import Hypothesis, ServiceSignals
from incidentlens.analysis.shifts import MetricShift, shift_title
from incidentlens.analysis.verdict import decide, services_showing

CUT = datetime(2022, 8, 23, 13, 10, 37, 400000, tzinfo=UTC)
LATER = datetime(2022, 8, 23, 13, 11, 28, tzinfo=UTC)


def _latency(onset: datetime) -> MetricShift:
    return MetricShift(service="paymentservice", metric="PodClientLatencyP99(s)", direction="up", baseline=0.00496,
                       window_median=0.242, peak=0.242, peak_at=onset, shift=56.1, peak_shift=56.1, onset=onset,
                       evidence="metric_shift-1")


def test_a_service_s_findings_start_with_what_moved_at_its_onset_and_say_when_the_others_moved() -> None:
    # OnlineBoutique 13:10: "paymentservice from 13:10:37 UTC: PodClientLatencyP99(s) from 0.00496 to 0.242 ...;
    # in the traces, checkoutservice's requests now end right after calling it": the latency moved at 13:11:28
    payment = ServiceSignals(service="paymentservice", metric_onset=LATER, cut_onset=CUT, moved=[_latency(LATER)],
                             trace_change="checkoutservice's requests now end right after calling it")

    showing = services_showing({"paymentservice": payment})[0]

    assert showing.onset == CUT.replace(microsecond=0)
    assert showing.showed == ["in the traces, checkoutservice's requests now end right after calling it",
                              "then at 13:11:28 UTC: PodClientLatencyP99(s) from 0.00496 to 0.242 (over tenfold)"]
    assert showing.sign == showing.showed[0]


def test_findings_that_moved_at_the_onset_keep_their_order_and_say_no_time() -> None:
    cpu = _latency(CUT).model_copy(update={"metric": "CpuUsage(m)", "onset": LATER})
    api = ServiceSignals(service="api", metric_onset=CUT, log_onset=CUT, log_ratio=4.0,
                         moved=[cpu, _latency(CUT)])  # the CPU shifted most, but the latency moved first

    showed = services_showing({"api": api})[0].showed

    assert showed == ["PodClientLatencyP99(s) from 0.00496 to 0.242 (over tenfold)",
                      "WARN/ERROR lines at 4x their baseline rate",
                      "then at 13:11:28 UTC: CpuUsage(m) from 0.00496 to 0.242 (over tenfold)"]


def test_a_service_shows_a_change_of_its_own_unless_all_it_showed_is_its_host_or_a_percentile_the_traces_deny():
    # TrainTicket 08:52: ts-delivery-service's client p90-p99 "from 0.0046 to 20 (over a thousandfold): percentiles
    # the traces do not bear out (its 56 traced calls took at most 26.2 ms)", nothing else
    denied = _latency(CUT).model_copy(update={"not_borne_out": "its 56 traced calls took at most 26.2 ms"})
    host = _latency(CUT).model_copy(update={"metric": "NodeCpuUsageRate(%)"})
    untraced = _latency(CUT).model_copy(update={"unchecked": "no traced call covers it"})  # ts-admin-user-service's
    signals = {"delivery": ServiceSignals(service="delivery", metric_onset=CUT, moved=[denied, host]),
               "admin": ServiceSignals(service="admin", metric_onset=CUT, moved=[untraced]),
               "payment": ServiceSignals(service="payment", metric_onset=CUT, moved=[denied, _latency(CUT)])}

    own = {s.service: s.own for s in services_showing(signals)}

    assert own == {"admin": False, "delivery": False, "payment": True}


def _lead(service: str, confidence: float) -> Hypothesis:
    return Hypothesis(service=service, kind="undetermined", mechanism="", confidence=confidence, supporting=[],
                      contradicting=[], test="", test_passed=True)


def test_a_lead_twice_the_next_is_no_root_cause_while_it_is_less_likely_than_not() -> None:
    # Nezha TrainTicket 08:43 with one minute's files: the services on one host share its network counter, which
    # rose a hundredfold; order leads at 9%, twice avatar's 4%, the rest spread over twenty services like avatar
    leads = [_lead("order", 0.09), _lead("avatar", 0.043)] + [_lead(f"svc{i}", 0.04) for i in range(20)]
    verdict = decide(leads, {}, {}, unexplained=0.04)
    assert verdict.status == "inconclusive"
    assert verdict.reason.endswith("order leads at 9%, no more likely than the 21 other candidates and none of these "
                                   "together")
    # the same lead at 92% is named
    named = decide([_lead("order", 0.92), _lead("avatar", 0.04)], {}, {}, unexplained=0.04)
    assert named.status == "root_cause" and named.service == "order"


def test_a_series_that_moved_at_its_peak_alone_is_titled_by_its_peak_not_by_a_median_that_did_not_move() -> None:
    # TrainTicket 08:52: "ts-config-service: PodServerLatencyP90(s) up 0.0σ, ..." for a p90 whose peak was 42σ out
    peak_only = _latency(CUT).model_copy(update={"service": "config", "shift": 0.0, "peak_shift": 42.39})
    moved = _latency(CUT).model_copy(update={"service": "config", "metric": "CpuUsage(m)", "shift": 6593.6})

    assert shift_title("config", [moved, peak_only]) == (
        "config: CpuUsage(m) up 6,593.6σ, PodClientLatencyP99(s) up 42.4σ at its peak (0.0σ typical)")


def test_a_service_s_onset_names_its_own_change_before_a_percentile_the_traces_cannot_confirm() -> None:
    # OnlineBoutique 14:21: paymentservice's server p99 shifted most, but its 19 traced calls are too few to check it;
    # its CPU, the change its hypothesis rests on, moved at the same sample
    p99 = _latency(CUT).model_copy(update={"metric": "PodServerLatencyP99(s)", "shift": 1423.0,
                                           "unchecked": "its 19 traced calls are too few to check it"})
    cpu = _latency(CUT).model_copy(update={"metric": "CpuUsageRate(%)", "baseline": 0.327, "window_median": 92.3,
                                           "peak": 92.3, "shift": 514.9})
    payment = ServiceSignals(service="paymentservice", metric_onset=CUT, moved=[p99, cpu])

    showing = services_showing({"paymentservice": payment})[0]

    assert showing.sign == "CpuUsageRate(%) from 0.327 to 92.3 (over a hundredfold)"
    assert showing.showed[0] == showing.sign
    # with nothing of its own at the onset, the percentile is named, with what the traces say of it
    alone = payment.model_copy(update={"moved": [p99]})
    assert services_showing({"paymentservice": alone})[0].sign == (
        "PodServerLatencyP99(s) from 0.00496 to 0.242 (over tenfold): a percentile the traces cannot confirm "
        "(its 19 traced calls are too few to check it)")


def test_a_service_s_findings_hold_its_own_change_past_three_percentiles_the_traces_deny() -> None:
    # TrainTicket 08:52: ts-verification-code-service's client p90, p95 and p99 (its 50 traced calls took at most
    # 4.31 ms) filled its findings; its own change, the server p99 down at 08:54:10, the time the summary gave it
    # ("from 08:54:10 UTC"), was in none of them
    denied = [_latency(CUT).model_copy(update={"metric": f"PodClientLatencyP{p}(s)", "shift": 6000.0 + p,
                                               "not_borne_out": "its 50 traced calls took at most 4.31 ms"})
              for p in (90, 95, 99)]
    server = _latency(LATER).model_copy(update={"metric": "PodServerLatencyP99(s)", "direction": "down",
                                                "baseline": 0.0099, "window_median": 0.00496, "peak": 0.00496,
                                                "shift": -24.9})
    code = ServiceSignals(service="verification", metric_onset=CUT, moved=[*denied, server])

    showing = services_showing({"verification": code})[0]

    assert showing.own and showing.own_onset == LATER
    assert showing.showed[-1] == "then at 13:11:28 UTC: PodServerLatencyP99(s) from 0.0099 to 0.00496 (-50%)"


def test_a_lead_no_likelier_than_none_of_the_candidates_is_named_beside_its_confidence() -> None:
    # TrainTicket 08:52: "chance passes one of the many tests made about that far (50%, and 49% that it is none of
    # the candidates)": the 50% read as the chance, not as ts-seat-service's confidence
    verdict = decide([_lead("seat", 0.5)], {}, {}, unexplained=0.49)
    assert verdict.status == "inconclusive"
    assert verdict.reason.endswith("(seat at 50%, and 49% that it is none of the candidates)")
