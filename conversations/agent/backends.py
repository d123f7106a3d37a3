"""The process's LLM backend registry, built once from settings (tests swap it)."""

from __future__ import annotations

from django.conf import settings

from conversations.llm.registry import BackendRegistry, registry_from_settings

_registry: BackendRegistry | None = None


def get_registry() -> BackendRegistry:
    global _registry
    if _registry is None:
        from conversations.llm import offline

        registry = registry_from_settings(settings)
        offline.register(registry)
        _registry = registry
    return _registry


def set_registry(registry: BackendRegistry | None) -> None:
    """Replace the registry (tests, or after a settings change); ``None`` rebuilds lazily."""
    global _registry
    _registry = registry
