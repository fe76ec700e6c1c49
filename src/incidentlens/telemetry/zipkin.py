"""Zipkin's JSON v2 span list (its API's `/api/v2/traces` and `/api/v2/trace/{id}`, the UI's "Download JSON"): a
JSON array of spans, or of traces that are arrays of spans -> a DuckDB table of spans.

A span's service is its `localEndpoint.serviceName`; `timestamp` and `duration` are microseconds; it failed when it
has an `error` tag (Zipkin's rule, whatever its value); its kind is `kind` in lower case. Everything is unnested in
SQL (no Python loop over spans).
"""

from __future__ import annotations

import re
from pathlib import Path

import duckdb

from incidentlens.errors import InputError
from incidentlens.telemetry.columns import literal, quote

# `[{"traceId": ...` (a trace's spans) or `[[{"traceId": ...` (traces), with a key only Zipkin's spans have in the
# file's first bytes
_OPENING = re.compile(rb'^\s*\[\s*\[?\s*\{[^\[\]]*"traceId"\s*:')
_ZIPKIN_KEYS = re.compile(rb'"(localEndpoint|remoteEndpoint)"\s*:')


def starts_zipkin(head: bytes) -> bool:
    """A file's first bytes open a Zipkin v2 span list (an array of spans with `traceId` and Zipkin's own keys)."""
    return _OPENING.match(head) is not None and _ZIPKIN_KEYS.search(head) is not None


def read_zipkin(con: duckdb.DuckDBPyConnection, path: Path, table: str) -> None:
    """Unnest one Zipkin v2 JSON file into `table` with the spans view's canonical columns."""
    try:
        con.execute(f"CREATE OR REPLACE TABLE {quote(table)} AS {_spans_sql(path)}")
    except duckdb.Error as err:  # not JSON, or a field of another shape
        reason = re.sub(r"^[\w ]+ Error: ", "", str(err).splitlines()[0])
        raise InputError(f"{path}: cannot read as Zipkin JSON: {reason[:200]}") from None


def _spans_sql(path: Path) -> str:
    # the file's list, read an element a row: spans (/api/v2/trace/{id}) or traces, each a list of spans
    # (/api/v2/traces)
    return f"""
        WITH items AS (SELECT json AS item FROM read_json_objects({literal(str(path))}, format='auto')),
        spans AS (SELECT unnest(CASE WHEN json_type(item) = 'ARRAY' THEN CAST(item AS JSON[]) ELSE [item] END) AS s
                  FROM items)
        SELECT lower(s->>'traceId') AS trace_id, lower(s->>'id') AS span_id, lower(nullif(s->>'parentId', ''))
               AS parent_id, coalesce(s->'localEndpoint'->>'serviceName', 'global') AS service,
               s->>'name' AS operation, make_timestamp(TRY_CAST(s->>'timestamp' AS BIGINT)) AS start_ts,
               TRY_CAST(s->>'duration' AS DOUBLE) / 1000 AS duration_ms,
               coalesce(json_exists(s, '$.tags.error'), false) AS is_error, lower(s->>'kind') AS span_kind
        FROM spans"""
