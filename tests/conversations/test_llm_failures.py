"""What the customer and staff get when a real OpenAI-compatible server misbehaves (issue 15
items 2, 5, 6, 9, 10): the chat over the real ASGI application, the `openai` client over real
HTTP to local test servers configured through ``LLM_BACKENDS``."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
import structlog
from asgiref.sync import sync_to_async
from structlog.testing import capture_logs

from analytics.models import Event
from conversations.llm import UNAVAILABLE_MESSAGE, BackendConfig, ChatMessage, ErrorKind, LLMError
from conversations.llm import registry as registry_module
from conversations.llm.openai_backend import OpenAIBackend
from conversations.model_backends import DELAYED_MESSAGE, get_registry, set_registry
from conversations.models import Agent, Conversation, Message, ToolCall
from conversations.services import conversation_start
from conversations.turns import engine, steps
from conversations.turns.engine import wait_idle
from conversations.turns.steps import REPAIR_FAILED
from tests.conversations.chat import connect, frames_until, turn_ended, verify_customer
from tests.support.openai_server import (
    OpenAITestServer,
    error_reply,
    raw_reply,
    stream_reply,
    text_reply,
    tool_call,
    tool_calls_reply,
)


@pytest.fixture
def alpha() -> Iterator[OpenAITestServer]:
    with OpenAITestServer() as server:
        yield server


@pytest.fixture
def beta() -> Iterator[OpenAITestServer]:
    with OpenAITestServer() as server:
        yield server


@pytest.fixture
def backends(demo: Any, settings: Any, alpha: OpenAITestServer, beta: OpenAITestServer) -> Any:
    """Two named OpenAI-compatible servers and the offline backend, from the environment."""
    settings.LLM_BACKENDS = json.dumps(
        [
            {"name": "alpha", "base_url": alpha.url, "model": "alpha-default", "timeout": 5,
             "retries": 0},
            {"name": "beta", "base_url": beta.url, "model": "beta-default", "timeout": 5,
             "retries": 0},
        ]
    )  # fmt: skip
    settings.LLM_DEFAULT_BACKEND = "offline"  # agents not routed here keep the offline backend
    settings.LLM_FALLBACK = []
    set_registry(None)
    yield settings
    set_registry(None)


def _route(slug: str, **fields: Any) -> None:
    Agent.objects.filter(slug=slug).update(**fields)


async def _ready(conversation: Conversation, **route: Any) -> None:
    """The order-lookup agent on the given backend choices, and a verified customer."""
    await sync_to_async(_route)("order-lookup", **route)
    await sync_to_async(verify_customer)(conversation.pk)


async def _chat(conversation: Conversation, text: str, visitor: str = "visitor-a") -> list[Any]:
    ws, _ = await connect(conversation.pk, visitor)
    await ws.send_json_to({"type": "message", "client_id": "c1", "content": text})
    frames = await frames_until(ws, turn_ended)
    await ws.disconnect()
    await wait_idle()
    return frames


def _replies(frames: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [
        (f["role"], f["content"]) for f in frames if f["type"] == "message" and f["role"] != "user"
    ]


@pytest.fixture
def registry_logs(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[Any]]:
    monkeypatch.setattr(registry_module, "logger", structlog.get_logger(registry_module.__name__))
    monkeypatch.setattr(engine, "logger", structlog.get_logger(engine.__name__))
    monkeypatch.setattr(steps, "logger", structlog.get_logger(steps.__name__))
    from conversations import model_backends

    monkeypatch.setattr(model_backends, "logger", structlog.get_logger(model_backends.__name__))
    with capture_logs() as logs:
        yield logs


# --- Two servers, two agents, each with its model ----------------------------------------------


async def test_two_named_servers_serve_two_agents_at_once(
    backends: Any, alpha: OpenAITestServer, beta: OpenAITestServer, conversation: Conversation
) -> None:
    await sync_to_async(_route)("order-lookup", backend="alpha", model="model-a")
    await sync_to_async(_route)("discounts", backend="beta", model="model-b")
    other = await sync_to_async(conversation_start)(visitor_id="visitor-b")
    for conv in (conversation, other):
        await sync_to_async(verify_customer)(conv.pk)
    # Both answers are slow enough to overlap.
    alpha.enqueue(stream_reply(["Order 1042 ", "is on its way."], delay=0.3))
    beta.enqueue(stream_reply(["SPRING5 ", "is valid."], delay=0.3))

    started = time.monotonic()
    first, second = await asyncio.gather(
        _chat(conversation, "where is my order 1042?"),
        _chat(other, "is SPRING5 still valid?", visitor="visitor-b"),
    )
    assert time.monotonic() - started < 5

    assert ("assistant", "Order 1042 is on its way.") in _replies(first)
    assert ("assistant", "SPRING5 is valid.") in _replies(second)
    assert [r.json["model"] for r in alpha.chat_requests] == ["model-a"]
    assert [r.json["model"] for r in beta.chat_requests] == ["model-b"]
    events = [e async for e in Event.objects.filter(type="model_called").order_by("backend")]
    assert [(e.backend, e.model) for e in events] == [("alpha", "model-a"), ("beta", "model-b")]


# --- A hung server: one deadline, the fallback, a delayed notice ------------------------------


async def test_hung_server_gets_a_delayed_notice_then_the_fallback_answers(
    backends: Any,
    alpha: OpenAITestServer,
    conversation: Conversation,
    registry_logs: list[dict[str, Any]],
) -> None:
    backends.TURN_TIMEOUT_SECONDS = 6.0
    backends.LLM_FALLBACK_RESERVE_SECONDS = 2.0
    backends.LLM_DELAYED_NOTICE_SECONDS = 0.5
    backends.LLM_BACKENDS = json.dumps(
        [{"name": "alpha", "base_url": alpha.url, "model": "slow-model", "timeout": 30,
          "retries": 2}]
    )  # fmt: skip
    await sync_to_async(set_registry)(None)
    await _ready(conversation, backend="alpha", fallback=["offline"])
    alpha.default = text_reply("far too late", delay=8)

    started = time.monotonic()
    frames = await _chat(conversation, "where is my order 1042?")
    elapsed = time.monotonic() - started

    # The deadline (6 - 2 s margin) less the 2 s kept for the fallback: the customer is not
    # kept 3 x 30 s, the retries that do not fit are not made.
    assert elapsed < 5.5
    assert len(alpha.chat_requests) == 1
    replies = _replies(frames)
    assert replies[0] == ("system", DELAYED_MESSAGE)
    assert replies[-1][0] == "assistant" and "1042" in replies[-1][1]  # the offline agent
    failed = [log for log in registry_logs if log["event"] == "llm_call_failed"]
    assert failed and failed[0]["log_level"] == "warning"
    assert (failed[0]["backend"], failed[0]["model"], failed[0]["error_kind"]) == (
        "alpha",
        "slow-model",
        "timeout",
    )
    assert failed[0]["base_url"] == alpha.url
    fallback = [log for log in registry_logs if log["event"] == "llm_fallback_used"]
    assert fallback and fallback[0]["backend"] == "offline"
    events = [
        (e.backend, e.outcome, e.data) async for e in Event.objects.filter(type="model_called")
    ]
    assert ("offline", "fallback", {"failed": ["alpha"]}) in events, events
    health = {h.name: h for h in await sync_to_async(get_registry().health)()}
    assert health["alpha"].consecutive_failures == 1  # the timeout counts in the breaker
    assert health["offline"].extra["fallback_answers"] == 1


async def test_no_fallback_fails_honestly_within_the_turn_limit(
    backends: Any, alpha: OpenAITestServer, conversation: Conversation
) -> None:
    backends.TURN_TIMEOUT_SECONDS = 3.0
    backends.LLM_DELAYED_NOTICE_SECONDS = 0
    # The handoff's assessment has its own backend: the hung one would cost it 3 s more.
    backends.LLM_ESCALATION_BACKEND = "offline"
    await _ready(conversation, backend="alpha", fallback=[])
    alpha.default = text_reply("late", delay=8)
    backends.LLM_BACKENDS = json.dumps(
        [{"name": "alpha", "base_url": alpha.url, "timeout": 30, "retries": 2}]
    )
    await sync_to_async(set_registry)(None)

    started = time.monotonic()
    frames = await _chat(conversation, "where is my order 1042?")
    assert time.monotonic() - started < 4.5  # the turn's limit, not 3 x 30 s
    assert frames[-1]["status"] == "failed"
    assert len(alpha.chat_requests) == 1  # no retry that could not finish in time
    assert _replies(frames), "the customer is told"


# --- Repair instead of discard --------------------------------------------------------------


async def test_bad_arguments_are_sent_back_once_and_repaired(
    backends: Any,
    alpha: OpenAITestServer,
    conversation: Conversation,
    registry_logs: list[dict[str, Any]],
) -> None:
    await _ready(conversation, backend="alpha")
    alpha.enqueue(
        tool_calls_reply(tool_call("getOrderTracking", '{"order_number": 10', id="bad")),
        tool_calls_reply(tool_call("getOrderTracking", {"order_number": 1042}, id="good")),
        stream_reply(["Order 1042 is paid."]),
    )
    frames = await _chat(conversation, "where is my order 1042?")

    assert _replies(frames)[-1] == ("assistant", "Order 1042 is paid.")
    repair = alpha.chat_requests[1].json["messages"]
    tool_message = next(m for m in repair if m["role"] == "tool")
    assert tool_message["tool_call_id"] == "bad" and "not valid JSON" in tool_message["content"]
    calls = [c async for c in ToolCall.objects.all()]
    assert [(c.operation_name, c.arguments) for c in calls] == [
        ("getOrderTracking", {"order_number": 1042})
    ]
    # A model's slip is not a failed backend.
    health = {h.name: h for h in await sync_to_async(get_registry().health)()}
    assert health["alpha"].consecutive_failures == 0


async def test_bad_arguments_twice_fail_the_turn_honestly(
    backends: Any, alpha: OpenAITestServer, conversation: Conversation
) -> None:
    await _ready(conversation, backend="alpha", fallback=["offline"])
    wrong = '{"order_number": '
    alpha.enqueue(
        tool_calls_reply(tool_call("getOrderTracking", wrong)),
        tool_calls_reply(tool_call("getOrderTracking", wrong)),
    )
    frames = await _chat(conversation, "where is my order 1042?")
    assert _replies(frames)[-1] == ("assistant", REPAIR_FAILED)
    assert "not valid JSON" in alpha.chat_requests[1].json["messages"][-1]["content"]
    assert len(alpha.chat_requests) == 2
    assert not await ToolCall.objects.aexists()  # nothing ran, and not a different tool either


async def test_an_invented_tool_is_answered_to_the_model_as_an_error(
    backends: Any, alpha: OpenAITestServer, conversation: Conversation
) -> None:
    await _ready(conversation, backend="alpha")
    alpha.enqueue(
        tool_calls_reply(tool_call("deleteAllOrders", {})),
        stream_reply(["I can look up your order instead."]),
    )
    frames = await _chat(conversation, "where is my order 1042?")
    assert _replies(frames)[-1] == ("assistant", "I can look up your order instead.")
    answer = alpha.chat_requests[1].json["messages"][-1]
    assert answer["role"] == "tool" and "deleteAllOrders" in answer["content"]


# --- What the customer sees: reasoning, mid-stream failure ------------------------------------


async def test_think_blocks_are_never_the_reply_but_kept_for_the_record(
    backends: Any, alpha: OpenAITestServer, conversation: Conversation
) -> None:
    await _ready(conversation, backend="alpha")
    alpha.enqueue(
        stream_reply(["<thi", "nk>The user wants 1042.</th", "ink>\n\nOrder 1042 ", "is paid."])
    )
    frames = await _chat(conversation, "where is my order 1042?")
    tokens = "".join(f["delta"] for f in frames if f["type"] == "token")
    assert tokens == "Order 1042 is paid."
    stored = [m async for m in Message.objects.filter(role="assistant")]
    assert [m.content for m in stored] == ["Order 1042 is paid."]
    event = await Event.objects.aget(type="model_called")
    assert event.data["reasoning"] == "The user wants 1042."


async def test_reasoning_content_is_kept_out_of_the_reply() -> None:
    body = {
        "id": "x", "object": "chat.completion", "created": 1, "model": "r1",
        "choices": [{"index": 0, "finish_reason": "stop", "message": {
            "role": "assistant", "content": "It is paid.", "reasoning_content": "Look it up."}}],
    }  # fmt: skip
    chunks = [
        {"id": "x", "object": "chat.completion.chunk", "created": 1, "model": "r1",
         "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
        for delta, finish in (({"reasoning_content": "Think. "}, None),
                              ({"content": "Paid."}, None), ({}, "stop"))
    ]  # fmt: skip
    sse = (
        b"".join(b"data: " + json.dumps(c).encode() + b"\n\n" for c in chunks) + b"data: [DONE]\n\n"
    )
    with OpenAITestServer() as server:
        backend = OpenAIBackend(BackendConfig(name="r", kind="openai", base_url=server.url))
        server.enqueue(raw_reply(json.dumps(body).encode()))
        completion = await backend.complete([ChatMessage("user", "status?")])
        assert (completion.text, completion.reasoning) == ("It is paid.", "Look it up.")
        server.enqueue(raw_reply(sse, content_type="text/event-stream"))
        events = [event async for event in backend.stream([ChatMessage("user", "status?")])]
        assert [getattr(e, "text", None) for e in events[:-1]] == ["Paid."]
        done = events[-1].completion  # type: ignore[union-attr]
        assert (done.text, done.reasoning) == ("Paid.", "Think.")
        await backend.aclose()


async def test_a_failure_mid_stream_replaces_the_partial_text(
    backends: Any, alpha: OpenAITestServer, conversation: Conversation
) -> None:
    await _ready(conversation, backend="alpha", fallback=["offline"])
    alpha.enqueue(
        stream_reply(["Your order ", "1042 was ", "refunded"], fail_after=2, failure="disconnect")
    )
    frames = await _chat(conversation, "where is my order 1042?")
    tokens = "".join(f["delta"] for f in frames if f["type"] == "token")
    assert tokens.startswith("Your order")
    final = [f for f in frames if f["type"] == "message" and f["role"] != "user"][-1]
    # The durable message of the same turn replaces the streamed bubble (chat.js).
    assert final["turn_id"] == next(f["turn_id"] for f in frames if f["type"] == "token")
    assert final["content"].startswith(UNAVAILABLE_MESSAGE)
    stored = [m.content async for m in Message.objects.exclude(role="user")]
    assert not any("Your order" in text for text in stored)


# --- Errors say what happened -----------------------------------------------------------------


def _backend(url: str, **fields: Any) -> OpenAIBackend:
    return OpenAIBackend(BackendConfig(name="x", kind="openai", base_url=url, **fields))


@pytest.mark.parametrize(
    ("reply", "expected", "kind"),
    [
        (error_reply(404, "no route"), "/v1 suffix", ErrorKind.BAD_REQUEST),
        (raw_reply(b"<!DOCTYPE html><html><body>Login</body></html>", content_type="text/html"),
         "answered with an HTML page", ErrorKind.INVALID_RESPONSE),
        (raw_reply(b"<html><body>502 Bad Gateway</body></html>", status=502,
                   content_type="text/html"), "HTML page, not the API's JSON",
         ErrorKind.SERVER_ERROR),
        (error_reply(404, "The model `gpt-9` does not exist."), "does not know model 'gpt-9'",
         ErrorKind.BAD_REQUEST),
        (error_reply(401, "Missing bearer token"), "wants an API key and none is configured",
         ErrorKind.AUTH),
    ],
)  # fmt: skip
async def test_errors_name_the_url_and_the_mistake(
    reply: Any, expected: str, kind: ErrorKind
) -> None:
    with OpenAITestServer() as server:
        base = server.url.removesuffix("/v1")  # the 404 case: a base URL without /v1
        backend = _backend(base, model="gpt-9")
        server.enqueue(reply)
        with pytest.raises(LLMError) as caught:
            await backend.complete([ChatMessage("user", "hi")])
        await backend.aclose()
    assert caught.value.kind == kind
    assert expected in caught.value.message
    if kind != ErrorKind.INVALID_RESPONSE:
        assert f"{base}/chat/completions" in caught.value.message


async def test_a_plain_body_to_a_stream_request_says_so() -> None:
    body = {
        "id": "x", "object": "chat.completion", "created": 1, "model": "m",
        "choices": [{"index": 0, "finish_reason": "stop",
                     "message": {"role": "assistant", "content": "hi"}}],
    }  # fmt: skip
    with OpenAITestServer() as server:
        backend = _backend(server.url)
        server.enqueue(raw_reply(json.dumps(body).encode()))
        with pytest.raises(LLMError) as caught:
            async for _ in backend.stream([ChatMessage("user", "hi")]):
                pass
        await backend.aclose()
    assert caught.value.kind == ErrorKind.INVALID_RESPONSE
    assert "plain application/json body, not server-sent events" in caught.value.message


def test_the_openai_clients_request_log_is_quiet() -> None:
    from config.logging import build_logging

    loggers = build_logging(log_format="json", level="INFO")["loggers"]
    assert loggers["httpx2"]["level"] == loggers["httpx"]["level"] == "WARNING"


# --- Tool names unique across specs ----------------------------------------------------------


def _second_spec_with_get_order() -> tuple[Any, Any]:
    from openapi_import.models import ApiSpec, Operation

    demo_op = Operation.objects.select_related("spec").get(operation_id="getOrder")
    other_spec = ApiSpec.objects.create(title="Warehouse API", base_url="http://127.0.0.1:9/")
    clone = Operation.objects.get(pk=demo_op.pk)
    clone.pk = None
    clone.spec = other_spec
    clone.save()
    agent = Agent.objects.get(slug="order-lookup")
    agent.operations.add(clone)
    return demo_op, clone


async def test_same_operation_id_in_two_specs_gets_two_names_and_the_right_server(
    backends: Any, alpha: OpenAITestServer, conversation: Conversation
) -> None:
    from conversations.llm.toolnames import MAX_LENGTH

    demo_op, clone = await sync_to_async(_second_spec_with_get_order)()
    await _ready(conversation, backend="alpha")
    shop_name = f"{demo_op.spec.title.lower().replace(' ', '_')}_{demo_op.spec_id}__getOrder"
    alpha.enqueue(
        tool_calls_reply(tool_call(shop_name, {"order_number": 1042})),
        stream_reply(["Order 1042 is paid."]),
    )
    await _chat(conversation, "show me order 1042")
    names = [t["function"]["name"] for t in alpha.chat_requests[0].json["tools"]]
    assert "getOrder" not in names
    assert shop_name in names and f"warehouse_api_{clone.spec_id}__getOrder" in names
    assert all(len(name) <= MAX_LENGTH for name in names)
    call = await ToolCall.objects.select_related("operation").aget()
    # The shop's operation ran against the shop (the clone's server would refuse).
    assert call.operation_id == demo_op.pk and call.status == "succeeded"


def test_tool_names_keep_the_length_and_character_rules() -> None:
    from conversations.llm.toolnames import safe_name, tool_name

    long = "x" * 80
    one = tool_name(spec_key="1", spec_title="Shop API", operation_id=long, shared=True)
    two = tool_name(spec_key="2", spec_title="Shop API", operation_id=long, shared=True)
    assert one != two and len(one) <= 64 and len(two) <= 64
    assert tool_name(spec_key="1", spec_title="S", operation_id="ok", shared=False) == "ok"
    assert safe_name("get order/v2.json") == "get_order_v2_json"


def test_the_review_warns_when_a_tool_name_was_changed(demo: Any) -> None:
    from django.contrib.auth.models import User
    from django.test import Client

    _, clone = _second_spec_with_get_order()
    client = Client()
    client.force_login(User.objects.get(username="reviewer"))
    page = client.get(f"/admin/openapi_import/operation/{clone.pk}/change/").content.decode()
    assert f"warehouse_api_{clone.spec_id}__getOrder" in page
    assert "another spec also has operationId" in page


# --- Tool schemas within a budget ---------------------------------------------------------------


def _huge_schema() -> dict[str, Any]:
    properties = {
        f"field_{n}": {"type": "string", "description": f"Optional field number {n}. " * 8}
        for n in range(150)
    }
    properties["order_number"] = {"type": "integer", "description": "The order."}
    return {"type": "object", "properties": properties, "required": ["order_number"]}


def test_fit_tools_trims_descriptions_then_optional_properties_then_tools() -> None:
    from conversations.llm import ToolSpec
    from conversations.llm.budget import fit_tools, tool_bytes

    huge = ToolSpec("bigOperation", "A long description. " * 40, _huge_schema())
    small = ToolSpec("small", "Small.", {"type": "object", "properties": {}})
    assert tool_bytes(huge) > 35_000

    kept, report = fit_tools([huge, small], max_tools=0, max_bytes=20_000)
    assert [t.name for t in kept] == ["bigOperation", "small"] and report.shortened
    assert not report.optional_removed and report.bytes_after <= 20_000

    kept, report = fit_tools([huge, small], max_tools=0, max_bytes=2_000)
    assert report.optional_removed["bigOperation"][0] == "field_0"
    assert list(kept[0].parameters["properties"]) == ["order_number"]
    assert report.bytes_after <= 2_000 and not report.dropped

    kept, report = fit_tools([huge, small], max_tools=1, max_bytes=0)
    assert [t.name for t in kept] == ["bigOperation"] and report.dropped == ["small"]
    kept, report = fit_tools([huge, small], max_tools=0, max_bytes=150)
    assert [t.name for t in kept] == ["bigOperation"] and report.dropped == ["small"]
    assert report.as_dict()["tools"] == [2, 1]


async def test_an_oversized_schema_is_trimmed_before_it_reaches_the_model(
    backends: Any,
    alpha: OpenAITestServer,
    conversation: Conversation,
    registry_logs: list[dict[str, Any]],
) -> None:
    from openapi_import.models import Operation

    def enlarge() -> None:
        operation = Operation.objects.get(operation_id="getOrder")
        operation.parameters_schema = _huge_schema()
        operation.save()

    await sync_to_async(enlarge)()
    backends.LLM_TOOLS_MAX_BYTES = 4_000
    await _ready(conversation, backend="alpha")
    alpha.enqueue(stream_reply(["Which order?"]))
    await _chat(conversation, "show me order 1042")
    sent = alpha.chat_requests[0].json["tools"]
    assert len(json.dumps(sent, separators=(",", ":")).encode()) <= 4_000
    get_order = next(t for t in sent if t["function"]["name"] == "getOrder")
    assert "order_number" in json.dumps(get_order["function"]["parameters"])
    trimmed = [log for log in registry_logs if log["event"] == "llm_tools_trimmed"]
    assert trimmed, registry_logs
    assert trimmed[0]["optional_removed"].get("getOrder", 0) >= 150, trimmed
