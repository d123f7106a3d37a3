"""WebSockets through the real ASGI application: the origin check and session stack."""

from __future__ import annotations

import pytest
from channels.testing import WebsocketCommunicator

from config.asgi import application


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    "origin", [b"http://evil.example", b"http://testserver.evil.example", b"null"]
)
async def test_cross_origin_handshake_is_rejected(origin: bytes) -> None:
    communicator = WebsocketCommunicator(application, "/ws/ping/", headers=[(b"origin", origin)])
    connected, _ = await communicator.connect()
    assert connected is False
    await communicator.disconnect()


@pytest.mark.django_db(transaction=True)
async def test_same_origin_handshake_is_accepted_and_answers() -> None:
    communicator = WebsocketCommunicator(
        application, "/ws/ping/", headers=[(b"origin", b"http://testserver")]
    )
    connected, _ = await communicator.connect()
    assert connected is True
    await communicator.send_json_to({"type": "ping"})
    assert await communicator.receive_json_from() == {"type": "pong"}
    await communicator.send_to(text_data="[1, 2]")
    reply = await communicator.receive_json_from()
    assert reply["type"] == "error" and reply["code"] == "invalid_frame"
    await communicator.disconnect()
