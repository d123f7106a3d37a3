"""The real server command (``python -m config.server``, as the Makefile and Dockerfile run it)
with ``LOG_FORMAT=json``: every output line is JSON (SECURITY-TESTS rows 39 and 46), 429 has
its reason phrase, and an oversized WebSocket frame gets a 1009 close, logged at warning
(row 6), instead of a dropped TCP connection."""

from __future__ import annotations

import asyncio
import http.client
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import websockets
from websockets.typing import Origin

ROOT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[int, Path]]:
    port = _free_port()
    log_path = tmp_path_factory.mktemp("server") / "server.log"
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings.local", "LOG_FORMAT": "json"}
    env.update(LOG_LEVEL="INFO", API_RATE_LIMIT="2/m")
    for name in ("DATABASE_URL", "REDIS_URL"):
        env.pop(name, None)
    log = log_path.open("wb")
    process = subprocess.Popen(
        [
            sys.executable,
            *("-m", "config.server", "-b", "127.0.0.1", "-p", str(port)),
            *("--websocket-max-message-size", "65536", "--websocket-max-frame-size", "65536"),
            "config.asgi:application",
        ],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 20
        while True:
            assert process.poll() is None, log_path.read_text()
            try:
                if httpx.get(f"http://127.0.0.1:{port}/api/v1/health", timeout=1).is_success:
                    break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "the server did not start"
                time.sleep(0.2)
        yield port, log_path
    finally:
        process.terminate()
        process.wait(timeout=10)
        log.close()


def test_statuses_twisted_lacks_get_their_standard_reason_phrase(server: tuple[int, Path]) -> None:
    port, _ = server
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    connection.request("GET", "/api/v1/health?q=%00")
    response = connection.getresponse()
    connection.close()
    assert (response.status, response.reason) == (422, "Unprocessable Content")

    from twisted.web.http import RESPONSES

    from config.server import fill_reason_phrases

    fill_reason_phrases()
    assert RESPONSES[429] == b"Too Many Requests"


def test_oversized_websocket_frame_is_closed_with_1009(server: tuple[int, Path]) -> None:
    port, log_path = server

    async def send_big() -> int | None:
        async with websockets.connect(
            f"ws://127.0.0.1:{port}/ws/ping/",
            origin=Origin(f"http://127.0.0.1:{port}"),
        ) as socket_:
            await socket_.send("x" * 100_000)
            with pytest.raises(websockets.ConnectionClosed) as closed:
                await asyncio.wait_for(socket_.recv(), 5)
            return closed.value.rcvd.code if closed.value.rcvd else None

    assert asyncio.run(send_big()) == 1009
    deadline = time.monotonic() + 5
    while '"websocket_frame_refused"' not in log_path.read_text():
        assert time.monotonic() < deadline, log_path.read_text()
        time.sleep(0.1)
    refused = [
        json.loads(line)
        for line in log_path.read_text().splitlines()
        if '"websocket_frame_refused"' in line
    ]
    assert refused[0]["level"] == "warning" and refused[0]["code"] == 1009


def test_every_line_the_server_wrote_is_json(server: tuple[int, Path]) -> None:
    port, log_path = server
    httpx.get(f"http://127.0.0.1:{port}/nowhere?q=%0d%0a%7B%22event%22%3A1%7D", timeout=5)
    time.sleep(0.3)
    lines = [line for line in log_path.read_text().splitlines() if line.strip()]
    assert len(lines) >= 5
    events = [json.loads(line) for line in lines]  # raises on any plain line
    assert {"access_logged", "request_finished"} <= {e["event"] for e in events}
