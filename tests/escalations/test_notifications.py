"""The escalation webhook: Slack-compatible, signed when asked, retried with backoff against a
local server, and never able to fail the escalation."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from conversations.models import Conversation
from escalations import notifications
from escalations.models import Escalation
from tests.escalations.support import escalate

pytestmark = pytest.mark.django_db(transaction=True)


@dataclass
class Hook:
    """A webhook receiver on 127.0.0.1 answering with ``statuses`` in turn (the last repeats)."""

    statuses: list[int]
    port: int = 0
    received: list[tuple[dict[str, str], bytes]] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks/escalations"


@pytest.fixture
def hook(settings: Any) -> Iterator[Any]:
    servers: list[ThreadingHTTPServer] = []

    def start(statuses: list[int]) -> Hook:
        state = Hook(statuses)

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                state.received.append((dict(self.headers), body))
                index = min(len(state.received), len(state.statuses)) - 1
                self.send_response(state.statuses[index])
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args: object) -> None:
                pass

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        state.port = server.server_address[1]
        settings.ESCALATION_WEBHOOK_URL = state.url
        settings.ESCALATION_WEBHOOK_ALLOWED_HOSTS = [f"127.0.0.1:{state.port}"]
        settings.ESCALATION_LINK_BASE_URL = "https://support.example.test"
        return state

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


@pytest.fixture
def sleeps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    waited: list[float] = []
    monkeypatch.setattr(notifications, "backoff_sleep", waited.append)
    return waited


def test_fails_twice_then_succeeds_on_the_third_attempt(
    conversation: Conversation, hook: Any, sleeps: list[float], settings: Any
) -> None:
    settings.ESCALATION_WEBHOOK_BACKOFF_SECONDS = 1.5
    server = hook([503, 500, 200])

    escalation = escalate(conversation.pk, reason="lost parcel")

    escalation.refresh_from_db()
    assert escalation.notification_status == "sent"
    assert escalation.notification_attempts == 3 and escalation.notification_error == ""
    assert escalation.notified_at is not None
    assert len(server.received) == 3
    assert sleeps == [1.5, 3.0]
    headers, body = server.received[-1]
    payload = json.loads(body)
    assert headers["Content-Type"] == "application/json"
    assert "lost parcel" in payload["text"]
    button = payload["blocks"][-1]["elements"][0]
    assert (
        button["url"] == f"https://support.example.test/admin/escalations/handoff/{escalation.pk}/"
    )
    timeline = payload["blocks"][-1]["elements"][1]["url"]
    assert timeline.endswith(f"/admin/conversations/conversation/{conversation.pk}/change/")
    assert notifications.SIGNATURE_HEADER not in headers


def test_a_webhook_that_always_fails_never_fails_the_escalation(
    conversation: Conversation, hook: Any, sleeps: list[float]
) -> None:
    server = hook([500])

    escalation = escalate(conversation.pk)

    escalation.refresh_from_db()
    assert escalation.status == "waiting"
    assert Conversation.objects.get().state == "escalated"
    assert escalation.notification_status == "failed"
    assert escalation.notification_attempts == 3
    assert escalation.notification_error == "HTTP 500"
    assert len(server.received) == 3 and len(sleeps) == 2


def test_a_client_error_is_not_retried(
    conversation: Conversation, hook: Any, sleeps: list[float]
) -> None:
    server = hook([404])
    escalation = escalate(conversation.pk)
    escalation.refresh_from_db()
    assert (escalation.notification_status, escalation.notification_attempts) == ("failed", 1)
    assert len(server.received) == 1 and sleeps == []


def test_unreachable_or_private_hosts_are_failures_not_crashes(
    conversation: Conversation, settings: Any, sleeps: list[float]
) -> None:
    # Not on the allow-list: the SSRF guard refuses a private address outright.
    settings.ESCALATION_WEBHOOK_URL = "http://127.0.0.1:9/hook"
    settings.ESCALATION_WEBHOOK_ALLOWED_HOSTS = []

    escalation = escalate(conversation.pk)

    escalation.refresh_from_db()
    assert escalation.status == "waiting"
    assert escalation.notification_status == "failed"
    assert escalation.notification_error.startswith("blocked")
    assert sleeps == []


def test_the_signature_lets_the_receiver_check_the_body(
    conversation: Conversation, hook: Any, sleeps: list[float], settings: Any
) -> None:
    settings.ESCALATION_WEBHOOK_SIGN = True
    settings.ESCALATION_WEBHOOK_SECRET = "s3cret-for-tests"
    server = hook([200])

    escalate(conversation.pk)

    headers, body = server.received[0]
    timestamp = headers[notifications.TIMESTAMP_HEADER]
    expected = hmac.new(b"s3cret-for-tests", timestamp.encode() + b"." + body, hashlib.sha256)
    assert headers[notifications.SIGNATURE_HEADER] == f"sha256={expected.hexdigest()}"


def test_without_a_webhook_nothing_is_sent(conversation: Conversation) -> None:
    escalation = escalate(conversation.pk)
    assert escalation.notification_status == Escalation.Notification.NOT_CONFIGURED
