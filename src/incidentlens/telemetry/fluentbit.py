"""Fluent Bit's `file` output in its default format, `out_file` (no `Format` set): a record a line, `tag: [time,
{record}]` (`kube.var.log.containers.cart-7d9f8b6c5d-x2k4q_shop_cart-0a1b.log: [1700000000.123456, {"log": "...",
"stream": "stderr"}]`) -> a DuckDB table of log lines.

Each line's time is its epoch seconds; its message the record's message field (`logfields.JSON_MESSAGE_FIELDS`),
else its `log` (the tail input's line: a JSON line there is read as a structured line, as in any logs column), else
the record's JSON whole; its level the record's level field (`JSON_LEVEL_FIELDS`), else its message's first level
word (a JSON line's level field is read by the logs view); its service the pod the Kubernetes filter names
(`kubernetes.pod_name`) or the tail input's tag names (`kube.var.log.containers.<pod>_<namespace>_...`), without its
replica-set suffix, else the tag, which is kept beside them. A line that is no such record is set aside (counted, and
listed with the others a file holds); more than half of a file's lines so, and the file is refused.
"""

from __future__ import annotations

import re
from pathlib import Path

from incidentlens.telemetry.columns import ORIGIN_LINE, first_json_value_sql, literal
from incidentlens.telemetry.logfields import JSON_LEVEL_FIELDS, JSON_MESSAGE_FIELDS, POD_SUFFIX
from incidentlens.telemetry.textlogs import lines_sql, said_level_sql

# `%s: [%f, %s]`: the tag, the time in seconds (six decimals; nine, its nanoseconds, since Fluent Bit 2; `\r\n` ends
# the line on Windows), the record as a JSON object
_LINE = r"^(\S+?): \[(-?\d+(?:\.\d+)?), (\{.*\})\]\s*$"
_FIRST_LINE = re.compile(rb"^\S+?: \[-?\d+(?:\.\d+)?, \{")
# the tail input's tag of a Kubernetes container log: its file's path with dots for slashes
_TAG_POD = r"(?:^|\.)containers\.([^_]+)_[^_]+_"
#: why a line is set aside, said of each in the listing of those set aside
NOT_A_RECORD = "not a Fluent Bit out_file record (tag: [time, {record}])"


def starts_fluent_bit(head: bytes) -> bool:
    """A file's first bytes open a line of Fluent Bit's `out_file` format."""
    return _FIRST_LINE.match(head) is not None


def scan_sql(path: Path) -> str:
    """`SELECT line, text, good, tag, time, record`: every non-blank line of the file, split into its parts; `good`:
    it is a record (its parts found, its record JSON)."""
    parts = f"regexp_extract(text, {literal(_LINE)}, ['tag', 'time', 'record'])"
    return (f"SELECT line, text, p.record <> '' AND json_valid(p.record) AS good, p.tag, p.time, p.record "
            f"FROM (SELECT line, text, {parts} AS p FROM ({lines_sql(path)}) WHERE length(trim(text)) > 0)")


def records_sql(lines: str) -> str:
    """The log lines of the good lines of `lines` (`scan_sql`'s table), each with its file `line` (`ORIGIN_LINE`)."""
    record = "CAST(record AS JSON)"
    message = first_json_value_sql(record, (*JSON_MESSAGE_FIELDS, ("log",)))
    pod = (f"coalesce(json_extract_string({record}, '$.kubernetes.pod_name'), "
           f"nullif(regexp_extract(tag, {literal(_TAG_POD)}, 1), ''))")
    said = f"coalesce({first_json_value_sql(record, JSON_LEVEL_FIELDS)}, {said_level_sql('message')})"
    return (f"SELECT time, tag, coalesce(regexp_replace({pod}, {literal(POD_SUFFIX)}, ''), tag) AS service, "
            f"{said} AS level, message, {ORIGIN_LINE} FROM (SELECT *, coalesce({message}, record) AS message, "
            f"line AS {ORIGIN_LINE} FROM {lines} WHERE good) ORDER BY {ORIGIN_LINE}")
