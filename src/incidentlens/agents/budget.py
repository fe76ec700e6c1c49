"""What a model is sent: no fact twice, and within the request's context budget.

Two rules, both shortening a tool result to the evidence ids it carried (the evidence itself stays in the ledger
and the report, and the latest round of results is always sent whole):
- handed over: once an agent has delegated to a specialist, the results it gathered before that delegation are in
  the delegation's own facts, so they are not resent in full with every later request;
- budget: past the request's context budget, the oldest results are shortened until it fits. Tokens are estimated
  from characters (JSON-heavy text runs about three characters a token, so the estimate errs on the safe side).
"""

from __future__ import annotations

import json
import re
from typing import Any

from haystack.dataclasses import ChatMessage, ChatRole
from haystack.tools import flatten_tools_or_toolsets

from incidentlens.agents.wire import as_tool_data, read_tool_data

CHARS_PER_TOKEN = 3
_EVIDENCE_ID = re.compile(r"\b[a-z_]+-[0-9a-f]{8}\b")
ELIDED = "shortened: its findings went into a delegation's facts or did not fit the context; see the evidence ids"
#: the delegation tools (profiler_specialist, postmortem_writer_specialist) end in this
SPECIALIST_SUFFIX = "_specialist"


def estimate_tokens(messages: list[ChatMessage], tools: Any = None) -> int:
    """A safe-side token estimate of a request: every message's text and tool calls, and the tools' schemas."""
    chars = sum(len(_text(m)) + 16 for m in messages)
    if tools:
        chars += sum(len(json.dumps(t.tool_spec)) for t in flatten_tools_or_toolsets(tools))
    return chars // CHARS_PER_TOKEN + 1


def fit_context(messages: list[ChatMessage], tools: Any, prompt_tokens: int) -> list[ChatMessage]:
    """`messages` as a model is sent them: tool results handed over to a specialist shortened to their evidence
    ids, then the oldest others too until the request fits `prompt_tokens` (or only the latest round is whole)."""
    fitted = _without_handed_over(messages)
    if estimate_tokens(fitted, tools) <= prompt_tokens:
        return fitted
    last_assistant = max((i for i, m in enumerate(fitted) if m.is_from(ChatRole.ASSISTANT)), default=len(fitted))
    for index in range(last_assistant):
        message = fitted[index]
        if message.is_from(ChatRole.TOOL) and message.tool_call_result is not None:
            fitted[index] = _shortened(message)
            if estimate_tokens(fitted, tools) <= prompt_tokens:
                break
    return fitted


def _without_handed_over(messages: list[ChatMessage]) -> list[ChatMessage]:
    delegations = [i for i, m in enumerate(messages) if m.is_from(ChatRole.ASSISTANT)
                   and any(c.tool_name.endswith(SPECIALIST_SUFFIX) for c in m.tool_calls)]
    if not delegations:
        return messages
    return [_shortened(m) if i < delegations[-1] and m.is_from(ChatRole.TOOL) and m.tool_call_result is not None
            and not m.tool_call_result.origin.tool_name.endswith(SPECIALIST_SUFFIX) else m
            for i, m in enumerate(messages)]


def _shortened(message: ChatMessage) -> ChatMessage:
    outcome = message.tool_call_result
    name = outcome.origin.tool_name
    payload = read_tool_data(outcome.result)
    if payload is None or payload.get("elided"):
        return message
    ids = sorted(set(_EVIDENCE_ID.findall(json.dumps(payload))))
    return ChatMessage.from_tool(as_tool_data(name, {"elided": ELIDED, "evidence": ids}), origin=outcome.origin,
                                 error=outcome.error)


def _text(message: ChatMessage) -> str:
    calls = json.dumps([{"name": c.tool_name, "arguments": c.arguments} for c in message.tool_calls], default=str)
    result = message.tool_call_result.result if message.tool_call_result is not None else ""
    return (message.text or "") + (calls if message.tool_calls else "") + result
