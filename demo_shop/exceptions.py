"""The demo shop's one error type. It answers ``{"detail": ..., "code": ...}`` like a typical
third-party backend, deliberately not in Actiondesk's own envelope."""

from __future__ import annotations

from enum import StrEnum


class ShopErrorCode(StrEnum):
    ORDER_NOT_FOUND = "order_not_found"
    DISCOUNT_CODE_NOT_FOUND = "discount_code_not_found"
    ORDER_NOT_CANCELLABLE = "order_not_cancellable"
    ORDER_NOT_MODIFIABLE = "order_not_modifiable"
    ORDER_NOT_REFUNDABLE = "order_not_refundable"
    DISCOUNT_ALREADY_APPLIED = "discount_already_applied"
    DISCOUNT_CODE_UNKNOWN = "discount_code_unknown"
    DISCOUNT_CODE_INACTIVE = "discount_code_inactive"
    DISCOUNT_CODE_EXPIRED = "discount_code_expired"
    DISCOUNT_CODE_EXHAUSTED = "discount_code_exhausted"
    DISCOUNT_CODE_NOT_APPLICABLE = "discount_code_not_applicable"
    REFUND_EXCEEDS_REMAINDER = "refund_exceeds_remainder"
    IDEMPOTENCY_KEY_REUSED = "idempotency_key_reused"
    NOT_YOUR_ORDER = "not_your_order"
    NOT_YOUR_ACCOUNT = "not_your_account"
    VERIFICATION_FAILED = "verification_failed"
    VERIFICATION_EXPIRED = "verification_expired"
    VERIFICATION_LOCKED = "verification_locked"


STATUS: dict[ShopErrorCode, int] = {
    ShopErrorCode.ORDER_NOT_FOUND: 404,
    ShopErrorCode.DISCOUNT_CODE_NOT_FOUND: 404,
    ShopErrorCode.ORDER_NOT_CANCELLABLE: 409,
    ShopErrorCode.ORDER_NOT_MODIFIABLE: 409,
    ShopErrorCode.ORDER_NOT_REFUNDABLE: 409,
    ShopErrorCode.DISCOUNT_ALREADY_APPLIED: 409,
    ShopErrorCode.DISCOUNT_CODE_UNKNOWN: 422,
    ShopErrorCode.DISCOUNT_CODE_INACTIVE: 422,
    ShopErrorCode.DISCOUNT_CODE_EXPIRED: 422,
    ShopErrorCode.DISCOUNT_CODE_EXHAUSTED: 422,
    ShopErrorCode.DISCOUNT_CODE_NOT_APPLICABLE: 422,
    ShopErrorCode.REFUND_EXCEEDS_REMAINDER: 422,
    ShopErrorCode.IDEMPOTENCY_KEY_REUSED: 422,
    # 404, not 403: another customer's order is, for this caller, not there.
    ShopErrorCode.NOT_YOUR_ORDER: 404,
    ShopErrorCode.NOT_YOUR_ACCOUNT: 404,
    ShopErrorCode.VERIFICATION_FAILED: 422,
    ShopErrorCode.VERIFICATION_EXPIRED: 422,
    ShopErrorCode.VERIFICATION_LOCKED: 422,
}


class ShopError(Exception):
    """An expected refusal: a code for programs, a sentence a support agent can repeat."""

    def __init__(self, code: ShopErrorCode, detail: str) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail
        self.status = STATUS[code]

    def __repr__(self) -> str:
        return f"ShopError({self.code!s}, {self.detail!r})"
