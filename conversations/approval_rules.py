"""Approval that depends on an argument (SPEC §6): an operation's ``approval_rules``.

Pure functions over plain data, no ORM. A rule reads::

    {"when": {"argument": "amount", "op": ">", "value": 50}, "approver": "staff"}

``argument`` names a property of the call's arguments, dotted for nested ones
(``body.amount``); a plain name is also looked for inside the request ``body``, where form and
JSON bodies put their fields. The first rule that matches decides the approver; when none
matches, the operation's own approval level applies. A rule whose argument is missing or cannot
be compared (``"amount": "lots"``) never lowers the approval: it applies only when it asks for
more than the default (a refund without an amount waits for staff, to be safe).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

__all__ = [
    "APPROVERS",
    "OPERATORS",
    "ApprovalRuleError",
    "RuleDecision",
    "decide",
    "describe",
    "normalize",
    "threshold_rule",
]

# Who may approve, weakest first.
APPROVERS = ("user", "staff")
NUMERIC_OPERATORS = (">", ">=", "<", "<=")
OPERATORS = (*NUMERIC_OPERATORS, "==", "!=", "in", "not in")
_RANK = {name: rank for rank, name in enumerate(APPROVERS)}
_MISSING = object()


class ApprovalRuleError(ValueError):
    """A rule that cannot be applied; the message names the rule and what is wrong."""


@dataclass(frozen=True)
class RuleDecision:
    """The approver a rule chose, the rule as stored, and why, in words."""

    approver: str
    rule: dict[str, Any]
    reason: str


def normalize(rules: Any) -> list[dict[str, Any]]:
    """Rules in their stored shape, or :class:`ApprovalRuleError` with a clear message.

    Accepts the shape above and the flat one (``{"argument", "op", "value", "approver"}``)."""
    if rules in (None, ""):
        return []
    if isinstance(rules, str):
        try:
            rules = json.loads(rules)
        except ValueError as exc:
            raise ApprovalRuleError(f"Approval rules are not valid JSON: {exc}.") from exc
    if not isinstance(rules, list):
        raise ApprovalRuleError("Approval rules must be a list of rules.")
    return [_rule(item, index) for index, item in enumerate(rules, start=1)]


def _rule(item: Any, index: int) -> dict[str, Any]:
    where = f"Rule {index}"
    if not isinstance(item, Mapping):
        raise ApprovalRuleError(f'{where}: must be an object like {{"when": …, "approver": …}}.')
    when = item.get("when")
    if when is None:
        when = {k: item[k] for k in ("argument", "op", "value") if k in item}
    if not isinstance(when, Mapping):
        raise ApprovalRuleError(f'{where}: "when" must be an object.')
    unknown = set(item) - {"when", "approver", "argument", "op", "value"}
    unknown |= set(when) - {"argument", "op", "value"}
    if unknown:
        raise ApprovalRuleError(f"{where}: unknown keys {', '.join(sorted(map(str, unknown)))}.")
    argument, op, value = when.get("argument"), when.get("op"), when.get("value", _MISSING)
    if not isinstance(argument, str) or not argument.strip() or argument.strip(".") != argument:
        raise ApprovalRuleError(f'{where}: "argument" must name an argument, e.g. "amount".')
    if op not in OPERATORS:
        raise ApprovalRuleError(
            f'{where}: "op" must be one of {", ".join(OPERATORS)} (got {op!r}).'
        )
    if value is _MISSING:
        raise ApprovalRuleError(f'{where}: "value" is missing.')
    if op in NUMERIC_OPERATORS and _number(value) is None:
        raise ApprovalRuleError(f'{where}: "{op}" compares numbers; {value!r} is not one.')
    if op in ("in", "not in") and not isinstance(value, list):
        raise ApprovalRuleError(f'{where}: "{op}" needs a list of values.')
    approver = item.get("approver")
    if approver not in APPROVERS:
        raise ApprovalRuleError(
            f'{where}: "approver" must be one of {", ".join(APPROVERS)} (got {approver!r}).'
        )
    return {"when": {"argument": argument, "op": op, "value": value}, "approver": approver}


def _number(value: Any) -> Decimal | None:
    if isinstance(value, bool) or value is None:
        return None
    try:
        number = Decimal(str(value).strip())
    except (InvalidOperation, ValueError):
        return None
    return number if number.is_finite() else None


def _lookup(arguments: Mapping[str, Any], path: str) -> Any:
    """The argument at ``path``; a plain name falls back to the request body's field."""
    for candidate in (path, f"body.{path}"):
        value: Any = arguments
        for part in candidate.split("."):
            if not isinstance(value, Mapping) or part not in value:
                value = _MISSING
                break
            value = value[part]
        if value is not _MISSING:
            return value
        if "." in path:
            break
    return _MISSING


def _matches(op: str, actual: Any, expected: Any) -> bool | None:
    """Whether the condition holds; ``None`` when it cannot be told."""
    if actual is _MISSING or actual is None:
        return None
    if op in NUMERIC_OPERATORS:
        left, right = _number(actual), _number(expected)
        if left is None or right is None:
            return None
        return {
            ">": left > right,
            ">=": left >= right,
            "<": left < right,
            "<=": left <= right,
        }[op]
    if op in ("==", "!="):
        left, right = _number(actual), _number(expected)
        same = left == right if left is not None and right is not None else actual == expected
        return same if op == "==" else not same
    found = actual in expected
    return found if op == "in" else not found


def describe(rule: Mapping[str, Any]) -> str:
    """``amount > 50 → staff``: the rule in the words the review and the interrupt use."""
    when = rule.get("when", {})
    value = json.dumps(when.get("value"), ensure_ascii=False)
    return f"{when.get('argument')} {when.get('op')} {value} → {rule.get('approver')}"


def decide(
    rules: Sequence[Mapping[str, Any]], arguments: Mapping[str, Any], *, default: str
) -> RuleDecision | None:
    """The first rule that applies to ``arguments``, or ``None`` (the default level applies).

    ``rules`` are stored rules; one that no longer validates is skipped (the admin refuses to
    store it, so only a hand-edited row could hold one)."""
    for index, raw in enumerate(rules, start=1):
        try:
            rule = _rule(raw, index)
        except ApprovalRuleError:
            continue
        when = rule["when"]
        actual = _lookup(arguments, when["argument"])
        held = _matches(when["op"], actual, when["value"])
        if held is None:
            # Unknown: only ever to the stricter side.
            if _RANK[rule["approver"]] > _RANK.get(default, 0):
                why = "missing" if actual is _MISSING or actual is None else "not comparable"
                return RuleDecision(
                    rule["approver"],
                    rule,
                    f"{describe(rule)} ({when['argument']} {why}: the stricter approval applies)",
                )
            continue
        if held:
            return RuleDecision(rule["approver"], rule, describe(rule))
    return None


def threshold_rule(argument: str, threshold: float, *, approver: str = "staff") -> dict[str, Any]:
    """``argument > threshold → approver`` (the demo's refund rule)."""
    value: int | float = int(threshold) if float(threshold).is_integer() else threshold
    return {"when": {"argument": argument, "op": ">", "value": value}, "approver": approver}
