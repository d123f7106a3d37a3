"""The Redis cache keeps one client per pool (version stamps: tests/config/test_versions.py)."""

from __future__ import annotations

from config.cache import ReusingRedisCache


def test_one_client_serves_every_call(redis_url: str) -> None:
    backend = ReusingRedisCache(redis_url, {"KEY_PREFIX": "reuse-test"})
    client = backend._cache.get_client(write=True)
    assert backend._cache.get_client(write=True) is client
    assert backend._cache.get_client() is client  # one server: reads use the same pool
    backend.set("k", {"v": 1}, 5)
    assert backend.get("k") == {"v": 1}
    assert backend.add("k", 2, 5) is False
    backend.delete("n")
    assert backend.add("n", 0, 5) is True
    assert backend.incr("n") == 1
    backend.delete("k")
    assert backend.get("k") is None


def test_versions_are_shared_by_every_client(redis_url: str) -> None:
    """Two processes see one stamp: the stamp lives in Redis, not in the process."""
    one = ReusingRedisCache(redis_url, {"KEY_PREFIX": "stamp-test"})
    two = ReusingRedisCache(redis_url, {"KEY_PREFIX": "stamp-test"})
    one.set("version:x", "abc", None)
    assert two.get("version:x") == "abc"
