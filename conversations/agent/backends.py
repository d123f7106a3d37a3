"""The process's LLM backend registry (tests swap it); built in ``conversations.model_backends``
from the environment and the admin's model backends."""

from __future__ import annotations

from conversations.model_backends import aget_registry, get_registry, set_registry

__all__ = ["aget_registry", "get_registry", "set_registry"]
