"""Entities in customer text and tool arguments filled from them
(conversations/agent/extraction.py)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

import pytest

from conversations.agent.extraction import (
    Money,
    extract_entities,
    fill_arguments,
    property_category,
    remember,
    remember_entities,
)
from tests.conversations.test_routing import DEMO_TOOLS

TODAY = date(2026, 11, 18)  # a Wednesday


@pytest.mark.parametrize(
    ("text", "field", "expected"),
    [
        # Order numbers
        ("where is my order 1042?", "order_numbers", [1042]),
        ("track order #1043", "order_numbers", [1043]),
        ("#42 please", "order_numbers", [42]),
        ("order no. 1042", "order_numbers", [1042]),
        ("orders 1042 and 1043", "order_numbers", [1042, 1043]),
        # The first one wins, and a number after "not" is what the customer does not mean.
        ("order #1042, not 1043", "order_numbers", [1042]),
        ("not 1043 but order 1042", "order_numbers", [1042]),
        # Marked numbers come before bare ones.
        ("1042 or was it order 2001?", "order_numbers", [2001, 1042]),
        ("I ordered 2 mugs", "order_numbers", []),
        ("call me at +49 151 23456789 about order 1042", "order_numbers", [1042]),
        ("call me at +49 151 23456789", "phones", ["+49 151 23456789"]),
        ("my number is 0151 23456789", "order_numbers", []),
        ("(555) 123-4567", "order_numbers", []),
        ("at 10:30 on 2026-11-25", "order_numbers", []),
        ("refund 19.99 on 1044", "order_numbers", [1044]),
        ("code SPRING2026 for 1042", "order_numbers", [1042]),
        ("ben1042@example.com", "order_numbers", []),
        # Emails
        ("my email is ben@example.com.", "emails", ["ben@example.com"]),
        (
            "Ana.Smith+shop@mail.example.co.uk wrote",
            "emails",
            ["Ana.Smith+shop@mail.example.co.uk"],
        ),
        # Money
        ("20 EUR", "amounts", [Money(Decimal("20"), "EUR")]),
        ("€20", "amounts", [Money(Decimal("20"), "EUR")]),
        ("$19.99", "amounts", [Money(Decimal("19.99"), "USD")]),
        ("19,99 €", "amounts", [Money(Decimal("19.99"), "EUR")]),
        ("1.234,56 EUR", "amounts", [Money(Decimal("1234.56"), "EUR")]),
        ("1,234.56 USD", "amounts", [Money(Decimal("1234.56"), "USD")]),
        ("20.50 please", "amounts", [Money(Decimal("20.50"), None)]),
        ("a refund of 20 for 1044", "amounts", [Money(Decimal("20"), None)]),
        ("30 euros back", "amounts", [Money(Decimal("30"), "EUR")]),
        ("order 1042", "amounts", []),
        # Codes
        ("apply code WELCOME10 to order 1042", "codes", ["WELCOME10"]),
        ("is SPRING5 still valid?", "codes", ["SPRING5"]),
        ("promo code welcome10", "codes", ["welcome10"]),
        ("HELLO, I need help ASAP", "codes", []),
        ("I said I want it", "codes", []),
        ("the code is not working", "codes", []),
        ("EUR20 off", "codes", []),
        # Dates
        ("deliver on 2026-11-25", "dates", [date(2026, 11, 25)]),
        ("tomorrow please", "dates", [date(2026, 11, 19)]),
        ("next monday", "dates", [date(2026, 11, 23)]),
        ("on friday", "dates", [date(2026, 11, 20)]),
        ("25 November 2026", "dates", [date(2026, 11, 25)]),
        ("Dec 3", "dates", [date(2026, 12, 3)]),
        ("25.12.2026", "dates", [date(2026, 12, 25)]),
        ("in 3 days", "dates", [date(2026, 11, 21)]),
        ("I may cancel", "dates", []),
        ("2026-02-30", "dates", []),
        # Reasons
        ("refund 1044 because it arrived broken.", "reason", "it arrived broken"),
        ("cancel 1042 since I changed my mind", "reason", "I changed my mind"),
        ("reason: wrong size", "reason", "wrong size"),
        ("waiting since yesterday", "reason", None),
        ("cancel order 1042", "reason", None),
    ],
)
def test_extract_entities(text: str, field: str, expected: Any) -> None:
    assert getattr(extract_entities(text, today=TODAY), field) == expected


def test_every_entity_in_one_message() -> None:
    found = extract_entities(
        "I want a refund of 20 EUR for order 1044 because it arrived broken", today=TODAY
    )
    assert found.order_numbers == [1044]
    assert found.amounts == [Money(Decimal("20"), "EUR")]
    assert found.reason == "it arrived broken"
    assert found.codes == [] and found.emails == [] and found.dates == []


def test_empty_text_has_no_entities() -> None:
    assert extract_entities("", today=TODAY).is_empty()
    assert not extract_entities("order 1042", today=TODAY).is_empty()


# -- property categories -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "schema", "category"),
    [
        ("order_number", {"type": "integer"}, "number"),
        ("orderId", {"type": "string"}, "number"),
        ("id", {"type": "integer"}, "number"),
        ("customerEmail", {"type": "string"}, "email"),
        ("contact", {"type": "string", "format": "email"}, "email"),
        ("amount", {"type": "number"}, "money"),
        ("discount_code", {"type": "string"}, "code"),
        ("coupon", {"type": "string"}, "code"),
        ("delivery_date", {"type": "string"}, "date"),
        ("when", {"type": "string", "format": "date"}, "date"),
        ("reason", {"type": "string"}, "reason"),
        ("note", {"type": "string"}, "reason"),
        ("phone_number", {"type": "string"}, None),
        ("postal_code", {"type": "string"}, None),
        ("Idempotency-Key", {"type": "string"}, None),
        ("quantity", {"type": "integer"}, None),
    ],
)
def test_property_category(name: str, schema: dict[str, Any], category: str | None) -> None:
    assert property_category(name, schema) == category


# -- filling arguments -------------------------------------------------------------------------


def test_fill_coerces_the_order_number_to_the_schema_integer() -> None:
    fill = fill_arguments(DEMO_TOOLS["getOrder"].parameters, "where is order #1042?", context={})
    assert fill.arguments == {"order_number": 1042}
    assert fill.missing == [] and fill.from_context == []


def test_fill_builds_the_nested_body() -> None:
    fill = fill_arguments(
        DEMO_TOOLS["applyDiscountCode"].parameters,
        "apply code WELCOME10 to order 1042",
        context={},
    )
    assert fill.arguments == {"order_number": 1042, "body": {"code": "WELCOME10"}}
    assert fill.missing == []


def test_fill_refund_with_amount_as_number_and_reason() -> None:
    fill = fill_arguments(
        DEMO_TOOLS["createRefund"].parameters,
        "I want a refund of 19,99 € for order 1044 because it arrived broken",
        context={},
    )
    assert fill.arguments == {
        "order_number": 1044,
        "body": {"amount": 19.99, "reason": "it arrived broken"},
    }


def test_fill_reports_missing_body_fields_with_dotted_paths() -> None:
    fill = fill_arguments(DEMO_TOOLS["createRefund"].parameters, "refund order 1044", context={})
    assert fill.arguments == {"order_number": 1044}
    assert fill.missing == ["body.amount", "body.reason"]


def test_fill_reports_a_missing_required_parameter() -> None:
    fill = fill_arguments(DEMO_TOOLS["cancelOrder"].parameters, "cancel my order", context={})
    assert fill.arguments == {}
    assert fill.missing == ["order_number"]


def test_optional_header_and_optional_body_stay_out_when_not_mentioned() -> None:
    fill = fill_arguments(DEMO_TOOLS["cancelOrder"].parameters, "cancel order 1042", context={})
    assert fill.arguments == {"order_number": 1042}
    assert "Idempotency-Key" not in fill.arguments


def test_optional_body_field_is_filled_when_the_text_has_it() -> None:
    fill = fill_arguments(
        DEMO_TOOLS["cancelOrder"].parameters,
        "cancel order 1042 because I changed my mind",
        context={},
    )
    assert fill.arguments == {"order_number": 1042, "body": {"reason": "I changed my mind"}}


def test_missing_required_values_come_from_context() -> None:
    fill = fill_arguments(
        DEMO_TOOLS["cancelOrder"].parameters, "cancel that one", context={"order_number": 1042}
    )
    assert fill.arguments == {"order_number": 1042}
    assert fill.from_context == ["order_number"]
    assert fill.missing == []


def test_the_text_beats_the_context() -> None:
    fill = fill_arguments(
        DEMO_TOOLS["cancelOrder"].parameters, "cancel 1043", context={"order_number": 1042}
    )
    assert fill.arguments == {"order_number": 1043}
    assert fill.from_context == []


def test_body_fields_come_from_context_by_category() -> None:
    fill = fill_arguments(
        DEMO_TOOLS["applyDiscountCode"].parameters,
        "apply it to order 1043",
        context={"code": "WELCOME10", "order_number": 1042},
    )
    assert fill.arguments == {"order_number": 1043, "body": {"code": "WELCOME10"}}
    assert fill.from_context == ["body.code"]


def test_amounts_and_reasons_are_never_taken_from_context() -> None:
    fill = fill_arguments(
        DEMO_TOOLS["createRefund"].parameters,
        "refund order 1044",
        context={"amount": 20, "reason": "broken", "order_number": 1042},
    )
    assert fill.missing == ["body.amount", "body.reason"]
    assert fill.arguments == {"order_number": 1044}


@pytest.mark.parametrize(
    "text",
    ["please help", "my parcel is late", "refund please", "HELLO", "order 0"],
)
def test_nothing_is_invented(text: str) -> None:
    schema = {
        "type": "object",
        "properties": {
            "order_number": {"type": "integer", "minimum": 1},
            "email": {"type": "string"},
            "amount": {"type": "number"},
            "code": {"type": "string"},
            "name": {"type": "string"},
            "quantity": {"type": "integer"},
        },
        "required": ["order_number", "email", "amount", "code", "name", "quantity"],
    }
    fill = fill_arguments(schema, text, context={})
    assert fill.arguments == {}
    assert fill.missing == ["order_number", "email", "amount", "code", "name", "quantity"]


def test_values_that_break_the_schema_constraints_are_not_used() -> None:
    schema = {
        "type": "object",
        "properties": {
            "order_number": {"type": "integer", "maximum": 9999},
            "code": {"type": "string", "pattern": "^[A-Z]+[0-9]+$"},
        },
        "required": ["order_number", "code"],
    }
    fill = fill_arguments(schema, "order 123456 with code welcome10", context={})
    assert fill.missing == ["order_number", "code"]


def test_enum_values_are_matched_in_the_text_and_coerced_to_the_enum_spelling() -> None:
    schema = {
        "type": "object",
        "properties": {
            "status": {"type": "string", "enum": ["in_transit", "delivered", "Out For Delivery"]},
            "reason": {"type": "string", "enum": ["damaged", "wrong_item", "other"]},
        },
        "required": ["status", "reason"],
    }
    fill = fill_arguments(schema, "it says out for delivery but the box was damaged", context={})
    assert fill.arguments == {"status": "Out For Delivery", "reason": "damaged"}
    unknown = fill_arguments(schema, "it is lost", context={})
    assert unknown.missing == ["status", "reason"]


def test_types_are_coerced_per_schema() -> None:
    schema = {
        "type": "object",
        "properties": {
            "order_id": {"type": "string"},
            "total": {"type": "string"},
            "delivery_date": {"type": "string", "format": "date"},
            "notify_customer": {"type": "boolean"},
            "express": {"type": "boolean"},
        },
        "required": ["order_id", "total", "delivery_date", "notify_customer", "express"],
    }
    fill = fill_arguments(
        schema,
        "order 1042, total 20.5 EUR, deliver 2026-11-25, notify me, no express",
        context={},
    )
    assert fill.arguments == {
        "order_id": "1042",
        "total": "20.50",
        "delivery_date": "2026-11-25",
        "notify_customer": True,
        "express": False,
    }


def test_two_number_properties_get_two_numbers_in_order() -> None:
    schema = {
        "type": "object",
        "properties": {
            "source_order_id": {"type": "integer"},
            "target_order_id": {"type": "integer"},
        },
        "required": ["source_order_id", "target_order_id"],
    }
    fill = fill_arguments(schema, "merge order 1042 into 1043", context={})
    assert fill.arguments == {"source_order_id": 1042, "target_order_id": 1043}


def test_array_properties_take_every_matching_entity() -> None:
    schema = {
        "type": "object",
        "properties": {"order_numbers": {"type": "array", "items": {"type": "integer"}}},
        "required": ["order_numbers"],
    }
    fill = fill_arguments(schema, "orders 1042, 1043 and 1044", context={})
    assert fill.arguments == {"order_numbers": [1042, 1043, 1044]}


def test_a_required_body_without_required_fields_is_sent_empty() -> None:
    schema = {
        "type": "object",
        "properties": {"body": {"type": "object", "properties": {"note": {"type": "string"}}}},
        "required": ["body"],
    }
    assert fill_arguments(schema, "do it", context={}).arguments == {"body": {}}


# -- remembering context -----------------------------------------------------------------------


def test_remember_takes_identifiers_from_arguments_and_results() -> None:
    context = remember(
        {},
        {"order_number": 1042, "body": {"code": "WELCOME10"}},
        {"number": 1042, "status": "paid", "customer_email": "ana@example.com", "items": []},
    )
    assert context == {"order_number": 1042, "code": "WELCOME10", "email": "ana@example.com"}


def test_remember_a_tracking_result_by_its_order_number() -> None:
    context = remember({"order_number": 1}, {}, {"order_number": 1043, "carrier": "DHL"})
    assert context["order_number"] == 1043


def test_remember_a_single_item_list_but_not_a_longer_one() -> None:
    one = remember({}, {"email": "ben@example.com"}, [{"number": 1050, "status": "paid"}])
    assert one == {"email": "ben@example.com", "order_number": 1050}
    many = remember({}, {"email": "ben@example.com"}, [{"number": 1050}, {"number": 1051}])
    assert many == {"email": "ben@example.com"}


def test_a_failed_call_is_forgotten() -> None:
    context = {"order_number": 9999, "email": "ana@example.com"}
    after = remember(context, {"order_number": 9999}, {"detail": "Order 9999 not found."})
    assert after == {"email": "ana@example.com"}
    explicit = remember(context, {"order_number": 9999}, {"weird": True}, failed=True)
    assert explicit == {"email": "ana@example.com"}
    assert context == {"order_number": 9999, "email": "ana@example.com"}  # not mutated


def test_remember_entities_keeps_the_first_of_each_kind() -> None:
    entities = extract_entities("order 1042 or 1043, code WELCOME10, ben@example.com", today=TODAY)
    assert remember_entities({"order_number": 1}, entities) == {
        "order_number": 1042,
        "code": "WELCOME10",
        "email": "ben@example.com",
    }
