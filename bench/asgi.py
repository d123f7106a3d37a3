"""The real application plus the chat benchmark's references, served by the same Daphne
process (SPEC §14):

- ``/ws/echo/``: a bare Channels echo consumer;
- ``/ws/pecho/<conversation id>/``: a *persisting echo*: for each message it stores the
  customer's message and an echo reply in the real message table in one transaction (psycopg
  3's async pool, hand-written SQL: the sequence update and one two-row insert), then sends
  the reply. What a chat turn must at least do to keep a durable timeline.
"""

from __future__ import annotations

import json
from typing import Any

from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings

from config.asgi import application as actiondesk


class EchoConsumer(AsyncWebsocketConsumer):
    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        await self.send(text_data=text_data)


_pool: Any = None

_SEQ = (
    "UPDATE conversations_conversation SET last_seq = last_seq + 2, updated_at = now() "
    "WHERE id = %s RETURNING last_seq"
)
_INSERT = (
    "INSERT INTO conversations_message "
    "(conversation_id, seq, kind, role, content, payload, client_id, created_at) VALUES "
    "(%s, %s, 'message', 'user', %s, '{}', %s, now()), "
    "(%s, %s, 'message', 'assistant', %s, '{}', NULL, now())"
)


async def _connection_pool() -> Any:
    global _pool
    if _pool is None:
        from psycopg_pool import AsyncConnectionPool

        db = settings.DATABASES["default"]
        conninfo = f"host={db['HOST']} port={db['PORT']} dbname={db['NAME']} user={db['USER']}" + (
            f" password={db['PASSWORD']}" if db.get("PASSWORD") else ""
        )
        _pool = AsyncConnectionPool(conninfo, min_size=2, max_size=10, open=False)
        await _pool.open()
    return _pool


class PersistingEchoConsumer(AsyncWebsocketConsumer):
    async def connect(self) -> None:
        self.conversation_id = self.scope["url_route"]["kwargs"]["conversation_id"]
        await self.accept()

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        frame = json.loads(text_data or "{}")
        pool = await _connection_pool()
        cid, content = self.conversation_id, str(frame.get("content", ""))
        # The sequence update and one two-row insert, in one transaction (committed when the
        # pool takes the connection back).
        async with pool.connection() as conn:
            row = await (await conn.execute(_SEQ, [cid])).fetchone()
            seq = int(row[0])
            await conn.execute(
                _INSERT, [cid, seq - 1, content, frame.get("client_id"), cid, seq, content]
            )
        await self.send(
            text_data=json.dumps(
                {"type": "message", "role": "assistant", "content": content, "seq": seq}
            )
        )


echo = EchoConsumer.as_asgi()
persisting_echo = PersistingEchoConsumer.as_asgi()


async def application(scope: dict[str, Any], receive: Any, send: Any) -> None:
    path = scope.get("path", "")
    if scope["type"] == "websocket" and path == "/ws/echo/":
        await echo(scope, receive, send)
    elif scope["type"] == "websocket" and path.startswith("/ws/pecho/"):
        conversation_id = path.removeprefix("/ws/pecho/").strip("/")
        scope = {**scope, "url_route": {"args": (), "kwargs": {"conversation_id": conversation_id}}}
        await persisting_echo(scope, receive, send)
    else:
        await actiondesk(scope, receive, send)
