"""Staff approvals live in a real browser (issue 13 item 10): a refund above the staff threshold
appears on the open queue without a reload; staff correct the amount on the handoff page and
approve; the customer's card shows the amount that was approved and refunded."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from django.contrib.auth.models import User
from playwright.sync_api import Browser, Page, expect

from tests.browser.conftest import REPORT_CSP_VIOLATIONS, Console, Server
from tests.browser.test_chat import continue_as, demo, open_chat, send  # noqa: F401  (fixture)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_staff_see_the_approval_live_and_the_customer_sees_the_corrected_amount(
    browser: Browser,
    page: Page,
    server: Server,
    console: Console,
    support_agent: User,
    demo: Any,  # noqa: F811
) -> None:
    staff_context = browser.new_context(base_url=server.url)
    staff_context.set_default_timeout(10_000)
    staff_context.add_init_script(REPORT_CSP_VIOLATIONS)
    staff = staff_context.new_page()
    staff_console = Console()
    staff.on("console", staff_console.record)
    staff.goto("/admin/login/?next=/admin/escalations/queue/")
    staff.fill("#id_username", support_agent.username)
    staff.fill("#id_password", "pw-for-tests")
    staff.click("input[type=submit]")
    expect(staff.locator("#queue-status")).to_have_attribute("data-status", "connected")
    expect(staff.locator("#interrupt-rows tr")).to_have_count(0)

    open_chat(page)
    continue_as(page, "ben@example.com")
    send(page, "I want a refund of 80 EUR for order 1044 because it arrived broken")
    card = page.locator("#chat-log > .card[data-approver=staff]")
    expect(card.locator(".card__title")).to_contain_text("80")

    # On the queue at once (its resync is 60 s away): pushed, not polled.
    row = staff.locator("#interrupt-rows tr")
    expect(row).to_have_count(1, timeout=5_000)
    expect(row).to_contain_text("80")

    # The customer asks for a human; staff claim and correct the amount before approving.
    page.click("#chat-escalate")
    claim = staff.locator("#queue-rows tr[data-status=waiting] button.esc-claim")
    claim.click()
    expect(staff).to_have_url(re.compile(r"/admin/escalations/handoff/\d+/$"))
    editor = staff.locator(".esc-interrupts textarea[name=arguments]")
    arguments = json.loads(editor.input_value())
    arguments["body"]["amount"] = 60
    editor.fill(json.dumps(arguments))
    staff.locator(".esc-interrupts button.esc-approve").click()

    expect(card).to_have_attribute("data-status", "approved")
    expect(card.locator(".card__status")).to_have_text("Approved by staff with changes")
    expect(card.locator(".card__title")).to_contain_text("60")
    expect(card.locator(".card__args")).to_contain_text("60")
    expect(card.locator(".card__title")).not_to_contain_text("80")
    from demo_shop.models import Refund

    assert [str(r.amount) for r in Refund.objects.filter(order__number=1044)] == ["60.00"]

    # A reload renders the decided call, not the proposed one.
    page.reload()
    expect(card).to_have_attribute("data-status", "approved")
    expect(card.locator(".card__title")).to_contain_text("60")
    expect(card.locator(".card__args")).to_contain_text("60")
    assert console.errors == [] and staff_console.errors == []
    staff_context.close()
