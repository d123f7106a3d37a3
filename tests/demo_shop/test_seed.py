"""The demo shop's seed data: what it holds, idempotency, reset, and the command."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from io import StringIO
from typing import Any

import pytest
from django.core.management import call_command
from django.db.models import Model
from django.utils import timezone

from demo_shop.models import (
    Customer,
    DiscountCode,
    IdempotencyRecord,
    Order,
    OrderEvent,
    OrderItem,
    Refund,
    Shipment,
)
from demo_shop.seed import shop_seed
from demo_shop.services import discount_code_apply, order_cancel, refund_create
from tests.demo_shop.factories import CustomerFactory

pytestmark = pytest.mark.django_db

MODELS: list[type[Model]] = [
    Customer,
    DiscountCode,
    Order,
    OrderItem,
    Shipment,
    Refund,
    OrderEvent,
    IdempotencyRecord,
]


def snapshot(*, with_ids: bool = True) -> dict[str, list[dict[str, Any]]]:
    """Every row of the shop; without ids, for comparing two separately seeded databases."""

    def row(values: dict[str, Any]) -> dict[str, Any]:
        return (
            values
            if with_ids
            else {k: v for k, v in values.items() if k != "id" and not k.endswith("_id")}
        )

    return {
        model.__name__: sorted(
            (row(values) for values in model._default_manager.values()), key=repr
        )
        for model in MODELS
    }


def test_seed_creates_the_documented_demo_data() -> None:
    result = shop_seed()

    assert result.created == 3 + 5 + 6
    assert set(Customer.objects.values_list("email", flat=True)) >= {
        "ana@example.com",
        "ben@example.com",
    }
    statuses = dict(Order.objects.values_list("number", "status"))
    assert statuses == {
        1042: "paid",
        1043: "shipped",
        1044: "delivered",
        1045: "cancelled",
        1046: "pending",
        1047: "delivered",
    }
    order = Order.objects.get(number=1042)
    assert (order.total, order.currency, order.customer.email) == (
        Decimal("59.90"),
        "EUR",
        "ana@example.com",
    )
    assert sum(item.line_total for item in order.items.all()) == order.total
    shipment = Shipment.objects.get(order__number=1043)
    assert shipment.tracking_number and shipment.events
    assert shipment.estimated_delivery is not None
    assert shipment.estimated_delivery > timezone.localdate()
    now = timezone.now()
    assert DiscountCode.objects.get(code="WELCOME10").invalid_reason(now) is None
    assert DiscountCode.objects.get(code="SPRING5").invalid_reason(now) == "expired"
    assert OrderEvent.objects.filter(order__number=1045, kind="cancelled").count() == 1


def test_seeding_twice_changes_nothing() -> None:
    shop_seed()
    before = snapshot()

    again = shop_seed()

    assert again.created == 0
    assert snapshot() == before


def test_seeding_keeps_what_a_demo_changed_until_reset() -> None:
    shop_seed()
    order_cancel(order_number=1042, reason="demo")

    shop_seed()

    assert Order.objects.get(number=1042).status == Order.Status.CANCELLED


def test_reset_restores_the_initial_state() -> None:
    now = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
    shop_seed(now=now)
    initial = snapshot(with_ids=False)
    order_cancel(order_number=1042, reason="demo", idempotency_key="k1")
    discount_code_apply(order_number=1046, code="WELCOME10")
    refund_create(order_number=1044, amount=Decimal("144.50"), reason="demo")
    CustomerFactory.create(email="extra@example.test")

    result = shop_seed(reset=True, now=now)

    assert result.reset is True
    assert snapshot(with_ids=False) == initial
    assert Order.objects.get(number=1042).status == Order.Status.PAID
    assert not IdempotencyRecord.objects.exists()
    assert not Customer.objects.filter(email="extra@example.test").exists()


def test_seed_is_deterministic_for_a_given_day() -> None:
    morning = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)
    evening = datetime(2026, 3, 1, 20, 0, tzinfo=UTC)
    shop_seed(now=morning)
    first = snapshot(with_ids=False)

    shop_seed(reset=True, now=evening)

    assert snapshot(with_ids=False) == first


def test_command_seeds_and_resets() -> None:
    out = StringIO()
    call_command("seed_demo_shop", stdout=out)
    order_cancel(order_number=1042)

    call_command("seed_demo_shop", "--reset", stdout=out)

    assert "Seeded the demo shop: 14 record(s) created." in out.getvalue()
    assert "Reset the demo shop: 14 record(s) created." in out.getvalue()
    assert Order.objects.get(number=1042).status == Order.Status.PAID
