"""Reads of the demo shop. Each selector fetches what its response shows in a fixed number of
queries, and raises ``ShopError`` when the thing asked for does not exist."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from django.db.models import QuerySet

from demo_shop.exceptions import ShopError, ShopErrorCode
from demo_shop.models import Customer, DiscountCode, Order, Refund, Shipment

# An agent reads the answer into its context; the most recent orders are the ones asked about.
ORDER_LIST_LIMIT = 50


def normalize_code(code: str) -> str:
    return code.strip().upper()


def normalize_email(email: str) -> str:
    return email.strip().lower()


def order_not_found(order_number: int) -> ShopError:
    return ShopError(ShopErrorCode.ORDER_NOT_FOUND, f"There is no order number {order_number}.")


def _orders() -> QuerySet[Order]:
    return Order.objects.select_related("customer", "discount_code").prefetch_related(
        "items", "refunds"
    )


def not_your_order(order_number: int) -> ShopError:
    return ShopError(ShopErrorCode.NOT_YOUR_ORDER, f"Order {order_number} isn't on your account.")


def order_get(*, order_number: int, customer_email: str | None = None) -> Order:
    order = _orders().filter(number=order_number).first()
    if order is None:
        raise order_not_found(order_number)
    if not order_owned_by(order, customer_email):
        raise not_your_order(order_number)
    return order


def order_list_for_email(*, email: str, customer_email: str | None = None) -> list[Order]:
    if customer_email is not None and normalize_email(email) != normalize_email(customer_email):
        raise ShopError(
            ShopErrorCode.NOT_YOUR_ACCOUNT, "You can only see the orders on your own account."
        )
    return list(_orders().filter(customer__email__iexact=normalize_email(email))[:ORDER_LIST_LIMIT])


@dataclass(frozen=True)
class Tracking:
    order_number: int
    order_status: str
    shipped: bool
    carrier: str | None = None
    tracking_number: str | None = None
    tracking_url: str | None = None
    status: str | None = None
    shipped_at: datetime | None = None
    estimated_delivery: date | None = None
    delivered_at: datetime | None = None
    events: list[dict[str, Any]] = field(default_factory=list)


def tracking_get_for_order(*, order_number: int, customer_email: str | None = None) -> Tracking:
    order = Order.objects.select_related("customer").filter(number=order_number).first()
    if order is None:
        raise order_not_found(order_number)
    if not order_owned_by(order, customer_email):
        raise not_your_order(order_number)
    shipment = Shipment.objects.filter(order=order).first()
    if shipment is None:
        # Not an error: "not shipped yet" is the answer to "where is my order?".
        return Tracking(order_number=order.number, order_status=order.status, shipped=False)
    return Tracking(
        order_number=order.number,
        order_status=order.status,
        shipped=True,
        carrier=shipment.carrier,
        tracking_number=shipment.tracking_number,
        tracking_url=shipment.tracking_url or None,
        status=shipment.status,
        shipped_at=shipment.shipped_at,
        estimated_delivery=shipment.estimated_delivery,
        delivered_at=shipment.delivered_at,
        events=list(shipment.events),
    )


def discount_code_get(*, code: str) -> DiscountCode:
    discount = DiscountCode.objects.filter(code=normalize_code(code)).first()
    if discount is None:
        raise ShopError(
            ShopErrorCode.DISCOUNT_CODE_NOT_FOUND, f"There is no discount code {code.strip()!r}."
        )
    return discount


def refund_list_for_order(*, order_number: int, customer_email: str | None = None) -> list[Refund]:
    order = Order.objects.select_related("customer").filter(number=order_number).first()
    if order is None:
        raise order_not_found(order_number)
    if not order_owned_by(order, customer_email):
        raise not_your_order(order_number)
    return list(Refund.objects.filter(order=order).select_related("order"))


def customers_for_emails(*, emails: tuple[str, ...] | list[str]) -> list[Customer]:
    found = {c.email: c for c in Customer.objects.filter(email__in=emails)}
    return [found[e] for e in emails if e in found]


def order_owned_by(order: Order, email: str | None) -> bool:
    """Ownership (docs/identity.md): with a customer email (``X-Customer-Email``) the order must
    be that customer's; without one the caller is the shop's back office."""
    if email is None:
        return True
    return order.customer.email.lower() == normalize_email(email)
