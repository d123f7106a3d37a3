#!/usr/bin/env python
"""Benchmark: chat turns over WebSocket (offline backend, PostgreSQL, Redis, no tool) against
two references on the same Daphne process, measured in the same invocation and interleaved
over ``--rounds`` rounds: a bare Channels echo, and a *persisting echo* that stores the
customer's message and an echo reply in the real message table in one transaction (psycopg 3's
async pool, hand-written SQL; ``bench/asgi.py``). Each round runs every mode at 1 conversation
(``--single-turns`` sequential turns) and at ``--conversations`` concurrent conversations ×
``--turns`` turns; the medians over rounds and their ratios are printed. Then, optionally, the
paced run and 2,000 idle chat sockets with the memory each costs.

Targets (SPEC §14, issue 14): chat throughput ≥ 0.25 × persisting echo at 50 conversations;
Daphne + PostgreSQL CPU per turn ≤ 4 × the persisting echo's; at 1 conversation the added
latency over the persisting echo p50 ≤ 5 ms, p99 ≤ 20 ms; chat throughput at 50 conversations
≥ 2 × at 1; 2,000 idle sockets all served, ≤ 100 KB each.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/test REDIS_URL=redis://127.0.0.1:6379/0 \\
        .venv/bin/python bench/chat_turns.py --rounds 5
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


async def pecho_run(
    base: str, ids: list[str], turns: int, tag: str
) -> tuple[list[float], float, int]:
    """The persisting echo: each message stored with its echo reply, then the reply sent."""
    latencies: list[float] = []
    bad = 0

    async def one(conversation_id: str) -> None:
        nonlocal bad
        async with websockets.connect(
            f"{base}/ws/pecho/{conversation_id}/",
            origin="http://127.0.0.1",  # type: ignore[arg-type]
        ) as ws:
            for n in range(turns):
                frame = {"type": "message", "client_id": f"{tag}{n}", "content": "hello there"}
                started = time.perf_counter()
                await ws.send(json.dumps(frame))
                reply = json.loads(await ws.recv())
                latencies.append((time.perf_counter() - started) * 1000)
                if reply.get("role") != "assistant":
                    bad += 1

    started = time.perf_counter()
    await asyncio.gather(*(one(c) for c in ids))
    return latencies, len(latencies) / (time.perf_counter() - started), bad


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


MODES = ("echo", "pecho", "chat")


def measure(
    mode: str, base: str, ids: list[str], turns: int, tag: str, pid: int
) -> dict[str, float]:
    before = cpu_snapshot(pid)
    if mode == "echo":
        lat, tput = asyncio.run(echo_run(f"{base}/ws/echo/", len(ids), turns))
        bad = 0
    elif mode == "pecho":
        lat, tput, bad = asyncio.run(pecho_run(base, ids, turns, tag))
    else:
        lat, tput, bad = asyncio.run(chat_run(base, ids, turns, tag=tag))
    cpu = cpu_used(before, cpu_snapshot(pid))
    done = max(1, len(lat))
    return {
        "tput": tput,
        "p50": statistics.median(lat),
        "p99": percentile(lat, 0.99),
        "daphne": cpu["daphne"] / done,
        "postgres": cpu["postgres"] / done,
        "redis": cpu["redis"] / done,
        "bad": bad,
    }


def interleaved(args: argparse.Namespace, base: str, ids: dict[str, list[str]], pid: int) -> None:
    """Every mode at 1 and at ``--conversations`` conversations, in a rotating order, for
    ``--rounds`` rounds; then the medians and the ratios the targets ask for."""
    runs: dict[tuple[str, int], list[dict[str, float]]] = {}
    many = args.conversations
    for r in range(args.rounds):
        order = MODES[r % 3 :] + MODES[: r % 3]
        for mode in order:
            for n, turns in ((1, args.single_turns), (many, args.turns)):
                result = measure(mode, base, ids[mode][:n], turns, f"r{r}n{n}-", pid)
                runs.setdefault((mode, n), []).append(result)
                print(
                    f"round {r + 1} {mode:5} x{n:<3} {result['tput']:8.1f}/s  p50 "
                    f"{result['p50']:6.1f} ms  p99 {result['p99']:6.1f} ms  CPU/turn daphne "
                    f"{result['daphne']:5.2f} ms postgres {result['postgres']:5.2f} ms  "
                    f"bad {result['bad']:.0f}",
                    flush=True,
                )

    def med(mode: str, n: int, key: str) -> float:
        return statistics.median(r[key] for r in runs[(mode, n)])

    print(
        f"\nmedians of {args.rounds} interleaved rounds ({platform.node()}, {os.cpu_count()} "
        f"cores, Python {platform.python_version()}, PostgreSQL + Redis, offline backend):"
    )
    for mode in MODES:
        for n in (1, many):
            print(
                f"  {mode:5} x{n:<3} {med(mode, n, 'tput'):8.1f}/s  p50 {med(mode, n, 'p50'):6.1f}"
                f" ms  p99 {med(mode, n, 'p99'):6.1f} ms  CPU/turn daphne "
                f"{med(mode, n, 'daphne'):5.2f} ms postgres {med(mode, n, 'postgres'):5.2f} ms"
            )

    def verdict(ok: bool) -> str:
        return "met" if ok else "MISSED"

    tput = med("chat", many, "tput") / med("pecho", many, "tput")
    cpu_chat = med("chat", many, "daphne") + med("chat", many, "postgres")
    cpu_pecho = med("pecho", many, "daphne") + med("pecho", many, "postgres")
    added50 = med("chat", 1, "p50") - med("pecho", 1, "p50")
    added99 = med("chat", 1, "p99") - med("pecho", 1, "p99")
    scale = med("chat", many, "tput") / med("chat", 1, "tput")
    pscale = med("pecho", many, "tput") / med("pecho", 1, "tput")
    print(
        f"chat throughput x{many} = {tput:.3f} x persisting echo (>= 0.25: {verdict(tput >= 0.25)})"
    )
    bare = med("chat", many, "tput") / med("echo", many, "tput")
    print(f"chat throughput x{many} = {bare:.3f} x bare echo")
    print(
        f"Daphne + PostgreSQL CPU per turn x{many}: chat {cpu_chat:.2f} ms, persisting echo "
        f"{cpu_pecho:.2f} ms = {cpu_chat / cpu_pecho:.2f} x "
        f"(<= 4: {verdict(cpu_chat <= 4 * cpu_pecho)})"
    )
    print(
        f"added latency at 1 conversation over persisting echo: p50 {added50:.1f} ms "
        f"(<= 5: {verdict(added50 <= 5)}), p99 {added99:.1f} ms (<= 20: {verdict(added99 <= 20)})"
    )
    print(
        f"throughput x{many} / x1: chat {scale:.2f} (>= 2: {verdict(scale >= 2)}), "
        f"persisting echo {pscale:.2f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--conversations", type=int, default=50)
    parser.add_argument("--turns", type=int, default=10)
    parser.add_argument("--single-turns", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=5)
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
    total = 2 * args.conversations + args.idle
    conversations = Conversation.objects.bulk_create(
        Conversation(visitor_id=f"bench-{i}") for i in range(total)
    )
    all_ids = [str(c.pk) for c in conversations]
    ids = {
        "echo": all_ids[: args.conversations],
        "chat": all_ids[: args.conversations],
        "pecho": all_ids[args.conversations : 2 * args.conversations],
    }
    idle_ids = all_ids[2 * args.conversations :]
    connection.close()
    port = free_port()
    log_path = Path(tempfile.gettempdir()) / f"chat-bench-daphne-{port}.log"
    with log_path.open("wb") as log:  # the server keeps its own handle
        server = start_server(port, db_name, log)
    base = f"ws://127.0.0.1:{port}"
    served = before = after = 0
    try:
        # Warm up every path (imports, pools, per-process caches).
        asyncio.run(echo_run(f"{base}/ws/echo/", args.conversations, 2))
        asyncio.run(pecho_run(base, ids["pecho"], 2, "warm-"))
        asyncio.run(chat_run(base, ids["chat"], 2, tag="warm-"))
        interleaved(args, base, ids, server.pid)
        if args.pace > 0:
            paced(args, base, ids["chat"])
        if args.idle:
            served, before, after = asyncio.run(
                idle_sockets(base, idle_ids, 2 * args.conversations, server.pid)
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

    if args.idle:
        per_socket = (after - before) / max(1, served)
        print(
            f"idle sockets: {served}/{args.idle} served; RSS {before / 1024:.0f} -> "
            f"{after / 1024:.0f} MB = {per_socket:.1f} KB per socket (target <= 100: "
            f"{'met' if per_socket <= 100 and served == args.idle else 'MISSED'})"
        )


if __name__ == "__main__":
    main()
