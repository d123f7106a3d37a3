"""The customer's chat page: server-rendered, bound to a signed visitor cookie."""

from __future__ import annotations

from uuid import UUID

from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_http_methods, require_POST

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
    history = [message_frame(m) for m in messages_after(conversation_id=conversation.pk, after=0)]
    return render(
        request,
        "conversations/chat.html",
        {"conversation": conversation, "history": history},
    )


@require_POST
def chat_new(request: HttpRequest) -> HttpResponse:
    visitor, _ = _visitor(request)
    conversation = conversation_start(visitor_id=visitor)
    response = HttpResponseRedirect(reverse("chat", args=[conversation.pk]))
    return _with_cookie(request, response, visitor)
