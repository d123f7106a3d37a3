"""HTTP middleware: the request id (taken from ``X-Request-ID`` only when trusted and well-formed)
and its response header, the refusal of NUL characters in URLs, and the API envelope for
responses that never reached django-ninja (unknown URLs under ``/api/``, 405s, CSRF failures,
server errors)."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

import structlog
from asgiref.sync import iscoroutinefunction, markcoroutinefunction, sync_to_async
from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.http.request import split_domain_port
from django_structlog.middlewares import RequestMiddleware

from config.errors import ErrorCode, error_body, is_envelope
from config.health import LIVENESS_PATH, READINESS_PATH, probe_answer
from config.hosts import request_id_is_well_formed

API_PREFIX = "/api/"

GetResponse = Callable[[HttpRequest], Any]


class _Middleware:
    sync_capable = True
    async_capable = True

    def __init__(self, get_response: GetResponse) -> None:
        self.get_response = get_response
        self._async = iscoroutinefunction(get_response)
        if self._async:
            markcoroutinefunction(self)

    def __call__(self, request: HttpRequest) -> HttpResponse | Awaitable[HttpResponse]:
        if self._async:
            return self.__acall__(request)
        return self.refusal(request) or self.process(request, self.get_response(request))

    async def __acall__(self, request: HttpRequest) -> HttpResponse:
        return self.refusal(request) or self.process(request, await self.get_response(request))

    def refusal(self, request: HttpRequest) -> HttpResponse | None:
        """An answer given instead of calling the view, or ``None`` to go on."""
        return None

    def process(self, request: HttpRequest, response: HttpResponse) -> HttpResponse:
        return response


logger = structlog.get_logger(__name__)


class RequestLogMiddleware(RequestMiddleware):
    """django-structlog's request logging, with the client's ``X-Request-ID`` dropped unless
    ``TRUST_REQUEST_ID_HEADER`` is on and the value is at most 64 of ``[A-Za-z0-9-]``: an
    untrusted id could be chosen to collide with another request's, and a long or odd one
    would be copied into every log line and the response header. Dropped, the request gets a
    fresh id (django-structlog is told to trust whatever header is left)."""

    def prepare(self, request: HttpRequest) -> None:
        sent = request.META.get("HTTP_X_REQUEST_ID")
        if sent is not None and not (
            settings.TRUST_REQUEST_ID_HEADER and request_id_is_well_formed(sent)
        ):
            del request.META["HTTP_X_REQUEST_ID"]
            request.__dict__.pop("headers", None)  # HttpRequest.headers is cached from META
        super().prepare(request)


class RequestIdMiddleware(_Middleware):
    """Echoes the request id that django-structlog bound (taken from ``X-Request-ID`` when the
    proxy sent one) so a client can quote it when reporting a problem."""

    def process(self, request: HttpRequest, response: HttpResponse) -> HttpResponse:
        request_id = structlog.contextvars.get_contextvars().get("request_id")
        if request_id:
            response.headers.setdefault("X-Request-ID", str(request_id))
        return response


_STATUS_CODES = {
    400: (ErrorCode.BAD_REQUEST, "The request could not be understood."),
    401: (ErrorCode.NOT_AUTHENTICATED, "Authentication is required."),
    403: (ErrorCode.PERMISSION_DENIED, "You do not have permission to do this."),
    404: (ErrorCode.NOT_FOUND, "Nothing is at this address."),
    405: (ErrorCode.METHOD_NOT_ALLOWED, "This method is not allowed here."),
    413: (ErrorCode.PAYLOAD_TOO_LARGE, "The request body is too large."),
    429: (ErrorCode.RATE_LIMITED, "Too many requests."),
    500: (ErrorCode.INTERNAL_ERROR, "Something went wrong on our side."),
    503: (ErrorCode.SERVICE_UNAVAILABLE, "The service is unavailable."),
}


def code_for_status(status: int) -> tuple[ErrorCode, str]:
    if status in _STATUS_CODES:
        return _STATUS_CODES[status]
    return _STATUS_CODES[500] if status >= 500 else _STATUS_CODES[400]


def _is_envelope(response: HttpResponse) -> bool:
    if getattr(response, "envelope", False):
        return True  # built by the API, which marks its responses
    if not response.get("Content-Type", "").startswith("application/json"):
        return False
    if getattr(response, "streaming", False):
        return True
    try:
        body = json.loads(response.content)
    except ValueError:
        return False
    return is_envelope(body)


class QueryGuardMiddleware(_Middleware):
    """A NUL character in the path or in any query name or value is refused with 422 before a
    view sees it: PostgreSQL cannot store or compare text with NUL, so it would otherwise
    surface as a 500 from whichever query first used the value."""

    def refusal(self, request: HttpRequest) -> HttpResponse | None:
        fields = ["path"] if "\x00" in request.path else []
        for name, values in request.GET.lists():
            if "\x00" in name or any("\x00" in value for value in values):
                fields.append(f"query.{name.replace(chr(0), '')}")
        if not fields:
            return None
        logger.warning("request_refused_nul", fields=fields)
        message = "The URL contains a NUL character (%00), which no parameter may hold."
        if request.path.startswith(API_PREFIX):
            details = {
                "fields": [
                    {"field": field, "message": "NUL characters are not allowed.", "type": "nul"}
                    for field in fields
                ]
            }
            return JsonResponse(
                error_body(ErrorCode.VALIDATION_ERROR, message, details), status=422
            )
        return HttpResponse(message, status=422, content_type="text/plain; charset=utf-8")


class ApiEnvelopeMiddleware(_Middleware):
    """Every ``/api/`` error answers in the envelope, even when Django itself produced it."""

    def process(self, request: HttpRequest, response: HttpResponse) -> HttpResponse:
        if not request.path.startswith(API_PREFIX) or response.status_code < 400:
            return response
        if _is_envelope(response):
            return response
        code, message = code_for_status(response.status_code)
        details: dict[str, Any] = {}
        if response.status_code == 405 and response.get("Allow"):
            details["allowed_methods"] = [m.strip() for m in response["Allow"].split(",")]
        replacement = JsonResponse(error_body(code, message, details), status=response.status_code)
        for header in ("Allow", "Retry-After", "X-Request-ID"):
            if response.get(header):
                replacement[header] = response[header]
        return replacement


# Names a container's own probe uses; never a public name, so answering them leaks nothing.
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "[::1]"})


class InternalHealthMiddleware(_Middleware):
    """Answers the health routes for a loopback ``Host`` before host validation and the HTTPS
    redirect, so a container healthcheck (``http://127.0.0.1:8000/api/v1/health/ready``)
    passes with production settings, whose ``ALLOWED_HOSTS`` names only public hosts. Only
    these two read-only routes, only GET/HEAD without a query, only loopback names; the rest goes on
    to Django's checks as before."""

    def _is_probe(self, request: HttpRequest) -> bool:
        if request.method not in ("GET", "HEAD") or request.META.get("QUERY_STRING"):
            return False  # a probe sends none; anything else takes the normal path and checks
        if request.path.rstrip("/") not in (LIVENESS_PATH, READINESS_PATH):
            return False
        domain, _port = split_domain_port(request.META.get("HTTP_HOST", ""))
        return domain in LOOPBACK_HOSTS

    def __call__(self, request: HttpRequest) -> HttpResponse | Awaitable[HttpResponse]:
        if self._async:
            return self.__acall__(request)
        if self._is_probe(request):
            return probe_answer(request.path)
        return self.get_response(request)

    async def __acall__(self, request: HttpRequest) -> HttpResponse:
        if self._is_probe(request):
            return await sync_to_async(probe_answer)(request.path)
        return await self.get_response(request)
