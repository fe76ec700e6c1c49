"""The unit a metric's name carries: `p95_ms`, `latency_seconds`, `PodClientLatencyP99(s)`, `MemoryUsage(Mi)`."""

from __future__ import annotations

import re

_UNIT_IN_PARENS = re.compile(r"\(([^()]{1,8})\)$")
#: a unit a camel-case name ends with (`NetworkReceiveBytes`, Nezha's)
_CAMEL_UNITS = {re.compile(r"(?<=[a-z0-9])Bytes$"): "bytes"}
_UNIT_SUFFIXES = {"ms": "ms", "s": "s", "seconds": "s", "sec": "s", "bytes": "bytes", "pct": "%", "percent": "%",
                  "rps": "req/s", "qps": "req/s"}
#: the metric name of the worst minute's share of ERROR/FATAL log lines, the peak error rate where no error metric is
#: (impact.py); a share, so its unit is %
LOG_ERROR_SHARE = "log_error_ratio"
#: milliseconds in one of a time unit (what a span's duration is counted in)
MS_PER_UNIT = {"ms": 1.0, "s": 1000.0, "us": 0.001, "µs": 0.001, "min": 60_000.0}


def unit_of(metric: str) -> str | None:
    """The unit a metric's name states (ms, s, bytes, %, req/s, Mi, ...), or None when it states none."""
    found = _UNIT_IN_PARENS.search(metric)
    if found:
        return found[1]
    suffix = re.split(r"[_\-.]", metric.lower())[-1]
    if suffix in _UNIT_SUFFIXES:
        return _UNIT_SUFFIXES[suffix]
    if metric.lower() in _UNIT_SUFFIXES:
        return _UNIT_SUFFIXES[metric.lower()]
    return next((unit for pattern, unit in _CAMEL_UNITS.items() if pattern.search(metric)), None)


def in_ms(metric: str, value: float) -> float | None:
    """A value of a time metric in milliseconds, by the unit its name states; None for no time unit."""
    per = MS_PER_UNIT.get(unit_of(metric) or "")
    return None if per is None else value * per


def three_figures(value: float) -> str:
    """A measured value to three significant figures, as a reader compares them (`101.329` -> `101`, `6.479` ->
    `6.48`), thousands in full (`12,345`); rounded from its first twelve figures (`settled`)."""
    value = settled(value)
    return f"{value:.3g}" if abs(value) < 1000 else f"{value:,.0f}"


def settled(value: float) -> float:
    """`value` to twelve significant figures: one value computed two ways (0.2485 and 0.24850000000000003, a
    median and the same median through another query) rounds alike to three (0.248), not 0.248 in one section of a
    review and 0.249 in the next (TrainTicket 08:52's ts-auth-service p99 baseline)."""
    return float(f"{value:.12g}")
