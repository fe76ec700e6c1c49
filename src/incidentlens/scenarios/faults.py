"""The causal faults: where each one starts, how it moves the metrics, and what the services log about it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from incidentlens.scenarios import logtext
from incidentlens.scenarios.messages import Template


@dataclass(frozen=True)
class Effect:
    """How a metric moves at full strength: `mul` scales it by (1 + amount), `add` adds amount, `to` moves it there."""

    mode: str
    amount: float


@dataclass(frozen=True)
class Fault:
    """One mechanism: its root service (one of `roots`, chosen by seed) misbehaves first, its callers later.

    `max_hops` limits how far up the call graph it spreads; `regional` confines it to one region; `pulsed` makes
    the harm come in bursts (a restart loop); `deploy` starts it with a deploy and ends it with a rollback;
    `downstream` is a callee the root overloads (a cache-miss storm lands on the database).
    """

    scenario: str
    kind: str
    description: str
    roots: tuple[str, ...]
    root_effects: Mapping[str, Effect]
    caller_effects: Mapping[str, Effect]
    root_logs: tuple[Template, ...]
    caller_logs: tuple[Template, ...]
    max_hops: int = 6
    regional: bool = False
    pulsed: bool = False
    deploy: bool = False
    downstream: str | None = None
    downstream_effects: Mapping[str, Effect] = field(default_factory=dict)
    downstream_logs: tuple[Template, ...] = ()


def _effects(**moves: tuple[str, float]) -> dict[str, Effect]:
    return {metric: Effect(mode, amount) for metric, (mode, amount) in moves.items()}


FAULTS: tuple[Fault, ...] = (
    Fault(
        "db-pool-exhaustion", "connection_pool_exhaustion",
        "db-proxy's connection pool runs dry; queries queue and time out, then its callers fail",
        roots=("db-proxy",),
        root_effects=_effects(db_pool_utilization=("to", 1.0), latency_p95_ms=("to", 3000.0),
                              error_ratio=("add", 0.3), cpu_utilization=("add", 0.1)),
        caller_effects=_effects(latency_p95_ms=("mul", 5.0), error_ratio=("add", 0.2)),
        root_logs=logtext.DB_POOL_ROOT, caller_logs=logtext.DB_POOL_CALLERS,
    ),
    Fault(
        "cache-miss-storm", "cache_miss_storm",
        "a mass key expiry empties the cache; misses hammer the database and slow the cache's callers",
        roots=("cache",),
        root_effects=_effects(cache_hit_ratio=("to", 0.25), latency_p95_ms=("mul", 8.0),
                              error_ratio=("add", 0.06), cpu_utilization=("add", 0.35)),
        caller_effects=_effects(latency_p95_ms=("mul", 3.0), error_ratio=("add", 0.08)),
        root_logs=logtext.CACHE_STORM_ROOT, caller_logs=logtext.CACHE_STORM_CALLERS,
        downstream="db-proxy",
        downstream_effects=_effects(request_rate=("mul", 1.5), db_pool_utilization=("to", 0.92),
                                    latency_p95_ms=("mul", 3.0), cpu_utilization=("add", 0.3)),
        downstream_logs=logtext.CACHE_STORM_DATABASE,
    ),
    Fault(
        "bad-deploy", "bad_deploy",
        "a deploy ships a bug: the service throws on a code path until it is rolled back",
        roots=("checkout", "payments", "search", "auth", "inventory"),
        root_effects=_effects(error_ratio=("add", 0.3), latency_p95_ms=("mul", 0.8), cpu_utilization=("add", 0.1)),
        caller_effects=_effects(error_ratio=("add", 0.2), latency_p95_ms=("mul", 0.3)),
        root_logs=logtext.BAD_DEPLOY_ROOT, caller_logs=logtext.BAD_DEPLOY_CALLERS,
        deploy=True,
    ),
    Fault(
        "region-outage", "region_outage",
        "one region loses a backend; the service fails there only, and so do its callers in that region",
        roots=("db-proxy", "cache", "inventory", "auth"),
        root_effects=_effects(error_ratio=("add", 0.9), latency_p95_ms=("mul", 2.0), request_rate=("mul", -0.5)),
        caller_effects=_effects(error_ratio=("add", 0.6), latency_p95_ms=("mul", 1.5)),
        root_logs=logtext.REGION_OUTAGE_ROOT, caller_logs=logtext.REGION_OUTAGE_CALLERS,
        regional=True,
    ),
    Fault(
        "oom-restart-loop", "oom_restart_loop",
        "a memory leak: the service's pods hit their limit, get OOM-killed and restart, again and again",
        roots=("search", "inventory", "checkout", "auth"),
        root_effects=_effects(error_ratio=("add", 0.4), latency_p95_ms=("mul", 3.0), cpu_utilization=("add", 0.3)),
        caller_effects=_effects(error_ratio=("add", 0.25), latency_p95_ms=("mul", 1.5)),
        root_logs=logtext.OOM_ROOT, caller_logs=logtext.OOM_CALLERS,
        pulsed=True,
    ),
    Fault(
        "provider-throttling", "provider_throttling",
        "the third-party payment provider rate-limits us; only payments, its caller, suffers (it defers captures)",
        roots=("payment-provider",),
        root_effects=_effects(error_ratio=("add", 0.45), latency_p95_ms=("mul", 0.6)),
        caller_effects=_effects(latency_p95_ms=("mul", 2.5), error_ratio=("add", 0.12)),
        root_logs=(), caller_logs=logtext.PROVIDER_CALLERS,
        max_hops=1,
    ),
)
FAULTS_BY_SCENARIO = {fault.scenario: fault for fault in FAULTS}

# what a region outage's root cannot reach, per root
OUTAGE_PEERS = {
    "db-proxy": "pg-primary.{region}.internal:5432",
    "cache": "redis-0.{region}.internal:6379",
    "inventory": "pg-inventory.{region}.internal:5432",
    "auth": "ldap.{region}.internal:636",
}
