"""The backend registry over real HTTP: retries, timeouts, circuit breaker, fallback, streaming
failures, metrics and logs, and building it from settings."""

from __future__ import annotations

import asyncio
import importlib
import random
import uuid
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from decimal import Decimal
from types import SimpleNamespace
from typing import Any

import pytest
import structlog
from prometheus_client import REGISTRY

from conversations.llm import (
    UNAVAILABLE_MESSAGE,
    Backend,
    BackendConfig,
    BackendRegistry,
    ChatMessage,
    Completion,
    Done,
    ErrorKind,
    LLMConfigurationError,
    LLMError,
    StreamEvent,
    TokenDelta,
    ToolSpec,
    Usage,
    registry_from_settings,
)
from conversations.llm import metrics as llm_metrics
from conversations.llm import registry as llm_registry
from tests.support.openai_server import (
    OpenAITestServer,
    error_reply,
    stream_reply,
    text_reply,
    unused_url,
)

HELLO = [ChatMessage("user", "hello")]


class FakeClock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class RecordingSleep:
    """Stands in for asyncio.sleep: remembers the delays and returns at once."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, delay: float) -> None:
        self.delays.append(delay)


class StaticBackend(Backend):
    """A backend without a network, for kinds registered after the registry (like offline)."""

    def __init__(self, config: BackendConfig, text: str = "offline answer") -> None:
        self.name, self.kind, self.model, self.text = config.name, config.kind, "static", text

    async def complete(
        self,
        messages: Sequence[ChatMessage],
        *,
        tools: Sequence[ToolSpec] = (),
        temperature: float | None = None,
        model: str | None = None,
        time_limit: float | None = None,
    ) -> Completion:
        return Completion(self.text, (), Usage(), self.model, self.name, 0.1, Decimal(0), "stop")

    async def stream(
        self,
        messages: Sequence[ChatMessage],
        *,
        tools: Sequence[ToolSpec] = (),
        temperature: float | None = None,
        model: str | None = None,
        time_limit: float | None = None,
    ) -> AsyncIterator[StreamEvent]:
        yield TokenDelta(self.text)
        yield Done(await self.complete(messages))


@pytest.fixture
def server() -> Iterator[OpenAITestServer]:
    with OpenAITestServer() as running:
        yield running


@pytest.fixture
def second_server() -> Iterator[OpenAITestServer]:
    with OpenAITestServer() as running:
        yield running


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def sleep() -> RecordingSleep:
    return RecordingSleep()


@pytest.fixture
async def make_registry(
    clock: FakeClock, sleep: RecordingSleep
) -> AsyncIterator[Callable[..., BackendRegistry]]:
    """Builds registries with the fake clock, recording sleep and a seeded rng; closes them."""
    built: list[BackendRegistry] = []

    def make(*configs: BackendConfig, **kwargs: Any) -> BackendRegistry:
        kwargs.setdefault("clock", clock)
        kwargs.setdefault("sleep", sleep)
        kwargs.setdefault("rng", random.Random(7))
        registry = BackendRegistry(configs, **kwargs)
        built.append(registry)
        return registry

    yield make
    for registry in built:
        await registry.aclose()


def openai_config(url: str, **overrides: Any) -> BackendConfig:
    # Unique names keep Prometheus series of different tests apart.
    fields: dict[str, Any] = {
        "name": f"b-{uuid.uuid4().hex[:8]}",
        "kind": "openai",
        "model": "gpt-4o-mini",
        "base_url": url,
        "timeout": 5.0,
        "max_retries": 2,
    }
    fields.update(overrides)
    return BackendConfig(**fields)


async def fails(call: Any) -> LLMError:
    with pytest.raises(LLMError) as caught:
        await call
    return caught.value


# -- retries and timeouts -------------------------------------------------------------------


@pytest.fixture
def _uncached_registry_logger(monkeypatch: pytest.MonkeyPatch) -> None:
    """An earlier test may have cached the registry's logger (cache_logger_on_first_use), which
    capture_logs cannot see; a fresh lazy proxy follows the capturing configuration."""
    from conversations.llm import registry as registry_module

    monkeypatch.setattr(registry_module, "logger", structlog.get_logger(registry_module.__name__))


async def test_timeout_is_retried_then_fails_with_kind_timeout(
    server: OpenAITestServer, make_registry: Callable[..., BackendRegistry], sleep: RecordingSleep
) -> None:
    config = openai_config(server.url, timeout=0.2, max_retries=1)
    registry = make_registry(config)
    server.enqueue(text_reply("late", delay=2.0), text_reply("late again", delay=2.0))

    error = await fails(registry.complete(HELLO))

    assert error.kind == ErrorKind.ALL_BACKENDS_FAILED
    (cause,) = error.causes
    assert (cause.kind, cause.transient, cause.backend) == (ErrorKind.TIMEOUT, True, config.name)
    assert len(server.chat_requests) == 2
    assert len(sleep.delays) == 1 and 0 <= sleep.delays[0] <= 0.5


async def test_rate_limit_waits_for_retry_after_then_succeeds(
    server: OpenAITestServer, make_registry: Callable[..., BackendRegistry], sleep: RecordingSleep
) -> None:
    registry = make_registry(openai_config(server.url))
    server.enqueue(error_reply(429, retry_after=3), text_reply("fine now"))

    completion = await registry.complete(HELLO)

    assert (completion.text, completion.attempts) == ("fine now", 2)
    assert sleep.delays == [3.0]
    assert len(server.chat_requests) == 2


async def test_retry_after_is_capped(
    server: OpenAITestServer, make_registry: Callable[..., BackendRegistry], sleep: RecordingSleep
) -> None:
    registry = make_registry(openai_config(server.url), retry_after_cap=5.0)
    server.enqueue(error_reply(429, retry_after=3600), text_reply("ok"))
    await registry.complete(HELLO)
    assert sleep.delays == [5.0]


async def test_server_error_is_retried_with_jitter_then_succeeds(
    server: OpenAITestServer, make_registry: Callable[..., BackendRegistry], sleep: RecordingSleep
) -> None:
    registry = make_registry(openai_config(server.url))
    server.enqueue(error_reply(500), text_reply("recovered"))

    completion = await registry.complete(HELLO)

    assert (completion.text, completion.attempts) == ("recovered", 2)
    assert sleep.delays == [random.Random(7).uniform(0, 0.5)]


async def test_backoff_delays_follow_full_jitter_for_a_seeded_rng(
    server: OpenAITestServer, make_registry: Callable[..., BackendRegistry], sleep: RecordingSleep
) -> None:
    registry = make_registry(
        openai_config(server.url, max_retries=4),
        rng=random.Random(2024),
        retry_base=0.5,
        retry_cap=2.0,
    )
    server.enqueue(*[error_reply(503)] * 4, text_reply("finally"))

    completion = await registry.complete(HELLO)

    assert completion.attempts == 5
    bounds = [0.5, 1.0, 2.0, 2.0]
    expected_rng = random.Random(2024)
    assert sleep.delays == [expected_rng.uniform(0, bound) for bound in bounds]
    assert all(0 <= delay <= bound for delay, bound in zip(sleep.delays, bounds, strict=True))


@pytest.mark.parametrize(
    ("status", "kind"), [(400, "bad_request"), (401, "auth"), (422, "bad_request")]
)
async def test_client_errors_are_not_retried(
    server: OpenAITestServer,
    make_registry: Callable[..., BackendRegistry],
    sleep: RecordingSleep,
    status: int,
    kind: str,
) -> None:
    registry = make_registry(openai_config(server.url, max_retries=3))
    server.enqueue(error_reply(status), text_reply("must not be reached"))

    error = await fails(registry.complete(HELLO))

    assert [cause.kind for cause in error.causes] == [kind]
    assert len(server.chat_requests) == 1
    assert sleep.delays == []


async def test_invalid_tool_arguments_are_not_retried_nor_a_breaker_failure(
    server: OpenAITestServer, make_registry: Callable[..., BackendRegistry]
) -> None:
    from tests.support.openai_server import tool_call, tool_calls_reply

    config = openai_config(server.url, max_retries=3, breaker_failures=1)
    registry = make_registry(config)
    server.enqueue(tool_calls_reply(tool_call("lookup_order", "{broken")), text_reply("no"))
    completion = await registry.complete(HELLO)
    assert completion.tool_calls[0].error
    assert len(server.chat_requests) == 1
    (health,) = registry.health()
    assert (health.state, health.consecutive_failures) == ("closed", 0)


# -- circuit breaker ------------------------------------------------------------------------


async def test_breaker_opens_after_consecutive_failures_and_stops_calling(
    server: OpenAITestServer, make_registry: Callable[..., BackendRegistry]
) -> None:
    config = openai_config(server.url, max_retries=1, breaker_failures=2, breaker_cooldown=30)
    registry = make_registry(config)
    server.enqueue(*[error_reply(500)] * 4)

    for _ in range(2):
        assert (await fails(registry.complete(HELLO))).causes[0].kind == ErrorKind.SERVER_ERROR
    assert len(server.chat_requests) == 4  # two calls, each with one retry
    refused = await fails(registry.complete(HELLO))

    assert refused.causes[0].kind == ErrorKind.CIRCUIT_OPEN
    assert len(server.chat_requests) == 4
    (health,) = registry.health()
    assert (health.state, health.cooldown_remaining, health.consecutive_failures) == ("open", 30, 2)
    assert health.last_error is not None and health.last_error.startswith("server_error")
    assert health.error_rate == 1.0 and health.recent_calls == 2


async def test_half_open_trial_success_closes_the_circuit(
    server: OpenAITestServer, make_registry: Callable[..., BackendRegistry], clock: FakeClock
) -> None:
    config = openai_config(server.url, max_retries=0, breaker_failures=1, breaker_cooldown=30)
    registry = make_registry(config)
    server.enqueue(error_reply(500))
    await fails(registry.complete(HELLO))

    clock.now += 29.5
    assert (await fails(registry.complete(HELLO))).causes[0].kind == ErrorKind.CIRCUIT_OPEN
    assert registry.health()[0].cooldown_remaining == pytest.approx(0.5)
    clock.now += 0.5
    assert registry.health()[0].state == "half_open"
    server.enqueue(text_reply("back"))

    assert (await registry.complete(HELLO)).text == "back"
    assert registry.health()[0].state == "closed"
    assert len(server.chat_requests) == 2


async def test_half_open_trial_failure_reopens_with_a_new_cooldown(
    server: OpenAITestServer, make_registry: Callable[..., BackendRegistry], clock: FakeClock
) -> None:
    config = openai_config(server.url, max_retries=2, breaker_failures=1, breaker_cooldown=30)
    registry = make_registry(config)
    server.enqueue(error_reply(400))
    await fails(registry.complete(HELLO))
    clock.now += 30
    server.enqueue(error_reply(401))

    await fails(registry.complete(HELLO))

    (health,) = registry.health()
    assert (health.state, health.cooldown_remaining) == ("open", 30)
    assert len(server.chat_requests) == 2
    clock.now += 10
    assert (await fails(registry.complete(HELLO))).causes[0].kind == ErrorKind.CIRCUIT_OPEN
    assert len(server.chat_requests) == 2


async def test_half_open_lets_one_of_many_concurrent_callers_try(
    server: OpenAITestServer, make_registry: Callable[..., BackendRegistry], clock: FakeClock
) -> None:
    config = openai_config(server.url, max_retries=0, breaker_failures=1, breaker_cooldown=30)
    registry = make_registry(config)
    server.enqueue(error_reply(500))
    await fails(registry.complete(HELLO))
    clock.now += 30
    server.enqueue(text_reply("trial answer", delay=0.2))

    results = await asyncio.gather(
        *(registry.complete(HELLO) for _ in range(4)), return_exceptions=True
    )

    answers = [r for r in results if isinstance(r, Completion)]
    refused = [r for r in results if isinstance(r, LLMError)]
    assert [a.text for a in answers] == ["trial answer"]
    assert [r.causes[0].kind for r in refused] == [ErrorKind.CIRCUIT_OPEN] * 3
    assert len(server.chat_requests) == 2
    assert registry.health()[0].state == "closed"


# -- fallback -------------------------------------------------------------------------------


async def test_falls_back_when_the_primary_refuses_connections(
    second_server: OpenAITestServer,
    make_registry: Callable[..., BackendRegistry],
    sleep: RecordingSleep,
) -> None:
    primary = openai_config(unused_url(), name="primary", max_retries=1)
    secondary = openai_config(second_server.url, name="secondary")
    registry = make_registry(primary, secondary, fallback=["secondary"])
    second_server.enqueue(text_reply("from the fallback"))

    completion = await registry.complete(HELLO)

    assert (completion.text, completion.backend, completion.attempts) == (
        "from the fallback",
        "secondary",
        1,
    )
    assert len(sleep.delays) == 1  # the primary's one retry
    primary_health = registry.health()[0]
    assert primary_health.last_error is not None
    assert primary_health.last_error.startswith("connection")


async def test_open_circuit_goes_straight_to_the_fallback(
    server: OpenAITestServer,
    second_server: OpenAITestServer,
    make_registry: Callable[..., BackendRegistry],
    sleep: RecordingSleep,
) -> None:
    primary = openai_config(server.url, name="primary", max_retries=0, breaker_failures=1)
    registry = make_registry(
        primary, openai_config(second_server.url, name="spare"), fallback=["spare"]
    )
    server.enqueue(error_reply(503))
    second_server.enqueue(text_reply("spare 1"), text_reply("spare 2"))

    assert (await registry.complete(HELLO)).backend == "spare"
    assert (await registry.complete(HELLO)).text == "spare 2"

    assert len(server.chat_requests) == 1
    assert registry.health()[0].state == "open"
    assert sleep.delays == []


async def test_named_backend_is_tried_first(
    server: OpenAITestServer,
    second_server: OpenAITestServer,
    make_registry: Callable[..., BackendRegistry],
) -> None:
    registry = make_registry(
        openai_config(server.url, name="main"),
        openai_config(second_server.url, name="cheap"),
        fallback=["cheap"],
    )
    second_server.enqueue(text_reply("cheap answer"))
    assert (await registry.complete(HELLO, backend="cheap")).backend == "cheap"
    assert server.chat_requests == []
    with pytest.raises(LLMConfigurationError, match="unknown backend 'nope'"):
        await registry.complete(HELLO, backend="nope")


@pytest.mark.usefixtures("_uncached_registry_logger")
async def test_all_backends_down_gives_a_user_safe_error_with_causes(
    make_registry: Callable[..., BackendRegistry],
) -> None:
    first = openai_config(unused_url(), name="first", max_retries=0)
    second = openai_config(unused_url(), name="second", max_retries=0)
    registry = make_registry(first, second, fallback=["second"])

    with structlog.testing.capture_logs() as logs:
        error = await fails(registry.complete(HELLO))

    assert error.kind == ErrorKind.ALL_BACKENDS_FAILED
    assert str(error) == UNAVAILABLE_MESSAGE == error.user_message
    assert "127.0.0.1" not in str(error)
    assert [(c.backend, c.kind) for c in error.causes] == [
        ("first", ErrorKind.CONNECTION),
        ("second", ErrorKind.CONNECTION),
    ]
    failed = [log for log in logs if log["event"] == "llm_all_backends_failed"]
    assert failed and failed[0]["causes"] == ["first: connection", "second: connection"]


# -- streaming ------------------------------------------------------------------------------


async def collect(events: AsyncIterator[StreamEvent]) -> list[StreamEvent]:
    return [event async for event in events]


async def test_stream_retries_a_failure_before_the_first_token(
    server: OpenAITestServer, make_registry: Callable[..., BackendRegistry], sleep: RecordingSleep
) -> None:
    registry = make_registry(openai_config(server.url))
    server.enqueue(error_reply(503, retry_after=1), stream_reply(["Hi", " there"]))

    events = await collect(registry.stream(HELLO))

    assert [e.text for e in events if isinstance(e, TokenDelta)] == ["Hi", " there"]
    done = events[-1]
    assert isinstance(done, Done) and done.completion.attempts == 2
    assert sleep.delays == [1.0]


async def test_stream_falls_back_before_the_first_token(
    second_server: OpenAITestServer, make_registry: Callable[..., BackendRegistry]
) -> None:
    primary = openai_config(unused_url(), name="down", max_retries=0)
    registry = make_registry(primary, openai_config(second_server.url, name="up"), fallback=["up"])
    second_server.enqueue(stream_reply(["Fallback ", "text"]))

    events = await collect(registry.stream(HELLO))

    assert "".join(e.text for e in events if isinstance(e, TokenDelta)) == "Fallback text"
    assert isinstance(events[-1], Done) and events[-1].completion.backend == "up"


@pytest.mark.parametrize("failure", ["disconnect", "error_event"])
async def test_stream_failure_after_tokens_is_raised_not_retried(
    server: OpenAITestServer,
    second_server: OpenAITestServer,
    make_registry: Callable[..., BackendRegistry],
    sleep: RecordingSleep,
    failure: str,
) -> None:
    primary = openai_config(server.url, name="main", max_retries=3)
    registry = make_registry(
        primary, openai_config(second_server.url, name="spare"), fallback=["spare"]
    )
    server.enqueue(
        stream_reply(["one ", "two ", "three"], fail_after=2, failure=failure),
        stream_reply(["duplicate"]),
    )
    second_server.enqueue(stream_reply(["duplicate"]))
    seen: list[str] = []

    with pytest.raises(LLMError) as caught:
        async for event in registry.stream(HELLO):
            if isinstance(event, TokenDelta):
                seen.append(event.text)

    assert seen == ["one ", "two "]
    assert caught.value.kind in (ErrorKind.CONNECTION, ErrorKind.SERVER_ERROR)
    assert caught.value.backend == "main"
    assert len(server.chat_requests) == 1
    assert second_server.chat_requests == []
    assert sleep.delays == []
    assert registry.health()[0].last_error is not None


async def test_cancelled_call_frees_the_half_open_trial(
    server: OpenAITestServer, make_registry: Callable[..., BackendRegistry], clock: FakeClock
) -> None:
    config = openai_config(server.url, max_retries=0, breaker_failures=1, breaker_cooldown=5)
    registry = make_registry(config)
    server.enqueue(error_reply(500))
    await fails(registry.complete(HELLO))
    clock.now += 5
    server.enqueue(text_reply("too slow", delay=1.0), text_reply("second trial"))

    with pytest.raises(TimeoutError):
        await asyncio.wait_for(registry.complete(HELLO), timeout=0.1)

    # The cancelled trial decided nothing: the next caller gets to try, and closes the circuit.
    assert (await registry.complete(HELLO)).text == "second trial"
    assert registry.health()[0].state == "closed"


async def test_abandoned_stream_frees_the_half_open_trial(
    server: OpenAITestServer, make_registry: Callable[..., BackendRegistry], clock: FakeClock
) -> None:
    config = openai_config(server.url, max_retries=0, breaker_failures=1, breaker_cooldown=5)
    registry = make_registry(config)
    server.enqueue(error_reply(500))
    await fails(registry.complete(HELLO))
    clock.now += 5
    server.enqueue(stream_reply(["a", "b", "c"]), text_reply("second trial"))

    events = registry.stream(HELLO)
    first = await anext(aiter(events))
    assert first == TokenDelta("a")
    await events.aclose()  # type: ignore[attr-defined]

    assert (await registry.complete(HELLO)).text == "second trial"
    assert registry.health()[0].state == "closed"


# -- metrics and logs -----------------------------------------------------------------------


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


@pytest.mark.usefixtures("_uncached_registry_logger")
async def test_calls_emit_logs_and_prometheus_metrics(
    server: OpenAITestServer, make_registry: Callable[..., BackendRegistry]
) -> None:
    config = openai_config(server.url, max_retries=0, breaker_failures=1)
    registry = make_registry(config)
    name = config.name
    server.enqueue(text_reply("ok", prompt_tokens=12, completion_tokens=3), error_reply(500))

    with structlog.testing.capture_logs() as logs:
        await registry.complete(HELLO)
        await fails(registry.complete(HELLO))
        await fails(registry.complete(HELLO))

    finished = [log for log in logs if log["event"] == "llm_call_finished"]
    failed = [log for log in logs if log["event"] == "llm_call_failed"]
    assert len(finished) == 1
    assert finished[0]["backend"] == name
    assert finished[0]["model"] == "gpt-4o-mini"
    assert (finished[0]["prompt_tokens"], finished[0]["completion_tokens"]) == (12, 3)
    assert finished[0]["attempts"] == 1 and finished[0]["latency_ms"] > 0
    assert [log["error_kind"] for log in failed] == ["server_error", "circuit_open"]
    assert failed[0]["log_level"] == "warning"
    assert any(log["event"] == "llm_circuit_changed" for log in logs)

    assert sample("actiondesk_llm_calls_total", backend=name, outcome="success") == 1
    assert sample("actiondesk_llm_calls_total", backend=name, outcome="server_error") == 1
    assert sample("actiondesk_llm_calls_total", backend=name, outcome="circuit_open") == 1
    assert sample("actiondesk_llm_latency_seconds_count", backend=name) == 1
    assert sample("actiondesk_llm_circuit_state", backend=name) == 2


def test_metrics_module_survives_reimport() -> None:
    before = llm_metrics.LLM_CALLS
    reloaded = importlib.reload(llm_metrics)
    assert reloaded.LLM_CALLS is before
    assert reloaded.LLM_LATENCY is REGISTRY._names_to_collectors["actiondesk_llm_latency_seconds"]


async def test_listeners_receive_one_report_per_backend_call(
    make_registry: Callable[..., BackendRegistry], second_server: OpenAITestServer
) -> None:
    reports: list[Any] = []
    registry = make_registry(
        openai_config(unused_url(), name="down", max_retries=0),
        openai_config(second_server.url, name="up"),
        fallback=["up"],
        listeners=[reports.append],
    )
    second_server.enqueue(text_reply("hi", prompt_tokens=5, completion_tokens=1))
    await registry.complete(HELLO)
    assert [(r.backend, r.outcome, r.usage.total_tokens) for r in reports] == [
        ("down", "connection", 0),
        ("up", "success", 6),
    ]


# -- construction ---------------------------------------------------------------------------


@pytest.fixture
def no_default_kinds(monkeypatch: pytest.MonkeyPatch) -> None:
    """Hides kinds other modules registered globally (the offline backend) from this test."""
    monkeypatch.setattr(llm_registry, "_DEFAULT_FACTORIES", {})


@pytest.mark.usefixtures("no_default_kinds")
def test_unknown_kind_is_refused_at_construction() -> None:
    with pytest.raises(LLMConfigurationError, match="unknown kind 'offline'"):
        BackendRegistry([BackendConfig(name="offline", kind="offline")])
    with pytest.raises(LLMConfigurationError, match="fallback 'spare' is not a configured"):
        BackendRegistry([BackendConfig(name="a", kind="openai")], fallback=["spare"])
    with pytest.raises(LLMConfigurationError, match="two backends"):
        BackendRegistry([BackendConfig(name="a", kind="openai")] * 2)


async def test_a_crashing_backend_is_contained_and_falls_back(
    make_registry: Callable[..., BackendRegistry],
) -> None:
    class Broken(StaticBackend):
        async def complete(self, *args: Any, **kwargs: Any) -> Completion:
            raise KeyError("bug")

    registry = make_registry(
        BackendConfig(name="broken", kind="broken", max_retries=3),
        BackendConfig(name="static", kind="static"),
        fallback=["static"],
        factories={"broken": Broken, "static": StaticBackend},
    )
    completion = await registry.complete(HELLO)
    assert completion.backend == "static"
    assert registry.health()[0].last_error == "internal: KeyError: 'bug'"


async def test_registry_from_settings_builds_primary_and_lazy_fallback(
    server: OpenAITestServer, no_default_kinds: None
) -> None:
    settings = SimpleNamespace(
        LLM_BACKEND="openai",
        LLM_BASE_URL=server.url,
        LLM_API_KEY="",
        LLM_MODEL="llama3.1",
        LLM_TIMEOUT_SECONDS=4.0,
        LLM_FALLBACK=["offline"],
    )
    registry = registry_from_settings(settings)
    assert registry.names == ("openai", "offline")
    assert registry.fallback == ("offline",)
    backend = registry.backend("openai")
    assert (backend.model, getattr(backend, "timeout", None)) == ("llama3.1", 4.0)

    server.enqueue(text_reply("from llama"), error_reply(401))
    assert (await registry.complete(HELLO)).text == "from llama"
    assert server.chat_requests[0].headers["authorization"] == "Bearer not-needed"
    assert server.chat_requests[0].json["model"] == "llama3.1"

    # The offline kind is not registered yet: the fallback fails cleanly, it does not crash.
    error = await fails(registry.complete(HELLO))
    assert [(c.backend, c.kind) for c in error.causes] == [
        ("openai", ErrorKind.AUTH),
        ("offline", ErrorKind.INTERNAL),
    ]
    # Once registered (by its own module, later), the same registry resolves it on first use.
    registry.register_kind("offline", StaticBackend)
    server.enqueue(error_reply(401))
    completion = await registry.complete(HELLO)
    assert (completion.backend, completion.text) == ("offline", "offline answer")
    assert [h.kind for h in registry.health()] == ["openai", "offline"]
    await registry.aclose()


def test_registry_from_default_settings_is_offline_first() -> None:
    settings = SimpleNamespace(
        LLM_BACKEND="offline",
        LLM_BASE_URL="",
        LLM_API_KEY="",
        LLM_MODEL="",
        LLM_TIMEOUT_SECONDS=30.0,
        LLM_FALLBACK=["offline"],
    )
    registry = registry_from_settings(settings)
    assert registry.names == ("offline",)
    assert registry.fallback == ()
    assert registry.health()[0].state == "closed"
