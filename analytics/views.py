"""Supervisor pages under the admin site (SPEC §9, §10): the analytics dashboard with its CSV
exports. Each view checks access, calls one selector and renders."""

from __future__ import annotations

import csv
from typing import Any
from uuid import UUID

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import URLPattern, path
from django.utils import timezone
from django.views.decorators.http import require_GET

from analytics.charts import stacked_bars
from analytics.ops import ops_counts, provider_health
from analytics.ranges import PRESETS, range_parse
from analytics.replay import conversation_replay
from analytics.selectors import analytics_summary, summary_tables
from config.errors import ApplicationError
from conversations.models import Conversation

DASHBOARD_PERMISSION = "analytics.view_dashboard"
REPLAY_PERMISSION = "conversations.view_conversation"


def user_may_read_dashboard(user: Any) -> bool:
    """Supervisors and viewers; support agents work the queue, not the figures."""
    return bool(
        user is not None
        and user.is_authenticated
        and user.is_active
        and getattr(user, "is_staff", False)
        and user.has_perm(DASHBOARD_PERMISSION)
    )


def _range_args(request: HttpRequest) -> dict[str, str]:
    return {
        "preset": request.GET.get("range", ""),
        "start": request.GET.get("from", ""),
        "end": request.GET.get("to", ""),
        "tz": request.GET.get("tz", "") or str(timezone.get_current_timezone()),
    }


@require_GET
def dashboard_page(request: HttpRequest) -> HttpResponse:
    if not user_may_read_dashboard(request.user):
        raise PermissionDenied("The dashboard is for supervisors and viewers.")
    args = _range_args(request)
    if args["start"] or args["end"]:
        args["preset"] = ""
    error = ""
    try:
        report = range_parse(now=timezone.now(), **args)
    except ApplicationError as exc:
        error = exc.message
        report = range_parse(now=timezone.now(), tz="UTC")
    summary = analytics_summary(report=report, now=timezone.now())
    export = request.GET.get("export", "")
    if export:
        return _csv(summary, export)
    counts = summary["conversations"]["counts"]
    daily = summary["range"]["bucket"] == "day"
    context = {
        **admin.site.each_context(request),
        "title": "Analytics",
        "summary": summary,
        "counts": counts,
        "rates": summary["conversations"]["rates"],
        "empty": counts["started"] == 0 and not summary["messages"]["received"],
        "error": error,
        "presets": list(PRESETS),
        "args": args,
        "query": request.GET.urlencode(),
        "conversation_chart": stacked_bars(
            title="Conversations started, by outcome",
            points=[
                {
                    **point,
                    "other": point["conversations"] - point["ai_resolved"] - point["escalated"],
                }
                for point in summary["series"]
            ],
            layers=[
                ("ai_resolved", "AI-resolved", "chart--ok"),
                ("escalated", "Escalated", "chart--warn"),
                ("other", "Other", "chart--muted"),
            ],
            daily=daily,
        ),
        "tool_chart": stacked_bars(
            title="Tool calls, by outcome",
            points=[
                {**point, "tool_ok": point["tool_calls"] - point["tool_failures"]}
                for point in summary["series"]
            ],
            layers=[
                ("tool_ok", "Succeeded", "chart--ok"),
                ("tool_failures", "Failed", "chart--bad"),
            ],
            daily=daily,
        ),
    }
    return render(request, "analytics/dashboard.html", context)


def _csv(summary: dict[str, Any], name: str) -> HttpResponse:
    tables = summary_tables(summary)
    if name not in tables:
        raise Http404(f"No table {name!r}; one of {', '.join(tables)}.")
    header, rows = tables[name]
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    start = summary["range"]["from"][:10]
    end = summary["range"]["to"][:10]
    response["Content-Disposition"] = f'attachment; filename="actiondesk-{name}-{start}-{end}.csv"'
    writer = csv.writer(response)
    writer.writerow(header)
    for row in rows:
        # A cell starting with = + - @ would run as a formula in a spreadsheet.
        writer.writerow(
            ["'" + cell if isinstance(cell, str) and cell[:1] in "=+-@" else cell for cell in row]
        )
    return response


@require_GET
def replay_page(request: HttpRequest, conversation_id: UUID) -> HttpResponse:
    """A conversation step by step, 20 steps a page, read from the record only."""
    user = request.user
    if not (getattr(user, "is_staff", False) and user.has_perm(REPLAY_PERMISSION)):
        raise PermissionDenied("Your role cannot read conversations.")
    try:
        page = int(request.GET.get("page", "1"))
    except ValueError:
        page = 1
    try:
        replay = conversation_replay(conversation_id=conversation_id, page=page)
    except Conversation.DoesNotExist as exc:
        raise Http404("No such conversation.") from exc
    context = {
        **admin.site.each_context(request),
        "title": f"Replay: {replay.title}",
        "replay": replay,
        "pages": range(1, replay.pages + 1),
    }
    return render(request, "analytics/replay.html", context)


@require_GET
def ops_page(request: HttpRequest) -> HttpResponse:
    """Provider health and the work waiting (SPEC §10), for supervisors and viewers."""
    if not user_may_read_dashboard(request.user):
        raise PermissionDenied("Ops is for supervisors and viewers.")
    now = timezone.now()
    context = {
        **admin.site.each_context(request),
        "title": "Provider health and ops",
        "backends": provider_health(now=now),
        "counts": ops_counts(now=now),
    }
    return render(request, "analytics/ops.html", context)


def admin_urls(site: admin.AdminSite) -> list[URLPattern]:
    """The admin site's ``get_urls`` prepends these (names under the ``admin:`` namespace)."""
    return [
        path("analytics/dashboard/", site.admin_view(dashboard_page), name="analytics_dashboard"),
        path("analytics/ops/", site.admin_view(ops_page), name="analytics_ops"),
        path(
            "analytics/replay/<uuid:conversation_id>/",
            site.admin_view(replay_page),
            name="analytics_replay",
        ),
    ]


def dashboard_index_entry(
    request: HttpRequest, app_list: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """Put "Dashboard" and "Provider health and ops" first in the Analytics box."""
    from django.urls import reverse

    if not user_may_read_dashboard(request.user):
        return app_list
    for app in app_list:
        if app.get("app_label") == "analytics":
            for position, (name, url) in enumerate(
                (
                    ("Dashboard", "admin:analytics_dashboard"),
                    ("Provider health and ops", "admin:analytics_ops"),
                )
            ):
                app["models"].insert(
                    position,
                    {
                        "name": name,
                        "object_name": name.replace(" ", ""),
                        "admin_url": reverse(url),
                        "add_url": None,
                        "view_only": True,
                        "perms": {"view": True},
                    },
                )
    return app_list
