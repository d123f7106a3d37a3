"""Error views for pages outside the API (the API answers in its envelope, ``config.api``)."""

from __future__ import annotations

from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, HttpResponse
from django.views import defaults


def bad_request(request: HttpRequest, exception: Exception) -> HttpResponse:
    """Django reports a body over the upload limit as a 400 (it is a SuspiciousOperation); it is
    a 413, and under ``/api/`` ApiEnvelopeMiddleware turns it into ``payload_too_large``."""
    if isinstance(exception, RequestDataTooBig):
        return HttpResponse(
            "The request body is too large.", status=413, content_type="text/plain; charset=utf-8"
        )
    return defaults.bad_request(request, exception)
