"""Generated scenarios: every one writes every format, and its truth.json matches what the data shows."""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta

import duckdb
import pyarrow.csv
import pyarrow.json
import pyarrow.parquet
import pytest

from incidentlens.errors import InputError
from incidentlens.scenarios import generate, list_scenarios

CAUSAL = ["db-pool-exhaustion", "cache-miss-storm", "bad-deploy", "region-outage", "oom-restart-loop",
          "provider-throttling"]
LOG_COLUMNS = ["ts", "service", "region", "host", "version", "level", "endpoint", "trace_id", "user_id", "message"]
READERS = {"csv": pyarrow.csv.read_csv, "parquet": pyarrow.parquet.read_table, "jsonl": pyarrow.json.read_json}


def _truth(directory):
    return json.loads((directory / "truth.json").read_text())


def _time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).replace(tzinfo=None)


def _query(sql: str) -> list[tuple]:
    return duckdb.connect().execute(sql).fetchall()


def test_list_scenarios_names_tutorial_six_causal_faults_and_two_days_without_incident():
    names = [name for name, _ in list_scenarios()]
    assert names == ["seed-tutorial", *CAUSAL, "quiet", "busy-day"]
    assert all(description and "\n" not in description for _, description in list_scenarios())


@pytest.mark.parametrize("fmt", ["csv", "parquet", "jsonl"])
@pytest.mark.parametrize("name", [*CAUSAL, "quiet", "busy-day"])
def test_every_causal_scenario_writes_every_format(scenario_dir, name, fmt):
    out = scenario_dir(name, fmt=fmt, hours=6, logs=5_000)
    assert sorted(p.name for p in out.iterdir()) == sorted(
        [f"metrics.{fmt}", f"logs.{fmt}", f"events.{fmt}", "truth.json"]
    )
    logs = READERS[fmt](out / f"logs.{fmt}")
    metrics = READERS[fmt](out / f"metrics.{fmt}")
    assert logs.column_names == LOG_COLUMNS and logs.num_rows == 5_000
    assert metrics.column_names == ["ts", "service", "metric", "value"]
    assert len(set(metrics.column("ts").to_pylist())) == 6 * 60


def test_text_formats_write_iso_utc_times_with_z(scenario_dir):
    out = scenario_dir("db-pool-exhaustion")
    first_log = (out / "logs.csv").read_text().splitlines()[1]
    first_metric = (out / "metrics.csv").read_text().splitlines()[1]
    assert re.match(r'"2024-05-01T00:00:\d\d\.\d{3}Z",', first_log)
    assert first_metric.startswith('"2024-05-01T00:00:00Z",')


def test_causal_metrics_cover_the_named_metrics_for_about_ten_services(scenario_dir):
    out = scenario_dir("db-pool-exhaustion")
    rows = _query(f"SELECT service, list(DISTINCT metric) FROM read_csv('{out / 'metrics.csv'}') GROUP BY service")
    metrics = {service: set(names) for service, names in rows}
    assert 8 <= len(metrics) <= 12
    assert {"request_rate", "latency_p95_ms", "error_ratio", "cpu_utilization", "memory_mb", "restarts"} <= metrics[
        "checkout"]
    assert "db_pool_utilization" in metrics["db-proxy"] and "cache_hit_ratio" in metrics["cache"]


def _surge_onsets(directory) -> dict[str, datetime]:
    """Per service, the first of two minutes in a row with >= 2 WARN/ERROR lines, from 30 min before the window."""
    truth = _truth(directory)
    start = _time(truth["window"]["start"]) - timedelta(minutes=30)
    end = _time(truth["window"]["end"])
    rows = _query(
        f"""WITH per_minute AS (
                SELECT service, date_trunc('minute', ts::TIMESTAMP) AS minute, count(*) AS n
                FROM read_csv('{directory / 'logs.csv'}')
                WHERE level IN ('WARN', 'ERROR') AND ts::TIMESTAMP BETWEEN '{start}' AND '{end}'
                GROUP BY ALL)
            SELECT a.service, min(a.minute) FROM per_minute a JOIN per_minute b
              ON a.service = b.service AND b.minute = a.minute + INTERVAL 1 MINUTE
            WHERE a.n >= 2 AND b.n >= 2 GROUP BY a.service"""
    )
    return dict(rows)


def _metric_onsets(directory) -> dict[str, datetime]:
    """Per service, the first minute near the window that starts 3 minutes of a health metric > 8 MADs off.

    Health metrics: error ratio, latency and saturation (pool, cache hits, memory, restarts), not the seasonal
    request rate and CPU.
    """
    truth = _truth(directory)
    start, end = _time(truth["window"]["start"]), _time(truth["window"]["end"])
    rows = _query(
        f"""WITH m AS (SELECT ts::TIMESTAMP AS ts, service, metric, value FROM read_csv('{directory / 'metrics.csv'}')
                       WHERE metric NOT IN ('request_rate', 'cpu_utilization')),
            base AS (SELECT service, metric, median(value) AS mid, mad(value) AS spread FROM m
                     WHERE ts < TIMESTAMP '{start}' - INTERVAL 60 MINUTE GROUP BY ALL),
            flagged AS (SELECT service, metric, ts, abs(value - mid) > 8 * spread AS off FROM m JOIN base
                        USING (service, metric)),
            runs AS (SELECT service, ts, off AND lead(off, 1) OVER w AND lead(off, 2) OVER w AS sustained
                     FROM flagged WINDOW w AS (PARTITION BY service, metric ORDER BY ts))
            SELECT service, min(ts) FROM runs
            WHERE sustained AND ts BETWEEN TIMESTAMP '{start}' - INTERVAL 30 MINUTE AND '{end}'
            GROUP BY service"""
    )
    return dict(rows)


@pytest.mark.parametrize("seed", [1, 2])
@pytest.mark.parametrize("name", CAUSAL)
def test_the_root_misbehaves_first_and_its_callers_later(scenario_dir, name, seed):
    out = scenario_dir(name, seed=seed)
    truth = _truth(out)
    root = truth["root_cause"]["service"]
    window_start, window_end = _time(truth["window"]["start"]), _time(truth["window"]["end"])
    assert timedelta(minutes=30) <= window_end - window_start <= timedelta(minutes=200)
    assert window_start >= datetime(2024, 5, 1) + timedelta(hours=24 * 0.2)

    metric_onsets = _metric_onsets(out)
    assert window_start <= metric_onsets[root] <= window_start + timedelta(minutes=3)
    callers = [s for s in truth["affected_services"] if s != root]
    assert callers
    for caller in callers:
        assert metric_onsets.get(caller, window_end) > metric_onsets[root], caller

    log_onsets = _surge_onsets(out)
    assert set(log_onsets) <= set(truth["affected_services"]), "only affected services surge"
    if name == "provider-throttling":  # a third party writes no logs we can read: its caller's lines come after
        assert root not in log_onsets and log_onsets["payments"] > metric_onsets[root]
        return
    assert window_start <= log_onsets[root] <= window_start + timedelta(minutes=12)
    for caller in callers:
        assert log_onsets.get(caller, window_end) > log_onsets[root], caller


def test_quiet_has_no_incident_and_no_sustained_surge(scenario_dir):
    out = scenario_dir("quiet")
    truth = _truth(out)
    assert truth["window"] is None and truth["root_cause"] is None and truth["affected_services"] == []
    (longest,) = _query(
        f"""SELECT coalesce(max(n), 0) FROM (
                SELECT service, date_trunc('minute', ts::TIMESTAMP) AS minute, count(*) AS n
                FROM read_csv('{out / 'logs.csv'}') WHERE level IN ('WARN', 'ERROR') GROUP BY ALL)"""
    )[0]
    # benign bursts reach a handful of lines in a minute; an incident's root writes dozens for an hour or more
    assert longest < 25
    busy_minutes = _query(
        f"""SELECT count(*) FROM (
                SELECT service, date_trunc('minute', ts::TIMESTAMP) AS minute, count(*) AS n
                FROM read_csv('{out / 'logs.csv'}') WHERE level IN ('WARN', 'ERROR') GROUP BY ALL) WHERE n >= 3"""
    )[0][0]
    assert busy_minutes < 15


def test_busy_day_doubles_demand_for_a_while_and_harms_nobody(scenario_dir):
    out = scenario_dir("busy-day", fmt="parquet")
    truth = _truth(out)
    assert truth["window"] is None and truth["root_cause"] is None
    (surge,) = [d for d in truth["distractors"] if d["kind"] == "traffic_surge"]
    start, end = _time(surge["start"]), _time(surge["end"])
    plateau = _between(start + timedelta(minutes=15), end - timedelta(minutes=15))
    hour_before = _between(start - timedelta(minutes=60), start)
    # per metric over all services: the plateau's mean against the hour before's
    ratio = dict(_query(f"""
        SELECT metric, avg(value) FILTER (WHERE {plateau}) / avg(value) FILTER (WHERE {hour_before})
        FROM read_parquet('{out / 'metrics.parquet'}') GROUP BY metric"""))
    assert ratio["request_rate"] > 1 + 0.8 * surge["extra_traffic"] and ratio["cpu_utilization"] > 1.4
    assert 0.85 < ratio["error_ratio"] < 1.15 and ratio["latency_p95_ms"] < 1.1
    # more requests, more log lines per minute
    plateau_minutes = (end - start).total_seconds() / 60 - 30
    (lines,) = _query(f"""
        SELECT (count(*) FILTER (WHERE {plateau}) / {plateau_minutes}) / (count(*) FILTER (WHERE {hour_before}) / 60)
        FROM read_parquet('{out / 'logs.parquet'}')""")[0]
    assert lines > 1.4


def _between(start: datetime, end: datetime) -> str:
    return f"ts >= TIMESTAMP '{start}' AND ts < TIMESTAMP '{end}'"


@pytest.mark.parametrize("name", ["db-pool-exhaustion", "quiet"])
def test_benign_spikes_and_bursts_sit_outside_the_window_and_show_in_the_data(scenario_dir, name):
    out = scenario_dir(name)
    truth = _truth(out)
    spikes = [d for d in truth["distractors"] if d["kind"] == "spike"]
    bursts = [d for d in truth["distractors"] if d["kind"] == "error_burst"]
    assert len(spikes) >= 3 and len(bursts) >= 2
    if truth["window"]:
        start, end = _time(truth["window"]["start"]), _time(truth["window"]["end"])
        for distractor in spikes + bursts:
            t = _time(distractor.get("t") or distractor["start"])
            assert t < start - timedelta(minutes=30) or t > end + timedelta(minutes=30)
    con = duckdb.connect()
    con.execute(f"CREATE TABLE m AS SELECT ts::TIMESTAMP AS ts, * EXCLUDE (ts) FROM read_csv('{out / 'metrics.csv'}')")
    for spike in spikes:
        service, metric = spike["series"].split("/")
        at, neighbours = con.execute(
            f"""SELECT max(value) FILTER (WHERE ts = '{_time(spike["t"])}'),
                       median(value) FILTER (WHERE ts != '{_time(spike["t"])}')
                FROM m WHERE service = '{service}' AND metric = '{metric}'
                  AND ts BETWEEN TIMESTAMP '{_time(spike["t"])}' - INTERVAL 5 MINUTE
                             AND TIMESTAMP '{_time(spike["t"])}' + INTERVAL 5 MINUTE"""
        ).fetchone()
        assert abs(at - neighbours) > 0.25 * abs(neighbours) or abs(at - neighbours) > 0.02, spike


def test_bad_deploy_is_in_events_and_versions_change_only_at_deploys(scenario_dir):
    out = scenario_dir("bad-deploy")
    truth = _truth(out)
    trigger = truth["trigger"]
    assert trigger["kind"] == "deploy" and trigger["service"] == truth["root_cause"]["service"]
    assert trigger["t"] == truth["window"]["start"]
    events = _query(f"SELECT ts::VARCHAR, service, kind, description FROM read_csv('{out / 'events.csv'}',"
                    " types={'ts': 'VARCHAR'})")
    assert (trigger["t"], trigger["service"], "deploy", trigger["description"]) in events
    changes = _query(
        f"""SELECT service, version, first_seen FROM (
                SELECT service, version, min(ts::TIMESTAMP) AS first_seen FROM read_csv('{out / 'logs.csv'}')
                GROUP BY service, version)
            QUALIFY row_number() OVER (PARTITION BY service ORDER BY first_seen) > 1"""
    )
    deploy_times = {(service, _time(ts)) for ts, service, kind, _ in events if kind in ("deploy", "rollback")}
    assert changes, "the bad deploy changes the root's version"
    for service, _, first_seen in changes:
        assert any(s == service and t <= first_seen <= t + timedelta(minutes=30) for s, t in deploy_times), service


def test_region_outage_errors_stay_in_the_failing_region(scenario_dir):
    out = scenario_dir("region-outage")
    truth = _truth(out)
    region, root = truth["root_cause"]["region"], truth["root_cause"]["service"]
    assert region in ("us-east-1", "eu-west-1", "ap-south-1")
    share = _query(
        f"""SELECT avg((region = '{region}')::INT) FROM read_csv('{out / 'logs.csv'}')
            WHERE level = 'ERROR' AND service = '{root}'
              AND ts::TIMESTAMP BETWEEN '{_time(truth['window']['start'])}' AND '{_time(truth['window']['end'])}'"""
    )[0][0]
    assert share > 0.9


def test_only_the_tutorial_has_an_error_kind_column_and_messages_carry_variables(scenario_dir):
    out = scenario_dir("db-pool-exhaustion")
    distinct, templates = _query(
        f"""SELECT count(DISTINCT message), count(DISTINCT regexp_replace(message, '[0-9a-f]*[0-9][0-9a-f]*', '#', 'g'))
            FROM read_csv('{out / 'logs.csv'}')"""
    )[0]
    assert distinct > 40_000 and 20 <= templates <= 400
    assert "error_kind" not in (out / "logs.csv").read_text().splitlines()[0]


def test_same_seed_same_files_and_different_seeds_differ(tmp_path):
    first = generate("oom-restart-loop", tmp_path / "a", seed=7, logs=3000)
    again = generate("oom-restart-loop", tmp_path / "b", seed=7, logs=3000)
    other = generate("oom-restart-loop", tmp_path / "c", seed=8, logs=3000)
    for role in ("metrics", "logs", "events", "truth"):
        assert first[role].read_bytes() == again[role].read_bytes(), role
    assert first["logs"].read_bytes() != other["logs"].read_bytes()
    assert _truth(tmp_path / "a")["window"] != _truth(tmp_path / "c")["window"]


def test_the_format_changes_only_the_encoding(tmp_path):
    as_csv = generate("region-outage", tmp_path / "csv", seed=4, hours=3, fmt="csv")
    as_parquet = generate("region-outage", tmp_path / "parquet", seed=4, hours=3, fmt="parquet")
    assert as_csv["truth"].read_text() == as_parquet["truth"].read_text()
    from_csv = pyarrow.csv.read_csv(as_csv["logs"]).column("message").to_pylist()
    from_parquet = pyarrow.parquet.read_table(as_parquet["logs"]).column("message").to_pylist()
    assert from_csv == from_parquet


def test_hours_and_logs_options_are_honoured(tmp_path):
    paths = generate("cache-miss-storm", tmp_path, seed=2, hours=6, logs=2_500, fmt="parquet")
    (lines,) = _query(f"SELECT count(*) FROM read_parquet('{paths['logs']}')")[0]
    seconds, steps = _query(
        f"SELECT epoch(max(ts)) - epoch(min(ts)), count(DISTINCT ts) FROM read_parquet('{paths['metrics']}')"
    )[0]
    assert lines == 2_500 and steps == 6 * 60
    assert seconds == 6 * 3600 - 60
    truth = _truth(tmp_path)
    assert _time(truth["window"]["end"]) <= datetime(2024, 5, 1, 6)


@pytest.mark.parametrize(("name", "fmt", "message"), [
    ("no-such", "csv", "unknown scenario 'no-such': choose one of seed-tutorial, db-pool-exhaustion"),
    ("quiet", "xlsx", "unknown format 'xlsx': choose one of csv, parquet, jsonl"),
])
def test_unknown_scenario_or_format_is_an_input_error_naming_the_choices(tmp_path, name, fmt, message):
    with pytest.raises(InputError, match=message):
        generate(name, tmp_path, fmt=fmt)


def test_a_red_herring_deploy_sometimes_lands_just_before_a_non_deploy_incident(scenario_dir):
    near = 0
    for seed in range(1, 6):
        truth = _truth(scenario_dir("db-pool-exhaustion", seed=seed))
        assert truth["trigger"] is None
        start = _time(truth["window"]["start"])
        affected = set(truth["affected_services"])
        for distractor in truth["distractors"]:
            if distractor["kind"] == "deploy" and start - timedelta(minutes=45) <= _time(distractor["t"]) < start:
                assert distractor["service"] not in affected
                near += 1
    assert 1 <= near <= 4


@pytest.mark.parametrize("name", ["seed-tutorial", "region-outage"])
def test_zero_log_lines_writes_metrics_and_an_empty_log_file(tmp_path, name):
    paths = generate(name, tmp_path, hours=2, logs=0, fmt="parquet")
    assert pyarrow.parquet.read_table(paths["logs"]).num_rows == 0
    assert pyarrow.parquet.read_table(paths["metrics"]).num_rows > 0
