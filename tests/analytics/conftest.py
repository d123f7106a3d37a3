"""Analytics tests replay demo conversations: the demo shop fixture of the chat tests."""

from __future__ import annotations

from tests.conversations.conftest import demo  # noqa: F401
