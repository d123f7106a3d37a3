"""The test database shared with a subprocess (a live Daphne, a second Django process).

- PostgreSQL: the other process connects to the test database (``test_<name>``, per xdist worker).
- SQLite: the test database lives in this process's memory, which no other process can open.
  While the block runs it is copied to a file and *both* processes use that file; afterwards
  this process goes back to its in-memory database.

The settings only read a PostgreSQL ``DATABASE_URL``, so the other process points
``DATABASES["default"]["NAME"]`` at the shared database before Django starts
(:data:`SETTINGS_PRELUDE`).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path

from django.db import connection
from pytest_django import DjangoDbBlocker

# Run first in the other process, with ACTIONDESK_SHARED_DB set to what shared_database yields.
SETTINGS_PRELUDE = """\
import os
from config.settings import test as settings_module
settings_module.DATABASES["default"]["NAME"] = os.environ["ACTIONDESK_SHARED_DB"]
"""


def is_sqlite() -> bool:
    return bool(connection.vendor == "sqlite")


@contextmanager
def shared_database(directory: Path, blocker: DjangoDbBlocker | None = None) -> Iterator[str]:
    """The name the other process should use for the test database, shared with this one.
    ``blocker`` lets a package-scoped fixture reach the database outside a test."""
    unblock = blocker.unblock if blocker is not None else nullcontext
    if not is_sqlite():
        yield str(connection.settings_dict["NAME"])
        return
    path = directory / "shared.sqlite3"
    with unblock():
        connection.ensure_connection()
        memory = connection.connection
        target = sqlite3.connect(path)
        try:
            memory.backup(target)
        finally:
            target.close()
        in_memory_name = connection.settings_dict["NAME"]
        # Park the in-memory connection (closing it would drop the database) and use the file;
        # pytest-django's flush after each test then empties the file.
        connection.connection = None
        connection.settings_dict["NAME"] = str(path)
    try:
        yield str(path)
    finally:
        with unblock():
            connection.close()
            connection.settings_dict["NAME"] = in_memory_name
            connection.connection = memory
