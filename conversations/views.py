"""The customer's chat page: server-rendered, bound to a signed visitor cookie."""

from __future__ import annotations

from urllib.parse import urlencode
from uuid import UUID

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_http_methods, require_POST

from config.errors import ApplicationError
from conversations.identity import (
    conversation_identify_with_token,
    demo_customers,
    demo_enabled,
    identity_frame,
    identity_token_sign,
)
from conversations.models import Conversation
from conversations.realtime import message_frame
from conversations.selectors import (
    chat_greeting,
    conversation_get_for_visitor,
    conversation_latest_open_for_visitor,
    messages_after,
)
from conversations.services import conversation_start
from conversations.visitors import new_visitor_id, set_visitor_cookie, visitor_from_request


def _visitor(request: HttpRequest) -> tuple[str, bool]:
    visitor = visitor_from_request(request)
    return (visitor, False) if visitor else (new_visitor_id(), True)


def _with_cookie(request: HttpRequest, response: HttpResponse, visitor: str) -> HttpResponse:
    set_visitor_cookie(response, visitor, secure=request.is_secure())
    return response


def _page(
    request: HttpRequest, conversation: Conversation | None, *, status: int = 200
) -> HttpResponse:
    history = (
        [message_frame(m) for m in messages_after(conversation_id=conversation.pk, after=0)]
        if conversation is not None
        else []
    )
    return render(
        request,
        "conversations/chat.html",
        {
            "conversation": conversation,
            "history": history,
            "greeting": chat_greeting(),
            "identity": identity_frame(conversation) if conversation is not None else {},
            "demo_customers": demo_customers() if demo_enabled() else [],
        },
        status=status,
    )


@require_http_methods(["GET"])
def chat_home(request: HttpRequest) -> HttpResponse:
    """The visitor's open conversation; for a first visit an empty chat, which starts its
    conversation with the first message (``chat_start``), so crawlers and health checks that
    open ``/`` create nothing and get no cookie."""
    visitor = visitor_from_request(request)
    conversation = conversation_latest_open_for_visitor(visitor_id=visitor) if visitor else None
    if conversation is not None:
        return HttpResponseRedirect(reverse("chat", args=[conversation.pk]))
    return _page(request, None)


@require_POST
def chat_start(request: HttpRequest) -> JsonResponse:
    """The first message's conversation (chat.js calls this, then connects and sends)."""
    visitor, _ = _visitor(request)
    conversation = conversation_start(visitor_id=visitor)
    response = JsonResponse(
        {
            "success": True,
            "data": {
                "conversation": {
                    "id": str(conversation.pk),
                    "ws_path": f"/ws/chat/{conversation.pk}/",
                    "state": conversation.state,
                    "url": reverse("chat", args=[conversation.pk]),
                }
            },
            "error": None,
        },
        status=201,
    )
    set_visitor_cookie(response, visitor, secure=request.is_secure())
    return response


@require_http_methods(["GET"])
def chat_page(request: HttpRequest, conversation_id: UUID) -> HttpResponse:
    visitor = visitor_from_request(request)
    conversation = conversation_get_for_visitor(
        conversation_id=conversation_id, visitor_id=visitor, user=request.user
    )
    if conversation is None:
        raise Http404("No such conversation.")
    token = request.GET.get("identity")
    if token is not None:
        # The business's site links to the chat with a signed identity (docs/identity.md).
        # The token is used at once and kept out of the address bar; a refused one says why.
        try:
            conversation_identify_with_token(conversation_id=conversation.pk, token=token)
        except ApplicationError as exc:
            messages.error(request, exc.message)
        return HttpResponseRedirect(reverse("chat", args=[conversation.pk]))
    return _page(request, conversation)


@require_POST
def chat_new(request: HttpRequest) -> HttpResponse:
    visitor, _ = _visitor(request)
    conversation = conversation_start(visitor_id=visitor)
    response = HttpResponseRedirect(reverse("chat", args=[conversation.pk]))
    return _with_cookie(request, response, visitor)


@require_POST
def chat_demo_identity(request: HttpRequest, conversation_id: UUID | None = None) -> HttpResponse:
    """The demo only: "continue as Ana" signs Ana's identity, as the business's site would,
    and hands it to the chat page like a real site's link. On a first visit (no conversation
    yet) the click is a deliberate start, so it creates the conversation."""
    if not demo_enabled():
        raise Http404("Not in the demo.")
    customer = next((c for c in demo_customers() if c["email"] == request.POST.get("email")), None)
    if customer is None:
        raise Http404("No such demo customer.")
    visitor, _ = _visitor(request)
    if conversation_id is None:
        conversation: Conversation | None = conversation_start(visitor_id=visitor)
    else:
        conversation = conversation_get_for_visitor(
            conversation_id=conversation_id, visitor_id=visitor, user=request.user
        )
    if conversation is None:
        raise Http404("No such conversation.")
    token = identity_token_sign(
        customer_id=customer["id"], email=customer["email"], name=customer["name"]
    )
    response = HttpResponseRedirect(
        reverse("chat", args=[conversation.pk]) + "?" + urlencode({"identity": token})
    )
    return _with_cookie(request, response, visitor)
