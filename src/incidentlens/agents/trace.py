"""trace.jsonl: one line per agent step, from Haystack's own tracing spans.

`TraceRecorder` is a Haystack `Tracer` (trace() and current_span()). Haystack opens `haystack.agent.run`, `.step`,
`.step.llm` and `.step.tool` spans; when a step span closes the recorder writes one line per tool call of that step
(agent, step, start offset, tool, arguments, duration, tokens in and out, error; the step's first line also carries
`http_requests`, the HTTP requests its model call took, retries included, and `llm_errors` when the model failed
and was retried or replaced in that step), or one line with `tool: null` for a final answer. The agent is
named by the delegation that started it (`profiler_specialist`, ...), else `coordinator`.

Only the tool arguments, the token usage and error text are kept from the spans' content: never the messages, never
an API key.
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from haystack import tracing
from haystack.tracing import Span, Tracer

from incidentlens.outfiles import StagedFile, output_dir

_current: contextvars.ContextVar[RecordedSpan | None] = contextvars.ContextVar("incidentlens_span", default=None)

ERROR_TEXT_LIMIT = 300


class RecordedSpan(Span):
    def __init__(self, operation: str, tags: dict[str, Any] | None, parent: RecordedSpan | None) -> None:
        self.operation = operation
        self.tags: dict[str, Any] = dict(tags or {})
        self.parent = parent
        self.children: list[RecordedSpan] = []
        self.started = time.perf_counter()
        self.duration_ms = 0.0

    def set_tag(self, key: str, value: Any) -> None:
        self.tags[key] = value

    def set_content_tag(self, key: str, value: Any) -> None:
        # Kept in memory only long enough to pick arguments, usage and errors out of it; see _lines_for_step.
        self.tags[key] = value

    @property
    def agent(self) -> str:
        """The agent this span runs in: the delegation tool that started its agent run, else the coordinator."""
        node: RecordedSpan | None = self
        while node is not None and node.operation != "haystack.agent.run":
            node = node.parent
        delegation = node.parent if node is not None else None
        while delegation is not None and delegation.operation != "haystack.agent.step.tool":
            delegation = delegation.parent
        return str(delegation.tags.get("haystack.tool.name")) if delegation is not None else "coordinator"


class TraceRecorder(Tracer):
    """Records agent spans and streams trace lines to `path` (or keeps them in `lines` only)."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path
        self.lines: list[dict[str, Any]] = []
        self.tokens = {"prompt": 0, "completion": 0}
        self.model_calls = 0
        self.http_requests = 0
        self._lock = threading.Lock()
        self._started = time.perf_counter()
        self._file: StagedFile | None = None
        if path is not None:
            self._file = StagedFile(output_dir(path.parent) / path.name)

    @contextlib.contextmanager
    def trace(
        self, operation_name: str, tags: dict[str, Any] | None = None, parent_span: Span | None = None
    ) -> Iterator[Span]:
        parent = parent_span if isinstance(parent_span, RecordedSpan) else _current.get()
        span = RecordedSpan(operation_name, tags, parent)
        if parent is not None:
            with self._lock:
                parent.children.append(span)
        token = _current.set(span)
        try:
            yield span
        finally:
            span.duration_ms = (time.perf_counter() - span.started) * 1000
            _current.reset(token)
            if operation_name == "haystack.agent.step":
                self._emit(_lines_for_step(span, started_s=span.started - self._started))

    def current_span(self) -> Span | None:
        return _current.get()

    def _emit(self, lines: list[dict[str, Any]]) -> None:
        with self._lock:
            self.model_calls += sum(1 for line in lines if line.pop("llm_call", False))
            self.http_requests += sum(line.get("http_requests", 0) for line in lines)
            for line in lines:
                self.lines.append(line)
                self.tokens["prompt"] += line.get("tokens_in", 0)
                self.tokens["completion"] += line.get("tokens_out", 0)
                if self._file is not None:
                    self._file.handle.write(json.dumps(line, default=str) + "\n")
            if self._file is not None:
                self._file.handle.flush()

    def close(self) -> None:
        """Close the trace and move it into place (it was streamed under a temporary name beside it)."""
        if self._file is not None:
            self._file.commit()
            self._file = None

    @contextlib.contextmanager
    def installed(self) -> Iterator[TraceRecorder]:
        """Record the Haystack spans of this context (and the tool threads it starts) while the block runs.

        Concurrent investigations each get their own recorder: spans are routed by context, not by a global swap.
        """
        _install_router()
        token = _active.set(self)
        try:
            yield self
        finally:
            _active.reset(token)
            self.close()


_active: contextvars.ContextVar[TraceRecorder | None] = contextvars.ContextVar("incidentlens_recorder", default=None)


class _Router(Tracer):
    """Haystack's tracer, installed once: sends spans to the recorder active in the caller's context, and anything
    else to the tracer that was installed before (a user's own tracing keeps working)."""

    def __init__(self, fallback: Tracer) -> None:
        self.fallback = fallback

    def trace(
        self, operation_name: str, tags: dict[str, Any] | None = None, parent_span: Span | None = None
    ) -> contextlib.AbstractContextManager[Span]:
        recorder = _active.get()
        target = recorder if recorder is not None else self.fallback
        return target.trace(operation_name, tags=tags, parent_span=parent_span)

    def current_span(self) -> Span | None:
        recorder = _active.get()
        return recorder.current_span() if recorder is not None else self.fallback.current_span()


_router_lock = threading.Lock()


def _install_router() -> None:
    with _router_lock:
        if not isinstance(tracing.tracer.actual_tracer, _Router):
            tracing.enable_tracing(_Router(tracing.tracer.actual_tracer))


def _lines_for_step(step: RecordedSpan, started_s: float) -> list[dict[str, Any]]:
    llm = next((c for c in step.children if c.operation == "haystack.agent.step.llm"), None)
    usage, requested, model, meta = _llm_output(llm)
    common = {
        "agent": step.agent,
        "step": step.tags.get("haystack.agent.step"),
        "started_s": round(started_s, 3),
        "model": model,
        "llm_ms": round(llm.duration_ms, 1) if llm else None,
    }
    tool_spans = [c for c in step.children if c.operation == "haystack.agent.step.tool"]
    lines: list[dict[str, Any]] = []
    for call in requested or [None]:
        span = _take_matching_span(tool_spans, call)
        line = {
            **common,
            "tool": call.tool_name if call else None,
            "arguments": call.arguments if call else None,
            "duration_ms": round(span.duration_ms, 1) if span else None,
            "tokens_in": 0,
            "tokens_out": 0,
            "error": _error_of(span, call),
        }
        lines.append(line)
    lines[0]["tokens_in"] = int(usage.get("prompt_tokens") or 0)
    lines[0]["tokens_out"] = int(usage.get("completion_tokens") or 0)
    lines[0]["llm_call"] = llm is not None and model not in (None, "offline-planner")
    lines[0]["http_requests"] = int(meta.get("http_requests") or 0)
    if meta.get("llm_errors"):
        lines[0]["llm_errors"] = list(meta["llm_errors"])
    return lines


def _llm_output(llm: RecordedSpan | None) -> tuple[dict[str, Any], list[Any], str | None, dict[str, Any]]:
    output = (llm.tags.get("haystack.agent.step.llm.output") or {}) if llm is not None else {}
    replies = output.get("replies") or []
    if not replies:
        return {}, [], None, {}
    reply = replies[0]
    meta = reply.meta
    return meta.get("usage") or {}, list(reply.tool_calls), meta.get("model"), meta


def _take_matching_span(spans: list[RecordedSpan], call: Any) -> RecordedSpan | None:
    if call is None:
        return None
    for index, span in enumerate(spans):
        if span.tags.get("haystack.tool.name") == call.tool_name and (
            span.tags.get("haystack.agent.step.tool.input") == call.arguments
        ):
            return spans.pop(index)
    return None


def _error_of(span: RecordedSpan | None, call: Any) -> str | None:
    if call is None:
        return None
    if span is None:
        return f"tool {call.tool_name!r} was not run (unknown tool)"
    if not span.tags.get("haystack.tool.error"):
        return None
    output = span.tags.get("haystack.agent.step.tool.output") or {}
    text = str(output.get("error", "tool error")) if isinstance(output, dict) else str(output)
    return " ".join(text.split())[:ERROR_TEXT_LIMIT]
