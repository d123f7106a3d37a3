"""The Demo Shop API over HTTP: plain JSON, the X-Shop-Key header, statuses and the spec."""

from __future__ import annotations

from decimal import Decimal
from typing import Any
from urllib.parse import urljoin

import httpx
import pytest
from django.test import Client
from pytest_django.fixtures import Settings as SettingsWrapper

from demo_shop.models import DiscountCode, IdempotencyRecord, Order, OrderEvent, Refund
from demo_shop.seed import SeedResult, shop_seed
from tests.demo_shop.conftest import BASE, SHOP_KEY
from tests.demo_shop.factories import (
    DiscountCodeFactory,
    OrderFactory,
    RefundFactory,
    ShipmentFactory,
)

pytestmark = pytest.mark.django_db

OPERATION_IDS = {
    "getOrder",
    "listOrders",
    "getOrderTracking",
    "cancelOrder",
    "getDiscountCode",
    "applyDiscountCode",
    "createRefund",
    "listRefunds",
    "startVerification",
    "confirmVerification",
}
MUTATING = {"cancelOrder", "applyDiscountCode", "createRefund"}


def post(client: Client, path: str, body: dict[str, Any] | None = None, **headers: str) -> Any:
    return client.post(
        BASE + path,
        body,
        content_type="application/json",
        headers=headers,
    )


def cancellations(number: int) -> int:
    return OrderEvent.objects.filter(order__number=number, kind=OrderEvent.Kind.CANCELLED).count()


# --- Authentication -------------------------------------------------------------------------------


@pytest.mark.parametrize("headers", [{}, {"X-Shop-Key": "wrong"}, {"X-Shop-Key": ""}])
def test_missing_or_wrong_key_is_401_and_changes_nothing(
    shop: Client, seeded: SeedResult, headers: dict[str, str]
) -> None:
    anonymous = Client(headers=headers)

    read = anonymous.get(f"{BASE}/orders/1042")
    write = post(anonymous, "/orders/1042/cancel", {"reason": "x"})

    assert read.status_code == write.status_code == 401
    assert write.json() == {
        "detail": "Missing or invalid X-Shop-Key header.",
        "code": "not_authenticated",
    }
    assert Order.objects.get(number=1042).status == Order.Status.PAID
    assert cancellations(1042) == 0


def test_key_defaults_to_demo_shop_key_without_the_setting(
    settings: SettingsWrapper, seeded: SeedResult
) -> None:
    if hasattr(settings, "DEMO_SHOP_API_KEY"):
        del settings.DEMO_SHOP_API_KEY

    ok = Client(headers={"X-Shop-Key": "demo-shop-key"}).get(f"{BASE}/orders/1042")
    refused = Client(headers={"X-Shop-Key": SHOP_KEY}).get(f"{BASE}/orders/1042")

    assert ok.status_code == 200
    assert refused.status_code == 401


def test_key_comes_from_settings(settings: SettingsWrapper, seeded: SeedResult) -> None:
    settings.DEMO_SHOP_API_KEY = "rotated-key"

    assert (
        Client(headers={"X-Shop-Key": "demo-shop-key"}).get(f"{BASE}/orders/1042").status_code
        == 401
    )
    assert (
        Client(headers={"X-Shop-Key": "rotated-key"}).get(f"{BASE}/orders/1042").status_code == 200
    )


def test_writes_need_no_csrf_token(settings: SettingsWrapper, seeded: SeedResult) -> None:
    settings.DEMO_SHOP_API_KEY = SHOP_KEY
    client = Client(enforce_csrf_checks=True, headers={"X-Shop-Key": SHOP_KEY})

    response = post(client, "/orders/1042/cancel", {"reason": "Changed my mind"})

    assert response.status_code == 200
    assert Order.objects.get(number=1042).status == Order.Status.CANCELLED


# --- Reads ----------------------------------------------------------------------------------------


def test_get_order_shows_status_items_totals_and_customer(shop: Client, seeded: SeedResult) -> None:
    response = shop.get(f"{BASE}/orders/1042")

    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/json")
    body = response.json()
    assert body["number"] == 1042
    assert body["status"] == "paid"
    assert body["customer_email"] == "ana@example.com"
    assert (body["total"], body["currency"]) == ("59.90", "EUR")
    assert [(i["sku"], i["quantity"], i["line_total"]) for i in body["items"]] == [
        ("TSHIRT-ORG-M", 2, "39.90"),
        ("TOTE-CANVAS", 1, "20.00"),
    ]
    assert body["discount_code"] is None
    assert "success" not in body  # the shop is a third party: no Actiondesk envelope


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("get", "/orders/999999"),
        ("get", "/orders/999999/tracking"),
        ("get", "/orders/999999/refunds"),
        ("post", "/orders/999999/cancel"),
        ("post", "/orders/999999/refunds"),
    ],
)
def test_unknown_order_is_404(shop: Client, seeded: SeedResult, method: str, path: str) -> None:
    if method == "get":
        response = shop.get(BASE + path)
    else:
        response = post(shop, path, {"amount": "1.00", "reason": "x"})

    assert response.status_code == 404
    assert response.json() == {
        "detail": "There is no order number 999999.",
        "code": "order_not_found",
    }


@pytest.mark.parametrize("number", ["abc", "10.5", "0", "-3"])
def test_non_numeric_or_non_positive_order_number_is_422(
    shop: Client, seeded: SeedResult, number: str
) -> None:
    response = shop.get(f"{BASE}/orders/{number}")

    assert response.status_code == 422
    body = response.json()
    assert body["code"] == "validation_error"
    assert "order_number" in body["detail"]


def test_list_orders_returns_only_that_customers_orders_newest_first(
    shop: Client, seeded: SeedResult
) -> None:
    response = shop.get(f"{BASE}/orders", {"email": "  ANA@example.com "})

    assert response.status_code == 200
    assert [order["number"] for order in response.json()] == [1042, 1043]
    assert {order["customer_email"] for order in response.json()} == {"ana@example.com"}


def test_list_orders_of_unknown_email_is_empty(shop: Client, seeded: SeedResult) -> None:
    response = shop.get(f"{BASE}/orders", {"email": "nobody@example.com"})

    assert response.status_code == 200
    assert response.json() == []


def test_list_orders_requires_an_email(shop: Client, seeded: SeedResult) -> None:
    response = shop.get(f"{BASE}/orders")

    assert response.status_code == 422
    assert "email" in response.json()["detail"]


def test_tracking_of_a_shipped_order(shop: Client, seeded: SeedResult) -> None:
    response = shop.get(f"{BASE}/orders/1043/tracking")

    assert response.status_code == 200
    body = response.json()
    assert body["shipped"] is True
    assert (body["carrier"], body["tracking_number"]) == ("DHL", "JJD000390007843412")
    assert body["status"] == "in_transit"
    assert body["estimated_delivery"] is not None
    assert [e["description"] for e in body["events"]][-1] == "Departed the sorting hub"
    assert set(body["events"][0]) == {"at", "location", "description"}


def test_tracking_of_an_unshipped_order_says_so(shop: Client, seeded: SeedResult) -> None:
    response = shop.get(f"{BASE}/orders/1042/tracking")

    assert response.status_code == 200
    body = response.json()
    assert (body["shipped"], body["order_status"]) == (False, "paid")
    assert body["carrier"] is None
    assert body["events"] == []


@pytest.mark.parametrize(
    ("code", "valid", "reason"),
    [
        ("WELCOME10", True, None),
        ("welcome10", True, None),
        ("SPRING5", False, "expired"),
        ("VIP20", False, "inactive"),
        ("LAUNCH50", False, "exhausted"),
    ],
)
def test_get_discount_code_tells_whether_it_is_usable(
    shop: Client, seeded: SeedResult, code: str, valid: bool, reason: str | None
) -> None:
    response = shop.get(f"{BASE}/discount-codes/{code}")

    assert response.status_code == 200
    body = response.json()
    assert body["code"] == code.upper()
    assert (body["valid"], body["invalid_reason"]) == (valid, reason)


def test_unknown_discount_code_is_404(shop: Client, seeded: SeedResult) -> None:
    response = shop.get(f"{BASE}/discount-codes/NOPE")

    assert response.status_code == 404
    assert response.json()["code"] == "discount_code_not_found"


def test_list_refunds(shop: Client, seeded: SeedResult) -> None:
    response = shop.get(f"{BASE}/orders/1047/refunds")

    assert response.status_code == 200
    assert [(r["amount"], r["currency"], r["reason"]) for r in response.json()] == [
        ("11.00", "EUR", "The bulbs arrived broken")
    ]
    assert shop.get(f"{BASE}/orders/1042/refunds").json() == []


# --- Cancel ---------------------------------------------------------------------------------------


def test_cancel_a_paid_order(shop: Client, seeded: SeedResult) -> None:
    response = post(shop, "/orders/1042/cancel", {"reason": "Changed my mind"})

    assert response.status_code == 200
    assert response.json()["status"] == "cancelled"
    assert response.json()["cancel_reason"] == "Changed my mind"
    assert Order.objects.get(number=1042).status == Order.Status.CANCELLED
    assert cancellations(1042) == 1


def test_cancel_needs_no_body(shop: Client, seeded: SeedResult) -> None:
    response = shop.generic("POST", f"{BASE}/orders/1046/cancel")  # an empty body

    assert response.status_code == 200
    assert response.json()["status"] == "cancelled"


def test_cancel_twice_cancels_once_and_the_second_is_409(shop: Client, seeded: SeedResult) -> None:
    first = post(shop, "/orders/1042/cancel", {})
    second = post(shop, "/orders/1042/cancel", {})

    assert first.status_code == 200
    assert second.status_code == 409
    assert second.json() == {
        "detail": "Order 1042 is already cancelled.",
        "code": "order_not_cancellable",
    }
    assert cancellations(1042) == 1


def test_cancel_with_the_same_idempotency_key_replays_the_first_answer(
    shop: Client, seeded: SeedResult
) -> None:
    first = post(shop, "/orders/1042/cancel", {"reason": "x"}, **{"Idempotency-Key": "k-1"})
    second = post(shop, "/orders/1042/cancel", {"reason": "x"}, **{"Idempotency-Key": "k-1"})

    assert first.status_code == second.status_code == 200
    assert second.json() == first.json()
    assert second["Idempotent-Replayed"] == "true"
    assert not first.has_header("Idempotent-Replayed")
    assert cancellations(1042) == 1
    assert (
        OrderEvent.objects.get(kind=OrderEvent.Kind.CANCELLED, order__number=1042).idempotency_key
        == "k-1"
    )


def test_same_idempotency_key_with_another_body_is_422(shop: Client, seeded: SeedResult) -> None:
    post(shop, "/orders/1042/cancel", {"reason": "x"}, **{"Idempotency-Key": "k-2"})

    other_body = post(shop, "/orders/1042/cancel", {"reason": "y"}, **{"Idempotency-Key": "k-2"})
    other_order = post(shop, "/orders/1046/cancel", {"reason": "x"}, **{"Idempotency-Key": "k-2"})

    assert other_body.status_code == other_order.status_code == 422
    assert other_body.json()["code"] == "idempotency_key_reused"
    assert Order.objects.get(number=1046).status == Order.Status.PENDING
    assert cancellations(1042) == 1


def test_cancel_a_shipped_order_is_409_and_changes_nothing(
    shop: Client, seeded: SeedResult
) -> None:
    response = post(shop, "/orders/1043/cancel", {"reason": "Too slow"})

    assert response.status_code == 409
    assert response.json()["code"] == "order_not_cancellable"
    assert "shipped" in response.json()["detail"]
    assert Order.objects.get(number=1043).status == Order.Status.SHIPPED
    assert cancellations(1043) == 0


def test_cancel_reason_too_long_is_422(shop: Client, seeded: SeedResult) -> None:
    response = post(shop, "/orders/1042/cancel", {"reason": "x" * 501})

    assert response.status_code == 422
    assert Order.objects.get(number=1042).status == Order.Status.PAID


def test_malformed_json_is_400(shop: Client, seeded: SeedResult) -> None:
    response = shop.post(f"{BASE}/orders/1042/cancel", "{not json", content_type="application/json")

    assert response.status_code == 400
    assert response.json()["code"] == "bad_request"


# --- Discounts ------------------------------------------------------------------------------------


def test_apply_discount_recomputes_the_total(shop: Client, seeded: SeedResult) -> None:
    response = post(shop, "/orders/1042/discount", {"code": "welcome10"})

    assert response.status_code == 200
    body = response.json()
    assert (body["discount_code"], body["discount_amount"], body["total"]) == (
        "WELCOME10",
        "5.99",
        "53.91",
    )
    assert Order.objects.get(number=1042).total == Decimal("53.91")
    assert DiscountCode.objects.get(code="WELCOME10").uses == 1


@pytest.mark.parametrize(
    ("code", "error"),
    [
        ("SPRING5", "discount_code_expired"),
        ("VIP20", "discount_code_inactive"),
        ("LAUNCH50", "discount_code_exhausted"),
        ("NOSUCHCODE", "discount_code_unknown"),
    ],
)
def test_unusable_discount_codes_are_422_and_change_nothing(
    shop: Client, seeded: SeedResult, code: str, error: str
) -> None:
    response = post(shop, "/orders/1042/discount", {"code": code})

    assert response.status_code == 422
    assert response.json()["code"] == error
    assert code in response.json()["detail"]
    assert Order.objects.get(number=1042).total == Decimal("59.90")


def test_discount_on_a_shipped_order_is_409(shop: Client, seeded: SeedResult) -> None:
    response = post(shop, "/orders/1043/discount", {"code": "WELCOME10"})

    assert response.status_code == 409
    assert response.json()["code"] == "order_not_modifiable"
    assert DiscountCode.objects.get(code="WELCOME10").uses == 0


def test_second_discount_on_an_order_is_409(shop: Client, seeded: SeedResult) -> None:
    post(shop, "/orders/1042/discount", {"code": "WELCOME10"})

    response = post(shop, "/orders/1042/discount", {"code": "SAVE5"})

    assert response.status_code == 409
    assert response.json()["code"] == "discount_already_applied"
    assert Order.objects.get(number=1042).total == Decimal("53.91")


def test_discount_with_the_same_idempotency_key_applies_once(
    shop: Client, seeded: SeedResult
) -> None:
    headers = {"Idempotency-Key": "disc-1"}
    first = post(shop, "/orders/1042/discount", {"code": "WELCOME10"}, **headers)
    second = post(shop, "/orders/1042/discount", {"code": "welcome10"}, **headers)

    assert first.status_code == second.status_code == 200
    assert second.json() == first.json()
    assert DiscountCode.objects.get(code="WELCOME10").uses == 1
    assert OrderEvent.objects.filter(kind=OrderEvent.Kind.DISCOUNT_APPLIED).count() == 1


def test_discount_code_must_not_be_empty(shop: Client, seeded: SeedResult) -> None:
    response = post(shop, "/orders/1042/discount", {"code": ""})

    assert response.status_code == 422
    assert response.json()["code"] == "validation_error"


# --- Refunds --------------------------------------------------------------------------------------


def test_create_refund(shop: Client, seeded: SeedResult) -> None:
    response = post(shop, "/orders/1044/refunds", {"amount": 15.5, "reason": "Case was scratched"})

    assert response.status_code == 201
    body = response.json()
    assert (body["order_number"], body["amount"], body["currency"]) == (1044, "15.50", "EUR")
    assert body["status"] == "succeeded"
    refund = Refund.objects.get(pk=body["id"])
    assert refund.amount == Decimal("15.50")
    assert shop.get(f"{BASE}/orders/1044").json()["refundable_amount"] == "129.00"


def test_refund_over_the_remainder_is_422(shop: Client, seeded: SeedResult) -> None:
    # 1047 totals 60.00 and 11.00 was already refunded.
    response = post(shop, "/orders/1047/refunds", {"amount": "49.01", "reason": "All of it"})

    assert response.status_code == 422
    assert response.json()["code"] == "refund_exceeds_remainder"
    assert "49.00" in response.json()["detail"]
    assert Refund.objects.filter(order__number=1047).count() == 1


@pytest.mark.parametrize(
    "body",
    [
        {"amount": -5, "reason": "x"},
        {"amount": 0, "reason": "x"},
        {"amount": "1.001", "reason": "x"},
        {"amount": "lots", "reason": "x"},
        {"amount": 5},
        {"amount": 5, "reason": ""},
        {"reason": "x"},
    ],
)
def test_invalid_refund_bodies_are_422(
    shop: Client, seeded: SeedResult, body: dict[str, Any]
) -> None:
    response = post(shop, "/orders/1044/refunds", body)

    assert response.status_code == 422
    assert response.json()["code"] == "validation_error"
    assert Refund.objects.filter(order__number=1044).count() == 0


def test_refund_of_an_unshipped_order_is_409(shop: Client, seeded: SeedResult) -> None:
    response = post(shop, "/orders/1042/refunds", {"amount": "5.00", "reason": "x"})

    assert response.status_code == 409
    assert response.json()["code"] == "order_not_refundable"
    assert "cancel" in response.json()["detail"]


def test_refund_with_the_same_idempotency_key_refunds_once(
    shop: Client, seeded: SeedResult
) -> None:
    body = {"amount": "20.00", "reason": "Late delivery"}
    first = post(shop, "/orders/1044/refunds", body, **{"Idempotency-Key": "r-1"})
    second = post(shop, "/orders/1044/refunds", body, **{"Idempotency-Key": "r-1"})

    assert first.status_code == second.status_code == 201
    assert second.json() == first.json()
    assert Refund.objects.filter(order__number=1044).count() == 1
    assert IdempotencyRecord.objects.filter(key="r-1").count() == 1


def test_refund_with_factories_on_a_shipped_order(shop: Client) -> None:
    shipment = ShipmentFactory.create(order__subtotal=Decimal("80.00"))
    RefundFactory.create(order=shipment.order, amount=Decimal("30.00"))

    response = post(shop, f"/orders/{shipment.order.number}/refunds", {"amount": 50, "reason": "x"})

    assert response.status_code == 201
    shipment.order.refresh_from_db()
    assert shipment.order.status == Order.Status.REFUNDED


# --- The OpenAPI document -------------------------------------------------------------------------


def test_openapi_spec_is_public_and_complete(db: None) -> None:
    response = Client().get(f"{BASE}/openapi.json")

    assert response.status_code == 200
    spec = response.json()
    assert spec["openapi"].startswith("3.")
    assert spec["info"]["title"] == "Demo Shop API"
    assert spec["info"]["version"] == "1.0.0"
    assert spec["servers"][0]["url"] == BASE
    operations = {
        op["operationId"]: (method, path, op)
        for path, item in spec["paths"].items()
        for method, op in item.items()
    }
    assert set(operations) == OPERATION_IDS
    # Paths are relative to the server URL, so joining them gives the real address once.
    assert operations["getOrder"][:2] == ("get", "/orders/{order_number}")
    schemes = spec["components"]["securitySchemes"]
    assert {"type": "apiKey", "in": "header", "name": "X-Shop-Key"}.items() <= next(
        iter(schemes.values())
    ).items()
    for operation_id, (_, _, op) in operations.items():
        headers = {p["name"] for p in op["parameters"] if p["in"] == "header"}
        assert ("Idempotency-Key" in headers) == (operation_id in MUTATING), operation_id
        assert op["summary"] and len(op["description"]) > 40, operation_id
        assert op["security"], operation_id


def test_docs_page_is_public(db: None) -> None:
    response = Client().get(f"{BASE}/docs")

    assert response.status_code == 200
    assert b"openapi.json" in response.content


def test_order_factory_orders_are_served(shop: Client) -> None:
    order = OrderFactory.create(items=[{"quantity": 2, "unit_price": Decimal("25.00")}])
    DiscountCodeFactory.create(code="TEN")

    response = post(shop, f"/orders/{order.number}/discount", {"code": "ten"})

    assert response.status_code == 200
    assert response.json()["total"] == "45.00"


def test_unknown_address_is_a_json_404(settings: SettingsWrapper) -> None:
    client = Client(enforce_csrf_checks=True)

    response = client.get(f"{BASE}/customers")
    posted = client.post(f"{BASE}/orders/1042/delete")

    assert response.status_code == posted.status_code == 404
    assert response.json() == {
        "detail": "There is no operation at /customers.",
        "code": "not_found",
    }


@pytest.mark.django_db(transaction=True)
def test_spec_and_operations_over_real_http(live_server: Any, settings: SettingsWrapper) -> None:
    """What the importer and the tool runner do: fetch the spec, join server and path, call."""
    settings.DEMO_SHOP_API_KEY = SHOP_KEY
    shop_seed()
    spec_url = f"{live_server.url}{BASE}/openapi.json"
    # Straight to the local server, never through a proxy from the environment.
    with httpx.Client(trust_env=False, timeout=10) as http:
        spec = http.get(spec_url).json()
        server = urljoin(spec_url, spec["servers"][0]["url"])
        cancel_path = next(
            path
            for path, item in spec["paths"].items()
            if "post" in item and item["post"]["operationId"] == "cancelOrder"
        )
        url = server + cancel_path.format(order_number=1042)
        headers = {"X-Shop-Key": SHOP_KEY, "Idempotency-Key": "http-1"}

        first = http.post(url, json={"reason": "over HTTP"}, headers=headers)
        second = http.post(url, json={"reason": "over HTTP"}, headers=headers)

    assert first.status_code == second.status_code == 200
    assert first.json() == second.json()
    assert first.json()["status"] == "cancelled"
    assert cancellations(1042) == 1
