"""Business rules of the demo shop's writes, against the real database."""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.db import connection
from django.utils import timezone

from demo_shop.exceptions import ShopError, ShopErrorCode
from demo_shop.models import DiscountCode, IdempotencyRecord, Order, OrderEvent, Refund
from demo_shop.services import (
    Outcome,
    discount_amount_for,
    discount_code_apply,
    order_cancel,
    refund_create,
)
from tests.demo_shop.factories import (
    DiscountCodeFactory,
    OrderFactory,
    RefundFactory,
    ShipmentFactory,
)

pytestmark = pytest.mark.django_db


def events(order: Order, kind: str) -> int:
    return OrderEvent.objects.filter(order=order, kind=kind).count()


# --- Cancel ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("status", [Order.Status.PENDING, Order.Status.PAID])
def test_cancel_open_order(status: str) -> None:
    order = OrderFactory.create(status=status)

    outcome = order_cancel(order_number=order.number, reason="Ordered twice")

    order.refresh_from_db()
    assert order.status == Order.Status.CANCELLED
    assert order.cancel_reason == "Ordered twice"
    assert order.cancelled_at is not None
    assert (outcome.status, outcome.replayed) == (200, False)
    assert outcome.body["status"] == "cancelled"
    assert events(order, OrderEvent.Kind.CANCELLED) == 1


@pytest.mark.parametrize(
    ("status", "wording"),
    [
        (Order.Status.SHIPPED, "already shipped"),
        (Order.Status.DELIVERED, "ask for a refund"),
        (Order.Status.CANCELLED, "already cancelled"),
        (Order.Status.REFUNDED, "been refunded"),
    ],
)
def test_cancel_refuses_orders_that_left_the_warehouse_or_are_closed(
    status: str, wording: str
) -> None:
    order = OrderFactory.create(status=status)

    with pytest.raises(ShopError) as caught:
        order_cancel(order_number=order.number)

    assert caught.value.code == ShopErrorCode.ORDER_NOT_CANCELLABLE
    assert caught.value.status == 409
    assert wording in caught.value.detail
    order.refresh_from_db()
    assert order.status == status
    assert events(order, OrderEvent.Kind.CANCELLED) == 0


def test_cancel_unknown_order() -> None:
    with pytest.raises(ShopError) as caught:
        order_cancel(order_number=424242)

    assert caught.value.code == ShopErrorCode.ORDER_NOT_FOUND
    assert caught.value.status == 404


# --- Idempotency ----------------------------------------------------------------------------------


def test_replay_returns_the_stored_answer_even_after_the_order_changed() -> None:
    order = OrderFactory.create()
    first = order_cancel(order_number=order.number, reason="x", idempotency_key="key-a")
    Order.objects.filter(pk=order.pk).update(cancel_reason="edited later")

    again = order_cancel(order_number=order.number, reason="x", idempotency_key="key-a")

    assert again == Outcome(first.status, first.body, replayed=True)
    assert again.body["cancel_reason"] == "x"
    assert events(order, OrderEvent.Kind.CANCELLED) == 1


def test_a_key_belongs_to_one_operation() -> None:
    order = ShipmentFactory.create(order__status=Order.Status.DELIVERED).order
    refund_create(
        order_number=order.number, amount=Decimal("5"), reason="x", idempotency_key="key-b"
    )

    with pytest.raises(ShopError) as caught:
        order_cancel(order_number=order.number, idempotency_key="key-b")

    assert caught.value.code == ShopErrorCode.IDEMPOTENCY_KEY_REUSED
    assert caught.value.status == 422


def test_amounts_that_mean_the_same_match_the_same_key() -> None:
    order = OrderFactory.create(status=Order.Status.DELIVERED)
    first = refund_create(
        order_number=order.number, amount=Decimal("5"), reason="x", idempotency_key="key-c"
    )

    again = refund_create(
        order_number=order.number, amount=Decimal("5.00"), reason="x", idempotency_key="key-c"
    )

    assert again.replayed and again.body == first.body
    assert Refund.objects.filter(order=order).count() == 1


def test_a_refused_request_is_not_stored_so_its_key_stays_usable() -> None:
    order = OrderFactory.create(status=Order.Status.DELIVERED, subtotal=Decimal("20.00"))

    with pytest.raises(ShopError):
        refund_create(
            order_number=order.number, amount=Decimal("99"), reason="x", idempotency_key="key-d"
        )
    outcome = refund_create(
        order_number=order.number, amount=Decimal("20"), reason="x", idempotency_key="key-d"
    )

    assert (outcome.status, outcome.replayed) == (201, False)
    assert IdempotencyRecord.objects.get(key="key-d").response_body == outcome.body


def test_empty_key_means_no_key() -> None:
    order = OrderFactory.create(status=Order.Status.DELIVERED)

    refund_create(order_number=order.number, amount=Decimal("1"), reason="x", idempotency_key="")
    refund_create(order_number=order.number, amount=Decimal("1"), reason="x", idempotency_key="")

    assert Refund.objects.filter(order=order).count() == 2
    assert not IdempotencyRecord.objects.exists()


# --- Discounts ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "value", "subtotal", "expected"),
    [
        (DiscountCode.Kind.PERCENT, "10", "59.90", "5.99"),
        (DiscountCode.Kind.PERCENT, "15", "33.33", "5.00"),  # 4.9995 rounds half up
        (DiscountCode.Kind.PERCENT, "100", "12.00", "12.00"),
        (DiscountCode.Kind.AMOUNT, "5.00", "59.90", "5.00"),
        (DiscountCode.Kind.AMOUNT, "5.00", "3.50", "3.50"),  # never below zero
    ],
)
def test_discount_amount(kind: str, value: str, subtotal: str, expected: str) -> None:
    discount = DiscountCode(code="X", kind=kind, value=Decimal(value))

    assert discount_amount_for(discount=discount, subtotal=Decimal(subtotal)) == Decimal(expected)


def test_apply_discount_sets_total_counts_the_use_and_records_an_event() -> None:
    order = OrderFactory.create(subtotal=Decimal("40.00"))
    DiscountCodeFactory.create(code="SAVE5", kind=DiscountCode.Kind.AMOUNT, value=Decimal("5.00"))

    outcome = discount_code_apply(order_number=order.number, code=" save5 ")

    order.refresh_from_db()
    assert (order.discount_amount, order.total) == (Decimal("5.00"), Decimal("35.00"))
    assert outcome.body["total"] == "35.00"
    assert DiscountCode.objects.get(code="SAVE5").uses == 1
    assert events(order, OrderEvent.Kind.DISCOUNT_APPLIED) == 1


@pytest.mark.parametrize(
    ("attrs", "error"),
    [
        ({"active": False}, ShopErrorCode.DISCOUNT_CODE_INACTIVE),
        (
            {"expires_at": timezone.now() - timedelta(seconds=1)},
            ShopErrorCode.DISCOUNT_CODE_EXPIRED,
        ),
        ({"max_uses": 3, "uses": 3}, ShopErrorCode.DISCOUNT_CODE_EXHAUSTED),
        (
            {"kind": DiscountCode.Kind.AMOUNT, "value": Decimal("5"), "currency": "USD"},
            ShopErrorCode.DISCOUNT_CODE_NOT_APPLICABLE,
        ),
    ],
)
def test_apply_refuses_unusable_codes(attrs: dict[str, Any], error: ShopErrorCode) -> None:
    order = OrderFactory.create()
    DiscountCodeFactory.create(code="BAD", **attrs)

    with pytest.raises(ShopError) as caught:
        discount_code_apply(order_number=order.number, code="BAD")

    assert caught.value.code == error
    assert caught.value.status == 422
    order.refresh_from_db()
    assert order.discount_code is None and order.total == order.subtotal


def test_a_code_with_uses_left_can_be_used_up() -> None:
    DiscountCodeFactory.create(code="ONCE", max_uses=1)
    first, second = OrderFactory.create(), OrderFactory.create()

    discount_code_apply(order_number=first.number, code="ONCE")
    with pytest.raises(ShopError) as caught:
        discount_code_apply(order_number=second.number, code="ONCE")

    assert caught.value.code == ShopErrorCode.DISCOUNT_CODE_EXHAUSTED
    assert DiscountCode.objects.get(code="ONCE").uses == 1


@pytest.mark.parametrize(
    "status", [Order.Status.SHIPPED, Order.Status.DELIVERED, Order.Status.CANCELLED]
)
def test_apply_refuses_orders_that_cannot_change(status: str) -> None:
    order = OrderFactory.create(status=status)
    DiscountCodeFactory.create(code="OK10")

    with pytest.raises(ShopError) as caught:
        discount_code_apply(order_number=order.number, code="OK10")

    assert caught.value.code == ShopErrorCode.ORDER_NOT_MODIFIABLE
    assert DiscountCode.objects.get(code="OK10").uses == 0


# --- Refunds --------------------------------------------------------------------------------------


def test_partial_refund_keeps_the_order_delivered_and_full_refund_marks_it_refunded() -> None:
    order = OrderFactory.create(status=Order.Status.DELIVERED, subtotal=Decimal("30.00"))

    refund_create(order_number=order.number, amount=Decimal("10.00"), reason="a")
    order.refresh_from_db()
    assert order.status == Order.Status.DELIVERED
    refund_create(order_number=order.number, amount=Decimal("20.00"), reason="b")
    order.refresh_from_db()

    assert order.status == Order.Status.REFUNDED
    assert order.refunded_amount == Decimal("30.00")
    assert events(order, OrderEvent.Kind.REFUNDED) == 2


def test_refund_counts_earlier_refunds_against_the_total() -> None:
    order = OrderFactory.create(status=Order.Status.SHIPPED, subtotal=Decimal("30.00"))
    RefundFactory.create(order=order, amount=Decimal("25.00"))

    with pytest.raises(ShopError) as caught:
        refund_create(order_number=order.number, amount=Decimal("5.01"), reason="x")

    assert caught.value.code == ShopErrorCode.REFUND_EXCEEDS_REMAINDER
    assert "At most 5.00 EUR" in caught.value.detail
    assert Refund.objects.filter(order=order).count() == 1


def test_refund_is_capped_by_the_discounted_total() -> None:
    order = OrderFactory.create(
        status=Order.Status.DELIVERED,
        subtotal=Decimal("50.00"),
        discount_amount=Decimal("5.00"),
        total=Decimal("45.00"),
    )

    with pytest.raises(ShopError):
        refund_create(order_number=order.number, amount=Decimal("50.00"), reason="x")


@pytest.mark.parametrize(
    "status",
    [Order.Status.PENDING, Order.Status.PAID, Order.Status.CANCELLED, Order.Status.REFUNDED],
)
def test_refund_refuses_orders_that_have_not_shipped_or_are_closed(status: str) -> None:
    order = OrderFactory.create(status=status)

    with pytest.raises(ShopError) as caught:
        refund_create(order_number=order.number, amount=Decimal("1.00"), reason="x")

    assert caught.value.code == ShopErrorCode.ORDER_NOT_REFUNDABLE
    assert caught.value.status == 409
    assert not Refund.objects.filter(order=order).exists()


# --- Races (PostgreSQL: SQLite serialises every writer anyway) ------------------------------------


def race(*calls: Callable[[], Outcome]) -> list[Outcome | Exception]:
    """Run the calls at the same moment, each on its own thread and database connection."""
    barrier = threading.Barrier(len(calls))
    results: list[Outcome | Exception] = [TimeoutError("did not finish")] * len(calls)

    def run(index: int, call: Callable[[], Outcome]) -> None:
        try:
            barrier.wait()
            results[index] = call()
        except Exception as exc:
            results[index] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i, c)) for i, c in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    return results


def outcome_codes(results: list[Outcome | Exception]) -> list[str]:
    return sorted(
        f"ok {r.status}" if isinstance(r, Outcome) else str(getattr(r, "code", repr(r)))
        for r in results
    )


@pytest.mark.django_db(transaction=True)
def test_concurrent_cancels_cancel_once(postgres: None) -> None:
    for _ in range(5):
        order = OrderFactory.create()

        cancel = functools.partial(order_cancel, order_number=order.number)

        results = race(cancel, cancel)

        assert outcome_codes(results) == ["ok 200", "order_not_cancellable"]
        assert events(order, OrderEvent.Kind.CANCELLED) == 1


@pytest.mark.django_db(transaction=True)
def test_concurrent_cancels_with_one_key_both_get_the_first_answer(postgres: None) -> None:
    for attempt in range(5):
        order = OrderFactory.create()

        cancel = functools.partial(
            order_cancel, order_number=order.number, idempotency_key=f"race-{attempt}"
        )

        results = race(cancel, cancel)

        assert all(isinstance(r, Outcome) for r in results), results
        first, second = (r for r in results if isinstance(r, Outcome))
        assert first.body == second.body
        assert sorted([first.replayed, second.replayed]) == [False, True]
        assert events(order, OrderEvent.Kind.CANCELLED) == 1


@pytest.mark.django_db(transaction=True)
def test_one_key_racing_on_two_orders_acts_once(postgres: None) -> None:
    for attempt in range(5):
        one, two = OrderFactory.create(), OrderFactory.create()
        key = f"split-{attempt}"

        results = race(
            functools.partial(order_cancel, order_number=one.number, idempotency_key=key),
            functools.partial(order_cancel, order_number=two.number, idempotency_key=key),
        )

        assert outcome_codes(results) == ["idempotency_key_reused", "ok 200"]
        assert (
            OrderEvent.objects.filter(order__in=[one, two], kind=OrderEvent.Kind.CANCELLED).count()
            == 1
        )


@pytest.mark.django_db(transaction=True)
def test_concurrent_refunds_never_exceed_the_total(postgres: None) -> None:
    order = OrderFactory.create(status=Order.Status.DELIVERED, subtotal=Decimal("30.00"))

    results = race(
        *[
            lambda: refund_create(order_number=order.number, amount=Decimal("20"), reason="x")
            for _ in range(3)
        ]
    )

    assert outcome_codes(results) == [
        "ok 201",
        "refund_exceeds_remainder",
        "refund_exceeds_remainder",
    ]
    assert order.refunds.count() == 1
