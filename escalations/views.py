"""Staff pages under the admin site: the live queue and the handoff page of one escalation,
plus the POST endpoints their buttons use. Each view checks access, calls one service or
selector, and renders or redirects; live updates come over ``/ws/escalations/``."""

from __future__ import annotations

import json
from typing import Any
from uuid import UUID

from django.contrib import admin, messages
from django.contrib.auth.models import User
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404, render
from django.urls import URLPattern, path, reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET, require_POST

from config.errors import ApplicationError
from conversations.interrupts import interrupt_decide, interrupt_edit_arguments
from conversations.models import Conversation, Interrupt
from conversations.realtime import message_frame
from conversations.selectors import conversations_ai_active
from escalations import services
from escalations.models import Escalation
from escalations.realtime import escalation_summary, interrupt_summary, staff_name
from escalations.selectors import (
    ACT_PERMISSION,
    DECIDE_PERMISSION,
    VIEW_PERMISSION,
    escalation_get,
    escalation_queue,
    handoff_messages,
    staff_interrupts_pending,
    user_is_supervisor,
    user_may_view_queue,
)


def _user(request: HttpRequest) -> User:
    return request.user  # type: ignore[return-value]


def _require(request: HttpRequest, permission: str) -> None:
    if not user_may_view_queue(request.user) or not request.user.has_perm(permission):
        raise PermissionDenied(f"Your role lacks the '{permission}' permission.")


def _escalation(escalation_id: int) -> Escalation:
    try:
        return escalation_get(escalation_id=escalation_id)
    except Escalation.DoesNotExist as exc:
        raise Http404("No such escalation.") from exc


def _back(request: HttpRequest, default: str) -> HttpResponseRedirect:
    target = request.POST.get("next", "")
    if target and url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return HttpResponseRedirect(target)
    return HttpResponseRedirect(default)


def _handoff(escalation_id: int) -> str:
    return reverse("admin:escalations_handoff", args=[escalation_id])


def timeline_entry(frame: dict[str, Any]) -> dict[str, Any]:
    """One line of the handoff page's timeline (static/escalations/handoff.js mirrors this)."""
    kind = str(frame.get("type", ""))
    role = str(frame.get("role") or "system")
    if kind == "message":
        who = {
            "user": "Customer",
            "assistant": frame.get("agent") or "Assistant",
            "staff": frame.get("author") or "Staff",
        }.get(role, "System")
    else:
        who = kind.replace("_", " ").capitalize()
    text = frame.get("content") or frame.get("summary") or frame.get("operation") or ""
    return {"seq": frame.get("seq"), "kind": kind, "role": role, "who": who, "text": text}


def _context(request: HttpRequest, title: str, **extra: Any) -> dict[str, Any]:
    return {**admin.site.each_context(request), "title": title, **extra}


# --- Pages -------------------------------------------------------------------------------------


@require_GET
def queue_page(request: HttpRequest) -> HttpResponse:
    _require(request, VIEW_PERMISSION)
    user = _user(request)
    services.escalations_cancel_closed()
    rows = [escalation_summary(e) for e in escalation_queue()]
    can_decide = user.has_perm(DECIDE_PERMISSION)
    can_act = user.has_perm(ACT_PERMISSION)
    return render(
        request,
        "escalations/queue.html",
        _context(
            request,
            "Escalation queue",
            rows=rows,
            interrupts=[interrupt_summary(i) for i in staff_interrupts_pending()]
            if can_decide
            else [],
            conversations=conversations_ai_active() if can_act else [],
            can_act=can_act,
            can_decide=can_decide,
            me=user,
        ),
    )


@require_GET
def handoff_page(request: HttpRequest, escalation_id: int) -> HttpResponse:
    _require(request, VIEW_PERMISSION)
    user = _user(request)
    escalation = _escalation(escalation_id)
    frames = [
        message_frame(m) for m in handoff_messages(conversation_id=escalation.conversation_id)
    ]
    holder = escalation.claimed_by_id == user.pk or user_is_supervisor(user)
    can_act = user.has_perm(ACT_PERMISSION)
    packet = escalation.packet
    return render(
        request,
        "escalations/handoff.html",
        _context(
            request,
            f"Escalation #{escalation.pk}",
            escalation=escalation,
            summary=escalation_summary(escalation),
            packet=packet,
            packet_json=json.dumps(packet, indent=2, ensure_ascii=False, default=str),
            timeline=[timeline_entry(frame) for frame in frames],
            last_seq=frames[-1]["seq"] if frames else 0,
            context_json=json.dumps(
                packet.get("customer", {}).get("context", {}), indent=2, ensure_ascii=False
            ),
            interrupts=[
                {
                    "pk": item.pk,
                    "summary": item.summary,
                    "policy_reason": item.policy_reason,
                    "arguments_json": json.dumps(item.arguments, indent=2, ensure_ascii=False),
                }
                for item in staff_interrupts_pending(conversation_id=escalation.conversation_id)
            ],
            can_claim=can_act and escalation.status == Escalation.Status.WAITING,
            can_write=can_act and holder and escalation.status == Escalation.Status.CLAIMED,
            can_act=can_act,
            can_decide=user.has_perm(DECIDE_PERMISSION),
            claimer=staff_name(escalation.claimed_by),
            priorities=Escalation.Priority.choices,
        ),
    )


# --- Actions (POST, then back to a page) ---------------------------------------------------------


def _act(request: HttpRequest, done: str, action: Any, **kwargs: Any) -> bool:
    try:
        action(**kwargs)
    except ApplicationError as exc:
        messages.error(request, exc.message)
        return False
    messages.success(request, done)
    return True


@require_POST
def claim(request: HttpRequest, escalation_id: int) -> HttpResponse:
    _require(request, ACT_PERMISSION)
    escalation = _escalation(escalation_id)
    if _act(request, "Claimed: the customer sees that you joined.", services.escalation_claim,
            escalation=escalation, user=_user(request)):  # fmt: skip
        return HttpResponseRedirect(_handoff(escalation.pk))
    return _back(request, reverse("admin:escalations_queue"))


@require_POST
def send_message(request: HttpRequest, escalation_id: int) -> HttpResponse:
    _require(request, ACT_PERMISSION)
    escalation = _escalation(escalation_id)
    try:
        services.escalation_message_send(
            escalation=escalation, user=_user(request), content=request.POST.get("content", "")
        )
    except ApplicationError as exc:
        messages.error(request, exc.message)
    return HttpResponseRedirect(_handoff(escalation.pk) + "#handoff-composer")


@require_POST
def resolve(request: HttpRequest, escalation_id: int) -> HttpResponse:
    _require(request, ACT_PERMISSION)
    escalation = _escalation(escalation_id)
    _act(request, "Resolved.", services.escalation_resolve, escalation=escalation,
         user=_user(request))  # fmt: skip
    return HttpResponseRedirect(_handoff(escalation.pk))


@require_POST
def hand_back(request: HttpRequest, escalation_id: int) -> HttpResponse:
    _require(request, ACT_PERMISSION)
    escalation = _escalation(escalation_id)
    _act(request, "Handed back to the AI.", services.escalation_hand_back, escalation=escalation,
         user=_user(request))  # fmt: skip
    return HttpResponseRedirect(_handoff(escalation.pk))


@require_POST
def set_priority(request: HttpRequest, escalation_id: int) -> HttpResponse:
    _require(request, ACT_PERMISSION)
    escalation = _escalation(escalation_id)
    _act(request, "Priority changed.", services.escalation_priority_set, escalation=escalation,
         priority=request.POST.get("priority", ""), user=_user(request))  # fmt: skip
    return HttpResponseRedirect(_handoff(escalation.pk))


@require_POST
def take_over(request: HttpRequest, conversation_id: UUID) -> HttpResponse:
    _require(request, ACT_PERMISSION)
    conversation = get_object_or_404(Conversation, pk=conversation_id)
    try:
        escalation = services.escalation_take_over(conversation=conversation, user=_user(request))
    except ApplicationError as exc:
        messages.error(request, exc.message)
        return _back(request, reverse("admin:escalations_queue"))
    messages.success(request, "You took the conversation over.")
    return HttpResponseRedirect(_handoff(escalation.pk))


@require_POST
def decide_interrupt(request: HttpRequest, interrupt_id: UUID) -> HttpResponse:
    """Approve or reject an action that waits for staff; the arguments may be corrected first
    (re-validated against the operation's schema)."""
    _require(request, DECIDE_PERMISSION)
    interrupt = get_object_or_404(Interrupt, pk=interrupt_id)
    back = _back(request, reverse("admin:escalations_queue"))
    approve = request.POST.get("decision") == "approve"
    if interrupt.approver != Interrupt.Approver.STAFF:
        messages.error(request, "The customer decides this action, not staff.")
        return back
    edited = request.POST.get("arguments", "").strip()
    try:
        if approve and edited:
            try:
                arguments = json.loads(edited)
            except ValueError:
                messages.error(request, "The arguments are not valid JSON.")
                return back
            if not isinstance(arguments, dict):
                messages.error(request, "The arguments must be a JSON object.")
                return back
            if arguments != interrupt.arguments:
                interrupt = interrupt_edit_arguments(
                    interrupt=interrupt, arguments=arguments, user=_user(request)
                )
        interrupt_decide(
            interrupt_id=interrupt.pk,
            approve=approve,
            source="staff",
            user=_user(request),
            expected_hash=interrupt.arguments_hash,
        )
    except ApplicationError as exc:
        messages.error(request, f"{interrupt.summary}: {exc.message}")
        return back
    messages.success(request, f"{'Approved' if approve else 'Rejected'}: {interrupt.summary}.")
    return back


# --- Wiring into the admin site ----------------------------------------------------------------


def admin_urls(site: admin.AdminSite) -> list[URLPattern]:
    """The admin site's ``get_urls`` prepends these (names under the ``admin:`` namespace)."""
    handoff = "escalations/handoff/<int:escalation_id>/"
    return [
        path("escalations/queue/", site.admin_view(queue_page), name="escalations_queue"),
        path(handoff, site.admin_view(handoff_page), name="escalations_handoff"),
        path(f"{handoff}claim/", site.admin_view(claim), name="escalations_claim"),
        path(f"{handoff}message/", site.admin_view(send_message), name="escalations_message"),
        path(f"{handoff}resolve/", site.admin_view(resolve), name="escalations_resolve"),
        path(f"{handoff}hand-back/", site.admin_view(hand_back), name="escalations_hand_back"),
        path(f"{handoff}priority/", site.admin_view(set_priority), name="escalations_priority"),
        path(
            "escalations/take-over/<uuid:conversation_id>/",
            site.admin_view(take_over),
            name="escalations_take_over",
        ),
        path(
            "escalations/interrupts/<uuid:interrupt_id>/decide/",
            site.admin_view(decide_interrupt),
            name="escalations_decide_interrupt",
        ),
    ]


def queue_index_entry(request: HttpRequest, app_list: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Put "Live queue" first in the Escalations box of the admin index."""
    if not user_may_view_queue(request.user):
        return app_list
    for app in app_list:
        if app.get("app_label") == "escalations":
            app["models"].insert(
                0,
                {
                    "name": "Live queue",
                    "object_name": "LiveQueue",
                    "admin_url": reverse("admin:escalations_queue"),
                    "add_url": None,
                    "view_only": True,
                    "perms": {"view": True},
                },
            )
    return app_list
