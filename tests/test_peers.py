"""A call to a dependency nothing traced (a database, a cache, an external API) shows only as its caller's client
span: the service its attributes name on the far side gets a server span inferred under it, so its time is its own,
not its caller's."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from incidentlens.cli import app
from incidentlens.telemetry import load_telemetry
from test_otlp import attribute, resource, span, write_lines

ONSET = "2024-05-01T11:00:00Z"  # an hour after the first request (test_otlp's T0)
DATABASE = [attribute("db.system", "postgresql"), attribute("db.name", "orders")]


def checkout_orders_database(path: Path, statement_attributes: list[dict], call_attributes: list[dict] = (),
                             gap: int = 2) -> Path:
    """checkout -> orders -> orders' statements (CLIENT spans with `statement_attributes`, nothing traced under
    them): a request every 10 s for 70 min; from the 60th minute the statements take ten times as long, while
    orders' other work (its server span less the statement) keeps its pace. `call_attributes`: those of checkout's
    client span calling orders; `gap`: the ms it waits around each call beyond orders' server span."""
    rng = np.random.default_rng(7)
    checkout, orders = [], []
    for second in range(0, 4200, 10):
        statement = int(rng.integers(4, 9)) * (10 if second >= 3600 else 1)
        work = int(rng.integers(3, 8))
        trace, at = f"{second:032x}", second * 1000
        ids = [f"{second:012x}{n:04x}" for n in range(4)]
        served = at + 1 + gap // 2
        checkout += [span(trace, ids[0], "", "POST /checkout", at, work + statement + gap + 2, 2, 0),
                     {**span(trace, ids[1], ids[0], "GET /orders", at + 1, work + statement + gap, 3, 0),
                      "attributes": list(call_attributes)}]
        orders += [span(trace, ids[2], ids[1], "GET /orders", served, work + statement, 2, 0),
                   {**span(trace, ids[3], ids[2], "SELECT orders", served + work, statement, 3, 0),
                    "attributes": statement_attributes}]
    return write_lines(path, [{"resourceSpans": [{"resource": resource(name), "scopeSpans": [{"scope": {},
                                                                                             "spans": spans}]}]}
                              for name, spans in (("checkout", checkout), ("orders", orders))])


def analyze_traces(spans: Path, out: Path) -> dict:
    ran = CliRunner().invoke(app, ["analyze", "--at", ONSET, "--onset", "at", "--traces", str(spans), "--json",
                                   "--out", str(out)])
    assert ran.exit_code == 0, ran.output
    return json.loads(ran.output)


def test_a_slower_untraced_database_is_named_not_the_service_that_calls_it(tmp_path: Path) -> None:
    # before: "orders: its own span time p90 went from 8 to 80 ms" (the statements counted as its own work)
    analysis = analyze_traces(checkout_orders_database(tmp_path / "spans.json", DATABASE), tmp_path)

    [first, *others] = analysis["hypotheses"]
    assert first["service"] == "postgresql orders"
    assert "orders" not in [h["service"] for h in others]
    # its evidence says whose time that is: the calls into it, as nothing traces it
    own = next(e for e in analysis["evidence"] if e["title"].startswith("own span time p90 by service"))
    assert own["title"].startswith("own span time p90 by service: postgresql orders (untraced: its callers' calls "
                                   "to it) ")
    assert own["data"]["services"][0] == {**own["data"]["services"][0], "service": "postgresql orders",
                                          "untraced": True}
    # it has no metrics or logs of its own: what it did stays undetermined, and the review says how it was seen
    assert first["kind"] == "undetermined"
    assert first["mechanism"].startswith("postgresql orders is untraced, seen from its callers' client spans: it has "
                                         "no metrics or logs of its own here")
    assert "the time its callers' client spans took on their calls to it (it is untraced) p90" in first["mechanism"]


def test_the_review_of_an_untraced_cause_looks_at_the_dependency_not_its_instances(tmp_path: Path) -> None:
    # before: "take the instances that show the change out of rotation (or restart them)", and "per-dependency
    # error metrics for postgresql orders": it has no instances here, and what would name its mechanism is its own
    analysis = analyze_traces(checkout_orders_database(tmp_path / "spans.json", DATABASE), tmp_path / "analysis")
    assert analysis["hypotheses"][0]["untraced"] is True
    ran = CliRunner().invoke(app, ["report", "--analysis", str(tmp_path / "analysis" / "analysis.json"),
                                   "--out", str(tmp_path / "review")])
    assert ran.exit_code == 0, ran.output
    review = json.loads((tmp_path / "review" / "report.json").read_text())

    actions = [item["description"] for item in review["action_items"]]
    assert "look at postgresql orders itself, which nothing here traces" in actions[0]
    assert any(action.startswith("Trace postgresql orders or export its own metrics") for action in actions)
    steps = " ".join(review["runbook"])
    assert "out of rotation" not in " ".join(actions) + steps and "restart" not in " ".join(actions) + steps
    assert "look at postgresql orders itself" in steps
    # its "requests" are the calls into it as its callers timed them
    assert ("postgresql orders (untraced, the calls into it as its callers timed them: 60 of 60 SELECT orders "
            "requests took longer than") in review["impact"]["narrative"]["text"]


def test_a_call_to_an_untraced_dependency_has_no_wait_measured_around_it(tmp_path: Path) -> None:
    # the span inferred under a call is as long as the call: the wait around it is 0 by construction, not measured.
    # Taken as one, it made 0 ms the system's typical wait, and checkout's steady 6 ms around its calls to orders
    # "a delay on the network" of both ("6 ms ... (median; 0 ms typical of the other calls)")
    spans = checkout_orders_database(tmp_path / "spans.json", DATABASE, gap=6)

    analysis = analyze_traces(spans, tmp_path)

    assert [h["service"] for h in analysis["hypotheses"]] == ["postgresql orders"]
    # its onset is still the first call into it after the alert's, as a traced callee's is
    assert analysis["timeline"][0]["event"].startswith("first to move: postgresql orders")


def test_an_untraced_dependency_with_metrics_of_its_own_is_not_said_to_have_none(tmp_path: Path) -> None:
    # the database's exporter gave a series of its own, which stayed flat: the review said "it has no metrics or
    # logs of its own here" all the same
    spans = checkout_orders_database(tmp_path / "spans.json", DATABASE)
    metrics = tmp_path / "metrics.csv"
    metrics.write_text("ts,service,metric,value\n" + "".join(
        f"2024-05-01T{10 + minute // 60:02d}:{minute % 60:02d}:00Z,postgresql orders,connections,{40 + minute % 3}\n"
        for minute in range(70)))

    ran = CliRunner().invoke(app, ["analyze", "--at", ONSET, "--onset", "at", "--traces", str(spans), "--metrics",
                                   str(metrics), "--json", "--out", str(tmp_path)])

    [first, *_] = json.loads(ran.output)["hypotheses"]
    assert first["service"] == "postgresql orders"
    assert "no metrics or logs of its own" not in first["mechanism"]
    assert "postgresql orders is untraced, seen from its callers' client spans" in first["mechanism"]


def test_a_statement_that_names_no_peer_stays_the_callers_own_time(tmp_path: Path) -> None:
    # no db.system (no attribute naming the far side): nothing is inferred, and orders' own time rose as before;
    # checkout's call names orders, but orders' server span is under it: nothing is inferred there either
    spans = checkout_orders_database(tmp_path / "spans.json", [attribute("db.statement", "SELECT * FROM orders")],
                                     call_attributes=[attribute("peer.service", "orders")])

    assert load_telemetry(traces=spans).fetch(
        "SELECT service, span_kind, peer, count(*) AS spans FROM spans GROUP BY ALL ORDER BY ALL").to_pylist() == [
        {"service": "checkout", "span_kind": "client", "peer": "orders", "spans": 420},
        {"service": "checkout", "span_kind": "server", "peer": None, "spans": 420},
        {"service": "orders", "span_kind": "client", "peer": None, "spans": 420},
        {"service": "orders", "span_kind": "server", "peer": None, "spans": 420},
    ]
    assert analyze_traces(spans, tmp_path)["hypotheses"][0]["service"] == "orders"


@pytest.mark.parametrize("column", ["peer.service", "peer_service"])
def test_a_span_file_with_a_peer_service_column_has_its_untraced_peers_inferred(tmp_path: Path, column: str) -> None:
    path = tmp_path / "spans.csv"
    path.write_text(f"trace_id,span_id,parent_id,service,operation,start,duration_ms,{column}\n"
                    "t1,a,,orders,GET /orders,2024-05-01T10:00:00Z,12,\n"
                    "t1,b,a,orders,GET,2024-05-01T10:00:00.002Z,9,redis\n"
                    "t1,c,a,orders,charge,2024-05-01T10:00:00.003Z,5,payments\n"
                    "t1,d,c,payments,charge,2024-05-01T10:00:00.004Z,4,\n")

    rows = load_telemetry(traces=path).fetch(
        "SELECT span_id, parent_id, service, duration_ms, inferred FROM spans ORDER BY span_id").to_pylist()

    assert [r for r in rows if r["inferred"]] == [
        {"span_id": "b-peer", "parent_id": "b", "service": "redis", "duration_ms": 9.0, "inferred": True}]
    assert len(rows) == 5


def test_a_traced_service_whose_span_is_missing_under_a_call_gets_none_inferred(tmp_path: Path) -> None:
    # payments is traced: its span missing under one call (sampled, lost, or its context not passed on) does not
    # make it untraced, and a span inferred there would count the network around that call as its own time
    path = tmp_path / "spans.csv"
    path.write_text("trace_id,span_id,parent_id,service,operation,start,duration_ms,peer.service\n"
                    "t1,a,,orders,POST /orders,2024-05-01T10:00:00Z,12,\n"
                    "t1,b,a,orders,charge,2024-05-01T10:00:00.003Z,5,payments\n"
                    "t1,c,b,payments,charge,2024-05-01T10:00:00.004Z,4,\n"
                    "t2,d,,orders,POST /orders,2024-05-01T10:00:01Z,12,\n"
                    "t2,e,d,orders,charge,2024-05-01T10:00:01.003Z,9,payments\n")

    assert load_telemetry(traces=path).fetch("SELECT count(*) AS n FROM spans WHERE inferred").to_pylist() == [
        {"n": 0}]


def test_a_span_file_whose_kind_column_says_server_infers_nothing_under_its_peer_column(tmp_path: Path) -> None:
    # a server span naming its caller in peer.service (as Jaeger's clients once tagged it): nothing is called there,
    # and a span inferred under it made its own work its caller's
    path = tmp_path / "spans.csv"
    path.write_text("trace_id,span_id,parent_id,service,operation,start,duration_ms,span.kind,peer.service\n"
                    "t1,a,,orders,GET /orders,2024-05-01T10:00:00Z,12,SPAN_KIND_SERVER,web\n"
                    "t1,b,a,orders,GET,2024-05-01T10:00:00.002Z,9,client,redis\n"
                    "t1,c,a,orders,render,2024-05-01T10:00:00.003Z,2,,templates\n")

    rows = load_telemetry(traces=path).fetch("SELECT span_id, peer FROM spans WHERE NOT inferred ORDER BY span_id")

    assert rows.to_pylist() == [{"span_id": "a", "peer": None}, {"span_id": "b", "peer": "redis"},
                                {"span_id": "c", "peer": "templates"}]  # no kind written: a peer is a peer


def test_a_span_file_with_db_system_and_db_name_columns_names_the_database_its_statements_call(tmp_path: Path):
    path = tmp_path / "spans.csv"
    path.write_text("trace_id,span_id,parent_id,service,operation,start,duration_ms,db.system,db.name\n"
                    "t1,a,,orders,GET /orders,2024-05-01T10:00:00Z,12,,\n"
                    "t1,b,a,orders,SELECT,2024-05-01T10:00:00.002Z,9,postgresql,orders\n"
                    "t1,c,a,orders,GET,2024-05-01T10:00:00.003Z,2,redis,\n")

    rows = load_telemetry(traces=path).fetch(
        "SELECT service, peer, inferred, \"db.system\" FROM spans ORDER BY span_id").to_pylist()

    assert rows == [
        {"service": "orders", "peer": None, "inferred": False, "db.system": None},
        {"service": "orders", "peer": "postgresql orders", "inferred": False, "db.system": "postgresql"},
        {"service": "postgresql orders", "peer": None, "inferred": True, "db.system": None},
        {"service": "orders", "peer": "redis", "inferred": False, "db.system": "redis"},
        {"service": "redis", "peer": None, "inferred": True, "db.system": None},
    ]


def test_a_lead_on_an_untraced_dependency_is_not_said_to_have_no_resource_near_its_limit() -> None:
    from incidentlens.analysis.rootcause import ServiceSignals
    from incidentlens.analysis.verdict import _why_not_alone

    signals = {"redis": ServiceSignals(service="redis", untraced=True)}
    checked = {"services_with_logs": 3, "services_in_traces": 4}

    reason = _why_not_alone("redis", signals, stands_on_its_own=False, checked=checked)

    assert "no resource near its limit" not in reason
    assert "it is untraced, seen from its callers' client spans, with no metrics of its own" in reason


def test_spans_in_several_files_have_their_peers_inferred_once_over_all_of_them(tmp_path: Path,
                                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    # each OTLP, Jaeger or Zipkin file is a source of its own: inferred again after each over all the files read so
    # far, forty files of 3,000 spans took 21 s of CPU to load instead of 7
    from incidentlens.telemetry import peers, store

    inferred = []
    monkeypatch.setattr(store, "inferred_spans_sql", lambda spans: inferred.append(spans) or
                        peers.inferred_spans_sql(spans))
    lines = checkout_orders_database(tmp_path / "spans.json", DATABASE, [attribute("peer.service", "orders")]
                                     ).read_text().splitlines()
    paths = [tmp_path / "checkout.json", tmp_path / "orders.json"]  # a file per service, as a collector may write
    for path, line in zip(paths, lines, strict=True):
        path.write_text(line + "\n")

    spans = load_telemetry(traces=paths).fetch("SELECT count(*) AS n FROM spans WHERE inferred").to_pylist()

    assert spans == [{"n": 420}]  # under the statements: orders, whose calls name it, is traced
    assert len(inferred) == 1


def test_an_otlp_export_retried_into_a_second_file_is_read_once(tmp_path: Path) -> None:
    # a collector that retries an export writes the same spans into the next file: each OTLP file is a source of its
    # own, and each span the two hold was read twice, its calls joined to both copies and a second database span
    # inferred under each statement
    spans = checkout_orders_database(tmp_path / "spans.json", DATABASE)
    retried = tmp_path / "spans-retried.json"
    retried.write_text(spans.read_text().splitlines(keepends=True)[1])  # orders' spans again

    once, twice = load_telemetry(traces=spans), load_telemetry(traces=[spans, retried])

    count = "SELECT count(*) AS spans, count(*) FILTER (WHERE inferred) AS inferred FROM spans"
    assert twice.fetch(count).to_pylist() == once.fetch(count).to_pylist() == [{"spans": 2100, "inferred": 420}]
    assert twice.warnings == ["spans given twice: 840 spans another trace file holds too (the same trace, span, "
                              "times and attributes), counted once"]
    both = CliRunner().invoke(app, ["analyze", "--at", ONSET, "--onset", "at", "--traces", str(spans), "--traces",
                                    str(retried), "--json", "--out", str(tmp_path / "both")])
    assert both.exit_code == 0, both.output
    assert json.loads(both.stdout)["hypotheses"] == analyze_traces(spans, tmp_path / "once")["hypotheses"]
