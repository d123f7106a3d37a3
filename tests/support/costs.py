"""Counting what a piece of work costs: SQL statements, transactions and savepoints on this
thread's database connection."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from django.db import connection


@dataclass
class SqlCost:
    statements: list[str] = field(default_factory=list)
    transactions: int = 0
    savepoints: int = 0

    def describe(self) -> str:
        return "\n".join(f"{n:3}  {s[:160]}" for n, s in enumerate(self.statements, 1))


@contextmanager
def sql_cost() -> Iterator[SqlCost]:
    """Statements run on this thread's connection (run async work with ``async_to_sync`` from
    a sync test: thread-sensitive steps then run on this thread). A statement outside any
    atomic block is a transaction of its own (autocommit); an atomic block that runs
    statements is one, counted when it commits or rolls back; ``SAVEPOINT``s are counted
    apart (and are not statements of the work)."""
    cost = SqlCost()
    dirty = [False]

    def wrapper(
        execute: Callable[..., Any], sql: str, params: Any, many: bool, context: Any
    ) -> Any:
        text = sql.strip()
        upper = text.upper()
        if "SAVEPOINT " in upper[:25]:
            cost.savepoints += upper.startswith("SAVEPOINT")
            return execute(sql, params, many, context)
        if upper.startswith(("BEGIN", "COMMIT", "ROLLBACK")):
            return execute(sql, params, many, context)  # SQLite's explicit transaction control
        cost.statements.append(text)
        if connection.in_atomic_block:
            dirty[0] = True
        else:
            cost.transactions += 1
        return execute(sql, params, many, context)

    commit, rollback = connection.commit, connection.rollback

    def counted(end: Callable[[], None]) -> Callable[[], None]:
        def run() -> None:
            if dirty[0]:
                cost.transactions += 1
                dirty[0] = False
            end()

        return run

    connection.commit = counted(commit)  # type: ignore[method-assign]
    connection.rollback = counted(rollback)  # type: ignore[method-assign]
    try:
        with connection.execute_wrapper(wrapper):
            yield cost
    finally:
        del connection.commit, connection.rollback  # back to the class's methods
