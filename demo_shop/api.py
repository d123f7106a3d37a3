"""The Demo Shop API: a stand-alone upstream at ``/demo-shop/api/`` that Actiondesk imports and
calls over HTTP like any third-party backend.

It has its own ``NinjaAPI`` and answers plain JSON (errors as ``{"detail", "code"}``), never
Actiondesk's envelope. Callers authenticate with the ``X-Shop-Key`` header; the OpenAPI document
and the docs page are public so the importer can fetch the spec anonymously.
"""

from __future__ import annotations

import hmac
from typing import Any

import structlog
from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt
from ninja import Header, NinjaAPI, Path, Query
from ninja.errors import AuthenticationError, HttpError, ValidationError
from ninja.security import APIKeyHeader

from demo_shop import selectors, services
from demo_shop.exceptions import ShopError
from demo_shop.models import DiscountCode, Order, Refund
from demo_shop.schemas import (
    ApplyDiscountIn,
    CancelOrderIn,
    DiscountCodeOut,
    ErrorOut,
    OrderOut,
    RefundIn,
    RefundOut,
    TrackingOut,
    VerificationConfirmIn,
    VerificationStartIn,
    VerificationStartOut,
    VerifiedCustomerOut,
)
from demo_shop.selectors import Tracking

logger = structlog.get_logger(__name__)

# A documented demo secret; deployments that expose the shop set DEMO_SHOP_API_KEY.
DEFAULT_KEY = "demo-shop-key"
IDEMPOTENCY_DOC = (
    "Optional unique key (e.g. a UUID) that makes retries safe: repeating the request with the "
    "same key and body returns the first answer without acting again; the same key with a "
    "different body is refused with 422."
)


class ShopKeyAuth(APIKeyHeader):
    param_name = "X-Shop-Key"
    openapi_description = "The shop's shared API key, sent in the `X-Shop-Key` header."

    def authenticate(self, request: HttpRequest, key: str | None) -> Any:
        expected = str(getattr(settings, "DEMO_SHOP_API_KEY", DEFAULT_KEY))
        if key and hmac.compare_digest(key.encode(), expected.encode()):
            return "demo-shop-client"
        return None


class DemoShopAPI(NinjaAPI):
    def get_openapi_schema(
        self, *, path_prefix: str | None = None, path_params: dict[str, Any] | None = None
    ) -> Any:
        # Paths relative to a `servers` entry, so a client joins the two instead of getting the
        # mount point twice; the server URL follows wherever the API is mounted.
        schema = super().get_openapi_schema(
            path_prefix="" if path_prefix is None else path_prefix, path_params=path_params
        )
        if path_prefix is None:
            root = self.get_root_path(path_params or {}).rstrip("/")
            schema["servers"] = [{"url": root, "description": "This demo shop"}]
        return schema


api = DemoShopAPI(
    title="Demo Shop API",
    version="1.0.0",
    description=(
        "The order, shipping, discount and refund backend of a small online shop. "
        "Authenticate with the `X-Shop-Key` header. Amounts are decimal strings in the "
        'order\'s currency. Errors answer `{"detail": ..., "code": ...}`.'
    ),
    urls_namespace="demo_shop",
    auth=ShopKeyAuth(),
    docs_decorator=None,
)

ERRORS: dict[int, Any] = {401: ErrorOut, 404: ErrorOut, 422: ErrorOut}
WRITE_ERRORS: dict[int, Any] = {**ERRORS, 409: ErrorOut}
ORDER_NUMBER = Path(..., ge=1, description="The order number, e.g. 1042.", examples=[1042])
IDEMPOTENCY_KEY = Header(
    None, alias="Idempotency-Key", min_length=1, max_length=255, description=IDEMPOTENCY_DOC
)
CONSEQUENTIAL = {"x-openai-isConsequential": True}
# Who the caller acts for: with it, an order of another customer is refused as not there
# (Actiondesk binds it to the verified customer's email); without it, the back office.
CUSTOMER_EMAIL = Header(
    None,
    alias="X-Customer-Email",
    min_length=3,
    max_length=254,
    description="The email of the customer the request is made for; orders of other "
    "customers are then refused (404 `not_your_order`).",
)


def _error(request: HttpRequest, status: int, detail: str, code: str) -> HttpResponse:
    return api.create_response(request, {"detail": detail, "code": code}, status=status)


@api.exception_handler(ShopError)
def _shop_error(request: HttpRequest, exc: ShopError) -> HttpResponse:
    return _error(request, exc.status, exc.detail, str(exc.code))


def _field(loc: tuple[Any, ...] | list[Any]) -> str:
    # ("body", "payload", "amount") -> "amount"; ("path", "order_number") -> "order_number".
    parts = [str(part) for part in loc]
    parts = parts[2:] if parts[:1] == ["body"] and len(parts) > 2 else parts[1:]
    return ".".join(parts) or "body"


@api.exception_handler(ValidationError)
def _validation_error(request: HttpRequest, exc: ValidationError) -> HttpResponse:
    problems = [f"{_field(error.get('loc', ()))}: {error.get('msg')}" for error in exc.errors]
    return _error(request, 422, "Invalid request: " + "; ".join(problems), "validation_error")


@api.exception_handler(AuthenticationError)
def _authentication_error(request: HttpRequest, exc: AuthenticationError) -> HttpResponse:
    return _error(request, 401, "Missing or invalid X-Shop-Key header.", "not_authenticated")


@api.exception_handler(HttpError)
def _http_error(request: HttpRequest, exc: HttpError) -> HttpResponse:
    return _error(request, exc.status_code, exc.message, "bad_request")


@api.exception_handler(Exception)
def _unexpected(request: HttpRequest, exc: Exception) -> HttpResponse:
    logger.exception("demo_shop_request_failed", path=request.path, method=request.method)
    return _error(request, 500, "Something went wrong in the shop.", "internal_error")


def _answer(request: HttpRequest, outcome: services.Outcome) -> HttpResponse:
    # The body was rendered (and stored, for replays) by the service; send it as it is.
    response = api.create_response(request, outcome.body, status=outcome.status)
    if outcome.replayed:
        response["Idempotent-Replayed"] = "true"
    return response


@api.get(
    "/orders/{order_number}",
    response={200: OrderOut, **ERRORS},
    operation_id="getOrder",
    summary="Get an order",
    description=(
        "Look up one order by its number: status (pending, paid, shipped, delivered, cancelled, "
        "refunded), items, subtotal, discount, total, amount refunded and the customer's name "
        'and email. Read-only. Use it to answer "what is the status of my order?".'
    ),
    tags=["orders"],
)
def get_order(
    request: HttpRequest,
    order_number: int = ORDER_NUMBER,
    customer_email: str | None = CUSTOMER_EMAIL,
) -> Order:
    return selectors.order_get(order_number=order_number, customer_email=customer_email)


@api.get(
    "/orders",
    response={200: list[OrderOut], **ERRORS},
    operation_id="listOrders",
    summary="List a customer's orders",
    description=(
        "List the orders placed with a customer email address, newest first (at most 50). "
        "Read-only. Use it when the customer does not know their order number."
    ),
    tags=["orders"],
)
def list_orders(
    request: HttpRequest,
    email: str = Query(
        ..., min_length=3, max_length=254, description="The customer's email address."
    ),
    customer_email: str | None = CUSTOMER_EMAIL,
) -> list[Order]:
    return selectors.order_list_for_email(email=email, customer_email=customer_email)


@api.get(
    "/orders/{order_number}/tracking",
    response={200: TrackingOut, **ERRORS},
    operation_id="getOrderTracking",
    summary="Track an order's shipment",
    description=(
        "Where the parcel is: carrier, tracking number and link, shipment status, estimated "
        "delivery date and the carrier's scan events. `shipped` is false (and the shipment "
        "fields null) while the order has not left the warehouse. Read-only. Use it to answer "
        '"where is my order?" or "when will it arrive?".'
    ),
    tags=["shipping"],
)
def get_order_tracking(
    request: HttpRequest,
    order_number: int = ORDER_NUMBER,
    customer_email: str | None = CUSTOMER_EMAIL,
) -> Tracking:
    return selectors.tracking_get_for_order(
        order_number=order_number, customer_email=customer_email
    )


@api.post(
    "/orders/{order_number}/cancel",
    response={200: OrderOut, **WRITE_ERRORS},
    operation_id="cancelOrder",
    summary="Cancel an order",
    description=(
        "Cancel an order that has not shipped yet (status pending or paid); any payment is "
        "released. This cannot be undone. Shipped or delivered orders cannot be cancelled "
        "(409): offer a refund once delivered instead. Send an `Idempotency-Key` to retry "
        "safely."
    ),
    tags=["orders"],
    openapi_extra=CONSEQUENTIAL,
)
def cancel_order(
    request: HttpRequest,
    payload: CancelOrderIn | None = None,
    order_number: int = ORDER_NUMBER,
    idempotency_key: str | None = IDEMPOTENCY_KEY,
    customer_email: str | None = CUSTOMER_EMAIL,
) -> HttpResponse:
    outcome = services.order_cancel(
        order_number=order_number,
        reason=payload.reason if payload else "",
        idempotency_key=idempotency_key,
        customer_email=customer_email,
    )
    return _answer(request, outcome)


@api.get(
    "/discount-codes/{code}",
    response={200: DiscountCodeOut, **ERRORS},
    operation_id="getDiscountCode",
    summary="Check a discount code",
    description=(
        "Check whether a discount code exists and can be used now: what it gives (percent or "
        "amount off), whether it is valid, and if not why (inactive, expired or used up). "
        "Read-only; it does not apply the code."
    ),
    tags=["discounts"],
)
def get_discount_code(
    request: HttpRequest,
    code: str = Path(..., max_length=40, description="The code, e.g. WELCOME10."),
) -> DiscountCode:
    return selectors.discount_code_get(code=code)


@api.post(
    "/orders/{order_number}/discount",
    response={200: OrderOut, **WRITE_ERRORS},
    operation_id="applyDiscountCode",
    summary="Apply a discount code to an order",
    description=(
        "Apply a discount code to an order that has not shipped yet and recompute its total. "
        "One code per order. Unknown, inactive, expired or used-up codes are refused (422); "
        "shipped or cancelled orders are refused (409). Changes what the customer pays. Send "
        "an `Idempotency-Key` to retry safely."
    ),
    tags=["discounts"],
    openapi_extra=CONSEQUENTIAL,
)
def apply_discount_code(
    request: HttpRequest,
    payload: ApplyDiscountIn,
    order_number: int = ORDER_NUMBER,
    idempotency_key: str | None = IDEMPOTENCY_KEY,
    customer_email: str | None = CUSTOMER_EMAIL,
) -> HttpResponse:
    outcome = services.discount_code_apply(
        order_number=order_number,
        code=payload.code,
        idempotency_key=idempotency_key,
        customer_email=customer_email,
    )
    return _answer(request, outcome)


@api.post(
    "/orders/{order_number}/refunds",
    response={201: RefundOut, **WRITE_ERRORS},
    operation_id="createRefund",
    summary="Refund money on an order",
    description=(
        "Refund part or all of a shipped or delivered order to the customer's original payment "
        "method. Moves money: the amount must not exceed what is left to refund "
        "(`refundable_amount` on the order; 422 otherwise). Orders that have not shipped "
        "should be cancelled instead (409). Send an `Idempotency-Key` to retry safely."
    ),
    tags=["refunds"],
    openapi_extra=CONSEQUENTIAL,
)
def create_refund(
    request: HttpRequest,
    payload: RefundIn,
    order_number: int = ORDER_NUMBER,
    idempotency_key: str | None = IDEMPOTENCY_KEY,
    customer_email: str | None = CUSTOMER_EMAIL,
) -> HttpResponse:
    outcome = services.refund_create(
        order_number=order_number,
        amount=payload.amount,
        reason=payload.reason,
        idempotency_key=idempotency_key,
        customer_email=customer_email,
    )
    return _answer(request, outcome)


@api.get(
    "/orders/{order_number}/refunds",
    response={200: list[RefundOut], **ERRORS},
    operation_id="listRefunds",
    summary="List an order's refunds",
    description=(
        "The refunds already made on an order, oldest first, with amount, reason and status. "
        "Read-only."
    ),
    tags=["refunds"],
)
def list_refunds(
    request: HttpRequest,
    order_number: int = ORDER_NUMBER,
    customer_email: str | None = CUSTOMER_EMAIL,
) -> list[Refund]:
    return selectors.refund_list_for_order(order_number=order_number, customer_email=customer_email)


@api.post(
    "/verification/start",
    response={202: VerificationStartOut, **ERRORS},
    operation_id="startVerification",
    summary="Send a verification code to a customer's email",
    description=(
        "Verify who the customer is: sends a one-time code to the email address on their "
        "account (valid 10 minutes). The answer is the same whether or not the address has an "
        "account. Then ask the customer for the code and confirm it."
    ),
    tags=["verification"],
)
def start_verification(request: HttpRequest, payload: VerificationStartIn) -> HttpResponse:
    body = services.verification_start(email=payload.email)
    return api.create_response(request, body, status=202)


@api.post(
    "/verification/confirm",
    response={200: VerifiedCustomerOut, **ERRORS},
    operation_id="confirmVerification",
    summary="Confirm a customer's verification code",
    description=(
        "Check the one-time verification code the customer received by email; a right code "
        "answers with the customer (id, email, name). Wrong, expired or used codes are refused "
        "(422); five wrong tries lock the code."
    ),
    tags=["verification"],
)
def confirm_verification(request: HttpRequest, payload: VerificationConfirmIn) -> dict[str, Any]:
    return services.verification_confirm(email=payload.email, code=payload.code)


@csrf_exempt  # it never acts; a POST to a wrong address should get this 404, not a CSRF page
def unknown_path(request: HttpRequest, path: str = "") -> HttpResponse:
    """Unknown addresses under the API answer in the API's own error shape, not an HTML page."""
    return _error(request, 404, f"There is no operation at /{path}.", "not_found")
