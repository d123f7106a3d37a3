"""The demo shop in the admin: read-only orders that show what the agents did, and a reset."""

from __future__ import annotations

import pytest
from django.test import Client

from demo_shop.models import Order
from demo_shop.seed import SeedResult
from demo_shop.services import order_cancel

pytestmark = pytest.mark.django_db


def test_order_list_shows_cancellations(admin_client: Client, seeded: SeedResult) -> None:
    order_cancel(order_number=1042)

    response = admin_client.get("/admin/demo_shop/order/")

    assert response.status_code == 200
    admin = response.context["cl"].model_admin
    cancelled = {o.number: admin.cancellations(o) for o in response.context["cl"].result_list}
    assert cancelled[1042] == 1
    assert cancelled[1043] == 0


def test_order_page_is_view_only_with_its_history(admin_client: Client, seeded: SeedResult) -> None:
    order = Order.objects.get(number=1043)

    response = admin_client.get(f"/admin/demo_shop/order/{order.pk}/change/")

    assert response.status_code == 200
    assert b"JJD000390007843412" in response.content
    assert b'name="_save"' not in response.content
    assert admin_client.post(f"/admin/demo_shop/order/{order.pk}/change/", {}).status_code == 403


def test_reset_action_restores_the_seed(admin_client: Client, seeded: SeedResult) -> None:
    order_cancel(order_number=1042)
    any_order = Order.objects.first()
    assert any_order is not None

    response = admin_client.post(
        "/admin/demo_shop/order/",
        {"action": "reset_demo_shop", "_selected_action": [any_order.pk]},
    )

    assert response.status_code == 302
    assert Order.objects.get(number=1042).status == Order.Status.PAID
