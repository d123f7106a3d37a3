"""Pure pieces of the LLM backend layer: circuit breaker, retry policy, pricing, data types."""

from __future__ import annotations

import random
from decimal import Decimal

import pytest

from conversations.llm.breaker import CircuitBreaker, CircuitState, OutcomeWindow
from conversations.llm.pricing import FREE, price_for, resolve_price
from conversations.llm.retry import RetryPolicy, parse_retry_after
from conversations.llm.types import LLMError, ToolCall, Usage


class FakeClock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


# Each row: the steps applied in order and the state expected after the last one.
# "ok"/"fail" = acquire a permit and report that outcome; "deny" = acquire must be refused;
# "+N" = advance the clock N seconds.
BREAKER_TABLE = [
    ("fewer failures than the threshold stay closed", ["fail", "fail"], CircuitState.CLOSED),
    ("threshold consecutive failures open", ["fail", "fail", "fail"], CircuitState.OPEN),
    ("a success resets the count", ["fail", "fail", "ok", "fail", "fail"], CircuitState.CLOSED),
    ("open refuses calls", ["fail", "fail", "fail", "deny", "+29", "deny"], CircuitState.OPEN),
    ("open reads half-open after the cooldown", ["fail"] * 3 + ["+30"], CircuitState.HALF_OPEN),
    ("a successful trial closes", ["fail"] * 3 + ["+30", "ok"], CircuitState.CLOSED),
    ("a failed trial reopens", ["fail"] * 3 + ["+30", "fail"], CircuitState.OPEN),
    ("reopened waits a full new cooldown", ["fail"] * 3 + ["+30", "fail", "+29", "deny"], "open"),
    ("after closing it takes the threshold again", ["fail"] * 3 + ["+30", "ok", "fail"], "closed"),
]


@pytest.mark.parametrize(
    ("steps", "expected"), [row[1:] for row in BREAKER_TABLE], ids=[row[0] for row in BREAKER_TABLE]
)
def test_breaker_transitions(steps: list[str], expected: str) -> None:
    clock = FakeClock()
    breaker = CircuitBreaker(failure_threshold=3, cooldown=30.0, clock=clock)
    for step in steps:
        if step.startswith("+"):
            clock.now += float(step[1:])
            continue
        permit = breaker.acquire()
        if step == "deny":
            assert permit is None, f"{step} in {steps}"
            continue
        assert permit is not None, f"{step} in {steps}"
        if step == "ok":
            breaker.record_success(permit)
        else:
            breaker.record_failure(permit)
    assert breaker.state == expected


def test_half_open_gives_exactly_one_trial_permit() -> None:
    clock = FakeClock()
    breaker = CircuitBreaker(failure_threshold=1, cooldown=10.0, clock=clock)
    breaker.record_failure(breaker.acquire() or pytest.fail("closed must admit"))
    clock.now += 10
    trial = breaker.acquire()
    assert trial is not None and trial.trial
    assert breaker.acquire() is None
    assert breaker.acquire() is None
    # An abandoned trial frees the slot for the next caller without deciding anything.
    breaker.release(trial)
    assert breaker.state == CircuitState.HALF_OPEN
    second = breaker.acquire()
    assert second is not None and second.trial


def test_late_outcome_from_before_opening_does_not_change_state() -> None:
    clock = FakeClock()
    breaker = CircuitBreaker(failure_threshold=1, cooldown=10.0, clock=clock)
    slow = breaker.acquire()
    fast = breaker.acquire()
    assert slow is not None and fast is not None
    breaker.record_failure(fast)
    assert breaker.state == CircuitState.OPEN
    breaker.record_success(slow)  # started while closed, finished after the circuit opened
    assert breaker.state == CircuitState.OPEN
    assert breaker.cooldown_remaining() == 10.0


def test_outcome_window_error_rate_forgets_old_calls() -> None:
    clock = FakeClock()
    window = OutcomeWindow(window=60.0, clock=clock)
    window.record(ok=False)
    clock.now += 30
    window.record(ok=True)
    window.record(ok=True)
    window.record(ok=False)
    assert window.snapshot() == (4, 0.5)
    clock.now += 31
    assert window.snapshot() == (3, pytest.approx(1 / 3))


def test_full_jitter_delays_stay_within_bounds_and_follow_the_rng() -> None:
    policy = RetryPolicy(max_retries=10, base=0.5, cap=4.0)
    error = LLMError("server_error")
    rng, replay = random.Random(42), random.Random(42)
    delays = [policy.delay(error, retries_done=n, rng=rng) for n in range(8)]
    for n, delay in enumerate(delays):
        bound = min(4.0, 0.5 * 2**n)
        assert 0 <= delay <= bound
        assert delay == replay.uniform(0, bound)
    assert [policy.backoff_bound(n) for n in range(5)] == [0.5, 1.0, 2.0, 4.0, 4.0]
    # Jitter, not a fixed schedule: the seeded delays are not all at the bound.
    assert any(delay < policy.backoff_bound(n) * 0.9 for n, delay in enumerate(delays))


def test_retry_after_replaces_jitter_and_is_capped() -> None:
    policy = RetryPolicy(retry_after_cap=20.0)
    rng = random.Random(1)
    assert policy.delay(LLMError("rate_limited", retry_after=3), retries_done=0, rng=rng) == 3
    assert policy.delay(LLMError("rate_limited", retry_after=600), retries_done=0, rng=rng) == 20


@pytest.mark.parametrize(
    ("kind", "retried"),
    [
        ("timeout", True),
        ("connection", True),
        ("rate_limited", True),
        ("server_error", True),
        ("bad_request", False),
        ("auth", False),
        ("invalid_response", False),
        ("circuit_open", False),
    ],
)
def test_only_transient_errors_are_retried(kind: str, retried: bool) -> None:
    policy = RetryPolicy(max_retries=2)
    assert policy.should_retry(LLMError(kind), retries_done=0) is retried
    assert policy.should_retry(LLMError(kind), retries_done=2) is False


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"retry-after": "7"}, 7.0),
        ({"retry-after": "1.5"}, 1.5),
        ({"retry-after-ms": "250", "retry-after": "9"}, 0.25),
        ({"retry-after": "Thu, 01 Jan 1970 00:01:40 GMT"}, 40.0),
        ({"retry-after": "soon"}, None),
        ({}, None),
    ],
)
def test_parse_retry_after(headers: dict[str, str], expected: float | None) -> None:
    assert parse_retry_after(headers, now=60.0) == expected


@pytest.mark.parametrize(
    ("model", "prompt", "completion"),
    [
        ("gpt-4o-mini", "0.00015", "0.0006"),
        ("gpt-4o-mini-2024-07-18", "0.00015", "0.0006"),
        ("gpt-4o-2024-08-06", "0.0025", "0.01"),
        ("openai/gpt-4o", "0.0025", "0.01"),
    ],
)
def test_price_table_knows_snapshots_and_prefixes(model: str, prompt: str, completion: str) -> None:
    price = price_for(model)
    assert (price.prompt_per_1k, price.completion_per_1k) == (Decimal(prompt), Decimal(completion))


def test_unknown_models_are_free_and_overrides_win() -> None:
    assert price_for("llama3.1:8b") == FREE
    assert FREE.cost(Usage(10_000, 10_000)) == 0
    price = resolve_price("gpt-4o", prompt_override=Decimal("0.001"))
    assert price.cost(Usage(2000, 1000)) == Decimal("0.002")
    assert price_for("gpt-4o-mini").cost(Usage(1000, 500)) == Decimal("0.00045")


def test_tool_call_arguments_must_be_a_json_object() -> None:
    call = ToolCall.parse(id="c1", name="lookup", raw_arguments='{"order_id": "A-1"}')
    assert call.arguments == {"order_id": "A-1"}
    assert ToolCall.parse(id="c2", name="ping", raw_arguments="").arguments == {}
    assert call.error == ""
    for raw in ('{"order_id": ', "[1, 2]", '"text"'):
        bad = ToolCall.parse(id="c3", name="lookup", raw_arguments=raw, backend="b")
        assert bad.arguments == {} and bad.raw_arguments == raw
        assert "lookup" in bad.error


def test_error_kinds_know_whether_they_are_transient() -> None:
    assert LLMError("timeout").transient
    assert not LLMError("auth").transient
    with pytest.raises(ValueError):
        LLMError("no_such_kind")
