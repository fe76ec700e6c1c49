"""A hand-written analysis of a database connection-pool exhaustion, and a telemetry store whose metrics match it.

The report tests build on these; the tests here check the fixture is internally consistent (every cited evidence
id exists, every impact number sits in the impact evidence's data) so the report tests rest on a sound input.
"""

from __future__ import annotations

import copy
import datetime as dt
from typing import Any

import numpy as np
import pyarrow as pa

from incidentlens.analysis.evidence import Evidence
from incidentlens.telemetry import TelemetryStore

START = dt.datetime(2024, 5, 1, 10, 12)
END = dt.datetime(2024, 5, 1, 11, 6)
PEAK = dt.datetime(2024, 5, 1, 10, 41)
DEPLOY = dt.datetime(2024, 5, 1, 10, 9, 30)
FIRST_TIMEOUT = dt.datetime(2024, 5, 1, 10, 13, 5)


def iso(moment: dt.datetime) -> str:
    return moment.isoformat() + "Z"


def _evidence() -> dict[str, Evidence]:
    detection = Evidence.make(
        "detection", "Robust detector over 9 series",
        "robust level-shift detector over every metrics series, baseline 2024-05-01 08:00-10:00",
        {"series": [
            {"series": "db-proxy/pool_in_use", "direction": "up", "baseline": 22.0, "peak": 100.0, "shift": 41.3,
             "onset": iso(START)},
            {"series": "payments/error_ratio", "direction": "up", "baseline": 0.004, "peak": 0.187, "shift": 35.2,
             "onset": "2024-05-01T10:15:00Z"},
            {"series": "api-gateway/p95_ms", "direction": "up", "baseline": 180.0, "peak": 2450.0, "shift": 28.9,
             "onset": "2024-05-01T10:16:00Z"},
        ]},
    )
    shift = Evidence.make(
        "metric_shift", "db-proxy pool_in_use pinned at its ceiling",
        "SELECT date_trunc('minute', ts) AS t, max(value) FROM metrics WHERE service = 'db-proxy' "
        "AND metric = 'pool_in_use' GROUP BY 1 ORDER BY 1",
        {"service": "db-proxy", "metric": "pool_in_use", "baseline_median": 22.0, "window_median": 100.0,
         "pool_max": 100, "minutes_at_ceiling": 47},
    )
    contrast = Evidence.make(
        "contrast", "ERROR logs over-represented in region eu-west",
        "SELECT region, count(*) FROM logs WHERE level = 'ERROR' GROUP BY region",
        {"dimension": "region", "value": "eu-west", "window_share": 0.91, "baseline_share": 0.34, "lift": 2.68,
         "p_value": 1.2e-9},
    )
    template = Evidence.make(
        "template", "New log template: connection acquire timeouts",
        "Drain3 over distinct masked messages in the window vs the baseline",
        {"template": "Timeout acquiring connection from pool <*> after <*> ms", "count_window": 812,
         "count_baseline": 0, "first_seen": iso(FIRST_TIMEOUT),
         "samples": ["Timeout acquiring connection from pool main after 5000 ms"]},
    )
    impact = Evidence.make(
        "impact", "Requests and users affected",
        "sum(rps) x 60 x error_ratio per minute over the incident window; distinct user_id in failed requests",
        {"duration_minutes": 54, "requests_total": 162000, "requests_failed": 9234, "users_affected": 1873,
         "peak_error_rate": 0.187, "baseline_error_rate": 0.004, "peak_p95_ms": 2450.0, "baseline_p95_ms": 180.0},
    )
    event = Evidence.make(
        "event", "Deploy of payments v2.3.1 before the onset",
        "SELECT ts, service, kind, description FROM events ORDER BY ts",
        [{"ts": iso(DEPLOY), "service": "payments", "kind": "deploy", "description": "deploy payments v2.3.1"}],
    )
    test = Evidence.make(
        "hypothesis_test", "db-proxy errors precede its callers'",
        "first minute over baseline band per service",
        {"db-proxy": iso(START), "payments": "2024-05-01T10:15:00Z", "api-gateway": "2024-05-01T10:16:00Z",
         "lead_minutes": 3},
    )
    return {e.kind: e for e in (detection, shift, contrast, template, impact, event, test)}


def pool_exhaustion_analysis() -> dict[str, Any]:
    """The analysis.json of a db-proxy pool exhaustion set off by a payments deploy (a fresh copy per call)."""
    ev = _evidence()
    return copy.deepcopy({
        "detected": True, "reason": None,
        "incident_window": {"start": iso(START), "end": iso(END)},
        "baseline_window": {"start": "2024-05-01T08:00:00Z", "end": "2024-05-01T10:00:00Z"},
        "peak": iso(PEAK),
        "detection": {"detector": "robust", "first_anomalous": iso(START), "series": ev["detection"].data["series"],
                      "evidence": [ev["detection"].id]},
        "hypotheses": [
            {"service": "db-proxy", "kind": "connection_pool_exhaustion",
             "mechanism": "db-proxy ran out of database connections: requests queued for the pool and timed out, "
                          "and the services calling it failed behind it",
             "confidence": 0.82, "supporting": [ev["metric_shift"].id, ev["template"].id, ev["hypothesis_test"].id],
             "contradicting": [],
             "test": "if db-proxy were the cause its errors would precede payments': they do, by 3 min",
             "test_passed": True},
            {"service": "payments", "kind": "bad_deploy",
             "mechanism": "a change to payments shortly before the onset (deploy payments v2.3.1) introduced "
                          "failures that propagated to its callers",
             "confidence": 0.41, "supporting": [ev["event"].id], "contradicting": [ev["hypothesis_test"].id],
             "test": "if payments were the cause its errors would precede db-proxy's: they do not",
             "test_passed": False},
        ],
        "contributors": [{**ev["contrast"].data, "evidence": ev["contrast"].id}],
        "templates": [{"template": ev["template"].data["template"], "status": "new", "count_window": 812,
                       "count_baseline": 0, "first_seen": iso(FIRST_TIMEOUT), "services": ["db-proxy", "payments"],
                       "samples": ev["template"].data["samples"], "evidence": ev["template"].id}],
        "impact": {"duration_minutes": 54, "requests_total": 162000, "requests_failed": 9234, "users_affected": 1873,
                   "services_affected": ["db-proxy", "payments", "api-gateway"], "regions_affected": ["eu-west"],
                   "peak_latency": {"metric": "p95_ms", "value": 2450.0, "baseline": 180.0, "at": iso(PEAK)},
                   "peak_error_rate": {"metric": "error_ratio", "value": 0.187, "baseline": 0.004, "at": iso(PEAK)},
                   "evidence": [ev["impact"].id]},
        "trigger": {"kind": "deploy", "t": iso(DEPLOY), "service": "payments",
                    "description": "deploy payments v2.3.1", "evidence": [ev["event"].id]},
        "timeline": [
            {"t": iso(DEPLOY), "event": "deploy payments v2.3.1", "evidence": [ev["event"].id]},
            {"t": iso(START), "event": "first anomalous point: db-proxy/pool_in_use", "evidence": [ev["detection"].id]},
            {"t": iso(FIRST_TIMEOUT), "event": "first 'Timeout acquiring connection' log line",
             "evidence": [ev["template"].id]},
            {"t": "2024-05-01T10:15:00Z", "event": "onset: payments/error_ratio", "evidence": [ev["detection"].id]},
            {"t": iso(PEAK), "event": "peak error ratio in payments", "evidence": [ev["impact"].id]},
        ],
        "evidence": [e.to_dict() for e in ev.values()],
    })


def top_cause_analysis(kind: str, mechanism: str) -> dict[str, Any]:
    """`pool_exhaustion_analysis` with no trigger and its top hypothesis (db-proxy) of another kind and mechanism."""
    analysis = pool_exhaustion_analysis()
    analysis["trigger"] = None
    analysis["hypotheses"][0].update(kind=kind, mechanism=mechanism)
    return analysis


def no_incident_analysis() -> dict[str, Any]:
    checked = Evidence.make("detection", "Robust detector over 6 series", "robust level-shift detector",
                            {"series_checked": 6, "anomalous": 0})
    return {"detected": False, "reason": "no series left its baseline band for 5 minutes or more",
            "incident_window": None,
            "baseline_window": {"start": "2024-05-01T00:00:00Z", "end": "2024-05-01T12:00:00Z"},
            "peak": None, "detection": {"detector": "robust", "first_anomalous": None, "series": [],
                                        "evidence": [checked.id]},
            "hypotheses": [], "contributors": [], "templates": [], "impact": None, "trigger": None, "timeline": [],
            "evidence": [checked.to_dict()]}


def metrics_store() -> TelemetryStore:
    """A telemetry store whose `metrics` view holds series that match the analysis above."""
    store = TelemetryStore()
    store.add_arrow("metrics", metrics_table(), "pool-exhaustion fixture")
    return store


def metrics_table() -> pa.Table:
    """Per-minute series from 06:00 to 14:00 that rise in the incident window and peak at PEAK."""
    minutes = np.arange(np.datetime64("2024-05-01T06:00"), np.datetime64("2024-05-01T14:00"),
                        np.timedelta64(1, "m"))
    t = (minutes - np.datetime64(START)) / np.timedelta64(1, "m")
    duration = (END - START).total_seconds() / 60
    peak_at = (PEAK - START).total_seconds() / 60
    inside = (t >= 0) & (t < duration)
    shape = np.where(inside, np.minimum(1.0, np.exp(-((t - peak_at) / (duration / 2.5)) ** 2) * 1.2), 0.0)
    noise = np.random.default_rng(7).normal(size=(5, minutes.size))
    series = {
        ("db-proxy", "pool_in_use"): np.clip(22 + 2 * noise[0] + np.where(inside, 78, 0), 0, 100),
        ("payments", "error_ratio"): np.clip(0.004 + 0.0008 * noise[1] + 0.183 * shape, 0, 1),
        ("api-gateway", "p95_ms"): 180 + 8 * noise[2] + 2270 * shape,
        ("api-gateway", "rps"): 50 + 2 * noise[3],
    }
    return pa.table({
        "ts": pa.array(np.tile(minutes.astype("datetime64[us]"), len(series)), pa.timestamp("us")),
        "service": [service for service, _ in series for _ in range(minutes.size)],
        "metric": [metric for _, metric in series for _ in range(minutes.size)],
        "value": np.concatenate(list(series.values())),
    })


def test_every_cited_evidence_id_is_in_the_appendix():
    analysis = pool_exhaustion_analysis()
    ids = {e["id"] for e in analysis["evidence"]}
    cited = {i for h in analysis["hypotheses"] for i in h["supporting"] + h["contradicting"]}
    cited |= {i for e in analysis["timeline"] for i in e["evidence"]}
    cited |= set(analysis["impact"]["evidence"]) | set(analysis["trigger"]["evidence"])
    assert cited <= ids


def test_impact_numbers_sit_in_the_impact_evidence():
    analysis = pool_exhaustion_analysis()
    impact_data = next(e["data"] for e in analysis["evidence"] if e["kind"] == "impact")
    for key in ("duration_minutes", "requests_total", "requests_failed", "users_affected"):
        assert analysis["impact"][key] == impact_data[key]


def test_the_store_peaks_inside_the_incident_window():
    store = metrics_store()
    peak = store.fetch("SELECT arg_max(ts, value) AS t FROM metrics WHERE metric = 'error_ratio'")["t"][0].as_py()
    assert START <= peak < END
