"""The outgoing webhook for new escalations (SPEC §7): a Slack-compatible message, optionally
signed, sent through the SSRF guard with retries. It runs as a job after the escalation has
committed; whatever happens here is recorded on the escalation and never undoes it."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Callable
from typing import Any

import structlog
from django.conf import settings
from django.utils import timezone

import safehttp
from escalations.models import Escalation
from escalations.realtime import handoff_url

logger = structlog.get_logger(__name__)

SIGNATURE_HEADER = "X-Actiondesk-Signature"
TIMESTAMP_HEADER = "X-Actiondesk-Timestamp"
MAX_RESPONSE_BYTES = 64 * 1024
# Tests replace this to run the backoff without waiting.
backoff_sleep: Callable[[float], None] = time.sleep


def absolute(path: str) -> str:
    base = settings.ESCALATION_LINK_BASE_URL.rstrip("/")
    return f"{base}{path}" if base and path.startswith("/") else path


def _slack_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def webhook_payload(escalation: Escalation) -> dict[str, Any]:
    """``{"text", "blocks"}``: Slack renders the blocks; anything else can read ``text``."""
    summary = escalation.packet.get("summary", {})
    last = summary.get("last_customer_message") or summary.get("first_customer_message") or {}
    handoff = absolute(handoff_url(escalation.pk))
    timeline = absolute(escalation.packet.get("links", {}).get("timeline", ""))
    headline = f"Escalation #{escalation.pk} · {escalation.get_priority_display()} priority"
    reason = _slack_escape(escalation.reason or escalation.trigger)
    said = _slack_escape(str(last.get("content", ""))[:300])
    return {
        "text": f"{headline}: {escalation.trigger} — {escalation.reason} {handoff}",
        "blocks": [
            {"type": "header", "text": {"type": "plain_text", "text": headline}},
            {
                "type": "section",
                "fields": [
                    {"type": "mrkdwn", "text": f"*Trigger*\n{escalation.trigger}"},
                    {"type": "mrkdwn", "text": f"*Priority*\n{escalation.priority}"},
                ],
            },
            {"type": "section", "text": {"type": "mrkdwn", "text": f"*Why*\n{reason}"}},
            *(
                [{"type": "section", "text": {"type": "mrkdwn", "text": f"*Customer*\n> {said}"}}]
                if said
                else []
            ),
            {
                "type": "actions",
                "elements": [
                    {
                        "type": "button",
                        "text": {"type": "plain_text", "text": "Open the handoff"},
                        "url": handoff,
                    },
                    {
                        "type": "button",
                        "text": {"type": "plain_text", "text": "Conversation timeline"},
                        "url": timeline,
                    },
                ],
            },
        ],
    }


def signature(*, body: bytes, timestamp: str, secret: str) -> str:
    """``sha256=<hex>`` of ``"<timestamp>." + body``: the receiver recomputes it and refuses
    stale timestamps, so a captured request cannot be replayed later."""
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return f"sha256={digest.hexdigest()}"


def webhook_policy() -> safehttp.Policy:
    return safehttp.Policy(
        allowed_hosts=frozenset(h.lower() for h in settings.ESCALATION_WEBHOOK_ALLOWED_HOSTS),
        timeout=settings.ESCALATION_WEBHOOK_TIMEOUT_SECONDS,
        max_redirects=0,
        max_bytes=MAX_RESPONSE_BYTES,
    )


def _attempt(url: str, body: bytes, headers: dict[str, str]) -> tuple[str | None, bool]:
    """``(error or None, worth retrying)``."""
    try:
        response = safehttp.safe_request(
            "POST", url, policy=webhook_policy(), headers=headers, content=body
        )
    except safehttp.BlockedDestination as exc:
        return f"blocked: {exc}", False
    except safehttp.SafeHttpError as exc:
        return str(exc) or type(exc).__name__, True
    if 200 <= response.status_code < 300:
        return None, False
    retry = response.status_code == 429 or response.status_code >= 500
    return f"HTTP {response.status_code}", retry


def _record(escalation_id: int, **fields: Any) -> None:
    Escalation.objects.filter(pk=escalation_id).update(**fields)


def escalation_notify(*, escalation_id: int, sleep: Callable[[float], None] | None = None) -> str:
    """Post the escalation to ``ESCALATION_WEBHOOK_URL``: up to ``ESCALATION_WEBHOOK_ATTEMPTS``
    tries, waiting ``ESCALATION_WEBHOOK_BACKOFF_SECONDS`` and doubling; transient failures
    (network, 429, 5xx) are retried, others are not. Returns the notification status."""
    wait = sleep or backoff_sleep
    url = settings.ESCALATION_WEBHOOK_URL
    if not url:
        _record(escalation_id, notification_status=Escalation.Notification.NOT_CONFIGURED)
        return Escalation.Notification.NOT_CONFIGURED
    escalation = Escalation.objects.get(pk=escalation_id)
    body = json.dumps(webhook_payload(escalation), ensure_ascii=False).encode()
    headers = {"Content-Type": "application/json", "User-Agent": "Actiondesk-escalations/1"}
    if settings.ESCALATION_WEBHOOK_SIGN and settings.ESCALATION_WEBHOOK_SECRET:
        timestamp = str(int(time.time()))
        headers[TIMESTAMP_HEADER] = timestamp
        headers[SIGNATURE_HEADER] = signature(
            body=body, timestamp=timestamp, secret=settings.ESCALATION_WEBHOOK_SECRET
        )
    attempts = settings.ESCALATION_WEBHOOK_ATTEMPTS
    error: str | None = None
    for attempt in range(1, attempts + 1):
        error, retry = _attempt(url, body, headers)
        if error is None:
            _record(
                escalation_id,
                notification_status=Escalation.Notification.SENT,
                notification_attempts=attempt,
                notification_error="",
                notified_at=timezone.now(),
            )
            logger.info("escalation_notified", escalation_id=escalation_id, attempts=attempt)
            return Escalation.Notification.SENT
        _record(escalation_id, notification_attempts=attempt, notification_error=error[:500])
        logger.warning(
            "escalation_notification_attempt_failed",
            escalation_id=escalation_id,
            attempt=attempt,
            error=error,
        )
        if not retry or attempt == attempts:
            break
        wait(settings.ESCALATION_WEBHOOK_BACKOFF_SECONDS * 2 ** (attempt - 1))
    _record(escalation_id, notification_status=Escalation.Notification.FAILED)
    logger.error("escalation_notification_failed", escalation_id=escalation_id, error=error)
    return Escalation.Notification.FAILED
