"""Per-service metrics in long form: daily seasonality and noise, the incident's effects, benign one-point spikes."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from incidentlens.scenarios import columns
from incidentlens.scenarios.faults import Effect
from incidentlens.scenarios.incident import IncidentPlan
from incidentlens.scenarios.output import time_column
from incidentlens.scenarios.timegrid import TimeGrid
from incidentlens.scenarios.topology import REGION_SHARE, SERVICES, Service

MEMORY_LIMIT_FACTOR = 1.6


def memory_limit_mb(service: Service) -> int:
    """The pods' memory limit: headroom over the working set, rounded up to 512 MiB."""
    return int(np.ceil(service.memory_mb * MEMORY_LIMIT_FACTOR / 512) * 512)


def baseline(rng: np.random.Generator, grid: TimeGrid, service: Service) -> dict[str, np.ndarray]:
    """A healthy day of one service's metrics."""
    n = grid.minutes
    load = grid.daily_load(peak_hour=float(rng.uniform(13, 17)), amplitude=float(rng.uniform(0.25, 0.4)))
    series = {
        "request_rate": service.request_rate * load * (1 + rng.normal(0, 0.03, n)),
        "latency_p95_ms": service.latency_p95_ms * (1 + 0.15 * (load - 1)) * rng.lognormal(0, 0.06, n),
        "error_ratio": service.error_ratio * (0.7 + 0.3 * load) * rng.gamma(16, 1 / 16, n),
    }
    if service.third_party:  # we only see the provider from our side of the wire
        return series
    series["cpu_utilization"] = service.cpu_utilization * load * (1 + rng.normal(0, 0.04, n))
    series["memory_mb"] = service.memory_mb * (1 + 0.02 * (load - 1)) + rng.normal(0, service.memory_mb * 0.005, n)
    series["restarts"] = np.zeros(n)
    if service.name == "db-proxy":
        series["db_pool_utilization"] = (0.15 + 0.25 * load) * (1 + rng.normal(0, 0.05, n))
    if service.name == "cache":
        series["cache_hit_ratio"] = 0.95 + rng.normal(0, 0.006, n)
    return series


def apply_effect(values: np.ndarray, effect: Effect, level: np.ndarray) -> np.ndarray:
    if effect.mode == "mul":
        return values * (1 + effect.amount * level)
    if effect.mode == "add":
        return values + effect.amount * level
    return values + (effect.amount - values) * level


def apply_incident(rng: np.random.Generator, series: dict[str, dict[str, np.ndarray]], plan: IncidentPlan) -> None:
    """Move every affected service's metrics by its role's effects, at its level over time."""
    fault = plan.fault
    effects_by_role = {"root": fault.root_effects, "caller": fault.caller_effects,
                       "downstream": fault.downstream_effects}
    # a regional fault only touches that region's share of the traffic
    reach = REGION_SHARE[plan.region] if plan.region is not None else 1.0
    for impact in plan.impacts:
        own = series[impact.service]
        for metric, effect in effects_by_role[impact.role].items():
            if metric in own:
                own[metric] = apply_effect(own[metric], effect, impact.level * reach)
    if fault.pulsed:
        _restart_loop(rng, series[plan.root], plan)


def _restart_loop(rng: np.random.Generator, own: dict[str, np.ndarray], plan: IncidentPlan) -> None:
    """Memory climbs to the limit between OOM kills and drops back at each; `restarts` counts the kills."""
    limit = memory_limit_mb(next(s for s in SERVICES if s.name == plan.root))
    root_end = plan.impacts[0].end
    minute = np.arange(len(own["memory_mb"]))
    cycles = np.unique(np.concatenate([[plan.start], plan.kills, [root_end]]))
    cycle = np.clip(np.searchsorted(cycles, minute, side="right") - 1, 0, len(cycles) - 2)
    begin, finish = cycles[cycle], cycles[cycle + 1]
    fill = np.clip((minute - begin) / np.maximum(finish - begin, 1), 0, 1)
    leaking = (minute >= plan.start) & (minute < root_end)
    own["memory_mb"] = np.where(leaking, own["memory_mb"] + (limit - own["memory_mb"]) * fill, own["memory_mb"])
    kills = plan.kills[plan.kills < len(minute)]
    own["restarts"][kills] += rng.integers(1, 4, size=len(kills))


@dataclass(frozen=True)
class Spike:
    minute: int
    service: str
    metric: str


SPIKE_MOVES = {
    "latency_p95_ms": Effect("mul", 3.5),
    "error_ratio": Effect("add", 0.06),
    "request_rate": Effect("mul", 0.9),
    "cpu_utilization": Effect("add", 0.35),
}


def add_spikes(rng: np.random.Generator, series: dict[str, dict[str, np.ndarray]], minutes: np.ndarray) -> list[Spike]:
    """One-point spikes (a GC pause, a scrape glitch) at the given minutes: anomalies that are not incidents."""
    spikes = []
    names = [s.name for s in SERVICES if not s.third_party]
    for minute in minutes.tolist():
        service = str(rng.choice(names))
        metric = str(rng.choice(list(SPIKE_MOVES)))
        values = series[service][metric]
        values[minute] = apply_effect(values[minute : minute + 1], SPIKE_MOVES[metric], np.ones(1))[0]
        spikes.append(Spike(minute, service, metric))
    return spikes


@dataclass(frozen=True)
class TrafficSurge:
    """A benign surge of demand (a campaign, a sale): more requests everywhere, ramping up and down, no harm."""

    start: int
    end: int
    extra: float  # extra traffic at the plateau: 1.0 doubles it

    def traffic(self, minutes: int, ramp: int = 10) -> np.ndarray:
        """Relative traffic per minute: 1 outside the surge, 1 + extra on its plateau, linear ramps between."""
        minute = np.arange(minutes)
        level = np.clip(np.minimum(minute - self.start, self.end - minute) / ramp, 0, 1)
        return 1 + self.extra * level


def add_traffic_surge(series: dict[str, dict[str, np.ndarray]], traffic: np.ndarray) -> None:
    """More demand on every service: requests and CPU scale with it, memory and p95 latency barely move (there is
    headroom), the error ratio stays where it was."""
    for own in series.values():
        own["request_rate"] = own["request_rate"] * traffic
        own["latency_p95_ms"] = own["latency_p95_ms"] * (1 + 0.03 * (traffic - 1))
        if "cpu_utilization" in own:
            own["cpu_utilization"] = own["cpu_utilization"] * traffic
        if "memory_mb" in own:
            own["memory_mb"] = own["memory_mb"] * (1 + 0.01 * (traffic - 1))
        if "db_pool_utilization" in own:
            own["db_pool_utilization"] = own["db_pool_utilization"] * (1 + 0.5 * (traffic - 1))


def add_error_burst(series: dict[str, np.ndarray], start: int, length: int, extra_ratio: float) -> None:
    """A short, benign error burst (a client sending bad requests) in one service's error ratio."""
    series["error_ratio"][start : start + length] += extra_ratio


def metrics_table(grid: TimeGrid, series: dict[str, dict[str, np.ndarray]], fmt: str) -> pa.Table:
    """Long form `ts,service,metric,value`, clipped to each metric's valid range."""
    names = [(service, metric) for service, own in series.items() for metric in own]
    values = np.concatenate([_clip(metric, series[service][metric]) for service, metric in names])
    steps = np.tile(np.arange(grid.minutes), len(names))
    label = np.repeat(np.arange(len(names)), grid.minutes)
    return pa.table({
        "ts": time_column(grid.ms, fmt, with_millis=False).take(pa.array(steps)),
        "service": columns.pick([service for service, _ in names], label),
        "metric": columns.pick([metric for _, metric in names], label),
        "value": np.round(values, 4),
    })


def _clip(metric: str, values: np.ndarray) -> np.ndarray:
    if metric in ("error_ratio", "cpu_utilization", "db_pool_utilization", "cache_hit_ratio"):
        return np.clip(values, 0, 1)
    return np.clip(values, 0, None)
