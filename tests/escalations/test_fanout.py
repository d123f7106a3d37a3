"""Two real Daphne processes sharing PostgreSQL and Redis behave as one (SPEC §2, §13): a staff
socket on process A sees an escalation the customer raised on process B."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from django.conf import settings
from django.contrib.auth.models import User
from django.db import connection

from conversations.models import Conversation
from tests.conversations.chat import visitor_cookie
from tests.escalations.support import session_cookie
from tests.escalations.ws_client import WebSocket

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.django_db(transaction=True)]

STARTUP_SECONDS = 15.0


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_database_url() -> str:
    """The test database (``test_…``, per xdist worker) as a URL for another process."""
    db = connection.settings_dict
    auth = db["USER"] + (f":{db['PASSWORD']}" if db.get("PASSWORD") else "")
    return f"postgres://{auth}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


test_database_url.__test__ = False  # type: ignore[attr-defined]


def start_daphnes(
    count: int,
    log_dir: Path,
    settings_module: str = "config.settings.test",
    *,
    extra_env: dict[str, str] | None = None,
    ports: list[int] | None = None,
) -> tuple[list[subprocess.Popen[bytes]], list[int]]:
    """``count`` Daphne processes on the test database and Redis (also used by bench/), on
    ``ports`` when given (so their URLs can be known before they start)."""
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": settings_module, **(extra_env or {})}
    env["DATABASE_URL"] = test_database_url()
    env["REDIS_URL"] = str(settings.REDIS_URL)
    env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
    daphne = Path(settings.BASE_DIR) / ".venv" / "bin" / "daphne"
    processes: list[subprocess.Popen[bytes]] = []
    ports = list(ports) if ports is not None else [free_port() for _ in range(count)]
    for index, port in enumerate(ports):
        log = (log_dir / f"daphne-{index}.log").open("wb")
        processes.append(
            subprocess.Popen(
                [str(daphne), "-b", "127.0.0.1", "-p", str(port), "config.asgi:application"],
                cwd=settings.BASE_DIR,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        )
    deadline = time.monotonic() + STARTUP_SECONDS
    for process, port in zip(processes, ports, strict=True):
        while True:
            if process.poll() is not None:
                logs = "\n".join(p.read_text()[-2000:] for p in log_dir.glob("daphne-*.log"))
                pytest.fail(f"Daphne exited with {process.returncode}:\n{logs}")
            try:
                if httpx.get(f"http://127.0.0.1:{port}/api/v1/health", timeout=1).is_success:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                pytest.fail("Daphne did not start in time")
            time.sleep(0.1)
    return processes, ports


@pytest.fixture
def two_servers(postgres: None, redis_url: str, tmp_path: Path) -> Iterator[list[int]]:
    processes, ports = start_daphnes(2, tmp_path)
    try:
        yield ports
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


async def _escalate_across(ports: list[int], staff_cookie: str, conversation_id: str) -> Any:
    origin = f"http://127.0.0.1:{ports[0]}"
    staff = await WebSocket.connect(
        "127.0.0.1", ports[0], "/ws/escalations/", {"Origin": origin, "Cookie": staff_cookie}
    )
    customer = await WebSocket.connect(
        "127.0.0.1",
        ports[1],
        f"/ws/chat/{conversation_id}/",
        {"Origin": origin, "Cookie": visitor_cookie("visitor-a").decode()},
    )
    try:
        snapshot = await asyncio.wait_for(staff.receive_json(), 5)
        assert snapshot["type"] == "queue" and snapshot["escalations"] == []
        ready = await asyncio.wait_for(customer.receive_json(), 5)
        assert ready["type"] == "ready"
        sent = time.monotonic()
        await customer.send_json({"type": "escalate", "reason": "across processes"})
        async with asyncio.timeout(2):
            while (frame := await staff.receive_json())["type"] != "escalation_created":
                pass
        return frame, time.monotonic() - sent
    finally:
        await staff.close()
        await customer.close()


def test_staff_on_one_process_see_an_escalation_raised_on_another(
    two_servers: list[int], support_agent: User, conversation: Conversation
) -> None:
    cookie = session_cookie(support_agent)

    frame, latency = asyncio.run(_escalate_across(two_servers, cookie, str(conversation.pk)))

    assert frame["escalation"]["conversation_id"] == str(conversation.pk)
    assert frame["escalation"]["reason"] == "across processes"
    assert latency < 2
    conversation.refresh_from_db()
    assert conversation.state == "escalated"
