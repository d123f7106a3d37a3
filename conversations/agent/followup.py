"""Answers to the agent's own questions (SPEC §5): "I want a refund of 20 EUR for order 1044" →
"Could you tell me briefly why you'd like the refund?" → "it arrived broken" completes the call.

``Asked`` is what a question asked for: the operation, the arguments still missing (dotted
paths) and the arguments already known. ``answer_fill`` reads the customer's next message as
the value of those arguments, when it fits their schema: an entity of the right kind (an order
number, an email, an amount, a code), a bare number for an amount, a single word for a code,
and for one free-text argument (a reason, a comment, a query) the message itself. Whether the
message is an answer at all, and not a new request, is ``routing.is_new_request``.

Pure logic, no ORM: the offline backend re-derives ``Asked`` from the history, and the runtime
keeps ``Asked.as_context()`` in ``Conversation.context["asked"]`` to route the answer back to
the agent that asked.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any

from conversations.agent.extraction import (
    ArgumentFill,
    coerce,
    extract_entities,
    fill_arguments,
    object_schema,
    property_category,
    schema_types,
)

__all__ = ["Asked", "answer_fill"]

# Categories whose value is free text: the whole answer can be the value.
_FREE_TEXT = frozenset({"reason", "query", None})
_BARE_NUMBER_RE = re.compile(r"(?<![\w.,])(\d+(?:[.,]\d{1,2})?)(?![\w]|[.,]\d)")
_SINGLE_TOKEN_RE = re.compile(
    r"^\s*[\"'\u201c\u2018]?([A-Za-z0-9][A-Za-z0-9_-]{1,39})[\"'\u201d\u2019]?\s*[.!]?\s*$"
)


@dataclass(frozen=True)
class Asked:
    """What the agent asked the customer for."""

    operation: str
    arguments: tuple[str, ...]  # dotted paths still missing, in the order asked
    known: Mapping[str, Any] = field(default_factory=dict)  # arguments already filled
    question: str = ""

    def as_context(self) -> dict[str, Any]:
        """The JSON kept in ``Conversation.context["asked"]``."""
        return {
            "operation": self.operation,
            "argument": self.arguments[0] if self.arguments else "",
            "arguments": list(self.arguments),
            "known": copy.deepcopy(dict(self.known)),
        }


def answer_fill(
    asked: Asked,
    schema: Mapping[str, Any],
    text: str,
    *,
    today: date | None = None,
) -> ArgumentFill | None:
    """The operation's arguments once ``text`` answers ``asked``: the known ones plus the asked
    ones the text fills; ``missing`` lists the asked ones it leaves open. None when it fills
    none of them (then it is no answer)."""
    entities = extract_entities(text, today=today)
    fresh = fill_arguments(schema, text, entities=entities)
    arguments: dict[str, Any] = copy.deepcopy(dict(asked.known))
    missing: list[str] = []
    filled: list[str] = []
    for path in asked.arguments:
        found, value = _get(fresh.arguments, path)
        if found:
            _set(arguments, path, value)
            filled.append(path)
        else:
            missing.append(path)
    for path in list(missing):
        prop = _property_at(schema, path)
        if prop is None:
            continue
        name = path.rsplit(".", 1)[-1]
        category = property_category(name, prop)
        if category in _FREE_TEXT:
            continue  # below, once the identifiers are settled
        ok, value = _direct_value(category, prop, text)
        if ok:
            _set(arguments, path, value)
            missing.remove(path)
            filled.append(path)
    if not filled:
        # The whole message is the value of one free-text argument ("it arrived broken"), but
        # only when nothing else in it was the answer: "20" does not double as a reason.
        for path in missing:
            prop = _property_at(schema, path)
            if prop is None or "string" not in (schema_types(prop) or ["string"]):
                continue
            if property_category(path.rsplit(".", 1)[-1], prop) not in _FREE_TEXT:
                continue
            ok, value = _coerce_text(text, prop)
            if ok:
                _set(arguments, path, value)
                missing.remove(path)
                filled.append(path)
            break
    if not filled:
        return None
    return ArgumentFill(arguments=arguments, missing=missing)


def _direct_value(category: str | None, prop: Mapping[str, Any], text: str) -> tuple[bool, Any]:
    """An answer's value by its shape, where no entity was found: a bare number for an amount
    or a number ("20"), the single word for a code ("welcome10")."""
    if category in ("money", "number"):
        match = _BARE_NUMBER_RE.search(text)
        if match:
            return coerce(Decimal(match.group(1).replace(",", ".")), prop)
    if category == "code":
        match = _SINGLE_TOKEN_RE.match(text)
        if match:
            return coerce(match.group(1), prop)
    return False, None


def _coerce_text(text: str, prop: Mapping[str, Any]) -> tuple[bool, Any]:
    value = re.sub(r"\s+", " ", text).strip().rstrip(".!").strip()
    return coerce(value, prop) if value else (False, None)


def _property_at(schema: Mapping[str, Any], path: str) -> Mapping[str, Any] | None:
    current: Any = schema
    for name in path.split("."):
        container = object_schema(current)
        if container is None:
            return None
        current = container["properties"].get(name)
    return current if isinstance(current, Mapping) else None


def _get(values: Mapping[str, Any], path: str) -> tuple[bool, Any]:
    current: Any = values
    for name in path.split("."):
        if not isinstance(current, Mapping) or name not in current:
            return False, None
        current = current[name]
    return True, current


def _set(values: dict[str, Any], path: str, value: Any) -> None:
    *parents, last = path.split(".")
    current = values
    for name in parents:
        nested = current.get(name)
        if not isinstance(nested, dict):
            nested = {}
            current[name] = nested
        current = nested
    current[last] = value
