"""The real /api/v1: health, readiness, unknown URLs, authentication and scopes."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.utils import timezone
from pytest_django.fixtures import Settings as SettingsWrapper

from access.models import ApiKey
from access.services import IssuedKey, api_key_issue, api_key_revoke


def test_liveness(client: Client) -> None:
    response = client.get("/api/v1/health")
    assert response.status_code == 200
    assert response.json() == {"success": True, "data": {"status": "ok"}, "error": None}
    assert response["X-Request-ID"]


@pytest.mark.django_db
def test_readiness_ok_checks_the_database(client: Client) -> None:
    response = client.get("/api/v1/health/ready")
    assert response.status_code == 200
    checks = response.json()["data"]["checks"]
    assert checks["database"] == "ok"


@pytest.mark.django_db
def test_readiness_checks_redis_when_configured(client: Client, redis_url: str) -> None:
    response = client.get("/api/v1/health/ready")
    assert response.status_code == 200
    assert response.json()["data"]["checks"] == {"database": "ok", "redis": "ok"}


@pytest.mark.django_db
def test_readiness_fails_when_redis_is_unreachable(
    client: Client, settings: SettingsWrapper
) -> None:
    settings.REDIS_URL = "redis://127.0.0.1:1/0"
    settings.READINESS_TIMEOUT_SECONDS = 0.5
    response = client.get("/api/v1/health/ready")
    assert response.status_code == 503
    error = response.json()["error"]
    assert error["code"] == "service_unavailable"
    assert error["details"]["failed"] == ["redis"]
    assert error["details"]["checks"]["database"] == "ok"
    assert "redis" in error["message"]


def test_unknown_url_is_an_enveloped_404(client: Client) -> None:
    response = client.get("/api/v1/does-not-exist")
    assert response.status_code == 404
    assert response.json() == {
        "success": False,
        "data": None,
        "error": {"code": "not_found", "message": "Nothing is at this address.", "details": {}},
    }


def test_wrong_method_is_an_enveloped_405(client: Client) -> None:
    response = client.post("/api/v1/health")
    assert response.status_code == 405
    assert response.json()["error"]["code"] == "method_not_allowed"


@pytest.mark.django_db
def test_no_credentials_is_401(client: Client) -> None:
    response = client.get("/api/v1/me")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "not_authenticated"
    assert "Bearer" in response["WWW-Authenticate"]


@pytest.mark.django_db
def test_api_key_authenticates(api: Client, api_key: IssuedKey) -> None:
    response = api.get("/api/v1/me")
    assert response.status_code == 200
    data = response.json()["data"]
    assert data["username"] == "sup"
    assert data["roles"] == ["supervisor"]
    assert data["api_key"] == f"ad_{api_key.api_key.prefix}_…"
    api_key.api_key.refresh_from_db()
    assert api_key.api_key.last_used_at is not None


@pytest.mark.django_db
@pytest.mark.parametrize(
    "header",
    [
        "Bearer ad_nothing_here",
        "Bearer not-a-key",
        "Basic dXNlcjpwYXNz",
        "Bearer ",
    ],
)
def test_bad_keys_are_401(client: Client, api_key: IssuedKey, header: str) -> None:
    response = client.get("/api/v1/me", headers={"Authorization": header})
    assert response.status_code == 401


@pytest.mark.django_db
def test_key_with_right_prefix_but_wrong_secret_is_401(client: Client, api_key: IssuedKey) -> None:
    forged = api_key.plaintext[:-4] + "AAAA"
    response = client.get("/api/v1/me", headers={"Authorization": f"Bearer {forged}"})
    assert response.status_code == 401


@pytest.mark.django_db
def test_key_in_query_string_is_refused(client: Client, api_key: IssuedKey) -> None:
    response = client.get(f"/api/v1/me?api_key={api_key.plaintext}")
    assert response.status_code == 401


@pytest.mark.django_db
def test_revoked_and_expired_keys_are_401(client: Client, supervisor: User) -> None:
    revoked = api_key_issue(owner=supervisor, name="old", scopes=["chat"])
    api_key_revoke(api_key=revoked.api_key)
    expired = api_key_issue(
        owner=supervisor,
        name="expired",
        scopes=["chat"],
        expires_at=timezone.now() - timedelta(seconds=1),
    )
    for issued in (revoked, expired):
        response = client.get("/api/v1/me", headers={"Authorization": f"Bearer {issued.plaintext}"})
        assert response.status_code == 401


@pytest.mark.django_db
def test_key_is_stored_hashed(api_key: IssuedKey) -> None:
    stored = ApiKey.objects.get(pk=api_key.api_key.pk)
    secret = api_key.plaintext.rsplit("_", 1)[1]
    assert secret not in stored.key_hash
    assert len(stored.key_hash) == 64


@pytest.mark.django_db
def test_unknown_scope_is_refused(supervisor: User) -> None:
    with pytest.raises(ValueError, match="Unknown scopes: root"):
        api_key_issue(owner=supervisor, name="x", scopes=["root"])


@pytest.mark.django_db
def test_rate_limit_per_key(api: Client, settings: SettingsWrapper) -> None:
    settings.API_RATE_LIMIT = "2/m"
    statuses = [api.get("/api/v1/me").status_code for _ in range(3)]
    assert statuses == [200, 200, 429]


@pytest.mark.django_db
def test_non_staff_session_is_not_enough(client: Client, user: User) -> None:
    client.force_login(user)
    assert client.get("/api/v1/me").status_code == 401


@pytest.mark.django_db
def test_staff_session_works(client: Client, supervisor: User) -> None:
    client.force_login(supervisor)
    response = client.get("/api/v1/me")
    assert response.status_code == 200
    assert response.json()["data"]["api_key"] is None


@pytest.mark.django_db
def test_openapi_schema_documents_the_envelope(client: Client, supervisor: User) -> None:
    client.force_login(supervisor)
    schema = client.get("/api/v1/openapi.json").json()
    health = schema["paths"]["/api/v1/health"]["get"]["responses"]["200"]
    body = health["content"]["application/json"]["schema"]
    assert body["required"] == ["success", "data", "error"]
    assert "Error" in schema["components"]["schemas"]


@pytest.mark.django_db
def test_api_docs_are_staff_only(client: Client, user: User) -> None:
    assert client.get("/api/v1/docs").status_code == 302
    client.force_login(user)
    assert client.get("/api/v1/docs").status_code == 302
