"""How the review writes numbers and times: one place, so prose, tables and cards agree (and stay grounded)."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

from incidentlens.analysis.masking import MAX_TEMPLATE_CHARS
from incidentlens.analysis.units import LOG_ERROR_SHARE, three_figures, unit_of
from incidentlens.analysis.words import listed as listed  # the review says lists as the analysis does
from incidentlens.analysis.words import possessive as possessive  # ... and a name's possessive


def utc(value: Any) -> dt.datetime | None:
    """An ISO text or datetime as an aware UTC datetime; naive means UTC."""
    if value is None or value == "":
        return None
    parsed = value if isinstance(value, dt.datetime) else dt.datetime.fromisoformat(str(value))
    return parsed.replace(tzinfo=dt.UTC) if parsed.tzinfo is None else parsed.astimezone(dt.UTC)


def when(moment: dt.datetime | None, clock: bool = False) -> str:
    """'2024-05-01 10:12 UTC' (seconds only when they are not zero); `clock` drops the date."""
    if moment is None:
        return "unknown"
    moment = utc(moment)
    pattern = "%H:%M" if moment.second == 0 else "%H:%M:%S"
    return moment.strftime(pattern + " UTC" if clock else "%Y-%m-%d " + pattern + " UTC")


def minutes(value: float | None, short: bool = False) -> str:
    """`144 minutes`, `2h 24m` (`short`); under two minutes in seconds (`24 s`, `83 s`), not `0 minutes` or
    `1 minute`."""
    if value is None:
        return "unknown"
    if 0 < value < 2:
        return f"{round(value * 60)} s"
    whole = round(value)
    if short and whole >= 120 and abs(value - whole) < 0.05:
        return f"{whole // 60}h {whole % 60:02d}m"
    unit = "min" if short else "minute" if abs(value - 1) < 0.05 else "minutes"
    return f"{whole} {unit}" if abs(value - whole) < 0.05 else f"{value:.1f} {unit}"


def pct(fraction: float | None, decimals: int = 1) -> str:
    if fraction is None:
        return "n/a"
    value = fraction * 100
    if 0 < abs(value) < 0.1:
        return f"{value:.2g}%"
    return f"{value:.{decimals}f}%"


def num(value: float | None) -> str:
    """A count in full (`12,345`), any other value as the analysis writes it (`three_figures`)."""
    if value is None:
        return "n/a"
    if float(value).is_integer():
        return f"{int(value):,}"
    return three_figures(value)


#: the service of data that names none (wide metrics' `global`, a log's `all`): no service to name
NO_SERVICE = ("global", "all")


def names_service(service: str | None) -> bool:
    """Whether `service` is a real service, not the catch-all of data that names none (`NO_SERVICE`)."""
    return bool(service) and service not in NO_SERVICE


def series_name(service: str | None, metric: str) -> str:
    """`service/metric`, or the metric alone when there is no real service (wide metrics: `global`)."""
    return f"{service}/{metric}" if names_service(service) else metric


def error_rate_name(service: str | None, metric: str, article: str = "the ") -> str:
    """What a peak error rate is a rate of: `error rate (api/error_ratio)`, or for the share of ERROR/FATAL log lines
    (no error metric) that, not an "error rate", which reads as failed requests."""
    if metric == LOG_ERROR_SHARE:
        return f"{article}share of ERROR/FATAL log lines"
    return f"error rate ({series_name(service, metric)})"


def measure(metric: str, value: float | None) -> str:
    """A metric's value with the unit its name carries (`p95_ms` -> '2,450 ms', `LatencyP99(s)` -> '28.6 s')."""
    if value is None:
        return "n/a"
    unit = unit_of(metric)
    if unit == "%":
        return f"{num(value)}%"
    return f"{num(value)} {unit}" if unit else num(value)


def series_value(series: str, value: float | None) -> str:
    """A value of a `service/metric` series: ratios and rates as percentages, others with the unit as its name
    spells it (`MemoryUsage(Mi)` -> '33.6 Mi': lower-cased, mebibytes would read as miles)."""
    metric = series.rsplit("/", 1)[-1]
    if value is not None and any(w in metric.lower() for w in ("ratio", "error_rate")) and abs(value) <= 1:
        return pct(value, 2 if abs(value) < 0.01 else 1)
    return measure(metric, value)


#: binary multiples a table writes an amount of bytes in
_BYTE_UNITS = ("bytes", "KiB", "MiB", "GiB", "TiB")


def table_value(series: str, value: float | None) -> str:
    """A value of a `service/metric` series in a table cell: as `series_value` writes it, but an amount of bytes in
    the binary multiple that keeps it under 1,024 (`40,498` bytes -> '39.5 KiB'); prose keeps the bytes themselves,
    the figure its evidence holds."""
    metric = series.rsplit("/", 1)[-1]
    if value is None or unit_of(metric) != "bytes":
        return series_value(series, value)
    scaled, power = float(value), 0
    while abs(scaled) >= 1024 and power < len(_BYTE_UNITS) - 1:
        scaled, power = scaled / 1024, power + 1
    return f"{num(value)} bytes" if power == 0 else f"{three_figures(scaled)} {_BYTE_UNITS[power]}"


def sentence(text: str) -> str:
    text = text.strip()
    return text if text.endswith((".", "!", "?")) else f"{text}."


# A run of masked fields with only punctuation between them (a date, a clock time, an IP:port) reads as one field.
_MASK_RUN = re.compile(r"<\*>(?:[ :.\-]{1,2}<\*>)+")
# `TraceID: <*>`, `request_id=<*>`: an identifier's masked value says nothing about the pattern.
_MASKED_ID = re.compile(r"\s*\b(\w*(?:ID|Id|_id|uuid|UUID))\s*[:=]\s*<\*>")
# A masked time stamp opening the line: masked fields before its level word, or a masked clock time (`<*>:<*>`).
# Masked words that open the message stay (`TraceID: <*> SpanID: <*> <*> <*> successfully` is `<*> successfully`).
_LEADING_TIME = re.compile(r"^\s*(?:<\*>(?:[ :.,\-]{1,2}<\*>)*\s+(?=(?:TRACE|DEBUG|INFO|NOTICE|WARN|WARNING|ERROR|ERR"
                           r"|FATAL|CRITICAL)\b)|<\*>(?:[ .,\-]{1,2}<\*>)*:<\*>(?:[ :.,\-]{1,2}<\*>)*\s+)")


#: a sample log line is quoted up to this many characters; the whole line is in the evidence
SAMPLE_CHARS = 400


def sample_line(line: str) -> str:
    """A sample log line as the review quotes it: a line of thousands of characters (a ticket list dumped into one
    message) cut at `SAMPLE_CHARS`, saying how much was left out."""
    if len(line) <= SAMPLE_CHARS:
        return line
    return f"{line[:SAMPLE_CHARS]} … ({len(line) - SAMPLE_CHARS:,} more characters in the evidence)"


def readable_pattern(template: str) -> str:
    """A log template without its masked noise: runs of `<*>` folded into one, masked identifiers and a leading
    masked timestamp dropped (`<*>:<*>:<*> WARN Foo TraceID: <*> failed after <*> ms` -> `WARN Foo failed after <*>
    ms`). The pattern's words stay as mined; a template the masking cut at its length (`MAX_TEMPLATE_CHARS`) ends in
    `...`, so `... threw exception [Request processing failed; nested` does not read as the whole line."""
    text = _MASK_RUN.sub("<*>", _MASKED_ID.sub("", _LEADING_TIME.sub("", template)))
    readable = " ".join(text.split()) or template
    return f"{readable}..." if len(template) >= MAX_TEMPLATE_CHARS else readable


# Where the analysis quotes a log template in its own words: a log event of the traces (`spans.TraceSignal.describe`:
# `'log <template>' in 26% of its traces`) and a template's first line in the timeline (`first '<template>' (new log
# template, ...)`).
_QUOTED_TEMPLATES = (re.compile(r"(?P<lead>'log )(?P<template>.+?)(?P<tail>' in \d+% of its traces)"),
                     re.compile(r"(?P<lead>\bfirst ')(?P<template>.+?)(?P<tail>' \(\w+ log template\b)"))


def readable_quotes(text: str) -> str:
    """`text` with each log template the analysis quotes in it written as `readable_pattern` writes it: `in the
    traces, 'log <*> ERROR Foo#<*> TraceID: <*> SpanID: <*> failed' in 26% of its traces` -> `in the traces, 'log
    ERROR Foo#<*> failed' in 26% of its traces`."""
    for quoted in _QUOTED_TEMPLATES:
        text = quoted.sub(lambda m: f"{m['lead']}{readable_pattern(m['template'])}{m['tail']}", text)
    return text


def template_counts(window: int, baseline: int, rate_ratio: float | None) -> str:
    """`30 lines in the incident, 103 before it: 4.2x the baseline's rate`: a baseline longer than the window holds
    more lines though the rate rose, so the counts alone can read as a fall; the rate ratio says which way it went."""
    said = f"{num(window)} lines in the incident, {num(baseline)} before it"
    return said + (f": {rate_ratio:.1f}x the baseline's rate" if rate_ratio is not None and baseline else "")
