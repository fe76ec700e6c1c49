"""Kubernetes events as `kubectl get events -o json` writes them (one `List` document, `{"apiVersion": "v1",
"items": [{"kind": "Event", "involvedObject": ..., ...}], "kind": "List"}`), or one event a line (`jq -c
'.items[]'`, an event exporter) -> a DuckDB table of log lines.

They are log lines, not deploy or config changes: an event's time is its last, `lastTimestamp` (events.k8s.io/v1's
`deprecatedLastTimestamp`, a series' `series.lastObservedTime`), else its first, `eventTime`, `firstTimestamp`
(`deprecatedFirstTimestamp`); one seen more than once says how often since when in its message; its level is its
`type` (Warning -> WARN, Normal -> INFO); its service is the object it is about (`involvedObject`, events.k8s.io's
`regarding`): a pod's name without its replica-set suffix (`logfields.POD_SUFFIX`, as a pod column is read), a
ReplicaSet's without its pod-template hash, any other object's name as it is; its message `reason: message`. Its
namespace, object (`Pod/cart-7d9f8b6c5d-x2k4q`), reason, count and reporting component are kept beside them. An
event with none of the times is left out and counted.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import NamedTuple

import duckdb

from incidentlens.errors import InputError
from incidentlens.telemetry.columns import ORIGIN_LINE, literal, quote
from incidentlens.telemetry.logfields import POD_SUFFIX, REPLICA_SET_SUFFIX
from incidentlens.telemetry.textlogs import first_bytes, sample_lines
from incidentlens.telemetry.words import counted

# `kubectl get events -o json`: a List whose items open with their apiVersion (kubectl writes keys sorted)
_LIST = re.compile(rb'^\s*\{\s*"apiVersion"\s*:\s*"v1"\s*,\s*"items"\s*:\s*\[\s*\{')
# kubectl's List of nothing (`kubectl get events -o json` where there are none): no events, whatever was asked for
_EMPTY_LIST = re.compile(rb'^\s*\{\s*"apiVersion"\s*:\s*"v1"\s*,\s*"items"\s*:\s*\[\s*\]\s*,\s*"kind"\s*:\s*"List"')
# the List's items alone, as an array (`jq '.items'`): its first element an event
_ARRAY = re.compile(rb'^\s*\[\s*\{')
# one event a line: the line holds the object it is about
_ONE_A_LINE = re.compile(rb'^\s*\{[^\n]*"(involvedObject|regarding)"\s*:\s*\{')
# `kubectl get events` (`-A`: its namespace first), `-o wide` alike: a table whose times are ages
_TABLE = re.compile(r"^(NAMESPACE\s+)?LAST SEEN\s+TYPE\s+REASON\s+OBJECT\s")
_EVENT = re.compile(rb'"kind"\s*:\s*"Event"')
_OBJECT = re.compile(rb'"(involvedObject|regarding)"\s*:\s*\{')

#: an event's time, best first: its last (core/v1's, events.k8s.io/v1's, a series' last), then its first
TIME_FIELDS = ("lastTimestamp", "deprecatedLastTimestamp", "series.lastObservedTime", "eventTime", "firstTimestamp",
               "deprecatedFirstTimestamp")


class Untimed(NamedTuple):
    """The events of a file with none of `TIME_FIELDS`, left out: how many, of how many, and where the first is (its
    file line, one event a line; else its number in the List)."""

    count: int
    total: int
    first: int
    by_line: bool

    def note(self, path: Path) -> str:
        have = "has" if self.count == 1 else "have"
        return (f"{path}: {self.count:,} of {counted(self.total, 'event')} {have} no time (no lastTimestamp, "
                f"eventTime or firstTimestamp), left out; the first, {'line' if self.by_line else 'event'} "
                f"{self.first}")


def starts_kube_events(head: bytes) -> bool:
    """A file's first bytes open `kubectl get events -o json`'s List (or kubectl's empty List), its items as an
    array, or a line holding one event."""
    if _EMPTY_LIST.match(head):
        return True
    if _LIST.match(head):  # the object an event is about is a field only an event has
        return _OBJECT.search(head) is not None
    if _ARRAY.match(head):
        return bool(_OBJECT.search(head) and _EVENT.search(head))
    first = head.split(b"\n", 1)[0]
    return bool(_ONE_A_LINE.match(first) and _EVENT.search(first))


def refuse_unread_events(path: Path) -> None:
    """An InputError for kubectl's YAML List of events, or its table (`kubectl get events`, its times relative: `2m`
    ago), which would read as lines of text with no time."""
    try:
        lines = sample_lines(path, 60)
    except InputError:  # not text: its reader says so
        return
    if lines and _TABLE.match(lines[0]):
        raise InputError(f"{path}: kubectl's table of events, whose times are ages (LAST SEEN), not times: write "
                         "them as JSON (kubectl get events -o json)")
    # `kubectl get events -o yaml`: not read (no YAML is), said with the command that writes what is
    if lines[:2] == ["apiVersion: v1", "items:"] and "  kind: Event" in lines:
        raise InputError(f"{path}: Kubernetes events in YAML, which IncidentLens does not read: write them as JSON "
                         "(kubectl get events -o json)")


def is_event_list(path: Path) -> bool:
    """The file is kubectl's List or its items as an array (else one event a line)."""
    head = first_bytes(path, 256)
    return _LIST.match(head) is not None or _ARRAY.match(head) is not None


def is_empty_list(path: Path) -> bool:
    """The file is kubectl's List of nothing."""
    return _EMPTY_LIST.match(first_bytes(path, 256)) is not None


def list_items_sql(path: Path) -> str:
    """`SELECT item`: each event of a List file (or an array of them), in its order. Read as DuckDB's JSON reader
    splits them, not as one document whose items are extracted after: 200,000 events (240 MB) took 23 s of CPU and
    2 GB so (most of it the system's, copying), 0.5 s as an array, 11 s as the List's `items` column."""
    size = f"maximum_object_size={1 << 30}"
    if _ARRAY.match(first_bytes(path, 256)):
        return f"SELECT json AS item FROM read_json_objects({literal(str(path))}, format='array', {size})"
    return (f"SELECT unnest(items) AS item FROM read_json({literal(str(path))}, columns={{items: 'JSON[]'}}, "
            f"format='unstructured', {size})")


def read_kube_events(con: duckdb.DuckDBPyConnection, items_sql: str, table: str, by_line: bool) -> Untimed | None:
    """The events `items_sql` selects (`item`, each one's JSON, in the file's order; `by_line`: and its file `line`)
    into `table` (ts, service, level, message, namespace, object, reason, count, component) but those with no time,
    counted in the answer. Each entry keeps where it was read (`ORIGIN_LINE`): its file line, or its number in the
    List (as a JSON array's row is numbered), not its number among the events kept."""
    numbered = quote(f"{table}_numbered")
    where = "line" if by_line else "row_number() OVER ()"
    con.execute(f"CREATE OR REPLACE TABLE {numbered} AS SELECT {where} AS n, item FROM ({items_sql})")
    try:
        con.execute(f"CREATE OR REPLACE TABLE {quote(table)} AS SELECT {_columns_sql()}, n AS {ORIGIN_LINE} "
                    f"FROM {numbered} "
                    f"WHERE {_time_sql()} IS NOT NULL ORDER BY n")
        total, count, first = con.execute(
            f"SELECT count(*), count(*) FILTER ({_time_sql()} IS NULL), min(n) FILTER ({_time_sql()} IS NULL) "
            f"FROM {numbered}").fetchone()
    finally:
        con.execute(f"DROP TABLE {numbered}")
    return Untimed(int(count), int(total), int(first), by_line) if count else None


def _field(path: str) -> str:
    return f"nullif(json_extract_string(item, {literal('$.' + path)}), '')"


def _time_sql() -> str:
    return f"coalesce({', '.join(_field(name) for name in TIME_FIELDS)})"


def _columns_sql() -> str:
    """The log line of an event (`item`, its JSON)."""
    kind = f"coalesce({_field('involvedObject.kind')}, {_field('regarding.kind')})"
    name = f"coalesce({_field('involvedObject.name')}, {_field('regarding.name')})"
    service = (f"CASE {kind} WHEN 'Pod' THEN regexp_replace({name}, {literal(POD_SUFFIX)}, '') "
               f"WHEN 'ReplicaSet' THEN regexp_replace({name}, {literal(REPLICA_SET_SUFFIX)}, '') ELSE {name} END")
    kind_of = _field("type")
    level = f"CASE {kind_of} WHEN 'Warning' THEN 'WARN' WHEN 'Normal' THEN 'INFO' ELSE upper({kind_of}) END"
    reason, text = _field("reason"), f"coalesce({_field('message')}, {_field('note')})"
    namespace = (f"coalesce({_field('involvedObject.namespace')}, {_field('regarding.namespace')}, "
                 f"{_field('metadata.namespace')})")
    component = (f"coalesce({_field('source.component')}, {_field('reportingComponent')}, "
                 f"{_field('reportingController')})")
    count = f"TRY_CAST(coalesce({_field('count')}, {_field('series.count')}) AS BIGINT)"
    return (f"{_time_sql()} AS ts, {service} AS service, {level} AS level, {_message_sql(reason, text, count)} AS "
            f"message, {namespace} AS namespace, concat_ws('/', {kind}, {name}) AS object, {reason} AS reason, "
            f"{count} AS count, {component} AS component")


def _message_sql(reason: str, text: str, count: str) -> str:
    """`reason: message`, and for an event seen more than once (its `count`, `series.count`) how often since when:
    `BackOff: Back-off restarting failed container (x17 since 2024-05-01T10:01:02Z)`. One line stands for them all,
    at the last time: their times in between are not in the event, so none is made up; the message says the count,
    which the line alone would hide."""
    first = f"coalesce({_field('firstTimestamp')}, {_field('deprecatedFirstTimestamp')}, {_field('eventTime')})"
    times = f"CASE WHEN {count} > 1 THEN concat(' (x', {count}, coalesce(' since ' || {first}, ''), ')') ELSE '' END"
    return f"concat(concat_ws(': ', {reason}, {text}), {times})"
