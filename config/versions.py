"""Version stamps shared by every process, for per-process caches of configuration.

A process may keep what it read from the database (the enabled agents and their tools, say)
for as long as the stamp it read *before* loading is still current. Whoever changes the data
calls :func:`bump` once the change is committed; every process reloads on its next read.

The stamp must live where every process sees it. With ``REDIS_URL`` that is the shared cache
(Redis). Without Redis the cache is each process's local memory, so the stamp lives in the
database instead (``access.VersionStamp``, one primary-key read per check): the embedded
default, where Daphne and ``manage.py`` commands are separate processes, needs it as much as
a deployment does.
"""

from __future__ import annotations

import secrets

from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.utils import timezone

_PREFIX = "version:"
# The enabled agents with their operations and specs (the runtime's per-process tool cache).
AGENT_TOOLS = "agent_tools"


def stamp_key(name: str) -> str:
    """The stamp's cache key (before the cache's prefix), for a script that reads it."""
    return _PREFIX + name


def _in_cache() -> bool:
    """Redis is shared by every process; the local-memory cache (no ``REDIS_URL``) is not."""
    return bool(settings.REDIS_URL)


def _new_value() -> str:
    return secrets.token_hex(8)


def current(name: str) -> str | None:
    """The stamp, or ``None`` when there is none yet (a cleared cache): don't cache then."""
    if _in_cache():
        value = cache.get(_PREFIX + name)
        if value is None:
            cache.add(_PREFIX + name, _new_value(), timeout=None)
        return value if isinstance(value, str) else None

    from access.models import VersionStamp

    stored = VersionStamp.objects.filter(pk=name).values_list("value", flat=True).first()
    if stored is None:
        # Several processes may get here at once: the first row wins, the others are ignored.
        VersionStamp.objects.bulk_create(
            [VersionStamp(name=name, value=_new_value())], ignore_conflicts=True
        )
    return stored


def _store(name: str) -> None:
    value = _new_value()
    if _in_cache():
        cache.set(_PREFIX + name, value, timeout=None)
        return

    from access.models import VersionStamp

    if not VersionStamp.objects.filter(pk=name).update(value=value, updated_at=timezone.now()):
        VersionStamp.objects.bulk_create(
            [VersionStamp(name=name, value=value)], ignore_conflicts=True
        )


def bump(name: str) -> None:
    """Invalidate every process's copy once the current transaction commits."""
    transaction.on_commit(lambda: _store(name))
