#!/usr/bin/env python
"""Benchmark: the program API on one Daphne process (PostgreSQL, Redis), against references
measured in the same run (SPEC §14, issue 17):

1. ``GET /api/v1/conversations?limit=50`` over 10,000 conversations of the key's integration,
   against a trivial endpoint of an API built the same way (key auth, per-key limit, envelope):
   target ≥ 0.5 × its throughput.
2. ``POST /api/v1/conversations/{id}/messages`` (send and get the reply), against the same turn
   over the chat WebSocket, one conversation at a time: target ≤ 10 ms more at p50.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/test REDIS_URL=redis://127.0.0.1:6379/0 \\
        .venv/bin/python bench/api.py
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import cast

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.api_settings")
os.environ.setdefault("PYTEST_XDIST_WORKER", "bench")

import django  # noqa: E402

django.setup()

import httpx  # noqa: E402
import websockets  # noqa: E402
from django.conf import settings  # noqa: E402
from django.db import connection  # noqa: E402

from bench.chat_turns import cookie_for, free_port, percentile, start_server  # noqa: E402

TURN_TIMEOUT = 30.0


async def throughput(url: str, headers: dict[str, str], *, workers: int, requests: int) -> float:
    """Requests per second with ``workers`` clients in parallel, ``requests`` each."""

    async def one(client: httpx.AsyncClient) -> None:
        for _ in range(requests):
            response = await client.get(url, headers=headers)
            if response.status_code != 200:
                raise SystemExit(f"{url}: {response.status_code} {response.text[:200]}")

    async with httpx.AsyncClient(timeout=30) as client:
        started = time.perf_counter()
        await asyncio.gather(*(one(client) for _ in range(workers)))
        return workers * requests / (time.perf_counter() - started)


def api_turns(base: str, headers: dict[str, str], conversation_id: str, turns: int) -> list[float]:
    latencies = []
    with httpx.Client(base_url=base, headers=headers, timeout=TURN_TIMEOUT) as client:
        for n in range(turns):
            started = time.perf_counter()
            response = client.post(
                f"/api/v1/conversations/{conversation_id}/messages",
                json={"content": "hello there", "client_id": f"a{n}", "wait": 20},
            )
            latencies.append((time.perf_counter() - started) * 1000)
            if response.status_code != 200 or response.json()["data"]["status"] != "completed":
                raise SystemExit(f"API turn {n}: {response.status_code} {response.text[:300]}")
    return latencies


WS_LATENCIES: list[float] = []


async def ws_turns(base: str, conversation_id: str, visitor: str, turns: int) -> list[float]:
    latencies = WS_LATENCIES
    async with websockets.connect(
        f"{base}/ws/chat/{conversation_id}/",
        origin="http://127.0.0.1",  # type: ignore[arg-type]
        additional_headers={"Cookie": cookie_for(visitor)},
    ) as ws:
        json.loads(await ws.recv())  # ready
        for n in range(turns):
            started = time.perf_counter()
            await ws.send(
                json.dumps({"type": "message", "client_id": f"w{n}", "content": "hello there"})
            )
            seen: list[str] = []
            try:
                async with asyncio.timeout(TURN_TIMEOUT):
                    while (frame := json.loads(await ws.recv()))["type"] != "turn_end":
                        seen.append(frame["type"] if frame["type"] != "error" else str(frame))
            except TimeoutError:
                raise SystemExit(f"WebSocket turn {n} lost; frames seen: {seen}") from None
            latencies.append((time.perf_counter() - started) * 1000)
    return latencies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--requests", type=int, default=50, help="per worker and endpoint")
    parser.add_argument("--turns", type=int, default=30)
    args = parser.parse_args()
    if connection.vendor != "postgresql" or not settings.REDIS_URL:
        raise SystemExit("Set DATABASE_URL (PostgreSQL) and REDIS_URL, as the target asks.")

    from django.contrib.auth.models import User
    from django.core.management import call_command

    from access.models import ApiKey
    from access.roles import SUPERVISOR
    from access.services import api_key_issue
    from conversations.agents import agents_load, template_text
    from conversations.models import Conversation
    from tests.factories import StaffFactory

    old_name = connection.settings_dict["NAME"]
    connection.settings_dict.setdefault("TEST", {})["NAME"] = "actiondesk_bench_api"
    db_name = connection.creation.create_test_db(verbosity=0, autoclobber=True, keepdb=False)
    call_command("sync_roles", verbosity=0)
    agents_load(text=template_text("ecommerce"))
    owner = cast("User", StaffFactory(username="bench", roles=[SUPERVISOR]))
    key = api_key_issue(
        owner=owner, name="bench", scopes=list(ApiKey.Scope.values), integration="bench"
    )
    Conversation.objects.bulk_create(
        (Conversation(integration="bench", title=f"c{i}") for i in range(args.rows)),
        batch_size=2000,
    )
    api_conversation = Conversation.objects.create(integration="bench")
    ws_conversation = Conversation.objects.create(visitor_id="bench-ws")
    connection.close()
    headers = {"Authorization": f"Bearer {key.plaintext}"}
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log_path = Path(tempfile.gettempdir()) / f"api-bench-daphne-{port}.log"
    with log_path.open("wb") as log:
        server = start_server(
            port,
            db_name,
            log,
            {"DJANGO_SETTINGS_MODULE": "bench.api_settings", "API_RATE_LIMIT": "10000000/m"},
        )
    try:
        trivial_url, list_url = f"{base}/bench/api/ping", f"{base}/api/v1/conversations?limit=50"
        for url in (trivial_url, list_url):  # warm up
            asyncio.run(throughput(url, headers, workers=2, requests=10))
        trivial = asyncio.run(
            throughput(trivial_url, headers, workers=args.workers, requests=args.requests)
        )
        listed = asyncio.run(
            throughput(list_url, headers, workers=args.workers, requests=args.requests)
        )
        ratio = listed / trivial
        print(
            f"list 50 of {args.rows:,}: {listed:.0f} req/s; trivial ninja endpoint: {trivial:.0f} "
            f"req/s; ratio {ratio:.2f} (target >= 0.5: {'met' if ratio >= 0.5 else 'MISSED'})"
        )
        ws_base = f"ws://127.0.0.1:{port}"
        api_turns(base, headers, str(api_conversation.pk), 3)  # warm up
        # API turns first: a turn the API started must leave the chat's turns working.
        api_lat = api_turns(base, headers, str(api_conversation.pk), args.turns)
        asyncio.run(ws_turns(ws_base, str(ws_conversation.pk), "bench-ws", args.turns + 3))
        ws_lat = WS_LATENCIES[3:]
        added = statistics.median(api_lat) - statistics.median(ws_lat)
        print(
            f"send and reply: API p50 {statistics.median(api_lat):.1f} ms, p95 "
            f"{percentile(api_lat, 0.95):.1f} ms; WebSocket p50 {statistics.median(ws_lat):.1f} "
            f"ms, p95 {percentile(ws_lat, 0.95):.1f} ms; added p50 {added:.1f} ms "
            f"(target <= 10: {'met' if added <= 10 else 'MISSED'})"
        )
    finally:
        server.terminate()
        server.wait(timeout=10)
        err = log_path.read_text(errors="replace")
        if err.strip():
            print(f"server log ({log_path}), last lines:", file=sys.stderr)
            print(err[-3000:], file=sys.stderr)
        connection.creation.destroy_test_db(old_name, verbosity=0)


if __name__ == "__main__":
    main()
