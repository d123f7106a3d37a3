"""The widget on a business's page on another origin, in Chromium (issue 19.5): the launcher,
an order's status, a cancel approved in the frame, the returning visitor, a refused origin."""

from __future__ import annotations

import re
from typing import Any

import pytest
from playwright.sync_api import FrameLocator, Page, expect

from conversations.identity import identity_token_sign
from conversations.models import Conversation
from demo_shop.selectors import customers_for_emails
from sites.models import Site
from tests.browser.conftest import Console, Server
from tests.browser.host_pages import HostPage, host_site
from tests.browser.test_chat import demo  # noqa: F401  (fixture)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

LOG = "#chat-log"


def make_site(origins: list[str], **fields: Any) -> Site:
    site = Site(name="Ana's Shop", allowed_origins="\n".join(origins), **fields)
    site.full_clean()
    site.save()
    return site


def ana_signs_in(host: HostPage, site: Site) -> None:
    """The host page names the site and signs Ana in, as the shop's server would."""
    (ana,) = customers_for_emails(emails=["ana@example.com"])
    host.site = site.public_id
    host.identity = lambda: identity_token_sign(
        customer_id=str(ana.pk), email=ana.email, name=ana.name, secret=site.identity_secret
    )


def open_widget(page: Page, url: str) -> FrameLocator:
    response = page.goto(url)
    assert response is not None and response.ok
    launcher = page.locator("#actiondesk-launcher")
    expect(launcher).to_be_visible()
    launcher.click()
    expect(launcher).to_have_attribute("aria-expanded", "true")
    return page.frame_locator("#actiondesk-frame")


def send(frame: FrameLocator, text: str) -> None:
    frame.locator("#chat-input").fill(text)
    frame.locator("#chat-input").press("Enter")


def test_customer_chats_and_approves_on_the_businesss_page(
    page: Page,
    server: Server,
    demo: Any,  # noqa: F811  (after ``page``: see tests/browser/test_chat.py::demo)
    console: Console,
) -> None:
    host = HostPage(server=server.url)
    with host_site(host) as port:
        site = make_site([f"http://localhost:{port}", f"http://127.0.0.1:{port}"],
                         accent_color="#0f5132", accent_text_color="#ffffff")  # fmt: skip
        ana_signs_in(host, site)
        frame = open_widget(page, f"http://localhost:{port}/")
        launcher = page.locator("#actiondesk-launcher")
        expect(launcher).to_have_css("background-color", "rgb(15, 81, 50)")  # the site's colour
        expect(frame.locator(f"{LOG} > [data-kind=greeting]")).to_contain_text("How can I help")
        expect(frame.locator("#chat-identity")).to_contain_text("Ana Souza")
        assert Conversation.objects.count() == 0  # opening creates nothing

        send(frame, "where is my order 1042?")
        answer = frame.locator(f"{LOG} > .msg--assistant[data-seq]").last
        expect(answer).to_contain_text("1042")
        expect(answer).to_contain_text(re.compile("paid", re.IGNORECASE))
        conversation = Conversation.objects.get()
        assert conversation.site_id == site.pk and conversation.is_verified
        assert conversation.customer_email == "ana@example.com"

        send(frame, "please cancel order 1042")
        card = frame.locator(f"{LOG} > .card[data-approver=user]")
        expect(card.locator(".card__args")).to_contain_text("1042")
        card.get_by_role("button", name="Approve").click()
        expect(card).to_have_attribute("data-status", "approved")
        expect(frame.locator(f"{LOG} > .msg--assistant[data-seq]").last).to_contain_text(
            "cancelled"
        )
        from demo_shop.models import Order

        assert Order.objects.get(number=1042).status == "cancelled"
        page.screenshot(path="/tmp/widget-desktop.png")

        # Back on the page later: the frame's stored token brings the conversation back.
        page.reload()
        page.locator("#actiondesk-launcher").click()
        expect(frame.locator(f"{LOG} > .card[data-status=approved]")).to_have_count(1)
        assert Conversation.objects.count() == 1
        # Keyboard: Escape in the chat closes it and gives focus back to the launcher.
        frame.locator("#chat-input").press("Escape")
        expect(page.locator("#actiondesk-panel")).to_be_hidden()
        expect(page.locator("#actiondesk-launcher")).to_be_focused()

        # The same page on 127.0.0.1 (another allowed origin) works as well.
        other = page.context.new_page()
        other_frame = open_widget(other, f"http://127.0.0.1:{port}/")
        expect(other_frame.locator("#chat-identity")).to_contain_text("Ana Souza")
        other.close()
    assert console.errors == []


def test_an_origin_not_on_the_list_is_refused(page: Page, server: Server, console: Console) -> None:
    host = HostPage(server=server.url)
    site = make_site(["https://shop.example"])
    host.site = site.public_id
    with host_site(host) as port:
        frame = open_widget(page, f"http://localhost:{port}/")
        expect(frame.locator("#widget-refused")).to_contain_text(
            f"This chat isn't enabled on http://localhost:{port}."
        )
        expect(frame.locator("#chat-input")).to_have_count(0)
        page.wait_for_function("() => window.ActiondeskWidget.refusal() !== ''")
    # A disabled site says so too.
    site.allowed_origins = "http://localhost:1"
    site.enabled = False
    site.save()
    with host_site(host) as port:
        frame = open_widget(page, f"http://localhost:{port}/")
        expect(frame.locator("#widget-refused")).to_contain_text("This chat isn't available.")
    assert Conversation.objects.count() == 0
    # Only the refused frame's own status is reported (no policy violation, no script error).
    assert console.errors == [
        "Failed to load resource: the server responded with a status of 403 (Forbidden)",
        "Failed to load resource: the server responded with a status of 404 (Not Found)",
    ]
