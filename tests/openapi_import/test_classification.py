"""Classification rules as a table, plus invariants that must hold for any input."""

from __future__ import annotations

import itertools
from dataclasses import replace
from typing import Any

import pytest

from openapi_import.classification import (
    ACCESS_LEVELS,
    APPROVALS,
    Classification,
    ClassificationPolicy,
    classify,
    split_words,
)
from openapi_import.parsing import ParsedOperation


def make_op(
    method: str = "GET",
    path: str = "/things",
    *,
    operation_id: str = "",
    summary: str = "",
    tags: tuple[str, ...] = (),
    body_fields: tuple[str, ...] = (),
    body_required_fields: tuple[str, ...] = (),
    body_required: bool = False,
    params: dict[str, tuple[str, bool]] | None = None,
    extensions: dict[str, Any] | None = None,
    is_webhook: bool = False,
) -> ParsedOperation:
    """A ParsedOperation as the parser would build it; ``params``: name -> (location, required)."""
    properties: dict[str, Any] = {}
    locations: dict[str, str] = {}
    required: list[str] = []
    for name, (location, is_required) in (params or {}).items():
        properties[name] = {"type": "string"}
        locations[name] = location
        if is_required:
            required.append(name)
    if body_fields or body_required:
        properties["body"] = {
            "type": "object",
            "properties": {f: {"type": "string"} for f in body_fields},
            "required": list(body_required_fields),
        }
        locations["body"] = "body"
        if body_required:
            required.append("body")
    return ParsedOperation(
        operation_id=operation_id or f"{method.lower()}_generated",
        operation_id_generated=not operation_id,
        method=method,
        path=path,
        summary=summary,
        description="",
        tags=tags,
        parameters_schema={
            "type": "object",
            "properties": properties,
            "required": required,
            "additionalProperties": False,
        },
        parameter_locations=locations,
        body_content_type="application/json" if "body" in properties else None,
        server_url="https://api.example.com",
        security=(),
        deprecated=False,
        extensions=extensions or {},
        body_field_names=body_fields,
        is_webhook=is_webhook,
        fingerprint="0" * 64,
        original_operation_id=operation_id,
        parameter_names={name: name for name in properties},
        required_parameters=tuple(required),
        body_required_fields=body_required_fields,
    )


CONSEQUENTIAL = "x-openai-isConsequential"

# (id, operation kwargs, access, approval, confidence, a fragment of one reason)
TABLE: list[tuple[str, dict[str, Any], str, str, float, str]] = [
    # Method baseline
    ("get", {"path": "/pets"}, "read", "none", 0.9, "GET method → read"),
    ("head", {"method": "HEAD"}, "read", "none", 0.9, "HEAD method → read"),
    ("options", {"method": "OPTIONS"}, "read", "none", 0.9, "OPTIONS method → read"),
    ("trace", {"method": "TRACE"}, "read", "none", 0.9, "TRACE method → read"),
    (
        "post",
        {"method": "POST", "operation_id": "createPet"},
        "write",
        "user",
        0.9,
        "POST method → write",
    ),
    ("put", {"method": "PUT", "path": "/pets/{id}"}, "write", "user", 0.9, "PUT method → write"),
    (
        "patch",
        {"method": "PATCH", "path": "/pets/{id}"},
        "write",
        "user",
        0.9,
        "PATCH method → write",
    ),
    (
        "delete",
        {"method": "DELETE", "path": "/pets/{id}"},
        "destructive",
        "user",
        0.95,
        "DELETE method → destructive",
    ),
    # Destructive wording
    (
        "delete-agrees",
        {"method": "DELETE", "operation_id": "deletePet"},
        "destructive",
        "user",
        0.95,
        "'delete' in operationId → destructive (agrees",
    ),
    (
        "post-cancel-path",
        {"method": "POST", "path": "/orders/{id}/cancel"},
        "destructive",
        "user",
        0.8,
        "'cancel' in path → destructive",
    ),
    (
        "post-void",
        {"method": "POST", "operation_id": "VoidTransaction"},
        "destructive",
        "user",
        0.8,
        "'void' in operationId",
    ),
    (
        "post-revoke-summary",
        {"method": "POST", "path": "/tokens", "summary": "Revoke a token"},
        "destructive",
        "user",
        0.8,
        "'revoke' in summary",
    ),
    (
        "put-terminate",
        {"method": "PUT", "path": "/subscriptions/{id}/terminate"},
        "destructive",
        "user",
        0.8,
        "'terminate' in path",
    ),
    (
        "post-archive",
        {"method": "POST", "path": "/repos/{id}/archive"},
        "destructive",
        "user",
        0.8,
        "'archive' in path",
    ),
    (
        "post-cancelled-inflection",
        {"method": "POST", "operation_id": "markCancelled"},
        "destructive",
        "user",
        0.8,
        "'cancelled' in operationId",
    ),
    (
        "write-verb-wins",
        {"method": "POST", "operation_id": "create-remove-token"},
        "write",
        "user",
        0.75,
        "but the action is 'create' → stays write",
    ),
    (
        "restore-deleted",
        {"method": "POST", "operation_id": "restoreDeletedItem"},
        "write",
        "user",
        0.75,
        "the action is 'restore'",
    ),
    (
        "get-says-delete",
        {"path": "/pets/{id}/delete"},
        "destructive",
        "user",
        0.5,
        "treated as destructive (flagged",
    ),
    (
        "get-delete-summary",
        {"summary": "Delete a pet", "operation_id": "deletePet"},
        "destructive",
        "user",
        0.5,
        "says 'delete'",
    ),
    (
        "get-deleted-adjective",
        {"path": "/items/deleted", "operation_id": "listDeletedItems"},
        "read",
        "none",
        0.9,
        "GET method → read",
    ),
    (
        "get-download-archive",
        {"path": "/migrations/{id}/archive", "operation_id": "download-archive"},
        "read",
        "none",
        0.9,
        "GET method → read",
    ),
    # Money out: staff
    (
        "post-refund",
        {"method": "POST", "path": "/payments/{id}/refund"},
        "write",
        "staff",
        0.9,
        "'refund' in path → staff word",
    ),
    (
        "post-create-refund",
        {"method": "POST", "operation_id": "createRefund", "path": "/refunds"},
        "write",
        "staff",
        0.9,
        "staff approval",
    ),
    (
        "post-transfer",
        {"method": "POST", "path": "/transfers"},
        "write",
        "staff",
        0.9,
        "'transfers' in path",
    ),
    (
        "post-payout",
        {"method": "POST", "operation_id": "createPayout"},
        "write",
        "staff",
        0.9,
        "'payout' in operationId",
    ),
    (
        "post-withdraw",
        {"method": "POST", "path": "/wallet/withdraw"},
        "write",
        "staff",
        0.9,
        "'withdraw' in path",
    ),
    (
        "post-chargeback",
        {"method": "POST", "summary": "Open a chargeback"},
        "write",
        "staff",
        0.9,
        "'chargeback' in summary",
    ),
    (
        "close-account",
        {"method": "POST", "operation_id": "closeAccount"},
        "destructive",
        "staff",
        0.8,
        "'close_account' in operationId",
    ),
    (
        "delete-refund",
        {"method": "DELETE", "path": "/refunds/{id}"},
        "destructive",
        "staff",
        0.95,
        "staff approval",
    ),
    (
        "get-refunds-list",
        {"path": "/refunds", "operation_id": "listRefunds"},
        "read",
        "none",
        0.8,
        "on a plain GET → only reads",
    ),
    (
        "get-refund-action",
        {"path": "/orders/{id}/refund"},
        "write",
        "staff",
        0.5,
        "treated as write (flagged)",
    ),
    # Money in: at least user
    (
        "post-charge",
        {"method": "POST", "operation_id": "createCharge"},
        "write",
        "user",
        0.9,
        "'charge' in operationId → money involved",
    ),
    (
        "post-pay",
        {"method": "POST", "path": "/orders/{id}/pay"},
        "write",
        "user",
        0.9,
        "'pay' in path",
    ),
    (
        "money-field",
        {"method": "POST", "path": "/orders", "body_fields": ("amount", "note")},
        "write",
        "user",
        0.9,
        "body fields amount → money involved",
    ),
    (
        "money-and-refund-fields",
        {"method": "POST", "path": "/adjustments", "body_fields": ("amount", "refund_reason")},
        "write",
        "staff",
        0.9,
        "'refund' in body fields",
    ),
    (
        "refunded-note-is-not-money",
        {"method": "PUT", "path": "/orders/{id}", "body_fields": ("refunded_note",)},
        "write",
        "user",
        0.9,
        "PUT method → write",
    ),
    (
        "iban-field",
        {"method": "PATCH", "path": "/me", "body_fields": ("iban",)},
        "write",
        "user",
        0.9,
        "body fields iban",
    ),
    # POST that only reads
    (
        "post-search",
        {"method": "POST", "path": "/search"},
        "read",
        "none",
        0.6,
        "POST search that only reads",
    ),
    ("post-find", {"method": "POST", "path": "/pets/find"}, "read", "none", 0.6, "('find')"),
    (
        "post-batch-retrieve",
        {"method": "POST", "operation_id": "BatchRetrieveOrders", "path": "/orders/batch-retrieve"},
        "read",
        "none",
        0.6,
        "('retrieve')",
    ),
    (
        "post-graphql-query",
        {"method": "POST", "path": "/graphql", "summary": "Query the graph"},
        "read",
        "none",
        0.6,
        "('query')",
    ),
    (
        "post-graphql-bare",
        {"method": "POST", "path": "/graphql"},
        "write",
        "user",
        0.9,
        "POST method → write",
    ),
    (
        "post-search-and-send",
        {"method": "POST", "operation_id": "searchAndSendMessages"},
        "write",
        "user",
        0.9,
        "POST method → write",
    ),
    (
        "post-search-refunds",
        {"method": "POST", "path": "/refunds/search"},
        "write",
        "staff",
        0.9,
        "staff approval",
    ),
    (
        "post-delete-search",
        {"method": "POST", "path": "/items/delete-by-query"},
        "destructive",
        "user",
        0.8,
        "'delete' in path",
    ),
    # x-openai-isConsequential
    (
        "flag-true-on-get",
        {"extensions": {CONSEQUENTIAL: True}},
        "write",
        "user",
        0.7,
        f"{CONSEQUENTIAL}: true",
    ),
    (
        "flag-true-on-post",
        {"method": "POST", "extensions": {CONSEQUENTIAL: True}},
        "write",
        "user",
        0.9,
        f"{CONSEQUENTIAL}: true",
    ),
    (
        "flag-false-on-post",
        {"method": "POST", "operation_id": "addNote", "extensions": {CONSEQUENTIAL: False}},
        "write",
        "none",
        0.9,
        "false → no approval",
    ),
    (
        "flag-false-on-delete",
        {"method": "DELETE", "extensions": {CONSEQUENTIAL: False}},
        "destructive",
        "user",
        0.95,
        "false ignored: destructive",
    ),
    (
        "flag-false-on-refund",
        {"method": "POST", "path": "/refunds", "extensions": {CONSEQUENTIAL: False}},
        "write",
        "staff",
        0.9,
        "false ignored: money",
    ),
    (
        "flag-false-on-get",
        {"extensions": {CONSEQUENTIAL: False}},
        "read",
        "none",
        0.9,
        "GET method → read",
    ),
    # Webhooks are never called
    (
        "webhook",
        {"method": "POST", "path": "newPet", "is_webhook": True},
        "read",
        "none",
        1.0,
        "webhook",
    ),
]


@pytest.mark.parametrize(
    ("kwargs", "access", "approval", "confidence", "reason"),
    [row[1:] for row in TABLE],
    ids=[row[0] for row in TABLE],
)
def test_classification_table(
    kwargs: dict[str, Any], access: str, approval: str, confidence: float, reason: str
) -> None:
    result = classify(make_op(**kwargs))
    assert (result.access, result.approval, result.confidence) == (access, approval, confidence), (
        result.reasons
    )
    assert any(reason in r for r in result.reasons), result.reasons


def test_table_covers_enough_rows() -> None:
    assert len(TABLE) >= 30
    assert len({row[0] for row in TABLE}) == len(TABLE)


@pytest.mark.parametrize(
    ("kwargs", "group"),
    [
        ({"tags": ("Orders",)}, "Orders"),
        ({"tags": ("Payments API",)}, "Billing"),
        ({"tags": ("customer-profiles",)}, "Accounts"),
        ({"tags": ("V1 Transactions",)}, "Transactions"),
        ({"tags": ("Widgets",), "path": "/orders"}, "Widgets"),
        # Readable names from tags (issue 13 item 16), versions dropped.
        ({"tags": ("pet-store_v2",)}, "Pet store"),
        ({"tags": ("user_management",)}, "Accounts"),
        ({"tags": ("Shipping labels",)}, "Shipping labels"),
        ({"path": "/v1/checkout/sessions"}, "Orders"),
        ({"path": "/api/v2/products/{id}"}, "Catalog"),
        ({"path": "/2010-04-01/Accounts/{Sid}/Calls.json"}, "Accounts"),
        ({"path": "/{tenant}/invoices"}, "Billing"),
        ({"path": "/support/tickets"}, "Support"),
        ({"path": "/inventory"}, "Catalog"),
        ({"path": "/me"}, "Accounts"),
        ({"path": "/things/{id}"}, "Things"),
        ({"path": "/custom-pages"}, "Custom pages"),
        ({"path": "/"}, "General"),
        ({"path": "/#X-Amz-Target=DynamoDB_20120810.Scan"}, "General"),
    ],
)
def test_agent_group(kwargs: dict[str, Any], group: str) -> None:
    assert classify(make_op(**kwargs)).agent_group == group


def test_customer_parameters_exclude_server_filled_and_pagination() -> None:
    op = make_op(
        "POST",
        "/orders/{order_id}/notes",
        params={
            "order_id": ("path", True),
            "email": ("query", True),
            "note_kind": ("query", False),
            "api_key": ("query", True),
            "page": ("query", True),
            "per_page": ("query", True),
            "cursor": ("query", True),
            "format": ("query", True),
            "fields": ("query", True),
            "X-Request-Id": ("header", True),
            "x-tenant": ("query", True),
            "session": ("cookie", True),
        },
        body_fields=("text", "amount", "idempotency_key", "limit"),
        body_required_fields=("text", "idempotency_key", "limit"),
        body_required=True,
    )
    assert classify(op).customer_parameters == ("order_id", "email", "text")


def test_customer_parameters_of_optional_and_raw_bodies() -> None:
    optional = make_op("POST", "/notes", body_fields=("text",), body_required_fields=("text",))
    assert classify(optional).customer_parameters == ()
    raw = make_op("PUT", "/avatar", body_required=True)
    assert classify(raw).customer_parameters == ("body",)


def test_split_words() -> None:
    assert split_words("getPetById") == ["get", "pet", "by", "id"]
    assert split_words("repos/delete-a_thing.v2") == ["repos", "delete", "a", "thing", "v2"]
    assert split_words("HTTPServerError") == ["http", "server", "error"]
    assert split_words("") == []


def test_custom_policy() -> None:
    frob = make_op("POST", "/widgets/frobnicate")
    assert classify(frob).access == "write"
    policy = ClassificationPolicy(
        destructive_words=(*ClassificationPolicy().destructive_words, "frobnicate")
    )
    assert classify(frob, policy=policy).access == "destructive"

    refund = make_op("POST", "/refunds")
    relaxed = ClassificationPolicy(staff_words=("payout",))
    assert classify(refund, policy=relaxed).approval == "user"

    listing = make_op("GET", "/refunds")
    assert classify(listing).approval == "none"
    strict = ClassificationPolicy(staff_words_on_reads=True)
    assert classify(listing, policy=strict).approval == "staff"


# -- invariants over a grid of inputs ---------------------------------------------------------

METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")
WORDINGS: tuple[dict[str, Any], ...] = (
    {},
    {"path": "/pets/{id}"},
    {"path": "/orders/{id}/cancel"},
    {"path": "/refunds"},
    {"operation_id": "createTransfer"},
    {"summary": "Withdraw funds"},
    {"path": "/search"},
    {"operation_id": "listDeletedItems"},
    {"summary": "Pay the invoice"},
    {"operation_id": "closeAccount"},
    {"path": "/payouts/{id}/void"},
)
EXTRAS: tuple[dict[str, Any], ...] = (
    {},
    {"extensions": {CONSEQUENTIAL: True}},
    {"extensions": {CONSEQUENTIAL: False}},
    {"body_fields": ("amount",)},
    {"body_fields": ("amount", "refund")},
    {"tags": ("Billing",)},
)
STAFF_WORDINGS = {3, 4, 5, 9, 10}
GRID = list(itertools.product(METHODS, range(len(WORDINGS)), EXTRAS))


def _grid_result(method: str, wording: int, extra: dict[str, Any]) -> Classification:
    return classify(make_op(method, **{**WORDINGS[wording], **extra}))


def test_invariants_hold_for_every_combination() -> None:
    for method, wording, extra in GRID:
        result = _grid_result(method, wording, extra)
        context = (method, WORDINGS[wording], extra, result)
        assert result.access in ACCESS_LEVELS, context
        assert result.approval in APPROVALS, context
        assert 0.0 <= result.confidence <= 1.0, context
        assert result.reasons, context
        assert result.reasons[0].startswith(f"{method} method"), context
        assert result.agent_group, context
        # Destroying something always needs someone's approval.
        if result.access == "destructive":
            assert result.approval != "none", context
        if method == "DELETE":
            assert result.access == "destructive", context
        # Staff words on anything but a plain read always mean staff approval.
        if wording in STAFF_WORDINGS and method not in ("GET", "HEAD"):
            assert result.approval == "staff", context
        if extra.get("body_fields") == ("amount", "refund") and method not in ("GET", "HEAD"):
            assert result.approval == "staff", context
        # Reads need no approval unless the spec author says the operation is consequential.
        if result.access == "read":
            assert result.approval == "none", context


def test_staff_words_on_reads_policy_makes_staff_universal() -> None:
    strict = ClassificationPolicy(staff_words_on_reads=True)
    for method in METHODS:
        for wording in sorted(STAFF_WORDINGS):
            result = classify(make_op(method, **WORDINGS[wording]), policy=strict)
            assert result.approval == "staff", (method, WORDINGS[wording], result)


def test_classification_is_deterministic_and_ignores_unrelated_fields() -> None:
    op = make_op("POST", "/orders/{id}/cancel", summary="Cancel an order")
    moved = replace(op, server_url="https://other.example.com", fingerprint="f" * 64)
    assert classify(op) == classify(op) == classify(moved)


@pytest.mark.parametrize(
    "operation_id",
    [
        "Scan",
        "Query",
        "GetItem",
        "BatchGetItem",
        "TransactGetItems",
        "DescribeTable",
        "DescribeContinuousBackups",
        "ListTables",
        "ListTagsOfResource",
    ],
)
def test_action_style_post_reads_are_reads(operation_id: str) -> None:
    """DynamoDB-style `POST /` with an action name (issue 13 item 16)."""
    op = make_op(
        "POST", f"/#X-Amz-Target=DynamoDB_20120810.{operation_id}", operation_id=operation_id
    )
    result = classify(op)
    assert (result.access, result.approval) == ("read", "none"), result.reasons


@pytest.mark.parametrize(
    ("operation_id", "access"),
    [
        ("PutItem", "write"),
        ("UpdateItem", "write"),
        ("BatchWriteItem", "write"),
        ("TransactWriteItems", "write"),
        ("CreateTable", "write"),
        ("DeleteItem", "destructive"),
        ("BatchDeleteItems", "destructive"),
    ],
)
def test_action_style_post_writes_stay_writes(operation_id: str, access: str) -> None:
    op = make_op(
        "POST", f"/#X-Amz-Target=DynamoDB_20120810.{operation_id}", operation_id=operation_id
    )
    result = classify(op)
    assert result.access == access and result.approval != "none"


def test_credential_parameters_are_never_customer_parameters() -> None:
    """Named credentials and apiKey security-scheme parameters (issue 13 item 16)."""
    op = make_op(
        "GET",
        "/orders/{id}",
        params={
            "id": ("path", True),
            "token": ("query", True),
            "api_key": ("query", True),
            "key": ("query", True),
            "Authorization": ("header", True),
            "X-Amz-Signature": ("query", True),
            "shop": ("query", True),
            "X-Shop-Key": ("header", True),
        },
    )
    schemes = {
        "shopKey": {"type": "apiKey", "in": "query", "name": "shop"},
        "bearer": {"type": "http", "scheme": "bearer"},
    }
    result = classify(op, security_schemes=schemes)
    assert set(result.credential_parameters) == {
        "token",
        "api_key",
        "key",
        "Authorization",
        "X-Amz-Signature",
        "shop",
    }
    assert result.customer_parameters == ("id",)
    # Without the scheme, "shop" is an ordinary parameter the customer gives.
    plain = classify(op)
    assert "shop" not in plain.credential_parameters and "shop" in plain.customer_parameters


def test_body_fields_named_like_credentials_are_not_credential_parameters() -> None:
    op = make_op("POST", "/tokens", body_fields=("token",), body_required=True)
    assert classify(op).credential_parameters == ()
