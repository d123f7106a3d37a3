"""Version stamps (config.versions) reach every process at once: in Redis when it is configured,
in the database otherwise (the embedded default, whose cache is each process's own memory)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings as django_settings
from django.core.cache import cache
from django.db import transaction

from access.models import VersionStamp
from config import versions
from tests.support.shared_db import SETTINGS_PRELUDE, shared_database

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(params=["database", "cache"])
def store(request: pytest.FixtureRequest, settings: Any) -> str:
    """Each rule runs against both homes of the stamp. Without a real Redis, "cache" runs the
    same code against this process's cache (what a Redis deployment does, minus the sharing)."""
    if request.param == "database":
        settings.REDIS_URL = ""
    elif not settings.REDIS_URL:
        settings.REDIS_URL = "redis://127.0.0.1:1/0"  # never connected to: CACHES is local
    return str(request.param)


def test_no_stamp_means_do_not_cache_then_one_appears(store: str) -> None:
    assert versions.current("thing") is None
    first = versions.current("thing")
    assert first is not None
    assert versions.current("thing") == first


def test_a_bump_takes_effect_on_commit_only(store: str) -> None:
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


def test_a_bump_before_any_read_still_changes_the_stamp(store: str) -> None:
    versions.bump("fresh")
    first = versions.current("fresh")
    assert first is not None
    versions.bump("fresh")
    assert versions.current("fresh") not in {None, first}


def test_without_redis_the_stamp_is_one_primary_key_read(
    settings: Any, django_assert_num_queries: Any
) -> None:
    settings.REDIS_URL = ""
    versions.current("thing")
    with django_assert_num_queries(1) as captured:
        stamp = versions.current("thing")
    assert stamp == VersionStamp.objects.get(pk="thing").value
    sql = captured.captured_queries[0]["sql"]
    assert '"access_versionstamp"."name" = ' in sql and "JOIN" not in sql


def test_without_redis_the_stamp_is_not_in_the_process_cache(settings: Any) -> None:
    settings.REDIS_URL = ""
    versions.current("thing")
    versions.bump("thing")
    stamp = versions.current("thing")
    cache.clear()  # another process's cache is as good as an empty one
    assert versions.current("thing") == stamp
    assert cache.get("version:thing") is None


# --- Across processes --------------------------------------------------------------------------

# A second Django process on the same settings and database: answers "current" and "bump".
_OTHER_PROCESS = (
    SETTINGS_PRELUDE
    + """\
import sys
import django
django.setup()
from config import versions
for line in sys.stdin:
    command = line.strip()
    if command == "bump":
        versions.bump(NAME)
        print("bumped", flush=True)
    elif command == "current":
        print(versions.current(NAME), flush=True)
"""
)
NAME = "cross-process"


class OtherProcess:
    def __init__(self, database: str) -> None:
        env = {**os.environ, "ACTIONDESK_SHARED_DB": database}
        env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        self.process = subprocess.Popen(
            [sys.executable, "-c", f"NAME = {NAME!r}\n" + _OTHER_PROCESS],
            cwd=django_settings.BASE_DIR,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )

    def ask(self, command: str) -> str:
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write(command + "\n")
        self.process.stdin.flush()
        answer = self.process.stdout.readline().strip()
        assert answer, f"the other process exited with {self.process.poll()}"
        return answer

    def close(self) -> None:
        if self.process.stdin is not None:
            self.process.stdin.close()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


@pytest.fixture
def other_process(tmp_path: Path) -> Iterator[OtherProcess]:
    with shared_database(tmp_path) as database:
        other = OtherProcess(database)
        try:
            yield other
        finally:
            other.close()


def test_a_bump_in_one_process_is_seen_by_the_other_at_once(other_process: OtherProcess) -> None:
    """The shape `make run` starts (no Redis: SQLite and local-memory caches) as well as the
    shape of CI's second run (Redis): a change made in either process reaches the other on
    its very next read, with no wait."""
    versions.current(NAME)
    here = versions.current(NAME)
    assert here is not None
    assert other_process.ask("current") == here

    assert other_process.ask("bump") == "bumped"
    after_theirs = versions.current(NAME)
    assert after_theirs not in {None, here}

    versions.bump(NAME)  # autocommit: stored at once
    after_ours = versions.current(NAME)
    assert after_ours not in {None, after_theirs}
    assert other_process.ask("current") == after_ours
