"""One service, one name: sources that spell a service's name in two cases (`Frontend`, `frontend`) read as one."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from cli_process import run_cli
from incidentlens.telemetry import load_telemetry
from incidentlens.telemetry.servicenames import case_renames

T0 = datetime(2024, 5, 1, 10, 0)


FAILING_FROM = 30  # the minute the front end starts failing half its requests


def _front_metrics(path: Path) -> Path:
    """The front end's success rate as its front-end metric file names it (Nezha's `front_service.csv` says
    `Frontend`), half its requests failing from `FAILING_FROM`, and the cart's CPU, flat."""
    lines = ["ts,service,metric,value"]
    for minute in range(40):
        at = f"{T0 + timedelta(minutes=minute):%Y-%m-%dT%H:%M:%S}Z"
        success = 50 if minute >= FAILING_FROM else 100 - minute % 2 * 0.1
        lines += [f"{at},Frontend,SuccessRate(%),{success}", f"{at},cartservice,cpu,{0.2 + minute % 3 / 100}"]
    path.write_text("\n".join(lines) + "\n")
    return path


def _front_logs(path: Path) -> Path:
    """The front end's logs, which name it as its pods do (`frontend`): a request served every 10 s, failed from
    `FAILING_FROM`."""
    def entry(second: int) -> dict[str, str]:
        failing = second >= FAILING_FROM * 60
        return {"ts": f"{T0 + timedelta(seconds=second):%Y-%m-%dT%H:%M:%S}Z", "service": "frontend",
                "level": "ERROR" if failing else "INFO",
                "message": "request failed: upstream reset" if failing else "request served"}
    path.write_text("".join(json.dumps(entry(second)) + "\n" for second in range(0, 40 * 60, 10)))
    return path


def test_the_lower_case_spelling_is_the_one_kept():
    assert case_renames(["frontend", "Frontend", "cartservice", "Checkout"]) == {"Frontend": "frontend"}


def test_a_service_spelt_in_two_cases_across_files_is_one_service_in_every_view(tmp_path: Path):
    store = load_telemetry(metrics=_front_metrics(tmp_path / "front.csv"), logs=_front_logs(tmp_path / "logs.jsonl"))
    assert sorted(store.fetch("SELECT DISTINCT service FROM metrics").column("service").to_pylist()) == [
        "cartservice", "frontend"]
    assert store.fetch("SELECT DISTINCT service FROM logs").column("service").to_pylist() == ["frontend"]
    assert store.fetch("SELECT count(*) AS n FROM metrics WHERE service = 'frontend'").column("n")[0].as_py() == 40
    assert ("service names that differ only in case, read as one service's: Frontend as frontend"
            in store.warnings)


def test_names_spelt_one_way_are_read_as_written_and_nothing_is_said(tmp_path: Path):
    store = load_telemetry(metrics=_front_metrics(tmp_path / "front.csv"))
    assert sorted(store.fetch("SELECT DISTINCT service FROM metrics").column("service").to_pylist()) == [
        "Frontend", "cartservice"]
    assert not any("differ only in case" in w for w in store.warnings)


def test_a_call_edge_names_its_caller_and_callee_as_the_other_sources_do(tmp_path: Path):
    calls = tmp_path / "calls.csv"
    calls.write_text("time,source,destination,direction,latency_s\n"
                     "2024-05-01T10:00:00Z,Frontend,CartService,outbound,0.25\n")
    store = load_telemetry(calls=calls, logs=_front_logs(tmp_path / "logs.jsonl"))
    assert store.fetch("SELECT caller, callee FROM calls").to_pylist() == [
        {"caller": "frontend", "callee": "CartService"}]  # no `cartservice` is named anywhere: as written


def test_analyze_ranks_the_front_end_once_on_both_its_files(tmp_path: Path):
    # OnlineBoutique 12:10 with its front-end metric file given: `frontend` (its traces) and `cartservice` at 33%
    # each, `Frontend` (the file's success rate from 100% to 54%) third at 0.1%: one service's evidence split in two
    ran = run_cli("analyze", "--metrics", str(_front_metrics(tmp_path / "front.csv")), "--logs",
                  str(_front_logs(tmp_path / "logs.jsonl")), "--at", "2024-05-01T10:30:00Z", "--json")
    assert ran.returncode == 0, ran.stderr
    analysis = json.loads(ran.stdout)
    assert [h["service"] for h in analysis["hypotheses"]][:1] == ["frontend"]
    assert "SuccessRate(%)" in analysis["hypotheses"][0]["mechanism"]  # the metric file's evidence is its own
    said = "read as one service's: Frontend as frontend"
    assert said in ran.stdout and "Frontend" not in ran.stdout.replace(said, "")


def test_names_spelt_only_in_other_cases_are_read_as_the_lower_case_one():
    # no source writes `frontend`: `Frontend` and `FRONTEND` still differ only in case, one service
    assert case_renames(["Frontend", "FRONTEND", "cartservice"]) == {"FRONTEND": "frontend", "Frontend": "frontend"}


def _calls_to_a_cache(path: Path, peer: str) -> Path:
    """The front end's requests, each a server span and under it a client span to the cache its `peer` column names
    (nothing traced there, so the cache's server span is inferred under the call)."""
    lines = ["trace_id,span_id,parent_id,service,operation,start_ts,duration_ms,span_kind,peer"]
    for n in range(10):
        at = f"{T0 + timedelta(seconds=10 * n):%Y-%m-%dT%H:%M:%S}Z"
        lines += [f"t{n},s{n},,frontend,GET /cart,{at},12,server,",
                  f"t{n},c{n},s{n},frontend,GET cart,{at},5,client,{peer}"]
    path.write_text("\n".join(lines) + "\n")
    return path


def test_a_peer_spelt_in_another_case_is_the_service_its_other_sources_name(tmp_path: Path):
    # the calls name the cache `Redis`, its metric file `redis`: the span inferred under each call is `redis`'s
    metrics = tmp_path / "redis.csv"
    metrics.write_text("ts,service,metric,value\n" + "".join(
        f"{T0 + timedelta(minutes=m):%Y-%m-%dT%H:%M:%S}Z,redis,cpu,0.2\n" for m in range(3)))
    store = load_telemetry(metrics=metrics, traces=_calls_to_a_cache(tmp_path / "spans.csv", "Redis"))
    assert store.fetch("SELECT DISTINCT service FROM spans ORDER BY service").column("service").to_pylist() == [
        "frontend", "redis"]
    assert store.fetch("SELECT DISTINCT peer FROM spans WHERE peer IS NOT NULL").column("peer").to_pylist() == [
        "redis"]
    assert "service names that differ only in case, read as one service's: Redis as redis" in store.warnings


def test_a_call_to_a_traced_service_spelt_in_another_case_infers_no_span_under_it(tmp_path: Path):
    # the front end's calls to itself name it `Frontend`: it is traced, so nothing is inferred under them
    store = load_telemetry(traces=_calls_to_a_cache(tmp_path / "spans.csv", "Frontend"))
    assert store.fetch("SELECT DISTINCT service FROM spans").column("service").to_pylist() == ["frontend"]
    assert store.fetch("SELECT count(*) AS n FROM spans WHERE inferred").column("n")[0].as_py() == 0


class _FrontEndSeries:
    """A Prometheus whose series name the front end `Frontend` (its `job` label): its CPU, a sample a minute."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        pass

    def __enter__(self) -> _FrontEndSeries:
        return self

    def __exit__(self, *exc: object) -> None:
        pass

    def query_range(self, query: str, start: datetime, end: datetime, step: int) -> list[dict]:
        samples = [[(T0 + timedelta(minutes=minute)).replace(tzinfo=UTC).timestamp(), "0.2"] for minute in range(40)]
        return [{"metric": {"job": "Frontend", "instance": "10.0.0.1:8080"}, "values": samples}]


def test_prometheus_series_name_the_front_end_as_the_files_do(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    from incidentlens.telemetry import prometheus
    from incidentlens.telemetry.sources import PrometheusOptions, open_store

    monkeypatch.setattr(prometheus, "PrometheusClient", _FrontEndSeries)
    store = open_store(logs=_front_logs(tmp_path / "logs.jsonl"), prometheus=PrometheusOptions(
        url="http://127.0.0.1:9090", promql=["cpu=cpu"], discover=False, step=60))
    assert store.fetch("SELECT DISTINCT service FROM metrics").column("service").to_pylist() == ["frontend"]
    assert "service names that differ only in case, read as one service's: Frontend as frontend" in store.warnings


def test_a_service_named_global_is_not_read_as_the_rows_that_name_none(tmp_path: Path):
    # a file with no service column files its rows under `global` (no service's own): the service `Global` of
    # another file is a service, not those rows
    named, unnamed = tmp_path / "named.csv", tmp_path / "unnamed.csv"
    named.write_text("ts,service,metric,value\n2024-05-01T10:00:00Z,Global,cpu,0.2\n")
    unnamed.write_text("ts,metric,value\n2024-05-01T10:00:00Z,queue_depth,3\n")
    store = load_telemetry(metrics=[named, unnamed])
    assert store.fetch("SELECT DISTINCT service FROM metrics ORDER BY service").column("service").to_pylist() == [
        "Global", "global"]
    assert not any("differ only in case" in w for w in store.warnings)
