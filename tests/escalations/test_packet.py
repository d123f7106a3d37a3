"""The handoff packet: what was tried, approvals, the assessment (rules or model, with its
timeout) and the customer's context with PII masked."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Iterator, Sequence
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.utils import timezone

from conversations.agent.backends import set_registry
from conversations.llm.base import Backend, BackendConfig
from conversations.llm.registry import BackendRegistry
from conversations.llm.types import (
    ChatMessage,
    Completion,
    LLMError,
    StreamEvent,
    ToolSpec,
    Usage,
)
from conversations.models import Conversation, Interrupt, Message, ToolCall, Turn
from conversations.services import message_append, user_message_receive
from escalations import packet as packets
from escalations.models import Escalation
from tests.escalations.support import escalate

pytestmark = pytest.mark.django_db(transaction=True)

EMAIL = "jane.doe@example.com"
CARD = "4111 1111 1111 1111"


def _turn(conversation: Conversation) -> Turn:
    message = message_append(
        conversation_id=conversation.pk, role="user", content="x", client_id="t"
    )
    return Turn.objects.create(conversation=conversation, user_message=message)


def _call(turn: Turn, operation: str, status: str, **extra: Any) -> ToolCall:
    return ToolCall.objects.create(
        conversation=turn.conversation,
        turn=turn,
        operation_name=operation,
        arguments=extra.pop("arguments", {"order_number": 1042}),
        status=status,
        **extra,
    )


def test_customer_text_and_context_are_masked(conversation: Conversation) -> None:
    user_message_receive(
        conversation_id=conversation.pk,
        content=f"Hi, I'm {EMAIL}, my card {CARD} was charged for order 1042",
        client_id="c1",
    )
    user_message_receive(
        conversation_id=conversation.pk, content="call me on +44 20 7946 0958", client_id="c2"
    )
    Conversation.objects.filter(pk=conversation.pk).update(
        context={"email": EMAIL, "order_number": 1042}
    )

    packet = escalate(conversation.pk).packet

    text = json.dumps(packet)
    assert EMAIL not in text and CARD not in text and "7946" not in text
    first = packet["summary"]["first_customer_message"]["content"]
    assert "j***@example.com" in first and "[card ••••1111]" in first and "1042" in first
    assert packet["summary"]["last_customer_message"]["content"] == "call me on [phone]"
    assert packet["summary"]["customer_messages"] == 2
    assert packet["customer"]["context"] == {"email": "j***@example.com", "order_number": 1042}
    assert packet["customer"]["visitor"].startswith("visito") and "visitor-a" not in text
    assert (
        packet["links"]["timeline"]
        == f"/admin/conversations/conversation/{conversation.pk}/change/"
    )


def test_what_was_tried_and_the_approvals_are_listed(conversation: Conversation) -> None:
    turn = _turn(conversation)
    _call(turn, "getOrder", "succeeded", http_status=200)
    _call(
        turn, "getOrder", "failed", http_status=401, error_kind="auth", error_message="Unauthorized"
    )
    refund = _call(turn, "createRefund", "rejected", arguments={"order_number": 1042, "amount": 80})
    pending = _call(turn, "cancelOrder", "pending", arguments={"email": EMAIL})
    for call, status, approver in ((refund, "rejected", "user"), (pending, "pending", "staff")):
        Interrupt.objects.create(
            conversation=conversation,
            turn=turn,
            tool_call=call,
            operation_name=call.operation_name,
            arguments=call.arguments,
            arguments_hash="h",
            summary=f"{call.operation_name} for 1042",
            approver=approver,
            status=status,
            expires_at=timezone.now() + timedelta(minutes=30),
        )

    escalation = escalate(conversation.pk, trigger="tool_auth_error", reason="getOrder failed")
    packet = escalation.packet

    tried = [(c["operation"], c["status"], c["http_status"]) for c in packet["tried"]]
    assert tried == [
        ("getOrder", "succeeded", 200),
        ("getOrder", "failed", 401),
        ("createRefund", "rejected", None),
        ("cancelOrder", "pending", None),
    ]
    assert packet["tried"][1]["error"] == "Unauthorized"
    assert packet["tried"][3]["arguments"] == {"email": "j***@example.com"}
    approvals = {a["operation"]: a["status"] for a in packet["approvals"]}
    assert approvals == {"createRefund": "rejected", "cancelOrder": "pending"}
    assessment = packet["assessment"]
    assert assessment["status"] == "ready" and assessment["source"] == "rules"
    assert "credentials" in assessment["likely_cause"] and assessment["confidence"] == "high"
    assert any("approve or reject" in step for step in assessment["next_steps"])
    assert escalation.priority == "high"


def test_rules_assessment_is_deterministic_from_plain_facts() -> None:
    facts = packets.PacketFacts(
        conversation_id="c",
        customer_messages=[{"seq": 1, "content": "I want to talk to a human", "at": "t"}],
    )
    first = packets.rules_assessment(facts, trigger="customer_button")
    assert first == packets.rules_assessment(facts, trigger="customer_button")
    assert first["confidence"] == "low" and "asked for a person" in first["likely_cause"]
    down = packets.rules_assessment(facts, trigger="llm_unavailable")
    assert down["confidence"] == "high" and "unavailable" in down["likely_cause"]
    assert packets.priority_for(facts, trigger="customer_button") == ("normal", "")


@pytest.mark.parametrize(
    ("text", "cause", "steps", "confidence"),
    [
        ('{"likely_cause": "Card expired", "next_steps": ["Ask for a new card"], '
         '"confidence": "high"}', "Card expired", ["Ask for a new card"], "high"),
        ('Sure! {"likely_cause": "x", "confidence": "certain"}', "x", [], "low"),
        ("plain words from a model", "plain words from a model", [], "low"),
    ],
)  # fmt: skip
def test_model_answers_are_parsed_defensively(
    text: str, cause: str, steps: list[str], confidence: str
) -> None:
    parsed = packets.assessment_parse(text)
    assert (parsed["likely_cause"], parsed["next_steps"], parsed["confidence"]) == (
        cause,
        steps,
        confidence,
    )


# --- The model's assessment through the backend registry --------------------------------------


class ScriptedBackend(Backend):
    """Answers with ``reply``, after ``delay`` seconds, or raises ``error``."""

    def __init__(self, config: BackendConfig) -> None:
        self.name = config.name
        self.kind = config.kind
        self.model = "scripted"
        self.options = config.options
        self.calls: list[Sequence[ChatMessage]] = []

    async def complete(
        self,
        messages: Sequence[ChatMessage],
        *,
        tools: Sequence[ToolSpec] = (),
        temperature: float | None = None,
        model: str | None = None,
        time_limit: float | None = None,
    ) -> Completion:
        await asyncio.sleep(self.options.get("delay", 0))
        if "error" in self.options:
            raise LLMError("server_error", "boom", transient=False)
        return Completion(
            text=self.options.get("reply", ""),
            tool_calls=(),
            usage=Usage(10, 10),
            model="scripted",
            backend=self.name,
            latency_ms=1.0,
            cost=Decimal(0),
            finish_reason="stop",
        )

    def stream(
        self,
        messages: Sequence[ChatMessage],
        *,
        tools: Sequence[ToolSpec] = (),
        temperature: float | None = None,
        model: str | None = None,
        time_limit: float | None = None,
    ) -> AsyncIterator[StreamEvent]:
        raise NotImplementedError


@pytest.fixture
def scripted() -> Iterator[Any]:
    def install(**options: Any) -> None:
        config = BackendConfig(name="scripted", kind="scripted", max_retries=0, options=options)
        set_registry(BackendRegistry([config], factories={"scripted": ScriptedBackend}))

    yield install
    set_registry(None)


@pytest.mark.parametrize(
    ("options", "status", "why"),
    [
        ({"reply": '{"likely_cause": "Parcel lost", "next_steps": ["Resend"], '
                   '"confidence": "medium"}'}, "ready", None),
        ({"delay": 2.0, "reply": "{}"}, "unavailable", "timeout"),
        ({"error": True}, "unavailable", "all_backends_failed"),
    ],
)  # fmt: skip
def test_a_model_backend_assesses_after_the_escalation_opens(
    conversation: Conversation,
    scripted: Any,
    settings: Any,
    options: dict[str, Any],
    status: str,
    why: str | None,
) -> None:
    settings.ESCALATION_ASSESSMENT_TIMEOUT_SECONDS = 0.3
    scripted(**options)
    user_message_receive(conversation_id=conversation.pk, content="my parcel?", client_id="c1")

    started = time.monotonic()
    escalation = escalate(conversation.pk)

    # The request did not wait for the model longer than the timeout, and the job (immediate
    # in tests) stored the outcome in the packet.
    assert time.monotonic() - started < 1.5
    assessment = Escalation.objects.get(pk=escalation.pk).packet["assessment"]
    assert assessment["status"] == status
    if status == "ready":
        assert assessment["source"] == "model" and assessment["likely_cause"] == "Parcel lost"
    else:
        assert assessment["why"] == why
        assert assessment["rules"]["source"] == "rules"  # the facts still speak


def test_the_offline_backend_never_calls_a_model(conversation: Conversation, settings: Any) -> None:
    settings.LLM_BACKEND = "offline"
    settings.LLM_FALLBACK = []
    set_registry(None)
    try:
        escalation = escalate(conversation.pk, trigger="llm_unavailable")
    finally:
        set_registry(None)
    assert escalation.packet["assessment"]["source"] == "rules"
    assert Message.objects.filter(conversation=conversation, kind="escalated").count() == 1
