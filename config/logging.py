"""Structured logging: structlog through the standard library, as console lines or JSON.

HTTP requests get their ``request_id`` (and user) bound by django-structlog's middleware.
django-structlog does not cover WebSockets, so consumers call :func:`bind_ws_context` at connect
(a ``connection_id`` per socket); the agent runtime adds ``turn_id``, ``backend`` and ``model``.
"""

from __future__ import annotations

import logging
import logging.config
import secrets
from typing import Any

import structlog

# Keys whose values are ours (ids, names, timings), not user text: not scanned for PII.
_NOT_PII = frozenset(
    {
        "event",
        "timestamp",
        "level",
        "logger",
        "request_id",
        "ws_path",
        "conversation_id",
        "connection_id",
        "turn_id",
        "backend",
        "model",
        "code",
    }
)
# Our own fields (no user text, no secret): not scanned for secrets either.
_NOT_SECRET = frozenset({"timestamp", "level", "logger", "request_id", "connection_id", "turn_id"})


def redact_secrets(logger: Any, method: str, event_dict: dict[str, Any]) -> dict[str, Any]:
    """Replace API keys, tokens, cookies and credential query values with ``[redacted]`` in
    every logged value, structlog's and the standard library's alike (``event`` is the whole
    message of a stdlib record), so no handler or format can print one (SECURITY-TESTS row 25).
    """
    from config.redaction import REDACTED, is_secret_field, redact

    for key, value in event_dict.items():
        if key in _NOT_SECRET or key.startswith("_"):
            continue
        if is_secret_field(key) and value:
            event_dict[key] = REDACTED
        elif isinstance(value, str | dict | list | tuple):
            event_dict[key] = redact(value)
    return event_dict


def mask_pii(logger: Any, method: str, event_dict: dict[str, Any]) -> dict[str, Any]:
    """Mask emails, phone numbers, cards and IBANs in every logged value (SPEC §12)."""
    from config.pii import mask, mask_request_line

    for key, value in event_dict.items():
        if key == "request" and isinstance(value, str):
            event_dict[key] = mask_request_line(value)  # "GET /path?query": keeps dates
        elif key not in _NOT_PII and isinstance(value, str | dict | list | tuple):
            event_dict[key] = mask(value)
    if event_dict.get("_from_structlog") is False and isinstance(event_dict.get("event"), str):
        # A standard-library record's message is free text ("Not Found: /orders/ana@…").
        event_dict["event"] = mask(event_dict["event"])
    return event_dict


def _processors() -> list[Any]:
    return [
        structlog.contextvars.merge_contextvars,
        redact_secrets,
        mask_pii,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.stdlib.PositionalArgumentsFormatter(),
        structlog.processors.StackInfoRenderer(),
        structlog.processors.UnicodeDecoder(),
    ]


def build_logging(*, log_format: str, level: str) -> dict[str, Any]:
    """The ``LOGGING`` dict for ``log_format`` (``console`` or ``json``); also configures
    structlog so that both structlog and stdlib loggers render the same way."""
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if log_format == "json"
        else structlog.dev.ConsoleRenderer(colors=False)
    )
    structlog.configure(
        processors=[*_processors(), structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    final: list[Any] = [structlog.stdlib.ProcessorFormatter.remove_processors_meta]
    if log_format == "json":
        final.append(structlog.processors.format_exc_info)
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {
            "structured": {
                "()": structlog.stdlib.ProcessorFormatter,
                "processors": [*final, renderer],
                "foreign_pre_chain": _processors(),
            },
        },
        "handlers": {
            "default": {"class": "logging.StreamHandler", "formatter": "structured"},
        },
        "root": {"handlers": ["default"], "level": level},
        "loggers": {
            # Not Django's own console handler (raw lines, unredacted: "Unexpected auth -
            # '<key>'"): its records go to the root's handler like everyone's.
            "django": {"handlers": [], "level": level, "propagate": True},
            "django.db.backends": {"level": "INFO" if level == "DEBUG" else level},
            "daphne": {"level": level},
            "httpx": {"level": "WARNING"},
            "httpcore": {"level": "WARNING"},
            # The openai client's own HTTP stack logs a line per request at INFO.
            "httpx2": {"level": "WARNING"},
            "httpcore2": {"level": "WARNING"},
        },
    }


def configure(config: dict[str, Any]) -> None:
    """``LOGGING_CONFIG``: the dict config, and Python warnings routed through logging
    (``py.warnings``) so they too are redacted and rendered as JSON instead of raw stderr."""
    logging.config.dictConfig(config)
    logging.captureWarnings(True)


def bind_ws_context(
    scope: dict[str, Any], *, conversation_id: object | None = None, **extra: object
) -> None:
    """Bind a fresh ``connection_id`` (the socket's request id, also kept in the scope), the
    socket's path, user and conversation to every log line written by this consumer's task
    (contextvars are per task, so connections do not leak into each other). Turns started
    from the socket copy the context: their lines carry it too, with their ``turn_id``."""
    user = scope.get("user")
    user_id = getattr(user, "pk", None) if getattr(user, "is_authenticated", False) else None
    connection_id = scope.setdefault("connection_id", secrets.token_hex(8))
    context: dict[str, object] = {"connection_id": connection_id, "ws_path": scope.get("path", "")}
    if user_id is not None:
        context["user_id"] = user_id
    if conversation_id is not None:
        context["conversation_id"] = str(conversation_id)
    context.update(extra)
    structlog.contextvars.bind_contextvars(**context)
