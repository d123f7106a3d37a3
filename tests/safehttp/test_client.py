"""The safe fetch against real loopback servers (and MockTransport where the wire can't show it).

Loopback servers are only reachable through the allow-list or through an injected resolver plus
an allow-list entry, exactly as the development demo shop is; everything else exercises the real
address checks.
"""

from __future__ import annotations

import functools
import re
import socket
import threading
import time
import tracemalloc
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest

from safehttp import (
    BlockedDestination,
    DeadlineExceeded,
    Policy,
    SafeResponse,
    TooLarge,
    TooManyRedirects,
    UpstreamError,
    async_safe_request,
    safe_get,
    safe_request,
)

# The loopback servers listen on random ports; the port rule itself is tested in test_ports.py.
ANY_PORT = frozenset(range(1, 65536))

# --- local servers ---------------------------------------------------------------------------

Route = Callable[[BaseHTTPRequestHandler], None]


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class LocalServer:
    host: str
    port: int = 0
    routes: dict[str, Route] = field(default_factory=dict)
    requests: list[Seen] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)
    sent: int = 0

    def __post_init__(self) -> None:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def handle_any(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                headers = {k.lower(): v for k, v in self.headers.items()}
                server.requests.append(Seen(self.command, self.path, headers, body))
                route = server.routes.get(self.path.split("?")[0])
                try:
                    if route is None:
                        respond(self, 404, b"not found")
                    else:
                        route(self)
                except (BrokenPipeError, ConnectionResetError):
                    pass
                self.close_connection = True

            do_GET = do_POST = do_HEAD = do_PUT = handle_any

        self.httpd = ThreadingHTTPServer((self.host, self.port), Handler)
        self.httpd.block_on_close = False
        self.port = self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True).start()

    def url(self, path: str = "/", host: str | None = None) -> str:
        return f"http://{host or self.host}:{self.port}{path}"

    def close(self) -> None:
        self.stop.set()
        self.httpd.shutdown()
        self.httpd.server_close()


def respond(
    handler: BaseHTTPRequestHandler,
    status: int,
    body: bytes = b"",
    headers: dict[str, str] | None = None,
) -> None:
    handler.send_response(status)
    for name, value in (headers or {}).items():
        handler.send_header(name, value)
    if "Content-Length" not in (headers or {}):
        handler.send_header("Content-Length", str(len(body)))
    handler.end_headers()
    if handler.command != "HEAD":
        handler.wfile.write(body)


def redirect(location: str, status: int = 302) -> Route:
    return lambda h: respond(h, status, headers={"Location": location})


def ok(body: bytes = b'{"ok": true}', content_type: str = "application/json") -> Route:
    return lambda h: respond(h, 200, body, {"Content-Type": content_type})


@pytest.fixture
def serve() -> Iterator[Callable[..., LocalServer]]:
    servers: list[LocalServer] = []

    def start(host: str = "127.0.0.1", port: int = 0) -> LocalServer:
        server = LocalServer(host, port)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.close()


def serve_pair(serve: Callable[..., LocalServer]) -> tuple[LocalServer, LocalServer]:
    """Servers on 127.0.0.2 and 127.0.0.3 sharing one port, so one URL can reach either."""
    for _ in range(20):
        first = serve("127.0.0.2")
        try:
            return first, serve("127.0.0.3", first.port)
        except OSError:
            continue
    pytest.fail("no port free on both 127.0.0.2 and 127.0.0.3")


class Resolver:
    """A resolver that answers from a table (or a sequence of answers) and records its calls."""

    def __init__(self, table: dict[str, list[str] | list[list[str]]]) -> None:
        self.table = table
        self.calls: list[tuple[str, int]] = []

    def __call__(self, host: str, port: int) -> list[str]:
        self.calls.append((host, port))
        answer = self.table.get(host)
        if answer is None:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        if answer and isinstance(answer[0], list):  # a different answer on each call
            index = sum(1 for h, _ in self.calls if h == host) - 1
            return list(answer[min(index, len(answer) - 1)])
        return [str(a) for a in answer]


def recording(
    response: Callable[[], httpx.Response] = lambda: httpx.Response(200),
) -> tuple[list[httpx.Request], httpx.MockTransport]:
    """A MockTransport that keeps every request it is given."""
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return response()

    return seen, httpx.MockTransport(handler)


def refuse_resolution(host: str, port: int) -> list[str]:
    raise AssertionError(f"the resolver must not be called (asked for {host}:{port})")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# --- blocked before any connection -----------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "file:///etc/passwd",
        "ftp://ftp.example.com/spec.yaml",
        "gopher://127.0.0.1:6379/_INFO",
        "javascript:alert(1)",
        "//shop.example/openapi.json",
    ],
)
def test_non_http_schemes_are_refused(url: str) -> None:
    with pytest.raises(BlockedDestination, match="not allowed, only http and https"):
        safe_get(url, policy=Policy(resolver=refuse_resolution))


def test_https_only_policy_refuses_http() -> None:
    policy = Policy(schemes=("https",), resolver=refuse_resolution)
    with pytest.raises(BlockedDestination, match="'http' URLs are not allowed, only https"):
        safe_get("http://api.example.com/", policy=policy)


def test_policy_refuses_unsupported_schemes() -> None:
    with pytest.raises(ValueError, match="schemes"):
        Policy(schemes=("http", "ftp"))


@pytest.mark.parametrize("userinfo", ["user:pass@", "user@", ":secret@"])
def test_userinfo_is_refused(serve: Callable[..., LocalServer], userinfo: str) -> None:
    server = serve()
    server.routes["/"] = ok()
    policy = Policy(allowed_hosts=frozenset({f"127.0.0.1:{server.port}"}))
    with pytest.raises(BlockedDestination, match="user name or password"):
        safe_get(f"http://{userinfo}127.0.0.1:{server.port}/", policy=policy)
    assert server.requests == []


def test_loopback_is_refused_in_every_spelling_without_connecting(
    serve: Callable[..., LocalServer],
) -> None:
    server = serve()
    server.routes["/"] = ok()
    port = server.port
    spellings = [
        "127.0.0.1",
        "127.1",
        "127.0.1",
        "2130706433",
        "0x7f000001",
        "0x7f.0.0.1",
        "0x7f.1",
        "0177.0.0.1",
        "0177.1",
        "127.0.0.1.",
        "[::1]",
        "[::ffff:127.0.0.1]",
        "[::ffff:7f00:1]",
        "[::127.0.0.1]",
    ]
    for host in spellings:
        with pytest.raises(BlockedDestination, match="fetch refused") as caught:
            safe_get(
                f"http://{host}:{port}/", policy=Policy(ports=ANY_PORT, resolver=refuse_resolution)
            )
        assert re.search("loopback|not a valid URL", caught.value.reason), host
    # A name that the system resolver maps to loopback is refused after resolution.
    with pytest.raises(BlockedDestination, match=r"localhost resolves to .*loopback"):
        safe_get(f"http://localhost:{port}/", policy=Policy(ports=ANY_PORT))
    assert server.requests == []
    # The server was reachable all along: the allow-list lets the same request through.
    allowed = Policy(ports=ANY_PORT, allowed_hosts=frozenset({f"127.0.0.1:{port}"}))
    assert safe_get(f"http://127.1:{port}/", policy=allowed).json() == {"ok": True}
    assert len(server.requests) == 1


def test_refusal_message_is_user_facing() -> None:
    with pytest.raises(BlockedDestination) as caught:
        safe_get("http://10.0.0.5/", policy=Policy())
    assert str(caught.value) == "fetch refused: 10.0.0.5 is a private address"
    assert caught.value.reason == str(caught.value)


def test_metadata_address_is_refused() -> None:
    with pytest.raises(
        BlockedDestination, match=re.escape("169.254.169.254 is the cloud metadata address")
    ):
        safe_get("http://169.254.169.254/latest/meta-data/", policy=Policy())


def test_name_resolving_to_private_address_is_refused() -> None:
    resolver = Resolver({"intranet.example": ["10.1.2.3"]})
    with pytest.raises(
        BlockedDestination,
        match=re.escape("intranet.example resolves to 10.1.2.3, which is a private address"),
    ):
        safe_get("https://intranet.example/spec.json", policy=Policy(resolver=resolver))
    assert resolver.calls == [("intranet.example", 443)]


@pytest.mark.parametrize(
    "answers",
    [["93.184.216.34", "10.0.0.1"], ["10.0.0.1", "93.184.216.34"], ["2606:4700::1", "fd00::1"]],
)
def test_mixed_public_and_private_answers_are_refused(answers: list[str]) -> None:
    transport = httpx.MockTransport(lambda request: pytest.fail("must not connect"))
    with pytest.raises(BlockedDestination, match=re.escape("mixed.example resolves to")):
        safe_request(
            "GET",
            "http://mixed.example/",
            policy=Policy(resolver=Resolver({"mixed.example": answers})),
            transport=transport,
        )


def test_empty_and_failed_resolution_are_upstream_errors() -> None:
    with pytest.raises(UpstreamError, match="did not resolve to any address"):
        safe_get("http://empty.example/", policy=Policy(resolver=Resolver({"empty.example": []})))
    with pytest.raises(UpstreamError, match=re.escape("could not resolve missing.example")):
        safe_get("http://missing.example/", policy=Policy(resolver=Resolver({})))


def test_require_allowlist_refuses_unlisted_public_hosts() -> None:
    resolver = Resolver({"api.shop.com": ["93.184.216.34"], "evil.com": ["93.184.216.35"]})
    seen, transport = recording()
    policy = Policy(
        allowed_hosts=frozenset({"api.shop.com:443"}), require_allowlist=True, resolver=resolver
    )
    with pytest.raises(
        BlockedDestination, match=re.escape("evil.com is not on the list of allowed hosts")
    ):
        safe_request("GET", "https://evil.com/", policy=policy, transport=transport)
    with pytest.raises(BlockedDestination, match="not on the list"):  # wrong port
        safe_request("GET", "https://api.shop.com:8443/", policy=policy, transport=transport)
    assert resolver.calls == []
    response = safe_request("GET", "https://api.shop.com/v1/", policy=policy, transport=transport)
    assert response.status_code == 200
    assert [str(r.url) for r in seen] == ["https://93.184.216.34/v1/"]


def test_allowlisted_host_can_keep_the_address_check() -> None:
    resolver = Resolver({"tenant.example": ["169.254.169.254"]})
    policy = Policy(
        allowed_hosts=frozenset({"tenant.example"}),
        require_allowlist=True,
        allowlist_bypasses_address_check=False,
        resolver=resolver,
    )
    with pytest.raises(BlockedDestination, match="cloud metadata"):
        safe_get("http://tenant.example/", policy=policy)


# --- pinning ---------------------------------------------------------------------------------


def test_dns_rebinding_connects_to_the_checked_address(serve: Callable[..., LocalServer]) -> None:
    checked, rebound = serve_pair(serve)
    checked.routes["/"] = ok(b"checked")
    rebound.routes["/"] = ok(b"rebound")
    resolver = Resolver({"shop.example": [["127.0.0.2"], ["127.0.0.3"]]})
    policy = Policy(ports=ANY_PORT, allowed_hosts=frozenset({"shop.example"}), resolver=resolver)

    response = safe_get(f"http://shop.example:{checked.port}/", policy=policy)

    assert response.content == b"checked"
    assert resolver.calls == [("shop.example", checked.port)]
    assert len(checked.requests) == 1 and rebound.requests == []
    assert checked.requests[0].headers["host"] == f"shop.example:{checked.port}"


def test_dns_rebinding_to_private_address_never_reaches_it() -> None:
    # First answer public (and checked), any later answer private: only one lookup happens.
    resolver = Resolver({"rebind.example": [["93.184.216.34"], ["127.0.0.1"]]})
    seen, transport = recording(lambda: httpx.Response(200, text="hi"))
    response = safe_request(
        "GET", "http://rebind.example/x", policy=Policy(resolver=resolver), transport=transport
    )
    assert response.text() == "hi"
    assert resolver.calls == [("rebind.example", 80)]
    assert [r.url.host for r in seen] == ["93.184.216.34"]
    assert seen[0].headers["host"] == "rebind.example"


def test_unreachable_first_address_falls_back_to_the_next_checked_one(
    serve: Callable[..., LocalServer],
) -> None:
    server = serve("127.0.0.2")
    server.routes["/"] = ok(b"second")
    resolver = Resolver({"shop.example": ["127.0.0.3", "127.0.0.2"]})  # nothing on .3
    policy = Policy(ports=ANY_PORT, allowed_hosts=frozenset({"shop.example"}), resolver=resolver)
    response = safe_get(server.url("/", host="shop.example"), policy=policy)
    assert response.content == b"second"
    assert len(resolver.calls) == 1


def test_https_request_is_pinned_with_host_header_and_sni() -> None:
    resolver = Resolver({"api.shop.example": ["93.184.216.34"]})
    seen, transport = recording()
    safe_request(
        "GET",
        "https://API.Shop.Example/v1/orders",
        params={"status": "open"},
        headers={"Host": "evil.example", "Authorization": "Bearer t"},
        policy=Policy(resolver=resolver),
        transport=transport,
    )
    (request,) = seen
    assert str(request.url) == "https://93.184.216.34/v1/orders?status=open"
    assert request.headers["host"] == "api.shop.example"
    assert request.extensions["sni_hostname"] == "api.shop.example"
    assert request.headers["authorization"] == "Bearer t"
    assert resolver.calls == [("api.shop.example", 443)]


def test_pinning_keeps_the_port_and_brackets_ipv6() -> None:
    resolver = Resolver({"v6.example": ["2606:4700::1"]})
    seen, transport = recording()
    safe_request(
        "GET",
        "https://v6.example:8443/",
        policy=Policy(ports=ANY_PORT, resolver=resolver),
        transport=transport,
    )
    (request,) = seen
    assert str(request.url) == "https://[2606:4700::1]:8443/"
    assert request.headers["host"] == "v6.example:8443"
    assert request.extensions["sni_hostname"] == "v6.example"


def test_ip_literal_https_has_no_sni_override_and_no_lookup() -> None:
    seen, transport = recording()
    safe_request(
        "GET", "https://8.8.8.8/", policy=Policy(resolver=refuse_resolution), transport=transport
    )
    assert "sni_hostname" not in seen[0].extensions
    assert seen[0].headers["host"] == "8.8.8.8"


def test_plain_http_has_no_sni() -> None:
    seen, transport = recording()
    policy = Policy(resolver=Resolver({"a.example": ["8.8.4.4"]}))
    safe_request("GET", "http://a.example/", policy=policy, transport=transport)
    assert "sni_hostname" not in seen[0].extensions
    assert str(seen[0].url) == "http://8.8.4.4/"


# --- redirects -------------------------------------------------------------------------------


def test_redirect_to_metadata_is_refused(serve: Callable[..., LocalServer]) -> None:
    server = serve()
    server.routes["/spec"] = redirect("http://169.254.169.254/latest/meta-data/")
    policy = Policy(allowed_hosts=frozenset({f"127.0.0.1:{server.port}"}))
    with pytest.raises(
        BlockedDestination,
        match=re.escape(
            "fetch refused after a redirect: 169.254.169.254 is the cloud metadata address"
        ),
    ):
        safe_get(server.url("/spec"), policy=policy)
    assert len(server.requests) == 1


def test_redirect_to_a_name_resolving_to_private_is_refused(
    serve: Callable[..., LocalServer],
) -> None:
    server = serve("127.0.0.2")
    server.routes["/"] = redirect("http://internal.example/admin")
    resolver = Resolver({"shop.example": ["127.0.0.2"], "internal.example": ["192.168.0.10"]})
    policy = Policy(ports=ANY_PORT, allowed_hosts=frozenset({"shop.example"}), resolver=resolver)
    with pytest.raises(
        BlockedDestination, match=re.escape("internal.example resolves to 192.168.0.10")
    ):
        safe_get(server.url("/", host="shop.example"), policy=policy)
    assert resolver.calls == [("shop.example", server.port), ("internal.example", 80)]


def test_redirect_to_file_scheme_is_refused(serve: Callable[..., LocalServer]) -> None:
    server = serve()
    server.routes["/"] = redirect("file:///etc/passwd")
    policy = Policy(ports=ANY_PORT, allowed_hosts=frozenset({"127.0.0.1"}))
    with pytest.raises(BlockedDestination, match="after a redirect: 'file' URLs are not allowed"):
        safe_get(server.url("/"), policy=policy)


def test_allowed_redirect_is_followed_with_a_fresh_check(
    serve: Callable[..., LocalServer],
) -> None:
    origin, cdn = serve_pair(serve)
    origin.routes["/spec"] = redirect(cdn.url("/v2/spec.json", host="cdn.example"), 301)
    cdn.routes["/v2/spec.json"] = ok(b'{"openapi": "3.1.0"}')
    resolver = Resolver({"shop.example": ["127.0.0.2"], "cdn.example": ["127.0.0.3"]})
    policy = Policy(
        ports=ANY_PORT, allowed_hosts=frozenset({"shop.example", "cdn.example"}), resolver=resolver
    )

    start = origin.url("/spec", host="shop.example")
    response = safe_get(start, policy=policy)

    assert response.json() == {"openapi": "3.1.0"}
    assert response.url == cdn.url("/v2/spec.json", host="cdn.example")
    assert response.redirects == [start]
    assert resolver.calls == [("shop.example", origin.port), ("cdn.example", cdn.port)]
    assert cdn.requests[0].headers["host"] == f"cdn.example:{cdn.port}"


def test_relative_redirect_stays_pinned_and_rechecks(serve: Callable[..., LocalServer]) -> None:
    server = serve("127.0.0.2")
    server.routes["/old"] = redirect("/new", 308)
    server.routes["/new"] = ok(b"new")
    resolver = Resolver({"shop.example": ["127.0.0.2"]})
    policy = Policy(ports=ANY_PORT, allowed_hosts=frozenset({"shop.example"}), resolver=resolver)
    response = safe_get(server.url("/old", host="shop.example"), policy=policy)
    assert response.content == b"new"
    assert [r.path for r in server.requests] == ["/old", "/new"]
    assert len(resolver.calls) == 2  # once per hop


def test_redirect_chain_longer_than_the_limit_is_refused(
    serve: Callable[..., LocalServer],
) -> None:
    server = serve()
    for n in range(10):
        server.routes[f"/r{n}"] = redirect(f"/r{n + 1}")
    policy = Policy(ports=ANY_PORT, allowed_hosts=frozenset({"127.0.0.1"}), max_redirects=2)
    with pytest.raises(TooManyRedirects, match="more than 2 redirects"):
        safe_get(server.url("/r0"), policy=policy)
    assert [r.path for r in server.requests] == ["/r0", "/r1", "/r2"]
    # Exactly at the limit is fine.
    server.routes["/r2"] = ok(b"done")
    assert safe_get(server.url("/r0"), policy=policy).redirects == [
        server.url("/r0"),
        server.url("/r1"),
    ]


def test_redirects_refused_when_max_redirects_is_zero(serve: Callable[..., LocalServer]) -> None:
    server = serve()
    server.routes["/"] = redirect("/elsewhere")
    server.routes["/elsewhere"] = ok()
    policy = Policy(ports=ANY_PORT, allowed_hosts=frozenset({"127.0.0.1"}), max_redirects=0)
    with pytest.raises(TooManyRedirects, match="redirects are not allowed"):
        safe_get(server.url("/"), policy=policy)
    assert [r.path for r in server.requests] == ["/"]


def test_redirect_without_location_is_returned(serve: Callable[..., LocalServer]) -> None:
    server = serve()
    server.routes["/"] = lambda h: respond(h, 302, b"nowhere")
    response = safe_get(
        server.url("/"), policy=Policy(ports=ANY_PORT, allowed_hosts=frozenset({"127.0.0.1"}))
    )
    assert response.status_code == 302 and response.content == b"nowhere"


def test_credentials_are_dropped_on_cross_origin_redirect(
    serve: Callable[..., LocalServer],
) -> None:
    origin, other = serve_pair(serve)
    origin.routes["/a"] = redirect("/b")  # same origin: credentials kept
    origin.routes["/b"] = redirect(other.url("/c", host="other.example"))
    other.routes["/c"] = ok()
    resolver = Resolver({"shop.example": ["127.0.0.2"], "other.example": ["127.0.0.3"]})
    policy = Policy(
        ports=ANY_PORT,
        allowed_hosts=frozenset({"shop.example", "other.example"}),
        resolver=resolver,
    )
    headers = {
        "Authorization": "Bearer secret-token",
        "Cookie": "session=abc",
        "X-Api-Key": "k-123",
        "Accept": "application/json",
    }

    safe_get(origin.url("/a", host="shop.example"), policy=policy, headers=headers)

    same_origin = origin.requests[1].headers
    assert same_origin["authorization"] == "Bearer secret-token"
    assert same_origin["x-api-key"] == "k-123"
    cross = other.requests[0].headers
    assert "authorization" not in cross
    assert "cookie" not in cross
    assert "x-api-key" not in cross
    assert cross["accept"] == "application/json"


@pytest.mark.parametrize(
    ("status", "method_after"),
    [(301, "GET"), (302, "GET"), (303, "GET"), (307, "POST"), (308, "POST")],
)
def test_post_redirects_change_method_as_browsers_do(
    serve: Callable[..., LocalServer], status: int, method_after: str
) -> None:
    server = serve()
    server.routes["/submit"] = redirect("/result", status)
    server.routes["/result"] = ok()
    policy = Policy(ports=ANY_PORT, allowed_hosts=frozenset({"127.0.0.1"}))

    safe_request("POST", server.url("/submit"), policy=policy, json={"a": 1})

    first, after = server.requests
    assert (first.method, first.body) == ("POST", b'{"a": 1}')
    assert after.method == method_after
    if method_after == "GET":
        assert after.body == b""
        assert "content-type" not in after.headers
    else:
        assert after.body == b'{"a": 1}'
        assert after.headers["content-type"] == "application/json"


def test_303_keeps_head(serve: Callable[..., LocalServer]) -> None:
    server = serve()
    server.routes["/"] = redirect("/other", 303)
    server.routes["/other"] = ok()
    safe_request(
        "HEAD",
        server.url("/"),
        policy=Policy(ports=ANY_PORT, allowed_hosts=frozenset({"127.0.0.1"})),
    )
    assert [r.method for r in server.requests] == ["HEAD", "HEAD"]


# --- body limits -----------------------------------------------------------------------------


def test_declared_content_length_over_the_cap_is_refused(
    serve: Callable[..., LocalServer],
) -> None:
    server = serve()

    def huge(handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(200)
        handler.send_header("Content-Length", str(50 * 1024 * 1024))
        handler.end_headers()
        server.stop.wait(2)  # never sends the body

    server.routes["/"] = huge
    policy = Policy(
        ports=ANY_PORT, allowed_hosts=frozenset({"127.0.0.1"}), max_bytes=1024 * 1024, timeout=5
    )
    started = time.monotonic()
    with pytest.raises(TooLarge, match="larger than the 1 MB limit"):
        safe_get(server.url("/"), policy=policy)
    assert time.monotonic() - started < 1.8  # refused up front, not after the 2 s wait


def _chunked_forever(server: LocalServer) -> Route:
    piece = b"a" * 65536
    frame = b"%x\r\n" % len(piece) + piece + b"\r\n"

    def route(handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(200)
        handler.send_header("Transfer-Encoding", "chunked")
        handler.end_headers()
        for _ in range(1024):  # 64 MiB if nobody stops reading
            if server.stop.is_set():
                return
            handler.wfile.write(frame)
            server.sent += len(piece)

    return route


def _peak_memory(fetch: Callable[[], object]) -> int:
    tracemalloc.start()
    try:
        fetch()
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return peak


def test_chunked_body_over_the_cap_is_stopped_with_bounded_memory(
    serve: Callable[..., LocalServer],
) -> None:
    server = serve()
    server.routes["/"] = _chunked_forever(server)
    policy = Policy(ports=ANY_PORT, allowed_hosts=frozenset({"127.0.0.1"}), max_bytes=512 * 1024)

    def fetch() -> None:
        with pytest.raises(TooLarge, match="larger than the 512 KB limit"):
            safe_get(server.url("/"), policy=policy)

    assert _peak_memory(fetch) < 4 * 1024 * 1024
    assert server.sent < 32 * 1024 * 1024  # the client stopped reading long before the end


@functools.cache
def gzip_bomb(decoded_mib: int = 16, wbits: int = 31) -> bytes:
    compressor = zlib.compressobj(9, zlib.DEFLATED, wbits)
    zeros = bytes(1024 * 1024)
    return b"".join(compressor.compress(zeros) for _ in range(decoded_mib)) + compressor.flush()


def _serve_bomb(server: LocalServer, encoding: str = "gzip", wbits: int = 31) -> None:
    bomb = gzip_bomb(wbits=wbits)
    server.routes["/"] = lambda h: respond(h, 200, bomb, {"Content-Encoding": encoding})


@pytest.mark.parametrize(("encoding", "wbits"), [("gzip", 31), ("deflate", 15), ("deflate", -15)])
def test_compression_bomb_is_stopped_by_the_decoded_size(
    serve: Callable[..., LocalServer], encoding: str, wbits: int
) -> None:
    server = serve()
    _serve_bomb(server, encoding, wbits)
    assert len(gzip_bomb(wbits=wbits)) < 256 * 1024  # small on the wire...
    policy = Policy(ports=ANY_PORT, allowed_hosts=frozenset({"127.0.0.1"}), max_bytes=1024 * 1024)

    def fetch() -> None:
        with pytest.raises(TooLarge, match="larger than the 1 MB limit"):  # ...16 MiB decoded
            safe_get(server.url("/"), policy=policy)

    # httpx's own decoders would hold all 16 MiB here: each raw chunk is inflated in one call.
    assert _peak_memory(fetch) < 4 * 1024 * 1024


@pytest.mark.parametrize(("encoding", "wbits"), [("gzip", 31), ("deflate", 15), ("deflate", -15)])
def test_compressed_body_under_the_cap_is_decoded(
    serve: Callable[..., LocalServer], encoding: str, wbits: int
) -> None:
    server = serve()
    text = ("openapi: 3.1.0\n" * 5000).encode()
    compressor = zlib.compressobj(6, zlib.DEFLATED, wbits)
    body = compressor.compress(text) + compressor.flush()
    server.routes["/"] = lambda h: respond(h, 200, body, {"Content-Encoding": encoding})
    response = safe_get(
        server.url("/"), policy=Policy(ports=ANY_PORT, allowed_hosts=frozenset({"127.0.0.1"}))
    )
    assert response.content == text
    assert server.requests[0].headers["accept-encoding"] == "gzip, deflate"


@pytest.mark.parametrize("encoding", ["gzip, gzip", "br", "zstd"])
def test_unsupported_or_stacked_encodings_are_refused(
    serve: Callable[..., LocalServer], encoding: str
) -> None:
    server = serve()
    server.routes["/"] = lambda h: respond(h, 200, b"\x1f\x8b...", {"Content-Encoding": encoding})
    with pytest.raises(UpstreamError, match="unsupported content-encoding"):
        safe_get(
            server.url("/"), policy=Policy(ports=ANY_PORT, allowed_hosts=frozenset({"127.0.0.1"}))
        )


def test_corrupt_compressed_body_is_an_upstream_error(serve: Callable[..., LocalServer]) -> None:
    server = serve()
    server.routes["/"] = lambda h: respond(h, 200, b"not gzip at all", {"Content-Encoding": "gzip"})
    with pytest.raises(UpstreamError, match="not valid compressed data"):
        safe_get(
            server.url("/"), policy=Policy(ports=ANY_PORT, allowed_hosts=frozenset({"127.0.0.1"}))
        )


# --- deadline and connection failures --------------------------------------------------------


def _slow_drip(server: LocalServer, first_delay: float = 0.0, interval: float = 0.2) -> Route:
    def route(handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(200)
        handler.send_header("Content-Length", "1000")
        handler.end_headers()
        handler.wfile.flush()
        if server.stop.wait(first_delay):
            return
        for _ in range(1000):
            handler.wfile.write(b"x")
            handler.wfile.flush()
            if server.stop.wait(interval):
                return

    return route


def test_slow_drip_upstream_is_cut_at_the_deadline(serve: Callable[..., LocalServer]) -> None:
    server = serve()
    server.routes["/"] = _slow_drip(server)
    policy = Policy(ports=ANY_PORT, allowed_hosts=frozenset({"127.0.0.1"}), timeout=0.5)
    started = time.monotonic()
    with pytest.raises(DeadlineExceeded, match=re.escape("took longer than the 0.5 s limit")):
        safe_get(server.url("/"), policy=policy)
    assert 0.45 < time.monotonic() - started < 2.0


def test_deadline_bounds_each_read_not_only_the_gaps(serve: Callable[..., LocalServer]) -> None:
    # One byte at 1 s, then silence: a plain per-read timeout of 1.2 s would wait until 2.2 s.
    server = serve()
    server.routes["/"] = _slow_drip(server, first_delay=1.0, interval=5)
    policy = Policy(ports=ANY_PORT, allowed_hosts=frozenset({"127.0.0.1"}), timeout=1.2)
    started = time.monotonic()
    with pytest.raises(DeadlineExceeded):
        safe_get(server.url("/"), policy=policy)
    assert time.monotonic() - started < 1.9


def test_deadline_covers_a_slow_resolver() -> None:
    def slow(host: str, port: int) -> list[str]:
        time.sleep(2.0)
        return ["93.184.216.34"]

    started = time.monotonic()
    with pytest.raises(DeadlineExceeded):
        safe_get("http://slow-dns.example/", policy=Policy(resolver=slow, timeout=0.2))
    assert time.monotonic() - started < 1.5


def test_connection_refused_is_an_upstream_error() -> None:
    port = free_port()
    policy = Policy(allowed_hosts=frozenset({f"127.0.0.1:{port}"}))
    with pytest.raises(
        UpstreamError, match=r"could not connect to 127.0.0.1 \(connection refused\)"
    ):
        safe_get(f"http://127.0.0.1:{port}/", policy=policy)


def test_transport_timeouts_become_deadline_exceeded() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("slow", request=request)

    with pytest.raises(DeadlineExceeded):
        safe_request(
            "GET", "http://8.8.8.8/", policy=Policy(), transport=httpx.MockTransport(handler)
        )


def test_header_values_never_reach_error_messages(serve: Callable[..., LocalServer]) -> None:
    server = serve()
    server.routes["/"] = ok()
    policy = Policy(ports=ANY_PORT, allowed_hosts=frozenset({"127.0.0.1"}))
    with pytest.raises(UpstreamError) as caught:
        safe_get(server.url("/"), policy=policy, headers={"Authorization": "Bearer sekrit\r\nX: y"})
    assert "sekrit" not in str(caught.value)
    assert caught.value.__cause__ is None and caught.value.__suppress_context__


# --- responses -------------------------------------------------------------------------------


def test_non_2xx_is_returned_with_lower_case_headers(serve: Callable[..., LocalServer]) -> None:
    server = serve()
    server.routes["/"] = lambda h: respond(h, 503, b"busy", {"Retry-After": "3"})
    response = safe_get(
        server.url("/"), policy=Policy(ports=ANY_PORT, allowed_hosts=frozenset({"127.0.0.1"}))
    )
    assert response.status_code == 503
    assert response.headers["retry-after"] == "3"
    assert response.content == b"busy"
    assert response.elapsed > 0 and response.redirects == []


def test_head_ignores_a_large_content_length(serve: Callable[..., LocalServer]) -> None:
    server = serve()
    server.routes["/"] = lambda h: respond(h, 200, headers={"Content-Length": str(1 << 30)})
    policy = Policy(ports=ANY_PORT, allowed_hosts=frozenset({"127.0.0.1"}), max_bytes=1024)
    response = safe_request("HEAD", server.url("/"), policy=policy)
    assert response.status_code == 200 and response.content == b""


@pytest.mark.parametrize(
    ("content_type", "body", "expected"),
    [
        ("text/plain; charset=latin-1", "café".encode("latin-1"), "café"),
        ('text/plain; charset="ISO-8859-1"', "café".encode("latin-1"), "café"),
        ("text/plain", "café".encode(), "café"),
        ("text/plain; charset=no-such-codec", "café".encode(), "café"),
        ("text/plain", b"caf\xff", "caf\ufffd"),
    ],
)
def test_text_uses_the_declared_charset(content_type: str, body: bytes, expected: str) -> None:
    response = SafeResponse("http://x/", 200, {"content-type": content_type}, body, 0.1, [])
    assert response.text() == expected


# --- async -----------------------------------------------------------------------------------


async def test_async_fetch_follows_redirects_with_pinning(
    serve: Callable[..., LocalServer],
) -> None:
    origin, cdn = serve_pair(serve)
    origin.routes["/spec"] = redirect(cdn.url("/spec.json", host="cdn.example"))
    cdn.routes["/spec.json"] = ok(b'{"openapi": "3.0.3"}')
    resolver = Resolver(
        {"shop.example": [["127.0.0.2"], ["127.0.0.3"]], "cdn.example": ["127.0.0.3"]}
    )
    policy = Policy(
        ports=ANY_PORT, allowed_hosts=frozenset({"shop.example", "cdn.example"}), resolver=resolver
    )

    response = await async_safe_request(
        "GET",
        origin.url("/spec", host="shop.example"),
        policy=policy,
        headers={"Authorization": "Bearer x"},
    )

    assert response.json() == {"openapi": "3.0.3"}
    assert resolver.calls == [("shop.example", origin.port), ("cdn.example", cdn.port)]
    assert [r.path for r in origin.requests] == ["/spec"]
    assert "authorization" not in cdn.requests[0].headers


async def test_async_refuses_blocked_addresses_without_connecting(
    serve: Callable[..., LocalServer],
) -> None:
    server = serve()
    server.routes["/"] = redirect("http://[fd00:ec2::254]/latest/meta-data/")
    with pytest.raises(BlockedDestination, match=re.escape("127.0.0.1 is a loopback address")):
        await async_safe_request(
            "GET", server.url("/", host="0x7f.1"), policy=Policy(ports=ANY_PORT)
        )
    assert server.requests == []
    with pytest.raises(BlockedDestination, match="fd00:ec2::254 is the cloud metadata address"):
        await async_safe_request(
            "GET",
            server.url("/"),
            policy=Policy(ports=ANY_PORT, allowed_hosts=frozenset({"127.0.0.1"})),
        )


async def test_async_rebinding_uses_the_checked_address() -> None:
    resolver = Resolver({"rebind.example": [["93.184.216.34"], ["169.254.169.254"]]})
    seen, transport = recording()
    await async_safe_request(
        "GET", "https://rebind.example/", policy=Policy(resolver=resolver), transport=transport
    )
    assert resolver.calls == [("rebind.example", 443)]
    assert str(seen[0].url) == "https://93.184.216.34/"
    assert seen[0].extensions["sni_hostname"] == "rebind.example"


async def test_async_too_many_redirects(serve: Callable[..., LocalServer]) -> None:
    server = serve()
    server.routes["/loop"] = redirect("/loop")
    policy = Policy(ports=ANY_PORT, allowed_hosts=frozenset({"127.0.0.1"}), max_redirects=3)
    with pytest.raises(TooManyRedirects):
        await async_safe_request("GET", server.url("/loop"), policy=policy)
    assert len(server.requests) == 4


async def test_async_compression_bomb_is_stopped(serve: Callable[..., LocalServer]) -> None:
    server = serve()
    _serve_bomb(server)
    policy = Policy(ports=ANY_PORT, allowed_hosts=frozenset({"127.0.0.1"}), max_bytes=1024 * 1024)
    with pytest.raises(TooLarge):
        await async_safe_request("GET", server.url("/"), policy=policy)


async def test_async_slow_drip_is_cut_at_the_deadline(serve: Callable[..., LocalServer]) -> None:
    server = serve()
    server.routes["/"] = _slow_drip(server)
    policy = Policy(ports=ANY_PORT, allowed_hosts=frozenset({"127.0.0.1"}), timeout=0.5)
    started = time.monotonic()
    with pytest.raises(DeadlineExceeded, match=re.escape("took longer than the 0.5 s limit")):
        await async_safe_request("GET", server.url("/"), policy=policy)
    assert 0.45 < time.monotonic() - started < 2.0


async def test_async_unreachable_first_address_falls_back(
    serve: Callable[..., LocalServer],
) -> None:
    server = serve("127.0.0.2")
    server.routes["/"] = ok(b"second")
    resolver = Resolver({"shop.example": ["127.0.0.3", "127.0.0.2"]})
    policy = Policy(ports=ANY_PORT, allowed_hosts=frozenset({"shop.example"}), resolver=resolver)
    response = await async_safe_request("GET", server.url("/", host="shop.example"), policy=policy)
    assert response.content == b"second"
    assert len(resolver.calls) == 1


async def test_async_connection_refused_is_an_upstream_error() -> None:
    port = free_port()
    policy = Policy(allowed_hosts=frozenset({f"127.0.0.1:{port}"}))
    with pytest.raises(UpstreamError, match=re.escape("could not connect to 127.0.0.1")):
        await async_safe_request("GET", f"http://127.0.0.1:{port}/", policy=policy)
