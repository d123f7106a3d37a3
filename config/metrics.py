"""Prometheus metrics at ``/metrics`` (SPEC §10), not public: a scraper sends
``METRICS_TOKEN`` as a bearer token; without a token configured, only staff may look."""

from __future__ import annotations

import hmac

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from prometheus_client import CONTENT_TYPE_LATEST, Gauge, generate_latest

PENDING_INTERRUPTS = Gauge("actiondesk_pending_interrupts", "Interrupts waiting for a decision")
QUEUE_LENGTH = Gauge("actiondesk_escalation_queue_length", "Escalations waiting for staff")
QUEUE_WAIT = Gauge(
    "actiondesk_escalation_oldest_wait_seconds", "Age of the oldest escalation waiting for staff"
)


def _allowed(request: HttpRequest) -> bool:
    token = settings.METRICS_TOKEN
    if token:
        sent = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
        return hmac.compare_digest(sent.encode(), token.encode())
    return bool(request.user.is_authenticated and request.user.is_staff)


def _refresh_gauges() -> None:
    """Database-backed gauges are read at scrape time, so every process reports the truth."""
    from django.apps import apps

    interrupt = apps.get_model("conversations", "Interrupt")
    PENDING_INTERRUPTS.set(interrupt.objects.filter(status="pending").count())
    escalation = apps.all_models.get("escalations", {}).get("escalation")
    if escalation is not None:
        waiting = escalation._default_manager.filter(status="waiting")
        QUEUE_LENGTH.set(waiting.count())
        oldest = waiting.order_by("created_at").values_list("created_at", flat=True).first()
        QUEUE_WAIT.set((timezone.now() - oldest).total_seconds() if oldest else 0)


def _register_all() -> None:
    """Metrics live beside the code that updates them; import those modules so every series
    is exposed even before its first use in this process."""
    import importlib

    for module in ("conversations.protocol", "conversations.tools",
                   "conversations.agent.injection", "conversations.llm.metrics"):  # fmt: skip
        importlib.import_module(module)


def metrics_view(request: HttpRequest) -> HttpResponse:
    _register_all()
    if not _allowed(request):
        return HttpResponse("Forbidden", status=403, content_type="text/plain")
    _refresh_gauges()
    return HttpResponse(generate_latest(), content_type=CONTENT_TYPE_LATEST)
