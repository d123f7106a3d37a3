"""Analytics tests replay demo conversations (the demo shop fixture of the chat tests) and act
as staff of every role."""

from __future__ import annotations

from typing import cast

import pytest
from django.contrib.auth.models import User

from access.roles import SUPERVISOR, SUPPORT_AGENT, VIEWER
from tests.conversations.conftest import demo  # noqa: F401
from tests.factories import StaffFactory


def _staff(username: str, role: str) -> User:
    """A member of ``role``, made after the role groups exist again: a transactional test's
    flush removes them (docs/testing.md)."""
    from django.apps import apps

    from access.roles import roles_sync

    roles_sync(apps=apps)
    return cast(User, StaffFactory(username=username, roles=[role]))


@pytest.fixture
def supervisor(db: None) -> User:
    return _staff("sup", SUPERVISOR)


@pytest.fixture
def support_agent(db: None) -> User:
    return _staff("agent", SUPPORT_AGENT)


@pytest.fixture
def viewer(db: None) -> User:
    return _staff("viewer", VIEWER)
