"""Prometheus metrics of the backend layer, on the default registry served at ``/metrics``.

Collectors are module-level. Re-importing this module (Django autoreload, tests that reload
modules) would register the same names twice and raise, so each collector is looked up in the
registry first and reused when it is already there.
"""

from __future__ import annotations

from typing import Any, cast

from prometheus_client import REGISTRY, Counter, Gauge, Histogram

from conversations.llm.breaker import CircuitState

CIRCUIT_STATE_VALUES = {CircuitState.CLOSED: 0, CircuitState.HALF_OPEN: 1, CircuitState.OPEN: 2}

# Model calls take from tens of milliseconds (local, cached) to a minute (long generations).
LATENCY_BUCKETS = (0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0)


def _existing(name: str) -> Any:
    return REGISTRY._names_to_collectors.get(name)


def _histogram() -> Histogram:
    name = "actiondesk_llm_latency_seconds"
    found = _existing(name)
    if found is not None:
        return cast(Histogram, found)
    return Histogram(
        name, "Latency of successful model calls per backend.", ["backend"], buckets=LATENCY_BUCKETS
    )


def _counter() -> Counter:
    name = "actiondesk_llm_calls_total"
    found = _existing(name)
    if found is not None:
        return cast(Counter, found)
    return Counter(
        name,
        "Model calls per backend by outcome (success or the error kind).",
        ["backend", "outcome"],
    )


def _gauge() -> Gauge:
    name = "actiondesk_llm_circuit_state"
    found = _existing(name)
    if found is not None:
        return cast(Gauge, found)
    return Gauge(name, "Circuit state per backend: 0 closed, 1 half-open, 2 open.", ["backend"])


LLM_LATENCY = _histogram()
LLM_CALLS = _counter()
LLM_CIRCUIT_STATE = _gauge()


def call_observed(*, backend: str, outcome: str, latency_seconds: float | None = None) -> None:
    LLM_CALLS.labels(backend=backend, outcome=outcome).inc()
    if latency_seconds is not None:
        LLM_LATENCY.labels(backend=backend).observe(latency_seconds)


def circuit_state_set(*, backend: str, state: CircuitState) -> None:
    LLM_CIRCUIT_STATE.labels(backend=backend).set(CIRCUIT_STATE_VALUES[state])
