"""The one application error type and its codes, shared by the API envelope and WebSocket
``error`` frames (SPEC §11: one error shape, the same codes everywhere)."""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import Any


class ErrorCode(StrEnum):
    # Generic HTTP-level failures.
    BAD_REQUEST = "bad_request"
    VALIDATION_ERROR = "validation_error"
    NOT_AUTHENTICATED = "not_authenticated"
    PERMISSION_DENIED = "permission_denied"
    NOT_FOUND = "not_found"
    METHOD_NOT_ALLOWED = "method_not_allowed"
    CONFLICT = "conflict"
    PAYLOAD_TOO_LARGE = "payload_too_large"
    RATE_LIMITED = "rate_limited"
    INTERNAL_ERROR = "internal_error"
    SERVICE_UNAVAILABLE = "service_unavailable"
    # Chat protocol (SPEC §3).
    MALFORMED_JSON = "malformed_json"
    INVALID_FRAME = "invalid_frame"
    UNKNOWN_TYPE = "unknown_type"
    FRAME_TOO_LARGE = "frame_too_large"
    MESSAGE_TOO_LONG = "message_too_long"
    EMPTY_MESSAGE = "empty_message"
    # Imports (SPEC §8).
    FETCH_BLOCKED = "fetch_blocked"
    FETCH_FAILED = "fetch_failed"
    SPEC_INVALID = "spec_invalid"
    # Approvals (SPEC §6).
    INTERRUPT_EXPIRED = "interrupt_expired"
    INTERRUPT_ALREADY_DECIDED = "interrupt_already_decided"
    ARGUMENTS_MISMATCH = "arguments_mismatch"
    # Customer identity (SPEC §3, docs/identity.md).
    IDENTITY_INVALID = "identity_invalid"
    IDENTITY_EXPIRED = "identity_expired"
    IDENTITY_REPLAYED = "identity_replayed"
    IDENTITY_CONFLICT = "identity_conflict"
    VERIFICATION_REQUIRED = "verification_required"
    # The embeddable widget (SPEC §3, docs/widget.md).
    SITE_UNAVAILABLE = "site_unavailable"
    ORIGIN_NOT_ALLOWED = "origin_not_allowed"
    VISITOR_INVALID = "visitor_invalid"
    # Escalations (SPEC §7).
    ALREADY_CLAIMED = "already_claimed"
    INVALID_TRANSITION = "invalid_transition"
    # Resolution lifecycle (SPEC §9, docs/analytics.md).
    NO_RESOLUTION_CHECK = "no_resolution_check"
    # Idempotent POSTs (SPEC §11).
    IDEMPOTENCY_KEY_IN_USE = "idempotency_key_in_use"
    IDEMPOTENCY_KEY_REUSED = "idempotency_key_reused"


DEFAULT_STATUS: dict[ErrorCode, int] = {
    ErrorCode.BAD_REQUEST: 400,
    ErrorCode.VALIDATION_ERROR: 422,
    ErrorCode.NOT_AUTHENTICATED: 401,
    ErrorCode.PERMISSION_DENIED: 403,
    ErrorCode.NOT_FOUND: 404,
    ErrorCode.METHOD_NOT_ALLOWED: 405,
    ErrorCode.CONFLICT: 409,
    ErrorCode.PAYLOAD_TOO_LARGE: 413,
    ErrorCode.RATE_LIMITED: 429,
    ErrorCode.INTERNAL_ERROR: 500,
    ErrorCode.SERVICE_UNAVAILABLE: 503,
    ErrorCode.FETCH_BLOCKED: 422,
    ErrorCode.FETCH_FAILED: 502,
    ErrorCode.SPEC_INVALID: 422,
    ErrorCode.INTERRUPT_EXPIRED: 410,
    ErrorCode.NO_RESOLUTION_CHECK: 409,
    ErrorCode.INTERRUPT_ALREADY_DECIDED: 409,
    ErrorCode.ARGUMENTS_MISMATCH: 422,
    ErrorCode.IDENTITY_INVALID: 401,
    ErrorCode.IDENTITY_EXPIRED: 401,
    ErrorCode.IDENTITY_REPLAYED: 401,
    ErrorCode.IDENTITY_CONFLICT: 409,
    ErrorCode.VERIFICATION_REQUIRED: 403,
    ErrorCode.SITE_UNAVAILABLE: 404,
    ErrorCode.ORIGIN_NOT_ALLOWED: 403,
    ErrorCode.VISITOR_INVALID: 403,
    ErrorCode.ALREADY_CLAIMED: 409,
    ErrorCode.INVALID_TRANSITION: 409,
    ErrorCode.IDEMPOTENCY_KEY_IN_USE: 409,
    ErrorCode.IDEMPOTENCY_KEY_REUSED: 422,
}


class ApplicationError(Exception):
    """An expected failure with a code, a message fit for the user, and optional details."""

    def __init__(
        self,
        code: ErrorCode,
        message: str,
        *,
        details: dict[str, Any] | None = None,
        status: int | None = None,
        retry_after: int | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.details = details or {}
        self.status = status or DEFAULT_STATUS.get(code, 400)
        self.retry_after = retry_after

    def as_dict(self) -> dict[str, Any]:
        return {"code": str(self.code), "message": self.message, "details": self.details}

    def __repr__(self) -> str:
        return f"ApplicationError({self.code!s}, {self.message!r})"


def invalid_fields(
    message: str, fields: Mapping[str, str], *, kind: str | None = None
) -> ApplicationError:
    """A ``validation_error`` naming the fields at fault, in the API's field-error shape
    (``details.fields``: ``field``, ``message`` and, when given, ``type``)."""
    return ApplicationError(
        ErrorCode.VALIDATION_ERROR,
        message,
        details={
            "fields": [
                {"field": field, "message": text, **({"type": kind} if kind else {})}
                for field, text in fields.items()
            ]
        },
    )


ENVELOPE_KEYS = frozenset({"success", "data", "error"})


def is_envelope(data: Any) -> bool:
    """Whether ``data`` already has the shape of SPEC §11's envelope."""
    return isinstance(data, dict) and data.keys() == ENVELOPE_KEYS


def success_body(data: Any) -> dict:
    """The envelope of a successful response (SPEC §11)."""
    return {"success": True, "data": data, "error": None}


def error_body(code: ErrorCode | str, message: str, details: dict[str, Any] | None = None) -> dict:
    """The envelope of a failed response (SPEC §11)."""
    return {
        "success": False,
        "data": None,
        "error": {"code": str(code), "message": message, "details": details or {}},
    }
