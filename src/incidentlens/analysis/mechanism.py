"""What kind of failure it was: classify a candidate root service's mechanism from what moved and what it logged.

The vocabulary is the scenario module's `root_cause.kind`. Cues, each a small number of points:
its metrics that shifted (pool utilisation up, cache hit ratio down, memory or restarts up, CPU up), the words of
its WARN/ERROR lines in the window (one aggregate query, counted per service), the contrast's concentration (one
region, a new version), and a deploy or config change at the service shortly before the onset.

A metric counts only when its change is practically large, not merely beyond the baseline's noise (a flat series
moves many sigmas on a change of a few percent): a utilisation near its limit (memory, CPU, a pool), a restart or a
throttled request seen, a hit ratio down by a fifth of its scale, a count at least doubled. An amount with no known
limit (memory in MiB, CPU in millicores) names no mechanism, nor does a host's metric (`node_...`: the machine the
service shares with others). Otherwise the kind is `undetermined`, and the sentence says what moved and by how much.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel

from incidentlens.analysis.evidence import Evidence
from incidentlens.analysis.periods import PROBLEM_LEVELS, Span, in_span, sql_in
from incidentlens.analysis.shifts import MetricShift
from incidentlens.analysis.units import three_figures
from incidentlens.analysis.words import possessive

KINDS = (
    "connection_pool_exhaustion",
    "cache_miss_storm",
    "bad_deploy",
    "region_outage",
    "oom_restart_loop",
    "provider_throttling",
    "cpu_saturation",
    "undetermined",
)
UNDETERMINED = "undetermined"
#: what an out-of-memory kind resting on memory near its limit alone says (`Classification.restart_seen` false): the
#: review then acts on memory near its limit, not on restarts nobody saw
NO_RESTART_SEEN = "no restart or out-of-memory line seen"
#: ... and after it, where the window held no log lines: not seeing one there says nothing (OnlineBoutique 16:13's
#: adservice, no log minute in its window: "no restart or out-of-memory line seen" read as none having happened)
NO_LOGS_TO_SHOW = " (no logs for this period, where such a line would show)"

#: words in WARN/ERROR lines that point at a mechanism (RE2 syntax: runs in DuckDB and ClickHouse alike)
LOG_CUES: dict[str, str] = {
    "connection_pool_exhaustion": r"(?i)(\bpool\b|acquir\w* connection|too many connections|connections? exhausted)",
    "cache_miss_storm": r"(?i)(cache.{0,20}(miss|evict|stampede|cold)|miss(es)? .{0,20}(cache|hit ratio)|keyspace miss"
    r"|expired \d+ keys)",
    "oom_restart_loop": r"(?i)(out of memory|outofmemory|\boom|oomkill|heap space|crashloop|restart(ed|ing)|killed)",
    "provider_throttling": r"(?i)(\b429\b|throttl|rate.?limit|quota|too many requests)",
    "cpu_saturation": r"(?i)(\bcpu\b|saturat|starv|run queue)",
}

#: metrics whose shift at a service points at a mechanism: (name pattern, direction, kind, points, how large the
#: change must be to count: see `practically_large`)
METRIC_CUES: list[tuple[str, str, str, float, str]] = [
    (r"pool|connections", "up", "connection_pool_exhaustion", 3.0, "near_limit_or_doubled"),
    (r"cache.*(hit|ratio)", "down", "cache_miss_storm", 3.0, "fell_a_fifth"),
    (r"cache.*miss", "up", "cache_miss_storm", 3.0, "doubled"),
    (r"restart", "up", "oom_restart_loop", 3.0, "events_seen"),
    (r"mem", "up", "oom_restart_loop", 1.5, "near_limit"),
    (r"cpu.*throttl|throttl.*cpu", "up", "cpu_saturation", 3.0, "events_seen"),
    (r"^(?!.*cpu).*(throttl|429|rate_limited)", "up", "provider_throttling", 3.0, "doubled"),
    (r"cpu", "up", "cpu_saturation", 1.5, "near_limit"),
]
#: a log value over-represented in the problem lines counts (as a cue, `classify`; as a contributing factor, the
#: review) at this many times its share of them before the start (`large_contributor`)
MIN_LIFT = 2.0
#: a utilisation at least this share of its full scale is near its limit (saturated)
NEAR_LIMIT = 0.8
#: ... unless it runs past this share: a share of a hard limit cannot pass it by much, so the scale is a request or a
#: reference, not a limit the service is about to hit
PAST_LIMIT = 1.1
#: a ratio that fell by this share of its full scale fell materially
MATERIAL_DROP = 0.2
#: a metric of the machine, not of the service (`node_memory_...`, `NodeCpuUsageRate(%)`)
HOST_METRIC = r"^[Nn]ode(?=[^a-z])|(^|[_.:])node[_.:]"
#: a metric that is a share of a limit: a percentage (scale 100) or a ratio or utilisation (scale 1, or 100 when its
#: values run past 1.5)
PERCENT_NAME = r"(?i)%|percent|pct"
RATIO_NAME = r"(?i)ratio|utili[sz]|usage_?rate|fraction|saturation"

#: what an undetermined mechanism's sentence says after what moved
NO_MECHANISM = ("no change large enough to name a mechanism (a resource near its limit, a restart, throttling, "
                "mechanism words in its errors)")
#: the undetermined sentence's key where every metric that moved is a percentile left out of the impact
LEFT_OUT_ONLY = "left_out_only"

MECHANISMS: dict[str, str] = {
    "connection_pool_exhaustion": "{s} ran out of database connections: requests queued for the pool and timed out, "
    "and the services calling it failed behind it",
    "cache_miss_storm": "{whose} cache stopped absorbing reads: misses surged and pushed the load onto the backing "
    "store, slowing everything behind it",
    "bad_deploy": "a change to {s} shortly before the onset{trigger} introduced failures that propagated to its "
    "callers",
    "region_outage": "{s} failed in {region} only: requests served there errored while other regions stayed healthy",
    "oom_restart_loop": "{s} exhausted its memory and restarted repeatedly, dropping in-flight requests",
    # the same kind when only its memory near the limit was seen: the restarts are the risk, not a fact
    "memory_near_limit": "{s} ran its memory near its limit, where an out-of-memory kill restarts it and drops "
    "in-flight requests",
    "provider_throttling": "{whose} calls to a third-party provider were throttled, failing only the requests that "
    "depend on it",
    # what saturation does, not what was seen: its callers' latency is not measured here ("seen:" follows)
    "cpu_saturation": "{s} saturated its CPU, where requests queue and slow down, its callers' with them",
    UNDETERMINED: "{s} changed{moved}; " + NO_MECHANISM,
    # ... where all that moved of its metrics is percentiles the impact left out as longer than the window: no change
    # the review counts (TrainTicket: "X changed (PodClientLatencyP99(s) at 3,456 ...: ..., left out of the impact)")
    LEFT_OUT_ONLY: "{whose} metrics moved only in what the impact left out{moved}; " + NO_MECHANISM,
}


#: the mechanism of a dependency nothing traced (`spans.TraceSignal.untraced`) that its callers' words did not name:
#: what it did is not in the data, which holds only its callers' calls to it
UNTRACED = ("{s} is untraced, seen from its callers' client spans: it has no metrics or logs of its own here, so "
            "its mechanism is undetermined (its callers' problem lines named none)")
#: ... and added to a mechanism its callers' words named
UNTRACED_NOTE = "{s} is untraced, seen from its callers' client spans"


class MechanismCues(BaseModel):
    """WARN/ERROR word counts in the window, by mechanism, attributed to the service a line is about: the service
    it names ("payment-provider responded 429" is about payment-provider), else the service that logged it."""

    problems: dict[str, int] = {}
    counts: dict[str, dict[str, int]] = {}
    named: list[tuple[str, str, int]] = []  # (logging service, named service, lines): who blames whom
    evidence: str | None = None
    logs_read: bool = True  # whether the window held log lines to look in: where not, no cue is no sign of none

    def share(self, service: str, kind: str) -> float:
        total = self.problems.get(service, 0)
        return self.counts.get(service, {}).get(kind, 0) / total if total else 0.0


class Classification(BaseModel):
    kind: str
    points: dict[str, float]
    region: str | None = None
    supporting: list[str] = []
    #: metric cues set aside as not enough to name a mechanism, in words
    too_small: list[str] = []
    #: the metric changes that named the mechanism, in words
    seen: list[str] = []
    #: whether a restart or an out-of-memory line was seen (else an out-of-memory kind rests on memory alone)
    restart_seen: bool = False
    #: whether the window held log lines to look in (`MechanismCues.logs_read`)
    logs_read: bool = True


def log_cues_sql(window: Span, services: list[str]) -> str:
    """The window's WARN/ERROR lines by (logging service, service named in the message) with mechanism words."""
    counts = ",\n       ".join(
        f"count(*) FILTER (WHERE regexp_matches(message, '{pattern}')) AS {kind}" for kind, pattern in LOG_CUES.items()
    )
    return f"""SELECT service, {named_service_sql(services)} AS named, count(*) AS problems,
       {counts}
FROM logs
WHERE {in_span('ts', window, end_included=True)} AND level IN {sql_in(PROBLEM_LEVELS)}
  AND service IS NOT NULL
GROUP BY ALL"""


def named_service_sql(services: Sequence[str]) -> str:
    """SQL for the first known service a message names as a dependency: at the start of the message or a clause, or
    after a word like "upstream", "to", "for" ("upstream db-proxy timed out", "payment-provider responded 429",
    "No instances available for ts-basic-service"), and as a whole word — not inside a path ("/api/search") nor as
    plain English ("connection checkout timed out")."""
    if not services:
        return "''"
    # the longest first, so that a name is not matched by a shorter one it begins with; names of one length
    # alphabetically, so that the query (and its evidence id) is the same whatever order the services come in
    names = "|".join(re.escape(s) for s in sorted(services, key=lambda s: (-len(s), s)))
    lead = "(?:^|: |(?i:upstream|downstream|service|backend|provider|dependency|to|from|for|calling|via) )"
    pattern = f"{lead}({names})(?:[^A-Za-z0-9_/-]|$)".replace("'", "''")
    return f"regexp_extract(message, '{pattern}', 1)"


def mechanism_cues(store: Any, window: Span, services: list[str],
                   logs_read: bool = True) -> tuple[MechanismCues, list[Evidence]]:
    """The WARN/ERROR lines' mechanism words by service; `logs_read`: whether the window holds log lines at all
    (`sources.data_sources`), which the cues carry so a mechanism's words do not take a line missing from no logs
    for one that did not happen."""
    if not store.has("logs"):
        return MechanismCues(logs_read=False), []
    sql = log_cues_sql(window, services)
    # engines return groups in any order: sort them so the cues and their evidence id are the same everywhere
    rows = sorted(store.fetch(sql).to_pylist(), key=lambda r: (r["service"], r["named"] or ""))
    if not rows:
        return MechanismCues(logs_read=logs_read), []
    cues = MechanismCues(logs_read=logs_read)
    for row in rows:
        about = row["named"] if row["named"] and row["named"] != row["service"] else row["service"]
        cues.problems[about] = cues.problems.get(about, 0) + int(row["problems"])
        counts = cues.counts.setdefault(about, dict.fromkeys(LOG_CUES, 0))
        for kind in LOG_CUES:
            counts[kind] += int(row[kind])
        if about != row["service"]:
            cues.named.append((row["service"], about, int(row["problems"])))
    data = {
        "patterns": LOG_CUES,
        "attribution": "a line counts for the service it names, else for the service that logged it",
        "services": sorted(
            ({"service": name, "problems": cues.problems[name], **cues.counts[name]} for name in cues.problems),
            key=lambda d: (-d["problems"], d["service"]),
        )[:20],
        "named": [list(edge) for edge in sorted(cues.named, key=lambda e: (-e[2], e[0], e[1]))[:20]],
    }
    item = Evidence.make("sql", "WARN/ERROR words by the service they are about (mechanism cues)", sql, data)
    cues.evidence = item.id
    return cues, [item]


def classify(
    service: str,
    shifts: list[MetricShift],
    cues: MechanismCues,
    contributors: list[Any],
    trigger: dict[str, Any] | None,
) -> Classification:
    """Score every kind for one service and pick the best; `unknown` when nothing points anywhere."""
    points = dict.fromkeys(KINDS, 0.0)
    supporting: list[str] = []
    too_small: list[str] = []
    seen: dict[str, list[str]] = {}
    restart_seen = False
    for shift, kind, weight, rule in _metric_cues(service, shifts):
        large, why = practically_large(shift, rule)
        if large:
            points[kind] += weight
            supporting.append(shift.evidence)
            seen.setdefault(kind, []).append(why)
            restart_seen |= rule == "events_seen" and kind == "oom_restart_loop"
        else:
            too_small.append(f"{kind.replace('_', ' ')}: {why}")
    for kind in LOG_CUES:
        share = cues.share(service, kind)
        if share >= 0.05:
            points[kind] += 3.0 * min(1.0, share * 2)
            restart_seen |= kind == "oom_restart_loop"
            if cues.evidence:
                supporting.append(cues.evidence)
    for contributor in contributors:
        for kind, pattern in LOG_CUES.items():
            if _value(contributor, "lift", 0) >= MIN_LIFT and re.search(pattern, str(_value(contributor, "value", ""))):
                points[kind] += 1.0
                supporting.append(_value(contributor, "evidence", ""))
    region = _concentrated(contributors, "region")
    if region is not None:
        points["region_outage"] += 3.5
        supporting.append(_value(region, "evidence", ""))
    if trigger and trigger.get("service") in (service, None):
        points["bad_deploy"] += 4.0
        supporting += trigger.get("evidence", [])
    new_version = _concentrated(contributors, "version")
    if new_version is not None and _value(new_version, "baseline_share", 1) < 0.05:
        points["bad_deploy"] += 2.0
        supporting.append(_value(new_version, "evidence", ""))
    best = max(points, key=lambda k: points[k])
    kind = best if points[best] >= 1.5 else UNDETERMINED
    return Classification(
        kind=kind,
        points={k: round(v, 2) for k, v in points.items() if v},
        region=str(_value(region, "value", "")) if region is not None else None,
        supporting=list(dict.fromkeys(s for s in supporting if s)),
        too_small=list(dict.fromkeys(too_small)) if kind == UNDETERMINED else [],
        seen=seen.get(kind, []),
        restart_seen=restart_seen,
        logs_read=cues.logs_read,
    )


def _metric_cues(service: str, shifts: list[MetricShift]) -> list[tuple[MetricShift, str, float, str]]:
    """(shift, kind, points, size rule) for each of the service's own significant shifts a metric cue matches (the
    first cue that matches a metric; a host's metrics are not the service's)."""
    found = []
    for shift in shifts:
        if shift.service != service or not shift.significant or re.search(HOST_METRIC, shift.metric):
            continue
        for pattern, direction, kind, weight, rule in METRIC_CUES:
            if shift.direction == direction and re.search(pattern, shift.metric, re.IGNORECASE):
                found.append((shift, kind, weight, rule))
                break
    return found


def full_scale(shift: MetricShift) -> float | None:
    """100 for a percentage, 1 for a ratio (100 if its values run past 1.5), None for an amount with no limit."""
    return limit_scale(shift.metric, shift.baseline, shift.peak)


def limit_scale(metric: str, *values: float) -> float | None:
    """A metric's full scale as a share of a limit, from its name and `values`: 100 for a percentage, 1 for a ratio
    (100 if its values run past 1.5), None for an amount with no limit."""
    if re.search(PERCENT_NAME, metric):
        return 100.0
    if re.search(RATIO_NAME, metric):
        return 1.0 if max(abs(v) for v in values) <= 1.5 else 100.0
    return None


def practically_large(shift: MetricShift, rule: str) -> tuple[bool, str]:
    """Whether a shift is large enough in practice to name a mechanism by `rule`, and the change in words:
    `near_limit` a utilisation at `NEAR_LIMIT` of its scale or more (and not past `PAST_LIMIT` of it; one already
    that near before the start says so: `96% of its limit, already 87% before the start`);
    `near_limit_or_doubled` that, or an amount with no known limit at least doubled; `fell_a_fifth` a ratio down by
    `MATERIAL_DROP` of its scale; `doubled` at least twice the baseline (or up from zero); `events_seen` a count up
    by at least one (a restart seen)."""
    before, peak = shift.baseline, shift.peak

    def said(note: str = "") -> str:
        return f"{shift.metric} {describe_change(before, peak, note)}"

    change = said()
    scale = full_scale(shift)
    doubled = peak >= 2 * before if before > 0 else peak > 0
    if rule == "events_seen":
        return peak - before >= 1, change
    if rule == "doubled":
        return doubled, change
    if rule == "fell_a_fifth":
        return scale is not None and before - peak >= MATERIAL_DROP * scale, change
    if scale is None:
        large = rule == "near_limit_or_doubled" and doubled
        return large, change + ("" if large else ": an amount with no known limit")
    share = peak / scale
    if share > PAST_LIMIT:
        return False, f"{said(f'{share:.0%}: past its scale')}, so not a share of a hard limit"
    already = f", already {before / scale:.0%} before the start" if before / scale >= NEAR_LIMIT else ""
    return share >= NEAR_LIMIT, said(f"{share:.0%} of its limit{already}")


def shift_words(moved: list[MetricShift]) -> list[str]:
    """Each shift in words (`p99_ms from 120 to 2,400 (over tenfold)`); a run of latency percentiles the traced calls
    do not bear out (or cannot confirm) is followed once by what the traces show (`trace_caveat`): `...: percentiles
    the traces do not bear out (its 60 traced calls took at most 4.31 ms)`. A percentile the impact left out as
    longer than the window (`MetricShift.past_window`) is said as its reading, not as a change, and its run says
    why it was left out (`caveat`): `PodClientLatencyP99(s) at 3,456 (0.00496 before): a percentile longer than any
    request in the window could take (236 s), left out of the impact`. A host's metric is said to be the host's
    (`its host's NodeCpuUsageRate(%) from ...`): every service on that machine shows the same move, which the bare
    name would credit to this one."""
    items = [_shift_said(m) for m in moved]
    for i, m in enumerate(moved):
        said = caveat(m)
        if said and (i + 1 == len(moved) or caveat(moved[i + 1]) != said):
            run = next(j for j in range(i, -1, -1) if j == 0 or caveat(moved[j - 1]) != said)
            what = "a percentile" if run == i else "percentiles"
            items[i] += f": {what} {said}"
    return items


def _shift_said(m: MetricShift) -> str:
    if m.past_window is not None:
        return f"{m.metric} at {three_figures(m.peak)} ({three_figures(m.baseline)} before)"
    return f"{host_words(m.metric)}{m.metric} {describe_change(m.baseline, m.peak)}"


def caveat(m: MetricShift) -> str | None:
    """What the words add to a latency percentile the review does not take at its word: that the impact left it out
    as longer than any request in the window could take (`MetricShift.past_window`), else what the traces show of it
    (`trace_caveat`); None for any other shift."""
    return past_window_caveat(m.past_window) if m.past_window is not None else trace_caveat(m)


def past_window_caveat(longest_s: float) -> str:
    """What is said of a latency percentile the impact left out as longer than the window, whose longest request
    could take `longest_s`: `longer than any request in the window could take (236 s), left out of the impact`."""
    return f"longer than any request in the window could take ({three_figures(longest_s)} s), left out of the impact"


def trace_caveat(m: MetricShift) -> str | None:
    """What the traces say of a latency percentile, where they do not stand behind it: `the traces do not bear out
    (its 60 traced calls took at most 4.31 ms)`, or `the traces cannot confirm (no traced call covers it)` (TrainTicket
    08:52: ts-admin-user-service's client p90 "from 0.019 to 156 (over a thousandfold)", no call of it traced, beside
    the same 156 s of a service whose calls the traces do show); None when they bear it out or hold no spans."""
    if m.not_borne_out:
        return f"the traces do not bear out ({m.not_borne_out})"
    return f"the traces cannot confirm ({m.unchecked})" if m.unchecked else None


def host_words(metric: str) -> str:
    """`its host's ` before a host's metric (`node_...`, `NodeCpuUsageRate(%)`), else nothing."""
    return "its host's " if re.search(HOST_METRIC, metric) else ""


def describe_change(before: float, after: float, note: str = "") -> str:
    """`from 1.45 to 1.58 (+9%)`: a move in words with its relative size, and `note` in the same parentheses
    (`from 55 to 97 (+77%, 97% of its limit)`)."""
    text = f"from {three_figures(before)} to {three_figures(after)}"
    notes = [_relative(before, after)] if before else []
    if note:
        notes.append(note)
    return f"{text} ({', '.join(notes)})" if notes else text


#: a rise at least this many times its start is said in words (`over a hundredfold`): `+5804778%` reads as noise
FOLDS = ((1000, "over a thousandfold"), (100, "over a hundredfold"), (10, "over tenfold"))


def _relative(before: float, after: float) -> str:
    """`+9%`, `-47%`, or for a rise of ten times or more its order in words."""
    if before > 0:
        said = next((words for times, words in FOLDS if after >= times * before), None)
        if said:
            return said
    return f"{(after - before) / abs(before):+.0%}"


def specificity(service: str, shifts: list[MetricShift], cues: MechanismCues) -> float:
    """0..1: how much a service's own signals name a mechanism (pool, cache, memory, throttling, CPU) rather than
    a generic symptom (timeouts, 5xx). Causes tend to be specific; their callers' symptoms generic. A resource
    metric names one when its cue is a strong one or its change is practically large (CPU at its limit)."""
    words = max((cues.share(service, kind) for kind in LOG_CUES), default=0.0)
    resource = any(weight >= 3 or practically_large(shift, rule)[0]
                   for shift, _, weight, rule in _metric_cues(service, shifts))
    return max(min(1.0, 2 * words), 1.0 if resource else 0.0)


def mechanism_sentence(service: str, classification: Classification, trigger: dict[str, Any] | None,
                       moved: list[MetricShift]) -> str:
    trigger_text = f" ({trigger['description']})" if trigger and trigger.get("description") else ""
    # a percentile the impact left out as longer than the window is no change to quote while another moved
    quoted = sorted(moved, key=lambda m: m.past_window is not None)[:2]
    moved_text = f" ({'; '.join(shift_words(quoted))})" if moved else ""
    template = _template(classification, moved)
    sentence = MECHANISMS[template].format(
        s=service, whose=possessive(service), trigger=trigger_text, region=classification.region or "one region",
        moved=moved_text
    )
    if classification.seen:
        sentence += f"; seen: {'; '.join(classification.seen[:2])}"
    if template == "memory_near_limit":
        sentence += f"; {NO_RESTART_SEEN}{'' if classification.logs_read else NO_LOGS_TO_SHOW}"
    if classification.too_small:
        # "not enough", not "too small": a CPU from 0.5% to 56% of its limit is a large rise, but not saturation
        sentence += f"; set aside as not enough to name it: {'; '.join(classification.too_small[:3])}"
    return sentence


def _template(classification: Classification, moved: list[MetricShift]) -> str:
    """Which of `MECHANISMS` words a classification: memory near its limit where no restart was seen, and an
    undetermined one whose metrics moved only in percentiles the impact left out as that, not as a change."""
    if classification.kind == "oom_restart_loop" and not classification.restart_seen:
        return "memory_near_limit"
    if classification.kind == UNDETERMINED and moved and all(m.past_window is not None for m in moved):
        return LEFT_OUT_ONLY
    return classification.kind


def _concentrated(contributors: list[Any], dimension: str) -> Any | None:
    """The contributor that holds most of the window's problems on one dimension, if there is one."""
    return next((c for c in contributors if _value(c, "dimension", "") == dimension and holds_most(c)), None)


def holds_most(contributor: Any) -> bool:
    """Whether a contributor holds most of the window's problems (70%), well up on before: a value already common
    before (57% of traffic) cannot lift much, so a large gain in share (30 points) counts as well as a 1.8x lift."""
    share = _value(contributor, "window_share", 0)
    return share >= 0.7 and (_value(contributor, "lift", 0) >= 1.8
                             or share - _value(contributor, "baseline_share", 1) >= 0.3)


def large_contributor(contributor: Any) -> bool:
    """Whether a contributor's over-representation is large enough in practice to be a contributing factor: at the
    lift a mechanism's cue needs (`MIN_LIFT`), or holding most of the problems as a region or version must to point
    at an outage or a deploy (`holds_most`). A node with 71% of the problem lines against 57% before (TrainTicket
    09:12, a 1.2x lift) is neither."""
    return _value(contributor, "lift", 0) >= MIN_LIFT or holds_most(contributor)


def _value(item: Any, key: str, default: Any) -> Any:
    """Read a field from a pydantic result or a plain dict (contrast results arrive as either); a field set to None
    reads as `default` (a review's contributor may have no lift: its schema allows one)."""
    value = item.get(key) if isinstance(item, dict) else getattr(item, key, None)
    return default if value is None else value
