"""The incident window and its baseline as SQL: time predicates, identifiers and literals, ISO times.

Analysis functions take the incident window and the baseline as `(start, end)` pairs of naive UTC datetimes,
half-open (`start <= ts < end`), and write portable SQL over the canonical views with these helpers.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

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


def covering(window: Span, baseline: Span) -> Span:
    """From the first to the last of the two spans."""
    return min(window[0], baseline[0]), max(window[1], baseline[1])


def logged_minutes_sql(window: Span, baseline: Span) -> str:
    """The minutes of the window and of the baseline in which any line was logged (minutes counted from the
    window's start, as the log surges count them), each minute clipped to its span: a window that ends at the
    data's last line, 5 s into a minute, has 5 s of that minute, not all of it."""
    minute = minute_from_sql("ts", window[0])

    def covered(side: str, span: Span) -> str:
        start, end = span_minutes((window[0], span[0])), span_minutes((window[0], span[1]))
        return f"sum(least(minute + 1, {end!r}) - greatest(minute, {start!r})) FILTER (WHERE side = '{side}')"

    return f"""SELECT {covered('window', window)} AS window_minutes, {covered('baseline', baseline)} AS baseline_minutes
FROM (
    SELECT DISTINCT CASE WHEN {in_span('ts', window)} THEN 'window' WHEN {in_span('ts', baseline)} THEN 'baseline'
                    END AS side, CAST({minute} AS DOUBLE) AS minute
    FROM logs WHERE {in_span('ts', covering(window, baseline))}
)"""


def logged_minutes(store: Any, window: Span, baseline: Span) -> tuple[float, float]:
    """(window, baseline) minutes the logs cover, each the span's length when no line was logged in it: a rate of
    log lines is per minute the logs cover, since log files that start an hour after the metrics, or come in pieces
    around an alert, must not make the baseline look quiet."""
    logged = store.fetch(logged_minutes_sql(window, baseline)).to_pylist()[0]
    return (logged["window_minutes"] or span_minutes(window), logged["baseline_minutes"] or span_minutes(baseline))


def quote_ident(name: str) -> str:
    """A column name as a quoted SQL identifier (source columns keep their names, spaces and all)."""
    return '"' + name.replace('"', '""') + '"'


def sql_str(value: str) -> str:
    """A string as a SQL literal."""
    return "'" + value.replace("'", "''") + "'"


def sql_in(values: tuple[str, ...] | list[str]) -> str:
    """`('a', 'b')` for an IN list."""
    return "(" + ", ".join(sql_str(v) for v in values) + ")"
