"""The customer's chat page: server-rendered, bound to a signed visitor cookie."""

from __future__ import annotations

from urllib.parse import urlencode
from uuid import UUID

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
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
from conversations.realtime import message_frame
from conversations.selectors import (
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


@require_http_methods(["GET"])
def chat_home(request: HttpRequest) -> HttpResponse:
    """The visitor's open conversation, or a new one."""
    visitor, new = _visitor(request)
    conversation = None if new else conversation_latest_open_for_visitor(visitor_id=visitor)
    if conversation is None:
        conversation = conversation_start(visitor_id=visitor)
    response = HttpResponseRedirect(reverse("chat", args=[conversation.pk]))
    return _with_cookie(request, response, visitor)


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
    history = [message_frame(m) for m in messages_after(conversation_id=conversation.pk, after=0)]
    return render(
        request,
        "conversations/chat.html",
        {
            "conversation": conversation,
            "history": history,
            "identity": identity_frame(conversation),
            "demo_customers": demo_customers() if demo_enabled() else [],
        },
    )


@require_POST
def chat_new(request: HttpRequest) -> HttpResponse:
    visitor, _ = _visitor(request)
    conversation = conversation_start(visitor_id=visitor)
    response = HttpResponseRedirect(reverse("chat", args=[conversation.pk]))
    return _with_cookie(request, response, visitor)


@require_POST
def chat_demo_identity(request: HttpRequest, conversation_id: UUID) -> HttpResponse:
    """The demo only: "continue as Ana" signs Ana's identity, as the business's site would,
    and hands it to the chat page like a real site's link."""
    if not demo_enabled():
        raise Http404("Not in the demo.")
    visitor = visitor_from_request(request)
    conversation = conversation_get_for_visitor(
        conversation_id=conversation_id, visitor_id=visitor, user=request.user
    )
    customer = next((c for c in demo_customers() if c["email"] == request.POST.get("email")), None)
    if conversation is None or customer is None:
        raise Http404("No such conversation or demo customer.")
    token = identity_token_sign(
        customer_id=customer["id"], email=customer["email"], name=customer["name"]
    )
    return HttpResponseRedirect(
        reverse("chat", args=[conversation.pk]) + "?" + urlencode({"identity": token})
    )
