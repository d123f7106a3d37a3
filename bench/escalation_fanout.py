#!/usr/bin/env python
"""Benchmark: escalation fan-out to 100 staff sockets over Redis, against a raw Redis
publish/subscribe round trip to as many subscribers, measured in the same run.

Target (SPEC §14): delivery p99 ≤ 3 × the raw round trip's p99, and no drops. Needs PostgreSQL
and Redis; runs real Daphne processes on a throw-away test database:

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/test REDIS_URL=redis://127.0.0.1:6379/0 \\
        .venv/bin/python bench/escalation_fanout.py [--sockets 100] [--rate 20] [--seconds 10]

Escalations are opened through the real service path (``handoff_request`` → ``escalation_open``,
broadcast after commit through the channel layer). Fan-out latency runs from the broadcast
(``group_send``) to the frame read on each socket; the end-to-end figure adds the service's own
work (database writes, packet) before it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.test")
os.environ.setdefault("REDIS_PREFIX", f"bench-fanout-{os.getpid()}")

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.db import connection  # noqa: E402


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def start_servers(count: int) -> tuple[list[Any], list[int]]:
    from tests.escalations.test_fanout import start_daphnes

    log_dir = Path(f"/tmp/escalation-fanout-{os.getpid()}")  # noqa: S108
    log_dir.mkdir(exist_ok=True)
    return start_daphnes(count, log_dir, os.environ["DJANGO_SETTINGS_MODULE"])


def make_staff(count: int) -> list[str]:
    from django.contrib.auth.models import Group, User

    from access.roles import SUPPORT_AGENT
    from tests.escalations.support import session_cookie

    group = Group.objects.get(name=SUPPORT_AGENT)
    cookies = []
    for index in range(count):
        user = User.objects.create_user(f"bench-staff-{index}", is_staff=True)
        user.groups.add(group)
        cookies.append(session_cookie(user))
    return cookies


def make_conversations(count: int) -> list[str]:
    from conversations.models import Conversation

    conversations = Conversation.objects.bulk_create(
        Conversation(visitor_id=f"bench-{index}", title=f"bench {index}") for index in range(count)
    )
    return [str(c.pk) for c in conversations]


def publish(conversations: list[str], rate: float, out: Path) -> None:
    """The publisher process: opens escalations at a steady rate through the service path and
    writes when each broadcast left and when its service call began (CLOCK_MONOTONIC, which
    every process on the machine shares)."""
    from conversations.models import Conversation
    from conversations.services import handoff_request
    from escalations import realtime

    sent_at: dict[int, float] = {}
    began_at: dict[int, float] = {}
    service_ms: list[float] = []
    original = realtime._send

    def timed_send(frame: dict[str, Any]) -> None:
        if frame.get("type") == "escalation_created":
            sent_at[frame["escalation"]["id"]] = time.monotonic()
        original(frame)

    realtime._send = timed_send
    start = time.monotonic()
    for index, conversation_id in enumerate(conversations):
        delay = start + index / rate - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        began = time.monotonic()
        handoff_request(conversation_id=conversation_id, trigger="customer_button", reason="bench")
        service_ms.append((time.monotonic() - began) * 1000)
        began_at[Conversation.objects.get(pk=conversation_id).escalations.get().pk] = began
    out.write_text(json.dumps({"sent_at": sent_at, "began_at": began_at, "service_ms": service_ms}))


def start_publisher(conversations: list[str], rate: float, work: Path) -> subprocess.Popen[bytes]:
    """In its own process, so its database work never holds up the sockets' reader here."""
    from tests.escalations.test_fanout import test_database_url

    (work / "conversations.json").write_text(json.dumps(conversations))
    env = {**os.environ, "DATABASE_URL": test_database_url()}
    return subprocess.Popen(
        [sys.executable, __file__, "--publish", str(work), "--rate", str(rate)], env=env
    )


async def staff_socket(port: int, cookie: str, received: list[Any]) -> None:
    from tests.escalations.ws_client import WebSocket

    ws = await WebSocket.connect(
        "127.0.0.1",
        port,
        "/ws/escalations/",
        {"Origin": f"http://127.0.0.1:{port}", "Cookie": cookie},
    )
    received.append(ws)
    snapshot = await ws.receive_json()
    assert snapshot["type"] == "queue", snapshot


async def read_socket(ws: Any, arrivals: dict[int, float], until: float) -> None:
    while True:
        remaining = until - time.monotonic()
        if remaining <= 0:
            return
        try:
            frame = await asyncio.wait_for(ws.receive_json(), remaining)
        except TimeoutError:
            return
        if frame.get("type") == "escalation_created":
            arrivals[frame["escalation"]["id"]] = time.monotonic()


async def fanout(
    ports: list[int], cookies: list[str], conversations: list[str], rate: float, work: Path
) -> dict[str, Any]:
    sockets: list[Any] = []
    await asyncio.gather(
        *(staff_socket(ports[i % len(ports)], cookie, sockets) for i, cookie in enumerate(cookies))
    )
    arrivals: list[dict[int, float]] = [{} for _ in sockets]
    until = time.monotonic() + len(conversations) / rate + 15
    readers = [
        asyncio.create_task(read_socket(ws, arrivals[i], until)) for i, ws in enumerate(sockets)
    ]
    publisher = start_publisher(conversations, rate, work)
    while publisher.poll() is None or not all(len(a) >= len(conversations) for a in arrivals):
        if time.monotonic() > until:
            break
        await asyncio.sleep(0.05)
    for task in readers:
        task.cancel()
    await asyncio.gather(*readers, return_exceptions=True)
    await asyncio.gather(*(ws.close() for ws in sockets))
    if publisher.wait() != 0:
        raise SystemExit("the publisher failed")
    published = json.loads((work / "published.json").read_text())
    sent_at = {int(k): v for k, v in published["sent_at"].items()}
    began_at = {int(k): v for k, v in published["began_at"].items()}
    received = [(eid, at) for socket_arrivals in arrivals for eid, at in socket_arrivals.items()]
    return {
        "sockets": len(sockets),
        "escalations": len(sent_at),
        "expected": len(sockets) * len(conversations),
        "received": len(received),
        "fan_ms": [(at - sent_at[eid]) * 1000 for eid, at in received if eid in sent_at],
        "end_ms": [(at - began_at[eid]) * 1000 for eid, at in received if eid in began_at],
        "service_ms": published["service_ms"],
    }


def _frame_like(index: int) -> dict[str, Any]:
    """A payload the size and shape of an ``escalation_created`` frame."""
    return {
        "type": "escalation_created",
        "escalation": {
            "id": index,
            "conversation_id": "6f1c9c55-2f8b-4c3e-a8a5-6f1c9c552f8b",
            "status": "waiting",
            "priority": "normal",
            "priority_reason": "",
            "trigger": "customer_button",
            "reason": "bench",
            "title": f"bench {index}",
            "preview": "",
            "created_at": "2026-01-01T00:00:00.000000+00:00",
            "claimed_by": None,
            "claimed_at": None,
            "url": f"/admin/escalations/handoff/{index}/",
        },
    }


async def raw_pubsub(subscribers: int, messages: int, rate: float) -> list[float]:
    """The same fan-out with nothing but Redis: ``subscribers`` connections on one channel."""
    import redis.asyncio as redis

    url = str(settings.REDIS_URL)
    channel = f"{settings.REDIS_PREFIX}:bench-raw"
    clients = [redis.from_url(url) for _ in range(subscribers)]
    pubsubs = [client.pubsub() for client in clients]
    for pubsub in pubsubs:
        await pubsub.subscribe(channel)
        await pubsub.get_message(timeout=1)  # the subscribe confirmation
    sent: dict[int, float] = {}
    latencies: list[float] = []

    async def listen(pubsub: Any) -> None:
        got = 0
        while got < messages:
            message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=5)
            if message is None:
                return
            at = time.monotonic()
            # The same client work as a staff socket: decode a frame of the same size.
            frame = json.loads(message["data"])
            latencies.append((at - sent[frame["escalation"]["id"]]) * 1000)
            got += 1

    listeners = [asyncio.create_task(listen(p)) for p in pubsubs]
    publisher = redis.from_url(url)
    start = time.monotonic()
    for index in range(messages):
        delay = start + index / rate - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        sent[index] = time.monotonic()
        await publisher.publish(channel, json.dumps(_frame_like(index)))
    await asyncio.gather(*listeners)
    for pubsub in pubsubs:
        await pubsub.aclose()
    for client in [*clients, publisher]:
        await client.aclose()
    return latencies


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--sockets", type=int, default=100)
    parser.add_argument("--rate", type=float, default=20.0, help="escalations per second")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--servers", type=int, default=2, help="Daphne processes (sockets split)")
    parser.add_argument("--publish", type=Path, help=argparse.SUPPRESS)  # the publisher process
    args = parser.parse_args()
    if args.publish:
        conversations = json.loads((args.publish / "conversations.json").read_text())
        publish(conversations, args.rate, args.publish / "published.json")
        return
    if connection.vendor != "postgresql" or not settings.REDIS_URL:
        raise SystemExit("Set DATABASE_URL (PostgreSQL) and REDIS_URL: the target is about them.")
    count = int(args.rate * args.seconds)

    old_name = connection.settings_dict["NAME"]
    connection.creation.create_test_db(verbosity=0, autoclobber=True, keepdb=False)
    processes: list[Any] = []
    try:
        cookies = make_staff(args.sockets)
        conversations = make_conversations(count)
        connection.close()
        processes, ports = start_servers(args.servers)
        raw = asyncio.run(raw_pubsub(args.sockets, count, args.rate))
        work = Path(f"/tmp/escalation-fanout-{os.getpid()}")  # noqa: S108
        result = asyncio.run(fanout(ports, cookies, conversations, args.rate, work))
    finally:
        for process in processes:
            process.terminate()
            process.wait(timeout=10)
        connection.close()
        connection.creation.destroy_test_db(old_name, verbosity=0)

    raw_p50, raw_p99 = percentile(raw, 50), percentile(raw, 99)
    fan_p50, fan_p99 = percentile(result["fan_ms"], 50), percentile(result["fan_ms"], 99)
    drops = result["expected"] - result["received"]
    ratio = fan_p99 / raw_p99 if raw_p99 else float("inf")
    print(f"date: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC; machine: {platform.machine()}, "
          f"{os.cpu_count()} cores, Python {platform.python_version()}; "
          f"{args.servers} Daphne process(es), PostgreSQL + Redis")  # fmt: skip
    print(f"load: {result['escalations']} escalations at {args.rate:g}/s to "
          f"{result['sockets']} staff sockets = {result['expected']} deliveries")  # fmt: skip
    print(f"raw Redis pub/sub to {args.sockets} subscribers: p50 {raw_p50:.2f} ms, "
          f"p99 {raw_p99:.2f} ms ({len(raw)} receipts)")  # fmt: skip
    print(f"escalation fan-out (group_send -> socket): p50 {fan_p50:.2f} ms, "
          f"p99 {fan_p99:.2f} ms")  # fmt: skip
    print(f"end to end (handoff_request -> socket): p50 {percentile(result['end_ms'], 50):.1f} ms,"
          f" p99 {percentile(result['end_ms'], 99):.1f} ms; service call p50 "
          f"{percentile(result['service_ms'], 50):.1f} ms")  # fmt: skip
    print(
        f"drops: {drops}; p99 ratio fan-out / raw: {ratio:.2f} x "
        f"(target <= 3 x, no drops): {'met' if ratio <= 3 and drops == 0 else 'MISSED'}"
    )
    print(json.dumps({"raw_p99_ms": raw_p99, "fanout_p99_ms": fan_p99, "drops": drops}))


if __name__ == "__main__":
    main()
