"""Whole-system tests (several real processes); fixtures borrowed from the app suites."""

from tests.conversations.conftest import conversation  # noqa: F401  (fixture)
from tests.escalations.conftest import roles  # noqa: F401  (fixture)
