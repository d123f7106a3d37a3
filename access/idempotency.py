"""``Idempotency-Key`` on every POST of ``/api/v1`` (SPEC §11; IETF
draft-ietf-httpapi-idempotency-key-header).

A key is kept per API key (or staff member) in PostgreSQL with a fingerprint of the request:

- first use: a ``running`` record is inserted (and committed) *before* the operation runs, so a
  concurrent request with the same key hits the unique constraint: 409
  ``idempotency_key_in_use``, and the side effect happens once;
- same key and same request once it finished: the stored status, body and headers are sent
  again (header ``Idempotent-Replayed: true``), nothing runs;
- same key, another request (method, path, query or body): 422 ``idempotency_key_reused``.

Every response of an operation that started is stored, a 5xx included: after a server error
the side effect may or may not have happened, so a retry with the same key gets the same 5xx
back rather than risking a second one; send a new key to try again. Requests refused before the
view runs (401, 429, invalid fields) leave no record; what the view answers (403 for a missing
scope, 404, 409, 422 of a domain rule) is stored like a success. Records live 24 hours
(``IDEMPOTENCY_TTL_HOURS``); the scheduler's ``idempotency_cleanup`` (``access.jobs``) removes
older ones.
"""

from __future__ import annotations

import functools
import hashlib
import re
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import structlog
from django.conf import settings
from django.db import IntegrityError, transaction
from django.http import HttpRequest, HttpResponse
from django.http.request import RawPostDataException
from django.utils import timezone

from access.models import IdempotencyRecord
from config.errors import ApplicationError, ErrorCode, invalid_fields

logger = structlog.get_logger(__name__)

HEADER = "Idempotency-Key"
MAX_KEY_CHARS = 255
# Headers worth replaying: the body's type and the ones that carry meaning in this API.
REPLAYED_HEADERS = ("Content-Type", "Location", "Retry-After")
# An RFC 8941 sf-string: printable ASCII in double quotes, with \" and \\ escapes.
_SF_STRING = re.compile(r'^"((?:[\x20\x21\x23-\x5b\x5d-\x7e]|\\["\\])*)"$')
_PRINTABLE = re.compile(r"^[\x21-\x7e](?:[\x20-\x7e]*[\x21-\x7e])?$")


def ttl() -> timedelta:
    return timedelta(hours=settings.IDEMPOTENCY_TTL_HOURS)


def _invalid_key(message: str) -> ApplicationError:
    return invalid_fields(message, {HEADER: message}, kind="invalid")


def parse_key(raw: str) -> str:
    """The key from the header, as an sf-string (``"abc"``) or bare (``abc``)."""
    value = raw.strip()
    quoted = _SF_STRING.match(value)
    if quoted:
        value = re.sub(r"\\(.)", r"\1", quoted.group(1))
    elif value.startswith('"'):
        raise _invalid_key(f"{HEADER} is not a valid quoted string.")
    if not value or not _PRINTABLE.match(value):
        raise _invalid_key(f"{HEADER} must be 1 to {MAX_KEY_CHARS} printable ASCII characters.")
    if len(value) > MAX_KEY_CHARS:
        raise _invalid_key(f"{HEADER} may be at most {MAX_KEY_CHARS} characters.")
    return value


def request_fingerprint(request: HttpRequest) -> str:
    """What makes two requests "the same": method, path, query string and body."""
    digest = hashlib.sha256()
    for part in (request.method or "", request.path, request.META.get("QUERY_STRING", "")):
        digest.update(part.encode() + b"\n")
    try:
        digest.update(request.body)
    except RawPostDataException:
        # A multipart upload the operation read as files: its fields and files' contents.
        for name, values in sorted(request.POST.lists()):
            digest.update(f"{name}={values!r}\n".encode())
        for name, uploads in sorted(request.FILES.lists()):
            for upload in uploads:
                digest.update(f"{name}:{upload.name}:{upload.size}\n".encode())
                for chunk in upload.chunks():
                    digest.update(chunk)
                upload.seek(0)
    return digest.hexdigest()


def principal_of(request: HttpRequest) -> str | None:
    api_key = getattr(request, "api_key", None)
    if api_key is not None:
        return f"key:{api_key.pk}"
    user = getattr(request, "user", None)
    if user is not None and user.is_authenticated:
        return f"user:{user.pk}"
    return None


def idempotency_begin(*, principal: str, key: str, fingerprint: str) -> IdempotencyRecord:
    """Claim ``key`` (a new ``running`` record) or return the finished record to replay.
    Raises ``idempotency_key_reused`` (422) or ``idempotency_key_in_use`` (409)."""
    IdempotencyRecord.objects.filter(
        principal=principal, key=key, created_at__lt=timezone.now() - ttl()
    ).delete()
    try:
        # Committed at once (its own transaction): a concurrent request must see it.
        with transaction.atomic():
            return IdempotencyRecord.objects.create(
                principal=principal, key=key, fingerprint=fingerprint
            )
    except IntegrityError:
        existing = IdempotencyRecord.objects.filter(principal=principal, key=key).first()
    if existing is not None and existing.fingerprint != fingerprint:
        raise ApplicationError(
            ErrorCode.IDEMPOTENCY_KEY_REUSED,
            "This Idempotency-Key was used for another request; use a new key.",
        )
    if existing is None or existing.status == IdempotencyRecord.Status.RUNNING:
        raise ApplicationError(
            ErrorCode.IDEMPOTENCY_KEY_IN_USE,
            "A request with this Idempotency-Key is still being processed; retry later.",
            retry_after=1,
        )
    return existing


def idempotency_finish(*, record: IdempotencyRecord, response: HttpResponse) -> None:
    IdempotencyRecord.objects.filter(pk=record.pk).update(
        status=IdempotencyRecord.Status.DONE,
        response_status=response.status_code,
        response_body=bytes(response.content),
        response_headers={h: response[h] for h in REPLAYED_HEADERS if response.has_header(h)},
        finished_at=timezone.now(),
    )


def idempotency_release(*, record: IdempotencyRecord) -> None:
    """The operation produced no response to store (it crashed outside ninja's handlers)."""
    IdempotencyRecord.objects.filter(pk=record.pk).delete()


def replay(record: IdempotencyRecord) -> HttpResponse:
    response = HttpResponse(bytes(record.response_body or b""), status=record.response_status)
    for name, value in record.response_headers.items():
        response[name] = value
    response["Idempotent-Replayed"] = "true"
    response.envelope = True  # type: ignore[attr-defined]
    return response


def idempotency_records_cleanup() -> int:
    """Remove records older than the TTL; returns how many."""
    deleted, _ = IdempotencyRecord.objects.filter(created_at__lt=timezone.now() - ttl()).delete()
    if deleted:
        logger.info("idempotency_records_removed", count=deleted)
    return deleted


# --- The two halves, installed on the API by config.api ----------------------------------------

_RECORD = "_idempotency_record"


def idempotent_view(view_func: Callable[..., Any]) -> Callable[..., Any]:
    """Around the view (after authentication and validation): claim the key or replay."""

    @functools.wraps(view_func)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
        raw = request.headers.get(HEADER)
        if request.method != "POST" or raw is None:
            return view_func(request, *args, **kwargs)
        key = parse_key(raw)
        principal = principal_of(request)
        if principal is None:
            return view_func(request, *args, **kwargs)
        record = idempotency_begin(
            principal=principal, key=key, fingerprint=request_fingerprint(request)
        )
        if record.status == IdempotencyRecord.Status.DONE:
            logger.info("idempotent_request_replayed", key=key, status=record.response_status)
            return replay(record)
        setattr(request, _RECORD, record)
        return view_func(request, *args, **kwargs)

    return wrapper


def idempotent_operation(run: Callable[..., Any]) -> Callable[..., Any]:
    """Around the whole operation: store the response the claimed key produced."""

    @functools.wraps(run)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
        try:
            response = run(request, *args, **kwargs)
        except BaseException:
            record = getattr(request, _RECORD, None)
            if record is not None:
                idempotency_release(record=record)
            raise
        record = getattr(request, _RECORD, None)
        if record is not None:
            delattr(request, _RECORD)
            idempotency_finish(record=record, response=response)
        return response

    return wrapper
