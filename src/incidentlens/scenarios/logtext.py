"""What the causal scenarios' services log: everyday INFO lines, benign warnings, and each fault's own lines.

Placeholders: see `messages`. Columns every line has: `{service}`, `{region}`, `{host}`, `{version}`, `{endpoint}`,
`{user_id}`, `{upstream}` (the callee a caller is talking to); scenario constants: `{pool_max}`, `{timeout_ms}`,
`{mem_limit}`, `{peer}`.
"""

from __future__ import annotations

from incidentlens.scenarios.messages import Template

INFO = "INFO"
WARN = "WARN"
ERROR = "ERROR"

EVERYDAY: dict[str, tuple[Template, ...]] = {
    "frontend": (
        Template(INFO, "{endpoint} 200 {ms:20-400}ms bytes={int:800-64000} session={hex:12}", 5),
        Template(INFO, "Rendered {pick:home|product|cart|search} page in {ms:30-600} ms (ssr)", 3),
        Template(INFO, "Served static bundle app.{hex:8}.js from CDN edge in {ms:2-40} ms", 1),
        Template(INFO, "Health check OK: frontend {version} on {host}, uptime {int:600-900000}s", 0.3),
    ),
    "api-gateway": (
        Template(INFO, "{endpoint} -> {upstream} 200 in {ms:15-400} ms (request {hex:16})", 6),
        Template(INFO, "Authenticated request {hex:16} for user {user_id}", 2),
        Template(INFO, "Rate limit ok for client {pick:web|ios|android|partner-acme} ({int:50-600} tokens left)", 1),
    ),
    "auth": (
        Template(INFO, "Issued access token for user {user_id} (ttl={pick:900|3600}s, kid={hex:8})", 4),
        Template(INFO, "Session {hex:20} validated in {ms:2-40} ms", 4),
        Template(INFO, "Password login succeeded for user {user_id} from 10.{int:0-255}.{int:0-255}.{int:1-254}", 1),
    ),
    "search": (
        Template(INFO, "Query returned {int:0-480} hits in {ms:20-300} ms (index products-v12, shard {int:0-7})", 5),
        Template(INFO, "Suggest '{pick:sho|lap|hea|dre|pho|bag}' -> {int:0-10} results in {ms:3-40} ms", 3),
        Template(INFO, "Cached result set {hex:10} for {int:60-600}s", 1),
    ),
    "checkout": (
        Template(INFO, "Order ord_{hex:12} created for user {user_id}: {int:1-9} items, total {money:5-900} USD", 4),
        Template(INFO, "Cart {hex:10} updated ({int:1-9} items) via {endpoint}", 3),
        Template(INFO, "Stock reserved for order ord_{hex:12} in {ms:10-120} ms", 2),
    ),
    "payments": (
        Template(INFO, "Charge ch_{hex:16} authorized for {money:5-900} USD in {ms:150-900} ms", 5),
        Template(INFO, "Refund re_{hex:14} settled ({money:5-200} USD)", 1),
        Template(INFO, "Provider client {version}: {int:40-120} requests in flight, circuit CLOSED", 0.3),
        Template(INFO, "Payment method pm_{hex:14} tokenized for user {user_id}", 2),
    ),
    "inventory": (
        Template(INFO, "Reservation res_{hex:10} committed for sku SKU-{int:10000-99999} ({int:1-5} units)", 4),
        Template(INFO, "Stock level for sku SKU-{int:10000-99999}: {int:0-900} units", 3),
        Template(INFO, "Released expired reservation res_{hex:10}", 1),
        Template(INFO, "inventory {version} ready: {int:20-64} workers, db pool size {pool_max}", 0.2),
    ),
    "notifications": (
        Template(INFO, "Sent order confirmation to user {user_id} (message id {hex:24})", 4),
        Template(INFO, "Queued push notification for {int:1-40} devices", 2),
        Template(INFO, "Template order_confirmation rendered in {ms:2-30} ms", 1),
    ),
    "cache": (
        Template(INFO, "Accepted connection from 10.{int:0-255}.{int:0-255}.{int:1-254}:{int:30000-60999}", 3),
        Template(INFO, "Evicted {int:1-400} keys (policy allkeys-lru, used_memory={int:4100-5600}mb)", 2),
        Template(INFO, "DB0: {int:800000-1200000} keys ({int:20000-90000} volatile), hit ratio {pct:93-97}%", 2),
        Template(INFO, "Background saving terminated with success ({ms:200-2000} ms)", 1),
    ),
    "db-proxy": (
        Template(INFO, "Query executed on pool primary in {ms:1-40} ms (rows={int:0-200})", 6),
        Template(INFO, "Pool primary stats: active={int:3-15}/{pool_max}, idle={int:5-30}, waiting=0", 2),
        Template(INFO, "Health check OK for backend pg-primary-{int:0-2} ({ms:1-5} ms)", 1),
        Template(INFO, "db-proxy {version} config reloaded: pool primary max={pool_max}, timeout={timeout_ms}ms", 0.1),
    ),
}

# the warnings and errors every healthy service writes now and then: never an incident on their own
BENIGN = (
    Template(WARN, "Slow request {endpoint} took {ms:900-2500} ms", 3),
    Template(WARN, "Client closed connection before response was sent ({ms:100-3000} ms)", 2),
    Template(ERROR, "Request {hex:16} rejected: invalid payload, missing field '{pick:amount|currency|sku}'", 2),
    Template(WARN, "Retrying request {hex:12} (attempt 2/3) after transient error", 1),
)
BENIGN_SHARE = 0.015

CALLER_TIMEOUT = Template(ERROR, "upstream {upstream} timed out after {timeout_ms} ms ({endpoint})", 3)
CALLER_RETRY = Template(WARN, "Retrying call to {upstream} (attempt {int:2-3}/3) after {ms:100-800} ms backoff", 1)
CALLER_BREAKER = Template(WARN, "Circuit breaker OPEN for {upstream} after {int:20-200} failures in 10s", 1)

DB_POOL_ROOT = (
    Template(ERROR, "Timeout acquiring connection from pool primary (active={pool_max}/{pool_max}, "
                    "waiting={int:40-400})", 3),
    Template(WARN, "Pool primary saturated: {int:40-400} requests waiting, longest wait {ms:800-5000} ms", 2),
    Template(ERROR, "Query cancelled after {ms:3000-9000} ms: connection checkout timed out", 1),
)
DB_POOL_CALLERS = (
    CALLER_TIMEOUT,
    CALLER_RETRY,
    Template(ERROR, "Request {hex:16} failed: {upstream} returned 503 Service Unavailable after {ms:1000-4000} ms", 1),
)

CACHE_STORM_ROOT = (
    Template(WARN, "Keyspace misses rising: hit ratio {pct:12-45}% over last 60s ({int:20000-90000} misses/s)", 2),
    Template(WARN, "Expired {int:50000-400000} keys in {ms:80-900} ms (active expire cycle)", 1),
    Template(ERROR, "Command GET timed out after {ms:200-1200} ms ({int:500-5000} pending commands)", 2),
)
CACHE_STORM_DATABASE = (
    Template(WARN, "Pool primary busy: active={int:30-48}/{pool_max}, waiting={int:5-60}", 2),
    Template(WARN, "Slow query on pool primary: {ms:400-3000} ms (SELECT * FROM products WHERE id = $1)", 1),
)
CACHE_STORM_CALLERS = (
    Template(WARN, "Cache miss for {pick:product|session|query}:{hex:8}, falling back to database ({ms:80-900} ms)", 3),
    CALLER_TIMEOUT,
)

BAD_DEPLOY_ROOT = (
    Template(ERROR, "Unhandled exception in {endpoint}: NullPointerException at "
                    "{pick:PricingRules.applyDiscount|CartMapper.toOrder|TaxCalculator.rateFor}(line {int:40-400}) "
                    "[{version}]", 3),
    Template(ERROR, "500 Internal Server Error for {endpoint} (request {hex:16}) in {ms:5-80} ms", 2),
    Template(WARN, "Deserialization of cached entry failed, falling back (schema v{int:7-8})", 1),
)
BAD_DEPLOY_CALLERS = (
    Template(ERROR, "upstream {upstream} returned 500 for {endpoint} in {ms:20-300} ms", 3),
    CALLER_RETRY,
)

REGION_OUTAGE_ROOT = (
    Template(ERROR, "Connection to {peer} refused (zone {region}{pick:a|b|c})", 3),
    Template(WARN, "Health check failed for backend {peer}: no route to host", 2),
    Template(ERROR, "All replicas in {region} unhealthy, rejecting request {hex:16}", 1),
)
REGION_OUTAGE_CALLERS = (
    Template(ERROR, "no healthy upstream for {upstream} in {region}", 3),
    CALLER_BREAKER,
)

OOM_ROOT = (
    Template(WARN, "GC pause {ms:400-4000} ms (G1 Evacuation Pause), heap {pct:90-99}% full", 3),
    Template(ERROR, "java.lang.OutOfMemoryError: Java heap space (heap {int:1900-2047}MB of {mem_limit}MB)", 2),
    Template(ERROR, "Container on {host} terminated: OOMKilled (limit {mem_limit}Mi)", 1),
    Template(INFO, "Starting {service} {version} on {host} (pid 1)", 1),
)
OOM_CALLERS = (
    Template(ERROR, "upstream {upstream} connection reset by peer after {ms:50-2000} ms", 3),
    CALLER_BREAKER,
)

PROVIDER_CALLERS = (
    Template(WARN, "{upstream} responded 429 Too Many Requests (retry-after={int:1-30}s, request {hex:16})", 3),
    Template(ERROR, "Charge ch_{hex:16} failed: {upstream} rate limit exceeded after 3 retries", 2),
    Template(WARN, "Deferred capture queued for charge ch_{hex:16} (queue depth {int:10-900})", 1),
)
