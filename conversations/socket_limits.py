"""Abuse limits on the chat socket per client IP and per visitor (SPEC §3, SECURITY-TESTS row 7,
OWASP LLM10): handshakes per minute, sockets open at once, and messages per minute, on top of
the per-conversation message limit in ``conversations.protocol``.

Every count lives in the cache, so every process sharing Redis shares it. Open sockets are a
counter raised at accept and lowered at disconnect; a process that dies with sockets open
leaves its share until the key's timeout (``SOCKET_COUNT_TTL``) lets it go. The IP is the ASGI
``client`` address: behind a proxy, run Daphne with ``--proxy-headers`` so it is the
customer's, not the proxy's.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import structlog
from django.conf import settings
from django.core.cache import cache

from config import ratelimit

logger = structlog.get_logger(__name__)

CLOSE_LIMITED = 4429
# An open-socket count outlives a crashed process by at most this long.
SOCKET_COUNT_TTL = 3600


@dataclass(frozen=True)
class Client:
    ip: str
    visitor: str

    @classmethod
    def from_scope(cls, scope: dict[str, Any], visitor: str | None) -> Client:
        client = scope.get("client") or ("", 0)
        return cls(ip=str(client[0] or "unknown"), visitor=visitor or "")

    def counted_as(self) -> list[tuple[str, str]]:
        """(scope, key) pairs this client is counted under; a visitor without a cookie is
        counted by IP only."""
        pairs = [("ip", f"ip:{self.ip}")]
        if self.visitor:
            pairs.append(("visitor", f"visitor:{self.visitor}"))
        return pairs


@dataclass(frozen=True)
class Refusal:
    scope: str  # "ip" or "visitor"
    what: str  # "handshakes", "sockets" or "messages"
    retry_after: int

    @property
    def message(self) -> str:
        noun = {
            "handshakes": "connection attempts",
            "sockets": "open chats",
            "messages": "messages",
        }[self.what]
        who = "from your network" if self.scope == "ip" else "from this browser"
        return f"Too many {noun} {who}; try again in {self.retry_after} s."


def _open_key(key: str) -> str:
    return f"ws:open:{key}"


def open_sockets(key: str) -> int:
    return int(cache.get(_open_key(key), 0))


def connect_check(client: Client) -> Refusal | None:
    """Count a handshake; refuse it past the handshake rate or the open-socket cap. When it is
    allowed, the socket is counted as open (call :func:`socket_closed` at disconnect)."""
    caps = {
        "ip": settings.CHAT_MAX_SOCKETS_PER_IP,
        "visitor": settings.CHAT_MAX_SOCKETS_PER_VISITOR,
    }
    for scope, key in client.counted_as():
        verdict = ratelimit.hit(
            f"ws-handshake:{key}", limit=settings.CHAT_HANDSHAKES_PER_MINUTE, window=60
        )
        if not verdict.allowed:
            return _refused(client, Refusal(scope, "handshakes", verdict.retry_after))
    for scope, key in client.counted_as():
        if open_sockets(key) >= caps[scope]:
            # A socket frees a place whenever it closes; the handshake rate bounds the retries.
            return _refused(client, Refusal(scope, "sockets", 10))
    for _, key in client.counted_as():
        cache.add(_open_key(key), 0, timeout=SOCKET_COUNT_TTL)
        cache.incr(_open_key(key))
        cache.touch(_open_key(key), SOCKET_COUNT_TTL)
    return None


def socket_closed(client: Client) -> None:
    for _, key in client.counted_as():
        try:
            if cache.decr(_open_key(key)) < 0:
                cache.set(_open_key(key), 0, timeout=SOCKET_COUNT_TTL)
        except ValueError:  # expired meanwhile: nothing left to lower
            pass


# KEYS: pairs of (bucket now, bucket before) per scope. ARGV: bucket ttl. Returns the counts.
_MESSAGE_HITS = """
local counts = {}
for i = 1, #KEYS, 2 do
  redis.call('SET', KEYS[i], 0, 'NX', 'EX', ARGV[1])
  table.insert(counts, redis.call('INCR', KEYS[i]))
  table.insert(counts, tonumber(redis.call('GET', KEYS[i + 1]) or '0') or 0)
end
return counts
"""
_scripts: dict[int, Any] = {}
WINDOW = 60


def message_check(client: Client, *, now: float | None = None) -> Refusal | None:
    """Count a customer message against the IP's and the visitor's budget per minute: with
    Redis one script for both (one round trip), else ``ratelimit.hit`` on the local cache."""
    limits = {
        "ip": settings.CHAT_MESSAGES_PER_MINUTE_PER_IP,
        "visitor": settings.CHAT_MESSAGES_PER_MINUTE_PER_VISITOR,
    }
    scopes = client.counted_as()
    redis = _redis()
    if redis is None:
        for scope, key in scopes:
            verdict = ratelimit.hit(f"ws-message:{key}", limit=limits[scope], window=WINDOW)
            if not verdict.allowed:
                return _refused(client, Refusal(scope, "messages", verdict.retry_after))
        return None
    now = time.time() if now is None else now
    bucket = int(now // WINDOW)
    overlap = 1 - (now - bucket * WINDOW) / WINDOW
    keys: list[str] = []
    for _, key in scopes:
        keys += [
            cache.make_key(f"rl:ws-message:{key}:{bucket}"),
            cache.make_key(f"rl:ws-message:{key}:{bucket - 1}"),
        ]
    script = _scripts.get(id(redis))
    if script is None:
        script = _scripts[id(redis)] = redis.register_script(_MESSAGE_HITS)
    counts = script(keys=keys, args=[WINDOW * 2])
    for index, (scope, _) in enumerate(scopes):
        current, previous = int(counts[2 * index]), int(counts[2 * index + 1])
        count = current + previous * overlap
        if count > limits[scope]:
            wait = ratelimit.retry_after(count, previous, limits[scope], WINDOW, now)
            return _refused(client, Refusal(scope, "messages", wait))
    return None


def _redis() -> Any | None:
    if not settings.REDIS_URL:
        return None
    # Django's Redis cache client, as conversations.turns.gate uses it.
    return cache._cache.get_client(write=True)  # type: ignore[attr-defined]


def _refused(client: Client, refusal: Refusal) -> Refusal:
    logger.warning(
        "chat_limit_reached",
        scope=refusal.scope,
        limit=refusal.what,
        retry_after=refusal.retry_after,
        client_ip=client.ip,
    )
    return refusal
