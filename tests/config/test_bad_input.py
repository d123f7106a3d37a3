"""Bad input never gives a 500 (issue 12 item 5): bodies over the upload limit are 413
``payload_too_large``, ``limit``/``offset`` are bounded on every list endpoint, and a NUL in any
query value is 422. The PostgreSQL cases run in CI (``postgres`` fixture)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.test import Client

pytestmark = pytest.mark.django_db

LISTS = [
    "/api/v1/escalations",
    "/api/v1/imports",
    "/api/v1/specs",
]


def test_a_body_over_the_upload_limit_is_413_in_the_envelope(api: Client, settings: Any) -> None:
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1024
    body = json.dumps({"text": "x" * 4096})
    response = api.post("/api/v1/imports", body, content_type="application/json")
    assert response.status_code == 413
    error = response.json()["error"]
    assert error["code"] == "payload_too_large"
    assert error["details"] == {"max_bytes": 1024}


def test_a_form_body_over_the_limit_outside_the_api_is_413(client: Client, settings: Any) -> None:
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1024
    response = client.post("/admin/login/", {"username": "u", "password": "p" * 4096})
    assert response.status_code == 413


@pytest.mark.parametrize("path", LISTS)
@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("limit=0", "limit"),
        ("limit=501", "limit"),
        ("limit=99999999999999999999", "limit"),
        ("offset=-1", "offset"),
        ("offset=99999999999999999999", "offset"),
        ("offset=1000000001", "offset"),
    ],
)
def test_limit_and_offset_out_of_range_are_422(
    api: Client, path: str, query: str, field: str
) -> None:
    response = api.get(f"{path}?{query}")
    assert response.status_code == 422, response.content
    fields = [f["field"] for f in response.json()["error"]["details"]["fields"]]
    assert any(f.endswith(field) for f in fields)


@pytest.mark.parametrize("path", LISTS)
def test_limit_and_offset_at_their_bounds_are_served(api: Client, path: str) -> None:
    response = api.get(f"{path}?limit=500&offset=1000000000")
    assert response.status_code == 200
    assert response.json()["data"]["items"] == []


def test_bounds_hold_on_postgresql_past_bigint(api: Client, postgres: None) -> None:
    """Today a value past bigint gave PostgreSQL's 500; now 422, and in-range still 200."""
    assert api.get("/api/v1/escalations?offset=9223372036854775808").status_code == 422
    assert api.get("/api/v1/escalations?limit=500&offset=1000000000").status_code == 200
    assert api.get("/api/v1/escalations/9223372036854775808").status_code in (404, 422)


@pytest.mark.parametrize(
    "query",
    ["status=%00", "status=wait%00ing", "na%00me=x", "status=waiting&x=%00"],
)
def test_nul_in_a_query_value_is_422(api: Client, query: str) -> None:
    response = api.get(f"/api/v1/escalations?{query}")
    assert response.status_code == 422
    body = response.json()
    assert body["success"] is False and body["error"]["code"] == "validation_error"
    assert response["X-Request-ID"]


def test_nul_in_a_page_query_is_422_too(client: Client) -> None:
    response = client.get("/?q=%00")
    assert response.status_code == 422
    assert b"NUL" in response.content


def test_nul_on_postgresql_is_422_not_500(api: Client, postgres: None) -> None:
    response = api.get("/api/v1/specs/1/operations?search=%00")
    assert response.status_code == 422
