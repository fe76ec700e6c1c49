"""Span-derived signals and the known-onset analysis on a small generated system: gateway -> order -> payment.

Every 10 s a request runs gateway -> order -> payment; each service logs one line with the trace id. From `AT` on,
payment fails first: its own work slows from ~5 ms to ~60 ms and its "charged" line gives way to an ERROR; order,
its caller, then logs a WARN about the failed payment (a victim's symptom). Gateway only waits longer.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from scipy.stats import mannwhitneyu

from incidentlens.analysis import analyze
from incidentlens.analysis.anchored import known_periods
from incidentlens.analysis.callmetrics import SOURCE as CALL_METRICS
from incidentlens.analysis.links import span_links
from incidentlens.analysis.spans import (
    CALL_WAITS,
    MIN_SPANS,
    SIGNIFICANT_STRENGTH,
    WAIT_WEIGHT,
    TraceSignal,
    adjusted_z,
    cut_callee_share,
    last_call_sql,
    own_time_sql,
    span_clock_offset,
    tail_z,
    trace_signals,
    wait_shifts,
    wait_sql,
)
from incidentlens.errors import InputError
from incidentlens.telemetry import load_telemetry

START = datetime(2024, 5, 1, 10, 0)
AT = START + timedelta(minutes=20)
END = AT + timedelta(minutes=6)
STEP = timedelta(seconds=10)


def _system(tmp_path: Path, recovers_at: datetime = END) -> tuple[Path, Path]:
    """spans.parquet and logs.parquet of the three services, the failure in payment from AT to `recovers_at`."""
    rng = np.random.default_rng(7)
    count = int((END - START) / STEP)
    starts = np.datetime64(START, "ms") + (np.arange(count) * STEP.total_seconds() * 1000).astype("timedelta64[ms]")
    failing = (starts >= np.datetime64(AT, "ms")) & (starts < np.datetime64(recovers_at, "ms"))
    payment_ms = np.where(failing, 60.0, 5.0) + rng.uniform(0, 1, count)
    order_ms = payment_ms + 8.0 + rng.uniform(0, 1, count)
    gateway_ms = order_ms + 3.0 + rng.uniform(0, 1, count)
    trace = np.array([f"trace-{i:04d}" for i in range(count)])
    spans = pa.table({
        "trace_id": np.concatenate([trace, trace, trace]),
        "span_id": np.concatenate([np.char.add(trace, "-g"), np.char.add(trace, "-o"), np.char.add(trace, "-p")]),
        "parent_id": np.concatenate([np.full(count, "root"), np.char.add(trace, "-g"), np.char.add(trace, "-o")]),
        "service": ["gateway"] * count + ["order"] * count + ["payment"] * count,
        "operation": ["POST /orders"] * count + ["createOrder"] * count + ["charge"] * count,
        "start_ts": pa.array(np.concatenate([starts, starts + np.timedelta64(1, "ms"),
                                             starts + np.timedelta64(2, "ms")])),
        "duration_ms": np.concatenate([gateway_ms, order_ms, payment_ms]),
    })
    order_ids = np.arange(count).astype(str)
    payment_line = np.where(failing, np.char.add("charge failed for order ", order_ids),
                            np.char.add("charged card for order ", order_ids))
    order_line = np.where(failing, np.char.add("payment for order ", np.char.add(order_ids, " failed, retry later")),
                          np.char.add("order created ", order_ids))
    logs = pa.table({
        "ts": pa.array(np.concatenate([starts, starts + np.timedelta64(2, "ms"), starts + np.timedelta64(9, "ms")])),
        "service": ["gateway"] * count + ["payment"] * count + ["order"] * count,
        "level": ["INFO"] * count + np.where(failing, "ERROR", "INFO").tolist() + np.where(failing, "WARN",
                                                                                           "INFO").tolist(),
        "message": np.concatenate([np.full(count, "POST /orders accepted"), payment_line, order_line]),
        "trace_id": np.concatenate([trace, trace, trace]),
    })
    pq.write_table(spans, tmp_path / "spans.parquet")
    pq.write_table(logs, tmp_path / "logs.parquet")
    return tmp_path / "spans.parquet", tmp_path / "logs.parquet"


@pytest.fixture
def store(tmp_path: Path):
    spans, logs = _system(tmp_path)
    return load_telemetry(traces=spans, logs=logs)


def test_the_failing_service_own_time_and_behaviour_change_while_its_callers_only_wait(store):
    window, baseline, _ = known_periods(store, AT)
    signals, evidence = trace_signals(store, window, baseline)
    payment, order, gateway = signals["payment"], signals["order"], signals["gateway"]
    # payment's own work went from ~5 to ~60 ms; order and gateway spend the same time on their own work
    assert payment.own_time_shift > 2.0
    assert abs(order.own_time_shift) < 0.2 and abs(gateway.own_time_shift) < 0.2
    # every request after AT lost payment's "charged" line or gained its ERROR: the largest z of all three
    assert payment.event is not None and "charge" in payment.event
    assert payment.strength > order.strength * 0.99 and payment.significant
    assert not gateway.significant
    assert {e.kind for e in evidence} == {"trace"}
    assert all(s.evidence in {e.id for e in evidence} for s in (payment, order))


def _quiet_calls(tmp_path: Path, slow_after: list[float], before: list[float] | None = None,
                 calls_db: bool = False) -> Path:
    """A lightly used service: `api` calls `cancel` every 30 s, its work 10-16 ms before AT (or `before` ms in turn);
    after AT the calls take `slow_after` ms in turn. `calls_db`: every cancel calls `db` too (1.2 ms, 1 ms of it
    db's), before and after alike."""
    rows = []
    for i in range(52):
        start = AT + timedelta(seconds=30 * (i - 40))
        usual = before[i % len(before)] if before else 10.0 + (i * 37 % 60) / 10
        own = slow_after[(i - 40) % len(slow_after)] if i >= 40 else usual
        rows += [
            {"trace_id": f"t{i}", "span_id": f"a{i}", "parent_id": "", "service": "api", "operation": "POST /cancel",
             "start": start.isoformat() + "Z", "duration_ms": own + 2.0},
            {"trace_id": f"t{i}", "span_id": f"c{i}", "parent_id": f"a{i}", "service": "cancel",
             "operation": "cancel", "start": start.isoformat() + "Z", "duration_ms": own},
        ]
        if calls_db:  # its client span, then db's server span
            rows += [{"trace_id": f"t{i}", "span_id": f"k{i}", "parent_id": f"c{i}", "service": "cancel",
                      "operation": "db.query", "start": start.isoformat() + "Z", "duration_ms": 1.2},
                     {"trace_id": f"t{i}", "span_id": f"d{i}", "parent_id": f"k{i}", "service": "db",
                      "operation": "SELECT", "start": start.isoformat() + "Z", "duration_ms": 1.0}]
    path = tmp_path / "spans.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    return path


def test_one_or_two_slow_calls_on_a_quiet_service_do_not_make_it_a_suspect(tmp_path: Path):
    # after AT cancel's p90 own time rises tenfold on the strength of two slow calls in twelve; the rest as before
    store = load_telemetry(traces=_quiet_calls(tmp_path, [12.0, 11.0, 150.0, 13.0, 10.0, 12.0]))
    window, baseline, _ = known_periods(store, AT)
    cancel = trace_signals(store, window, baseline)[0]["cancel"]
    assert cancel.own_time_shift > 1.5
    assert cancel.own_tail_z < 2.5 and not cancel.significant


def test_an_own_time_shift_the_tail_test_does_not_carry_is_not_given_as_a_change(tmp_path: Path):
    # the same two slow calls in twelve: the p90 is reported, and said not to count, in words and in the evidence
    store = load_telemetry(traces=_quiet_calls(tmp_path, [12.0, 11.0, 150.0, 13.0, 10.0, 12.0]))
    window, baseline, _ = known_periods(store, AT)
    signals, evidence = trace_signals(store, window, baseline)
    # 12 spans after: the count past the pooled p90 first, their p90 beside it with how few it is of
    assert signals["cancel"].describe() == ("its own span time: 2 of the 12 of its spans after ran past the p90 of "
                                            "its spans before and after together, 10% of them before (a p90 of "
                                            "15.2 ms before, 136 ms of the 12 after), on too few of its spans to "
                                            "count (tail test z 0.634, short of 2.5)")
    own = next(e for e in evidence if e.title.startswith("own span time p90"))
    assert own.title.endswith("not carried by the tail test")
    assert own.data["services"] == [{
        "service": "cancel", "p90_before_ms": 15.21, "p90_after_ms": 136.3, "shift": 2.1365,
        "spans_past_pooled_p90": [4, 2], "spans": [40, 12],
        "share_past_pooled_p90": [0.1, 0.167], "tail_z": 0.634, "counted": False,
        "leaf_gains_ms": [[-0.38, -0.85]], "work_p90_ms": []}]


def test_two_slow_calls_are_no_new_tail_when_the_usual_calls_all_took_the_same_time(tmp_path: Path):
    # timed to the millisecond: before AT every call took 11 or 12 ms, so its p90 is 12 ms and no call ran past it;
    # the calls at the p90 count half past it, and two slow calls in twelve are still no slower service
    calls = _quiet_calls(tmp_path, [12.0, 12.0, 150.0, 12.0, 12.0, 12.0], before=[12.0, 11.0, 12.0])
    store = load_telemetry(traces=calls)
    window, baseline, _ = known_periods(store, AT)
    cancel = trace_signals(store, window, baseline)[0]["cancel"]
    assert (cancel.own_p90_before_ms, cancel.own_p90_after_ms) == (12.0, 136.2)
    assert cancel.own_tail_z < 2.5 and not cancel.significant


def test_a_quiet_service_whose_every_call_slowed_is_a_suspect(tmp_path: Path):
    store = load_telemetry(traces=_quiet_calls(tmp_path, [60.0, 75.0, 68.0]))
    window, baseline, _ = known_periods(store, AT)
    signals, evidence = trace_signals(store, window, baseline)
    cancel = signals["cancel"]
    assert cancel.own_tail_z > 2.5 and cancel.significant
    # OnlineBoutique 13:45's emailservice read "its own span time p90 went from 0.618 to 30.4 ms" of 8 spans after
    assert cancel.describe() == ("its own span time: 6 of the 12 of its spans after ran past the p90 of its spans "
                                 "before and after together, 0% of them before (a p90 of 15.2 ms before, 75 ms of "
                                 "the 12 after)")
    own = next(e for e in evidence if e.title.startswith("own span time p90"))
    assert own.title == "own span time p90 by service: cancel 15.21 -> 75 ms" and own.data["services"][0]["counted"]


def test_a_third_of_a_quiet_service_calls_slowed_far_past_anything_before_is_a_suspect(tmp_path: Path):
    # four of twelve calls take 100 ms, six times the slowest of the forty before: the slowest tenth of all 52 calls
    # is nearly all after the onset. A cut at the p90 before alone would put a tenth of the calls before past it
    # whatever the slow calls' size, and count 4 of 12 against 4 of 40 (z 1.96)
    store = load_telemetry(traces=_quiet_calls(tmp_path, [100.0, 12.0, 13.0]))
    window, baseline, _ = known_periods(store, AT)
    cancel = trace_signals(store, window, baseline)[0]["cancel"]
    assert cancel.own_tail_z > 2.5 and cancel.significant


def test_a_span_written_twice_by_overlapping_export_files_is_one_span(tmp_path: Path):
    # Nezha's TrainTicket day has minute files that repeat the minute before (08_53's every span is in 08_52 too):
    # the second file here holds the last twenty spans of the first again. Read as one span each, the calls, waits
    # and own times are those of the first file alone; kept twice, each call would join both copies of its caller
    spans = _quiet_calls(tmp_path, [60.0, 75.0, 68.0], calls_db=True)
    retried = tmp_path / "spans-retried.jsonl"
    retried.write_text("".join(spans.read_text().splitlines(keepends=True)[-20:]))
    once, twice = load_telemetry(traces=spans), load_telemetry(traces=[spans, retried])
    window, baseline, _ = known_periods(once, AT)
    assert known_periods(twice, AT)[:2] == (window, baseline)
    for read in (lambda store: own_time_sql(window, baseline),
                 lambda store: wait_sql(window, baseline, span_links(store))):
        assert _rounded(twice.fetch(read(twice)).to_pylist()) == _rounded(once.fetch(read(once)).to_pylist())
    assert twice.fetch("SELECT count(*) AS n FROM spans").to_pylist() == [{"n": 52 * 4}]


def test_a_spans_own_time_is_the_same_whatever_order_its_childrens_time_is_added_in(tmp_path: Path):
    # 0.1 + 0.2 + 0.3 ms of children under 1 ms: added as doubles, 0.4 or 0.3999999999999999 ms by the order the
    # threads add them in, which moved a p90 across a rounding from run to run
    rows = []
    for minute in range(30):
        trace, start = f"t{minute}", START + timedelta(minutes=minute)
        rows.append({"trace_id": trace, "span_id": f"{trace}-p", "service": "api", "operation": "GET /",
                     "start_ts": start.isoformat(), "duration_ms": 1.0})
        rows += [{"trace_id": trace, "span_id": f"{trace}-{k}", "parent_id": f"{trace}-p", "service": "api",
                  "operation": "step", "start_ts": start.isoformat(), "duration_ms": ms}
                 for k, ms in enumerate((0.1, 0.2, 0.3))]
    spans = tmp_path / "spans.jsonl"
    spans.write_text("".join(json.dumps(row) + "\n" for row in rows))
    store = load_telemetry(traces=spans)
    window, baseline, _ = known_periods(store, AT)

    api = next(row for row in store.fetch(own_time_sql(window, baseline)).to_pylist() if row["service"] == "api")

    assert api["p90_before"] == api["p90_after"] == 0.4


def _rounded(value: object) -> object:
    """Rows with their floats to 9 digits: a sum over the same spans in another order differs in the last bits."""
    if isinstance(value, float):
        return round(value, 9)
    if isinstance(value, dict):
        return {key: _rounded(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_rounded(item) for item in value]
    return value


def test_the_tail_test_counts_spans_past_the_slowest_tenth_of_both_sides():
    assert tail_z(2, 20, 18, 20) > 5  # nearly every span past the p90 ran after the onset
    assert abs(tail_z(2, 20, 2, 20)) < 1e-9  # as often as before
    assert tail_z(1, 6, 3, 14) < 1  # a few more on a handful of spans: no evidence
    assert tail_z(0, 10, 0, 10) == 0.0
    # its ceiling: a tenth of all spans lie past the cut, so 12 calls a side, every one after the onset slower than
    # every one before, put only 3 of 12 past it: short of the candidate bar (about 26 a side are needed)
    assert 1.8 < tail_z(0, 12, 3, 12) < 2.5 < tail_z(0, 26, 6, 26)


def test_a_known_onset_ranks_the_callee_that_failed_first_above_its_callers(store):
    result = analyze(store, at=AT, onset="at")
    assert result.detected
    assert result.incident_window["start"] == "2024-05-01T10:20:00Z"
    assert result.baseline_window["end"] == "2024-05-01T10:20:00Z" and "known onset" in result.baseline_window["rule"]
    ranked = [h.service for h in result.hypotheses]
    assert ranked[0] == "payment"
    # the hypothesis says what changed in payment's requests
    assert "in the traces, 'log charge" in result.hypotheses[0].mechanism
    assert "order" in ranked and "gateway" not in ranked[:1]
    cited = {e.id for e in result.evidence}
    assert any(e.startswith("trace-") for e in result.hypotheses[0].supporting)
    assert set(result.hypotheses[0].supporting) <= cited


def test_a_known_onset_needs_a_time_inside_the_data(store):
    with pytest.raises(InputError, match="--onset at needs --at"):
        analyze(store, onset="at")
    with pytest.raises(InputError, match="outside the data"):
        analyze(store, at=START - timedelta(hours=1), onset="at")
    with pytest.raises(InputError, match="--onset later: expected one of detect, at"):
        analyze(store, at=AT, onset="later")


def test_analyze_from_the_cli_with_a_known_onset(tmp_path: Path):
    from typer.testing import CliRunner

    from incidentlens.cli import app

    spans, logs = _system(tmp_path)
    ran = CliRunner().invoke(app, ["analyze", "--traces", str(spans), "--logs", str(logs), "--at",
                                   "2024-05-01T10:20:00Z", "--onset", "at", "--json", "--out", str(tmp_path)])
    assert ran.exit_code == 0, ran.output
    analysis = json.loads(ran.output)
    assert analysis["detection"]["detector"] == "known onset"
    assert analysis["hypotheses"][0]["service"] == "payment"


def test_an_error_status_that_appears_on_a_services_spans_is_its_behaviour_change(tmp_path: Path):
    # OpenTelemetry-style spans with a status: from AT on, half of db's "query" spans fail
    starts = [START + STEP * i for i in range(180)]
    rows = []
    for i, start in enumerate(starts):
        failing = start >= AT and i % 2 == 0
        rows += [
            {"trace_id": f"t{i}", "span_id": f"a{i}", "parent_id": "", "service": "api", "operation": "GET /",
             "start": start.isoformat() + "Z", "duration_ms": 20.0, "status": "ERROR" if failing else "OK"},
            {"trace_id": f"t{i}", "span_id": f"b{i}", "parent_id": f"a{i}", "service": "db", "operation": "query",
             "start": start.isoformat() + "Z", "duration_ms": 5.0, "status": "ERROR" if failing else "OK"},
        ]
    path = tmp_path / "spans.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    store = load_telemetry(traces=path)
    window, baseline, _ = known_periods(store, AT)
    signals, _ = trace_signals(store, window, baseline)
    assert signals["db"].event == "error query"
    assert signals["db"].share_before == 0 and signals["db"].share_after == pytest.approx(0.5, abs=0.05)
    assert signals["db"].significant


def _loop_cut_short(tmp_path: Path) -> tuple[Path, Path]:
    """Every request asks travel for 2-4 trips; travel logs a request line and a distance line per trip, station one
    lookup line per trip. From AT travel's loop stops after the first distance line; station is unchanged."""
    rng = np.random.default_rng(3)
    count = int((END - START) / STEP)
    starts = np.datetime64(START, "ms") + (np.arange(count) * STEP.total_seconds() * 1000).astype("timedelta64[ms]")
    trips = rng.integers(2, 5, count)
    distances = np.where(starts >= np.datetime64(AT, "ms"), 1, trips)
    trace = np.array([f"trace-{i:04d}" for i in range(count)])
    spans = pa.table({
        "trace_id": np.concatenate([trace, trace]),
        "span_id": np.concatenate([np.char.add(trace, "-t"), np.char.add(trace, "-s")]),
        "parent_id": np.concatenate([np.full(count, "root"), np.char.add(trace, "-t")]),
        "service": ["travel"] * count + ["station"] * count,
        "operation": ["GET /trips"] * count + ["GET /stations"] * count,
        "start_ts": pa.array(np.concatenate([starts, starts + np.timedelta64(1, "ms")])),
        "duration_ms": np.full(2 * count, 5.0),
    })
    line_trace = np.concatenate([np.repeat(trace, trips), np.repeat(trace, distances), np.repeat(trace, trips)])
    line_ts = np.concatenate([np.repeat(starts, trips), np.repeat(starts, distances), np.repeat(starts, trips)])
    logs = pa.table({
        "ts": pa.array(line_ts),
        "service": ["travel"] * int(trips.sum() + distances.sum()) + ["station"] * int(trips.sum()),
        "level": ["INFO"] * len(line_trace),
        "message": ["seat request for trip"] * int(trips.sum()) + ["calculate distance of trip"] * int(distances.sum())
        + ["query station by name"] * int(trips.sum()),
        "trace_id": line_trace,
    })
    pq.write_table(spans, tmp_path / "spans.parquet")
    pq.write_table(logs, tmp_path / "logs.parquet")
    return tmp_path / "spans.parquet", tmp_path / "logs.parquet"


def test_a_line_written_less_often_per_request_is_a_behaviour_change_though_every_request_still_writes_it(tmp_path):
    spans, logs = _loop_cut_short(tmp_path)
    store = load_telemetry(traces=spans, logs=logs)
    window, baseline, _ = known_periods(store, AT)
    signals, _ = trace_signals(store, window, baseline)
    travel = signals["travel"]
    assert travel.significant and travel.behaviour_shift > 5
    assert "of its lines in the trace" in (travel.event or "")
    # station writes its line once per trip, more or fewer trips per request: its lines' fractions do not move
    assert not signals["station"].significant


def _requests() -> list[tuple[int, datetime, str]]:
    """Web's requests, one every STEP over START..END: (number, start, start as ISO text)."""
    starts = [START + STEP * i for i in range(int((END - START) / STEP))]
    return [(i, start, start.isoformat() + "Z") for i, start in enumerate(starts)]


def _root(i: int, at: str, operation: str) -> dict[str, object]:
    """Request `i`'s span at web, 20 ms."""
    return {"trace_id": f"t{i}", "span_id": f"w{i}", "parent_id": "", "service": "web", "operation": operation,
            "start": at, "duration_ms": 20.0}


def _call(i: int, at: str, service: str, operation: str) -> dict[str, object]:
    """Request `i`'s call from web to `service`, 5 ms."""
    return {"trace_id": f"t{i}", "span_id": f"{service[0]}{i}", "parent_id": f"w{i}", "service": service,
            "operation": operation, "start": at, "duration_ms": 5.0}


def _written(folder: Path, **rows: list[dict[str, object]]) -> Path:
    """Each list of rows as `<name>.jsonl` in `folder`."""
    for name, items in rows.items():
        (folder / f"{name}.jsonl").write_text("\n".join(json.dumps(r) for r in items) + "\n")
    return folder


def _signals_at_onset(folder: Path) -> dict[str, TraceSignal]:
    """The trace signals of `folder`'s spans.jsonl and logs.jsonl with AT as the onset."""
    store = load_telemetry(traces=folder / "spans.jsonl", logs=folder / "logs.jsonl")
    window, baseline, _ = known_periods(store, AT)
    return trace_signals(store, window, baseline)[0]


def _web_requests(tmp_path: Path, *, cart_share_before: float, cart_share_after: float,
                  unreachable_after: float = 0.0) -> Path:
    """spans.jsonl and logs.jsonl of web -> cart: a "GET /cart" request always calls cart, a "GET /home" never. From
    AT, `unreachable_after` of the cart requests find no cart instance: web logs an ERROR naming cart, calls nothing."""
    rng = np.random.default_rng(11)
    spans, logs = [], []
    for i, start, at in _requests():
        after = start >= AT
        cart = rng.random() < (cart_share_after if after else cart_share_before)
        unreachable = cart and after and rng.random() < unreachable_after
        spans.append(_root(i, at, "GET /cart" if cart else "GET /home"))
        logs.append({"ts": at, "service": "web", "level": "INFO", "message": "request served", "trace_id": f"t{i}"})
        if unreachable:
            logs.append({"ts": at, "service": "web", "level": "ERROR", "trace_id": f"t{i}",
                         "message": "Request processing failed: No instances available for cart"})
        elif cart:
            spans.append(_call(i, at, "cart", "GET /items"))
    return _written(tmp_path, spans=spans, logs=logs)


def test_more_requests_of_a_kind_that_always_calls_a_service_is_not_a_behaviour_change(tmp_path: Path):
    # the traffic moves from 20% to 80% cart requests; each kind of request does what it always did
    folder = _web_requests(tmp_path, cart_share_before=0.2, cart_share_after=0.8)
    signals = _signals_at_onset(folder)
    assert not signals["web"].significant and signals["web"].raw_shift < 1


def test_requests_in_which_a_service_reports_its_callees_trouble_are_not_its_own_change(tmp_path: Path):
    # from AT, half of web's cart requests log "No instances available for cart" and call nothing: cart's trouble
    folder = _web_requests(tmp_path, cart_share_before=0.5, cart_share_after=0.5, unreachable_after=0.5)
    signals = _signals_at_onset(folder)
    assert not signals["web"].significant
    # the same requests, without the line that names cart, are web's own change: it stopped calling cart
    logs = [json.loads(line) for line in (folder / "logs.jsonl").read_text().splitlines()]
    silent = [r for r in logs if r["level"] != "ERROR"]
    (folder / "logs.jsonl").write_text("\n".join(json.dumps(r) for r in silent) + "\n")
    signals = _signals_at_onset(folder)
    assert signals["web"].significant and signals["web"].event == "call cart GET /items"


Problem = tuple[str, str, str]  # a request's problem line: service, level, message


def _web_calls_cart(tmp_path: Path, problems: Callable[[bool, np.random.Generator], list[Problem]], *, seed: int,
                    cart_calls_back: bool = False) -> Path:
    """spans.jsonl and logs.jsonl of web -> cart, every request calling cart (and cart calling back web's GET /price
    in it, when `cart_calls_back`). `problems(after the onset, rng)` gives each request's problem lines; web logs
    "request served" in every request."""
    rng = np.random.default_rng(seed)
    spans, logs = [], []
    for i, start, at in _requests():
        spans += [_root(i, at, "GET /cart"), _call(i, at, "cart", "GET /items")]
        if cart_calls_back:
            spans.append({"trace_id": f"t{i}", "span_id": f"p{i}", "parent_id": f"c{i}", "service": "web",
                          "operation": "GET /price", "start": at, "duration_ms": 2.0})
        logs += [{"ts": at, "service": service, "level": level, "trace_id": f"t{i}", "message": message}
                 for service, level, message in problems(start >= AT, rng)]
        logs.append({"ts": at, "service": "web", "level": "INFO", "message": "request served", "trace_id": f"t{i}"})
    return _written(tmp_path, spans=spans, logs=logs)


def _cart_failing(tmp_path: Path, *, cart_says: bool) -> Path:
    """From AT, half of the requests fail at cart: web logs an ERROR that names no service, and cart logs its own
    ERROR first when `cart_says`."""
    def problems(after: bool, rng: np.random.Generator) -> list[Problem]:
        if not (after and rng.random() < 0.5):
            return []
        web = ("web", "ERROR", "Request processing failed: 500 Internal Server Error")
        return [("cart", "ERROR", "query items failed: connection reset"), web] if cart_says else [web]
    return _web_calls_cart(tmp_path, problems, seed=3)


def test_an_error_in_a_request_whose_callee_failed_in_it_too_came_up_from_the_callee(tmp_path: Path):
    # from AT cart fails half of the requests and says so; web, which called it, fails the same requests
    signals = _signals_at_onset(_cart_failing(tmp_path, cart_says=True))
    assert signals["cart"].significant
    assert not signals["web"].significant
    # the same errors at web with nothing wrong seen at cart are web's own
    signals = _signals_at_onset(_cart_failing(tmp_path, cart_says=False))
    assert signals["web"].significant and (signals["web"].event or "").startswith("log Request processing failed")


def _web_failing_over_cart_warnings(tmp_path: Path) -> Path:
    """Cart writes a WARN in nine requests of ten throughout and answers them all; from AT web fails half of its
    requests with an ERROR of its own."""
    def problems(after: bool, rng: np.random.Generator) -> list[Problem]:
        lines = [("cart", "WARN", "slow query on items table")] if rng.random() < 0.9 else []
        if after and rng.random() < 0.5:
            lines.append(("web", "ERROR", "template render failed: null pointer"))
        return lines
    return _web_calls_cart(tmp_path, problems, seed=5)


def test_a_callees_routine_warning_does_not_hide_its_callers_own_new_errors(tmp_path: Path):
    # a WARN is a callee that answered: web's new errors did not come up from cart
    signals = _signals_at_onset(_web_failing_over_cart_warnings(tmp_path))
    assert signals["web"].significant and (signals["web"].event or "").startswith("log template render failed")
    assert not signals["cart"].significant


def _web_failing_under_cart(tmp_path: Path) -> Path:
    """Cart calls back web's GET /price in every request. From AT web's GET /price fails half of the time with an
    ERROR of its own, and cart logs the 500 it got back."""
    def problems(after: bool, rng: np.random.Generator) -> list[Problem]:
        if not (after and rng.random() < 0.5):
            return []
        return [("web", "ERROR", "price lookup failed: null pointer"), ("cart", "ERROR", "price call returned 500")]
    return _web_calls_cart(tmp_path, problems, seed=5, cart_calls_back=True)


def test_a_service_its_callee_called_back_keeps_its_own_errors(tmp_path: Path):
    # web and cart each call the other in every request: which failure came up from which the services do not tell,
    # and web's own errors stay its own
    signals = _signals_at_onset(_web_failing_under_cart(tmp_path))
    assert signals["web"].significant and (signals["web"].event or "").startswith("log price lookup failed")


def test_one_new_error_line_outweighs_the_largest_of_many_wandering_info_lines():
    # a z of 3 on the service's only problem event against a z of 3.5, the largest of its 50 other events
    assert adjusted_z(3.0, tested=1, one_sided=True) > adjusted_z(3.5, tested=50)
    # a rise tested one-sided keeps its z with half the budget; a two-sided change pays for its second tail
    assert adjusted_z(3.0, tested=1, one_sided=True) == pytest.approx(3.0)
    assert adjusted_z(3.0, tested=1) == pytest.approx(2.78, abs=0.01)
    assert adjusted_z(-3.0, tested=1, one_sided=True) == 0.0  # a problem that stops is no fault
    assert adjusted_z(1.0, tested=50) == 0.0
    # beyond double precision the correction still applies: z^2 shifts by 2 ln(its inflation)
    assert adjusted_z(40.0, tested=50) == pytest.approx((1600 - 2 * math.log(100)) ** 0.5)


def _cart_hour(tmp_path: Path, *, cart_share: Callable[[int], float], logged_from: datetime = START,
               log_clock: timedelta = timedelta(0)) -> Path:
    """spans.jsonl and logs.jsonl of web -> cart over START..END, a request every 10 s; `cart_share(minute)` is the
    share of web's requests that call cart in that minute (counted from START); web logs "request served" in every
    request from `logged_from` on (the log file may begin later than the spans), stamped `log_clock` after the
    request began (a log clock ahead of the spans'), the file ending at END as the spans do."""
    rng = np.random.default_rng(5)
    spans, logs = [], []
    for i, start, at in _requests():
        spans.append(_root(i, at, "GET /"))
        if rng.random() < cart_share(int((start - START).total_seconds() // 60)):
            spans.append(_call(i, at, "cart", "GET /items"))
        if logged_from <= start and start + log_clock < END:
            logs.append({"ts": (start + log_clock).isoformat() + "Z", "service": "web", "level": "INFO",
                         "message": "request served", "trace_id": f"t{i}"})
    return _written(tmp_path, spans=spans, logs=logs)


def test_a_line_is_not_new_because_the_logs_begin_later_than_the_traces(tmp_path: Path):
    # twenty minutes of traces before the onset, but the log file holds only the minute before it and after
    folder = _cart_hour(tmp_path, cart_share=lambda minute: 0.5, logged_from=AT - timedelta(minutes=1))
    signals = _signals_at_onset(folder)
    # every request still logs its line: the traces of the unlogged minutes did not lack it, they went unlogged
    assert not signals["web"].significant


def test_a_line_is_not_lost_because_the_logs_clock_runs_ahead_of_the_spans(tmp_path: Path):
    # the logs' clock 30 s ahead: every line is stamped 30 s after its request began, so the requests of the last
    # 30 s before the files end wrote lines no file holds
    folder = _cart_hour(tmp_path, cart_share=lambda minute: 0.5, log_clock=timedelta(seconds=30))
    signals = _signals_at_onset(folder)
    # those requests went unlogged, they did not stop writing the line
    assert not signals["web"].significant


def test_a_tracers_clock_ahead_of_the_logs_is_read_on_the_logs_clock(tmp_path: Path):
    # the tracer's clock 30 s ahead of the logs' (and the alert's): each request's line is stamped 30 s before its
    # spans begin, which no request on one clock does. web starts calling cart 30 s after AT on the logs' clock, a
    # minute after it on the spans'
    folder = _cart_hour(tmp_path, cart_share=lambda minute: 0.8 if minute >= 21 else 0.0,
                        log_clock=-timedelta(seconds=30))
    store = load_telemetry(traces=folder / "spans.jsonl", logs=folder / "logs.jsonl")
    window, baseline, _ = known_periods(store, AT)
    assert span_clock_offset(store, window, baseline) == timedelta(seconds=30)

    web = trace_signals(store, window, baseline)[0]["web"]

    # the change's onset on the logs' clock, where the precedence tests meet the logs' and metrics' onsets
    assert web.significant and web.onset == AT + timedelta(seconds=30)


def test_a_line_logged_within_its_request_says_the_clocks_agree(tmp_path: Path):
    folder = _cart_hour(tmp_path, cart_share=lambda minute: 0.5, log_clock=timedelta(milliseconds=5))
    store = load_telemetry(traces=folder / "spans.jsonl", logs=folder / "logs.jsonl")
    window, baseline, _ = known_periods(store, AT)
    assert span_clock_offset(store, window, baseline) == timedelta(0)


def test_a_call_share_back_to_its_usual_level_after_a_few_disturbed_minutes_is_no_change(tmp_path: Path):
    # web calls cart in 80% of its requests, except for four minutes of an earlier incident (20%) in the hour before
    usual = _cart_hour(tmp_path, cart_share=lambda minute: 0.2 if 8 <= minute < 12 else 0.8)
    store = load_telemetry(traces=usual / "spans.jsonl")
    window, baseline, _ = known_periods(store, AT)
    signals, _ = trace_signals(store, window, baseline)
    # pooled over the twenty minutes the share before is 68%: against that, 80% after would be a rise
    assert not signals["web"].significant


def test_a_call_that_stops_is_a_change_though_an_earlier_incident_stopped_it_for_a_few_minutes(tmp_path: Path):
    # the same earlier incident, and from the onset web stops calling cart altogether
    stopped = _cart_hour(tmp_path, cart_share=lambda minute: 0.0 if minute >= 20 or 8 <= minute < 12 else 0.8)
    store = load_telemetry(traces=stopped / "spans.jsonl")
    window, baseline, _ = known_periods(store, AT)
    signals, _ = trace_signals(store, window, baseline)
    assert signals["web"].significant and signals["web"].event == "call cart GET /items"


def test_a_rise_within_the_only_request_kind_after_the_onset_is_not_hidden_by_kinds_it_lacks(tmp_path: Path):
    # web is entered two ways: GET /a calls cart in 10% of its requests, GET /b in 90%, half each before the onset.
    # From the onset only GET /a arrives, and it calls cart in about half of them: against GET /a before, a rise
    rng = np.random.default_rng(1)
    spans = []
    for i in range(int((END - START) / (STEP / 2))):
        start = START + STEP / 2 * i
        kind = "GET /a" if start >= AT or i % 2 == 0 else "GET /b"
        share = 0.45 if start >= AT else 0.1 if kind == "GET /a" else 0.9
        at = start.isoformat() + "Z"
        spans.append(_root(i, at, kind))
        if rng.random() < share:
            spans.append(_call(i, at, "cart", "GET /items"))
    store = load_telemetry(traces=_written(tmp_path, spans=spans) / "spans.jsonl")
    window, baseline, _ = known_periods(store, AT)
    signals, _ = trace_signals(store, window, baseline)
    # the typical minute is taken over GET /a alone (with both kinds pooled, about 50%, it would hide the rise)
    assert signals["web"].significant and signals["web"].event == "call cart GET /items"
    assert signals["web"].share_before < 0.2 < 0.4 < signals["web"].share_after


def _web_calls(path: Path, calls: dict[str, list[tuple[str, str | None, int]]],
               before: dict[str, list[tuple[str, str | None, int]]] | None = None) -> Path:
    """One web request per trace just after AT (those of `before` ten minutes before it), calling each (callee,
    operation, ms after it began) it lists."""
    rows: dict[str, list] = {k: [] for k in ("trace_id", "span_id", "parent_id", "service", "operation", "start_ts",
                                             "duration_ms")}
    begun = [(AT + timedelta(seconds=1), calls), (AT - timedelta(minutes=10), before or {})]
    for at, traces in begun:
        for trace, made in traces.items():
            for row in ((trace, f"{trace}-root", None, "web", "GET /", at, 20.0),
                        *((trace, f"{trace}-{i}", f"{trace}-root", callee, op, at + timedelta(milliseconds=ms), 1.0)
                          for i, (callee, op, ms) in enumerate(made))):
                for key, value in zip(rows, row, strict=True):
                    rows[key].append(value)
    pq.write_table(pa.table(rows), path)
    return path


def _where(found: list[dict]) -> dict:
    return {key: found[0][key] for key in ("callee", "last_call", "requests", "cut_requests")}


def test_where_requests_were_cut_is_read_through_quotes_unnamed_operations_and_simultaneous_calls(tmp_path: Path):
    # after AT, four of web's five requests no longer call pay: two end after a call to cart whose span names no
    # operation, one after "it's" get 'x', one after two calls begun at the same moment (the first name is taken)
    store = load_telemetry(traces=_web_calls(tmp_path / "spans.parquet", {
        "t1": [("it's", "get 'x'", 0)], "t2": [("it's", "get 'x'", 0), ("cart", None, 5)], "t3": [("cart", None, 5)],
        "t4": [("b", "y", 3), ("a", "z", 3)], "t5": [("cart", None, 1), ("pay", "go", 2)]}))

    found = store.fetch(last_call_sql((AT, END), (START, AT), "web", "call pay go")).to_pylist()
    assert _where(found) == {"callee": "cart", "last_call": "cart", "requests": 2, "cut_requests": 4}
    # t3, t4 and t5 lack the quoted call, each last calling another: of equal counts the first name, a z (not b y)
    found = store.fetch(last_call_sql((AT, END), (START, AT), "web", "call it's get 'x'")).to_pylist()
    assert _where(found) == {"callee": "a", "last_call": "a z", "requests": 1, "cut_requests": 3}


def test_requests_were_cut_after_the_service_that_holds_the_new_cuts_whatever_the_operation(tmp_path: Path):
    # before AT, half of web's requests ended after cart add without calling pay; after it half still do, and a
    # third more end after inv (by two operations) without pay: the new cuts are all after inv, though cart add is
    # the commonest last call of the requests without pay
    store = load_telemetry(traces=_web_calls(tmp_path / "spans.parquet", {
        "a1": [("cart", "add", 1), ("pay", "go", 2)], "a2": [("cart", "add", 1)], "a3": [("cart", "add", 1)],
        "a4": [("cart", "add", 1)], "a5": [("inv", "get", 1)], "a6": [("inv", "put", 1)]}, before={
        "b1": [("cart", "add", 1), ("pay", "go", 2)], "b2": [("cart", "add", 1), ("pay", "go", 2)],
        "b3": [("cart", "add", 1)], "b4": [("cart", "add", 1)]}))
    found = store.fetch(last_call_sql((AT, END), (START, AT), "web", "call pay go")).to_pylist()
    assert _where(found) == {"callee": "inv", "last_call": "inv get", "requests": 1, "cut_requests": 5}
    assert cut_callee_share(found[0]) == pytest.approx(1.0)
    # without the requests before AT, cart holds three of the five cut requests, inv two
    only_after = store.fetch(last_call_sql((AT, END), (AT, AT), "web", "call pay go")).to_pylist()
    assert _where(only_after)["callee"] == "cart" and cut_callee_share(only_after[0]) == pytest.approx(0.6)


def test_a_change_that_is_as_much_a_delay_as_a_call_fewer_is_told_as_the_delay_throughout():
    # the description leads with the delay; the even-odds rule for a call fewer must not apply to a delay
    tied = TraceSignal(service="web", behaviour_shift=4.0, wait_shift=4.0 / WAIT_WEIGHT, event="call pay go",
                       share_before=0.9, share_after=0.4, wait_before_ms=2.0, wait_after_ms=50.0, wait_direction="in")
    assert tied.delayed and not tied.cut_short
    # a call fewer stands alone only while nothing else in its traces passed the bar: a wait or its own time that did
    # is a change of its own, though smaller
    assert tied.model_copy(update={"wait_shift": 2.0 / WAIT_WEIGHT}).cut_short
    assert not tied.model_copy(update={"wait_shift": 3.0 / WAIT_WEIGHT}).cut_short
    assert not tied.model_copy(update={"wait_shift": 0.0, "own_time_shift": 1.5, "own_tail_z": 3.0}).cut_short


def _edge(caller: str, callee: str, before_ms: float, after_ms: float, calls: int = 20) -> dict:
    return {"caller": caller, "callee": callee, "calls_before": calls, "calls_after": calls,
            "wait_before": before_ms, "wait_after": after_ms, "first_after": datetime(2023, 1, 29, 8, 52),
            "history": calls >= MIN_SPANS, "source": "spans"}


def test_an_ordinary_history_is_not_swapped_for_the_other_calls_typical_wait():
    # users' calls waited 4.5 ms before (about the others' 3.4 ms) and 15 ms after: x2.9 on its own history is
    # under the bar, and a history like the other calls' is no earlier delay to look past
    others = [_edge("web", f"svc{i}", 3.4, 3.4) for i in range(4)]
    waits = wait_shifts([*others, _edge("cancel", "users", 4.5, 15.2)])
    assert waits["users"]["baseline"] == "history"
    assert WAIT_WEIGHT * waits["users"]["shift"] < SIGNIFICANT_STRENGTH


def test_a_history_already_delayed_is_held_against_the_other_calls():
    # the delay was under way before the onset: its own history is slow too, but it stands out from the others
    others = [_edge("web", f"svc{i}", 3.4, 3.4) for i in range(4)]
    waits = wait_shifts([*others, _edge("web", "cart", 60.0, 61.0)])
    assert waits["cart"]["baseline"] == "peers"
    assert WAIT_WEIGHT * waits["cart"]["shift"] >= SIGNIFICANT_STRENGTH


def test_a_history_delayed_for_half_of_it_is_held_against_the_other_calls():
    # the same service injected again: its history is the previous injection's minutes, half before it (2 ms) and
    # half delayed (32 ms), so its median (10 ms) lies between the two: the delay after (33 ms) is under the bar
    # against it, and the median is no further from the other calls' 4 ms than an ordinary history; the delayed part
    # of the history stands out from them as a delay under way does
    others = [_calls("web", f"svc{i}", [4.0] * 20, [4.0] * 20) for i in range(4)]
    half = [2.0] * 10 + [10.0] + [32.0] * 10
    against_history = WAIT_WEIGHT * (math.log1p(33.0) - math.log1p(float(np.median(half))))
    median_against_others = WAIT_WEIGHT * (math.log1p(float(np.median(half))) - math.log1p(4.0))
    assert against_history < SIGNIFICANT_STRENGTH and median_against_others < SIGNIFICANT_STRENGTH
    waits = wait_shifts([*others, _calls("seat", "config", half, [33.0] * 20)])
    assert waits["config"]["baseline"] == "peers"
    assert waits["config"]["z"] >= SIGNIFICANT_STRENGTH <= WAIT_WEIGHT * waits["config"]["shift"]



def _calls(caller: str, callee: str, before_ms: list[float], after_ms: list[float]) -> dict:
    """One call edge as `wait_sql` gives it, with each call's wait."""
    return {**_edge(caller, callee, float(np.median(before_ms)) if before_ms else 0.0, float(np.median(after_ms))),
            "calls_before": len(before_ms), "calls_after": len(after_ms), "history": len(before_ms) >= MIN_SPANS,
            CALL_WAITS[0]: before_ms, CALL_WAITS[1]: after_ms}


# TrainTicket's ts-seat-service -> ts-order-service over the 33 s before a fault and the 24 s after it (10:56:45, one
# minute's files): a few calls always wait 20-30 ms (a GC pause, a retry)
ORDER_BEFORE = [4.7, 2.6, 19.3, 2.7, 21.1, 2.6, 4.8, 2.7, 3.4, 2.5, 4.6, 2.7, 27.7, 3.0]


def test_a_median_of_a_handful_of_calls_is_no_delay_unless_the_rank_test_carries_it():
    # three of six calls after at 24-30 ms put the median at 18 ms (x4.6), but the history has such calls too: the
    # six rank above the fourteen before no more surely than z 2.3
    waits = wait_shifts([_calls("seat", "order", ORDER_BEFORE, [12.0, 4.6, 5.2, 27.0, 29.7, 24.0])])
    assert WAIT_WEIGHT * waits["order"]["shift"] >= SIGNIFICANT_STRENGTH
    assert waits["order"]["z"] < SIGNIFICANT_STRENGTH
    signal = TraceSignal(service="order", wait_shift=waits["order"]["shift"], wait_z=waits["order"]["z"])
    assert signal.wait == 0.0 and not signal.delayed and not signal.significant


def test_a_delay_on_every_call_is_carried_by_the_rank_test():
    # six calls, each slower than every one of the fourteen before: as sure as six calls against fourteen can be
    # (z 3.46, the root of 3 * 6 * 14 / 21; against ever more calls before, at most the root of 18, 4.24)
    waits = wait_shifts([_calls("seat", "order", ORDER_BEFORE, [34.0, 33.1, 35.2, 38.8, 39.4, 38.1])])
    assert waits["order"]["z"] == pytest.approx(math.sqrt(3 * 6 * 14 / 21))
    signal = TraceSignal(service="order", wait_shift=waits["order"]["shift"], wait_z=waits["order"]["z"])
    assert signal.delayed and signal.sureness == waits["order"]["z"] < signal.strength


def test_a_wait_s_median_over_fewer_than_twenty_calls_is_said_with_its_count():
    # six calls after, each slower than the fourteen before: the median is one of six, said as such, as the own-time
    # words say "3 of the 8 of its spans"; twenty calls or more are a median as said before
    few = TraceSignal(service="order", wait_direction="in",
                      **_wait_fields(wait_shifts([_calls("seat", "order", ORDER_BEFORE, [34.0, 33.1, 35.2, 38.8,
                                                                                          39.4, 38.1])])["order"]))
    assert few.describe().startswith("its callers waited 36.6 ms around each call into it beyond its own server time "
                                     "(median over 6 calls; 3.2 ms before, over 14 calls)")
    many = [_calls("seat", "order", [3.0] * 20, [40.0] * 25)]
    assert "(median; 3 ms before)" in TraceSignal(service="order", wait_direction="in",
                                                  **_wait_fields(wait_shifts(many)["order"])).describe()
    # held against the other calls' typical wait, the level before is no median of its own calls
    others = [_calls("web", f"svc{i}", [3.4] * 20, [3.4] * 20) for i in range(4)]
    delayed = wait_shifts([*others, _calls("web", "cart", [60.0] * 8, [61.0] * 8)])["cart"]
    assert delayed["baseline"] == "peers"
    assert "(median over 8 calls; 3.4 ms typical of the other calls)" in TraceSignal(
        service="cart", wait_direction="in", **_wait_fields(delayed)).describe()


def _wait_fields(wait: dict) -> dict:
    """A service's wait (`wait_shifts`) as its signal holds it."""
    return {"wait_before_ms": wait["before"], "wait_after_ms": wait["after"], "wait_shift": wait["shift"],
            "wait_baseline": wait["baseline"], "wait_z": wait["z"], "wait_calls": wait["calls"]}


def test_the_rank_test_pools_the_callers_of_a_delayed_service():
    # each caller's five calls alone fall short of the bar; a delay on the callee's network slows them all
    before, after = [2.0, 2.1, 1.9, 2.2, 2.0], [40.0, 41.0, 1.0, 42.0, 40.5]
    alone = wait_shifts([_calls("web", "cart", before, after)])["cart"]["z"]
    pooled = wait_shifts([_calls(caller, "cart", before, after) for caller in ("web", "checkout", "api")])
    assert alone < SIGNIFICANT_STRENGTH <= pooled["cart"]["z"]


def test_calls_held_against_the_typical_wait_rank_against_the_other_calls():
    # cancel's calls have no history: five calls slower than every other call in the window are a delay; five among
    # the others' spread are not, however their median compares with the typical wait
    others = [_calls("web", f"svc{i}", [3.0] * 20, list(np.linspace(2.0, 30.0, 20))) for i in range(4)]
    slow = wait_shifts([*others, _calls("cancel", "order", [], [34.4, 32.0, 35.1, 33.3, 36.0])])
    spread = wait_shifts([*others, _calls("cancel", "order", [], [29.0, 27.0, 12.0, 25.0, 28.0])])
    assert slow["cancel"]["baseline"] == spread["cancel"]["baseline"] == "peers"
    assert slow["cancel"]["z"] >= SIGNIFICANT_STRENGTH > spread["cancel"]["z"]


def _calls_with_unmeasured(tmp_path: Path, unmeasured_after: int) -> Path:
    """`api` calls `cancel` every 30 s, each call waiting 2 ms before AT and 3 ms after; the first `unmeasured_after`
    calls after AT have a callee span ending before it starts (a clock stepped back: no duration)."""
    rows = []
    for i in range(52):
        start, after = AT + timedelta(seconds=30 * (i - 40)), i >= 40
        own = -5.0 if after and i - 40 < unmeasured_after else 10.0
        rows += [
            {"trace_id": f"t{i}", "span_id": f"a{i}", "parent_id": "", "service": "api", "operation": "POST /cancel",
             "start": start.isoformat() + "Z", "duration_ms": 10.0 + (3.0 if after else 2.0)},
            {"trace_id": f"t{i}", "span_id": f"c{i}", "parent_id": f"a{i}", "service": "cancel",
             "operation": "cancel", "start": start.isoformat() + "Z", "duration_ms": own},
        ]
    path = tmp_path / "spans.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    return path


def _wait_edges(spans: Path) -> list[dict]:
    store = load_telemetry(traces=spans)
    window, baseline, _ = known_periods(store, AT)
    return store.fetch(wait_sql(window, baseline, span_links(store))).to_pylist()


def test_a_call_with_no_duration_has_no_wait_to_rank(tmp_path: Path):
    # six of twelve calls after have no duration: the median and the rank test see the six measured calls, not six
    # more that waited 0 ms
    [edge] = _wait_edges(_calls_with_unmeasured(tmp_path, 6))
    assert edge["calls_after"] == len(edge[CALL_WAITS[1]]) == 6
    assert all(wait is not None for wait in edge[CALL_WAITS[0]] + edge[CALL_WAITS[1]])
    # every call after unmeasured: the edge has no calls after to measure
    assert _wait_edges(_calls_with_unmeasured(tmp_path, 12)) == []


def test_calls_held_against_the_typical_wait_count_against_the_other_edges_calls_alone():
    # whole milliseconds, so many ties: the count is Mann-Whitney's U against the other edges' calls, ties a half
    rng = np.random.default_rng(7)
    edges = [_calls("web", f"svc{i}", [], [float(w) for w in rng.integers(1, 9, 30 + i)]) for i in range(4)]
    waits = wait_shifts(edges, parsimony=False)
    for i, edge in enumerate(edges):
        after = edge[CALL_WAITS[1]]
        others = [w for other in edges if other is not edge for w in other[CALL_WAITS[1]]]
        u = mannwhitneyu(after, others, method="asymptotic").statistic
        excess, variance = waits[f"svc{i}"]["test"]
        assert excess == pytest.approx(u - len(after) * len(others) / 2)
        assert variance == pytest.approx(len(after) * len(others) * (len(after) + len(others) + 1) / 12)


def test_a_second_change_does_not_make_a_service_less_sure():
    # its requests changed at z 4.9 (corrected), and the wait on its calls rose further (5.0) but over few calls
    # (the rank test's z 2.6): the event alone makes it as sure, and the wait takes nothing from that
    alone = TraceSignal(service="order", behaviour_shift=4.9, raw_shift=5.5)
    both = alone.model_copy(update={"wait_shift": 2.5, "wait_z": 2.6})
    assert both.strength == 5.0 and both.sureness == alone.sureness == 4.9


def test_waits_from_call_metrics_have_no_calls_to_test():
    waits = wait_shifts([{**_edge("web", "cart", 3.0, 60.0), "source": CALL_METRICS}])
    assert waits["cart"]["z"] is None
    assert TraceSignal(service="cart", wait_shift=waits["cart"]["shift"], wait_source=CALL_METRICS).delayed


def _priced_requests(tmp_path: Path) -> Path:
    """spans.jsonl and logs.jsonl of web -> price, a request every 10 s: price logs "query price for train type T"
    in half of the requests, T one of six train types (a value the masking keeps: a word); web logs "request served"
    in every one. From AT price stops quoting prices: the statement is gone whatever the train type."""
    rng = np.random.default_rng(7)
    types = ["ZhiDa", "DongCheOne", "GaoTieOne", "GaoTieTwo", "TeKuai", "KuaiSu"]
    spans, logs = [], []
    for i, start, at in _requests():
        spans.extend([_root(i, at, "GET /trips"), _call(i, at, "price", "GET /price")])
        logs.append({"ts": at, "service": "web", "level": "INFO", "message": "request served", "trace_id": f"t{i}"})
        if start < AT and rng.random() < 0.5:
            logs.append({"ts": at, "service": "price", "level": "INFO",
                         "message": f"query price for train type {rng.choice(types)}", "trace_id": f"t{i}"})
    return _written(tmp_path, spans=spans, logs=logs)


def test_a_statement_that_stops_is_one_change_whatever_value_each_of_its_lines_carried(tmp_path: Path):
    folder = _priced_requests(tmp_path)
    signals = _signals_at_onset(folder)
    # each train type's line alone fell from about 8% of the requests to none: no surprise in six minutes; the
    # statement (Drain's template over its lines) fell from half of them
    price = signals["price"]
    assert price.significant and price.event is not None and "train type <*>" in price.event
    assert price.share_before > 0.4 and price.share_after == 0


def _code_checks(tmp_path: Path) -> Path:
    """spans.jsonl and logs.jsonl of web -> verify: verify writes "<time> INFO VerifyCodeServiceImpl
    [verifyCode][Code not found]" (its time and level in its text, as many loggers write them) in every other
    request; from AT the same words at ERROR in every request."""
    spans, logs = [], []
    for i, start, at in _requests():
        spans.extend([_root(i, at, "POST /login"), _call(i, at, "verify", "GET /verify")])
        level = "ERROR" if start >= AT else "INFO" if i % 2 else None
        if level:
            line = f"{start:%H:%M:%S}.{i % 1000:03d} {level} VerifyCodeServiceImpl [verifyCode][Code not found]"
            logs.append({"ts": at, "service": "verify", "level": level, "trace_id": f"t{i}", "message": line})
    return _written(tmp_path, spans=spans, logs=logs)


def test_a_line_written_at_a_new_level_is_a_statement_of_its_own(tmp_path: Path):
    folder = _code_checks(tmp_path)
    signals = _signals_at_onset(folder)
    # alike but for their level, the lines would be one Drain template; a statement writes at one level, so the
    # ERROR line is new in every request, not the INFO line written in half of them before
    verify = signals["verify"]
    assert verify.event == "log <*> ERROR VerifyCodeServiceImpl [verifyCode][Code not found]"
    assert verify.share_before == 0 and verify.share_after == 1


def test_a_service_told_by_its_own_span_time_cites_the_evidence_that_holds_it(tmp_path: Path):
    # every call of cancel slowed, and its requests' one event, its call to db, did not move (in all of them before
    # and after): the review says "its own span time: ..." and its link must lead to those figures,
    # not to that event's behaviour shift (z 0.0), the way OnlineBoutique 12:27's checkoutservice's did
    store = load_telemetry(traces=_quiet_calls(tmp_path, [60.0, 75.0, 68.0], calls_db=True))
    window, baseline, _ = known_periods(store, AT)
    signals, evidence = trace_signals(store, window, baseline)
    cited = next(e for e in evidence if e.id == signals["cancel"].evidence)

    assert signals["cancel"].describe().startswith("its own span time: 6 of the 12 of its spans after")
    assert cited.title.startswith("own span time p90 by service: cancel ")


def _store_behind_web(tmp_path: Path, *, added_ms: float = 0.0, stretch: float = 1.0,
                      queued_ms: float = 0.0) -> Path:
    """Web calls store every 10 s (a 2.5 ms wait around the call); store runs its own work (~0.6 ms), two database
    statements and a step of local work, spans of its own with nothing under them and no span kind, as in Nezha's
    files: `SELECT items` ~0.4 ms, `SELECT prices` ~0.8 ms, `Session.merge` ~0.05 ms. From AT on, each statement
    takes `added_ms` longer (a delay on store's network: web waits as long more for its answer; the local step does
    not), or store's work, statements and step take `stretch` times as long and web waits `queued_ms` longer (a
    starved CPU: requests queue before store reads them)."""
    rng = np.random.default_rng(11)
    rows = []
    for i, start in enumerate(START + STEP * k for k in range(int((END - START) / STEP))):
        late = start >= AT
        scale, delay = (stretch, added_ms) if late else (1.0, 0.0)
        work, items, prices, merge = (usual * scale * rng.uniform(0.9, 1.1) for usual in (0.6, 0.4, 0.8, 0.05))
        store_ms = work + items + prices + merge + 2 * delay
        wait_ms = 2.5 + rng.uniform(0, 0.2) + (delay + queued_ms if late else 0.0)
        at = start.isoformat() + "Z"
        rows += [
            {"trace_id": f"t{i}", "span_id": f"w{i}", "parent_id": "", "service": "web", "operation": "GET /cart",
             "start": at, "duration_ms": store_ms + wait_ms},
            {"trace_id": f"t{i}", "span_id": f"s{i}", "parent_id": f"w{i}", "service": "store",
             "operation": "listItems", "start": at, "duration_ms": store_ms},
            {"trace_id": f"t{i}", "span_id": f"i{i}", "parent_id": f"s{i}", "service": "store",
             "operation": "SELECT items", "start": at, "duration_ms": items + delay},
            {"trace_id": f"t{i}", "span_id": f"p{i}", "parent_id": f"s{i}", "service": "store",
             "operation": "SELECT prices", "start": at, "duration_ms": prices + delay},
            {"trace_id": f"t{i}", "span_id": f"m{i}", "parent_id": f"s{i}", "service": "store",
             "operation": "Session.merge", "start": at, "duration_ms": merge},
        ]
    path = tmp_path / "spans.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    return path


def _store_signal(spans: Path) -> TraceSignal:
    store = load_telemetry(traces=spans)
    window, baseline, _ = known_periods(store, AT)
    return trace_signals(store, window, baseline)[0]["store"]


def test_database_statements_that_each_took_as_much_longer_as_the_callers_waited_are_a_network_delay(tmp_path):
    # each statement took 30 ms longer, ~0.4 and ~0.8 ms alike, and web waited 30 ms longer for store's answer:
    # store's own time (its statements, counted as its own work) rose more on the bar's scale than the wait, and it
    # is the same delay on its network; its local step (Session.merge) did not move, as local work does not
    spans = _store_behind_web(tmp_path, added_ms=30.0)
    signal = _store_signal(spans)
    assert signal.own_time > signal.wait >= SIGNIFICANT_STRENGTH
    items, prices, merge = signal.leaf_gains_ms  # by operation name
    assert abs(merge[1]) < 0.1 and all(29 < gain < 31 for gain in (*items, *prices))
    assert signal.round_trip_gains == [items, prices]
    assert signal.round_trips_waited and signal.delayed
    assert "database statements) took about as much longer" in signal.describe()
    top = analyze(load_telemetry(traces=spans), at=AT, onset="at").hypotheses[0]
    assert (top.service, top.kind) == ("store", "network_delay")


def test_a_network_delay_whose_own_work_slowed_less_says_by_how_much_not_that_it_kept_its_pace(tmp_path):
    # OnlineBoutique 14:12: paymentservice's "calls were delayed on the network while its own work kept its pace",
    # its own span time p90 from 0.279 to 0.343 ms, a rise its tail test carried: here web waits 300 ms longer and
    # store's work takes 1.3 times as long
    spans = _store_behind_web(tmp_path, stretch=1.3, queued_ms=300.0)
    signal = _store_signal(spans)
    assert signal.delayed and 0 < signal.own_time < signal.wait
    top = analyze(load_telemetry(traces=spans), at=AT, onset="at").hypotheses[0]
    assert (top.service, top.kind) == ("store", "network_delay")
    assert top.mechanism.startswith("store's calls were delayed on the network while its own work slowed less than "
                                    "its calls waited (its own span time p90 from 0.805 to 1.06 ms); in the traces")
    # a delay that stretched its round trips alone leaves its work at its pace
    delayed = analyze(load_telemetry(traces=_store_behind_web(tmp_path, added_ms=30.0)), at=AT, onset="at")
    assert "while its own work kept its pace;" in delayed.hypotheses[0].mechanism


def test_work_and_statements_stretched_many_times_over_are_no_network_delay(tmp_path):
    # store's work and statements took twenty times as long and web waited 10 ms longer: its own time rose more
    # than the wait, and its statements gained about as much as the wait (~8 and ~15 ms), but its work around them
    # slowed as much (0.6 -> 12 ms): its own work slowed, not its network
    signal = _store_signal(_store_behind_web(tmp_path, stretch=20.0, queued_ms=10.0))
    assert signal.own_time > signal.wait >= SIGNIFICANT_STRENGTH
    assert not signal.round_trips_waited and not signal.delayed
    # threefold, the calls waiting 4 ms longer: the statements' floor rose ~1 ms, not about 4
    stretched = _store_signal(_store_behind_web(tmp_path, stretch=3.0, queued_ms=4.0))
    assert all(floor < 2 for floor, _ in stretched.leaf_gains_ms) and not stretched.round_trips_waited


def test_a_share_of_few_traces_is_said_as_their_count() -> None:
    # TrainTicket 11:29: ts-inside-payment-service's WARN "in 14% of its traces after the onset, 5% before" was 1 of
    # its 7 traces after (6 of 112 before): a percentage one trace moves by 14 points
    few = TraceSignal(service="pay", traces_before=112, traces_after=7, behaviour_shift=3.0, event="log WARN unpaid",
                      share_before=0.0536, share_after=0.1429)
    many = few.model_copy(update={"traces_after": 70, "share_after": 0.1429})

    assert few.describe() == "'log WARN unpaid' in 1 of 7 traces after the onset, 5% before"
    assert many.describe() == "'log WARN unpaid' in 14% of its traces after the onset, 5% before"
