"""Rate limits, docs access and the declared errors of /api/v1 (issue 17 items 5, 7, 8)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client

from access.auth import parse_rate
from access.services import api_key_issue

ROOT = Path(__file__).resolve().parents[2]


def key_client(owner: User, scopes: list[str]) -> Client:
    issued = api_key_issue(owner=owner, name="t", scopes=scopes)
    return Client(headers={"Authorization": f"Bearer {issued.plaintext}"})


def _assert_429(response: Any) -> None:
    assert response.status_code == 429
    body = response.json()
    assert body["success"] is False and body["error"]["code"] == "rate_limited"
    retry = int(response["Retry-After"])
    assert 1 <= retry <= 60 and body["error"]["details"]["retry_after"] == retry


@pytest.mark.django_db
def test_per_key_limit_answers_429_with_retry_after(supervisor: User, settings: Any) -> None:
    settings.API_RATE_LIMIT = "3/m"
    first, second = key_client(supervisor, ["chat"]), key_client(supervisor, ["chat"])
    statuses = [first.get("/api/v1/me").status_code for _ in range(3)]
    assert statuses == [200, 200, 200]
    _assert_429(first.get("/api/v1/me"))
    # Another key has its own count.
    assert second.get("/api/v1/me").status_code == 200


@pytest.mark.django_db
def test_anonymous_requests_are_limited_per_address(supervisor: User, settings: Any) -> None:
    settings.API_ANON_RATE_LIMIT = "2/m"
    anonymous = Client(REMOTE_ADDR="203.0.113.7")
    guessing = Client(REMOTE_ADDR="203.0.113.7", headers={"Authorization": "Bearer ad_x_y"})
    assert anonymous.get("/api/v1/me").status_code == 401
    assert guessing.get("/api/v1/me").status_code == 401
    _assert_429(anonymous.get("/api/v1/me"))
    _assert_429(guessing.get("/api/v1/conversations"))
    # A spoofed X-Forwarded-For does not escape it; another address has its own count.
    spoofing = Client(REMOTE_ADDR="203.0.113.7", HTTP_X_FORWARDED_FOR="198.51.100.1")
    _assert_429(spoofing.get("/api/v1/me"))
    assert Client(REMOTE_ADDR="203.0.113.8").get("/api/v1/me").status_code == 401
    # Valid credentials from the same address are not anonymous.
    valid = key_client(supervisor, ["chat"])
    assert valid.get("/api/v1/me", REMOTE_ADDR="203.0.113.7").status_code == 200


@pytest.mark.parametrize(
    ("rate", "parsed"), [("600/m", (600, 60)), ("5/s", (5, 1)), ("10/hour", (10, 3600))]
)
def test_parse_rate(rate: str, parsed: tuple[int, int]) -> None:
    assert parse_rate(rate) == parsed


@pytest.mark.parametrize("rate", ["", "x/m", "0/m", "5/w", "5"])
def test_parse_rate_refuses_nonsense(rate: str) -> None:
    with pytest.raises(ValueError, match="rate"):
        parse_rate(rate)


RACER = """
import sys, django
django.setup()
from types import SimpleNamespace
from access.auth import KeyRateThrottle
throttle = KeyRateThrottle("60/m")
request = SimpleNamespace(api_key=SimpleNamespace(pk=424242), user=None)
allowed = sum(throttle.allow_request(request) for _ in range(50))
print(allowed)
"""


@pytest.mark.redis
def test_two_processes_racing_share_one_atomic_count(redis_url: str) -> None:
    """Two processes, 50 requests each at once, one limit of 60: exactly 60 get through
    (a read-modify-write count would let more through, or lose hits)."""
    from django.core.cache import cache

    cache.clear()
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings.test"}
    racers = [
        subprocess.Popen(
            [sys.executable, "-c", RACER], cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True
        )
        for _ in range(2)
    ]
    counts = [int(racer.communicate(timeout=60)[0].strip().splitlines()[-1]) for racer in racers]
    assert sum(counts) == 60, counts
    cache.clear()


# --- Docs and schema ---------------------------------------------------------------------------


@pytest.mark.django_db
def test_docs_and_schema_need_staff_or_a_docs_scoped_key(supervisor: User, user: User) -> None:
    anonymous = Client()
    response = anonymous.get("/api/v1/openapi.json")
    assert response.status_code == 401 and response.json()["error"]["code"] == "not_authenticated"
    assert anonymous.get("/api/v1/docs", HTTP_ACCEPT="text/html").status_code == 302
    no_docs = key_client(supervisor, ["chat"])
    refused = no_docs.get("/api/v1/openapi.json")
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "permission_denied"
    bad_key = Client(headers={"Authorization": "Bearer ad_nope_nope"})
    assert bad_key.get("/api/v1/openapi.json").status_code == 401
    docs_key = key_client(supervisor, ["docs"])
    assert docs_key.get("/api/v1/openapi.json").json()["openapi"].startswith("3.")
    assert docs_key.get("/api/v1/docs").status_code == 200
    staff = Client()
    staff.force_login(supervisor)
    assert staff.get("/api/v1/openapi.json").status_code == 200
    customer = Client()
    customer.force_login(user)
    assert customer.get("/api/v1/openapi.json").status_code == 401


def _schema(supervisor: User) -> dict[str, Any]:
    client = Client()
    client.force_login(supervisor)
    return json.loads(client.get("/api/v1/openapi.json").content)


@pytest.mark.django_db
def test_every_operation_declares_every_error_in_the_envelope(supervisor: User) -> None:
    schema = _schema(supervisor)
    operations = [
        (path, method, operation)
        for path, item in schema["paths"].items()
        for method, operation in item.items()
    ]
    assert len(operations) > 20
    for path, method, operation in operations:
        expected = {"400", "401", "403", "404", "413", "422", "429", "500", "503"}
        if method != "get":
            expected.add("409")
        assert expected <= set(operation["responses"]), (path, method)
        for status in expected:
            body = operation["responses"][status]["content"]["application/json"]["schema"]
            assert body["properties"]["error"] == {"$ref": "#/components/schemas/Error"}
        assert "Retry-After" in operation["responses"]["429"]["headers"]
        names = [p["name"] for p in operation.get("parameters", [])]
        assert ("Idempotency-Key" in names) == (method == "post"), (path, method)
    codes = schema["components"]["schemas"]["Error"]["properties"]["code"]["enum"]
    assert {"idempotency_key_in_use", "idempotency_key_reused", "rate_limited"} <= set(codes)


@pytest.mark.django_db
def test_the_schema_lists_the_program_api(supervisor: User) -> None:
    paths = _schema(supervisor)["paths"]
    for path in (
        "/api/v1/conversations",
        "/api/v1/conversations/{conversation_id}",
        "/api/v1/conversations/{conversation_id}/messages",
        "/api/v1/conversations/{conversation_id}/messages/{message_id}/reply",
        "/api/v1/conversations/{conversation_id}/close",
        "/api/v1/conversations/{conversation_id}/interrupts/{interrupt_id}/approve",
        "/api/v1/conversations/{conversation_id}/interrupts/{interrupt_id}/reject",
        "/api/v1/interrupts",
        "/api/v1/agents",
        "/api/v1/agents/{slug}",
    ):
        assert path in paths, path
    assert set(paths["/api/v1/conversations/{conversation_id}/messages"]["post"]["responses"]) >= {
        "200",
        "202",
    }
