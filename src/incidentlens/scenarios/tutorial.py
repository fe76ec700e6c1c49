"""`seed-tutorial`: the day of the original tutorial — three global series and a log surge in three services.

Wide metrics `ts,rps,p95_ms,error_rate` at one-minute steps: rps ~220 with a daily sine and noise, p95 ~180 ms,
error rate ~0.6%. Between 62% and 72% of the range an incident ramps up linearly: p95 +120..520 ms, error rate
+1..7%, rps -5..80. The logs carry an `error_kind` column (only this scenario has one) and their WARN/ERROR lines
surge in api-gateway, payments and db-proxy during the incident.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from incidentlens.scenarios import columns
from incidentlens.scenarios.messages import Template, choose_templates, render_lines
from incidentlens.scenarios.output import iso, time_column, write_table, write_truth
from incidentlens.scenarios.timegrid import TimeGrid, allocate_lines, spread_within_minutes

WINDOW_FRACTION = (0.62, 0.72)
DEFAULT_LINES_PER_DAY = 9000
SERVICES = ("api-gateway", "payments", "db-proxy", "auth", "search", "checkout")
SERVICE_SHARE = (0.30, 0.14, 0.18, 0.12, 0.14, 0.12)
SURGING = ("api-gateway", "payments", "db-proxy")
REGIONS = ("us-east-1", "eu-west-1", "ap-south-1")
REGION_SHARE = (0.5, 0.3, 0.2)
ENDPOINTS = {
    "api-gateway": ("/api/checkout", "/api/search", "/api/login", "/api/cart"),
    "payments": ("/payments/charge", "/payments/refund"),
    "db-proxy": ("/db/query", "/db/txn"),
    "auth": ("/auth/token", "/auth/refresh"),
    "search": ("/search", "/search/suggest"),
    "checkout": ("/checkout", "/checkout/confirm"),
}

# (template, error_kind): INFO lines have no error kind
NORMAL = (
    (Template("INFO", "{method} {endpoint} 200 in {latency_ms} ms", 6), None),
    (Template("INFO", "handled request {hex:16} for user {user_id} in {latency_ms} ms", 3), None),
    (Template("INFO", "cache refreshed for {endpoint} ({int:20-400} entries)", 1), None),
    (Template("WARN", "slow request {endpoint} took {latency_ms} ms", 0.35), "timeout"),
    (Template("ERROR", "validation failed for {endpoint}: missing field '{pick:user_id|amount|currency}'", 0.12),
     "validation_error"),
    (Template("ERROR", "upstream returned 502 for {endpoint}", 0.06), "upstream_5xx"),
)
INCIDENT = {
    "api-gateway": (
        (Template("ERROR", "upstream returned 503 for {endpoint} after {latency_ms} ms", 3), "upstream_5xx"),
        (Template("WARN", "request to {endpoint} timed out after {latency_ms} ms", 2), "timeout"),
    ),
    "payments": (
        (Template("ERROR", "payment authorization timed out after {latency_ms} ms", 3), "timeout"),
        (Template("WARN", "retrying charge {hex:12} (attempt {int:2-3}/3)", 2), "timeout"),
    ),
    "db-proxy": (
        (Template("ERROR", "db pool exhausted: {int:48-50}/50 connections in use, {int:20-300} waiting", 3),
         "db_pool_exhausted"),
        (Template("WARN", "query waited {latency_ms} ms for a free connection", 2), "db_pool_exhausted"),
    ),
}
TEMPLATES = [template for template, _ in NORMAL] + [t for s in SURGING for t, _ in INCIDENT[s]]
ERROR_KINDS = [kind for _, kind in NORMAL] + [k for s in SURGING for _, k in INCIDENT[s]]


@dataclass(frozen=True)
class Incident:
    """The incident's minutes [start, end), where it is (`inside`) and its linear ramp from 0 to 1."""

    start: int
    end: int
    inside: np.ndarray
    ramp: np.ndarray

    @classmethod
    def on(cls, grid: TimeGrid) -> Incident:
        start, end = (round(f * grid.minutes) for f in WINDOW_FRACTION)
        minute = np.arange(grid.minutes)
        inside = (minute >= start) & (minute < end)
        return cls(start, end, inside, np.where(inside, (minute - start) / max(end - start - 1, 1), 0.0))


def tutorial_metrics(rng: np.random.Generator, grid: TimeGrid, incident: Incident, fmt: str) -> pa.Table:
    window, ramp = incident.inside, incident.ramp
    hour = np.arange(grid.minutes) / 60.0
    rps = 220 + 40 * np.sin(2 * np.pi * (hour - 9) / 24) + rng.normal(0, 8, grid.minutes)
    p95 = 180 + rng.normal(0, 9, grid.minutes)
    error_rate = 0.006 + rng.normal(0, 0.0012, grid.minutes)
    rps -= window * (5 + 75 * ramp)
    p95 += window * (120 + 400 * ramp)
    error_rate += window * (0.01 + 0.06 * ramp)
    return pa.table({
        "ts": time_column(grid.ms, fmt, with_millis=False),
        "rps": np.round(np.clip(rps, 0, None), 2),
        "p95_ms": np.round(np.clip(p95, 1, None), 1),
        "error_rate": np.round(np.clip(error_rate, 0, 1), 5),
    })


def tutorial_logs(rng: np.random.Generator, grid: TimeGrid, incident: Incident, lines: int, fmt: str) -> pa.Table:
    window, ramp = incident.inside, incident.ramp
    load = grid.daily_load(peak_hour=15.0, amplitude=0.18)
    share = np.asarray(SERVICE_SHARE)
    surging = np.isin(SERVICES, SURGING)
    normal_weight = share[:, None] * load[None, :]
    incident_weight = surging[:, None] * share[:, None] * window * (0.6 + 3.0 * ramp)[None, :] * 3.0
    cell = allocate_lines(rng, lines, np.stack([normal_weight, incident_weight]))
    is_incident, rest = np.divmod(cell, len(SERVICES) * grid.minutes)
    service, minute = np.divmod(rest, grid.minutes)
    ts = spread_within_minutes(rng, grid, minute)
    order = np.argsort(ts, kind="stable")
    ts, service, minute, is_incident = ts[order], service[order], minute[order], is_incident[order].astype(bool)

    template = _choose_tutorial_templates(rng, service, is_incident)
    n = len(ts)
    latency = np.exp(rng.normal(np.log(120), 0.45, n)) * (1 + 2.5 * ramp[minute] * window[minute])
    latency = np.where(is_incident, np.exp(rng.uniform(np.log(800), np.log(4000), n)), latency)
    endpoint = _endpoints(rng, service)
    users = columns.zero_padded(np.arange(20_000), 5, prefix="u-")
    row_columns = {
        "endpoint": endpoint,
        "latency_ms": columns.ints(latency),
        "user_id": users.take(pa.array(rng.integers(0, len(users), n))),
        "method": columns.pick(("GET", "POST"), rng.integers(0, 2, n)),
    }
    messages = render_lines(rng, TEMPLATES, template, row_columns)
    return pa.table({
        "ts": time_column(ts, fmt, with_millis=True),
        "service": columns.pick(SERVICES, service),
        "region": columns.pick(REGIONS, rng.choice(len(REGIONS), size=n, p=REGION_SHARE)),
        "level": columns.pick([t.level for t in TEMPLATES], template),
        "error_kind": pa.array(ERROR_KINDS, type=pa.string()).take(pa.array(template)),
        "endpoint": endpoint,
        "latency_ms": np.round(latency).astype(np.int64),
        "trace_id": columns.hex_ids(rng, n),
        "user_id": row_columns["user_id"],
        "message": messages,
    })


def _choose_tutorial_templates(rng: np.random.Generator, service: np.ndarray, is_incident: np.ndarray) -> np.ndarray:
    template = np.empty(len(service), dtype=np.int64)
    normal = ~is_incident
    template[normal] = choose_templates(rng, range(len(NORMAL)), [t.weight for t, _ in NORMAL], int(normal.sum()))
    offset = len(NORMAL)
    for name in SURGING:
        rows = is_incident & (service == SERVICES.index(name))
        options = INCIDENT[name]
        template[rows] = choose_templates(
            rng, range(offset, offset + len(options)), [t.weight for t, _ in options], int(rows.sum())
        )
        offset += len(options)
    return template


def _endpoints(rng: np.random.Generator, service: np.ndarray) -> pa.Array:
    flat = [e for name in SERVICES for e in ENDPOINTS[name]]
    first = np.cumsum([0, *[len(ENDPOINTS[name]) for name in SERVICES]])[:-1]
    count = np.array([len(ENDPOINTS[name]) for name in SERVICES])
    index = first[service] + (rng.random(len(service)) * count[service]).astype(np.int64)
    return columns.pick(flat, index)


def generate_tutorial(out_dir: Path, seed: int, hours: float, logs: int | None, fmt: str) -> dict[str, Path]:
    rng = np.random.default_rng(seed)
    grid = TimeGrid.for_hours(hours)
    lines = logs if logs is not None else round(DEFAULT_LINES_PER_DAY * grid.minutes / 1440)
    incident = Incident.on(grid)
    paths = {
        "metrics": write_table(tutorial_metrics(rng, grid, incident, fmt), out_dir, "metrics", fmt),
        "logs": write_table(tutorial_logs(rng, grid, incident, lines, fmt), out_dir, "logs", fmt),
    }
    truth: dict[str, Any] = {
        "scenario": "seed-tutorial",
        "seed": seed,
        "window": {"start": iso(grid.at(incident.start)), "end": iso(grid.at(incident.end))},
        # the tutorial's surge has no causal order between its services, so it names no single root cause
        "root_cause": None,
        "affected_services": list(SURGING),
        "trigger": None,
    }
    paths["truth"] = write_truth(truth, out_dir)
    return paths
