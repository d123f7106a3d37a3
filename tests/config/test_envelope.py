"""Every /api/v1 response travels in the envelope, whatever failed (SPEC §11)."""

from __future__ import annotations

from typing import Any

import pytest
import structlog
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest
from django.test import Client
from django.urls import path
from ninja import Schema
from ninja.errors import Throttled

from config.api import create_api
from config.errors import ApplicationError, ErrorCode

# An API built like the real one, with endpoints that fail in every way the envelope covers.
test_api = create_api(urls_namespace="envelope-test", auth=None, throttle=[])


class ItemIn(Schema):
    name: str
    quantity: int


@test_api.post("/items")
def create_item(request: HttpRequest, payload: ItemIn) -> dict[str, Any]:
    return {"name": payload.name, "quantity": payload.quantity}


@test_api.get("/domain-error")
def domain_error(request: HttpRequest) -> None:
    raise ApplicationError(
        ErrorCode.ALREADY_CLAIMED, "Claimed by ana at 10:02.", details={"winner": "ana"}
    )


@test_api.get("/rate-limited")
def rate_limited(request: HttpRequest) -> None:
    raise ApplicationError(ErrorCode.RATE_LIMITED, "Slow down.", retry_after=7)


@test_api.get("/throttled")
def throttled(request: HttpRequest) -> None:
    raise Throttled(wait=2.4)  # type: ignore[arg-type]


@test_api.get("/forbidden")
def forbidden(request: HttpRequest) -> None:
    raise PermissionDenied


@test_api.get("/missing")
def missing(request: HttpRequest) -> None:
    raise Http404("no such thing")


@test_api.get("/boom")
def boom(request: HttpRequest) -> None:
    raise RuntimeError("database password is hunter2")


urlpatterns = [path("api/test/", test_api.urls)]

pytestmark = pytest.mark.urls("tests.config.test_envelope")


def _envelope(response: Any) -> dict[str, Any]:
    body = response.json()
    assert set(body) == {"success", "data", "error"}, body
    return body


def test_success_is_wrapped(client: Client) -> None:
    response = client.post(
        "/api/test/items", {"name": "mug", "quantity": 2}, content_type="application/json"
    )
    assert response.status_code == 200
    assert _envelope(response) == {
        "success": True,
        "data": {"name": "mug", "quantity": 2},
        "error": None,
    }


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "mug"}, "body.payload.quantity"),
        ({"name": "mug", "quantity": "many"}, "body.payload.quantity"),
        ({"quantity": 1}, "body.payload.name"),
    ],
)
def test_validation_error_lists_fields(client: Client, body: dict[str, Any], field: str) -> None:
    response = client.post("/api/test/items", body, content_type="application/json")
    assert response.status_code == 422
    error = _envelope(response)["error"]
    assert error["code"] == "validation_error"
    assert field in [f["field"] for f in error["details"]["fields"]]


def test_malformed_json_body_is_an_enveloped_client_error(client: Client) -> None:
    response = client.post("/api/test/items", "{not json", content_type="application/json")
    assert response.status_code in (400, 422)
    assert _envelope(response)["success"] is False


def test_domain_error_keeps_code_and_details(client: Client) -> None:
    response = client.get("/api/test/domain-error")
    assert response.status_code == 409
    assert _envelope(response)["error"] == {
        "code": "already_claimed",
        "message": "Claimed by ana at 10:02.",
        "details": {"winner": "ana"},
    }


@pytest.mark.parametrize(("url", "retry_after"), [("rate-limited", "7"), ("throttled", "3")])
def test_429_carries_retry_after(client: Client, url: str, retry_after: str) -> None:
    response = client.get(f"/api/test/{url}")
    assert response.status_code == 429
    assert response["Retry-After"] == retry_after
    assert _envelope(response)["error"]["code"] == "rate_limited"


def test_403(client: Client) -> None:
    response = client.get("/api/test/forbidden")
    assert response.status_code == 403
    assert _envelope(response)["error"]["code"] == "permission_denied"


def test_404_from_a_view(client: Client) -> None:
    response = client.get("/api/test/missing")
    assert response.status_code == 404
    assert _envelope(response)["error"]["code"] == "not_found"


def test_405_names_allowed_methods(client: Client) -> None:
    response = client.delete("/api/test/items")
    assert response.status_code == 405
    error = _envelope(response)["error"]
    assert error["code"] == "method_not_allowed"
    assert error["details"]["allowed_methods"] == ["POST"]


def test_500_hides_the_traceback_and_logs_with_request_id(
    client: Client, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings.TRUST_REQUEST_ID_HEADER = True  # a proxy in front sets the id
    # An earlier test in the worker may have cached config.api's logger, which capture_logs
    # would then miss.
    monkeypatch.setattr("config.api.logger", structlog.get_logger("config.api"))
    with structlog.testing.capture_logs(
        processors=[structlog.contextvars.merge_contextvars]
    ) as logs:
        response = client.get("/api/test/boom", headers={"X-Request-ID": "req-123"})
    assert response.status_code == 500
    text = response.content.decode()
    assert "hunter2" not in text and "Traceback" not in text
    error = _envelope(response)["error"]
    assert error["code"] == "internal_error"
    assert error["details"] == {"request_id": "req-123"}
    assert response["X-Request-ID"] == "req-123"
    failures = [e for e in logs if e["event"] == "api_request_failed"]
    assert failures and failures[0]["request_id"] == "req-123"
