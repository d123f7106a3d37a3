"""Periodic jobs of the access app (run by ``manage.py run_scheduler``, config.scheduler)."""

from __future__ import annotations

from access.idempotency import idempotency_records_cleanup
from config.scheduler import periodic


@periodic(name="idempotency_cleanup", every_seconds=3600)
def idempotency_cleanup() -> None:
    """Idempotency-Key records past their 24 hours (SPEC §11, §13)."""
    idempotency_records_cleanup()
