"""seed-tutorial reproduces the original tutorial's day: three global series and a log surge in three services."""

from __future__ import annotations

import json

import duckdb
import pytest


def _truth(directory):
    return json.loads((directory / "truth.json").read_text())


def test_tutorial_writes_wide_metrics_logs_and_truth(scenario_dir):
    out = scenario_dir("seed-tutorial")
    assert sorted(p.name for p in out.iterdir()) == ["logs.csv", "metrics.csv", "truth.json"]
    header = (out / "metrics.csv").read_text().splitlines()[0].replace('"', "")
    assert header == "ts,rps,p95_ms,error_rate"
    logs_header = (out / "logs.csv").read_text().splitlines()[0].replace('"', "")
    assert logs_header == "ts,service,region,level,error_kind,endpoint,latency_ms,trace_id,user_id,message"
    assert sum(1 for _ in (out / "logs.csv").open()) - 1 == 9000


def test_tutorial_window_is_62_to_72_percent_of_the_day(scenario_dir):
    truth = _truth(scenario_dir("seed-tutorial"))
    assert truth["window"] == {"start": "2024-05-01T14:53:00Z", "end": "2024-05-01T17:17:00Z"}
    assert truth["affected_services"] == ["api-gateway", "payments", "db-proxy"]


def test_tutorial_metrics_shift_only_inside_the_window(scenario_dir):
    out = scenario_dir("seed-tutorial")
    con = duckdb.connect()
    rows = con.execute(
        f"""SELECT ts::TIMESTAMP >= '2024-05-01 14:53:00' AND ts::TIMESTAMP < '2024-05-01 17:17:00' AS inside,
                   median(p95_ms), median(error_rate), median(rps), max(p95_ms)
            FROM read_csv('{out / "metrics.csv"}') GROUP BY inside ORDER BY inside"""
    ).fetchall()
    (_, p95_out, err_out, rps_out, _), (_, p95_in, err_in, _, peak_in) = rows
    assert p95_out == pytest.approx(180, abs=10) and err_out == pytest.approx(0.006, abs=0.001)
    assert rps_out == pytest.approx(220, abs=25)
    assert p95_in > p95_out + 250 and err_in > err_out + 0.03
    assert peak_in > 600


def test_tutorial_rps_drops_as_the_incident_ramps_up(scenario_dir):
    out = scenario_dir("seed-tutorial")
    before, last = duckdb.connect().execute(
        f"""SELECT avg(rps) FILTER (WHERE ts::TIMESTAMP BETWEEN '2024-05-01 14:33:00' AND '2024-05-01 14:52:00'),
                   avg(rps) FILTER (WHERE ts::TIMESTAMP BETWEEN '2024-05-01 16:57:00' AND '2024-05-01 17:16:00')
            FROM read_csv('{out / "metrics.csv"}')"""
    ).fetchone()
    assert last < before - 50


def test_tutorial_error_logs_surge_in_three_services_during_the_incident(scenario_dir):
    out = scenario_dir("seed-tutorial")
    rates = dict(
        duckdb.connect().execute(
            f"""SELECT service,
                       count(*) FILTER (WHERE inside) / 144.0 / (count(*) FILTER (WHERE NOT inside) / 1296.0)
                FROM (SELECT service, ts::TIMESTAMP BETWEEN '2024-05-01 14:53:00' AND '2024-05-01 17:16:59' AS inside
                      FROM read_csv('{out / "logs.csv"}') WHERE level IN ('WARN', 'ERROR'))
                GROUP BY service"""
        ).fetchall()
    )
    for service in ("api-gateway", "payments", "db-proxy"):
        assert rates[service] > 10, service
    for service in ("auth", "search", "checkout"):
        assert rates[service] < 3, service
