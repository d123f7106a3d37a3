"""Periodic jobs of the access app (run by ``manage.py run_scheduler``)."""

from __future__ import annotations

from access.idempotency import idempotency_records_cleanup


def idempotency_cleanup() -> None:
    """Idempotency-Key records past their 24 hours (SPEC §11)."""
    idempotency_records_cleanup()
