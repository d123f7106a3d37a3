"""The real application plus a bare Channels echo consumer at ``/ws/echo/``: the reference the
chat benchmark measures against, served by the same Daphne process."""

from __future__ import annotations

from typing import Any

from channels.generic.websocket import AsyncWebsocketConsumer

from config.asgi import application as actiondesk


class EchoConsumer(AsyncWebsocketConsumer):
    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        await self.send(text_data=text_data)


echo = EchoConsumer.as_asgi()


async def application(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "websocket" and scope["path"] == "/ws/echo/":
        await echo(scope, receive, send)
    else:
        await actiondesk(scope, receive, send)
