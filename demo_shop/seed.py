"""The demo shop's seed data, the same on every run.

Dates are relative to the day of seeding (an order placed "yesterday", a parcel due "in two
days"), so the demo reads naturally whenever it runs; everything else is fixed. Seeding adds only
what is missing, so running it twice changes nothing; ``reset`` wipes the shop and restores the
initial state, undoing every cancellation, discount and refund made during a demo.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal

import structlog
from django.db import transaction
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

logger = structlog.get_logger(__name__)

CUSTOMERS = [
    ("Ana Souza", "ana@example.com"),
    ("Ben Carter", "ben@example.com"),
    ("Chloé Martin", "chloe@example.com"),
]


@dataclass(frozen=True)
class SeedCode:
    code: str
    kind: str
    value: str
    active: bool = True
    expires_in_days: int | None = None
    max_uses: int | None = None
    uses: int = 0


DISCOUNT_CODES = [
    SeedCode("WELCOME10", DiscountCode.Kind.PERCENT, "10"),
    SeedCode("SAVE5", DiscountCode.Kind.AMOUNT, "5.00", max_uses=100),
    SeedCode("SPRING5", DiscountCode.Kind.PERCENT, "5", expires_in_days=-30),
    SeedCode("VIP20", DiscountCode.Kind.PERCENT, "20", active=False),
    SeedCode("LAUNCH50", DiscountCode.Kind.PERCENT, "50", max_uses=50, uses=50),
]


@dataclass(frozen=True)
class SeedShipment:
    carrier: str
    tracking_number: str
    status: str
    shipped_days_ago: int
    eta_in_days: int
    delivered_days_ago: int | None
    # (days ago, "HH:MM", location, description), oldest first.
    scans: list[tuple[int, str, str, str]]


@dataclass(frozen=True)
class SeedOrder:
    number: int
    email: str
    status: str
    placed_days_ago: int
    items: list[tuple[str, str, int, str]]
    shipment: SeedShipment | None = None
    refunds: list[tuple[str, str]] = field(default_factory=list)
    cancel_reason: str = ""


ORDERS = [
    SeedOrder(
        1042,
        "ana@example.com",
        Order.Status.PAID,
        placed_days_ago=1,
        items=[
            ("TSHIRT-ORG-M", "Organic cotton T-shirt, size M", 2, "19.95"),
            ("TOTE-CANVAS", "Canvas tote bag", 1, "20.00"),
        ],
    ),
    SeedOrder(
        1043,
        "ana@example.com",
        Order.Status.SHIPPED,
        placed_days_ago=4,
        items=[("SHOE-TRAIL-42", "Trail running shoes, EU 42", 1, "89.00")],
        shipment=SeedShipment(
            carrier="DHL",
            tracking_number="JJD000390007843412",
            status=Shipment.Status.IN_TRANSIT,
            shipped_days_ago=2,
            eta_in_days=2,
            delivered_days_ago=None,
            scans=[
                (2, "16:05", "Leipzig, DE", "Shipment information received"),
                (2, "18:40", "Leipzig, DE", "Picked up by the carrier"),
                (1, "06:12", "Frankfurt hub, DE", "Arrived at the sorting hub"),
                (1, "09:30", "Frankfurt hub, DE", "Departed the sorting hub"),
            ],
        ),
    ),
    SeedOrder(
        1044,
        "ben@example.com",
        Order.Status.DELIVERED,
        placed_days_ago=12,
        items=[
            ("HP-WIRELESS", "Wireless noise-cancelling headphones", 1, "129.00"),
            ("HP-CASE", "Headphone travel case", 1, "15.50"),
        ],
        shipment=SeedShipment(
            carrier="UPS",
            tracking_number="1Z999AA10123456784",
            status=Shipment.Status.DELIVERED,
            shipped_days_ago=10,
            eta_in_days=-7,
            delivered_days_ago=7,
            scans=[
                (10, "14:20", "Rotterdam, NL", "Picked up by the carrier"),
                (9, "03:55", "Cologne, DE", "Arrived at the sorting hub"),
                (7, "08:10", "Berlin, DE", "Out for delivery"),
                (7, "12:47", "Berlin, DE", "Delivered, signed by B. Carter"),
            ],
        ),
    ),
    SeedOrder(
        1045,
        "ben@example.com",
        Order.Status.CANCELLED,
        placed_days_ago=6,
        items=[("MUG-CERAMIC", "Ceramic mug, 350 ml", 2, "12.00")],
        cancel_reason="Ordered by mistake",
    ),
    SeedOrder(
        1046,
        "chloe@example.com",
        Order.Status.PENDING,
        placed_days_ago=1,
        items=[("YOGA-MAT", "Cork yoga mat", 1, "35.00")],
    ),
    SeedOrder(
        1047,
        "chloe@example.com",
        Order.Status.DELIVERED,
        placed_days_ago=20,
        items=[
            ("LAMP-DESK", "Oak desk lamp", 1, "49.00"),
            ("BULB-LED-3", "LED bulbs, pack of 3", 1, "11.00"),
        ],
        shipment=SeedShipment(
            carrier="DPD",
            tracking_number="01234567890123",
            status=Shipment.Status.DELIVERED,
            shipped_days_ago=18,
            eta_in_days=-16,
            delivered_days_ago=16,
            scans=[
                (18, "11:00", "Lyon, FR", "Parcel handed to DPD"),
                (16, "10:25", "Paris, FR", "Delivered to the front door"),
            ],
        ),
        refunds=[("11.00", "The bulbs arrived broken")],
    ),
]


@dataclass(frozen=True)
class SeedResult:
    created: int
    reset: bool


def shop_seed(*, reset: bool = False, now: datetime | None = None) -> SeedResult:
    """Create the demo data that is missing; with ``reset``, first delete the whole shop."""
    today = timezone.localdate(now or timezone.now(), timezone=UTC)
    with transaction.atomic():
        if reset:
            _delete_everything()
        created = _ensure_customers(today) + _ensure_discount_codes(today)
        created += sum(_ensure_order(seed, today) for seed in ORDERS)
    logger.info("demo_shop_seeded", created=created, reset=reset)
    return SeedResult(created=created, reset=reset)


def _at(today: date, days_ago: int, hhmm: str = "10:00") -> datetime:
    hours, minutes = (int(part) for part in hhmm.split(":"))
    day = today - timedelta(days=days_ago)
    return datetime.combine(day, time(hours, minutes), tzinfo=UTC)


def _delete_everything() -> None:
    # Children before parents: orders protect their customers and discount codes.
    IdempotencyRecord.objects.all().delete()
    Order.objects.all().delete()
    DiscountCode.objects.all().delete()
    Customer.objects.all().delete()


def _ensure_customers(today: date) -> int:
    created = 0
    for name, email in CUSTOMERS:
        _, was_created = Customer.objects.get_or_create(
            email=email, defaults={"name": name, "created_at": _at(today, 60)}
        )
        created += was_created
    return created


def _ensure_discount_codes(today: date) -> int:
    created = 0
    for seed in DISCOUNT_CODES:
        expires = None if seed.expires_in_days is None else _at(today, -seed.expires_in_days)
        _, was_created = DiscountCode.objects.get_or_create(
            code=seed.code,
            defaults={
                "kind": seed.kind,
                "value": Decimal(seed.value),
                "active": seed.active,
                "expires_at": expires,
                "max_uses": seed.max_uses,
                "uses": seed.uses,
            },
        )
        created += was_created
    return created


def _ensure_order(seed: SeedOrder, today: date) -> int:
    if Order.objects.filter(number=seed.number).exists():
        return 0
    subtotal = sum((Decimal(price) * qty for _, _, qty, price in seed.items), Decimal("0.00"))
    placed = _at(today, seed.placed_days_ago, "09:15")
    cancelled = seed.status == Order.Status.CANCELLED
    order = Order.objects.create(
        number=seed.number,
        customer=Customer.objects.get(email=seed.email),
        status=seed.status,
        subtotal=subtotal,
        total=subtotal,
        created_at=placed,
        cancel_reason=seed.cancel_reason,
        cancelled_at=placed + timedelta(hours=2) if cancelled else None,
    )
    OrderItem.objects.bulk_create(
        OrderItem(order=order, sku=sku, name=name, quantity=qty, unit_price=Decimal(price))
        for sku, name, qty, price in seed.items
    )
    history: list[tuple[str, datetime, str]] = [(OrderEvent.Kind.PLACED, placed, "")]
    if seed.status != Order.Status.PENDING:
        history.append((OrderEvent.Kind.PAID, placed + timedelta(minutes=1), ""))
    if cancelled:
        history.append((OrderEvent.Kind.CANCELLED, placed + timedelta(hours=2), seed.cancel_reason))
    if seed.shipment is not None:
        history += _create_shipment(order, seed.shipment, today)
    for amount, reason in seed.refunds:
        refunded_at = _at(today, max(seed.placed_days_ago - 5, 0), "15:30")
        Refund.objects.create(
            order=order, amount=Decimal(amount), reason=reason, created_at=refunded_at
        )
        history.append((OrderEvent.Kind.REFUNDED, refunded_at, f"{amount} EUR: {reason}"))
    OrderEvent.objects.bulk_create(
        OrderEvent(order=order, kind=kind, created_at=at, note=note) for kind, at, note in history
    )
    return 1


def _create_shipment(
    order: Order, seed: SeedShipment, today: date
) -> list[tuple[str, datetime, str]]:
    delivered_at = None
    if seed.delivered_days_ago is not None:
        delivered_at = _at(today, seed.delivered_days_ago, seed.scans[-1][1])
    Shipment.objects.create(
        order=order,
        carrier=seed.carrier,
        tracking_number=seed.tracking_number,
        tracking_url=f"https://tracking.example.com/{seed.carrier.lower()}/{seed.tracking_number}",
        status=seed.status,
        shipped_at=_at(today, seed.shipped_days_ago, seed.scans[0][1]),
        estimated_delivery=today + timedelta(days=seed.eta_in_days),
        delivered_at=delivered_at,
        events=[
            {"at": _at(today, days, hhmm).isoformat(), "location": where, "description": what}
            for days, hhmm, where, what in seed.scans
        ],
    )
    history: list[tuple[str, datetime, str]] = [
        (OrderEvent.Kind.SHIPPED, _at(today, seed.shipped_days_ago, seed.scans[0][1]), "")
    ]
    if delivered_at is not None:
        history.append((OrderEvent.Kind.DELIVERED, delivered_at, ""))
    return history
