"""Writes of the demo shop: cancel an order, apply a discount code, refund.

Every write locks the order row (``select_for_update`` in ``transaction.atomic``), so two
concurrent requests on one order run one after the other and the second sees the first's effect.
A request sent with an ``Idempotency-Key`` stores its answer in the same transaction; a repeat
with the same key and body gets that answer back (``replayed``) without acting again, a repeat
with another body is refused. Refusals are not stored: they changed nothing, so a retry simply
asks again.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, cast

import structlog
from django.db import IntegrityError, transaction
from django.utils import timezone
from ninja import Schema
from ninja.responses import NinjaJSONEncoder

from demo_shop.exceptions import ShopError, ShopErrorCode
from demo_shop.models import DiscountCode, IdempotencyRecord, Order, OrderEvent, Refund
from demo_shop.schemas import OrderOut, RefundOut
from demo_shop.selectors import (
    normalize_code,
    not_your_order,
    order_get,
    order_not_found,
    order_owned_by,
)

logger = structlog.get_logger(__name__)

CENT = Decimal("0.01")


@dataclass(frozen=True)
class Outcome:
    """The answer of a write: HTTP status and JSON body, and whether it is a stored replay."""

    status: int
    body: dict[str, Any]
    replayed: bool = False


def _request_hash(operation: str, order_number: int, payload: dict[str, Any]) -> str:
    canonical = json.dumps(
        {"operation": operation, "order_number": order_number, "payload": payload},
        sort_keys=True,
        default=str,
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


def _stored_outcome(*, key: str, request_hash: str) -> Outcome | None:
    record = IdempotencyRecord.objects.filter(key=key).first()
    if record is None:
        return None
    if record.request_hash != request_hash:
        raise ShopError(
            ShopErrorCode.IDEMPOTENCY_KEY_REUSED,
            "This Idempotency-Key was already used for a different request; "
            "send a new key for a new request.",
        )
    return Outcome(record.response_status, record.response_body, replayed=True)


def _run_once(
    *,
    operation: str,
    order_number: int,
    payload: dict[str, Any],
    idempotency_key: str | None,
    action: Callable[[Order], tuple[int, dict[str, Any]]],
    customer_email: str | None = None,
) -> Outcome:
    request_hash = _request_hash(operation, order_number, payload)
    try:
        with transaction.atomic():
            order = Order.objects.select_for_update().filter(number=order_number).first()
            if order is None:
                raise order_not_found(order_number)
            if not order_owned_by(order, customer_email):
                raise not_your_order(order_number)
            # Checked under the order lock: a concurrent twin with the same key has committed
            # its record by the time we get here, so we replay it instead of acting twice.
            if idempotency_key and (
                stored := _stored_outcome(key=idempotency_key, request_hash=request_hash)
            ):
                return stored
            status, body = action(order)
            if idempotency_key:
                IdempotencyRecord.objects.create(
                    key=idempotency_key,
                    operation=operation,
                    request_hash=request_hash,
                    response_status=status,
                    response_body=body,
                )
            return Outcome(status, body)
    except IntegrityError:
        # The same key raced in on another order (another lock); the unique key stopped it.
        if not idempotency_key:
            raise
        stored = _stored_outcome(key=idempotency_key, request_hash=request_hash)
        if stored is None:
            raise
        return stored


def _as_json(schema: Schema) -> dict[str, Any]:
    # The stored replay must be the exact JSON first answered, so it is rendered here, with the
    # encoder the API's renderer uses (same datetime precision as every other response).
    return cast(dict[str, Any], json.loads(json.dumps(schema.model_dump(), cls=NinjaJSONEncoder)))


def _order_body(order_number: int) -> dict[str, Any]:
    return _as_json(OrderOut.from_orm(order_get(order_number=order_number)))


def order_cancel(
    *,
    order_number: int,
    reason: str = "",
    idempotency_key: str | None = None,
    customer_email: str | None = None,
) -> Outcome:
    """Cancel a pending or paid order; shipped, delivered, cancelled or refunded ones refuse."""
    idempotency_key = idempotency_key or None

    def action(order: Order) -> tuple[int, dict[str, Any]]:
        if order.status not in Order.OPEN_STATUSES:
            raise ShopError(ShopErrorCode.ORDER_NOT_CANCELLABLE, _why_not_cancellable(order))
        order.status = Order.Status.CANCELLED
        order.cancel_reason = reason
        order.cancelled_at = timezone.now()
        order.save(update_fields=["status", "cancel_reason", "cancelled_at"])
        OrderEvent.objects.create(
            order=order,
            kind=OrderEvent.Kind.CANCELLED,
            note=reason,
            idempotency_key=idempotency_key or "",
        )
        logger.info("order_cancelled", order_number=order.number)
        return 200, _order_body(order.number)

    return _run_once(
        operation="cancelOrder",
        order_number=order_number,
        payload={"reason": reason},
        idempotency_key=idempotency_key,
        action=action,
        customer_email=customer_email,
    )


def _why_not_cancellable(order: Order) -> str:
    n = order.number
    return {
        Order.Status.SHIPPED: f"Order {n} has already shipped and can no longer be cancelled; "
        "once it is delivered it can be returned for a refund.",
        Order.Status.DELIVERED: f"Order {n} has been delivered and can no longer be cancelled; "
        "ask for a refund instead.",
        Order.Status.CANCELLED: f"Order {n} is already cancelled.",
        Order.Status.REFUNDED: f"Order {n} has been refunded and can no longer be cancelled.",
    }.get(Order.Status(order.status), f"Order {n} cannot be cancelled.")


_DISCOUNT_REFUSALS = {
    "inactive": (ShopErrorCode.DISCOUNT_CODE_INACTIVE, "is no longer active"),
    "expired": (ShopErrorCode.DISCOUNT_CODE_EXPIRED, "has expired"),
    "exhausted": (ShopErrorCode.DISCOUNT_CODE_EXHAUSTED, "has been used up"),
}


def discount_amount_for(*, discount: DiscountCode, subtotal: Decimal) -> Decimal:
    if discount.kind == DiscountCode.Kind.PERCENT:
        off = (subtotal * discount.value / 100).quantize(CENT, rounding=ROUND_HALF_UP)
    else:
        off = discount.value
    return min(off, subtotal)


def discount_code_apply(
    *,
    order_number: int,
    code: str,
    idempotency_key: str | None = None,
    customer_email: str | None = None,
) -> Outcome:
    """Apply one discount code to an order that has not shipped, and recompute its total."""
    idempotency_key = idempotency_key or None
    normalized = normalize_code(code)

    def action(order: Order) -> tuple[int, dict[str, Any]]:
        if order.status not in Order.OPEN_STATUSES:
            state = "is cancelled" if order.status == Order.Status.CANCELLED else "has shipped"
            raise ShopError(
                ShopErrorCode.ORDER_NOT_MODIFIABLE,
                f"Order {order.number} {state}; discount codes can only be applied "
                "before an order ships.",
            )
        # Locked too, so concurrent orders cannot push a code past max_uses.
        discount = DiscountCode.objects.select_for_update().filter(code=normalized).first()
        if discount is None:
            raise ShopError(
                ShopErrorCode.DISCOUNT_CODE_UNKNOWN, f"There is no discount code {normalized!r}."
            )
        if order.discount_code_id is not None:
            applied = DiscountCode.objects.get(pk=order.discount_code_id).code
            raise ShopError(
                ShopErrorCode.DISCOUNT_ALREADY_APPLIED,
                f"Order {order.number} already has the discount code {applied}; "
                "only one code can be used per order.",
            )
        refusal = discount.invalid_reason(timezone.now())
        if refusal is not None:
            error_code, wording = _DISCOUNT_REFUSALS[refusal]
            raise ShopError(error_code, f"The discount code {normalized} {wording}.")
        if discount.kind == DiscountCode.Kind.AMOUNT and discount.currency != order.currency:
            raise ShopError(
                ShopErrorCode.DISCOUNT_CODE_NOT_APPLICABLE,
                f"The discount code {normalized} is only valid for orders in {discount.currency}.",
            )
        off = discount_amount_for(discount=discount, subtotal=order.subtotal)
        order.discount_code = discount
        order.discount_amount = off
        order.total = order.subtotal - off
        order.save(update_fields=["discount_code", "discount_amount", "total"])
        discount.uses += 1
        discount.save(update_fields=["uses"])
        OrderEvent.objects.create(
            order=order,
            kind=OrderEvent.Kind.DISCOUNT_APPLIED,
            note=f"{normalized}: -{off} {order.currency}",
            idempotency_key=idempotency_key or "",
        )
        logger.info("discount_code_applied", order_number=order.number, code=normalized)
        return 200, _order_body(order.number)

    return _run_once(
        operation="applyDiscountCode",
        order_number=order_number,
        payload={"code": normalized},
        idempotency_key=idempotency_key,
        action=action,
        customer_email=customer_email,
    )


def refund_create(
    *,
    order_number: int,
    amount: Decimal,
    reason: str,
    idempotency_key: str | None = None,
    customer_email: str | None = None,
) -> Outcome:
    """Refund part or all of a shipped or delivered order, up to what is left to refund."""
    idempotency_key = idempotency_key or None
    amount = amount.quantize(CENT)

    def action(order: Order) -> tuple[int, dict[str, Any]]:
        if order.status not in Order.REFUNDABLE_STATUSES:
            raise ShopError(ShopErrorCode.ORDER_NOT_REFUNDABLE, _why_not_refundable(order))
        remainder = order.refundable_amount
        if amount > remainder:
            raise ShopError(
                ShopErrorCode.REFUND_EXCEEDS_REMAINDER,
                f"At most {remainder} {order.currency} can still be refunded on order "
                f"{order.number} (total {order.total}, already refunded "
                f"{order.refunded_amount}).",
            )
        refund = Refund.objects.create(
            order=order, amount=amount, reason=reason, idempotency_key=idempotency_key
        )
        if amount == remainder:
            order.status = Order.Status.REFUNDED
            order.save(update_fields=["status"])
        OrderEvent.objects.create(
            order=order,
            kind=OrderEvent.Kind.REFUNDED,
            note=f"{amount} {order.currency}: {reason}",
            idempotency_key=idempotency_key or "",
        )
        logger.info("refund_created", order_number=order.number, refund_id=refund.pk)
        return 201, _as_json(RefundOut.from_orm(refund))

    return _run_once(
        operation="createRefund",
        order_number=order_number,
        payload={"amount": str(amount), "reason": reason},
        idempotency_key=idempotency_key,
        action=action,
        customer_email=customer_email,
    )


def _why_not_refundable(order: Order) -> str:
    n = order.number
    return {
        Order.Status.PENDING: f"Order {n} has not been paid; there is nothing to refund.",
        Order.Status.PAID: f"Order {n} has not shipped yet; cancel it instead of refunding.",
        Order.Status.CANCELLED: f"Order {n} is cancelled; its payment was released when it "
        "was cancelled.",
        Order.Status.REFUNDED: f"Order {n} has already been refunded in full.",
    }.get(Order.Status(order.status), f"Order {n} cannot be refunded.")


# --- Verification codes (docs/identity.md) -----------------------------------------------------

VERIFICATION_CODE_SECONDS = 600
VERIFICATION_MAX_ATTEMPTS = 5
# No 0/O or 1/I: the customer reads the code off an email (here, the admin) and types it.
_CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ"
_CODE_DIGITS = "23456789"


def _new_code() -> str:
    import secrets

    # Letters and digits both, always: the chat recognises it as a code, not an order number.
    chars = [secrets.choice(_CODE_ALPHABET) for _ in range(3)]
    chars += [secrets.choice(_CODE_DIGITS) for _ in range(3)]
    secrets.SystemRandom().shuffle(chars)
    return "".join(chars)


def verification_start(*, email: str) -> dict[str, Any]:
    """Send a one-time code to the customer's email (the demo stores it for the admin). The
    answer is the same whether or not the address has an account."""
    from datetime import timedelta

    from demo_shop.models import Customer, VerificationCode
    from demo_shop.selectors import normalize_email

    address = normalize_email(email)
    if Customer.objects.filter(email__iexact=address).exists():
        with transaction.atomic():
            # A new code replaces any earlier one: only the latest works.
            VerificationCode.objects.filter(email=address, used_at__isnull=True).update(
                used_at=timezone.now()
            )
            VerificationCode.objects.create(
                email=address,
                code=_new_code(),
                expires_at=timezone.now() + timedelta(seconds=VERIFICATION_CODE_SECONDS),
            )
        logger.info("verification_code_sent")
    return {
        "sent": True,
        "detail": "If this email has an account, a one-time code was sent to it. "
        "It is valid for 10 minutes.",
    }


def verification_confirm(*, email: str, code: str) -> dict[str, Any]:
    """The customer for a right code (once); wrong, expired and used-up codes are refused, and
    after five wrong tries the code is locked."""
    from demo_shop.models import Customer, VerificationCode
    from demo_shop.selectors import normalize_email

    address = normalize_email(email)
    with transaction.atomic():
        pending = (
            VerificationCode.objects.select_for_update()
            .filter(email=address, used_at__isnull=True)
            .order_by("-created_at")
            .first()
        )
        if pending is None:
            raise ShopError(
                ShopErrorCode.VERIFICATION_FAILED,
                "There is no code waiting for this email; ask for a new one.",
            )
        if pending.expires_at <= timezone.now():
            raise ShopError(
                ShopErrorCode.VERIFICATION_EXPIRED, "That code has expired; ask for a new one."
            )
        if pending.attempts >= VERIFICATION_MAX_ATTEMPTS:
            raise ShopError(
                ShopErrorCode.VERIFICATION_LOCKED, "Too many wrong tries; ask for a new code."
            )
        import hmac

        if not hmac.compare_digest(pending.code.encode(), code.strip().upper().encode()):
            pending.attempts += 1
            pending.save(update_fields=["attempts"])
            left = VERIFICATION_MAX_ATTEMPTS - pending.attempts
            raise ShopError(
                ShopErrorCode.VERIFICATION_FAILED,
                f"That code is not right; {left} tries left."
                if left
                else "That code is not right, and it is now locked; ask for a new code.",
            )
        pending.used_at = timezone.now()
        pending.save(update_fields=["used_at"])
        customer = Customer.objects.get(email__iexact=address)
    logger.info("verification_confirmed", customer_id=customer.pk)
    return {"customer_id": str(customer.pk), "email": customer.email, "name": customer.name}
