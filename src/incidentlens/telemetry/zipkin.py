"""Zipkin's JSON v2 span list (its API's `/api/v2/traces` and `/api/v2/trace/{id}`, the UI's "Download JSON"): a
JSON array of spans, or of traces that are arrays of spans -> a DuckDB table of spans.

A span's service is its `localEndpoint.serviceName` (NULL without one: the view files it under `global`, counted);
`timestamp` and `duration` are microseconds; it failed when it has an `error` tag (Zipkin's rule, whatever its
value); its kind is `kind` in lower case; a client or producer span's `peer` its `remoteEndpoint.serviceName`, else
the service its tags name (`peers.peer_sql`), else the remote endpoint's address and port. A server span sharing its
client's id (`shared`) is made that span's child (`_SHARED_SQL`). Everything is unnested in SQL (no Python loop over
spans).
"""

from __future__ import annotations

import re
from pathlib import Path

import duckdb

from incidentlens.telemetry.columns import literal
from incidentlens.telemetry.jaeger import unnest_export
from incidentlens.telemetry.peers import calling_sql, peer_sql
from incidentlens.telemetry.timeparse import micros_time_sql

# `[{"traceId": ...` (a trace's spans) or `[[{"traceId": ...` (traces), with a key only Zipkin's spans have in the
# file's first bytes
_OPENING = re.compile(rb'^\s*\[\s*\[?\s*\{[^\[\]]*"traceId"\s*:')
_ZIPKIN_KEYS = re.compile(rb'"(localEndpoint|remoteEndpoint)"\s*:')


def starts_zipkin(head: bytes) -> bool:
    """A file's first bytes open a Zipkin v2 span list (an array of spans with `traceId` and Zipkin's own keys)."""
    return _OPENING.match(head) is not None and _ZIPKIN_KEYS.search(head) is not None


def read_zipkin(con: duckdb.DuckDBPyConnection, path: Path, table: str) -> None:
    """Unnest one Zipkin v2 JSON file into `table` with the spans view's canonical columns."""
    unnest_export(con, path, table, _spans_sql(path), "Zipkin JSON")


def _tag_sql(key: str) -> str:
    """A calling span's tag (Zipkin's tags are an object of strings, `tags` here); NULL without it."""
    path = literal(f'$."{key}"')
    return f"(tags->>{path})"


def _peer_sql() -> str:
    remote = "s->'remoteEndpoint'"
    port = f"coalesce(':' || ({remote}->>'port'), '')"
    addresses = [f"nullif(trim({remote}->>'{ip}'), '') || {port}" for ip in ("ipv4", "ipv6")]
    named = [f"nullif(trim({remote}->>'serviceName'), '')"]
    return peer_sql(_tag_sql, "span_kind", named=named, addressed=addresses)


def _spans_sql(path: Path) -> str:
    # the file's list, read an element a row: spans (/api/v2/trace/{id}) or traces, each a list of spans
    # (/api/v2/traces)
    return f"""
        WITH items AS (SELECT json AS item FROM read_json_objects({literal(str(path))}, format='auto')),
        spans AS (SELECT unnest(CASE WHEN json_type(item) = 'ARRAY' THEN CAST(item AS JSON[]) ELSE [item] END) AS s
                  FROM items),
        -- a calling span's tags taken out once: each tag looked for in them, not in the whole span again
        kinds AS (SELECT s, lower(s->>'kind') AS span_kind FROM spans),
        calls AS (SELECT *, CASE WHEN {calling_sql('span_kind')} THEN s->'tags' END AS tags FROM kinds),
        read AS (
        SELECT lower(s->>'traceId') AS trace_id, lower(s->>'id') AS span_id, lower(nullif(s->>'parentId', ''))
               AS parent_id, s->'localEndpoint'->>'serviceName' AS service,
               s->>'name' AS operation, {micros_time_sql("TRY_CAST(s->>'timestamp' AS BIGINT)")} AS start_ts,
               TRY_CAST(s->>'duration' AS DOUBLE) / 1000 AS duration_ms,
               coalesce(json_exists(s, '$.tags.error'), false) AS is_error, span_kind,
               {_peer_sql()} AS peer, coalesce(TRY_CAST(s->>'shared' AS BOOLEAN), false) AS shared
        FROM calls)
        {_SHARED_SQL}"""


# A server span that shares its id with the client span that called it (`"shared": true`, B3 propagation: Brave,
# Spring Sleuth) is the client span's child, under the id + `SHARED_SUFFIX`, and the spans its service made under
# that id are its children: else the id names two spans, and every child of it joins both.
SHARED_SUFFIX = "-shared"
_SHARED_SQL = f"""
        , twins AS (
            SELECT trace_id, span_id, any_value(service) AS service FROM read AS server WHERE shared AND EXISTS (
                SELECT 1 FROM read AS client WHERE NOT client.shared AND client.trace_id = server.trace_id
                AND client.span_id = server.span_id) GROUP BY trace_id, span_id)
        SELECT r.trace_id,
               CASE WHEN r.shared AND own.span_id IS NOT NULL THEN r.span_id || '{SHARED_SUFFIX}' ELSE r.span_id END
                   AS span_id,
               CASE WHEN r.shared AND own.span_id IS NOT NULL THEN r.span_id
                    WHEN under.span_id IS NOT NULL THEN r.parent_id || '{SHARED_SUFFIX}' ELSE r.parent_id END
                   AS parent_id,
               r.service, r.operation, r.start_ts, r.duration_ms, r.is_error, r.span_kind, r.peer
        FROM read AS r
        LEFT JOIN twins AS own ON r.shared AND own.trace_id = r.trace_id AND own.span_id = r.span_id
        LEFT JOIN twins AS under ON NOT r.shared AND under.trace_id = r.trace_id AND under.span_id = r.parent_id
            AND under.service = r.service"""
