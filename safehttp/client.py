"""SSRF-safe outbound HTTP: the policy, the per-hop checks and the sync/async fetch loops.

Every hop (the first URL and each redirect target) is checked from scratch: scheme, userinfo,
host, allow-list, then the address. Host names are resolved exactly once per hop and the
connection is pinned to the checked address (the URL host is rewritten to the IP, the original
name goes in the Host header and in TLS SNI), so a second DNS answer can never be used.
Redirects are followed by hand, bodies are read under a decoded-byte cap, and one monotonic
deadline covers the whole fetch. The checks are shared; only the I/O differs between
``safe_request`` and ``async_safe_request``.
"""

from __future__ import annotations

import asyncio
import codecs
import concurrent.futures
import ipaddress
import json as _json
import logging
import re
import socket
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import httpcore
import httpx

from ._body import BodyReader, deadline_message, format_size
from ._transport import DeadlineTransport, ssl_context
from .addresses import InvalidIPLiteral, IPAddress, address_block_reason, parse_ip_literal
from .errors import (
    BlockedDestination,
    DeadlineExceeded,
    SafeHttpError,
    TooLarge,
    TooManyRedirects,
    UpstreamError,
)

__all__ = [
    "BlockedDestination",
    "DeadlineExceeded",
    "Policy",
    "Resolver",
    "SafeHttpError",
    "SafeResponse",
    "TooLarge",
    "TooManyRedirects",
    "UpstreamError",
    "async_safe_request",
    "safe_get",
    "safe_request",
    "system_resolver",
]

logger = logging.getLogger(__name__)

Resolver = Callable[[str, int], list[str]]

_SUPPORTED_SCHEMES = frozenset({"http", "https"})
_DEFAULT_PORTS = {"http": 80, "https": 443}
# Ports a fetch may reach without an allow-list entry naming ``host:port``.
STANDARD_PORTS = frozenset({80, 443})
_REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
# Headers this module owns: Host must match the checked URL, framing is computed from the body,
# and Accept-Encoding must only name codings we can decode under the cap.
_MANAGED_HEADERS = frozenset(
    {"host", "content-length", "transfer-encoding", "connection", "accept-encoding", "te"}
)
# Caller headers that may follow a redirect to another origin. Anything else may carry a
# credential (Authorization, Cookie, X-Api-Key, ...) and is dropped.
_CROSS_ORIGIN_HEADERS = frozenset({"accept", "accept-language", "user-agent", "content-type"})
_BODY_HEADERS = frozenset({"content-type", "content-encoding", "content-language"})
_DEFAULT_HEADERS = (
    ("User-Agent", "actiondesk-safehttp/1.0"),
    ("Accept", "*/*"),
    ("Accept-Encoding", "gzip, deflate"),
)
_HOSTNAME = re.compile(r"[a-z0-9_-]+(\.[a-z0-9_-]+)*\.?")
_CHARSET = re.compile(r"""charset\s*=\s*["']?([\w.:-]+)""", re.IGNORECASE)


def system_resolver(host: str, port: int) -> list[str]:
    """Resolve ``host`` with getaddrinfo; IP strings in the resolver's order, duplicates removed."""
    answers: list[str] = []
    for family, _, _, _, sockaddr in socket.getaddrinfo(
        host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP
    ):
        if family in (socket.AF_INET, socket.AF_INET6) and sockaddr[0] not in answers:
            answers.append(str(sockaddr[0]))
    return answers


@dataclass(frozen=True)
class Policy:
    """What one fetch may do. Callers build it from their settings; nothing here reads them.

    ``allowed_hosts`` entries are ``host`` (any port) or ``host:port`` (IPv6 as ``[::1]:8000``);
    a match skips the address check (``allowlist_bypasses_address_check``), which is how the
    development demo shop on 127.0.0.1 gets through. With ``require_allowlist`` every other
    host is refused. Only ``ports`` (80 and 443) are reachable unless an entry names the
    ``host:port`` itself: a bare ``host`` entry does not open its other ports, so a URL cannot
    turn a fetch against SSH or Redis on a public host. ``timeout`` is the total for the whole
    fetch, redirects and body included.
    """

    allowed_hosts: frozenset[str] = frozenset()
    max_bytes: int = 10 * 1024 * 1024
    timeout: float = 20.0
    max_redirects: int = 3
    schemes: tuple[str, ...] = ("http", "https")
    resolver: Resolver | None = None
    require_allowlist: bool = False
    # False keeps the address check for allow-listed hosts too: use it when the allow-list
    # holds tenant-supplied upstream hosts, whose DNS the tenant controls.
    allowlist_bypasses_address_check: bool = True
    ports: frozenset[int] = STANDARD_PORTS

    def __post_init__(self) -> None:
        hosts = frozenset(h.strip().lower() for h in self.allowed_hosts)
        object.__setattr__(self, "allowed_hosts", hosts)
        schemes = tuple(s.lower() for s in self.schemes)
        object.__setattr__(self, "schemes", schemes)
        if not set(schemes) <= _SUPPORTED_SCHEMES:
            raise ValueError("Policy.schemes may only contain 'http' and 'https'")
        if self.max_bytes < 0 or self.timeout <= 0 or self.max_redirects < 0:
            raise ValueError("Policy limits must be positive (max_redirects may be 0)")


@dataclass(frozen=True)
class SafeResponse:
    """A complete response. ``redirects`` lists the URLs that answered with a redirect, in
    order; ``url`` is the one that gave this final answer. Headers are as received (so a
    decoded body may still show ``content-encoding: gzip``)."""

    url: str
    status_code: int
    headers: dict[str, str]
    content: bytes
    elapsed: float
    redirects: list[str] = field(default_factory=list)

    def text(self) -> str:
        match = _CHARSET.search(self.headers.get("content-type", ""))
        charset = match.group(1) if match else "utf-8"
        try:
            codecs.lookup(charset)
        except LookupError:
            charset = "utf-8"
        return self.content.decode(charset, errors="replace")

    def json(self) -> Any:
        return _json.loads(self.content)


# --- the checks (pure, shared by sync and async) ---------------------------------------------


@dataclass(frozen=True)
class _Hop:
    """One request to make: what the caller asked for, adjusted by the redirects so far."""

    method: str
    url: httpx.URL
    headers: tuple[tuple[str, str], ...]
    body: bytes | None
    redirected: bool = False

    @property
    def refused(self) -> str:
        return "fetch refused after a redirect: " if self.redirected else "fetch refused: "


@dataclass(frozen=True)
class _Target:
    """A hop's destination after the checks that need no network."""

    url: httpx.URL
    host: str  # as in the URL, lower-case; IPv6 without brackets
    port: int
    literal: IPAddress | None
    check_addresses: bool


def _first_hop(
    method: str,
    url: str,
    headers: Mapping[str, str] | None,
    params: Mapping[str, Any] | None,
    json_body: Any,
    content: bytes | None,
) -> _Hop:
    if json_body is not None and content is not None:
        raise ValueError("pass either json or content, not both")
    try:
        parsed = httpx.URL(url)
        if params:
            parsed = parsed.copy_merge_params(dict(params))
    except (httpx.InvalidURL, TypeError, ValueError):
        raise BlockedDestination("fetch refused: not a valid URL") from None
    caller = [(k, v) for k, v in (headers or {}).items() if k.lower() not in _MANAGED_HEADERS]
    body = content
    if json_body is not None:
        body = _json.dumps(json_body, ensure_ascii=False).encode("utf-8")
        if not any(k.lower() == "content-type" for k, _ in caller):
            caller.append(("Content-Type", "application/json"))
    return _Hop(method.upper(), parsed, tuple(caller), body)


def _allow_list_match(
    policy: Policy, host: str, literal: IPAddress | None, port: int
) -> tuple[bool, bool]:
    """``(host listed, host:port listed)``: only the second opens a non-standard port."""
    if literal is not None:
        # An IP in any spelling matches its canonical entry: 2130706433 is 127.0.0.1.
        name = f"[{literal}]" if literal.version == 6 else str(literal)
        names = {name, str(literal)}
    else:
        names = {host[:-1] if host.endswith(".") else host}
    with_port = {f"{n}:{port}" for n in names}
    listed_port = not with_port.isdisjoint(policy.allowed_hosts)
    return listed_port or not names.isdisjoint(policy.allowed_hosts), listed_port


def _inspect(hop: _Hop, policy: Policy) -> _Target:
    """Everything about a hop's URL that can be decided without the network."""
    url = hop.url
    scheme = url.scheme.lower()
    if scheme not in policy.schemes:
        allowed = " and ".join(policy.schemes)
        shown = f"{scheme!r} URLs are" if scheme else "URLs without a scheme are"
        raise BlockedDestination(f"{hop.refused}{shown} not allowed, only {allowed}")
    if url.userinfo:
        raise BlockedDestination(f"{hop.refused}URLs with a user name or password are not allowed")
    host = url.host.lower()
    if not host:
        raise BlockedDestination(f"{hop.refused}the URL has no host")
    port = url.port or _DEFAULT_PORTS[scheme]
    try:
        literal = parse_ip_literal(host)
    except InvalidIPLiteral as exc:
        raise BlockedDestination(f"{hop.refused}{exc}") from None
    if literal is None and not _HOSTNAME.fullmatch(host):
        raise BlockedDestination(f"{hop.refused}{host!r} is not a valid host name")
    listed, listed_port = _allow_list_match(policy, host, literal, port)
    shown = host if literal is None else str(literal)
    if policy.require_allowlist and not listed:
        raise BlockedDestination(f"{hop.refused}{shown} is not on the list of allowed hosts")
    if port not in policy.ports and not listed_port:
        standard = " and ".join(str(p) for p in sorted(policy.ports)) or "none"
        entry = f"[{literal}]:{port}" if literal is not None and literal.version == 6 else ""
        raise BlockedDestination(
            f"{hop.refused}port {port} is not allowed (only {standard}, or an allowed-hosts "
            f"entry {entry or f'{shown}:{port}'})"
        )
    check = not (listed and policy.allowlist_bypasses_address_check)
    if literal is not None:
        reason = address_block_reason(literal) if check else None
        if reason is not None:
            raise BlockedDestination(f"{hop.refused}{literal} is {reason}")
    return _Target(url, host, port, literal, check)


def _vet_answers(hop: _Hop, target: _Target, answers: list[str]) -> list[IPAddress]:
    """Check every resolved address; return them, in order, as the only ones to connect to."""
    if not answers:
        raise UpstreamError(f"fetch failed: {target.host} did not resolve to any address")
    addresses: list[IPAddress] = []
    for answer in answers:
        try:
            addresses.append(ipaddress.ip_address(answer))
        except ValueError:
            raise UpstreamError(
                f"fetch failed: the resolver returned an invalid address for {target.host}"
            ) from None
    for address in addresses:
        # Scoped answers pick an interface, and are refused even for allow-listed hosts.
        scoped = isinstance(address, ipaddress.IPv6Address) and address.scope_id
        reason = address_block_reason(address) if target.check_addresses or scoped else None
        if reason is not None:
            # One bad answer refuses the host: the next lookup (ours or a retry) could pick it.
            raise BlockedDestination(
                f"{hop.refused}{target.host} resolves to {address}, which is {reason}"
            )
    return addresses


def _pinned_request(
    hop: _Hop, target: _Target, address: IPAddress, deadline: float
) -> httpx.Request:
    pinned = target.url.copy_with(host=str(address))
    headers = httpx.Headers(list(_DEFAULT_HEADERS))
    for name, value in hop.headers:
        headers[name] = value
    headers["Accept-Encoding"] = "gzip, deflate"
    # The server sees the name that was asked for; only the socket uses the checked address.
    headers["Host"] = (pinned if target.literal is not None else target.url).netloc.decode("ascii")
    left = max(deadline - time.monotonic(), 0.001)
    extensions: dict[str, Any] = {
        "timeout": {"connect": left, "read": left, "write": left, "pool": left}
    }
    if target.url.scheme == "https" and target.literal is None:
        # Certificate verification checks this name, not the IP in the URL.
        extensions["sni_hostname"] = target.host.rstrip(".")
    return httpx.Request(
        hop.method, pinned, headers=headers, content=hop.body, extensions=extensions
    )


def _origin(url: httpx.URL) -> tuple[str, str, int]:
    scheme = url.scheme.lower()
    return scheme, url.host.lower().rstrip("."), url.port or _DEFAULT_PORTS.get(scheme, 0)


def _next_hop(hop: _Hop, response: httpx.Response, policy: Policy, done: int) -> _Hop | None:
    """The redirect to follow, or None when this response is the answer."""
    location = response.headers.get("location")
    if response.status_code not in _REDIRECT_STATUSES or not location:
        return None
    if policy.max_redirects == 0:
        raise TooManyRedirects(
            f"{hop.refused}the server answered with a redirect, and redirects are not allowed"
        )
    if done >= policy.max_redirects:
        raise TooManyRedirects(f"fetch stopped: more than {policy.max_redirects} redirects")
    try:
        url = hop.url.join(location)
    except (httpx.InvalidURL, ValueError):
        raise UpstreamError("fetch failed: the server redirected to an invalid URL") from None
    method, body, headers = hop.method, hop.body, hop.headers
    status = response.status_code
    # What browsers do: 303 becomes GET, and so do 301/302 answering a POST.
    if (status == 303 and method != "HEAD") or (status in (301, 302) and method == "POST"):
        method, body = "GET", None
        headers = tuple((k, v) for k, v in headers if k.lower() not in _BODY_HEADERS)
    if _origin(url) != _origin(hop.url):
        headers = tuple((k, v) for k, v in headers if k.lower() in _CROSS_ORIGIN_HEADERS)
    return _Hop(method, url, headers, body, redirected=True)


def _check_content_length(response: httpx.Response, policy: Policy, target: _Target) -> None:
    declared = response.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > policy.max_bytes:
        raise TooLarge(
            f"fetch refused: the response from {target.host} is larger than the "
            f"{format_size(policy.max_bytes)} limit ({format_size(int(declared))})"
        )


def _has_body(method: str, status: int) -> bool:
    return method != "HEAD" and status not in (204, 304) and status >= 200


def _reader(
    response: httpx.Response, policy: Policy, target: _Target, deadline: float
) -> BodyReader:
    return BodyReader(
        response.headers.get("content-encoding", ""),
        max_bytes=policy.max_bytes,
        deadline=deadline,
        timeout=policy.timeout,
        host=target.host,
    )


def _result(
    target: _Target, response: httpx.Response, body: bytes, started: float, redirects: list[str]
) -> SafeResponse:
    return SafeResponse(
        url=str(target.url),
        status_code=response.status_code,
        headers={k.lower(): v for k, v in response.headers.items()},
        content=body,
        elapsed=time.monotonic() - started,
        redirects=redirects,
    )


def _deadline_error(policy: Policy, host: str) -> DeadlineExceeded:
    return DeadlineExceeded(deadline_message(host, policy.timeout))


_TIMEOUTS = (httpx.TimeoutException, httpcore.TimeoutException, TimeoutError)
_CONNECT = (httpx.ConnectError, httpcore.ConnectError)
_REMOTE_PROTOCOL = (httpx.RemoteProtocolError, httpcore.RemoteProtocolError)
_LOCAL_PROTOCOL = (httpx.LocalProtocolError, httpcore.LocalProtocolError)
_OTHER_TRANSPORT = (
    httpx.TransportError,
    httpcore.NetworkError,
    httpcore.ProtocolError,
    httpcore.ConnectionNotAvailable,
    httpcore.UnsupportedProtocol,
    OSError,
)


def _connect_failure(host: str, exc: BaseException) -> str:
    text = str(exc)
    if "CERTIFICATE_VERIFY_FAILED" in text:
        return f"fetch failed: the TLS certificate of {host} could not be verified"
    if "SSL" in text or "TLS" in text:
        return f"fetch failed: the TLS handshake with {host} failed"
    # httpx wraps httpcore, which wraps the OSError that has the useful text.
    cause: BaseException | None = exc
    while cause is not None and not (isinstance(cause, OSError) and cause.strerror):
        cause = cause.__cause__ or cause.__context__
    strerror = cause.strerror if isinstance(cause, OSError) else None
    detail = f" ({strerror.lower()})" if strerror else ""
    return f"fetch failed: could not connect to {host}{detail}"


@contextmanager
def _transport_errors(policy: Policy, target: _Target) -> Iterator[None]:
    """Turn httpx/httpcore/socket failures into our errors, without their messages where those
    could quote request data (a protocol error can echo a header value)."""
    host = target.host
    try:
        yield
    except SafeHttpError:
        raise
    except _TIMEOUTS:
        raise _deadline_error(policy, host) from None
    except _CONNECT as exc:
        raise UpstreamError(_connect_failure(host, exc)) from None
    except _REMOTE_PROTOCOL:
        raise UpstreamError(f"fetch failed: {host} sent an invalid HTTP response") from None
    except _LOCAL_PROTOCOL:
        raise UpstreamError("fetch failed: the request is not valid HTTP") from None
    except _OTHER_TRANSPORT:
        raise UpstreamError(f"fetch failed: the connection to {host} failed") from None


# --- synchronous I/O -------------------------------------------------------------------------

_dns_pool: concurrent.futures.ThreadPoolExecutor | None = None
_dns_pool_lock = threading.Lock()


def _dns_executor() -> concurrent.futures.ThreadPoolExecutor:
    # getaddrinfo cannot be interrupted; running it on a worker lets the caller give up at the
    # deadline (the worker finishes in the background).
    global _dns_pool
    with _dns_pool_lock:
        if _dns_pool is None:
            _dns_pool = concurrent.futures.ThreadPoolExecutor(
                max_workers=8, thread_name_prefix="safehttp-dns"
            )
        return _dns_pool


def _resolve_sync(policy: Policy, target: _Target, deadline: float) -> list[str]:
    resolver = policy.resolver or system_resolver
    future = _dns_executor().submit(resolver, target.host, target.port)
    try:
        return future.result(timeout=max(deadline - time.monotonic(), 0))
    except TimeoutError:
        future.cancel()
        raise _deadline_error(policy, target.host) from None
    except OSError:
        raise UpstreamError(f"fetch failed: could not resolve {target.host}") from None


def safe_request(
    method: str,
    url: str,
    *,
    policy: Policy,
    headers: dict[str, str] | None = None,
    params: dict[str, Any] | None = None,
    json: Any = None,
    content: bytes | None = None,
    transport: httpx.BaseTransport | None = None,
) -> SafeResponse:
    """Fetch ``url`` under ``policy``. Non-2xx answers are returned; failures raise
    ``SafeHttpError`` subclasses. ``transport`` is for tests (the default one enforces the
    deadline on every socket operation; an injected one is only checked between chunks)."""
    started = time.monotonic()
    deadline = started + policy.timeout
    hop = _first_hop(method, url, headers, params, json, content)
    redirects: list[str] = []
    while True:
        target = _inspect(hop, policy)
        if target.literal is not None:
            addresses = [target.literal]
        else:
            addresses = _vet_answers(hop, target, _resolve_sync(policy, target, deadline))
        hop_transport = transport if transport is not None else DeadlineTransport(deadline)
        try:
            with _transport_errors(policy, target):
                response = _send_sync(hop_transport, hop, target, addresses, deadline)
                try:
                    next_hop = _next_hop(hop, response, policy, len(redirects))
                    if next_hop is None:
                        body = _read_sync(response, hop, policy, target, deadline)
                        return _result(target, response, body, started, redirects)
                finally:
                    response.close()
        finally:
            # A fresh pool per hop: a pooled connection verified for one name must not carry
            # a request for another name that resolved to the same address.
            if transport is None:
                hop_transport.close()
        redirects.append(str(target.url))
        hop = next_hop


def _send_sync(
    transport: httpx.BaseTransport,
    hop: _Hop,
    target: _Target,
    addresses: list[IPAddress],
    deadline: float,
) -> httpx.Response:
    for attempt, address in enumerate(addresses, start=1):
        logger.debug("safehttp %s %s via %s", hop.method, target.host, address)
        request = _pinned_request(hop, target, address, deadline)
        try:
            return transport.handle_request(request)
        except _CONNECT:
            # Like a browser, try the next checked address (IPv6 then IPv4, say) when nothing
            # was sent; never a fresh lookup.
            if attempt == len(addresses):
                raise
    raise AssertionError("no addresses")  # pragma: no cover


def _read_sync(
    response: httpx.Response, hop: _Hop, policy: Policy, target: _Target, deadline: float
) -> bytes:
    if not _has_body(hop.method, response.status_code):
        return b""
    _check_content_length(response, policy, target)
    reader = _reader(response, policy, target, deadline)
    stream = response.stream
    assert isinstance(stream, httpx.SyncByteStream)
    for chunk in stream:
        reader.feed(chunk)
    return reader.finish()


def safe_get(url: str, *, policy: Policy, headers: dict[str, str] | None = None) -> SafeResponse:
    """``safe_request("GET", url, ...)``."""
    return safe_request("GET", url, policy=policy, headers=headers)


# --- asynchronous I/O ------------------------------------------------------------------------


async def _resolve_async(policy: Policy, target: _Target) -> list[str]:
    resolver = policy.resolver or system_resolver
    try:
        return await asyncio.to_thread(resolver, target.host, target.port)
    except TimeoutError:
        raise _deadline_error(policy, target.host) from None
    except OSError:
        raise UpstreamError(f"fetch failed: could not resolve {target.host}") from None


async def async_safe_request(
    method: str,
    url: str,
    *,
    policy: Policy,
    headers: dict[str, str] | None = None,
    params: dict[str, Any] | None = None,
    json: Any = None,
    content: bytes | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
) -> SafeResponse:
    """The asyncio twin of ``safe_request``, with the same checks and errors."""
    hop = _first_hop(method, url, headers, params, json, content)
    host = hop.url.host
    try:
        # asyncio cancels whatever is awaiting at the deadline, DNS and socket reads included.
        async with asyncio.timeout(policy.timeout):
            return await _async_fetch(hop, policy, transport)
    except TimeoutError:
        raise _deadline_error(policy, host) from None


async def _async_fetch(
    first: _Hop, policy: Policy, transport: httpx.AsyncBaseTransport | None
) -> SafeResponse:
    started = time.monotonic()
    deadline = started + policy.timeout
    hop = first
    redirects: list[str] = []
    while True:
        target = _inspect(hop, policy)
        if target.literal is not None:
            addresses = [target.literal]
        else:
            addresses = _vet_answers(hop, target, await _resolve_async(policy, target))
        hop_transport = (
            transport
            if transport is not None
            else httpx.AsyncHTTPTransport(verify=ssl_context(), retries=0)
        )
        try:
            with _transport_errors(policy, target):
                response = await _send_async(hop_transport, hop, target, addresses, deadline)
                try:
                    next_hop = _next_hop(hop, response, policy, len(redirects))
                    if next_hop is None:
                        body = await _read_async(response, hop, policy, target, deadline)
                        return _result(target, response, body, started, redirects)
                finally:
                    await response.aclose()
        finally:
            if transport is None:
                await hop_transport.aclose()
        redirects.append(str(target.url))
        hop = next_hop


async def _send_async(
    transport: httpx.AsyncBaseTransport,
    hop: _Hop,
    target: _Target,
    addresses: list[IPAddress],
    deadline: float,
) -> httpx.Response:
    for attempt, address in enumerate(addresses, start=1):
        logger.debug("safehttp %s %s via %s", hop.method, target.host, address)
        request = _pinned_request(hop, target, address, deadline)
        try:
            return await transport.handle_async_request(request)
        except _CONNECT:
            if attempt == len(addresses):
                raise
    raise AssertionError("no addresses")  # pragma: no cover


async def _read_async(
    response: httpx.Response, hop: _Hop, policy: Policy, target: _Target, deadline: float
) -> bytes:
    if not _has_body(hop.method, response.status_code):
        return b""
    _check_content_length(response, policy, target)
    reader = _reader(response, policy, target, deadline)
    stream = response.stream
    assert isinstance(stream, httpx.AsyncByteStream)
    async for chunk in stream:
        reader.feed(chunk)
    return reader.finish()
