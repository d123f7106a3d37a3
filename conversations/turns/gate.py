"""A conversation's gate: the chat rate limit, the turn lock with its wake flag, and the
agents' version stamp (``config.versions``).

With Redis each of ``admit``, ``lock_acquire`` and ``lock_release`` is one script, so one
round trip, and atomic: a runner that finds the lock held leaves the wake flag in the same
step, and the holder reads the flag in the step that lets go, so no work that arrives while
a turn runs is left waiting. Without Redis (the embedded default) the same steps run on the
local cache (``ratelimit.hit``, ``cache.add``), one process's memory.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.cache import cache

from config import ratelimit, versions

LOCK_SECONDS = 300

# KEYS: rate bucket now, rate bucket before, lock, wake, stamp.
# ARGV: bucket ttl, limit, overlap of the previous bucket, token, lock ttl.
_ADMIT = """
redis.call('SET', KEYS[1], 0, 'NX', 'EX', ARGV[1])
local current = redis.call('INCR', KEYS[1])
local previous = tonumber(redis.call('GET', KEYS[2]) or '0') or 0
local token = false
if current + previous * tonumber(ARGV[3]) <= tonumber(ARGV[2]) then
  if redis.call('SET', KEYS[3], ARGV[4], 'NX', 'EX', ARGV[5]) then
    token = ARGV[4]
  else
    redis.call('SET', KEYS[4], 1, 'EX', ARGV[5])
  end
end
return {current, previous, token, redis.call('GET', KEYS[5])}
"""
# KEYS: lock, wake. ARGV: token, lock ttl.
_ACQUIRE = """
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'EX', ARGV[2]) then
  return ARGV[1]
end
redis.call('SET', KEYS[2], 1, 'EX', ARGV[2])
return false
"""
# KEYS: lock, wake. ARGV: token.
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('DEL', KEYS[1])
end
return redis.call('GETDEL', KEYS[2])
"""

_scripts: dict[tuple[int, str], Any] = {}


@dataclass(frozen=True)
class Admission:
    verdict: ratelimit.Verdict
    token: str | None  # the turn lock, taken for this message; None: another runner has it
    stamp: str | None  # the agents' version stamp, when read in the same trip


def _redis() -> Any | None:
    if not settings.REDIS_URL:
        return None
    # Django's Redis cache client (config.cache keeps one per pool); private but stable.
    return cache._cache.get_client(write=True)  # type: ignore[attr-defined]


def _script(client: Any, source: str) -> Any:
    key = (id(client), source)
    script = _scripts.get(key)
    if script is None:
        script = _scripts[key] = client.register_script(source)
    return script


def _keys(conversation_id: str) -> tuple[str, str]:
    return (
        cache.make_key(f"turnlock:{conversation_id}"),
        cache.make_key(f"turnwake:{conversation_id}"),
    )


def admit(*, conversation_id: str, now: float | None = None) -> Admission:
    """Count one customer message against the conversation's rate limit and, if it is
    allowed, take the turn lock for it; with Redis, the stamp comes along."""
    limit = settings.CHAT_RATE_LIMIT_MESSAGES
    window = settings.CHAT_RATE_LIMIT_WINDOW_SECONDS
    client = _redis()
    if client is None:
        verdict = ratelimit.hit(f"chat:{conversation_id}", limit=limit, window=window, now=now)
        token = lock_acquire(conversation_id=conversation_id) if verdict.allowed else None
        return Admission(verdict, token, None)
    now = time.time() if now is None else now
    bucket = int(now // window)
    overlap = 1 - (now - bucket * window) / window
    lock, wake = _keys(conversation_id)
    current, previous, token, raw_stamp = _script(client, _ADMIT)(
        keys=[
            cache.make_key(f"rl:chat:{conversation_id}:{bucket}"),
            cache.make_key(f"rl:chat:{conversation_id}:{bucket - 1}"),
            lock,
            wake,
            cache.make_key(versions.stamp_key(versions.AGENT_TOOLS)),
        ],
        args=[window * 2, limit, overlap, secrets.token_hex(8), LOCK_SECONDS],
    )
    count = int(current) + int(previous) * overlap
    stamp = cache._cache._serializer.loads(raw_stamp) if raw_stamp is not None else None  # type: ignore[attr-defined]
    if count <= limit:
        verdict = ratelimit.Verdict(True, count, 0)
    else:
        verdict = ratelimit.Verdict(
            False, count, ratelimit.retry_after(count, int(previous), limit, window, now)
        )
    return Admission(
        verdict,
        token.decode() if isinstance(token, bytes) else token or None,
        stamp if isinstance(stamp, str) else None,
    )


def lock_acquire(*, conversation_id: str) -> str | None:
    """The conversation's turn lock, or None when another runner holds it (who is then woken
    to look for work again when it lets go)."""
    token = secrets.token_hex(8)
    client = _redis()
    lock, wake = _keys(conversation_id)
    if client is not None:
        taken = _script(client, _ACQUIRE)(keys=[lock, wake], args=[token, LOCK_SECONDS])
        return token if taken else None
    if cache.add(f"turnlock:{conversation_id}", token, LOCK_SECONDS):
        return token
    cache.set(f"turnwake:{conversation_id}", 1, LOCK_SECONDS)
    # The local cache has no script: try once more, in case the holder let go before the
    # flag was set (it reads the flag after letting go).
    return token if cache.add(f"turnlock:{conversation_id}", token, LOCK_SECONDS) else None


def lock_release(*, conversation_id: str, token: str) -> bool:
    """Let go of the lock; True when another runner came by meanwhile (the wake flag)."""
    client = _redis()
    if client is not None:
        lock, wake = _keys(conversation_id)
        return _script(client, _RELEASE)(keys=[lock, wake], args=[token]) is not None
    key = f"turnlock:{conversation_id}"
    if cache.get(key) == token:
        cache.delete(key)
    woken = cache.get(f"turnwake:{conversation_id}") is not None
    if woken:
        cache.delete(f"turnwake:{conversation_id}")
    return woken
