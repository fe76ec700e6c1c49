"""The offline brain: a deterministic planner that plays the model's part in the same Agent loop.

`OfflinePlanner` is a real Haystack chat generator (`run(messages, ..., tools=...)`, `to_dict`/`from_dict`). It is
stateless: each call reads the transcript (which tools ran, what they returned, what failed) and decides the next
tool call from a runbook written in code, or gives the final answer when the runbook is done. It only calls tools
it was handed, always sets ToolCall ids, and never repeats a call, so the same tools, delegation, state and
tracing run with no model at all, and a model that fails mid-run can hand its transcript over to it.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from haystack import component, default_from_dict, default_to_dict
from haystack.dataclasses import ChatMessage, ChatRole, ToolCall
from haystack.tools import flatten_tools_or_toolsets

from incidentlens.agents.wire import find_json_block, read_tool_data

PROFILER = "profiler_specialist"
WRITER = "postmortem_writer_specialist"
ROLES = ("coordinator", "profiler", "writer")
PLANNER_MODEL = "offline-planner"


@dataclass
class Transcript:
    """What a conversation so far tells the planner: the brief, and each tool's results (payload or error)."""

    brief: str = ""
    results: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    texts: dict[str, str] = field(default_factory=dict)
    steps: int = 0
    handed: dict[str, Any] = field(default_factory=dict)  # the facts of the latest delegation to a specialist

    @classmethod
    def read(cls, messages: list[ChatMessage]) -> Transcript:
        transcript = cls()
        for message in messages:
            if message.is_from(ChatRole.USER) and not transcript.brief:
                transcript.brief = message.text or ""
            elif message.is_from(ChatRole.ASSISTANT):
                transcript.steps += 1
                transcript.handed = _delegated_facts(message) or transcript.handed
            elif message.is_from(ChatRole.TOOL) and message.tool_call_result is not None:
                outcome = message.tool_call_result
                name = outcome.origin.tool_name
                payload = None if outcome.error else read_tool_data(outcome.result)
                # tools and specialists always answer in a data fence: anything else is an error message, even
                # where the error flag was lost on the way (an OpenAI-format transcript has none)
                failed = bool(outcome.error) or payload is None
                text = (payload or {}).get("answer", outcome.result)
                transcript.results.setdefault(name, []).append(
                    {"error": failed, "payload": payload or {}, "text": text}
                )
        return transcript

    def attempted(self, tool: str) -> bool:
        return tool in self.results

    def latest(self, tool: str) -> dict[str, Any]:
        """The payload of the last successful call of `tool` ({} when there is none)."""
        for outcome in reversed(self.results.get(tool, [])):
            if not outcome["error"]:
                return outcome["payload"]
        return {}

    def latest_text(self, tool: str) -> str:
        for outcome in reversed(self.results.get(tool, [])):
            if not outcome["error"]:
                return outcome["text"]
        return ""

    @property
    def window(self) -> dict[str, str] | None:
        return self.latest("detect_incident_window").get("incident_window")

    @property
    def has_logs(self) -> bool:
        views = self.latest("load_inputs").get("views")
        return views is None or "logs" in views


def _delegated_facts(message: ChatMessage) -> dict[str, Any] | None:
    """The facts block an assistant message handed a specialist, if it delegated."""
    for call in message.tool_calls:
        if call.tool_name in (PROFILER, WRITER):
            brief = ((call.arguments.get("messages") or [{}])[0] or {}).get("content")
            return find_json_block(brief if isinstance(brief, str) else None)
    return None


Step = tuple[str, Callable[[Transcript], bool], Callable[[Transcript], dict[str, Any]]]


def _always(_: Transcript) -> bool:
    return True


def _no_arguments(_: Transcript) -> dict[str, Any]:
    return {}


def _found(t: Transcript) -> bool:
    return t.window is not None


def _found_with_logs(t: Transcript) -> bool:
    return t.window is not None and t.has_logs


def _sql_timestamp(iso: str) -> str:
    return f"TIMESTAMP '{iso.rstrip('Z').replace('T', ' ')[:19]}'"


def _window_sql(t: Transcript) -> dict[str, Any]:
    """A first look inside the window: which services and levels spoke most (logs), else which series moved."""
    window = t.window or {}
    start, end = _sql_timestamp(window["start"]), _sql_timestamp(window["end"])
    if t.has_logs:
        query = (
            "SELECT service, level, count(*) AS lines FROM logs "
            f"WHERE ts >= {start} AND ts <= {end} GROUP BY service, level ORDER BY lines DESC LIMIT 20"
        )
    else:
        query = (
            "SELECT service, metric, min(value) AS low, avg(value) AS mean, max(value) AS high FROM metrics "
            f"WHERE ts >= {start} AND ts <= {end} GROUP BY service, metric ORDER BY service, metric LIMIT 40"
        )
    return {"query": query}


HYPOTHESIS_FACTS = ("service", "kind", "confidence", "mechanism", "test", "test_passed")
SERIES_FACTS = ("series", "direction", "baseline", "peak", "onset")
CONTRIBUTOR_FACTS = ("dimension", "value", "window_share", "baseline_share", "evidence")


def _facts(t: Transcript) -> dict[str, Any]:
    """The compact facts a coordinator hands a specialist: window, leading hypotheses, contributors, trigger."""
    detection = t.latest("detect_incident_window")
    facts: dict[str, Any] = {
        "incident_window": detection.get("incident_window"),
        "series": [{k: row[k] for k in SERIES_FACTS if k in row} for row in detection.get("series", [])[:3]],
        "hypotheses": [{k: h[k] for k in HYPOTHESIS_FACTS if k in h}
                       for h in t.latest("rank_root_causes").get("hypotheses", [])[:2] if "service" in h],
        "contributors": [{k: row[k] for k in CONTRIBUTOR_FACTS if k in row}
                         for row in t.latest("contrast_dimensions").get("contributors", [])[:3]],
        # a shortened result ends its lists with a "... N more cut" note, not a row
        "templates": [row.get("template") for row in t.latest("surging_templates").get("templates", [])[:3]
                      if isinstance(row, dict)],
        "trigger": t.latest("build_timeline").get("trigger"),
    }
    return {key: value for key, value in facts.items() if value}


def _delegate(task: str) -> Callable[[Transcript], dict[str, Any]]:
    def arguments(t: Transcript) -> dict[str, Any]:
        # results already handed to a specialist may reach a model shortened to their ids: their facts carry on
        handed = {key: value for key, value in t.handed.items() if key != "profiler_findings"}
        facts = {**handed, **_facts(t)}
        if PROFILER in t.results:
            facts["profiler_findings"] = t.latest_text(PROFILER)[:800]
        block = json.dumps(facts, default=str, separators=(",", ":"))
        content = f"{task}\n\nFacts gathered so far:\n```json\n{block}\n```"
        return {"messages": [{"role": "user", "content": content}]}

    return arguments


# A runbook is a list of stages; the tools of one stage are independent of each other, so they are requested in one
# assistant message and run in parallel (fewer model round trips, a shorter transcript to resend).
COORDINATOR_RUNBOOK: list[list[Step]] = [
    [("load_inputs", _always, _no_arguments), ("detect_incident_window", _always, _no_arguments)],
    [
        ("sql_investigate", _found, _window_sql),
        ("log_pattern_scan", _found_with_logs, _no_arguments),
        ("contrast_dimensions", _found, _no_arguments),
        ("surging_templates", _found_with_logs, _no_arguments),
        ("rank_root_causes", _found, _no_arguments),
        ("build_timeline", _found, _no_arguments),
    ],
    [
        (PROFILER, _always, _delegate(
            "Turn this evidence into one falsifiable hypothesis about the root cause, test it, and list the key facts."
        )),
        ("propose_mitigations", _always, _no_arguments),
    ],
    [(WRITER, _always, _delegate(
        "Draft the postmortem narrative from this evidence; every number and time must come from the evidence."
    ))],
]


def _top_hypothesis(t: Transcript) -> dict[str, Any] | None:
    ranked = t.latest("rank_root_causes").get("hypotheses") or (find_json_block(t.brief) or {}).get("hypotheses")
    return ranked[0] if ranked else None


def _test_arguments(t: Transcript) -> dict[str, Any]:
    top = _top_hypothesis(t) or {}
    return {"service": top.get("service"), "kind": top.get("kind")}


def _brief_lacks_hypotheses(t: Transcript) -> bool:
    return not (find_json_block(t.brief) or {}).get("hypotheses")


PROFILER_RUNBOOK: list[list[Step]] = [
    [("rank_root_causes", _brief_lacks_hypotheses, _no_arguments)],
    [("test_hypothesis", lambda t: _top_hypothesis(t) is not None, _test_arguments)],
]


def _narrative(t: Transcript) -> dict[str, Any]:
    """The root cause told from the handed-over facts (mechanism and its test); the other sections stay with the
    template, which already says them from the evidence. The grounding check has the last word."""
    facts = find_json_block(t.brief) or {}
    hypotheses = facts.get("hypotheses") or []
    if not hypotheses or not hypotheses[0].get("mechanism"):
        return {"narrative": {}}
    top = hypotheses[0]
    text = top["mechanism"].rstrip(".") + "."
    if top.get("test"):
        verdict = {True: "it held", False: "it failed"}.get(top.get("test_passed"), "it was undecided")
        text += f" Falsification test: {top['test']}; {verdict}."
    return {"narrative": {"root_cause": text}}


def _retry_narrative(t: Transcript) -> dict[str, Any]:
    """Send the draft back once without the sections the grounding check rejected: those fall back to template."""
    first = _narrative(t)["narrative"]
    rejected = t.latest("draft_postmortem").get("rejected", {})
    return {"narrative": {name: text for name, text in first.items() if name not in rejected}}


def _draft_needs_retry(t: Transcript) -> bool:
    return len(t.results.get("draft_postmortem", [])) == 1 and t.latest("draft_postmortem").get("status") == "retry"


WRITER_RUNBOOK: list[list[Step]] = [
    [("draft_postmortem", _always, _narrative)],
]


def _coordinator_answer(t: Transcript) -> str:
    detection = t.latest("detect_incident_window")
    if not detection.get("incident_window"):
        reason = detection.get("reason") or "detection did not run"
        return f"No incident window was found ({reason}). The postmortem records what was checked."
    top = (t.latest("rank_root_causes").get("hypotheses") or [{}])[0]
    window = detection["incident_window"]
    lines = [f"Incident window {window['start']} to {window['end']}."]
    if top:
        lines.append(f"Leading hypothesis: {top.get('service')} {top.get('kind')} ({top.get('mechanism', '')}).")
    draft = t.latest_text(WRITER)
    if draft:
        lines.append(draft.split("\n")[0])
    return " ".join(lines)


def _profiler_answer(t: Transcript) -> str:
    top = _top_hypothesis(t)
    if top is None:
        ranking = (t.results.get("rank_root_causes") or [{}])[-1]
        why = ranking.get("text") if ranking.get("error") else "the ranking found no candidate cause in the evidence"
        return f"No falsifiable hypothesis could be formed: {why}"
    test = t.latest("test_hypothesis")
    lines = [
        f"Hypothesis: {top.get('mechanism') or top.get('kind')} (service {top.get('service')}, kind {top.get('kind')},"
        f" confidence {top.get('confidence')}).",
        f"Falsifiable test: {test.get('test', 'not run')} -> {'passed' if test.get('passed') else 'not passed'}.",
        "Key facts: " + "; ".join(str(fact) for fact in test.get("key_facts", [])[:5]),
        "Evidence: " + ", ".join(test.get("supporting", []) + top.get("evidence", [])[:5]),
    ]
    return "\n".join(lines)


def _writer_answer(t: Transcript) -> str:
    draft = t.latest("draft_postmortem")
    if not draft:
        return "The postmortem could not be drafted; the report falls back to the template for every section."
    accepted = ", ".join(draft.get("accepted", [])) or "none"
    fallback = ", ".join(draft.get("template_sections", [])) or "none"
    return f"Postmortem drafted. Sections written by the writer: {accepted}. Sections from the template: {fallback}."


RUNBOOKS: dict[str, tuple[list[list[Step]], Callable[[Transcript], str]]] = {
    "coordinator": (COORDINATOR_RUNBOOK, _coordinator_answer),
    "profiler": (PROFILER_RUNBOOK, _profiler_answer),
    "writer": (WRITER_RUNBOOK, _writer_answer),
}


def next_move(role: str, messages: list[ChatMessage], tool_names: set[str]) -> ChatMessage:
    """The planner's decision for `role` given the transcript: the next runbook stage's tool calls, or the answer."""
    transcript = Transcript.read(messages)
    runbook, answer = RUNBOOKS[role]
    if role == "writer" and "draft_postmortem" in tool_names and _draft_needs_retry(transcript):
        return _calls([("draft_postmortem", _retry_narrative(transcript))], role, transcript)
    for stage in runbook:
        due = [(tool, arguments(transcript)) for tool, ready, arguments in stage
               if tool in tool_names and not transcript.attempted(tool) and ready(transcript)]
        if due:
            return _calls(due, role, transcript)
    return ChatMessage.from_assistant(answer(transcript), meta=_meta("stop"))


def final_answer(role: str, messages: list[ChatMessage]) -> str:
    """What `role` would answer now, from the transcript so far (e.g. when a step budget ran out)."""
    return RUNBOOKS[role][1](Transcript.read(messages))


def _calls(due: list[tuple[str, dict[str, Any]]], role: str, transcript: Transcript) -> ChatMessage:
    step = transcript.steps + 1
    calls = [ToolCall(tool_name=tool, arguments=arguments, id=f"offline-{role}-{step}-{i}")
             for i, (tool, arguments) in enumerate(due, 1)]
    return ChatMessage.from_assistant(tool_calls=calls, meta=_meta("tool_calls"))


def _meta(finish_reason: str) -> dict[str, Any]:
    return {
        "model": PLANNER_MODEL,
        "finish_reason": finish_reason,
        "usage": {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0},
    }


@component
class OfflinePlanner:
    """A chat generator with no model behind it: see the module docstring."""

    def __init__(self, role: str = "coordinator") -> None:
        if role not in ROLES:
            raise ValueError(f"unknown planner role {role!r}; expected one of {', '.join(ROLES)}")
        self.role = role

    def to_dict(self) -> dict[str, Any]:
        return default_to_dict(self, role=self.role)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> OfflinePlanner:
        return default_from_dict(cls, data)

    @component.output_types(replies=list[ChatMessage])
    def run(
        self,
        messages: list[ChatMessage],
        streaming_callback: Any = None,
        generation_kwargs: dict[str, Any] | None = None,
        *,
        tools: Any = None,
        tools_strict: bool | None = None,
    ) -> dict[str, list[ChatMessage]]:
        tool_names = {t.name for t in flatten_tools_or_toolsets(tools)} if tools else set()
        return {"replies": [next_move(self.role, messages, tool_names)]}
