"""The ``offline`` backend: deterministic and model-free, the embedded default (SPEC §5).

It reads the conversation it is given, statelessly, and answers the way a tool-calling model
would: one tool call, a question for missing arguments, or a text reply. It scores the given
tools against the last user message (``conversations.agent.routing``), fills arguments from the
message and from what earlier messages and tool results mention (``extraction``), and writes
replies from tool results (``replies``). See docs/offline-backend.md.

Registration is explicit (``register(registry)`` or ``register_default()``), never a side
effect of importing this module, so a registry built without it really lacks the kind.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any, Protocol

from conversations.agent.extraction import (
    extract_entities,
    fill_arguments,
    property_category,
    remember,
    remember_entities,
    split_words,
)
from conversations.agent.followup import Asked, answer_fill
from conversations.agent.replies import (
    ESCALATION_REPLY,
    ask_for,
    help_text,
    offer_action,
    offer_without_lookup,
    parse_tool_output,
    small_talk_reply,
    summarize_result,
)
from conversations.agent.routing import (
    TOOL_THRESHOLD,
    action_asked_about,
    is_new_request,
    is_read_tool,
    is_small_talk,
    mood,
    rank_tools,
    split_intents,
    wants_human,
)
from conversations.llm.base import Backend, BackendConfig, BackendFactory
from conversations.llm.types import (
    ChatMessage,
    Completion,
    Done,
    StreamEvent,
    TokenDelta,
    ToolCall,
    ToolSpec,
    Usage,
)

__all__ = ["DEFAULT_MODEL", "OfflineBackend", "offline_factory", "register", "register_default"]

DEFAULT_MODEL = "offline-1"
_WORD_RE = re.compile(r"\w+")


@dataclass(frozen=True)
class _Reply:
    text: str = ""
    tool_calls: tuple[ToolCall, ...] = ()
    asked: Asked | None = None  # what a question asks for


class OfflineBackend(Backend):
    """Answers from rules instead of a model; see the module docstring."""

    kind = "offline"

    def __init__(self, config: BackendConfig, *, today: date | None = None) -> None:
        self.name = config.name
        # LLM_MODEL is shared by every kind in the fallback chain; a model name meant for an
        # OpenAI-compatible server means nothing here.
        self.model = config.model if config.model.startswith("offline") else DEFAULT_MODEL
        self._today = today

    async def complete(
        self,
        messages: Sequence[ChatMessage],
        *,
        tools: Sequence[ToolSpec] = (),
        temperature: float | None = None,
        model: str | None = None,
        time_limit: float | None = None,
    ) -> Completion:
        started = time.perf_counter()
        reply = _respond(messages, tools, today=self._today or date.today())
        return self._completion(messages, reply, started)

    async def stream(
        self,
        messages: Sequence[ChatMessage],
        *,
        tools: Sequence[ToolSpec] = (),
        temperature: float | None = None,
        model: str | None = None,
        time_limit: float | None = None,
    ) -> AsyncIterator[StreamEvent]:
        started = time.perf_counter()
        reply = _respond(messages, tools, today=self._today or date.today())
        for chunk in re.findall(r"\S+\s*", reply.text):
            yield TokenDelta(chunk)
        yield Done(self._completion(messages, reply, started))

    def _completion(
        self, messages: Sequence[ChatMessage], reply: _Reply, started: float
    ) -> Completion:
        prompt = sum(_words(message.content) for message in messages) + sum(
            _words(call.arguments_json()) for message in messages for call in message.tool_calls
        )
        completion = _words(reply.text) + sum(
            _words(call.arguments_json()) for call in reply.tool_calls
        )
        return Completion(
            text=reply.text,
            tool_calls=reply.tool_calls,
            usage=Usage(prompt_tokens=prompt, completion_tokens=completion),
            model=self.model,
            backend=self.name,
            latency_ms=(time.perf_counter() - started) * 1000,
            cost=Decimal(0),
            finish_reason="tool_calls" if reply.tool_calls else "stop",
            attempts=1,
            asked=reply.asked.as_context() if reply.asked else None,
        )


def _words(text: str | None) -> int:
    return len(_WORD_RE.findall(text or ""))


def offline_factory(config: BackendConfig) -> OfflineBackend:
    return OfflineBackend(config)


class _KindRegistry(Protocol):
    def register_kind(self, kind: str, factory: BackendFactory) -> None: ...


def register(registry: _KindRegistry) -> None:
    """Makes the ``offline`` kind available to one registry."""
    registry.register_kind("offline", offline_factory)


def register_default() -> None:
    """Makes the ``offline`` kind available to every registry (call it once at startup)."""
    from conversations.llm.registry import register_default_kind

    register_default_kind("offline", offline_factory)


# -- deciding the reply --------------------------------------------------------------------------


def _respond(messages: Sequence[ChatMessage], tools: Sequence[ToolSpec], *, today: date) -> _Reply:
    """The whole decision, from the message list alone."""
    last_user = _last_index(messages, "user")
    descriptions = [(tool.name, tool.description) for tool in tools if not _is_escalation(tool)]
    if last_user is None:
        return _Reply(small_talk_reply("hello", descriptions))
    text = messages[last_user].content or ""
    context = _context(messages[:last_user], today)
    # Intents of this message already turned into calls, one assistant call message each.
    turn = messages[last_user + 1 :]
    done = sum(1 for message in turn if message.role == "assistant" and message.tool_calls)
    calls_so_far = sum(len(message.tool_calls) for message in messages)
    pending = _pending_question(messages, last_user, tools, today)
    if pending is not None:
        answered = _answer(pending, text, tools, today, calls_so_far)
        if answered is not None:
            # The message answers the agent's question: one intent, the asked operation.
            if turn and turn[-1].role == "tool":
                return _Reply(_summarize_turn(messages))
            return answered
    intents = split_intents(text) or [text]
    context = _context(turn, today, start=context)
    if turn and turn[-1].role == "tool":
        summary = _summarize_turn(messages)
        offer = _offer(intents[max(done - 1, 0)], messages)
        if offer:
            summary = f"{summary} {offer}"
        if done < len(intents):
            following = _plan(intents[done], tools, context, today, calls_so_far, descriptions)
            if following.tool_calls or following.text.endswith("?"):
                joined = f"{summary}\n\n{following.text}".strip() if following.text else summary
                return _Reply(joined, following.tool_calls, following.asked)
        return _Reply(summary)
    index = min(done, len(intents) - 1)
    return _plan(intents[index], tools, context, today, calls_so_far, descriptions)


def _last_index(messages: Sequence[ChatMessage], role: str) -> int | None:
    for index in range(len(messages) - 1, -1, -1):
        if messages[index].role == role:
            return index
    return None


def _pending_question(
    messages: Sequence[ChatMessage], user_index: int, tools: Sequence[ToolSpec], today: date
) -> Asked | None:
    """What the assistant asked for just before ``messages[user_index]``, re-derived from the
    history (the backend keeps no state): the question must be the one this backend would have
    asked after the previous user message, given what it knew then. A chain of answers
    ("refund order 1044" → amount and reason? → "it arrived broken" → how much? → "20") is
    followed back to the request that started it."""
    asked = messages[user_index - 1] if user_index > 0 else None
    if (
        asked is None
        or asked.role != "assistant"
        or asked.tool_calls
        or not (asked.content or "").rstrip().endswith("?")
    ):
        return None
    question = (asked.content or "").strip()
    previous = _last_index(messages[: user_index - 1], "user")
    if previous is None:
        return None
    text = messages[previous].content or ""
    earlier = _pending_question(messages, previous, tools, today)
    if earlier is not None:
        answered = _answer(earlier, text, tools, today, 0)
        if answered is not None:
            if answered.asked is not None and question.endswith(answered.asked.question):
                return answered.asked
            return None
    context = _context(messages[:previous], today)
    for intent in split_intents(text) or [text]:
        planned = _plan(intent, tools, context, today, 0, ())
        if planned.asked is not None and question.endswith(planned.asked.question):
            return planned.asked
    return None


def _answer(
    pending: Asked, text: str, tools: Sequence[ToolSpec], today: date, calls_so_far: int
) -> _Reply | None:
    """The call (or the next question) when ``text`` answers ``pending``; None when it is a
    new request or fills none of the asked arguments."""
    tool = next((t for t in tools if t.name == pending.operation), None)
    if tool is None or is_new_request(text, tools, operation=pending.operation):
        return None
    fill = answer_fill(pending, tool.parameters, text, today=today)
    if fill is None:
        return None
    if fill.missing:
        question = ask_for(fill.missing, tool.name)
        return _Reply(
            question, asked=Asked(tool.name, tuple(fill.missing), fill.arguments, question)
        )
    return _Reply(tool_calls=(_call(f"call_{calls_so_far + 1}", tool.name, fill.arguments),))


def _offer(intent: str, messages: Sequence[ChatMessage]) -> str:
    """After a lookup that answered a question about an action ("could I cancel order 1042?"),
    whether it can be done and an offer to do it; nothing is proposed until the customer asks."""
    action = action_asked_about(intent)
    if action is None:
        return ""
    last = messages[-1]
    result, status = parse_tool_output(last.content)
    return offer_action(action, result, status_code=status)


def _context(
    messages: Sequence[ChatMessage], today: date, *, start: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """What earlier messages refer to: the last order number, email and code mentioned by the
    user or shown by a successful tool call, later mentions replacing earlier ones."""
    memory: dict[str, Any] = dict(start or {})
    calls: dict[str, ToolCall] = {}
    for message in messages:
        if message.role == "user" and message.content:
            memory = remember_entities(memory, extract_entities(message.content, today=today))
        elif message.role == "assistant":
            calls.update({call.id: call for call in message.tool_calls})
        elif message.role == "tool":
            call = calls.get(message.tool_call_id or "")
            result, status = parse_tool_output(message.content)
            failed = status is not None and status >= 400
            memory = remember(memory, call.arguments if call else {}, result, failed=failed)
    return memory


def _summarize_turn(messages: Sequence[ChatMessage]) -> str:
    """Replies for the tool results that follow the last assistant call message."""
    asked = _last_call_message(messages)
    calls = {call.id: call for call in asked.tool_calls} if asked else {}
    start = messages.index(asked) + 1 if asked else len(messages) - 1
    replies = []
    for message in messages[start:]:
        if message.role != "tool":
            continue
        call = calls.get(message.tool_call_id or "")
        operation = call.name if call else (message.name or "tool")
        result, status = parse_tool_output(message.content)
        replies.append(
            summarize_result(
                operation, result, status_code=status, arguments=call.arguments if call else {}
            )
        )
    return " ".join(replies) or "Done."


def _last_call_message(messages: Sequence[ChatMessage]) -> ChatMessage | None:
    for message in reversed(messages):
        if message.role == "assistant" and message.tool_calls:
            return message
    return None


def _plan(
    text: str,
    tools: Sequence[ToolSpec],
    context: Mapping[str, Any],
    today: date,
    calls_so_far: int,
    descriptions: Sequence[tuple[str, str]],
) -> _Reply:
    """One intent: a tool call, a question for what is missing, or a text reply."""
    entities = extract_entities(text, today=today)
    call_id = f"call_{calls_so_far + 1}"
    if wants_human(text):
        escalation = next((tool for tool in tools if _is_escalation(tool)), None)
        if escalation is None:
            return _Reply(ESCALATION_REPLY)
        arguments = _escalation_arguments(escalation, text, context)
        return _Reply(tool_calls=(_call(call_id, escalation.name, arguments),))
    candidates = [tool for tool in tools if not _is_escalation(tool)]
    if mood(text) == "question":
        # A question is answered by reading (SPEC §6): "could I cancel order 1042?" looks the
        # order up; only when no read tool fits does the answer come from the write tool's
        # description, as an offer, without a call.
        readers = [tool for tool in candidates if is_read_tool(tool)]
        read_ranked = rank_tools(text, readers, context=context, entities=entities)
        if read_ranked and read_ranked[0].score >= TOOL_THRESHOLD:
            candidates = readers
        else:
            ranked = rank_tools(text, candidates, context=context, entities=entities)
            action = action_asked_about(text)
            if action and ranked and ranked[0].score >= TOOL_THRESHOLD:
                tool = next(t for t in candidates if t.name == ranked[0].name)
                return _Reply(offer_without_lookup(action, tool.name, tool.description))
    ranked = rank_tools(text, candidates, context=context, entities=entities)
    if not ranked or ranked[0].score < TOOL_THRESHOLD:
        if is_small_talk(text):
            return _Reply(small_talk_reply(text, descriptions))
        return _Reply(help_text(descriptions, understood=False))
    tool = next(t for t in candidates if t.name == ranked[0].name)
    fill = fill_arguments(tool.parameters, text, context=context, entities=entities)
    if fill.missing:
        question = ask_for(fill.missing, tool.name)
        return _Reply(
            question, asked=Asked(tool.name, tuple(fill.missing), fill.arguments, question)
        )
    return _Reply(tool_calls=(_call(call_id, tool.name, fill.arguments),))


def _call(call_id: str, name: str, arguments: dict[str, Any]) -> ToolCall:
    raw = json.dumps(arguments, separators=(",", ":"), ensure_ascii=False)
    return ToolCall(id=call_id, name=name, arguments=arguments, raw_arguments=raw)


def _is_escalation(tool: ToolSpec) -> bool:
    words = set(split_words(tool.name))
    return bool(words & {"escalate", "escalation", "handoff"}) or {"human", "transfer"} <= words


def _escalation_arguments(tool: ToolSpec, text: str, context: Mapping[str, Any]) -> dict[str, Any]:
    fill = fill_arguments(tool.parameters, text, context=context)
    arguments = dict(fill.arguments)
    properties = tool.parameters.get("properties") or {}
    for path in fill.missing:
        prop = properties.get(path)
        # The customer's own words are the reason for the handoff; nothing else is guessed.
        if (
            "." not in path
            and isinstance(prop, Mapping)
            and prop.get("type") in (None, "string")
            and property_category(path, prop) in (None, "reason", "query")
        ):
            arguments[path] = text.strip()
    return arguments
