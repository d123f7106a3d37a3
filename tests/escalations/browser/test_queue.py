"""The whole handoff in a real browser: a customer asks for a human, a support agent on the
live queue sees it arrive without a reload, claims it and writes; the customer reads the reply,
and the agent sees the customer's answer live."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth.models import User
from playwright.sync_api import Browser, Page, expect

from escalations.models import Escalation
from tests.browser.conftest import REPORT_CSP_VIOLATIONS, Console, Server

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_customer_asks_agent_claims_and_they_chat(
    browser: Browser, page: Page, server: Server, console: Console, support_agent: User
) -> None:
    staff_context = browser.new_context(base_url=server.url)
    staff_context.set_default_timeout(10_000)
    staff_context.add_init_script(REPORT_CSP_VIOLATIONS)
    staff = staff_context.new_page()
    staff_console = Console()
    staff.on("console", staff_console.record)
    staff.on("pageerror", lambda error: staff_console.errors.append(f"uncaught: {error}"))

    # The agent logs in and opens the live queue: nobody waits yet.
    staff.goto("/admin/login/?next=/admin/escalations/queue/")
    staff.fill("#id_username", support_agent.username)
    staff.fill("#id_password", "pw-for-tests")
    staff.click("input[type=submit]")
    expect(staff.locator("#queue-status")).to_have_attribute("data-status", "connected")
    expect(staff.locator("#queue-rows tr")).to_have_count(0)
    title = staff.title()

    # The customer asks for a human.
    page.goto("/")
    expect(page.locator("#chat-status")).to_have_attribute("data-status", "idle")
    page.click("#chat-escalate")  # the first action: it starts the conversation
    expect(page.locator("#chat-status")).to_have_attribute("data-status", "connected")
    expect(page.locator("#chat-log [data-kind=escalated]")).to_have_count(1)

    # It arrives on the queue without a reload, counted in the tab title.
    row = staff.locator("#queue-rows tr[data-status=waiting]")
    expect(row).to_have_count(1)
    expect(row.locator(".esc-trigger")).to_have_text("Customer asked for a human")
    expect(row.locator(".esc-trigger")).to_have_attribute("data-trigger", "customer_button")
    expect(staff).to_have_title(f"(1) {title}")
    assert staff.evaluate("() => window.actiondeskQueue.snapshot().rows") == 1

    # Claim: the handoff page opens and follows the conversation.
    row.locator("button.esc-claim").click()
    expect(staff).to_have_url(re.compile(r"/admin/escalations/handoff/\d+/$"))
    expect(staff.locator("#handoff-state")).to_contain_text("Claimed")
    expect(staff.locator("#handoff-status")).to_have_attribute("data-status", "live")
    expect(page.locator("#chat-log [data-kind=staff_joined]")).to_have_count(1)

    # The agent writes (markup stays text); the customer reads it live.
    staff.fill("#handoff-input", "Hello, <b>I'm</b> here to help")
    staff.press("#handoff-input", "Enter")
    reply = page.locator("#chat-log .msg--staff[data-seq]")
    expect(reply).to_have_count(1)
    expect(reply.locator(".msg__body")).to_have_text("Hello, <b>I'm</b> here to help")
    expect(staff.locator("#handoff-input")).to_have_value("")

    # The customer answers; the agent's page shows it without a reload.
    page.fill("#chat-input", "thank you!")
    page.press("#chat-input", "Enter")
    answer = staff.locator("#handoff-log li.esc-item--user", has_text="thank you!")
    expect(answer).to_have_count(1)
    assert staff.locator("#handoff-log b").count() == 0

    escalation = Escalation.objects.get()
    assert escalation.status == "claimed" and escalation.claimed_by == support_agent
    assert escalation.first_staff_message_at is not None
    assert console.errors == [] and staff_console.errors == []
    staff_context.close()
