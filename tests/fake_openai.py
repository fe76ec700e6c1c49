"""A local fake OpenAI-compatible chat-completions server for tests and benchmarks.

`FakeOpenAI(policy)` serves `POST /v1/chat/completions` on 127.0.0.1 (a free port) in a thread. The real `openai`
client (through Haystack's OpenAIChatGenerator) talks to it over real HTTP. Each request body is recorded in
`requests`; `policy(body, n)` decides the answer to the n-th request: a completion message, an HTTP error
(`Status`), or a stall past the client's timeout (`Stall`).

`replay_planner` is a policy that plays a well-behaved model: it turns the OpenAI-format transcript back into
Haystack messages and asks the offline planner for the role named in the system prompt, so the team calls the
tools in the original's order over HTTP.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from haystack.dataclasses import ChatMessage, ToolCall

from incidentlens.agents.planner import next_move


@dataclass(frozen=True)
class Status:
    code: int
    message: str = "scripted failure"


@dataclass(frozen=True)
class Stall:
    seconds: float


Policy = Callable[[dict[str, Any], int], "dict[str, Any] | Status | Stall"]


class FakeOpenAI:
    def __init__(self, policy: Policy) -> None:
        self.policy = policy
        self.requests: list[dict[str, Any]] = []
        self.statuses: list[int] = []
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    def __enter__(self) -> FakeOpenAI:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _answer(self, body: dict[str, Any]) -> tuple[int, dict[str, Any], float]:
        with self._lock:
            self.requests.append(body)
            n = len(self.requests)
        decision = self.policy(body, n)
        if isinstance(decision, Stall):
            return 200, completion(body, {"role": "assistant", "content": "too late"}), decision.seconds
        if isinstance(decision, Status):
            return decision.code, {"error": {"message": decision.message, "type": "scripted", "code": None}}, 0.0
        return 200, completion(body, decision), 0.0

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                status, payload, delay = fake._answer(body)
                with fake._lock:
                    fake.statuses.append(status)
                if delay:
                    time.sleep(delay)
                data = json.dumps(payload).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (a scripted stall): nothing to answer

            def log_message(self, *args: Any) -> None:
                pass

        return Handler


def completion(body: dict[str, Any], message: dict[str, Any]) -> dict[str, Any]:
    prompt_chars = len(json.dumps(body.get("messages", []))) + len(json.dumps(body.get("tools", [])))
    completion_chars = len(json.dumps(message))
    return {
        "id": "chatcmpl-fake",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": body.get("model", "fake"),
        "choices": [{"index": 0, "message": message, "logprobs": None,
                     "finish_reason": "tool_calls" if message.get("tool_calls") else "stop"}],
        # a rough count (4 characters a token); the benchmark counts the real requests with tiktoken
        "usage": {"prompt_tokens": prompt_chars // 4, "completion_tokens": completion_chars // 4,
                  "total_tokens": (prompt_chars + completion_chars) // 4},
    }


# --- policies ------------------------------------------------------------------------------------------------------
def role_of(body: dict[str, Any]) -> str:
    system = next((m.get("content") or "" for m in body.get("messages", []) if m.get("role") == "system"), "")
    if "postmortem writer" in system:
        return "writer"
    if "incident profiler" in system:
        return "profiler"
    return "coordinator"


def to_haystack(messages: list[dict[str, Any]]) -> list[ChatMessage]:
    """OpenAI-format messages back to Haystack ChatMessages (tool results get their origin call back)."""
    calls: dict[str, ToolCall] = {}
    converted: list[ChatMessage] = []
    for m in messages:
        role, content = m.get("role"), m.get("content")
        text = content if isinstance(content, str) else "".join(p.get("text", "") for p in content or [])
        if role == "system":
            converted.append(ChatMessage.from_system(text))
        elif role == "user":
            converted.append(ChatMessage.from_user(text))
        elif role == "assistant":
            tool_calls = [
                ToolCall(tool_name=c["function"]["name"], arguments=json.loads(c["function"]["arguments"] or "{}"),
                         id=c["id"])
                for c in m.get("tool_calls") or []
            ]
            calls.update({c.id: c for c in tool_calls})
            converted.append(ChatMessage.from_assistant(text or None, tool_calls=tool_calls))
        elif role == "tool":
            origin = calls.get(m.get("tool_call_id"), ToolCall(tool_name="unknown", arguments={}, id="?"))
            converted.append(ChatMessage.from_tool(text, origin=origin))
    return converted


def to_openai(reply: ChatMessage) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": reply.text}
    if reply.tool_calls:
        message["tool_calls"] = [
            {"id": c.id, "type": "function", "function": {"name": c.tool_name, "arguments": json.dumps(c.arguments)}}
            for c in reply.tool_calls
        ]
    return message


def tool_names(body: dict[str, Any]) -> set[str]:
    return {t["function"]["name"] for t in body.get("tools") or []}


def replay_planner(body: dict[str, Any], n: int) -> dict[str, Any]:
    """A model that follows the runbook: the offline planner's decision for this transcript, over HTTP."""
    return to_openai(next_move(role_of(body), to_haystack(body["messages"]), tool_names(body)))


def tool_call(name: str, arguments: str | dict[str, Any], call_id: str) -> dict[str, Any]:
    raw = arguments if isinstance(arguments, str) else json.dumps(arguments)
    return {"role": "assistant", "content": None,
            "tool_calls": [{"id": call_id, "type": "function", "function": {"name": name, "arguments": raw}}]}
