"""`analyze`: the evidence engine end to end — detect, compare, rank, explain — as one `AnalysisResult`.

Steps, each a pure function over the store returning results with evidence:
detection (the window) -> a clean baseline before it -> per-service metric shifts and WARN/ERROR surges -> log
contrast (which regions, versions, hosts ...) -> log templates -> impact -> call graph -> mechanism cues ->
trigger -> root-cause ranking with tests -> timeline. `AnalysisResult.to_dict()` is analysis.json.
"""

from __future__ import annotations

import re
import threading
from concurrent.futures import Future, ThreadPoolExecutor, wait
from datetime import datetime, timedelta
from typing import Any, NamedTuple

from pydantic import BaseModel, Field, PrivateAttr

from incidentlens.analysis.anchored import KNOWN_ONSET, can_start_at, check_onset, known_onset_detection
from incidentlens.analysis.callgraph import infer_call_graph
from incidentlens.analysis.contrast import contrast_logs
from incidentlens.analysis.detection import DetectionResult, detect, iso_z
from incidentlens.analysis.evidence import Evidence
from incidentlens.analysis.impact import estimate_impact
from incidentlens.analysis.mechanism import mechanism_cues
from incidentlens.analysis.periods import Span, iso_end
from incidentlens.analysis.rootcause import (
    GLOBAL,
    Hypothesis,
    Ranking,
    ServiceSignals,
    collect_signals,
    find_changes,
    rank_root_causes,
)
from incidentlens.analysis.shifts import (
    LogSurge,
    MetricShift,
    fetch_log_counts,
    log_surges,
    mark_past_window,
    metric_shifts,
)
from incidentlens.analysis.sources import data_sources, sources_read
from incidentlens.analysis.spans import TraceSignal, trace_signals
from incidentlens.analysis.templates import find_templates
from incidentlens.analysis.timeline import build_timeline, detection_inputs
from incidentlens.analysis.verdict import Verdict, checked_counts, decide
from incidentlens.analysis.words import listed
from incidentlens.telemetry import naive_utc

#: the baseline ends this long before the first anomalous point, so a slow start does not leak into it
BASELINE_MARGIN = timedelta(minutes=15)
#: and lasts this long at least (or as long as the incident, if longer), clipped to the data's start
BASELINE_MIN_LENGTH = timedelta(hours=2)
#: the smallest baseline worth comparing against
BASELINE_SHORTEST = timedelta(minutes=20)
#: detected windows examined, most severe first, when the first ones turn out to be load without harm
MAX_WINDOWS_TRIED = 3
#: how far before an alert time the start is looked for, minute by minute, when nothing after the alert time itself
#: could be explained (nothing moved, or only load): an alerting rule fires only after its condition has held for
#: its `for:` and the next evaluation (every minute by default). Each minute tried is one more chance for noise to
#: pass the bars: 5 named a root cause on 2 of 20 alert times on quiet generated days and 3 of 32 before
#: OnlineBoutique's faults, 2 on none (docs/root-cause.md)
ALERT_LOOKBACK = timedelta(minutes=2)
ALERT_STEP = timedelta(minutes=1)

KEYS = ("detected", "reason", "incident_window", "baseline_window", "peak", "detection", "hypotheses", "verdict",
        "contributors", "templates", "impact", "trigger", "timeline", "data_quality", "evidence", "sources")


class AnalysisResult(BaseModel):
    """Everything `analyze` found; `to_dict()` is analysis.json (docs/architecture.md)."""

    detected: bool
    reason: str | None = None
    incident_window: dict[str, str] | None = None
    baseline_window: dict[str, str] | None = None
    peak: str | None = None
    detection: dict[str, Any] = Field(default_factory=dict)
    #: which telemetry held data in the window and before it (`sources.data_sources`)
    sources: dict[str, Any] | None = None
    hypotheses: list[Hypothesis] = Field(default_factory=list)
    verdict: Verdict | None = None
    contributors: list[dict[str, Any]] = Field(default_factory=list)
    templates: list[dict[str, Any]] = Field(default_factory=list)
    impact: dict[str, Any] | None = None
    trigger: dict[str, Any] | None = None
    timeline: list[dict[str, Any]] = Field(default_factory=list)
    # unreadable input records set aside, per file: {file, records, unreadable, first_line, note}
    data_quality: list[dict[str, Any]] = Field(default_factory=list)
    evidence: list[Evidence] = Field(default_factory=list)
    #: (incident window, baseline) as the analysis used them, to the microsecond: the dicts above are written to the
    #: second, and a step re-run over those would query a window a fraction of a second off, as evidence of its own
    _spans: tuple[Span, Span] | None = PrivateAttr(default=None)

    @property
    def spans(self) -> tuple[Span, Span] | None:
        """(incident window, baseline) exactly as the analysis examined them; None when no incident was found."""
        return self._spans

    def to_dict(self) -> dict[str, Any]:
        data = self.model_dump(mode="json")
        return {key: data[key] for key in KEYS}

    def evidence_by_id(self) -> dict[str, Evidence]:
        return {e.id: e for e in self.evidence}


def analyze(store: Any, at: datetime | None = None, detector: str = "robust", onset: str = "detect",
            sensitivity: str | None = None, start_at_alert: bool = True) -> AnalysisResult:
    """Find the incident in the store's telemetry and explain it: window, root-cause hypotheses, evidence.

    The detector's most severe window (or the one at `at`) is explained; when it turns out to be load without
    harm, the next most severe window is tried (up to three), and the skipped ones stay in the evidence.
    `onset="at"`: `at` is the incident's known start (an alert, an injection): the window is [at, end of the
    shortest source] and the baseline everything before it (`anchored.py`); nothing is detected or set aside.
    `onset="detect"` with `at` (an alert time): where no window can be detected or explained there, or the window
    nearest it ended before it and what moved from it can be explained, `at` is taken as the start
    (`detection.undetected` says why) when it lies in the data and `start_at_alert` (False when `at` is not the
    user's: a model's pick of where to look, which only steers detection); where nothing after it can be
    explained, the first minute before it at which something can (`_from_alert_time`; `detection.alert_at` is then
    set, and the attempt at the alert time stays cited).
    `sensitivity`: the detector's (`detection.settings_for`; None: medium).
    `at` with a zone is converted to UTC; a naive one is taken as UTC, as the store's times are.
    `data_quality` lists the input records the store could not read and set aside."""
    at = naive_utc(at) if at is not None else None
    result = _analyze(store, at, detector, onset, sensitivity, start_at_alert)
    result.data_quality = [r.to_dict() for r in getattr(store, "rejected", [])]
    return result


def _analyze(store: Any, at: datetime | None, detector: str, onset: str, sensitivity: str | None,
             start_at_alert: bool) -> AnalysisResult:
    check_onset(onset, at)
    if onset == "at" and at is not None:
        return _from_known_onset(store, at)
    detection = detect(store, at=at, detector=detector, sensitivity=sensitivity)
    evidence = _Ledger(detection.evidence)
    take_start = at is not None and start_at_alert and can_start_at(store, at)
    if not detection.detected or detection.window is None:
        if take_start:
            return _from_alert_time(store, at, detection.reason or "no incident window", (detection, evidence))
        return _not_detected(store, detection, evidence)
    alerted: AnalysisResult | None = None
    if take_start and detection.window.end < at:
        # the window nearest the alert ended before it: a past incident; the alert fired on something still going
        ended = detection.window
        alerted = _from_alert_time(store, at, f"the window found nearest it, {iso_z(ended.start)} .. "
                                   f"{iso_end(ended.end)}, ended before it", (detection, evidence))
        if alerted.detected:
            return alerted
    candidates = [detection.window]
    if at is None:
        candidates += [w for w in detection.windows if w != detection.window]
    reasons: list[str] = []
    for found in candidates[:MAX_WINDOWS_TRIED]:
        chosen = detection.model_copy(update={"window": found})
        outcome = explain_window(store, chosen, evidence)
        if isinstance(outcome, AnalysisResult):
            return outcome
        reasons.append(outcome)
        evidence.extend([Evidence.make(
            "detection", f"window {iso_z(found.start)} .. {iso_end(found.end)} set aside: {outcome}",
            "the pipeline's check of a detected window (see the detection evidence for its series query)",
            {"window": {"start": iso_z(found.start), "end": iso_end(found.end)}, "reason": outcome},
        )])
    if alerted is not None:
        # the alert time was tried already, and nothing there explained: that answer, citing the window set aside
        cited = _Ledger(alerted.evidence)
        cited.extend([e for e in evidence.items if e.kind == "detection"])
        return alerted.model_copy(update={"evidence": cited.items})
    if take_start:
        return _from_alert_time(store, at, f"the window found there was set aside: {reasons[0]}",
                                (detection, evidence))
    return _not_detected(store, detection, evidence, reason=reasons[0])


def _from_alert_time(store: Any, at: datetime, undetected: str,
                     detected: tuple[DetectionResult, _Ledger]) -> AnalysisResult:
    """The analysis from the alert time `at` as the start; where nothing after it can be explained, from each minute
    before it in turn (up to `ALERT_LOOKBACK`, within the data): the incident began before its alert fired, and the
    first start walking back at which something can be explained is taken, citing the attempt at the alert time."""
    first = _from_known_onset(store, at, undetected=undetected, detected=detected)
    if first.detected:
        return first
    tried = 0
    data_start, _ = store.time_range()
    for minutes in range(1, int(ALERT_LOOKBACK / ALERT_STEP) + 1):
        start = at - minutes * ALERT_STEP
        # a start before the alert needs data before it to compare with: against a baseline of one sample, hours of
        # noise moved (a quiet day's alert at its third minute was an incident from its first)
        if not can_start_at(store, start) or start - data_start < BASELINE_SHORTEST:
            break
        tried = minutes
        earlier = _from_known_onset(store, start, undetected=undetected, detected=detected, alert_at=at)
        if earlier.detected:
            return _citing_attempt(earlier, first)
    if not tried:
        return first
    tried_before = "the minute before it" if tried == 1 else f"any of the {tried} minutes before it"
    return first.model_copy(update={"reason": f"{first.reason}; nor after {tried_before}"})


def _citing_attempt(result: AnalysisResult, attempt: AnalysisResult) -> AnalysisResult:
    """`result`, a start taken before the alert time, citing beside its own detection evidence the attempt at the
    alert time (its known-onset record: what moved after the alert time, and so why nothing there was explained)."""
    held = {e.id for e in result.evidence}
    tried = [e for e in attempt.evidence
             if e.kind == "detection" and e.title.startswith(f"{KNOWN_ONSET}:") and e.id not in held]
    detection = {**result.detection, "evidence": [*result.detection["evidence"], *(e.id for e in tried)]}
    return result.model_copy(update={"evidence": [*result.evidence, *tried], "detection": detection})


def _from_known_onset(store: Any, at: datetime, undetected: str | None = None,
                      detected: tuple[DetectionResult, _Ledger] | None = None,
                      alert_at: datetime | None = None) -> AnalysisResult:
    """The analysis from `at` as the incident's start (`anchored.py`): given (`--onset at`), or taken from the
    alert time because detection found no window to explain there (`undetected` says why; `detected`: the
    detector's result and records, whose `detection` evidence stays cited, and which stands as the answer when
    nothing after `at` can be explained either). The user says something happened at `at`: the before/after
    contrasts of every source still speak where no detector window could."""
    known, baseline, rule, shifts = known_onset_detection(store, at, undetected, alert_at)
    evidence = _Ledger(known.evidence)
    if detected is not None:
        evidence.extend([e for e in detected[1].items if e.kind == "detection"])
    # what the sources held after the start and before it, not merely whether they held anything: the result's,
    # explained or not, and what `_nothing_moved` names
    examined = data_sources(store, (known.window.start, known.window.end), baseline)
    outcome = explain_window(store, known, evidence, given_baseline=(baseline, rule), shifts=shifts,
                             sources=examined)
    if isinstance(outcome, AnalysisResult):
        return outcome
    return _not_detected(store, known if detected is None else detected[0], evidence, reason=outcome,
                         sources=examined)


def explain_window(store: Any, detection: DetectionResult, evidence: _Ledger,
                   given_baseline: tuple[Span, str] | None = None,
                   shifts: tuple[list[MetricShift], list[Evidence]] | None = None,
                   sources: dict[str, Any] | None = None) -> AnalysisResult | str:
    """Explain the detection's window; or say why it is not an incident to explain (no baseline, load only).
    `given_baseline`: (span, rule) of a known onset's baseline; the window is then trusted as an incident, unless
    its start was only taken from an alert time (`detection.undetected`): then load without harm is still none.
    `shifts`, `sources`: `metric_shifts` and `data_sources` over the window and the given baseline, when the caller
    has read them already."""
    incident = detection.window
    if incident is None:
        return detection.reason or "no incident window"
    window = (incident.start, incident.end)
    if given_baseline is None:
        baseline, rule = choose_baseline(store, window, min(s.onset for s in incident.series))
    else:
        baseline, rule = given_baseline
    if baseline is None:
        return rule
    shifts = evidence.add(shifts if shifts is not None else metric_shifts(store, window, baseline))
    # a start the user gave is an incident's; one taken from an alert time says where to look, not that anything hurt
    trusted = given_baseline is not None and not detection.undetected
    surges, traces, read_ahead = _surges_beside_traces(store, window, baseline, evidence, trusted)
    load_only = None if trusted else _load_without_harm(detection, shifts, surges, traces)
    if load_only:
        return load_only
    signals = collect_signals(shifts, surges, traces)
    sources = sources if sources is not None else data_sources(store, window, baseline)
    if detection.undetected and not signals:  # the alert time was taken as the start, and nothing answers it
        return _nothing_moved(incident.start, sources)
    moved = _Moved(shifts, surges, traces, signals)
    return _explained(store, detection, (window, baseline, rule), moved, sources, read_ahead, evidence)


class _Moved(NamedTuple):
    """What moved in the window against the baseline, by source, and the root-cause candidates' signals of it."""

    shifts: list[MetricShift]
    surges: list[LogSurge]
    traces: dict[str, TraceSignal]
    signals: dict[str, ServiceSignals]


def _explained(store: Any, detection: DetectionResult, spans: tuple[Span, Span, str], moved: _Moved,
               sources: dict[str, Any], read_ahead: _WindowReads | None, evidence: _Ledger) -> AnalysisResult:
    """The explanation of the detection's window of what `moved` against the baseline (`spans`: the window, the
    baseline and its rule): the window's reads (`read_ahead`, when read beside the traces), the ranking, the verdict
    and the timeline, their evidence recorded in that order."""
    window, baseline, rule = spans
    contributors, templates, impact = evidence.add(read_ahead or _window_reads(store, window, baseline))
    mark_past_window(moved.shifts, impact.impact.past_window)  # before any words quote them
    ranking = _ranking(store, window, baseline, moved, contributors, evidence,
                       logs_read="logs" not in sources["missing"])
    checked = checked_counts(moved.shifts, moved.surges, moved.traces, sources["missing"])
    verdict = decide(ranking.hypotheses, moved.signals, checked, ranking.unexplained, ranking.stands_on_its_own,
                     ranking.support, ranking.second)
    timeline = build_timeline(store, window, baseline, templates=templates, service_onsets=verdict.onsets(),
                              **detection_inputs(detection))
    evidence.extend(timeline.evidence)
    result = detection.to_dict()
    explained = AnalysisResult(
        detected=True,
        incident_window=result["incident_window"],
        baseline_window={**_span_dict(baseline), "rule": rule},
        peak=result["peak"],
        detection=result["detection"],
        sources=sources,
        hypotheses=ranking.hypotheses,
        verdict=verdict,
        contributors=[c.model_dump(mode="json") for c in contributors],
        templates=[t.model_dump(mode="json") for t in templates],
        impact=impact.impact.model_dump(mode="json"),
        trigger=ranking.trigger,
        timeline=timeline.to_list(),
        evidence=evidence.items,
    )
    explained._spans = (window, baseline)
    return explained


def _surges_beside_traces(store: Any, window: Span, baseline: Span, evidence: _Ledger, read_ahead: bool,
                          ) -> tuple[list[LogSurge], dict[str, TraceSignal], _WindowReads | None]:
    """The WARN/ERROR surges and the trace signals, their evidence recorded in that order; with `read_ahead` (a
    window explained whatever moved), the window's reads too (`_window_reads`, their evidence not yet recorded),
    else None. The traces are read in a thread beside the rest where the store reads concurrently."""
    beside_thread: list[int] = []  # the thread the traces are read in, whose queries alone an error interrupts
    with ThreadPoolExecutor(max_workers=1, initializer=lambda: beside_thread.append(threading.get_ident())) as beside:
        # The traces are read beside the logs (and, for a window explained whatever moved, what its logs hold and
        # what it cost): DuckDB answers without holding the GIL, and one query after another left the second core
        # idle through much of each. Their evidence is recorded in the order it always was.
        concurrent = getattr(store, "reads_concurrently", False)
        traced = beside.submit(trace_signals, store, window, baseline) if concurrent else None
        try:
            log_counts = fetch_log_counts(store, window, baseline)
            surges = evidence.add(log_surges(store, window, baseline, log_counts))
            reads = _window_reads(store, window, baseline) if read_ahead and concurrent else None
            traces = evidence.add(traced.result() if traced is not None else trace_signals(store, window, baseline))
        except BaseException:
            _stop(store, traced, beside_thread)
            raise
    return surges, traces, reads


def _ranking(store: Any, window: Span, baseline: Span, moved: _Moved, contributors: list[Any],
             evidence: _Ledger, logs_read: bool = True) -> Ranking:
    """The root-cause ranking of what `moved`, with the mechanism cues, the call graph and the changes it rests on,
    their evidence recorded in that order; `logs_read`: whether the window holds log lines (`mechanism_cues`)."""
    # every service that moved or that the traces point at, a callee known only by its callers' cut requests too
    services = sorted(({s.service for s in moved.shifts} | {s.service for s in moved.surges} | set(moved.signals))
                      - {GLOBAL})
    cues = evidence.add(mechanism_cues(store, window, services, logs_read))
    graph = evidence.add(infer_call_graph(store, window, baseline, cues.named, cues.evidence))
    changes = evidence.add(find_changes(store, window, baseline))
    return evidence.add(rank_root_causes(store, window, baseline, moved.signals, graph, cues, contributors, changes))


def choose_baseline(store: Any, window: Span, first_anomalous: datetime) -> tuple[Span | None, str]:
    """A clean stretch before the incident: it ends a margin before the first anomalous point and lasts at least
    two hours (or the incident's length), clipped to the data's start. Returns (span or None, the rule or why not)."""
    data_start, _ = store.time_range()
    end = min(first_anomalous, window[0]) - BASELINE_MARGIN
    length = max(BASELINE_MIN_LENGTH, window[1] - window[0])
    start = max(data_start, end - length)
    if end - start < BASELINE_SHORTEST:
        return None, (
            f"too little data before the incident for a baseline: it starts {_minutes(first_anomalous - data_start)} "
            f"after the data begins, need {_minutes(BASELINE_SHORTEST + BASELINE_MARGIN)}"
        )
    rule = (
        f"{_minutes(end - start)} ending {_minutes(BASELINE_MARGIN)} before the first anomalous point"
        + (" (clipped to the start of the data)" if start == data_start else "")
    )
    return (start, end), rule


def _load_without_harm(detection: DetectionResult, shifts: list[MetricShift], surges: list[LogSurge],
                       traces: dict[str, TraceSignal]) -> str | None:
    """Why the window is load, not an incident: only demand and resource series moved (traffic, CPU), while no
    error, latency or availability series, no service's WARN/ERROR lines and no service's requests in the traces
    did. None when there was harm, when nothing moved, or when the metrics have no series that could show harm
    (then the detector's word stands)."""
    if any(s.significant for s in [*surges, *traces.values()]) or detection.window is None:
        return None
    moved = [s.series for s in detection.window.series]
    if not moved or not any(HARM.search(s.metric) for s in shifts):
        return None
    if any(_harmful(s.series.rsplit("/", 1)[-1], s.direction) for s in detection.window.series):
        return None
    harm_shifted = [s.series for s in shifts if s.significant and _harmful(s.metric, s.direction)]
    if harm_shifted:
        return None
    return (f"only load moved ({', '.join(moved[:4])}{' ...' if len(moved) > 4 else ''}): no error, latency or "
            "availability series, no service's WARN/ERROR lines and no service's requests in the traces shifted, so "
            "this is demand, not an incident")


#: metric names that show harm to users: errors (and the logs' problem lines, `detection.LOG_PROBLEMS`), latency,
#: restarts up; success or availability down
HARM = re.compile(r"(?i)err|fail|5xx|latency|p9\d|_ms$|duration|timeout|restart|success|availab|apdex|problem")
HARM_DOWN = re.compile(r"(?i)success|availab|apdex")


def _harmful(metric: str, direction: str) -> bool:
    if not HARM.search(metric):
        return False
    return (direction == "down") == bool(HARM_DOWN.search(metric))


def _stop(store: Any, beside: Future[Any] | None, threads: list[int]) -> None:
    """Interrupt the queries run `beside` the main thread's (in `threads`) until it ends: Ctrl-C (or an error) in the
    main thread stops its own query alone, and the executor waited for the traces' reads to end (about 3 s of a Nezha
    hour). An interrupt stops the query running, not the next: the reads are many."""
    while beside is not None and not beside.done():
        for thread in threads:
            store.interrupt_queries(thread)
        wait([beside], timeout=0.05)


#: the window's log contributors, its log templates and its impact (`ImpactResult`), and their evidence
_WindowReads = tuple[tuple[list[Any], list[Any], Any], list[Evidence]]


def _window_reads(store: Any, window: Span, baseline: Span) -> _WindowReads:
    """(the window's log contributors, its log templates, its impact) and their evidence, in that order. The impact
    is read first: beside `trace_signals`, the templates wait for the masked log messages it is making."""
    impact = estimate_impact(store, window, baseline)
    contributors = contrast_logs(store, window, baseline) if store.has("logs") else None
    templates = find_templates(store, window, baseline) if store.has("logs") else None
    evidence = [*(contributors.evidence if contributors else []), *(templates.evidence if templates else []),
                *impact.evidence]
    return (list(contributors.contributors) if contributors else [], list(templates.templates) if templates else [],
            impact), evidence


def _not_detected(store: Any, detection: DetectionResult, evidence: _Ledger, reason: str | None = None,
                  sources: dict[str, Any] | None = None) -> AnalysisResult:
    """No incident: `sources`, what the sources held in the stretch examined (a start given or taken from an alert
    time), else whether they held anything at all."""
    result = detection.to_dict()
    return AnalysisResult(
        detected=False,
        reason=reason or detection.reason or "no incident found",
        detection=result["detection"],
        sources=sources or sources_read(store),
        evidence=evidence.items,
    )


class _Ledger:
    """The evidence gathered so far, each id once, in the order found."""

    def __init__(self, items: list[Evidence]):
        self.items: list[Evidence] = []
        self.extend(items)

    def extend(self, items: list[Evidence]) -> None:
        known = {e.id for e in self.items}
        self.items.extend(e for e in items if e.id not in known)

    def add(self, pair: tuple[Any, list[Evidence]]) -> Any:
        """Record a step's evidence and hand back its result."""
        result, items = pair
        self.extend(items)
        return result


#: what each source could have shown moving, as `_nothing_moved` says it
SEEN_MOVING = {"metrics": "metric series", "logs": "WARN/ERROR lines", "traces": "traced requests"}


def _nothing_moved(start: datetime, sources: dict[str, Any]) -> str:
    """Why an alert time taken as the start explains nothing, naming only the sources that held data after it
    (`sources`: `data_sources` over the window and baseline): a source not given, or with no row there, was not seen
    quiet ("... traced requests shifted ...; no logs for this period")."""
    seen = [words for name, words in SEEN_MOVING.items() if name in sources["used"]]
    moved = f"no service's {listed(seen, 'or')} shifted against the data before it" if seen else \
        "no source held data after it"
    missing = [f"no {name} for this period" for name in SEEN_MOVING if name in sources["missing"]]
    return (f"no incident window detected at {iso_z(start)} and nothing moved after it: {moved}"
            + (f" ({'; '.join(missing)})" if missing and seen else ""))


def _span_dict(span: Span) -> dict[str, str]:
    return {"start": iso_z(span[0]), "end": iso_z(span[1])}


def _minutes(delta: timedelta) -> str:
    minutes = delta.total_seconds() / 60
    return f"{minutes / 60:g} h" if minutes >= 120 and minutes % 60 == 0 else f"{minutes:.0f} min"
