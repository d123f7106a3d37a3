"""Circuit breaker per backend, as a pure state machine over an injected clock (SPEC §5).

closed --(``failure_threshold`` consecutive failed calls)--> open
open --(``cooldown`` elapsed, next ``acquire``)--> half_open, with exactly one trial permit
half_open --trial succeeds--> closed;  half_open --trial fails--> open with a fresh cooldown

A caller asks for a :class:`Permit` before calling and reports the outcome with it. Permits carry
the breaker's generation, so the late outcome of a call started before the circuit opened (or
closed) cannot flip the state it no longer describes.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

Clock = Callable[[], float]


class CircuitState(StrEnum):
    CLOSED = "closed"
    HALF_OPEN = "half_open"
    OPEN = "open"


@dataclass(frozen=True)
class Permit:
    generation: int
    trial: bool = False


class CircuitBreaker:
    def __init__(self, *, failure_threshold: int, cooldown: float, clock: Clock) -> None:
        if failure_threshold < 1:
            raise ValueError("failure_threshold must be at least 1")
        self.failure_threshold = failure_threshold
        self.cooldown = cooldown
        self._clock = clock
        self._state = CircuitState.CLOSED
        self._failures = 0
        self._opened_at = 0.0
        self._generation = 0
        self._trial_in_flight = False
        # The registry is used from the event loop, but sync code may reach it from other
        # threads (async_to_sync); the lock keeps a transition atomic for them.
        self._lock = threading.Lock()

    @property
    def state(self) -> CircuitState:
        """The state a caller would meet now: an open circuit past its cooldown reads half_open."""
        with self._lock:
            if self._state is CircuitState.OPEN and self._cooldown_over():
                return CircuitState.HALF_OPEN
            return self._state

    @property
    def consecutive_failures(self) -> int:
        return self._failures

    def cooldown_remaining(self) -> float:
        with self._lock:
            if self._state is not CircuitState.OPEN:
                return 0.0
            return max(0.0, self._opened_at + self.cooldown - self._clock())

    def acquire(self) -> Permit | None:
        """A permit to call, or None when the circuit refuses the call."""
        with self._lock:
            if self._state is CircuitState.CLOSED:
                return Permit(self._generation)
            if self._state is CircuitState.OPEN:
                if not self._cooldown_over():
                    return None
                self._state = CircuitState.HALF_OPEN
            if self._trial_in_flight:
                return None
            self._trial_in_flight = True
            return Permit(self._generation, trial=True)

    def record_success(self, permit: Permit) -> None:
        with self._lock:
            if permit.generation != self._generation:
                return
            if permit.trial:
                self._trial_in_flight = False
                self._state = CircuitState.CLOSED
                self._generation += 1
            self._failures = 0

    def record_failure(self, permit: Permit) -> None:
        with self._lock:
            if permit.generation != self._generation:
                return
            self._failures += 1
            if permit.trial or (
                self._state is CircuitState.CLOSED and self._failures >= self.failure_threshold
            ):
                self._trial_in_flight = False
                self._state = CircuitState.OPEN
                self._opened_at = self._clock()
                self._generation += 1

    def release(self, permit: Permit) -> None:
        """The call ended without an outcome (cancelled, abandoned stream): free the trial slot."""
        with self._lock:
            if permit.trial and permit.generation == self._generation:
                self._trial_in_flight = False

    def _cooldown_over(self) -> bool:
        return self._clock() - self._opened_at >= self.cooldown


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
