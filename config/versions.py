"""Version stamps in the shared cache, for per-process caches of configuration.

A process may keep what it read from the database (the enabled agents and their tools, say)
for as long as the stamp it read *before* loading is still current. Whoever changes the data
calls :func:`bump` once the change is committed; every process reloads on its next read. The
stamp lives in the shared cache (Redis in production), so a change in one process reaches all.
"""

from __future__ import annotations

import secrets

from django.core.cache import cache
from django.db import transaction

_PREFIX = "version:"
# The enabled agents with their operations and specs (the runtime's per-process tool cache).
AGENT_TOOLS = "agent_tools"


def current(name: str) -> str | None:
    """The stamp, or ``None`` when there is none yet (a cleared cache): don't cache then."""
    value = cache.get(_PREFIX + name)
    if value is None:
        cache.add(_PREFIX + name, secrets.token_hex(8), timeout=None)
    return value if isinstance(value, str) else None


def bump(name: str) -> None:
    """Invalidate every process's copy once the current transaction commits."""
    transaction.on_commit(lambda: cache.set(_PREFIX + name, secrets.token_hex(8), timeout=None))
