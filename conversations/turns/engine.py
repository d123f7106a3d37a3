"""A turn from receipt to reply (SPEC §3–§6): the async orchestration of the steps.

Work for a conversation is found in the database, not held in memory: user messages without a
turn, and decided interrupts whose call has not run. Whoever holds the conversation's lock does
that work (``process_conversation``): for a message, ``run_turn`` splits it into intents and for
each one routes it to an agent, calls the model, runs or proposes the tools it asks for, and
stores the reply; a write that waits for approval pauses the turn, and ``resume_turn`` carries it
on after the decision, in this process or another.

Every database step runs through :func:`step`, which moves it off the event loop, stores its
analytics events in one insert and publishes the frames its writes broadcast.

Entry points: :func:`schedule_turns` (the chat socket), :func:`process_conversation` (tasks,
recovery), :func:`run_turn`, :func:`resume_turn`, :func:`wait_idle` (tests, shutdown).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from typing import Any

import structlog
from channels.db import database_sync_to_async
from django.conf import settings
from django.db import transaction

from analytics.services import events_batched
from config.pii import Placeholders, mask_messages
from conversations import budgets, tools
from conversations.agent import policy
from conversations.agent.backends import aget_registry
from conversations.agent.injection import detect_injection, injection_excerpt, leaks_prompt
from conversations.agent.replies import looks_internal
from conversations.handoff import HandoffTrigger
from conversations.interrupts import interrupt_create
from conversations.llm.registry import BackendRegistry
from conversations.llm.repair import INVALID_ARGUMENTS, call_problems, repair_messages
from conversations.llm.types import ChatMessage, Completion, Done, LLMError, TokenDelta, ToolSpec
from conversations.model_backends import (
    TURN_DEADLINE,
    AgentRoute,
    DelayedNotice,
    agent_route,
    tools_within_budget,
    turn_deadline_end,
    turn_deadline_start,
)
from conversations.models import Agent, Interrupt, Message, ToolCall, Turn
from conversations.realtime import Outbox, collecting, send_frame
from conversations.services import handoff_request
from conversations.tools import ToolOutcome, without_credentials
from conversations.turns import gate, prompt, steps
from conversations.turns.plan import TurnErrorCode, TurnOutcome, TurnPlan, WorkKind
from conversations.turns.setup import AgentSetup, approval_needed, setup_for
from openapi_import.models import Operation

logger = structlog.get_logger(__name__)

# Streamed text goes out at most once per this many seconds per turn: a fast model (or the
# offline backend, which produces a reply at once) costs a frame or two, not one per word.
TOKEN_FLUSH_SECONDS = 0.05
# Said instead of a reply that repeats the system prompt (SECURITY-TESTS row 40).
PROMPT_LEAK_REPLY = "Sorry, I can't share that. Is there something I can help you with?"
# Bound for the length of one turn (structlog context vars), next to the socket's.
_TURN_LOG_KEYS = ("turn_id", "backend", "model", "agent")
_tasks: set[asyncio.Task[None]] = set()
# Frames of the work in progress (one per process_conversation task), published in batches.
_outbox: ContextVar[Outbox | None] = ContextVar("turn_outbox", default=None)


def step[**P, R](
    func: Callable[P, R],
    *,
    flush: bool = True,
    atomic: bool = False,
    outbox: Outbox | None = None,
    store_events: bool = True,
) -> Callable[P, Awaitable[R]]:
    """Run one step of ORM work from async code in a worker thread that gives its connection
    back after (to the pool on PostgreSQL; plain sync_to_async would keep one checked out per
    thread). Thread-sensitive (one ORM thread per process), as Django's async ORM is.

    The step's analytics events are stored with one insert, and the frames its writes
    broadcast are published after it in one channel-layer message (``flush=False`` leaves
    them for the next publish of the same work, e.g. a reply goes out with ``turn_end``).
    ``atomic=True`` makes the step one transaction, events included: one commit instead of
    one per statement. Only for steps that make no network calls (a model call from
    ``handoff_request``, say, must not hold a transaction open). ``outbox`` collects into a
    caller's outbox instead of the running work's. ``store_events=False`` keeps the step's
    events in the outbox for a later step (a turn stores them all at its end, with one
    insert; a process dying mid-turn loses them, and the turn is marked failed on restart)."""

    async def run(*args: P.args, **kwargs: P.kwargs) -> R:
        current = outbox or _outbox.get()
        own = current is None
        box = Outbox() if current is None else current

        def work() -> R:
            with collecting(box):
                if not atomic:
                    with events_batched(into=box.events, store=store_events):
                        return func(*args, **kwargs)
                with transaction.atomic(), events_batched(into=box.events, store=store_events):
                    return func(*args, **kwargs)

        try:
            result: R = await database_sync_to_async(work)()
            return result
        finally:
            if flush or own:
                await box.flush()

    return run


async def _emit(conversation_id: str, frame: dict[str, Any], *, flush: bool = True) -> None:
    """A frame of the work in progress; ``flush=False`` holds it for the next publish."""
    outbox = _outbox.get()
    if outbox is None:
        await send_frame(conversation_id, frame)
        return
    outbox.add(conversation_id, frame)
    if flush:
        await outbox.flush()


def schedule_turns(
    conversation_id: str,
    outbox: Outbox | None = None,
    *,
    token: str | None = None,
    stamp: str | None = None,
) -> None:
    """Start working on the conversation in the background (the web process's fast path).
    Frames already in ``outbox`` (the customer's message) go out with the turn's first
    publish, or at once if another runner holds the conversation. ``token``: the turn lock,
    already taken for this work (``gate.admit``), with the agents' ``stamp`` read with it."""
    task = asyncio.get_running_loop().create_task(
        process_conversation(str(conversation_id), outbox, token=token, stamp=stamp)
    )
    _tasks.add(task)
    task.add_done_callback(_tasks.discard)


async def wait_idle() -> None:
    """Wait for background turns of this process (tests, graceful shutdown). Tasks of another
    event loop (an earlier test's, closed before their done-callback ran) are dropped: waiting
    on them would spin forever."""
    loop = asyncio.get_running_loop()
    while True:
        for task in list(_tasks):
            if task.done() or (task.get_loop() is not loop and task.get_loop().is_closed()):
                _tasks.discard(task)
        mine = [task for task in _tasks if task.get_loop() is loop]
        if not mine:
            return
        await asyncio.gather(*mine, return_exceptions=True)


# --- The conversation's work, under its lock -------------------------------------------------


async def process_conversation(
    conversation_id: str,
    outbox: Outbox | None = None,
    *,
    token: str | None = None,
    stamp: str | None = None,
) -> None:
    """Do the conversation's work while holding its lock (``token``, if the caller took it),
    until there is none."""
    outbox = outbox or Outbox()
    context = _outbox.set(outbox)
    take = step(steps.work_take, flush=False, store_events=False)
    try:
        token, work = await take(conversation_id=conversation_id, token=token, stamp=stamp)
        while token is not None and work is not None:
            await _do(conversation_id, work)
            # Letting go and looking again is also the check for the next item: work that
            # arrived meanwhile (its runner found the lock taken and left) is picked up here.
            more = await step(steps.work_release_then_look)(
                conversation_id=conversation_id,
                token=token,
                look=work.kind != WorkKind.MESSAGE or work.more,
            )
            token = None
            if not more:
                return
            token, work = await take(conversation_id=conversation_id)
        if token is not None:
            await step(gate.lock_release)(conversation_id=conversation_id, token=token)
            token = None
    except Exception:
        logger.exception("conversation_processing_failed", conversation_id=conversation_id)
    finally:
        if token is not None:
            # Failed or cancelled: never leave the lock to its timeout (the conversation
            # would be deaf for minutes). A cache call is quick enough to make here.
            gate.lock_release(conversation_id=conversation_id, token=token)
        _outbox.reset(context)
        try:
            if outbox.events:
                await step(steps.events_store, outbox=outbox)()
            await outbox.flush()
        except Exception:
            logger.exception("conversation_frames_lost", conversation_id=conversation_id)


async def _do(conversation_id: str, work: steps.Work) -> None:
    structlog.contextvars.bind_contextvars(conversation_id=conversation_id)
    try:
        if work.kind == WorkKind.MESSAGE:
            assert work.message is not None
            await run_turn(
                conversation_id, work.message, claimed=work.claimed, prepared=work.prepared
            )
        elif work.kind == WorkKind.DECIDED:
            assert work.interrupt is not None
            await resume_turn(conversation_id, work.interrupt)
        else:
            await step(steps.expired_settle)(conversation_id=conversation_id)
    finally:
        # A turn's ids leave with it (the task may do the next item, or another conversation's).
        structlog.contextvars.unbind_contextvars(*_TURN_LOG_KEYS)


# --- A turn ----------------------------------------------------------------------------------


async def run_turn(
    conversation_id: str,
    message: Message,
    *,
    claimed: steps.Claimed | None = None,
    prepared: steps.Prepared | None = None,
) -> None:
    if claimed is None:
        claimed, prepared = await step(steps.turn_claim, flush=False, store_events=False)(
            conversation_id=conversation_id, message=message
        )
    if claimed.exceeded is not None:
        await step(budgets.budget_exceeded_handle)(
            conversation_id=conversation_id, turn=None, exceeded=claimed.exceeded
        )
    turn, plan = claimed.turn, claimed.plan
    if turn is None or plan is None:
        return
    structlog.contextvars.bind_contextvars(turn_id=turn.pk)
    await _emit(conversation_id, {"type": "turn_start", "turn_id": turn.pk})
    started = time.perf_counter()
    status: str = Turn.Status.COMPLETED
    error_code = ""
    reply: steps.Reply | None = None
    deadline = turn_deadline_start()  # one deadline for every model call of the turn
    try:
        async with asyncio.timeout(settings.TURN_TIMEOUT_SECONDS):
            status, reply = await _run_intents(conversation_id, turn, plan, prepared)
    except (budgets.BudgetExceeded, TimeoutError) as exc:
        status, error_code = await _over_budget(conversation_id, turn, exc)
    except Exception as exc:
        status = Turn.Status.FAILED
        error_code = await _failure(
            conversation_id,
            turn,
            exc,
            log_event="turn_failed",
            apology="Sorry, something went wrong on our side. Your message is saved; "
            "please try again or ask for a human.",
        )
    turn_deadline_end(deadline)
    turn.latency_ms = (time.perf_counter() - started) * 1000
    # The last reply, the turn record and the turn's events in one transaction; the reply
    # and turn_end go out in one publish.
    await step(steps.turn_close, atomic=True, flush=False)(
        turn=turn, plan=plan, status=status, error_code=error_code, reply=reply
    )
    await _emit(conversation_id, {"type": "turn_end", "turn_id": turn.pk, "status": status})


async def _over_budget(
    conversation_id: str, turn: Turn, exc: budgets.BudgetExceeded | TimeoutError
) -> tuple[str, str]:
    """A budget ran out (the wall time is the turn's timeout): say so and hand over."""
    exceeded = (
        exc.exceeded if isinstance(exc, budgets.BudgetExceeded) else budgets.wall_time_exceeded()
    )
    turn.error_message = exceeded.reason
    await step(budgets.budget_exceeded_handle)(
        conversation_id=conversation_id, turn=turn, exceeded=exceeded
    )
    return Turn.Status.FAILED, TurnErrorCode.BUDGET_EXCEEDED


async def _failure(
    conversation_id: str, turn: Turn, exc: Exception, *, log_event: str, apology: str
) -> TurnErrorCode:
    """A turn that failed: staff read the exception on the turn record; for a model failure
    the customer is offered a human (handed over when it repeats), else reads ``apology``.
    Call from the ``except`` block (the log takes the traceback)."""
    turn.error_message = prompt.error_detail(exc)
    if isinstance(exc, LLMError):
        await step(steps.backends_down)(conversation_id=conversation_id, turn=turn, error=exc)
        return TurnErrorCode.BACKEND_UNAVAILABLE
    logger.exception(log_event, conversation_id=conversation_id, turn_id=turn.pk)
    await _say(conversation_id, turn, Message.Role.SYSTEM, apology)
    return TurnErrorCode.INTERNAL_ERROR


async def _say(
    conversation_id: str, turn: Turn, role: str, content: str, agent: Agent | None = None
) -> None:
    await step(steps.message_say)(
        conversation_id=conversation_id, turn=turn, role=role, content=content, agent=agent
    )


async def _run_intents(
    conversation_id: str,
    turn: Turn,
    plan: TurnPlan,
    prepared: steps.Prepared | None = None,
    reply: steps.Reply | None = None,
) -> tuple[str, steps.Reply | None]:
    """Run the remaining intents in order; a write that waits pauses everything after it.
    ``prepared`` is the first intent's routing, when it was done already. Returns the turn's
    status and its last reply, which the caller stores with the turn's end; an earlier
    intent's reply (``reply``, or one of the loop's) is stored before the next intent runs."""
    while not plan.done:
        if reply is not None:
            await _reply_store(conversation_id, turn, reply)
            reply = None
        outcome = await _run_intent(conversation_id, turn, plan, prepared)
        prepared = None
        if isinstance(outcome, steps.Reply):
            reply, outcome = outcome, TurnOutcome.DONE
        if outcome == TurnOutcome.PAUSED:
            await step(steps.turn_pause)(conversation_id=conversation_id, turn=turn, plan=plan)
            return Turn.Status.AWAITING_APPROVAL, None
        plan.next_intent()
        if outcome == TurnOutcome.STOP:
            break
    return Turn.Status.COMPLETED, reply


async def _reply_store(conversation_id: str, turn: Turn, reply: steps.Reply) -> None:
    # The reply goes out with whatever the turn publishes next.
    await step(steps.reply_store, flush=False, atomic=True, store_events=False)(
        conversation_id=conversation_id, turn=turn, reply=reply
    )


async def _run_intent(
    conversation_id: str, turn: Turn, plan: TurnPlan, prepared: steps.Prepared | None = None
) -> TurnOutcome | steps.Reply:
    if prepared is None:
        prepared = await step(steps.intent_prepare, atomic=True, store_events=False)(
            conversation_id=conversation_id, turn=turn, intent=plan.current
        )
    setup, decision = prepared.setup, prepared.decision
    if decision.escalate:
        await step(handoff_request)(
            conversation_id=conversation_id,
            trigger=HandoffTrigger.CUSTOMER_WORDS,
            reason="The customer asked for a human.",
        )
        return TurnOutcome.STOP
    if decision.clarification or setup is None or prepared.offer is None:
        question = decision.clarification or "Could you tell me a bit more about what you need?"
        await step(steps.clarification_ask)(
            conversation_id=conversation_id, turn=turn, question=question, decision=decision
        )
        return TurnOutcome.DONE
    plan.agent_id = setup.agent.pk
    return await _agent_loop(conversation_id, turn, plan, prepared.offer)


async def _agent_loop(
    conversation_id: str, turn: Turn, plan: TurnPlan, offer: steps.Offer
) -> TurnOutcome | steps.Reply:
    """Model calls until the model answers in words (the reply, returned to be stored), a
    call waits for a decision, or a budget or a failure ends the intent."""
    registry = await aget_registry()
    setup, verified = offer.setup, offer.verified
    messages = offer.messages
    tools = tools_within_budget(conversation_id, offer.tools, messages)
    agent = setup.agent
    route = agent_route(agent, registry)  # backend, model and fallback order of the agent
    repairs = 0
    _bind_backend(registry, route.backend, agent)
    if offer.refuse is not None:
        await step(steps.unverified_refuse)(
            conversation_id=conversation_id,
            turn=turn,
            setup=setup,
            operation=offer.refuse,
            arguments=None,
        )
        return TurnOutcome.DONE
    while True:
        exceeded = budgets.model_calls_check(model_calls=turn.model_calls) or budgets.tokens_check(
            used=plan.tokens_before + turn.prompt_tokens + turn.completion_tokens
        )
        if exceeded is not None:
            raise budgets.BudgetExceeded(exceeded)
        completion = await _stream_completion(
            conversation_id, turn, registry, messages, tools, route, plan
        )
        route = route.after(completion)
        # Schema violations of offered tools are the tool layer's to answer (the call is
        # recorded, and approvals still apply); here: unusable JSON and invented tools.
        # (An invented tool name still goes the tool layer's way: a skipped record and "no
        # tool named" answered to the model.)
        problems = [
            p
            for p in call_problems(
                completion.tool_calls, tools, known=setup.operations, check_schema=False
            )
            if p.kind == INVALID_ARGUMENTS
        ]
        if problems:
            # Invalid arguments or an invented tool: the model gets the errors for one repair
            # round; nothing of that answer runs, and the customer sees none of it.
            await step(steps.model_called)(
                conversation_id=conversation_id, turn=turn, completion=completion
            )
            logger.warning(
                "llm_tool_calls_invalid",
                conversation_id=conversation_id,
                backend=completion.backend,
                model=completion.model,
                problems=[f"{p.kind}: {p.message}"[:300] for p in problems],
                repair=repairs == 0,
            )
            if repairs >= 1:
                await _say(
                    conversation_id, turn, Message.Role.ASSISTANT, steps.REPAIR_FAILED, agent
                )
                return TurnOutcome.DONE
            repairs += 1
            messages.extend(repair_messages(completion, problems))
            continue
        if not completion.tool_calls:
            text = completion.text.strip() or "I'm not sure how to help with that."
            if leaks_prompt(text, messages[0].content or ""):
                await step(steps.injection_flag)(
                    conversation_id=conversation_id,
                    source="model_output",
                    flags=["prompt_leak"],
                    excerpt=injection_excerpt(text),
                )
                text = PROMPT_LEAK_REPLY
            return steps.Reply(completion, text, agent)
        await step(steps.model_called)(
            conversation_id=conversation_id, turn=turn, completion=completion, agent=agent
        )
        messages.append(
            ChatMessage(
                role="assistant", content=completion.text or None, tool_calls=completion.tool_calls
            )
        )
        for call in completion.tool_calls:
            exceeded = budgets.tool_calls_check(tool_calls=turn.tool_calls)
            if exceeded is not None:
                raise budgets.BudgetExceeded(exceeded)
            operation = setup.operations.get(call.name)
            if operation is not None and not policy.operation_available(
                operation, verified=verified
            ):
                # Not offered, called anyway (a model's guess, an injected instruction).
                await step(steps.unverified_refuse)(
                    conversation_id=conversation_id,
                    turn=turn,
                    setup=setup,
                    operation=operation,
                    arguments=call.arguments,
                )
                return TurnOutcome.DONE
            # Placeholders the model wrote (PII_MASK_MODEL_INPUT) become the customer's values.
            arguments = Placeholders(plan.pii).restore(call.arguments)
            result = await _tool_call(conversation_id, turn, plan, setup, call.name, arguments)
            if operation is not None and steps.verification_confirms(operation):
                again = await step(steps.offer_get)(
                    conversation_id=conversation_id, setup=setup, messages=messages
                )
                if again.verified != verified:
                    verified, messages = again.verified, again.messages
                    tools = tools_within_budget(conversation_id, again.tools, messages)
            if result is None:
                # Waits for a decision: keep the model conversation so the turn resumes later,
                # in this process or another.
                plan.messages = prompt.messages_dump(messages)
                plan.pending_call_id = call.id
                return TurnOutcome.PAUSED
            messages.append(
                ChatMessage(role="tool", tool_call_id=call.id, name=call.name, content=result)
            )
            failed, plan.tool_failed = plan.tool_failed, None
            if plan.escalate:
                return TurnOutcome.STOP
            if failed:
                return TurnOutcome.DONE  # the apology is said; the next intent may still run


def _bind_backend(registry: Any, backend: str | None, agent: Agent) -> None:
    """The backend and model a turn is about to use, on its log lines (the answering one
    replaces them after each call)."""
    name = backend or getattr(registry, "primary", "")
    try:
        model = registry.backend(name).model if name else ""
    except Exception:  # an unbuildable backend fails its call, with its own log line
        model = ""
    structlog.contextvars.bind_contextvars(backend=name, model=model, agent=agent.slug)


async def _stream_completion(
    conversation_id: str,
    turn: Turn,
    registry: BackendRegistry,
    messages: list[ChatMessage],
    offer: list[ToolSpec],
    route: AgentRoute,
    plan: TurnPlan | None = None,
) -> Completion:
    """One streamed model call; ``plan`` keeps the PII placeholders (PII_MASK_MODEL_INPUT)."""
    started = last_sent = time.perf_counter()
    completion: Completion | None = None
    held: list[str] = []
    streamed: list[str] = []
    system_prompt = messages[0].content or "" if messages and messages[0].role == "system" else ""
    if settings.PII_MASK_MODEL_INPUT and plan is not None:
        placeholders = Placeholders(plan.pii)
        messages = mask_messages(messages, placeholders)
        plan.pii = placeholders.mapping

    async def delayed() -> None:
        await step(steps.delayed_say)(conversation_id=conversation_id, turn=turn)

    try:
        async with DelayedNotice(delayed) as notice:
            async for event in registry.stream(
                messages, tools=offer, deadline=TURN_DEADLINE.get(), **route.options()
            ):
                if isinstance(event, TokenDelta):
                    notice.cancel()
                    now = time.perf_counter()
                    if turn.first_token_ms is None:
                        turn.first_token_ms = (now - started) * 1000
                    held.append(event.text)
                    streamed.append(event.text)
                    if leaks_prompt("".join(streamed), system_prompt):
                        held = []  # the reply is replaced at the end (_agent_loop); stop showing it
                        continue
                    if now - last_sent >= TOKEN_FLUSH_SECONDS:
                        await _emit(conversation_id, _token_frame(turn, held))
                        held, last_sent = [], now
                elif isinstance(event, Done):
                    completion = event.completion
    except LLMError as exc:
        await step(steps.model_called)(
            conversation_id=conversation_id,
            turn=turn,
            error=exc,
            elapsed=time.perf_counter() - started,
        )
        raise
    finally:
        if held:
            # The rest goes out with whatever the turn publishes next.
            await _emit(conversation_id, _token_frame(turn, held), flush=False)
    assert completion is not None, "a stream always ends with Done"
    # The backend that answered (a fallback, maybe) and its model, on every later line.
    structlog.contextvars.bind_contextvars(backend=completion.backend, model=completion.model)
    return completion


def _token_frame(turn: Turn, texts: list[str]) -> dict[str, Any]:
    return {"type": "token", "turn_id": turn.pk, "delta": "".join(texts)}


# --- Tool calls ------------------------------------------------------------------------------


async def _tool_call(
    conversation_id: str,
    turn: Turn,
    plan: TurnPlan,
    setup: AgentSetup,
    name: str,
    arguments: dict[str, Any],
) -> str | None:
    """Run a call at once (returns the delimited result for the model) or open an interrupt
    (returns ``None``: the turn pauses)."""
    operation = setup.operations.get(name)

    async def record(status: str) -> ToolCall:
        return await step(steps.tool_call_record)(
            conversation_id=conversation_id,
            turn=turn,
            operation=operation,
            name=name,
            arguments=arguments,
            status=status,
        )

    if operation is None:
        await record(ToolCall.Status.SKIPPED)
        return prompt.tool_output(name, None, {"error": f"There is no tool named {name}."})
    # What is stored, shown for approval and sent is what the model gave, minus credentials.
    arguments = without_credentials(operation, arguments)
    need = approval_needed(setup.agent, operation, arguments)
    if need.approver:
        call = await record(ToolCall.Status.PENDING)
        await step(interrupt_create)(
            turn=turn,
            tool_call=call,
            operation=operation,
            approver=need.approver,
            policy_reason=need.reason,
            approval_rule=need.rule,
        )
        return None
    call = await record(ToolCall.Status.RUNNING)
    return await _execute(conversation_id, turn, plan, call, operation)


async def _execute(
    conversation_id: str, turn: Turn, plan: TurnPlan, call: ToolCall, operation: Operation
) -> str:
    identity = await step(steps.identity_get)(conversation_id=conversation_id)
    if identity is None and policy.needs_verified_customer(operation):
        # The last guard, whatever led here (an approval given before the rules changed, a
        # staff decision on an anonymous conversation): nothing goes out for nobody.
        outcome = ToolOutcome(
            ok=False, error_kind="validation", message="This action needs a verified customer."
        )
    else:
        outcome = await tools.execute(
            operation, call.arguments, idempotency_key=call.idempotency_key, identity=identity
        )
    await step(steps.tool_call_done)(
        conversation_id=conversation_id,
        turn=turn,
        plan=plan,
        call=call,
        operation=operation,
        outcome=outcome,
    )
    if outcome.ok and steps.verification_confirms(operation):
        await step(steps.verified_by_operation)(
            conversation_id=conversation_id, operation=operation, data=outcome.data
        )
    text = json.dumps(outcome.data, default=str) if outcome.data is not None else ""
    flags = detect_injection(text)
    if flags:
        await step(steps.injection_flag)(
            conversation_id=conversation_id,
            source="tool_output",
            flags=flags,
            excerpt=injection_excerpt(text),
        )
    body: Any = outcome.data
    if outcome.service_failed or (body is None and not outcome.ok):
        # The model sees what the customer may hear: an exception's text, a host and port or
        # a 5xx page are for staff (the tool-call record and the handoff packet).
        body = {"error": _public_error(outcome)}
    return prompt.tool_output(
        operation.operation_id,
        outcome.status_code,
        body,
        error=outcome.error_kind if not outcome.ok else "",
    )


def _public_error(outcome: ToolOutcome) -> str:
    if outcome.error_kind == "validation" and not looks_internal(outcome.message):
        return str(outcome.message)  # the arguments do not fit: the model may fix them
    return str(outcome.public_message)


# --- Resuming after a decision ---------------------------------------------------------------


async def resume_turn(conversation_id: str, interrupt: Interrupt) -> None:
    # Fresh, with what the async code reads, whatever the caller passed.
    interrupt = await step(steps.interrupt_loaded)(interrupt_id=interrupt.pk)
    if not await step(steps.call_claim)(interrupt=interrupt):
        return
    turn, plan = await step(steps.turn_loaded)(turn_id=interrupt.turn_id)
    structlog.contextvars.bind_contextvars(turn_id=turn.pk)
    await _emit(conversation_id, {"type": "turn_start", "turn_id": turn.pk})
    started = time.perf_counter()
    status: str = Turn.Status.COMPLETED
    error_code = ""
    reply: steps.Reply | None = None
    deadline = turn_deadline_start()
    try:
        async with asyncio.timeout(settings.TURN_TIMEOUT_SECONDS):
            await step(steps.conversation_unpause)(conversation_id=conversation_id)
            if interrupt.status == Interrupt.Status.APPROVED:
                status, reply = await _continue_approved(conversation_id, turn, plan, interrupt)
            else:
                await step(steps.rest_skip)(
                    conversation_id=conversation_id, turn=turn, plan=plan, interrupt=interrupt
                )
    except (budgets.BudgetExceeded, TimeoutError) as exc:
        status, error_code = await _over_budget(conversation_id, turn, exc)
    except Exception as exc:
        status = Turn.Status.FAILED
        error_code = await _failure(
            conversation_id,
            turn,
            exc,
            log_event="turn_resume_failed",
            apology="Sorry, something went wrong on our side while finishing that.",
        )
    # The work after the decision (the wait for it is the approval latency, counted apart).
    turn.latency_ms = (turn.latency_ms or 0) + (time.perf_counter() - started) * 1000
    turn_deadline_end(deadline)
    await step(steps.turn_close, atomic=True)(
        turn=turn, plan=plan, status=status, error_code=error_code, reply=reply
    )
    await _emit(conversation_id, {"type": "turn_end", "turn_id": turn.pk, "status": status})


async def _continue_approved(
    conversation_id: str, turn: Turn, plan: TurnPlan, interrupt: Interrupt
) -> tuple[str, steps.Reply | None]:
    operation = interrupt.operation
    call = await step(steps.tool_call_get)(call_id=interrupt.tool_call_id)
    if operation is None:
        await _say(
            conversation_id, turn, Message.Role.SYSTEM, "That action is no longer available."
        )
        return Turn.Status.COMPLETED, None
    result = await _execute(conversation_id, turn, plan, call, operation)
    failed, plan.tool_failed = plan.tool_failed, None
    if await step(steps.conversation_is_silent)(conversation_id=conversation_id):
        # Staff approved it while a human holds the conversation: the call runs, the AI keeps
        # quiet and the human reads the result.
        return Turn.Status.COMPLETED, None
    setup = await step(setup_for)(plan.agent_id)
    messages = prompt.messages_load(plan.messages)
    pending_id, plan.pending_call_id = plan.pending_call_id, None
    if setup is None or not messages:
        return await _run_remaining(conversation_id, turn, plan)
    messages.append(
        ChatMessage(
            role="tool", tool_call_id=pending_id, name=operation.operation_id, content=result
        )
    )
    if plan.escalate:
        return Turn.Status.COMPLETED, None
    if failed:
        return await _run_remaining(conversation_id, turn, plan)
    offer = await step(steps.offer_get)(
        conversation_id=conversation_id, setup=setup, messages=messages
    )
    outcome = await _agent_loop(conversation_id, turn, plan, offer)
    if outcome == TurnOutcome.PAUSED:
        await step(steps.turn_pause)(conversation_id=conversation_id, turn=turn, plan=plan)
        return Turn.Status.AWAITING_APPROVAL, None
    reply = outcome if isinstance(outcome, steps.Reply) else None
    return await _run_remaining(conversation_id, turn, plan, reply)


async def _run_remaining(
    conversation_id: str, turn: Turn, plan: TurnPlan, reply: steps.Reply | None = None
) -> tuple[str, steps.Reply | None]:
    plan.next_intent()
    return await _run_intents(conversation_id, turn, plan, reply=reply)
