"""Which telemetry the analysis could read for the incident, and which it could not.

A root cause read from metrics alone says less than one read from metrics, logs and traces; the result says which
sources held data in the window and before it, so a reader knows what was checked ("no logs for this period").
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from incidentlens.analysis.periods import Span, in_span, iso_seconds
from incidentlens.telemetry.timeparse import sql_ts

#: the sources the root cause reads, with the view and its time column
SOURCES = {"metrics": ("metrics", "ts"), "logs": ("logs", "ts"), "traces": ("spans", "start_ts")}
#: ... and those it reads when given, whose absence is no gap to report (most systems have no per-call metrics)
GIVEN_ONLY = {"call metrics": ("calls", "ts")}
#: a stretch of the window this many times the baseline's mean spacing of rows, and `HOLE` or longer, with no log
#: line or span is a hole in the data (an export that stops, a collector down), not a quiet service
HOLE_SPACINGS = 10
#: no log line or span at all for this long across the window's start is a hole in the data (a minute's file not
#: given), which the window's first rows would otherwise hide: the rows count, the stretch they miss does not show
HOLE = timedelta(seconds=60)


def data_sources(store: Any, window: Span, baseline: Span) -> dict[str, Any]:
    """`used`: the sources with rows in the window; `missing`: the others; per source the rows in the window and in
    the baseline; `notes`: what is missing, in words ("no logs for this period", "no traces before the onset");
    `left_out`: the values and entries the store set aside at load (`store.warnings`: non-finite values, entries
    with no time), which analyze prints and the review must show too; `events_given`: whether any deploy, config or
    operator events were given, without which no intervention could have been recorded."""
    rows: dict[str, dict[str, int]] = {}
    sources = _sources_given(store)
    for name, (view, column) in sources.items():
        if not store.has(view):
            continue
        counts = store.fetch(f"SELECT count(*) FILTER (WHERE {in_span(column, window)}) AS window_rows, "
                             f"count(*) FILTER (WHERE {in_span(column, baseline)}) AS baseline_rows "
                             f"FROM {view}").to_pylist()[0]
        rows[name] = {key: int(value or 0) for key, value in counts.items()}
    used = [name for name in sources if rows.get(name, {}).get("window_rows")]
    missing = [name for name in sources if name not in used]
    notes = [f"no {name} for this period" for name in missing]
    notes += [f"no {name} before the onset: compared with the rest of the window only" for name in used
              if not rows[name]["baseline_rows"]]
    for name in (name for name in used if name in ("logs", "traces") and rows[name]["baseline_rows"]):
        spacing = _spacing(store, name, baseline)
        notes += [hole for hole in (_hole_at_start(store, name, window, baseline, spacing),
                                    _hole_in_window(store, name, window, spacing)) if hole is not None]
    if "metrics" in used and _one_sample_each(store, window):
        notes.append("one sample of each metric series in the window: a metric's shift there rests on one value")
    return _sources_said(store, used, missing, rows, notes)


def sources_read(store: Any) -> dict[str, Any]:
    """`data_sources` with no window to count rows in (no incident found): the sources that held rows with a time,
    the others `missing` (given but with no time, as a plain-text log in no known line format, or not given), and
    what the store set aside at load; `rows` is empty."""
    ranges = store.view_ranges()
    sources = _sources_given(store)
    used = [name for name, (view, _) in sources.items() if view in ranges]
    missing = [name for name in sources if name not in used]
    notes = [f"no {name}{' with a time' if store.has(sources[name][0]) else ''} in the data read" for name in missing]
    return _sources_said(store, used, missing, {}, notes)


def _sources_given(store: Any) -> dict[str, tuple[str, str]]:
    """Every source a review accounts for (its view and time column): the three always, call metrics when given."""
    return {**SOURCES, **{name: read for name, read in GIVEN_ONLY.items() if store.has(read[0])}}


def _sources_said(store: Any, used: list[str], missing: list[str], rows: dict[str, dict[str, int]],
                  notes: list[str]) -> dict[str, Any]:
    """The `sources` block, with what the store set aside at load and whether events were given."""
    return {"used": used, "missing": missing, "rows": rows, "notes": notes,
            "left_out": list(getattr(store, "warnings", [])), "events_given": store.has("events")}


def _one_sample_each(store: Any, window: Span) -> bool:
    """Whether no metric series has more than one sample in the window (a given start 24 s before the end of a
    minute of logs, beside one-minute metrics)."""
    row = store.fetch(f"SELECT count(*) AS samples, count(DISTINCT (service, metric, pod)) AS series FROM metrics "
                      f"WHERE {in_span('ts', window)}").to_pylist()[0]
    return 0 < row["samples"] <= row["series"]


def _spacing(store: Any, name: str, baseline: Span) -> timedelta:
    """The mean time between a source's rows in the baseline, over the stretch they cover (a minute of logs before
    a given start is as dense as it is, whatever hours of metrics the baseline spans); zero under two rows."""
    view, column = SOURCES[name]
    row = store.fetch(f"SELECT epoch(max({column})) - epoch(min({column})) AS spread, count(*) AS n FROM {view} "
                      f"WHERE {in_span(column, baseline)}").to_pylist()[0]
    return timedelta(seconds=row["spread"] / (row["n"] - 1)) if row["n"] > 1 else timedelta(0)


def _hole_in_window(store: Any, name: str, window: Span, spacing: timedelta) -> str | None:
    """`no logs from <a> to <b> (<n> s, inside the window)`, or `... to the window's end`, for the longest stretch
    after the window's first row of a log or trace source with none for `HOLE_SPACINGS` times the baseline's
    spacing and `HOLE` or longer (the window's rows count, and the minutes they miss would not show); else None."""
    view, column = SOURCES[name]
    end = sql_ts(window[1])
    row = store.fetch(f"SELECT t, next FROM (SELECT t, lead(t) OVER (ORDER BY t) AS next FROM ("
                      f"SELECT {column} AS t FROM {view} WHERE {in_span(column, window)} UNION ALL SELECT {end}"
                      ")) WHERE next IS NOT NULL ORDER BY next - t DESC LIMIT 1").to_pylist()
    if not row or row[0]["next"] - row[0]["t"] < max(HOLE, HOLE_SPACINGS * spacing):
        return None
    before, after = row[0]["t"].replace(microsecond=0), row[0]["next"].replace(microsecond=0)
    to = f"the window's end, {iso_seconds(after)}" if row[0]["next"] == window[1] else iso_seconds(after)
    inside = "" if row[0]["next"] == window[1] else ", inside the window"
    return f"no {name} from {iso_seconds(before)} to {to} ({(after - before).total_seconds():.0f} s{inside})"


def _hole_at_start(store: Any, name: str, window: Span, baseline: Span, spacing: timedelta) -> str | None:
    """`no traces from <last before> to <first after> (<n> s, across the start): none in the window's first <m> s`
    where a log or trace source has no row across the window's start, and none in its first seconds, for `HOLE` or
    longer and `HOLE_SPACINGS` times the baseline's spacing (OnlineBoutique's 14_12 and 14_14 trace minutes given
    without 14_13; a service logging every 3 minutes has no hole); else None."""
    view, column = SOURCES[name]
    start = sql_ts(window[0])
    row = store.fetch(f"SELECT max({column}) FILTER (WHERE {column} < {start}) AS before, "
                      f"min({column}) FILTER (WHERE {column} >= {start}) AS after FROM {view} "
                      f"WHERE {in_span(column, (baseline[0], window[1]))}").to_pylist()[0]
    before, after = row["before"], row["after"]
    if before is None or after is None or after == window[0] or after - before < max(HOLE, HOLE_SPACINGS * spacing):
        return None
    # the lengths said are those between the times written, to the second
    before, after = before.replace(microsecond=0), after.replace(microsecond=0)
    return (f"no {name} from {iso_seconds(before)} to {iso_seconds(after)} "
            f"({(after - before).total_seconds():.0f} s, across the start): none in the window's first "
            f"{(after - window[0]).total_seconds():.0f} s")
