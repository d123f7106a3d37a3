#!/usr/bin/env python
"""Benchmark: chat turns over WebSocket (offline backend, PostgreSQL, Redis, no tool) against a
bare Channels echo consumer on the same Daphne process, measured in the same run; then 2,000
idle chat sockets on one process and the memory each costs.

Targets (SPEC §14): throughput ≥ 0.25 × echo; added latency p50 ≤ 10 ms, p99 ≤ 50 ms at 50
concurrent conversations; 2,000 sockets all served, ≤ 100 KB each.

The turns run twice: as fast as the 50 conversations can go (throughput; latency there is
queueing, conversations ÷ throughput), then at a customer's pace (``--pace`` seconds between
messages on average), where the added latency is a turn's own cost. Both are printed, with the
CPU each process spent per turn.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/test REDIS_URL=redis://127.0.0.1:6379/0 \\
        .venv/bin/python bench/chat_turns.py
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.test")
os.environ.setdefault("PYTEST_XDIST_WORKER", "bench")

import django  # noqa: E402

django.setup()

import websockets  # noqa: E402
from django.conf import settings  # noqa: E402
from django.db import connection  # noqa: E402
from django.http import HttpResponse  # noqa: E402

from conversations.visitors import COOKIE, set_visitor_cookie  # noqa: E402

TURN_TIMEOUT = 30.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def cookie_for(visitor: str) -> str:
    response = HttpResponse()
    set_visitor_cookie(response, visitor, secure=False)
    return f"{COOKIE}={response.cookies[COOKIE].value}"


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def cpu_ms(pid: int) -> float:
    """CPU time (user + system) the process has used so far, in milliseconds."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0  # ended meanwhile
    return (int(fields[11]) + int(fields[12])) * 1000 / os.sysconf("SC_CLK_TCK")


def cpu_snapshot(server_pid: int) -> dict[str, dict[int, float]]:
    """CPU used so far by each process on the machine that serves a turn (PostgreSQL forks a
    backend per connection, so its processes are listed anew each time)."""
    groups = {
        "daphne": [server_pid],
        "postgres": pids_named("postgres"),
        "redis": pids_named("redis-server"),
        "client": [os.getpid()],
    }
    return {name: {pid: cpu_ms(pid) for pid in pids} for name, pids in groups.items()}


def cpu_used(before: dict[str, dict[int, float]], after: dict[str, dict[int, float]]) -> dict:
    return {
        name: sum(ms - before[name].get(pid, 0.0) for pid, ms in after[name].items())
        for name in after
    }


def pids_named(name: str) -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "comm").read_text().strip() == name:
                    pids.append(int(entry.name))
            except OSError:
                continue
    return pids


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def start_server(
    port: int, db_name: str, log: Any, extra_env: dict[str, str] | None = None
) -> subprocess.Popen[bytes]:
    env = dict(os.environ)
    url = settings.DATABASES["default"]
    env.update(
        DATABASE_URL=f"postgres://{url['USER']}@{url['HOST']}:{url['PORT']}/{db_name}",
        CHAT_RATE_LIMIT_MESSAGES="100000",
        CONVERSATION_MAX_TURNS="100000",
        LLM_BACKEND="offline",
        LLM_FALLBACK="",
        LOG_LEVEL="WARNING",
        DATABASE_POOL_MAX="20",
        **(extra_env or {}),
    )
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "daphne",
            "-b",
            "127.0.0.1",
            "-p",
            str(port),
            "bench.asgi:application",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=log,
    )
    deadline = time.time() + 30
    while time.time() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return server
        except OSError:
            time.sleep(0.2)
    server.kill()
    raise SystemExit("Daphne did not start")


async def think(rng: random.Random, mean: float) -> None:
    """A customer's pause before the next message (exponential, as arrivals are)."""
    if mean > 0:
        await asyncio.sleep(rng.expovariate(1 / mean))


async def echo_run(
    uri: str, conversations: int, turns: int, pause: float = 0.0
) -> tuple[list[float], float]:
    latencies: list[float] = []

    async def one(i: int) -> None:
        rng = random.Random(i)
        async with websockets.connect(uri, origin="http://127.0.0.1") as ws:  # type: ignore[arg-type]
            for n in range(turns):
                await think(rng, pause)
                frame = json.dumps({"type": "message", "client_id": f"{i}-{n}", "content": "hello"})
                started = time.perf_counter()
                await ws.send(frame)
                await ws.recv()
                latencies.append((time.perf_counter() - started) * 1000)

    started = time.perf_counter()
    await asyncio.gather(*(one(i) for i in range(conversations)))
    return latencies, len(latencies) / (time.perf_counter() - started)


async def chat_run(
    base: str, ids: list[str], turns: int, pause: float = 0.0, tag: str = "m"
) -> tuple[list[float], float, int]:
    latencies: list[float] = []
    bad = 0

    async def one(index: int, conversation_id: str) -> None:
        nonlocal bad
        rng = random.Random(index)
        headers = {"Cookie": cookie_for(f"bench-{index}")}
        async with websockets.connect(
            f"{base}/ws/chat/{conversation_id}/",
            origin="http://127.0.0.1",  # type: ignore[arg-type]
            additional_headers=headers,
        ) as ws:
            json.loads(await ws.recv())  # ready
            for n in range(turns):
                await think(rng, pause)
                started = time.perf_counter()
                await ws.send(
                    json.dumps(
                        {"type": "message", "client_id": f"{tag}{n}", "content": "hello there"}
                    )
                )
                reply = None
                seen: list[str] = []
                try:
                    async with asyncio.timeout(TURN_TIMEOUT):
                        while True:
                            frame = json.loads(await ws.recv())
                            seen.append(frame["type"])
                            if frame["type"] == "error":
                                bad += 1
                                return
                            if frame["type"] == "message" and frame["role"] == "assistant":
                                reply = frame
                            if frame["type"] == "turn_end":
                                break
                except TimeoutError:
                    # A lost turn is a failure to report, not a benchmark that never ends.
                    print(f"LOST: {conversation_id} turn {n}: frames seen {seen}", file=sys.stderr)
                    bad += 1
                    return
                latencies.append((time.perf_counter() - started) * 1000)
                if reply is None or not reply["content"].strip() or frame["status"] != "completed":
                    bad += 1

    started = time.perf_counter()
    await asyncio.gather(*(one(i, c) for i, c in enumerate(ids)))
    return latencies, len(latencies) / (time.perf_counter() - started), bad


async def idle_sockets(base: str, ids: list[str], offset: int, pid: int) -> tuple[int, int, int]:
    before = rss_kb(pid)
    sockets = []
    served = 0
    # Batches of 50: a burst of thousands of handshakes overflows the listen backlog, which
    # measures the kernel rather than the server.
    for start in range(0, len(ids), 50):
        batch = ids[start : start + 50]
        opened = await asyncio.gather(
            *(
                websockets.connect(
                    f"{base}/ws/chat/{cid}/",
                    origin="http://127.0.0.1",  # type: ignore[arg-type]
                    additional_headers={"Cookie": cookie_for(f"bench-{offset + start + i}")},
                    open_timeout=60,
                    ping_interval=None,
                )
                for i, cid in enumerate(batch)
            )
        )
        sockets.extend(opened)
    await asyncio.sleep(2)
    # Every socket is served: each answers a ping frame of the protocol.
    for ws in sockets:
        await ws.recv()  # ready
        await ws.send('{"type":"ping"}')
    for ws in sockets:
        if json.loads(await ws.recv()) == {"type": "pong"}:
            served += 1
    after = rss_kb(pid)
    await asyncio.gather(*(ws.close() for ws in sockets))
    return served, before, after


def print_turns(
    args: argparse.Namespace,
    echo_lat: list[float],
    echo_tput: float,
    chat_lat: list[float],
    chat_tput: float,
    bad: int,
) -> None:
    added50 = statistics.median(chat_lat) - statistics.median(echo_lat)
    added99 = percentile(chat_lat, 0.99) - percentile(echo_lat, 0.99)
    print(
        f"machine: {platform.node()} {platform.machine()} {os.cpu_count()} cores, "
        f"Python {platform.python_version()}, PostgreSQL + Redis, offline backend"
    )
    print(f"{args.conversations} concurrent conversations x {args.turns} turns; bad replies: {bad}")
    print(
        f"echo:  {echo_tput:8.1f} msg/s   p50 {statistics.median(echo_lat):6.1f} ms   "
        f"p99 {percentile(echo_lat, 0.99):6.1f} ms"
    )
    print(
        f"chat:  {chat_tput:8.1f} turns/s p50 {statistics.median(chat_lat):6.1f} ms   "
        f"p99 {percentile(chat_lat, 0.99):6.1f} ms"
    )
    print(
        f"throughput ratio {chat_tput / echo_tput:.3f} (target >= 0.25: "
        f"{'met' if chat_tput / echo_tput >= 0.25 else 'MISSED'})"
    )
    print(
        f"added latency p50 {added50:.1f} ms (target <= 10: {'met' if added50 <= 10 else 'MISSED'})"
        f", p99 {added99:.1f} ms (target <= 50: {'met' if added99 <= 50 else 'MISSED'})"
    )


def paced(args: argparse.Namespace, base: str, ids: list[str]) -> None:
    """The same conversations at a customer's pace: each waits ``--pace`` seconds on average
    before its next message, so latency is a turn's own time rather than the queue a
    closed loop at full speed builds (there, by Little's law, latency is just conversations
    divided by throughput)."""
    echo_lat, _ = asyncio.run(
        echo_run(f"{base}/ws/echo/", args.conversations, args.paced_turns, pause=args.pace)
    )
    chat_lat, _, bad = asyncio.run(chat_run(base, ids, args.paced_turns, pause=args.pace, tag="p"))
    added50 = statistics.median(chat_lat) - statistics.median(echo_lat)
    added99 = percentile(chat_lat, 0.99) - percentile(echo_lat, 0.99)
    print(
        f"paced ({args.conversations} conversations, a message every {args.pace:g} s on "
        f"average = {args.conversations / args.pace:.0f} turns/s offered, {len(chat_lat)} turns, "
        f"bad {bad}): echo p50 {statistics.median(echo_lat):.1f} ms p99 "
        f"{percentile(echo_lat, 0.99):.1f} ms; chat p50 {statistics.median(chat_lat):.1f} ms "
        f"p99 {percentile(chat_lat, 0.99):.1f} ms; added p50 {added50:.1f} ms "
        f"(target <= 10: {'met' if added50 <= 10 else 'MISSED'}), p99 {added99:.1f} ms "
        f"(target <= 50: {'met' if added99 <= 50 else 'MISSED'})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--conversations", type=int, default=50)
    parser.add_argument("--turns", type=int, default=10)
    parser.add_argument("--idle", type=int, default=2000)
    parser.add_argument(
        "--pace", type=float, default=5.0, help="mean seconds between a customer's messages"
    )
    parser.add_argument("--paced-turns", type=int, default=6)
    args = parser.parse_args()
    if connection.vendor != "postgresql" or not settings.REDIS_URL:
        raise SystemExit("Set DATABASE_URL (PostgreSQL) and REDIS_URL, as the target asks.")

    from django.core.management import call_command

    from conversations.agents import agents_load, template_text
    from conversations.models import Conversation

    old_name = connection.settings_dict["NAME"]
    # Its own database, so a test run on the same server is never clobbered.
    connection.settings_dict.setdefault("TEST", {})["NAME"] = "actiondesk_bench_chat"
    db_name = connection.creation.create_test_db(verbosity=0, autoclobber=True, keepdb=False)
    call_command("sync_roles", verbosity=0)
    agents_load(text=template_text("ecommerce"))
    total = args.conversations + args.idle
    conversations = Conversation.objects.bulk_create(
        Conversation(visitor_id=f"bench-{i}") for i in range(total)
    )
    ids = [str(c.pk) for c in conversations]
    connection.close()
    port = free_port()
    log_path = Path(tempfile.gettempdir()) / f"chat-bench-daphne-{port}.log"
    with log_path.open("wb") as log:  # the server keeps its own handle
        server = start_server(port, db_name, log)
    base = f"ws://127.0.0.1:{port}"
    try:
        asyncio.run(echo_run(f"{base}/ws/echo/", args.conversations, 2))  # warm up
        echo_before = cpu_snapshot(server.pid)
        echo_lat, echo_tput = asyncio.run(
            echo_run(f"{base}/ws/echo/", args.conversations, args.turns)
        )
        echo_cpu = cpu_used(echo_before, cpu_snapshot(server.pid))
        cpu_before = cpu_snapshot(server.pid)
        chat_lat, chat_tput, bad = asyncio.run(
            chat_run(base, ids[: args.conversations], args.turns)
        )
        cpu = cpu_used(cpu_before, cpu_snapshot(server.pid))
        print_turns(args, echo_lat, echo_tput, chat_lat, chat_tput, bad)
        # Where a turn's time goes: CPU per turn of each process on the machine.
        turns_done = max(1, len(chat_lat))
        print(
            "CPU per turn: "
            + ", ".join(f"{name} {ms / turns_done:.2f} ms" for name, ms in cpu.items())
        )
        echo_total = sum(echo_cpu.values()) / max(1, len(echo_lat))
        print(
            f"CPU per echo message, all processes: {echo_total:.2f} ms; per chat turn: "
            f"{sum(cpu.values()) / turns_done:.2f} ms (0.25 x echo's throughput on this machine "
            f"leaves a turn about {echo_total * 4:.2f} ms)"
        )
        if args.pace > 0:
            paced(args, base, ids[: args.conversations])
        served, before, after = asyncio.run(
            idle_sockets(base, ids[args.conversations :], args.conversations, server.pid)
        )
    finally:
        server.terminate()
        server.wait(timeout=10)
        err = log_path.read_text(errors="replace")
        if err.strip():
            # The server's own complaints, if any, help read a failed run.
            print(f"server log ({log_path}), last lines:", file=sys.stderr)
            print(err[-3000:], file=sys.stderr)
        connection.creation.destroy_test_db(old_name, verbosity=0)

    per_socket = (after - before) / max(1, served)
    print(
        f"idle sockets: {served}/{args.idle} served; RSS {before / 1024:.0f} -> "
        f"{after / 1024:.0f} MB = {per_socket:.1f} KB per socket (target <= 100: "
        f"{'met' if per_socket <= 100 and served == args.idle else 'MISSED'})"
    )


if __name__ == "__main__":
    main()
