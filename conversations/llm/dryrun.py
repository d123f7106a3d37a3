"""Dry run of one backend (issue 15 item 3): one tiny request that says whether the server
answers, which model answered, how fast, and whether tool calling works, or the exact error and
the URL it used. One attempt, outside the breaker and retries: a test must not open a circuit.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import Any

from conversations.llm.registry import BackendRegistry
from conversations.llm.types import ChatMessage, LLMError, ToolSpec

PING = ToolSpec(
    name="ping",
    description="Answers pong. Call it when asked to ping.",
    parameters={"type": "object", "properties": {}, "additionalProperties": False},
)
PROMPT = (
    ChatMessage("system", "You are a connection test. Call the ping tool."),
    ChatMessage("user", "ping"),
)


@dataclass(frozen=True)
class DryRun:
    backend: str
    kind: str
    ok: bool
    url: str
    configured_model: str
    model: str = ""  # what the server said answered
    latency_ms: float = 0.0
    tool_calling: bool | None = None  # None: not known (the request failed)
    error_kind: str = ""
    error: str = ""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


async def dry_run(registry: BackendRegistry, name: str, *, within: float | None = None) -> DryRun:
    """One request with one tool to ``name``. A server that refuses tools (400) is asked again
    without them, so the answer still says whether it is reachable."""
    config = registry.config(name)
    backend = registry.backend(name)
    url = str(getattr(backend, "url", "") or config.base_url)
    options: dict[str, Any] = {"time_limit": within} if within else {}
    started = time.perf_counter()
    try:
        completion = await backend.complete(PROMPT, tools=(PING,), temperature=0, **options)
        tool_calling = any(call.name == PING.name for call in completion.tool_calls)
    except LLMError as first:
        if first.status_code != 400:
            return _failed(config.name, config.kind, url, backend.model, first, started)
        try:
            completion = await backend.complete(PROMPT, temperature=0, **options)
        except LLMError as error:
            return _failed(config.name, config.kind, url, backend.model, error, started)
        tool_calling = False
    return DryRun(
        backend=config.name,
        kind=config.kind,
        ok=True,
        url=url,
        configured_model=backend.model,
        model=completion.model,
        latency_ms=round((time.perf_counter() - started) * 1000, 1),
        tool_calling=tool_calling,
    )


def _failed(name: str, kind: str, url: str, model: str, error: LLMError, started: float) -> DryRun:
    return DryRun(
        backend=name,
        kind=kind,
        ok=False,
        url=url,
        configured_model=model,
        latency_ms=round((time.perf_counter() - started) * 1000, 1),
        error_kind=error.kind.value,
        error=error.message,
    )
