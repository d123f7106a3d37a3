#!/usr/bin/env python
"""Where a chat turn's CPU goes: ``--turns`` turns of one conversation (offline backend, the
e-commerce agents, no tool) through the chat protocol's message handler in this process,
profiled with pyinstrument after a warm-up. Uses the configured database (the embedded SQLite
unless ``DATABASE_URL`` is set; its own test database either way).

    .venv/bin/python bench/profile_turn.py --turns 100
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.test")
os.environ.setdefault("PYTEST_XDIST_WORKER", "profile")

import django  # noqa: E402

django.setup()

from asgiref.sync import async_to_sync  # noqa: E402
from django.db import connection  # noqa: E402
from pyinstrument import Profiler  # noqa: E402

from conversations import protocol  # noqa: E402

try:
    from conversations.turns.engine import wait_idle
except ImportError:  # before issue 14: the runtime module
    from conversations.agent.runtime import wait_idle  # type: ignore[no-redef]


class Socket:
    def __init__(self, conversation_id: str) -> None:
        self.conversation_id = conversation_id

    async def send_json(self, frame: dict[str, Any]) -> None:
        pass


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--turns", type=int, default=100)
    args = parser.parse_args()
    from django.conf import settings
    from django.core.management import call_command

    from conversations.agents import agents_load, template_text
    from conversations.services import conversation_start

    settings.CHAT_RATE_LIMIT_MESSAGES = 1_000_000
    settings.CONVERSATION_MAX_TURNS = 1_000_000
    old_name = connection.settings_dict["NAME"]
    if connection.vendor == "postgresql":
        connection.settings_dict.setdefault("TEST", {})["NAME"] = "actiondesk_profile_turn"
    # (SQLite: an in-memory test database, so commits cost no disk flush.)
    connection.creation.create_test_db(verbosity=0, autoclobber=True, keepdb=False)
    try:
        call_command("sync_roles", verbosity=0)
        agents_load(text=template_text("ecommerce"))
        conversation = conversation_start(visitor_id="profile")
        socket = Socket(str(conversation.pk))

        async def turns(first: int, count: int) -> None:
            for n in range(first, first + count):
                await protocol.dispatch(
                    socket,  # type: ignore[arg-type]
                    {"type": "message", "client_id": f"p{n}", "content": "hello there"},
                )
                await wait_idle()

        async_to_sync(turns)(0, 10)  # warm up
        profiler = Profiler(interval=0.0005)
        started = time.perf_counter()
        profiler.start()
        async_to_sync(turns)(10, args.turns)
        profiler.stop()
        elapsed = time.perf_counter() - started
        print(
            f"{args.turns} turns, {connection.vendor}, {elapsed / args.turns * 1000:.2f} ms "
            "per turn (wall, profiled)"
        )
        print(profiler.output_text(unicode=False, color=False, show_all=False))
    finally:
        connection.creation.destroy_test_db(old_name, verbosity=0)


if __name__ == "__main__":
    main()
