"""The widget's socket: the visitor token as a subprotocol, and the origin check that accepts a
site's origins only for that site's conversations (sites.sockets, conversations.consumers)."""

from __future__ import annotations

from typing import Any

import pytest
from channels.testing import WebsocketCommunicator

from config.asgi import application
from conversations.identity import identity_token_sign
from conversations.models import Conversation
from conversations.services import conversation_start
from sites.models import Site
from sites.visitors import visitor_token_sign
from tests.conversations.chat import visitor_cookie
from tests.sites.factories import site_create

pytestmark = pytest.mark.django_db(transaction=True)

OWN = b"http://testserver"
SHOP = b"https://shop.example"


@pytest.fixture
def site(transactional_db: None) -> Site:
    return site_create()


@pytest.fixture
def widget_conversation(site: Site) -> Conversation:
    return conversation_start(visitor_id="widget-visitor", site=site)


async def open_socket(
    conversation_id: object,
    *,
    origin: bytes,
    token: str | None = None,
    cookie_visitor: str | None = None,
) -> tuple[WebsocketCommunicator, bool, Any]:
    headers = [(b"origin", origin)]
    if cookie_visitor:
        headers.append((b"cookie", visitor_cookie(cookie_visitor)))
    subprotocols = ["actiondesk", f"actiondesk.visitor.{token}"] if token else None
    communicator = WebsocketCommunicator(
        application, f"/ws/chat/{conversation_id}/", headers=headers, subprotocols=subprotocols
    )
    connected, detail = await communicator.connect()
    return communicator, connected, detail


async def accepted(conversation_id: object, **options: Any) -> bool:
    """Whether the handshake is accepted (the socket is closed again at once)."""
    ws, connected, _ = await open_socket(conversation_id, **options)
    await ws.disconnect()
    return connected


async def test_the_frames_token_opens_its_conversation(
    site: Site, widget_conversation: Conversation
) -> None:
    token = visitor_token_sign(site=site, visitor_id="widget-visitor")
    ws, connected, subprotocol = await open_socket(widget_conversation.pk, origin=OWN, token=token)
    assert connected and subprotocol == "actiondesk"
    ready = await ws.receive_json_from(timeout=5)
    assert ready["type"] == "ready" and ready["conversation_id"] == str(widget_conversation.pk)
    await ws.disconnect()


@pytest.mark.parametrize("kind", ["another_visitor", "other_site", "forged"])
async def test_another_token_is_refused(
    site: Site, widget_conversation: Conversation, kind: str
) -> None:
    other = await Site.objects.acreate(
        name="Other", allowed_origins="https://other.example", public_id="other-site-id"
    )
    token = {
        "another_visitor": visitor_token_sign(site=site, visitor_id="someone-else"),
        "other_site": visitor_token_sign(site=other, visitor_id="widget-visitor"),
        "forged": "widget-visitor.1abc.forged",
    }[kind]
    ws, connected, code = await open_socket(widget_conversation.pk, origin=OWN, token=token)
    assert not connected and code == 4403
    await ws.disconnect()


async def test_a_disabled_sites_conversations_are_closed(
    site: Site, widget_conversation: Conversation
) -> None:
    site.enabled = False
    await site.asave()
    token = visitor_token_sign(site=site, visitor_id="widget-visitor")
    ws, connected, code = await open_socket(widget_conversation.pk, origin=OWN, token=token)
    assert not connected and code == 4403
    await ws.disconnect()
    assert not await accepted(widget_conversation.pk, origin=SHOP, token=token)


async def test_a_sites_origin_is_accepted_for_its_own_conversations_only(
    site: Site, widget_conversation: Conversation
) -> None:
    token = visitor_token_sign(site=site, visitor_id="widget-visitor")
    assert await accepted(widget_conversation.pk, origin=SHOP, token=token)
    # The chat page's conversation: the site's origin is refused before the consumer runs.
    page_conversation = await Conversation.objects.acreate(visitor_id="page-visitor")
    assert not await accepted(page_conversation.pk, origin=SHOP, cookie_visitor="page-visitor")
    assert await accepted(page_conversation.pk, origin=OWN, cookie_visitor="page-visitor")
    # Another site's conversation, and an origin no site lists.
    other = await Site.objects.acreate(
        name="Other", allowed_origins="https://other.example", public_id="other-site-id"
    )
    theirs = await Conversation.objects.acreate(visitor_id="widget-visitor", site=other)
    assert not await accepted(theirs.pk, origin=SHOP, token=token)
    assert not await accepted(widget_conversation.pk, origin=b"https://evil.example", token=token)
    # And the other sockets never take a site's origin.
    ping = WebsocketCommunicator(application, "/ws/ping/", headers=[(b"origin", SHOP)])
    connected, _ = await ping.connect()
    assert not connected
    await ping.disconnect()


async def test_the_chat_pages_cookie_still_works(transactional_db: None) -> None:
    conversation = await Conversation.objects.acreate(visitor_id="page-visitor")
    ws, connected, subprotocol = await open_socket(
        conversation.pk, origin=OWN, cookie_visitor="page-visitor"
    )
    await ws.disconnect()
    assert connected and subprotocol is None


async def test_identify_frame_needs_the_sites_secret(
    site: Site, widget_conversation: Conversation
) -> None:
    token = visitor_token_sign(site=site, visitor_id="widget-visitor")
    ws, connected, _ = await open_socket(widget_conversation.pk, origin=OWN, token=token)
    assert connected
    await ws.receive_json_from(timeout=5)  # ready
    global_token = identity_token_sign(customer_id="c-1", email="ana@example.com")
    await ws.send_json_to({"type": "identify", "token": global_token})
    refused = await ws.receive_json_from(timeout=5)
    assert refused["type"] == "error" and refused["code"] == "identity_invalid"
    site_token = identity_token_sign(
        customer_id="c-1", email="ana@example.com", secret=site.identity_secret
    )
    await ws.send_json_to({"type": "identify", "token": site_token})
    frames = [await ws.receive_json_from(timeout=5) for _ in range(2)]
    identified = next(f for f in frames if f["type"] == "identified")
    assert identified["verified"] is True and identified["email"] == "ana@example.com"
    await ws.disconnect()
    await widget_conversation.arefresh_from_db()
    assert widget_conversation.is_verified and widget_conversation.customer_id == "c-1"
