"""The registry of named backends and the policy around every model call (SPEC §5, §10).

For each call the registry walks the chain "primary (or the named backend), then ``fallback`` in
order". On each backend it asks the circuit breaker for a permit, makes the attempt, retries
transient failures with full-jitter backoff, and records the outcome in the breaker, the error
window, Prometheus and the log. When every backend in the chain fails it raises
``LLMError(kind="all_backends_failed")``, whose text is safe to show the user.

Clock, sleep and random source are injected so retries and cooldowns are tested without waiting.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Any

import structlog

from config import chaos
from conversations.llm import metrics
from conversations.llm.base import Backend, BackendConfig, BackendFactory
from conversations.llm.breaker import (
    BreakerStore,
    CircuitBreaker,
    CircuitState,
    OutcomeWindow,
    Permit,
)
from conversations.llm.retry import RetryPolicy
from conversations.llm.types import (
    UNAVAILABLE_MESSAGE,
    BackendHealth,
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
)

__all__ = [
    "BackendConfig",
    "BackendRegistry",
    "CallReport",
    "register_default_kind",
    "registry_from_settings",
]

logger = structlog.get_logger(__name__)

# Kinds registered by other modules (the offline backend) for every registry built afterwards.
_DEFAULT_FACTORIES: dict[str, BackendFactory] = {}


def register_default_kind(kind: str, factory: BackendFactory) -> None:
    """Makes ``kind`` available to registries created later and to lazy ones already built."""
    _DEFAULT_FACTORIES[kind] = factory


def _builtin_factories() -> dict[str, BackendFactory]:
    from conversations.llm.openai_backend import OpenAIBackend
    from conversations.llm.recorded import RecordedBackend

    return {"openai": OpenAIBackend, "recorded": RecordedBackend}


@dataclass(frozen=True)
class CallReport:
    """One finished call on one backend, for listeners such as analytics (SPEC §9)."""

    backend: str
    kind: str
    model: str
    outcome: str  # "success" or the ErrorKind value
    attempts: int
    latency_ms: float
    usage: Usage
    cost: Decimal | None  # None for a failed call
    stream: bool
    error: str | None = None


Listener = Callable[[CallReport], None]


class _Slot:
    """A configured backend with its breaker, error window and retry policy."""

    def __init__(self, config: BackendConfig, registry: BackendRegistry) -> None:
        self.config = config
        self.name = config.name
        self.breaker = CircuitBreaker(
            failure_threshold=config.breaker_failures,
            cooldown=config.breaker_cooldown,
            clock=registry._clock,
            store=registry.breaker_store,
            name=config.name,
        )
        self.window = OutcomeWindow(window=registry.error_window, clock=registry._clock)
        self.policy = RetryPolicy(
            max_retries=config.max_retries,
            base=registry.retry_base,
            cap=registry.retry_cap,
            retry_after_cap=registry.retry_after_cap,
        )
        self.backend: Backend | None = None
        self.last_error: str | None = None
        self.published_state: CircuitState | None = None
        # Calls this backend answered after another one failed (this process).
        self.fallbacks = 0

    @property
    def model(self) -> str:
        return self.backend.model if self.backend is not None else self.config.model


@dataclass(frozen=True)
class _Call:
    """What one call on one backend of the chain may use: the agent's model (first backend
    only), and the turn's deadline minus what is kept for the backends after it."""

    model: str | None = None
    deadline: float | None = None
    reserve: float = 0.0

    def left(self) -> float | None:
        if self.deadline is None:
            return None
        return self.deadline - time.monotonic() - self.reserve

    def budget(self, slot: _Slot) -> float | None:
        # Only a backend with another after it is cut short: the last one has the turn's own
        # limit (its wall-time budget ends the turn, and says so).
        left = self.left() if self.reserve > 0 else None
        if left is None:
            return None
        if left <= 0:
            raise LLMError(
                ErrorKind.TIMEOUT,
                "no time left in the turn for this backend",
                backend=slot.name,
                transient=False,
            )
        return min(slot.config.timeout, left)

    def room_for(self, seconds: float) -> bool:
        left = self.left()
        return left is None or left >= seconds

    def options(self, slot: _Slot) -> dict[str, Any]:
        """Keyword arguments for the backend call; none when nothing is overridden, so kinds
        that take neither (test doubles) keep working."""
        options: dict[str, Any] = {}
        if self.model:
            options["model"] = self.model
        timeout = self.budget(slot)
        if timeout is not None and timeout < slot.config.timeout:
            options["time_limit"] = timeout
        return options


class BackendRegistry:
    """Named backends; the first config is the primary.

    With ``lazy=False`` every backend is built now and an unknown kind raises
    :class:`LLMConfigurationError`. With ``lazy=True`` a backend is built on its first call, so a
    kind registered after the registry (the offline backend) still resolves; a kind that is
    still unknown then fails that backend with ``kind="internal"`` and an error log.
    """

    def __init__(
        self,
        configs: Sequence[BackendConfig],
        *,
        fallback: Sequence[str] = (),
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
        rng: random.Random | None = None,
        factories: dict[str, BackendFactory] | None = None,
        lazy: bool = False,
        retry_base: float = 0.5,
        retry_cap: float = 8.0,
        retry_after_cap: float = 20.0,
        error_window: float = 300.0,
        listeners: Sequence[Listener] = (),
        breaker_store: BreakerStore | None = None,
        fallback_reserve: float = 10.0,
        min_attempt: float = 1.0,
    ) -> None:
        if not configs:
            raise LLMConfigurationError("a backend registry needs at least one backend")
        self._clock = clock
        self._sleep = sleep
        self._rng = rng if rng is not None else random.Random()
        self.retry_base = retry_base
        self.retry_cap = retry_cap
        self.retry_after_cap = retry_after_cap
        self.error_window = error_window
        self._listeners = list(listeners)
        # Where every breaker keeps its state: this process's memory, or a store all share.
        self.breaker_store = breaker_store if breaker_store is not None else BreakerStore()
        # With a turn deadline: seconds kept for the next backend in the chain, and the
        # shortest attempt worth starting.
        self.fallback_reserve = fallback_reserve
        self.min_attempt = min_attempt
        self._factories: dict[str, BackendFactory] = {**_builtin_factories(), **(factories or {})}
        self._slots: dict[str, _Slot] = {}
        for config in configs:
            if config.name in self._slots:
                raise LLMConfigurationError(f"two backends are named {config.name!r}")
            self._slots[config.name] = _Slot(config, self)
        for name in fallback:
            if name not in self._slots:
                raise LLMConfigurationError(
                    f"fallback {name!r} is not a configured backend "
                    f"(configured: {', '.join(self._slots)})"
                )
        self.primary = configs[0].name
        self.fallback = tuple(fallback)
        self._chains: dict[tuple[str, tuple[str, ...] | None], tuple[_Slot, ...]] = {}
        if not lazy:
            for slot in self._slots.values():
                slot.backend = self._build(slot.config)
        for slot in self._slots.values():
            self._publish_state(slot)

    # -- configuration -----------------------------------------------------------------------

    def register_kind(self, kind: str, factory: BackendFactory) -> None:
        self._factories[kind] = factory

    def add_listener(self, listener: Listener) -> None:
        self._listeners.append(listener)

    def backend(self, name: str) -> Backend:
        """The backend object named ``name``, built if it was not yet."""
        slot = self._slot(name)
        backend = self._resolve(slot)
        if backend is None:
            raise LLMConfigurationError(f"no factory is registered for kind {slot.config.kind!r}")
        return backend

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self._slots)

    def _factory(self, kind: str) -> BackendFactory | None:
        return self._factories.get(kind) or _DEFAULT_FACTORIES.get(kind)

    def _build(self, config: BackendConfig) -> Backend:
        factory = self._factory(config.kind)
        if factory is None:
            known = sorted({*self._factories, *_DEFAULT_FACTORIES})
            raise LLMConfigurationError(
                f"backend {config.name!r} has unknown kind {config.kind!r} "
                f"(known kinds: {', '.join(known)}); register it with register_kind()"
            )
        return factory(config)

    def _resolve(self, slot: _Slot) -> Backend | None:
        if slot.backend is None and self._factory(slot.config.kind) is not None:
            slot.backend = self._build(slot.config)
        return slot.backend

    def _slot(self, name: str) -> _Slot:
        try:
            return self._slots[name]
        except KeyError:
            raise LLMConfigurationError(
                f"unknown backend {name!r} (configured: {', '.join(self._slots)})"
            ) from None

    def config(self, name: str) -> BackendConfig:
        return self._slot(name).config

    def _chain(self, name: str | None, fallback: Sequence[str] | None = None) -> tuple[_Slot, ...]:
        """``name`` (default: the primary), then ``fallback`` (default: the registry's order;
        an empty sequence: no fallback)."""
        first = name or self.primary
        key = (first, None if fallback is None else tuple(fallback))
        chain = self._chains.get(key)
        if chain is None:
            order = self.fallback if fallback is None else tuple(fallback)
            names = [first, *(other for other in order if other != first)]
            chain = tuple(self._slot(other) for other in dict.fromkeys(names))
            self._chains[key] = chain
        return chain

    # -- calls -------------------------------------------------------------------------------

    async def complete(
        self,
        messages: Sequence[ChatMessage],
        *,
        tools: Sequence[ToolSpec] = (),
        backend: str | None = None,
        temperature: float | None = None,
        model: str | None = None,
        fallback: Sequence[str] | None = None,
        deadline: float | None = None,
    ) -> Completion:
        """``model`` replaces the first backend's model (an agent's choice); ``fallback``
        replaces the registry's order (empty: none); ``deadline`` (``time.monotonic()``) is
        shared by every attempt, keeping ``fallback_reserve`` seconds for the next backend."""
        causes: list[LLMError] = []
        chain = self._chain(backend, fallback)
        for index, slot in enumerate(chain):
            call = _Call(
                model=model if index == 0 else None,
                deadline=deadline,
                reserve=self.fallback_reserve if index + 1 < len(chain) else 0.0,
            )
            try:
                completion = await self._complete_on(slot, messages, tools, temperature, call)
            except LLMError as error:
                causes.append(error)
                continue
            return self._after_fallback(slot, completion, causes)
        raise self._all_failed(causes)

    async def stream(
        self,
        messages: Sequence[ChatMessage],
        *,
        tools: Sequence[ToolSpec] = (),
        backend: str | None = None,
        temperature: float | None = None,
        model: str | None = None,
        fallback: Sequence[str] | None = None,
        deadline: float | None = None,
    ) -> AsyncIterator[StreamEvent]:
        """TokenDelta events, then one Done. A failure before the first token falls back like
        ``complete``; a failure after it is raised as is, since a retry would repeat the text
        the user has already seen. ``model``, ``fallback`` and ``deadline`` as for
        ``complete``."""
        causes: list[LLMError] = []
        chain = self._chain(backend, fallback)
        for index, slot in enumerate(chain):
            emitted = False
            call = _Call(
                model=model if index == 0 else None,
                deadline=deadline,
                reserve=self.fallback_reserve if index + 1 < len(chain) else 0.0,
            )
            events = self._stream_on(slot, messages, tools, temperature, call)
            try:
                async for event in events:
                    emitted = emitted or isinstance(event, TokenDelta)
                    if isinstance(event, Done):
                        event = Done(self._after_fallback(slot, event.completion, causes))
                    yield event
                return
            except LLMError as error:
                if emitted:
                    raise
                causes.append(error)
            finally:
                await events.aclose()
        raise self._all_failed(causes)

    async def _complete_on(
        self,
        slot: _Slot,
        messages: Sequence[ChatMessage],
        tools: Sequence[ToolSpec],
        temperature: float | None,
        call: _Call,
    ) -> Completion:
        backend = self._require(slot)
        call.budget(slot)  # nothing left for this backend: refuse before taking a permit
        permit = await self._acquire(slot)
        started = time.perf_counter()
        retries = 0
        settled = False
        try:
            while True:
                try:
                    await chaos.model_attempt(slot.name)  # off unless CHAOS_ENABLED
                    completion = await backend.complete(
                        messages, tools=tools, temperature=temperature, **call.options(slot)
                    )
                except LLMError as exc:
                    error = exc
                except LLMConfigurationError:
                    raise
                except Exception as exc:
                    error = self._contain(slot, exc)
                else:
                    settled = True
                    completion = replace(completion, attempts=retries + 1)
                    await self._succeeded(slot, permit, completion, started, stream=False)
                    return completion
                if slot.policy.should_retry(error, retries_done=retries) and (
                    await self._wait_before_retry(slot, error, retries, call)
                ):
                    retries += 1
                    continue
                settled = True
                await self._failed(slot, permit, error, retries + 1, started, stream=False)
                raise error
        finally:
            if not settled and permit.trial:
                await self.breaker_store.run(lambda: slot.breaker.release(permit))

    async def _stream_on(
        self,
        slot: _Slot,
        messages: Sequence[ChatMessage],
        tools: Sequence[ToolSpec],
        temperature: float | None,
        call: _Call,
    ) -> AsyncGenerator[StreamEvent]:
        backend = self._require(slot)
        call.budget(slot)
        permit = await self._acquire(slot)
        started = time.perf_counter()
        retries = 0
        settled = False
        try:
            while True:
                emitted = False
                events = backend.stream(
                    messages, tools=tools, temperature=temperature, **call.options(slot)
                )
                try:
                    await chaos.model_attempt(slot.name)  # off unless CHAOS_ENABLED
                    async for event in events:
                        if isinstance(event, Done):
                            completion = replace(event.completion, attempts=retries + 1)
                            settled = True
                            await self._succeeded(slot, permit, completion, started, stream=True)
                            yield Done(completion)
                            return
                        emitted = True
                        yield event
                    error = LLMError(
                        ErrorKind.INVALID_RESPONSE,
                        "the stream ended without a completion",
                        backend=slot.name,
                    )
                except LLMError as exc:
                    error = exc
                except LLMConfigurationError:
                    raise
                except Exception as exc:
                    error = self._contain(slot, exc)
                finally:
                    aclose = getattr(events, "aclose", None)
                    if aclose is not None:
                        await aclose()
                if (
                    not emitted
                    and slot.policy.should_retry(error, retries_done=retries)
                    and await self._wait_before_retry(slot, error, retries, call)
                ):
                    retries += 1
                    continue
                settled = True
                await self._failed(slot, permit, error, retries + 1, started, stream=True)
                raise error
        finally:
            # Cancelled, or the consumer stopped reading: no outcome, but free a half-open trial.
            if not settled and permit.trial:
                await self.breaker_store.run(lambda: slot.breaker.release(permit))

    def _require(self, slot: _Slot) -> Backend:
        backend = self._resolve(slot)
        if backend is None:
            message = f"no factory is registered for kind {slot.config.kind!r}"
            slot.last_error = f"internal: {message}"
            logger.error("llm_backend_unresolved", backend=slot.name, kind=slot.config.kind)
            raise LLMError(ErrorKind.INTERNAL, message, backend=slot.name, transient=False)
        return backend

    async def _acquire(self, slot: _Slot) -> Permit:
        permit = slot.breaker.fast_permit() or await self.breaker_store.run(slot.breaker.acquire)
        self._publish_state(slot)
        if permit is not None:
            return permit
        error = LLMError(
            ErrorKind.CIRCUIT_OPEN,
            f"circuit open for backend {slot.name!r}",
            backend=slot.name,
            transient=False,
            retry_after=slot.breaker.cooldown_remaining(),
        )
        metrics.call_observed(backend=slot.name, outcome=error.kind.value)
        logger.warning(
            "llm_call_failed",
            backend=slot.name,
            model=slot.model,
            base_url=slot.config.base_url,
            error_kind=error.kind.value,
            attempts=0,
            cooldown_remaining=round(error.retry_after or 0.0, 3),
        )
        raise error

    async def _wait_before_retry(
        self, slot: _Slot, error: LLMError, retries: int, call: _Call
    ) -> bool:
        """Waits before the next attempt; False when the turn's deadline leaves no room for it
        (the failure then counts now, and the next backend gets the time)."""
        delay = slot.policy.delay(error, retries_done=retries, rng=self._rng)
        if not call.room_for(delay + self.min_attempt):
            return False
        logger.info(
            "llm_call_retried",
            backend=slot.name,
            model=slot.model,
            error_kind=error.kind.value,
            attempt=retries + 1,
            delay=round(delay, 3),
        )
        await self._sleep(delay)
        return True

    def _contain(self, slot: _Slot, exc: Exception) -> LLMError:
        # A bug inside a backend must cost the user this backend, not the conversation.
        logger.exception("llm_backend_crashed", backend=slot.name)
        return LLMError(
            ErrorKind.INTERNAL,
            f"{type(exc).__name__}: {exc}",
            backend=slot.name,
            transient=False,
        )

    async def _succeeded(
        self,
        slot: _Slot,
        permit: Permit,
        completion: Completion,
        started: float,
        *,
        stream: bool,
    ) -> None:
        if permit.trial or permit.failures:  # else nothing to write: no store round trip
            await self.breaker_store.run(lambda: slot.breaker.record_success(permit))
        slot.window.record(ok=True)
        self._publish_state(slot)
        metrics.call_observed(
            backend=slot.name, outcome="success", latency_seconds=completion.latency_ms / 1000
        )
        logger.info(
            "llm_call_finished",
            backend=slot.name,
            model=completion.model,
            prompt_tokens=completion.usage.prompt_tokens,
            completion_tokens=completion.usage.completion_tokens,
            latency_ms=round(completion.latency_ms, 1),
            elapsed_ms=round((time.perf_counter() - started) * 1000, 1),
            attempts=completion.attempts,
            cost=str(completion.cost),
            finish_reason=completion.finish_reason,
            stream=stream,
        )
        self._notify(
            CallReport(
                backend=slot.name,
                kind=slot.config.kind,
                model=completion.model,
                outcome="success",
                attempts=completion.attempts,
                latency_ms=completion.latency_ms,
                usage=completion.usage,
                cost=completion.cost,
                stream=stream,
            )
        )

    async def _failed(
        self,
        slot: _Slot,
        permit: Permit,
        error: LLMError,
        attempts: int,
        started: float,
        *,
        stream: bool,
    ) -> None:
        if not error.backend:
            error.backend = slot.name
        slot.last_error = f"{error.kind.value}: {error.message}"[:500]
        await self.breaker_store.run(
            lambda: slot.breaker.record_failure(permit, error=slot.last_error)
        )
        slot.window.record(ok=False)
        self._publish_state(slot)
        elapsed_ms = (time.perf_counter() - started) * 1000
        metrics.call_observed(backend=slot.name, outcome=error.kind.value)
        logger.warning(
            "llm_call_failed",
            backend=slot.name,
            model=slot.model,
            base_url=slot.config.base_url,
            error_kind=error.kind.value,
            error=error.message,
            status_code=error.status_code,
            attempts=attempts,
            latency_ms=round(elapsed_ms, 1),
            stream=stream,
        )
        self._notify(
            CallReport(
                backend=slot.name,
                kind=slot.config.kind,
                model=slot.model,
                outcome=error.kind.value,
                attempts=attempts,
                latency_ms=elapsed_ms,
                usage=Usage(),
                cost=None,
                stream=stream,
                error=error.message,
            )
        )

    def _notify(self, report: CallReport) -> None:
        for listener in self._listeners:
            try:
                listener(report)
            except Exception:
                logger.exception("llm_listener_failed", backend=report.backend)

    def _after_fallback(
        self, slot: _Slot, completion: Completion, causes: list[LLMError]
    ) -> Completion:
        """A backend answered after others failed: say so (a warning, the health page, the
        completion's ``fallback_from`` for the turn's event), never silently."""
        if not causes:
            return completion
        slot.fallbacks += 1
        logger.warning(
            "llm_fallback_used",
            backend=slot.name,
            model=completion.model,
            failed=[f"{cause.backend}: {cause.kind.value}" for cause in causes],
        )
        return replace(completion, fallback_from=tuple(cause.backend for cause in causes))

    def _all_failed(self, causes: list[LLMError]) -> LLMError:
        logger.error(
            "llm_all_backends_failed",
            causes=[f"{cause.backend}: {cause.kind.value}" for cause in causes],
        )
        return LLMError(
            ErrorKind.ALL_BACKENDS_FAILED, UNAVAILABLE_MESSAGE, transient=False, causes=causes
        )

    def _publish_state(self, slot: _Slot) -> None:
        # What the breaker last read or wrote: no store round trip for a gauge and a log.
        state = slot.breaker.known_state()
        if state is slot.published_state:
            return
        if slot.published_state is not None:
            logger.info(
                "llm_circuit_changed",
                backend=slot.name,
                previous=slot.published_state.value,
                state=state.value,
            )
        slot.published_state = state
        metrics.circuit_state_set(backend=slot.name, state=state)

    # -- operations --------------------------------------------------------------------------

    def health(self) -> list[BackendHealth]:
        report = []
        for slot in self._slots.values():
            # One read of the (possibly shared) circuit per backend.
            snapshot = slot.breaker.snapshot()
            state = slot.breaker._state_of(snapshot)
            if state is not slot.published_state:
                self._publish_state(slot)
            calls, error_rate = slot.window.snapshot()
            report.append(
                BackendHealth(
                    name=slot.name,
                    kind=slot.config.kind,
                    model=slot.model,
                    state=state.value,
                    error_rate=error_rate,
                    recent_calls=calls,
                    cooldown_remaining=slot.breaker.cooldown_remaining(snapshot),
                    last_error=snapshot.last_error or slot.last_error,
                    consecutive_failures=snapshot.failures,
                    extra={
                        "base_url": slot.config.base_url,
                        "fallback_answers": slot.fallbacks,
                        "shared_state": self.breaker_store.shared,
                    },
                )
            )
        return report

    async def aclose(self) -> None:
        for slot in self._slots.values():
            if slot.backend is not None:
                await slot.backend.aclose()


def configs_from_settings(settings: Any) -> tuple[list[BackendConfig], str]:
    """The environment's backends and the default one's name.

    ``LLM_BACKENDS`` (named backends, see :mod:`conversations.llm.configs`) when set, the
    default being ``LLM_DEFAULT_BACKEND`` or the first. Otherwise the single backend of
    ``LLM_BACKEND`` (a kind, which also names it) with ``LLM_BASE_URL``, ``LLM_API_KEY``,
    ``LLM_MODEL`` and ``LLM_TIMEOUT_SECONDS``, plus one backend per kind of ``LLM_FALLBACK``
    sharing those settings. A ``recorded`` backend reads its cassette from ``LLM_CASSETTE``.
    """
    from conversations.llm.configs import configs_from_entries, parse_backends

    raw = str(getattr(settings, "LLM_BACKENDS", "") or "")
    if raw.strip():
        configs = configs_from_entries(parse_backends(raw))
        default = str(getattr(settings, "LLM_DEFAULT_BACKEND", "") or "").strip()
        return configs, default or (configs[0].name if configs else "")
    primary = str(getattr(settings, "LLM_BACKEND", "") or "offline").strip()
    fallback_kinds = [str(kind).strip() for kind in getattr(settings, "LLM_FALLBACK", []) or []]
    cassette = str(getattr(settings, "LLM_CASSETTE", "") or "")
    configs = []
    for kind in dict.fromkeys([primary, *fallback_kinds]):
        if not kind:
            continue
        configs.append(
            BackendConfig(
                name=kind,
                kind=kind,
                model=str(getattr(settings, "LLM_MODEL", "") or ""),
                base_url=str(getattr(settings, "LLM_BASE_URL", "") or ""),
                api_key=str(getattr(settings, "LLM_API_KEY", "") or ""),
                timeout=float(getattr(settings, "LLM_TIMEOUT_SECONDS", 30.0) or 30.0),
                options={"cassette": cassette} if kind == "recorded" and cassette else {},
            )
        )
    return configs, primary


def registry_from_settings(
    settings: Any,
    *,
    stored: Sequence[BackendConfig] = (),
    breaker_store: BreakerStore | None = None,
    clock: Callable[[], float] | None = None,
) -> BackendRegistry:
    """The registry described by ``LLM_*`` settings (the only place that reads them), with the
    ``stored`` backends (the admin's) the environment does not name.

    The default backend comes first; ``LLM_FALLBACK`` names the default order after it (empty:
    no fallback). An ``offline`` backend is always configured, so an agent or a fallback may
    name it. The registry is lazy: the ``offline`` kind is registered by its own module,
    possibly after this runs, and resolves on first use.
    """
    from conversations.llm.configs import merged

    environment, default = configs_from_settings(settings)
    configs = merged(environment, stored)
    if not any(config.name == "offline" for config in configs):
        configs.append(BackendConfig(name="offline", kind="offline"))
    names = [config.name for config in configs]
    if default not in names:
        raise LLMConfigurationError(
            f"the default backend {default!r} is not configured (configured: {', '.join(names)})"
        )
    configs.sort(key=lambda config: config.name != default)
    fallback = [
        name
        for name in (str(item).strip() for item in getattr(settings, "LLM_FALLBACK", []) or [])
        if name and name != default
    ]
    options: dict[str, Any] = {}
    if clock is not None:
        options["clock"] = clock
    return BackendRegistry(
        configs,
        fallback=fallback,
        lazy=True,
        breaker_store=breaker_store,
        fallback_reserve=float(getattr(settings, "LLM_FALLBACK_RESERVE_SECONDS", 10.0)),
        **options,
    )
