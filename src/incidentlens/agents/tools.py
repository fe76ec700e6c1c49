"""The agents' tools: thin, read-only Haystack tools over the evidence engine.

Each tool acts on the investigation context (the store and the evidence so far), returns compact JSON (lists and
text capped, with a note saying what was cut), names the evidence ids the report can cite, and writes its findings
into the agents' shared state. Every result reaches the model fenced as inert data (`wire.as_tool_data`).
Problems become tool errors the model can read: unknown or malformed arguments, a refused SQL query, a repeated
identical call; nothing a tool does can write to the data.
"""

from __future__ import annotations

import inspect
import json
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from haystack.tools import Tool

from incidentlens.agents.context import InvestigationContext
from incidentlens.agents.wire import MALFORMED_ARGUMENTS, as_tool_data
from incidentlens.analysis.evidence import Evidence
from incidentlens.errors import IncidentLensError
from incidentlens.telemetry import naive_utc

RESULT_CHAR_LIMIT = 2500
LIST_LIMIT = 10
TEXT_LIMIT = 300
EVIDENCE_ROWS = 20


class ToolError(Exception):
    """A problem the model should read and act on; the Agent turns it into an error tool message."""


@dataclass(frozen=True)
class ToolSpec:
    name: str
    description: str
    parameters: dict[str, Any]
    run: Callable[..., tuple[dict[str, Any], dict[str, Any]]]  # -> (payload for the model, state updates)
    outputs_to_state: tuple[str, ...] = ("evidence",)


# --- compact output -------------------------------------------------------------------------------------------------
def compact(value: Any, list_limit: int = LIST_LIMIT, text_limit: int = TEXT_LIMIT) -> Any:
    """Cap lists and strings recursively; a capped list ends with a note of how many items were cut."""
    if isinstance(value, dict):
        return {k: compact(v, list_limit, text_limit) for k, v in value.items()}
    if isinstance(value, list | tuple):
        items = [compact(v, list_limit, text_limit) for v in value[:list_limit]]
        if len(value) > list_limit:
            items.append(f"... {len(value) - list_limit} more cut")
        return items
    if isinstance(value, str) and len(value) > text_limit:
        return value[:text_limit] + f"... ({len(value) - text_limit} chars cut)"
    if isinstance(value, datetime):
        return value.replace(microsecond=0).isoformat() + "Z"
    if isinstance(value, float):
        return float(f"{value:.4g}")
    return value


def pick(rows: list[dict[str, Any]], keys: tuple[str, ...], limit: int = 5) -> list[dict[str, Any]]:
    """The fields a model needs from each row, for the first `limit` rows (the full rows stay in the evidence)."""
    picked = [{k: row[k] for k in keys if row.get(k) is not None} for row in rows[:limit]]
    if len(rows) > limit:
        picked.append({"cut": f"{len(rows) - limit} more, see the evidence"})
    return picked


def bounded(payload: dict[str, Any], limit: int = RESULT_CHAR_LIMIT) -> dict[str, Any]:
    """`payload` compacted until its JSON fits in `limit` characters (tighter caps each round)."""
    list_limit, text_limit = LIST_LIMIT, TEXT_LIMIT
    result = compact(payload, list_limit, text_limit)
    while len(json.dumps(result, default=str)) > limit and list_limit > 1:
        list_limit, text_limit = max(1, list_limit // 2), max(40, text_limit // 2)
        result = compact(payload, list_limit, text_limit)
        result["cut"] = f"result shortened to fit {limit} characters; ask a narrower question for detail"
    return result


# --- the tools ------------------------------------------------------------------------------------------------------
NO_PARAMETERS: dict[str, Any] = {"type": "object", "properties": {}}


def _require_window(ctx: InvestigationContext, view: str | None = None) -> None:
    if view is not None and not ctx.store.has(view):
        raise ToolError(f"no {view} were loaded, so there is nothing to scan")
    if ctx.spans() is None:
        raise ToolError(f"no incident window to examine ({ctx.findings().reason}); nothing to compare")


def _with_evidence(result: Any) -> tuple[Any, list[Evidence]]:
    return result, list(result.evidence)


def load_inputs(ctx: InvestigationContext) -> tuple[dict[str, Any], dict[str, Any]]:
    store = ctx.store
    views: dict[str, Any] = {}
    for view in store.views:
        time_column = "start_ts" if view == "spans" else "ts"
        service = "callee" if view == "calls" else "service"  # call metrics: the services called
        row = store.fetch(
            f"SELECT count(*) AS rows, count(DISTINCT {service}) AS services, min({time_column}) AS first, "
            f"max({time_column}) AS last FROM {view}"
        ).to_pylist()[0]
        views[view] = row
    if store.has("metrics"):
        series = store.fetch(
            "SELECT service || '/' || metric AS series FROM metrics GROUP BY ALL ORDER BY series LIMIT 50"
        ).column("series").to_pylist()
        views["metrics"]["series"] = series
    inputs = {"views": views, "files": [str(p) for p in store.paths], "warnings": list(store.warnings)}
    return inputs, {"inputs": compact(inputs)}


def detect_incident_window(ctx: InvestigationContext, at: str | None = None) -> tuple[dict[str, Any], dict[str, Any]]:
    ignored = at is not None and not ctx.look_near(_parse_time(at, "at"))
    found = ctx.findings()
    detection = found.detection or {}
    payload = {
        **_onset_note(ctx, at if ignored else None, detection.get("undetected"),
                      (found.incident_window or {}).get("start") if detection.get("alert_at") else None),
        "detected": found.detected,
        "reason": found.reason,
        "incident_window": found.incident_window,
        "baseline_window": found.baseline_window,
        "peak": found.peak,
        "first_anomalous": detection.get("first_anomalous"),
        "series": detection.get("series", []),
        "evidence": detection.get("evidence", []),
    }
    return payload, {"incident_window": found.incident_window or {}, "evidence": payload["evidence"]}


def _onset_note(ctx: InvestigationContext, ignored_at: str | None,
                undetected: str | None = None, before_alert: str | None = None) -> dict[str, Any]:
    """How the window's start was found, said to the model (and why its own `at` was not used, if it sent one).
    `before_alert`: the window's start, when it was taken before the alert time (nothing after that could be
    explained)."""
    if undetected and before_alert:
        return {"onset": "before the at time", "start_given": compact(ctx.at),
                "note": f"no incident window was detected at this time ({undetected}) and nothing after it could be "
                        f"explained (nothing moved, or only load): the window runs from {before_alert}, the first "
                        f"minute before it at which something did, to {_window_end(ctx)}"}
    if undetected:
        return {"onset": "the at time", "start_given": compact(ctx.at),
                "note": f"no incident window was detected at this time ({undetected}): the window runs from it to "
                        f"{_window_end(ctx)}"}
    if not ctx.onset_known:
        return {"onset": "detected"}
    note = {"onset": "given", "start_given": compact(ctx.at),
            "note": "the incident's start was given by the user (an alert, an injection, a page): the window runs "
                    f"from it to {_window_end(ctx)} and nothing was detected"}
    if ignored_at is not None:
        note["at_ignored"] = f"'at' {ignored_at!r} was not used: the start is the user's, not the model's to move"
    return note


def _window_end(ctx: InvestigationContext) -> str:
    """Where a known start's window ends, as its detection evidence says (`anchored.window_end`: five metric samples
    after the start over metrics alone, the longest window, the end of the shortest source with the metric samples
    taken in after it, or the end of the data)."""
    cited = ctx.evidence(list((ctx.findings().detection or {}).get("evidence") or []))
    return next((e.data["window_end"] for e in cited if isinstance(e.data, dict) and e.data.get("window_end")),
                "the end of the data")


def sql_investigate(ctx: InvestigationContext, query: str) -> tuple[dict[str, Any], dict[str, Any]]:
    if not isinstance(query, str):
        raise ToolError("argument 'query' must be one SQL SELECT statement, as a string")
    result = ctx.sandbox.run(query)
    data = result.to_dict()
    # evidence keeps about twenty rows, like the engine's own; the query is there to re-run for the rest
    item = Evidence.make("sql", f"SQL: {result.sql[:80]}", result.sql, compact(data, list_limit=EVIDENCE_ROWS))
    ctx.record([item])
    return {**data, "evidence": [item.id]}, {"evidence": [item.id]}


def log_pattern_scan(ctx: InvestigationContext) -> tuple[dict[str, Any], dict[str, Any]]:
    from incidentlens.analysis.shifts import log_surges

    _require_window(ctx, "logs")
    surges = [s.model_dump(mode="json") for s in ctx.step("surges", log_surges) if s.significant]
    ids = list(dict.fromkeys(s["evidence"] for s in surges if s.get("evidence")))
    fields = ("service", "baseline_per_minute", "window_per_minute", "ratio", "onset", "first_problem", "evidence")
    return {"surges": pick(surges, fields), "evidence": ids}, {"evidence": ids}


def contrast_dimensions(ctx: InvestigationContext) -> tuple[dict[str, Any], dict[str, Any]]:
    from incidentlens.analysis.contrast import contrast_logs
    from incidentlens.analysis.shifts import metric_shifts

    _require_window(ctx)
    shifts = [s.model_dump(mode="json") for s in ctx.step("shifts", metric_shifts) if s.significant]
    contributors: list[dict[str, Any]] = []
    if ctx.store.has("logs"):
        result = ctx.step("contrast", lambda store, w, b: _with_evidence(contrast_logs(store, w, b)))
        contributors = [c.model_dump(mode="json") for c in result.contributors]
    ids = list(dict.fromkeys([c["evidence"] for c in contributors if c.get("evidence")]
                             + [s["evidence"] for s in shifts if s.get("evidence")]))
    payload = {
        "contributors": pick(contributors, ("dimension", "value", "window_share", "baseline_share", "lift",
                                            "evidence")),
        "metric_shifts": pick(shifts, ("service", "metric", "direction", "baseline", "peak", "shift", "onset",
                                       "evidence")),
        "evidence": ids,
    }
    return payload, {"evidence": ids}


def surging_templates(ctx: InvestigationContext) -> tuple[dict[str, Any], dict[str, Any]]:
    from incidentlens.analysis.templates import find_templates

    _require_window(ctx, "logs")
    result = ctx.step("templates", lambda store, w, b: _with_evidence(find_templates(store, w, b)))
    templates = [t.model_dump(mode="json", exclude={"samples"}) | {"sample": (t.samples or [None])[0]}
                 for t in result.templates]
    ids = [t["evidence"] for t in templates]
    payload = {"templates": pick(templates, ("template", "status", "count_window", "count_baseline", "first_seen",
                                             "services", "sample", "evidence")),
               "templates_mined": result.templates_mined, "lines": result.lines, "evidence": ids}
    return payload, {"evidence": ids}


def rank_root_causes(ctx: InvestigationContext) -> tuple[dict[str, Any], dict[str, Any]]:
    _require_window(ctx)
    hypotheses = [h.model_dump(mode="json") for h in ctx.findings().hypotheses]
    ids = list(dict.fromkeys(i for h in hypotheses for i in h["supporting"] + h["contradicting"]))
    note = {} if hypotheses else {"note": "no service moved enough to be a candidate"}
    shown = pick(hypotheses, ("service", "kind", "confidence", "mechanism", "test", "test_passed", "independent",
                              "supporting", "contradicting"), limit=3)
    return {"hypotheses": shown, **note, "evidence": ids}, {"hypotheses": hypotheses, "evidence": ids}


def build_timeline(ctx: InvestigationContext) -> tuple[dict[str, Any], dict[str, Any]]:
    _require_window(ctx)
    findings = ctx.findings()
    timeline = list(findings.timeline)
    trigger = findings.trigger
    ids = list(dict.fromkeys([i for entry in timeline for i in entry.get("evidence", [])]
                             + list((trigger or {}).get("evidence", []))))
    shown = pick(timeline, ("t", "event", "evidence"), limit=12)
    return {"trigger": trigger, "timeline": shown, "evidence": ids}, {"evidence": ids}


def test_hypothesis(ctx: InvestigationContext, service: str, kind: str | None = None) -> tuple[dict[str, Any],
                                                                                             dict[str, Any]]:
    """The engine runs a precedence test (as SQL, on the data) for each ranked candidate; this reads it out."""
    _require_window(ctx)
    ranked = [h.model_dump(mode="json") for h in ctx.findings().hypotheses]
    tested = next((h for h in ranked if h["service"] == service), None)
    if tested is None:
        candidates = ", ".join(h["service"] for h in ranked) or "none"
        raise ToolError(f"service {service!r} is not a ranked candidate, so it has no test; candidates: {candidates}")
    tests = [e for e in ctx.evidence(tested["supporting"] + tested["contradicting"]) if e.kind == "hypothesis_test"]
    outcome = {
        "service": service,
        "kind": tested["kind"],
        "asked_kind": kind if kind and kind != tested["kind"] else None,
        "test": tested["test"],
        "passed": tested["test_passed"],
        "supporting": tested["supporting"],
        "contradicting": tested["contradicting"],
        "key_facts": [fact for e in tests for fact in _key_facts(e.data)],
    }
    ids = list(dict.fromkeys(tested["supporting"] + tested["contradicting"]))
    others = [h for h in ranked if h["service"] != service]
    return {**outcome, "evidence": ids}, {"hypotheses": [tested, *others], "evidence": ids}


def propose_mitigations(ctx: InvestigationContext) -> tuple[dict[str, Any], dict[str, Any]]:
    from incidentlens.report.playbooks import mitigations_for, runbook_for

    findings = ctx.findings()
    top = findings.hypotheses[0] if findings.hypotheses else None
    kind, service = (top.kind, top.service) if top else ("unknown", _first_service(ctx))
    evidence = top.supporting if top else []
    demand_rose = bool(top and top.demand_rose)
    actions = [a.model_dump(mode="json") for a in mitigations_for(kind, [service], evidence, demand_rose=demand_rose)]
    # the runbook and owners go to the review from the playbook; the coordinator needs what will be done, by priority
    payload = {"for": {"service": service, "kind": kind},
               "actions": pick(actions, ("priority", "type", "description")),
               "runbook_steps": len(runbook_for(kind, service, demand_rose=demand_rose))}
    return payload, {"mitigation_plan": actions, "evidence": evidence}


def draft_postmortem(ctx: InvestigationContext, narrative: dict[str, str] | None = None) -> tuple[dict[str, Any],
                                                                                                dict[str, Any]]:
    from incidentlens.report.build import NARRATIVE_SECTIONS, build_postmortem

    narrative = narrative or {}
    if not isinstance(narrative, dict) or not all(isinstance(v, str) for v in narrative.values()):
        raise ToolError("argument 'narrative' must map section names to text, e.g. {\"summary\": \"...\"}")
    unknown = sorted(set(narrative) - set(NARRATIVE_SECTIONS))
    if unknown:
        raise ToolError(f"unknown sections {', '.join(unknown)}; sections are {', '.join(NARRATIVE_SECTIONS)}")
    ctx.draft_attempts += 1
    pm = build_postmortem(ctx.analysis(), narrative, ctx.generated_by)
    verdicts = pm.narratives()  # every prose section, impact, detection and recovery included
    rejected = {name: list(verdicts[name].rejected) for name in narrative
                if name in verdicts and verdicts[name].rejected}
    # a section the review does not hold (no root cause named: no root-cause prose) is not kept either
    accepted = [name for name in narrative if name not in rejected and name in verdicts]
    # what passed is kept at once, so a writer that never comes back still leaves its grounded sections
    ctx.narrative = {**ctx.narrative, **{name: narrative[name] for name in accepted}}
    if not rejected:
        status = "accepted"
    elif ctx.draft_attempts == 1:
        status = "retry"
    else:
        status = "fallback"
    payload = {
        "status": status,
        "attempt": ctx.draft_attempts,
        "accepted": accepted,
        "rejected": rejected,
        "template_sections": [s for s in NARRATIVE_SECTIONS if s not in accepted],
        "title": pm.title,
        "severity": pm.severity,
    }
    if status == "retry":
        payload["instruction"] = ("rewrite the rejected sections using only numbers and times from the evidence, "
                                  "or leave them out; this is the one retry, after it they fall back to the template")
    return payload, {"postmortem": {k: payload[k] for k in ("status", "accepted", "template_sections", "title")}}


def _key_facts(data: Any) -> list[str]:
    if not isinstance(data, dict):
        return []
    facts = [f"onset of {name}: {t}" for name, t in (data.get("onsets") or {}).items() if t]
    if "lead_minutes" in data:
        facts.append(f"lead over the first dependent: {data['lead_minutes']} min")
    return facts


def _first_service(ctx: InvestigationContext) -> str:
    series = (ctx.findings().detection or {}).get("series") or []
    return series[0]["series"].split("/")[0] if series else "the affected service"


def _span_dict(span: tuple[datetime, datetime]) -> dict[str, str]:
    return {"start": compact(span[0]), "end": compact(span[1])}


def _parse_time(text: Any, name: str) -> datetime:
    try:
        moment = datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    except ValueError as err:
        raise ToolError(f"argument {name!r}: cannot read {text!r} as an ISO-8601 time") from err
    return naive_utc(moment)


TOOL_SPECS: dict[str, ToolSpec] = {
    spec.name: spec
    for spec in (
        ToolSpec("load_inputs", "List what was loaded: views, row counts, services, metric series, time range.",
                 NO_PARAMETERS, load_inputs, ("inputs",)),
        ToolSpec("detect_incident_window",
                 "Find the incident window (robust detector over every metric series) and a clean baseline before "
                 "it. Optional 'at': an ISO time the incident is near. When the brief gives the incident's start, "
                 "the window starts there and 'at' is not used.",
                 {"type": "object", "properties": {"at": {"type": "string", "description": "ISO-8601 UTC time"}}},
                 detect_incident_window, ("incident_window", "evidence")),
        ToolSpec("sql_investigate",
                 "Run ONE read-only SQL SELECT (DuckDB dialect) over the views metrics(ts, service, metric, value, "
                 "pod: a replica's name, or NULL; each pod's samples are a series of their own), "
                 "logs(ts, service, level, message, ...), spans, events, calls(ts, caller, callee, side, "
                 "latency_ms) when given. Aggregate; rows are capped.",
                 {"type": "object", "properties": {"query": {"type": "string"}}, "required": ["query"]},
                 sql_investigate),
        ToolSpec("log_pattern_scan", "Per service: WARN/ERROR log volume in the window against the baseline.",
                 NO_PARAMETERS, log_pattern_scan),
        ToolSpec("contrast_dimensions",
                 "Which dimension values (region, version, host, ...) are over-represented in the window's problem "
                 "logs, and which metrics shifted, per service.", NO_PARAMETERS, contrast_dimensions),
        ToolSpec("surging_templates", "Log message templates (Drain) new or surging in the window, with a sample.",
                 NO_PARAMETERS, surging_templates),
        ToolSpec("rank_root_causes",
                 "Rank candidate root-cause services with confidence, mechanism, evidence and a precedence test.",
                 NO_PARAMETERS, rank_root_causes, ("hypotheses", "evidence")),
        ToolSpec("build_timeline", "The incident timeline and the trigger (deploy/config change) if any.",
                 NO_PARAMETERS, build_timeline),
        ToolSpec("test_hypothesis",
                 "Falsification test for 'service is the root cause': does it move before the services depending "
                 "on it? Runs SQL on the data.",
                 {"type": "object", "properties": {"service": {"type": "string"}, "kind": {"type": "string"}},
                  "required": ["service"]},
                 test_hypothesis, ("hypotheses", "evidence")),
        ToolSpec("propose_mitigations", "Mitigation, prevention and detection actions for the leading hypothesis.",
                 NO_PARAMETERS, propose_mitigations, ("mitigation_plan", "evidence")),
        ToolSpec("draft_postmortem",
                 "Submit narrative prose per section (summary, impact, root_cause, detection, response, recovery, "
                 "lessons). Each section is grounding-checked: every number and time must come from the evidence. "
                 "Rejected sections come back once with reasons; after that they fall back to the template.",
                 {"type": "object", "properties": {"narrative": {
                     "type": "object", "additionalProperties": {"type": "string"}}}},
                 draft_postmortem, ("postmortem",)),
    )
}


class _Guard:
    """Runs one tool for one agent: checks arguments, refuses repeats, turns failures into readable tool errors."""

    def __init__(self, ctx: InvestigationContext, spec: ToolSpec) -> None:
        self.ctx = ctx
        self.spec = spec
        self.seen: set[str] = set()
        self.signature = inspect.signature(spec.run)
        self._lock = threading.Lock()  # the calls of one step run in parallel threads

    def __call__(self, **arguments: Any) -> dict[str, Any]:
        if MALFORMED_ARGUMENTS in arguments:
            raw = arguments[MALFORMED_ARGUMENTS]
            raise ToolError(f"{self.spec.name}: the arguments were not valid JSON ({raw!r}); "
                            f"send one JSON object with {self._expected()}")
        try:
            self.signature.bind(self.ctx, **arguments)
        except TypeError as err:
            raise ToolError(f"{self.spec.name}: bad arguments ({err}); expected {self._expected()}") from err
        key = json.dumps(arguments, sort_keys=True, default=str)
        with self._lock:
            repeated = key in self.seen
            self.seen.add(key)
        if repeated:
            raise ToolError(f"{self.spec.name} was already called with these arguments; its result is above. "
                            "Use it, call another tool, or finish.")
        try:
            payload, state = self.spec.run(self.ctx, **arguments)
        except ToolError:
            raise
        except IncidentLensError as err:
            raise ToolError(str(err)) from err
        except Exception as err:
            detail = " ".join(str(err).split())[:300]
            raise ToolError(f"{self.spec.name} failed: {type(err).__name__}: {detail}") from err
        return {"for_model": as_tool_data(self.spec.name, bounded(payload)), **state}

    def _expected(self) -> str:
        properties = self.spec.parameters.get("properties", {})
        return ", ".join(properties) if properties else "no arguments"


def build_tools(ctx: InvestigationContext, names: list[str]) -> list[Tool]:
    """Haystack tools for one agent (each with its own repeat memory), in the order given."""
    unknown = [n for n in names if n not in TOOL_SPECS]
    if unknown:
        raise ValueError(f"unknown tools: {', '.join(unknown)}")
    return [
        Tool(
            name=spec.name,
            description=spec.description,
            parameters=spec.parameters,
            function=_Guard(ctx, spec),
            outputs_to_string={"source": "for_model"},
            outputs_to_state={key: {"source": key} for key in spec.outputs_to_state},
        )
        for spec in (TOOL_SPECS[name] for name in names)
    ]
