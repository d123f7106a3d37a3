"""Reads of the demo shop: shape and a fixed number of queries."""

from __future__ import annotations

import pytest
from pytest_django import DjangoAssertNumQueries

from demo_shop.exceptions import ShopError, ShopErrorCode
from demo_shop.schemas import OrderOut
from demo_shop.selectors import (
    discount_code_get,
    order_get,
    order_list_for_email,
    tracking_get_for_order,
)
from tests.demo_shop.factories import CustomerFactory, OrderFactory, RefundFactory, ShipmentFactory

pytestmark = pytest.mark.django_db


def test_order_get_and_render_in_three_queries(
    django_assert_num_queries: DjangoAssertNumQueries,
) -> None:
    order = OrderFactory.create(items=[{}, {}, {}])
    RefundFactory.create_batch(2, order=order, amount=1)

    with django_assert_num_queries(3):  # order with customer and code, items, refunds
        body = OrderOut.from_orm(order_get(order_number=order.number)).model_dump()

    assert len(body["items"]) == 3
    assert str(body["refunded_amount"]) == "2.00"


def test_order_list_for_email_does_not_grow_with_orders(
    django_assert_num_queries: DjangoAssertNumQueries,
) -> None:
    customer = CustomerFactory.create(email="many@example.test")
    OrderFactory.create_batch(6, customer=customer)
    OrderFactory.create()  # someone else's

    with django_assert_num_queries(3):
        orders = [OrderOut.from_orm(o) for o in order_list_for_email(email="MANY@example.test")]

    assert len(orders) == 6
    assert {o.customer_email for o in orders} == {"many@example.test"}


def test_tracking_copies_the_shipment() -> None:
    shipment = ShipmentFactory.create()

    tracking = tracking_get_for_order(order_number=shipment.order.number)

    assert tracking.shipped is True
    assert tracking.tracking_number == shipment.tracking_number
    assert tracking.events == shipment.events


def test_missing_things_raise_shop_errors() -> None:
    with pytest.raises(ShopError) as order_missing:
        order_get(order_number=1)
    with pytest.raises(ShopError) as code_missing:
        discount_code_get(code="none")

    assert order_missing.value.code == ShopErrorCode.ORDER_NOT_FOUND
    assert code_missing.value.code == ShopErrorCode.DISCOUNT_CODE_NOT_FOUND
