"""API keys in the admin: a supervisor creates (secret shown once), sees and revokes them; a
support agent or viewer can do none of that."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth.models import User
from django.test import Client

from access.models import ApiKey
from access.services import api_key_authenticate, api_key_issue

pytestmark = pytest.mark.django_db

ADD = "/admin/access/apikey/add/"
LIST = "/admin/access/apikey/"


def signed_in(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_a_supervisor_creates_a_key_and_sees_the_secret_once(supervisor: User) -> None:
    client = signed_in(supervisor)
    assert client.get(ADD).status_code == 200
    response = client.post(
        ADD, {"name": "crm sync", "owner": supervisor.pk, "scopes": ["chat", "analytics"]}
    )
    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]
    page = response.content.decode()
    match = re.search(r'<code id="issued-api-key">(ad_[^<]+)</code>', page)
    assert match is not None
    plaintext = match.group(1)
    key = ApiKey.objects.get()
    assert key.name == "crm sync" and key.scopes == ["analytics", "chat"]
    assert api_key_authenticate(plaintext=plaintext) == key  # it works
    assert plaintext not in key.key_hash
    # Never again: not on the list, not on the key's page.
    assert plaintext not in client.get(LIST).content.decode()
    assert plaintext not in client.get(f"{LIST}{key.pk}/change/").content.decode()


def test_a_key_needs_a_scope_and_bad_input_creates_nothing(supervisor: User) -> None:
    response = signed_in(supervisor).post(ADD, {"name": "x", "owner": supervisor.pk})
    assert response.status_code == 200 and b"This field is required" in response.content
    assert not ApiKey.objects.exists()


def test_the_list_shows_prefix_last_use_and_revocation(supervisor: User) -> None:
    issued = api_key_issue(owner=supervisor, name="reporting", scopes=["analytics"])
    api_key_authenticate(plaintext=issued.plaintext)  # sets last_used_at
    page = signed_in(supervisor).get(LIST).content.decode()
    assert "reporting" in page and issued.api_key.prefix in page
    assert "column-last_used_at" in page and "column-revoked_at" in page
    issued.api_key.refresh_from_db()
    assert issued.api_key.last_used_at is not None


def test_a_supervisor_revokes_keys_with_the_action(supervisor: User) -> None:
    one = api_key_issue(owner=supervisor, name="one", scopes=["chat"])
    two = api_key_issue(owner=supervisor, name="two", scopes=["chat"])
    response = signed_in(supervisor).post(
        LIST, {"action": "revoke", "_selected_action": [one.api_key.pk]}, follow=True
    )
    assert response.status_code == 200 and b"Revoked 1 key(s)." in response.content
    assert api_key_authenticate(plaintext=one.plaintext) is None
    assert api_key_authenticate(plaintext=two.plaintext) is not None


@pytest.mark.parametrize("role", ["support_agent", "viewer"])
def test_support_agents_and_viewers_cannot_create_see_or_revoke(
    role: str, request: pytest.FixtureRequest, supervisor: User
) -> None:
    user: User = request.getfixturevalue(role)
    issued = api_key_issue(owner=supervisor, name="theirs", scopes=["chat"])
    client = signed_in(user)
    assert client.get(ADD).status_code == 403
    response = client.post(ADD, {"name": "mine", "owner": user.pk, "scopes": ["chat"]})
    assert response.status_code == 403
    assert client.get(LIST).status_code == 403
    client.post(LIST, {"action": "revoke", "_selected_action": [issued.api_key.pk]})
    assert ApiKey.objects.count() == 1
    assert api_key_authenticate(plaintext=issued.plaintext) is not None
