"""A small e-commerce backend: customers, orders with items, shipments, discount codes and refunds,
plus an audit trail of what happened to each order and the stored answers of idempotent requests."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from django.db import models
from django.db.models import Q
from django.utils import timezone

ZERO = Decimal("0.00")


class Customer(models.Model):
    name = models.CharField(max_length=120)
    email = models.EmailField(unique=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["email"]

    def __str__(self) -> str:
        return f"{self.name} <{self.email}>"


class DiscountCode(models.Model):
    class Kind(models.TextChoices):
        PERCENT = "percent", "Percent off the subtotal"
        AMOUNT = "amount", "Fixed amount off the subtotal"

    code = models.CharField(max_length=40, unique=True, help_text="Stored in upper case.")
    kind = models.CharField(max_length=10, choices=Kind.choices)
    value = models.DecimalField(
        max_digits=10, decimal_places=2, help_text="Percent (1 to 100) or an amount in `currency`."
    )
    currency = models.CharField(max_length=3, default="EUR")
    active = models.BooleanField(default=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    max_uses = models.PositiveIntegerField(null=True, blank=True, help_text="Empty: unlimited.")
    uses = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["code"]
        constraints = [
            models.CheckConstraint(condition=Q(value__gt=0), name="demo_shop_discount_value_gt_0"),
            models.CheckConstraint(
                condition=~Q(kind="percent") | Q(value__lte=100),
                name="demo_shop_discount_percent_lte_100",
            ),
        ]

    def __str__(self) -> str:
        return self.code

    @property
    def label(self) -> str:
        if self.kind == self.Kind.PERCENT:
            return f"{self.value.normalize():f} % off the order subtotal"
        return f"{self.value} {self.currency} off the order subtotal"

    def invalid_reason(self, now: datetime) -> str | None:
        """Why the code cannot be used right now, or ``None`` when it can."""
        if not self.active:
            return "inactive"
        if self.expires_at is not None and self.expires_at <= now:
            return "expired"
        if self.max_uses is not None and self.uses >= self.max_uses:
            return "exhausted"
        return None


class Order(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending", "Pending payment"
        PAID = "paid", "Paid"
        SHIPPED = "shipped", "Shipped"
        DELIVERED = "delivered", "Delivered"
        CANCELLED = "cancelled", "Cancelled"
        REFUNDED = "refunded", "Refunded"

    # Orders can change only until they leave the warehouse.
    OPEN_STATUSES = (Status.PENDING, Status.PAID)
    REFUNDABLE_STATUSES = (Status.SHIPPED, Status.DELIVERED)

    number = models.PositiveIntegerField(unique=True, help_text="The number customers quote.")
    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="orders")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    currency = models.CharField(max_length=3, default="EUR")
    subtotal = models.DecimalField(max_digits=10, decimal_places=2)
    discount_code = models.ForeignKey(
        DiscountCode, on_delete=models.PROTECT, null=True, blank=True, related_name="orders"
    )
    discount_amount = models.DecimalField(max_digits=10, decimal_places=2, default=ZERO)
    total = models.DecimalField(max_digits=10, decimal_places=2)
    cancel_reason = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    cancelled_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-number"]
        constraints = [
            models.CheckConstraint(condition=Q(subtotal__gte=0), name="demo_shop_subtotal_gte_0"),
            models.CheckConstraint(
                condition=Q(discount_amount__gte=0), name="demo_shop_discount_amount_gte_0"
            ),
            models.CheckConstraint(condition=Q(total__gte=0), name="demo_shop_total_gte_0"),
        ]

    def __str__(self) -> str:
        return f"Order {self.number}"

    @property
    def refunded_amount(self) -> Decimal:
        # Iterating .all() uses prefetch_related("refunds") when the selector asked for it.
        return sum((refund.amount for refund in self.refunds.all()), ZERO)

    @property
    def refundable_amount(self) -> Decimal:
        if self.status not in self.REFUNDABLE_STATUSES:
            return ZERO
        return max(self.total - self.refunded_amount, ZERO)


class OrderItem(models.Model):
    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="items")
    sku = models.CharField(max_length=40)
    name = models.CharField(max_length=200)
    quantity = models.PositiveIntegerField()
    unit_price = models.DecimalField(max_digits=10, decimal_places=2)

    class Meta:
        ordering = ["order", "pk"]
        constraints = [
            models.CheckConstraint(condition=Q(quantity__gt=0), name="demo_shop_quantity_gt_0"),
            models.CheckConstraint(
                condition=Q(unit_price__gte=0), name="demo_shop_unit_price_gte_0"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.quantity} x {self.name}"

    @property
    def line_total(self) -> Decimal:
        return self.unit_price * self.quantity


class Shipment(models.Model):
    class Status(models.TextChoices):
        LABEL_CREATED = "label_created", "Label created"
        IN_TRANSIT = "in_transit", "In transit"
        OUT_FOR_DELIVERY = "out_for_delivery", "Out for delivery"
        DELIVERED = "delivered", "Delivered"

    order = models.OneToOneField(Order, on_delete=models.CASCADE, related_name="shipment")
    carrier = models.CharField(max_length=60)
    tracking_number = models.CharField(max_length=60)
    tracking_url = models.URLField(blank=True)
    status = models.CharField(max_length=20, choices=Status.choices)
    shipped_at = models.DateTimeField()
    estimated_delivery = models.DateField(null=True, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    events = models.JSONField(
        default=list, blank=True, help_text="Oldest first: [{at, location, description}]."
    )

    def __str__(self) -> str:
        return f"{self.carrier} {self.tracking_number}"


class Refund(models.Model):
    class Status(models.TextChoices):
        SUCCEEDED = "succeeded", "Succeeded"

    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="refunds")
    amount = models.DecimalField(max_digits=10, decimal_places=2)
    reason = models.CharField(max_length=500)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.SUCCEEDED)
    created_at = models.DateTimeField(default=timezone.now)
    # A second request with the same key can never create a second refund, even in a race.
    idempotency_key = models.CharField(max_length=255, unique=True, null=True, blank=True)

    class Meta:
        ordering = ["created_at", "pk"]
        constraints = [
            models.CheckConstraint(condition=Q(amount__gt=0), name="demo_shop_refund_amount_gt_0"),
        ]

    def __str__(self) -> str:
        return f"Refund {self.pk} of {self.amount} on order {self.order_id}"


class OrderEvent(models.Model):
    """What happened to an order, one row per effect: the proof that a cancel ran once."""

    class Kind(models.TextChoices):
        PLACED = "placed", "Placed"
        PAID = "paid", "Paid"
        SHIPPED = "shipped", "Shipped"
        DELIVERED = "delivered", "Delivered"
        CANCELLED = "cancelled", "Cancelled"
        DISCOUNT_APPLIED = "discount_applied", "Discount applied"
        REFUNDED = "refunded", "Refunded"

    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="events")
    kind = models.CharField(max_length=20, choices=Kind.choices)
    note = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    idempotency_key = models.CharField(max_length=255, blank=True, db_index=True)

    class Meta:
        ordering = ["created_at", "pk"]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} (order {self.order_id})"


class IdempotencyRecord(models.Model):
    """The first answer to a request sent with an ``Idempotency-Key``, replayed on repeats."""

    key = models.CharField(max_length=255, unique=True)
    operation = models.CharField(max_length=40)
    request_hash = models.CharField(max_length=64, help_text="SHA-256 of operation and body.")
    response_status = models.PositiveSmallIntegerField()
    response_body = models.JSONField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.operation} {self.key}"


class VerificationCode(models.Model):
    """A one-time code "emailed" to a customer to verify them in the chat (docs/identity.md).
    The demo sends no email: the code is shown in the demo shop's admin instead."""

    email = models.EmailField(db_index=True)
    code = models.CharField(max_length=12)
    attempts = models.PositiveSmallIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.email}: {self.code}"
