"""The writes of a turn, each a synchronous step the engine runs off the event loop.

Every step that must happen once (a turn for a message, the run of an approved call) is claimed
with a conditional write, so two processes, a retry after a crash or a second tab can never do
it twice. Frames of the rows a step stores are broadcast after its commit
(``conversations.realtime``); its analytics events are stored in one insert by the engine's
step wrapper.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import structlog
from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Exists, F, OuterRef
from django.utils import timezone

from analytics.models import EventType
from analytics.services import event_record
from config.errors import ApplicationError
from config.pii import mask
from conversations import budgets
from conversations.agent import policy
from conversations.agent.extraction import remember
from conversations.agent.injection import INJECTIONS, detect_injection, injection_excerpt
from conversations.agent.replies import (
    HUMAN_OFFER,
    failure_reply,
    failure_summary,
    summarize_result,
)
from conversations.agent.routing import TOOL_THRESHOLD, RouteDecision, rank_tools, split_intents
from conversations.handoff import HandoffTrigger
from conversations.identity import (
    Identity,
    conversation_identify,
    identity_from_result,
    identity_of,
)
from conversations.interrupts import describe_call, expire_one
from conversations.llm.types import ChatMessage, Completion, ErrorKind, LLMError, ToolSpec
from conversations.models import (
    Agent,
    Conversation,
    IdentitySource,
    Interrupt,
    Message,
    ToolCall,
    Turn,
)
from conversations.selectors import conversation_work_summary
from conversations.services import (
    AI_SILENT_STATES,
    conversation_context_update,
    conversation_transition,
    handoff_request,
    message_append,
)
from conversations.tools import ToolOutcome, without_credentials
from conversations.turns import gate, prompt
from conversations.turns.plan import TurnErrorCode, TurnPlan, WorkKind
from conversations.turns.setup import (
    AgentSetup,
    agents_loaded,
    can_verify_in_chat,
    intent_route,
    with_verifiers,
)
from openapi_import.models import AccessType, IdentityRole, Operation

logger = structlog.get_logger(__name__)

State = Conversation.State
HISTORY_MESSAGES = 20


@dataclass
class Claimed:
    """A message's turn and its plan (``turn`` None: another runner took it, or the AI stays
    silent); ``exceeded``: the conversation ran out of turns or tokens."""

    turn: Turn | None
    plan: TurnPlan | None = None
    exceeded: budgets.Exceeded | None = None

    @property
    def over_budget(self) -> bool:
        return self.exceeded is not None


@dataclass
class Offer:
    """What the model is offered for an intent: the agent (with the verification tools for an
    unverified customer), the tools this customer may use, the messages (with the note on the
    held-back ones), and the held-back operation the request aims at, if any."""

    setup: AgentSetup
    tools: list[ToolSpec]
    messages: list[ChatMessage]
    verified: bool
    refuse: Operation | None = None


@dataclass
class Prepared:
    """An intent routed: the chosen agent, the router's decision, and what the model is
    offered (none when the intent escalates, asks back or found no agent)."""

    setup: AgentSetup | None
    decision: RouteDecision
    offer: Offer | None = None


@dataclass
class Reply:
    """The model's answer to an intent, stored with the turn's end when it is the last."""

    completion: Completion
    text: str
    agent: Agent


@dataclass
class Work:
    kind: WorkKind
    message: Message | None = None
    interrupt: Interrupt | None = None
    tool_call: ToolCall | None = None
    # A message's turn, claimed in the trip that found it, and its first intent prepared.
    claimed: Claimed | None = None
    prepared: Prepared | None = None
    # More is known to wait (another message): look again after this work.
    more: bool = False


# --- Locking and finding work ----------------------------------------------------------------


def work_next(*, conversation_id: str) -> Work | None:
    """The conversation's next piece of work: one summary query on the common path, then the
    rows the work needs."""
    summary = conversation_work_summary(conversation_id=conversation_id)
    if summary.unsettled_interrupts:
        # Interrupts whose call has not run: decided ones are work; a pending one blocks.
        now = timezone.now()
        unsettled = (
            Interrupt.objects.filter(
                conversation_id=conversation_id, tool_call__status=ToolCall.Status.PENDING
            )
            .select_related("turn", "tool_call", "operation__spec")
            .order_by("created_at")
        )
        blocked = False
        for interrupt in unsettled:
            if interrupt.status == Interrupt.Status.PENDING and interrupt.expires_at <= now:
                expire_one(interrupt)  # lazily, on read: no timer needed
            if interrupt.status != Interrupt.Status.PENDING:
                return Work(WorkKind.DECIDED, interrupt=interrupt, tool_call=interrupt.tool_call)
            blocked = True
        if blocked:
            # A write waits for a decision: everything after it waits too (SPEC §4).
            return None
    if summary.waiting_message_id is not None:
        message = Message.objects.filter(pk=summary.waiting_message_id).first()
        if message is not None:
            return Work(WorkKind.MESSAGE, message=message)
    if summary.state == State.AWAITING_APPROVAL:
        # Paused, but nothing is pending any more: the state must move on.
        return Work(WorkKind.RECOVER)
    return None


def work_take(
    *, conversation_id: str, token: str | None = None, stamp: str | None = None
) -> tuple[str | None, Work | None]:
    """Take the lock (unless ``token`` says it is held already: the socket that stored the
    message took it) and the next work. For a message, the common case, one transaction
    reads it with its conversation, routes its first intent, claims its turn and reads the
    history (four statements; ``run_turn`` would otherwise make more trips). ``stamp`` is the
    agents' version stamp, when read in the same trip as the lock."""
    if token is None:
        token = gate.lock_acquire(conversation_id=conversation_id)
    if token is None:
        return None, None
    try:
        with transaction.atomic():
            message = _waiting_message(conversation_id)
            if message is not None:
                claimed, prepared = _turn_claim_routed(message, stamp)
    except IntegrityError:
        # Another runner claimed this message's turn (the insert rolled back with the read).
        return token, None
    if message is None:
        # A decided interrupt, a paused state to recover, or nothing: the general look.
        return token, work_next(conversation_id=conversation_id)
    return token, Work(
        WorkKind.MESSAGE,
        message=message,
        claimed=claimed,
        prepared=prepared,
        more=bool(getattr(message, "later", False)),
    )


def _waiting_message(conversation_id: str) -> Message | None:
    """The first customer message no turn has taken, with its conversation, unless a call
    waits for a decision (then ``work_next`` sorts it out)."""
    unsettled = Interrupt.objects.filter(
        conversation_id=OuterRef("conversation_id"), tool_call__status=ToolCall.Status.PENDING
    )
    waiting = Message.objects.filter(
        role=Message.Role.USER, kind=Message.Kind.MESSAGE, turn_started__isnull=True
    )
    later = waiting.filter(conversation_id=OuterRef("conversation_id"), seq__gt=OuterRef("seq"))
    message = (
        waiting.select_related("conversation")
        .filter(conversation_id=conversation_id)
        .annotate(
            unsettled=Exists(unsettled),
            later=Exists(later),
            tokens_used=budgets.tokens_subquery(),  # the token budget, in the same statement
        )
        .order_by("seq")
        .first()
    )
    if message is None or message.unsettled:
        return None
    return message


def _turn_claim_routed(
    message: Message, stamp: str | None = None
) -> tuple[Claimed, Prepared | None]:
    """Claim ``message``'s turn with its first intent routed: the turn is inserted with its
    agent (the unique user message makes the claim exactly-once: a second runner's insert
    fails), the conversation's turn count, agent and spent question set in one update, and
    the history read. Call inside a transaction."""
    conversation = message.conversation
    plan = TurnPlan(intents=split_intents(message.content) or [message.content])
    plan.tokens_before = int(getattr(message, "tokens_used", 0) or 0)
    turn = Turn(conversation=conversation, user_message=message, plan=plan.to_json())
    silent = conversation.state in AI_SILENT_STATES
    exceeded = budgets.turns_check(turn_count=conversation.turn_count + 1) or (
        budgets.tokens_check(used=plan.tokens_before)
    )
    over_budget = exceeded is not None
    setups: list[AgentSetup] = []
    setup: AgentSetup | None = None
    decision: RouteDecision | None = None
    if silent or over_budget:
        turn.status = Turn.Status.SKIPPED if silent else Turn.Status.FAILED
        turn.error_code = "" if silent else TurnErrorCode.BUDGET_EXCEEDED
        turn.error_message = exceeded.reason if exceeded is not None and not silent else ""
        turn.finished_at = timezone.now()
    else:
        try:
            setups = agents_loaded(stamp)
            setup, decision = intent_route(
                plan.current, conversation.context, setups, site_id=conversation.site_id
            )
        except Exception:
            # Leave it to run_turn, whose failure handling tells the customer.
            logger.warning("intent_prepare_deferred", exc_info=True)
    chosen = (
        setup
        if setup is not None
        and decision is not None
        and not (decision.escalate or decision.clarification)
        else None
    )
    updates: dict[str, Any] = {"turn_count": F("turn_count") + 1}
    context = conversation.context
    if decision is not None and "asked" in context:
        # This message answered the agent's question or passed it over: either way the
        # question is spent (a new one is kept by the reply).
        context = {key: value for key, value in context.items() if key != "asked"}
        updates["context"] = context
    if chosen is not None:
        turn.agent = chosen.agent
        updates["current_agent"] = chosen.agent
    turn.save(force_insert=True)
    Conversation.objects.filter(pk=conversation.pk).update(**updates)
    conversation.context = context
    conversation.turn_count += 1
    if silent:
        return Claimed(None), None
    if over_budget:
        _turn_event(turn)
        return Claimed(None, exceeded=exceeded), None
    flags = detect_injection(message.content)
    if flags:
        injection_flag(
            conversation_id=str(conversation.pk),
            source="user",
            flags=flags,
            excerpt=injection_excerpt(message.content),
        )
    if decision is None:
        return Claimed(turn, plan), None
    if chosen is None:
        return Claimed(turn, plan), Prepared(setup, decision)
    conversation.current_agent = chosen.agent
    _agent_event(str(conversation.pk), chosen.agent, decision)
    history = _history(str(conversation.pk), chosen.agent, plan.current, turn)
    offer = _offer(setups, chosen, history, verified=conversation.is_verified)
    return Claimed(turn, plan), Prepared(chosen, decision, offer)


def work_release_then_look(*, conversation_id: str, token: str, look: bool = True) -> bool:
    """Let go of the lock, then look for more work: when ``look`` (the work done may have
    unblocked more, or more was known to wait) or another runner came by while we held the
    lock (its wake flag): work that arrived meanwhile must not wait for the next message."""
    woken = gate.lock_release(conversation_id=conversation_id, token=token)
    if not (look or woken):
        return False
    summary = conversation_work_summary(conversation_id=conversation_id)
    if summary.unsettled_interrupts:
        # Decided, or blocked by a pending one.
        return work_next(conversation_id=conversation_id) is not None
    return summary.waiting_message_id is not None or summary.state == State.AWAITING_APPROVAL


def events_store() -> None:
    """Nothing of its own: the step stores the events earlier steps left in the outbox."""


# --- A turn ----------------------------------------------------------------------------------


def turn_claim(*, conversation_id: str, message: Message) -> tuple[Claimed, Prepared | None]:
    """The turn for ``message`` (none when another runner took it or the AI must stay
    silent), with its first intent routed; ``over_budget`` says the conversation ran out of
    turns (the caller hands it over, outside this step's transaction: a handoff may call a
    model). ``work_take`` does the same in the trip that finds the message."""
    try:
        with transaction.atomic():
            fresh = Message.objects.select_related("conversation").get(
                pk=message.pk, conversation_id=conversation_id
            )
            return _turn_claim_routed(fresh)
    except IntegrityError:
        return Claimed(None), None  # another runner took this message


def turn_loaded(*, turn_id: int) -> tuple[Turn, TurnPlan]:
    turn = Turn.objects.select_related("user_message", "conversation").get(pk=turn_id)
    return turn, TurnPlan.from_json(turn.plan)


_FINISH_FIELDS = (
    "status",
    "finished_at",
    "error_code",
    "error_message",
    "latency_ms",
    "plan",
    # The counters too: a reply's model call leaves them to this save.
    "model_calls",
    "prompt_tokens",
    "completion_tokens",
    "cost",
    "first_token_ms",
)


def turn_finish(*, turn: Turn, plan: TurnPlan, status: str, error_code: str = "") -> None:
    turn.plan = plan.to_json()
    if status == Turn.Status.AWAITING_APPROVAL:
        # The work so far; the resumed part adds its own (engine.resume_turn).
        Turn.objects.filter(pk=turn.pk).update(
            status=status, plan=turn.plan, latency_ms=turn.latency_ms
        )
        return
    turn.status = status
    turn.finished_at = timezone.now()
    turn.error_code = error_code
    turn.save(update_fields=[*_FINISH_FIELDS])
    _turn_event(turn)
    if status == Turn.Status.COMPLETED and turn.tool_calls:
        from conversations.resolution import turn_mark_resolving

        turn_mark_resolving(turn=turn)


def turn_close(
    *, turn: Turn, plan: TurnPlan, status: str, error_code: str = "", reply: Reply | None = None
) -> None:
    """The turn's last write: its final reply, if it has one, and the turn record (with its
    events: one transaction, four statements)."""
    if reply is not None:
        reply_store(conversation_id=str(turn.conversation_id), turn=turn, reply=reply)
    turn_finish(turn=turn, plan=plan, status=status, error_code=error_code)


def _turn_event(turn: Turn) -> None:
    event_record(
        type=EventType.TURN_COMPLETED
        if turn.status == Turn.Status.COMPLETED
        else EventType.TURN_FAILED,
        conversation_id=turn.conversation_id,
        outcome=turn.error_code or turn.status,
        latency_ms=turn.latency_ms,
        data={"turn_id": turn.pk, "first_token_ms": turn.first_token_ms},
    )


def turn_pause(*, conversation_id: str, turn: Turn, plan: TurnPlan) -> None:
    turn.plan = plan.to_json()
    Turn.objects.filter(pk=turn.pk).update(status=Turn.Status.AWAITING_APPROVAL, plan=turn.plan)
    conversation = Conversation.objects.get(pk=conversation_id)
    if conversation.state == State.AI_ACTIVE:
        conversation_transition(
            conversation=conversation, to_state=State.AWAITING_APPROVAL, reason="action waits"
        )


def message_say(
    *,
    conversation_id: str,
    turn: Turn | None,
    role: str,
    content: str,
    agent: Agent | None = None,
    conversation_context: dict[str, Any] | None = None,
) -> Message:
    payload: dict[str, Any] = {"frame": {"turn_id": turn.pk}} if turn else {}
    if agent is not None:
        payload["agent_name"] = agent.name
    message = message_append(
        conversation_id=conversation_id,
        role=role,
        content=content,
        turn=turn,
        agent=agent,
        payload=payload,
        conversation_context=conversation_context,
    )
    event_record(
        type=EventType.MESSAGE_SENT,
        conversation_id=conversation_id,
        agent=agent.name if agent else "",
        outcome=role,
        data={"chars": len(content)},
    )
    return message


def backends_down(*, conversation_id: str, turn: Turn, error: LLMError) -> None:
    """No model answered. Every backend down (the registry's ``all_backends_failed``), or a
    second failure in a row, hands the conversation to staff (``llm_unavailable``); otherwise
    the customer is offered a human. The customer reads the error's user text only."""
    logger.warning("all_backends_failed", conversation_id=conversation_id, error=repr(error))
    context = Conversation.objects.get(pk=conversation_id).context
    escalating = (
        error.kind == ErrorKind.ALL_BACKENDS_FAILED or context.get("backend_failures", 0) >= 1
    )
    after = "I'm asking a member of our support team to help." if escalating else HUMAN_OFFER
    message_say(
        conversation_id=conversation_id,
        turn=turn,
        role=Message.Role.SYSTEM,
        content=f"{error.user_message} {after}",
    )
    if escalating:
        handoff_request(
            conversation_id=conversation_id,
            trigger=HandoffTrigger.LLM_UNAVAILABLE,
            reason=f"No AI backend answered ({error.kind.value}).",
        )
    context["backend_failures"] = context.get("backend_failures", 0) + 1
    conversation_context_update(conversation_id=conversation_id, context=context)
    turn.conversation.context = context


def injection_flag(*, conversation_id: str, source: str, flags: list[str], excerpt: str) -> None:
    """Logged and counted with a PII-masked excerpt; what keeps it harmless is elsewhere."""
    INJECTIONS.labels(source=source).inc()
    logger.warning(
        "injection_flagged",
        conversation_id=conversation_id,
        source=source,
        patterns=flags,
        excerpt=excerpt,
    )
    event_record(
        type=EventType.INJECTION_FLAGGED,
        conversation_id=conversation_id,
        outcome=source,
        data={"patterns": flags, "excerpt": excerpt},
    )


# --- One intent: route, then the model -------------------------------------------------------


def intent_prepare(*, conversation_id: str, turn: Turn, intent: str) -> Prepared:
    """Route an intent after the first, record the choice and build what the model is
    offered: one trip to the database."""
    conversation = Conversation.objects.get(pk=conversation_id)
    setups = agents_loaded()
    setup, decision = intent_route(
        intent, conversation.context, setups, site_id=conversation.site_id
    )
    if "asked" in conversation.context:
        # This message answered the agent's question or passed it over: either way the question
        # is spent (a new one is kept by the reply).
        rest = {key: value for key, value in conversation.context.items() if key != "asked"}
        conversation_context_update(conversation_id=conversation_id, context=rest)
        conversation.context = rest
    turn.conversation.context = conversation.context
    if setup is None or decision.escalate or decision.clarification:
        return Prepared(setup, decision)
    Conversation.objects.filter(pk=conversation_id).update(current_agent=setup.agent)
    if turn.agent_id is None:
        Turn.objects.filter(pk=turn.pk).update(agent=setup.agent)
        turn.agent = setup.agent
    _agent_event(conversation_id, setup.agent, decision)
    history = _history(conversation_id, setup.agent, intent, turn)
    return Prepared(
        setup, decision, _offer(setups, setup, history, verified=conversation.is_verified)
    )


def _history(conversation_id: str, agent: Agent, intent: str, turn: Turn) -> list[ChatMessage]:
    recent = list(
        Message.objects.filter(
            conversation_id=conversation_id,
            kind=Message.Kind.MESSAGE,
            seq__lt=turn.user_message.seq,
            role__in=[Message.Role.USER, Message.Role.ASSISTANT, Message.Role.STAFF],
        )
        .order_by("-seq")
        .values_list("role", "content")[:HISTORY_MESSAGES]
    )
    return prompt.history_messages(agent, reversed(recent), intent)


def _agent_event(conversation_id: str, agent: Agent, decision: RouteDecision) -> None:
    event_record(
        type=EventType.AGENT_SELECTED,
        conversation_id=conversation_id,
        agent=agent.name,
        data={
            "reason": decision.reason,
            "scores": {k: round(v, 3) for k, v in decision.scores.items()},
        },
    )


def clarification_ask(
    *, conversation_id: str, turn: Turn, question: str, decision: RouteDecision
) -> None:
    candidates = sorted(decision.scores, key=decision.scores.__getitem__, reverse=True)[:3]
    # The customer sees the agents' display names, never their slugs, as buttons whose text
    # answers (routing matches an agent's name).
    labels = {s.agent.slug: s.agent.name for s in agents_loaded()}
    options = [labels[slug] for slug in candidates if slug in labels]
    message_append(
        conversation_id=conversation_id,
        kind=Message.Kind.CLARIFICATION,
        role=Message.Role.ASSISTANT,
        content=question,
        turn=turn,
        payload={"frame": {"turn_id": turn.pk, "options": options}},
    )
    event_record(
        type=EventType.CLARIFICATION_ASKED,
        conversation_id=conversation_id,
        data={"scores": {k: round(v, 3) for k, v in decision.scores.items()}},
    )


def reply_store(*, conversation_id: str, turn: Turn, reply: Reply) -> None:
    """The model's answer. The turn's counters are stored by ``turn_finish``, which follows
    (in the same step when it is the turn's last reply). ``context["asked"]``: the agent that
    just asked the customer something, and what for when the backend says (operation,
    argument, known arguments), so the answer ("it arrived broken") is routed back to it; any
    other reply forgets it. Set in the statement that stores the reply."""
    model_called(
        conversation_id=conversation_id,
        turn=turn,
        completion=reply.completion,
        store=False,
        agent=reply.agent,
    )
    current = dict(turn.conversation.context)
    if reply.text.rstrip().endswith("?"):
        current["asked"] = {**(reply.completion.asked or {}), "agent": reply.agent.slug}
    elif "asked" in current:
        del current["asked"]
    changed = current != turn.conversation.context
    message_say(
        conversation_id=conversation_id,
        turn=turn,
        role=Message.Role.ASSISTANT,
        content=reply.text,
        agent=reply.agent,
        conversation_context=current if changed else None,
    )
    turn.conversation.context = current


def model_called(
    *,
    conversation_id: str,
    turn: Turn,
    completion: Completion | None = None,
    error: LLMError | None = None,
    elapsed: float = 0.0,
    store: bool = True,
    agent: Agent | None = None,
) -> None:
    turn.model_calls += 1
    # Who called (SPEC §9 agent usage); the turn's agent when the caller does not say.
    agent_name = agent.name if agent else (turn.agent.name if turn.agent_id and turn.agent else "")
    if completion is None:
        assert error is not None
        event_record(
            type=EventType.MODEL_CALLED,
            conversation_id=conversation_id,
            agent=agent_name,
            backend=error.backend,
            outcome=str(error.kind),
            latency_ms=elapsed * 1000,
        )
        Turn.objects.filter(pk=turn.pk).update(model_calls=turn.model_calls)
        return
    usage = completion.usage
    turn.prompt_tokens += usage.prompt_tokens
    turn.completion_tokens += usage.completion_tokens
    turn.cost = Decimal(turn.cost) + completion.cost
    if store:
        Turn.objects.filter(pk=turn.pk).update(
            model_calls=turn.model_calls,
            prompt_tokens=turn.prompt_tokens,
            completion_tokens=turn.completion_tokens,
            cost=turn.cost,
            first_token_ms=turn.first_token_ms,
        )
    event_record(
        type=EventType.MODEL_CALLED,
        conversation_id=conversation_id,
        agent=agent_name,
        backend=completion.backend,
        model=completion.model,
        outcome="ok",
        latency_ms=completion.latency_ms,
        prompt_tokens=usage.prompt_tokens,
        completion_tokens=usage.completion_tokens,
        cost=completion.cost,
        data={
            "attempts": completion.attempts,
            "tool_calls": len(completion.tool_calls),
            "fallback_from": list(completion.fallback_from),
            # Kept for the record and replay; never the reply.
            "reasoning": completion.reasoning[:4000],
        },
    )
    if completion.fallback_from:
        # A fallback answered: visible to staff as its own event, not only in the logs.
        event_record(
            type=EventType.MODEL_CALLED,
            conversation_id=conversation_id,
            backend=completion.backend,
            model=completion.model,
            outcome="fallback",
            data={"failed": list(completion.fallback_from)},
        )


# The model's answer was unusable twice in a row (invalid tool arguments, invented tools).
REPAIR_FAILED = (
    "Sorry, I couldn't work out how to do that. Could you say it another way? "
    "Or would you like to talk to a human? Use the button below, or just say so."
)


def delayed_say(*, conversation_id: str, turn: Turn) -> None:
    """The model is slow (no first token yet): tell the customer, once per turn."""
    from conversations.model_backends import DELAYED_MESSAGE, delayed_notice_due

    if not delayed_notice_due():
        return
    logger.warning("llm_answer_delayed", conversation_id=conversation_id, turn_id=turn.pk)
    message_say(conversation_id=conversation_id, turn=turn, role=Message.Role.SYSTEM,
                content=DELAYED_MESSAGE)  # fmt: skip


# --- Identity (docs/identity.md; the rules live in conversations.agent.policy) ---------------


def identity_get(*, conversation_id: str) -> Identity | None:
    return identity_of(Conversation.objects.get(pk=conversation_id))


def offer_get(*, conversation_id: str, setup: AgentSetup, messages: list[ChatMessage]) -> Offer:
    """What the model is offered now (after a verification step, or on resuming a turn)."""
    conversation = Conversation.objects.get(pk=conversation_id)
    return _offer(agents_loaded(), setup, messages, verified=conversation.is_verified)


def _offer(
    setups: list[AgentSetup], setup: AgentSetup, messages: list[ChatMessage], *, verified: bool
) -> Offer:
    if not verified:
        setup = with_verifiers(setup, setups)
    tools, messages = prompt.offered(
        setup.tools,
        messages,
        available=setup.available(verified=verified),
        can_verify_in_chat=can_verify_in_chat(setups),
    )
    return Offer(setup, tools, messages, verified, _held_back_asked(setup, messages, verified))


def _held_back_asked(
    setup: AgentSetup, messages: list[ChatMessage], verified: bool
) -> Operation | None:
    """For an anonymous visitor whose request aims at a held-back operation: that operation,
    so the verification offer is the answer, before any model call (the offline backend never
    sees that tool, and a real model need not guess)."""
    if verified or not messages or messages[-1].role != "user":
        return None
    held = set(setup.operations) - setup.available(verified=False)
    if not held:
        return None
    ranked = rank_tools(messages[-1].content or "", setup.tools)
    if not ranked or ranked[0].score < TOOL_THRESHOLD or ranked[0].name not in held:
        return None
    return setup.operations[ranked[0].name]


def unverified_refuse(
    *,
    conversation_id: str,
    turn: Turn,
    setup: AgentSetup,
    operation: Operation,
    arguments: dict[str, Any] | None,
) -> None:
    if arguments is not None:
        # The model called it: keep the record, mark it skipped, send nothing.
        tool_call_record(
            conversation_id=conversation_id,
            turn=turn,
            operation=operation,
            name=operation.operation_id,
            arguments=without_credentials(operation, arguments),
            status=ToolCall.Status.SKIPPED,
        )
    logger.warning(
        "operation_refused_unverified",
        conversation_id=conversation_id,
        operation=operation.operation_id,
        called=arguments is not None,
    )
    event_record(
        type=EventType.TOOL_CALLED,
        conversation_id=conversation_id,
        operation=operation.operation_id,
        outcome="verification_required",
    )
    message_say(
        conversation_id=conversation_id,
        turn=turn,
        role=Message.Role.ASSISTANT,
        content=policy.verification_offer(can_verify_in_chat=can_verify_in_chat(agents_loaded())),
        agent=setup.agent,
    )


def verified_by_operation(*, conversation_id: str, operation: Operation, data: Any) -> None:
    """A verification operation confirmed the customer: the conversation is theirs."""
    identity = identity_from_result(data)
    if identity is None:
        logger.warning("verification_result_unusable", operation=operation.operation_id)
        return
    try:
        with transaction.atomic():
            conversation_identify(
                conversation_id=conversation_id,
                identity=identity,
                source=IdentitySource.VERIFICATION,
            )
    except ApplicationError:
        logger.warning("verification_conflict", conversation_id=conversation_id)


# --- Tool calls ------------------------------------------------------------------------------


def tool_call_record(
    *,
    conversation_id: str,
    turn: Turn,
    operation: Operation | None,
    name: str,
    arguments: dict[str, Any],
    status: str,
) -> ToolCall:
    call = ToolCall.objects.create(
        conversation_id=conversation_id,
        turn=turn,
        operation=operation,
        operation_name=name,
        arguments=arguments,
        status=status,
        idempotency_key=secrets.token_hex(16),
        started_at=timezone.now() if status == ToolCall.Status.RUNNING else None,
    )
    turn.tool_calls += 1
    Turn.objects.filter(pk=turn.pk).update(tool_calls=turn.tool_calls)
    summary = describe_call(operation, arguments) if operation else name
    message_append(
        conversation_id=conversation_id,
        kind=Message.Kind.TOOL_CALL,
        role=Message.Role.SYSTEM,
        turn=turn,
        payload={
            "frame": {"turn_id": turn.pk, "call_id": call.pk, "operation": name, "summary": summary}
        },
    )
    return call


def tool_call_get(*, call_id: int) -> ToolCall:
    return ToolCall.objects.get(pk=call_id)


def tool_call_done(
    *,
    conversation_id: str,
    turn: Turn,
    plan: TurnPlan,
    call: ToolCall,
    operation: Operation,
    outcome: ToolOutcome,
) -> None:
    call.status = ToolCall.Status.SUCCEEDED if outcome.ok else ToolCall.Status.FAILED
    call.http_status = outcome.status_code
    call.result = mask(outcome.data) if outcome.data is not None else None
    call.error_kind = outcome.error_kind
    call.error_message = outcome.message
    call.attempts = outcome.attempts
    call.latency_ms = outcome.latency_ms
    call.finished_at = timezone.now()
    call.save()
    if outcome.service_failed:
        summary = failure_summary(operation.operation_id, outcome.error_kind)
    elif outcome.ok or outcome.data is not None:
        summary = summarize_result(
            operation.operation_id,
            outcome.data,
            status_code=outcome.status_code,
            arguments=call.arguments,
        )
    else:
        summary = "That didn't go through. Could you check the details and try again?"
    message_append(
        conversation_id=conversation_id,
        kind=Message.Kind.TOOL_RESULT,
        role=Message.Role.SYSTEM,
        turn=turn,
        payload={
            "frame": {
                "turn_id": turn.pk,
                "call_id": call.pk,
                "ok": outcome.ok,
                "status_code": outcome.status_code,
                "summary": summary,
            }
        },
    )
    event_record(
        type=EventType.TOOL_CALLED,
        conversation_id=conversation_id,
        operation=operation.operation_id,
        outcome="succeeded" if outcome.ok else outcome.error_kind,
        latency_ms=outcome.latency_ms,
        data={"status_code": outcome.status_code, "attempts": outcome.attempts},
    )
    context = dict(Conversation.objects.get(pk=conversation_id).context)
    if outcome.ok:
        context = remember(context, call.arguments, outcome.data)
        context["backend_failures"] = 0
    elif outcome.service_failed:
        # Counted over the conversation (reset when staff hand it back), not "in a row": a
        # service that fails every other call fails the customer too.
        context["tool_failures"] = context.get("tool_failures", 0) + 1
    conversation_context_update(conversation_id=conversation_id, context=context)
    turn.conversation.context = context
    if outcome.service_failed:
        _tool_failed(
            conversation_id, turn, plan, call, operation, outcome, context["tool_failures"]
        )


def _tool_failed(
    conversation_id: str,
    turn: Turn,
    plan: TurnPlan,
    call: ToolCall,
    operation: Operation,
    outcome: ToolOutcome,
    failures: int,
) -> None:
    """The service failed the call: the customer gets an honest apology with the offer of a
    human, written here rather than by the model (which might call it done), and the turn's
    intent ends. Auth and unknown failures, or ``ESCALATE_AFTER_TOOL_FAILURES`` in the
    conversation, hand it to staff."""
    escalating = outcome.escalate or failures >= settings.ESCALATE_AFTER_TOOL_FAILURES
    plan.tool_failed = call.pk
    if conversation_is_silent(conversation_id=conversation_id):
        return  # a human holds the conversation (a staff-approved call): they read the record
    agent = Agent.objects.filter(pk=plan.agent_id).first() if plan.agent_id else None
    message_say(
        conversation_id=conversation_id,
        turn=turn,
        role=Message.Role.ASSISTANT,
        content=failure_reply(
            operation.operation_id,
            error_kind=outcome.error_kind,
            arguments=call.arguments,
            is_read=operation.access_type == AccessType.READ,
            escalating=escalating,
        ),
        agent=agent,
    )
    if not escalating:
        return
    trigger = (
        HandoffTrigger.TOOL_AUTH_ERROR
        if outcome.error_kind == "auth"
        else HandoffTrigger.TOOL_FAILURE
    )
    plan.escalate = trigger
    handoff_request(
        conversation_id=conversation_id,
        trigger=trigger,
        # For staff (the escalation and its packet): the detail the customer never sees.
        reason=f"{operation.operation_id} failed ({outcome.error_kind}, {failures} failed "
        f"call(s)): {outcome.message or outcome.error_kind}"[:500],
    )


def verification_confirms(operation: Operation) -> bool:
    return operation.identity_role == IdentityRole.VERIFY_CONFIRM


# --- Resuming after a decision ---------------------------------------------------------------


def interrupt_loaded(*, interrupt_id: Any) -> Interrupt:
    return Interrupt.objects.select_related("operation__spec", "turn").get(pk=interrupt_id)


def call_claim(*, interrupt: Interrupt) -> bool:
    """The approved call runs once: only the runner that moves it from pending runs it."""
    if interrupt.status == Interrupt.Status.APPROVED:
        return bool(
            ToolCall.objects.filter(
                pk=interrupt.tool_call_id, status=ToolCall.Status.PENDING
            ).update(status=ToolCall.Status.RUNNING, arguments=interrupt.arguments)
        )
    final = (
        ToolCall.Status.REJECTED
        if interrupt.status == Interrupt.Status.REJECTED
        else ToolCall.Status.EXPIRED
    )
    return bool(
        ToolCall.objects.filter(pk=interrupt.tool_call_id, status=ToolCall.Status.PENDING).update(
            status=final, finished_at=timezone.now()
        )
    )


def conversation_is_silent(*, conversation_id: str) -> bool:
    return Conversation.objects.filter(pk=conversation_id, state__in=AI_SILENT_STATES).exists()


def conversation_unpause(*, conversation_id: str) -> None:
    conversation = Conversation.objects.get(pk=conversation_id)
    if conversation.state == State.AWAITING_APPROVAL:
        conversation_transition(
            conversation=conversation, to_state=State.AI_ACTIVE, reason="decision made"
        )


def expired_settle(*, conversation_id: str) -> None:
    """A paused turn whose interrupt expired: close the turn and let the customer go on."""
    for turn in Turn.objects.filter(
        conversation_id=conversation_id, status=Turn.Status.AWAITING_APPROVAL
    ):
        ToolCall.objects.filter(turn=turn, status=ToolCall.Status.PENDING).update(
            status=ToolCall.Status.EXPIRED, finished_at=timezone.now()
        )
        turn_finish(
            turn=turn,
            plan=TurnPlan.from_json(turn.plan),
            status=Turn.Status.COMPLETED,
            error_code=TurnErrorCode.INTERRUPT_EXPIRED,
        )
    conversation_unpause(conversation_id=conversation_id)


def rest_skip(*, conversation_id: str, turn: Turn, plan: TurnPlan, interrupt: Interrupt) -> None:
    """A rejected or expired call: say so, and drop the rest of the turn's intents."""
    rest = plan.intents[plan.index + 1 :]
    rejected = interrupt.status == Interrupt.Status.REJECTED
    if rejected:
        text = f"Okay, I won't do that: {interrupt.summary}."
    else:
        text = f"The request to {interrupt.summary} expired, so I didn't do it."
    if rest:
        text += " I've also stopped the rest of your request: " + "; ".join(rest) + "."
    agent = Agent.objects.filter(pk=plan.agent_id).first() if plan.agent_id else None
    message_say(
        conversation_id=conversation_id,
        turn=turn,
        role=Message.Role.ASSISTANT,
        content=text,
        agent=agent,
    )
    plan.index = len(plan.intents)
    if not rejected:
        return
    rejections = Interrupt.objects.filter(
        conversation_id=conversation_id, status=Interrupt.Status.REJECTED
    ).count()
    if rejections >= settings.ESCALATE_AFTER_REJECTIONS:
        handoff_request(
            conversation_id=conversation_id,
            trigger=HandoffTrigger.REPEATED_REJECTIONS,
            reason=f"The customer rejected {rejections} actions.",
        )
