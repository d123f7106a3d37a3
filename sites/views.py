"""The widget's pages (docs/widget.md): ``/widget.js`` for the business's page, the chat frame
it opens, and the frame's two JSON calls. Thin: parse, check the site and origin, call a
service, shape the answer."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import structlog
from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.utils.csp import CSP
from django.views.decorators.cache import cache_control
from django.views.decorators.clickjacking import xframe_options_exempt
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST

from config.errors import ApplicationError, ErrorCode, error_body
from conversations.selectors import chat_greeting
from sites.colours import HEX
from sites.models import Site
from sites.origins import origin_normalise
from sites.selectors import site_get_enabled
from sites.services import WidgetSession, widget_conversation_start, widget_session_open

logger = structlog.get_logger(__name__)

WIDGET_SCRIPT = Path(settings.BASE_DIR) / "static" / "sites" / "widget.js"
MAX_BODY_BYTES = 16 * 1024


@require_GET
@cache_control(public=True, max_age=300)
def widget_script(request: HttpRequest) -> HttpResponse:
    """The same script for every site (the tag's ``data-site`` says which), at a stable
    address the business pastes once."""
    response = HttpResponse(WIDGET_SCRIPT.read_bytes(), content_type="text/javascript")
    # Loaded by other origins' pages, including those that isolate themselves (COEP).
    response["Cross-Origin-Resource-Policy"] = "cross-origin"
    return response


def _framed_by(response: HttpResponse, origins: list[str]) -> HttpResponse:
    # Only the widget frame may be framed, and only by the site's origins; every other page
    # keeps frame-ancestors 'none' and X-Frame-Options: DENY.
    response._csp_config = {**settings.SECURE_CSP, "frame-ancestors": origins or [CSP.NONE]}  # type: ignore[attr-defined]
    return response


def _refusal(
    request: HttpRequest, message: str, *, status: int, origin: str | None
) -> HttpResponse:
    response = render(request, "sites/widget_refused.html", {"message": message}, status=status)
    # The refusal holds nothing but its sentence, so the page that asked may show it.
    return _framed_by(response, [origin] if origin else [])


@require_GET
@xframe_options_exempt
def widget_frame(request: HttpRequest, public_id: str) -> HttpResponse:
    """The chat inside the business's page. ``?origin=`` is the embedding page's origin as
    widget.js saw it, used for a readable refusal; the browser enforces the real check through
    ``frame-ancestors``, whatever a page claims."""
    origin = origin_normalise(request.GET.get("origin", ""))
    site = site_get_enabled(public_id=public_id)
    if site is None:
        logger.warning("widget_refused", reason="site_unavailable", public_id=public_id[:40])
        return _refusal(request, "This chat isn't available.", status=404, origin=origin)
    if origin is not None and origin not in site.origins:
        logger.warning("widget_refused", reason="origin_not_allowed", site=site.public_id)
        return _refusal(request, f"This chat isn't enabled on {origin}.", status=403, origin=origin)
    response = render(
        request,
        "conversations/chat.html",
        {
            "site": site,
            "conversation": None,
            "history": [],
            "greeting": chat_greeting(site=site),
            "identity": {},
        },
    )
    return _framed_by(response, site.origins)


def _json_body(request: HttpRequest) -> dict[str, Any]:
    if len(request.body) > MAX_BODY_BYTES:
        raise ApplicationError(ErrorCode.PAYLOAD_TOO_LARGE, "The request body is too large.")
    try:
        body = json.loads(request.body or b"{}")
    except ValueError:
        raise ApplicationError(ErrorCode.MALFORMED_JSON, "The body is not valid JSON.") from None
    if not isinstance(body, dict):
        raise ApplicationError(ErrorCode.BAD_REQUEST, "The body must be a JSON object.")
    return body


def _answer(session: WidgetSession, *, status: int = 200) -> JsonResponse:
    conversation = session.conversation
    data: dict[str, Any] = {
        "visitor": session.visitor_token,
        "conversation": None,
        "identity": session.identity,
        "identity_ticket": session.identity_ticket,
    }
    if conversation is not None:
        data["conversation"] = {
            "id": str(conversation.pk),
            "ws_path": f"/ws/chat/{conversation.pk}/",
            "state": conversation.state,
        }
    return JsonResponse({"success": True, "data": data, "error": None}, status=status)


def _error(exc: ApplicationError) -> JsonResponse:
    return JsonResponse(error_body(exc.code, exc.message, exc.details), status=exc.status)


def _site_or_error(public_id: str) -> Site:
    site = site_get_enabled(public_id=public_id)
    if site is None:
        raise ApplicationError(ErrorCode.SITE_UNAVAILABLE, "This chat isn't available.")
    return site


def _call(
    request: HttpRequest,
    public_id: str,
    run: Callable[[Site, dict[str, Any]], WidgetSession],
    *,
    status: int = 200,
) -> JsonResponse:
    try:
        site = _site_or_error(public_id)
        session = run(site, _json_body(request))
    except ApplicationError as exc:
        return _error(exc)
    return _answer(session, status=status)


# No CSRF token: these calls carry no cookie of ours (the frame is third-party on the business's
# page); the visitor token in the body is the credential, and a forged request has none.
@csrf_exempt
@require_POST
def widget_session(request: HttpRequest, public_id: str) -> JsonResponse:
    return _call(
        request,
        public_id,
        lambda site, body: widget_session_open(
            site=site, visitor_token=body.get("visitor"), identity_token=body.get("identity")
        ),
    )


@csrf_exempt
@require_POST
def widget_start(request: HttpRequest, public_id: str) -> JsonResponse:
    return _call(
        request,
        public_id,
        lambda site, body: widget_conversation_start(
            site=site,
            visitor_token=body.get("visitor"),
            identity_ticket=body.get("identity_ticket"),
        ),
        status=201,
    )


@require_GET
@cache_control(public=True, max_age=60)
def widget_theme(request: HttpRequest, public_id: str) -> HttpResponse:
    """The site's colours as a stylesheet: the frame's policy allows no inline styles."""
    site = site_get_enabled(public_id=public_id)
    accent, ink = "#2456d6", "#ffffff"
    if site is not None and HEX.match(site.accent_color) and HEX.match(site.accent_text_color):
        accent, ink = site.accent_color, site.accent_text_color
    css = f":root {{ --accent: {accent}; --accent-ink: {ink}; --user: {accent}; }}\n"
    return HttpResponse(css, content_type="text/css")
