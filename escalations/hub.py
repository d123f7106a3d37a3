"""Process-local fan-out of the staff stream.

Every staff socket of a server process is served by one member of the ``escalations.staff``
group: the hub of that process's event loop. A broadcast is then one channel-layer message per
process (not one per socket: with the Redis layer that would be a Redis round trip and a decode
per socket), encoded once, and written to each local socket. Sockets join before they read the
snapshot, so nothing falls between the two; the page resyncs from a snapshot on reconnect.
"""

from __future__ import annotations

import asyncio
import json
import time
import weakref
from typing import Any, Protocol

import structlog
from channels.layers import BaseChannelLayer

from escalations.realtime import STAFF_GROUP

logger = structlog.get_logger(__name__)

# Group membership expires in the channel layer (a day by default): renew it well before.
REJOIN_SECONDS = 600.0


class Sink(Protocol):
    async def relay(self, text: str) -> None:
        """Write one encoded frame to the socket (or hold it until the snapshot is out)."""


class StaffHub:
    def __init__(self, layer: BaseChannelLayer) -> None:
        self.layer = layer
        self.sockets: set[Sink] = set()
        self.channel: str | None = None
        self.task: asyncio.Task[None] | None = None
        self.lock = asyncio.Lock()

    async def join(self, socket: Sink) -> None:
        async with self.lock:
            self.sockets.add(socket)
            if self.task is None:
                self.channel = await self.layer.new_channel()
                await self.layer.group_add(STAFF_GROUP, self.channel)
                self.task = asyncio.create_task(self._relay(self.channel))

    async def leave(self, socket: Sink) -> None:
        async with self.lock:
            self.sockets.discard(socket)
            if self.sockets or self.task is None or self.channel is None:
                return
            task, channel = self.task, self.channel
            self.task = self.channel = None
        task.cancel()
        await self.layer.group_discard(STAFF_GROUP, channel)

    async def _relay(self, channel: str) -> None:
        joined = time.monotonic()
        while self.channel == channel:
            try:
                message = await self.layer.receive(channel)
            except asyncio.CancelledError:
                raise
            except Exception:
                if self.channel != channel:
                    # Stopped: redis-py reports a cancelled read as a timeout.
                    return
                # The layer's backend (Redis) failed; pages resync when it is back.
                logger.exception("staff_hub_receive_failed")
                await asyncio.sleep(1)
                continue
            await self.deliver(message.get("frame", {}))
            if time.monotonic() - joined > REJOIN_SECONDS:
                await self.layer.group_add(STAFF_GROUP, channel)
                joined = time.monotonic()

    async def deliver(self, frame: dict[str, Any]) -> None:
        text = json.dumps(frame, separators=(",", ":"))
        for socket in list(self.sockets):
            try:
                await socket.relay(text)
            except Exception:  # one closing socket must not starve the others
                logger.warning("staff_hub_send_failed", exc_info=True)


_hubs: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, StaffHub] = weakref.WeakKeyDictionary()


def hub_for(layer: BaseChannelLayer) -> StaffHub:
    """The hub of the running event loop (one per server process; one per test's loop)."""
    loop = asyncio.get_running_loop()
    hub = _hubs.get(loop)
    if hub is None or hub.layer is not layer:
        hub = _hubs[loop] = StaffHub(layer)
    return hub
