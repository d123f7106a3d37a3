"""Named backends from plain data: the ``LLM_BACKENDS`` environment variable (a JSON list, or TOML
with ``[[backends]]`` tables) and the admin's ``ModelBackend`` rows, both turned into
:class:`BackendConfig` here (issue 15 item 1). Pure: no Django, no ORM.

One entry::

    {"name": "local", "kind": "openai", "base_url": "http://127.0.0.1:11434/v1",
     "api_key": "", "model": "qwen2.5:7b", "timeout": 120, "retries": 1,
     "temperature": 0.2, "max_tokens": 800, "headers": {"X-Team": "support"},
     "stream_options": false, "price_per_1k_prompt": "0", "price_per_1k_completion": "0"}

Only ``name`` is required; ``kind`` defaults to ``openai``.
"""

from __future__ import annotations

import json
import re
import tomllib
from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal, InvalidOperation
from typing import Any

from conversations.llm.base import BackendConfig
from conversations.llm.types import LLMConfigurationError

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,49}$")
FIELDS = frozenset(
    {
        "name", "kind", "base_url", "api_key", "model", "timeout", "retries", "max_retries",
        "temperature", "max_tokens", "headers", "stream_options", "price_per_1k_prompt",
        "price_per_1k_completion", "breaker_failures", "breaker_cooldown", "cassette",
    }
)  # fmt: skip


def parse_backends(raw: str) -> list[dict[str, Any]]:
    """The entries of ``LLM_BACKENDS``: a JSON list of objects, or TOML whose ``backends`` (or
    ``backend``) is an array of tables. Empty text is no entries."""
    text = raw.strip()
    if not text:
        return []
    data: Any
    if text.startswith("["):
        try:
            data = json.loads(text)
        except ValueError as json_error:
            try:
                data = _toml_list(text)
            except LLMConfigurationError:
                raise LLMConfigurationError(
                    f"LLM_BACKENDS is neither a JSON list nor TOML: {json_error}"
                ) from None
    else:
        data = _toml_list(text)
    if not isinstance(data, list) or not all(isinstance(item, dict) for item in data):
        raise LLMConfigurationError("LLM_BACKENDS must be a list of backend objects")
    return data


def _toml_list(text: str) -> Any:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise LLMConfigurationError(f"LLM_BACKENDS is not valid TOML: {exc}") from exc
    entries = data.get("backends", data.get("backend"))
    if entries is None:
        raise LLMConfigurationError("LLM_BACKENDS in TOML needs [[backends]] tables")
    return entries


def config_from_mapping(entry: Mapping[str, Any], *, where: str = "LLM_BACKENDS") -> BackendConfig:
    """One entry, validated; the message names the entry and the field."""
    name = str(entry.get("name") or "").strip()
    label = f"{where}[{name or '?'}]"
    if not NAME.match(name):
        raise LLMConfigurationError(
            f"{label}: 'name' must be 1-50 letters, digits, '.', '_' or '-'"
        )
    unknown = sorted(set(entry) - FIELDS)
    if unknown:
        raise LLMConfigurationError(f"{label}: unknown fields {', '.join(unknown)}")
    options: dict[str, Any] = {}
    if entry.get("temperature") is not None:
        options["temperature"] = _number(entry["temperature"], label, "temperature", float)
    if entry.get("max_tokens") is not None:
        options["max_tokens"] = _number(entry["max_tokens"], label, "max_tokens", int)
    headers = entry.get("headers") or {}
    if not isinstance(headers, Mapping) or not all(
        isinstance(key, str) and isinstance(value, str) for key, value in headers.items()
    ):
        raise LLMConfigurationError(f"{label}: 'headers' must map names to text")
    if headers:
        options["headers"] = dict(headers)
    if entry.get("stream_options") is not None:
        if not isinstance(entry["stream_options"], bool):
            raise LLMConfigurationError(f"{label}: 'stream_options' must be true or false")
        options["stream_usage"] = entry["stream_options"]
    if entry.get("cassette"):
        options["cassette"] = str(entry["cassette"])
    retries = entry.get("retries", entry.get("max_retries", 2))
    return BackendConfig(
        name=name,
        kind=str(entry.get("kind") or "openai").strip(),
        model=str(entry.get("model") or ""),
        base_url=str(entry.get("base_url") or ""),
        api_key=str(entry.get("api_key") or ""),
        timeout=_number(entry.get("timeout", 30.0), label, "timeout", float, positive=True),
        max_retries=_number(retries, label, "retries", int),
        breaker_failures=_number(
            entry.get("breaker_failures", 5), label, "breaker_failures", int, positive=True
        ),
        breaker_cooldown=_number(
            entry.get("breaker_cooldown", 30.0), label, "breaker_cooldown", float
        ),
        price_per_1k_prompt=_price(entry.get("price_per_1k_prompt"), label, "price_per_1k_prompt"),
        price_per_1k_completion=_price(
            entry.get("price_per_1k_completion"), label, "price_per_1k_completion"
        ),
        options=options,
    )


def configs_from_entries(
    entries: Iterable[Mapping[str, Any]], *, where: str = "LLM_BACKENDS"
) -> list[BackendConfig]:
    configs: list[BackendConfig] = []
    seen: set[str] = set()
    for entry in entries:
        config = config_from_mapping(entry, where=where)
        if config.name in seen:
            raise LLMConfigurationError(f"{where}: two backends are named {config.name!r}")
        seen.add(config.name)
        configs.append(config)
    return configs


def merged(
    environment: Sequence[BackendConfig], stored: Sequence[BackendConfig]
) -> list[BackendConfig]:
    """The environment's backends, then the stored ones it does not name (the environment takes
    precedence over the admin)."""
    names = {config.name for config in environment}
    return [*environment, *(config for config in stored if config.name not in names)]


def _number(value: Any, label: str, field: str, kind: type, *, positive: bool = False) -> Any:
    if isinstance(value, bool):
        raise LLMConfigurationError(f"{label}: {field!r} must be a number")
    try:
        number = kind(value)
    except (TypeError, ValueError):
        raise LLMConfigurationError(f"{label}: {field!r} must be a number") from None
    if number < 0 or (positive and number <= 0):
        raise LLMConfigurationError(f"{label}: {field!r} must be positive")
    return number


def _price(value: Any, label: str, field: str) -> Decimal | None:
    if value is None or value == "":
        return None
    try:
        price = Decimal(str(value))
    except InvalidOperation:
        raise LLMConfigurationError(f"{label}: {field!r} must be a number") from None
    if price < 0:
        raise LLMConfigurationError(f"{label}: {field!r} must not be negative")
    return price
