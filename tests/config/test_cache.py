"""The Redis cache keeps one client per pool; version stamps invalidate per-process caches."""

from __future__ import annotations

import pytest
from django.core.cache import cache
from django.db import transaction

from config import versions
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


def test_no_stamp_means_do_not_cache_then_one_appears() -> None:
    cache.clear()
    assert versions.current("thing") is None
    first = versions.current("thing")
    assert first is not None
    assert versions.current("thing") == first


@pytest.mark.django_db(transaction=True)
def test_a_bump_takes_effect_on_commit_only() -> None:
    versions.current("thing")
    before = versions.current("thing")
    with transaction.atomic():
        versions.bump("thing")
        assert versions.current("thing") == before  # not yet committed
    after = versions.current("thing")
    assert after is not None and after != before
    with transaction.atomic():
        versions.bump("thing")
        transaction.set_rollback(True)
    assert versions.current("thing") == after  # rolled back: nothing changed


def test_versions_are_shared_by_every_client(redis_url: str) -> None:
    """Two processes see one stamp: the stamp lives in Redis, not in the process."""
    one = ReusingRedisCache(redis_url, {"KEY_PREFIX": "stamp-test"})
    two = ReusingRedisCache(redis_url, {"KEY_PREFIX": "stamp-test"})
    one.set("version:x", "abc", None)
    assert two.get("version:x") == "abc"
