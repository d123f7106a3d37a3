"""Request and response bodies of the demo shop API. Money travels as decimal strings ("59.90")
in responses and is accepted as a number or a string in requests."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from django.utils import timezone
from ninja import Field, Schema

from demo_shop.models import DiscountCode, Order, Refund, Shipment


class ErrorOut(Schema):
    detail: str = Field(description="What went wrong, in a sentence fit to tell the customer.")
    code: str = Field(description="A stable machine-readable reason, e.g. `order_not_found`.")


class OrderItemOut(Schema):
    sku: str
    name: str
    quantity: int
    unit_price: Decimal
    line_total: Decimal


class OrderOut(Schema):
    number: int = Field(description="The order number the customer quotes, e.g. 1042.")
    status: Order.Status = Field(
        description="pending (awaiting payment), paid, shipped, delivered, cancelled or refunded."
    )
    customer_name: str
    customer_email: str
    currency: str = Field(description="ISO 4217 code, e.g. EUR.")
    items: list[OrderItemOut]
    subtotal: Decimal = Field(description="Sum of the items before any discount.")
    discount_code: str | None = Field(description="The discount code applied, if any.")
    discount_amount: Decimal
    total: Decimal = Field(description="What the customer pays: subtotal minus discount.")
    refunded_amount: Decimal
    refundable_amount: Decimal = Field(description="What can still be refunded (0 unless shipped).")
    created_at: datetime
    cancelled_at: datetime | None
    cancel_reason: str

    @staticmethod
    def resolve_customer_name(obj: Order) -> str:
        return obj.customer.name

    @staticmethod
    def resolve_customer_email(obj: Order) -> str:
        return obj.customer.email

    @staticmethod
    def resolve_discount_code(obj: Order) -> str | None:
        return obj.discount_code.code if obj.discount_code else None


class TrackingEventOut(Schema):
    at: datetime
    location: str
    description: str


class TrackingOut(Schema):
    order_number: int
    order_status: Order.Status
    shipped: bool = Field(description="False until the parcel has left the warehouse.")
    carrier: str | None
    tracking_number: str | None
    tracking_url: str | None
    status: Shipment.Status | None = Field(
        description="label_created, in_transit, out_for_delivery or delivered; null if not shipped."
    )
    shipped_at: datetime | None
    estimated_delivery: date | None
    delivered_at: datetime | None
    events: list[TrackingEventOut] = Field(description="Carrier scans, oldest first.")


class DiscountCodeOut(Schema):
    code: str
    kind: DiscountCode.Kind = Field(description="percent or amount.")
    value: Decimal = Field(description="Percent off, or an amount off in `currency`.")
    currency: str
    description: str
    valid: bool = Field(description="Whether the code can be applied right now.")
    invalid_reason: str | None = Field(description="inactive, expired or exhausted; null if valid.")
    expires_at: datetime | None

    @staticmethod
    def resolve_description(obj: DiscountCode) -> str:
        return obj.label

    @staticmethod
    def resolve_invalid_reason(obj: DiscountCode) -> str | None:
        return obj.invalid_reason(timezone.now())

    @staticmethod
    def resolve_valid(obj: DiscountCode) -> bool:
        return obj.invalid_reason(timezone.now()) is None


class RefundOut(Schema):
    id: int
    order_number: int
    amount: Decimal
    currency: str
    reason: str
    status: Refund.Status
    created_at: datetime

    @staticmethod
    def resolve_order_number(obj: Refund) -> int:
        return obj.order.number

    @staticmethod
    def resolve_currency(obj: Refund) -> str:
        return obj.order.currency


class CancelOrderIn(Schema):
    reason: str = Field(
        default="", max_length=500, description="Why the customer cancels (optional)."
    )


class ApplyDiscountIn(Schema):
    code: str = Field(min_length=1, max_length=40, description="The code, e.g. WELCOME10.")


class RefundIn(Schema):
    amount: Decimal = Field(
        gt=0, max_digits=10, decimal_places=2, description="Amount to refund, e.g. 12.50."
    )
    reason: str = Field(min_length=1, max_length=500, description="Why the money is returned.")


class VerificationStartIn(Schema):
    email: str = Field(min_length=3, max_length=254, description="The customer's email address.")


class VerificationStartOut(Schema):
    sent: bool
    detail: str


class VerificationConfirmIn(Schema):
    email: str = Field(min_length=3, max_length=254, description="The customer's email address.")
    code: str = Field(
        min_length=4, max_length=12, description="The one-time code the customer received."
    )


class VerifiedCustomerOut(Schema):
    customer_id: str = Field(description="The shop's id of the verified customer.")
    email: str
    name: str
