"""Circuit breaker per backend, as a state machine over an injected clock and a state store
(SPEC §5).

closed --(``failure_threshold`` consecutive failed calls)--> open
open --(``cooldown`` elapsed, next ``acquire``)--> half_open, with exactly one trial permit
half_open --trial succeeds--> closed;  half_open --trial fails--> open with a fresh cooldown

A caller asks for a :class:`Permit` before calling and reports the outcome with it. Permits carry
the breaker's generation, so the late outcome of a call started before the circuit opened (or
closed) cannot flip the state it no longer describes.

The state (:class:`BreakerSnapshot`) lives in a :class:`BreakerStore`: process memory by default,
or a store every process shares (Redis, the database; ``conversations.llm_state``), so every
process obeys and shows the same circuit. A store runs a read-modify-write under its lock; the
hot path (a closed circuit without failures) is one read per call and no write.
"""

from __future__ import annotations

import contextlib
import threading
from collections import deque
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import asdict, dataclass, replace
from enum import StrEnum
from typing import Any, TypeVar

Clock = Callable[[], float]
T = TypeVar("T")


class CircuitState(StrEnum):
    CLOSED = "closed"
    HALF_OPEN = "half_open"
    OPEN = "open"


@dataclass(frozen=True)
class Permit:
    generation: int
    trial: bool = False
    # Failures the breaker had when the permit was given: a success with none to reset writes
    # nothing (the hot path of a shared store).
    failures: int = 0


@dataclass(frozen=True)
class BreakerSnapshot:
    """One backend's circuit as stored. Times are on the breaker's clock (wall-clock seconds
    for a shared store, so every process reads the same cooldown)."""

    state: str = CircuitState.CLOSED.value
    failures: int = 0
    opened_at: float = 0.0
    generation: int = 0
    trial_since: float | None = None  # a trial call is in flight since then
    last_error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Any) -> BreakerSnapshot:
        if not isinstance(data, dict):
            return cls()
        known = {key: data[key] for key in cls.__dataclass_fields__ if key in data}
        try:
            return cls(**known)
        except TypeError:
            return cls()


class BreakerStore:
    """Process memory: the default, and the base of the shared stores.

    ``load`` and ``save`` move one snapshot; ``locked`` makes a read-modify-write exclusive;
    ``run`` calls a breaker step from async code (inline here; a database store hands it to a
    worker thread).
    """

    shared = False

    def __init__(self) -> None:
        self._data: dict[str, BreakerSnapshot] = {}
        self._lock = threading.RLock()

    def load(self, name: str) -> BreakerSnapshot:
        return self._data.get(name) or BreakerSnapshot()

    def peek(self, name: str) -> BreakerSnapshot | None:
        """A snapshot known without I/O (None: ask ``load`` through ``run``)."""
        return self.load(name)

    def save(self, name: str, snapshot: BreakerSnapshot) -> None:
        self._data[name] = snapshot

    @contextlib.contextmanager
    def locked(self, name: str) -> Iterator[None]:
        with self._lock:
            yield

    def run(self, step: Callable[[], T]) -> Awaitable[T]:
        return _done(step())


async def _done[T](value: T) -> T:
    return value


class CircuitBreaker:
    def __init__(
        self,
        *,
        failure_threshold: int,
        cooldown: float,
        clock: Clock,
        store: BreakerStore | None = None,
        name: str = "default",
        trial_timeout: float = 120.0,
    ) -> None:
        if failure_threshold < 1:
            raise ValueError("failure_threshold must be at least 1")
        self.failure_threshold = failure_threshold
        self.cooldown = cooldown
        self.name = name
        self.store = store if store is not None else BreakerStore()
        self._clock = clock
        # A trial whose process died never reports: after this long another one may start.
        self.trial_timeout = trial_timeout
        # The last snapshot this breaker read or wrote, for metrics and logs without I/O.
        self._last = BreakerSnapshot()

    def snapshot(self) -> BreakerSnapshot:
        self._last = self.store.load(self.name)
        return self._last

    def _save(self, snapshot: BreakerSnapshot) -> None:
        self.store.save(self.name, snapshot)
        self._last = snapshot

    def known_state(self) -> CircuitState:
        """The state as last seen by this breaker (no store read)."""
        return self._state_of(self._last)

    def _state_of(self, snapshot: BreakerSnapshot) -> CircuitState:
        state = CircuitState(snapshot.state)
        if state is CircuitState.OPEN and self._cooldown_over(snapshot):
            return CircuitState.HALF_OPEN
        return state

    @property
    def state(self) -> CircuitState:
        """The state a caller would meet now: an open circuit past its cooldown reads half_open."""
        return self._state_of(self.snapshot())

    @property
    def consecutive_failures(self) -> int:
        return self.snapshot().failures

    @property
    def last_error(self) -> str | None:
        return self.snapshot().last_error

    def cooldown_remaining(self, snapshot: BreakerSnapshot | None = None) -> float:
        snapshot = snapshot or self.snapshot()
        if snapshot.state != CircuitState.OPEN:
            return 0.0
        return max(0.0, snapshot.opened_at + self.cooldown - self._clock())

    def fast_permit(self) -> Permit | None:
        """A permit from what the store knows without I/O, when that is a closed circuit."""
        snapshot = self.store.peek(self.name)
        if snapshot is not None and snapshot.state == CircuitState.CLOSED:
            self._last = snapshot
            return Permit(snapshot.generation, failures=snapshot.failures)
        return None

    def acquire(self) -> Permit | None:
        """A permit to call, or None when the circuit refuses the call."""
        snapshot = self.snapshot()
        if snapshot.state == CircuitState.CLOSED:
            return Permit(snapshot.generation, failures=snapshot.failures)
        with self.store.locked(self.name):
            snapshot = self.snapshot()
            if snapshot.state == CircuitState.CLOSED:
                return Permit(snapshot.generation, failures=snapshot.failures)
            if snapshot.state == CircuitState.OPEN and not self._cooldown_over(snapshot):
                return None
            now = self._clock()
            if snapshot.trial_since is not None and now - snapshot.trial_since < self.trial_timeout:
                return None
            self._save(replace(snapshot, state=CircuitState.HALF_OPEN.value, trial_since=now))
            return Permit(snapshot.generation, trial=True, failures=snapshot.failures)

    def record_success(self, permit: Permit) -> None:
        if not permit.trial and not permit.failures:
            return
        with self.store.locked(self.name):
            snapshot = self.snapshot()
            if permit.generation != snapshot.generation:
                return
            if permit.trial:
                snapshot = replace(
                    snapshot,
                    state=CircuitState.CLOSED.value,
                    generation=snapshot.generation + 1,
                    trial_since=None,
                )
            self._save(replace(snapshot, failures=0))

    def record_failure(self, permit: Permit, error: str | None = None) -> None:
        with self.store.locked(self.name):
            snapshot = self.snapshot()
            if error is not None:
                snapshot = replace(snapshot, last_error=error)
            if permit.generation != snapshot.generation:
                self._save(snapshot)
                return
            snapshot = replace(snapshot, failures=snapshot.failures + 1)
            if permit.trial or (
                snapshot.state == CircuitState.CLOSED
                and snapshot.failures >= self.failure_threshold
            ):
                snapshot = replace(
                    snapshot,
                    state=CircuitState.OPEN.value,
                    opened_at=self._clock(),
                    generation=snapshot.generation + 1,
                    trial_since=None,
                )
            self._save(snapshot)

    def release(self, permit: Permit) -> None:
        """The call ended without an outcome (cancelled, abandoned stream): free the trial slot."""
        if not permit.trial:
            return
        with self.store.locked(self.name):
            snapshot = self.snapshot()
            if permit.generation == snapshot.generation and snapshot.trial_since is not None:
                self._save(replace(snapshot, trial_since=None))

    def _cooldown_over(self, snapshot: BreakerSnapshot) -> bool:
        return self._clock() - snapshot.opened_at >= self.cooldown


class OutcomeWindow:
    """Outcomes of recent calls, for the error rate on the provider health page (SPEC §10)."""

    def __init__(self, *, window: float, clock: Clock, max_events: int = 10_000) -> None:
        self.window = window
        self._clock = clock
        self._events: deque[tuple[float, bool]] = deque(maxlen=max_events)

    def record(self, *, ok: bool) -> None:
        self._events.append((self._clock(), ok))

    def snapshot(self) -> tuple[int, float]:
        """(calls, error rate) over the window."""
        horizon = self._clock() - self.window
        while self._events and self._events[0][0] < horizon:
            self._events.popleft()
        calls = len(self._events)
        if not calls:
            return 0, 0.0
        failed = sum(1 for _, ok in self._events if not ok)
        return calls, failed / calls
