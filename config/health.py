"""Liveness and readiness (SPEC §10). Liveness answers as long as the process serves requests;
readiness checks the database and, when configured, Redis, and answers 503 naming what failed."""

from __future__ import annotations

from typing import Literal

import redis
import structlog
from django.conf import settings
from django.db import connection
from django.http import HttpRequest
from ninja import Router, Schema

from config.errors import ApplicationError, ErrorCode

logger = structlog.get_logger(__name__)
router = Router()


class HealthOut(Schema):
    status: Literal["ok"]


class ReadinessOut(Schema):
    status: Literal["ready"]
    checks: dict[str, str]


def check_database() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()


def check_redis() -> None:
    timeout = settings.READINESS_TIMEOUT_SECONDS
    client = redis.Redis.from_url(
        settings.REDIS_URL, socket_connect_timeout=timeout, socket_timeout=timeout
    )
    try:
        client.ping()
    finally:
        client.close()


def readiness() -> dict[str, str]:
    """Runs every check; returns each component's state (``ok`` or the error text)."""
    checks = {"database": check_database}
    if settings.REDIS_URL:
        checks["redis"] = check_redis
    results: dict[str, str] = {}
    for name, check in checks.items():
        try:
            check()
        except Exception as exc:
            logger.warning("readiness_check_failed", component=name, error=str(exc))
            results[name] = f"failed: {type(exc).__name__}"
        else:
            results[name] = "ok"
    return results


@router.get("", response=HealthOut, auth=None, throttle=[], summary="Liveness")
def get_health(request: HttpRequest) -> dict[str, str]:
    return {"status": "ok"}


@router.get("/ready", response=ReadinessOut, auth=None, throttle=[], summary="Readiness")
def get_readiness(request: HttpRequest) -> dict[str, object]:
    results = readiness()
    failed = sorted(name for name, state in results.items() if state != "ok")
    if failed:
        raise ApplicationError(
            ErrorCode.SERVICE_UNAVAILABLE,
            f"Not ready: {', '.join(failed)} unreachable.",
            details={"failed": failed, "checks": results},
        )
    return {"status": "ready", "checks": results}
