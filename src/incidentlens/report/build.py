"""Build the incident review from an analysis result.

Every section is derived from the analysis by rule and template; a model's prose (`narrative`) replaces a section's
template text only when `check_grounding` finds every number and time in it among the evidence. Action items and
the runbook come from the mitigation catalogue (`playbooks`), chosen by the root cause's kind.
"""

from __future__ import annotations

import codecs
import datetime as dt
import json
import re
from collections.abc import Callable, Collection, Mapping
from functools import cached_property, partial
from pathlib import Path
from typing import Any, get_args

from pydantic import ValidationError

from incidentlens.analysis.anchored import KNOWN_ONSET, MAX_WINDOW, minutes_before
from incidentlens.analysis.impact import (
    ERROR_RATIO,
    FAILED_OF,
    IMPACT_NOISE_FLOOR,
    LATENCY,
    PRE_START,
    SURGE_RATIO,
)
from incidentlens.analysis.mechanism import (
    HOST_METRIC,
    NO_RESTART_SEEN,
    large_contributor,
    limit_scale,
    past_window_caveat,
)
from incidentlens.analysis.pipeline import SEEN_MOVING
from incidentlens.analysis.plausibility import traced_calls_words
from incidentlens.analysis.rootcause import GLOBAL, BurstEnded, own_health
from incidentlens.analysis.shifts import RANGE_TAIL
from incidentlens.analysis.units import LOG_ERROR_SHARE
from incidentlens.analysis.verdict import MORE_LIKELY_THAN_NOT, STANDS_OUT
from incidentlens.errors import InputError
from incidentlens.report import formatting as fmt
from incidentlens.report.grounding import Facts, check_grounding
from incidentlens.report.playbooks import (
    CALL_MEASURES,
    REVERT_NONE_SEEN,
    REVERT_NOT_GIVEN,
    UNHARMED_MITIGATION,
    UNTRACED_MITIGATION,
    UNTRACED_TELEMETRY,
    log_text_of,
    mitigations_for,
    playbook,
    playbook_kind,
    runbook_for,
)
from incidentlens.report.schema import (
    ActionItem,
    ContributingFactor,
    Contributor,
    Detection,
    DetectionSeries,
    EvidenceItem,
    GeneratedBy,
    GroundingCheck,
    Hypothesis,
    Impact,
    Lessons,
    LogTemplate,
    MetricMark,
    Narrative,
    NotBorneOut,
    PastWindow,
    Peak,
    Postmortem,
    Priority,
    Recovery,
    RootCause,
    ServiceShowing,
    Severity,
    Sources,
    TimelineEntry,
    TracedFailure,
    Trigger,
    Verdict,
    Window,
    pick,
)
from incidentlens.report.severity import (
    RULE,
    derive_severity,
    failed_count,
    harm,
    held_at_floor,
    no_harm,
    traced_words,
    unconfirmed_only,
    unconfirmed_peak,
    users_words,
)
from incidentlens.telemetry.servicenames import NAMED_IN_TWO_CASES
from incidentlens.telemetry.textlogs import GZIP_CUT_SHORT, open_bytes

#: a resource (CPU, memory) used under this share of its limit is near idle, and an alert on it is noise: it would
#: fire on ordinary work with nine tenths of the resource to spare (TrainTicket's pods run 4 to 13 millicores of a
#: 500-millicore limit when a fault moves them: 1% to 3%), where a capacity alert watches for the limit coming near
IDLE_SHARE = 0.1
#: the resources whose use is a share of a limit: its name's word for it (`CpuUsage(m)`, `MemoryUsageRate(%)`)
RESOURCE = re.compile(r"cpu|mem", re.IGNORECASE)
#: the priorities, most urgent first
PRIORITIES: tuple[Priority, ...] = get_args(Priority)
#: the most urgent priority an action takes at each severity: the catalogue's are for an incident that hurts users
MOST_URGENT: dict[Severity, Priority] = {"SEV1": "P0", "SEV2": "P0", "SEV3": "P1", "SEV4": "P2"}
#: the timeline's row for the incident's peak, as the analysis writes it (the review adds which series peaked)
PEAK_EVENT = "peak of the incident"
#: the trigger kinds that are a change to a service (what a revert undoes)
CHANGE_KINDS = ("deploy", "config", "config_change", "release")
#: what an inconclusive verdict with no service showing anything found
NOTHING_MOVED = "nothing moved beyond its baseline's noise"
#: what to do first when nothing moved: the data does not hold what the alert (or page) saw
CHECK_THE_ALERT = ("Check what raised the alert against this data before acting: no service's "
                   f"{fmt.listed(list(SEEN_MOVING.values()), 'or')} moved beyond their baseline's noise after the "
                   "start")
#: ... where a source held no row in the window: what was checked, and what its absence cannot show
CHECK_THE_ALERT_WITHOUT = ("Check what raised the alert against this data before acting: no service's {checked} moved "
                           "beyond their baseline's noise after the start, and with {missing} a fault seen only in "
                           "{hidden} cannot show here")
#: ... what a fault shows in one source alone, which that source's absence hides
SEEN_ONLY_IN = {"metrics": "resource use (CPU, memory, restarts)", "logs": "log lines (errors or exceptions logged)",
                "traces": "requests (a delay, errors, wrong answers)"}
#: what to do first when a series left its baseline but no service's before/after tests showed anything
LOOK_AT_SERIES = ("Look at {} around the window, in the service's own metrics, logs and traces, before acting: the "
                  "detector found a shift there, but no service's before/after tests showed why")
NARRATIVE_SECTIONS = ("summary", "impact", "root_cause", "detection", "response", "recovery", "lessons")
#: what a given start (`--onset at`) may have been; the review cannot tell which
GIVEN_START = "an alert, an injection or a page"
#: the start when detection found no window at an alert time (`--at` without `--onset at`, or serve's startsAt)
ALERT_TIME = "the alert time"
#: the analysis timeline's closing entries, which assume a detected window's end (`analysis.timeline`)
DETECTED_END_EVENTS = ("recovery:", "end of data:")
#: the closing entry of a detected window that runs to the end of the data: no recovery is in it
ONGOING_EVENT = "end of data:"
#: a timeline entry in the making: (time, event, evidence ids)
_Entry = tuple[dt.datetime, str, list[str]]
#: prose that has a given start detected, or the incident recovered at the window's end ("not detected by" is fine)
_RECOVERY_CLAIM = r"(?<!not )(?<!never )(?<!yet )\brecovered\b|\bback (?:within|to) (?:its |their )?baseline"
_GIVEN_START_CONTRADICTIONS = re.compile(
    r"(?<!not )(?<!never )\b(?:detected|flagged|caught)\s+(?:at|by|on|in)\b|\btime to detect(?:ion)?\s+(?:was|of)\b"
    rf"|{_RECOVERY_CLAIM}", re.IGNORECASE)
#: prose that has an incident still under way when the data ends recovered
_RECOVERY_CLAIMS = re.compile(_RECOVERY_CLAIM, re.IGNORECASE)
#: prose copied from a tool's shortened answer (`agents.tools.compact`: "... (77 chars cut)", "... 3 more cut"): its
#: sentence stops mid-figure ("over a hundredfold, 100..."), and the count of what was cut passes for a finding
_CUT_SHORT = re.compile(r"\.\.\.\s*\(\d+ chars cut\)|\.\.\. \d+ more cut")


def build_postmortem(analysis: Any, narrative: Mapping[str, str] | None = None,
                     generated_by: Mapping[str, Any] | GeneratedBy | None = None,
                     source: str = "analysis") -> Postmortem:
    """The postmortem for an analysis result (an `AnalysisResult` or the dict analysis.json holds).

    `narrative` maps section names (see NARRATIVE_SECTIONS) to a model's prose; a section whose prose states a
    number or time the evidence does not hold is written by template instead and lists the reasons. A malformed
    analysis raises InputError naming `source` and the field.
    """
    data = _as_dict(analysis)
    author = GeneratedBy.model_validate(generated_by or {})
    if not isinstance(data.get("detected", False), bool):  # "no" would read as true
        raise InputError(f"{source}: field 'detected': expected true or false, not {data['detected']!r}")
    try:
        if not data.get("detected"):
            return _no_incident(data, author)
        return _Builder(data, narrative or {}, author).build()
    except ValidationError as err:
        first = err.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "document"
        raise InputError(f"{source}: field '{where}': {first['msg']}") from err
    except (KeyError, TypeError, ValueError, AttributeError) as err:
        raise InputError(f"{source}: not an analysis result ({type(err).__name__}: {err})") from err


def executive_summary(pm: Postmortem) -> list[str]:
    """At most ten lines for a terminal or a chat message: what, when, how bad, why, what next."""
    if not pm.detected:
        return [f"No incident detected: {pm.reason or 'no metric left its baseline band'}",
                *[f"checked: {item}" for item in pm.checked[:8]]][:10]
    lines = [f"{pm.severity or 'Severity undetermined, no impact measured'} ({pm.status}): {pm.title}"]
    given = pm.detection.onset == "given"
    if pm.incident_window:
        ongoing = not given and pm.recovery is not None and pm.recovery.recovered_at is None
        what = " examined" if given else ", still under way when the data ends" if ongoing else ""
        duration = (f" ({fmt.minutes(pm.impact.duration_minutes)}{what})"
                    if pm.impact and pm.impact.duration_minutes else "")
        start = f" ({start_label(pm)})" if given else ""
        lines.append(f"When: {fmt.when(pm.incident_window.start)}{start} to "
                     f"{fmt.when(pm.incident_window.end)}{duration}")
    if pm.impact:
        said, line = no_impact_words(pm.impact, pm.severity), _impact_line(pm.impact, pm.severity)
        mark = _traced_mark(pm.impact)  # where the line alone shows no harm, what marked the service affected
        marked = f"{_degraded_words(pm.impact, pm.impact.services_affected[0])}{mark}: " if mark else ""
        lines.append(_capitalized(said + line) if said else f"Impact: {marked}{line}")
    if pm.root_cause:
        rc = pm.root_cause
        confirmed = is_confirmed(rc)
        caveat = "; its falsification test failed" if rc.test_passed is False else ""
        # the runner-up beside it: 58% reads as settled until the next one is seen (TrainTicket 09:34, the fault
        # the 18% one's)
        runner_up = next((f"; the next hypothesis, {h.service}, {fmt.pct(h.confidence, 0)}" for h in pm.hypotheses
                          if h.service != rc.service and _reads_above_zero(h.confidence)), "")
        lines.append(f"{'Root cause' if confirmed else 'Suspected cause'}: {root_cause_label(pm)} in {rc.service} "
                     f"(confidence {fmt.pct(rc.confidence, 0)}{caveat}{runner_up})")
    if pm.trigger:
        label = "Trigger" if pm.trigger.on_failing_path else "Preceding change (not on the failing path)"
        lines.append(f"{label}: {pm.trigger.description}" + (f" at {fmt.when(pm.trigger.t)}" if pm.trigger.t else ""))
    if given and pm.detection.undetected and pm.detection.alert_at and pm.incident_window:
        lines.append(f"Start: {start_label(pm)} given (--at, or an alert's startsAt: "
                     f"{fmt.when(pm.detection.alert_at)}); no incident window detected there "
                     f"({pm.detection.undetected}) and nothing after it could be explained: the first minute before "
                     "it at which something could")
    elif given and pm.detection.undetected:
        lines.append(f"Start: the alert time given (--at, or an alert's startsAt); no incident window detected there "
                     f"({pm.detection.undetected})")
    elif given:
        lines.append(f"Start: given ({GIVEN_START}), not detected by IncidentLens")
    elif pm.detection.detected_at:
        detector = pm.detection.detector or "anomaly"
        lines.append(f"Detected: {fmt.when(pm.detection.detected_at)} by the {detector} detector")
    lines += [f"Next [{a.priority}] {a.description} ({a.owner}, {a.eta})" for a in pm.action_items[:3]]
    return lines[:10]


def cause_label(kind: str | None, harmed: bool, phrase: bool = False) -> str:
    """The root cause's mechanism in words (`database connection pool exhaustion`, `a bad deploy` as a `phrase`);
    of undetermined mechanism where no harm was seen, `a change`, not `a failure`, of it."""
    if playbook_kind(kind) == "unknown" and not harmed:
        return "a change of undetermined mechanism"
    return playbook(kind).phrase if phrase else playbook(kind).label


def root_cause_label(pm: Postmortem) -> str:
    """`cause_label` of a written review's root cause (its impact and severity say whether harm was seen)."""
    kind = pm.root_cause.kind if pm.root_cause else None
    return cause_label(kind, pm.impact is None or harm(pm.impact, pm.severity) == "seen")


def duration_label(pm: Postmortem) -> str:
    """What the window's length is: the incident's duration, or with a given start only how much was examined (the
    window runs to the end of the data, which need not be the incident's end)."""
    if pm.detection.onset != "given":
        return "Duration"
    return f"Examined (from {start_label(pm)})" if pm.detection.undetected else "Examined (start given)"


#: the Sources section says at most this many notes of what was set aside when read, each at most this long
SET_ASIDE_SHOWN = 5
SET_ASIDE_CHARS = 200


def source_lines(pm: Postmortem) -> list[str]:
    """The review's Sources section: the sources read, each with its rows in the window and in the baseline, then
    what they lacked, in the analysis's words ("no logs for this period"): a missing source is not a quiet one."""
    if pm.sources is None:
        return []
    read = [f"{name} ({fmt.num(rows.window_rows)} rows in the window, {fmt.num(rows.baseline_rows)} in the baseline)"
            if (rows := pm.sources.rows.get(name)) else name for name in pm.sources.used]
    left_out = pm.sources.left_out
    more = len(left_out) - SET_ASIDE_SHOWN
    # no rows counted: no window was examined (no incident), only which sources held a row with a time at all
    none_read = f"Read: no source had a row {'in the window' if pm.sources.rows else 'with a time'}"
    return [f"Read: {', '.join(read)}" if read else none_read, *pm.sources.notes,
            *(f"{_read_so(note)}: {_set_aside(note)}" for note in left_out[:SET_ASIDE_SHOWN]),
            *([f"{more} more note{'s' if more > 1 else ''} of what was set aside when read: report.json's "
               "sources.left_out lists them all"] if more > 0 else [])]


def _read_so(note: str) -> str:
    """How the Sources section introduces a note of the store's: what it set aside, or (the names it read as one
    service's, `servicenames.NAMED_IN_TWO_CASES`) how it read them, where nothing was set aside."""
    return "when read" if note.startswith(NAMED_IN_TWO_CASES) else "set aside when read"


def _set_aside(note: str) -> str:
    """A note of what was set aside when read, as the Sources section says it: its file by name (a day's folder of
    metrics put 90 characters of directories before each), cut at `SET_ASIDE_CHARS` (a bad time's value is quoted
    whole); report.json's `sources.left_out` keeps it whole."""
    where, colon, what = note.partition(": ")
    said = f"{where.rpartition('/')[2]}{colon}{what}" if colon else note
    return said if len(said) <= SET_ASIDE_CHARS else f"{said[:SET_ASIDE_CHARS - 1]}…"


def start_label(pm: Postmortem) -> str:
    """What a given start is: the start given, the alert time, or a time before the alert time."""
    if not pm.detection.undetected:
        return "start given"
    if pm.detection.alert_at is None or pm.incident_window is None:
        return ALERT_TIME
    return alert_start_words(pm.incident_window.start, pm.detection.alert_at)


def alert_start_words(start: dt.datetime, alert_at: dt.datetime) -> str:
    """A start taken before the alert time, in words: "1 min before the alert time"."""
    return f"{minutes_before(start, alert_at)} before {ALERT_TIME}"


def _reads_above_zero(share: float) -> bool:
    """Whether a share reads above 0% in whole percents, as `fmt.pct(share, 0)` writes it: a next hypothesis at 0.5%
    rounds to it (TrainTicket 11:36 said "the next hypothesis, ts-travel2-service, 0%", which a hypothesis at 0% is
    left out not to say)."""
    return round(share * 100) > 0


def is_confirmed(cause: RootCause | Hypothesis) -> bool:
    """Whether a cause earns the name root cause: its test did not fail and it is more likely than not (the
    verdict's bar, `MORE_LIKELY_THAN_NOT`)."""
    return suspicion(cause) is None


def suspicion(cause: RootCause | Hypothesis) -> str | None:
    """Why a cause is only suspected, in words (None: it earns the name root cause)."""
    if cause.test_passed is False:
        return "its falsification test failed"
    if cause.confidence <= MORE_LIKELY_THAN_NOT:
        return f"confidence not over {MORE_LIKELY_THAN_NOT:.0%}"
    return None


def runbook_checklist(pm: Postmortem) -> list[str]:
    """The runbook as a checklist, one `[ ] step` per line."""
    return [f"[ ] {step}" for step in pm.runbook]


class _Builder:
    def __init__(self, data: dict[str, Any], narrative: Mapping[str, str], author: GeneratedBy) -> None:
        self.data = data
        self.narrative = narrative
        self.author = author
        self.facts = Facts(data)
        self.window = Window.model_validate(pick(Window, data["incident_window"]))
        self.hypotheses = _ranked_hypotheses(data.get("hypotheses") or [])
        self.top = self.hypotheses[0] if self.hypotheses else None
        self.trigger = _trigger(data.get("trigger"))
        self.detection_series = [DetectionSeries.model_validate(pick(DetectionSeries, s))
                                 for s in (data.get("detection") or {}).get("series") or []]
        # the caller gave the start (`--onset at`): nothing was detected, and the window's end is not a recovery
        self.onset_given = (data.get("detection") or {}).get("detector") == KNOWN_ONSET
        # ... or took it from an alert time where detection found no window (`analyze --at T`, serve's startsAt)
        self.at_alert = self.onset_given and bool((data.get("detection") or {}).get("undetected"))
        self.verdict = _verdict(data.get("verdict"))
        # a detected window that runs to the end of the data: the incident was still on when the data ends
        self.ongoing = not self.onset_given and any(str(e.get("event", "")).startswith(ONGOING_EVENT)
                                                    for e in data.get("timeline") or [])
        # no hypothesis stands out: the review names no root cause and says what each service showed
        self.inconclusive = self.verdict is not None and self.verdict.status == "inconclusive"
        # every hypothesis' change was a burst that ended in the window: the top one's, else None
        self.over = _burst_over(data.get("hypotheses") or [])

    def build(self) -> Postmortem:
        severity, severity_rule = self.severity
        impact = self._impact()
        root_cause = self._root_cause()
        if self.trigger:
            self.trigger.on_failing_path = self.trigger_on_path
        pm = Postmortem(
            detected=True,
            title=self._title(),
            date=self.window.start.date(),
            severity=severity,
            severity_rule=severity_rule,
            incident_window=self.window,
            baseline_window=_window(self.data.get("baseline_window")),
            peak=self.peak,
            summary=self._narrate("summary", self._summary_text(impact)),
            impact=impact,
            root_cause=root_cause,
            verdict=self.verdict,
            trigger=self.trigger,
            hypotheses=self.hypotheses,
            contributing_factors=self._contributing_factors(),
            detection=self._detection(),
            response=self._narrate("response", self._response_text()),
            recovery=self._recovery(),
            timeline=self._timeline(),
            action_items=self._action_items(),
            lessons=self._lessons(impact),
            runbook=self._runbook(),
            sources=_sources(self.data),
            checked=_checked(self.data),
            data_quality=_data_quality(self.data),
            templates=[LogTemplate.model_validate(pick(LogTemplate, t)) for t in self.data.get("templates") or []],
            contributors=[Contributor.model_validate(pick(Contributor, {**c, "value": str(c.get("value"))}))
                          for c in self.data.get("contributors") or []],
            evidence=_evidence(self.data),
            generated_by=self.author,
        )
        pm.grounding = validate_grounding(pm, self.facts)
        return pm

    @cached_property
    def alert_start(self) -> str:
        """The start taken from an alert time, in words: the alert time, or the first minute before it at which
        something could be explained, nothing after it having been ("1 min before the alert time")."""
        alert_at = fmt.utc((self.data.get("detection") or {}).get("alert_at"))
        if alert_at is None:
            return ALERT_TIME
        return alert_start_words(fmt.utc(self.window.start), alert_at)

    @property
    def start_name(self) -> str:
        """What the window's start is called in prose: the alert time it was taken from, or the given start."""
        return self.alert_start if self.at_alert else "the given start"

    @property
    def moved(self) -> bool:
        """Whether anything moved in the window: a metric series, or a service with a hypothesis."""
        return bool(self.detection_series or self.hypotheses)

    @property
    def call_measures(self) -> set[str]:
        """What the data's metrics already measure of the calls between services (`playbooks.CALL_MEASURES`): a
        client or server latency or error series that moved (`PodClientLatencyP90(s)`, `client_errors`)."""
        metrics = [s.series.split("/", 1)[-1].lower() for s in self.detection_series]
        return {m for m in CALL_MEASURES for name in metrics if re.search(rf"(client|server).*{m}", name)}

    @property
    def kind(self) -> str:
        """The root cause's kind as the catalogue acts on it (the hypotheses' kinds as `_acted_kind` names them)."""
        return self.top.kind if self.top and not self.inconclusive else "unknown"

    @property
    def confirmed(self) -> bool:
        """Whether the top hypothesis earns the name root cause: it stands out (the verdict), its test did not fail
        and its confidence is >= 50%."""
        return bool(self.top) and not self.inconclusive and is_confirmed(self.top)

    @property
    def trigger_on_path(self) -> bool:
        """Whether the trigger touched a service on the failing path (the root cause or an affected service).

        A change elsewhere is reported as preceding the incident, not as what set it off.
        """
        if not self.trigger:
            return False
        affected = set((self.data.get("impact") or {}).get("services_affected") or []) | {self.service}
        return self.trigger.service is None or self.trigger.service in affected

    @property
    def service(self) -> str:
        if self.top:
            return self.top.service
        first = self.detection_series[0].series if self.detection_series else "the affected service"
        return first.split("/")[0]

    @property
    def contenders(self) -> list[str]:
        """With no single root cause because the best hypothesis does not stand out from the next (the verdict's
        rule, `verdict.STANDS_OUT`): the services whose hypotheses are that close, best first; otherwise none."""
        if not self.inconclusive or len(self.hypotheses) < 2 or self.top.test_passed is False:
            return []
        close = [h.service for h in self.hypotheses if self.top.confidence < STANDS_OUT * h.confidence]
        return close[:3] if len(close) > 1 else []

    @property
    def leads(self) -> list[str]:
        """With no single root cause, the services to look at first: the close contenders, else the first three
        services that moved."""
        return self.contenders or [s.service for s in self.movers[:3]]

    @property
    def cut_pair(self) -> tuple[str, str] | None:
        """With no single root cause and two leads, one's requests cut short right after calling the other
        (`ends_after`) from the same moment the other moved: (caller, callee), one change that points at both, which
        no order of their onsets can settle (OnlineBoutique 13:10: checkoutservice's requests end right after calling
        paymentservice, both at 13:10:37, read "moved, too close together for the data to order"); else None."""
        if not self.inconclusive or len(self.leads) != 2 or not self.verdict:
            return None
        showing = {s.service: s for s in self.verdict.services}
        caller, callee = (showing.get(name) for name in self.leads)
        if caller and callee and callee.ends_after == caller.service:
            caller, callee = callee, caller
        if caller is None or callee is None or caller.ends_after != callee.service or caller.onset != callee.onset:
            return None
        return caller.service, callee.service

    @property
    def movers(self) -> list[ServiceShowing]:
        """The verdict's services that showed a change of their own (`verdict.services[].own` in analysis.json), in
        the order and from the time they showed it (`own_onset`): not a service whose host's metrics moved, nor one
        whose only change is a latency percentile its traced calls do not bear out or cannot confirm (OnlineBoutique
        13:10 named emailservice, its host's CPU from 1.94% to 1.68%, beside the two whose requests were cut short;
        TrainTicket 08:52 had ts-verification-code-service move first by a client p90 its 60 traced calls took at
        most 4.31 ms of, two minutes before its own server latency moved). Every listed service when none did."""
        changes = self._own_changes
        services = self.verdict.services if self.verdict else []
        own = [s for s in services if changes.get(s.service, (True, None))[0]]
        if not own:
            return services
        # ordered by when each showed its own change, which the headline's "moved first" reads
        timed = [s.model_copy(update={"onset": onset}) if (onset := changes.get(s.service, (True, None))[1]) else s
                 for s in own]
        return sorted(timed, key=lambda s: (s.onset is None, s.onset or dt.datetime.min.replace(tzinfo=dt.UTC)))

    @cached_property
    def same_moment(self) -> dt.timedelta | None:
        """How close two onsets are one moment to the data, which cannot order them (the precedence tests'
        `same_moment_seconds`: one and a half samples); None where no test says."""
        seconds = [float(ev["data"]["same_moment_seconds"]) for ev in self.data.get("evidence") or []
                   if ev.get("kind") == "hypothesis_test" and isinstance(ev.get("data"), dict)
                   and isinstance(ev["data"].get("same_moment_seconds"), int | float)]
        return dt.timedelta(seconds=max(seconds)) if seconds else None

    @property
    def series_only(self) -> list[str]:
        """With no service in the verdict, the series detection found moving (`global/rps`), up to three: what moved
        though no service's before/after tests showed anything; otherwise none."""
        return [] if self.verdict is None or self.verdict.services else [s.series for s in self.detection_series[:3]]

    @property
    def subjects(self) -> list[str]:
        """Whom the action items and runbook are about: the root cause's service, or with no single root cause the
        leads."""
        return self.leads if self.inconclusive and self.leads else [self.service]

    @property
    def subject(self) -> str:
        """The subjects as words: `api-gateway, payments and db-proxy`."""
        return fmt.listed(self.subjects)

    @property
    def peak(self) -> dt.datetime | None:
        """The incident's peak: the time of the timeline's peak row (`_peak_row`), else the analysis's; with a given
        start and no metric series moving there is none to report (the analysis puts it at the start)."""
        row = self._peak_row
        return row[0] if row else self._detected_peak

    @property
    def _detected_peak(self) -> dt.datetime | None:
        """When the series detection saw moving peaked (`analysis.peak`); None with a given start and no series."""
        if self.onset_given and not self.detection_series:
            return None
        return fmt.utc(self.data.get("peak"))

    @property
    def window_end_reason(self) -> str:
        """Why a given start's window ends where it does, as its detection evidence says (`anchored.window_end`);
        an older analysis: the data ends there, or the window's longest span."""
        ids = set((self.data.get("detection") or {}).get("evidence") or [])
        said = [e["data"]["window_end"] for e in self.data.get("evidence") or []
                if e.get("id") in ids and isinstance(e.get("data"), dict) and e["data"].get("window_end")]
        if said:
            return said[0]
        if self.window.end - self.window.start >= MAX_WINDOW:
            return f"{MAX_WINDOW.total_seconds() / 3600:g} h after the given start, the longest window examined"
        return "the end of the data"

    def _population(self, contributor: dict[str, Any], period: str) -> str:
        """What a contributor's share in `period` is a share of, as its contrast evidence names it: with few problem
        lines before the incident the baseline is all lines, and saying "problem events" there would mislead."""
        cited = next((e for e in self.data.get("evidence") or [] if e.get("id") == contributor.get("evidence")), {})
        named = (cited.get("data") or {}).get(f"{period}_population")
        return named or ("problem events in the incident" if period == "window" else "problem events before it")

    def _held(self, contributor: dict[str, Any], period: str, lift: str | None = None) -> str:
        """`13 of the 24 WARN/ERROR/FATAL lines in the incident window (54.2%)`: a share with the lines it is of, so
        that 54% of 24 lines does not read like 54% of thousands; the share alone where the evidence has no counts.
        `lift` joins the parenthesis (`(10.3%; 5.3x lift)`)."""
        share, population = fmt.pct(contributor[f"{period}_share"]), self._population(contributor, period)
        cited = next((e for e in self.data.get("evidence") or [] if e.get("id") == contributor.get("evidence")), {})
        count, total = contributor.get(f"{period}_count"), (cited.get("data") or {}).get(f"{period}_total")
        if count is None or not total:
            return f"{share} of {population}" + (f" ({lift})" if lift else "")
        # "of all 642 lines in the baseline": the baseline's share may be of every line, not its problem lines
        of = f"all {fmt.num(total)} {population.removeprefix('all ')}" if population.startswith("all ") else \
            f"the {fmt.num(total)} {population}"
        return f"{fmt.num(count)} of {of} ({share}{f'; {lift}' if lift else ''})"

    def _runbook(self) -> list[str]:
        """The catalogue's steps for the cause, with the log line that marked it in this incident right after the
        first: what the next on-call searches for. With no single root cause: find which service moved first, and
        the log line that marked each."""
        templates = self.data.get("templates") or []
        steps = runbook_for(self.kind, self.subject, log_text_of(templates), revert=self._revert,
                            demand_rose=self.demand_rose)
        services = self.leads if self.inconclusive else [self.service]
        if self.inconclusive:
            first = _which_cut(*self.cut_pair) if self.cut_pair else _which_first(services) if services else ""
            steps[0] = (f"{first} (the review lists what {'it' if len(services) == 1 else 'each'} showed)"
                        if services else self._nothing_to_order())
            which = "found to have cut them" if self.cut_pair else "shown to have moved first"
            steps = [step if not step.startswith("Mitigate:") else
                     f"Mitigate the service {which}: look for a change to it before the onset and revert it if there "
                     "is one, or take its affected instances out of rotation"
                     for step in steps]
        elif self.untraced_cause or self.unharmed_change:
            # the runbook's mitigation says what the first action says: OnlineBoutique 12:27's action said to watch
            # checkoutservice, nothing measured having been harmed, and the runbook to take its instances out of
            # rotation; an untraced database has no instances here at all
            watch = self._untraced_words() if self.untraced_cause else self._watch_words()
            steps = [f"Mitigate: {watch[:1].lower()}{watch[1:]}" if step.startswith("Mitigate:") else step
                     for step in steps]
        searches = [_search_step(name, t) for name in services if self.top
                    for t in [next((t for t in templates if _contributes(t) and name in (t.get("services") or [])),
                                   None)] if t]
        return steps[:1] + searches + (steps[1:] if self.moved else [])  # nothing moved: no service to act on

    def _narrate(self, section: str, template_text: str) -> Narrative:
        text = (self.narrative.get(section) or "").strip()
        if not text:
            return Narrative(text=template_text, grounded_by="template")
        reasons = check_grounding(text, self.facts) + self._given_start_contradictions(text)
        reasons += [f"'{m.group(0)}': the text was cut short, not whole" for m in _CUT_SHORT.finditer(text)]
        if self.ongoing:
            reasons += [f"'{m.group(0)}': the incident was still under way when the data ends; no recovery is in it"
                        for m in _RECOVERY_CLAIMS.finditer(text)]
        if reasons:
            return Narrative(text=template_text, grounded_by="template", rejected=reasons)
        return Narrative(text=text, grounded_by="model")

    def _given_start_contradictions(self, text: str) -> list[str]:
        """With a given start, prose claiming detection or recovery contradicts the evidence (neither was measured)."""
        if not self.onset_given:
            return []
        return [f"'{m.group(0)}': with a given start (--onset at) the data shows neither when the incident was "
                "detected nor whether it recovered" for m in _GIVEN_START_CONTRADICTIONS.finditer(text)]

    def _title(self) -> str:
        title = self._title_words()
        return f"{title}: a burst that ended at {fmt.when(self.over.end)}" if self.over else title

    def _title_words(self) -> str:
        if self.inconclusive and self.contenders:
            return f"No single root cause found: the evidence is split between {fmt.listed(self.contenders)}"
        if self.inconclusive and self.cut_pair:
            return (f"No single root cause found: {_cut_words(*self.cut_pair)}, and the data does not say which of the "
                    "two cut them")
        if self.inconclusive:
            # the first services to move, not the hypotheses: "moved first" says which list this is
            moved = _moved_in_order(self.movers[:3], self.same_moment) if self.verdict.services else (
                f"{', '.join(self.series_only)} moved" if self.series_only else NOTHING_MOVED)
            return f"No single root cause found: {moved}"
        label = playbook(self.kind).label
        unknown = playbook_kind(self.kind) == "unknown"
        if unknown and not self.harmed:
            # no service's latency, errors or WARN/ERROR lines rose: a change, not a failure the data shows
            title = f"{'Change' if self.confirmed else 'Suspected change'} in {self.service}"
        elif unknown:
            title = f"{'Failure' if self.confirmed else 'Suspected failure'} in {self.service}"
        elif self.confirmed:
            title = f"{label[0].upper()}{label[1:]} in {self.service}"
        else:
            title = f"Suspected {label} in {self.service}"
        regions = (self.data.get("impact") or {}).get("regions_affected") or []
        if playbook_kind(self.kind) == "region_outage" and len(regions) == 1:
            title += f" ({regions[0]})"  # which region failed is the first thing the on-call needs
        if self.trigger_on_path and playbook_kind(self.kind) != "bad_deploy":
            title += f" after {self.trigger.description}"
        return title + (" (mechanism undetermined)" if unknown else "")

    @cached_property
    def measured(self) -> Impact:
        """The impact's figures, as the analysis measured them (its narrative is `_impact`'s)."""
        raw = self.data.get("impact") or {}
        total, failed = raw.get("requests_total"), raw.get("requests_failed")
        impact = Impact(
            # an analysis written before a window under a minute kept its fraction says 0
            duration_minutes=raw.get("duration_minutes") or _span_minutes(self.window.start, self.window.end),
            requests_total=total,
            requests_failed=failed,
            entry_service=raw.get("entry_service"),
            failed_share=failed / total if total and failed is not None else None,
            baseline_failed_share=raw.get("baseline_failed_share"),
            failed_excess=raw.get("requests_failed_excess", failed),  # all failed where the analysis predates it
            users_affected=raw.get("users_affected"),
            users_baseline=raw.get("users_baseline"),
            users_excess=raw.get("users_excess"),
            services_affected=_named_services(raw.get("services_affected") or []),
            traced_failures=[TracedFailure.model_validate(pick(TracedFailure, f))
                             for f in raw.get("traced_failures") or []],
            slowed_too_little=[TracedFailure.model_validate(pick(TracedFailure, f))
                               for f in raw.get("slowed_too_little") or []],
            failing_before=[TracedFailure.model_validate(pick(TracedFailure, f))
                            for f in raw.get("failing_before") or []],
            lines_marked=list(raw.get("lines_marked") or []),
            metric_marks=[MetricMark.model_validate(pick(MetricMark, m)) for m in raw.get("metric_marks") or []],
            regions_affected=list(raw.get("regions_affected") or []),
            peak_latency=_peak(raw.get("peak_latency")),
            peak_error_rate=_peak(raw.get("peak_error_rate")),
            not_borne_out=[NotBorneOut.model_validate(pick(NotBorneOut, c)) for c in raw.get("not_borne_out") or []],
            past_window=[PastWindow.model_validate(pick(PastWindow, c)) for c in raw.get("past_window") or []],
            harm_checked=list(raw.get("harm_checked") or []),
            narrative=Narrative(text=""),
            evidence=list(raw.get("evidence") or []),
        )
        listed = {name.lower() for name in impact.services_affected}
        held = [service for service, _ in held_at_floor(impact) if service.lower() not in listed]
        return impact.model_copy(update={"services_affected": list(dict.fromkeys([*impact.services_affected, *held]))})

    @property
    def harmed(self) -> bool:
        """Whether the window shows harm (a service's latency, errors or WARN/ERROR lines rose): else what the top
        hypothesis explains is a change, not a failure."""
        return harm(self.measured, self.severity[0]) == "seen"

    @cached_property
    def severity(self) -> tuple[Severity | None, str]:
        """The severity and the rule that decided it, from the measured impact and whether anything moved."""
        level, rule = derive_severity(self.measured, moved=self.moved)
        if self.over and level:
            rule += (f"; what moved was a burst that ended at {fmt.when(self.over.end)}: the level is what it changed, "
                     "and the actions are a step less urgent than it calls for, nothing being under way to stop")
        return level, rule

    def _impact(self) -> Impact:
        """The measured impact with its narrative."""
        impact, level = self.measured, self.severity[0]
        text = _impact_text(impact, level, examined=self.start_name if self.onset_given else None,
                            ongoing=self.ongoing, untraced=self.untraced_services)
        said = no_impact_words(impact, level, self._checked_words())
        if said:
            text = _capitalized(said) + text[0].lower() + text[1:]
        if self.over:
            text += (f" What moved, {fmt.possessive(self.top.service)} {self.over.words()}, was a burst that ended: "
                     "what was measured here is not an impact still under way.")
        return impact.model_copy(update={"narrative": self._narrate("impact", text)})

    def _summary_text(self, impact: Impact) -> str:
        if self.onset_given:
            parts = [f"From {fmt.when(self.window.start)}, {self.start_name}, to {fmt.when(self.window.end)}, "
                     f"{self.window_end_reason} ({fmt.minutes(impact.duration_minutes)} examined), "
                     f"{self._what_happened(impact)}"]
        else:
            still = ", still under way when the data ends" if self.ongoing else ""
            parts = [f"From {fmt.when(self.window.start)} to {fmt.when(self.window.end)}"
                     f" ({fmt.minutes(impact.duration_minutes)}{still}), {self._what_happened(impact)}"]
        if self.inconclusive:
            parts.append(f"{fmt.sentence(self.verdict.reason)} {self._what_services_showed()}")
        elif self.top:
            lead = ("The most likely cause is" if self.confirmed
                    else "The leading hypothesis, which the data does not confirm, is")
            parts.append(f"{lead} {cause_label(self.kind, self.harmed, phrase=True)} in {self.top.service} "
                         f"(confidence {fmt.pct(self.top.confidence, 0)}): {fmt.sentence(self.top.mechanism)}")
        if self.second:
            parts.append(self._second_words(self.second))
        if impact.failing_before:
            parts.append(failing_before_words(impact))
        if self.trigger:
            when = f" at {fmt.when(self.trigger.t)}" if self.trigger.t else ""
            if self.trigger_on_path:
                parts.append(f"It was set off by {self.trigger.description}{when}.")
            else:
                parts.append(f"A change preceded it, {self.trigger.description}{when}, but {self.trigger.service} "
                             "is not among the affected services.")
        return " ".join(parts)

    def _what_happened(self, impact: Impact) -> str:
        """`payments degraded: <impact>.`, or where no harm was seen, that none was measured (or only at a peak) and
        what was checked."""
        level = self.severity[0]
        moved = "" if self.moved else ", nor did anything else move beyond it"
        said = no_impact_words(impact, level, moved + self._checked_words())
        if said:
            return f"{said}{_impact_line(impact, level)}."
        missing = f" {_capitalized(self._missing_words())}." if self.missing_sources else ""
        over = f" in a burst that ended at {fmt.when(self.over.end)}" if self.over else ""
        return (f"{_degraded_words(impact, self.service)}{_traced_mark(impact)}{over}: {_impact_line(impact, level)}."
                f"{missing}")

    def _checked_words(self) -> str:
        """` (checked: 65 metric series, the logs of 10 services)`: what the before/after tests looked at (the
        verdict counts none of a source with no row in the window); such a source is said missing (`; no traces for
        this period`)."""
        checked = (self.data.get("verdict") or {}).get("checked") or {}
        words = [what.format(n=checked[key], s="" if checked[key] == 1 else "s")
                 for key, what in (("metric_series", "{n} metric series"),
                                   ("services_with_logs", "the logs of {n} service{s}"),
                                   ("services_in_traces", "the traces of {n} service{s}"))
                 if checked.get(key)]
        said = [f"checked: {', '.join(words)}"] if words else []
        said += [self._missing_words()] if self.missing_sources else []
        return f" ({'; '.join(said)})" if said else ""

    @property
    def missing_sources(self) -> list[str]:
        """The sources with no row in the window (`analysis.sources.missing`); none when an older analysis says
        nothing."""
        return (self.data.get("sources") or {}).get("missing") or []

    def _missing_words(self) -> str:
        """`no logs or traces for this period`: the sources with no row in the window, which nothing in the review
        rests on; empty when every source had rows."""
        missing = self.missing_sources
        return f"no {fmt.listed(missing, 'or')} for this period" if missing else ""

    def _what_services_showed(self) -> str:
        """`api-gateway from 14:53:06 UTC: ...; db-proxy from ...`: each candidate's onset and what moved, those that
        showed a change of their own (`movers`, in the headline's order) first: TrainTicket 08:52's summary gave its
        first four of five to services whose only change was a percentile the traces deny or cannot confirm, and
        ts-seat-service, which its headline names first, last. Each from its onset, the time its first finding
        is of, not that of its own change (`movers` orders by it): TrainTicket 08:52 gave ts-verification-code-service's
        client percentiles of 08:52:10 "from 08:54:10 UTC", its server latency's time."""
        own = self.movers
        onsets = {s.service: s.onset for s in self.verdict.services}
        shown = [*own, *(s for s in self.verdict.services if s.service not in {m.service for m in own})][:5]
        return " ".join(
            f"{s.service}{f' from {fmt.when(onset)}' if (onset := onsets.get(s.service, s.onset)) else ''}: "
            f"{'; '.join(s.showed[:2]) or 'moved'}." for s in shown)

    @property
    def second(self) -> Hypothesis | None:
        """A second, independent suspect (`verdict.second`): a service that moved on its own beside the first, which
        the first does not explain; None when there is none."""
        name = self.verdict.second if self.verdict else None
        return next((h for h in self.hypotheses[1:] if h.service == name), None)

    @staticmethod
    def _second_words(second: Hypothesis) -> str:
        """`A second, independent suspect: ts-food-service (confidence 41%), its own WARN/ERROR lines ...`: two things
        broke, and neither confidence is that of one cause of everything."""
        why = f", {second.independent}" if second.independent else ""
        return (f"A second, independent suspect: {second.service} (confidence {fmt.pct(second.confidence, 0)})"
                f"{why}; two things moved, so each confidence is that of one of two suspects, not of one cause of "
                "everything.")

    def _root_cause(self) -> RootCause | None:
        if not self.top or self.inconclusive:
            return None
        top = self.top
        test = f" Test: {fmt.sentence(top.test)}" if top.test else ""
        verdict = {True: " It passed.", False: " It did not pass."}.get(top.test_passed, " It was undecided."
                                                                       if top.test else "")
        label = cause_label(self.kind, self.harmed)
        # the test is said above, passed or not: counted among the findings, an undecided one read as support
        tests = _test_ids(self.data)
        findings, against = ([e for e in ids if e not in tests] for ids in (top.supporting, top.contradicting))
        template = (f"{top.service}: {label}. {fmt.sentence(top.mechanism)}{test}{verdict} "
                    f"Confidence {fmt.pct(top.confidence, 0)}, from {len(findings)} supporting and "
                    f"{len(against)} contradicting findings besides the test.")
        return RootCause(service=top.service, kind=self.kind, mechanism=top.mechanism, confidence=top.confidence,
                         evidence=top.supporting, test=top.test, test_passed=top.test_passed,
                         narrative=self._narrate("root_cause", template), certainty=self._certainty(top, tests))

    def _certainty(self, top: Hypothesis, tests: set[str]) -> str:
        """How sure the review is and what would change it: `How sure: 58% (the next hypothesis, ts-food-service,
        18%; 11% that it is none of the candidates). What would change it: evidence against its test's prediction,
        that ts-travel-service moves before its callers, which this data could not decide.` A next hypothesis at 0%
        is not named; a test with no other service to order says what would give it one."""
        rest = [f"{'a second, independent suspect' if h is self.second else 'the next hypothesis'}, {h.service}, "
                f"{fmt.pct(h.confidence, 0)}" for h in self.hypotheses[1:2] if _reads_above_zero(h.confidence)]
        unexplained = (self.data.get("verdict") or {}).get("unexplained")
        if unexplained:
            rest.append(f"{fmt.pct(unexplained, 0)} that it is none of the candidates")
        said = f"How sure: {fmt.pct(top.confidence, 0)}" + (f" ({'; '.join(rest)})." if rest else ".")
        test = next((ev.get("data") or {} for ev in self.data.get("evidence") or []
                     if ev.get("id") in tests and ev.get("id") in top.supporting + top.contradicting), {})
        if top.test_passed is False or not test.get("prediction"):
            return said
        if len(test.get("onsets") or {}) < 2:  # nothing to order it against
            return (f"{said} What would change it: another service's change, which the tests here did not count, "
                    f"found to start before {fmt.possessive(top.service)}.")
        decided = "this data bore out" if top.test_passed else "this data could not decide"
        said += (f" What would change it: evidence against its test's prediction, that {test['prediction']}, "
                 f"which {decided}.")
        return said

    def _contributing_factors(self) -> list[ContributingFactor]:
        factors = [
            ContributingFactor(
                description=f"{c['dimension']}={c['value']}{_also(same)} held {self._held(c, 'window')} against "
                            f"{self._held(c, 'baseline', _ratio(c.get('lift'), c['baseline_share']))}",
                evidence=[e["evidence"] for e in [c, *same] if e.get("evidence")])
            for c, same in _same_lines([c for c in self.data.get("contributors") or []
                                        if {"dimension", "value", "window_share", "baseline_share"} <= c.keys()
                                        and large_contributor(c)])
        ]
        factors += [
            ContributingFactor(
                description=f"{t.get('status', 'surging')} log template in {', '.join(t.get('services') or [])}: "
                            f"'{fmt.readable_pattern(t['template'])}' ({_counts_of(t)})",
                evidence=[t["evidence"]] if t.get("evidence") else [])
            for t in [t for t in self.data.get("templates") or [] if _contributes(t)][:3]
        ]
        if self.second:  # a fault of its own beside the first, whatever the verdict
            factors.append(ContributingFactor(description=f"Second, independent suspect (hypothesis "
                                                          f"#{self.second.rank}): {self.second.service} "
                                                          f"{self.second.kind.replace('_', ' ')}, "
                                                          f"{self.second.independent or 'a change of its own'}",
                                              evidence=self.second.supporting))
        if not self.inconclusive:  # with no root cause retained the split is the verdict, said already
            factors += [ContributingFactor(description=f"Hypothesis #{h.rank} (not retained as the root cause): "
                                                       f"{h.service} {h.kind.replace('_', ' ')}",
                                           evidence=h.supporting)
                        for h in self.hypotheses[1:3] if h.confidence >= 0.3 and h is not self.second]
        return factors

    def _detection(self) -> Detection:
        if self.onset_given:
            return self._given_start()
        raw = self.data.get("detection") or {}
        detected_at = fmt.utc(raw.get("first_anomalous"))
        ttd = _span_minutes(self.window.start, detected_at) if detected_at else None
        detection = Detection(detector=raw.get("detector"), detected_at=detected_at, time_to_detect_minutes=ttd,
                              series=self._detection_rows(), sooner=self._sooner(detected_at),
                              narrative=Narrative(text=""), evidence=list(raw.get("evidence") or []))
        series = ", ".join(s.series for s in self.detection_series[:3]) or "the metrics"
        how = (f"The {detection.detector or 'anomaly'} detector flagged {series}; its first anomalous point was "
               f"{fmt.when(detected_at)}" if detected_at else f"The detector flagged {series}")
        lag = f", {fmt.minutes(ttd)} after the incident window opened." if ttd else "."
        detection.narrative = self._narrate("detection", how + lag + " The data holds no record of a page or alert.")
        return detection

    def _detection_rows(self) -> list[DetectionSeries]:
        """The detection table's rows, a latency percentile the impact left out as longer than the window marked so,
        as the timeline and the hypotheses say it (it was listed among the series that moved with no word of it)."""
        left_out = {c.series: f"a percentile {past_window_caveat(c.longest_s)}" for c in self.measured.past_window}
        return [s.model_copy(update={"left_out": left_out[s.series]}) if s.series in left_out else s
                for s in self.detection_series]

    def _given_start(self) -> Detection:
        """The detection section when the caller gave the start: nothing was detected, so there is no detection time
        and no time to detect; what the data shows is which series moved after the start."""
        raw = self.data.get("detection") or {}
        undetected, alert_at = raw.get("undetected"), raw.get("alert_at")
        detection = Detection(onset="given", detector=raw.get("detector"), undetected=undetected, alert_at=alert_at,
                              series=self._detection_rows(), sooner=self._alert_candidates(),
                              narrative=Narrative(text=""), evidence=list(raw.get("evidence") or []))
        if undetected and detection.alert_at:
            given = (f"IncidentLens detected no incident window at the alert time ({fmt.when(detection.alert_at)}): "
                     f"{undetected}. Nothing after the alert time itself could be explained, so the start is taken "
                     f"at the first minute before it at which something could, {fmt.when(self.window.start)}; time "
                     "to detect is not something this data shows.")
        elif undetected:
            given = (f"IncidentLens detected no incident window at the alert time ({fmt.when(self.window.start)}): "
                     f"{undetected}. That alert time is taken as the start; time to detect is not something this "
                     "data shows.")
        else:
            given = (f"The incident's start was given ({GIVEN_START} at {fmt.when(self.window.start)}); "
                     "IncidentLens did not detect it, and time to detect is not something this data shows.")
        onsets = sorted((s for s in self.detection_series if s.onset), key=lambda s: s.onset)
        if onsets:
            listed = ", ".join(_on_pod(s) for s in onsets[:3])
            # three names beside a larger count say they are the first of them, with no figure of the rest: "and 91
            # more" is a difference of two figures, in no evidence (OnlineBoutique 12:01's grounding flagged it)
            listed = f"the first three: {listed}" if len(self.detection_series) > len(onsets[:3]) else listed
            moved = (f" Against the data before the start, {len(self.detection_series)} metric series moved after "
                     f"it ({listed}); the first at {fmt.when(onsets[0].onset)}.")
        else:
            moved = " No metric series moved against the data before the start." + self._held_anyway()
        detection.narrative = self._narrate("detection", given + moved + " The data holds no record of a page or "
                                                                         "alert.")
        return detection

    def _held_anyway(self) -> str:
        """Where no series moved by detection's test but the impact's held-level test marked services by their
        metrics, why both hold: ` Detection's scale takes in the baseline's 1-99% range, earlier faults' values
        included; the impact's held-level test leaves that range out and counts frontend (LatencyP50(s) 0.594 s over
        the window ..., against 0.134 s before).` (OnlineBoutique 16:05 said "No metric series moved" under a summary
        of frontend degraded, its p50 at 4.4 times its baseline median through the window). Empty otherwise."""
        marks = [mark for mark in self.measured.metric_marks if mark.held]
        if not marks:
            return ""
        listed = fmt.listed([_mark_words(mark, mark.service) for mark in marks[:3]])
        return (f" Detection's scale takes in the baseline's {RANGE_TAIL:.0%}-{1 - RANGE_TAIL:.0%} range, earlier "
                f"faults' values included; the impact's held-level test leaves that range out and counts {listed}.")

    def _alert_candidates(self) -> list[str]:
        """With a given start: the first signals after it that an alert could watch, each with how long after the
        start it would have fired, and the catalogue's detection advice."""
        new_templates = [t for t in self.data.get("templates") or []
                         if t.get("status") == "new" and t.get("first_seen")]
        return [
            *self._first_series_alert(self._after_start),
            *(f"A log alert on the new template '{fmt.readable_pattern(t['template'])}' would have fired at its first "
              f"line, {fmt.when(fmt.utc(t['first_seen']))}{self._after_start(fmt.utc(t['first_seen']))}"
              for t in new_templates[:2]),
            *self._detection_advice(),
        ]

    def _after_start(self, moment: dt.datetime) -> str:
        """`, 3 s after the given start`: a lag under a minute and a half in seconds (`0.1 minutes` read as a typo)."""
        seconds = (fmt.utc(moment) - fmt.utc(self.window.start)).total_seconds()
        if seconds < 0.5:
            return f", at {self.start_name}"
        lag = f"{seconds:.0f} s" if seconds < 90 else fmt.minutes(seconds / 60)
        return f", {lag} after {self.start_name}"

    def _sooner(self, detected_at: dt.datetime | None) -> list[str]:
        """Signals in the data that moved before the detector fired, and the catalogue's detection advice."""
        early_templates = [t for t in self.data.get("templates") or []
                           if t.get("first_seen") and detected_at and fmt.utc(t["first_seen"]) < detected_at]
        return [
            *self._first_series_alert(lambda _: ""),
            *(f"A log alert on the new template '{fmt.readable_pattern(t['template'])}' (first seen "
              f"{fmt.when(fmt.utc(t['first_seen']))}) would have fired before the metrics detector"
              for t in early_templates[:2]),
            *self._detection_advice(),
        ]

    def _first_series_alert(self, after: Callable[[dt.datetime], str]) -> list[str]:
        """An alert on the series that moved first, from its onset (`after` words its lag, if any): one of a
        service's own, never a host's (`NodeCpuUsageRate(%)`: the machine it ran on, not its work), nor a resource
        used near idle (`_near_idle`), nor what does not watch harm (`_alertable`: demand, system calls, a latency
        that fell), and of a service the review implicates (`_implicated`); of those moving
        at once, a latency or error rate that rose (a symptom, what its users feel), then the one that moved most."""
        # no alert on what no call bore out, nor on a percentile no traced call could check: the impact's latency
        # percentiles, and every shift the analysis marked
        unsupported = {c.series for c in self.measured.not_borne_out} | self._series_caveats.keys()
        implicated = self._implicated()
        own = [s for s in self.detection_series
               if s.onset and s.series not in unsupported and not _is_host_series(s.series)
               and not _near_idle(s, self.detection_series) and _alertable(s)
               and (not implicated or s.series.rpartition("/")[0].lower() in implicated)]
        if not own:
            return []
        first = min(own, key=lambda s: (s.onset, not (s.direction == "up" and _is_symptom(s.series)),
                                        -abs(s.shift or 0.0)))
        extreme = "low" if first.direction == "down" else "peak"  # a series that fell has no peak to speak of
        # the onset is where it moved past its baseline's noise, not where an alert's threshold would be crossed:
        # no threshold is set here, so the line says the earliest such an alert could fire, not when it would have
        return [f"An alert on {_on_pod(first)} (baseline {fmt.series_value(first.series, first.baseline)}, {extreme} "
                f"{fmt.series_value(first.series, first.peak)}) could have fired from its onset, "
                f"{fmt.when(first.onset)}{after(first.onset)}, when it moved past its baseline's noise; how much "
                "later depends on the threshold chosen"]

    def _implicated(self) -> set[str]:
        """The services a proposed alert may watch, in lower case: the root cause's (or the leads'), the affected
        ones as the review lists them (with those held at the severity's floor, `held_at_floor`) and the catch-all
        of metrics with no service (`global`); empty where the review names none. A series that moved first elsewhere
        says nothing of this incident (TrainTicket 09:34 and 11:36 proposed ts-wait-order-service/SyscallWrite,
        moving 51 s and 4 s after either start, named nowhere else)."""
        affected = self.measured.services_affected
        named = [*(self.subjects if self.top or (self.verdict and self.verdict.services) else []), *affected]
        return {name.lower() for name in named} | {GLOBAL} if named else set()

    def _detection_advice(self) -> list[str]:
        """The mechanism catalogue's detection actions for the action items' subject (the root cause's service, or
        with no single root cause the leads); none where nothing moved."""
        if not self.moved:
            return []
        return [a.description for a in mitigations_for(self.kind, self.subjects) if a.type == "detect"]

    def _response_text(self) -> str:
        actions = [e for e in self._events() if e[0] >= self.window.start]
        if actions:
            listed = "; ".join(f"{fmt.when(t)} {text}" for t, text, _ in actions[:5])
            return f"Changes recorded during the incident: {listed}. The data holds no record of pages or " \
                   f"acknowledgements."
        return ("The data holds no record of responder actions (pages, acknowledgements, rollbacks or config "
                "changes) during the incident; response times cannot be measured from it.")

    def _recovery(self) -> Recovery:
        end = self.window.end
        if self.over:
            minutes = _span_minutes(self.window.start, self.over.end)
            return Recovery(recovered_at=self.over.end, time_to_recover_minutes=minutes, narrative=self._narrate(
                "recovery", f"{fmt.possessive(self.top.service)} WARN/ERROR lines, the only change in it that the "
                            "tests counted, were back at their usual rate at "
                            f"{fmt.when(self.over.end)}, {fmt.minutes(minutes)} after the start, and stayed there for "
                            f"the {fmt.minutes(self.over.quiet_minutes)} to {fmt.when(end)} ({self.window_end_reason}):"
                            " a burst that ended, not an incident still under way."))
        if self.onset_given:
            start = f"the start taken at {self.alert_start}" if self.at_alert else "a given start"
            return Recovery(narrative=self._narrate(
                "recovery", f"Not measured: with {start} the window runs to {fmt.when(end)} "
                            f"({self.window_end_reason}) and IncidentLens does not look for the incident's end, so "
                            "whether and when the signals returned to their baseline is not in this review."))
        minutes = _span_minutes(self.window.start, end)
        if self.ongoing:
            return Recovery(narrative=self._narrate(
                "recovery", f"Not in the data: the incident was still under way when the data ends at "
                            f"{fmt.when(end)}, {fmt.minutes(minutes)} after the incident window opened, so whether "
                            "and when the signals returned to their baseline is not in this review."))
        template = (f"Metrics were back within their baseline band at {fmt.when(end)}, {fmt.minutes(minutes)} "
                    "after the incident window opened.")
        return Recovery(recovered_at=end, time_to_recover_minutes=minutes,
                        narrative=self._narrate("recovery", template))

    def _events(self) -> list[tuple[dt.datetime, str, list[str]]]:
        """Deploys and config changes in the evidence: (time, description, evidence ids)."""
        found = []
        for ev in self.data.get("evidence") or []:
            if ev.get("kind") != "event":
                continue
            rows = ev.get("data") if isinstance(ev.get("data"), list) else [ev.get("data")]
            for row in rows:
                when = fmt.utc((row or {}).get("ts") or (row or {}).get("t")) if isinstance(row, dict) else None
                if when:
                    what = " ".join(str(row[k]) for k in ("service", "kind", "description") if row.get(k))
                    found.append((when, what, [ev["id"]]))
        return sorted(found, key=lambda e: e[0])

    def _timeline(self) -> list[TimelineEntry]:
        """The analysis's timeline, plus the trigger, window bounds and peak where it has no entry at that time."""
        entries = [(fmt.utc(e["t"]), fmt.readable_quotes(e["event"]), list(e.get("evidence") or []))
                   for e in self.data.get("timeline") or [] if e.get("t")]
        detection_evidence = list((self.data.get("detection") or {}).get("evidence") or [])
        given: list[_Entry] = []
        if self.onset_given:  # the examined window's bounds replace the detected window's, whatever else is there
            entries, given = self._given_start_entries(entries, detection_evidence)
            landmarks = []
        else:
            landmarks = [(self.window.start, "incident window opens", detection_evidence)]
            if not self.ongoing:
                landmarks.append((self.window.end, "metrics back within their baseline band (incident window closes)",
                                  detection_evidence))
        row = self._peak_row
        # the analysis's own peak row is at the time detection saw, which the impact's peak may have replaced
        kept = row is not None and row[0] == self._detected_peak
        entries = [(when, row[1], ids) if event == PEAK_EVENT else (when, event, ids)
                   for when, event, ids in entries if event != PEAK_EVENT or kept]
        if row:
            landmarks.append((row[0], row[1], detection_evidence if kept else self._impact_peak_evidence))
        if self.trigger:
            landmarks.append((self.trigger.t, f"trigger: {self.trigger.description}", self.trigger.evidence))
        # the analysis's own entry for a landmark may carry sub-second digits the landmark's time lacks
        covered = {when for when, _, _ in entries} | {event for _, event, _ in entries}
        entries += [mark for mark in landmarks if mark[0] and not {mark[0], mark[1]} & covered]
        entries, unordered = self._unordered_first(entries)
        # at the same second, the given start comes first and the examined window's end last
        ranked = [(when, 1, event, ids) for when, event, ids in entries]
        ranked += [(when, 0 if i == 0 else 2, event, ids) for i, (when, event, ids) in enumerate(given)]
        if self.over:
            ranked.append((self.over.end, 1, f"recovery: {fmt.possessive(self.top.service)} WARN/ERROR lines back at "
                                             "their usual rate (a burst that ended)", [self.over.evidence]))
        tied, moved = unordered or _tied_first(entries), _first_move(entries)
        return [self._not_its_own(when, event, evidence)
                or TimelineEntry(t=when, event=event, phase=self._phase(when, event, tied, moved), evidence=evidence)
                for when, _, event, evidence in sorted(ranked, key=lambda e: (e[0], e[1]))]

    def _unordered_first(self, entries: list[_Entry]) -> tuple[list[_Entry], dt.datetime | None]:
        """The rows with none called first to move where another service's own change follows the first within the
        data's same moment (`same_moment`, which the precedence tests call one moment: TrainTicket 14:23's "first to
        move: ts-verification-code-service" above ts-inside-payment-service 27 s later, which its own test says the
        data cannot order), and the time of the first such change, whose moment is the onset; the rows as they are
        and None where the first stands alone or no moment is known."""
        moment = self.same_moment
        own = sorted(when for when, event, ids in entries  # services' moves, not series flagged beside them
                     if _service_move(event) and self._not_its_own(when, event, ids) is None)
        if moment is None or len(own) < 2 or own[1] - own[0] > moment:
            return entries, None
        return [(when, _a_move(event), ids) for when, event, ids in entries], own[0]

    def _not_its_own(self, when: dt.datetime, event: str, evidence: list[str]) -> TimelineEntry | None:
        """A service's move that is no change of its own (`verdict.services[].own`: only its host's metrics, or a
        latency percentile its traced calls do not bear out or cannot confirm; or before its own change,
        `own_onset`) as a row of phase `other`, worded as a move, not the first: the incident's onset or its
        spreading is what the headline's own changes say, not these (TrainTicket 10:20's "onset: first to move:
        ts-rebook-service (PodClientLatencyP90(s) from 0.0044 to 20 ...: a percentile the traces cannot confirm)"
        above a headline naming ts-travel-service; OnlineBoutique 13:10's "propagation: emailservice moves (its
        host's NodeCpuUsageRate(%) from 1.94 to 1.68 (-13%))"). A series' row (`cache/NodeCpuUsageRate(%) becomes
        anomalous`) of its host, or of a percentile the traces deny or cannot confirm, is such a row too, saying
        which. None for any other row."""
        series, anomalous, rest = event.partition(" becomes anomalous")
        if anomalous and not rest:
            caveat = self._series_caveats.get(series) or (
                f"its host's, not {fmt.possessive(series.rpartition('/')[0])} own" if _is_host_series(series) else None)
            return TimelineEntry(t=when, event=f"{event} ({caveat})", phase="other",
                                 evidence=evidence) if caveat else None
        head = event.removeprefix("first to move: ")
        service, _, detail = head.partition(" (")
        service = service.removesuffix(" moves")
        own = self._own_changes.get(service)
        if not detail or own is None or (own[0] and (own[1] is None or when >= own[1])):
            return None
        return TimelineEntry(t=when, event=f"{service} moves ({detail}", phase="other", evidence=evidence)

    @cached_property
    def _series_caveats(self) -> dict[str, str]:
        """`_trace_caveats` of this analysis, read once for the timeline's rows, the alert and the detection; a
        percentile the impact left out as longer than the window says that first, as the analysis' words do
        (TrainTicket 10:12's peak row: "ts-contacts-service/PodClientLatencyP99(s) at 1,704 s ...", in 204 s)."""
        return _trace_caveats(self.data) | {c.series: f"a percentile {past_window_caveat(c.longest_s)}"
                                            for c in self.measured.past_window}

    @cached_property
    def _own_changes(self) -> dict[str, tuple[bool, dt.datetime | None]]:
        """Per service of the verdict: whether it showed a change of its own, and from when (`own`, `own_onset`);
        a service an older analysis says nothing of is taken as its own."""
        services = (self.data.get("verdict") or {}).get("services") or []
        return {s["service"]: (bool(s.get("own", True)), fmt.utc(s["own_onset"]) if s.get("own_onset") else None)
                for s in services if s.get("service")}

    @cached_property
    def _peak_row(self) -> tuple[dt.datetime, str] | None:
        """The peak's row, its time and words: `peak of the incident: api/p95_ms at 2,450 ms (baseline 180 ms)`, the
        series detection saw peak then (of several, the one that moved most); where that series is one the review
        itself discounts (a percentile the traces do not bear out or cannot confirm, a host's series), the impact's
        peak instead, the figure the Impact section and the severity read (OnlineBoutique 13:10 named as the
        incident's peak paymentservice's client p99 of 0.242 s, "a percentile the traces do not bear out", beside
        an impact of the front door failing 5.9%); with no impact peak, the series with what the traces show of it.
        None when no series peaked then."""
        detected = self._detected_peak
        if detected is None:
            return None
        at = detected.replace(microsecond=0)
        peaked = [s for s in self.detection_series if s.peak_at and s.peak_at.replace(microsecond=0) == at
                  and s.peak is not None]
        if not peaked:
            return None
        caveats = self._series_caveats | {c.series: f"a percentile the traces do not bear out "
                                                    f"({traced_calls_words(c.traced_calls, c.longest_ms)})"
                                          for c in self.measured.not_borne_out}
        top = max(peaked, key=lambda s: abs(s.shift or 0.0))
        service = top.series.rpartition("/")[0]
        if _is_host_series(top.series) and service:
            caveats[top.series] = f"the host's, not {fmt.possessive(service)} own"
        instead = self._impact_peak_row() if top.series in caveats else None
        if instead:
            return instead
        level = "down to" if top.direction == "down" else "at"
        caveat = f"; {caveats[top.series]}" if top.series in caveats else ""
        return detected, (f"{PEAK_EVENT}: {top.series} {level} {fmt.series_value(top.series, top.peak)} (baseline "
                          f"{fmt.series_value(top.series, top.baseline)}){caveat}")

    def _impact_peak_row(self) -> tuple[dt.datetime, str] | None:
        """The impact's peak as the timeline's peak row: its error rate's where a metric measured one (failures
        before slowness), else its latency's, else its share of ERROR/FATAL log lines' (a minute's, which counts no
        failed request); None when it has none with a time."""
        impact = self.measured
        e, lat = impact.peak_error_rate, impact.peak_latency
        if e and e.at and e.metric != LOG_ERROR_SHARE:
            return e.at, (f"{PEAK_EVENT}: {fmt.error_rate_name(e.service, e.metric)} at {fmt.pct(e.value)}"
                          + (f" (baseline {fmt.pct(e.baseline)})" if e.baseline is not None else ""))
        if lat and lat.at:
            return lat.at, (f"{PEAK_EVENT}: latency ({fmt.series_name(lat.service, lat.metric)}) at "
                            f"{fmt.measure(lat.metric, lat.value)}"
                            + (f" (baseline {fmt.measure(lat.metric, lat.baseline)})" if lat.baseline is not None
                               else ""))
        if e and e.at:
            return e.at, (f"{PEAK_EVENT}: {fmt.error_rate_name(e.service, e.metric)} at {fmt.pct(e.value)} in the "
                          "minute from then" + (f" (baseline {fmt.pct(e.baseline)})" if e.baseline is not None else ""))
        return None

    @property
    def _impact_peak_evidence(self) -> list[str]:
        """The impact's evidence of its peaks (the items titled so), else all of it."""
        ids = set(self.measured.evidence)
        peaks = [ev["id"] for ev in self.data.get("evidence") or []
                 if ev.get("id") in ids and str(ev.get("title", "")).startswith("peak")]
        return peaks or list(self.measured.evidence)

    def _given_start_entries(self, entries: list[_Entry], evidence: list[str]) -> tuple[list[_Entry], list[_Entry]]:
        """With a given start: the analysis's entries less those that assume a detected window (its close read as a
        recovery, a peak put at the start when no metric moved), and the start and end of the examined window."""
        kept = [(when, event, ids) for when, event, ids in entries
                if not event.startswith(DETECTED_END_EVENTS)
                and not (event == PEAK_EVENT and self._detected_peak is None)]
        start = (f"{self.alert_start} taken as the incident's start; no incident window detected there"
                 + ("" if self.alert_start == ALERT_TIME else f" and nothing after {ALERT_TIME} could be explained")
                 if self.at_alert else f"incident start given ({GIVEN_START}); not detected by IncidentLens")
        bounds = [(self.window.start, start, evidence),
                  (self.window.end, f"end of the examined window ({self.window_end_reason})"
                                    + ("" if self.over else "; recovery not assessed"), evidence)]
        return kept, bounds

    def _at_onset(self, when: dt.datetime, event: str, tied_first: dt.datetime | None) -> bool:
        """Whether a move is at `tied_first`, the earliest time of moves none is first of, or within the data's same
        moment after it (`_unordered_first`): what the data cannot order after the first is no spreading from it."""
        if tied_first is None or not _moves(event):
            return False
        return tied_first <= when <= tied_first + (self.same_moment or dt.timedelta(0))

    def _phase(self, when: dt.datetime, event: str, tied_first: dt.datetime | None = None,
               first_move: dt.datetime | None = None) -> str:
        """The event's phase by its time and what it is: its head's words, not its detail's (what a service showed,
        in parentheses, or a quoted log line say 'onset' or 'first' of their own); a move at `tied_first` (the
        earliest, shared, `_tied_first`) is the onset; a log template's first line after `first_move` (the first
        service or series to move, `_first_move`) is the incident spreading, as a service moving then is."""
        text = _EVENT_DETAIL.split(event, maxsplit=1)[0].lower()
        if when < self.window.start:
            return "lead-up"
        if (self.onset_given or self.ongoing) and when >= self.window.end:
            return "other"  # the examined window's end, or the data's, not a recovery
        if "peak" in text:
            return "peak"
        if when >= self.window.end or "recover" in text or "back within" in text:
            return "recovery"
        if text == "first" and first_move is not None and when > max(first_move, self.window.start):
            return "propagation"
        if when == self.window.start or "onset" in text or "first" in text or self._at_onset(when, event, tied_first):
            return "onset"
        if (self.top and not self.inconclusive and self.top.test_passed is not False
                and text.startswith(f"{self.top.service.lower()} moves")):
            # the root cause named starting to move is its onset, not the incident spreading to it (TrainTicket
            # 10:26's ts-travel2-service, named at 79%, moved 2 s after a percentile the traces do not bear out);
            # one whose test found others moving first is left as the data orders it
            return "onset"
        # another series leaving its band after the onset is the incident spreading, not its detection
        if "reach" in text or "propagat" in text or "spread" in text or text.endswith((" moves", "becomes anomalous")):
            return "propagation"
        if "detect" in text or "anomal" in text:
            return "detection"
        if "rollback" in text or "roll back" in text or "restart" in text:
            return "response"
        return "other"

    def _nothing_to_order(self) -> str:
        """The first step with no service to order: look at the series that moved, or check the alert when none did."""
        if self.series_only:
            return LOOK_AT_SERIES.format(fmt.listed(self.series_only))
        checked = [what for source, what in SEEN_MOVING.items() if source not in self.missing_sources]
        hidden = [SEEN_ONLY_IN[source] for source in SEEN_ONLY_IN if source in self.missing_sources]
        if not hidden or not checked:  # nothing missing, or only call metrics, which show no fault of their own
            return CHECK_THE_ALERT
        return CHECK_THE_ALERT_WITHOUT.format(checked=fmt.listed(checked, "or"), missing=self._missing_words(),
                                              hidden=fmt.listed(hidden, "or"))

    def _action_items(self) -> list[ActionItem]:
        """The catalogue's actions for the cause, at priorities the severity calls for (`_at_severity`)."""
        return _at_severity(self._catalogue_actions(), self.severity[0], over=self.over is not None)

    @property
    def change_seen(self) -> bool:
        """Whether the data shows a change (a deploy, a config change) to the service acted on before the onset."""
        return (self.trigger_on_path and self.trigger.kind in CHANGE_KINDS and self.trigger.service == self.service
                and (self.trigger.t is None or self.trigger.t <= self.window.start))

    @property
    def _revert(self) -> str:
        """What an undetermined failure's mitigation says of a change to revert: the one the data shows before the
        onset, that it shows none, or that no events were given to show one."""
        if self.change_seen:
            return f"Revert {self.trigger.description}, which preceded the onset"
        return REVERT_NOT_GIVEN if self.events_given is False else REVERT_NONE_SEEN

    @property
    def events_given(self) -> bool | None:
        """Whether deploy, config or operator events were given (`analysis.sources.events_given`); None where the
        analysis does not say."""
        given = (self.data.get("sources") or {}).get("events_given")
        return None if given is None else bool(given)

    @property
    def unharmed_change(self) -> bool:
        """Whether the review names a change of undetermined mechanism that harmed nothing measured: its service is
        watched, not taken out of rotation (`UNHARMED_MITIGATION`)."""
        return playbook_kind(self.kind) == "unknown" and not self.inconclusive and not self.harmed

    @property
    def untraced_cause(self) -> bool:
        """Whether the review names a cause of undetermined mechanism that nothing traces (`hypotheses[].untraced`):
        its actions look at the dependency itself, which has no instances here to take out of rotation."""
        return (playbook_kind(self.kind) == "unknown" and not self.inconclusive and self.top is not None
                and any(h.get("untraced") and h.get("service") == self.top.service
                        for h in self.data.get("hypotheses") or []))

    @property
    def demand_rose(self) -> bool:
        """Whether the demand on the root cause's service rose (`hypotheses[].demand_rose`): what scaling it out for
        traffic needs (TrainTicket's and OnlineBoutique's CPU faults are contention at the same traffic)."""
        return self.top is not None and any(h.get("demand_rose") and h.get("service") == self.top.service
                                            for h in self.data.get("hypotheses") or [])

    @property
    def untraced_services(self) -> set[str]:
        """The services (lower case) the hypotheses say are seen only in their callers' calls."""
        return {str(h.get("service")).lower() for h in self.data.get("hypotheses") or [] if h.get("untraced")}

    def _untraced_words(self) -> str:
        return UNTRACED_MITIGATION.format(revert=self._revert.format(service=self.service), service=self.service)

    def _watch_words(self) -> str:
        return UNHARMED_MITIGATION.format(revert=self._revert.format(service=self.service), service=self.service)

    def _catalogue_actions(self) -> list[ActionItem]:
        cited = self.top.supporting if self.top else list((self.data.get("detection") or {}).get("evidence") or [])
        items = mitigations_for(self.kind, self.subjects, cited, measured=self.call_measures, revert=self._revert,
                                named="its mechanism" if self.confirmed else "the cause", demand_rose=self.demand_rose,
                                logs_read="logs" not in self.missing_sources)
        if self.untraced_cause:
            # a database seen only in its callers' calls: it has no instances here to take out of rotation, and the
            # telemetry that would name its mechanism is its own, not more metrics of the calls into it
            telemetry = UNTRACED_TELEMETRY.format(service=self.service)
            items = [item.model_copy(update={"description": self._untraced_words() if i == 0 else telemetry})
                     if i == 0 or item.type == "prevent" else item for i, item in enumerate(items)]
        elif self.unharmed_change:
            # OnlineBoutique 12:27: "No impact was measured" above "take the instances that show the change out of
            # rotation (or restart them)"
            items[0] = items[0].model_copy(update={"description": self._watch_words()})
        if self.inconclusive:
            items[0] = ActionItem(
                type="process", priority="P1", eta="24 hours", owner="SRE", evidence=cited,
                description=(f"{_which_cut(*self.cut_pair)}, before reverting or scaling either: "
                             f"{_cut_words(*self.cut_pair)}, one change that points at both") if self.cut_pair else
                f"{_which_first(self.leads)}, before reverting or scaling "
                f"{'it' if len(self.leads) == 1 else 'any of them'}: the data names no single root cause"
                + self._cut_hint() if self.verdict.services else self._nothing_to_order())
        trigger_is_change = self.trigger_on_path and self.trigger.kind in CHANGE_KINDS
        if trigger_is_change and playbook_kind(self.kind) != "bad_deploy" and self.trigger.service:
            canary = next(a for a in mitigations_for("bad_deploy", [self.trigger.service], self.trigger.evidence)
                          if a.type == "prevent")
            items.insert(1, canary)
        if self.over:
            items = [self._should_it_recur(a) if a.type == "mitigate" else a for a in items]
        rolled_back = self._rolled_back() if playbook_kind(self.kind) == "bad_deploy" else None
        if rolled_back:
            items = [self._done_already(a, *rolled_back) if a.type == "mitigate" else a for a in items]
        return items if self.moved else items[:1]  # nothing moved: no service to act on, only the alert to check

    def _rolled_back(self) -> tuple[dt.datetime, str] | None:
        """The rollback of the root cause's service the data records after the incident began (an event of kind
        `rollback`), its time and words; None when none is recorded."""
        for ev in self.data.get("evidence") or []:
            rows = ev.get("data") if isinstance(ev.get("data"), list) else [ev.get("data")]
            for row in rows if ev.get("kind") == "event" else []:
                when = fmt.utc(row.get("ts") or row.get("t")) if isinstance(row, dict) else None
                if (when and when >= self.window.start and str(row.get("kind", "")).lower() == "rollback"
                        and row.get("service") == self.service):
                    return when, str(row.get("description") or f"rollback {self.service}")
        return None

    def _done_already(self, action: ActionItem, when: dt.datetime, what: str) -> ActionItem:
        """A bad deploy's rollback the data records as done (seed 3's bad-deploy day asked, P0 "immediately", to roll
        inventory back, where its Response section read "17:11 UTC inventory rollback rollback inventory to v1.3.6"):
        what remains is to keep it there."""
        return action.model_copy(update={"description": (
            f"Keep {self.service} on the release it was rolled back to ({what}, at {fmt.when(when)}, as the data "
            "records) and hold further rollouts until a fix is verified")})

    def _should_it_recur(self, action: ActionItem) -> ActionItem:
        """A mitigation of a burst that ended (`BurstEnded`): nothing is under way to stop, so it is what to do should
        the burst recur."""
        what = action.description[0].lower() + action.description[1:]
        return action.model_copy(update={"description": f"The burst ended at {fmt.when(self.over.end)}: should "
                                                        f"{fmt.possessive(self.top.service)} WARN/ERROR lines surge "
                                                        f"again, {what}"})

    def _cut_hint(self) -> str:
        """Where to look first when the leading service's requests were cut short after a call."""
        top = self.top.service if self.top else None
        showing = next((s for s in self.verdict.services if s.service == top), None) if self.verdict else None
        if showing is None or not showing.ends_after:
            return ""
        return (f"; start with {showing.ends_after}: {fmt.possessive(top)} requests now end right after calling it, "
                "as its errors or a wrong return would make them")

    def _lessons(self, impact: Impact) -> Lessons:
        well, wrong, lucky = [], [], []
        detection = self.data.get("detection") or {}
        if detection.get("first_anomalous") and not self.onset_given:
            well.append(f"The anomaly was caught in the metrics at {fmt.when(fmt.utc(detection['first_anomalous']))}")
        if self.top and self.top.test_passed and not self.inconclusive:
            well.append(f"The leading hypothesis ({self.top.service}) passed its falsification test")
        new_problems = [t for t in self.data.get("templates") or []
                        if t.get("status") == "new" and (t.get("count_problems_window") or 0) > 0]
        if new_problems and not self.inconclusive:
            well.append("Logs named the failure directly: new error templates appeared with the onset")
        if self.inconclusive and self.cut_pair:
            wrong.append(f"No single root cause could be named from this data: {_cut_words(*self.cut_pair)}, and "
                         "nothing in it says which of the two cut them")
        elif self.inconclusive and self.verdict.services:
            # "led" read as "moved first", which the headline says of one of them
            led = "whether it led" if len(self.leads) == 1 else "which one set off the others"
            wrong.append(f"No single root cause could be named from this data: {self.subject} moved, and nothing in "
                         f"it says {led} or why")
        elif self.inconclusive:
            moved = (f"{fmt.listed(self.series_only)} moved, and no service's before/after tests showed why"
                     if self.series_only else NOTHING_MOVED)
            wrong.append(f"No single root cause could be named from this data: {moved}")
        if self.trigger_on_path:
            wrong.append(f"{self.trigger.description} reached production and set off the incident")
        if self.confirmed and playbook_kind(self.kind) not in ("unknown", "memory_near_limit", "network_delay"):
            # the data shows the failure got through, not what guards the service had (memory near its limit and a
            # network delay got through nothing a guard would stop)
            wrong.append(f"Nothing in the data shows a guard in {self.top.service} that stopped "
                         f"{playbook(self.kind).phrase}")
        if self.onset_given:
            start = f"the start is {self.alert_start}" if self.at_alert else f"the start was given ({GIVEN_START})"
            wrong.append(f"Time to detect cannot be measured: {start}, not found in the data, and no page or "
                         "acknowledgement is recorded in it")
        else:
            wrong.append("No page or alert is recorded in the data: nobody can be shown to have been notified")
        if impact.regions_affected and len(impact.regions_affected) == 1:
            lucky.append(f"The failure stayed in one region ({impact.regions_affected[0]})")
        # without any events given, no intervention could have been recorded: that none was is not known
        no_intervention = bool(self.events_given) and all(t < self.window.start for t, _, _ in self._events())
        if no_intervention and not self.onset_given and not self.ongoing:  # neither window end is a recovery
            lucky.append("The system recovered without a recorded intervention")
        lessons = Lessons(went_well=well, went_wrong=wrong, got_lucky=lucky)
        if self.narrative.get("lessons"):
            # The lists above are the template; a rejected model text leaves an empty note with its reasons.
            lessons.narrative = self._narrate("lessons", "")
        return lessons


def validate_grounding(pm: Postmortem, evidence: Any) -> GroundingCheck:
    """Check every statement of the review (prose, timeline, findings, lessons) against the evidence, and every
    evidence id it cites against the evidence it holds."""
    facts = evidence if isinstance(evidence, Facts) else Facts(evidence)
    statements = {"title": pm.title}
    statements |= {f"{name}": n.text for name, n in pm.narratives().items() if n.text}
    if pm.root_cause and pm.root_cause.certainty:
        statements["root_cause.certainty"] = pm.root_cause.certainty
    statements |= {f"timeline[{i}]": f"{fmt.when(e.t)} {e.event}" for i, e in enumerate(pm.timeline, 1)}
    statements |= {f"contributing_factors[{i}]": f.description for i, f in enumerate(pm.contributing_factors, 1)}
    statements |= {f"detection.sooner[{i}]": text for i, text in enumerate(pm.detection.sooner, 1)}
    for part in ("went_well", "went_wrong", "got_lucky"):
        statements |= {f"lessons.{part}[{i}]": text for i, text in enumerate(getattr(pm.lessons, part), 1)}
    issues = [f"{where}: {reason}" for where, text in statements.items() for reason in check_grounding(text, facts)]
    held = {e.id for e in pm.evidence}
    missing = [cited for cited in pm.cited_evidence() if cited not in held]
    return GroundingCheck(statements=len(statements), issues=issues, missing_evidence=missing)


def _at_severity(items: list[ActionItem], severity: Severity | None, over: bool = False) -> list[ActionItem]:
    """`items` moved down alike (their order kept) until the most urgent is no more urgent than `severity` calls for
    (`MOST_URGENT`): a P1 revert of a SEV4, a shift no user felt, becomes P2 and what followed it P3; `over`: what
    moved was a burst that ended (`BurstEnded`), one step further: nothing is still under way to stop."""
    if severity is None or not items:
        return items
    most_urgent = PRIORITIES.index(MOST_URGENT[severity]) + (1 if over else 0)
    down = max(0, most_urgent - min(PRIORITIES.index(a.priority) for a in items))
    return [a.model_copy(update={"priority": PRIORITIES[min(len(PRIORITIES) - 1, PRIORITIES.index(a.priority) + down)]})
            for a in items]


def _no_incident(data: dict[str, Any], author: GeneratedBy) -> Postmortem:
    reason = data.get("reason") or "no metric left its baseline band"
    detection = data.get("detection") or {}
    checked = _detector_checks(detection) + _checked(data)
    baseline = _window(data.get("baseline_window"))
    text = (f"No incident was detected: {fmt.sentence(reason)} What the analysis examined is listed below, each "
            "item with the query that reruns it.")
    pm = Postmortem(
        detected=False, reason=reason, title="No incident detected",
        date=baseline.end.date() if baseline else dt.datetime.now(dt.UTC).date(),
        severity=None, severity_rule=f"not applicable: no incident (rule: {RULE})",
        baseline_window=baseline, summary=Narrative(text=text),
        detection=Detection(detector=(data.get("detection") or {}).get("detector"),
                            narrative=Narrative(text=f"Nothing crossed the detector's threshold: {reason}"),
                            evidence=list((data.get("detection") or {}).get("evidence") or [])),
        response=Narrative(text="Not applicable: no incident."),
        lessons=Lessons(), sources=_sources(data), checked=checked, data_quality=_data_quality(data),
        evidence=_evidence(data),
        generated_by=author,
    )
    pm.grounding = validate_grounding(pm, data)
    return pm


def _as_dict(analysis: Any) -> dict[str, Any]:
    if hasattr(analysis, "to_dict"):
        return analysis.to_dict()
    if hasattr(analysis, "model_dump"):
        return analysis.model_dump(mode="json")
    if not isinstance(analysis, Mapping):
        raise InputError(f"analysis: expected a JSON object, got {type(analysis).__name__}")
    return dict(analysis)


def read_analysis(path: str | Path) -> dict[str, Any]:
    """analysis.json as a dict (gzipped too; UTF-8, or UTF-16 with its byte-order mark as Windows PowerShell's `>`
    writes `analyze --json`); a missing or unreadable file raises InputError naming it (and the line), a directory
    one naming the analysis.json to give."""
    path = Path(path)
    if path.is_dir():
        inside = path / "analysis.json"
        said = f"give the analysis.json in it ({inside})" if inside.is_file() else "give an analysis.json file"
        raise InputError(f"{path}: is a directory; {said}")
    try:
        with open_bytes(path) as handle:
            data = json.loads(_analysis_text(path, handle.read()))
    except OSError as err:
        raise InputError(f"{path}: cannot read ({err.strerror or err})") from err
    except EOFError:
        raise InputError(f"{path}: cannot read: {GZIP_CUT_SHORT}") from None
    except json.JSONDecodeError as err:
        raise InputError(f"{path}: line {err.lineno} column {err.colno}: not valid JSON ({err.msg})") from err
    if not isinstance(data, dict) or "detected" not in data:
        raise InputError(f"{path}: not an analysis result (no 'detected' key); write one with `incidentlens analyze`")
    return data


def _analysis_text(path: Path, raw: bytes) -> str:
    """analysis.json's bytes as text: UTF-8 (its byte-order mark dropped), UTF-16 after its byte-order mark; else an
    InputError naming the first byte that is not UTF-8."""
    wide = raw.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE))
    try:
        return raw.decode("utf-16" if wide else "utf-8-sig")
    except UnicodeDecodeError as err:
        said = "UTF-16 text, though it opens with UTF-16's byte-order mark" if wide else (
            f"UTF-8 text (byte 0x{raw[err.start]:02x} at offset {err.start})")
        raise InputError(f"{path}: not {said}") from None


#: where a timeline event's detail starts: what a service showed (`api moves (WARN/ERROR lines at ...)`), a quoted log
#: template (`first 'timeout after <*> ms' (new log template, api)`)
_EVENT_DETAIL = re.compile(r" \(| '")


def _moves(event: str) -> bool:
    """Whether a timeline event is a service's or a series' move (`api moves (...)`, `api/p95_ms becomes
    anomalous`), not the first one's."""
    return _EVENT_DETAIL.split(event, maxsplit=1)[0].lower().endswith((" moves", " becomes anomalous"))


def _first_move(entries: list[_Entry]) -> dt.datetime | None:
    """When the first service or series moved (`first to move: api ...`, `api moves ...`, `first anomalous point:
    ...`): a log template's first line after it came with the incident under way, not at its onset (TrainTicket
    08:52: a payment line surging from 08:52:13 read "onset" below four services that moved from 08:52:09)."""
    return min((when for when, event, _ in entries if _moves(event) or event.lower().startswith(_FIRST_MOVES)),
               default=None)


_FIRST_MOVES = ("first to move:", "first anomalous point:")
_FIRST_TO_MOVE = "first to move: "


def _service_move(event: str) -> bool:
    """Whether a timeline event is a service's move (`first to move: api (...)`, `api moves (...)`)."""
    head, sep, _ = event.removeprefix(_FIRST_TO_MOVE).partition(" (")
    return bool(sep) and (event.startswith(_FIRST_TO_MOVE) or head.endswith(" moves"))


def _a_move(event: str) -> str:
    """`first to move: api (...)` as `api moves (...)`; any other event as it is."""
    if not event.startswith(_FIRST_TO_MOVE):
        return event
    service, sep, detail = event.removeprefix(_FIRST_TO_MOVE).partition(" (")
    return f"{service} moves{sep}{detail}"


def _tied_first(entries: list[_Entry]) -> dt.datetime | None:
    """When the first moves share the earliest time, none labelled first (the data cannot order them): that time.
    Their rows are the onset, not propagation: nothing moved before them to spread from (OnlineBoutique 13:10,
    checkoutservice and paymentservice at 13:10:37, both read "propagation")."""
    if any(_EVENT_DETAIL.split(event, maxsplit=1)[0].lower().startswith("first ") for _, event, _ in entries):
        return None
    return min((when for when, event, _ in entries if _moves(event)), default=None)


def _burst_over(raw: list[dict[str, Any]]) -> BurstEnded | None:
    """The best hypothesis' burst that ended (`Hypothesis.ended`) where every hypothesis' change was one: then nothing
    that moved is still under way; None otherwise."""
    ordered = sorted(raw, key=lambda h: -float(h.get("confidence") or 0))
    if not ordered or not all(h.get("ended") for h in ordered):
        return None
    return BurstEnded.model_validate(ordered[0]["ended"])


def _ranked_hypotheses(raw: list[dict[str, Any]]) -> list[Hypothesis]:
    ordered = sorted(raw, key=lambda h: -float(h.get("confidence") or 0))
    return [Hypothesis(rank=i, **{**{k: v for k, v in h.items() if k in Hypothesis.model_fields},
                                  "kind": _acted_kind(h.get("kind"), h.get("mechanism")),
                                  **({"mechanism": fmt.readable_quotes(h["mechanism"])}
                                     if isinstance(h.get("mechanism"), str) else {})})
            for i, h in enumerate(ordered, start=1)]


def _acted_kind(kind: Any, mechanism: Any) -> Any:
    """A hypothesis' kind as the review names and acts on it: memory exhaustion resting on memory near its limit
    alone (`mechanism.NO_RESTART_SEEN`) is that, not restarts nobody saw."""
    if playbook_kind(kind) == "oom_restart_loop" and NO_RESTART_SEEN in str(mechanism or ""):
        return "memory_near_limit"
    return kind


def _search_step(service: str, template: dict[str, Any]) -> str:
    """The runbook step naming the log line that marked a service in this incident."""
    change = "appeared" if template.get("status") == "new" else "surged"
    return (f"Search {fmt.possessive(service)} logs for lines matching "
            f"'{fmt.readable_pattern(template['template'])}': they {change} with this incident")


def _verdict(raw: dict[str, Any] | None) -> Verdict | None:
    """The verdict as the review states it, with the log templates quoted in its reason and in what each service
    showed written without their masked noise."""
    if not raw:
        return None
    services = [_showing(s) for s in raw.get("services") or []]
    reason = fmt.readable_quotes(raw["reason"]) if isinstance(raw.get("reason"), str) else raw.get("reason")
    return Verdict.model_validate({**pick(Verdict, raw), "reason": reason, "services": services})


def _showing(raw: dict[str, Any]) -> ServiceShowing:
    """What a service showed, with the log templates quoted in it written without their masked noise."""
    showed = [fmt.readable_quotes(said) if isinstance(said, str) else said for said in raw.get("showed") or []]
    return ServiceShowing.model_validate({**pick(ServiceShowing, raw), "showed": showed})


def _trigger(raw: dict[str, Any] | None) -> Trigger | None:
    if not raw:
        return None
    return Trigger(kind=raw.get("kind") or "change", t=fmt.utc(raw.get("t")), service=raw.get("service"),
                   description=raw.get("description") or raw.get("kind") or "change",
                   evidence=list(raw.get("evidence") or []))


def _detector_checks(detection: dict[str, Any]) -> list[str]:
    """What the detector looked at, in its own words: how many series, and the ones it had to skip."""
    checks = []
    if detection.get("series_checked"):
        checks.append(f"{detection['series_checked']} metric series with the {detection.get('detector') or ''} "
                      "detector".replace("  ", " "))
    return checks + _grouped_skips([str(note) for note in detection.get("notes") or []])


def _grouped_skips(notes: list[str], shown: int = 6) -> list[str]:
    """The detector's notes, with series skipped for the same reason (`<series>: skipped: <why>`) on one line: ten
    constant `restarts` series must not crowd the other checks out of a ten-line summary."""
    skipped: dict[str, list[str]] = {}
    others = []
    for note in notes:
        series, marker, why = note.partition(": skipped: ")
        if marker:
            skipped.setdefault(why, []).append(series)
        else:
            others.append(note)
    lines = [f"{len(names)} series skipped, {why}: {', '.join(names[:shown])}"
             + (f" and {len(names) - shown} more" if len(names) > shown else "") if len(names) > 1
             else f"{names[0]}: skipped: {why}" for why, names in skipped.items()]
    return lines + others[:10]


def _test_ids(data: dict[str, Any]) -> set[str]:
    """The ids of the hypotheses' tests among the evidence."""
    return {ev["id"] for ev in data.get("evidence") or [] if ev.get("kind") == "hypothesis_test"}


def _checked(data: dict[str, Any]) -> list[str]:
    """Every piece of evidence."""
    return [f"{ev['title']} [{ev['id']}]" for ev in data.get("evidence") or []]


def _sources(data: dict[str, Any]) -> Sources | None:
    """Which sources the analysis read and what they lacked (`analysis.sources`); None when it does not say."""
    raw = data.get("sources")
    return Sources.model_validate(pick(Sources, raw)) if isinstance(raw, dict) else None


def _data_quality(data: dict[str, Any]) -> list[str]:
    """The input records set aside as unreadable, one note per file (shown whether or not an incident was found)."""
    return [str(item["note"]) for item in data.get("data_quality") or []]


def _trace_caveats(data: dict[str, Any]) -> dict[str, str]:
    """Every `service/metric` whose shift the analysis marked as not borne out by the traced calls, or as a
    percentile no traced call (or too few) could check, with what the traces show in words (the impact lists only
    the latency series it would have counted: a client-side percentile can move first and be left off it)."""
    return {f"{ev['data'].get('service')}/{s.get('metric')}":
            f"a percentile the traces do not bear out ({s['not_borne_out']})" if s.get("not_borne_out")
            else f"a percentile the traces cannot confirm ({s['unchecked']})"
            for ev in data.get("evidence") or []
            if ev.get("kind") == "metric_shift" and isinstance(ev.get("data"), dict)
            for s in ev["data"].get("series") or []
            if isinstance(s, dict) and (s.get("not_borne_out") or s.get("unchecked"))}


def _on_pod(series: DetectionSeries) -> str:
    """`cart/cpu`, or `cart/cpu on pod cart-7d4b9c6f5d-a1b2c` where the service has several pods (its figures are
    that pod's)."""
    return series.series + (f" on pod {series.pod}" if series.pod else "")


def _is_host_series(series: str) -> bool:
    """Whether a `service/metric` series is the host's, not the service's own (`NodeCpuUsageRate(%)`, `node_...`)."""
    return bool(re.search(HOST_METRIC, series.rsplit("/", 1)[-1]))


def _near_idle(series: DetectionSeries, moved: list[DetectionSeries]) -> bool:
    """Whether `series` is a resource's use (`RESOURCE`) that stayed under `IDLE_SHARE` of its limit, before and at
    its peak: read from the series itself where it is a share of its limit (a percentage, a ratio), else from the
    same service's share of the same resource that moved with it (`CpuUsageRate(%)` for `CpuUsage(m)`). An amount
    with no share beside it cannot be judged, and is kept."""
    service, _, metric = series.series.rpartition("/")
    resource = RESOURCE.search(metric)
    if resource is None:
        return False
    shares = [s for s in [series, *moved] if s.series.rpartition("/")[0] == service and not _is_host_series(s.series)
              and resource[0].lower() in s.series.rpartition("/")[2].lower() and _limit_scale(s) is not None]
    if not shares:
        return False
    share = shares[0]
    level = max(abs(share.baseline or 0.0), abs(share.peak or 0.0))
    return level < IDLE_SHARE * (_limit_scale(share) or 0.0)


def _limit_scale(series: DetectionSeries) -> float | None:
    """The full scale of a share of a limit (`mechanism.limit_scale`); None for an amount."""
    return limit_scale(series.series.rpartition("/")[2], series.baseline or 0.0, series.peak or 0.0)


def _alertable(series: DetectionSeries) -> bool:
    """Whether an alert on the series would watch what went wrong: not the demand a service's callers set
    (`rootcause.own_health`: bytes received, an operation count) nor its system calls, which follow its traffic
    (OnlineBoutique 15:04: productcatalogservice/SyscallWrite falling with the requests it failed), nor a latency or
    error rate that fell (12:01: productcatalogservice's p95 from 0.0181 to 0.00497 s)."""
    metric = series.series.rsplit("/", 1)[-1]
    fell = series.direction == "down" and _is_symptom(series.series)
    return own_health(metric) and not _SYSCALLS.search(metric) and not fell


_SYSCALLS = re.compile(r"(?i)syscall")


def _is_symptom(series: str) -> bool:
    """Whether a `service/metric` series is a latency or an error rate: what the service's users feel."""
    metric = series.rsplit("/", 1)[-1]
    return bool(LATENCY.search(metric) or ERROR_RATIO.search(metric))


def _evidence(data: dict[str, Any]) -> list[EvidenceItem]:
    return [EvidenceItem.model_validate(pick(EvidenceItem, ev)) for ev in data.get("evidence") or []]


def _peak(raw: dict[str, Any] | None) -> Peak | None:
    return Peak.model_validate(pick(Peak, raw)) if raw and raw.get("value") is not None else None


def _window(raw: dict[str, Any] | None) -> Window | None:
    return Window.model_validate(pick(Window, raw)) if raw else None


def _named_services(services: list[str]) -> list[str]:
    """The affected services a reader can act on: `global` (the placeholder service of wide metrics) only when no
    real service is named."""
    named = [s for s in services if s != GLOBAL]
    return list(dict.fromkeys(named or services))


def _moved_in_order(services: list[ServiceShowing], moment: dt.timedelta | None = None) -> str:
    """`a and b moved first, then c`: only the services whose onsets lie within `moment` of the earliest moved first
    (`same_moment`: onsets closer are one moment to the data; with none known, those sharing the earliest onset);
    with every one of them that close, `a, b and c moved, too close together for the data to order` (TrainTicket
    08:52 read "ts-seat-service moved first, then ts-train-service and ts-auth-service", 14 s and 73 s apart on
    one-minute data, the first a change chance passes at 50%). One service that moved is no order, nor are services
    with no onset."""
    names = [s.service for s in services]
    earliest = services[0].onset
    if len(services) == 1 or earliest is None:
        return f"{fmt.listed(names)} moved"
    close = moment or dt.timedelta(0)
    first = [s.service for s in services if s.onset is not None and s.onset - earliest <= close]
    later = [name for name in names if name not in first]
    if not later:
        return f"{fmt.listed(first)} moved, too close together for the data to order"
    return f"{fmt.listed(first)} moved first, then {fmt.listed(later)}"


def _cut_words(caller: str, callee: str) -> str:
    return f"{fmt.possessive(caller)} requests now end right after calling {callee}"


def _which_cut(caller: str, callee: str) -> str:
    """What tells apart the two readings of a caller's requests cut short right after calling a callee."""
    return (f"Find whether {callee} failed on {fmt.possessive(caller)} calls (its errors, a wrong return) or "
            f"{caller} failed after them (its own errors after the call)")


def _which_first(services: list[str]) -> str:
    """`Find which of a, b and c moved first, each in its own metrics, logs and traces`; with one service, whether it
    led at all: `Check whether a moved first or followed a cause this data does not show, in its own ...`."""
    where = "in its own metrics, logs and traces"
    if len(services) == 1:
        return f"Check whether {services[0]} moved first or followed a cause this data does not show, {where}"
    return f"Find which of {fmt.listed(services)} moved first, each {where}"


def _same_lines(contributors: list[dict[str, Any]]) -> list[tuple[dict[str, Any], list[dict[str, Any]]]]:
    """Each contributor with the later ones that hold the same shares before and in the incident: the same lines
    under another name (a service, its one pod, the node it runs on), said once, not as three factors."""
    grouped: dict[tuple[Any, Any], tuple[dict[str, Any], list[dict[str, Any]]]] = {}
    for c in contributors:
        key = (c["window_share"], c["baseline_share"])
        if key in grouped:
            grouped[key][1].append(c)
        else:
            grouped[key] = (c, [])
    return list(grouped.values())


def _also(same: list[dict[str, Any]]) -> str:
    """` (also PodName=api-7f9c, Node=10.0.0.4: the same lines)`, or nothing."""
    named = ", ".join(f"{c['dimension']}={c['value']}" for c in same)
    return f" (also {named}: the same lines)" if same else ""


def _counts_of(template: dict[str, Any]) -> str:
    """A template's lines in the incident and before it, with the rate ratio (`fmt.template_counts`); a malformed
    count is the schema's error, naming its field."""
    checked = LogTemplate.model_validate(pick(LogTemplate, template))
    return fmt.template_counts(checked.count_window, checked.count_baseline, checked.rate_ratio)


def _span_minutes(start: dt.datetime, end: dt.datetime) -> float:
    return round((fmt.utc(end) - fmt.utc(start)).total_seconds() / 60, 1)


def _degraded_words(impact: Impact, service: str) -> str:
    """`a, b degraded`, but for the services whose one mark is a latency percentile the traces cannot confirm
    (`severity.unconfirmed_only`), said so: `a degraded, and c's latency rose by a percentile the traces cannot
    confirm`; with no other, `c's latency rose by a percentile the traces cannot confirm (no traced call covers it)`
    (TrainTicket 08:52 called ts-admin-user-service degraded on its client p90 alone, which no traced call covers:
    of the client-side percentiles the traces could check on that day, they denied 187 and bore out 149)."""
    unconfirmed = unconfirmed_only(impact)
    degraded = [name for name in impact.services_affected if name not in unconfirmed]
    if not unconfirmed:
        return f"{', '.join(degraded) or service} degraded"
    marks = {m.service.lower(): m.unchecked for m in impact.metric_marks}
    why = marks.get(unconfirmed[0].lower()) or unconfirmed_peak(impact)
    whose = fmt.listed([fmt.possessive(name) for name in unconfirmed])
    rose = (f"{whose} latency rose by a percentile the traces cannot confirm" if len(unconfirmed) == 1
            else f"{whose} latency rose by percentiles the traces cannot confirm")
    if not degraded:
        return rose + (f" ({why})" if len(unconfirmed) == 1 and why else "")
    return f"{', '.join(degraded)} degraded, and {rose}"


def _impact_text(impact: Impact, severity: str | None, examined: str | None = None, ongoing: bool = False,
                 untraced: Collection[str] = ()) -> str:
    """The impact in prose; `examined`: the start the window ran from (`the given start`, `the alert time`) to the
    end of what was examined, so its length is not the incident's duration; `ongoing`: the detected window runs to the
    end of the data, so its length is the least the incident lasted; `untraced`: services (lower case) seen only in
    their callers' calls (`hypotheses[].untraced`)."""
    parts = [_capitalized(_impact_line(impact, severity)) + "."]
    if impact.services_affected:
        parts.append(f"Services affected: {', '.join(impact.services_affected)}."
                     f"{_traced_failures_words(impact, untraced)}")
    if impact.regions_affected:
        parts.append(f"Regions affected: {', '.join(impact.regions_affected)}.")
    if too_little := too_little_words(impact):
        parts.append(too_little)
    if impact.failing_before:
        parts.append(failing_before_words(impact))
    if impact.not_borne_out:
        parts.append(not_borne_out_words(impact.not_borne_out))
    if impact.past_window:
        parts.append(past_window_words(impact.past_window))
    if impact.duration_minutes and examined:
        parts.append(f"The window examined from {examined} lasts {fmt.minutes(impact.duration_minutes)}.")
    elif impact.duration_minutes and ongoing:
        parts.append(f"The incident lasted at least {fmt.minutes(impact.duration_minutes)}: it was still under way "
                     "when the data ends.")
    elif impact.duration_minutes:
        parts.append(f"The incident lasted {fmt.minutes(impact.duration_minutes)}.")
    return " ".join(parts)


def _traced_failures_words(impact: Impact, untraced: Collection[str] = ()) -> str:
    """` Marked by their traced requests: ts-food-service (7 of 9 requests failed with ..., 5 of 149 before).`: what
    marked the services their traced requests marked affected, but for the entry service's, said with its requests
    (`_entry_traced`), then the services whose error rate or latency held at the severity's floor
    (`severity.held_at_floor`), then what marked the others (`_other_marks_words`); nothing when none is left. An
    `untraced` service's requests are the calls into it as its callers timed them, and said so."""
    others = [f for f in impact.traced_failures if f is not _entry_traced(impact)]
    traced = {f.service.lower() for f in impact.traced_failures}
    said: dict[str, list[str]] = {}  # a service whose error rate and latency both held is named once
    for service, words in held_at_floor(impact):
        if service.lower() not in traced:
            said.setdefault(service, []).append(words)
    held = [f"{service} ({'; '.join(words)})" for service, words in said.items()]
    words = (f" Marked by {'its' if len(held) == 1 else 'their'} error rate or latency over the window: "
             f"{fmt.listed(held)}." if held else "")
    words += _other_marks_words(impact, traced | {service.lower() for service in said})
    if not others:
        return words
    whose = "its" if len(others) == 1 else "their"
    seen_by_callers = "untraced, the calls into it as its callers timed them: "
    marked = [f"{f.service} ({seen_by_callers if f.service.lower() in untraced else ''}{traced_words(f, named=False)})"
              for f in others]
    return f" Marked by {whose} traced requests: {fmt.listed(marked)}.{words}"


def too_little_words(impact: Impact) -> str:
    """`Slower, too little to matter: currencyservice (80 of 148 GetSupportedCurrencies requests took longer than
    0.345 ms, their kind's p90 before, 12 of 124 before; the kind's median request 0.35 ms, 0.273 ms before; the
    slowed ones' median 0.108 ms and p90 0.197 ms over the kind's before, under 5% of the 520 ms the users' requests
    they sat in took).`: a service whose requests slowed past the surge
    test by too little for a user to feel is not affected, but a reader who sees its slowed requests elsewhere must
    know they were weighed (OnlineBoutique 14:47 called currencyservice degraded for a tenth of a millisecond). The
    p90 is what the test reads (`impact._too_little`; the median alone where the analysis predates it). Only the
    services nothing else marks affected; empty where none is left."""
    affected = {name.lower() for name in impact.services_affected}
    said = [f"{f.service} ({traced_words(f, named=False)}; the slowed ones' median {fmt.num(f.added_ms or 0)} ms"
            + ("" if f.tail_added_ms is None else f" and p90 {fmt.num(f.tail_added_ms)} ms")
            + f" over the kind's before, under {IMPACT_NOISE_FLOOR:.0%} of the {fmt.num(f.request_ms or 0)} ms the "
            "users' requests they sat in took)"
            for f in impact.slowed_too_little if f.service.lower() not in affected]
    return f"Slower, too little to matter: {fmt.listed(said)}." if said else ""


def failing_before_words(impact: Impact) -> str:
    """`Already failing before the start: ts-basic-service (83 of its 143 traced requests in the 5 minutes before
    failed, begun from 09:20:39 to 09:23:06 UTC, none of them in the way its requests failed after the start; 100 of
    528 earlier).`: a responder must not blame what began at the start for a failure older than it, nor take a
    failure after it for an older one going on (TrainTicket 09:25's ts-basic-service: its 5 of 53 failed requests
    after the start wrote a line none before did, and the older failures had stopped 2.5 minutes before it). The
    first and last of those 5 minutes, not when the failure began: it may be older than they are (09:25's, from
    their first second). Empty where none was."""
    if not impact.failing_before:
        return ""
    said = [f"{f.service} ({fmt.num(f.window_failed)} of its {fmt.num(f.window_requests)} traced requests in the "
            f"{fmt.minutes(PRE_START.total_seconds() / 60)} before failed{_begun_words(f)}{_as_after_words(f)}; "
            f"{fmt.num(f.baseline_failed)} of {fmt.num(f.baseline_requests)} earlier)"
            for f in impact.failing_before]
    return f"Already failing before the start: {fmt.listed(said)}."


def _begun_words(failure: TracedFailure) -> str:
    """`, begun from 09:20:39 to 09:23:06 UTC` (one: `, begun at ...`); the earliest alone where the analysis predates
    the last."""
    first, last = failure.first_failed, failure.last_failed
    if first is None:
        return ""
    if last is None:
        return f", the earliest of them begun at {fmt.when(first, clock=True)}"
    if fmt.when(first, clock=True) == fmt.when(last, clock=True):
        return f", begun at {fmt.when(first, clock=True)}"
    return f", begun from {fmt.when(first, clock=True).removesuffix(' UTC')} to {fmt.when(last, clock=True)}"


def _as_after_words(failure: TracedFailure) -> str:
    """`, none of them in the way its requests failed after the start` (or `, 13 of them ...`: the failure after
    the start had begun before it); empty where its requests after the start did not fail by a status or a line."""
    if failure.failed_as_after is None:
        return ""
    many = "none" if failure.failed_as_after == 0 else ("all" if failure.failed_as_after == failure.window_failed
                                                         else fmt.num(failure.failed_as_after))
    return f", {many} of them in the way its requests failed after the start"


def _other_marks_words(impact: Impact, explained: set[str]) -> str:
    """What marked the services affected that `explained` (names in lower case) leaves: a surge of their WARN/ERROR
    lines, or a latency or error series of theirs held past its noise, said with its figures and, for a percentile
    the traced calls could not check, so (TrainTicket 08:52 listed ts-admin-user-service affected, said nowhere why:
    its client p90 from 0.019 to 156 s, which no traced call covers)."""
    left = [name for name in impact.services_affected if name.lower() not in explained]
    lines = [name for name in left if name.lower() in {s.lower() for s in impact.lines_marked}]
    marks = {m.service.lower(): m for m in impact.metric_marks}
    metrics = [_mark_words(marks[name.lower()], name) for name in left
               if name not in lines and name.lower() in marks]
    words = (f" Marked by {'its' if len(lines) == 1 else 'their'} WARN/ERROR lines (at {SURGE_RATIO:g}x the "
             f"baseline's rate or more, past chance): {fmt.listed(lines)}." if lines else "")
    if metrics:
        words += (f" Marked by {'its' if len(metrics) == 1 else 'their'} latency or error metrics over the window: "
                  f"{fmt.listed(metrics)}.")
    return words


def _mark_words(mark: MetricMark, name: str) -> str:
    """`ts-a (PodClientLatencyP90(s) 150 s over the window (the median of its 2 samples), against 0.019 s before: a
    percentile the traces cannot confirm (no traced call covers it))`."""
    error = ERROR_RATIO.search(mark.metric) or mark.metric.startswith(FAILED_OF)
    value = fmt.pct if error else partial(fmt.measure, mark.metric)
    median = "its one sample" if mark.samples == 1 else f"the median of its {mark.samples} samples"
    unconfirmed = f": a percentile the traces cannot confirm ({mark.unchecked})" if mark.unchecked else ""
    return (f"{name} ({mark.metric} {value(mark.typical)} over the window ({median}), against "
            f"{value(mark.baseline)} before{unconfirmed})")


def _entry_traced(impact: Impact) -> TracedFailure | None:
    """The entry service's traced failure, which the impact's line says beside its requests (having no failure count
    of them); None when the line has a count or the entry service's traced requests marked nothing."""
    if impact.requests_failed is not None or not impact.requests_total:
        return None
    return next((f for f in impact.traced_failures if f.service == impact.entry_service), None)


def not_borne_out_words(checks: list[NotBorneOut], most: int = 3) -> str:
    """The latency percentiles left out of the impact, each service's highest: `Not counted as latency, percentiles
    the traces do not bear out: ts-a/p99(s) at 286 s (its 60 traced calls took at most 4.31 ms).`"""
    highest: dict[str, NotBorneOut] = {}
    for check in checks:
        if check.service not in highest or check.peak > highest[check.service].peak:
            highest[check.service] = check
    shown = sorted(highest.values(), key=lambda c: -c.peak)
    listed = "; ".join(f"{c.series} at {fmt.measure(c.metric, c.peak)} "
                       f"({traced_calls_words(c.traced_calls, c.longest_ms)})" for c in shown[:most])
    more = f"; and {len(shown) - most} more services'" if len(shown) > most else ""
    return f"Not counted as latency, percentiles the traces do not bear out: {listed}{more}."


def past_window_words(checks: list[PastWindow], most: int = 3) -> str:
    """The latency percentiles left out of the impact for peaks longer than the window, each service's highest: `Not
    counted as latency, percentiles longer than any request in the window could take (the window with a metric step
    either side, 237 s; a request that long began before the incident): ts-a/PodClientLatencyP99(s) at 3,456 s.`"""
    highest: dict[str, PastWindow] = {}
    for check in checks:
        if check.service not in highest or check.peak > highest[check.service].peak:
            highest[check.service] = check
    shown = sorted(highest.values(), key=lambda c: -c.peak)
    listed = "; ".join(f"{c.series} at {fmt.measure(c.metric, c.peak)}" for c in shown[:most])
    more = f"; and {len(shown) - most} more services'" if len(shown) > most else ""
    return ("Not counted as latency, percentiles longer than any request in the window could take (the window with "
            f"a metric step either side, {fmt.num(checks[0].longest_s)} s; a request that long began before the "
            f"incident): {listed}{more}.")


def no_impact_words(impact: Impact, severity: str | None, checked: str = "") -> str:
    """Where no harm was seen, what introduces the impact's figures: that no impact (no sustained impact, where a peak
    still reached SEV3 or worse) was measured, what was checked and not seen (`checked` adds to it), and where the
    figures that follow were seen: `no impact was measured: no service's ... rose beyond the baseline's noise. In the
    window, `. Empty where harm was seen. The summary, the impact section and the executive summary all word it so."""
    shown = harm(impact, severity)
    if shown == "seen":
        return ""
    if shown == "none":
        return f"no impact was measured: {no_harm(impact)}{checked}. In the window, "
    return f"no sustained impact was measured: {no_harm(impact)}{checked}. Only at its peak, "


def _capitalized(text: str) -> str:
    return text[:1].upper() + text[1:]


def _peaked(value: float, baseline: float | None) -> str:
    """`peaked at`, or `stayed under its baseline, at most` where the window's highest value is not above the
    baseline's (a latency at 0.16 s against 0.325 s before did not peak)."""
    return "stayed under its baseline, at most" if baseline is not None and value <= baseline else "peaked at"


def _traced_mark(impact: Impact) -> str:
    """` (in its traces, 19 of 19 PlaceOrder requests took longer than 444 ms, ...)`: what marked a service the summary
    calls degraded, where the impact line holds no error rate, latency or failure count to show it (OnlineBoutique
    13:19: "checkoutservice degraded: 507 requests at frontend in the window (no failure count in the data)"), or
    only those of services nothing marked (TrainTicket 11:04: "ts-route-service degraded: the share of ERROR/FATAL
    log lines peaked at 0.9% against 0.7% before; latency (ts-gateway-service/...) peaked at 3 s", a lone peak of the
    front door's, while route's requests had stopped writing their line); else nothing. The entry service's traced
    failure is said beside its requests already."""
    if impact.requests_failed is not None or any(_marks_harm(impact, peak)
                                                 for peak in (impact.peak_error_rate, impact.peak_latency)):
        return ""
    entry = _entry_traced(impact)
    failure = next((f for f in impact.traced_failures if f is not entry and f.service in impact.services_affected),
                   None)
    if failure is None:
        return ""
    its = impact.services_affected == [failure.service]
    return f" ({'in its traces, ' if its else 'in the traces, '}{traced_words(failure, named=not its)})"


def _marks_harm(impact: Impact, peak: Peak | None) -> bool:
    """Whether a peak the impact line shows is of a service its latency or error metrics marked affected, or whose
    error rate or latency held at the severity's floor (the share of ERROR/FATAL lines, of all services: where a
    service's WARN/ERROR lines marked it). A peak of a service its traced requests alone marked shows no harm
    (TrainTicket 10:56: "Impact: latency (ts-route-service/PodServerLatencyP90(s)) peaked at 0.03 s against 0.0235
    s", route's requests having stopped writing their line)."""
    if peak is None:
        return False
    if peak.metric == LOG_ERROR_SHARE:
        return bool(impact.lines_marked)
    held = {m.service.lower() for m in impact.metric_marks} | {name.lower() for name, _ in held_at_floor(impact)}
    return (peak.service or "").lower() in held


def _impact_line(impact: Impact, severity: str | None) -> str:
    """The impact's figures in one line; users on WARN/ERROR lines are `affected` only where harm was seen, and then
    those beyond the baseline's. Where only a peak reached a floor (`no_impact_words` puts `Only at its peak, `
    before the line), the counts of the window follow the peaks in a sentence of their own: a request count is no
    peak (TrainTicket 11:04: "Only at its peak, ...; latency ... peaked at 3 s against 0.467 s; 117 requests at
    ts-gateway-service in the window")."""
    peaks = _peak_parts(impact)
    counts = _count_parts(impact, severity)
    if peaks and counts and harm(impact, severity) == "peak":
        return f"{'; '.join(peaks)}. {_capitalized('; '.join(counts))}"
    return "; ".join(peaks + counts) or "no request-level impact could be measured"


def _peak_parts(impact: Impact) -> list[str]:
    """The impact line's peaks: its error rate's and its latency's."""
    parts = []
    if impact.peak_error_rate:
        e = impact.peak_error_rate
        parts.append(f"{fmt.error_rate_name(e.service, e.metric)} {_peaked(e.value, e.baseline)} {fmt.pct(e.value)}"
                     + (f" against {fmt.pct(e.baseline)} before" if e.baseline is not None
                        else " (no baseline to compare against)"))
    if impact.peak_latency:
        lat = impact.peak_latency
        parts.append(f"latency ({fmt.series_name(lat.service, lat.metric)}) {_peaked(lat.value, lat.baseline)} "
                     f"{fmt.measure(lat.metric, lat.value)}"
                     + (f" against {fmt.measure(lat.metric, lat.baseline)}" if lat.baseline is not None else ""))
    return parts


def _count_parts(impact: Impact, severity: str | None) -> list[str]:
    """The impact line's counts of the window: its requests (and those failed), and its users."""
    parts = []
    at = f" at {impact.entry_service}" if fmt.names_service(impact.entry_service) else ""
    if impact.requests_failed is not None and impact.requests_total:
        parts.append(f"{fmt.num(impact.requests_failed)} of {fmt.num(impact.requests_total)} requests{at} failed "
                     f"({fmt.pct(impact.failed_share)}; no baseline share to compare against)"
                     if impact.baseline_failed_share is None else
                     f"{fmt.num(impact.failed_excess)} more requests{at} failed than the baseline's "
                     f"{fmt.pct(impact.baseline_failed_share)} predicts ({failed_count(impact)})")
    elif impact.requests_total:
        entry = _entry_traced(impact)
        # where no harm was seen, `no_impact_words` opened the line with "In the window, " already (OnlineBoutique
        # 12:53: "In the window, 506 requests at frontend in the window")
        where = "" if harm(impact, severity) == "none" else " in the window"
        parts.append(f"{fmt.num(impact.requests_total)} requests{at}{where} "
                     # a count, not whether any failed: an error rate beside it may well say some did
                     + ("(no failure count in the data)" if entry is None else
                        f"(no failure count in the data; in its traces, {traced_words(entry, named=False)})"))
    if impact.users_affected is not None:
        parts.append(users_words(impact, affected=harm(impact, severity) == "seen"))
    return parts


def _contributes(template: dict[str, Any]) -> bool:
    """Whether a log template counts as a contributing factor: its lines include WARN/ERROR/FATAL ones. INFO lines
    alone, new or surging, are a request type the baseline's minutes did not happen to hold or more of the traffic
    the incident brought (payments logged as they go through), not by themselves a cause; they stay in the review's
    list of templates."""
    if not template.get("template"):
        return False
    problems = template.get("count_problems_window")
    return problems is None or problems > 0


def _ratio(lift: float | None, baseline_share: float) -> str:
    """The lift of a share; none against an empty baseline, where the analysis' floor (half a line) is no figure
    of the data's."""
    if baseline_share == 0:
        return "none in the baseline"
    return f"{lift:.1f}x lift" if lift else "lift n/a"
