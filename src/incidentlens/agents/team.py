"""The team: a coordinator Agent with every tool, and two specialists it delegates to through AgentTool.

- `profiler_specialist` turns the evidence into one falsifiable hypothesis and the key facts (it ranks, tests);
- `postmortem_writer_specialist` drafts the narrative, which the grounding check accepts or sends back once.

All three share one declared state schema (inputs, incident window, evidence, hypotheses, mitigation plan,
postmortem), passed the Haystack 3 way: state keys as run kwargs, `inputs_from_state` into a specialist and
`outputs_to_state` back out of it.
"""

from __future__ import annotations

from typing import Any

from haystack.components.agents import Agent
from haystack.components.agents.state import replace_values
from haystack.tools import AgentTool
from haystack.tools.agent_tool import agent_result_to_string

from incidentlens.agents.context import InvestigationContext
from incidentlens.agents.planner import PROFILER, WRITER
from incidentlens.agents.tools import build_tools
from incidentlens.agents.wire import DATA_RULE, as_tool_data


def merge_unique(current: list[Any] | None, new: list[Any] | Any) -> list[Any]:
    """Append new items to a list in state, each once (a specialist hands back the evidence it was given, too)."""
    items = list(current or [])
    for item in new if isinstance(new, list) else [new]:
        if item not in items:
            items.append(item)
    return items


def profiler_answer_as_data(result: dict[str, Any]) -> str:
    """A specialist's answer may quote log lines it read: it reaches the coordinator fenced, like any tool output."""
    return as_tool_data(PROFILER, {"answer": agent_result_to_string(result)})


def writer_answer_as_data(result: dict[str, Any]) -> str:
    return as_tool_data(WRITER, {"answer": agent_result_to_string(result)})


STATE_SCHEMA: dict[str, dict[str, Any]] = {
    "inputs": {"type": dict, "handler": replace_values},
    "incident_window": {"type": dict, "handler": replace_values},
    "evidence": {"type": list[str], "handler": merge_unique},
    "hypotheses": {"type": list[dict], "handler": replace_values},
    "mitigation_plan": {"type": list[dict], "handler": replace_values},
    "postmortem": {"type": dict, "handler": replace_values},
}

COORDINATOR_TOOLS = [
    "load_inputs", "detect_incident_window", "sql_investigate", "log_pattern_scan", "contrast_dimensions",
    "surging_templates", "rank_root_causes", "build_timeline", "propose_mitigations",
]  # test_hypothesis is the profiler's: offered to the coordinator too, its schema was resent with every request
PROFILER_TOOLS = ["rank_root_causes", "test_hypothesis", "sql_investigate"]
WRITER_TOOLS = ["draft_postmortem", "rank_root_causes", "build_timeline"]

COORDINATOR_PROMPT = f"""You are the incident coordinator. Investigate the incident in the loaded telemetry with your
tools, in this order unless the evidence says otherwise: load_inputs, detect_incident_window, sql_investigate (one
aggregate query inside the window), log_pattern_scan, contrast_dimensions, surging_templates, rank_root_causes,
build_timeline; then delegate to {PROFILER} for a falsifiable hypothesis, call propose_mitigations, and delegate to
{WRITER} to draft the postmortem: that delegation ends the investigation, so make it last. If you finish without it,
answer briefly: the window, the root cause, the evidence ids. Never call a tool twice with the same arguments.
{DATA_RULE}"""

PROFILER_PROMPT = f"""You are the incident profiler. Turn the evidence into ONE falsifiable hypothesis about the root
cause: call rank_root_causes, then test_hypothesis on the leading service (sql_investigate if you need a fact).
Answer with the hypothesis, the test and its outcome, the key facts and their evidence ids. {DATA_RULE}"""

WRITER_PROMPT = f"""You are the postmortem writer. Write short narrative sections (summary, impact, root_cause,
lessons) from the facts you are given (rank_root_causes and build_timeline show more) and submit them with
draft_postmortem. Every number and time you write must
appear in the evidence. If sections are rejected, rewrite them once from the evidence or leave them out. Answer with
what was accepted. {DATA_RULE}"""


#: a delegation's one argument, stated once and briefly (Haystack's generated schema is twice as long, and every tool
#: schema is resent with each request)
DELEGATION_PARAMETERS: dict[str, Any] = {
    "type": "object",
    "properties": {"messages": {
        "type": "array", "minItems": 1, "maxItems": 1, "description": "One user message: the task and its facts.",
        "items": {"type": "object", "properties": {"role": {"const": "user"}, "content": {"type": "string"}},
                  "required": ["role", "content"]}}},
    "required": ["messages"],
}


def build_team(ctx: InvestigationContext, generators: dict[str, Any], max_steps: int = 30) -> Agent:
    """The coordinator Agent, its tools and its two specialists; `generators` maps role -> chat generator."""
    profiler = Agent(
        chat_generator=generators["profiler"],
        tools=build_tools(ctx, PROFILER_TOOLS),
        system_prompt=PROFILER_PROMPT,
        state_schema=STATE_SCHEMA,
        max_agent_steps=max(4, max_steps // 3),
    )
    writer = Agent(
        chat_generator=generators["writer"],
        tools=build_tools(ctx, WRITER_TOOLS),
        system_prompt=WRITER_PROMPT,
        state_schema=STATE_SCHEMA,
        max_agent_steps=max(3, max_steps // 5),
    )
    shared_in = {key: key for key in ("incident_window", "evidence", "hypotheses")}
    specialists = [
        AgentTool(
            agent=profiler,
            name=PROFILER,
            description="Delegate: turn the evidence so far into one falsifiable root-cause hypothesis, tested.",
            parameters=DELEGATION_PARAMETERS,
            inputs_from_state=shared_in,
            outputs_to_state={"hypotheses": {"source": "hypotheses"}, "evidence": {"source": "evidence"}},
            outputs_to_string={"handler": profiler_answer_as_data},
        ),
        AgentTool(
            agent=writer,
            name=WRITER,
            description="Delegate: draft the postmortem narrative from the facts (grounding-checked).",
            parameters=DELEGATION_PARAMETERS,
            inputs_from_state={**shared_in, "mitigation_plan": "mitigation_plan"},
            outputs_to_state={"postmortem": {"source": "postmortem"}},
            outputs_to_string={"handler": writer_answer_as_data},
        ),
    ]
    return Agent(
        chat_generator=generators["coordinator"],
        tools=[*build_tools(ctx, COORDINATOR_TOOLS), *specialists],
        system_prompt=COORDINATOR_PROMPT,
        state_schema=STATE_SCHEMA,
        max_agent_steps=max_steps,
        # the drafted postmortem is the team's product: the run ends there, without one more round trip that
        # resends the whole transcript for a closing sentence (the answer is then composed from the transcript)
        exit_conditions=["text", WRITER],
    )
