# No `from __future__ import annotations` here: django-ninja reads the parameter annotations
# (Query[...]) at import time.
"""``/api/v1/analytics`` (SPEC §9): the dashboard's figures for programs."""

from typing import Any

from django.http import HttpRequest
from django.utils import timezone
from ninja import Query, Router

from access.auth import require
from analytics.ranges import range_parse
from analytics.schemas import AnalyticsOut, AnalyticsQuery
from analytics.selectors import analytics_summary

router = Router(tags=["analytics"])
SCOPE = "analytics"
DASHBOARD_PERMISSION = "analytics.read_dashboard"


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
