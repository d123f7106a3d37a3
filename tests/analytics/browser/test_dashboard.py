"""The analytics dashboard, ops and replay pages in Chromium under the strict CSP: with data and
in the zero state, without console errors or CSP violations."""

from __future__ import annotations

from datetime import timedelta
from typing import cast

import pytest
from django.contrib.auth.models import User
from django.utils import timezone
from playwright.sync_api import Page, expect

from analytics.models import Event
from conversations.models import Conversation, Message
from conversations.services import conversation_start
from tests.browser.conftest import Console

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def supervisor(transactional_db: None) -> User:
    """A supervisor made after the role groups exist again: a transactional test's flush
    removes them."""
    from django.apps import apps

    from access.roles import SUPERVISOR, roles_sync
    from tests.factories import StaffFactory

    roles_sync(apps=apps)
    return cast(User, StaffFactory(username="sup", roles=[SUPERVISOR]))


def _log_in(page: Page, user: User, next_url: str) -> None:
    page.goto(f"/admin/login/?next={next_url}")
    page.fill("#id_username", user.username)
    page.fill("#id_password", "pw-for-tests")
    page.click("input[type=submit]")


def test_the_zero_state_explains_what_will_appear(
    page: Page, console: Console, supervisor: User
) -> None:
    _log_in(page, supervisor, "/admin/analytics/dashboard/")
    expect(page.locator("#dashboard-empty")).to_be_visible()
    expect(page.locator("[data-card=conversations] .dash-card__value")).to_have_text("0")
    expect(page.locator("#operations")).to_contain_text("No tool calls in this range.")
    assert console.errors == []


def test_the_dashboard_with_data_draws_cards_and_charts(
    page: Page, console: Console, supervisor: User
) -> None:
    now = timezone.now()
    for index, resolution in enumerate(("confirmed", "assumed", "", "")):
        conversation = conversation_start(visitor_id=f"v{index}")
        Conversation.objects.filter(pk=conversation.pk).update(
            created_at=now - timedelta(days=index),
            turn_count=1,
            resolution=resolution,
            resolved_at=now if resolution else None,
            escalated_at=now if index == 3 else None,
        )
    for outcome in ("succeeded", "succeeded", "timeout"):
        Event.objects.create(
            type="tool_called",
            operation="getOrder",
            outcome=outcome,
            latency_ms=250,
            occurred_at=now - timedelta(hours=2),
        )
    _log_in(page, supervisor, "/admin/analytics/dashboard/?range=7d")
    expect(page.locator("#dashboard-empty")).to_have_count(0)
    expect(page.locator("[data-card=conversations] .dash-card__value")).to_have_text("4")
    expect(page.locator("[data-card=ai_resolution] .dash-card__value")).to_have_text("50.0 %")
    expect(page.locator("#chart-conversations svg")).to_be_visible()
    expect(page.locator("#chart-tools svg rect.chart--bad").first).to_be_attached()
    expect(page.locator("#operations")).to_contain_text("getOrder")
    # A custom range through the form: the last day only.
    page.fill("input[name=from]", now.date().isoformat())
    page.fill("input[name=to]", now.date().isoformat())
    page.click(".dash-range button[type=submit]")
    expect(page.locator("[data-card=conversations] .dash-card__value")).to_have_text("1")

    page.goto("/admin/analytics/ops/")
    expect(page.locator("[data-card=escalation_queue]")).to_be_visible()
    first = Conversation.objects.order_by("created_at").first()
    assert first is not None
    # Straight to the table: the service would broadcast, which Playwright's loop forbids here.
    Message.objects.create(conversation=first, seq=1, role="user", content="hello")
    page.goto(f"/admin/analytics/replay/{first.pk}/")
    expect(page.locator("#replay [data-kind=customer_message]")).to_have_count(1)
    assert console.errors == []
