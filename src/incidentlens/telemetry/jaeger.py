"""Jaeger's JSON trace export (the UI's "Download JSON", its query API's `/api/traces`): one document, `{"data":
[{"traceID", "spans": [...], "processes": {...}}, ...]}`, in one line or pretty-printed -> a DuckDB table of spans.

A span's service is its process's `serviceName` (`processID` into the trace's `processes`, or the span's own
`process`; NULL without one: the view files it under `global`, counted); its parent the span of its first `CHILD_OF`
reference (else its first reference); `startTime` and `duration` are microseconds; it failed when its `error` tag is
true or its `otel.status_code` tag is ERROR; its kind is its `span.kind` tag, a client or producer span's `peer` the
service its tags name on the far side (`peers.peer_sql`). Everything is unnested in SQL (no Python loop over spans).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import duckdb

from incidentlens.errors import InputError
from incidentlens.telemetry.columns import literal, quote
from incidentlens.telemetry.peers import listed_attribute_sql, listed_attributes_sql, peer_sql
from incidentlens.telemetry.textlogs import GZIP_CUT_SHORT, cut_short, first_bytes, open_text
from incidentlens.telemetry.timeparse import micros_time_sql

_FIRST_FIELDS = re.compile(rb'^\s*\{\s*"data"\s*:\s*\[\s*\{\s*"(traceID|spans|processes)"')
# The query API's answer holding no trace (`{"data": [], "total": 0, ...}`, `{"data": null, ..., "errors": [...]}`)
_NO_TRACES = re.compile(rb'^\s*\{\s*"data"\s*:\s*(\[\s*\]|null)\s*,\s*"(total|limit|offset|errors)"\s*:')


def starts_jaeger(head: bytes) -> bool:
    """A file's first bytes open a Jaeger JSON export (`{"data": [{"traceID": ...`), or its query API's answer
    holding no trace."""
    return _FIRST_FIELDS.match(head) is not None or _NO_TRACES.match(head) is not None


def read_jaeger(con: duckdb.DuckDBPyConnection, path: Path, table: str) -> None:
    """Unnest one Jaeger JSON export into `table` with the spans view's canonical columns; an answer holding no
    trace is an InputError saying its errors, or that its query matched none."""
    head = first_bytes(path, 256)  # of a gzip stream cut short, what it holds before the cut
    if _NO_TRACES.match(head):
        raise _no_traces(path)
    unnest_export(con, path, table, _spans_sql(path), "a Jaeger JSON export")


def _no_traces(path: Path) -> InputError:
    """Why a Jaeger answer with no trace holds none: its `errors` (`[{"code": 400, "msg": ...}]`), else none."""
    with open_text(path) as handle:
        try:
            errors = json.load(handle).get("errors") or []
        except ValueError as err:  # cut short: its first bytes open an object (`_NO_TRACES`)
            return InputError(f"{path}: cannot read as a Jaeger answer: {str(err)[:200]}")
        except EOFError:  # a gzip stream cut short
            return InputError(f"{path}: cannot read as a Jaeger answer: {GZIP_CUT_SHORT}")
    said = "; ".join(" ".join(str(part) for part in (error.get("code"), error.get("msg")) if part is not None)
                     for error in errors if isinstance(error, dict))
    if said:
        return InputError(f"{path}: a Jaeger answer with errors: {said[:300]}")
    return InputError(f"{path}: a Jaeger answer with no traces (its query matched none)")


def unnest_export(con: duckdb.DuckDBPyConnection, path: Path, table: str, select_sql: str, reading: str) -> None:
    """`table` made from a trace export's spans (`select_sql`, Jaeger's or Zipkin's); DuckDB refusing the file (not
    JSON, or a field of another shape: `"spans": {...}`, not a list) is one line, `<path>: cannot read as <reading>:
    <DuckDB's reason>`."""
    try:
        con.execute(f"CREATE OR REPLACE TABLE {quote(table)} AS {select_sql}")
    except duckdb.Error as err:
        # a document cut short has no spans to read before the cut: said as a CSV or JSON-lines file's would be
        reason = GZIP_CUT_SHORT if cut_short(err) else re.sub(r"^[\w ]+ Error: ", "", str(err).splitlines()[0])
        raise InputError(f"{path}: cannot read as {reading}: {reason[:200]}") from None


def _tag_sql(span: str, key: str) -> str:
    """A span tag's value as text (NULL without it)."""
    return f"list_filter(CAST({span}->'tags' AS JSON[]), lambda t: (t->>'key') = '{key}')[1]->>'value'"


def _spans_sql(path: Path) -> str:
    process = "coalesce(json_extract(processes, '$.\"' || (s->>'processID') || '\"'), s->'process')"
    references = "CAST(s->'references' AS JSON[])"
    parent = f"coalesce(list_filter({references}, lambda r: (r->>'refType') = 'CHILD_OF')[1], {references}[1])"
    attributes = listed_attributes_sql("s->'tags'", "a->>'key'", "a->>'value'", "span_kind")
    return f"""
        WITH documents AS (SELECT json AS doc FROM read_json_objects({literal(str(path))}, format='auto')),
        traces AS (SELECT unnest(CAST(doc->'data' AS JSON[])) AS t FROM documents),
        spans AS (SELECT t->'processes' AS processes, unnest(CAST(t->'spans' AS JSON[])) AS s FROM traces),
        kinds AS (SELECT *, lower({_tag_sql('s', 'span.kind')}) AS span_kind FROM spans),
        calls AS (SELECT *, {attributes} AS attributes FROM kinds)
        SELECT lower(s->>'traceID') AS trace_id, lower(s->>'spanID') AS span_id,
               lower({parent}->>'spanID') AS parent_id, {process}->>'serviceName' AS service,
               s->>'operationName' AS operation,
               {micros_time_sql("TRY_CAST(s->>'startTime' AS BIGINT)")} AS start_ts,
               TRY_CAST(s->>'duration' AS DOUBLE) / 1000 AS duration_ms,
               coalesce(lower({_tag_sql('s', 'error')}) = 'true' OR upper({_tag_sql('s', 'otel.status_code')})
                        = 'ERROR', false) AS is_error,
               span_kind, {peer_sql(listed_attribute_sql('attributes'), 'span_kind')} AS peer
        FROM calls"""
