"""Logging out in another tab ends the live queue's socket (SECURITY-TESTS row 5): the page
stops within 5 s and asks for a reload instead of retrying forever."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from playwright.sync_api import Browser, expect

from tests.browser.conftest import REPORT_CSP_VIOLATIONS, Server

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_logging_out_in_another_tab_ends_the_queue_page(
    browser: Browser, server: Server, support_agent: User
) -> None:
    context = browser.new_context(base_url=server.url)
    context.set_default_timeout(10_000)
    context.add_init_script(REPORT_CSP_VIOLATIONS)
    queue = context.new_page()
    queue.goto("/admin/login/?next=/admin/escalations/queue/")
    queue.fill("#id_username", support_agent.username)
    queue.fill("#id_password", "pw-for-tests")
    queue.click("input[type=submit]")
    status = queue.locator("#queue-status")
    expect(status).to_have_attribute("data-status", "connected")

    other = context.new_page()
    other.goto("/admin/")
    other.click("#logout-form button")
    expect(other.locator("body")).to_contain_text("Logged out")

    expect(status).to_have_attribute("data-status", "signed_out", timeout=5_000)
    expect(status).to_have_text("Session ended: reload the page to continue.")
    context.close()
