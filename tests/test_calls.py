"""Per-call-edge latency (`--calls`, the `calls` view): a service mesh's client-side and server-side latency of each
call edge, and the network delay it shows when no spans do."""

from __future__ import annotations

import csv
import json
from datetime import datetime, timedelta
from pathlib import Path

import duckdb
import pytest

from cli_process import assert_one_line_error, run_cli
from incidentlens.agents import investigate
from incidentlens.analysis import analyze
from incidentlens.analysis.callgraph import infer_call_graph
from incidentlens.eval.nezha import CallsCut, evaluate_nezha
from incidentlens.telemetry import load_telemetry

START = datetime(2024, 5, 1, 8, 0)
AT = START + timedelta(hours=2)
END = AT + timedelta(minutes=6)
SERVICES = ("web", "api", "cart", "pay")
EDGES = (("web", "cart"), ("api", "cart"), ("web", "pay"), ("api", "pay"))


def _minutes() -> list[datetime]:
    return [START + timedelta(minutes=k) for k in range(int((END - START) / timedelta(minutes=1)))]


def _write_metrics(path: Path) -> Path:
    """Each service's CPU, flat but for a small wobble: nothing the services do moves."""
    with path.open("w", newline="") as f:
        out = csv.writer(f)
        out.writerow(["ts", "service", "metric", "value"])
        for k, t in enumerate(_minutes()):
            for i, service in enumerate(SERVICES):
                out.writerow([f"{t:%Y-%m-%dT%H:%M:%S}Z", service, "cpu_usage", 0.2 + 0.01 * ((k + i) % 3)])
    return path


def _write_calls(path: Path, slow: str, client_extra_ms: float, server_extra_ms: float) -> Path:
    """Istio's names: per minute and edge, the p50 each side reported. From AT the calls into `slow` take
    `client_extra_ms` longer at the caller's side and `server_extra_ms` longer at its own."""
    with path.open("w", newline="") as f:
        out = csv.writer(f)
        out.writerow(["timestamp", "source_workload", "destination_workload", "reporter", "latency_ms"])
        for k, t in enumerate(_minutes()):
            for caller, callee in EDGES:
                server = 5.0 + (k % 4) * 0.5
                client = server + 1.0 + (k % 3) * 0.5
                if callee == slow and t >= AT:
                    server, client = server + server_extra_ms, client + client_extra_ms
                stamp = f"{t + timedelta(seconds=28):%Y-%m-%dT%H:%M:%S}Z"
                out.writerow([stamp, caller, callee, "source", client])
                out.writerow([stamp, caller, callee, "destination", server])
    return path


def test_a_calls_file_in_a_service_mesh_s_names_becomes_the_calls_view(tmp_path: Path):
    path = tmp_path / "calls.csv"
    path.write_text("time,source,destination,direction,latency_s\n"
                    "2024-05-01T10:00:00Z,web,cart,outbound,0.25\n"
                    "2024-05-01T10:00:00Z,web,cart,inbound,0.005\n"
                    "2024-05-01T10:01:00Z,web,cart,sideways,0.005\n")
    store = load_telemetry(calls=path)
    rows = store.fetch("SELECT caller, callee, side, latency_ms FROM calls ORDER BY ts, side").to_pylist()
    assert rows[:2] == [{"caller": "web", "callee": "cart", "side": "client", "latency_ms": 250.0},
                        {"caller": "web", "callee": "cart", "side": "server", "latency_ms": 5.0}]
    assert rows[2]["side"] is None  # neither side: kept, counted, not used
    assert any("'direction': 1 row whose side is none of" in w for w in store.warnings)


def test_sql_queries_the_calls_view_of_a_calls_file(tmp_path: Path):
    # `incidentlens sql --calls` was "No such option: --calls", though the sandbox holds a calls view
    path = tmp_path / "calls.csv"
    path.write_text("time,source,destination,direction,latency_s\n2024-05-01T10:00:00Z,web,cart,outbound,0.25\n")
    ran = run_cli("sql", "--calls", str(path), "--json", "SELECT caller, callee, side, latency_ms FROM calls")
    assert ran.returncode == 0, ran.stderr
    assert json.loads(ran.stdout)["rows"] == [["web", "cart", "client", 250.0]]


def test_a_calls_file_without_a_latency_column_is_a_one_line_error(tmp_path: Path):
    path = tmp_path / "calls.csv"
    path.write_text("ts,caller,callee,side,latency_ms\n2024-05-01T10:00:00Z,web,cart,client,fast\n")
    metrics = _write_metrics(tmp_path / "metrics.csv")
    ran = run_cli("analyze", "--metrics", str(metrics), "--calls", str(path), "--out", str(tmp_path / "out"))
    assert_one_line_error(ran, f"{path}: no numeric latency column", "--map latency=COLUMN")


def test_a_wide_calls_file_a_column_per_edge_is_told_how_to_lay_it_out(tmp_path: Path):
    # Nezha's source_50.csv given as --calls: "no caller column (looked for caller, source, ...)" and nothing more
    path = tmp_path / "source_50.csv"
    path.write_text("time,timestamp,frontend_adservice,frontend_cartservice\n2024-05-01 10:00:00,1714557600,3.1,2.2\n")
    metrics = _write_metrics(tmp_path / "metrics.csv")
    ran = run_cli("analyze", "--metrics", str(metrics), "--calls", str(path), "--out", str(tmp_path / "out"))
    assert_one_line_error(ran, f"{path}: no caller column", "its columns 'frontend_adservice', 'frontend_cartservice',"
                          " ... look like one per call edge: write a row per time and edge instead (time, caller, "
                          "callee, side, latency)")


def test_a_long_calls_file_with_its_own_caller_column_name_is_told_only_to_map_it(tmp_path: Path):
    # a row per time and edge, its caller and callee columns named from_svc and to_svc: its latency_ms and
    # status_code are no call edges, and it needs no other layout
    path = tmp_path / "calls.csv"
    path.write_text("timestamp,from_svc,to_svc,latency_ms,status_code\n2024-05-01T10:00:00Z,a,b,12,200\n")
    metrics = _write_metrics(tmp_path / "metrics.csv")
    ran = run_cli("analyze", "--metrics", str(metrics), "--calls", str(path), "--out", str(tmp_path / "out"))
    assert_one_line_error(ran, f"{path}: no caller column", "use --map caller=COLUMN")
    assert "call edge" not in ran.stderr


def test_a_callee_delayed_on_the_network_is_found_in_call_metrics_alone(tmp_path: Path):
    # the callers' side waits 300 ms longer for cart; cart's own server time and CPU stay flat: no spans at all
    store = load_telemetry(metrics=_write_metrics(tmp_path / "metrics.csv"),
                           calls=_write_calls(tmp_path / "calls.csv", "cart", 300.0, 0.0))
    result = analyze(store, at=AT, onset="at")
    top = result.hypotheses[0]
    assert (top.service, top.kind) == ("cart", "network_delay")
    assert "in the call metrics, its callers waited" in top.mechanism
    # a median of a minute's percentiles over five minutes says how few, as one over few traced calls does
    assert ("(median over 5 minutes of call metrics, the client side's latency less the server side's; at most 2 ms "
            "in 90% of the 120 minutes before)") in top.mechanism and "in the traces" not in top.mechanism
    cited = [e for e in result.evidence if e.id in top.supporting and e.kind == "calls"]
    assert cited and "FROM calls" in cited[0].query
    assert result.sources["used"] == ["metrics", "call metrics"]


def test_investigate_reads_call_metrics_into_the_review(tmp_path: Path):
    store = load_telemetry(metrics=_write_metrics(tmp_path / "metrics.csv"),
                           calls=_write_calls(tmp_path / "calls.csv", "cart", 300.0, 0.0))
    result = investigate(store, llm="offline", at=AT, onset="at")
    loaded = [line for line in result.trace if line.get("tool") == "load_inputs"]
    assert loaded and loaded[0]["error"] is None  # the view has no service column: the called services are counted
    review = result.postmortem
    assert review.root_cause is not None and review.root_cause.service == "cart"
    assert "in the call metrics" in review.root_cause.mechanism


def test_a_callee_slow_on_both_sides_is_no_network_delay(tmp_path: Path):
    # cart is slow in its own work: its server side rises with its callers' side, and the wait between stays
    store = load_telemetry(metrics=_write_metrics(tmp_path / "metrics.csv"),
                           calls=_write_calls(tmp_path / "calls.csv", "cart", 300.0, 300.0))
    result = analyze(store, at=AT, onset="at")
    assert not any(h.kind == "network_delay" for h in result.hypotheses)


def _nezha_day(root: Path, day: str = "2024-05-01") -> Path:
    """A Nezha-layout day: one fault on `cart_v2` (a name with `_`, split by dependency.csv), its pods' metrics and
    the caller's and the callee's side of each call edge, one wide column `<caller>_<callee>` per edge, in seconds."""
    folder = root / "rca_data" / day
    (folder / "metric").mkdir(parents=True)
    (folder / f"{day}-fault_list.json").write_text(json.dumps({"10": [
        {"inject_time": f"{AT:%Y-%m-%d %H:%M:%S}", "inject_pod": "cart_v2-5f6585d649-fnmft",
         "inject_type": "network_delay"}]}))
    (folder / "metric" / "dependency.csv").write_text(
        "Source,Target,Weight\nweb,cart_v2,1\nweb_edge,pay,1\nweb,10.0.0.7,1\n")
    with duckdb.connect() as con:
        con.execute(f"""COPY (SELECT ts AS "time", CAST(epoch(ts) AS BIGINT) AS "timestamp",
                                     k % 3 AS "CpuUsageRate(%)"
                              FROM (SELECT unnest(generate_series(TIMESTAMP '{START}', TIMESTAMP '{END}',
                                                                  INTERVAL 1 MINUTE)) AS ts,
                                           unnest(range(200)) AS k))
                        TO '{folder / "metric" / "cart_v2-5f6585d649-fnmft_metric.csv"}' (HEADER)""")
        for name, delay in (("source_50.csv", 0.3), ("destination_50.csv", 0.0)):
            con.execute(f"""COPY (SELECT ts::VARCHAR || ' +0000 UTC m=+0.66' AS "time",
                                         CAST(epoch(ts) AS BIGINT) AS "timestamp",
                                         0.005 + CASE WHEN ts >= TIMESTAMP '{AT}' THEN {delay} ELSE 0 END
                                             AS web_cart_v2,
                                         0.004 AS web_edge_pay, 0.003 AS frontend
                                  FROM (SELECT unnest(generate_series(TIMESTAMP '{START}', TIMESTAMP '{END}',
                                                                      INTERVAL 1 MINUTE)) AS ts))
                            TO '{folder / "metric" / name}' (HEADER)""")
    return folder


def test_the_nezha_adapter_turns_a_day_s_edge_columns_into_the_calls_table(tmp_path: Path):
    folder = _nezha_day(tmp_path / "nezha")
    cut = CallsCut(folder, tmp_path / "scratch")
    store = load_telemetry(calls=cut.around(AT))
    edges = store.fetch("SELECT caller, callee, side, count(*) AS n FROM calls GROUP BY ALL ORDER BY ALL").to_pylist()
    assert [(e["caller"], e["callee"], e["side"]) for e in edges] == [
        ("web", "cart_v2", "client"), ("web", "cart_v2", "server"),
        ("web_edge", "pay", "client"), ("web_edge", "pay", "server")]
    assert any("(frontend), left out" in note for note in cut.warnings)  # a column naming no listed pair
    assert store.fetch("SELECT max(latency_ms) AS ms FROM calls").to_pylist()[0]["ms"] == pytest.approx(305.0)


def test_eval_nezha_ranks_a_delay_only_the_call_metrics_show_and_not_without_them(tmp_path: Path):
    data = tmp_path / "nezha"
    _nezha_day(data)
    found = evaluate_nezha(data).faults[0]
    assert (found.rank, found.mechanism) == (1, "network_delay")
    assert evaluate_nezha(data, without=["calls"]).faults[0].rank is None


def test_serve_and_mcp_read_call_metrics_as_analyze_does(tmp_path: Path):
    """`serve --calls` (or `calls` under [sources] in its config) and `mcp --calls` open the same calls view: the
    server investigates an alert over what `analyze --calls` reads."""
    from incidentlens.server.settings import Sources, build_settings, check_serve_settings

    calls = str(_write_calls(tmp_path / "calls.csv", slow="cart", client_extra_ms=400, server_extra_ms=0))
    settings = build_settings(None, {"calls": [calls], "metrics": None, "token": None})
    check_serve_settings(settings)  # call metrics alone are telemetry enough to start on
    assert settings.sources.calls == [calls]
    store = Sources(calls=[calls]).open()
    assert "calls" in store.views
    assert store.fetch("SELECT count(DISTINCT callee) AS n FROM calls").to_pylist() == [{"n": 2}]


def _write_slow_callee(metrics_path: Path, calls_path: Path) -> tuple[Path, Path]:
    """api calls store; from AT store takes 300 ms longer in its own work. api waits on it, so api's latency rises
    by as much in the same minute: both services' latency moves at once, and both sides of the edge rise together."""
    with metrics_path.open("w", newline="") as metrics, calls_path.open("w", newline="") as calls:
        out, edge = csv.writer(metrics), csv.writer(calls)
        out.writerow(["ts", "service", "metric", "value"])
        edge.writerow(["ts", "caller", "callee", "side", "latency_ms"])
        for k, t in enumerate(_minutes()):
            extra = 300.0 if t >= AT else 0.0
            store_ms, api_ms = 20.0 + k % 3 + extra, 30.0 + (k + 1) % 3 + extra
            stamp = f"{t:%Y-%m-%dT%H:%M:%S}Z"
            out.writerows([[stamp, "api", "latency_ms", api_ms], [stamp, "store", "latency_ms", store_ms]])
            edge.writerows([[stamp, "api", "store", "client", store_ms + 1.0],
                            [stamp, "api", "store", "server", store_ms]])
    return metrics_path, calls_path


def test_call_metrics_give_the_call_graph_and_the_callee_whose_slowness_its_caller_felt_comes_first(
        tmp_path: Path):
    metrics, calls = _write_slow_callee(tmp_path / "metrics.csv", tmp_path / "calls.csv")
    store = load_telemetry(metrics=metrics, calls=calls)
    graph, evidence = infer_call_graph(store, (AT, END), (START, AT))
    assert [(e.caller, e.callee, e.source) for e in graph.edges] == [("api", "store", "calls")]
    # the evidence names the edges and its query runs on the store again
    assert evidence[0].kind == "calls" and graph.evidence == [evidence[0].id]
    assert store.fetch(evidence[0].query).to_pylist() == [{"caller": "api", "callee": "store", "calls": 126}]
    # both moved at once; the graph says api waits on store, so store explains api and not the other way round
    result = analyze(store, at=AT, onset="at")
    assert [h.service for h in result.hypotheses[:2]] == ["store", "api"]
    graph_ids = {e.id for e in result.evidence if e.title.startswith("call graph from call metrics")}
    assert graph_ids & set(result.hypotheses[0].supporting)
    # without the call metrics nothing orders them, and the caller comes first on its name
    assert analyze(load_telemetry(metrics=metrics), at=AT, onset="at").hypotheses[0].service == "api"
