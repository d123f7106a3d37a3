"""Chaos mode (issue 18 item 5; SPEC §13): seeded faults at given rates in model calls, tool
calls, the cache (Redis) and SQL statements; off by default and refused in production."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.db import OperationalError, connection
from redis.exceptions import ConnectionError as RedisConnectionError

from config import chaos
from conversations.llm.registry import BackendConfig, BackendRegistry
from conversations.llm.types import ChatMessage, LLMError
from conversations.models import Conversation
from conversations.turns.engine import wait_idle
from tests.config.test_production_defaults import PRODUCTION
from tests.config.test_settings import run
from tests.conversations.chat import connect, frames_until, turn_ended, verify_customer
from tests.support.openai_server import OpenAITestServer, text_reply


@pytest.fixture
def chaos_on(settings: Any) -> Iterator[Any]:
    settings.CHAOS_ENABLED = True
    settings.CHAOS_SEED = 7
    chaos.reset()
    yield settings
    chaos.reset()


def _rolls(point: str, rate: float, n: int = 40) -> list[bool]:
    return [chaos.roll(point, rate) is not None for _ in range(n)]


def _registry(server: OpenAITestServer) -> BackendRegistry:
    return BackendRegistry(
        [BackendConfig(name="openai", kind="openai", model="m", base_url=server.url,
                       api_key="k", timeout=5, max_retries=0)]
    )  # fmt: skip


def test_off_by_default_injects_nothing(settings: Any) -> None:
    assert settings.CHAOS_ENABLED is False
    settings.CHAOS_MODEL_ERROR_RATE = 1.0
    assert _rolls("model_error", 1.0) == [False] * 40


def test_the_same_seed_replays_the_same_faults(chaos_on: Any) -> None:
    first = _rolls("tool_failure", 0.3)
    chaos.reset()
    assert _rolls("tool_failure", 0.3) == first
    assert 4 <= sum(first) <= 20  # about the rate
    chaos_on.CHAOS_SEED = 8
    chaos.reset()
    assert _rolls("tool_failure", 0.3) != first
    # Points draw independently: another point's calls do not shift this one's sequence.
    chaos_on.CHAOS_SEED = 7
    chaos.reset()
    _rolls("redis", 0.5, n=13)
    assert _rolls("tool_failure", 0.3) == first


async def test_model_errors_reach_the_registry_as_backend_failures(chaos_on: Any) -> None:
    chaos_on.CHAOS_MODEL_ERROR_RATE = 1.0
    with OpenAITestServer() as server:
        server.enqueue(text_reply("never sent"))
        registry = _registry(server)
        with pytest.raises(LLMError) as caught:
            await registry.complete([ChatMessage(role="user", content="hi")])
        assert server.chat_requests == []
    assert "server_error" in str(caught.value.kind) or caught.value.causes
    assert chaos.injected["model_error"] >= 1


async def test_model_latency_is_added(chaos_on: Any) -> None:
    chaos_on.CHAOS_MODEL_LATENCY_RATE = 1.0
    chaos_on.CHAOS_MODEL_LATENCY_MS = 400
    with OpenAITestServer() as server:
        server.enqueue(text_reply("slow"))
        registry = _registry(server)
        started = time.perf_counter()
        completion = await registry.complete([ChatMessage(role="user", content="hi")])
    assert completion.text == "slow"
    assert time.perf_counter() - started >= 0.2  # at least half the configured latency


@pytest.mark.parametrize(
    ("setting", "words"),
    [("CHAOS_TOOL_TIMEOUT_RATE", "injected timeout"), ("CHAOS_TOOL_FAILURE_RATE", "connection")],
)
async def test_tool_faults_never_reach_the_upstream(
    chaos_on: Any, demo: Any, monkeypatch: Any, setting: str, words: str
) -> None:
    import safehttp
    from conversations import tools
    from openapi_import.models import Operation

    async def unreachable(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("a chaos fault must stop the call before it is sent")

    monkeypatch.setattr(safehttp, "async_safe_request", unreachable)
    setattr(chaos_on, setting, 1.0)
    # A read that needs no verified customer.
    operation = await Operation.objects.select_related("spec").aget(operation_id="getDiscountCode")
    outcome = await tools.execute(operation, {"code": "WELCOME10"}, sleep=_no_sleep)
    assert not outcome.ok and outcome.error_kind == "transient"
    assert words in outcome.message and outcome.attempts >= 2  # retried like a real failure


async def _no_sleep(seconds: float) -> None:
    return None


@pytest.mark.django_db(transaction=True)
async def test_a_chat_turn_under_tool_chaos_apologises(
    chaos_on: Any, demo: Any, conversation: Conversation
) -> None:
    """The injected failure is handled as a real one: the customer reads an apology."""
    chaos_on.CHAOS_TOOL_FAILURE_RATE = 1.0
    await sync_to_async(verify_customer)(conversation.pk)
    ws, _ = await connect(conversation.pk, "visitor-a")
    await ws.send_json_to({"type": "message", "client_id": "c1", "content": "where is order 1042?"})
    frames = await frames_until(ws, turn_ended)
    await ws.disconnect()
    await wait_idle()
    said = " ".join(f.get("content", "") for f in frames if f["type"] == "message")
    assert "sorry" in said.lower() or "couldn't" in said.lower(), frames
    assert "chaos" not in said  # the injected detail stays on the record


def test_redis_errors_on_cache_calls(chaos_on: Any) -> None:
    chaos_on.CHAOS_REDIS_ERROR_RATE = 1.0
    cache = chaos.ChaosLocMemCache("chaos-test", {})
    for call in (lambda: cache.get("k"), lambda: cache.incr("k"), lambda: cache.add("k", 1)):
        with pytest.raises(RedisConnectionError):
            call()
    chaos_on.CHAOS_REDIS_ERROR_RATE = 0.0
    cache.set("k", 1)
    assert cache.get("k") == 1


@pytest.mark.django_db
def test_statement_timeouts_on_sql(chaos_on: Any) -> None:
    chaos_on.CHAOS_DB_TIMEOUT_RATE = 1.0
    with (
        connection.execute_wrapper(chaos.statement_timeouts),
        pytest.raises(OperationalError, match="statement timeout"),
    ):
        Conversation.objects.count()
    assert Conversation.objects.count() == 0  # without the wrapper, as normal


def test_new_connections_get_the_wrapper_only_when_on(chaos_on: Any) -> None:
    class Fake:
        execute_wrappers: list[Any]

        def __init__(self) -> None:
            self.execute_wrappers = []

    chaos_on.CHAOS_DB_TIMEOUT_RATE = 0.5
    on = Fake()
    chaos.install_db_wrapper(None, on)
    assert on.execute_wrappers == [chaos.statement_timeouts]
    chaos_on.CHAOS_ENABLED = False
    off = Fake()
    chaos.install_db_wrapper(None, off)
    assert off.execute_wrappers == []


def test_production_settings_refuse_chaos() -> None:
    result = run("import django; django.setup()", "config.settings.production",
                 PRODUCTION | {"CHAOS_ENABLED": "true"})  # fmt: skip
    assert result.returncode != 0 and "CHAOS_ENABLED is on" in result.stderr


@pytest.mark.parametrize("rate", ["1.5", "-0.1"])
def test_rates_outside_zero_to_one_are_refused(rate: str) -> None:
    result = run("import django; django.setup()", "config.settings.local",
                 {"CHAOS_MODEL_ERROR_RATE": rate})  # fmt: skip
    assert result.returncode != 0 and "must be between 0 and 1" in result.stderr
