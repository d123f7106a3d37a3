"""Helpers for chat tests: a visitor's socket on the real ASGI application."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from channels.testing import WebsocketCommunicator
from django.http import HttpResponse

from config.asgi import application
from conversations.visitors import COOKIE, set_visitor_cookie


def visitor_cookie(visitor_id: str) -> bytes:
    """The cookie exactly as the chat page sets it."""
    response = HttpResponse()
    set_visitor_cookie(response, visitor_id, secure=False)
    return f"{COOKIE}={response.cookies[COOKIE].value}".encode()


async def connect(
    conversation_id: object, visitor_id: str, *, origin: bytes = b"http://testserver"
) -> tuple[WebsocketCommunicator, dict[str, Any] | int]:
    communicator = WebsocketCommunicator(
        application,
        f"/ws/chat/{conversation_id}/",
        headers=[(b"origin", origin), (b"cookie", visitor_cookie(visitor_id))],
    )
    connected, code = await communicator.connect()
    if not connected:
        return communicator, int(code or 0)
    ready = await communicator.receive_json_from(timeout=5)
    return communicator, ready


async def frames_until(
    communicator: WebsocketCommunicator, stop: Any, *, within: float = 30
) -> list[dict[str, Any]]:
    """Collect frames until ``stop(frame)`` is true (inclusive)."""
    frames: list[dict[str, Any]] = []
    async with asyncio.timeout(within):
        while True:
            frame = await communicator.receive_json_from(timeout=within)
            frames.append(frame)
            if stop(frame):
                return frames


def turn_ended(frame: dict[str, Any]) -> bool:
    return frame["type"] == "turn_end"


def verify_customer(
    conversation_id: uuid.UUID | str,
    *,
    email: str = "ana@example.com",
    customer_id: str = "",
    name: str = "",
    source: str = "signed",
) -> None:
    """Mark a conversation's customer as verified (as a signed identity would), for tests that
    exercise actions rather than verification itself. Sync: wrap in ``sync_to_async`` in
    async tests."""
    from django.utils import timezone

    from conversations.models import Conversation

    Conversation.objects.filter(pk=conversation_id).update(
        identity_source=source,
        customer_id=customer_id or email,
        customer_email=email,
        customer_name=name,
        verified_at=timezone.now(),
    )


async def cancel_and_approve(
    communicator: WebsocketCommunicator, *, order: int = 1042
) -> list[dict[str, Any]]:
    """Ask to cancel ``order``, approve the action the agent proposes, and return the frames of
    the resumed turn (up to its ``turn_end``)."""
    await communicator.send_json_to(
        {"type": "message", "client_id": f"cancel-{order}", "content": f"cancel order {order}"}
    )
    frames = await frames_until(communicator, turn_ended)
    interrupt = next(f for f in frames if f["type"] == "interrupt")
    await communicator.send_json_to(
        {
            "type": "approval",
            "interrupt_id": interrupt["interrupt_id"],
            "decision": "approve",
            "arguments_hash": interrupt["arguments_hash"],
        }
    )
    return await frames_until(communicator, turn_ended)
