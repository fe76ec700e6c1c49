"""Grounding: every number and time a report states must come from the evidence.

`check_grounding(text, evidence)` pulls the numbers and timestamps out of a piece of prose and looks each one up
among the facts in the evidence (an analysis result, its evidence list, or any JSON-like structure of them). It
allows what honest writing does to a number: rounding to the digits shown (0.0712 -> "7.1%"), percentages of
fractions, thousands separators and k/M suffixes, ratios of two figures reported together (peak vs baseline ->
"3.4x"), durations between two timestamps in seconds, minutes or hours, counts of listed items, and times in any
common format (ISO, "10:42 UTC", "May 1, 2024 10:42") at the precision they are written. It returns the reasons a
text is not grounded; an empty list means every figure checked out.

SQL in `query` fields is not a source of facts: its literals are thresholds and limits, not findings.
"""

from __future__ import annotations

import datetime as dt
import itertools
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

_MONTHS = {m: i for i, m in enumerate(
    ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"], start=1)}
_MONTH = r"(?P<mon>Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Sept|Oct|Nov|Dec)[a-z]*\.?"
_CLOCK = r"(?P<hh>\d{1,2}):(?P<mm>\d{2})(?::(?P<ss>\d{2})(?:\.\d+)?)?(?:\s?(?P<ampm>[AaPp][Mm]))?"
_ZONE = r"(?:\s?(?P<zone>Z|UTC|GMT|[+-]\d{2}:?\d{2}))?"

_ISO_DATETIME = re.compile(
    r"(?P<y>\d{4})-(?P<mo>\d{2})-(?P<d>\d{2})(?:[T ]|,?\s+(?:at\s+)?)" + _CLOCK + _ZONE)
_NAMED_DATETIME = re.compile(
    r"(?:(?P<d1>\d{1,2})\s+" + _MONTH + r",?\s+(?P<y1>\d{4})|" + _MONTH.replace("mon", "mon2")
    + r"\s+(?P<d2>\d{1,2})(?:st|nd|rd|th)?,?\s+(?P<y2>\d{4}))(?:,?\s+(?:at\s+)?" + _CLOCK + _ZONE + ")?",
    re.IGNORECASE)
_ISO_DATE = re.compile(r"(?<![\d-])(?P<y>\d{4})[-/](?P<mo>\d{2})[-/](?P<d>\d{2})(?![\d-])")
_TIME_OF_DAY = re.compile(r"(?<![\d:.])" + _CLOCK + _ZONE + r"(?![\d:])")

_COMPOSITE_DURATION = re.compile(
    r"(?<![\w.])(?P<h>\d+)\s?(?:h|hr|hrs|hours?)\s*(?:and\s+)?(?P<m>\d+)\s?(?:m|min|mins|minutes?)\b")
_DOTTED_LITERAL = re.compile(r"(?<![\w.])v?\d+(?:\.\d+){2,}(?![\w.]?\d)")
_NUMBER = re.compile(
    r"(?<![\w.])(?<![A-Za-z_]-)(?P<sign>[-+−])?(?P<num>\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?|\.\d+)"
    r"(?P<unit>%|×|\s?percent\b|[A-Za-z][A-Za-z/]*|\s(?:times|seconds?|secs?|minutes?|mins?|hours?|hrs?|days?|weeks?"
    r"|ms|s|h)\b)?(?![\w])(?!\.\d)")
# A number glued to these letters names a thing, not a quantity: 5xx, 1st, 2nd.
_NOT_QUANTITIES = {"xx", "st", "nd", "rd", "th"}
_HOUR_OF_DAY = re.compile(r"(?<![\w:.])(?P<hh>\d{1,2})\s?(?P<ampm>[AaPp]\.?[Mm]\b)" + _ZONE)

_UNIT_CLASS = {"%": "percent", "percent": "percent", "×": "ratio", "x": "ratio", "times": "ratio",
               "k": "thousand", "K": "thousand", "M": "million"}
_DURATION_SECONDS = {"s": 1, "sec": 1, "secs": 1, "second": 1, "seconds": 1,
                     "m": 60, "min": 60, "mins": 60, "minute": 60, "minutes": 60,
                     "h": 3600, "hr": 3600, "hrs": 3600, "hour": 3600, "hours": 3600,
                     "d": 86400, "day": 86400, "days": 86400, "w": 604800, "week": 604800, "weeks": 604800}


@dataclass(frozen=True)
class _Stated:
    """A number as written: its value, how many decimals were shown, and what it is a number of."""

    text: str
    value: float
    tolerance: float
    unit: str  # plain | percent | ratio | duration
    seconds_per_unit: float = 1.0  # durations: 60 for a value written in minutes


@dataclass(frozen=True)
class _StatedTime:
    text: str
    kind: str  # datetime | date | clock
    value: dt.datetime | dt.date | int  # clock: seconds since midnight
    precision_s: int


class Facts:
    """The numbers, times and literals an evidence structure supports, indexed for lookup."""

    def __init__(self, evidence: Any) -> None:
        plain = _plain(evidence)
        numbers: list[float] = []
        ratios: list[float] = []
        times: set[dt.datetime] = set()
        literals: list[str] = []
        for node in _walk(plain):
            if isinstance(node, dict):
                siblings = [v for v in node.values() if _is_number(v)]
                ratios.extend(a / b for a, b in itertools.permutations(siblings, 2) if b)
            elif isinstance(node, list):
                numbers.append(float(len(node)))
            elif _is_number(node):
                numbers.append(float(node))
            elif isinstance(node, str):
                literals.append(node)
                parsed = _parse_iso(node)
                if parsed is not None:
                    times.add(parsed)
                    continue
                times.update(t.value for t in _stated_times(node)[0] if t.kind == "datetime")
                numbers.extend(stated.value for stated in _stated_numbers(node))
        self.numbers = np.unique(np.asarray(numbers, dtype=float))
        self.ratios = np.unique(np.asarray(ratios, dtype=float))
        self.times = sorted(times)
        epoch = np.asarray([_epoch(t) for t in self.times], dtype=float)
        anchors = np.asarray([_epoch(t) for t in _anchor_times(plain)], dtype=float)
        # A stated duration runs from a landmark (window bounds, peak, trigger, first anomaly) to another time; between
        # any two of dozens of timeline times nearly every minute count would be "supported".
        ends = anchors if anchors.size else epoch
        gaps = np.abs(epoch[:, None] - ends[None, :]).ravel()
        self.gaps_s = np.unique(gaps[gaps > 0])
        self.epoch = np.sort(epoch)
        self.clock_s = np.unique(np.mod(epoch, 86400.0))
        self.dates = {t.date() for t in self.times}
        self.text = "\n".join(literals)

    def supports_number(self, stated: _Stated) -> bool:
        candidates = [self.numbers]
        if stated.unit == "duration":
            # raw figures are minutes (duration_minutes, lead_minutes) or seconds, or milliseconds written as seconds
            candidates = {60: [self.numbers], 1: [self.numbers, self.numbers / 1000]}.get(stated.seconds_per_unit, [])
            candidates.append(self.gaps_s / stated.seconds_per_unit)
        elif stated.unit == "percent":
            candidates += [self.numbers * 100, self.ratios * 100]
        elif stated.unit == "ratio":
            candidates.append(self.ratios)
        return any(_near(np.sort(c), stated.value, stated.tolerance) for c in candidates)

    def supports_time(self, stated: _StatedTime) -> bool:
        if stated.kind == "date":
            return stated.value in self.dates
        if stated.kind == "clock":
            return _near_circular(self.clock_s, float(stated.value), stated.precision_s)
        return _near(self.epoch, _epoch(stated.value), stated.precision_s)


def check_grounding(text: str, evidence: Any) -> list[str]:
    """Why `text` is not supported by `evidence` (one reason per unsupported figure); [] when it is grounded.

    `evidence` is an analysis result (object or dict), a list of evidence, or a prepared `Facts`.
    """
    facts = evidence if isinstance(evidence, Facts) else Facts(evidence)
    stated_times, rest = _stated_times(text)
    reasons = [f"time '{t.text}' is not in the evidence" for t in stated_times if not facts.supports_time(t)]
    rest, literals = _take_literals(rest)
    reasons += [f"version or address '{lit}' is not in the evidence" for lit in literals if lit not in facts.text]
    reasons += [f"number '{n.text}' is not in the evidence" for n in _stated_numbers(rest)
                if not facts.supports_number(n)]
    return reasons


def _stated_numbers(text: str) -> Iterator[_Stated]:
    text = _blank_out(text, _COMPOSITE_DURATION, _composite_durations := [])
    yield from _composite_durations
    for m in _NUMBER.finditer(text):
        digits = m["num"].replace(",", "")
        value = float(digits) * (-1 if m["sign"] in ("-", "−") else 1)
        tolerance = _tolerance(digits)
        unit_word = (m["unit"] or "").strip()
        unit = _UNIT_CLASS.get(unit_word, "plain")
        if unit_word.lower() in _NOT_QUANTITIES:
            continue
        if unit_word in _DURATION_SECONDS:
            yield _Stated(m.group(0).strip(), value, tolerance, "duration", _DURATION_SECONDS[unit_word])
        elif unit in ("thousand", "million"):
            scale = 1e3 if unit == "thousand" else 1e6
            yield _Stated(m.group(0).strip(), value * scale, tolerance * scale, "plain")
        else:
            yield _Stated(m.group(0).strip(), value, tolerance, unit)


def _blank_out(text: str, pattern: re.Pattern[str], found: list[_Stated]) -> str:
    """Record composite durations ("2h 24m") and blank them so their parts are not read as separate numbers."""

    def take(m: re.Match[str]) -> str:
        found.append(_Stated(m.group(0), int(m["h"]) * 60 + int(m["m"]), 0.5, "duration", 60.0))
        return " " * len(m.group(0))

    return pattern.sub(take, text)


def _take_literals(text: str) -> tuple[str, list[str]]:
    literals = [m.group(0) for m in _DOTTED_LITERAL.finditer(text)]
    return _DOTTED_LITERAL.sub(lambda m: " " * len(m.group(0)), text), literals


def _stated_times(text: str) -> tuple[list[_StatedTime], str]:
    """The times written in `text`, and the text with them blanked out (so their digits are not read as numbers)."""
    found: list[_StatedTime] = []
    for pattern, reader in ((_ISO_DATETIME, _read_iso), (_NAMED_DATETIME, _read_named), (_ISO_DATE, _read_date),
                            (_TIME_OF_DAY, _read_clock), (_HOUR_OF_DAY, _read_hour)):
        def take(m: re.Match[str], reader: Any = reader) -> str:
            stated = reader(m)
            if stated is None:
                return m.group(0)
            found.append(stated)
            return " " * len(m.group(0))

        text = pattern.sub(take, text)
    return found, text


def _read_iso(m: re.Match[str]) -> _StatedTime | None:
    return _datetime(m, int(m["y"]), int(m["mo"]), int(m["d"]))


def _read_named(m: re.Match[str]) -> _StatedTime | None:
    month = _MONTHS.get((m["mon"] or m["mon2"])[:3].lower())
    day, year = (m["d1"], m["y1"]) if m["d1"] else (m["d2"], m["y2"])
    if month is None:
        return None
    if m["hh"] is None:
        return _date(m.group(0), int(year), month, int(day))
    return _datetime(m, int(year), month, int(day))


def _read_date(m: re.Match[str]) -> _StatedTime | None:
    return _date(m.group(0), int(m["y"]), int(m["mo"]), int(m["d"]))


def _read_clock(m: re.Match[str]) -> _StatedTime | None:
    hour = _hour(m)
    if hour is None or int(m["mm"]) > 59:
        return None
    offset = _zone_offset_s(m["zone"])
    seconds = (hour * 3600 + int(m["mm"]) * 60 + int(m["ss"] or 0) - offset) % 86400
    return _StatedTime(m.group(0).strip(), "clock", seconds, 1 if m["ss"] else 60)


def _read_hour(m: re.Match[str]) -> _StatedTime | None:
    """'3pm': any evidence time in that hour."""
    hour = int(m["hh"])
    if not 1 <= hour <= 12:
        return None
    hour = hour % 12 + (12 if m["ampm"][0].lower() == "p" else 0)
    seconds = (hour * 3600 - _zone_offset_s(m["zone"])) % 86400
    return _StatedTime(m.group(0).strip(), "clock", seconds, 3600)


def _datetime(m: re.Match[str], year: int, month: int, day: int) -> _StatedTime | None:
    hour = _hour(m)
    if hour is None:
        return None
    try:
        when = dt.datetime(year, month, day, hour, int(m["mm"]), int(m["ss"] or 0))
    except ValueError:
        return None
    when -= dt.timedelta(seconds=_zone_offset_s(m["zone"]))
    return _StatedTime(m.group(0).strip(), "datetime", when, 1 if m["ss"] else 60)


def _date(text: str, year: int, month: int, day: int) -> _StatedTime | None:
    try:
        return _StatedTime(text.strip(), "date", dt.date(year, month, day), 86400)
    except ValueError:
        return None


def _hour(m: re.Match[str]) -> int | None:
    hour = int(m["hh"])
    ampm = (m["ampm"] or "").lower()
    if ampm:
        if not 1 <= hour <= 12:
            return None
        hour = hour % 12 + (12 if ampm.startswith("p") else 0)
    return hour if hour <= 23 else None


def _zone_offset_s(zone: str | None) -> int:
    if not zone or zone in ("Z", "UTC", "GMT"):
        return 0
    digits = zone[1:].replace(":", "")
    sign = -1 if zone[0] == "-" else 1
    return sign * (int(digits[:2]) * 3600 + int(digits[2:]) * 60)


def _tolerance(digits: str) -> float:
    """Half a unit in the last digit shown; for round integers ("4,300"), half the rounding step, within 2%."""
    if "." in digits:
        return 0.5 * 10 ** -len(digits.split(".")[1])
    trailing_zeros = len(digits) - len(digits.rstrip("0")) if digits.strip("0") else 0
    return max(0.5, min(0.5 * 10**trailing_zeros, 0.02 * float(digits)))


def _near(sorted_values: np.ndarray, value: float, tolerance: float) -> bool:
    if sorted_values.size == 0:
        return False
    slack = tolerance * (1 + 1e-9) + 1e-12
    i = np.searchsorted(sorted_values, value - slack)
    return bool(i < sorted_values.size and sorted_values[i] <= value + slack)


def _near_circular(clock_s: np.ndarray, value: float, precision_s: int) -> bool:
    """A clock time "10:42" matches any evidence time within that minute (or second), on any day."""
    if clock_s.size == 0:
        return False
    delta = np.mod(clock_s - value, 86400.0)
    return bool(np.any((delta >= 0) & (delta < precision_s)) or np.any(np.abs(clock_s - value) < 1e-6))


def _parse_iso(text: str) -> dt.datetime | None:
    if len(text) < 16 or not text[:4].isdigit() or text[4] != "-":
        return None
    try:
        parsed = dt.datetime.fromisoformat(text)
    except ValueError:
        return None
    if parsed.tzinfo is not None:
        parsed = parsed.astimezone(dt.UTC).replace(tzinfo=None)
    return parsed


def _anchor_times(plain: Any) -> list[dt.datetime]:
    """The landmarks of an analysis result: window bounds, peak, trigger and first anomalous point."""
    if not isinstance(plain, dict):
        return []
    window = plain.get("incident_window") or {}
    candidates = [window.get("start"), window.get("end"), plain.get("peak"), (plain.get("trigger") or {}).get("t"),
                  (plain.get("detection") or {}).get("first_anomalous")]
    return [t for t in (_parse_iso(c) for c in candidates if isinstance(c, str)) if t is not None]


def _epoch(naive_utc: dt.datetime) -> float:
    return naive_utc.replace(tzinfo=dt.UTC).timestamp()


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and np.isfinite(value)


def _plain(evidence: Any) -> Any:
    if hasattr(evidence, "model_dump"):
        return evidence.model_dump(mode="json")
    if hasattr(evidence, "to_dict"):
        return evidence.to_dict()
    if isinstance(evidence, list | tuple):
        return [_plain(item) for item in evidence]
    return evidence


def _walk(node: Any) -> Iterator[Any]:
    """Every node of a JSON-like tree, skipping SQL (`query`) fields."""
    yield node
    if isinstance(node, dict):
        for key, value in node.items():
            if key != "query":
                yield from _walk(value)
    elif isinstance(node, list):
        for value in node:
            yield from _walk(value)
