"""Prometheus as a metrics source, against a real Prometheus server with backfilled data."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import httpx
import numpy as np
import pyarrow as pa
import pytest
from typer.testing import CliRunner

from cut_gzip import CUT_SHORT, write_cut_in_half
from incidentlens.analysis.templates import mine_all_templates
from incidentlens.cli import app
from incidentlens.errors import InputError, SourceError
from incidentlens.telemetry import TelemetryStore, load_telemetry
from incidentlens.telemetry.prometheus import (
    MAX_POINTS_PER_SERIES,
    PrometheusAuth,
    PrometheusClient,
    choose_step,
    fetch_metrics,
    parse_promql_options,
)
from incidentlens.telemetry.sources import PrometheusOptions, open_store
from prom_server import TEST_PASSWORD, PromServer, free_port, prometheus_serving

pytestmark = pytest.mark.prometheus

START = datetime(2024, 5, 1)
MINUTES = 600


def synthetic_metrics() -> pa.Table:
    """Two services, a gauge each and a counter, one point a minute for ten hours; checkout slow 07:00-08:00."""
    rng = np.random.default_rng(7)
    minutes = (np.datetime64(START, "ms") + np.arange(MINUTES).astype("timedelta64[m]")).astype("datetime64[ms]")
    blocks = [
        ("checkout", "p95_ms", 180 + rng.normal(0, 5, MINUTES) + np.where(np.arange(MINUTES) // 60 == 7, 150, 0)),
        ("payments", "p95_ms", 90 + rng.normal(0, 3, MINUTES)),
        ("payments", "requests_total", np.cumsum(np.full(MINUTES, 120.0))),
    ]
    return pa.table(
        {
            "ts": np.tile(minutes, len(blocks)),
            "service": np.repeat([b[0] for b in blocks], MINUTES),
            "metric": np.repeat([b[1] for b in blocks], MINUTES),
            "value": np.concatenate([b[2] for b in blocks]),
        }
    )


@pytest.fixture(scope="module")
def source_metrics() -> pa.Table:
    return synthetic_metrics()


@pytest.fixture(scope="module")
def prom(source_metrics: pa.Table, tmp_path_factory: pytest.TempPathFactory) -> Iterator[PromServer]:
    with prometheus_serving(source_metrics, tmp_path_factory.mktemp("prom")) as server:
        yield server


def test_discovered_series_come_back_as_canonical_metrics(prom: PromServer, source_metrics: pa.Table):
    with PrometheusClient(prom.url) as client:
        pulled = fetch_metrics(client, START, START + timedelta(minutes=MINUTES - 1))

    assert pulled.schema.names == ["ts", "service", "metric", "value", "pod"]
    con = duckdb.connect()
    con.register("pulled", pulled)
    con.register("source", source_metrics)
    series = con.sql("SELECT service, metric, count(*) FROM pulled GROUP BY ALL ORDER BY ALL").fetchall()
    assert series == [
        ("checkout", "p95_ms", MINUTES),
        ("payments", "p95_ms", MINUTES),
        ("payments", "requests_total:rate", MINUTES - 1),  # rate() needs two samples: none at the first minute
    ]
    worst_gauge_error = con.execute(
        "SELECT max(abs(p.value - s.value)) FROM pulled p JOIN source s USING (ts, service, metric)"
    ).fetchone()[0]
    assert worst_gauge_error < 1e-9
    # The counter grows 120 a minute: Prometheus's rate() is 2 per second once its window is full.
    rates = con.execute(
        "SELECT min(value), max(value) FROM pulled WHERE metric = 'requests_total:rate' "
        "AND ts >= TIMESTAMP '2024-05-01 01:00:00'"
    ).fetchone()
    assert rates == pytest.approx((2.0, 2.0))


def test_detect_reads_metrics_from_prometheus(prom: PromServer):
    ran = CliRunner().invoke(app, ["detect", "--prometheus", prom.url, "--prom-start", "2024-05-01T00:00:00Z",
                                   "--prom-end", "2024-05-01T09:59:00Z", "--json"])
    assert ran.exit_code == 0, ran.output
    found = json.loads(ran.output)
    assert found["incident_window"]["start"] <= "2024-05-01T07:01:00Z" < found["incident_window"]["end"]
    assert "checkout/p95_ms" in [s["series"] for s in found["detection"]["series"]]


def test_named_promql_queries_become_metrics_named_after_them(prom: PromServer):
    queries = parse_promql_options(["worst_p95=max by (service) (p95_ms)", "fleet_p95=avg(p95_ms)"])
    with PrometheusClient(prom.url) as client:
        pulled = fetch_metrics(client, START, START + timedelta(hours=1), queries=queries, discover=False)

    con = duckdb.connect()
    con.register("pulled", pulled)
    assert con.sql("SELECT DISTINCT service, metric FROM pulled ORDER BY ALL").fetchall() == [
        ("checkout", "worst_p95"),
        ("global", "fleet_p95"),
        ("payments", "worst_p95"),
    ]


def test_the_step_keeps_every_series_under_the_point_limit(prom: PromServer):
    month = timedelta(days=30)
    step = choose_step(START, START + month)
    assert month.total_seconds() / step < MAX_POINTS_PER_SERIES
    # Prometheus itself refuses a range with more points: the chosen step must be accepted over a month.
    with PrometheusClient(prom.url) as client:
        pulled = fetch_metrics(client, START - month + timedelta(hours=10), START + timedelta(hours=10))
    assert pulled.num_rows > 0


def test_a_query_error_carries_prometheus_message(prom: PromServer):
    with PrometheusClient(prom.url) as client, pytest.raises(SourceError, match=r"query_range failed: .*parse"):
        fetch_metrics(client, START, START + timedelta(hours=1), queries={"broken": "rate(p95_ms["}, discover=False)


def test_an_empty_range_says_what_was_looked_for(prom: PromServer):
    with PrometheusClient(prom.url) as client, pytest.raises(SourceError, match="no series with a service"):
        fetch_metrics(client, datetime(2020, 1, 1), datetime(2020, 1, 2))


def test_an_unreachable_server_is_one_line_after_retries():
    client = PrometheusClient(f"http://127.0.0.1:{free_port()}", retries=1, backoff=0.01)
    with client, pytest.raises(SourceError, match=r"unreachable .* after 2 attempts") as raised:
        fetch_metrics(client, START, START + timedelta(hours=1))
    assert "\n" not in str(raised.value)


def test_basic_auth_is_checked_by_a_real_server(
    source_metrics: pa.Table, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    one_hour = source_metrics.slice(0, 60)
    with prometheus_serving(one_hour, tmp_path, basic_auth_user="admin") as server:
        monkeypatch.setenv("PROMETHEUS_PASSWORD", TEST_PASSWORD)
        with PrometheusClient(server.url, PrometheusAuth.from_options(user="admin")) as client:
            assert fetch_metrics(client, START, START + timedelta(minutes=59)).num_rows == 60

        monkeypatch.setenv("PROMETHEUS_PASSWORD", "wrong-password")
        client = PrometheusClient(server.url, PrometheusAuth.from_options(user="admin"))
        with client, pytest.raises(SourceError, match=r"authentication refused \(HTTP 401\)") as raised:
            fetch_metrics(client, START, START + timedelta(minutes=59))
        assert "wrong-password" not in str(raised.value)


def test_basic_auth_needs_the_password_in_the_environment(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv("PROMETHEUS_PASSWORD", raising=False)
    with pytest.raises(InputError, match="PROMETHEUS_PASSWORD"):
        PrometheusAuth.from_options(user="admin")


def test_the_bearer_token_comes_from_the_environment_and_is_never_printed(monkeypatch: pytest.MonkeyPatch):
    seen: list[str | None] = []

    def refuse(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers.get("authorization"))
        return httpx.Response(403, text="forbidden")

    monkeypatch.setenv("PROMETHEUS_TOKEN", "s3cret-token")
    auth = PrometheusAuth.from_options()
    client = PrometheusClient("http://prom.example", auth, transport=httpx.MockTransport(refuse))
    with client, pytest.raises(SourceError, match=r"authentication refused \(HTTP 403\)") as raised:
        fetch_metrics(client, START, START + timedelta(hours=1))
    assert seen == ["Bearer s3cret-token"]
    assert "s3cret" not in str(raised.value)


def test_server_errors_are_retried_with_backoff():
    answers = iter([httpx.Response(503), httpx.Response(502)])

    def flaky(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/series"):
            return next(answers, httpx.Response(200, json={"status": "success", "data": []}))
        return httpx.Response(200, json={"status": "success", "data": {}})

    client = PrometheusClient("http://prom.example", retries=2, backoff=0.01, transport=httpx.MockTransport(flaky))
    with client, pytest.raises(SourceError, match="no series with a service"):
        fetch_metrics(client, START, START + timedelta(hours=1))


@pytest.mark.parametrize("option", ["p95", "=up", "bad name=up", "p95="])
def test_promql_options_must_be_name_equals_query(option: str):
    with pytest.raises(InputError, match="--promql"):
        parse_promql_options([option])


def causal_scenario(scenario_dir: Callable[..., Path], name: str = "db-pool-exhaustion") -> Path:
    from incidentlens.scenarios import list_scenarios

    if name not in {scenario for scenario, _ in list_scenarios()}:
        pytest.skip(f"scenario {name} is not available yet")
    return scenario_dir(name)


def analysis_or_skip() -> Callable[..., object]:
    try:
        from incidentlens.analysis import analyze
    except (ImportError, AttributeError):
        pytest.skip("incidentlens.analysis.analyze is not available yet")
    return analyze


@pytest.mark.slow
def test_the_investigation_through_prometheus_finds_the_same_root_cause(
    scenario_dir: Callable[..., Path], tmp_path: Path
):
    analyze = analysis_or_skip()
    data = causal_scenario(scenario_dir)
    truth = json.loads((data / "truth.json").read_text())
    others = {"logs": data / "logs.csv", "events": data / "events.csv" if (data / "events.csv").exists() else None}
    from_files = load_telemetry(metrics=data / "metrics.csv", **others)
    canonical = "SELECT ts, service, metric, value FROM metrics ORDER BY ALL"

    with prometheus_serving(from_files.fetch(canonical), tmp_path / "prom") as server:
        through_prometheus = open_store(**others, prometheus=PrometheusOptions(url=server.url))
        assert through_prometheus.fetch(canonical).equals(from_files.fetch(canonical))
        command = ["analyze", "--prometheus", server.url, "--logs", str(others["logs"]), "--out", str(tmp_path)]
        if others["events"]:
            command += ["--events", str(others["events"])]
        ran = CliRunner().invoke(app, command)
    expected = analyze(from_files).to_dict()

    assert ran.exit_code == 0, ran.output
    found = json.loads((tmp_path / "analysis.json").read_text())
    assert found["hypotheses"][0]["service"] == expected["hypotheses"][0]["service"] == truth["root_cause"]["service"]
    assert found["incident_window"] == expected["incident_window"]


def test_the_cli_says_in_one_line_when_prometheus_is_unreachable(tmp_path: Path):
    completed = subprocess.run(
        [sys.executable, "-c", "from incidentlens.cli import main; main()", "analyze",
         "--prometheus", f"http://127.0.0.1:{free_port()}", "--prom-start", "2024-05-01T00:00:00Z",
         "--prom-end", "2024-05-01T06:00:00Z", "--out", str(tmp_path)],
        capture_output=True, text=True, check=False, timeout=60,
    )
    assert completed.returncode == 2
    assert completed.stderr.startswith("error: Prometheus at http://127.0.0.1:")
    assert "unreachable" in completed.stderr
    assert completed.stderr.count("\n") == 1


class _Series:
    """A Prometheus answering any query with these series (labels, level), three samples a minute apart each."""

    def __init__(self, *series: tuple[dict[str, str], float]):
        self.series = series

    def query_range(self, query: str, start: datetime, end: datetime, step: int) -> list[dict]:
        return [{"metric": labels,
                 "values": [[START.replace(tzinfo=UTC).timestamp() + 60 * i, str(level)] for i in range(3)]}
                for labels, level in self.series]


def _pulled(prometheus: _Series) -> TelemetryStore:
    pulled = fetch_metrics(prometheus, START, START + timedelta(minutes=2), queries={"cpu": "cpu"}, discover=False,
                           step=60)
    store = TelemetryStore()
    store.add_arrow("metrics", pulled, "prometheus cpu")
    return store


def test_a_series_pod_label_is_its_pod_and_leaves_the_metric_its_name():
    store = _pulled(_Series(({"app": "cart", "pod": "cart-7d4b9c6f5d-a1b2c", "instance": "10.0.0.1:8080"}, 0.2),
                            ({"app": "cart", "pod": "cart-7d4b9c6f5d-x9y8z", "instance": "10.0.0.1:8080"}, 0.5)))
    rows = store.fetch("SELECT service, metric, pod, count(*) AS n FROM metrics GROUP BY ALL ORDER BY pod")
    assert rows.to_pylist() == [
        {"service": "cart", "metric": "cpu", "pod": "cart-7d4b9c6f5d-a1b2c", "n": 3},
        {"service": "cart", "metric": "cpu", "pod": "cart-7d4b9c6f5d-x9y8z", "n": 3}]


def test_without_a_pod_label_each_scrape_target_is_a_replica_of_its_own():
    # at each step the two targets' samples would otherwise be averaged into one value (0.55)
    store = _pulled(_Series(({"job": "cart", "instance": "10.0.0.1:8080"}, 0.2),
                            ({"job": "cart", "instance": "10.0.0.2:8080"}, 0.9)))
    rows = store.fetch("SELECT service, metric, pod, round(avg(value), 3) AS level FROM metrics GROUP BY ALL "
                       "ORDER BY pod")
    assert rows.to_pylist() == [
        {"service": "cart", "metric": "cpu", "pod": "10.0.0.1:8080", "level": 0.2},
        {"service": "cart", "metric": "cpu", "pod": "10.0.0.2:8080", "level": 0.9}]


def test_a_pod_label_names_the_service_a_series_of_another_job_is_about():
    # kube-state-metrics' readiness of two workloads' pods: without a service or app label the job is only who
    # scraped it, and each pod's readiness is its own service's
    ready = {"job": "kube-state-metrics", "namespace": "shop", "condition": "true"}
    store = _pulled(_Series(({**ready, "pod": "cart-7d4b9c6f5d-a1b2c"}, 1.0),
                            ({**ready, "pod": "checkout-5c8d7e6f4a-n3w4p"}, 1.0)))
    rows = store.fetch("SELECT DISTINCT service, pod FROM metrics ORDER BY service")
    assert rows.to_pylist() == [{"service": "cart", "pod": "cart-7d4b9c6f5d-a1b2c"},
                                {"service": "checkout", "pod": "checkout-5c8d7e6f4a-n3w4p"}]


def saved_answer(path: Path, result_type: str = "matrix", status: str = "success") -> Path:
    """What `curl -s 'http://prometheus:9090/api/v1/query_range?...' > path` saves."""
    start = datetime(2024, 5, 1, 10, 0, tzinfo=UTC).timestamp()
    result = [
        {"metric": {"__name__": "http_p95_ms", "service": "checkout", "instance": "10.0.0.1:9090", "code": "200"},
         "values": [[start + 60 * i, f"{120 + i}.5"] for i in range(3)]},
        {"metric": {"pod": "payments-7d9f8b6c5d-x2x9q"}, "values": [[start, "0.25"]]},  # a PromQL expression
    ]
    path.write_text(json.dumps({"status": status, "data": {"resultType": result_type, "result": result}}))
    return path


def test_a_saved_query_range_answer_reads_as_metrics_as_the_server_does(tmp_path: Path) -> None:
    # read as JSON records it was "no time column ...; use --map time=COLUMN", which no column could answer
    store = load_telemetry(metrics=saved_answer(tmp_path / "error_ratio.json"))

    rows = store.fetch("SELECT ts, service, metric, value, pod FROM metrics ORDER BY service, ts").to_pylist()

    assert rows == [
        {"ts": datetime(2024, 5, 1, 10, 0), "service": "checkout", "metric": 'http_p95_ms{code="200"}',
         "value": 120.5, "pod": "10.0.0.1:9090"},
        {"ts": datetime(2024, 5, 1, 10, 1), "service": "checkout", "metric": 'http_p95_ms{code="200"}',
         "value": 121.5, "pod": "10.0.0.1:9090"},
        {"ts": datetime(2024, 5, 1, 10, 2), "service": "checkout", "metric": 'http_p95_ms{code="200"}',
         "value": 122.5, "pod": "10.0.0.1:9090"},
        {"ts": datetime(2024, 5, 1, 10, 0), "service": "payments", "metric": "error_ratio", "value": 0.25,
         "pod": "payments-7d9f8b6c5d-x2x9q"},
    ]


def test_a_saved_answers_sample_that_is_no_number_is_counted_and_named_by_its_row(tmp_path: Path) -> None:
    # a value that is no number refused the whole answer ("a series of another shape (ValueError: could not convert
    # string to float: 'abc')"), a time past what a timestamp holds too ("cannot read as table: Could not convert
    # Timestamp to higher precision"), naming neither
    answer = json.loads(saved_answer(tmp_path / "answer.json").read_text())
    answer["data"]["result"][0]["values"][1][1] = "abc"
    answer["data"]["result"][0]["values"][2][0] = 1e13
    path = tmp_path / "edited.json"
    path.write_text(json.dumps(answer))

    store = load_telemetry(metrics=path)

    assert store.fetch("SELECT service, value FROM metrics ORDER BY service, ts").to_pylist() == [
        {"service": "checkout", "value": 120.5}, {"service": "checkout", "value": None},
        {"service": "payments", "value": 0.25}]
    assert store.warnings == [
        f"{path}: column 'value': 1 row not numeric, kept as NULL; the first, row 2: 'abc'",
        f"{path}: column 'ts': 1 row with a bad time left out; the first, row 3: cannot parse 10000000000000.0 as a "
        "time (the column's other values read as epoch s)"]


@pytest.mark.parametrize(("result_type", "status", "says"), [
    ("vector", "success", "a vector answer, not a matrix one: save the answer of Prometheus' /api/v1/query_range "
                          "instead"),
    ("matrix", "error", "an API answer with status 'error': no data"),
])
def test_a_saved_answer_that_holds_no_range_is_one_line(tmp_path: Path, result_type: str, status: str,
                                                        says: str) -> None:
    path = saved_answer(tmp_path / "answer.json", result_type, status)
    with pytest.raises(InputError) as refused:
        load_telemetry(metrics=path)
    assert str(refused.value) == f"{path}: {says}"


def test_a_saved_answer_whose_query_matched_nothing_says_so_in_one_line(tmp_path: Path) -> None:
    # it was "no rows (the file is empty or has only a header)", of a file that is neither
    path = tmp_path / "answer.json"
    path.write_text(json.dumps({"status": "success", "data": {"resultType": "matrix", "result": []}}))

    completed = subprocess.run(
        [sys.executable, "-c", "from incidentlens.cli import main; main()", "detect", "--metrics", str(path)],
        capture_output=True, text=True, check=False, timeout=60,
    )
    assert completed.returncode == 2
    assert completed.stderr == (f"error: {path}: a Prometheus answer with no series (its query matched none over "
                                "its range)\n")


def test_a_saved_answer_whose_series_hold_no_samples_says_so(tmp_path: Path) -> None:
    # it was "no rows (the file is empty or has only a header)", of a JSON answer with no header
    path = tmp_path / "answer.json"
    path.write_text(json.dumps({"status": "success", "data": {"resultType": "matrix", "result": [
        {"metric": {"__name__": "up", "service": "api"}, "values": None}]}}))
    with pytest.raises(InputError) as refused:
        load_telemetry(metrics=path)
    assert str(refused.value) == f"{path}: a Prometheus answer whose 1 series hold no samples"


def test_a_saved_answer_given_as_logs_is_named(tmp_path: Path) -> None:
    path = saved_answer(tmp_path / "answer.json")
    with pytest.raises(InputError) as refused:
        load_telemetry(logs=path)
    assert str(refused.value) == f"{path}: holds Prometheus metrics: pass it with --metrics"


def saved_loki_answer(path: Path, level_label: str | None) -> Path:
    """What `curl -s 'http://loki:3100/loki/api/v1/query_range?query={service_name="payments"}' > path` saves: the
    newest line first, a label set per stream."""
    start_ns = int(datetime(2024, 5, 1, 10, 0, tzinfo=UTC).timestamp()) * 10**9
    labels = {"service_name": "payments", "pod": "payments-7d9f8b6c5d-x2x9q",
              **({"detected_level": level_label} if level_label else {})}
    values = [[str(start_ns + 10**9), '{"level":"error","msg":"card declined"}'],
              [str(start_ns), "INFO card charged"]]
    path.write_text(json.dumps({"status": "success", "data": {"resultType": "streams", "stats": {},
                                                              "result": [{"stream": labels, "values": values}]}}))
    return path


@pytest.mark.parametrize(("level_label", "levels"), [
    (None, ["INFO", "ERROR"]),  # read from each line: its level word, its JSON field
    ("warn", ["WARN", "WARN"]),  # the stream's label, as a level column
])
def test_a_saved_loki_answer_reads_as_logs(tmp_path: Path, level_label: str | None, levels: list[str]) -> None:
    # it was "holds Prometheus metrics", and before that "no time column"
    path = saved_loki_answer(tmp_path / "loki.json", level_label)

    rows = load_telemetry(logs=path).fetch("SELECT ts, service, level, message FROM logs ORDER BY ts").to_pylist()

    assert rows == [
        {"ts": datetime(2024, 5, 1, 10, 0), "service": "payments", "level": levels[0],
         "message": "INFO card charged"},
        {"ts": datetime(2024, 5, 1, 10, 0, 1), "service": "payments", "level": levels[1], "message": "card declined"},
    ]
    with pytest.raises(InputError, match="holds Loki log lines: pass it with --logs"):
        load_telemetry(metrics=path)


def test_a_null_line_of_a_saved_loki_answer_is_no_text_and_counted(tmp_path: Path) -> None:
    # it read as the text 'None'
    answer = json.loads(saved_loki_answer(tmp_path / "loki.json", None).read_text())
    answer["data"]["result"][0]["values"][1][1] = None
    path = tmp_path / "null.json"
    path.write_text(json.dumps(answer))

    store = load_telemetry(logs=path)

    assert store.fetch("SELECT message FROM logs ORDER BY ts").column("message").to_pylist() == [None,
                                                                                                   "card declined"]
    assert store.warnings == [f"{path}: column 'message': 1 row empty or absent, kept with no message"]


def test_the_templates_of_a_saved_loki_answer_are_mined_with_each_lines_place(tmp_path: Path) -> None:
    # `incidentlens templates --logs loki.json` failed with a traceback: its lines say no file and line of their own;
    # then lines.csv left their file empty. A line is numbered in the order the answer gives them.
    path = saved_loki_answer(tmp_path / "loki.json", None)

    mined = mine_all_templates(load_telemetry(logs=path))

    assert mined.templates.column("count").to_pylist() == [1, 1]
    assert mined.lines.select(["file", "line"]).to_pylist() == [{"file": str(path), "line": 1},
                                                                 {"file": str(path), "line": 2}]


@pytest.mark.parametrize("bad", ["99999999999999999999999", "garbage"], ids=["past nanoseconds", "no number"])
def test_a_saved_loki_answers_bad_time_is_left_out_and_named_by_its_number(tmp_path: Path, bad: str) -> None:
    # an OverflowError's traceback before; then the whole answer refused, "a stream of another shape (OverflowError:
    # Python int too large to convert to C long)", naming no line
    answer = json.loads(saved_loki_answer(tmp_path / "loki.json", None).read_text())
    answer["data"]["result"][0]["values"] += [[bad, "ERROR when?"], answer["data"]["result"][0]["values"][0]]
    path = tmp_path / "late.json"
    path.write_text(json.dumps(answer))

    store = load_telemetry(logs=path)

    assert store.fetch("SELECT count(*) AS n FROM logs").to_pylist() == [{"n": 3}]
    assert store.warnings == [f"{path}: column 'ts': 1 row with a bad time left out; the first, row 3: cannot parse "
                              f"{bad!r} as a time (the column's other values read as epoch ns)"]


def test_a_saved_loki_answers_time_before_1678_is_left_out_and_named_by_its_number(tmp_path: Path) -> None:
    # a traceback: the error path read the answer as JSON records ('Referenced column "ts" not found')
    answer = json.loads(saved_loki_answer(tmp_path / "loki.json", None).read_text())
    answer["data"]["result"][0]["values"].append(["-9223372036854775000", "ERROR long ago"])
    path = tmp_path / "early.json"
    path.write_text(json.dumps(answer))

    store = load_telemetry(logs=path)

    assert store.fetch("SELECT count(*) AS n FROM logs").to_pylist() == [{"n": 2}]
    assert store.warnings == [f"{path}: column 'ts': 1 row with a bad time left out; the first, row 3: "
                              "'-9223372036854775000' is a time outside the years 1678-2261"]


def test_a_gzipped_loki_answer_cut_short_is_one_line(tmp_path: Path) -> None:
    # one document, nothing readable before the cut: an EOFError's traceback before
    answer = json.loads(saved_loki_answer(tmp_path / "loki.json", None).read_text())
    answer["data"]["result"][0]["values"] *= 200
    path = tmp_path / "loki.json.gz"
    write_cut_in_half(path, json.dumps(answer))

    with pytest.raises(InputError) as refused:
        load_telemetry(logs=path)
    assert str(refused.value) == f"{path}: cannot read as an API answer: {CUT_SHORT}"


def test_a_saved_loki_answer_with_each_lines_metadata_reads_as_logs(tmp_path: Path) -> None:
    # Loki 3 answers a client asking for categorised labels with [ns, line, metadata]: it was "a stream of another
    # shape"
    answer = json.loads(saved_loki_answer(tmp_path / "loki.json", None).read_text())
    for value in answer["data"]["result"][0]["values"]:
        value.append({"structuredMetadata": {"trace_id": "4bf92f35"}})
    path = tmp_path / "loki3.json"
    path.write_text(json.dumps(answer))

    rows = load_telemetry(logs=path).fetch("SELECT ts, service, message FROM logs ORDER BY ts").to_pylist()

    assert rows == [
        {"ts": datetime(2024, 5, 1, 10, 0), "service": "payments", "message": "INFO card charged"},
        {"ts": datetime(2024, 5, 1, 10, 0, 1), "service": "payments", "message": "card declined"},
    ]


@pytest.mark.parametrize("option", ["metrics", "logs"])
def test_a_saved_error_answer_says_the_servers_error(tmp_path: Path, option: str) -> None:
    # Prometheus' (and Loki's) failed query has no data: it was "no time column ...; its columns: status, errorType,
    # error", and then, of a Loki query's failure given with --logs, "holds Prometheus metrics: pass it with --metrics"
    path = tmp_path / "answer.json"
    path.write_text(json.dumps({"status": "error", "errorType": "bad_data",
                                "error": 'invalid parameter "query": 1:5: parse error'}))

    with pytest.raises(InputError) as refused:
        load_telemetry(**{option: path})
    assert str(refused.value) == (f"{path}: an API answer with status 'error': invalid parameter \"query\": 1:5: "
                                  "parse error")
