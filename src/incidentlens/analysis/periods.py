"""The incident window and its baseline as SQL: time predicates, identifiers and literals, ISO times.

Analysis functions take the incident window and the baseline as `(start, end)` pairs of naive UTC datetimes,
half-open (`start <= ts < end`), and write portable SQL over the canonical views with these helpers.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import PlainSerializer

from incidentlens.errors import InputError
from incidentlens.telemetry import sql_ts

Span = tuple[datetime, datetime]

#: log levels that mark a line as a problem (levels are normalised by the store)
PROBLEM_LEVELS = ("WARN", "ERROR", "FATAL")
#: log levels that mark a line as a failure
ERROR_LEVELS = ("ERROR", "FATAL")


def iso_z(moment: datetime) -> str:
    """A naive UTC datetime as ISO-8601 with `Z`, the way analysis.json writes times."""
    return moment.replace(tzinfo=None).isoformat() + "Z"


def iso_seconds(moment: datetime | None) -> str | None:
    """`iso_z` to the whole second, the way evidence data writes times; None when there is no time (no onset)."""
    return None if moment is None else iso_z(moment.replace(microsecond=0))


#: a datetime that serialises to JSON as ISO-8601 UTC with `Z`
UtcTime = Annotated[datetime, PlainSerializer(iso_z, return_type=str, when_used="json")]


def check_span(span: Span, name: str) -> Span:
    """Return the span as a (start, end) tuple, refusing an empty or reversed one."""
    start, end = span
    if not start < end:
        raise InputError(f"{name}: start {iso_z(start)} is not before end {iso_z(end)}")
    return start, end


def check_periods(window: Span, baseline: Span) -> tuple[Span, Span]:
    """The incident window and the baseline, each checked by `check_span`."""
    return check_span(window, "incident window"), check_span(baseline, "baseline window")


def in_span(column: str, span: Span) -> str:
    """SQL predicate: `column` lies in the half-open span."""
    return f"{column} >= {sql_ts(span[0])} AND {column} < {sql_ts(span[1])}"


def span_minutes(span: Span) -> float:
    return (span[1] - span[0]).total_seconds() / 60.0


def minute_from_sql(column: str, origin: datetime) -> str:
    """SQL: whole minutes from `origin` to `column` (negative before it), so no minute holds lines from both sides
    of an onset at `origin`; plain arithmetic on epoch seconds, which reads the same pushed down to ClickHouse."""
    start = (origin.replace(tzinfo=None) - datetime(1970, 1, 1)).total_seconds()
    return f"CAST(floor((epoch({column}) - {start!r}) / 60) AS BIGINT)"


def quote_ident(name: str) -> str:
    """A column name as a quoted SQL identifier (source columns keep their names, spaces and all)."""
    return '"' + name.replace('"', '""') + '"'


def sql_str(value: str) -> str:
    """A string as a SQL literal."""
    return "'" + value.replace("'", "''") + "'"


def sql_in(values: tuple[str, ...] | list[str]) -> str:
    """`('a', 'b')` for an IN list."""
    return "(" + ", ".join(sql_str(v) for v in values) + ")"
