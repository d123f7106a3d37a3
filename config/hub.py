"""Process-local fan-out of channel-layer groups to WebSockets.

Each server process (each event loop) has one hub with one channel in the channel layer. Sockets
join groups through it; the hub is the group's only member for the whole process, so a
broadcast is one channel-layer message per process (not one per socket: with Redis, a round
trip and a decode per socket), encoded once per form, and written to every local socket in the
group.

The hub is also the process's only receiver. channels_redis's ``receive()`` on
process-specific channels can strand a message when several coroutines receive at once: a
message buffered for one consumer waits while that consumer blocks on the next read from Redis,
until some later message for the process happens to arrive. The chat benchmark saw it as a turn
whose ``turn_end`` never came once traffic stopped (docs/performance.md). With one receiver the
hand-over it races on never happens, and no socket holds a receive task of its own, which also
saves memory per socket. Consumers therefore take no channel layer of their own
(``channel_layer_alias = NO_LAYER``) and join groups here.
"""

from __future__ import annotations

import asyncio
import json
import weakref
from collections.abc import Callable
from typing import Any, Protocol, TypeVar

import structlog
from channels.layers import BaseChannelLayer, get_channel_layer

logger = structlog.get_logger(__name__)

# An alias no settings define: channels gives such a consumer no channel and no receive task.
NO_LAYER = "none: sockets receive through config.hub"
# Group membership expires in the channel layer (a day by default): renew it well before.
REJOIN_SECONDS = 600.0

T = TypeVar("T")


def encode_frame(frame: dict[str, Any]) -> str:
    """A frame as sent on every socket: compact JSON."""
    return json.dumps(frame, separators=(",", ":"))


class Encoded:
    """The encodings of one event, each made once and shared by every socket that sends it."""

    def __init__(self) -> None:
        self._forms: dict[str, Any] = {}

    def get(self, form: str, make: Callable[[], T]) -> T:
        if form not in self._forms:
            self._forms[form] = make()
        value: T = self._forms[form]
        return value


class Sink(Protocol):
    async def relay(self, group: str, event: dict[str, Any], encoded: Encoded) -> None:
        """Write the event to the socket (or hold it until the socket is ready for it)."""


class Hub:
    def __init__(self, layer: BaseChannelLayer) -> None:
        self.layer = layer
        self.groups: dict[str, set[Sink]] = {}
        self.channel: str | None = None
        self.task: asyncio.Task[None] | None = None
        self.lock = asyncio.Lock()

    async def join(self, group: str, sink: Sink) -> None:
        async with self.lock:
            if self.channel is None:
                self.channel = await self.layer.new_channel()
                self.task = asyncio.create_task(self._relay(self.channel))
            members = self.groups.get(group)
            if members is None:
                await self.layer.group_add(group, self.channel)
                members = self.groups[group] = set()
            members.add(sink)

    async def leave(self, group: str, sink: Sink) -> None:
        async with self.lock:
            members = self.groups.get(group)
            if members is None or sink not in members:
                return
            members.discard(sink)
            if members or self.channel is None:
                return
            del self.groups[group]
            await self.layer.group_discard(group, self.channel)
            if self.groups or self.task is None:
                return
            # Nobody left in this process: stop receiving until someone joins again.
            task, self.task, self.channel = self.task, None, None
        task.cancel()

    async def _relay(self, channel: str) -> None:
        renewal = asyncio.create_task(self._renew(channel))
        try:
            await self._receive_loop(channel)
        finally:
            renewal.cancel()

    async def _renew(self, channel: str) -> None:
        """Re-add the memberships on a timer: with frames delivered locally the receive loop
        may see nothing for a day, and the layer would expire the groups meanwhile."""
        while self.channel == channel:
            await asyncio.sleep(REJOIN_SECONDS)
            try:
                async with self.lock:
                    for group in list(self.groups):
                        await self.layer.group_add(group, channel)
            except Exception:
                logger.exception("hub_renew_failed")

    async def _receive_loop(self, channel: str) -> None:
        while self.channel == channel:
            try:
                event = await self.layer.receive(channel)
            except asyncio.CancelledError:
                raise
            except Exception:
                if self.channel != channel:
                    return  # stopped: redis-py reports a cancelled read as a timeout
                # The layer's backend (Redis) failed; pages resync when it is back.
                logger.exception("hub_receive_failed")
                await asyncio.sleep(1)
                continue
            await self.deliver(event)

    async def deliver(self, event: dict[str, Any]) -> None:
        group = event.get("group", "")
        encoded = Encoded()
        for sink in list(self.groups.get(group, ())):
            try:
                await sink.relay(group, event, encoded)
            except Exception:  # one closing socket must not starve the others
                logger.warning("hub_send_failed", group=group, exc_info=True)


async def publish(group: str, event: dict[str, Any]) -> None:
    """Send ``event`` to every socket in ``group``, in every process. When this process's
    hub is the group's only member (the usual case: the customer's socket and the turn live in
    the same process), hand it over directly: one membership read instead of the channel
    layer's publish and the hub's receive, about eight Redis round trips. Otherwise, and for
    layers whose membership this cannot read, through the channel layer as usual."""
    layer = get_channel_layer()
    if layer is None:
        return
    current = _hubs.get(asyncio.get_running_loop())
    if current is not None and current.layer is layer and current.channel is not None:
        members = await _members(layer, group)
        if members is not None and set(members) <= {current.channel}:
            if members:
                await current.deliver(event)
            return
    await layer.group_send(group, event)


async def _members(layer: BaseChannelLayer, group: str) -> list[str] | None:
    """The group's channels, or ``None`` when this layer's membership cannot be read."""
    groups = getattr(layer, "groups", None)
    if isinstance(groups, dict):  # channels' in-memory layer
        return list(groups.get(group, {}))
    try:  # channels_redis: the group is a sorted set of channel names (its own key and shard)
        key = layer._group_key(group)
        connection = layer.connection(layer.consistent_hash(group))
    except AttributeError:
        return None
    # Members past the layer's group expiry would be dropped by group_send; counting them
    # only ever sends through the layer, which is always correct.
    return [name.decode() for name in await connection.zrange(key, 0, -1)]


_hubs: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Hub] = weakref.WeakKeyDictionary()


def hub() -> Hub | None:
    """The hub of the running event loop (one per server process; one per test's loop), or
    ``None`` when no channel layer is configured."""
    layer = get_channel_layer()
    if layer is None:
        return None
    loop = asyncio.get_running_loop()
    current = _hubs.get(loop)
    if current is None or current.layer is not layer:
        current = _hubs[loop] = Hub(layer)
    return current
