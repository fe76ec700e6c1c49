"""The incident review (postmortem) as a typed document.

Sections follow Google's SRE-book example postmortem (summary, impact, root causes, trigger, detection, action
items, lessons learned: what went well / wrong / where we got lucky, timeline, supporting information) with the
response/recovery and contributing-factor sections of PagerDuty's and Atlassian's templates. Every number in it comes
from an analysis result; every timeline entry and finding cites evidence ids listed in the `evidence` appendix.
`docs/postmortem.schema.json` is this model's JSON Schema (`postmortem_json_schema()`), kept current by a test.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

SCHEMA_VERSION = "1.0"


def _as_utc(moment: dt.datetime) -> dt.datetime:
    """Naive times are UTC (the store's convention); every time in the review is UTC and serialises with Z."""
    return moment.replace(tzinfo=dt.UTC) if moment.tzinfo is None else moment.astimezone(dt.UTC)


UtcTime = Annotated[dt.datetime, AfterValidator(_as_utc)]
EVIDENCE_ID_PATTERN = r"^[A-Za-z0-9_.:-]+$"
#: the file beside report.md/.html holding the evidence appendix: every query and its data
EVIDENCE_FILE = "evidence.json"
# Evidence ids become anchors and links in HTML and Markdown: only safe characters.
EvidenceId = Annotated[str, Field(pattern=EVIDENCE_ID_PATTERN)]

Severity = Literal["SEV1", "SEV2", "SEV3", "SEV4"]
ActionType = Literal["mitigate", "prevent", "detect", "process"]
Priority = Literal["P0", "P1", "P2", "P3"]
GroundedBy = Literal["model", "template"]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Window(_Model):
    start: UtcTime
    end: UtcTime


class Narrative(_Model):
    """Prose for one section: a model's text when every number and time in it checked out, else the template's."""

    text: str
    grounded_by: GroundedBy = "template"
    rejected: list[str] = Field(default_factory=list, description="why the model's text was replaced, if it was")


class Peak(_Model):
    metric: str
    service: str | None = None
    value: float
    baseline: float | None = None
    at: UtcTime | None = None
    typical: float | None = Field(None, description="the window's typical level (the series' window median; the "
                                  "whole window's share of ERROR/FATAL lines): what severity reads, the peak being "
                                  "one sample")
    samples: int | None = Field(None, description="how many samples of the series the window holds, whose median "
                                                  "`typical` is (None: a share of ERROR/FATAL lines)")
    second: float | None = Field(None, description="the window's second highest sample, a level two samples reached: "
                                                   "of two samples, the one severity reads (their median is their "
                                                   "mean, which one carries); None: one sample, or a share of "
                                                   "ERROR/FATAL lines")
    at_end: bool = Field(False, description="the peak is the window's last sample: whether it held after it, the "
                                            "window does not say")


class NotBorneOut(_Model):
    """A latency percentile whose peak the traced calls do not bear out: left out of the impact and severity."""

    service: str
    metric: str
    peak: float
    traced_calls: int
    longest_ms: float | None = None

    @property
    def series(self) -> str:
        return f"{self.service}/{self.metric}"


class PastWindow(_Model):
    """A latency percentile whose peak is longer than any request the window holds could take: left out of the
    impact and severity."""

    service: str
    metric: str
    peak: float
    longest_s: float  # the window with a metric step either side

    @property
    def series(self) -> str:
        return f"{self.service}/{self.metric}"


class MetricMark(_Model):
    """The series that marked a service affected by its latency or error metrics: the window's median against the
    baseline's, and where it is a latency percentile the traced calls could not check, how many they hold."""

    service: str
    metric: str
    typical: float = Field(description="the series' median over the window")
    baseline: float = Field(description="its median before the start")
    samples: int = Field(description="the window's samples of it")
    unchecked: str | None = Field(None, description="a percentile the traced calls could not check: why ('no traced "
                                                    "call covers it'); None: checked, or no percentile")
    held: bool = Field(False, description="the impact's held-level test marked it (every window value at its "
                                          "floor over the baseline median: a latency slower, an error rate failing), "
                                          "not its median's shift alone")


class TracedFailure(_Model):
    """A service's traced requests that failed in one way beyond its baseline's share: an error status on an
    operation, an ERROR line of a template, (`kind`) requests of that kind that ended without a call they made
    before the start, or (`slower_than_ms`) that took longer than nine in ten of the kind did before it."""

    service: str
    way: str | None = Field(None, description="how they failed; None: in any way")
    kind: str | None = Field(None, description="cut short or slowed: the kind of request (its entry operations); "
                                               "`way` is the call a cut request ended without, or 'the line: ' "
                                               "and the template of the line it did not write")
    slower_than_ms: float | None = Field(None, description="slowed: the kind's p90 before the start, which these "
                                                           "requests took longer than")
    baseline_minutes: int | None = Field(None, description="slowed: the minutes before the start with requests of "
                                                           "the kind")
    minutes_left_out: int | None = Field(None, description="slowed: of `baseline_minutes`, those left out of the p90 "
                                                           "and the count before as earlier incidents' (their median "
                                                           "request 1.5x slower or faster than the speed most "
                                                           "minutes ran at)")
    window_median_ms: float | None = Field(None, description="slowed: how long the kind's median request took in "
                                                             "the window")
    baseline_median_ms: float | None = Field(None, description="... and before the start (the minutes kept)")
    added_ms: float | None = Field(None, description="slowed: how much longer the window's slowed requests' median "
                                                     "took than the kind's median before")
    tail_added_ms: float | None = Field(None, description="slowed: how much longer their p90 (the slowest tenth of "
                                                          "them) took than the kind's median before: what the "
                                                          "too-little-to-matter test reads")
    request_ms: float | None = Field(None, description="slowed: the median request users made before the start that "
                                                       "the kind's requests sat in (their traces' root spans)")
    window_requests: int
    window_failed: int
    baseline_requests: int
    baseline_failed: int
    first_failed: UtcTime | None = Field(None, description="failed by an error status or an ERROR line: when the "
                                                          "first of the window's failed requests began")
    last_failed: UtcTime | None = Field(None, description="... and when the last of them began")
    failed_as_after: int | None = Field(None, description="already failing before the start, where the service's "
                                                          "requests failed after it too in one way, by a status or a "
                                                          "line: of window_failed, those that failed that way (0: in "
                                                          "other ways)")


class Impact(_Model):
    duration_minutes: float | None = None
    requests_total: int | None = Field(None, description="requests in the incident window")
    requests_failed: int | None = Field(None, description="estimated from request rate x error ratio over the window")
    entry_service: str | None = Field(None, description="where requests were counted (root spans' services, or the "
                                                        "entry service's rate)")
    failed_share: float | None = Field(None, description="requests_failed / requests_total")
    baseline_failed_share: float | None = Field(None, description="failed / requests in the baseline, counted the "
                                                                  "same way: the share the window would have lost "
                                                                  "had nothing happened")
    failed_excess: int | None = Field(None, description="requests_failed beyond what the baseline's failed share "
                                                        "predicts for the window's requests (requests_failed where "
                                                        "the baseline's share is unknown); severity reads this")
    users_affected: int | None = Field(None, description="distinct user ids in failing requests, when logs carry them")
    users_baseline: float | None = Field(None, description="distinct user ids on WARN/ERROR lines the baseline has per "
                                                           "span of the window's length: what the window would have "
                                                           "had had nothing happened")
    users_excess: int | None = Field(None, description="users_affected beyond users_baseline (None where there is no "
                                                       "baseline: then the raw count sets no severity); severity "
                                                       "reads this")
    services_affected: list[str] = Field(default_factory=list)
    lines_marked: list[str] = Field(default_factory=list, description="the services affected by a surge of their "
                                    "WARN/ERROR lines")
    metric_marks: list[MetricMark] = Field(default_factory=list, description="per service affected by its latency "
                                           "or error metrics, the series that marked it")
    traced_failures: list[TracedFailure] = Field(default_factory=list, description="per service its traced requests "
                                                 "mark affected, the way they failed most beyond its baseline's share; "
                                                 "sets SEV3 at most (a service's requests are not the users')")
    slowed_too_little: list[TracedFailure] = Field(default_factory=list, description="per service whose traced "
                                                   "requests slowed past their kind's p90 more often than before, but "
                                                   "adding under 5% of the users' requests they sat in at their "
                                                   "p90 (tail_added_ms, request_ms): too little to matter, not "
                                                   "affected")
    failing_before: list[TracedFailure] = Field(default_factory=list, description="per service whose traced "
                                                "requests were already failing in the minutes before the start "
                                                "(all ways together) beyond its share earlier in the baseline: "
                                                "`window_*` counts those minutes' requests, `baseline_*` the "
                                                "earlier ones'; not the incident's harm, no severity")
    regions_affected: list[str] = Field(default_factory=list)
    peak_latency: Peak | None = None
    peak_error_rate: Peak | None = None
    not_borne_out: list[NotBorneOut] = Field(default_factory=list, description="latency percentiles whose peak is "
                                             "more than tenfold the longest of the service's traced calls: not "
                                             "counted as latency")
    past_window: list[PastWindow] = Field(default_factory=list, description="latency percentiles whose peak is "
                                          "longer than the window with a metric step either side (longest_s): a "
                                          "request that long began before the incident; not counted as latency")
    harm_checked: list[str] = Field(default_factory=list, description="what could mark a service affected in this "
                                    "data (latency and error metrics, failed, cut-short or slowed traced requests, "
                                    "WARN/ERROR lines); with none affected, failed requests and users are the "
                                    "window's ordinary ones, not the incident's")
    narrative: Narrative
    evidence: list[EvidenceId] = Field(default_factory=list)


class Hypothesis(_Model):
    rank: int
    service: str
    kind: str
    mechanism: str
    confidence: float = Field(ge=0.0, le=1.0, allow_inf_nan=False, description="a share, 0 to 1")
    supporting: list[EvidenceId] = Field(default_factory=list)
    contradicting: list[EvidenceId] = Field(default_factory=list)
    test: str | None = None
    test_passed: bool | None = None
    independent: str | None = Field(default=None, description="A second, independent suspect: why the first "
                                    "hypothesis does not explain it (two faults at once)")


class ServiceShowing(_Model):
    """What one service showed: when it started to move (the one onset the tests and timeline cite) and how."""

    service: str
    onset: UtcTime | None = None
    showed: list[str] = Field(default_factory=list)
    evidence: list[EvidenceId] = Field(default_factory=list)
    ends_after: str | None = Field(default=None, description="When its requests were cut short (a call fewer, and "
                                   "nothing else in its traces past the bar): the service they now end after calling")


class Verdict(_Model):
    """Whether the evidence names one root cause (`root_cause`) or not (`inconclusive`: no single root cause found;
    then `services` says what each one showed)."""

    status: Literal["root_cause", "inconclusive"]
    service: str | None = None
    reason: str
    rule: str = ""
    second: str | None = Field(default=None, description="A second, independent suspect beside the first: a service "
                               "that moved on its own, which the first does not explain")
    services: list[ServiceShowing] = Field(default_factory=list)


class RootCause(_Model):
    """The top-ranked hypothesis, kept apart from the trigger that set it off."""

    service: str
    kind: str
    mechanism: str
    confidence: float
    evidence: list[EvidenceId] = Field(default_factory=list)
    test: str | None = None
    test_passed: bool | None = None
    narrative: Narrative
    #: how sure the review is and what would change it, in words: the confidence against the rest (none of the
    #: candidates, the next hypothesis) and the prediction of its test ("" in an older report)
    certainty: str = ""


class Trigger(_Model):
    kind: str
    t: UtcTime | None = None
    service: str | None = None
    description: str
    on_failing_path: bool = Field(True, description="whether it touched the root-cause or an affected service; a "
                                                    "change elsewhere only preceded the incident")
    evidence: list[EvidenceId] = Field(default_factory=list)


class ContributingFactor(_Model):
    description: str
    evidence: list[EvidenceId] = Field(default_factory=list)


class DetectionSeries(_Model):
    series: str
    direction: str | None = None
    baseline: float | None = None
    peak: float | None = None
    shift: float | None = None
    onset: UtcTime | None = None
    peak_at: UtcTime | None = None
    pod: str | None = Field(None, description="the pod whose series moved, where the service has several (each "
                                              "pod's samples are a series of their own); null otherwise")
    left_out: str | None = Field(None, description="a latency percentile the impact left out as longer than any "
                                                   "request in the window could take (`impact.past_window`): why; "
                                                   "null otherwise")


class SourceRows(_Model):
    window_rows: int = Field(description="rows in the incident window")
    baseline_rows: int = Field(description="rows in the baseline")


class Sources(_Model):
    """Which telemetry the analysis read for the window, and what it lacked: a source with no row there is no
    evidence of calm, and a reader must know which checks could not run."""

    used: list[str] = Field(default_factory=list, description="the sources with rows in the incident window")
    missing: list[str] = Field(default_factory=list, description="the sources with no row in the window: nothing in "
                                                                 "the review rests on them")
    rows: dict[str, SourceRows] = Field(default_factory=dict, description="per source, its rows in the window and "
                                                                          "in the baseline")
    notes: list[str] = Field(default_factory=list, description="what the sources lacked, in words ('no logs for "
                                                               "this period', 'no traces before the onset: ...')")
    left_out: list[str] = Field(default_factory=list, description="values and entries set aside when the sources "
                                                                   "were read (non-finite values, entries with no "
                                                                   "time), one line per column or file")
    events_given: bool | None = Field(None, description="whether any deploy, config or operator events were given: "
                                                        "without them a trigger could not be looked for (None: the "
                                                        "analysis does not say)")


class Detection(_Model):
    onset: Literal["detected", "given"] = Field(
        "detected", description="how the incident's start was found: detected in the data, or given by the caller "
                                "(an alert, an injection, a page: `--onset at`); when given, nothing was detected "
                                "and detected_at and time_to_detect_minutes are null")
    detector: str | None = None
    undetected: str | None = Field(None, description="when the start is the --at time because no incident window "
                                                     "could be detected or explained there (`--onset detect`): why")
    alert_at: UtcTime | None = Field(None, description="the alert time, when nothing after it could be explained "
                                                       "(nothing moved, or only load) and the start was "
                                                       "taken at the first minute before it at which something did")
    detected_at: UtcTime | None = Field(None, description="first anomalous point the detector flagged")
    time_to_detect_minutes: float | None = Field(None, description="from the incident start to detected_at")
    series: list[DetectionSeries] = Field(default_factory=list)
    sooner: list[str] = Field(default_factory=list, description="what would have detected it sooner")
    narrative: Narrative
    evidence: list[EvidenceId] = Field(default_factory=list)


class Recovery(_Model):
    recovered_at: UtcTime | None = None
    time_to_recover_minutes: float | None = Field(None, description="from the incident start to recovered_at")
    narrative: Narrative


class TimelineEntry(_Model):
    t: UtcTime
    event: str
    phase: Literal["lead-up", "onset", "detection", "propagation", "peak", "response", "recovery", "other"] = "other"
    evidence: list[EvidenceId] = Field(default_factory=list)


class ActionItem(_Model):
    type: ActionType
    description: str
    owner: str = Field(description="owning team")
    priority: Priority
    eta: str = Field(description="target, relative to the review: e.g. '24 hours', '2 weeks'")
    evidence: list[EvidenceId] = Field(default_factory=list)


class Lessons(_Model):
    went_well: list[str] = Field(default_factory=list)
    went_wrong: list[str] = Field(default_factory=list)
    got_lucky: list[str] = Field(default_factory=list)
    narrative: Narrative | None = None


class LogTemplate(_Model):
    """A log template that surged or appeared in the incident, with sample lines (untrusted text)."""

    template: str
    status: str | None = None
    count_window: int = 0
    count_baseline: int = 0
    rate_ratio: float | None = Field(None, description="its lines a minute in the incident over the baseline's (None: "
                                                       "none before)")
    first_seen: UtcTime | None = None
    services: list[str] = Field(default_factory=list)
    samples: list[str] = Field(default_factory=list)
    evidence: EvidenceId | None = None


class Contributor(_Model):
    """A dimension value over-represented among the incident's problem events."""

    dimension: str
    value: str
    window_share: float
    baseline_share: float
    lift: float | None = None
    p_value: float | None = None
    evidence: EvidenceId | None = None


class EvidenceItem(_Model):
    id: str = Field(pattern=EVIDENCE_ID_PATTERN, description="<kind>-<8 hex>; cited by the sections above")
    kind: str
    title: str
    query: str
    data: Any = None


class GroundingCheck(_Model):
    """The validator's verdict, run over every statement of the review before it is written."""

    statements: int = Field(0, description="statements whose numbers and times were checked against the evidence")
    issues: list[str] = Field(default_factory=list, description="'<where>: <reason>' for each unsupported figure")
    missing_evidence: list[str] = Field(default_factory=list, description="evidence ids the review cites that its "
                                        "evidence does not hold (an edited analysis.json): shown, never linked")


class TokenCount(_Model):
    prompt: int = 0
    completion: int = 0


class GeneratedBy(_Model):
    """Which brain wrote the review and what it was asked. `degraded`: a model was chosen but could not do the work
    (it failed and the offline planner took over, or it made no tool call), `degraded_reason` says which."""

    llm: str = "offline"
    model: str | None = None
    degraded: bool = False
    degraded_reason: str | None = None
    model_requests: int = Field(0, description="calls the agents made to the model")
    http_requests: int = Field(0, description="HTTP requests those calls took, retries included")
    model_tool_calls: int = Field(0, description="tool calls the model asked for")
    planner_tool_calls: int = Field(0, description="tool calls the offline planner asked for")
    tokens: TokenCount = Field(default_factory=TokenCount)


class Postmortem(_Model):
    schema_version: Literal["1.0"] = SCHEMA_VERSION
    detected: bool
    reason: str | None = Field(None, description="why no incident was reported, when detected is false")
    title: str
    date: dt.date
    status: Literal["draft"] = "draft"
    severity: Severity | None = None
    severity_rule: str = Field(description="the rule that derived severity from impact, with the figures it used")
    incident_window: Window | None = None
    baseline_window: Window | None = None
    peak: UtcTime | None = None
    summary: Narrative
    impact: Impact | None = None
    root_cause: RootCause | None = None
    verdict: Verdict | None = Field(None, description="whether one root cause stands out; inconclusive: none does")
    trigger: Trigger | None = None
    hypotheses: list[Hypothesis] = Field(default_factory=list)
    contributing_factors: list[ContributingFactor] = Field(default_factory=list)
    detection: Detection
    response: Narrative
    recovery: Recovery | None = None
    timeline: list[TimelineEntry] = Field(default_factory=list)
    action_items: list[ActionItem] = Field(default_factory=list)
    lessons: Lessons
    runbook: list[str] = Field(default_factory=list)
    sources: Sources | None = Field(None, description="which telemetry held data in the window and before it; "
                                                      "none when the analysis does not say (no window explained)")
    checked: list[str] = Field(default_factory=list, description="what the analysis examined")
    data_quality: list[str] = Field(default_factory=list, description="input records set aside as unreadable, per "
                                                                      "file, with where they are listed")
    templates: list[LogTemplate] = Field(default_factory=list, description="surging log templates with samples")
    contributors: list[Contributor] = Field(default_factory=list, description="over-represented dimensions")
    evidence: list[EvidenceItem] = Field(default_factory=list)
    grounding: GroundingCheck = Field(default_factory=GroundingCheck)
    generated_by: GeneratedBy = Field(default_factory=GeneratedBy)

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json")

    def narratives(self) -> dict[str, Narrative]:
        """Each prose section by the name `build_postmortem(narrative=...)` takes (summary, impact, root_cause, ...)."""
        found = {"summary": self.summary, "impact": self.impact and self.impact.narrative,
                 "root_cause": self.root_cause and self.root_cause.narrative, "detection": self.detection.narrative,
                 "response": self.response, "recovery": self.recovery and self.recovery.narrative,
                 "lessons": self.lessons.narrative}
        return {name: narrative for name, narrative in found.items() if narrative is not None}

    def cited_evidence(self) -> list[str]:
        """The evidence ids the sections cite (findings, hypotheses, timeline, actions, ...), each once, in order."""
        return list(dict.fromkeys(_cited(self.model_dump(mode="json", exclude={"evidence"}))))


#: the fields that cite evidence by id
_CITING = ("evidence", "supporting", "contradicting")


def _cited(node: Any) -> list[str]:
    if isinstance(node, list):
        return [cited for item in node for cited in _cited(item)]
    if not isinstance(node, dict):
        return []
    ids = []
    for key, value in node.items():
        if key in _CITING and isinstance(value, str):
            ids.append(value)
        elif key in _CITING and isinstance(value, list) and all(isinstance(v, str) for v in value):
            ids.extend(value)
        else:
            ids.extend(_cited(value))
    return ids


def pick(model: type[BaseModel], raw: dict[str, Any]) -> dict[str, Any]:
    """The fields of `raw` that `model` declares: analysis results may carry more than the review shows."""
    return {key: value for key, value in raw.items() if key in model.model_fields}


def postmortem_json_schema() -> dict[str, Any]:
    """The JSON Schema docs/postmortem.schema.json holds."""
    schema = Postmortem.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    return schema
