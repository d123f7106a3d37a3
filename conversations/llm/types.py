"""Plain data shared by every LLM backend: messages, tools, completions, stream events and the one
error type (SPEC §5). Nothing here talks to a network or to Django."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum
from typing import Any

# Shown to end users when no backend could answer; it must never carry internal detail.
UNAVAILABLE_MESSAGE = "The assistant is unavailable right now."


class ErrorKind(StrEnum):
    TIMEOUT = "timeout"
    RATE_LIMITED = "rate_limited"
    SERVER_ERROR = "server_error"
    CONNECTION = "connection"
    BAD_REQUEST = "bad_request"
    AUTH = "auth"
    CIRCUIT_OPEN = "circuit_open"
    ALL_BACKENDS_FAILED = "all_backends_failed"
    INVALID_RESPONSE = "invalid_response"
    # A backend raised something that is not an LLMError (a bug); it is contained, not retried.
    INTERNAL = "internal"


TRANSIENT_KINDS = frozenset(
    {ErrorKind.TIMEOUT, ErrorKind.RATE_LIMITED, ErrorKind.SERVER_ERROR, ErrorKind.CONNECTION}
)


class LLMError(Exception):
    """The one error a backend or the registry raises for a failed model call.

    ``kind`` is an :class:`ErrorKind` value, ``transient`` says whether retrying may help,
    ``retry_after`` is the server's requested wait in seconds (429/503), and ``causes`` holds the
    per-backend errors of an ``all_backends_failed``.
    """

    def __init__(
        self,
        kind: str,
        message: str = "",
        *,
        backend: str = "",
        transient: bool | None = None,
        retry_after: float | None = None,
        status_code: int | None = None,
        causes: Sequence[LLMError] = (),
    ) -> None:
        self.kind = ErrorKind(kind)
        self.message = message or self.kind.value.replace("_", " ")
        self.backend = backend
        self.transient = self.kind in TRANSIENT_KINDS if transient is None else transient
        self.retry_after = retry_after
        self.status_code = status_code
        self.causes = tuple(causes)
        super().__init__(self.message)

    @property
    def user_message(self) -> str:
        """Text that is safe to show an end user (no backend names, URLs or provider detail)."""
        return UNAVAILABLE_MESSAGE

    def __repr__(self) -> str:
        return f"LLMError(kind={self.kind.value!r}, backend={self.backend!r}, {self.message!r})"


class LLMConfigurationError(Exception):
    """The backend layer is set up wrongly (unknown kind, bad fallback name, cassette miss).

    Unlike :class:`LLMError` it is never absorbed by retries or fallback: it is a bug to fix.
    """


@dataclass(frozen=True)
class ToolSpec:
    name: str
    description: str
    parameters: dict[str, Any]  # a JSON Schema object


@dataclass(frozen=True)
class ToolCall:
    id: str
    name: str
    arguments: dict[str, Any]
    raw_arguments: str = ""
    # Why the model's argument string is unusable (not JSON, not an object); ``arguments`` is
    # then ``{}``. The agent sends this back to the model for one repair round (issue 15 item 6)
    # instead of discarding the whole answer.
    error: str = ""

    @classmethod
    def parse(cls, *, id: str, name: str, raw_arguments: str, backend: str = "") -> ToolCall:
        """Builds a call from the model's argument string.

        Arguments that are not a JSON object give a call with ``error`` set and no arguments: a
        model's slip, not a failed backend (no retry, no breaker failure, no fallback running a
        different tool). An empty string means ``{}`` (some local servers send nothing for a
        tool without parameters).
        """
        if not raw_arguments.strip():
            return cls(id=id, name=name, arguments={}, raw_arguments=raw_arguments)
        try:
            arguments = json.loads(raw_arguments)
        except ValueError as exc:
            error = f"the arguments of {name!r} are not valid JSON: {exc}"
        else:
            if isinstance(arguments, dict):
                return cls(id=id, name=name, arguments=arguments, raw_arguments=raw_arguments)
            error = f"the arguments of {name!r} are not a JSON object"
        return cls(id=id, name=name, arguments={}, raw_arguments=raw_arguments, error=error)

    def arguments_json(self) -> str:
        return self.raw_arguments or json.dumps(self.arguments, separators=(",", ":"))


@dataclass(frozen=True)
class ChatMessage:
    role: str  # "system" | "user" | "assistant" | "tool"
    content: str | None = None
    tool_calls: tuple[ToolCall, ...] = ()
    tool_call_id: str | None = None
    name: str | None = None


@dataclass(frozen=True)
class Usage:
    prompt_tokens: int = 0
    completion_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


@dataclass(frozen=True)
class Completion:
    text: str
    tool_calls: tuple[ToolCall, ...]
    usage: Usage
    model: str
    backend: str
    latency_ms: float
    cost: Decimal
    finish_reason: str
    attempts: int = 1
    # What a reply asks the customer for, when the backend knows (the offline backend does:
    # ``{"operation", "argument", "arguments", "known"}``); None for a model's free text.
    asked: dict[str, Any] | None = None
    # Backends that failed before this one answered (a fallback; staff see it, never silent).
    fallback_from: tuple[str, ...] = ()
    # The model's reasoning (``reasoning_content``, ``<think>`` blocks): kept for the record and
    # replay, never shown to the customer or stored as the reply.
    reasoning: str = ""

    def as_message(self) -> ChatMessage:
        """The assistant message to append to the history for a follow-up call."""
        return ChatMessage(role="assistant", content=self.text or None, tool_calls=self.tool_calls)


@dataclass(frozen=True)
class TokenDelta:
    text: str


@dataclass(frozen=True)
class Done:
    completion: Completion


StreamEvent = TokenDelta | Done


@dataclass(frozen=True)
class BackendHealth:
    name: str
    kind: str
    model: str
    state: str  # "closed" | "open" | "half_open"
    error_rate: float  # failed calls / calls in the recent window, 0.0 without calls
    recent_calls: int
    cooldown_remaining: float
    last_error: str | None = None
    consecutive_failures: int = 0
    extra: dict[str, Any] = field(default_factory=dict)
