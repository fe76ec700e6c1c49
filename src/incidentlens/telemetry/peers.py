"""The service on the far side of a client or producer span, named by the span's attributes, and the server span
inferred under such a span when nothing was traced there.

A call to a dependency that is not traced (a database, a cache, an external API, a broker) shows only as the
caller's client span. Tracing backends name the peer from the span's attributes (Jaeger's service graph by
`peer.service`, the OpenTelemetry collector's service graph connector by its `virtual_node_peer_attributes`,
Datadog's inferred services); the OpenTelemetry semantic conventions give the names, the current one before the
one it replaced: `peer.service`; `db.system.name`/`db.system` with `db.namespace`/`db.name` (`postgresql orders`);
`server.address`/`net.peer.name`; the peer's address with its port where that is all there is
(`network.peer.address`/`net.sock.peer.addr`/`net.peer.ip`); the host of `http.host`, `url.full` or `http.url`;
`rpc.service`; and for a producer span `messaging.system`. The readers (OTLP, Jaeger, Zipkin) fill the spans'
`peer` column so (`peer_sql`); a span file may carry it as a column (`peer.service`, `peer`).

`inferred_spans_sql`: under each span with a peer and no child span, a server span of the peer, as long as the
call, marked `inferred`: every analysis then reads the dependency as a callee whose time is its own, and the
caller's span, no longer a leaf, as the wait on a call.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

#: the span id of a span inferred under a client span: the client's id and this suffix
INFERRED_SUFFIX = "-peer"
#: the kinds of span whose far side is another service
CALLING_KINDS = ("client", "producer")


def calling_sql(kind_sql: str) -> str:
    """The condition of a span's kind being one whose far side is another service."""
    return f"{kind_sql} IN ({', '.join(repr(kind) for kind in CALLING_KINDS)})"


def listed_attributes_sql(items_sql: str, key_sql: str, value_sql: str, kind_sql: str) -> str:
    """A calling span's attributes as a list of `{k, v}` (NULL for another kind), made once from a JSON list of
    `items_sql` (its item `a`: `key_sql`, `value_sql`), so each attribute looked for is found in it without parsing
    the JSON again (`listed_attribute_sql`): done per attribute, parsing the span's JSON tripled an OTLP read."""
    pair = f"lambda a: {{'k': {key_sql}, 'v': {value_sql}}}"
    return f"CASE WHEN {calling_sql(kind_sql)} THEN list_transform(CAST({items_sql} AS JSON[]), {pair}) END"


def listed_attribute_sql(attributes: str) -> Callable[[str], str]:
    """The SQL of an attribute's value in a column made by `listed_attributes_sql` (its first, if given twice)."""
    return lambda key: f"list_filter({attributes}, lambda a: a.k = '{key}')[1].v"


def _first(attribute: Callable[[str], str], *keys: str) -> str:
    """The first of the attributes present and not empty."""
    return f"coalesce({', '.join(f'nullif(trim({attribute(key)}), {chr(39) * 2})' for key in keys)})"


def _host(url_sql: str) -> str:
    """A URL's host, without its scheme, port, path or credentials (NULL for no URL)."""
    return f"nullif(regexp_extract({url_sql}, '^(?:[A-Za-z][A-Za-z0-9+.-]*://)?(?:[^@/]*@)?([^/:?#]+)', 1), '')"


def database_sql(system_sql: str, namespace_sql: str | None) -> str:
    """The name of the database a statement calls: its system, with its namespace where there is one
    (`postgresql orders`); NULL without a system."""
    return f"{system_sql} || coalesce(' ' || {namespace_sql}, '')" if namespace_sql else system_sql


def peer_sql(attribute: Callable[[str], str], kind_sql: str, named: Sequence[str] = (),
             addressed: Sequence[str] = ()) -> str:
    """The peer of a client or producer span (NULL for another kind, or no attribute naming it): `attribute(key)`
    is the SQL of the span's attribute `key` as text; `named`, names the format gives before the attributes
    (Zipkin's `remoteEndpoint.serviceName`); `addressed`, addresses with their port it gives beside the
    attributes' (Zipkin's `remoteEndpoint`)."""
    database = _first(attribute, "db.system.name", "db.system")
    namespace = _first(attribute, "db.namespace", "db.name")
    port = _first(attribute, "network.peer.port", "net.sock.peer.port", "net.peer.port", "server.port")
    address = _first(attribute, "network.peer.address", "net.sock.peer.addr", "net.peer.ip")
    names = [
        *named,
        _first(attribute, "peer.service"),
        database_sql(database, namespace),
        _first(attribute, "server.address", "net.peer.name"),
        f"{address} || coalesce(':' || {port}, '')",
        *addressed,
        _host(_first(attribute, "http.host", "url.full", "http.url")),
        _first(attribute, "rpc.service"),
        f"CASE WHEN {kind_sql} = 'producer' THEN {_first(attribute, 'messaging.system')} END",
    ]
    return f"CASE WHEN {calling_sql(kind_sql)} THEN coalesce({', '.join(names)}) END"


def inferred_spans_sql(spans: str) -> str:
    """Under each span of `spans` (a relation with the spans view's columns) that names a peer and has no child
    span, a server span of the peer: same trace, start, duration, operation and error status, `inferred` true. Not
    for a peer that has spans of its own: a traced service whose span is missing under a call (sampled, lost, or in
    a trace of its own where the context was not passed on) is not untraced, and a span inferred there would count
    the network around the call as its own time."""
    return f"""SELECT call.trace_id, call.span_id || '{INFERRED_SUFFIX}' AS span_id, call.span_id AS parent_id,
       call.peer AS service, call.operation, call.start_ts, call.duration_ms, call.is_error,
       'server' AS span_kind, CAST(NULL AS VARCHAR) AS peer, true AS inferred
FROM {spans} AS call
WHERE call.peer IS NOT NULL
  AND NOT EXISTS (SELECT 1 FROM {spans} AS traced WHERE traced.service = call.peer)
  AND NOT EXISTS (SELECT 1 FROM {spans} AS child WHERE child.trace_id = call.trace_id
                  AND child.parent_id = call.span_id)"""
