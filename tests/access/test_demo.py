from __future__ import annotations

import pytest
from django.contrib.auth import authenticate
from django.core.management import CommandError, call_command
from django.test import Client
from pytest_django.fixtures import Settings as SettingsWrapper


@pytest.mark.django_db
def test_setup_demo_creates_staff_accounts_once(
    settings: SettingsWrapper, capsys: pytest.CaptureFixture[str]
) -> None:
    settings.DEBUG = True
    call_command("setup_demo")
    out = capsys.readouterr().out
    assert "supervisor / password actiondesk-demo" in out
    user = authenticate(username="supervisor", password="actiondesk-demo")
    assert user is not None and user.is_staff and user.is_superuser
    agent = authenticate(username="agent", password="actiondesk-demo")
    assert agent is not None and list(agent.groups.values_list("name", flat=True)) == [
        "support_agent"
    ]
    user.set_password("changed-by-owner")
    user.save()
    call_command("setup_demo")
    assert "supervisor / existing account" in capsys.readouterr().out
    assert authenticate(username="supervisor", password="changed-by-owner") is not None


@pytest.mark.django_db
def test_setup_demo_refuses_without_debug() -> None:
    with pytest.raises(CommandError, match="DEBUG is off"):
        call_command("setup_demo")


@pytest.mark.django_db
def test_admin_login_with_demo_account(client: Client, settings: SettingsWrapper) -> None:
    settings.DEBUG = True
    call_command("setup_demo")
    response = client.post(
        "/admin/login/?next=/admin/",
        {"username": "supervisor", "password": "actiondesk-demo"},
    )
    assert response.status_code == 302 and response["Location"] == "/admin/"
    page = client.get("/admin/")
    assert page.status_code == 200 and b"Actiondesk" in page.content
