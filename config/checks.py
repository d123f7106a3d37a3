"""System checks that refuse conflicting or unsafe settings, each saying what to set.

They run with every management command and, through :func:`raise_on_startup_errors`, when the
ASGI application is loaded, so Daphne refuses to start on them too.
"""

from __future__ import annotations

import sys
from typing import Any

from django.conf import settings
from django.core import checks
from django.core.exceptions import ImproperlyConfigured

from config.hosts import wildcard_entries

TAG = "actiondesk"
# 3.12.4 fixed ipaddress's is_private/is_global for IPv4-mapped and other ranges (CVE-2024-4032),
# which the SSRF guard's tables lean on as a safety net.
MIN_PYTHON = (3, 12, 4)
# The demo shop's published key (demo_shop.api.DEFAULT_KEY, also in docs/demo-shop.md).
DEMO_SHOP_DEFAULT_KEY = "demo-shop-key"
LLM_BACKEND_KINDS = ("offline", "openai", "recorded")


@checks.register(TAG)
def check_webhook_signing(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    if settings.ESCALATION_WEBHOOK_SIGN and not settings.ESCALATION_WEBHOOK_SECRET:
        return [
            checks.Error(
                "ESCALATION_WEBHOOK_SIGN is on but ESCALATION_WEBHOOK_SECRET is empty.",
                hint="Set ESCALATION_WEBHOOK_SECRET to a long random string, "
                "or set ESCALATION_WEBHOOK_SIGN=false.",
                id="actiondesk.E001",
            )
        ]
    return []


@checks.register(TAG)
def check_llm_backend(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    if settings.LLM_BACKENDS:
        return _check_named_backends()
    errors: list[checks.CheckMessage] = []
    if settings.LLM_BACKEND not in LLM_BACKEND_KINDS:
        errors.append(
            checks.Error(
                f"LLM_BACKEND={settings.LLM_BACKEND!r} is not a known backend kind.",
                hint=f"Use one of: {', '.join(LLM_BACKEND_KINDS)}.",
                id="actiondesk.E002",
            )
        )
    if settings.LLM_BACKEND == "openai":
        if not settings.LLM_BASE_URL:
            errors.append(
                checks.Error(
                    "LLM_BACKEND=openai needs the server's address.",
                    hint="Set LLM_BASE_URL (for example http://127.0.0.1:11434/v1 for Ollama "
                    "or https://api.openai.com/v1).",
                    id="actiondesk.E003",
                )
            )
        elif not settings.LLM_BASE_URL.startswith(("http://", "https://")):
            errors.append(
                checks.Error(
                    f"LLM_BASE_URL={settings.LLM_BASE_URL!r} is not an http(s) URL.",
                    hint="Set LLM_BASE_URL to the server's /v1 address.",
                    id="actiondesk.E004",
                )
            )
        if not settings.LLM_MODEL:
            errors.append(
                checks.Error(
                    "LLM_BACKEND=openai needs a model name.",
                    hint="Set LLM_MODEL (for example gpt-4o-mini or llama3.1).",
                    id="actiondesk.E005",
                )
            )
    unknown = [name for name in settings.LLM_FALLBACK if name not in LLM_BACKEND_KINDS]
    if unknown:
        errors.append(
            checks.Error(
                f"LLM_FALLBACK names unknown backends: {', '.join(unknown)}.",
                hint=f"List backends from: {', '.join(LLM_BACKEND_KINDS)}.",
                id="actiondesk.E006",
            )
        )
    return errors


def _check_named_backends() -> list[checks.CheckMessage]:
    """``LLM_BACKENDS`` parses, and the default backend is one of its names. (Fallback names
    may be the admin's backends, which the registry checks when it is built.)"""
    from conversations.llm.registry import configs_from_settings
    from conversations.llm.types import LLMConfigurationError

    try:
        configs, default = configs_from_settings(settings)
    except LLMConfigurationError as exc:
        return [
            checks.Error(
                f"LLM_BACKENDS is invalid: {exc}",
                hint="See docs/llm-backends.md for the JSON and TOML forms.",
                id="actiondesk.E008",
            )
        ]
    names = [config.name for config in configs] + ["offline"]
    if default not in names:
        return [
            checks.Error(
                f"LLM_DEFAULT_BACKEND={default!r} is not in LLM_BACKENDS.",
                hint=f"Use one of: {', '.join(names)}.",
                id="actiondesk.E009",
            )
        ]
    return []


@checks.register(TAG)
def check_outbound_hosts(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    bad = [h for h in settings.OUTBOUND_ALLOWED_HOSTS if "/" in h or h.strip() != h or not h]
    if bad:
        return [
            checks.Error(
                f"OUTBOUND_ALLOWED_HOSTS has entries that are not host or host:port: {bad}.",
                hint="Write hosts without scheme or path, e.g. shop.example.com,127.0.0.1:8000.",
                id="actiondesk.E007",
            )
        ]
    return []


@checks.register(TAG, deploy=True)
def check_production_shape(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """With several processes, only Redis shares groups and rate limits, and only the database
    backend lets imports outlive a request."""
    warnings: list[checks.CheckMessage] = []
    if not settings.REDIS_URL:
        warnings.append(
            checks.Warning(
                "REDIS_URL is not set: the in-memory channel layer and cache do not work "
                "across several server processes.",
                hint="Set REDIS_URL in production.",
                id="actiondesk.W001",
            )
        )
    if settings.TASKS_BACKEND != "database":
        warnings.append(
            checks.Warning(
                "TASKS_BACKEND is not 'database': imports run inside the web request.",
                hint="Set TASKS_BACKEND=database and run `manage.py db_worker`.",
                id="actiondesk.W002",
            )
        )
    return warnings


def _python_version() -> tuple[int, ...]:
    return tuple(sys.version_info[:3])


@checks.register(TAG)
def check_python_version(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    version = _python_version()
    if version < MIN_PYTHON:
        shown = ".".join(str(part) for part in version)
        return [
            checks.Error(
                f"Python {shown} is older than 3.12.4, whose ipaddress module misjudges "
                "private addresses (CVE-2024-4032) that the SSRF guard must refuse.",
                hint="Run Actiondesk on Python 3.12.4 or later (3.13 recommended).",
                id="actiondesk.E022",
            )
        ]
    return []


@checks.register(TAG)
def check_wildcard_hosts(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """``*`` in ALLOWED_HOSTS makes the WebSocket origin check admit every origin
    (SECURITY-TESTS row 3); development with DEBUG on may still use it."""
    if settings.DEBUG:
        return []
    errors: list[checks.CheckMessage] = []
    if wildcard_entries(list(settings.ALLOWED_HOSTS)):
        errors.append(
            checks.Error(
                "ALLOWED_HOSTS contains '*': every Host header and every WebSocket origin is "
                "accepted.",
                hint="Set DJANGO_ALLOWED_HOSTS to this server's host names, comma-separated.",
                id="actiondesk.E021",
            )
        )
    bad = wildcard_entries(list(settings.CSRF_TRUSTED_ORIGINS))
    if bad:
        errors.append(
            checks.Error(
                f"CSRF_TRUSTED_ORIGINS trusts every origin: {bad}.",
                hint="Set DJANGO_CSRF_TRUSTED_ORIGINS to full origins such as "
                "https://support.example.com.",
                id="actiondesk.E021",
            )
        )
    return errors


@checks.register(TAG, deploy=True)
def check_demo_shop_key(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    if settings.DEMO_SHOP_ENABLED and settings.DEMO_SHOP_API_KEY == DEMO_SHOP_DEFAULT_KEY:
        return [
            checks.Error(
                "The demo shop is enabled with its published key 'demo-shop-key': anyone can "
                "cancel and refund its orders.",
                hint="Set DEMO_SHOP_ENABLED=false, or DEMO_SHOP_API_KEY to a long random string.",
                id="actiondesk.E020",
            )
        ]
    return []


def raise_on_startup_errors() -> None:
    """Refuse to serve with settings our checks call errors (Daphne does not run checks)."""
    messages = checks.run_checks(tags=[TAG])
    errors = [m for m in messages if m.is_serious()]
    if errors:
        lines = "\n".join(f"{m.id}: {m.msg} {m.hint or ''}".strip() for m in errors)
        raise ImproperlyConfigured(f"Actiondesk refuses to start:\n{lines}")
