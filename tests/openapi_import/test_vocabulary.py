"""One vocabulary of what an operation does, shared by import, models, routing and replies."""

from __future__ import annotations

import pytest

from conversations.agent import extraction, replies, routing
from conversations.llm.types import ToolSpec
from openapi_import import classification, models, vocabulary
from tests.openapi_import.test_classification import make_op


def test_there_is_one_split_words_and_one_set_of_enums() -> None:
    assert extraction.split_words is vocabulary.split_words
    assert classification.split_words is vocabulary.split_words
    assert models.AccessType is vocabulary.AccessType
    assert models.Approval is vocabulary.Approval
    assert models.IdentityRole is vocabulary.IdentityRole


@pytest.mark.parametrize(
    ("name", "words"),
    [
        ("getOrderTracking", ["get", "order", "tracking"]),
        ("HTTPServer", ["http", "server"]),
        ("Idempotency-Key", ["idempotency", "key"]),
        ("order_number.v2", ["order", "number", "v2"]),
        ("", []),
        ("--", []),
    ],
)
def test_split_words(name: str, words: list[str]) -> None:
    assert vocabulary.split_words(name) == words


def test_classify_returns_the_enums_the_models_store() -> None:
    op = make_op("POST", "/orders/{id}/refund", operation_id="refundOrder", summary="Refund")
    result = classification.classify(op)
    assert isinstance(result.access, vocabulary.AccessType)
    assert isinstance(result.approval, vocabulary.Approval)
    assert (result.access, result.approval) == ("write", "staff")
    field = models.Operation._meta.get_field("access_type")
    assert [value for value, _ in field.choices] == list(vocabulary.AccessType)  # type: ignore[union-attr]


@pytest.mark.parametrize("verb", ["view", "count", "describe", "search", "check"])
def test_the_router_and_the_importer_agree_on_read_verbs(verb: str) -> None:
    name = f"{verb}Orders"
    assert routing.is_read_tool(ToolSpec(name, "", {}))
    post = make_op("POST", f"/orders/{verb}", operation_id=name)
    assert classification.classify(post).access == "read"
    # Replies name the thing, not the verb.
    assert replies._noun(name) == "order"


@pytest.mark.parametrize("name", ["cancelOrder", "refundOrder", "orders"])
def test_names_without_a_read_verb_are_not_read_tools(name: str) -> None:
    assert not routing.is_read_tool(ToolSpec(name, "", {}))
