"""OpenTelemetry's OTLP JSON file format (the collector's file exporter, `otlpjsonfile`): one `TracesData`,
`LogsData` or `MetricsData` object per line -> a DuckDB table of spans, log records or metric points.

Spans sit under `resourceSpans -> scopeSpans -> spans`, log records under `resourceLogs -> scopeLogs -> logRecords`,
metric points under `resourceMetrics -> scopeMetrics -> metrics -> gauge|sum|histogram| exponentialHistogram|summary
-> dataPoints`. Ids are hex text; int64 values (the `...UnixNano` times, `asInt`) are JSON strings or numbers; enums
(span kind, status code, severity number) are integers. The service is the resource attribute `service.name` (NULL
without one: the view files it under `global`, counted); a metric point's pod its `k8s.pod.name` (NULL without one).
A client or producer span's `peer` is the service its attributes name on the far side (`peers.peer_sql`). Everything
is unnested in SQL over the file's lines (no Python loop over rows); a line that is not JSON is set aside like a
broken JSON-lines row.
"""

from __future__ import annotations

import re
from pathlib import Path

import duckdb

from incidentlens.errors import InputError
from incidentlens.telemetry.columns import literal, quote
from incidentlens.telemetry.files import TEMPO_TRACE, RejectedRows, scan_json_lines
from incidentlens.telemetry.peers import listed_attribute_sql, listed_attributes_sql, peer_sql
from incidentlens.telemetry.textlogs import first_bytes
from incidentlens.telemetry.timeparse import micros_time_sql

#: the top-level field of each OTLP document, by the view it feeds
OTLP_FIELDS = {"spans": "resourceSpans", "logs": "resourceLogs", "metrics": "resourceMetrics"}
_OPTIONS = {"spans": "--traces", "logs": "--logs", "metrics": "--metrics"}
_FIRST_FIELD = re.compile(rb'^\s*\{\s*"(resourceSpans|resourceLogs|resourceMetrics)"')
# where a document holds its resource spans, and a resource its scopes' spans (`instrumentationLibrarySpans` before
# OTLP 0.15, as older Tempo answers write it)
_RESOURCE_SPANS = ("resourceSpans", "batches", "trace'->'resourceSpans")
_SCOPE_SPANS = ("scopeSpans", "instrumentationLibrarySpans")
# SpanKind and the severity number's ranges (OTLP's enums)
_SPAN_KINDS = "['unspecified', 'internal', 'server', 'client', 'producer', 'consumer']"
_SEVERITIES = "['TRACE', 'DEBUG', 'INFO', 'WARN', 'ERROR', 'FATAL']"


def otlp_view(path: Path) -> str | None:
    """The view an OTLP JSON file feeds (spans, logs, metrics), from its first bytes; None when it is no OTLP."""
    head = first_bytes(path, 4096)  # of a gzip stream cut short, what it holds before the cut
    if TEMPO_TRACE.match(head):
        return "spans"
    match = _FIRST_FIELD.match(head)
    if match is None:
        return None
    return {field.encode(): view for view, field in OTLP_FIELDS.items()}[match.group(1)]


def option_for(view: str) -> str:
    """The CLI option that reads files into `view`."""
    return _OPTIONS[view]


def read_otlp(con: duckdb.DuckDBPyConnection, path: Path, view: str, table: str) -> list[RejectedRows]:
    """Unnest one OTLP JSON file into `table` with the view's canonical columns; returns the lines set aside."""
    lines = f"{table}_lines"
    try:
        rejected = scan_json_lines(con, [path], lines, "OTLP JSON")
    except InputError:
        if not _read_documents(con, path, lines):
            raise
        rejected = []
    select = {"spans": _spans_sql, "logs": _logs_sql, "metrics": _metrics_sql}[view](lines)
    try:
        con.execute(f"CREATE OR REPLACE TABLE {quote(table)} AS {select}")
    except duckdb.ConversionException as err:  # a field of another shape: `"resourceSpans": {...}`, not a list
        reason = re.sub(r"^Conversion Error: ", "", str(err).splitlines()[0])
        raise InputError(f"{path}: cannot read as OTLP JSON: {reason[:200]}") from None
    finally:
        con.execute(f"DROP TABLE IF EXISTS {lines}")
    return rejected


def _read_documents(con: duckdb.DuckDBPyConnection, path: Path, lines: str) -> bool:
    """A file that is JSON but not a document per line (one pretty-printed document, as `jq .` or an OTLP/HTTP
    request body saved writes it) into `lines` as `scan_json_lines` lays them out, a document a line; False when it
    is no JSON either."""
    try:
        con.execute(f"CREATE OR REPLACE TABLE {lines} AS SELECT row_number() OVER () AS line, CAST(json AS VARCHAR) "
                    f"AS text, true AS good FROM read_json_objects({literal(str(path))}, format='auto')")
    except duckdb.Error:
        return False
    return True


def _items_sql(lines: str, resource_fields: tuple[str, ...], scope_fields: tuple[str, ...], items_field: str,
               pod: bool = False) -> str:
    """One row per item (span, log record, metric) with its resource's service (and `pod`: its `k8s.pod.name`, NULL
    without one); a document's resources are the first of `resource_fields` it has, a resource's scopes the first of
    `scope_fields`."""
    resources = ", ".join(f"doc->'{field}'" for field in resource_fields)
    scopes = ", ".join(f"r->'{field}'" for field in scope_fields)
    return f"""
        WITH documents AS (SELECT line, CAST(text AS JSON) AS doc FROM {lines} WHERE good),
        resources AS (SELECT line, unnest(CAST(coalesce({resources}) AS JSON[])) AS r FROM documents),
        scopes AS (SELECT line, r->'resource' AS resource, unnest(CAST(coalesce({scopes}) AS JSON[])) AS s
                   FROM resources),
        items AS (SELECT line, resource, unnest(CAST(s->'{items_field}' AS JSON[])) AS x FROM scopes)
        SELECT line, {_service_sql('resource')} AS service,
               {_attribute_sql('resource', 'k8s.pod.name') + ' AS pod, ' if pod else ''}x FROM items"""


def _service_sql(resource: str) -> str:
    """The resource's `service.name`; NULL without one (the view files it under `global`, counted)."""
    return _attribute_sql(resource, 'service.name')


def _attribute_sql(resource: str, key: str) -> str:
    """A resource attribute's string value (NULL without it)."""
    named = f"list_filter(CAST({resource}->'attributes' AS JSON[]), lambda a: (a->>'key') = '{key}')"
    return f"{named}[1]->'value'->>'stringValue'"


def _nanos_sql(value: str) -> str:
    """An int64 of nanoseconds since the epoch (JSON string or number) as a naive UTC timestamp; 0 is none, and so
    is one past what a timestamp holds (`micros_time_sql`)."""
    return micros_time_sql(f"TRY_CAST(nullif(TRY_CAST({value} AS HUGEINT), 0) // 1000 AS BIGINT)")


def _spans_sql(lines: str) -> str:
    start, end = "x->>'startTimeUnixNano'", "x->>'endTimeUnixNano'"
    code = "(x->'status'->>'code')"
    number = "TRY_CAST(x->>'kind' AS INTEGER)"
    kind = f"coalesce({_SPAN_KINDS}[{number} + 1], lower(replace(x->>'kind', 'SPAN_KIND_', '')))"
    # an attribute's value as text, whatever its type (a port is an `intValue`)
    value = "coalesce(a->'value'->>'stringValue', a->'value'->>'intValue', a->'value'->>'doubleValue')"
    attributes = listed_attributes_sql("x->'attributes'", "a->>'key'", value, "span_kind")
    return f"""
        SELECT lower(x->>'traceId') AS trace_id, lower(x->>'spanId') AS span_id,
               lower(nullif(x->>'parentSpanId', '')) AS parent_id, service, x->>'name' AS operation,
               {_nanos_sql(start)} AS start_ts,
               (TRY_CAST({end} AS HUGEINT) - TRY_CAST({start} AS HUGEINT)) / 1e6 AS duration_ms,
               {code} IN ('2', 'STATUS_CODE_ERROR') AS is_error,
               span_kind, nullif(x->'status'->>'message', '') AS status_message,
               {peer_sql(listed_attribute_sql('attributes'), 'span_kind')} AS peer
        FROM (SELECT *, {attributes} AS attributes
              FROM (SELECT *, {kind} AS span_kind
                    FROM ({_items_sql(lines, _RESOURCE_SPANS, _SCOPE_SPANS, 'spans')}) AS items) AS kinds) AS spans
        ORDER BY line"""


def _logs_sql(lines: str) -> str:
    number = "TRY_CAST(x->>'severityNumber' AS INTEGER)"
    body = "x->'body'"
    return f"""
        SELECT coalesce({_nanos_sql("x->>'timeUnixNano'")}, {_nanos_sql("x->>'observedTimeUnixNano'")}) AS ts,
               service,
               coalesce(nullif(x->>'severityText', ''), {_SEVERITIES}[({number} - 1) // 4 + 1]) AS level,
               coalesce({body}->>'stringValue', CAST({body} AS VARCHAR)) AS message,
               lower(nullif(x->>'traceId', '')) AS trace_id, lower(nullif(x->>'spanId', '')) AS span_id
        FROM ({_items_sql(lines, ('resourceLogs',), ('scopeLogs',), 'logRecords')}) AS records
        ORDER BY line"""


def _metrics_sql(lines: str) -> str:
    """Gauge and sum points as `value`; a histogram's, exponential histogram's or summary's points as
    `<name>.count` and `<name>.sum`."""
    number = "coalesce(TRY_CAST(p->>'asDouble' AS DOUBLE), TRY_CAST(p->>'asInt' AS DOUBLE))"
    points = f"""
        SELECT line, service, pod, x->>'name' AS name, unnest(CAST(coalesce(x->'gauge'->'dataPoints',
               x->'sum'->'dataPoints') AS JSON[])) AS p, 'value' AS shape
        FROM ({_items_sql(lines, ('resourceMetrics',), ('scopeMetrics',), 'metrics', pod=True)}) AS metrics
        UNION ALL
        SELECT line, service, pod, x->>'name' AS name, unnest(CAST(coalesce(x->'histogram'->'dataPoints',
               x->'exponentialHistogram'->'dataPoints', x->'summary'->'dataPoints') AS JSON[])) AS p,
               'histogram' AS shape
        FROM ({_items_sql(lines, ('resourceMetrics',), ('scopeMetrics',), 'metrics', pod=True)}) AS histograms"""
    return f"""
        SELECT {_nanos_sql("p->>'timeUnixNano'")} AS ts, service, pod,
               unnest(CASE WHEN shape = 'value' THEN [name] ELSE [name || '.count', name || '.sum'] END) AS metric,
               unnest(CASE WHEN shape = 'value' THEN [{number}]
                           ELSE [TRY_CAST(p->>'count' AS DOUBLE), TRY_CAST(p->>'sum' AS DOUBLE)] END) AS value
        FROM ({points}) AS points
        ORDER BY line"""
