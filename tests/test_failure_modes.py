"""Root cause from whatever telemetry is there, one generated fixture per way a service fails.

The system: a frontend serving requests every 2 s; each request calls `cart`, `catalog` and `currency` through
client spans (the frontend's span around the call, the callee's server span under it), as OpenTelemetry records
them. Per-pod metrics every minute for three hours: CPU, memory, server latency. The fault starts at `AT`.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from incidentlens.analysis import analyze
from incidentlens.analysis.verdict import NO_SINGLE_ROOT_CAUSE
from incidentlens.report import build_postmortem
from incidentlens.telemetry import load_telemetry

START = datetime(2024, 5, 1, 9, 0)
AT = datetime(2024, 5, 1, 12, 0)
END = AT + timedelta(minutes=3)
TRACES_FROM = AT - timedelta(minutes=2)
SERVICES = ("frontend", "cart", "catalog", "currency")
NETWORK_DELAY_MS = 200.0


def _spans(path: Path, delayed: str | None, since: datetime = TRACES_FROM, delay_from: datetime = AT,
           delayed_throughout: str | None = None, cut_after: str | None = None, checkout: bool = False,
           failing: str | None = None) -> Path:
    """Requests every 2 s from `since` to END: frontend root -> client span -> server span in each of five services.
    From `delay_from`, each call into `delayed` waits NETWORK_DELAY_MS more between the client span and the server
    span (the server's own time does not change); each call into `delayed_throughout` waits twice that from the
    start. From AT, every second request ends after its call to `cut_after` (the frontend makes no call after it).
    `checkout`: a checkout service serves requests too, one a second after each of the frontend's, calling catalog
    and then shipping (cut after catalog as the frontend's are). `failing`: the service whose root spans carry an
    error status in the requests cut short (a status column is written only then)."""
    rng = np.random.default_rng(3)
    count = int((END - since).total_seconds() // 2)
    rows: dict[str, list] = {k: [] for k in ("trace_id", "span_id", "parent_id", "service", "operation", "start_ts",
                                             "duration_ms", "status")}

    def add(trace: str, span: str, parent: str, service: str, operation: str, start: datetime, ms: float,
            status: str = "OK") -> None:
        for key, value in zip(rows, (trace, span, parent, service, operation, start, ms, status), strict=True):
            rows[key].append(value)

    def request(trace: str, root: str, start: datetime, calls: tuple[tuple[str, float], ...], cut: bool) -> None:
        total = 1.0
        for callee, server_ms in calls:
            late = 1.0 if callee == delayed and start >= delay_from else 2.0 if callee == delayed_throughout else 0.0
            wait = 1.5 + rng.uniform(0, 1) + late * NETWORK_DELAY_MS
            own = server_ms + rng.uniform(0, 0.3)
            called = start + timedelta(milliseconds=total)  # one call after the other
            add(trace, f"{trace}-{callee}-client", f"{trace}-root", root, f"{callee}/Get", called, own + wait)
            add(trace, f"{trace}-{callee}-server", f"{trace}-{callee}-client", callee, f"{callee}/Get",
                called + timedelta(milliseconds=wait / 2), own)
            total += own + wait
            if cut and callee == cut_after:
                break
        add(trace, f"{trace}-root", "root", root, f"{root} /", start, total + rng.uniform(0, 0.5),
            "ERROR" if cut and root == failing else "OK")

    for i in range(count):
        start = since + timedelta(seconds=2 * i)
        cut = cut_after is not None and start >= AT and i % 2 == 0
        request(f"t{i:05d}", "frontend", start, (("cart", 1.0), ("catalog", 2.5), ("currency", 0.8), ("ads", 1.2),
                                                 ("shipping", 0.9)), cut)
        if checkout:
            request(f"c{i:05d}", "checkout", start + timedelta(seconds=1), (("catalog", 2.5), ("shipping", 0.9)), cut)
    if failing is None:
        del rows["status"]
    pq.write_table(pa.table(rows), path)
    return path


def _metrics(path: Path, hot: str | None, waiting: str | None = None,
             services: tuple[str, ...] = SERVICES) -> Path:
    """One-minute per-service CPU %, memory MiB and server latency p90 s from START to END; from AT `hot` runs at
    ~95% CPU and serves 8x slower, and the frontend that calls it slows a little; `waiting` serves 8x slower at the
    same CPU (it waits on its own calls)."""
    rng = np.random.default_rng(5)
    minutes = int((END - START).total_seconds() // 60)
    times = [START + timedelta(minutes=m) for m in range(minutes)]
    after = np.array([t >= AT for t in times])
    parts = []
    for service in services:
        cpu = 20 + rng.normal(0, 1.5, minutes)
        latency = 0.005 + rng.normal(0, 0.0003, minutes)
        if service == hot:
            cpu = np.where(after, 95 + rng.normal(0, 1, minutes), cpu)
        if service in (hot, waiting):
            latency = np.where(after, latency * 8, latency)
        elif hot and service == "frontend":
            latency = np.where(after, latency * 1.5, latency)
        memory = 300 + rng.normal(0, 2, minutes)
        for metric, values in (("cpu_usage_rate", cpu), ("memory_mib", memory), ("server_latency_p90_s", latency)):
            parts.append(pa.table({"ts": times, "service": [service] * minutes, "metric": [metric] * minutes,
                                   "value": values}))
    pq.write_table(pa.concat_tables(parts), path)
    return path


def test_a_delayed_callee_whose_own_metrics_stay_flat_is_found_from_the_wait_around_its_calls(tmp_path: Path):
    store = load_telemetry(metrics=_metrics(tmp_path / "metrics.parquet", hot=None),
                           traces=_spans(tmp_path / "spans.parquet", delayed="cart"))
    result = analyze(store, at=AT, onset="at")
    top = result.hypotheses[0]
    # cart's CPU, memory, latency and server spans are flat: only its callers' wait on it moved
    assert top.service == "cart" and top.kind == "network_delay"
    assert "waited" in top.mechanism and "network" in top.mechanism
    # the caller whose client spans carry the wait is not blamed for it
    assert "frontend" not in [h.service for h in result.hypotheses[:1]]
    assert result.sources["used"] == ["metrics", "traces"]
    assert "no logs for this period" in result.sources["notes"]


def test_requests_cut_short_after_a_call_name_the_caller_and_the_callee_as_close(tmp_path: Path):
    # half the frontend's requests end after calling catalog: catalog returning an error or a wrong value does that
    # as surely as a bug in the frontend, and with no status, error line or resource to tell them apart both are
    # named, as likely as each other, and the answer is inconclusive, not the frontend at 94%
    store = load_telemetry(metrics=_metrics(tmp_path / "metrics.parquet", hot=None),
                           traces=_spans(tmp_path / "spans.parquet", delayed=None, cut_after="catalog"))
    result = analyze(store, at=AT, onset="at")
    first, second = result.hypotheses[:2]
    assert (first.service, second.service) == ("frontend", "catalog")
    assert first.confidence == second.confidence <= 0.34
    assert "in 49% of its traces after the onset, 100% before" in first.mechanism
    # where they were cut is said, and whom that points to
    assert "requests without it that called another service, 100% called catalog catalog/Get last" in first.mechanism
    assert "frontend's requests now end right after calling it" in second.mechanism
    assert result.verdict.status == "inconclusive"
    assert result.verdict.reason.startswith(f"{NO_SINGLE_ROOT_CAUSE}: the evidence is spread over frontend, catalog")
    assert result.verdict.reason.endswith("frontend's requests now end right after calling catalog, which catalog "
                                          "returning an error or a wrong value does as surely as a failure of "
                                          "frontend's own after the call")
    # and the review's first action starts there: which of the two cut them, catalog first, not which moved first
    first_action = build_postmortem(result).action_items[0].description
    assert first_action.startswith("Find whether catalog failed on frontend's calls (its errors, a wrong return) or "
                                   "frontend failed after them (its own errors after the call)")
    # ... from evidence both hypotheses cite, whose query finds that call again when re-run
    cited = [result.evidence_by_id()[e] for e in first.supporting if e.startswith("trace-")]
    where = next(e for e in cited if e.title.startswith("where frontend's requests"))
    assert where.id in second.supporting
    assert store.fetch(where.query).to_pylist()[0]["last_call"] == where.data["last_call"] == "catalog catalog/Get"


def test_a_callee_whose_error_cuts_every_callers_requests_short_is_named_first(tmp_path: Path):
    # catalog fails every second call, and the frontend's and checkout's requests both end right after calling it:
    # one fault in catalog explains both cuts, where the callers would need one fault each
    store = load_telemetry(traces=_spans(tmp_path / "spans.parquet", delayed=None, cut_after="catalog", checkout=True))
    result = analyze(store, at=AT, onset="at")
    assert result.hypotheses[0].service == "catalog"
    assert {h.service for h in result.hypotheses[1:]} == {"frontend", "checkout"}
    assert "frontend's requests now end right after calling it" in result.hypotheses[0].mechanism
    assert "checkout's requests now end right after calling it" in result.hypotheses[0].mechanism
    assert result.verdict.status == "inconclusive"
    assert "what points at catalog is that requests, those of checkout and frontend, now end right after calling it" \
        in result.verdict.reason


def test_a_callee_known_only_by_a_cut_gets_the_mechanism_its_callers_lines_say_of_it(tmp_path: Path):
    # the frontend logs "upstream catalog: too many connections" as its requests are cut short after calling catalog,
    # which has no metric or line of its own: its name is read in the frontend's lines as a candidate's is, so the
    # lines are about catalog, and they name a mechanism there
    lines = [{"ts": (AT + timedelta(seconds=4 * i)).isoformat(), "service": "frontend", "level": "ERROR",
              "message": "upstream catalog: too many connections"} for i in range(40)]
    lines += [{"ts": (START + timedelta(minutes=i)).isoformat(), "service": "frontend", "level": "INFO",
               "message": "served /"} for i in range(180)]
    logs = tmp_path / "logs.jsonl"
    logs.write_text("".join(json.dumps(line) + "\n" for line in lines))
    store = load_telemetry(traces=_spans(tmp_path / "spans.parquet", delayed=None, cut_after="catalog"), logs=logs)
    top = analyze(store, at=AT, onset="at").hypotheses[0]
    assert (top.service, top.kind) == ("catalog", "connection_pool_exhaustion")


def test_requests_cut_short_by_the_callers_own_error_are_its_own(tmp_path: Path):
    # the same cut, but the frontend's own spans carry the error status: what separates the two is the caller's own
    store = load_telemetry(traces=_spans(tmp_path / "spans.parquet", delayed=None, cut_after="catalog",
                                         failing="frontend"))
    result = analyze(store, at=AT, onset="at")
    assert result.hypotheses[0].service == "frontend"
    assert result.verdict.status == "root_cause" and result.verdict.service == "frontend"


def test_a_cpu_starved_callee_keeps_its_callers_waiting_but_is_not_called_a_network_delay(tmp_path: Path):
    # cart's CPU runs at 95% and its server latency rises: requests queue before its server spans start, so its
    # callers wait longer around each call, as for a delay on its network; but its own work moved too
    store = load_telemetry(metrics=_metrics(tmp_path / "metrics.parquet", hot="cart"),
                           traces=_spans(tmp_path / "spans.parquet", delayed="cart"))
    top = analyze(store, at=AT, onset="at").hypotheses[0]
    assert top.service == "cart" and top.kind == "cpu_saturation"
    assert "its own work slowed too" in top.mechanism and "on its network" not in top.mechanism


def test_a_delay_is_found_when_the_traces_before_the_onset_are_missing(tmp_path: Path):
    # the trace minute before the onset is lost: each call's wait is compared with the system's typical wait
    store = load_telemetry(metrics=_metrics(tmp_path / "metrics.parquet", hot=None),
                           traces=_spans(tmp_path / "spans.parquet", delayed="catalog", since=AT))
    result = analyze(store, at=AT, onset="at")
    assert result.hypotheses[0].service == "catalog"
    assert "typical of the other calls" in result.hypotheses[0].mechanism
    assert "no traces before the onset: compared with the rest of the window only" in result.sources["notes"]


def test_a_delay_already_under_way_before_the_alert_still_stands_out_from_the_other_calls(tmp_path: Path):
    # the delay began before the traces do (an earlier incident still going): the calls' own history is delayed
    # too, so only the comparison with the system's typical wait can show it
    store = load_telemetry(metrics=_metrics(tmp_path / "metrics.parquet", hot=None),
                           traces=_spans(tmp_path / "spans.parquet", delayed="cart", delay_from=START))
    top = analyze(store, at=AT, onset="at").hypotheses[0]
    assert top.service == "cart" and top.kind == "network_delay"
    assert "typical of the other calls" in top.mechanism


def test_a_delay_that_began_at_the_alert_comes_before_one_already_under_way(tmp_path: Path):
    # cart's calls have waited longer still since before the traces begin (an earlier incident still going);
    # catalog's start to at the alert: the alert is about what changed
    store = load_telemetry(traces=_spans(tmp_path / "spans.parquet", delayed="catalog", delayed_throughout="cart"))
    assert [h.service for h in analyze(store, at=AT, onset="at").hypotheses][:1] == ["catalog"]


def test_a_fault_seen_in_metrics_only_is_found_and_the_result_says_logs_and_traces_were_missing(tmp_path: Path):
    store = load_telemetry(metrics=_metrics(tmp_path / "metrics.parquet", hot="catalog"))
    result = analyze(store, at=AT, onset="at")
    assert result.hypotheses[0].service == "catalog"
    assert result.sources["used"] == ["metrics"] and result.sources["missing"] == ["logs", "traces"]
    assert {"no logs for this period", "no traces for this period"} <= set(result.sources["notes"])
    assert result.to_dict()["sources"] == result.sources  # analysis.json carries it


def test_nothing_moved_means_no_culprit_from_the_traces(tmp_path: Path):
    # the same system with no fault: no service's wait or own time stands out
    store = load_telemetry(metrics=_metrics(tmp_path / "metrics.parquet", hot=None),
                           traces=_spans(tmp_path / "spans.parquet", delayed=None))
    result = analyze(store, at=AT, onset="at")
    assert all("waited" not in h.mechanism for h in result.hypotheses)


def test_a_service_that_moved_one_scrape_earlier_does_not_refute_the_cause(tmp_path: Path):
    """Metrics only, scraped once a minute a second apart: catalog's CPU saturates and cart's latency creeps up in
    the same minute, but cart's scrape comes first and shows it 61 s before catalog's. One sample apart is one
    moment to minute data: the precedence test does not fail, and catalog stays first."""
    rng = np.random.default_rng(11)
    at = AT - timedelta(minutes=1)
    parts = []
    for service, second in (("catalog", 10), ("cart", 9)):
        times = [START + timedelta(minutes=m, seconds=second) for m in range(int((END - START).total_seconds() // 60))]
        changed = np.array([t >= at for t in times])
        cpu = 20 + rng.normal(0, 1.5, len(times))
        latency = 0.005 + rng.normal(0, 0.0003, len(times))
        if service == "catalog":
            changed[np.argmax(changed)] = False  # its first sample after the change is the next minute's
            cpu = np.where(changed, 95 + rng.normal(0, 1, len(times)), cpu)
        else:
            latency = np.where(changed, latency * 1.6, latency)
        for metric, values in (("cpu_usage_rate", cpu), ("server_latency_p90_s", latency)):
            parts.append(pa.table({"ts": times, "service": [service] * len(times), "metric": [metric] * len(times),
                                   "value": values}))
    pq.write_table(pa.concat_tables(parts), tmp_path / "metrics.parquet")
    result = analyze(load_telemetry(metrics=tmp_path / "metrics.parquet"), at=at, onset="at")
    top = result.hypotheses[0]
    assert top.service == "catalog" and top.test_passed is not False


def test_a_lead_of_one_scrape_is_not_claimed_as_an_order(tmp_path: Path):
    """Metrics only, once a minute: catalog's CPU saturates at the alert and cart's latency rises at the next scrape.
    One sample apart is one moment to minute data, so the test does not say catalog moved first by a minute."""
    rng = np.random.default_rng(13)
    times = [START + timedelta(minutes=m) for m in range(int((END - START).total_seconds() // 60))]
    parts = []
    for service, metric, since, level in (("catalog", "cpu_usage_rate", AT, 95.0),
                                          ("cart", "server_latency_p90_s", AT + timedelta(minutes=1), 0.009)):
        usual = 20.0 if metric == "cpu_usage_rate" else 0.005
        values = [level if t >= since else usual for t in times] + rng.normal(0, usual * 0.05, len(times))
        parts.append(pa.table({"ts": times, "service": [service] * len(times), "metric": [metric] * len(times),
                               "value": values}))
    pq.write_table(pa.concat_tables(parts), tmp_path / "metrics.parquet")
    top = analyze(load_telemetry(metrics=tmp_path / "metrics.parquet"), at=AT, onset="at").hypotheses[0]

    assert "cart 60 s later), which the data cannot order" in top.test and "they do, by" not in top.test
    assert top.test_passed is None, "an order the data cannot tell neither refutes nor passes the test"


def test_with_metrics_alone_the_window_is_the_alerts_change_not_the_rest_of_the_day(tmp_path: Path):
    """A day of one-minute metrics: catalog's CPU saturates at the alert for five minutes; ten minutes later cart's
    saturates for an hour. Given the alert's time, the window spans five samples past it: catalog, not cart."""
    rng = np.random.default_rng(13)
    times = [START + timedelta(minutes=m) for m in range(6 * 60)]
    minutes_from_at = np.array([(t - AT).total_seconds() / 60 for t in times])
    parts = []
    for service, hot in (("catalog", (minutes_from_at >= 0) & (minutes_from_at < 5)),
                         ("cart", (minutes_from_at >= 15) & (minutes_from_at < 75))):
        cpu = np.where(hot, 95 + rng.normal(0, 1, len(times)), 20 + rng.normal(0, 1.5, len(times)))
        parts.append(pa.table({"ts": times, "service": [service] * len(times),
                               "metric": ["cpu_usage_rate"] * len(times), "value": cpu}))
    pq.write_table(pa.concat_tables(parts), tmp_path / "metrics.parquet")
    result = analyze(load_telemetry(metrics=tmp_path / "metrics.parquet"), at=AT, onset="at")
    assert result.hypotheses[0].service == "catalog"
    assert result.incident_window["end"] <= (AT + timedelta(minutes=5, seconds=1)).isoformat() + "Z"


def _checkout_spans(path: Path, delay_out: float = NETWORK_DELAY_MS) -> Path:
    """Requests every 2 s: frontend -> checkout -> payment (only checkout calls payment), and frontend -> cart.
    From AT, checkout's network is delayed both ways: the frontend's calls into it wait NETWORK_DELAY_MS more, its
    calls to payment `delay_out` more."""
    rng = np.random.default_rng(17)
    rows: dict[str, list] = {k: [] for k in ("trace_id", "span_id", "parent_id", "service", "operation", "start_ts",
                                             "duration_ms")}

    def add(*values: object) -> None:
        for key, value in zip(rows, values, strict=True):
            rows[key].append(value)

    for i in range(int((END - TRACES_FROM).total_seconds() // 2)):
        start, trace = TRACES_FROM + timedelta(seconds=2 * i), f"t{i:05d}"
        delay = NETWORK_DELAY_MS if start >= AT else 0.0
        pay_wait, pay_own = 1.5 + rng.uniform(0, 1) + (delay_out if start >= AT else 0.0), 2.0 + rng.uniform(0, 0.3)
        checkout_own = 3.0 + rng.uniform(0, 0.3)
        checkout_server = checkout_own + pay_own + pay_wait
        checkout_wait = 1.5 + rng.uniform(0, 1) + delay
        cart_wait, cart_own = 1.5 + rng.uniform(0, 1), 1.0 + rng.uniform(0, 0.3)
        add(trace, f"{trace}-root", "root", "frontend", "POST /checkout", start,
            checkout_server + checkout_wait + cart_own + cart_wait + 1.0)
        add(trace, f"{trace}-co-client", f"{trace}-root", "frontend", "checkout/Place", start,
            checkout_server + checkout_wait)
        add(trace, f"{trace}-co-server", f"{trace}-co-client", "checkout", "checkout/Place", start,
            checkout_server)
        add(trace, f"{trace}-pay-client", f"{trace}-co-server", "checkout", "payment/Charge", start,
            pay_own + pay_wait)
        add(trace, f"{trace}-pay-server", f"{trace}-pay-client", "payment", "payment/Charge", start, pay_own)
        add(trace, f"{trace}-cart-client", f"{trace}-root", "frontend", "cart/Get", start, cart_own + cart_wait)
        add(trace, f"{trace}-cart-server", f"{trace}-cart-client", "cart", "cart/Get", start, cart_own)
    pq.write_table(pa.table(rows), path)
    return path


def test_a_delay_on_a_callers_network_is_its_own_not_that_of_the_callee_only_it_calls(tmp_path: Path):
    """Payment's only caller is checkout, so the delay on checkout's calls to it looks like payment's too; but
    checkout's calls in and out are all slow and payment's one slow call is among them: one delay, at checkout."""
    result = analyze(load_telemetry(traces=_checkout_spans(tmp_path / "spans.parquet")), at=AT, onset="at")
    top = result.hypotheses[0]
    assert top.service == "checkout" and top.kind == "network_delay"
    assert "payment" not in [h.service for h in result.hypotheses[:1]]


def test_a_delay_both_ways_is_a_network_delay_though_the_services_own_server_latency_rose(tmp_path: Path):
    """Checkout's network is delayed both ways: its calls to payment wait longer, so its server answers later too
    (its server latency rose 8x at the same CPU). That latency holds the wait on its own calls, not more work."""
    metrics = _metrics(tmp_path / "metrics.parquet", hot=None, waiting="checkout",
                       services=("frontend", "checkout", "payment", "cart"))
    store = load_telemetry(metrics=metrics, traces=_checkout_spans(tmp_path / "spans.parquet"))
    top = analyze(store, at=AT, onset="at").hypotheses[0]
    assert top.service == "checkout" and top.kind == "network_delay"
    assert "on its network" in top.mechanism and "own work slowed" not in top.mechanism


def test_a_delay_both_ways_larger_on_the_services_own_calls_says_its_callers_waited_too(tmp_path: Path):
    """Checkout's calls to payment wait 400 ms more, the frontend's calls into it 200 ms more: the sentence leads
    with its own calls' wait (the larger) and adds that the calls into it waited too, not its own calls again."""
    store = load_telemetry(traces=_checkout_spans(tmp_path / "spans.parquet", delay_out=2 * NETWORK_DELAY_MS))
    top = analyze(store, at=AT, onset="at").hypotheses[0]
    assert top.service == "checkout" and top.kind == "network_delay"
    # checkout calls payment alone: "on every callee" would claim more calls than the one edge measured
    assert "it waited 40" in top.mechanism and "beyond the callee's server time, on its one callee, payment" in (
        top.mechanism)
    assert "and its callers on the calls into it waited longer too" in top.mechanism
    assert "its own calls to others waited longer too" not in top.mechanism
