"""The upstream credential of a spec is write-only in the admin for everyone: viewers, support
agents and supervisors see "set" or "not set", never the value; saving the form empty keeps it,
"Remove the credential" clears it. The API never returns it either."""

from __future__ import annotations

from typing import Any, cast

import pytest
from django.contrib.auth.models import User
from django.test import Client

from openapi_import.models import ApiSpec
from tests.openapi_import.factories import ApiSpecFactory

pytestmark = pytest.mark.django_db

SECRET = "sk_live_upstream_4f9c2b7e1d"


@pytest.fixture
def spec() -> ApiSpec:
    return cast(ApiSpec, ApiSpecFactory(auth_header="X-Api-Key", auth_value=SECRET))


def change_page(client: Client, user: User, spec: ApiSpec) -> str:
    client.force_login(user)
    response = client.get(f"/admin/openapi_import/apispec/{spec.pk}/change/")
    assert response.status_code == 200
    return response.content.decode()


@pytest.mark.parametrize("who", ["viewer", "support_agent", "supervisor"])
def test_nobody_sees_the_credential_on_the_change_page(
    who: str, request: pytest.FixtureRequest, client: Client, spec: ApiSpec
) -> None:
    user: User = request.getfixturevalue(who)

    html = change_page(client, user, spec)

    assert SECRET not in html
    assert "Credential" in html and ">set<" in html.replace("\n", "").replace(" ", "")


def test_a_spec_without_credential_says_not_set(client: Client, viewer: User) -> None:
    spec = cast(ApiSpec, ApiSpecFactory(auth_value=""))

    html = change_page(client, viewer, spec)

    assert "not set" in html


def _save(client: Client, spec: ApiSpec, **changes: Any) -> Any:
    data = {
        "title": spec.title,
        "base_url": spec.base_url,
        "auth_header": spec.auth_header,
        "auth_value": "",
        **changes,
    }
    return client.post(f"/admin/openapi_import/apispec/{spec.pk}/change/", data)


def test_saving_the_form_empty_keeps_the_credential(
    client: Client, supervisor: User, spec: ApiSpec
) -> None:
    client.force_login(supervisor)

    response = _save(client, spec, title="Renamed shop")

    assert response.status_code == 302
    spec.refresh_from_db()
    assert (spec.title, spec.auth_value) == ("Renamed shop", SECRET)


def test_a_new_value_replaces_the_credential(
    client: Client, supervisor: User, spec: ApiSpec
) -> None:
    client.force_login(supervisor)

    assert _save(client, spec, auth_value="new-key-123").status_code == 302

    spec.refresh_from_db()
    assert spec.auth_value == "new-key-123"


def test_clear_removes_the_credential(client: Client, supervisor: User, spec: ApiSpec) -> None:
    client.force_login(supervisor)

    assert _save(client, spec, clear_auth_value="on").status_code == 302

    spec.refresh_from_db()
    assert spec.auth_value == ""
    assert "not set" in change_page(client, supervisor, spec)


def test_clear_and_a_new_value_together_are_refused_and_change_nothing(
    client: Client, supervisor: User, spec: ApiSpec
) -> None:
    client.force_login(supervisor)

    response = _save(client, spec, auth_value="other", clear_auth_value="on", title="X")

    assert response.status_code == 200
    assert "Either write a new credential or remove it" in response.content.decode()
    before = spec.title
    spec.refresh_from_db()
    assert (spec.title, spec.auth_value) == (before, SECRET)


def test_the_add_page_takes_a_credential(client: Client, supervisor: User) -> None:
    client.force_login(supervisor)
    data = {"title": "New", "base_url": "https://a.example", "auth_header": "X-Key"}

    response = client.post("/admin/openapi_import/apispec/add/", {**data, "auth_value": "k1"})

    assert response.status_code == 302
    assert ApiSpec.objects.get(title="New").auth_value == "k1"


def test_the_api_never_returns_the_credential(api: Client, spec: ApiSpec) -> None:
    response = api.get("/api/v1/specs")

    assert response.status_code == 200
    assert SECRET not in response.content.decode()
    assert "auth_value" not in response.content.decode()
