"""Factories for the demo shop's models."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import factory
from django.utils import timezone

from demo_shop.models import Customer, DiscountCode, Order, OrderItem, Refund, Shipment


class CustomerFactory(factory.django.DjangoModelFactory[Customer]):
    class Meta:
        model = Customer
        django_get_or_create = ("email",)

    name = factory.Sequence(lambda n: f"Customer {n}")
    email = factory.Sequence(lambda n: f"customer{n}@example.test")


class DiscountCodeFactory(factory.django.DjangoModelFactory[DiscountCode]):
    class Meta:
        model = DiscountCode
        django_get_or_create = ("code",)

    code = factory.Sequence(lambda n: f"CODE{n}")
    kind = DiscountCode.Kind.PERCENT
    value = Decimal("10.00")


class OrderFactory(factory.django.DjangoModelFactory[Order]):
    """A paid order with one item worth the whole subtotal (pass ``items=[...]`` for others)."""

    class Meta:
        model = Order
        skip_postgeneration_save = True

    number = factory.Sequence(lambda n: 5000 + n)
    customer = factory.SubFactory(CustomerFactory)
    status = Order.Status.PAID
    currency = "EUR"
    subtotal = Decimal("50.00")
    total = factory.SelfAttribute("subtotal")

    @factory.post_generation
    def items(self, create: bool, extracted: list[dict[str, Any]] | None, **kwargs: Any) -> None:
        if not create:
            return
        order: Order = self  # type: ignore[assignment]
        for item in extracted or [{"unit_price": order.subtotal}]:
            OrderItemFactory(order=order, **item)


class OrderItemFactory(factory.django.DjangoModelFactory[OrderItem]):
    class Meta:
        model = OrderItem

    order = factory.SubFactory(OrderFactory)
    sku = factory.Sequence(lambda n: f"SKU-{n}")
    name = factory.Sequence(lambda n: f"Product {n}")
    quantity = 1
    unit_price = Decimal("50.00")


class ShipmentFactory(factory.django.DjangoModelFactory[Shipment]):
    class Meta:
        model = Shipment

    order = factory.SubFactory(OrderFactory, status=Order.Status.SHIPPED)
    carrier = "DHL"
    tracking_number = factory.Sequence(lambda n: f"JJD{n:015d}")
    status = Shipment.Status.IN_TRANSIT
    shipped_at = factory.LazyFunction(timezone.now)
    events = factory.LazyAttribute(
        lambda s: [
            {"at": s.shipped_at.isoformat(), "location": "Leipzig, DE", "description": "Picked up"}
        ]
    )


class RefundFactory(factory.django.DjangoModelFactory[Refund]):
    class Meta:
        model = Refund

    order = factory.SubFactory(OrderFactory, status=Order.Status.DELIVERED)
    amount = Decimal("10.00")
    reason = "Damaged"
