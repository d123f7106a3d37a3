"""The demo shop in the admin, read-mostly: what the agents did is visible (an order cancelled
once, a refund made once) but only changed through the shop's API. Discount codes stay editable
so a presenter can switch one off mid-demo."""

from __future__ import annotations

from django.contrib import admin, messages
from django.db.models import Count, Q, QuerySet
from django.http import HttpRequest

from demo_shop.models import (
    Customer,
    DiscountCode,
    IdempotencyRecord,
    Order,
    OrderEvent,
    OrderItem,
    Refund,
    Shipment,
    VerificationCode,
)
from demo_shop.seed import shop_seed


class ReadOnlyMixin:
    def has_add_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


class OrderItemInline(ReadOnlyMixin, admin.TabularInline):
    model = OrderItem
    fields = ("sku", "name", "quantity", "unit_price")
    extra = 0


class ShipmentInline(ReadOnlyMixin, admin.StackedInline):
    model = Shipment
    fields = (
        ("carrier", "tracking_number", "status"),
        ("shipped_at", "estimated_delivery", "delivered_at"),
        "tracking_url",
        "events",
    )
    extra = 0


class RefundInline(ReadOnlyMixin, admin.TabularInline):
    model = Refund
    fields = ("amount", "reason", "status", "created_at", "idempotency_key")
    extra = 0


class OrderEventInline(ReadOnlyMixin, admin.TabularInline):
    model = OrderEvent
    fields = ("created_at", "kind", "note", "idempotency_key")
    extra = 0


@admin.register(Order)
class OrderAdmin(ReadOnlyMixin, admin.ModelAdmin):
    list_display = (
        "number",
        "customer",
        "status",
        "total",
        "currency",
        "discount_code",
        "cancellations",
        "created_at",
    )
    list_filter = ("status",)
    search_fields = ("=number", "customer__email", "customer__name")
    list_select_related = ("customer", "discount_code")
    inlines = [OrderItemInline, ShipmentInline, RefundInline, OrderEventInline]
    actions = ["reset_demo_shop"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Order]:
        return (
            super()
            .get_queryset(request)
            .annotate(
                _cancellations=Count("events", filter=Q(events__kind=OrderEvent.Kind.CANCELLED))
            )
        )

    @admin.display(description="Cancellations", ordering="_cancellations")
    def cancellations(self, order: Order) -> int:
        return int(getattr(order, "_cancellations", 0))

    def has_reset_permission(self, request: HttpRequest) -> bool:
        return bool(request.user.is_superuser)

    @admin.action(
        description="Reset the whole demo shop to its seed data (any selection)",
        permissions=["reset"],
    )
    def reset_demo_shop(self, request: HttpRequest, queryset: QuerySet[Order]) -> None:
        result = shop_seed(reset=True)
        messages.success(request, f"Demo shop reset: {result.created} record(s) recreated.")


@admin.register(Customer)
class CustomerAdmin(ReadOnlyMixin, admin.ModelAdmin):
    list_display = ("name", "email", "created_at")
    search_fields = ("name", "email")


@admin.register(DiscountCode)
class DiscountCodeAdmin(admin.ModelAdmin):
    list_display = ("code", "kind", "value", "currency", "active", "expires_at", "uses", "max_uses")
    list_filter = ("active", "kind")
    search_fields = ("code",)
    readonly_fields = ("uses",)


@admin.register(Refund)
class RefundAdmin(ReadOnlyMixin, admin.ModelAdmin):
    list_display = ("pk", "order", "amount", "reason", "status", "created_at", "idempotency_key")
    list_select_related = ("order",)
    search_fields = ("=order__number", "idempotency_key")


@admin.register(IdempotencyRecord)
class IdempotencyRecordAdmin(ReadOnlyMixin, admin.ModelAdmin):
    list_display = ("key", "operation", "response_status", "created_at")
    list_filter = ("operation",)
    search_fields = ("key",)


@admin.register(VerificationCode)
class VerificationCodeAdmin(ReadOnlyMixin, admin.ModelAdmin):
    """The one-time codes the chat's verification "emails": the demo shows them here."""

    list_display = ("email", "code", "created_at", "expires_at", "attempts", "used_at")
    search_fields = ("email",)
    readonly_fields = ("email", "code", "created_at", "expires_at", "attempts", "used_at")
