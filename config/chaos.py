"""Chaos mode (SPEC §13, issue 18 item 5): faults injected at given rates, from a seed, so a
failure seen in a soak can be replayed.

Off unless ``CHAOS_ENABLED``; production settings refuse to start with it on. Each injection
point draws from its own ``random.Random`` seeded with ``CHAOS_SEED`` and the point's name, so
the sequence of faults at a point depends only on the seed and how often that point ran, not on
the interleaving of other points. Faults are raised where the real failure would come from, so
the code that handles real failures handles them:

- ``model``: added latency (``CHAOS_MODEL_LATENCY_RATE``, up to ``CHAOS_MODEL_LATENCY_MS``) and
  errors (``CHAOS_MODEL_ERROR_RATE``, a transient ``server_error`` from the backend) inside the
  registry's attempt, so retries, breakers and fallbacks see them;
- ``tool``: failures (``CHAOS_TOOL_FAILURE_RATE``, the upstream unreachable) and timeouts
  (``CHAOS_TOOL_TIMEOUT_RATE``, the deadline) before the request is sent, so nothing reaches
  the business's API twice because of chaos;
- ``redis``: connection errors on cache calls (``CHAOS_REDIS_ERROR_RATE``,
  :class:`ChaosCacheMixin`);
- ``db``: PostgreSQL's "canceling statement due to statement timeout" on SQL statements
  (``CHAOS_DB_TIMEOUT_RATE``, a database execute wrapper installed per connection).
"""

from __future__ import annotations

import asyncio
import random
import threading
from collections import Counter
from typing import Any

import structlog
from django.conf import settings
from django.core.cache.backends.locmem import LocMemCache

from config.cache import ReusingRedisCache

logger = structlog.get_logger(__name__)

POINTS = ("model_latency", "model_error", "tool_failure", "tool_timeout", "redis", "db")

_lock = threading.Lock()
_rngs: dict[str, random.Random] = {}
injected: Counter[str] = Counter()


class ChaosError(Exception):
    """Marks an injected fault in logs and tests; the raised type is the real failure's."""


def enabled() -> bool:
    return bool(getattr(settings, "CHAOS_ENABLED", False))


def reset(seed: int | None = None) -> None:
    """Start every point's sequence again (from ``seed``, else ``CHAOS_SEED``)."""
    with _lock:
        _rngs.clear()
        injected.clear()
        if seed is not None:
            for point in POINTS:
                _rngs[point] = random.Random(f"{seed}:{point}")


def _rng(point: str) -> random.Random:
    rng = _rngs.get(point)
    if rng is None:
        rng = _rngs[point] = random.Random(f"{settings.CHAOS_SEED}:{point}")
    return rng


def roll(point: str, rate: float) -> float | None:
    """A draw in [0, 1) when the fault at ``point`` fires this time, else ``None``. Draws
    whenever chaos is on, whatever the rate, so the sequence does not depend on the rates."""
    if not enabled():
        return None
    with _lock:
        draw = _rng(point).random()
        fires = draw < rate
        if fires:
            injected[point] += 1
    if fires:
        logger.warning("chaos_injected", point=point, count=injected[point])
        return draw
    return None


# --- model -------------------------------------------------------------------------------------


async def model_attempt(backend: str) -> None:
    """Before each model attempt: maybe wait, maybe fail as the backend would."""
    from conversations.llm.types import ErrorKind, LLMError

    if not enabled():
        return
    if (draw := roll("model_latency", settings.CHAOS_MODEL_LATENCY_RATE)) is not None:
        await asyncio.sleep(settings.CHAOS_MODEL_LATENCY_MS / 1000 * (0.5 + draw / 2))
    if roll("model_error", settings.CHAOS_MODEL_ERROR_RATE) is not None:
        raise LLMError(ErrorKind.SERVER_ERROR, "chaos: injected model error", backend=backend)


# --- tools -------------------------------------------------------------------------------------


def tool_attempt(operation_id: str) -> None:
    """Before each tool request is sent: maybe the upstream is unreachable or times out."""
    from safehttp.errors import DeadlineExceeded, UpstreamError

    if not enabled():
        return
    if roll("tool_timeout", settings.CHAOS_TOOL_TIMEOUT_RATE) is not None:
        raise DeadlineExceeded(f"chaos: injected timeout calling {operation_id}")
    if roll("tool_failure", settings.CHAOS_TOOL_FAILURE_RATE) is not None:
        raise UpstreamError(f"chaos: injected connection failure calling {operation_id}")


# --- Redis (the cache) -------------------------------------------------------------------------


def _redis_fault() -> None:
    from redis.exceptions import ConnectionError as RedisConnectionError

    if roll("redis", settings.CHAOS_REDIS_ERROR_RATE) is not None:
        raise RedisConnectionError("chaos: injected Redis connection error")


class ChaosCacheMixin:
    """A cache backend with Redis connection errors injected before every call; settings use
    :class:`ChaosRedisCache` (or :class:`ChaosLocMemCache` without Redis) when chaos is on."""

    def get(self, *args: Any, **kwargs: Any) -> Any:
        _redis_fault()
        return super().get(*args, **kwargs)  # type: ignore[misc]

    def set(self, *args: Any, **kwargs: Any) -> Any:
        _redis_fault()
        return super().set(*args, **kwargs)  # type: ignore[misc]

    def add(self, *args: Any, **kwargs: Any) -> Any:
        _redis_fault()
        return super().add(*args, **kwargs)  # type: ignore[misc]

    def delete(self, *args: Any, **kwargs: Any) -> Any:
        _redis_fault()
        return super().delete(*args, **kwargs)  # type: ignore[misc]

    def incr(self, *args: Any, **kwargs: Any) -> Any:
        _redis_fault()
        return super().incr(*args, **kwargs)  # type: ignore[misc]

    def get_many(self, *args: Any, **kwargs: Any) -> Any:
        _redis_fault()
        return super().get_many(*args, **kwargs)  # type: ignore[misc]

    def touch(self, *args: Any, **kwargs: Any) -> Any:
        _redis_fault()
        return super().touch(*args, **kwargs)  # type: ignore[misc]


class ChaosRedisCache(ChaosCacheMixin, ReusingRedisCache):
    pass


class ChaosLocMemCache(ChaosCacheMixin, LocMemCache):
    pass


# --- PostgreSQL --------------------------------------------------------------------------------


def statement_timeouts(execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
    """A database execute wrapper: some statements fail as PostgreSQL's ``statement_timeout``
    makes them fail (``django.db.OperationalError``)."""
    from django.db import OperationalError

    if roll("db", settings.CHAOS_DB_TIMEOUT_RATE) is not None:
        raise OperationalError("canceling statement due to statement timeout (chaos)")
    return execute(sql, params, many, context)


def install_db_wrapper(sender: Any, connection: Any, **kwargs: Any) -> None:
    """``connection_created`` receiver: every new connection gets :func:`statement_timeouts`."""
    wanted = enabled() and settings.CHAOS_DB_TIMEOUT_RATE > 0
    if wanted and statement_timeouts not in connection.execute_wrappers:
        connection.execute_wrappers.append(statement_timeouts)
