"""Fixtures for the escalations tests; the chat fixtures come from tests/conversations."""

from __future__ import annotations

from typing import cast

import pytest
from django.apps import apps
from django.contrib.auth.models import Group, User

from access.roles import SUPERVISOR, SUPPORT_AGENT, roles_sync
from tests.conversations.conftest import conversation, demo  # noqa: F401  (fixtures)
from tests.factories import StaffFactory


@pytest.fixture
def roles(db: None) -> None:
    """The role groups come from data migrations, which a transactional test's flush empties;
    put them back for the tests that follow one."""
    if not Group.objects.filter(name=SUPPORT_AGENT).exists():
        roles_sync(apps=apps)


@pytest.fixture
def support_agent(roles: None, support_agent: User) -> User:
    return support_agent


@pytest.fixture
def supervisor(roles: None, supervisor: User) -> User:
    return supervisor


@pytest.fixture
def viewer(roles: None, viewer: User) -> User:
    return viewer


@pytest.fixture
def second_agent(roles: None) -> User:
    return cast(User, StaffFactory(username="agent2", first_name="Bea", roles=[SUPPORT_AGENT]))


@pytest.fixture
def named_agent(roles: None) -> User:
    return cast(
        User,
        StaffFactory(username="ana", first_name="Ana", last_name="Lima", roles=[SUPPORT_AGENT]),
    )


@pytest.fixture
def named_supervisor(roles: None) -> User:
    return cast(User, StaffFactory(username="boss", first_name="Sam", roles=[SUPERVISOR]))
