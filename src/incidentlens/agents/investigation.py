"""`investigate()`: run the agent team on a store and hand its result to the report.

Whatever the model does (wanders, fails, runs out of steps), the investigation ends with a postmortem built from the
evidence engine's analysis plus every piece of evidence the agents gathered, with the narrative sections the
writer got through the grounding check. `generated_by` says which brain ran, what it was asked (model requests, HTTP
requests, tool calls by the model and by the planner, tokens) and whether it degraded: a model that made no tool
call, or was replaced by the offline planner, leaves a degraded run, with the reason.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from haystack.dataclasses import ChatMessage

from incidentlens.agents.brains import (
    DEFAULT_MODEL,
    BrainHealth,
    ModelBudget,
    RetryPolicy,
    make_generator,
    resolve_brain,
)
from incidentlens.agents.context import InvestigationContext
from incidentlens.agents.planner import PLANNER_MODEL, ROLES, final_answer
from incidentlens.agents.team import build_team
from incidentlens.agents.trace import TraceRecorder
from incidentlens.analysis.anchored import check_onset, known_window, window_end

logger = logging.getLogger(__name__)


@dataclass
class InvestigationResult:
    postmortem: Any  # report.Postmortem
    analysis: Any  # analysis.AnalysisResult, with the agents' extra evidence
    generated_by: dict[str, Any]
    brain: str  # which brain ran, in words
    tokens: dict[str, int]
    model_calls: int
    steps: int
    exit_reason: str
    answer: str
    state: dict[str, Any] = field(default_factory=dict)
    degraded_reason: str | None = None
    trace: list[dict[str, Any]] = field(default_factory=list)
    trace_path: Path | None = None


def investigate(
    store: Any,
    llm: str = "auto",
    model: str | None = DEFAULT_MODEL,
    llm_url: str | None = None,
    max_steps: int = 30,
    at: datetime | None = None,
    trace_path: Path | None = None,
    *,
    retry: RetryPolicy | None = None,
    budget: ModelBudget | None = None,
    detector: str = "robust",
    onset: str = "detect",
    service_hint: str | None = None,
    sensitivity: str | None = None,
) -> InvestigationResult:
    """Investigate the incident in `store` with the agent team on the chosen brain; see the module docstring.

    `onset="at"`: `at` is the incident's known start (an alert, an injection, a page), as in `analyze(onset="at")`:
    the window runs from it, the baseline is everything before it, and no agent can move it or switch detection
    back on. `onset="at"` without `at` is an InputError. `service_hint` (an alert's service label) is told to the
    coordinator as a lead to test, never as the answer. `sensitivity`: the detector's (`detection.settings_for`)."""
    from incidentlens.report.build import build_postmortem

    check_onset(onset, at)
    brief = ChatMessage.from_user(_brief(store, at, onset) + _hint(service_hint))  # a start outside the data: refused
    choice = resolve_brain(llm, model, llm_url)
    health = BrainHealth()
    generators = {role: make_generator(choice, role, health, retry, budget) for role in ROLES}
    ctx = InvestigationContext(store, at=at, detector=detector, onset=onset, sensitivity=sensitivity)
    ctx.generated_by = {"llm": choice.llm, "model": choice.model, "degraded": False}
    coordinator = build_team(ctx, generators, max_steps=max_steps)
    recorder = TraceRecorder(trace_path)
    output: dict[str, Any] = {}
    try:
        with recorder.installed():
            output = coordinator.run(messages=[brief], evidence=[], hypotheses=[])
    except Exception as error:  # the report must still be written from the evidence gathered
        logger.warning("the agent run failed, writing the report from the evidence gathered: %s", error)
        health.give_up(f"agent run failed: {type(error).__name__}")
        output = {"exit_reason": "error"}
    finally:
        ctx.close()
    ctx.generated_by.update(_usage(choice.llm, health, recorder))
    analysis = ctx.analysis()
    postmortem = build_postmortem(analysis, ctx.narrative or None, ctx.generated_by)
    return InvestigationResult(
        postmortem=postmortem,
        analysis=analysis,
        generated_by=dict(ctx.generated_by),
        brain=choice.describe(),
        tokens=dict(recorder.tokens),
        model_calls=recorder.model_calls,
        steps=int(output.get("step_count") or 0),
        exit_reason=str(output.get("exit_reason")),
        answer=_answer(output, max_steps),
        state={key: output.get(key) for key in ("incident_window", "evidence", "hypotheses", "mitigation_plan",
                                                 "postmortem")},
        degraded_reason=ctx.generated_by["degraded_reason"],
        trace=list(recorder.lines),
        trace_path=trace_path,
    )


def _usage(llm: str, health: BrainHealth, recorder: TraceRecorder) -> dict[str, Any]:
    """What the run asked of the model and of the planner, and whether it degraded (why)."""
    calls = [line for line in recorder.lines if line.get("tool")]
    by_planner = sum(1 for line in calls if line.get("model") in (None, PLANNER_MODEL))
    by_model = len(calls) - by_planner
    reason = health.reason
    if llm != "offline" and reason is None and by_model == 0:
        reason = ("the model made no tool call (it answered in text only), so the review comes from the evidence "
                  "engine alone")
    return {"degraded": reason is not None, "degraded_reason": reason, "model_requests": health.model_requests,
            "http_requests": health.http_requests, "model_tool_calls": by_model, "planner_tool_calls": by_planner,
            "tokens": dict(recorder.tokens)}


def _brief(store: Any, at: datetime | None, onset: str = "detect") -> str:
    views = f"in the loaded telemetry (views: {', '.join(store.views)})"
    if onset == "at" and at is not None:
        known = known_window(store, at)
        return (f"Investigate the incident {views}. Its start is known: {at.isoformat()}Z, given by the user (an "
                f"alert, an injection, a page), not detected; the window runs from it to "
                f"{window_end(store, known.window, known.first_sample)} "
                "and the baseline is everything before it. Find the root cause with evidence, mitigations, and have "
                "the postmortem drafted.")
    near = f" near {at.isoformat()}Z" if at else ""
    return (f"Investigate the incident{near} {views}. "
            "Find the window, the root cause with evidence, mitigations, and have the postmortem drafted.")


def _hint(service: str | None) -> str:
    if not service:
        return ""
    return (f" The alert names the service {service!r}: a lead to test against the evidence, not a conclusion (the "
            "alerting service is often a victim of the cause).")


def _answer(output: dict[str, Any], max_steps: int) -> str:
    last = output.get("last_message")
    if output.get("exit_reason") == "max_agent_steps":
        return (f"The step budget ({max_steps}) ran out before the team finished; the report is built from the "
                "evidence gathered so far. " + final_answer("coordinator", output.get("messages") or []))
    if last is not None and last.text:
        return last.text
    if output.get("messages"):  # ended by delegating to the writer: the answer is told from the transcript
        return final_answer("coordinator", output["messages"])
    return "The team ended without a final answer; the report is built from the evidence gathered."
