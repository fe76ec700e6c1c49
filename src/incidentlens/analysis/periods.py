"""The incident window and its baseline as SQL: time predicates, identifiers and literals, ISO times.

Analysis functions take the incident window and the baseline as `(start, end)` pairs of naive UTC datetimes,
half-open (`start <= ts < end`), and write portable SQL over the canonical views with these helpers.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated, Any

import numpy as np
from pydantic import PlainSerializer

from incidentlens.errors import InputError
from incidentlens.telemetry import arrays, sql_ts

Span = tuple[datetime, datetime]

#: a window end is exclusive: one step past the last sample
END_STEP = timedelta(seconds=1)
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


def iso_end(moment: datetime) -> str:
    """A window's (exclusive) end to the whole second, rounded up: a window ending at 09:26:07.457 is written
    09:26:08, so the span written still holds every sample it held (09:26:07, cut to the second, would end before
    the sample at 09:26:07.2)."""
    return iso_z(_second_up(moment))


def written_span(span: Span) -> Span:
    """A window as analysis.json writes it, its start cut to the second and its end rounded up (`iso_end`): what
    its length is said over, so the length read beside the times written is theirs."""
    return span[0].replace(microsecond=0), _second_up(span[1])


def _second_up(moment: datetime) -> datetime:
    whole = moment.replace(microsecond=0)
    return whole if whole == moment else whole + timedelta(seconds=1)


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


def in_span(column: str, span: Span, *, end_included: bool = False) -> str:
    """SQL predicate: `column` lies in the half-open span; with `end_included`, in the closed span, its end too (a
    read that must take in the sample at the window's end)."""
    below = "<=" if end_included else "<"
    return f"{column} >= {sql_ts(span[0])} AND {column} {below} {sql_ts(span[1])}"


def span_minutes(span: Span) -> float:
    return (span[1] - span[0]).total_seconds() / 60.0


def minutes_within(minute_starts: np.ndarray, start: float, end: float) -> float:
    """How much of the minutes beginning at `minute_starts` lies within [start, end), all in minutes on one scale:
    the time logged minutes cover of a span (`logged_minutes`, the log surges' `_MinuteGrid.covered_minutes`)."""
    return float(np.clip(np.minimum(minute_starts + 1, end) - np.maximum(minute_starts, start), 0, None).sum())


def minute_from_sql(column: str, origin: datetime) -> str:
    """SQL: whole minutes from `origin` to `column` (negative before it), so no minute holds lines from both sides
    of an onset at `origin`; plain arithmetic on epoch seconds, which reads the same pushed down to ClickHouse."""
    start = (origin.replace(tzinfo=None) - datetime(1970, 1, 1)).total_seconds()
    return f"CAST(floor((epoch({column}) - {start!r}) / 60) AS BIGINT)"


def sampling_step_sql(rows: str, series: str) -> str:
    """SQL: the typical sampling step, in seconds, of the series (`series`: the columns that tell them apart) in
    `rows` (a relation with `ts`): the median over series of each one's mean gap between distinct timestamps (NULL
    when none has two)."""
    return f"""SELECT median(seconds / (samples - 1)) AS step FROM (
    SELECT epoch(max(ts)) - epoch(min(ts)) AS seconds, count(DISTINCT ts) AS samples FROM {rows}
    GROUP BY {series} HAVING count(DISTINCT ts) > 1
)"""


def covering(window: Span, baseline: Span) -> Span:
    """From the first to the last of the two spans."""
    return min(window[0], baseline[0]), max(window[1], baseline[1])


def logged_minutes_sql(window: Span, baseline: Span) -> str:
    """Per side (`window`, `baseline`) and minute (counted from the window's start, as the log surges count them)
    in which any line was logged: the minute's first line."""
    minute = minute_from_sql("ts", window[0])
    return f"""SELECT side, minute, min(ts) AS first_line
FROM (
    SELECT ts, CASE WHEN {in_span('ts', window)} THEN 'window' WHEN {in_span('ts', baseline)} THEN 'baseline'
               END AS side, {minute} AS minute
    FROM logs WHERE {in_span('ts', covering(window, baseline))}
)
WHERE side IS NOT NULL
GROUP BY side, minute ORDER BY side, minute"""


def logged_minutes(store: Any, window: Span, baseline: Span) -> tuple[float, float]:
    """(window, baseline) minutes the logs cover: the minutes of each span in which any line was logged, each cut
    to its span, and from the logs' first line on (log files that begin 50 s into a minute cover its last 10 s; a
    window that ends 5 s into a minute has 5 s of it); each the span's length when no line was logged in it. A rate
    of log lines is per minute the logs cover, since log files that start an hour after the metrics, or come in
    pieces around an alert, must not make the baseline look quiet. (Not cut at the last line: a window whose few
    lines all came in its first seconds would read as a burst.)"""
    logged = store.fetch(logged_minutes_sql(window, baseline))
    if logged.num_rows == 0:
        return span_minutes(window), span_minutes(baseline)
    minute = arrays.floats(logged["minute"])
    side = arrays.texts(logged["side"])
    first = min(logged["first_line"].to_pylist())
    # ... and the window's cut where the logs themselves end: one that runs on past them (to take in a metric
    # sample) has no line there to lack
    logs_end = store.view_ranges().get("logs", (None, None))[1]
    ends_inside = logs_end is not None and window[0] < logs_end + END_STEP < window[1]
    logged_window = (window[0], logs_end + END_STEP) if ends_inside else window

    def covered(name: str, span: Span) -> float:
        start, end = span_minutes((window[0], max(span[0], first))), span_minutes((window[0], span[1]))
        mine = minute[side == name]
        return minutes_within(mine, start, end) or span_minutes(span)

    return covered("window", logged_window), covered("baseline", baseline)


def quote_ident(name: str) -> str:
    """A column name as a quoted SQL identifier (source columns keep their names, spaces and all)."""
    return '"' + name.replace('"', '""') + '"'


def sql_str(value: str) -> str:
    """A string as a SQL literal."""
    return "'" + value.replace("'", "''") + "'"


def sql_in(values: tuple[str, ...] | list[str]) -> str:
    """`('a', 'b')` for an IN list."""
    return "(" + ", ".join(sql_str(v) for v in values) + ")"
