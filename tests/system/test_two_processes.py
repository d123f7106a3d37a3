"""Two Daphne processes sharing PostgreSQL and Redis behave as one (SPEC §13; issue 18 item 8):
the chat's rate limit is one budget across them, a claim race across them has one winner, and
an action proposed on one process and approved on the other runs exactly once. (Staff seeing
across processes is tests/escalations/test_fanout.py.)"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, cast

import httpx
import pytest
from django.contrib.auth.models import User

from access.models import ApiKey
from access.services import api_key_issue
from conversations.models import Conversation, Message, ToolCall
from tests.conversations.chat import verify_customer, visitor_cookie
from tests.escalations.support import escalate
from tests.escalations.test_fanout import free_port, start_daphnes
from tests.escalations.ws_client import WebSocket
from tests.factories import StaffFactory

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.django_db(transaction=True)]

RATE_LIMIT = 3


@pytest.fixture
def ports() -> list[int]:
    return [free_port(), free_port()]


@pytest.fixture
def two_servers(
    postgres: None, redis_url: str, tmp_path: Path, ports: list[int]
) -> Iterator[list[int]]:
    env = {
        "CHAT_RATE_LIMIT_MESSAGES": str(RATE_LIMIT),
        "CHAT_RATE_LIMIT_WINDOW_SECONDS": "60",
        # The demo's tools call the demo shop served by process A.
        "UPSTREAM_ALLOWED_HOSTS": f"127.0.0.1:{ports[0]}",
        "UPSTREAM_ALLOW_PRIVATE": "true",
    }
    processes, started = start_daphnes(2, tmp_path, extra_env=env, ports=ports)
    try:
        yield started
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(timeout=5)
            except Exception:
                process.kill()
                process.wait()


async def _chat(port: int, origin_port: int, conversation_id: str) -> WebSocket:
    socket = await WebSocket.connect(
        "127.0.0.1",
        port,
        f"/ws/chat/{conversation_id}/",
        {
            "Origin": f"http://127.0.0.1:{origin_port}",
            "Cookie": visitor_cookie("visitor-a").decode(),
        },
    )
    ready = await asyncio.wait_for(socket.receive_json(), 5)
    assert ready["type"] == "ready", ready
    return socket


async def _until(
    socket: WebSocket, stop: Callable[[dict[str, Any]], bool], within: float = 20
) -> list[dict[str, Any]]:
    frames: list[dict[str, Any]] = []
    async with asyncio.timeout(within):
        while True:
            frames.append(await socket.receive_json())
            if stop(frames[-1]):
                return frames


def _is(kind: str) -> Callable[[dict[str, Any]], bool]:
    return lambda frame: frame["type"] == kind


def _stored_or_refused(client_id: str) -> Callable[[dict[str, Any]], bool]:
    def done(frame: dict[str, Any]) -> bool:
        if frame["type"] == "message":
            return bool(frame.get("client_id") == client_id)
        return bool(frame.get("code") == "rate_limited")

    return done


async def _rate_limit_across(ports: list[int], conversation_id: str) -> list[str]:
    sockets = [await _chat(port, ports[0], conversation_id) for port in ports]
    outcomes: list[str] = []
    try:
        for index in range(RATE_LIMIT + 1):
            socket = sockets[index % 2]
            client_id = f"m{index}"
            await socket.send_json({"type": "message", "client_id": client_id, "content": "hi"})
            # Both sockets see every stored message of the conversation: wait for this one's
            # own echo (stored) or its refusal, skipping the other frames.
            frames = await _until(socket, _stored_or_refused(client_id))
            outcomes.append("limited" if frames[-1]["type"] == "error" else "stored")
    finally:
        for socket in sockets:
            await socket.close()
    return outcomes


def test_the_chat_rate_limit_is_one_budget_across_processes(
    two_servers: list[int], conversation: Conversation
) -> None:
    outcomes = asyncio.run(_rate_limit_across(two_servers, str(conversation.pk)))

    # Messages alternate between the processes: per-process budgets would store all four.
    assert outcomes == ["stored"] * RATE_LIMIT + ["limited"]
    assert Message.objects.filter(conversation=conversation, role="user").count() == RATE_LIMIT


def test_a_claim_race_across_processes_has_one_winner(
    two_servers: list[int], conversation: Conversation, roles: None
) -> None:
    from access.roles import SUPPORT_AGENT

    escalation = escalate(conversation.pk)
    keys = [
        api_key_issue(
            owner=cast(User, StaffFactory(username=f"racer{i}", roles=[SUPPORT_AGENT])),
            name="race",
            scopes=[ApiKey.Scope.ESCALATIONS],
        ).plaintext
        for i in range(2)
    ]
    barrier = threading.Barrier(2)
    statuses: list[int] = []

    def claim(port: int, key: str) -> None:
        barrier.wait()
        response = httpx.post(
            f"http://127.0.0.1:{port}/api/v1/escalations/{escalation.pk}/claim",
            headers={"Authorization": f"Bearer {key}"},
            timeout=10,
        )
        statuses.append(response.status_code)

    threads = [
        threading.Thread(target=claim, args=(port, key))
        for port, key in zip(two_servers, keys, strict=True)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(statuses) == [200, 409]
    escalation.refresh_from_db()
    assert escalation.status == "claimed" and escalation.claimed_by is not None


async def _propose_on_a_approve_on_b(ports: list[int], conversation_id: str) -> dict[str, Any]:
    on_a = await _chat(ports[0], ports[0], conversation_id)
    on_b = await _chat(ports[1], ports[0], conversation_id)
    try:
        await on_a.send_json(
            {"type": "message", "client_id": "c1", "content": "please cancel order 1042"}
        )
        card = (await _until(on_a, _is("interrupt")))[-1]
        # B's socket saw the same card through Redis; the customer approves there.
        seen_on_b = (await _until(on_b, _is("interrupt")))[-1]
        assert seen_on_b["interrupt_id"] == card["interrupt_id"]
        approval = {
            "type": "approval",
            "interrupt_id": card["interrupt_id"],
            "decision": "approve",
            "arguments_hash": card["arguments_hash"],
        }
        await on_b.send_json(approval)
        await on_b.send_json(approval)  # a double click on the other process too
        resolved = (await _until(on_a, _is("interrupt_resolved")))[-1]
        await _until(on_a, _is("turn_end"), within=30)
        return resolved
    finally:
        await on_a.close()
        await on_b.close()


def test_an_action_proposed_on_one_process_and_approved_on_the_other_runs_once(
    two_servers: list[int],
    conversation: Conversation,
    django_user_model: type[User],
) -> None:
    from demo_shop.install import demo_install
    from demo_shop.models import Order, OrderEvent

    reviewer = django_user_model.objects.create_superuser("reviewer", "r@example.test", "x")
    demo_install(base_url=f"http://127.0.0.1:{two_servers[0]}", reviewer=reviewer)
    verify_customer(conversation.pk, email="ana@example.com")

    resolved = asyncio.run(_propose_on_a_approve_on_b(two_servers, str(conversation.pk)))

    assert (resolved["decision"], resolved["by"]) == ("approved", "customer")
    assert Order.objects.get(number=1042).status == "cancelled"
    assert OrderEvent.objects.filter(order__number=1042, kind="cancelled").count() == 1
    calls = ToolCall.objects.filter(operation_name="cancelOrder")
    assert [c.status for c in calls] == ["succeeded"]
