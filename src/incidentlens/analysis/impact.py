"""Impact: how long, how many requests and users, which services and regions, how bad at the peak.

Rules (each number's evidence repeats its rule and carries its SQL):
- requests are counted where they enter: with traces, the root spans in the window (requests as the entry service
  received them; failed = root spans marked as errors, not counted when no span carries an error status). Else at
  the entry service: a service whose name marks it as the front door (gateway, frontend, edge, ingress, api, web),
  else the busiest one; a request-rate metric (per second) times the window's seconds, failed = mean(rate x error
  ratio) x seconds. Without such metrics, log lines of the entry service stand in for requests and its ERROR/FATAL
  lines for failures, only where a service is named as the front door: the busiest logger's lines are no count of
  requests (TrainTicket without traces: 666 lines of ts-seat-service were "666 requests, 0 failed").
- the baseline's share of failed requests, counted the same way over the baseline: what the window's requests would
  have lost had nothing happened (a service that always fails 6% of its requests fails 6% in the window too).
- users affected: distinct values of the logs' user id column on WARN/ERROR/FATAL lines in the window; the
  baseline's users are the same count per slice as long as the window of the baseline the logs cover (from the
  minute of its first line; cut back from its end), averaged over the slices in which a line carried a user id: a
  service whose users see errors every hour has that many in any hour. A covered baseline shorter than the window is
  one slice, scaled up to the window's length (the most it could have had: distinct users grow no faster than
  time); one none of whose lines carries a user id has no users to compare. Beyond it are the window's users less
  that mean (`users_excess`); a user may come back in every hour, so the baseline's distinct users are not scaled
  down from a whole day.
- a service or region is affected when its WARN/ERROR/FATAL lines per minute in the window are at least
  `SURGE_RATIO` times the baseline's (per minute the logs cover, `periods.logged_minutes`: logs that cover a minute
  of a day-long metrics baseline must not make every steady error line a surge), and a Bonferroni-corrected
  Poisson test agrees; or, for services, when one of its latency or error metrics' window median shifted up by at
  least `METRIC_SHIFT` robust standard deviations (`shifts.metric_shift_sql`, with the noise floor
  `IMPACT_NOISE_FLOOR`), two of its window samples or more past that bar (one is a single peak, and the median of
  two is their mean, which one carries); or when each of two or more values of a latency it served (not
  `CLIENT_SIDE`: a client's percentile can sit at its histogram's top bucket) is at least `SLOWER` times its baseline
  median and `METRIC_SHIFT` deviations past it on a scale without the quantile range (that range keeps a spiky series
  from passing for a moved one, but holds any earlier fault in the baseline, and a latency held at 94 times its median
  through the window is harm however high an earlier fault took it; each value, not the median, which one spike
  carries in a window of two or three); or when each of two or more values of an error rate is at least `FAILING`
  times its baseline median and `FAILING_FLOOR`, and `METRIC_SHIFT` deviations past it on that scale (SEV3's
  error-rate floor, held: the front door failing 15% of its requests against 0% is harm however many an earlier
  fault failed); or its traced requests (the traces in which it was called) failed in one way (an error status on
  an operation, an ERROR/FATAL line of a template in the trace, or cut short: ended without a call that requests of
  their kind made before, or without a line below WARN the service wrote in them before; or slowed past their
  kind's p90 of the minutes before at its usual speed, `_slow_requests_sql`) `SURGE_RATIO` times as often as in its
  baseline by the same test (`_failing_requests`): per way, since a baseline holding an earlier fault of the same
  service hides a new failure among the old ones. Slowed requests mark it only where they add `IMPACT_NOISE_FLOOR`
  of the users' requests they sit in (their traces' root spans before the start), at the p90 of them (the slowest
  tenth; a median barely moved can hide a tail that did): less, it is `slowed_too_little`.
- peak latency / error rate: the latency (error) series with the largest robust upward shift, its window maximum,
  among those that mark their service affected when any does (what held, not a lone spike beside it);
  the latency requests were served with when such a series rose, not a service's wait as a client on its own calls
  (`CLIENT_SIDE`: that is its callees' latency, and a client-side percentile can hold outliers of seconds to hours
  the requests did not see); without an error metric, the worst whole minute's share of ERROR/FATAL log lines
  (minutes from the start).
- only what changed at or after the start counts: a series whose window maximum does not rise above its own level in
  the `PRE_START` before the start (by the noise floor, and by half of any excursion from the baseline it had already
  made by then) was already there, and neither peaks nor marks its service.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import pyarrow as pa
from pydantic import BaseModel

from incidentlens.analysis.anchored import metric_step
from incidentlens.analysis.evidence import Evidence
from incidentlens.analysis.links import span_links
from incidentlens.analysis.masking import masked_sql
from incidentlens.analysis.periods import (
    ERROR_LEVELS,
    PROBLEM_LEVELS,
    Span,
    UtcTime,
    check_periods,
    covering,
    in_span,
    iso_z,
    logged_minutes,
    logged_minutes_sql,
    minute_from_sql,
    quote_ident,
    sampling_step_sql,
    span_minutes,
    sql_in,
    sql_str,
    written_span,
)
from incidentlens.analysis.plausibility import PastWindow, TraceCheck, check_percentiles, past_the_window
from incidentlens.analysis.shifts import metric_shift_sql, robust_scale_rule
from incidentlens.analysis.spans import log_trace_column
from incidentlens.analysis.tails import poisson_at_least
from incidentlens.analysis.units import LOG_ERROR_SHARE, three_figures
from incidentlens.analysis.words import counted
from incidentlens.telemetry import arrays

REQUEST_RATE = re.compile(r"rps|qps|request_rate|requests_per_s|req_rate|throughput", re.IGNORECASE)
ERROR_RATIO = re.compile(r"err\w*_(ratio|rate|pct|percent)|fail\w*_(ratio|rate)", re.IGNORECASE)
LATENCY = re.compile(r"latency|duration|response_time|(^|_)p\d{2,3}(_|$)|_ms$", re.IGNORECASE)
#: a latency a service measures as a client of others (`http_client_request_duration_seconds`,
#: `PodClientLatencyP99(s)`, `grpc_client_handling_seconds`)
CLIENT_SIDE = re.compile(r"client", re.IGNORECASE)
#: a success (availability) rate, read as an error rate: its failed share, 1 - it (a percentage divided by 100 first)
SUCCESS_RATIO = re.compile(r"success\w*?(ratio|rate|pct|percent)", re.IGNORECASE)
#: a rate whose name says it is a percentage (`http_error_pct`, `error_rate_percent`): read divided by 100, whatever
#: its values (an error rate going from 0.2% to 0.6% never passes 1, so its values cannot tell)
PERCENT_NAME = re.compile(r"pct|percent|%", re.IGNORECASE)
#: what a success rate's failed share is called (`SuccessRate(%)` -> `100% - SuccessRate(%)`)
FAILED_OF = "100% - "
#: a success rate of 0 is a reading (all failed) only where the service's requests of the time it covers show it:
#: its traced requests in this stretch before the sample, half or more failed (or, with none traced, a request rate
#: above 0 at the sample). Many exporters write 0 for 0/0, a minute with no requests (TrainTicket's front end reads 0
#: all day), which is no failure; Nezha samples each minute, over the minute before
READING_SPAN = timedelta(minutes=1)
ENTRY_SERVICE = re.compile(r"gateway|frontend|front-end|front_end|edge|ingress|(^|[-_])(api|web)([-_]|$)", re.I)
USER_COLUMN = re.compile(r"^(user|customer|account|client)([-_ ]?id)?$", re.IGNORECASE)
REGION_COLUMN = re.compile(r"^(region|zone|availability_zone|az|datacenter|dc|location)$", re.IGNORECASE)
#: a service or region is affected when its problem lines per minute rise this many times ...
SURGE_RATIO = 3.0
#: ... to at least this many lines, unlikely under the baseline rate (one-sided Poisson)
MIN_PROBLEMS = 5
MAX_P_VALUE = 1e-3
#: a minute needs this many log lines for its error share to count as a peak
MIN_LINES_PER_MINUTE = 10
#: a latency or error metric shifted up this many robust standard deviations marks its service affected
METRIC_SHIFT = 5.0
#: a latency held at this many times its baseline median through the window is harm (SEV3's latency floor)
SLOWER = 1.5
#: a minute before the start whose median traced request is within this many times the usual speed either way runs
#: "at the usual speed" (`_slow_requests_sql`); outside it, an earlier incident's, left out of the slow bar. The same
#: value as `SLOWER` today but its own knob: it judges which baseline minutes to trust, not what counts as harm, so
#: moving SEV3's latency floor must not move the baseline the slowed-request count is measured against
USUAL_SPEED_BAND = 1.5
#: an error rate held at this many times its baseline median, and at `FAILING_FLOOR` at least, through the window is
#: harm (SEV3's error-rate floor)
FAILING = 2.0
FAILING_FLOOR = 0.01
#: impact counts harm: a change under 5% of the baseline is one robust standard deviation at most, however flat the
#: series was before (the root-cause tests credit any series with 2%)
IMPACT_NOISE_FLOOR = 0.05
#: the stretch just before the start a series' window maximum must rise above to count as changed by the incident
PRE_START = timedelta(minutes=5)
#: how the way of a request that lost its line starts (`_unlogged_requests_sql`): `the line: <template>`
LOST_LINE = "the line: "
#: a traced request is slowed when it took longer than this share of its kind's requests before the start did: a
#: tenth of them did then, so the surge test's `SURGE_RATIO` asks for three tenths
SLOW_QUANTILE = 0.9


class Peak(BaseModel):
    metric: str
    service: str
    value: float
    baseline: float
    at: UtcTime
    #: the window's typical level, what held rather than one sample: the series' window median, or for the share of
    #: ERROR/FATAL lines the whole window's share (its whole minutes)
    typical: float | None = None
    #: how many samples of the series the window holds, whose median `typical` is (None: a share of log lines)
    samples: int | None = None
    #: the window's second highest sample: a level two samples reached (None: one sample, or a share of log lines)
    second: float | None = None
    #: the peak is the window's last sample: whether it held after it, the window does not say
    at_end: bool = False


class MetricMark(BaseModel):
    """The series that marked a service affected by its latency or error metrics (`_metric_peaks`): of those that
    did, one the traces confirm or need not (not a latency percentile), else the one held furthest past its noise.
    `unchecked` says why the traced calls could not check a percentile (too few, or none): a reader must know the
    service's mark rests on a figure nothing else bears out."""

    service: str
    metric: str
    typical: float  # the window's median
    baseline: float  # the baseline's median
    samples: int  # the window's samples, whose median `typical` is
    unchecked: str | None = None  # `TraceCheck.unchecked`: `no traced call covers it`; None: checked, or no percentile
    #: the held-level test marked it (every window value `SLOWER`x the baseline median for a latency the service
    #: served, `FAILING`x and `FAILING_FLOOR` for an error rate, past its spread), not its median's shift alone
    held: bool = False


class TracedFailure(BaseModel):
    """A service's traced requests that failed in one way beyond its baseline's share (`_failing_requests`)."""

    service: str
    way: str | None  # an error status on an operation, an ERROR line's template, the call a cut request lacked (or
    # `LOST_LINE` and the template of the line it lacked); None: all the ways together
    kind: str | None = None  # cut short or slowed: the kind of request (its entry operations)
    slower_than_ms: float | None = None  # slowed: the kind's p90 before the start, which its requests took longer than
    baseline_minutes: int | None = None  # slowed: the minutes before the start with requests of the kind ...
    minutes_left_out: int | None = None  # ... and those left out as earlier incidents' (`_slow_requests_sql`)
    #: slowed: how long the kind's median request took in the window, and before the start (the minutes kept)
    window_median_ms: float | None = None
    baseline_median_ms: float | None = None
    #: slowed: how much longer the window's slowed requests' median took than the kind's median before, and their
    #: `SLOW_QUANTILE` (the slowest tenth of them) ...
    added_ms: float | None = None
    tail_added_ms: float | None = None
    #: ... and the median of the requests users made before the start that the kind's requests sat in (their traces'
    #: root spans; None: no root span in their traces)
    request_ms: float | None = None
    window_requests: int
    window_failed: int
    baseline_requests: int
    baseline_failed: int
    first_failed: UtcTime | None = None  # failed by a status or an ERROR line: when the window's first of them began
    last_failed: UtcTime | None = None  # ... and its last
    #: already failing (`Impact.failing_before`), where the service's requests failed after the start too in one way,
    #: by a status or a line (`Impact.traced_failures`): of `window_failed`, those that failed in that way (0: in
    #: other ways)
    failed_as_after: int | None = None


class Impact(BaseModel):
    duration_minutes: float  # to the thousandth: 83 s is 1.383, not 1 (the review writes it as `83 s`)
    requests_total: int | None = None
    requests_failed: int | None = None
    entry_service: str | None = None  # where requests were counted
    baseline_failed_share: float | None = None  # failed / requests in the baseline, counted the same way
    requests_failed_excess: int | None = None  # failed beyond the baseline's share of the window's requests
    users_affected: int | None = None
    users_baseline: float | None = None  # distinct users the baseline has per span of the window's length
    users_excess: int | None = None  # users_affected beyond users_baseline
    services_affected: list[str] = []
    lines_marked: list[str] = []  # the services affected by their WARN/ERROR lines' surge (`_log_impact`)
    metric_marks: list[MetricMark] = []  # per service affected by its latency or error metrics, the series that did
    traced_failures: list[TracedFailure] = []  # per service affected by its traced requests, the way that marked it
    #: per service whose traced requests slowed past the surge test but by too little to matter (`_too_little`), and
    #: that nothing else in them marks: not affected
    slowed_too_little: list[TracedFailure] = []
    #: per service whose traced requests already failed (all ways together) in the `PRE_START` before the start
    #: beyond its share earlier in the baseline (`_failing_before`): its requests there, and those of the earlier
    failing_before: list[TracedFailure] = []
    regions_affected: list[str] = []
    peak_latency: Peak | None = None
    peak_error_rate: Peak | None = None
    harm_checked: list[str] = []  # what could mark a service affected: latency/error metrics, traces, log lines
    not_borne_out: list[TraceCheck] = []  # latency percentiles left out: peaks the traced calls do not bear out
    past_window: list[PastWindow] = []  # ... and peaks longer than any request in the window could take
    evidence: list[str] = []


class ImpactResult(BaseModel):
    impact: Impact
    evidence: list[Evidence] = []


def estimate_impact(store: Any, window: Span, baseline: Span) -> ImpactResult:
    """The `impact` block of analysis.json, each number with its evidence."""
    window, baseline = check_periods(window, baseline)
    # its length is the window's as written (to the second), so it agrees with the times beside it
    written = written_span(window)
    impact = Impact(duration_minutes=round(span_minutes(written), 3))
    evidence = [_duration_evidence(written)]
    series = _metric_catalogue(store, window, baseline) if store.has("metrics") else {}
    if series.get("latency") or series.get("error") or series.get("success"):
        impact.harm_checked.append("latency and error metrics")
    # logs with no line in the window count nothing there: not 0 requests, 0 failed, nor WARN/ERROR lines checked
    log_columns = _log_columns(store) if store.has("logs") and _has_lines(store, window) else []
    spans = ("spans", None)
    counted = _requests(store, window, baseline, spans, series, evidence) if store.has("spans") else None
    if store.has("spans"):
        impact.harm_checked.append("failed, cut-short or slowed traced requests")
        impact.traced_failures, impact.slowed_too_little = _failing_requests(store, window, baseline, evidence)
        impact.failing_before = _failing_before(store, window, baseline, impact.traced_failures, evidence)
    entry = None if counted else _entry_service(series, store, window, baseline, log_columns)
    if entry is not None:
        counted = _requests(store, window, baseline, entry, series, evidence)
    if counted:
        (impact.requests_total, impact.requests_failed, impact.entry_service, impact.baseline_failed_share,
         impact.requests_failed_excess) = counted
    surging: dict[str, list[str]] = {}
    if log_columns:
        impact.harm_checked.append("WARN/ERROR lines")
        impact.users_affected, surging = _log_impact(store, window, baseline, log_columns, evidence)
        user = _user_column(log_columns)
        if impact.users_affected is not None and user is not None:
            impact.users_baseline, impact.users_excess = _baseline_users(
                store, window, baseline, user, impact.users_affected, evidence)
        impact.regions_affected = surging.get("region", [])
    # the services the metrics' peaks may come from where none of their own marks a service affected
    elsewhere = [*surging.get("service", []), *(f.service for f in impact.traced_failures)]
    shifted: list[str] = []
    impact.lines_marked = surging.get("service", [])
    if series:
        impact.metric_marks, peaks, impact.not_borne_out, impact.past_window = _metric_peaks(
            store, window, baseline, series, elsewhere, entry_names(impact.entry_service), evidence)
        shifted = [mark.service for mark in impact.metric_marks]
        impact.peak_latency, impact.peak_error_rate = peaks.get("latency"), peaks.get("error")
    if log_columns and impact.peak_error_rate is None:
        impact.peak_error_rate = _log_error_peak(store, window, baseline, evidence)
    shifted = _merge(shifted, [f.service for f in impact.traced_failures])
    impact.services_affected = _merge(surging.get("service", []), shifted)
    impact.evidence = [e.id for e in evidence]
    return ImpactResult(impact=impact, evidence=evidence)


def _duration_evidence(window: Span) -> Evidence:
    return Evidence.make(
        "impact",
        f"incident window: {round(span_minutes(window), 1):g} min from its start to its end",
        "duration = incident window end - start",
        {"duration_minutes": round(span_minutes(window), 2), "start": iso_z(window[0]), "end": iso_z(window[1])},
    )


# ------------------------------------------------------------------------------------------------- metrics


def _metric_catalogue(store: Any, window: Span, baseline: Span) -> dict[str, list[str]]:
    """Metric names per role (request_rate, error, latency) among those present in the window and baseline."""
    sql = (
        f"SELECT DISTINCT metric FROM metrics WHERE ({in_span('ts', window)}) OR ({in_span('ts', baseline)})"
    )
    names = [str(m) for m in store.fetch(sql)["metric"].to_pylist() if m is not None]
    return {
        role: sorted(n for n in names if pattern.search(n))
        for role, pattern in (("request_rate", REQUEST_RATE), ("error", ERROR_RATIO), ("latency", LATENCY),
                              ("success", SUCCESS_RATIO))
    }


#: how the impact's metric evidence chose its peaks and marked services affected
PEAK_RULE = (
    "peak = window max of the series with the largest (max - baseline median) / robust scale, of "
    "those that mark a service affected when any does, else of those of a service affected otherwise (its "
    "other metrics, WARN/ERROR lines, traced requests, or the entry service, where requests were counted or "
    "named as the front door; names compared without case), "
    "else none (where no service is marked: of all); "
    "typical = its window median; "
    f"a success rate counts as an error rate, 1 - it (named '{FAILED_OF}' + it), a 0 only where the "
    f"service's traced requests in the {READING_SPAN.total_seconds():g} s before it, half or more failed "
    "(with none traced, a request rate above 0) show requests all failing, else it is no reading; "
    f"a service is affected when (window median - baseline median) / robust scale >= {METRIC_SHIFT:g} "
    f"and so is the window's second highest value's (two samples reached it: one is a single peak), "
    f"or for a latency it served when every window value (two or more) is >= {SLOWER:g}x the baseline "
    f"median (for an error rate, >= {FAILING:g}x and >= {FAILING_FLOOR:.0%}) and >= {METRIC_SHIFT:g} "
    "deviations past it on a scale without the quantile range; "
    f"robust scale = {robust_scale_rule(IMPACT_NOISE_FLOOR)}; a series counts only when its window max "
    f"rises above its max in the {PRE_START.total_seconds() / 60:g} min before the start by "
    f"{IMPACT_NOISE_FLOOR:.0%}, and a latency percentile only where the traced calls bear it out and its "
    "peak is no longer than the window with a metric step either side"
)


def _metric_peaks(
    store: Any, window: Span, baseline: Span, series: dict[str, list[str]], elsewhere: list[str],
    entry: list[str], evidence: list[Evidence],
) -> tuple[list[MetricMark], dict[str, Peak], list[TraceCheck], list[PastWindow]]:
    """Services whose latency/error metrics shifted up (each with the series that marked it), the worst latency and
    error series at their peak, and the latency percentiles left out of both: peaks the traced calls do not bear out
    (`plausibility`), and peaks longer than any request in the window could take (`past_the_window`). A peak is of a
    series that marks its service affected when any does; else of a service affected otherwise (by its metrics of
    the other role, or by `elsewhere`: the services their WARN/ERROR lines or traced requests marked) or of the
    entry service (`entry`: where requests were counted; or named as the front door, `ENTRY_SERVICE`: TrainTicket's
    front-end metric file names it `Frontend`, its traces `ts-gateway-service`), names compared without case
    (`Frontend` of a metric file is the traces' `frontend`); none else: a peak of a service nothing marked is not
    the incident's. Where nothing marked any service, the peaks are the window's largest (the review words them as
    what the window holds, no impact measured)."""
    failed_shares = [FAILED_OF + name for name in series.get("success", [])]
    series = {**series, "error": series["error"] + failed_shares}
    watched = series["latency"] + series["error"]
    if not watched:
        return [], {}, [], []
    source = _rates_source(store, window, baseline, series, failed_shares)
    step = metric_step(store, baseline)
    sql, table = _window_shifts(store, window, baseline, watched, source, step)
    rose = _rose_after_pre_start(store, window, table, watched, source)
    rose_latencies = rose & np.isin(arrays.texts(table["metric"]), series["latency"])
    checks, past = _latencies_left_out(store, window, table, rose_latencies, step, evidence)
    unsupported = [c for c in checks if c.borne_out is False]
    # a percentile the traced calls deny, or one longer than any request could take, is no change of the window's
    left_out = {(c.service, c.metric) for c in unsupported} | {(p.service, p.metric) for p in past}
    changed = rose & ~_series_named(table, left_out)
    served = _served(table)
    affected, held = _affected(table, series, changed, served)
    shifted, marks = _metric_marks(table, affected, held, checks)
    peaks = _peaks(table, series, changed, affected, served, _peak_services(table, shifted, elsewhere, entry))
    evidence.append(_peaks_evidence(sql, peaks, shifted, marks, unsupported, past))
    return marks, peaks, unsupported, past


def _rates_source(store: Any, window: Span, baseline: Span, series: dict[str, list[str]],
                  failed_shares: list[str]) -> str:
    """What the metric shifts read (`metric_shift_sql`'s `source`): the metrics view, or where an error rate is a
    percentage or a success rate is read as its failed share (`failed_shares`), `_read_rates_sql` over the baseline
    and the `PRE_START` before the window (whichever begins first) to the window's end."""
    in_percent = [name for name in series["error"] if PERCENT_NAME.search(name) and name not in failed_shares]
    if not (failed_shares or in_percent):
        return "metrics"
    reads = (min(baseline[0], window[0] - PRE_START), window[1])
    return _read_rates_sql(store, series, in_percent, reads)


def _window_shifts(store: Any, window: Span, baseline: Span, watched: list[str], source: str,
                   step: timedelta | None) -> tuple[str, pa.Table]:
    """The `metric_shift_sql` of the `watched` series read from `source` (`step`: the metrics' sampling step), and
    its rows: the series with a point in the window (one without has no shift)."""
    # a sample holds the step before its time: one less than half a step after the start measures mostly before
    # it, and is no value the window held (OnlineBoutique 12:27's frontend errors at 0.76%, sampled 5 s after the
    # start, then 2.2% and 4.0%: the level held was said under the 1% floor, and the review said no impact)
    held_from = window[0] + step / 2 if step else None
    sql = metric_shift_sql(window, baseline, metrics=watched, noise_floor=IMPACT_NOISE_FLOOR, source=source,
                           held_from=held_from)
    table = store.fetch(sql)
    return sql, table.filter(table["median_z"].is_valid())


def _rose_after_pre_start(store: Any, window: Span, table: pa.Table, watched: list[str], source: str) -> np.ndarray:
    """Per series of a `metric_shift_sql` table, whether its window maximum rose above its own pod's level in the
    `PRE_START` before the start (`_rose`): what the incident changed, not what was already there."""
    service, metric = (arrays.texts(table[name]) for name in ("service", "metric"))
    peak, baseline_median, pod = (table[name].to_pylist() for name in ("up_peak", "baseline", "pod"))
    before = _pre_start_levels(store, window, watched, source)
    return np.array([_rose(peak[i], before.get((str(service[i]), pod[i], str(metric[i]))), baseline_median[i])
                     for i in range(table.num_rows)], dtype=bool)


def _latencies_left_out(store: Any, window: Span, table: pa.Table, rose: np.ndarray, step: timedelta | None,
                        evidence: list[Evidence]) -> tuple[list[TraceCheck], list[PastWindow]]:
    """Of the latency series that `rose` (a mask over a `metric_shift_sql` table), the peaks longer than any request
    in the window could take (`past_the_window`), and the others checked against the traced calls
    (`check_percentiles`, whose evidence joins `evidence`)."""
    service, metric = (arrays.texts(table[name]) for name in ("service", "metric"))
    peak = table["up_peak"].to_pylist()
    risen = [(str(service[i]), str(metric[i]), peak[i]) for i in np.flatnonzero(rose)]
    past = past_the_window(risen, window, step)
    beyond = {(p.service, p.metric) for p in past}
    checks, checked = check_percentiles(store, window, [r for r in risen if r[:2] not in beyond])
    evidence.extend(checked)
    return checks, past


def _series_named(table: pa.Table, names: set[tuple[str, str]]) -> np.ndarray:
    """Per series of a `metric_shift_sql` table, whether its (service, metric) is among `names`."""
    service, metric = (arrays.texts(table[name]) for name in ("service", "metric"))
    return np.array([(str(service[i]), str(metric[i])) in names for i in range(table.num_rows)], dtype=bool)


def _served(table: pa.Table) -> np.ndarray:
    """Per series of a `metric_shift_sql` table, whether it is one its service measures serving requests, not as a
    client of others (`CLIENT_SIDE`)."""
    return np.array([not CLIENT_SIDE.search(str(m)) for m in arrays.texts(table["metric"])], dtype=bool)


def _affected(table: pa.Table, series: dict[str, list[str]], changed: np.ndarray,
              served: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per series of a `metric_shift_sql` table that `changed`, whether it marks its service affected (its median
    shifted, or the held-level test), and whether the held-level test did (`MetricMark.held`): a latency it `served`
    held `SLOWER` times its baseline median, or an error rate `FAILING` times and at `FAILING_FLOOR`, past its
    spread."""
    metric = arrays.texts(table["metric"])
    past_its_spread = arrays.floats(table["least_z_iqr"]) >= METRIC_SHIFT
    slower = np.isin(metric, series["latency"]) & served & _held_at_least(table, SLOWER) & past_its_spread
    failing = np.isin(metric, series["error"]) & _held_at_least(table, FAILING, FAILING_FLOOR) & past_its_spread
    held = slower | failing
    # affected means a sustained rise (the window median), not one noisy maximum; and a level two samples reached
    # (`held_level`): a window of three or more whose median is past the bar has two past it
    typical_shift = arrays.floats(table["median_z"])
    second = arrays.floats(table["second_z"])
    with np.errstate(invalid="ignore"):
        level = second >= METRIC_SHIFT
    return changed & (((typical_shift >= METRIC_SHIFT) & level) | held), held


def _metric_marks(table: pa.Table, affected: np.ndarray, held: np.ndarray,
                  checks: list[TraceCheck]) -> tuple[list[str], list[MetricMark]]:
    """The services the `affected` series of a `metric_shift_sql` table mark, the furthest shifted (by its window
    median) first, and the series that marked each: of its own, the furthest shifted of those the traces confirm or
    need not check, else the furthest shifted (with why the traces could not check it)."""
    service, metric = (arrays.texts(table[name]) for name in ("service", "metric"))
    median, baseline_median, points = (table[name].to_pylist() for name in (
        "window_median", "baseline", "window_points"))
    order = np.argsort(-arrays.floats(table["median_z"]), kind="stable")
    shifted = list(dict.fromkeys(str(service[i]) for i in order if affected[i]))
    unchecked = {(c.service, c.metric): c for c in checks if c.borne_out is None}
    # per service, a marking series the traces confirm or need not first, in the order above
    marking = sorted((i for i in order if affected[i]),
                     key=lambda i: (str(service[i]), (str(service[i]), str(metric[i])) in unchecked))
    firsts = {str(service[i]): i for i in reversed(marking)}
    marks = [_mark(str(name), str(metric[firsts[name]]), median[firsts[name]], baseline_median[firsts[name]],
                   points[firsts[name]], unchecked.get((name, str(metric[firsts[name]]))), bool(held[firsts[name]]))
             for name in shifted]
    return shifted, marks


def _peak_services(table: pa.Table, shifted: list[str], elsewhere: list[str], entry: list[str]) -> set[str]:
    """The services (in lower case) a peak may be of where no series marks its service affected: those the metrics
    (`shifted`) or anything else (`elsewhere`) marked, and then the entry services too (`entry`, and those named as
    the front door); none when nothing marked a service (a peak may then be of any)."""
    marked = {name.lower() for name in [*shifted, *elsewhere]}
    front = [*entry, *(str(s) for s in set(arrays.texts(table["service"])) if ENTRY_SERVICE.search(str(s)))]
    marked |= {name.lower() for name in front} if marked else set()
    return marked


def _peaks(table: pa.Table, series: dict[str, list[str]], changed: np.ndarray, affected: np.ndarray,
           served: np.ndarray, marked: set[str]) -> dict[str, Peak]:
    """The latency and error series of a `metric_shift_sql` table at their peak, by role: of the role's series that
    `changed` and are `_peak_candidates`, the one whose window maximum is furthest past its noise."""
    service, metric = (arrays.texts(table[name]) for name in ("service", "metric"))
    of_marked = np.array([str(s).lower() in marked for s in service], dtype=bool) if marked else None
    peak_shift = arrays.floats(table["max_z"])
    peaks: dict[str, Peak] = {}
    for role in ("latency", "error"):
        of_role = np.isin(metric, series[role]) & changed
        candidates = _peak_candidates(of_role, served if role == "latency" else None, affected, of_marked)
        if len(candidates):
            peaks[role] = _peak(table, int(candidates[np.argmax(peak_shift[candidates])]))
    return peaks


def _peak_candidates(of_role: np.ndarray, served: np.ndarray | None, affected: np.ndarray,
                     of_marked: np.ndarray | None) -> np.ndarray:
    """The indices of the series (`of_role`) a role's peak may be of: those `served` where any is (a latency the
    requests were served with, not a client's wait on its callees); of them, those `affected` where any is, else
    those of a marked service (`of_marked`; None: nothing marked, any)."""
    candidates = np.flatnonzero(of_role)
    if served is not None and (candidates.size and served[candidates].any()):
        candidates = candidates[served[candidates]]
    if affected[candidates].any():  # the worst of what held through the window, not a lone spike elsewhere
        candidates = candidates[affected[candidates]]
    elif of_marked is not None:
        candidates = candidates[of_marked[candidates]]
    return candidates


def _peak(table: pa.Table, i: int) -> Peak:
    """Series `i` of a `metric_shift_sql` table at its window maximum."""
    row = table.slice(i, 1).to_pylist()[0]
    peak, last, second = row["up_peak"], row["last_value"], row["second_value"]
    return Peak(metric=str(row["metric"]), service=str(row["service"]), value=float(peak),
                baseline=float(row["baseline"]), at=row["up_peak_at"], typical=float(row["window_median"]),
                samples=int(row["window_points"]), second=None if second is None else float(second),
                # the last sample at the peak: the peak's time is the first of tied ones
                at_end=last is not None and last >= peak)


def _peaks_evidence(sql: str, peaks: dict[str, Peak], shifted: list[str], marks: list[MetricMark],
                    unsupported: list[TraceCheck], past: list[PastWindow]) -> Evidence:
    return Evidence.make(
        "impact",
        "peak latency and error rate against baseline; services whose latency/error metrics shifted up",
        sql,
        {
            "peak_latency": peaks["latency"].model_dump(mode="json") if "latency" in peaks else None,
            "peak_error_rate": peaks["error"].model_dump(mode="json") if "error" in peaks else None,
            "services_shifted": shifted,
            "marked_by": [mark.model_dump(mode="json") for mark in marks],
            "not_borne_out": [c.series for c in unsupported][:20],
            "past_window": [f"{p.service}/{p.metric}" for p in past][:20],
            "rule": PEAK_RULE,
        },
    )


def held_level(median: float, samples: int | None, second: float | None) -> float | None:
    """The level a window held of a series: its median, but no higher than its second highest sample (`second`), a
    level two samples reached. One sample is a single peak, no level (None): OnlineBoutique 13:45's emailservice was
    "degraded" off "PodServerLatencyP90(s) 0.22 s over the window (its one sample)"; and the median of two is their
    mean, which one carries (TrainTicket 08:58's ts-config-service, p99 0.217 s then 0.00496 s, its baseline: "0.111 s
    over the window (the median of its 2 samples)"). `samples` None: a share of log lines over the whole window, a
    level; `second` None beside two samples or more: an analysis that predates it, the median."""
    if samples is None:
        return median
    if samples < 2:
        return None
    return median if second is None else min(median, second)


def _mark(service: str, metric: str, typical: float, baseline: float, samples: int,
          unchecked: TraceCheck | None, held: bool) -> MetricMark:
    """A service's `MetricMark`, with what the traces hold of a percentile they could not check."""
    return MetricMark(service=service, metric=metric, typical=float(typical), baseline=float(baseline),
                      samples=int(samples), unchecked=unchecked.unchecked() if unchecked else None, held=held)


def entry_names(entry: str | None) -> list[str]:
    """The services `_requests` counted at (`frontend`; with traces, the root spans' busiest: `a, b, c and more`)."""
    return [] if entry is None else entry.removesuffix(" and more").split(", ")


def _held_at_least(table: pa.Table, times: float, floor: float | None = None) -> np.ndarray:
    """Per series of a `metric_shift_sql` table, whether its window holds two values or more (`held_min`: of the
    samples that measure mostly the window), each at least `times` its baseline median: one value is a peak, not a
    level held. The baseline median must be positive, unless a `floor` every value must reach is given (an error
    rate's baseline is often 0)."""
    now, before = arrays.floats(table["held_min"]), arrays.floats(table["baseline"])
    with np.errstate(invalid="ignore"):
        based = before > 0 if floor is None else (before >= 0) & (now >= floor)
        return based & (now >= times * before) & (arrays.floats(table["held_points"]) >= 2)


def _read_rates_sql(store: Any, series: dict[str, list[str]], in_percent: list[str], reads: Span) -> str:
    """The metrics view over `reads` (from the baseline's start to the window's end, both included) with every
    rate read as a fraction (`metric_shift_sql`'s `source`): each error rate of `in_percent` (its name says percent)
    divided by 100, and each success rate read as an error rate: its failed share, named `FAILED_OF` + its name,
    1 - its value (a series named a percentage, or that goes above 1 in `reads`, divided by 100 first), a 0 kept only
    where the requests show all failing (`READING_SPAN`: else it is a minute with no requests, not one in which all
    failed), and one below 0 never (an exporter's -1 for no data: beside requests it read as 101% failing). The
    span is cut first: the scale's window function would otherwise read every row of the day."""
    names = sql_in(series["success"] or [""])
    percents = sql_in(in_percent or [""])
    span = in_span("ts", reads, end_included=True)
    rated = "FALSE"
    if series["request_rate"]:
        rated = (f"EXISTS (SELECT 1 FROM metrics AS r WHERE r.service = m.service AND r.ts = m.ts "
                 f"AND r.pod IS NOT DISTINCT FROM m.pod AND r.metric IN {sql_in(series['request_rate'])} "
                 "AND r.value > 0)")
    failing, traced = rated, ""
    if store.has("spans"):
        failing = f"CASE WHEN t.requests > 0 THEN 2 * t.failed >= t.requests ELSE {rated} END"
        traced = f" LEFT JOIN ({_traced_at_zeros_sql(names, span)}) AS t ON t.service = m.service AND t.ts = m.ts"
    return f"""(SELECT ts, service, pod, metric,
       CASE WHEN metric IN {percents} THEN value / 100 ELSE value END AS value
FROM metrics WHERE metric NOT IN {names} AND {span}
UNION ALL
SELECT m.ts, m.service, m.pod, {sql_str(FAILED_OF)} || m.metric AS metric,
       1 - m.value / CASE WHEN {_percent_sql("m.metric")} OR max(m.value) OVER (PARTITION BY m.service, m.metric) > 1
                          THEN 100 ELSE 1 END AS value
FROM metrics AS m{traced}
WHERE m.metric IN {names} AND {in_span("m.ts", reads, end_included=True)} AND isfinite(m.value) AND m.value >= 0
  AND (m.value > 0 OR {failing})) AS metrics"""


def _traced_at_zeros_sql(names: str, span: str) -> str:
    """Per service and time of a success rate's 0 reading (of the series `names`, in `span`), its traced requests
    in the `READING_SPAN` up to it, and how many failed: one join for all of them (a subquery per reading, decorrelated
    over every reading of the series, cost a TrainTicket analysis 0.17 s in each of the three queries reading them,
    its success rates all 0)."""
    return (f"SELECT z.service, z.ts, count(s.start_ts) AS requests, count(s.start_ts) FILTER (WHERE s.is_error) "
            f"AS failed FROM (SELECT DISTINCT service, ts FROM metrics WHERE metric IN {names} AND {span} "
            "AND value = 0) AS z LEFT JOIN spans AS s ON lower(s.service) = lower(z.service) AND s.start_ts <= z.ts "
            f"AND s.start_ts > z.ts - INTERVAL {int(READING_SPAN.total_seconds())} SECOND GROUP BY z.service, z.ts")


def _percent_sql(column: str) -> str:
    """Whether a metric's name says it is a percentage (`PERCENT_NAME`), in SQL."""
    return f"regexp_matches({column}, {sql_str(PERCENT_NAME.pattern)}, 'i')"


def _pre_start_levels(store: Any, window: Span, metrics: list[str],
                      source: str) -> dict[tuple[str, str | None, str], float]:
    """Each watched series' maximum in the `PRE_START` before the window starts (`source`: as `_read_rates_sql`),
    by service, pod and metric: a pod's rise is measured against its own level, not its busier twin's."""
    before = (window[0] - PRE_START, window[0])
    sql = (f"SELECT service, pod, metric, max(value) AS level FROM {source} WHERE {in_span('ts', before)} "
           f"AND metric IN {sql_in(metrics)} AND isfinite(value) GROUP BY service, pod, metric")
    return {(str(r["service"]), r["pod"], str(r["metric"])): float(r["level"]) for r in store.fetch(sql).to_pylist()}


def moved_after_start(store: Any, window: Span, series: list[tuple[str, str, str, float | None]],
                      pods: Mapping[str, str] | None = None) -> set[str]:
    """Of `series` ((service, metric, direction "up"|"down", baseline median)), the `service/metric` names whose
    window extreme went past their own level in the `PRE_START` before the start (see `_rose`): what the incident
    changed, not what was already high (or low) when it began. Each pod against its own level; `pods`: by name, the
    pod a series is of where its service has several (the one that moved), else any of its pods will do."""
    if not series or not store.has("metrics"):
        return set()
    before = (window[0] - PRE_START, window[0])
    names = sorted({f"{service}/{metric}" for service, metric, _, _ in series})
    pre, during = in_span("ts", before), in_span("ts", window)
    sql = f"""SELECT service || '/' || metric AS name, pod,
       max(value) FILTER (WHERE {pre}) AS pre_max, min(value) FILTER (WHERE {pre}) AS pre_min,
       max(value) FILTER (WHERE {during}) AS top, min(value) FILTER (WHERE {during}) AS bottom
FROM metrics WHERE {in_span('ts', (before[0], window[1]))} AND isfinite(value)
  AND service || '/' || metric IN {sql_in(names)}
GROUP BY 1, 2"""
    rows: dict[str, list[dict[str, Any]]] = {}
    for row in store.fetch(sql).to_pylist():
        if not (pods or {}).get(row["name"]) or row["pod"] == pods[row["name"]]:
            rows.setdefault(row["name"], []).append(row)
    moved = set()
    for service, metric, direction, base in series:
        for row in rows.get(f"{service}/{metric}", []):
            if direction == "down":  # a fall is a rise of the negated series
                flip = None if base is None else -base
                went = _rose(_negated(row["bottom"]), _negated(row["pre_min"]), flip)
            else:
                went = _rose(row["top"], row["pre_max"], base)
            if went:
                moved.add(f"{service}/{metric}")
    return moved


def _negated(value: float | None) -> float | None:
    return None if value is None else -value


def _rose(peak: float | None, before: float | None, base: float | None = None) -> bool:
    """Whether a window maximum rose above the level just before the start: by the noise floor, and by half of the
    excursion from the baseline median the series had already made before the start (a series at 28.4 s against a
    0.02 s baseline before the start that peaks at 28.6 s after it was already there)."""
    if peak is None:
        return False
    if before is None:
        return True
    excursion = max(0.0, before - base) if base is not None else 0.0
    return peak > before + max(IMPACT_NOISE_FLOOR * abs(before), excursion / 2)


# ---------------------------------------------------------------------------------------------- requests


def _entry_service(
    series: dict[str, list[str]], store: Any, window: Span, baseline: Span, log_columns: list[str]
) -> tuple[str, str] | None:
    """(source, service) where requests are counted: 'metrics' when a request-rate metric exists, else 'logs'."""
    if series.get("request_rate"):
        # a service's rate is its pods' together, summed step by step (`_over_pods_sql`)
        sql = (
            f"WITH rows AS (SELECT service, pod, ts, value AS rate, CAST(NULL AS DOUBLE) AS failed_rate FROM metrics "
            f"WHERE {in_span('ts', baseline)} AND metric IN {sql_in(series['request_rate'])}), "
            f"{_over_pods_sql('rows', 'service')} SELECT service, avg(rate ORDER BY rate) AS rate FROM steps "
            "GROUP BY service"
        )
        source = "metrics"
    elif "service" in log_columns:
        sql = f"SELECT service, count(*) AS rate FROM logs WHERE {in_span('ts', baseline)} GROUP BY service"
        source = "logs"
    else:
        return None
    rates = store.fetch(sql).to_pylist()
    if not rates:
        return None
    named = [r for r in rates if r["service"] is not None and ENTRY_SERVICE.search(str(r["service"]))]
    if source == "logs" and not named:
        return None  # the busiest logger's lines are no count of requests unless requests enter there
    busiest = max(named or rates, key=lambda r: r["rate"] or 0)
    return source, busiest["service"]


def _requests(
    store: Any, window: Span, baseline: Span, entry: tuple[str, str | None], series: dict[str, list[str]],
    evidence: list[Evidence],
) -> tuple[int, int | None, str, float | None, int | None] | None:
    """(requests, failed, where counted, the baseline's failed share, failed beyond that share) in the window, with
    their evidence; None when nothing counts them. The baseline is counted the same way: its share of failed
    requests is what the window's requests would have lost had nothing happened."""
    counted = _count_requests(store, window, entry, series)
    if counted is None:
        return None
    sql, rule, total, failed, service = counted
    before = _count_requests(store, baseline, entry, series) if failed is not None else None
    usual = before[3] / before[2] if before and before[2] and before[3] is not None else None
    excess = failed if failed is None or usual is None else max(0, round(failed - usual * total))
    failures = "failures not recorded" if failed is None else f"{failed} failed"
    if usual is not None:
        failures += f", {excess} more than the baseline's {usual:.1%} of requests predicts"
    evidence.append(Evidence.make(
        "impact", f"requests during the incident: {total} total, {failures} ({service})", sql,
        {"requests_total": total, "requests_failed": failed, "service": service, "baseline_failed_share": usual,
         "requests_failed_excess": excess,
         "rule": rule + "; the baseline counted the same way; excess = failed - baseline failed share x requests "
                        "(all failed where the baseline has no share)"},
    ))
    return total, failed, service, usual, excess


def _count_requests(
    store: Any, span: Span, entry: tuple[str, str | None], series: dict[str, list[str]]
) -> tuple[str, str, int, int | None, str] | None:
    """(sql, rule, requests, failed, where counted) in a span; None when nothing counts them."""
    source, service = entry
    seconds = span_minutes(span) * 60
    if source == "spans":
        sql = (f"SELECT service, count(*) AS requests, sum(CASE WHEN is_error THEN 1 ELSE 0 END) AS failed, "
               f"count(is_error) AS with_status "
               f"FROM spans WHERE parent_id IS NULL AND {in_span('start_ts', span)} GROUP BY service "
               f"ORDER BY requests DESC")
        rows = store.fetch(sql).to_pylist()
        if not rows:
            return None
        total = sum(int(r["requests"]) for r in rows)
        # spans with no status column (is_error NULL) say nothing about failures: not "0 failed"
        recorded = any(r["with_status"] for r in rows)
        failed = sum(int(r["failed"] or 0) for r in rows) if recorded else None
        service = ", ".join(str(r["service"]) for r in rows[:3]) + (" and more" if len(rows) > 3 else "")
        rule = "root spans (requests as they entered the system) in the window; failed = root spans marked as errors"
        if not recorded:
            rule += " (the spans record no error status: failures not counted)"
    elif source == "metrics":
        sql, rule = _request_metrics_sql(span, service, series), (
            f"at the entry service {service}: mean(request rate/s, summed over its pods at each step) x "
            f"{seconds:.0f} s; "
            "failed = mean(rate x error ratio) x seconds"
        )
        row = store.fetch(sql).to_pylist()[0]
        if row["mean_rate"] is None:
            return None
        total = round(row["mean_rate"] * seconds)
        failed = None if row["mean_failed_rate"] is None else round(row["mean_failed_rate"] * seconds)
    else:
        sql = (
            f"SELECT count(*) AS lines, sum(CASE WHEN level IN {sql_in(ERROR_LEVELS)} THEN 1 ELSE 0 END) AS failed "
            f"FROM logs WHERE {in_span('ts', span)} AND service = {sql_str(service)}"
        )
        rule = f"no request-rate metric: log lines of the entry service {service} as requests, ERROR/FATAL as failed"
        row = store.fetch(sql).to_pylist()[0]
        total, failed = int(row["lines"]), int(row["failed"] or 0)
    return sql, rule, total, failed, str(service)


def _request_metrics_sql(window: Span, service: str, series: dict[str, list[str]]) -> str:
    """Rate and error ratio paired per timestamp and pod at one service, summed over its pods step by step
    (`_over_pods_sql`); a percentage ratio (named so, or with a value above 1) is divided by 100."""
    rate = series["request_rate"][0]
    errors = series["error"]
    ratio = (
        f"max(CASE WHEN metric IN {sql_in(errors)} THEN value / CASE WHEN {_percent_sql('metric')} THEN 100 ELSE 1 END "
        "END)" if errors else "CAST(NULL AS DOUBLE)"
    )
    return f"""WITH points AS (
    SELECT ts, pod, max(CASE WHEN metric = {sql_str(rate)} THEN value END) AS rate, {ratio} AS ratio
    FROM metrics WHERE {in_span('ts', window)} AND service = {sql_str(service)}
    GROUP BY ts, pod
), scaled AS (
    SELECT ts, pod, rate, rate * CASE WHEN max(ratio) OVER () > 1 THEN ratio / 100 ELSE ratio END AS failed_rate
    FROM points
), {_over_pods_sql("scaled", "")}
SELECT avg(rate ORDER BY rate) AS mean_rate, avg(failed_rate ORDER BY failed_rate) AS mean_failed_rate,
       (SELECT count(rate) FROM scaled) AS points
FROM steps"""


def _over_pods_sql(rows: str, by: str) -> str:
    """CTEs `step` and `steps` over `rows` (ts, pod, rate, failed_rate[, `by`]): each pod's rate averaged in steps of
    the data's own sampling step (`periods.sampling_step_sql` over the pods), then summed over the pods per step:
    two replicas serve twice a pod's requests, while a pod that replaced another mid-window (a rollout) counts only
    for the steps it served (a sum of each pod's mean over the whole window counted both for all of it). Rates are
    added in the order of their values: in the order the threads reach them, the last bits would vary run to run."""
    group = f"{by}, " if by else ""
    rated = f"(SELECT * FROM {rows} WHERE rate IS NOT NULL)"
    return f"""step AS (
    SELECT greatest(1, step) AS seconds FROM ({sampling_step_sql(rated, f"{group}pod")})
), per_pod AS (
    SELECT {group}pod, floor(epoch(ts) / (SELECT seconds FROM step)) AS bucket, avg(rate ORDER BY rate) AS rate,
           avg(failed_rate ORDER BY failed_rate) AS failed_rate
    FROM {rows} WHERE rate IS NOT NULL GROUP BY ALL
), steps AS (
    SELECT {group}bucket, sum(rate ORDER BY rate) AS rate, sum(failed_rate ORDER BY failed_rate) AS failed_rate
    FROM per_pod GROUP BY ALL
)"""


# --------------------------------------------------------------------------------------------------- logs


def _log_columns(store: Any) -> list[str]:
    return store.fetch("SELECT * FROM logs LIMIT 0").schema.names


def _has_lines(store: Any, window: Span) -> bool:
    """Whether the logs hold any line in the window (a gap in the logs is no evidence of quiet)."""
    return bool(store.fetch(f"SELECT 1 AS hit FROM logs WHERE {in_span('ts', window)} LIMIT 1").num_rows)


def _log_error_peak(store: Any, window: Span, baseline: Span, evidence: list[Evidence]) -> Peak | None:
    """Without an error metric: the worst minute's share of ERROR/FATAL lines against the baseline's share. Minutes
    count from the window's start and only whole ones are compared (the whole window when it is shorter): a window
    that ends at the data's last line seconds into a minute leaves a sliver of a few lines, whose share is noise."""
    errors = f"sum(CASE WHEN level IN {sql_in(ERROR_LEVELS)} THEN 1 ELSE 0 END)"
    sql = f"""SELECT minute, count(*) AS lines, {errors} AS errors
FROM (
    SELECT CASE WHEN {in_span('ts', window)} THEN {minute_from_sql('ts', window[0])} END AS minute, level
    FROM logs WHERE ({in_span('ts', window)}) OR ({in_span('ts', baseline)})
) AS lines
GROUP BY minute"""
    rows = store.fetch(sql).to_pylist()
    base = next((r for r in rows if r["minute"] is None), None)
    whole = max(1, int(span_minutes(window)))
    minutes = [r for r in rows
               if r["minute"] is not None and r["minute"] < whole and r["lines"] >= MIN_LINES_PER_MINUTE]
    if base is None or not minutes:
        return None
    worst = max(minutes, key=lambda r: (r["errors"] / r["lines"], -r["minute"]))
    if worst["errors"] / worst["lines"] <= base["errors"] / base["lines"]:
        return None  # no minute worse than the baseline: nothing to call a peak
    whole_minutes = [r for r in rows if r["minute"] is not None and r["minute"] < whole]
    peak = Peak(metric=LOG_ERROR_SHARE, service="all", value=float(worst["errors"] / worst["lines"]),
                baseline=float(base["errors"] / base["lines"]),
                at=window[0] + timedelta(minutes=int(worst["minute"])),
                typical=sum(r["errors"] for r in whole_minutes) / sum(r["lines"] for r in whole_minutes))
    evidence.append(Evidence.make(
        "impact", f"peak share of ERROR/FATAL log lines: {peak.value:.1%} in the minute from {peak.at:%H:%M:%S} vs "
                  f"{peak.baseline:.1%}",
        sql,
        {"peak_error_rate": peak.model_dump(mode="json"),
         "rule": f"no error-ratio metric: ERROR/FATAL lines / all lines per whole minute from the window's start "
                 f"(minutes with >= {MIN_LINES_PER_MINUTE} lines; a window under a minute is one), baseline over "
                 "the whole baseline; typical: over all the window's whole minutes"},
    ))
    return peak


def _log_impact(
    store: Any, window: Span, baseline: Span, columns: list[str], evidence: list[Evidence]
) -> tuple[int | None, dict[str, list[str]]]:
    """One scan of the problem lines: distinct users in the window, and the services and regions whose problem
    lines per minute surged (most excess first)."""
    dims = {"service": "service"} if "service" in columns else {}
    region = next((c for c in columns if REGION_COLUMN.match(c)), None)
    if region is not None:
        dims["region"] = region
    user = _user_column(columns)
    if not dims and user is None:
        return None, {}
    sql = _problem_counts_sql(window, baseline, list(dims.values()), user)
    table = store.fetch(sql)
    users = None
    if user is not None:
        overall = table.to_pylist()[-1] if not dims else next(
            r for r in table.to_pylist() if all(r[f"g__{c}"] == 1 for c in dims.values())
        )
        users = int(overall["users"])
        evidence.append(Evidence.make(
            "impact", f"{users} distinct users on WARN/ERROR/FATAL lines during the incident", sql,
            {"users_affected": users, "column": user},
        ))
    window_minutes, baseline_minutes = logged_minutes(store, window, baseline)
    found = {role: _surging(table, column, window_minutes / baseline_minutes) for role, column in dims.items()}
    if dims:
        evidence.append(Evidence.make(
            "impact",
            f"affected: {counted(len(found.get('service', [])), 'service')}, "
            f"{counted(len(found.get('region', [])), 'region')} by WARN/ERROR/FATAL lines",
            sql,
            {"services_affected": found.get("service"), "regions_affected": found.get("region"),
             "region_column": region,
             "rule": f"problem lines per minute >= {SURGE_RATIO:g}x baseline, >= {MIN_PROBLEMS} lines, Poisson p < "
                     f"{MAX_P_VALUE:g} / values compared"},
        ))
    return users, found


def _user_column(columns: list[str]) -> str | None:
    return next((c for c in columns if USER_COLUMN.match(c)), None)


def _baseline_users(
    store: Any, window: Span, baseline: Span, user: str, users: int, evidence: list[Evidence]
) -> tuple[float | None, int | None]:
    """(distinct users on WARN/ERROR/FATAL lines the baseline has per span of the window's length, the window's
    `users` beyond that): the mean over the whole slices of that length (cut back from the baseline's end) of the
    baseline its logs cover (from the minute of its first line) in which a line carried a user id; a covered baseline
    shorter than the window is one slice, scaled up to the window's length. (None, None): no line of the baseline
    carried a user id, so it cannot say how many users it had."""
    logged = _logged_from(store, baseline, user)
    if logged is None:
        return None, None
    covered = (max(baseline[0], logged), baseline[1])
    length = min(span_minutes(window), span_minutes(covered)) * 60
    slices = int(span_minutes(covered) * 60 // length)
    origin = (covered[1].replace(tzinfo=None) - datetime(1970, 1, 1)).total_seconds() - slices * length
    sql = f"""SELECT CAST(floor((epoch(ts) - {origin!r}) / {length!r}) AS BIGINT) AS slice,
       count(DISTINCT CASE WHEN level IN {sql_in(PROBLEM_LEVELS)} THEN {quote_ident(user)} END) AS users,
       count({quote_ident(user)}) AS carried
FROM logs WHERE {in_span('ts', covered)}
GROUP BY slice"""
    counts = [int(r["users"]) for r in store.fetch(sql).to_pylist()
              if r["slice"] is not None and r["slice"] >= 0 and r["carried"]]
    if not counts:
        return None, None
    expected = round(float(np.mean(counts)) * span_minutes(window) * 60 / length, 1)
    excess = max(0, round(users - expected))
    counted_over = _users_counted_over(counts, span_minutes(covered), span_minutes(window))
    evidence.append(Evidence.make(
        "impact", f"{expected:g} distinct users on WARN/ERROR/FATAL lines per {span_minutes(window):g} min"
                  f"{counted_over}: {excess} more in the window", sql,
        {"users_baseline": expected, "users_excess": excess, "slices": len(counts), "column": user,
         "logged_from": iso_z(covered[0]),
         "rule": "distinct users on WARN/ERROR/FATAL lines per slice as long as the window of the baseline the logs "
                 "cover (from the minute of its first line; cut back from its end; a shorter one is one slice, "
                 "scaled up to the window's length), mean over the slices in which a line carried a user id; users "
                 "beyond = the window's users - this mean"},
    ))
    return expected, excess


def _logged_from(store: Any, baseline: Span, user: str) -> datetime | None:
    """The minute of the baseline's first log line; None when no line of the baseline carries a user id."""
    row = store.fetch(f"SELECT min(ts) AS first, count({quote_ident(user)}) AS carried FROM logs "
                      f"WHERE {in_span('ts', baseline)}").to_pylist()[0]
    if not row["carried"] or row["first"] is None:
        return None
    return row["first"].replace(tzinfo=None, second=0, microsecond=0)


def _users_counted_over(counts: list[int], covered_minutes: float, window_minutes: float) -> str:
    """Where the baseline's users were counted: ` of the baseline (mean of 4 slices)`, or for a covered baseline
    shorter than the window, `: 15 in the 15 min of the baseline its logs cover, scaled up`."""
    if covered_minutes >= window_minutes:
        return f" of the baseline (mean of {len(counts)} slice{'s' if len(counts) > 1 else ''})"
    return f": {counts[0]} in the {round(covered_minutes, 1):g} min of the baseline its logs cover, scaled up"


def _problem_counts_sql(window: Span, baseline: Span, columns: list[str], user: str | None) -> str:
    """WARN/ERROR/FATAL lines in the window and the baseline per value of each column, plus a grand total row with
    the window's distinct users."""
    users = (
        f",\n       count(DISTINCT CASE WHEN {in_span('ts', window)} THEN {quote_ident(user)} END) AS users"
        if user else ""
    )
    select = "".join(f"{quote_ident(c)}, GROUPING({quote_ident(c)}) AS {quote_ident('g__' + c)}, " for c in columns)
    sets = "".join(f"({quote_ident(c)}), " for c in columns)
    group = f"\nGROUP BY GROUPING SETS ({sets}())" if columns else ""
    return f"""SELECT {select}sum(CASE WHEN {in_span('ts', window)} THEN 1 ELSE 0 END) AS window_problems,
       sum(CASE WHEN {in_span('ts', baseline)} THEN 1 ELSE 0 END) AS baseline_problems{users}
FROM logs
WHERE level IN {sql_in(PROBLEM_LEVELS)} AND (({in_span('ts', window)}) OR ({in_span('ts', baseline)})){group}"""


def _surging(table: pa.Table, column: str, minutes_ratio: float) -> list[str]:
    rows = [r for r in table.to_pylist() if r[f"g__{column}"] == 0 and r[column] is not None]
    if not rows:
        return []
    window = np.array([r["window_problems"] for r in rows], dtype=float)
    expected = np.maximum(np.array([r["baseline_problems"] for r in rows], dtype=float), 0.5) * minutes_ratio
    return _surges([str(r[column]) for r in rows], window, expected)


def _surges(names: list[str], seen: np.ndarray, expected: np.ndarray) -> list[str]:
    """The names whose count in the window surged past what the baseline predicts (`SURGE_RATIO` x it, at least
    `MIN_PROBLEMS`, Poisson p < `MAX_P_VALUE` over the names compared), most excess first."""
    # one test per name: Bonferroni over the names, so a quiet service's few extra lines do not count
    significant = poisson_at_least(seen, expected) < MAX_P_VALUE / len(names)
    hit = (seen >= SURGE_RATIO * expected) & (seen >= MIN_PROBLEMS) & significant
    order = np.argsort(-(seen - expected), kind="stable")
    return [names[i] for i in order if hit[i]]


#: how the impact's traced-request evidence marks a service affected by its failed, cut-short or slowed requests
TRACED_FAILURE_RULE = (
    "a service's requests: the traces in which another service (or none) called it; failed in a way: it "
    "gave such a span of an operation an error status, or wrote an ERROR/FATAL line of a template in "
    "the trace (counted over the requests begun while logs were written), or, of the requests of one "
    "kind (the operations that entered it), ended without a call that kind made before the start, or "
    "without a line of a template (below WARN) the service wrote in that kind's requests before it "
    "(where the service wrote lines in the window: its logs were being collected), or "
    f"took longer than the kind's p{SLOW_QUANTILE * 100:.0f} before the start (of the minutes before "
    f"it whose median request is within {USUAL_SPEED_BAND:g}x either way of the speed most of them "
    "ran at: the others are earlier incidents'); per "
    f"way and all error ways together, failed in the window >= {SURGE_RATIO:g}x the baseline's failed "
    f"share, >= {MIN_PROBLEMS}, Poisson p < {MAX_P_VALUE:g} / ways compared; slowed requests "
    f"affect their service only where their p{SLOW_QUANTILE * 100:.0f} (tail_added_ms; added_ms: "
    f"their median) took at least {IMPACT_NOISE_FLOOR:.0%} of the users' requests they sat in (their "
    "traces' root spans' median before the start) longer than the kind's median before: less is within "
    "what a user's request varies by (slowed_too_little)"
)


def _failing_requests(store: Any, window: Span, baseline: Span,
                      evidence: list[Evidence]) -> tuple[list[TracedFailure], list[TracedFailure]]:
    """Services whose traced requests failed in one way more often in the window than in the baseline (the log lines'
    surge test, `_surges`, on the requests failed that way against the service's own baseline share of them, over
    all the ways compared), most excess first, each with the way that failed most beyond the baseline.

    A service's requests are the traces in which it was called (a span whose parent is another service's, or none),
    each at its first such span; a request failed in a way when the service gave one of those spans an error status
    (a way per operation) or wrote an ERROR/FATAL line of a template in the trace (a way per template): the per-trace
    problem events of `spans.trace_events_sql`; all ways together are tested too (the evidence names a way where it
    tests as strong). Per way, not only all failures together: a baseline that holds an earlier fault of the same
    service (TrainTicket's food service failed 91 of 149 requests in the hour before 09:34, with 'foodStoresListResult
    is null') hides a new failure in 7 of its 9 requests after it. Where log lines count, only the requests begun
    while logs were written do: a request in a minute no log file covers went unlogged, it did not succeed.

    A request cut short fails too, though no status or line says so (`spans.TraceSignal.cut_short`): a way is a call
    the requests of one kind (the operations that entered the service) made before the start, and one of them that
    ended without it failed that way (OnlineBoutique 13:10: 16 of checkoutservice's 17 PlaceOrder requests ended
    without calling cartservice's EmptyCart, 4 of 259 before, with no error status or line to show it). So is one
    that ended without a line the service wrote in the requests of its kind before (`_unlogged_requests_sql`).

    A request slowed goes wrong too, though it succeeds: of one kind, one that took longer than nine in ten of its
    kind before the start (their p90, `SLOW_QUANTILE`) did; a tenth of them did before, so the surge test asks three
    times that share (OnlineBoutique 14:12, paymentservice's network delayed: checkoutservice's PlaceOrder requests
    waited half a second longer on each call to it, with no status, line or metric to show it). But only where the
    slowdown adds `IMPACT_NOISE_FLOOR` of what the user waited for (`_too_little`): a service slowed by less is
    returned second, not affected, unless another way marks it."""
    links, log_trace = span_links(store), log_trace_column(store)
    sql = _failing_requests_sql(window, baseline, links, log_trace)
    cut_sql = _cut_requests_sql(window, baseline, links)
    slow_sql = _slow_requests_sql(window, baseline, links)
    queries = [sql, cut_sql, slow_sql]
    if log_trace is not None:
        queries.append(_unlogged_requests_sql(window, baseline, links, log_trace))
    rows = [r for query in queries for r in store.fetch(query).to_pylist()
            if r["baseline_requests"] and r["window_requests"]]
    surging = _surging_requests(rows)
    ways = [r for r in surging if not _too_little(r)]
    found = list(dict.fromkeys(str(r["service"]) for r in ways))
    # a service's way said is the one most beyond its baseline, but a line its requests no longer wrote only where
    # nothing says more of how they failed (TrainTicket 09:49: "7 of 10 requests failed with an ERROR line '...[Code
    # not found]'", not "10 of 10 ... ended without writing the line '...GET Code By cookieId'")
    worst = [min((r for r in ways if r["service"] == name), key=lambda r: str(r["way"]).startswith(LOST_LINE))
             for name in found]
    little = [next(r for r in surging if r["service"] == name)
              for name in dict.fromkeys(str(r["service"]) for r in surging) if name not in found]
    said = "; ".join(_failed_words(r) for r in worst[:3])
    fields = ("service", "way", "kind", "slower_than_ms", "baseline_minutes", "minutes_left_out", "window_requests",
              "window_failed", "baseline_requests", "baseline_failed", "window_median_ms", "baseline_median_ms",
              "added_ms", "tail_added_ms", "request_ms")
    evidence.append(Evidence.make(
        "impact", f"affected: {counted(len(found), 'service')} by failed, cut-short or slowed traced requests"
                  + (f": {said}" if said else "")
                  + "".join(f"; slower, too little to matter: {_failed_words(r)}" for r in little),
        ";\n".join(queries),
        {"services_affected": found,
         "failed": [{k: r.get(k) for k in fields} for r in worst],
         "slowed_too_little": [{k: r.get(k) for k in fields} for r in little],
         "rule": TRACED_FAILURE_RULE},
    ))
    return ([TracedFailure.model_validate(r) for r in worst], [TracedFailure.model_validate(r) for r in little])


def _too_little(row: dict[str, Any]) -> bool:
    """Slowed requests (`_slow_requests_sql`) whose slowdown adds less than `IMPACT_NOISE_FLOOR` of the users'
    requests they sit in took before the start, at their `SLOW_QUANTILE` (the slowest tenth of them), not only at
    their median: a change no larger than one robust standard deviation of what the user waits for is no harm
    (OnlineBoutique 14:47, currencyservice's slowed GetSupportedCurrencies requests took 0.108 ms longer than its usual
    0.273 ms at their median, 0.197 ms at their p90, inside frontend requests of 520 ms); a tail that adds more is
    (15:47: shippingservice's slowed GetQuote requests 1.05 ms longer at their median, 121 ms at their p90, inside
    requests of 546 ms). Where their traces hold no root span, nothing says what the user waited for: they count."""
    added, request = row.get("tail_added_ms"), row.get("request_ms")
    return added is not None and request is not None and float(added) < IMPACT_NOISE_FLOOR * float(request)


def _failing_before(store: Any, window: Span, baseline: Span, after: list[TracedFailure],
                    evidence: list[Evidence]) -> list[TracedFailure]:
    """Services whose traced requests were already failing before the start: in the `PRE_START` before it, their
    requests failed (in any of `_failing_requests_sql`'s ways, all together) beyond their share earlier in the
    baseline, by the surge test of `_failing_requests`, most excess first. A responder must not blame the change at
    the start for them (TrainTicket 11:04: ts-travel2-service failed 12 of its 12 requests in the 5 minutes before
    the start, 34 of 321 earlier). Each with the last of them, and where the service's requests failed after the
    start by a status or a line (`after`), how many failed that way: TrainTicket 09:25's ts-basic-service failed 83
    of 143 before, the last begun 2.5 minutes before the start, none with the line 5 of its 53 requests failed with
    after it (an earlier failure over, not the same one going on). None where the baseline holds nothing before
    that stretch."""
    before = (window[0] - PRE_START, window[0])
    earlier = (baseline[0], before[0])
    if earlier[1] <= earlier[0]:
        return []
    sql = _failing_requests_sql(before, earlier, span_links(store), log_trace_column(store))
    fetched = store.fetch(sql).to_pylist()
    rows = [r for r in fetched if r["way"] is None and r["baseline_requests"] and r["window_requests"]]
    found = _surging_requests(rows)
    # the one way each service's requests failed in after the start: none where the way said is all ways together
    # (way None: together further past their share than any one), which names no way to hold the earlier ones to
    ways = {f.service: f.way for f in after if f.way is not None and f.kind is None and f.slower_than_ms is None}
    for row in found:
        name = row["service"]
        row["failed_as_after"] = None if name not in ways else next(
            (r["window_failed"] for r in fetched if r["service"] == name and r["way"] == ways[name]), 0)
    minutes = PRE_START.total_seconds() / 60
    said = "; ".join(f"{r['service']} {r['window_failed']} of {r['window_requests']} requests failed, begun from "
                     f"{iso_z(r['first_failed'])} to {iso_z(r['last_failed'])}, {r['baseline_failed']} of "
                     f"{r['baseline_requests']} earlier" for r in found[:3])
    evidence.append(Evidence.make(
        "impact", f"failing before the start: {counted(len(found), 'service')} whose traced requests failed in the "
                  f"{minutes:g} min before it beyond their earlier share" + (f": {said}" if said else ""), sql,
        {"services": [r["service"] for r in found], "minutes_before": minutes,
         "failed": [{**{k: r[k] for k in ("service", "window_requests", "window_failed", "baseline_requests",
                                          "baseline_failed", "failed_as_after")},
                     "first_failed": iso_z(r["first_failed"]), "last_failed": iso_z(r["last_failed"])}
                    for r in found],
         "rule": f"a service's requests begun in the {minutes:g} min before the start (as `failed, cut-short or "
                 "slowed traced requests` counts them, all ways of failing by a status or an ERROR line together) "
                 f"failed >= {SURGE_RATIO:g}x their share earlier in the baseline, >= {MIN_PROBLEMS}, Poisson p < "
                 f"{MAX_P_VALUE:g} / services compared; failed_as_after: of those, the ones that failed in the way "
                 "the service's requests after the start did (a status or a line; null: they did not fail so, or in "
                 "no one way)"},
    ))
    return [TracedFailure.model_validate(r) for r in found]


def _surging_requests(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The rows (a service's, or its way's, requests and failed requests in the window and the baseline) whose
    failures pass the surge test against their baseline share (`_surges`), most excess first."""
    if not rows:
        return []
    failed = np.array([r["window_failed"] for r in rows], dtype=float)
    share = np.array([max(float(r["baseline_failed"]), 0.5) / float(r["baseline_requests"]) for r in rows])
    expected = share * np.array([r["window_requests"] for r in rows], dtype=float)
    return [rows[int(i)] for i in _surges([str(i) for i in range(len(rows))], failed, expected)]


def _failed_words(row: dict[str, Any]) -> str:
    """`ts-food-service 7 of 9 requests failed with an ERROR line: ..., 5 of 149 before` (all ways together: `7 of 9
    requests failed, ...`; cut short: `checkoutservice 16 of 17 PlaceOrder requests ended without calling ...`, or
    `... ended without writing the line '...'`)."""
    if row.get("slower_than_ms") is not None:
        done = (f"{_short(str(row['kind']), 80)} requests took longer than {three_figures(row['slower_than_ms'])} ms "
                f"(the p{SLOW_QUANTILE * 100:.0f} of their kind before)")
    elif row["kind"] is not None and str(row["way"]).startswith(LOST_LINE):
        done = (f"{_short(str(row['kind']), 80)} requests ended without writing the line "
                f"'{_short(str(row['way']).removeprefix(LOST_LINE), 120)}'")
    elif row["kind"] is not None:
        done = f"{_short(str(row['kind']), 80)} requests ended without calling {_short(str(row['way']), 80)}"
    else:
        done = "requests failed" + ("" if row["way"] is None else f" with {_short(str(row['way']))}")
    left_out = (f" ({row['minutes_left_out']} of the {row['baseline_minutes']} minutes before left out as earlier "
                "incidents')" if row.get("minutes_left_out") else "")
    return (f"{row['service']} {row['window_failed']} of {row['window_requests']} {done}, "
            f"{row['baseline_failed']} of {row['baseline_requests']} before{left_out}")


def _short(text: str, width: int = 160) -> str:
    return text if len(text) <= width else text[:width - 3] + "..."


def _failing_requests_sql(window: Span, baseline: Span, links: str, log_trace: str | None) -> str:
    """Per service and way of failing, and for all ways together (way NULL): its requests, and those that failed that
    way, in the window and in the baseline (`_failing_requests`)."""
    failures = ["SELECT DISTINCT child.service, child.trace_id, 'an error status on ' || coalesce(child.operation, "
                "'its spans') AS way FROM spans AS child LEFT JOIN spans AS parent "
                "ON parent.trace_id = child.trace_id AND parent.span_id = child.parent_id "
                "WHERE child.is_error AND parent.service IS DISTINCT FROM child.service"]
    logged = "TRUE"
    if log_trace is not None:
        failures.append(f"SELECT DISTINCT service, {quote_ident(log_trace)} AS trace_id, "
                        f"'an ERROR line: ' || {masked_sql()} AS way FROM logs "
                        f"WHERE level IN {sql_in(ERROR_LEVELS)} AND {quote_ident(log_trace)} IS NOT NULL "
                        f"AND {in_span('ts', covering(window, baseline))}")
        logged = _begun_while_logged_sql(window, baseline)
    union = "\n    UNION\n    ".join(failures)
    return f"""WITH requests AS (
    SELECT service, trace_id, min(start_ts) AS started FROM {links}
    WHERE service IS NOT NULL AND parent_service IS DISTINCT FROM service
    GROUP BY service, trace_id
), sides AS (
    SELECT service, trace_id, started, {in_span('started', window)} AS after FROM requests
    WHERE (({in_span('started', window)}) OR ({in_span('started', baseline)})) AND {logged}
), totals AS (
    SELECT service, count(*) FILTER (WHERE after) AS window_requests,
           count(*) FILTER (WHERE NOT after) AS baseline_requests
    FROM sides GROUP BY service
), failed AS (
    {union}
)
-- per way, and all ways together (way NULL): a request that failed in two ways is one failed request
SELECT service, way, CAST(NULL AS VARCHAR) AS kind, any_value(window_requests) AS window_requests,
       count(DISTINCT trace_id) FILTER (WHERE after) AS window_failed,
       any_value(baseline_requests) AS baseline_requests,
       count(DISTINCT trace_id) FILTER (WHERE NOT after) AS baseline_failed,
       min(started) FILTER (WHERE after) AS first_failed, max(started) FILTER (WHERE after) AS last_failed
FROM sides JOIN failed USING (service, trace_id) JOIN totals USING (service)
GROUP BY GROUPING SETS ((service, way), (service)) ORDER BY service, way NULLS LAST"""


def _cut_requests_sql(window: Span, baseline: Span, links: str) -> str:
    """Per service, kind of request (the operations that entered it, as `spans.trace_events_sql` stratifies them)
    and call its requests of that kind made before the start: its requests of the kind, and those that ended without
    the call, in the window and in the baseline (`_failing_requests`)."""
    either = f"({in_span('started', window)}) OR ({in_span('started', baseline)})"
    return f"""WITH requests AS ({_kinded_requests_sql(links)}
), sides AS (
    SELECT service, trace_id, kind, {in_span('started', window)} AS after FROM requests WHERE {either}
), calls AS (
    SELECT DISTINCT parent_service AS service, trace_id, service || ' ' || coalesce(operation, '') AS callee
    FROM {links} WHERE service <> parent_service
), totals AS (
    SELECT service, kind, count(*) FILTER (WHERE after) AS window_requests,
           count(*) FILTER (WHERE NOT after) AS baseline_requests
    FROM sides GROUP BY service, kind
)
SELECT service, callee AS way, kind, any_value(window_requests) AS window_requests,
       any_value(window_requests) - count(*) FILTER (WHERE after) AS window_failed,
       any_value(baseline_requests) AS baseline_requests,
       any_value(baseline_requests) - count(*) FILTER (WHERE NOT after) AS baseline_failed
FROM sides JOIN calls USING (service, trace_id) JOIN totals USING (service, kind)
GROUP BY service, kind, callee HAVING count(*) FILTER (WHERE NOT after) > 0
ORDER BY service, kind, callee"""


def _slow_requests_sql(window: Span, baseline: Span, links: str) -> str:
    """Per service and kind of request (its entry operations, as `_cut_requests_sql`): its requests of the kind, and
    those that took longer than the kind's `SLOW_QUANTILE` before the start (a request's time: its longest span
    entering the service in the trace), in the window and in the baseline (`_failing_requests`).

    Before the start counts only the minutes at the kind's usual speed: the speed most of its minutes ran at (the
    minute median with the most minute medians within `USUAL_SPEED_BAND` times of it either way; the faster on a tie),
    and a minute whose median request took `USUAL_SPEED_BAND` times that or longer, or that over it (failing fast), is
    an earlier incident's, left out (`minutes_left_out` of `baseline_minutes`). Earlier incidents slow (or speed) the
    kind each by its own amount, so their minutes scatter while the usual speed recurs: OnlineBoutique 14:12, 7 of
    checkoutservice's 14 PlaceOrder minutes were earlier faults' (medians 0.79-7.4 s against 0.15-0.29 s), which took
    the p90 from about 0.3 s to 1.9 s; the front door's minutes failing fast (6 ms against 0.1 s) would make an
    ordinary minute look slow."""
    either = f"({in_span('started', window)}) OR ({in_span('started', baseline)})"
    near = f"b.typical BETWEEN a.typical / {USUAL_SPEED_BAND} AND a.typical * {USUAL_SPEED_BAND}"
    return f"""WITH requests AS ({_kinded_requests_sql(links)}
), sides AS (
    SELECT service, kind, trace_id, took, date_trunc('minute', started) AS minute,
           {in_span('started', window)} AS after
    FROM requests WHERE ({either}) AND took IS NOT NULL
), roots AS (
    SELECT trace_id, max(duration_ms) AS root_ms FROM spans WHERE parent_id IS NULL GROUP BY trace_id
), minutes AS (
    SELECT service, kind, minute, median(took) AS typical FROM sides WHERE NOT after GROUP BY ALL
), around AS (
    SELECT a.service, a.kind, a.minute, a.typical, count(*) AS near FROM minutes AS a JOIN minutes AS b
    ON a.service = b.service AND a.kind = b.kind AND {near} GROUP BY ALL
), usual AS (
    -- `around` has one row per minute before (each is near itself): its count is theirs
    SELECT service, kind, first(typical ORDER BY near DESC, typical) AS usual, count(*) AS baseline_minutes
    FROM around GROUP BY service, kind
), kept AS (
    SELECT sides.* FROM sides LEFT JOIN minutes USING (service, kind, minute) LEFT JOIN usual USING (service, kind)
    WHERE after OR typical BETWEEN usual / {USUAL_SPEED_BAND} AND usual * {USUAL_SPEED_BAND}
), cuts AS (
    SELECT service, kind, quantile_cont(took, {SLOW_QUANTILE}) FILTER (WHERE NOT after) AS slower_than_ms,
           count(DISTINCT minute) FILTER (WHERE NOT after) AS kept_minutes
    FROM kept GROUP BY service, kind
)
SELECT service, CAST(NULL AS VARCHAR) AS way, kind, slower_than_ms,
       any_value(baseline_minutes) AS baseline_minutes,
       any_value(baseline_minutes) - any_value(kept_minutes) AS minutes_left_out,
       count(*) FILTER (WHERE after) AS window_requests,
       count(*) FILTER (WHERE after AND took > slower_than_ms) AS window_failed,
       count(*) FILTER (WHERE NOT after) AS baseline_requests,
       count(*) FILTER (WHERE NOT after AND took > slower_than_ms) AS baseline_failed,
       median(took) FILTER (WHERE after) AS window_median_ms,
       median(took) FILTER (WHERE NOT after) AS baseline_median_ms,
       median(took) FILTER (WHERE after AND took > slower_than_ms) - median(took) FILTER (WHERE NOT after)
           AS added_ms,
       quantile_cont(took, {SLOW_QUANTILE}) FILTER (WHERE after AND took > slower_than_ms)
           - median(took) FILTER (WHERE NOT after) AS tail_added_ms,
       median(root_ms) FILTER (WHERE NOT after) AS request_ms
FROM kept JOIN cuts USING (service, kind) JOIN usual USING (service, kind) LEFT JOIN roots USING (trace_id)
WHERE slower_than_ms IS NOT NULL
GROUP BY service, kind, slower_than_ms ORDER BY service, kind"""


def _begun_while_logged_sql(window: Span, baseline: Span) -> str:
    """The condition on a request's `started` that it began while logs were written: after the logs' first line,
    in a minute that holds lines (`logged_minutes_sql`)."""
    minutes = logged_minutes_sql(window, baseline)
    return (f"started >= (SELECT min(first_line) FROM ({minutes})) AND "
            f"{minute_from_sql('started', window[0])} IN (SELECT minute FROM ({minutes}))")


def _unlogged_requests_sql(window: Span, baseline: Span, links: str, log_trace: str) -> str:
    """Per service, kind of request (its entry operations, as `_cut_requests_sql`) and template of a line below WARN
    the service wrote in its requests of that kind before the start: its requests of the kind, and those in which it
    did not write the line, in the window and in the baseline (`_failing_requests`). A request that stops writing its
    success line did not get there (TrainTicket 11:04, ts-route-service's exception: 58 of its 59 routes/byIds
    requests wrote no 'getRouteById' line, 60 of 488 before, with no error status or ERROR line to show it).

    Counted only over the requests begun while logs were written (as the ERROR lines' ways), and only for a service
    that wrote a line in the window: a service none of whose lines the window holds was not logged, which says
    nothing of its requests. A line once in a while is no way: the surge test asks three times its baseline share
    missing, so a line the kind wrote in two thirds of its requests before or fewer, or a kind with fewer requests
    in the window than `MIN_PROBLEMS`, could never pass it, and is not tested (nor counted among the ways compared,
    whose number the test's p-value bar is divided by: TrainTicket's hundreds of INFO lines that come and go would
    have raised the bar for every other way, and taken ts-travel-service's cut requests out of 10:45's review)."""
    trace = quote_ident(log_trace)
    logged = _begun_while_logged_sql(window, baseline)
    either = f"({in_span('started', window)}) OR ({in_span('started', baseline)})"
    return f"""WITH requests AS ({_kinded_requests_sql(links)}
), sides AS (
    SELECT service, trace_id, kind, {in_span('started', window)} AS after FROM requests
    WHERE ({either}) AND {logged}
      AND service IN (SELECT service FROM logs WHERE {in_span('ts', window)})
), lines AS (
    SELECT DISTINCT service, {trace} AS trace_id, {sql_str(LOST_LINE)} || {masked_sql()} AS way FROM logs
    WHERE (level IS NULL OR level NOT IN {sql_in(PROBLEM_LEVELS)}) AND {trace} IS NOT NULL
      AND {in_span('ts', covering(window, baseline))}
), totals AS (
    SELECT service, kind, count(*) FILTER (WHERE after) AS window_requests,
           count(*) FILTER (WHERE NOT after) AS baseline_requests
    FROM sides GROUP BY service, kind
)
SELECT service, way, kind, any_value(window_requests) AS window_requests,
       any_value(window_requests) - count(*) FILTER (WHERE after) AS window_failed,
       any_value(baseline_requests) AS baseline_requests,
       any_value(baseline_requests) - count(*) FILTER (WHERE NOT after) AS baseline_failed
FROM sides JOIN lines USING (service, trace_id) JOIN totals USING (service, kind)
-- only a line that could pass the surge test is tested: one the kind wrote in more than 1 - 1 / SURGE_RATIO of its
-- requests before (else even all of them missing it after is not that many times its share), in enough requests
GROUP BY service, kind, way
HAVING count(*) FILTER (WHERE NOT after) > any_value(baseline_requests) * (1 - 1 / {SURGE_RATIO})
   AND any_value(window_requests) >= {MIN_PROBLEMS}
ORDER BY service, kind, way"""


def _kinded_requests_sql(links: str) -> str:
    """Each service's requests (the traces another service, or none, entered it in), with when the first began, how
    long the longest took and its kind (the operations that entered it), for `_cut_requests_sql` and
    `_slow_requests_sql`."""
    return f"""
    SELECT service, trace_id, min(start_ts) AS started, max(duration_ms) AS took,
           string_agg(DISTINCT coalesce(operation, ''), ' + ' ORDER BY coalesce(operation, '')) AS kind
    FROM {links} WHERE service IS NOT NULL AND parent_service IS DISTINCT FROM service
    GROUP BY service, trace_id"""


def _merge(first: list[str], second: list[str]) -> list[str]:
    return list(dict.fromkeys([*first, *second]))
