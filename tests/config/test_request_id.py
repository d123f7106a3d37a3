"""X-Request-ID from a client is used only when TRUST_REQUEST_ID_HEADER is on and the value is at
most 64 of [A-Za-z0-9-]; otherwise the request gets a fresh id, in the log lines and in the
response header alike (issue 12 item 4; SECURITY-TESTS row 46: no forged log content)."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
import structlog
from django.test import Client

pytestmark = pytest.mark.django_db

GOOD = "req-2026-12-04-abc123"


@pytest.fixture(autouse=True)
def _uncached_request_logger(monkeypatch: pytest.MonkeyPatch) -> None:
    """Another test may have cached django-structlog's logger (cache_logger_on_first_use), which
    capture_logs cannot see; a fresh lazy proxy follows the capturing configuration."""
    from django_structlog.middlewares import request

    monkeypatch.setattr(request, "logger", structlog.get_logger(request.__name__))


def _request(client: Client, value: str | None) -> tuple[str, list[str]]:
    headers = {"X-Request-ID": value} if value is not None else {}
    with structlog.testing.capture_logs(
        processors=[structlog.contextvars.merge_contextvars]
    ) as logs:
        response = client.get("/api/v1/health", headers=headers)
    assert response.status_code == 200
    logged = [
        e["request_id"] for e in logs if e["event"] in ("request_started", "request_finished")
    ]
    assert len(logged) == 2
    return response["X-Request-ID"], logged


def _is_fresh(value: str) -> bool:
    return str(uuid.UUID(value)) == value


def test_a_well_formed_id_is_kept_when_the_header_is_trusted(client: Client, settings: Any) -> None:
    settings.TRUST_REQUEST_ID_HEADER = True
    header, logged = _request(client, GOOD)
    assert header == GOOD and logged == [GOOD, GOOD]


def test_the_header_is_not_trusted_by_default(client: Client, settings: Any) -> None:
    assert settings.TRUST_REQUEST_ID_HEADER is False
    header, logged = _request(client, GOOD)
    assert header != GOOD and _is_fresh(header)
    assert logged == [header, header]


@pytest.mark.parametrize(
    "value",
    [
        "a" * 65,
        "has space",
        "line\\r\\nbreak",
        '{"event": "forged"}',
        "ünïcode",
        "semi;colon",
        "",
    ],
)
def test_a_malformed_id_is_replaced_even_when_trusted(
    client: Client, settings: Any, value: str
) -> None:
    settings.TRUST_REQUEST_ID_HEADER = True
    header, logged = _request(client, value)
    assert header != value and _is_fresh(header)
    assert logged == [header, header]


def test_sixty_four_characters_is_the_longest_kept(client: Client, settings: Any) -> None:
    settings.TRUST_REQUEST_ID_HEADER = True
    value = "A-9" * 21 + "z"
    assert len(value) == 64
    assert _request(client, value)[0] == value


def test_without_a_header_a_fresh_id_is_made(client: Client, settings: Any) -> None:
    settings.TRUST_REQUEST_ID_HEADER = True
    header, logged = _request(client, None)
    assert _is_fresh(header) and logged == [header, header]
