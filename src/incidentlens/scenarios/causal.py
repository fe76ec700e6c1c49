"""The causal scenarios (and `quiet`, `busy-day`): a service graph, one fault spreading from its root, and benign
noise; `busy-day` adds a benign surge of demand (more requests and CPU everywhere, nobody harmed)."""

from __future__ import annotations

import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from incidentlens.scenarios.faults import FAULTS_BY_SCENARIO, OUTAGE_PEERS, Fault
from incidentlens.scenarios.incident import IncidentPlan, plan_incident
from incidentlens.scenarios.metrics import (
    TrafficSurge,
    add_error_burst,
    add_spikes,
    add_traffic_surge,
    apply_incident,
    baseline,
    memory_limit_mb,
    metrics_table,
)
from incidentlens.scenarios.output import iso, time_column, write_table, write_truth
from incidentlens.scenarios.servicelogs import Burst, VersionHistory, causal_logs
from incidentlens.scenarios.timegrid import TimeGrid
from incidentlens.scenarios.topology import BY_NAME, REGIONS, SERVICES

DEFAULT_LINES_PER_DAY = 50_000
BUSY_DAY = "busy-day"
KEEP_CLEAR = {"spike": 45, "burst": 45, "deploy": 90, "config_change": 60}  # minutes around the incident


@dataclass(frozen=True)
class Event:
    minute: int
    service: str
    kind: str
    description: str


def generate_causal(
    scenario: str, out_dir: Path, seed: int, hours: float, logs: int | None, fmt: str
) -> dict[str, Path]:
    """Write one causal scenario (or `quiet` when it has no fault)."""
    # the scenario's name joins the seed so that scenarios drawn with the same seed still differ in time and shape
    rng = np.random.default_rng([seed, zlib.crc32(scenario.encode())])
    grid = TimeGrid.for_hours(hours)
    fault = FAULTS_BY_SCENARIO.get(scenario)
    plan = plan_incident(rng, fault, grid) if fault else None
    clear = _free_minutes(grid, plan)

    series = {service.name: baseline(rng, grid, service) for service in SERVICES}
    if plan is not None:
        apply_incident(rng, series, plan)
    spikes = add_spikes(rng, series, _some(rng, clear("spike"), _scaled(rng, 5, 10, grid)))
    bursts = _bursts(rng, grid, clear("burst"))
    for burst in bursts:
        add_error_burst(series[burst.service], burst.start, burst.length, float(rng.uniform(0.02, 0.05)))
    events = _events(rng, grid, plan, clear)
    history = _version_history(rng, grid, events)
    surge = _traffic_surge(rng, grid) if scenario == BUSY_DAY else None
    traffic = surge.traffic(grid.minutes) if surge else None
    if traffic is not None:
        add_traffic_surge(series, traffic)

    lines = logs if logs is not None else round(DEFAULT_LINES_PER_DAY * grid.minutes / 1440)
    paths = {
        "metrics": write_table(metrics_table(grid, series, fmt), out_dir, "metrics", fmt),
        "logs": write_table(
            causal_logs(rng, grid, plan, bursts, history, _constants(rng, plan), lines, fmt, traffic),
            out_dir, "logs", fmt,
        ),
        "events": write_table(_events_table(grid, events, fmt), out_dir, "events", fmt),
    }
    truth = _truth(scenario, seed, grid, plan, events)
    truth["distractors"] = (
        [{"kind": "spike", "t": iso(grid.at(s.minute)), "series": f"{s.service}/{s.metric}"} for s in spikes]
        + [{"kind": "error_burst", "start": iso(grid.at(b.start)), "end": iso(grid.at(b.start + b.length)),
            "service": b.service} for b in bursts]
        + [{"kind": e.kind, "t": iso(grid.at(e.minute)), "service": e.service, "description": e.description}
           for e in events if not _is_trigger(e, plan)]
        + ([{"kind": "traffic_surge", "start": iso(grid.at(surge.start)), "end": iso(grid.at(surge.end)),
             "extra_traffic": round(surge.extra, 2)}] if surge else [])
    )
    paths["truth"] = write_truth(truth, out_dir)
    return paths


def _traffic_surge(rng: np.random.Generator, grid: TimeGrid) -> TrafficSurge:
    """One to two and a half hours of 1.6-2.5x the demand, in the middle half of the range."""
    length = max(20, round(int(rng.integers(60, 151)) * min(1.0, grid.minutes / 1440)))
    start = int(rng.integers(grid.minutes // 4, max(grid.minutes // 4 + 1, 3 * grid.minutes // 4 - length)))
    return TrafficSurge(start, min(grid.minutes, start + length), float(rng.uniform(0.6, 1.5)))


def _scaled(rng: np.random.Generator, low: int, high: int, grid: TimeGrid) -> int:
    """A count drawn for a day, scaled to the range (at least one)."""
    return max(1, round(int(rng.integers(low, high + 1)) * grid.minutes / 1440))


def _some(rng: np.random.Generator, minutes: np.ndarray, count: int) -> np.ndarray:
    """Up to `count` distinct minutes drawn from `minutes`, sorted."""
    return np.sort(rng.choice(minutes, min(count, len(minutes)), replace=False))


def _free_minutes(grid: TimeGrid, plan: IncidentPlan | None) -> Callable[[str], np.ndarray]:
    """A function giving the minutes where a distractor of a kind may go: clear of the incident by its margin.

    Margins shrink with shorter ranges so that a few-hour range still has room for distractors.
    """
    minute = np.arange(grid.minutes)
    edge = min(5, grid.minutes // 20)
    inside_range = (minute >= edge) & (minute < grid.minutes - edge)

    def clear(kind: str) -> np.ndarray:
        if plan is None:
            return minute[inside_range]
        margin = round(KEEP_CLEAR[kind] * min(1.0, grid.minutes / 1440))
        return minute[inside_range & ((minute < plan.start - margin) | (minute >= plan.end + margin))]

    return clear


def _bursts(rng: np.random.Generator, grid: TimeGrid, free: np.ndarray) -> list[Burst]:
    names = [s.name for s in SERVICES if not s.third_party]
    starts = _some(rng, free[free < grid.minutes - 3], _scaled(rng, 2, 3, grid))
    return [Burst(str(rng.choice(names)), int(start), int(rng.integers(1, 4))) for start in starts]


def _events(
    rng: np.random.Generator, grid: TimeGrid, plan: IncidentPlan | None, clear: Callable[[str], np.ndarray]
) -> list[Event]:
    """Benign deploys and config changes away from the incident, plus the bad deploy and its rollback."""
    affected = {impact.service for impact in plan.impacts} if plan else set()
    quiet_services = [s.name for s in SERVICES if not s.third_party and s.name not in affected]
    events = []
    for minute in _some(rng, clear("deploy"), _scaled(rng, 2, 3, grid)).tolist():
        events.append(Event(minute, str(rng.choice(quiet_services)), "deploy", ""))
    for minute in _some(rng, clear("config_change"), _scaled(rng, 1, 2, grid)).tolist():
        service = str(rng.choice(quiet_services))
        events.append(Event(minute, service, "config_change", _config_change(rng, service)))
    if plan is not None and plan.fault.deploy:
        events.append(Event(plan.start, plan.root, "deploy", ""))
        events.append(Event(plan.impacts[0].end, plan.root, "rollback", ""))
    elif plan is not None and rng.random() < 0.5:
        # a red herring: an unrelated service deployed shortly before the incident, as happens on busy days
        events.append(Event(max(0, plan.start - int(rng.integers(10, 41))), str(rng.choice(quiet_services)),
                            "deploy", ""))
    return sorted(events, key=lambda e: e.minute)


def _config_change(rng: np.random.Generator, service: str) -> str:
    """An everyday, harmless configuration change's description."""
    size = int(rng.choice([100, 200, 400]))
    replicas = int(rng.integers(4, 9))
    return str(rng.choice([
        f"raised {service} rate limit for client partner-acme from {size} to {size * 2} rps",
        f"enabled feature flag {service}.new-ui-{int(rng.integers(2, 9))} for {int(rng.choice([5, 10, 25]))}% of users",
        f"raised {service} autoscaler max replicas from {replicas} to {replicas + 2}",
        f"rotated TLS certificate for {service}.internal",
    ]))


def _version_history(rng: np.random.Generator, grid: TimeGrid, events: list[Event]) -> VersionHistory:
    """Each service starts on its own version; a deploy bumps it, a rollback returns to the one before."""
    since: dict[str, list[int]] = {}
    versions: dict[str, list[str]] = {}
    for service in SERVICES:
        major, minor, patch = 1 + int(rng.integers(0, 4)), int(rng.integers(0, 30)), int(rng.integers(0, 12))
        since[service.name], versions[service.name] = [grid.start_ms], [f"v{major}.{minor}.{patch}"]
    for index, event in enumerate(events):
        if event.kind not in ("deploy", "rollback"):
            continue
        own = versions[event.service]
        if event.kind == "rollback":
            new, description = own[-2], f"rollback {event.service} to {own[-2]} (from {own[-1]})"
        else:
            major, minor, patch = (int(part) for part in own[-1][1:].split("."))
            new = f"v{major}.{minor + 1}.0" if rng.random() < 0.5 else f"v{major}.{minor}.{patch + 1}"
            description = f"deploy {event.service} {new} (from {own[-1]})"
        events[index] = Event(event.minute, event.service, event.kind, description)
        since[event.service].append(grid.at(event.minute))
        own.append(new)
    return VersionHistory(since, versions)


def _events_table(grid: TimeGrid, events: list[Event], fmt: str) -> pa.Table:
    return pa.table({
        "ts": time_column(np.array([grid.at(e.minute) for e in events], dtype=np.int64), fmt, with_millis=False),
        "service": pa.array([e.service for e in events], type=pa.string()),
        "kind": pa.array([e.kind for e in events], type=pa.string()),
        "description": pa.array([e.description for e in events], type=pa.string()),
    })


def _constants(rng: np.random.Generator, plan: IncidentPlan | None) -> dict[str, str]:
    """Scenario-wide values the log text quotes: pool size, client timeout, memory limit, the unreachable peer."""
    root = plan.root if plan else "db-proxy"
    region = REGIONS[plan.region] if plan and plan.region is not None else REGIONS[0]
    return {
        "pool_max": str(int(rng.choice([40, 50, 64, 100]))),
        "timeout_ms": str(int(rng.choice([1000, 2000, 3000, 5000]))),
        "mem_limit": str(memory_limit_mb(BY_NAME[root])) if not BY_NAME[root].third_party else "0",
        "peer": OUTAGE_PEERS.get(root, "backend.{region}.internal:443").format(region=region),
    }


def _is_trigger(event: Event, plan: IncidentPlan | None) -> bool:
    return plan is not None and plan.fault.deploy and event.service == plan.root


def _truth(
    scenario: str, seed: int, grid: TimeGrid, plan: IncidentPlan | None, events: list[Event]
) -> dict[str, Any]:
    if plan is None:
        return {"scenario": scenario, "seed": seed, "window": None, "root_cause": None,
                "affected_services": [], "trigger": None}
    fault: Fault = plan.fault
    trigger = None
    if fault.deploy:
        deploy = next(e for e in events if e.kind == "deploy" and e.service == plan.root and e.minute == plan.start)
        trigger = {"kind": "deploy", "t": iso(grid.at(deploy.minute)), "service": deploy.service,
                   "description": deploy.description}
    return {
        "scenario": scenario,
        "seed": seed,
        "window": {"start": iso(grid.at(plan.start)), "end": iso(grid.at(plan.end))},
        "root_cause": {"service": plan.root, "kind": fault.kind,
                       "region": REGIONS[plan.region] if plan.region is not None else None},
        "affected_services": [i.service for i in sorted(plan.impacts, key=lambda i: (i.onset, i.role != "root"))],
        "trigger": trigger,
        "intensity": round(plan.intensity, 3),
    }

