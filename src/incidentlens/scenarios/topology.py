"""The system the causal scenarios run on: services, their call graph, regions, pods and versions."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

REGIONS = ("us-east-1", "eu-west-1", "ap-south-1")
REGION_SHARE = np.array([0.5, 0.3, 0.2])


@dataclass(frozen=True)
class Service:
    """A service's baseline at average load; `log_share` is its share of all log lines (0: it writes none)."""

    name: str
    log_share: float
    request_rate: float
    latency_p95_ms: float
    error_ratio: float
    cpu_utilization: float
    memory_mb: float
    endpoints: tuple[str, ...]
    pods_per_region: int = 3
    third_party: bool = False


SERVICES: tuple[Service, ...] = (
    Service("frontend", 0.14, 820, 240, 0.002, 0.35, 900, ("GET /", "GET /product/:id", "GET /cart", "GET /search")),
    Service("api-gateway", 0.16, 790, 180, 0.002, 0.40, 600,
            ("POST /v1/checkout", "GET /v1/search", "POST /v1/login", "GET /v1/cart")),
    Service("auth", 0.08, 310, 35, 0.001, 0.25, 450, ("POST /v1/login", "POST /v1/token/refresh", "GET /v1/session")),
    Service("search", 0.10, 260, 120, 0.002, 0.45, 1800, ("GET /v1/search", "GET /v1/suggest")),
    Service("checkout", 0.09, 95, 260, 0.003, 0.30, 1100, ("POST /v1/checkout", "GET /v1/cart", "PUT /v1/cart/items")),
    Service("payments", 0.08, 60, 420, 0.003, 0.28, 1000, ("POST /v1/charges", "POST /v1/refunds")),
    Service("inventory", 0.07, 140, 45, 0.001, 0.22, 700, ("POST /v1/reservations", "GET /v1/stock/:sku")),
    Service("notifications", 0.04, 40, 90, 0.004, 0.15, 500, ("POST /v1/email", "POST /v1/push"), 2),
    Service("cache", 0.10, 2400, 4, 0.0005, 0.30, 6000, ("GET", "SET", "MGET"), 2),
    Service("db-proxy", 0.14, 900, 12, 0.0008, 0.35, 800, ("query", "transaction"), 2),
    Service("payment-provider", 0.0, 55, 380, 0.004, 0.0, 0.0, ("POST /charges",), 0, third_party=True),
)
BY_NAME = {s.name: s for s in SERVICES}

# (caller, callee, how much the caller depends on the callee: how strongly a fault propagates along the edge)
CALLS: tuple[tuple[str, str, float], ...] = (
    ("frontend", "api-gateway", 1.0),
    ("api-gateway", "auth", 0.9),
    ("api-gateway", "search", 0.8),
    ("api-gateway", "checkout", 0.8),
    ("checkout", "payments", 0.9),
    ("checkout", "inventory", 0.8),
    ("checkout", "notifications", 0.15),  # async: a slow mailer never blocks a checkout
    ("payments", "db-proxy", 0.9),
    ("payments", "payment-provider", 0.9),
    ("inventory", "db-proxy", 0.9),
    ("search", "cache", 0.8),
    ("auth", "cache", 0.6),
    ("cache", "db-proxy", 0.3),  # only misses reach the database
)

# services whose endpoints each go to one callee: the route decides which callee a request (and its error) involves
ROUTES: dict[str, dict[str, str]] = {
    "api-gateway": {"POST /v1/checkout": "checkout", "GET /v1/search": "search", "POST /v1/login": "auth",
                    "GET /v1/cart": "checkout"},
    "checkout": {"POST /v1/checkout": "payments", "GET /v1/cart": "inventory", "PUT /v1/cart/items": "inventory"},
}


def callers_of(name: str) -> list[tuple[str, float]]:
    return [(caller, weight) for caller, callee, weight in CALLS if callee == name]


def callees_of(name: str) -> list[str]:
    return [callee for caller, callee, _ in CALLS if caller == name]


def pod_names(rng: np.random.Generator, service: Service, versions: int) -> list[str]:
    """Kubernetes-style pod names for every (region, version, pod) of a service, in that nested order.

    A deploy creates a new replica set, so each version has its own pod-name hash.
    """
    alphabet = np.array(list("bcdfghjklmnpqrstvwxz2456789"))
    replica_sets = ["".join(rng.choice(alphabet, 9 + int(rng.integers(0, 2)))) for _ in range(versions)]
    return [
        f"{service.name}-{replica_sets[version]}-{''.join(rng.choice(alphabet, 5))}"
        for _ in REGIONS
        for version in range(versions)
        for _ in range(service.pods_per_region)
    ]
