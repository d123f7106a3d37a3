"""Approval rules: pure evaluation and validation (issue 13 item 7)."""

from __future__ import annotations

from typing import Any

import pytest

from conversations.approval_rules import ApprovalRuleError, decide, describe, normalize

REFUND = [{"when": {"argument": "amount", "op": ">", "value": 50}, "approver": "staff"}]


@pytest.mark.parametrize(
    ("arguments", "approver"),
    [
        ({"body": {"amount": 20}}, None),  # below: the default level applies
        ({"body": {"amount": 50}}, None),  # at: ">" is strict
        ({"body": {"amount": 50.01}}, "staff"),
        ({"body": {"amount": "80"}}, "staff"),  # numbers given as text compare as numbers
        ({"amount": 80}, "staff"),  # top level too
    ],
)
def test_threshold_rule(arguments: dict[str, Any], approver: str | None) -> None:
    decided = decide(REFUND, arguments, default="user")
    assert (decided.approver if decided else None) == approver
    if decided:
        assert decided.rule == REFUND[0] and decided.reason == "amount > 50 → staff"


@pytest.mark.parametrize("arguments", [{}, {"body": {}}, {"body": {"amount": "lots"}}])
def test_unknown_amount_takes_the_stricter_side(arguments: dict[str, Any]) -> None:
    decided = decide(REFUND, arguments, default="user")
    assert decided is not None and decided.approver == "staff"
    assert "stricter approval applies" in decided.reason


def test_unknown_argument_never_lowers_the_approval() -> None:
    lower = [{"when": {"argument": "amount", "op": "<=", "value": 10}, "approver": "user"}]
    assert decide(lower, {}, default="staff") is None
    assert decide(lower, {"body": {"amount": 5}}, default="staff").approver == "user"  # type: ignore[union-attr]
    assert decide(lower, {"body": {"amount": 11}}, default="staff") is None


def test_first_matching_rule_wins_and_dotted_paths_and_lists() -> None:
    rules = normalize(
        [
            {"argument": "body.country", "op": "in", "value": ["US", "CA"], "approver": "staff"},
            {"when": {"argument": "priority", "op": "==", "value": "high"}, "approver": "staff"},
            {"when": {"argument": "priority", "op": "!=", "value": "x"}, "approver": "user"},
        ]
    )
    assert rules[0] == {
        "when": {"argument": "body.country", "op": "in", "value": ["US", "CA"]},
        "approver": "staff",
    }
    assert decide(rules, {"body": {"country": "US"}}, default="user").approver == "staff"  # type: ignore[union-attr]
    assert decide(rules, {"priority": "high"}, default="user").approver == "staff"  # type: ignore[union-attr]
    assert decide(rules, {"priority": "low"}, default="staff").approver == "user"  # type: ignore[union-attr]
    assert describe(rules[0]) == 'body.country in ["US", "CA"] → staff'


@pytest.mark.parametrize(
    ("rules", "message"),
    [
        ("[", "not valid JSON"),
        ({"when": {}}, "must be a list"),
        (["x"], "Rule 1: must be an object"),
        ([{"when": {"argument": "", "op": ">", "value": 1}, "approver": "staff"}], "argument"),
        ([{"when": {"argument": "a", "op": "=>", "value": 1}, "approver": "staff"}], '"op"'),
        ([{"when": {"argument": "a", "op": ">"}, "approver": "staff"}], '"value" is missing'),
        ([{"when": {"argument": "a", "op": ">", "value": "x"}, "approver": "staff"}], "numbers"),
        ([{"when": {"argument": "a", "op": "in", "value": 1}, "approver": "staff"}], "list"),
        ([{"when": {"argument": "a", "op": ">", "value": 1}, "approver": "none"}], "approver"),
        ([{"when": {"argument": "a", "op": ">", "value": 1}, "approver": "staff", "x": 1}],
         "unknown keys x"),
    ],
)  # fmt: skip
def test_bad_rules_are_refused_with_a_clear_message(rules: Any, message: str) -> None:
    with pytest.raises(ApprovalRuleError, match=message.replace("(", r"\(")):
        normalize(rules)


def test_a_stored_rule_that_no_longer_validates_is_skipped() -> None:
    broken: list[Any] = [{"when": {"argument": "a", "op": "~", "value": 1}, "approver": "staff"}]
    assert decide([*broken, *REFUND], {"amount": 99}, default="user").approver == "staff"  # type: ignore[union-attr]
    assert decide(broken, {"a": 5}, default="user") is None
