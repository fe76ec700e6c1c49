"""A saved answer of CloudWatch Logs (`aws logs filter-log-events ... > logs.json`, `get-log-events`): its log events
under `events`, each with its `timestamp` (ms), `message` and, filtered, `logStreamName` -> a DuckDB table of log
lines, read then as a JSON lines file's records are.

Each event's keys are its columns, every value as text (a JSON lines file's are): an event whose `timestamp` is
written as a string among numbers made DuckDB's reader type the column JSON, which no time format reads, and the
whole file was refused. In the answer's order, so a bad row's number is its event's.
"""

from __future__ import annotations

import re
from pathlib import Path

import duckdb

from incidentlens.telemetry.columns import json_pointer, literal, quote

_EVENTS = re.compile(rb'^\s*\{\s*"events"\s*:\s*\[')


def starts_cloudwatch(head: bytes) -> bool:
    """A file's first bytes open a saved CloudWatch Logs answer."""
    return _EVENTS.match(head) is not None


def events_sql(con: duckdb.DuckDBPyConnection, path: Path) -> str:
    """`SELECT` of the answer's events, a row each in its order, a text column per key (in the order they first
    appear)."""
    # one document, however large (DuckDB's limit for one is 16 MB)
    items = (f"SELECT unnest(json_extract(json, '$.events[*]')) AS item FROM read_json_objects({literal(str(path))}, "
             f"format='unstructured', maximum_object_size={1 << 30})")
    keys = [key for (key,) in con.execute(
        f"SELECT key FROM (SELECT unnest(json_keys(item)) AS key, row_number() OVER () AS n FROM ({items})) "
        "GROUP BY key ORDER BY min(n), key").fetchall()]
    fields = ", ".join(f"json_extract_string(item, {literal(json_pointer(key))}) AS {quote(key)}" for key in keys)
    return f"SELECT {fields or 'NULL AS message'} FROM ({items})"
