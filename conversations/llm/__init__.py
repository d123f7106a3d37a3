"""The LLM backend layer (SPEC §5): named backends behind one registry that owns timeouts,
retries with full-jitter backoff, circuit breakers, fallback order, cost and metrics.

Pure and async-first: no ORM, and settings are read only by ``registry_from_settings``.
See docs/llm-backends.md.
"""

from __future__ import annotations

from conversations.llm.base import Backend, BackendConfig, BackendFactory
from conversations.llm.registry import (
    BackendRegistry,
    CallReport,
    register_default_kind,
    registry_from_settings,
)
from conversations.llm.types import (
    UNAVAILABLE_MESSAGE,
    BackendHealth,
    ChatMessage,
    Completion,
    Done,
    ErrorKind,
    LLMConfigurationError,
    LLMError,
    StreamEvent,
    TokenDelta,
    ToolCall,
    ToolSpec,
    Usage,
)

__all__ = [
    "UNAVAILABLE_MESSAGE",
    "Backend",
    "BackendConfig",
    "BackendFactory",
    "BackendHealth",
    "BackendRegistry",
    "CallReport",
    "ChatMessage",
    "Completion",
    "Done",
    "ErrorKind",
    "LLMConfigurationError",
    "LLMError",
    "StreamEvent",
    "TokenDelta",
    "ToolCall",
    "ToolSpec",
    "Usage",
    "register_default_kind",
    "registry_from_settings",
]
