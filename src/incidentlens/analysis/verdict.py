"""Whether the evidence names one root cause, and what each service showed.

The headline is the best-supported hypothesis that survived its test (`rootcause._demote_failed`). It is called the
root cause only when it stands out: its confidence at least `STANDS_OUT` times the next hypothesis' and the confidence
left to "none of these", over half (a lead at 9% over twenty candidates that share one host's metrics is twice the
next but still a guess), and its own test not failed. Otherwise the answer is `inconclusive` — no single root cause
found — with the reason (nothing moved beyond the baseline's noise; the support is spread over several services; the
best does not stand out from none of these, as when all it rests on is when its service moved and a shift that names
no mechanism, or one trace change not far past the bar in the only service that moved; every candidate failed its
test), what was checked, and what each service showed, so the reader sees
the evidence instead of a confident guess.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel

from incidentlens.analysis.mechanism import UNTRACED_NOTE, caveat, host_words, shift_words
from incidentlens.analysis.periods import UtcTime
from incidentlens.analysis.rootcause import MORE_LIKELY_THAN_NOT, STANDS_OUT, Hypothesis, ServiceSignals
from incidentlens.analysis.shifts import SHIFT_THRESHOLD, MetricShift
from incidentlens.analysis.spans import SIGNIFICANT_STRENGTH
from incidentlens.analysis.timeline import ServiceOnset
from incidentlens.analysis.words import listed, possessive

__all__ = ["MORE_LIKELY_THAN_NOT", "STANDS_OUT", "Verdict", "decide"]  # the bars are the ranking's (`rootcause`)
#: services listed with what they showed
MAX_SERVICES = 10
ROOT_CAUSE, INCONCLUSIVE = "root_cause", "inconclusive"
NO_SINGLE_ROOT_CAUSE = "No single root cause found"


class ServiceShowing(BaseModel):
    """What one service showed: when it started to move (`onset`: the one value the test and timeline cite) and
    how."""

    service: str
    onset: UtcTime | None
    sign: str  # what moved first
    showed: list[str]
    evidence: list[str]
    ends_after: str | None = None  # its requests were cut short (`ServiceSignals.cut_short`): after calling whom
    #: whether it showed a change of its own: False when all it showed is its host's metrics (every service on that
    #: machine shows them) and latency percentiles the traced calls do not bear out or cannot confirm
    own: bool = True
    #: when it first showed a change of its own (None: none, or none timed): what an order of the services that moved
    #: reads, where its `onset` was a percentile the traces do not bear out or its host's metric
    own_onset: UtcTime | None = None


class Verdict(BaseModel):
    """The `verdict` block of analysis.json."""

    status: Literal["root_cause", "inconclusive"]
    service: str | None = None
    reason: str
    rule: str = (f"root cause: the best hypothesis' test did not fail and its confidence is at least {STANDS_OUT:g}x "
                 "the next one's and that left to none of these, and over half (more likely than all the other "
                 "answers together); otherwise inconclusive")
    unexplained: float | None = None  # the confidence left to "none of these"
    #: a second, independent suspect (`rootcause.independent_second`): a service that moved on its own beside the
    #: best hypothesis, which the best does not explain (two faults at once)
    second: str | None = None
    checked: dict[str, int] = {}
    services: list[ServiceShowing] = []

    def onsets(self) -> list[ServiceOnset]:
        """Each listed service's onset, for the timeline."""
        return [ServiceOnset(service=s.service, t=s.onset, sign=s.sign, evidence=s.evidence)
                for s in self.services if s.onset is not None]


def decide(hypotheses: list[Hypothesis], signals: dict[str, ServiceSignals], checked: dict[str, int],
           unexplained: float = 0.0, stands_on_its_own: bool = True, support: float = 1.0,
           second: str | None = None) -> Verdict:
    """The verdict on the ranked hypotheses (best first) and the candidates' signals; `unexplained`: the confidence
    left to none of these, whether the best hypothesis rests on more than its timing and a shift
    (`rootcause.stands_on_its_own`), and the share of the full margin its evidence allows it (`rootcause.support`:
    below 1 when it rests on one test). `second`: a second, independent suspect (`rootcause.independent_second`),
    not an alternative to the best but a fault beside it: the best is weighed against the other answers, and is
    more likely than they are together, with the second's confidence set aside."""
    showing = services_showing(signals)
    if not hypotheses:
        return Verdict(status=INCONCLUSIVE, checked=checked, services=showing,
                       reason=f"{NO_SINGLE_ROOT_CAUSE}: no service moved beyond its baseline's noise")
    beside = next((h for h in hypotheses if h.service == second), None)
    inconclusive = functools.partial(Verdict, status=INCONCLUSIVE, checked=checked, services=showing,
                                     unexplained=unexplained, second=second)
    top = hypotheses[0]
    if top.test_passed is False:
        return inconclusive(reason=f"{NO_SINGLE_ROOT_CAUSE}: every candidate failed its falsification test")
    hypotheses = [h for h in hypotheses if h is not beside]
    runner_up = hypotheses[1] if len(hypotheses) > 1 else None
    if runner_up is not None and top.confidence < STANDS_OUT * runner_up.confidence:
        close = [h.service for h in hypotheses if top.confidence < STANDS_OUT * h.confidence]
        return inconclusive(reason=f"{NO_SINGLE_ROOT_CAUSE}: the evidence is spread over {', '.join(close)} "
                                   f"({', '.join(f'{h.confidence:.0%}' for h in hypotheses if h.service in close)})"
                                   + _cut_between(close, signals))
    if top.confidence < STANDS_OUT * unexplained:
        why = _why_not_alone(top.service, signals, stands_on_its_own, checked, support)
        return inconclusive(reason=f"{NO_SINGLE_ROOT_CAUSE}: {why}"
                                   f" ({top.service} at {top.confidence:.0%}, and {unexplained:.0%} that it is none "
                                   "of the candidates)")
    if top.confidence <= MORE_LIKELY_THAN_NOT * (1 - (beside.confidence if beside else 0.0)):
        others = len({h.service for h in hypotheses} - {top.service})
        return inconclusive(reason=f"{NO_SINGLE_ROOT_CAUSE}: {top.service} leads at {top.confidence:.0%}, no more "
                                   f"likely than the {others} other candidates and none of these together"
                                   + (f" ({possessive(beside.service)} {beside.confidence:.0%} set aside: "
                                      f"{_beside(beside)})" if beside else ""))
    return Verdict(status=ROOT_CAUSE, service=top.service, checked=checked, services=showing, unexplained=unexplained,
                   second=second,
                   reason=f"{top.service} stands out: {top.confidence:.0%}"
                          + (f" against {runner_up.confidence:.0%} for {runner_up.service}" if runner_up else "")
                          + (f"; beside it, {beside.service} ({beside.confidence:.0%}) is a second, independent "
                             f"suspect: {_beside(beside)}" if beside else ""))


def _beside(second: Hypothesis) -> str:
    """Why a second suspect is one (`Hypothesis.independent`), or that it is."""
    return second.independent or "a change of its own that the first does not explain"


def _cut_between(close: list[str], signals: dict[str, ServiceSignals]) -> str:
    """When two of the close services are a caller whose requests were cut short right after calling the other, and
    that callee: why the traces cannot tell them apart."""
    pair = next(((caller, s.cut_after) for caller in close if (s := signals.get(caller)) is not None and s.cut_short
                 and s.cut_after in close), None)
    if pair is None:
        return ""
    caller, callee = pair
    return (f": {possessive(caller)} requests now end right after calling {callee}, which {callee} returning an "
            f"error or a wrong value does as surely as a failure of {possessive(caller)} own after the call")


def _why_not_alone(service: str, signals: dict[str, ServiceSignals], stands_on_its_own: bool,
                   checked: dict[str, int], support: float = 1.0) -> str:
    """Why the best hypothesis does not stand out from none of the candidates, in words; what it did not show is said
    only of the sources `checked` (logs or traces with no line in the window showed nothing either way)."""
    if stands_on_its_own and support < 1 and service in signals:
        return (f"all that points at {service} is one test, {_the_one_test(signals[service])}; chance passes one of "
                "the many tests made about that far")
    if stands_on_its_own:
        return f"{service} does not stand out from none of the candidates"
    if service in signals and signals[service].cut_short:
        after = signals[service].cut_after
        callee = f" ({after}, the call they now end after)" if after else ""
        return (f"what {service} shows is that its requests now end sooner, with a call fewer; a service it calls "
                f"before that call{callee}, returning an error or a wrong value, cuts them short as well, and nothing "
                "else it shows (errors of its own, a resource near its limit) says the cut is its own")
    if service in signals and signals[service].cut_at_only:
        callers = sorted(signals[service].cut_at_by)
        whose = possessive(callers[0]) if len(callers) == 1 else f"those of {listed(callers)}"
        return (f"what points at {service} is that requests, {whose}, now end right after calling it; a failure of "
                f"the caller's own after that call cuts them there as well, and nothing {service} shows of its own "
                "(errors, a resource near its limit) says the cut is its own")
    unseen = ("no error surge" if checked.get("services_with_logs") else "no logs in the window to show errors",
              "no change in its traces past the bar" if checked.get("services_in_traces")
              else "no traces in the window to show its requests",
              UNTRACED_NOTE.format(s="it") + ", with no metrics of its own" if service in signals
              and signals[service].untraced and not signals[service].observed else "no resource near its limit")
    return (f"all {service} shows is when it moved and a shift that names no mechanism ({', '.join(unseen)}), which a "
            "fault already under way before the start would leave too")


def _the_one_test(s: ServiceSignals) -> str:
    """The one test a lone lead rests on (`rootcause.rests_on_one_test`), with its size against its bar."""
    if s.log_ratio > 0:
        ratio = f"{s.log_ratio:,.0f}" if s.log_ratio >= 10 else f"{s.log_ratio:.2g}"
        return f"its WARN/ERROR lines (x{ratio} their rate before: z {s.log_z:.2f} against the bar {SHIFT_THRESHOLD:g})"
    sure = f", sure to z {s.traced_surely:.2f}" if s.traced_surely < s.trace_strength else ""
    return (f"its change in {s.trace_where} ({s.trace_change or 'its requests changed'}: strength "
            f"{s.trace_strength:.2g}{sure} against the candidate bar {SIGNIFICANT_STRENGTH:g})")


def services_showing(signals: dict[str, ServiceSignals]) -> list[ServiceShowing]:
    """What each candidate showed, earliest first."""
    ordered = sorted(signals.values(), key=lambda s: (s.onset or datetime.max, s.service))
    return [ServiceShowing(service=s.service, onset=s.onset.replace(microsecond=0) if s.onset else None,
                           sign=onset_sign(s), showed=_showed(s), evidence=s.evidence[:5],
                           ends_after=s.cut_after if s.cut_short else None, own=s.shows_its_own,
                           own_onset=s.own_onset.replace(microsecond=0) if s.own_onset else None)
            for s in ordered[:MAX_SERVICES]]




def onset_sign(s: ServiceSignals) -> str:
    """What moved at the service's onset: its WARN/ERROR lines, a metric, or its requests in the traces."""
    if s.onset is None:
        return "no onset"
    if s.onset == s.log_onset:
        return _log_words(s.log_ratio)
    if s.onset == s.metric_onset:
        first = _first_at_onset(s.moved, s.metric_onset) or (s.moved[0] if s.moved else None)
        return shift_words([first])[0] if first else "a metric shifted"
    return f"in {s.trace_where}, {s.trace_change}" if s.trace_change else "its requests changed in the traces"


def _log_words(ratio: float) -> str:
    return f"WARN/ERROR lines at {ratio:.3g}x their baseline rate"


def _showed(s: ServiceSignals) -> list[str]:
    """What the service showed, one item per finding, what moved at its onset first (the bullet that gives the onset
    names the signal that moved then); a finding that moved later says when (`then at 13:11:28 UTC: ...`). A run of
    percentiles the traced calls do not bear out is one item, so a summary that keeps the first two items keeps what
    the traces show of them too."""
    moved = sorted(_with_its_own(_at_onset_first(s.moved, s.metric_onset)[:3], s.own_metrics()),
                   key=lambda m: _later(m.onset, s.onset))
    found: list[tuple[datetime | None, str]] = []
    for i, said in enumerate(shift_words(moved)):
        if i and caveat(moved[i]) and caveat(moved[i]) == caveat(moved[i - 1]):
            found[-1] = (found[-1][0], f"{found[-1][1]}; {said}")  # the same run: what the traces show follows it
        else:
            found.append((moved[i].onset, said))
    if s.log_ratio:
        found.append((s.log_onset, _log_words(s.log_ratio)))
    if s.trace_change:
        traced = [t for t in (s.trace_onset, s.cut_onset) if t is not None]
        found.append((min(traced, default=None), f"in {s.trace_where}, {s.trace_change}"))
    found.sort(key=lambda item: _later(item[0], s.onset))  # stable: findings at the onset keep their order
    return [f"then at {t:%H:%M:%S} UTC: {said}" if _later(t, s.onset) else said for t, said in found]


def _with_its_own(kept: list[MetricShift], own: list[MetricShift]) -> list[MetricShift]:
    """The shifts kept, the last of them given up for the service's largest change of its own
    (`ServiceSignals.own_metrics`) where none kept is one: TrainTicket 08:52's ts-verification-code-service showed
    three client percentiles its traced calls deny and not its server latency, the change its own onset is the time
    of."""
    if not own or any(m in own for m in kept):
        return kept
    return [*kept[:2], own[0]]


def _at_onset_first(moved: list[MetricShift], onset: datetime | None) -> list[MetricShift]:
    """The shifts with the first one that moved at the metric onset (`onset_sign`'s) ahead of the others."""
    first = _first_at_onset(moved, onset)
    return moved if first is None else [first, *(m for m in moved if m is not first)]


def _first_at_onset(moved: list[MetricShift], onset: datetime | None) -> MetricShift | None:
    """The shift that names what moved at the metric onset: the most shifted of those that moved then, a change of the
    service's own (`ServiceSignals.own_metrics`) before its host's metrics and percentiles the traces deny or cannot
    confirm (OnlineBoutique 14:21's timeline gave paymentservice's onset as "PodServerLatencyP99(s) from 0.00496 to
    0.242 ...: a percentile the traces cannot confirm", its 19 traced calls too few to check it, where its CPU, the
    change its hypothesis rests on, moved at the same sample); None when none moved then."""
    at = [m for m in moved if onset is not None and m.onset == onset]
    own = [m for m in at if not caveat(m) and not host_words(m.metric)]
    return (own or at or [None])[0]


def _later(t: datetime | None, onset: datetime | None) -> bool:
    """Whether a finding moved a whole second or more after the service's onset (none: at it)."""
    return t is not None and onset is not None and t.replace(microsecond=0) > onset.replace(microsecond=0)


def checked_counts(shifts: list[Any], surges: list[Any], traces: dict[str, Any],
                   missing: Sequence[str] = ()) -> dict[str, int]:
    """What the before/after tests looked at: metric series, services' logs, services in the traces; a source
    `missing` from the window (`sources.data_sources`) was not looked at there, whatever its baseline held."""
    looked = {source: source not in missing for source in ("metrics", "logs", "traces")}
    return {"metric_series": len(shifts) if looked["metrics"] else 0,
            "services_with_logs": len(surges) if looked["logs"] else 0,
            "services_in_traces": len(traces) if looked["traces"] else 0}
