from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from django.test import Client
from pytest_django.fixtures import Settings


@pytest.mark.django_db
def test_metrics_are_not_public(client: Client, user: User) -> None:
    assert client.get("/metrics").status_code == 403
    client.force_login(user)
    assert client.get("/metrics").status_code == 403


@pytest.mark.django_db
def test_staff_and_token_may_scrape(client: Client, supervisor: User, settings: Settings) -> None:
    client.force_login(supervisor)
    body = client.get("/metrics").content.decode()
    assert "actiondesk_pending_interrupts" in body and "actiondesk_open_sockets" in body
    client.logout()
    settings.METRICS_TOKEN = "scrape-me"
    assert client.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 403
    response = client.get("/metrics", headers={"Authorization": "Bearer scrape-me"})
    assert (
        response.status_code == 200 and "actiondesk_tool_calls_total" in response.content.decode()
    )
