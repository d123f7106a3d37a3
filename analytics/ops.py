"""Ops in the admin (SPEC §10): each model backend's circuit state from the shared breaker state
(``BackendRegistry.health()``, the same in every process), its error rate over the last 5 min
and 1 h and its latency from the event record; beside it the work waiting: import jobs, pending
interrupts, the escalation queue and open chat sockets."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.apps import apps

from analytics.models import EventType
from analytics.rollups import event_rows, merge_buckets, percentile
from config.pii import mask_text
from config.redaction import redact_text


def _window(rows: list[dict[str, Any]], backend: str) -> dict[str, Any]:
    mine = [r for r in rows if r["type"] == EventType.MODEL_CALLED and r["backend"] == backend]
    calls = sum(r["count"] for r in mine)
    errors = sum(r["count"] for r in mine if r["outcome"] != "ok")
    buckets, largest = merge_buckets([r for r in mine if r["outcome"] == "ok"], "latency")
    return {
        "calls": calls,
        "errors": errors,
        "error_rate": round(errors / calls, 4) if calls else None,
        "p50_ms": percentile(buckets, largest, 0.5),
        "p95_ms": percentile(buckets, largest, 0.95),
    }


def provider_health(*, now: datetime) -> list[dict[str, Any]]:
    from conversations.agent.backends import get_registry

    recent = event_rows(start=now - timedelta(minutes=5), end=now)
    hour = event_rows(start=now - timedelta(hours=1), end=now)
    report = []
    for health in get_registry().health():
        report.append(
            {
                "name": health.name,
                "kind": health.kind,
                "model": health.model,
                "state": health.state,
                "cooldown_remaining": round(health.cooldown_remaining, 1),
                "consecutive_failures": health.consecutive_failures,
                # An upstream error may echo a URL or a key: shown redacted and masked.
                "last_error": mask_text(redact_text(health.last_error or "")),
                "last_5_min": _window(recent, health.name),
                "last_hour": _window(hour, health.name),
            }
        )
    return report


def ops_counts(*, now: datetime) -> dict[str, Any]:
    from conversations.protocol import OPEN_SOCKETS

    job = apps.get_model("openapi_import", "ImportJob")
    interrupt = apps.get_model("conversations", "Interrupt")
    escalation = apps.get_model("escalations", "Escalation")
    waiting = escalation.objects.filter(status="waiting")
    oldest = waiting.order_by("created_at").values_list("created_at", flat=True).first()
    return {
        "import_jobs": {
            "pending": job.objects.filter(status="pending").count(),
            "processing": job.objects.filter(status="processing").count(),
            "failed_24h": job.objects.filter(
                status="failed", created_at__gte=now - timedelta(hours=24)
            ).count(),
        },
        "pending_interrupts": {
            "customer": interrupt.objects.filter(status="pending", approver="user").count(),
            "staff": interrupt.objects.filter(status="pending", approver="staff").count(),
        },
        "escalation_queue": {
            "waiting": waiting.count(),
            "claimed": escalation.objects.filter(status="claimed").count(),
            "oldest_wait_seconds": round((now - oldest).total_seconds()) if oldest else None,
        },
        # A per-process gauge: this web process's sockets (Prometheus sums every process).
        "open_sockets_this_process": int(OPEN_SOCKETS._value.get()),
    }
