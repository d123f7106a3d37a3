"""Fixtures shared by the whole suite (see docs/testing.md)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any, cast

import pytest
from django.conf import settings
from django.contrib.auth.models import User
from django.test import Client

from access.roles import SUPERVISOR, SUPPORT_AGENT, VIEWER
from access.services import IssuedKey, api_key_issue
from tests.factories import StaffFactory, UserFactory

# CI sets this: a test that needs PostgreSQL or Redis must fail there rather than skip.
SERVICES_REQUIRED = os.environ.get("ACTIONDESK_REQUIRE_SERVICES") == "1"
# CI's embedded run (no services, so PostgreSQL and Redis tests skip) still needs Chromium.
BROWSER_REQUIRED = SERVICES_REQUIRED or os.environ.get("ACTIONDESK_REQUIRE_BROWSER") == "1"


def _missing_service(what: str, *, required: bool = SERVICES_REQUIRED) -> None:
    if required:
        pytest.fail(f"{what} is required in CI (.ci/run) but is not available.")
    pytest.skip(f"{what} not configured; set it (as .ci/run does) to run this test.")


@pytest.fixture
def redis_url() -> str:
    if not settings.REDIS_URL:
        _missing_service("REDIS_URL")
    return str(settings.REDIS_URL)


@pytest.fixture
def postgres() -> None:
    if settings.DATABASES["default"]["ENGINE"] != "django.db.backends.postgresql":
        _missing_service("DATABASE_URL (PostgreSQL)")


@pytest.fixture(autouse=True)
def _clear_cache() -> Iterator[None]:
    """Rate limits and throttles live in the cache; start every test from zero."""
    from django.core.cache import cache

    cache.clear()
    yield


@pytest.fixture
def user(db: None) -> User:
    return cast(User, UserFactory())


@pytest.fixture
def supervisor(db: None) -> User:
    return cast(User, StaffFactory(username="sup", roles=[SUPERVISOR]))


@pytest.fixture
def support_agent(db: None) -> User:
    return cast(User, StaffFactory(username="agent", roles=[SUPPORT_AGENT]))


@pytest.fixture
def viewer(db: None) -> User:
    return cast(User, StaffFactory(username="viewer", roles=[VIEWER]))


@pytest.fixture
def api_key(supervisor: User) -> IssuedKey:
    from access.models import ApiKey

    return api_key_issue(owner=supervisor, name="tests", scopes=list(ApiKey.Scope.values))


@pytest.fixture
def api(api_key: IssuedKey) -> Client:
    """A client that sends the supervisor's API key with every request."""
    return Client(headers={"Authorization": f"Bearer {api_key.plaintext}"})


@pytest.fixture(autouse=True)
async def _release_async_connections() -> Any:
    """Django's async ORM runs in asgiref's shared executor thread, which keeps its database
    connection checked out; give it back after each test (a pool would otherwise hold it, and
    the test database could not be dropped)."""
    yield
    from asgiref.sync import sync_to_async
    from django.db import connections

    await sync_to_async(connections.close_all)()
