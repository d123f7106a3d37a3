"""Model backends as the deployment configures them (issue 15): the process's registry built
from the environment and the admin's ``ModelBackend`` rows, the breaker state every process
shares, the agents' backend choices, and the dry run behind the admin action and the API.

The backend layer itself (``conversations.llm``) stays free of Django; this module is the glue.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from contextvars import ContextVar, Token
from dataclasses import dataclass
from typing import Any

import structlog
from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import transaction

from config import versions
from conversations.llm.base import BackendConfig
from conversations.llm.breaker import BreakerSnapshot, BreakerStore
from conversations.llm.configs import config_from_mapping
from conversations.llm.dryrun import DryRun, dry_run
from conversations.llm.registry import (
    BackendRegistry,
    configs_from_settings,
    registry_from_settings,
)
from conversations.llm.types import ChatMessage, LLMConfigurationError, ToolSpec

logger = structlog.get_logger(__name__)

STAMP = "llm_backends"
# How often a process checks whether the admin changed the backends.
RELOAD_SECONDS = 2.0
_KEY = "llm:circuit:"

_registry: BackendRegistry | None = None
_registry_stamp: str | None = None
_checked_at = 0.0
_lock = threading.Lock()
_pool = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="llm-state")


def _in_event_loop() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


def _sync[T](step: Callable[[], T]) -> T:
    """Runs ORM work from anywhere: inline in sync code, in a worker thread (waited for) when
    the caller is an event loop, where Django refuses the ORM."""
    if not _in_event_loop():
        return step()

    def work() -> T:
        from django.db import close_old_connections

        try:
            return step()
        finally:
            close_old_connections()

    return _pool.submit(work).result()


# --- Shared breaker state ----------------------------------------------------------------------


class _RememberingStore(BreakerStore):
    """A shared store that trusts what this process last read or wrote for ``fresh_seconds``:
    a call on a closed circuit then costs no round trip. Failures and state changes always
    read and write the shared state under its lock, so counts add up across processes; only
    a circuit another process opened may be seen up to ``fresh_seconds`` late."""

    shared = True
    FRESH_SECONDS = 5.0

    def __init__(self, *, fresh_seconds: float | None = None) -> None:
        super().__init__()
        self.fresh_seconds = self.FRESH_SECONDS if fresh_seconds is None else fresh_seconds
        self._seen: dict[str, tuple[float, BreakerSnapshot]] = {}

    def peek(self, name: str) -> BreakerSnapshot | None:
        seen = self._seen.get(name)
        if seen is not None and time.monotonic() - seen[0] < self.fresh_seconds:
            return seen[1]
        return None

    def _remember(self, name: str, snapshot: BreakerSnapshot) -> BreakerSnapshot:
        self._seen[name] = (time.monotonic(), snapshot)
        return snapshot


class CacheBreakerStore(_RememberingStore):
    """Circuit state in Django's cache: Redis when ``REDIS_URL`` is set, shared by every
    process. A read-modify-write holds a short cache lock (``add``), so two processes' failure
    counts add up."""

    def __init__(
        self, cache: Any = None, *, lock_seconds: float = 5.0, fresh_seconds: float | None = None
    ) -> None:
        super().__init__(fresh_seconds=fresh_seconds)
        if cache is None:
            from django.core.cache import cache as default_cache

            cache = default_cache
        self.cache = cache
        self.lock_seconds = lock_seconds

    def load(self, name: str) -> BreakerSnapshot:
        return self._remember(name, BreakerSnapshot.from_dict(self.cache.get(_KEY + name)))

    def save(self, name: str, snapshot: BreakerSnapshot) -> None:
        self.cache.set(_KEY + name, snapshot.to_dict(), timeout=None)
        self._remember(name, snapshot)

    @contextlib.contextmanager
    def locked(self, name: str) -> Iterator[None]:
        key = f"{_KEY}{name}:lock"
        give_up = time.monotonic() + self.lock_seconds
        acquired = False
        while not acquired:
            acquired = bool(self.cache.add(key, 1, timeout=self.lock_seconds))
            if not acquired:
                if time.monotonic() > give_up:
                    # A holder that died: its lock expires with the timeout; go on rather than
                    # stall a customer's turn.
                    logger.warning("llm_circuit_lock_timeout", backend=name)
                    break
                time.sleep(0.002)
        try:
            yield
        finally:
            if acquired:
                self.cache.delete(key)


class DatabaseBreakerStore(_RememberingStore):
    """Circuit state in ``BackendCircuit`` rows when there is no Redis: every process of the
    deployment reads the same row. From async code the steps run in the ORM thread."""

    def load(self, name: str) -> BreakerSnapshot:
        from conversations.models import BackendCircuit

        def read() -> Any:
            return BackendCircuit.objects.filter(pk=name).values_list("state", flat=True).first()

        return self._remember(name, BreakerSnapshot.from_dict(_sync(read)))

    def save(self, name: str, snapshot: BreakerSnapshot) -> None:
        from conversations.models import BackendCircuit

        def write() -> None:
            BackendCircuit.objects.update_or_create(pk=name, defaults={"state": snapshot.to_dict()})

        _sync(write)
        self._remember(name, snapshot)

    @contextlib.contextmanager
    def locked(self, name: str) -> Iterator[None]:
        if _in_event_loop():
            # Only reached from a sync step outside ``run`` (a freed trial): no row lock.
            yield
            return
        from conversations.models import BackendCircuit

        with transaction.atomic():
            BackendCircuit.objects.get_or_create(pk=name)
            BackendCircuit.objects.select_for_update().filter(pk=name).first()
            yield

    def run[T](self, step: Callable[[], T]) -> Any:
        return sync_to_async(step, thread_sensitive=True)()


def breaker_store_from_settings() -> BreakerStore:
    choice = (getattr(settings, "LLM_BREAKER_STORE", "auto") or "auto").lower()
    if choice == "auto":
        choice = "cache" if settings.REDIS_URL else "database"
    if choice == "cache":
        return CacheBreakerStore()
    if choice == "database":
        return DatabaseBreakerStore()
    if choice == "memory":
        return BreakerStore()
    raise LLMConfigurationError(
        f"LLM_BREAKER_STORE must be auto, cache, database or memory, not {choice!r}"
    )


# --- The process's registry --------------------------------------------------------------------


def stored_configs() -> list[BackendConfig]:
    """The admin's enabled backends; a row that no longer validates is skipped and logged."""
    from conversations.models import ModelBackend

    configs = []
    for row in ModelBackend.objects.filter(enabled=True).order_by("name"):
        try:
            configs.append(config_from_mapping(row.as_entry(), where="ModelBackend"))
        except LLMConfigurationError as exc:
            logger.error("llm_stored_backend_invalid", backend=row.name, error=str(exc))
    return configs


def environment_names() -> set[str]:
    configs, _ = configs_from_settings(settings)
    return {config.name for config in configs}


def build_registry() -> BackendRegistry:
    from conversations.llm import offline

    registry = registry_from_settings(
        settings,
        stored=_sync(stored_configs),
        breaker_store=breaker_store_from_settings(),
        # Wall-clock time: every process reads the same cooldown from a shared store.
        clock=time.time,
    )
    offline.register(registry)
    return registry


def get_registry() -> BackendRegistry:
    """The registry, rebuilt when the admin changed the backends (checked every
    ``RELOAD_SECONDS``; at once in this process)."""
    global _registry, _registry_stamp, _checked_at
    now = time.monotonic()
    if _registry is not None and now - _checked_at < RELOAD_SECONDS:
        return _registry
    with _lock:
        stamp = _sync(lambda: versions.current(STAMP))
        _checked_at = now
        if _registry is None or stamp is None or stamp != _registry_stamp:
            _registry = build_registry()
            # No stamp yet: reading created one, which this registry already reflects.
            _registry_stamp = stamp or _sync(lambda: versions.current(STAMP))
        return _registry


async def aget_registry() -> BackendRegistry:
    """``get_registry`` for async code: the cached registry at once, else checked and built in
    the ORM thread (where the rest of the turn's database work runs: SQLite allows one writer)."""
    if _registry is not None and time.monotonic() - _checked_at < RELOAD_SECONDS:
        return _registry
    return await sync_to_async(get_registry, thread_sensitive=True)()


def set_registry(registry: BackendRegistry | None) -> None:
    """Replace the registry (tests, or after a settings change); ``None`` rebuilds lazily."""
    global _registry, _registry_stamp, _checked_at
    _registry = registry
    _registry_stamp = None
    # A registry set by hand is kept until replaced.
    _checked_at = float("inf") if registry is not None else 0.0


def backends_changed() -> None:
    """A ``ModelBackend`` was saved or deleted: every process rebuilds its registry."""
    versions.bump(STAMP)
    transaction.on_commit(lambda: set_registry(None))


def backend_names() -> list[str]:
    """Every name an agent may choose: the environment's, the admin's, and ``offline``."""
    from conversations.models import ModelBackend

    names = dict.fromkeys(sorted(environment_names()))
    names.update(dict.fromkeys(ModelBackend.objects.filter(enabled=True).values_list(
        "name", flat=True)))  # fmt: skip
    names["offline"] = None
    return list(names)


def agent_backend_problems(*, backend: str, fallback: Any) -> dict[str, str]:
    """Field errors for an agent's backend choice (empty when fine)."""
    problems: dict[str, str] = {}
    try:
        known = backend_names()
    except LLMConfigurationError as exc:
        return {"backend": f"The backend configuration is broken: {exc}"}
    if backend and backend not in known:
        problems["backend"] = f"Unknown backend {backend!r}; configured: {', '.join(known)}."
    if not isinstance(fallback, list) or not all(isinstance(n, str) for n in fallback):
        problems["fallback"] = 'A list of backend names, e.g. ["offline"].'
    else:
        unknown = [name for name in fallback if name not in known]
        if unknown:
            problems["fallback"] = (
                f"Unknown backend(s) {', '.join(unknown)}; configured: {', '.join(known)}."
            )
    return problems


@dataclass(frozen=True)
class AgentRoute:
    """How an agent's model calls go: the first backend (None: the default), the model (None:
    the backend's), and the fallback order (None: the deployment's)."""

    backend: str | None = None
    model: str | None = None
    fallback: tuple[str, ...] | None = None

    def options(self) -> dict[str, Any]:
        return {"backend": self.backend, "model": self.model, "fallback": self.fallback}

    def after(self, completion: Any) -> AgentRoute:
        """The route for the turn's next model call: once a fallback answered, the rest of the
        turn stays on it instead of waiting for the failed backend again."""
        if not completion.fallback_from:
            return self
        return AgentRoute(backend=completion.backend, model=None, fallback=())


def agent_route(agent: Any, registry: BackendRegistry) -> AgentRoute:
    """The agent's choices, checked against the registry. A name the registry does not know
    (a backend removed after the agent was saved) is logged as an error and the default backend
    answers: the customer still gets a reply, staff get the reason."""
    backend = agent.backend or None
    fallback = list(agent.fallback or [])
    names = set(registry.names)
    if backend is not None and backend not in names:
        logger.error("llm_agent_backend_unknown", agent=agent.slug, backend=backend)
        backend = None
    missing = [name for name in fallback if name not in names]
    if missing:
        logger.error("llm_agent_fallback_unknown", agent=agent.slug, backends=missing)
        fallback = [name for name in fallback if name in names]
    chosen = backend is not None or bool(agent.fallback)
    return AgentRoute(
        backend=backend,
        model=agent.model or None,
        fallback=tuple(fallback) if chosen else None,
    )


# --- Dry run -----------------------------------------------------------------------------------


async def backend_test(*, name: str, within: float = 15.0) -> DryRun:
    """One tiny request to the backend ``name`` (see ``conversations.llm.dryrun``)."""
    registry = await sync_to_async(get_registry)()
    result = await dry_run(registry, name, within=within)
    log = logger.info if result.ok else logger.warning
    log("llm_backend_tested", **result.as_dict())
    return result


def backend_test_sync(*, name: str, within: float = 15.0) -> DryRun:
    from asgiref.sync import async_to_sync

    return async_to_sync(backend_test)(name=name, within=within)


def escalation_backend(default: str | None) -> str | None:
    """The backend of the escalation assessment: ``LLM_ESCALATION_BACKEND`` when set."""
    return getattr(settings, "LLM_ESCALATION_BACKEND", "") or default


# --- A turn's model calls ----------------------------------------------------------------------

# When the running turn's model calls must be done by (``time.monotonic()``); None outside one.
TURN_DEADLINE: ContextVar[float | None] = ContextVar("llm_turn_deadline", default=None)
# Seconds of the turn's limit kept for what follows the last model call (the failure message).
DEADLINE_MARGIN = 2.0
DELAYED_MESSAGE = (
    "This is taking longer than usual; I'm still working on it. "
    "If you'd rather not wait, you can ask for a human at any time."
)


# Whether the running turn's customer has been told the answer is delayed (once per turn).
_NOTICE_SAID: ContextVar[list[bool] | None] = ContextVar("llm_notice_said", default=None)


def turn_deadline_start() -> Token[float | None]:
    """Starts the running turn's one deadline, shared by every attempt of every model call."""
    limit = float(settings.TURN_TIMEOUT_SECONDS)
    _NOTICE_SAID.set([False])
    return TURN_DEADLINE.set(time.monotonic() + max(limit - DEADLINE_MARGIN, limit / 2))


def turn_deadline_end(token: Token[float | None]) -> None:
    TURN_DEADLINE.reset(token)


def delayed_notice_due() -> bool:
    """True once per turn: the first delayed notice is said, later ones are not."""
    said = _NOTICE_SAID.get()
    if said is None:
        return True
    if said[0]:
        return False
    said[0] = True
    return True


def tools_within_budget(
    conversation_id: str, tools: list[ToolSpec], messages: list[ChatMessage]
) -> list[ToolSpec]:
    """The tools of one model call within ``LLM_TOOLS_MAX_*`` (``conversations.llm.budget``),
    the most relevant to the customer's message kept when some must go; what was trimmed is
    logged."""
    from conversations.agent.routing import score_tools
    from conversations.llm.budget import fit_tools

    limit_count, limit_bytes = settings.LLM_TOOLS_MAX_COUNT, settings.LLM_TOOLS_MAX_BYTES
    if not tools or (not limit_count and not limit_bytes):
        return tools
    fitted, report = fit_tools(tools, max_tools=limit_count, max_bytes=limit_bytes)
    if report.dropped:
        # Some must go: keep the ones that fit the customer's message best.
        text = next((m.content or "" for m in reversed(messages) if m.role == "user"), "")
        order = {name: index for index, (name, _) in enumerate(score_tools(text, tools))}
        ranked = sorted(tools, key=lambda tool: order.get(tool.name, len(order)))
        fitted, report = fit_tools(ranked, max_tools=limit_count, max_bytes=limit_bytes)
    if report.changed:
        logger.warning("llm_tools_trimmed", conversation_id=conversation_id, **report.as_dict())
    return fitted


class DelayedNotice:
    """Calls ``say`` once if the model has not produced its first token within ``seconds``
    (``LLM_DELAYED_NOTICE_SECONDS``): the customer hears that the answer is delayed, with the
    offer of a human, while the call (and perhaps the fallback) goes on."""

    def __init__(self, say: Callable[[], Awaitable[Any]], seconds: float | None = None) -> None:
        self.seconds = float(settings.LLM_DELAYED_NOTICE_SECONDS if seconds is None else seconds)
        self._say = say
        self._task: asyncio.Task[None] | None = None
        self.said = False

    async def __aenter__(self) -> DelayedNotice:
        if self.seconds > 0:
            self._task = asyncio.create_task(self._wait())
        return self

    async def _wait(self) -> None:
        await asyncio.sleep(self.seconds)
        self.said = True
        await self._say()

    def cancel(self) -> None:
        if self._task is not None and not self.said:
            self._task.cancel()

    async def __aexit__(self, *exc_info: object) -> None:
        if self._task is None:
            return
        if not self._task.done() and not self.said:
            self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
