"""Accessibility (issue 19.9): axe-core (axe-playwright-python) finds no serious or critical
violation on the chat page, the widget (launcher and frame) and the admin's custom pages; the
chat works by keyboard alone; new messages are announced. Also writes the phone and desktop
screenshots of docs/widget.md."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import pytest
from axe_playwright_python.sync_playwright import Axe
from django.conf import settings
from django.contrib.auth.models import User
from playwright.sync_api import Browser, Frame, Page, ViewportSize, expect

from openapi_import.models import Operation
from tests.browser.conftest import Console, Server
from tests.browser.host_pages import HostPage, host_site
from tests.browser.test_chat import continue_as, demo, open_chat, send  # noqa: F401 (fixture)
from tests.browser.test_widget import ana_signs_in, make_site

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

LOG = "#chat-log"
# The docs' screenshots are refreshed only on request (ACTIONDESK_SCREENSHOTS=1), so that a
# test run never changes tracked files; otherwise they go to a scratch folder.
SCREENSHOTS = (
    Path(settings.BASE_DIR) / "docs" / "screenshots"
    if os.environ.get("ACTIONDESK_SCREENSHOTS") == "1"
    else Path(tempfile.mkdtemp(prefix="actiondesk-screenshots-"))
)
PHONE: ViewportSize = {"width": 390, "height": 844}
DESKTOP: ViewportSize = {"width": 1280, "height": 800}
AXE = Axe()


def serious_violations(target: Page | Frame) -> list[str]:
    results = AXE.run(target)
    return [
        f"{v['id']} ({v['impact']}): {v['help']} at "
        + ", ".join(str(node["target"]) for node in v["nodes"][:3])
        for v in results.response["violations"]
        if v["impact"] in ("serious", "critical")
    ]


def test_chat_page_is_accessible_and_keyboard_only(
    page: Page,
    demo: Any,  # noqa: F811  (after ``page``: see tests/browser/test_chat.py::demo)
    console: Console,
) -> None:
    open_chat(page)
    assert serious_violations(page) == []
    log = page.locator(LOG)
    assert log.get_attribute("aria-live") == "polite"  # new messages are announced

    # Keyboard only: Tab to the message box, type, Enter sends.
    continue_as(page)
    page.locator("body").focus()
    for _ in range(12):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.id") == "chat-input":
            break
    assert page.evaluate("document.activeElement.id") == "chat-input"
    page.keyboard.type("please cancel order 1042")
    page.keyboard.press("Enter")
    card = page.locator(f"{LOG} > .card[data-approver=user]")
    expect(card.locator(".card__args")).to_contain_text("1042")
    assert serious_violations(page) == []
    # The Approve button is reached and pressed from the keyboard too.
    approve = card.get_by_role("button", name="Approve")
    approve.focus()
    page.keyboard.press("Enter")
    expect(card).to_have_attribute("data-status", "approved")
    expect(page.locator(f"{LOG} > .msg--assistant[data-seq]").last).to_contain_text("cancelled")
    # A clarification's options are buttons too.
    send(page, "my order")
    option = page.locator(f"{LOG} > [data-kind=clarification] button[data-option]").first
    expect(option).to_have_text("Order lookup")
    option.focus()
    page.keyboard.press("Enter")
    expect(page.locator(f"{LOG} > .msg--user[data-seq]", has_text="Order lookup")).to_have_count(1)
    assert serious_violations(page) == []

    page.set_viewport_size(DESKTOP)
    page.screenshot(path=str(SCREENSHOTS / "chat-desktop.png"))
    page.set_viewport_size(PHONE)
    page.screenshot(path=str(SCREENSHOTS / "chat-phone.png"))
    assert serious_violations(page) == []
    assert console.errors == []


def test_widget_is_accessible_and_keyboard_only(
    page: Page,
    server: Server,
    demo: Any,  # noqa: F811  (after ``page``: see tests/browser/test_chat.py::demo)
    console: Console,
) -> None:
    host = HostPage(server=server.url)
    with host_site(host) as port:
        ana_signs_in(host, make_site([f"http://localhost:{port}"]))
        page.set_viewport_size(DESKTOP)
        page.goto(f"http://localhost:{port}/")
        launcher = page.locator("#actiondesk-launcher")
        expect(launcher).to_be_visible()
        # Keyboard only: Tab reaches the launcher, Enter opens the chat with focus inside.
        page.keyboard.press("Tab")
        expect(launcher).to_be_focused()
        page.keyboard.press("Enter")
        expect(page.locator("#actiondesk-panel")).to_be_visible()
        chat = page.frame_locator("#actiondesk-frame")
        expect(chat.locator("#chat-identity")).to_contain_text("Ana Souza")
        expect(chat.locator("#chat-input")).to_be_focused()
        page.keyboard.type("where is my order 1042?")
        page.keyboard.press("Enter")
        expect(chat.locator(f"{LOG} > .msg--assistant[data-seq]").last).to_contain_text("1042")

        frame = page.frame(url=lambda url: "/widget/" in url)
        assert frame is not None
        assert serious_violations(page) == []
        assert serious_violations(frame) == []
        page.screenshot(path=str(SCREENSHOTS / "widget-desktop.png"))
        page.set_viewport_size(PHONE)
        page.screenshot(path=str(SCREENSHOTS / "widget-phone.png"))
        assert serious_violations(frame) == []
        # Escape closes it and gives focus back to the launcher.
        page.keyboard.press("Escape")
        expect(page.locator("#actiondesk-panel")).to_be_hidden()
        expect(launcher).to_be_focused()
    assert console.errors == []


def test_admin_custom_pages_are_accessible(
    browser: Browser,
    server: Server,
    demo: Any,  # noqa: F811  (after ``browser``: see tests/browser/test_chat.py::demo)
    django_user_model: type[User],
) -> None:
    django_user_model.objects.create_superuser("root", "root@example.test", "pw-for-tests")
    context = browser.new_context(base_url=server.url)
    page = context.new_page()
    try:
        page.goto("/admin/login/")
        page.fill("#id_username", "root")
        page.fill("#id_password", "pw-for-tests")
        page.click("input[type=submit]")
        expect(page.locator("#site-name")).to_be_visible()
        operation = Operation.objects.filter(operation_id="cancelOrder").first()
        assert operation is not None
        site = make_site(["https://shop.example"])
        pages = {
            "/admin/escalations/queue/": "#queue-status",
            f"/admin/openapi_import/operation/{operation.pk}/change/": "#operation_form",
            "/admin/openapi_import/importjob/add/": "#content",
            f"/admin/sites/site/{site.pk}/change/": "#site_form",
        }
        for path, marker in pages.items():
            page.goto(path)
            expect(page.locator(marker)).to_be_visible()
            expect(page.locator(".breadcrumbs")).to_contain_text("Home")
            assert serious_violations(page) == [], path
    finally:
        context.close()
