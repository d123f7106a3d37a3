# No `from __future__ import annotations` here: django-ninja reads the parameter annotations
# (Query[...]) at import time.
from django.http import HttpRequest
from django.shortcuts import get_object_or_404
from ninja import Query, Router, Status
from ninja.pagination import paginate

from access.auth import require
from config.pagination import BoundedPagination
from conversations.models import Message
from escalations.models import Escalation
from escalations.schemas import (
    EscalationDetailOut,
    EscalationFilters,
    EscalationOut,
    StaffMessageIn,
    StaffMessageOut,
)
from escalations.selectors import ACT_PERMISSION, VIEW_PERMISSION, escalation_list
from escalations.services import (
    escalation_claim,
    escalation_hand_back,
    escalation_message_send,
    escalation_resolve,
    escalations_cancel_closed,
)

router = Router(tags=["escalations"])
SCOPE = "escalations"


def _get(escalation_id: int) -> Escalation:
    return get_object_or_404(
        Escalation.objects.select_related("conversation", "claimed_by"), pk=escalation_id
    )


@router.get("/escalations", response=list[EscalationOut], summary="List escalations")
@paginate(BoundedPagination)
def list_escalations(request: HttpRequest, filters: Query[EscalationFilters]) -> object:
    require(request, scope=SCOPE, permission=VIEW_PERMISSION)
    escalations_cancel_closed()
    return escalation_list(status=filters.status, priority=filters.priority)


@router.get(
    "/escalations/{escalation_id}",
    response=EscalationDetailOut,
    summary="An escalation with its packet",
)
def get_escalation(request: HttpRequest, escalation_id: int) -> Escalation:
    require(request, scope=SCOPE, permission=VIEW_PERMISSION)
    return _get(escalation_id)


@router.post(
    "/escalations/{escalation_id}/claim",
    response=EscalationOut,
    summary="Claim an escalation (409 already_claimed when someone else has)",
)
def claim_escalation(request: HttpRequest, escalation_id: int) -> Escalation:
    require(request, scope=SCOPE, permission=ACT_PERMISSION)
    return escalation_claim(escalation=_get(escalation_id), user=request.user)  # type: ignore[arg-type]


@router.post(
    "/escalations/{escalation_id}/messages",
    response={201: StaffMessageOut},
    summary="Write to the customer",
)
def create_message(request: HttpRequest, escalation_id: int, payload: StaffMessageIn) -> Status:
    require(request, scope=SCOPE, permission=ACT_PERMISSION)
    message: Message = escalation_message_send(
        escalation=_get(escalation_id),
        user=request.user,  # type: ignore[arg-type]
        content=payload.content,
    )
    return Status(201, message)


@router.post("/escalations/{escalation_id}/resolve", response=EscalationOut, summary="Resolve")
def resolve_escalation(request: HttpRequest, escalation_id: int) -> Escalation:
    require(request, scope=SCOPE, permission=ACT_PERMISSION)
    return escalation_resolve(escalation=_get(escalation_id), user=request.user)  # type: ignore[arg-type]


@router.post(
    "/escalations/{escalation_id}/hand-back",
    response=EscalationOut,
    summary="Hand the conversation back to the AI",
)
def hand_back_escalation(request: HttpRequest, escalation_id: int) -> Escalation:
    require(request, scope=SCOPE, permission=ACT_PERMISSION)
    return escalation_hand_back(escalation=_get(escalation_id), user=request.user)  # type: ignore[arg-type]
