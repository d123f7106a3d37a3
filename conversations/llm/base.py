"""What a backend is: its configuration and the two calls every kind implements.

A backend makes exactly one attempt per call and raises :class:`LLMError` on failure; retries,
the circuit breaker, fallback, metrics and logs are the registry's job, so a new kind (the
offline backend, a test double) only has to answer or fail.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from conversations.llm.types import ChatMessage, Completion, StreamEvent, ToolSpec


@dataclass(frozen=True)
class BackendConfig:
    name: str
    kind: str  # "openai" | "recorded" | "offline" | any kind registered later
    model: str = ""
    base_url: str = ""
    api_key: str = ""
    timeout: float = 30.0
    max_retries: int = 2
    breaker_failures: int = 5
    breaker_cooldown: float = 30.0
    price_per_1k_prompt: Decimal | None = None
    price_per_1k_completion: Decimal | None = None
    options: dict[str, Any] = field(default_factory=dict)


class Backend(ABC):
    """One configured model endpoint. Subclasses set ``name``, ``kind`` and ``model``."""

    name: str
    kind: str
    model: str

    @abstractmethod
    async def complete(
        self,
        messages: Sequence[ChatMessage],
        *,
        tools: Sequence[ToolSpec] = (),
        temperature: float | None = None,
        model: str | None = None,
        time_limit: float | None = None,
    ) -> Completion:
        """One attempt; returns the whole answer or raises LLMError. ``model`` replaces the
        configured model (an agent's choice), ``time_limit`` shortens the configured one (the
        turn's deadline); the registry passes them only when set."""

    @abstractmethod
    def stream(
        self,
        messages: Sequence[ChatMessage],
        *,
        tools: Sequence[ToolSpec] = (),
        temperature: float | None = None,
        model: str | None = None,
        time_limit: float | None = None,
    ) -> AsyncIterator[StreamEvent]:
        """One attempt as an async iterator: TokenDelta events, then exactly one Done."""

    async def aclose(self) -> None:
        """Releases connections; the default has nothing to release."""
        return None


BackendFactory = Callable[[BackendConfig], Backend]
