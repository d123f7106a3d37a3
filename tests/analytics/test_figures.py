"""The analytics figures against a dataset whose answers are worked out by hand (the comments
give the arithmetic), through the selector, the rollups, the dashboard, its CSV and the API."""

from __future__ import annotations

import csv
import io
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.utils import timezone

from analytics.models import Event, EventRollup
from analytics.ranges import range_parse
from analytics.rollups import rollups_refresh
from analytics.selectors import analytics_summary
from conversations.models import Conversation

pytestmark = pytest.mark.django_db

NOW = timezone.now()
# Midnight UTC ten days ago: the range is the 7 days from there, so a resolution on day 1 is
# more than 7 days old (durable) and one on day 5 is not yet (pending).
BASE = NOW.replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=10)
FROM, TO = BASE.date().isoformat(), (BASE + timedelta(days=6)).date().isoformat()


def _conversation(created: datetime, **fields: Any) -> Conversation:
    conversation = Conversation.objects.create(visitor_id="v")
    Conversation.objects.filter(pk=conversation.pk).update(created_at=created, **fields)
    return conversation


def _event(type: str, at: datetime, **fields: Any) -> None:
    Event.objects.create(type=type, occurred_at=at, **fields)


@pytest.fixture
def dataset() -> dict[str, Conversation]:
    h, d = timedelta(hours=1), timedelta(days=1)
    conversations = {
        # Confirmed on day 0, closed: durable (more than 7 days ago).
        "A": _conversation(
            BASE + h,
            state="closed",
            resolution="confirmed",
            resolved_at=BASE + 2 * h,
            resolved_turns=2,
            turn_count=2,
            closed_at=BASE + 3 * h,
        ),
        # Assumed on day 5: not durable yet.
        "B": _conversation(
            BASE + 5 * d,
            state="closed",
            resolution="assumed",
            resolved_at=BASE + 5 * d + h,
            resolved_turns=3,
            turn_count=3,
            closed_at=BASE + 5 * d + h,
        ),
        # The AI answered and the customer confirmed, then asked for a person: handoff wins.
        "C": _conversation(
            BASE + 2 * d,
            state="human_active",
            resolution="confirmed",
            resolved_at=BASE + 2 * d + h,
            resolved_turns=1,
            turn_count=1,
            escalated_at=BASE + 2 * d + 2 * h,
        ),
        # Closed, then the customer came back: reopened, its resolution taken back.
        "D": _conversation(
            BASE + 3 * d,
            state="ai_active",
            reopen_count=1,
            turn_count=2,
            closed_at=BASE + 3 * d + h,
            reopened_at=BASE + 3 * d + 2 * h,
        ),
        # Closed without a resolution: abandoned.
        "E": _conversation(BASE + 4 * d, state="closed", turn_count=1, closed_at=BASE + 4 * d + h),
        # The last minute of the range: inside, still open.
        "F": _conversation(BASE + 7 * d - timedelta(minutes=1), turn_count=1),
        # The range's end is exclusive.
        "G": _conversation(BASE + 7 * d, turn_count=1),
        # The second before: the previous period (escalated).
        "H": _conversation(
            BASE - timedelta(seconds=1),
            turn_count=1,
            state="escalated",
            escalated_at=BASE - timedelta(seconds=1),
        ),
        # Opened, never written to: started, not handled.
        "I": _conversation(BASE + d),
    }
    at = BASE + 2 * d
    for latency, first in ((1000, 300), (1000, 500), (3000, 750)):
        _event("turn_completed", at, latency_ms=latency, data={"first_token_ms": first})
    for outcome, latency in (("succeeded", 100), ("succeeded", 200), ("timeout", 5000)):
        _event("tool_called", at, operation="getOrder", outcome=outcome, latency_ms=latency)
    _event(
        "tool_called",
        at + timedelta(minutes=30),
        operation="cancelOrder",
        outcome="succeeded",
        latency_ms=300,
    )
    _event("tool_called", BASE - timedelta(seconds=1), operation="getOrder", outcome="succeeded")
    for _ in range(2):
        _event(
            "model_called",
            at,
            agent="Orders",
            backend="openai",
            model="m",
            outcome="ok",
            latency_ms=800,
            prompt_tokens=100,
            completion_tokens=50,
            cost=Decimal("0.01"),
        )
    _event(
        "model_called", at, agent="Orders", backend="openai", outcome="timeout", latency_ms=10_000
    )
    for agent in ("Orders", "Orders", "Returns"):
        _event("agent_selected", at, agent=agent)
    _event("turn_resolving", at, agent="Orders")
    for _ in range(3):
        _event("interrupt_created", at, operation="cancelOrder")
    _event("interrupt_approved", at, operation="cancelOrder", latency_ms=20_000)
    _event("interrupt_rejected", at, operation="cancelOrder", latency_ms=60_000)
    _event("interrupt_expired", at, operation="cancelOrder", latency_ms=600_000)
    _event("escalation_requested", at, outcome="customer_button")
    _event("escalation_requested", BASE + 7 * d, outcome="tool_failure")  # at the end: outside
    _event("escalation_claimed", at, latency_ms=120_000)
    _event("staff_first_message", at, latency_ms=180_000)
    for _ in range(5):
        _event("message_received", at)
    _event("message_rejected", at, outcome="rate_limited")
    return conversations


def _summary(tz: str = "UTC") -> dict[str, Any]:
    report = range_parse(start=FROM, end=TO, tz=tz, now=NOW)
    return analytics_summary(report=report, now=NOW)


def _check(summary: dict[str, Any]) -> None:
    counts = summary["conversations"]["counts"]
    # Started: A B C D E F I (G is at the end, H before the start); handled: all but I.
    assert counts == {
        "started": 7,
        "handled": 6,
        "escalated": 1,
        "confirmed": 1,
        "assumed": 1,
        "durable": 1,
        "reopened": 1,
        "reopen_base": 4,
        "abandoned": 1,
        "ai_resolved": 2,
        "durable_pending": 1,
        "open": 2,
    }
    rates = summary["conversations"]["rates"]
    assert rates["ai_resolution"] == round(2 / 6, 4)
    assert rates["confirmed_resolution"] == round(1 / 6, 4)  # C is escalated, not confirmed
    assert rates["escalation"] == round(1 / 6, 4)
    assert rates["reopen"] == 0.25  # D of A, B, D, E
    assert rates["ai_resolution"] + rates["escalation"] <= 1
    assert summary["conversations"]["turns_to_resolution"] == {"mean": 2.5, "median": 2.5}
    latency = summary["latency"]
    assert latency["turn"] == {"count": 3, "median_ms": 1000.0, "p95_ms": 3000.0}
    assert latency["first_response"] == {"count": 3, "median_ms": 500.0, "p95_ms": 750.0}
    assert latency["approval"] == {"count": 2, "median_ms": 20_000.0, "p95_ms": 60_000.0}
    assert latency["pickup"]["median_ms"] == 120_000.0
    assert latency["first_staff_action"]["median_ms"] == 180_000.0
    assert summary["operations"] == [
        {
            "operation": "cancelOrder",
            "calls": 1,
            "succeeded": 1,
            "failed": 0,
            "success_rate": 1.0,
            "latency_median_ms": 300.0,
            "latency_p95_ms": 300.0,
        },
        {
            "operation": "getOrder",
            "calls": 3,
            "succeeded": 2,
            "failed": 1,
            "success_rate": round(2 / 3, 4),
            "latency_median_ms": 200.0,
            "latency_p95_ms": 5000.0,
        },
    ]
    assert summary["approvals"] == {
        "requested": 3,
        "approved": 1,
        "rejected": 1,
        "expired": 1,
        "approval_rate": round(1 / 3, 4),
    }
    assert summary["usage"] == {
        "prompt_tokens": 200,
        "completion_tokens": 100,
        "cost": 0.02,
        "tokens_per_conversation": 50.0,
        "cost_per_conversation": round(0.02 / 6, 4),
        "cost_per_resolution": 0.01,
    }
    assert summary["agents"] == [
        {
            "agent": "Orders",
            "selections": 2,
            "model_calls": 3,
            "tokens": 300,
            "cost": 0.02,
            "resolving_turns": 1,
        },
        {
            "agent": "Returns",
            "selections": 1,
            "model_calls": 0,
            "tokens": 0,
            "cost": 0.0,
            "resolving_turns": 0,
        },
    ]
    assert summary["backends"] == [
        {
            "backend": "openai",
            "calls": 3,
            "errors": 1,
            "error_rate": round(1 / 3, 4),
            "latency_median_ms": 800.0,
            "latency_p95_ms": 800.0,
        },
    ]
    assert summary["escalation_reasons"] == [{"reason": "customer_button", "count": 1}]
    assert summary["messages"] == {"received": 5, "rejected": 1}
    series = summary["series"]
    assert len(series) == 7 and summary["range"]["bucket"] == "day"
    assert [p["conversations"] for p in series] == [1, 1, 1, 1, 1, 1, 1]  # A I C D E B F
    assert series[5]["ai_resolved"] == 1 and series[2]["escalated"] == 1
    assert series[2]["tool_calls"] == 4 and series[2]["tool_failures"] == 1
    cards = {card["key"]: card for card in summary["cards"]}
    # The previous week holds H alone: one handled conversation, escalated.
    assert (cards["conversations"]["value"], cards["conversations"]["previous"]) == (6, 1)
    assert cards["escalation"]["change"] == round(round(1 / 6, 4) - 1.0, 4)


def test_figures_from_raw_events_match_the_hand_computed_answers(
    dataset: dict[str, Conversation],
) -> None:
    assert not EventRollup.objects.exists()
    _check(_summary())


def test_figures_through_the_rollups_are_the_same(dataset: dict[str, Conversation]) -> None:
    written = rollups_refresh(now=NOW, rebuild=True)
    assert written > 0
    # Events now come from the rollups: removing the raw ones inside whole hours changes
    # nothing (the edges are read raw, and every event here sits on a whole hour).
    Event.objects.filter(occurred_at__gte=BASE + timedelta(hours=1)).filter(
        occurred_at__lt=BASE + timedelta(days=7)
    ).delete()
    _check(_summary())


def test_a_refresh_redoes_the_last_hour_and_keeps_older_ones(
    dataset: dict[str, Conversation],
) -> None:
    rollups_refresh(now=NOW, rebuild=True)
    before = EventRollup.objects.count()
    # Stored after the refresh, in the hour before its cursor (a turn stores its events late).
    late = NOW.replace(minute=0, second=0, microsecond=0) - timedelta(minutes=30)
    _event("tool_called", late, operation="late", outcome="succeeded")
    rollups_refresh(now=NOW)
    assert EventRollup.objects.filter(operation="late").count() == 1
    assert EventRollup.objects.count() == before + 1


def test_time_zone_moves_the_day_boundaries(dataset: dict[str, Conversation]) -> None:
    # New York midnight is 05:00 UTC in November: A (01:00 UTC on day 0) falls before the
    # range and G (00:00 UTC after day 6) inside it.
    summary = _summary("America/New_York")
    counts = summary["conversations"]["counts"]
    assert (counts["started"], counts["confirmed"], counts["assumed"]) == (7, 0, 1)
    assert summary["series"][0]["start"].endswith("-05:00")


def test_an_empty_range_has_zeros_and_no_rates() -> None:
    summary = _summary()
    counts = summary["conversations"]["counts"]
    assert counts["started"] == 0 and counts["handled"] == 0
    assert all(value is None for value in summary["conversations"]["rates"].values())
    assert summary["latency"]["turn"] == {"count": 0, "median_ms": None, "p95_ms": None}
    assert summary["operations"] == [] and len(summary["series"]) == 7


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"range": "3d"}, "range"),
        ({"from": "2026-11-01"}, None),
        ({"from": "2026-11-05", "to": "2026-11-01"}, None),
        ({"from": "yesterday", "to": "2026-11-01"}, "from"),
        ({"range": "7d", "tz": "Mars/Olympus"}, "tz"),
        ({"from": "2024-01-01", "to": "2026-01-01"}, None),
    ],
)
def test_bad_ranges_get_a_validation_error(
    api: Client, query: dict[str, str], field: str | None
) -> None:
    response = api.get("/api/v1/analytics", query)
    body = response.json()
    assert response.status_code == 422, body
    assert body["success"] is False and body["error"]["code"] == "validation_error"
    if field:
        assert field in body["error"]["details"]


def test_the_api_returns_the_dashboards_figures(
    api: Client, dataset: dict[str, Conversation]
) -> None:
    response = api.get("/api/v1/analytics", {"from": FROM, "to": TO})
    body = response.json()
    assert response.status_code == 200 and body["success"] is True
    data = body["data"]
    assert data["range"]["from"] == BASE.isoformat() and data["range"]["bucket"] == "day"
    expected = _summary()
    for key in ("conversations", "latency", "operations", "approvals", "agents", "series"):
        assert data[key] == expected[key], key
    preset = api.get("/api/v1/analytics", {"range": "24h"}).json()["data"]
    assert preset["range"]["preset"] == "24h" and preset["range"]["bucket"] == "hour"


def test_the_api_is_documented_in_the_schema(supervisor: User) -> None:
    schema = _login(supervisor).get("/api/v1/openapi.json").json()
    operation = schema["paths"]["/api/v1/analytics"]["get"]
    assert {p["name"] for p in operation["parameters"]} >= {"range", "from", "to", "tz"}


# --- Dashboard --------------------------------------------------------------------------------


def _login(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_the_dashboard_shows_the_figures_and_charts(
    supervisor: User, dataset: dict[str, Conversation]
) -> None:
    response = _login(supervisor).get("/admin/analytics/dashboard/", {"from": FROM, "to": TO})
    html = response.content.decode()
    assert response.status_code == 200
    assert 'data-card="ai_resolution"' in html and "33.3 %" in html  # 2 of 6
    assert "16.7 %" in html  # escalation, 1 of 6
    assert "<svg" in html and "chart__bar" in html
    assert "getOrder" in html and "66.7 %" in html
    assert "No conversations in this range yet" not in html
    assert "style=" not in html.split('id="dashboard"')[1]  # nothing the CSP would block


def test_the_csv_export_has_the_same_figures(
    supervisor: User, dataset: dict[str, Conversation]
) -> None:
    client = _login(supervisor)
    response = client.get(
        "/admin/analytics/dashboard/", {"from": FROM, "to": TO, "export": "operations"}
    )
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(response.content.decode())))
    assert rows[0][:3] == ["operation", "calls", "succeeded"]
    assert rows[2] == ["getOrder", "3", "2", "1", "0.6667", "200.0", "5000.0"]
    for table in ("cards", "conversations", "agents", "backends", "escalation_reasons", "series"):
        exported = client.get(
            "/admin/analytics/dashboard/", {"from": FROM, "to": TO, "export": table}
        )
        assert exported.status_code == 200, table
    missing = client.get("/admin/analytics/dashboard/", {"export": "passwords"})
    assert missing.status_code == 404


def test_the_zero_state_explains_what_will_appear(viewer: User) -> None:
    response = _login(viewer).get("/admin/analytics/dashboard/")
    assert response.status_code == 200
    assert "No conversations in this range yet" in response.content.decode()


def test_support_agents_do_not_see_the_dashboard(support_agent: User) -> None:
    client = _login(support_agent)
    assert client.get("/admin/analytics/dashboard/").status_code == 403
    session = client.get("/api/v1/analytics")
    assert session.status_code == 403 and session.json()["error"]["code"] == "permission_denied"


def test_a_bad_custom_range_is_reported_on_the_page(supervisor: User) -> None:
    response = _login(supervisor).get(
        "/admin/analytics/dashboard/", {"from": "2026-11-05", "to": "2026-11-01"}
    )
    assert response.status_code == 200
    assert "from must be before to." in response.content.decode()
