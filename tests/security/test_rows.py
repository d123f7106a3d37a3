"""SECURITY-TESTS rows that had no test of their own (issue 18 item 11); the other rows are
tested beside the code they cover (docs/security-tests.md lists where)."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest
from channels.testing import WebsocketCommunicator
from django.contrib.auth.models import User
from django.test import Client

from config.asgi import application
from conversations.models import Conversation
from tests.conversations.chat import visitor_cookie

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.mark.parametrize("route", ["chat", "/ws/escalations/"])
async def test_handshake_without_origin_is_refused(route: str) -> None:
    """Row 2: browser routes refuse a handshake with no ``Origin`` header; the same route with
    an allowed origin is accepted (the control)."""
    from asgiref.sync import sync_to_async

    from conversations.services import conversation_start

    conversation: Conversation = await sync_to_async(conversation_start)(visitor_id="visitor-a")
    path = f"/ws/chat/{conversation.pk}/" if route == "chat" else route
    cookie = (b"cookie", visitor_cookie("visitor-a"))
    bare = WebsocketCommunicator(application, path, headers=[cookie])
    connected, _ = await bare.connect()
    assert connected is False
    await bare.disconnect()
    if route == "chat":
        allowed = WebsocketCommunicator(
            application, path, headers=[cookie, (b"origin", b"http://testserver")]
        )
        connected, _ = await allowed.connect()
        assert connected is True
        await allowed.disconnect()


@pytest.mark.parametrize(
    "path", ["/admin/", "/admin/analytics/event/", "/admin/escalations/queue/"]
)
def test_staff_pages_send_anonymous_users_to_login_and_refuse_non_staff(path: str) -> None:
    """Row 45: anonymous users are redirected to the login; a signed-in non-staff user is
    not let in (a redirect to the login again)."""
    anonymous = Client().get(path)
    assert anonymous.status_code == 302 and "/admin/login/" in anonymous["Location"]
    User.objects.create_user("customer", "c@example.com", "pw-12345678")
    client = Client()
    client.login(username="customer", password="pw-12345678")
    response = client.get(path)
    assert response.status_code in (302, 403)
    if response.status_code == 302:
        assert "/admin/login/" in response["Location"]


def test_log_injection_keeps_one_event_per_line(capsys: Any) -> None:
    """Row 46: ``\\r\\n`` and forged JSON in customer text stay inside one escaped JSON line."""
    import structlog
    from django.conf import settings

    from config.logging import build_logging, configure

    forged = 'hello\r\n{"level": "critical", "event": "admin_login", "user": "root"}\n'
    configure(build_logging(log_format="json", level="INFO"))
    try:
        structlog.get_logger("row46").info("customer_wrote", content=forged)
        for handler in logging.getLogger().handlers:
            handler.flush()
        lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    finally:
        structlog.reset_defaults()
        configure(settings.LOGGING)
    ours = [json.loads(line) for line in lines if "customer_wrote" in line]
    assert len(ours) == 1 and ours[0]["content"] == forged
    assert not any('"event": "admin_login"' in line for line in lines)
    assert all(line.startswith("{") for line in lines if "row46" in line)


def test_metric_labels_name_no_user_or_conversation() -> None:
    """Row 47 (cardinality): no exported series is labelled per user, visitor, conversation,
    IP or turn, so the series count does not grow with traffic."""
    from prometheus_client import REGISTRY

    import config.metrics  # noqa: F401  (imports every module that defines metrics)

    forbidden = {"user", "user_id", "visitor", "visitor_id", "conversation", "conversation_id",
                 "ip", "client_ip", "turn_id", "connection_id", "email"}  # fmt: skip
    labels: set[str] = set()
    for metric in REGISTRY.collect():
        for sample in metric.samples:
            labels |= set(sample.labels)
    assert labels, "no metrics collected"
    assert not labels & forbidden, labels & forbidden


def test_admin_action_without_the_csrf_token_is_refused() -> None:
    """Row 44 (admin actions): a POSTed action without its token is 403 and changes nothing;
    with the token it runs."""
    from openapi_import.models import ApiSpec, Operation

    admin = User.objects.create_superuser("root", "root@example.com", "pw-12345678")
    spec = ApiSpec.objects.create(title="Shop", version="1")
    operation = Operation.objects.create(
        spec=spec, operation_id="getOrder", method="GET", path="/orders/{n}"
    )
    client = Client(enforce_csrf_checks=True)
    client.force_login(admin)
    data = {"action": "enable", "_selected_action": [operation.pk]}
    refused = client.post("/admin/openapi_import/operation/", data)
    assert refused.status_code == 403
    operation.refresh_from_db()
    assert operation.enabled is False
    page = client.get("/admin/openapi_import/operation/")
    token = page.cookies["csrftoken"].value
    done = client.post("/admin/openapi_import/operation/", {**data, "csrfmiddlewaretoken": token})
    assert done.status_code == 302  # the action ran and redirected back to the list
