from __future__ import annotations

import pytest
from django.core.cache import caches
from django.test import override_settings

from config.ratelimit import hit


def test_allows_up_to_the_limit_then_refuses() -> None:
    verdicts = [hit("t1", limit=3, window=10, now=1000.0 + i * 0.1) for i in range(5)]
    assert [v.allowed for v in verdicts] == [True, True, True, False, False]
    assert 1 <= verdicts[3].retry_after <= 10


def test_window_slides_instead_of_resetting_at_the_boundary() -> None:
    for i in range(3):
        assert hit("t2", limit=3, window=10, now=1008.0 + i * 0.1).allowed
    # Just after the boundary most of the previous bucket still counts.
    assert not hit("t2", limit=3, window=10, now=1010.5).allowed
    # A full window later it is free again.
    assert hit("t2", limit=3, window=10, now=1021.0).allowed


def test_keys_are_independent() -> None:
    assert hit("a", limit=1, window=10, now=5.0).allowed
    assert hit("b", limit=1, window=10, now=5.0).allowed
    assert not hit("a", limit=1, window=10, now=5.1).allowed


def test_shared_across_clients_on_redis(redis_url: str) -> None:
    """Two cache clients (as two processes would have) share one count."""
    config = {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": redis_url,
        "KEY_PREFIX": "rl-test",
    }
    with override_settings(CACHES={"default": config, "other": config}):
        caches["default"].clear()
        assert hit("shared", limit=2, window=10, now=50.0).allowed
        from config import ratelimit

        original = ratelimit.cache
        try:
            ratelimit.cache = caches["other"]
            assert hit("shared", limit=2, window=10, now=50.1).allowed
            assert not hit("shared", limit=2, window=10, now=50.2).allowed
        finally:
            ratelimit.cache = original
        caches["default"].clear()


@pytest.mark.parametrize("limit", [1, 10])
def test_refused_hits_keep_counting(limit: int) -> None:
    for i in range(limit * 3):
        hit("flood", limit=limit, window=10, now=100.0 + i * 0.01)
    assert hit("flood", limit=limit, window=10, now=100.9).count > limit * 3
