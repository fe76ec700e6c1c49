"""Severity from impact, by a stated rule.

The first level whose any condition holds wins:

| level | error rate over baseline | failed requests beyond baseline share | users beyond baseline | latency |
|---|---|---|---|---|
| SEV1 | >= 20 points | >= 10% of requests | >= 10,000 | |
| SEV2 | >= 5 points | >= 1% of requests | >= 1,000 | >= 3x baseline over a window >= 30 min |
| SEV3 | >= 1% and >= 2x baseline (ERROR/FATAL lines: the same, of all lines) | any | any | >= 1.5x baseline |
| SEV4 | otherwise: a measurable shift with no user-visible impact in the data | | | |

Severity rests on sustained, user-facing harm. The error rate and latency are read at the window's typical level
(`Peak.typical`: the series' window median; for the share of ERROR/FATAL lines, the whole window's share), not at
its peak: one sample of a percentile at 1.7x its baseline is not an incident's severity, and the reason says when a
single peak reached a floor the typical level did not ("a single peak, not sustained: ..."). A window that holds one
sample of the series has no typical level beside its peak: that sample is a single peak, and sets no level either.
They count only where harm was seen (below), as failed requests and users do. A share of ERROR/FATAL log lines (the
error rate where no error metric is) sets SEV3 at most: a log line is not a failed request, and a service that logs
more when it struggles (or a chatty one that goes quiet) moves the share with no request failing; SEV2 and SEV1 need
failed requests, users or an error metric. A service's traced requests that failed (or were cut short) in one way
beyond its baseline's share (`Impact.traced_failures`) set SEV3 at most too: they are failed requests, but the
service's, not the users' at the front door, and no share of those.

Severity rests on what the incident changed, not on the system's normal state: the error rate counts by its rise,
the typical level less the same series' baseline (a service that always fails 6% of its requests is not SEV2 for it),
and failed requests by how many more failed than the baseline's share of failed requests predicts for the window's
requests, and users by how many more saw WARN/ERROR lines than the baseline had in a span of the window's length
(`impact.users_baseline`: a service whose users see errors every hour has that many in any hour); each figure is
stated beside the raw one. Where there is no baseline to subtract, the raw error rate and failed requests count, but
not users: a raw count of users on WARN/ERROR lines says nothing of what the incident changed, so it sets no level
and the review calls it raw. An excess chance alone could give does not count: it must pass `CHANCE_Z` times the
Poisson spread of the failures (users) the baseline predicts (one-sided p < 0.001; a real count of requests is at
least that noisy), so a day's ordinary failures, a few hundred more or less in tens of thousands, are not "requests
failed beyond the baseline".

Error rate, latency, failed requests and users count only where harm was seen (the impact's `services_affected`: a
service whose latency or error metrics rose over the window, or whose WARN/ERROR lines or traced requests failed (or
were cut short) in one way surged, against the baseline) or could not be looked for (no such metrics, lines or spans,
`harm_checked` empty): where it was looked for and not seen they are the window's ordinary failures, or a peak, which
the baseline held as well. With no harm seen and nothing moved (no series, no hypothesis), there is no shift to call
SEV4 either, and a lone peak is noise the shift tests saw through: the severity is undetermined (None).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import dataclass

from incidentlens.analysis.impact import (
    FAILING,
    FAILING_FLOOR,
    LOST_LINE,
    SLOWER,
    USUAL_SPEED_BAND,
    held_level,
)
from incidentlens.analysis.units import LOG_ERROR_SHARE
from incidentlens.report import formatting as fmt
from incidentlens.report.schema import Impact, Peak, Severity, TracedFailure

#: failed requests (users) beyond the baseline's count only past this many Poisson standard deviations of the failures
#: (users) it predicts (one-sided p < 0.001)
CHANCE_Z = 3.09
#: a window's typical level of at most this many samples says how many: the median of two is their mean, and the
#: first sample after the start measures a step mostly before it (TrainTicket 13:31: "0.242 s over the window", the
#: median of two samples, one of them mostly before the injection)
FEW_SAMPLES = 5

RULE = ("SEV1: error rate >= 20 points over its baseline, or >= 10% of requests failed beyond the baseline's "
        "share of failed requests, or >= 10,000 users beyond the baseline's; "
        "SEV2: >= 5 points, >= 1%, >= 1,000 users, or latency >= 3x baseline over a window >= 30 min; "
        f"SEV3: error rate (or share of ERROR/FATAL lines) >= {FAILING_FLOOR:.0%} and >= {FAILING:g}x baseline, any "
        f"failed requests beyond the baseline's share or users beyond the baseline's (each past {CHANCE_Z:g} Poisson "
        "σ of what the baseline predicts), a service's traced requests failed, cut short or slowed in one way "
        "beyond its baseline's share "
        f"(SEV3 at most: its requests, not the users'), or latency >= {SLOWER:g}x; else SEV4; "
        "error rate and latency at the window's typical level (its median, no higher than two of its samples "
        "reached; a single peak, or a window of one sample, sets no level), the share "
        "of ERROR/FATAL lines SEV3 at most (a log line is not a failed request); "
        "users are those on WARN/ERROR lines less the baseline's for a window as long, and set no level where there "
        "is no baseline; "
        "error rate, latency, failed requests and users count only where a service's latency, errors, WARN/ERROR "
        "lines or failed, cut-short or slowed traced requests rose beyond the baseline's noise; with none and "
        "nothing moved "
        "(whatever a lone peak reached): undetermined")


@dataclass(frozen=True)
class _Figures:
    error_rate: float | None
    error_baseline: float | None
    error_rise: float | None  # the error rate less its baseline; the rate where there is no baseline
    from_lines: bool  # the error rate is the share of ERROR/FATAL log lines, not of requests: SEV3 at most
    failed_share: float | None  # failed requests beyond the baseline's share, as a share of the window's
    users: int | None  # users beyond the baseline's, past chance; None with no baseline
    traced: bool  # a service's traced requests failed, cut short or slowed in one way beyond its baseline's share:
    # SEV3 at most
    latency_ratio: float | None
    minutes: float | None


def derive_severity(impact: Impact, moved: bool = True) -> tuple[Severity | None, str]:
    """The severity level and the rule, with the figures that decided it; `moved`: whether anything moved in the
    window (a metric series, a hypothesis). None: undetermined, no impact measured and nothing moved."""
    harm_seen = shows_harm(impact)
    level, why, figure = _level(_figures(impact, harm_seen))
    why += _decided_by(impact, figure)
    if not harm_seen and not moved:  # a lone peak where nothing moved is noise the shift tests saw through
        return None, (f"undetermined: no impact measured ({no_harm(impact)}) and nothing moved beyond its baseline's "
                      f"noise (rule: {RULE})")
    caveat = unconfirmed_peak(impact) if figure == "latency" else None
    if caveat:
        # the one figure that set the level: said so, with the level without it (the level is kept: of the servers'
        # percentiles the traces could check on Nezha's two days, 379 of 382 were borne out)
        without, _, _ = _level(_figures(impact.model_copy(update={"peak_latency": None}), harm_seen))
        why += (f": a percentile the traces cannot confirm ({caveat}), the one figure this level rests on (without "
                f"it, {without})")
    if level == "SEV4" and not harm_seen:
        why += f" ({no_harm(impact)})"
    peak = single_peak(impact, level)
    if peak:
        why += f"; {peak}"
    return level, f"{level} because {why} (rule: {RULE})"


def _figures(impact: Impact, harm_seen: bool, read: Callable[[Peak], float | None] | None = None) -> _Figures:
    """The figures the rule reads: the error rate and latency at the window's typical level, and all of them only
    where harm was seen (or not looked for). `read`: the error rate and latency read by it whether or not harm was
    seen (`_at_peak`, `_held_level`: what a peak alone, or the level the window held, would set)."""
    err = impact.peak_error_rate if harm_seen or read else None
    lat = impact.peak_latency if harm_seen or read else None
    level = read or typical_level
    rate = None if err is None else level(err)
    slow = None if lat is None else level(lat)
    latency_ratio = slow / lat.baseline if lat and slow is not None and lat.baseline else None
    rise = None if err is None or rate is None else rate - (err.baseline or 0.0)
    excess = impact.failed_excess if beyond_chance(impact) else None
    failed = excess / impact.requests_total if harm_seen and excess is not None and impact.requests_total else None
    return _Figures(rate, err.baseline if err else None, rise, err is not None and err.metric == LOG_ERROR_SHARE,
                    failed, counted_users(impact) if harm_seen else None, harm_seen and bool(impact.traced_failures),
                    latency_ratio, impact.duration_minutes)


def typical_level(peak: Peak) -> float | None:
    """The level the severity reads of an error rate or latency: the window's typical one (its median, no higher
    than a level two samples reached, `impact.held_level`; the peak where the analysis predates it); None where the
    window holds one sample of the series: that sample is a single peak, which sets no level (OnlineBoutique 13:10
    was SEV2 for the front door's error rate at "5.9% over the window (its one sample)"). Of two samples, the lower:
    their median is their mean, which one carries (TrainTicket 14:49 was SEV3 for ts-food-service's p90 at "0.52 s
    over the window (the median of its 2 samples)": 0.95 s, then 0.09 s, its baseline)."""
    if peak.typical is None:
        return peak.value
    return held_level(peak.typical, peak.samples, peak.second)


def single_peak(impact: Impact, level: Severity) -> str | None:
    """Where the error rate's or latency's peak alone would set a worse level than `level`: that it is one peak, in
    words, with the typical level beside it (`a single peak, not sustained: latency (api/p95_ms) 360 ms at 10:05
    UTC against 180 ms before, 190 ms over the window`; a peak in the window's last sample is not said to have ended:
    TrainTicket 14:49's ts-food-service p90, 0.09 s then 0.95 s as the window ends, 2.2 s the minute after). Where
    the typical level would set it too, what kept it from counting was no service's rise past the baseline's noise,
    not a lone peak, and the words say so (`a rise not counted as harm: ... 2.2% over the window, 4.0% at its peak
    ...`)."""
    figure = _worse_by(impact, level, _at_peak)
    peak = impact.peak_error_rate if figure == "error" else impact.peak_latency if figure == "latency" else None
    if peak is None:
        return None
    name = (fmt.error_rate_name(peak.service, peak.metric, "") if figure == "error"
            else f"latency ({fmt.series_name(peak.service, peak.metric)})")
    value = _writer(figure, peak)
    at = f" at {fmt.when(fmt.utc(peak.at), clock=True)}" if peak.at else ""
    before = "" if peak.baseline is None else f" against {value(peak.baseline)} before"
    if held_at_peak_level(impact, level):
        return (f"a rise not counted as harm: {name} {_over_window(peak, value)}, {value(peak.value)} at its "
                f"peak{at},{before}")
    typical = ("" if peak.typical is None else " (the window's one sample of it)" if peak.samples == 1
               else f", {_over_window(peak, value)}")
    # a peak in the window's last sample may be where a rise began: the window cannot say it ended
    said = ("a single peak, in the window's last sample (whether it held after, the data examined does not say)"
            if peak.at_end or peak.samples == 1 else "a single peak, not sustained")
    return f"{said}: {name} {value(peak.value)}{at}{before}{typical}"


def held_at_peak_level(impact: Impact, level: Severity) -> bool:
    """Whether the error rate's and latency's typical levels (their window medians) would set a worse level than
    `level` were harm seen: then no peak alone reached it, the window held there."""
    return _worse_by(impact, level, _held_level) is not None


def _worse_by(impact: Impact, level: Severity, read: Callable[[Peak], float | None]) -> str | None:
    """Which figure, `error` or `latency`, read by `read` whether or not harm was seen, would set a worse level than
    `level`; None where neither would."""
    worse, _, figure = _level(_figures(impact, harm_seen=False, read=read))
    return figure if figure in ("error", "latency") and _RANK[worse] < _RANK[level] else None


def _at_peak(peak: Peak) -> float:
    """A series' peak value."""
    return peak.value


def _held_level(peak: Peak) -> float | None:
    """The level the window held a series at (`impact.held_level`), None where the window holds one sample of it or
    the analysis predates the typical level (not the peak's value, as `typical_level` reads it there)."""
    return None if peak.typical is None else held_level(peak.typical, peak.samples, peak.second)


_RANK: dict[Severity, int] = {"SEV1": 1, "SEV2": 2, "SEV3": 3, "SEV4": 4}


def beyond_chance(impact: Impact) -> bool:
    """Whether the failed requests beyond the baseline's share are more than chance gives: past `CHANCE_Z` Poisson
    standard deviations of the failures that share predicts for the window's requests (with no baseline share, the
    raw count stands)."""
    if impact.failed_excess is None or impact.baseline_failed_share is None or not impact.requests_total:
        return True
    expected = impact.baseline_failed_share * impact.requests_total
    return impact.failed_excess > CHANCE_Z * math.sqrt(max(expected, 1.0))


def counted_users(impact: Impact) -> int | None:
    """The users severity counts: those beyond the baseline's, when more than chance gives (past `CHANCE_Z` Poisson
    standard deviations of the users it predicts); None with no baseline, where the raw count sets no level."""
    if impact.users_excess is None or impact.users_baseline is None:
        return None
    if impact.users_excess <= CHANCE_Z * math.sqrt(max(impact.users_baseline, 1.0)):
        return None
    return impact.users_excess


def _level(f: _Figures) -> tuple[Severity, str, str | None]:
    """The first level whose condition holds, its reason, and which figure decided it (`error`, `failed`, `traced`,
    `users`, `latency`; None for SEV4)."""
    def at_least(value: float | None, floor: float) -> bool:
        return value is not None and value >= floor

    long_enough = at_least(f.minutes, 30)
    requests = not f.from_lines  # an error rate of requests; the share of ERROR/FATAL lines sets SEV3 at most
    doubled = f.error_baseline is None or (f.error_rate is not None and f.error_rate >= FAILING * f.error_baseline)
    checks: list[tuple[Severity, bool, str, str]] = [
        ("SEV1", requests and at_least(f.error_rise, 0.20), "error rate >= 20 points over its baseline", "error"),
        ("SEV1", at_least(f.failed_share, 0.10), ">= 10% of requests failed beyond the baseline's share", "failed"),
        ("SEV1", at_least(f.users, 10_000), ">= 10,000 users affected beyond the baseline's", "users"),
        ("SEV2", requests and at_least(f.error_rise, 0.05), "error rate >= 5 points over its baseline", "error"),
        ("SEV2", at_least(f.failed_share, 0.01), ">= 1% of requests failed beyond the baseline's share", "failed"),
        ("SEV2", at_least(f.users, 1_000), ">= 1,000 users affected beyond the baseline's", "users"),
        ("SEV2", at_least(f.latency_ratio, 3.0) and long_enough, "latency >= 3x baseline over a window >= 30 min",
         "latency"),
        ("SEV3", requests and at_least(f.error_rate, FAILING_FLOOR) and doubled,
         f"error rate >= {FAILING_FLOOR:.0%} and >= {FAILING:g}x baseline", "error"),
        ("SEV3", f.from_lines and at_least(f.error_rate, FAILING_FLOOR) and doubled,
         f"ERROR/FATAL lines >= {FAILING_FLOOR:.0%} of all lines and >= {FAILING:g}x baseline (log lines, not failed "
         "requests: SEV3 at most)", "error"),
        ("SEV3", at_least(f.failed_share, 1e-12), "requests failed beyond the baseline's share", "failed"),
        ("SEV3", f.traced, "a service's traced requests failed, cut short or slowed beyond its baseline's share (its "
         "requests, not the users': SEV3 at most)", "traced"),
        ("SEV3", at_least(f.users, 1), "users affected beyond the baseline's", "users"),
        ("SEV3", at_least(f.latency_ratio, SLOWER), f"latency >= {SLOWER:g}x baseline", "latency"),
    ]
    return next(((level, why, figure) for level, hit, why, figure in checks if hit),
                ("SEV4", "no user-visible impact reached the SEV3 floor", None))


def _decided_by(impact: Impact, figure: str | None) -> str:
    """The figures behind a reason, the window's typical level beside the baseline (and the peak): ` (api/error_ratio
    7.1% over the window, peak 9.0%, against 6.2% before)`, ` (api/p95_ms 540 ms over the window, peak 610 ms,
    against 180 ms before)`."""
    err, lat = impact.peak_error_rate, impact.peak_latency
    if figure == "error" and err is not None:
        name = fmt.series_name(err.service, err.metric) if err.metric != LOG_ERROR_SHARE else "ERROR/FATAL lines"
        return f" ({name} {_typical_words(err, _writer(figure, err))})"
    if figure == "latency" and lat is not None:
        return (f" ({fmt.series_name(lat.service, lat.metric)} "
                f"{_typical_words(lat, _writer(figure, lat))})")
    if figure == "failed" and impact.failed_excess is not None:
        return f" ({failed_words(impact)})"
    if figure == "users":
        return f" ({users_words(impact, affected=True)})"
    if figure == "traced" and impact.traced_failures:
        return f" ({traced_words(impact.traced_failures[0])})"
    return ""


def traced_words(failure: TracedFailure, named: bool = True) -> str:
    """`checkoutservice: 16 of 17 PlaceOrder requests ended without calling cartservice EmptyCart, 4 of 259 before`;
    `ts-route-service: 58 of 59 byIds requests ended without writing the line 'INFO ...', 60 of 488 before`;
    `ts-food-service: 7 of 9 requests failed with an ERROR line 'ERROR ...', 5 of 149 before` (without the service's
    name unless `named`); slowed requests say how much slower the median one was (`_medians`) and the minutes before
    left out of their count (`_left_out`)."""
    if failure.slower_than_ms is not None:
        done = f"{failure.kind} requests took longer than {fmt.num(failure.slower_than_ms)} ms, their kind's p90 before"
    elif failure.kind is not None and failure.way is not None and failure.way.startswith(LOST_LINE):
        done = (f"{failure.kind} requests ended without writing the line "
                f"'{fmt.readable_pattern(failure.way.removeprefix(LOST_LINE))}'")
    elif failure.kind is not None:
        done = f"{failure.kind} requests ended without calling {failure.way}"
    else:
        done = "requests failed" + ("" if failure.way is None else f" with {_way_words(failure.way)}")
    name = f"{failure.service}: " if named else ""
    return (f"{name}{fmt.num(failure.window_failed)} of {fmt.num(failure.window_requests)} {done}, "
            f"{fmt.num(failure.baseline_failed)} of {fmt.num(failure.baseline_requests)} before{_medians(failure)}"
            f"{_left_out(failure)}")


def _medians(failure: TracedFailure) -> str:
    """`; the kind's median request 0.346 ms, 0.273 ms before` for slowed requests: how much slower, which the count
    past the p90 does not say (OnlineBoutique 14:47: currencyservice's 80 of 148 requests past 0.345 ms had it
    "degraded" by a tenth of a millisecond); nothing where the analysis predates the medians."""
    now, before = failure.window_median_ms, failure.baseline_median_ms
    if failure.slower_than_ms is None or now is None or before is None:
        return ""
    return f"; the kind's median request {fmt.num(now)} ms, {fmt.num(before)} ms before"


def _left_out(failure: TracedFailure) -> str:
    """`; 7 of the 14 minutes before left out as earlier incidents' (their typical request 1.5x slower or faster than
    the usual)` where the slowed requests' count before leaves minutes out, else nothing."""
    if not failure.minutes_left_out:
        return ""
    return (f"; {fmt.num(failure.minutes_left_out)} of the {fmt.num(failure.baseline_minutes)} minutes before left "
            f"out as earlier incidents' (their typical request {USUAL_SPEED_BAND:g}x slower or faster than the usual)")


def _way_words(way: str) -> str:
    """A way of failing as the review writes it: an ERROR line's template quoted without its masked noise (`an ERROR
    line: <*> ERROR Foo#<*> TraceID: <*> failed` -> `an ERROR line 'ERROR Foo#<*> failed'`), any other way as given."""
    level, said, template = way.partition(" line: ")
    return f"{level} line '{fmt.readable_pattern(template)}'" if said and template else way


def _writer(figure: str, peak: Peak) -> Callable[[float], str]:
    """How a value of the deciding figure's series is written: an error rate as a percentage, a latency in its
    metric's unit."""
    return fmt.pct if figure == "error" else functools.partial(fmt.measure, peak.metric)


def _typical_words(peak: Peak, value: Callable[[float], str]) -> str:
    """`7.1% over the window, peak 9.0%, against 6.2% before` (the peak alone where there is no typical level)."""
    before = "no baseline" if peak.baseline is None else f"{value(peak.baseline)} before"
    if peak.typical is None:
        return f"{value(peak.value)} against {before}"
    return f"{_over_window(peak, value)}, peak {value(peak.value)}, against {before}"


def _over_window(peak: Peak, value: Callable[[float], str]) -> str:
    """The window's typical level, with how many samples it is the median of where they are few (`FEW_SAMPLES`):
    `0.242 s over the window (the median of its 2 samples)`; `7.1% over the window` (many samples, or a share of log
    lines); of two samples one of which carries their median, the lower, which severity reads (`typical_level`):
    `0.00496 s over the window (the lower of its 2 samples)`."""
    if peak.samples is None or peak.samples > FEW_SAMPLES:
        return f"{value(peak.typical)} over the window"
    level = typical_level(peak)
    if level is not None and level < (peak.typical or 0.0):
        return f"{value(level)} over the window (the lower of its 2 samples)"
    of = "its one sample" if peak.samples == 1 else f"the median of its {fmt.num(peak.samples)} samples"
    return f"{value(peak.typical)} over the window ({of})"


def failed_words(impact: Impact) -> str:
    """Failed requests, raw and beyond the baseline's share: `52,000 of 720,000 failed, 7.2%; 9,000 more than the
    baseline's 6.0% predicts`."""
    raw = failed_count(impact)
    if impact.baseline_failed_share is None:
        return f"{raw}; no baseline share to compare against"
    return (f"{raw}; {fmt.num(impact.failed_excess)} more than the baseline's "
            f"{fmt.pct(impact.baseline_failed_share)} predicts")


def failed_count(impact: Impact) -> str:
    """Failed requests as counted: `52,000 of 720,000 failed, 7.2%`."""
    return (f"{fmt.num(impact.requests_failed)} of {fmt.num(impact.requests_total)} failed, "
            f"{fmt.pct(impact.failed_share)}")


def users_words(impact: Impact, affected: bool) -> str:
    """Users on WARN/ERROR lines, raw and beyond the baseline's (`affected`: where harm was seen): `1,400 more users
    affected than the baseline's 1,100 for a window this long (2,500 on WARN/ERROR lines)`; with no baseline, the raw
    count called raw."""
    raw = f"{fmt.num(impact.users_affected)} {_users(impact.users_affected)} on WARN/ERROR lines"
    if impact.users_baseline is None:
        return f"{raw} (a raw count: no baseline to compare against)"
    usual = f"the baseline's {fmt.num(impact.users_baseline)} for a window this long"
    if not affected:
        return f"{raw} against {usual}"
    return (f"{fmt.num(impact.users_excess)} more {_users(impact.users_excess)} affected than {usual} "
            f"({fmt.num(impact.users_affected)} on WARN/ERROR lines)")


def users_label(impact: Impact, severity: Severity | None) -> str:
    """What the users figure is called in the impact tables: `Users affected` where harm was seen, else what it
    counts, `Users on WARN/ERROR lines` (as the prose words it)."""
    return "Users affected" if harm(impact, severity) == "seen" else "Users on WARN/ERROR lines"


def _users(count: int | None) -> str:
    return "user" if count == 1 else "users"


def shows_harm(impact: Impact) -> bool:
    """Whether the impact shows harm: a service affected, or nothing in the data could show one (`harm_checked`
    empty: no latency or error metrics, no log lines)."""
    return bool(impact.services_affected) or not impact.harm_checked


def unconfirmed_peak(impact: Impact) -> str | None:
    """Why the traced calls could not check the peak latency (`no traced call covers it`), where it is a percentile
    they could not check (the `MetricMark` of its series says so); None where they did or need not."""
    lat = impact.peak_latency
    if lat is None:
        return None
    return next((m.unchecked for m in impact.metric_marks if m.unchecked and m.metric == lat.metric
                 and m.service.lower() == str(lat.service).lower()), None)


def unconfirmed_only(impact: Impact) -> list[str]:
    """The services affected whose one mark is a latency percentile the traced calls could not check (TrainTicket
    08:52's ts-admin-user-service, its client p90 from 0.019 s to 42 s that no traced call covers): not their traced
    requests, WARN/ERROR lines or error rate, nor a latency the traces bear out."""
    traced = {f.service.lower() for f in impact.traced_failures} | {s.lower() for s in impact.lines_marked}
    marks = {m.service.lower(): m for m in impact.metric_marks}
    err = impact.peak_error_rate
    by_error = {str(err.service).lower()} if err and any(figure == "error" for figure, _ in _held(impact)) else set()
    lat = impact.peak_latency
    unconfirmed_latency = {str(lat.service).lower()} if lat and unconfirmed_peak(impact) else set()

    def only_unconfirmed(name: str) -> bool:
        key = name.lower()
        if key in traced or key in by_error:
            return False
        mark = marks.get(key)
        return bool(mark.unchecked) if mark else key in unconfirmed_latency
    return [name for name in impact.services_affected if only_unconfirmed(name)]


def _held(impact: Impact) -> list[tuple[str, Peak]]:
    """The figures (`error`, `latency`) whose typical level alone sets SEV3 or worse, each with its peak
    (`held_at_floor`)."""
    return [(figure, peak) for figure, peak in (("error", impact.peak_error_rate), ("latency", impact.peak_latency))
            if peak and peak.typical is not None and fmt.names_service(peak.service) and _sets_a_level(impact, figure)]


def held_at_floor(impact: Impact) -> list[tuple[str, str]]:
    """Where harm was seen, the services whose error rate or latency, as the severity reads them (the window's
    median), alone set SEV3 or worse by the rule (`_level`: an error rate at SEV3's floor, `FAILING_FLOOR` and
    `FAILING`x its baseline, or 5 points over it; a latency `SLOWER`x), each with it in words: they count for the
    severity, so they are affected, though the impact's own test left them out where the baseline held an earlier
    fault's failures (OnlineBoutique 15:04: SEV1 for the front door failing 74.2% of its requests, 0.0% before, and
    only currencyservice and checkoutservice affected). A share of ERROR/FATAL lines names no service."""
    if not impact.services_affected:
        return []
    held: list[tuple[str, str]] = []
    for figure, peak in _held(impact):
        name = (fmt.error_rate_name(peak.service, peak.metric, "") if figure == "error"
                else f"latency ({fmt.series_name(peak.service, peak.metric)})")
        caveat = unconfirmed_peak(impact) if figure == "latency" else None
        unconfirmed = f": a percentile the traces cannot confirm ({caveat})" if caveat else ""
        held.append((str(peak.service), f"{name} {_typical_words(peak, _writer(figure, peak))}{unconfirmed}"))
    return held


def _sets_a_level(impact: Impact, figure: str) -> bool:
    """Whether the error rate's (`figure` "error") or the latency's typical level alone sets a level by the rule,
    every other figure left out."""
    alone = impact.model_copy(update={
        "peak_error_rate": impact.peak_error_rate if figure == "error" else None,
        "peak_latency": impact.peak_latency if figure == "latency" else None,
        "failed_excess": None, "users_excess": None, "traced_failures": []})
    return _level(_figures(alone, harm_seen=True))[2] == figure


def no_harm(impact: Impact) -> str:
    """What was checked for harm and not seen, in words: `no service's latency and error metrics or WARN/ERROR lines
    rose beyond the baseline's noise over the window` (a rise within it may still be figured beside: the error rate
    at 2.2% against 0.0% before the start is one, where the baseline held an earlier fault's 49%; and one sample past
    it is a peak, not the window's: OnlineBoutique 13:45 said emailservice's latency had not risen beside its p90 at
    0.22 s against 0.0046 s in the window's one sample)."""
    return f"no service's {' or '.join(impact.harm_checked)} rose beyond the baseline's noise over the window"


def harm(impact: Impact, severity: Severity | None) -> str:
    """What the window shows of harm: `seen` (a service affected, or nothing here could show one), `peak` (none
    sustained, but a single peak reached the SEV3 floor) or `none` (no impact measured, whatever the window's
    typical level reached)."""
    if shows_harm(impact):
        return "seen"
    if severity is None or not single_peak(impact, severity) or held_at_peak_level(impact, severity):
        return "none"
    return "peak"
