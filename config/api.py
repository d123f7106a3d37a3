"""The one NinjaAPI, mounted at ``/api/v1``, and the envelope every response travels in.

Success: ``{"success": true, "data": ..., "error": null}``. Failure: ``{"success": false,
"data": null, "error": {"code", "message", "details"}}`` for domain errors, validation errors,
401/403/404/409/429 and unexpected exceptions (500, logged with the request id, no traceback).
"""

from __future__ import annotations

import copy
import math
from typing import Any, cast

import structlog
from django.conf import settings
from django.core.exceptions import (
    ObjectDoesNotExist,
    PermissionDenied,
    RequestDataTooBig,
    SuspiciousMultipartForm,
    TooManyFieldsSent,
    TooManyFilesSent,
)
from django.db import DataError
from django.http import Http404, HttpRequest, HttpResponse
from ninja import NinjaAPI
from ninja.errors import (
    AuthenticationError,
    AuthorizationError,
    HttpError,
    Throttled,
    ValidationError,
)

from access.auth import KeyRateThrottle, api_auth, docs_access
from access.idempotency import idempotent_operation, idempotent_view
from config.errors import ApplicationError, ErrorCode, error_body, is_envelope, success_body
from config.middleware import code_for_status

logger = structlog.get_logger(__name__)


class ActiondeskAPI(NinjaAPI):
    def create_response(
        self,
        request: HttpRequest,
        data: Any,
        *,
        status: int | None = None,
        temporal_response: HttpResponse | None = None,
    ) -> HttpResponse:
        effective = temporal_response.status_code if temporal_response else status
        assert effective is not None
        if not is_envelope(data):
            if effective < 400:
                data = success_body(data)
            else:
                code, message = code_for_status(effective)
                detail = data.get("detail") if isinstance(data, dict) else None
                data = error_body(code, str(detail) if detail else message)
        response = super().create_response(
            request, data, status=status, temporal_response=temporal_response
        )
        # Marked so the middleware need not parse the body again to know it is an envelope.
        response.envelope = True  # type: ignore[attr-defined]
        return response

    def error_response(
        self,
        request: HttpRequest,
        code: ErrorCode,
        message: str,
        *,
        status: int,
        details: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> HttpResponse:
        response = self.create_response(request, error_body(code, message, details), status=status)
        for name, value in (headers or {}).items():
            response[name] = value
        return response

    def get_openapi_schema(self, **kwargs: Any) -> Any:
        """Document what clients really receive: each response schema inside the envelope."""
        schema = super().get_openapi_schema(**kwargs)
        for path_item in schema.get("paths", {}).values():
            for operation in path_item.values():
                for status, response in operation.get("responses", {}).items():
                    content = response.get("content", {}).get("application/json")
                    if not content or "schema" not in content:
                        continue
                    inner = copy.deepcopy(content["schema"])
                    ok = int(status) < 400
                    content["schema"] = {
                        "type": "object",
                        "required": ["success", "data", "error"],
                        "properties": {
                            "success": {"type": "boolean", "enum": [ok]},
                            "data": inner if ok else {"type": "null"},
                            "error": {"type": "null"}
                            if ok
                            else {"$ref": "#/components/schemas/Error"},
                        },
                    }
        for path_item in schema.get("paths", {}).values():
            for method, operation in path_item.items():
                if method == "post":
                    operation.setdefault("parameters", []).append(IDEMPOTENCY_PARAMETER)
                responses = operation.setdefault("responses", {})
                for status, description in ERROR_RESPONSES.items():
                    if status == "409" and method == "get":
                        continue
                    responses.setdefault(status, _error_response(status, description))
        schema.setdefault("components", {}).setdefault("schemas", {})["Error"] = {
            "type": "object",
            "required": ["code", "message", "details"],
            "properties": {
                "code": {"type": "string", "enum": [str(c) for c in ErrorCode]},
                "message": {"type": "string"},
                "details": {"type": "object"},
            },
        }
        return schema


# Declared on every operation (SPEC §11 / issue 17 item 5), so a generated client knows each
# failure's shape; 409 on writes only.
ERROR_RESPONSES = {
    "400": "The request cannot be parsed (`bad_request`)",
    "401": "No or invalid credentials (`not_authenticated`)",
    "403": "The key lacks the scope, or the user the permission (`permission_denied`, …)",
    "404": "Unknown object, or one these credentials may not see (`not_found`)",
    "409": "A state conflict (`conflict`, `already_claimed`, `idempotency_key_in_use`, …)",
    "413": "The body is over the size limit (`payload_too_large`)",
    "422": "Invalid fields (`validation_error`, details.fields) or a reused Idempotency-Key",
    "429": "Too many requests (`rate_limited`); wait `Retry-After` seconds",
    "500": "Unexpected; logged with the request id (`internal_error`)",
    "503": "A dependency is unavailable (`service_unavailable`)",
}


IDEMPOTENCY_PARAMETER = {
    "name": "Idempotency-Key",
    "in": "header",
    "required": False,
    "description": "Send a retry with the same key and body to get the first response back "
    "instead of a second side effect (kept 24 h; docs/api.md)",
    "schema": {"type": "string", "minLength": 1, "maxLength": 255},
}


def _error_response(status: str, description: str) -> dict[str, Any]:
    response: dict[str, Any] = {
        "description": description,
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "required": ["success", "data", "error"],
                    "properties": {
                        "success": {"type": "boolean", "enum": [False]},
                        "data": {"type": "null"},
                        "error": {"$ref": "#/components/schemas/Error"},
                    },
                }
            }
        },
    }
    if status == "429":
        response["headers"] = {
            "Retry-After": {"description": "Seconds to wait", "schema": {"type": "integer"}}
        }
    if status == "401":
        response["headers"] = {"WWW-Authenticate": {"schema": {"type": "string"}}}
    return response


def install_error_handlers(api: ActiondeskAPI) -> None:
    """Map every failure family to the envelope (one handler per family)."""

    @api.exception_handler(ApplicationError)
    def _application_error(request: HttpRequest, exc: ApplicationError) -> HttpResponse:
        headers = {"Retry-After": str(exc.retry_after)} if exc.retry_after is not None else None
        return api.error_response(
            request, exc.code, exc.message, status=exc.status, details=exc.details, headers=headers
        )

    @api.exception_handler(ValidationError)
    def _validation_error(request: HttpRequest, exc: ValidationError) -> HttpResponse:
        fields = [
            {
                "field": ".".join(str(part) for part in error.get("loc", ())),
                "message": error.get("msg", "Invalid value."),
                "type": error.get("type", "invalid"),
            }
            for error in exc.errors
        ]
        return api.error_response(
            request,
            ErrorCode.VALIDATION_ERROR,
            "The request has invalid fields.",
            status=422,
            details={"fields": fields},
        )

    @api.exception_handler(AuthenticationError)
    def _authentication_error(request: HttpRequest, exc: AuthenticationError) -> HttpResponse:
        return api.error_response(
            request,
            ErrorCode.NOT_AUTHENTICATED,
            "Authentication is required: send an API key as `Authorization: Bearer <key>`.",
            status=401,
            headers={"WWW-Authenticate": 'Bearer realm="actiondesk"'},
        )

    def _permission_denied(request: HttpRequest, exc: Exception) -> HttpResponse:
        text = str(exc)
        message = text if text and text != "Forbidden" else "Permission denied."
        return api.error_response(request, ErrorCode.PERMISSION_DENIED, message, status=403)

    api.add_exception_handler(AuthorizationError, cast(Any, _permission_denied))
    api.add_exception_handler(PermissionDenied, cast(Any, _permission_denied))

    @api.exception_handler(Throttled)
    def _throttled(request: HttpRequest, exc: Throttled) -> HttpResponse:
        wait = max(1, math.ceil(exc.wait or 1))
        return api.error_response(
            request,
            ErrorCode.RATE_LIMITED,
            f"Too many requests; retry in {wait} s.",
            status=429,
            details={"retry_after": wait},
            headers={"Retry-After": str(wait)},
        )

    def _not_found(request: HttpRequest, exc: Exception) -> HttpResponse:
        return api.error_response(request, ErrorCode.NOT_FOUND, "Not found.", status=404)

    api.add_exception_handler(Http404, cast(Any, _not_found))
    api.add_exception_handler(ObjectDoesNotExist, cast(Any, _not_found))

    @api.exception_handler(RequestDataTooBig)
    def _too_big(request: HttpRequest, exc: RequestDataTooBig) -> HttpResponse:
        return api.error_response(
            request,
            ErrorCode.PAYLOAD_TOO_LARGE,
            payload_too_large_message(),
            status=413,
            details={"max_bytes": settings.DATA_UPLOAD_MAX_MEMORY_SIZE},
        )

    def _bad_body(request: HttpRequest, exc: Exception) -> HttpResponse:
        # Too many fields or files, a malformed multipart body: the client's fault, not a 500.
        logger.warning("api_request_body_refused", kind=type(exc).__name__)
        return api.error_response(
            request, ErrorCode.BAD_REQUEST, "The request body could not be read.", status=400
        )

    for family in (TooManyFieldsSent, TooManyFilesSent, SuspiciousMultipartForm):
        api.add_exception_handler(family, cast(Any, _bad_body))

    def _out_of_range(request: HttpRequest, exc: Exception) -> HttpResponse:
        # A number past what the database column holds (a path id of 30 digits, say).
        logger.info("api_value_out_of_range", kind=type(exc).__name__)
        return api.error_response(
            request,
            ErrorCode.VALIDATION_ERROR,
            "A value is out of range.",
            status=422,
            details={"fields": []},
        )

    api.add_exception_handler(OverflowError, cast(Any, _out_of_range))
    api.add_exception_handler(DataError, cast(Any, _out_of_range))

    @api.exception_handler(HttpError)
    def _http_error(request: HttpRequest, exc: HttpError) -> HttpResponse:
        code, _ = code_for_status(exc.status_code)
        return api.error_response(request, code, exc.message, status=exc.status_code)

    @api.exception_handler(Exception)
    def _unexpected(request: HttpRequest, exc: Exception) -> HttpResponse:
        logger.exception("api_request_failed", path=request.path, method=request.method)
        request_id = structlog.contextvars.get_contextvars().get("request_id")
        return api.error_response(
            request,
            ErrorCode.INTERNAL_ERROR,
            "Something went wrong on our side. Quote the request id when reporting it.",
            status=500,
            details={"request_id": request_id} if request_id else {},
        )


def payload_too_large_message() -> str:
    limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE or 0
    return (
        f"The request body is larger than the {limit / (1024 * 1024):.1f} MiB limit; "
        "send large specs as a file upload."
    )


def create_api(**kwargs: Any) -> ActiondeskAPI:
    """An API with the envelope, the error handlers, key or staff-session auth and the per-key
    rate limit. Tests build their own with extra endpoints; production has exactly one."""
    options: dict[str, Any] = {
        "title": "Actiondesk API",
        "version": "1",
        "description": "Headless chat, imports, approvals, escalations, analytics and replay.",
        "docs_decorator": docs_access,
        "auth": api_auth,
        "throttle": [KeyRateThrottle()],
    }
    options.update(kwargs)
    api = ActiondeskAPI(**options)
    install_error_handlers(api)
    # Idempotency-Key on every POST (access.idempotency): claimed or replayed around the view,
    # the response stored around the whole operation.
    # (ninja's "operation" mode wraps the view function, "view" mode the whole operation.)
    api.add_decorator(idempotent_view, mode="operation")
    api.add_decorator(idempotent_operation, mode="view")
    return api


api = create_api(urls_namespace="api")


def _register_routers() -> None:
    from access.api import router as access_router
    from analytics.api import router as analytics_router
    from config.health import router as health_router
    from conversations.api import router as conversations_router
    from conversations.backends_api import router as backends_router
    from escalations.api import router as escalations_router
    from openapi_import.api import router as openapi_import_router

    api.add_router("/health", health_router, tags=["health"])
    api.add_router("", access_router, tags=["access"])
    api.add_router("", openapi_import_router)
    api.add_router("", escalations_router)
    api.add_router("", analytics_router)
    api.add_router("", conversations_router)
    api.add_router("", backends_router)


_register_routers()
