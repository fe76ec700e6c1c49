"""A saved answer of Datadog's Logs API (`/api/v2/logs/events` or `/api/v2/logs/events/search` > logs.json: `{"data":
[{"id", "type": "log", "attributes": {"timestamp", "status", "service", "host", "message", "tags", ...}}], "links",
"meta"}`), or its events one a line (`jq -c '.data[]'`) -> a DuckDB table of log lines.

Each event's attributes are its columns (`timestamp`, `status`, `service`, `host`, `message`, its `tags` joined with
commas, or as written where they are a string, its `id`), read then as a JSON lines file's records are: its time
column `timestamp`, its level its `status` (`views._status_level`), its service its `service`. The time and service
sit inside `attributes`, where no record's field is looked for (`--map` cannot name one), so the generic reader found
no time column in them.
"""

from __future__ import annotations

import re
from pathlib import Path

import duckdb

from incidentlens.telemetry.columns import ORIGIN_LINE, literal
from incidentlens.telemetry.textlogs import first_bytes

_ANSWER = re.compile(rb'^\s*\{\s*"data"\s*:\s*\[\s*\{')
# its events' keys, in the order its answer writes them (`attributes` first, which may run past the first bytes), or
# as an event written by hand or by another client (`id`, `type` first)
_EVENT = re.compile(rb'^\s*\{\s*"data"\s*:\s*\[\s*\{\s*'
                    rb'("attributes"\s*:\s*\{|"id"\s*:\s*"[^"]*"\s*,\s*"type"\s*:\s*"log")')
# an answer holding no event (its query matched none): `{"data": [], "meta": {...}, "links": {...}}`
_NO_EVENTS = re.compile(rb'^\s*\{\s*"data"\s*:\s*\[\s*\]\s*,\s*"(meta|links)"\s*:')
_LOG = re.compile(rb'"type"\s*:\s*"log"')
_ATTRIBUTES = re.compile(rb'"attributes"\s*:\s*\{')
_ID = re.compile(rb'"id"\s*:\s*"')
#: the attributes read as columns, in this order
FIELDS = ("timestamp", "status", "service", "host", "message")


def starts_datadog_logs(head: bytes) -> bool:
    """A file's first bytes open a Datadog Logs API answer, or a line holding one of its events."""
    if _ANSWER.match(head) or _NO_EVENTS.match(head):
        return _EVENT.match(head) is not None or _NO_EVENTS.match(head) is not None
    first = head.split(b"\n", 1)[0]
    return bool(first.lstrip().startswith(b"{") and _LOG.search(first) and _ATTRIBUTES.search(first)
                and _ID.search(first))


def is_answer(path: Path) -> bool:
    """The file is the API's answer (else its events one a line)."""
    head = first_bytes(path, 256)
    return _ANSWER.match(head) is not None or _NO_EVENTS.match(head) is not None


def answer_items_sql(path: Path) -> str:
    """`SELECT item`: each event of an answer, in its order."""
    return (f"SELECT unnest(json_extract(json, '$.data[*]')) AS item FROM read_json_objects({literal(str(path))}, "
            f"format='unstructured', maximum_object_size={1 << 30})")


def other_kind(con: duckdb.DuckDBPyConnection, items_sql: str) -> str | None:
    """The type of the first item that is no log event (`"type": "event"`, of the Events API's answer, alike in
    shape), else None."""
    row = con.execute(f"SELECT type FROM (SELECT coalesce(json_extract_string(item, '$.type'), 'none') AS type "
                      f"FROM ({items_sql})) WHERE type <> 'log' LIMIT 1").fetchone()
    return row[0] if row else None


def events_sql(items_sql: str, by_line: bool) -> str:
    """The log lines of the events `items_sql` selects (`item`, each one's JSON; `by_line`: and its file `line`, kept
    as the entry's, `ORIGIN_LINE`), in its order."""
    fields = ", ".join(f"json_extract_string(item, {literal('$.attributes.' + name)}) AS {name}" for name in FIELDS)
    # a list of `key:value` tags, as the API writes them, or a string of them (`"env:prod,team:payments"`), as a
    # pipeline or a hand-made export may
    listed = "array_to_string(CAST(json_extract(item, '$.attributes.tags') AS VARCHAR[]), ',')"
    tags = (f"CASE WHEN json_type(item, '$.attributes.tags') = 'ARRAY' THEN {listed} "
            "ELSE json_extract_string(item, '$.attributes.tags') END")
    origin = f", line AS {ORIGIN_LINE}" if by_line else ""
    return f"SELECT {fields}, {tags} AS tags, json_extract_string(item, '$.id') AS id{origin} FROM ({items_sql})"
