"""Liveness and readiness (SPEC §10). Liveness answers as long as the process serves requests;
readiness checks the database and, when configured, Redis, and answers 503 naming what failed."""

from __future__ import annotations

from typing import Literal

import redis
import structlog
from django.conf import settings
from django.db import connection
from django.http import HttpRequest, JsonResponse
from ninja import Router, Schema

from config.errors import ApplicationError, ErrorCode, error_body, success_body

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


def readiness_answer() -> dict[str, object]:
    """The body of a ready answer; raises the 503 ``ApplicationError`` naming what failed."""
    results = readiness()
    failed = sorted(name for name, state in results.items() if state != "ok")
    if failed:
        raise ApplicationError(
            ErrorCode.SERVICE_UNAVAILABLE,
            f"Not ready: {', '.join(failed)} unreachable.",
            details={"failed": failed, "checks": results},
        )
    return {"status": "ready", "checks": results}


LIVENESS_PATH = "/api/v1/health"
READINESS_PATH = "/api/v1/health/ready"


def probe_answer(path: str) -> JsonResponse:
    """What the two health routes answer, built without the URL resolver: for a container's
    own probe on a loopback host (``InternalHealthMiddleware``), which production's
    ``ALLOWED_HOSTS`` would refuse."""
    if path.rstrip("/") == LIVENESS_PATH:
        return JsonResponse(success_body({"status": "ok"}))
    try:
        return JsonResponse(success_body(readiness_answer()))
    except ApplicationError as exc:
        return JsonResponse(error_body(exc.code, exc.message, exc.details), status=exc.status)


@router.get("", response=HealthOut, auth=None, throttle=[], summary="Liveness")
def get_health(request: HttpRequest) -> dict[str, str]:
    return {"status": "ok"}


@router.get("/ready", response=ReadinessOut, auth=None, throttle=[], summary="Readiness")
def get_readiness(request: HttpRequest) -> dict[str, object]:
    return readiness_answer()
