"""A local HTTP server for tests: serves scripted responses on 127.0.0.1 and records requests."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Route:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0  # seconds before answering (a slow upstream)


@dataclass(frozen=True)
class RecordedRequest:
    """One request exactly as it arrived: raw target (path and query), headers and body."""

    method: str
    target: str
    headers: dict[str, str]
    body: bytes


@dataclass
class LocalServer:
    host: str
    port: int
    routes: dict[str, Route]
    requests: list[tuple[str, str]]
    recorded: list[RecordedRequest] = field(default_factory=list)

    @property
    def origin(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def netloc(self) -> str:
        return f"{self.host}:{self.port}"

    def url(self, path: str) -> str:
        return f"{self.origin}{path}"


@contextmanager
def local_server(routes: dict[str, Route], host: str = "127.0.0.1") -> Iterator[LocalServer]:
    requests: list[tuple[str, str]] = []
    recorded: list[RecordedRequest] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            requests.append((self.command, self.path))
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            recorded.append(RecordedRequest(self.command, self.path, dict(self.headers), body))
            # Routes match the target, then the path without its query, then "*" (any path).
            route = (
                routes.get(self.path)
                or routes.get(self.path.split("?", 1)[0])
                or routes.get("*", Route(status=404, body=b"not found"))
            )
            if route.delay:
                time.sleep(route.delay)
            self.send_response(route.status)
            for name, value in route.headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(route.body)))
            self.end_headers()
            self.wfile.write(route.body)

        do_POST = do_PUT = do_PATCH = do_DELETE = do_GET

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer((host, 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield LocalServer(host, server.server_address[1], routes, requests, recorded)
    finally:
        server.shutdown()
        server.server_close()
