"""Provider health and ops counts in the admin (SPEC §10)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.utils import timezone

from analytics.models import Event
from conversations.agent.backends import set_registry
from conversations.llm.types import BackendHealth
from conversations.services import conversation_start, handoff_request

pytestmark = pytest.mark.django_db


class _Registry:
    """Stands in for BackendRegistry: the page reads ``health()`` and nothing else."""

    def health(self) -> list[BackendHealth]:
        return [
            BackendHealth(
                name="primary",
                kind="openai",
                model="gpt-x",
                state="open",
                error_rate=1.0,
                recent_calls=4,
                cooldown_remaining=12.5,
                consecutive_failures=3,
                last_error="401 from https://llm.test/v1?api_key=sk-abcdefghijklmnopqrstu for "
                "ana@example.com",
            ),
            BackendHealth(
                name="fallback",
                kind="offline",
                model="offline",
                state="closed",
                error_rate=0.0,
                recent_calls=0,
                cooldown_remaining=0.0,
            ),
        ]


@pytest.fixture
def registry() -> Iterator[None]:
    set_registry(_Registry())  # type: ignore[arg-type]
    yield
    set_registry(None)


def _login(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _model_call(minutes_ago: float, outcome: str, latency: float) -> None:
    Event.objects.create(
        type="model_called",
        backend="primary",
        outcome=outcome,
        latency_ms=latency,
        occurred_at=timezone.now() - timedelta(minutes=minutes_ago),
    )


def test_provider_health_shows_circuits_windows_and_latency(
    registry: None, supervisor: User
) -> None:
    _model_call(1, "ok", 500)
    _model_call(2, "ok", 1000)
    _model_call(3, "timeout", 10_000)  # last 5 min: 1 of 3
    _model_call(30, "timeout", 10_000)  # last hour: 2 of 4
    _model_call(90, "timeout", 10_000)  # older than an hour: not counted
    from analytics.ops import provider_health

    report = {row["name"]: row for row in provider_health(now=timezone.now())}
    primary = report["primary"]
    assert (primary["state"], primary["cooldown_remaining"]) == ("open", 12.5)
    assert primary["last_5_min"]["calls"] == 3 and primary["last_5_min"]["error_rate"] == 0.3333
    assert primary["last_hour"]["calls"] == 4 and primary["last_hour"]["error_rate"] == 0.5
    assert (primary["last_hour"]["p50_ms"], primary["last_hour"]["p95_ms"]) == (500.0, 1000.0)
    assert report["fallback"]["last_hour"]["calls"] == 0
    assert report["fallback"]["last_hour"]["error_rate"] is None

    html = _login(supervisor).get("/admin/analytics/ops/").content.decode()
    assert 'data-backend="primary" data-state="open"' in html and "12.5 s" in html
    assert "33.3 %" in html and "50.0 %" in html
    assert "sk-abcdefghijklmnopqrstu" not in html and "ana@example.com" not in html


def test_ops_counts_the_work_waiting(registry: None, viewer: User) -> None:
    conversation = conversation_start(visitor_id="v")
    handoff_request(conversation_id=conversation.pk, trigger="customer_button", reason="help")
    from analytics.ops import ops_counts

    counts = ops_counts(now=timezone.now() + timedelta(seconds=30))
    assert counts["escalation_queue"]["waiting"] == 1
    assert counts["escalation_queue"]["oldest_wait_seconds"] >= 30
    assert counts["pending_interrupts"] == {"customer": 0, "staff": 0}
    assert counts["import_jobs"] == {"pending": 0, "processing": 0, "failed_24h": 0}
    response = _login(viewer).get("/admin/analytics/ops/")
    assert response.status_code == 200
    assert 'data-card="escalation_queue"' in response.content.decode()


def test_support_agents_do_not_see_ops(registry: None, support_agent: User) -> None:
    assert _login(support_agent).get("/admin/analytics/ops/").status_code == 403


def test_the_admin_index_links_the_dashboard_and_ops(supervisor: User, support_agent: User) -> None:
    html = _login(supervisor).get("/admin/").content.decode()
    assert "/admin/analytics/dashboard/" in html and "/admin/analytics/ops/" in html
    agent_html: Any = _login(support_agent).get("/admin/").content.decode()
    assert "/admin/analytics/dashboard/" not in agent_html
