"""Brains: which chat generator plays each agent, and what happens when a model misbehaves.

`--llm offline` is the deterministic planner. `openai` uses OPENAI_API_KEY and `--model`. `openai-compatible` talks
to any OpenAI-style endpoint (`--llm-url`: Ollama, vLLM, llama.cpp server). `auto` picks openai when a key is set,
else offline.

A model is wrapped in `ResilientChatGenerator`: timeouts, connection errors, HTTP 429 and 5xx, and empty replies are
retried with bounded exponential backoff; when a model keeps failing, the wrapper hands the transcript to the
offline planner for this and every later call of the investigation (all agents share one `BrainHealth`), and the
run is marked degraded. `BrainHealth` also counts what the model was asked: model requests and the HTTP attempts
they took. Every request carries `max_tokens` and fits a per-request context budget (`ModelBudget`): past it, the
oldest tool results are shortened to their evidence ids. The API key lives only inside the generator's Secret; it is
never logged or returned.
"""

from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import dataclass, field
from typing import Any

import httpx
from haystack import component, default_from_dict, default_to_dict
from haystack.components.generators.chat import OpenAIChatGenerator
from haystack.dataclasses import ChatMessage
from haystack.utils import Secret

from incidentlens.agents.budget import fit_context
from incidentlens.agents.planner import OfflinePlanner
from incidentlens.agents.wire import MALFORMED_ARGUMENTS
from incidentlens.errors import InputError, SourceError
from incidentlens.urls import redact_url

logger = logging.getLogger(__name__)

LLM_CHOICES = ("auto", "offline", "openai", "openai-compatible")
DEFAULT_MODEL = "gpt-4o-mini"
DUMMY_KEY = "not-needed"
# The up-front check of --llm-url: seconds per attempt (at most the request timeout), and attempts.
PROBE_TIMEOUT_S = 10.0
PROBE_ATTEMPTS = 3
# The longest --llm-timeout: an hour per request
MAX_TIMEOUT_S = 3600.0


@dataclass(frozen=True)
class BrainChoice:
    """The brain an investigation runs on, after `auto` is resolved."""

    llm: str
    model: str | None
    url: str | None = None

    def describe(self) -> str:
        if self.llm == "offline":
            return "offline (deterministic planner, no model)"
        where = f" at {shown_url(self.url)}" if self.url else ""
        return f"{self.llm} ({self.model}{where})"


def shown_url(url: str) -> str:
    """`url` for a message: a URL may carry credentials (http://user:token@host, ?api_key=...), never printed."""
    try:
        return redact_url(httpx.URL(url).copy_with(userinfo=b""))
    except httpx.InvalidURL:
        return redact_url(url)


def parse_llm_url(text: str) -> httpx.URL:
    """--llm-url as a URL, refused (InputError) when it is no http(s) URL."""
    try:
        url = httpx.URL(text)
    except httpx.InvalidURL as err:
        raise InputError(f"--llm-url {shown_url(text)}: not a URL ({err})") from None
    if url.scheme not in ("http", "https") or not url.host:
        raise InputError(f"--llm-url {shown_url(text)}: expected an http:// or https:// URL, e.g. "
                         "http://localhost:11434/v1")
    return url


def check_endpoint(choice: BrainChoice, timeout_s: float, transport: httpx.BaseTransport | None = None) -> None:
    """Fail fast on a --llm-url that is no http(s) URL (InputError) or that nothing answers (SourceError), before
    any analysis: a GET of its `/models`, `PROBE_ATTEMPTS` tries with backoff. Any HTTP answer will do (a server
    without that route still answers); a model that fails later is the investigation's to handle."""
    if choice.url is None:
        return
    url = parse_llm_url(choice.url)
    problem = ""
    with httpx.Client(timeout=min(timeout_s, PROBE_TIMEOUT_S), transport=transport) as client:
        for attempt in range(PROBE_ATTEMPTS):
            if attempt:
                time.sleep(0.5 * 2 ** (attempt - 1))
            try:
                client.get(url.join(url.path.rstrip("/") + "/models"))
                return
            except httpx.TransportError as err:
                problem = f"{type(err).__name__}: {err}".replace("\n", " ")
    raise SourceError(f"--llm-url {shown_url(choice.url)}: unreachable ({problem}) after {PROBE_ATTEMPTS} attempts; "
                      "start the server or use --llm offline")


def resolve_brain(llm: str, model: str | None, llm_url: str | None, env: dict[str, str] | None = None) -> BrainChoice:
    """Resolve `--llm`, `--model`, `--llm-url` into a BrainChoice; bad combinations raise InputError (one line)."""
    env = dict(os.environ) if env is None else env
    if llm not in LLM_CHOICES:
        raise InputError(f"--llm: unknown brain {llm!r}; choose one of {', '.join(LLM_CHOICES)}")
    if llm == "auto":
        llm = "openai-compatible" if llm_url else "openai" if env.get("OPENAI_API_KEY") else "offline"
    if llm == "offline":
        return BrainChoice("offline", None)
    if llm == "openai":
        if not env.get("OPENAI_API_KEY"):
            raise InputError("--llm openai: OPENAI_API_KEY is not set (use --llm offline to run without a model)")
        return BrainChoice("openai", model or DEFAULT_MODEL, llm_url)
    if not llm_url:
        raise InputError("--llm openai-compatible: --llm-url is required (e.g. http://localhost:11434/v1)")
    return BrainChoice("openai-compatible", model or DEFAULT_MODEL, llm_url)


@dataclass
class RetryPolicy:
    """Bounded retries: `attempts` tries per call, backoff base * 2**n, capped; `timeout_s` per HTTP request."""

    attempts: int = 3
    backoff_s: float = 1.0
    max_backoff_s: float = 8.0
    timeout_s: float = 60.0

    def __post_init__(self) -> None:
        # NaN passes any range check but this one; the socket refuses it (and 0 or less) with a traceback
        if not 0 < self.timeout_s <= MAX_TIMEOUT_S:
            raise InputError(f"--llm-timeout {self.timeout_s:g}: must be a number of seconds above 0 and at most "
                             f"{MAX_TIMEOUT_S:g}")

    def delay(self, attempt: int) -> float:
        return min(self.backoff_s * 2**attempt, self.max_backoff_s)


@dataclass(frozen=True)
class ModelBudget:
    """What one request to a model may cost: `max_tokens` to answer (sent with every request) and `context_tokens`
    for the whole request, prompt and answer (a small local model's context window, or a cost ceiling)."""

    max_tokens: int = 1024
    context_tokens: int = 16384

    def __post_init__(self) -> None:
        if self.max_tokens < 16 or self.context_tokens < self.max_tokens + 256:
            raise InputError(f"model budget: --llm-max-tokens {self.max_tokens} must be at least 16 and "
                             f"--llm-context {self.context_tokens} at least 256 tokens more")

    @property
    def prompt_tokens(self) -> int:
        return self.context_tokens - self.max_tokens


@dataclass
class BrainHealth:
    """Shared by every agent of one investigation: once the model is given up on, all agents run offline.

    `model_requests` counts the calls an agent made to the model, `http_requests` the HTTP requests they took
    (retries included)."""

    degraded: bool = False
    reason: str | None = None
    retries: int = 0
    failures: list[str] = field(default_factory=list)
    model_requests: int = 0
    http_requests: int = 0

    def give_up(self, reason: str) -> None:
        if not self.degraded:
            self.degraded = True
            self.reason = reason
            logger.info("model failed, handing over to the offline planner: %s", reason)


class EmptyReply(Exception):
    """The model answered with neither text nor a usable tool call (e.g. only malformed tool arguments)."""


def _is_retryable(error: BaseException) -> bool:
    import openai

    if isinstance(error, openai.APIStatusError):
        return error.status_code == 429 or error.status_code >= 500
    return isinstance(error, openai.APITimeoutError | openai.APIConnectionError | httpx.TimeoutException | EmptyReply)


def _describe_error(error: BaseException) -> str:
    import openai

    if isinstance(error, openai.APIStatusError):
        return f"HTTP {error.status_code}"
    if isinstance(error, openai.APITimeoutError | httpx.TimeoutException):
        return "timeout"
    if isinstance(error, openai.APIConnectionError):
        return "connection error"
    return type(error).__name__


@component
class ResilientChatGenerator:
    """A model with bounded retries and a hand-over to the offline planner; see the module docstring."""

    def __init__(
        self,
        primary: Any,
        role: str = "coordinator",
        retry: RetryPolicy | None = None,
        health: BrainHealth | None = None,
        budget: ModelBudget | None = None,
    ) -> None:
        self.primary = primary
        self.role = role
        self.retry = retry or RetryPolicy()
        self.health = health or BrainHealth()
        self.budget = budget or ModelBudget()
        self.fallback = OfflinePlanner(role=role)

    def to_dict(self) -> dict[str, Any]:
        return default_to_dict(
            self,
            primary=self.primary.to_dict(),
            role=self.role,
            retry={"attempts": self.retry.attempts, "backoff_s": self.retry.backoff_s,
                   "max_backoff_s": self.retry.max_backoff_s, "timeout_s": self.retry.timeout_s},
            budget={"max_tokens": self.budget.max_tokens, "context_tokens": self.budget.context_tokens},
        )

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ResilientChatGenerator:
        params = data["init_parameters"]
        params["primary"] = OpenAIChatGenerator.from_dict(params["primary"])
        params["retry"] = RetryPolicy(**params["retry"])
        params["budget"] = ModelBudget(**params["budget"])
        return default_from_dict(cls, data)

    def warm_up(self) -> None:
        if hasattr(self.primary, "warm_up"):
            self.primary.warm_up()

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
        errors: list[str] = []
        attempts = [0]
        result = None
        if not self.health.degraded:
            self.health.model_requests += 1
            result = self._ask_model(messages, generation_kwargs, tools, errors, attempts)
        if result is None:
            result = self.fallback.run(messages, tools=tools)
        meta = result["replies"][0].meta
        meta["http_requests"] = attempts[0]  # trace.jsonl counts every HTTP request, retries included
        if errors:
            # the trace shows what the model did wrong in this step, even when a retry or the planner saved it
            meta["llm_errors"] = errors
        return result

    def _ask_model(
        self, messages: list[ChatMessage], generation_kwargs: Any, tools: Any, errors: list[str],
        attempts: list[int],
    ) -> dict[str, Any] | None:
        messages = fit_context(messages, tools, self.budget.prompt_tokens)
        kwargs = {**(generation_kwargs or {}), "max_tokens": self.budget.max_tokens}
        for attempt in range(self.retry.attempts):
            try:
                attempts[0] += 1
                self.health.http_requests += 1
                result = self.primary.run(messages=messages, generation_kwargs=kwargs, tools=tools)
                _require_usable(result)
                return result
            except Exception as error:  # any model failure ends in the hand-over, never a crash
                described = _describe_error(error)
                errors.append(described)
                self.health.failures.append(f"{self.role}: {described}")
                if not _is_retryable(error) or attempt == self.retry.attempts - 1:
                    self.health.give_up(f"{described} after {attempt + 1} attempt(s)")
                    return None
                self.health.retries += 1
                time.sleep(self.retry.delay(attempt))
        return None


def _require_usable(result: dict[str, Any]) -> None:
    replies = result.get("replies") or []
    if not replies or not (replies[0].text or replies[0].tool_calls):
        raise EmptyReply("the model's reply had no text and no usable tool call")


class ArgumentRepairTransport(httpx.BaseTransport):
    """Keeps a tool call whose arguments are not valid JSON, as `{MALFORMED_ARGUMENTS: raw}`.

    Haystack's OpenAI generator silently drops such a call; kept, it reaches its tool, which answers with a tool
    error the model can read and fix.
    """

    def __init__(self) -> None:
        self._inner = httpx.HTTPTransport()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = self._inner.handle_request(request)
        if response.status_code != 200 or not request.url.path.endswith("/chat/completions"):
            return response
        content = response.read()
        try:
            body = json.loads(content)
        except ValueError:
            return response
        if not _repair_arguments(body):
            return response
        headers = {k: v for k, v in response.headers.items() if k.lower() not in ("content-length", "content-encoding")}
        return httpx.Response(200, headers=headers, content=json.dumps(body).encode(), request=request)

    def close(self) -> None:
        self._inner.close()


def _repair_arguments(body: dict[str, Any]) -> bool:
    repaired = False
    for choice in body.get("choices") or []:
        for call in (choice.get("message") or {}).get("tool_calls") or []:
            function = call.get("function") or {}
            raw = function.get("arguments") or "{}"
            try:
                valid = isinstance(json.loads(raw), dict)
            except ValueError:
                valid = False
            if not valid:
                function["arguments"] = json.dumps({MALFORMED_ARGUMENTS: str(raw)[:300]})
                repaired = True
    return repaired


def make_generator(choice: BrainChoice, role: str, health: BrainHealth, retry: RetryPolicy | None = None,
                   budget: ModelBudget | None = None) -> Any:
    """The chat generator for one agent `role` on `choice`: the planner itself, or a model with a fallback."""
    if choice.llm == "offline":
        return OfflinePlanner(role=role)
    retry = retry or RetryPolicy()
    budget = budget or ModelBudget()
    key = (
        Secret.from_env_var("OPENAI_API_KEY")
        if choice.llm == "openai" or os.environ.get("OPENAI_API_KEY")
        else Secret.from_token(DUMMY_KEY)
    )
    model = OpenAIChatGenerator(
        api_key=key,
        model=choice.model or DEFAULT_MODEL,
        api_base_url=choice.url,
        timeout=retry.timeout_s,
        max_retries=0,  # ResilientChatGenerator owns retries, so they stay bounded and visible
        http_client_kwargs={"transport": ArgumentRepairTransport()},
    )
    return ResilientChatGenerator(model, role=role, retry=retry, health=health, budget=budget)
