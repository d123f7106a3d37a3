# No `from __future__ import annotations` here: django-ninja reads the parameter annotations
# (Query[...]) at import time.
"""``/api/v1/analytics`` (SPEC §9): the dashboard's figures for programs."""

from dataclasses import asdict
from typing import Any
from uuid import UUID

from django.http import Http404, HttpRequest
from django.utils import timezone
from ninja import Query, Router

from access.auth import require
from analytics.ranges import range_parse
from analytics.replay import conversation_replay
from analytics.schemas import AnalyticsOut, AnalyticsQuery, ReplayOut
from analytics.selectors import analytics_summary
from conversations.models import Conversation

router = Router(tags=["analytics"])
SCOPE = "analytics"
DASHBOARD_PERMISSION = "analytics.view_dashboard"
REPLAY_PERMISSION = "conversations.view_conversation"


@router.get(
    "/analytics",
    response=AnalyticsOut,
    by_alias=True,
    summary="Analytics figures for a range (the dashboard's, docs/analytics.md)",
)
def get_analytics(request: HttpRequest, query: Query[AnalyticsQuery]) -> dict[str, Any]:
    require(request, scope=SCOPE, permission=DASHBOARD_PERMISSION)
    now = timezone.now()
    report = range_parse(preset=query.range, start=query.from_, end=query.to, tz=query.tz, now=now)
    return analytics_summary(report=report, now=now)


@router.get(
    "/conversations/{conversation_id}/replay",
    response=ReplayOut,
    summary="A conversation step by step, 20 steps a page (read from the record, never re-run)",
)
def get_conversation_replay(
    request: HttpRequest, conversation_id: UUID, page: int = 1
) -> dict[str, Any]:
    require(request, scope=SCOPE, permission=REPLAY_PERMISSION)
    try:
        return asdict(conversation_replay(conversation_id=conversation_id, page=page))
    except Conversation.DoesNotExist as exc:
        raise Http404("No such conversation.") from exc
