"""The process hub (config.hub): one channel per process, fan-out to local sockets by group."""

from __future__ import annotations

import asyncio
from typing import Any

from channels.layers import InMemoryChannelLayer, get_channel_layer

from config.hub import Encoded, Hub


class Sink:
    def __init__(self, fail: bool = False) -> None:
        self.events: list[tuple[str, Any]] = []
        self.fail = fail

    async def relay(self, group: str, event: dict[str, Any], encoded: Encoded) -> None:
        if self.fail:
            raise ConnectionError("socket went away")
        self.events.append((group, encoded.get("n", lambda: event["n"])))


def event(group: str, **fields: Any) -> dict[str, Any]:
    return {"type": "x", "group": group, **fields}


async def joined(group: str, *sinks: Sink) -> tuple[InMemoryChannelLayer, Hub]:
    """A hub on its own in-memory layer, with ``sinks`` in ``group``."""
    layer = InMemoryChannelLayer()
    hub = Hub(layer)
    for sink in sinks:
        await hub.join(group, sink)
    return layer, hub


async def until(predicate: Any, within: float = 5.0) -> None:
    async with asyncio.timeout(within):
        while not predicate():  # noqa: ASYNC110  (a plain predicate over test sinks)
            await asyncio.sleep(0.01)


async def test_each_socket_of_the_group_gets_the_event_once() -> None:
    layer = InMemoryChannelLayer()
    hub = Hub(layer)
    a, b, other = Sink(), Sink(), Sink()
    await hub.join("conversation.a", a)
    await hub.join("conversation.a", b)
    await hub.join("conversation.b", other)
    await layer.group_send("conversation.a", {"type": "x", "group": "conversation.a", "n": 1})
    await until(lambda: a.events and b.events)
    await asyncio.sleep(0.05)
    assert a.events == b.events == [("conversation.a", 1)]
    assert other.events == []
    await hub.leave("conversation.a", a)
    await hub.leave("conversation.a", b)
    await hub.leave("conversation.b", other)


async def test_one_channel_message_per_process_and_one_encoding_per_event() -> None:
    layer = InMemoryChannelLayer()
    hub = Hub(layer)
    sinks = [Sink() for _ in range(5)]
    for sink in sinks:
        await hub.join("escalations.staff", sink)
    # Five sockets, one member of the group: the hub's channel.
    assert len(layer.groups["escalations.staff"]) == 1
    made: list[int] = []

    def make() -> str:
        made.append(1)
        return "t"

    class Counting(Sink):
        async def relay(self, group: str, event: dict[str, Any], encoded: Encoded) -> None:
            self.events.append((group, encoded.get("text", make)))

    counting = [Counting() for _ in range(3)]
    for sink in counting:
        await hub.join("escalations.staff", sink)
    await layer.group_send("escalations.staff", {"type": "x", "group": "escalations.staff"})
    await until(lambda: all(s.events for s in counting))
    assert made == [1]
    for sink in [*sinks, *counting]:
        await hub.leave("escalations.staff", sink)


async def test_a_failing_socket_does_not_starve_the_others() -> None:
    broken, fine = Sink(fail=True), Sink()
    layer, hub = await joined("g", broken, fine)
    await layer.group_send("g", event("g", n=7))
    await until(lambda: fine.events)
    assert fine.events == [("g", 7)]
    await hub.leave("g", broken)
    await hub.leave("g", fine)


async def test_the_last_socket_out_leaves_the_group_and_stops_receiving() -> None:
    sink = Sink()
    layer, hub = await joined("g", sink)
    task = hub.task
    assert task is not None
    await hub.leave("g", sink)
    await asyncio.sleep(0)
    assert "g" not in layer.groups or not layer.groups["g"]
    assert hub.channel is None and hub.task is None
    await asyncio.sleep(0.01)
    assert task.cancelled() or task.done()
    # Leaving twice, or a group never joined, is harmless.
    await hub.leave("g", sink)
    # And joining again starts a new relay.
    await hub.join("g", sink)
    await layer.group_send("g", event("g", n=2))
    await until(lambda: sink.events)
    assert sink.events == [("g", 2)]
    await hub.leave("g", sink)


async def test_bursts_to_many_groups_on_redis_arrive_complete_and_in_order(redis_url: str) -> None:
    """The chat benchmark once lost turn ends when every socket received on its own channel
    (channels_redis strands a buffered message behind another reader's blocking read). One
    receiver per process must deliver everything, in order, with traffic stopping at once."""
    layer = get_channel_layer()
    hub = Hub(layer)
    sinks = {f"conversation.burst{i}": Sink() for i in range(20)}
    for group, sink in sinks.items():
        await hub.join(group, sink)
    for n in range(30):
        await asyncio.gather(
            *(layer.group_send(g, {"type": "x", "group": g, "n": n}) for g in sinks)
        )
    await until(lambda: all(len(s.events) == 30 for s in sinks.values()), within=20)
    for group, sink in sinks.items():
        assert sink.events == [(group, n) for n in range(30)]
        await hub.leave(group, sink)


async def test_a_group_only_this_process_serves_skips_the_channel_layer(monkeypatch: Any) -> None:
    from config import hub as hub_module

    relay = hub_module.hub()
    assert relay is not None
    local = Sink()
    await relay.join("conversation.local", local)

    async def refuse(*args: Any) -> None:
        raise AssertionError("went through the channel layer")

    monkeypatch.setattr(relay.layer, "group_send", refuse)
    await hub_module.publish(
        "conversation.local", {"type": "x", "group": "conversation.local", "n": 1}
    )
    assert local.events == [("conversation.local", 1)]  # delivered before publish returned
    # Nobody in the group at all: nothing to do.
    await hub_module.publish("conversation.nobody", {"type": "x", "group": "conversation.nobody"})
    monkeypatch.undo()
    await relay.leave("conversation.local", local)


async def test_a_group_with_another_process_goes_through_redis(redis_url: str) -> None:
    """Another process's hub is in the group too: both get the event, through the layer."""
    from config import hub as hub_module

    relay = hub_module.hub()
    assert relay is not None
    elsewhere = Hub(relay.layer)  # stands in for another process's hub
    here, there = Sink(), Sink()
    await relay.join("conversation.shared", here)
    await elsewhere.join("conversation.shared", there)
    await hub_module.publish(
        "conversation.shared", {"type": "x", "group": "conversation.shared", "n": 5}
    )
    await until(lambda: here.events and there.events)
    assert here.events == there.events == [("conversation.shared", 5)]
    await relay.leave("conversation.shared", here)
    await elsewhere.leave("conversation.shared", there)


async def test_memberships_are_renewed_even_when_nothing_arrives(monkeypatch: Any) -> None:
    """Frames delivered locally never pass the receive loop; the layer would expire the
    group memberships after a day all the same, so they are renewed on a timer."""
    from config import hub as hub_module

    monkeypatch.setattr(hub_module, "REJOIN_SECONDS", 0.05)
    layer = InMemoryChannelLayer()
    hub = Hub(layer)
    sink = Sink()
    await hub.join("g", sink)
    assert hub.channel is not None
    first = layer.groups["g"][hub.channel]
    await asyncio.sleep(0.2)
    assert layer.groups["g"][hub.channel] > first
    await hub.leave("g", sink)
