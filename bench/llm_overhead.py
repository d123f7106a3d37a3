#!/usr/bin/env python
"""Benchmark: what the backend layer adds over a direct ``openai`` client call (SPEC §14: ≤ 2 ms
p50), against the local OpenAI-compatible test server over real HTTP.

Direct client calls and ``BackendRegistry.complete`` calls alternate, so both see the same
server and machine load; the registry runs with each breaker store: process memory, Django's
cache (Redis with ``REDIS_URL``, else local memory) and the database (``BackendCircuit`` rows).

    REDIS_URL=redis://127.0.0.1:6379/0 .venv/bin/python bench/llm_overhead.py --calls 400
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.test")
os.environ.setdefault("PYTEST_XDIST_WORKER", "bench")

import django  # noqa: E402

django.setup()

import openai  # noqa: E402

from conversations.llm import BackendConfig, BackendRegistry, ChatMessage  # noqa: E402
from conversations.llm.breaker import BreakerStore  # noqa: E402
from tests.support.openai_server import OpenAITestServer, text_reply  # noqa: E402

MESSAGES = [ChatMessage("user", "hello")]


async def _measure(server: OpenAITestServer, store: BreakerStore, calls: int) -> dict[str, Any]:
    client = openai.AsyncOpenAI(base_url=server.url, api_key="x", max_retries=0, timeout=10)
    registry = BackendRegistry(
        [BackendConfig(name=f"bench-{type(store).__name__}", kind="openai", model="m",
                       base_url=server.url, api_key="x", timeout=10)],
        breaker_store=store,
        clock=time.time,
    )  # fmt: skip
    direct: list[float] = []
    layered: list[float] = []
    for index in range(calls + 20):
        started = time.perf_counter()
        await client.chat.completions.create(
            model="m", messages=[{"role": "user", "content": "hello"}]
        )
        middle = time.perf_counter()
        await registry.complete(MESSAGES)
        ended = time.perf_counter()
        if index >= 20:  # warm-up: connections, imports
            direct.append((middle - started) * 1000)
            layered.append((ended - middle) * 1000)
    paired = [b - a for a, b in zip(direct, layered, strict=True)]
    await client.close()
    await registry.aclose()
    return {
        "direct_p50": statistics.median(direct),
        "layer_p50": statistics.median(layered),
        # The median of paired differences: each registry call against the direct call just
        # before it, which cancels most of a loaded machine's drift.
        "added_p50": statistics.median(paired),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=300)
    args = parser.parse_args()
    from django.conf import settings
    from django.core.management import call_command
    from django.db import connection

    from conversations.model_backends import CacheBreakerStore, DatabaseBreakerStore

    if settings.DATABASES["default"]["ENGINE"].endswith("sqlite3"):
        connection.creation.create_test_db(verbosity=0, keepdb=False)
    else:
        call_command("migrate", verbosity=0)
    stores: list[BreakerStore] = [BreakerStore(), CacheBreakerStore(), DatabaseBreakerStore()]
    with OpenAITestServer(default=text_reply("hi")) as server:
        for store in stores:
            result = asyncio.run(_measure(server, store, args.calls))
            print(
                f"{type(store).__name__:22s} direct p50 {result['direct_p50']:.3f} ms  "
                f"registry p50 {result['layer_p50']:.3f} ms  added p50 "
                f"{result['added_p50']:+.3f} ms  (target <= 2 ms; redis={bool(settings.REDIS_URL)})"
            )


if __name__ == "__main__":
    main()
