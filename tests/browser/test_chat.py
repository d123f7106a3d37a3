"""The customer's chat page in a real browser, against a real Daphne (tests/browser/conftest.py)."""

from __future__ import annotations

import re
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.db import connections
from playwright.sync_api import Dialog, Locator, Page, expect

from conversations.models import Conversation, Message
from conversations.services import message_append
from demo_shop.install import demo_install
from tests.browser.conftest import Console, Server

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

LOG = "#chat-log"
HOSTILE = "<img src=x onerror=alert(1)><b>bold</b>"
SEQS = "() => [...document.querySelectorAll('#chat-log > [data-seq]')].map(e => +e.dataset.seq)"
# Resolves once the reconnect banner has been shown and hidden again.
DROP_AND_WAIT_FOR_RECOVERY = """() => new Promise((resolve) => {
  const banner = document.getElementById("chat-banner");
  let shown = false;
  new MutationObserver(() => {
    if (!banner.hidden) shown = true;
    else if (shown) resolve(true);
  }).observe(banner, { attributes: true });
  window.actiondeskChat.reconnect();
  // Written while the socket is down: it waits in the outbox and goes out after the resume.
  document.getElementById("chat-input").value = "are you still there?";
  document.getElementById("chat-composer").requestSubmit();
})"""
COUNT_STREAMING_BUBBLES = """() => {
  window.streamingBubbles = 0;
  new MutationObserver((records) => {
    for (const record of records) {
      for (const node of record.addedNodes) {
        if (node.classList && node.classList.contains("is-streaming")) window.streamingBubbles++;
      }
    }
  }).observe(document.getElementById("chat-log"), { childList: true });
}"""


def open_chat(page: Page) -> None:
    """Open ``/`` as a new visitor: the chat is ready to type in, and no conversation exists
    until the first message (issue 19.7)."""
    response = page.goto("/")
    assert response is not None and response.ok
    csp = response.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "'unsafe-inline'" not in csp
    expect(page.locator("#chat-status")).to_have_attribute("data-status", "idle")
    expect(page.locator("#chat-log > [data-kind=greeting]")).to_be_visible()
    assert page.locator("#chat").get_attribute("data-conversation-id") == ""


def started(page: Page) -> str:
    """The conversation the first message started, once its socket is up."""
    expect(page.locator("#chat-status")).to_have_attribute("data-status", "connected")
    conversation_id = str(page.locator("#chat").get_attribute("data-conversation-id"))
    assert conversation_id
    expect(page).to_have_url(re.compile(f"/chat/{conversation_id}/$"))
    return conversation_id


def continue_as(page: Page, email: str = "ana@example.com") -> None:
    """Sign in as a demo customer with the chat page's demo button (issue 12.1): actions and
    personal lookups need a verified customer."""
    page.locator(f'[data-demo-customer="{email}"]').click()
    expect(page.locator("#chat-status")).to_have_attribute("data-status", "connected")
    expect(page.locator(f'[data-demo-customer="{email}"]')).to_have_count(0)


def send(page: Page, text: str) -> None:
    page.fill("#chat-input", text)
    page.press("#chat-input", "Enter")


def user_bubble(page: Page, text: str) -> Locator:
    return page.locator(f"{LOG} > .msg--user[data-seq]", has_text=text)


def stored_seqs(conversation_id: str) -> list[int]:
    return list(
        Message.objects.filter(conversation_id=conversation_id).values_list("seq", flat=True)
    )


def expect_everything_stored_once(page: Page, conversation_id: str) -> None:
    """Every stored item is on the page exactly once, in order (waits for live ones)."""
    stored = stored_seqs(conversation_id)
    page.wait_for_function(f"() => ({SEQS})().length >= {len(stored)}")
    assert page.evaluate(SEQS)[: len(stored)] == stored


def expect_shown_as_text(page: Page, conversation_id: str) -> None:
    expect_everything_stored_once(page, conversation_id)
    expect(page.locator(f"{LOG} .msg__body", has_text=HOSTILE)).to_have_count(3)  # user, AI, staff
    expect(page.locator(f"{LOG} > .msg--staff .msg__who")).to_have_text(HOSTILE)
    expect(page.locator(f"{LOG} > .activity", has_text=HOSTILE)).to_have_count(2)
    expect(page.locator(f"{LOG} > .notice-item--staff")).to_contain_text(HOSTILE)
    assert page.locator(f"{LOG} img, {LOG} b").count() == 0


def off_the_browser_thread(write: Callable[[], object]) -> None:
    """Run a service on another thread: Playwright's loop is marked as running on this one, and
    the services' on-commit broadcast (``async_to_sync``) refuses to run beside it."""

    def run() -> None:
        try:
            write()
        finally:
            connections.close_all()

    with ThreadPoolExecutor(max_workers=1) as pool:
        pool.submit(run).result()


def test_message_is_acknowledged_and_answered(page: Page, console: Console) -> None:
    open_chat(page)
    assert Conversation.objects.count() == 0

    send(page, "hello")

    started(page)
    assert Conversation.objects.count() == 1
    mine = user_bubble(page, "hello")
    expect(mine).to_have_count(1)
    expect(mine.locator("time.msg__time")).to_have_text(re.compile(r"\d{1,2}:\d{2}"))
    expect(mine).not_to_have_class(re.compile(r"is-sending"))
    # With no agents configured the runtime still answers (a reply or a question), stored.
    reply = page.locator(f"{LOG} > .msg--assistant[data-seq], {LOG} > .msg--system[data-seq]")
    expect(reply.first).to_be_visible()
    expect(page.locator(f"{LOG} > .is-floating")).to_have_count(0)
    page.screenshot(path="/tmp/chat.png")
    assert console.errors == []


def test_markup_from_anyone_is_shown_as_text(page: Page, console: Console) -> None:
    dialogs: list[str] = []

    def on_dialog(dialog: Dialog) -> None:
        dialogs.append(dialog.message)
        dialog.dismiss()

    page.on("dialog", on_dialog)
    open_chat(page)
    send(page, HOSTILE)
    conversation_id = started(page)
    expect(user_bubble(page, HOSTILE).locator(".msg__body")).to_have_text(HOSTILE)

    # Model, tool and staff text, stored while the page is open; the page gets it by resume.
    def store_hostile_items() -> None:
        items: list[tuple[str, str, dict[str, Any]]] = [
            ("message", "assistant", {}),
            ("message", "staff", {"frame": {"author": HOSTILE}}),
            ("tool_call", "system", {"frame": {"call_id": 1, "summary": HOSTILE}}),
            ("tool_result", "system", {"frame": {"call_id": 1, "ok": True, "summary": HOSTILE}}),
            ("staff_joined", "system", {"frame": {"name": HOSTILE}}),
        ]
        for kind, role, payload in items:
            message_append(
                conversation_id=conversation_id,
                kind=kind,
                role=role,
                content=HOSTILE,
                payload=payload,
            )

    off_the_browser_thread(store_hostile_items)
    page.evaluate("window.actiondeskChat.reconnect()")

    expect_shown_as_text(page, conversation_id)
    page.reload()
    expect_shown_as_text(page, conversation_id)
    assert dialogs == []
    assert console.errors == []


def test_reconnect_resumes_without_losing_or_repeating(page: Page, console: Console) -> None:
    open_chat(page)
    send(page, "hello")
    expect(user_bubble(page, "hello")).to_have_count(1)
    conversation_id = started(page)

    assert page.evaluate(DROP_AND_WAIT_FOR_RECOVERY) is True

    expect(page.locator("#chat-banner")).to_be_hidden()
    expect(user_bubble(page, "are you still there?")).to_have_count(1)
    expect(page.locator(f"{LOG} > .is-floating")).to_have_count(0)
    page.wait_for_function("() => window.actiondeskChat.snapshot().outbox === 0")
    expect_everything_stored_once(page, conversation_id)
    page.reload()
    expect_everything_stored_once(page, conversation_id)
    assert console.errors == []


def test_admin_and_api_docs_work_under_the_policy(
    page: Page, console: Console, django_user_model: type[User]
) -> None:
    django_user_model.objects.create_superuser("root", "root@example.test", "pw-for-tests")

    response = page.goto("/admin/login/")

    assert response is not None and "content-security-policy" in response.headers
    page.fill("#id_username", "root")
    page.fill("#id_password", "pw-for-tests")
    page.click("input[type=submit]")
    expect(page.locator("#site-name")).to_be_visible()
    expect(page).to_have_url(re.compile(r"/admin/$"))
    # django-ninja's Swagger UI (staff only) runs under the same policy.
    page.goto("/api/v1/docs")
    expect(page.locator(".swagger-ui .info .title")).to_contain_text("Actiondesk API")
    assert console.errors == []


@pytest.fixture
def demo(server: Server, transactional_db: None, django_user_model: type[User]) -> Any:
    """The demo (shop data, its spec as tools, the e-commerce agents), calling this server.
    Request it after ``page`` (not through ``usefixtures``, which sets it up before the
    browser): installed before Playwright's browser started, the server did not see it when
    another package's browser tests had run first in the same worker. Cause not pinned down;
    the order is what was verified."""
    reviewer = django_user_model.objects.create_superuser("reviewer", "r@example.test", "x")
    return demo_install(base_url=server.url, reviewer=reviewer)


def test_order_status_streams(page: Page, demo: Any, console: Console) -> None:
    open_chat(page)
    continue_as(page)
    page.evaluate(COUNT_STREAMING_BUBBLES)

    send(page, "where is my order 1042?")

    expect(page.locator(f"{LOG} > .activity[data-kind=tool_call]").first).to_be_visible()
    answer = page.locator(f"{LOG} > .msg--assistant[data-seq]").last
    expect(answer).to_contain_text("1042")
    expect(answer).to_contain_text(re.compile("paid", re.IGNORECASE))
    # The reply was streamed in token by token, then replaced by the stored message.
    assert page.evaluate("window.streamingBubbles") >= 1
    expect(page.locator(f"{LOG} > .is-streaming")).to_have_count(0)
    assert console.errors == []


def test_cancel_waits_for_approval_on_the_card(page: Page, demo: Any, console: Console) -> None:
    open_chat(page)
    continue_as(page)
    send(page, "please cancel order 1042")
    card = page.locator(f"{LOG} > .card[data-approver=user]")
    expect(card.locator(".card__args")).to_contain_text("1042")

    card.get_by_role("button", name="Approve").click()

    expect(card).to_have_attribute("data-status", "approved")
    answer = page.locator(f"{LOG} > .msg--assistant[data-seq]").last
    expect(answer).to_contain_text("cancelled")
    # The demo shop did it exactly once.
    from demo_shop.models import Order, OrderEvent

    assert Order.objects.get(number=1042).status == "cancelled"
    assert OrderEvent.objects.filter(order__number=1042, kind="cancelled").count() == 1
    # The server-rendered history shows the card decided, with nothing left to click.
    page.reload()
    expect(card).to_have_attribute("data-status", "approved")
    expect(card.get_by_role("button", name="Approve")).to_be_hidden()
    assert console.errors == []


def test_rate_limited_customer_sees_a_countdown(page: Page, console: Console) -> None:
    """Issue 18 item 9: past a message limit the page counts down to when sending works again."""
    open_chat(page)
    for n in range(12):  # CHAT_RATE_LIMIT_MESSAGES (10 per 10 s) + 2, as fast as the page goes
        send(page, f"message {n}")
    countdown = page.locator("#chat-notices .notice--countdown .notice__text").first
    expect(countdown).to_contain_text(re.compile(r"Try again in \d+ s"))
    first = int(re.findall(r"in (\d+) s", countdown.inner_text())[0])
    if first > 1:  # it ticks down
        expect(countdown).to_contain_text(
            re.compile(rf"in ([0-{first - 1}]) s|send messages again")
        )
    expect(countdown).to_have_text("You can send messages again.", timeout=15_000)
    assert [e for e in console.errors if "429" not in e] == []


def test_did_that_solve_it_is_answered_once(page: Page, demo: Any, console: Console) -> None:
    open_chat(page)
    continue_as(page)
    send(page, "where is my order 1042?")
    check = page.locator(f"{LOG} > [data-kind=resolution_check]")
    expect(check).to_contain_text("Did that solve it?")

    check.get_by_role("button", name="Yes").click()

    expect(page.locator(f"{LOG} > [data-kind=resolution_answered]")).to_contain_text("glad")
    expect(check).to_have_attribute("data-status", "settled")
    expect(check.get_by_role("button", name="Yes")).to_be_hidden()
    from conversations.models import Conversation

    assert Conversation.objects.get().resolution == "confirmed"
    # The server-rendered history shows it answered, with nothing left to click.
    page.reload()
    expect(check).to_have_attribute("data-status", "settled")
    expect(check.get_by_role("button", name="Yes")).to_be_hidden()
    assert console.errors == []
