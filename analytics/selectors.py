"""Every analytics figure (SPEC §9), computed in one place for the dashboard, its CSV export and
``GET /api/v1/analytics`` alike. The formulas are written down in docs/analytics.md.

Conversation outcomes are read for the *cohort* of conversations started in the range, as they
stand now (one denominator for every resolution kind and the escalation rate); step figures
(latency, tools, approvals, tokens) are read from the events that happened in the range,
through the hourly rollups (analytics.rollups).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from django.conf import settings

from analytics.models import EventType
from analytics.ranges import ReportRange
from analytics.rollups import event_rows, merge_buckets, percentile, series_rows
from conversations.selectors import conversations_cohort_counts, conversations_cohort_series

Row = dict[str, Any]


def _rate(part: float, whole: float) -> float | None:
    return round(part / whole, 4) if whole else None


def _latency(rows: Iterable[Row], field: str = "latency") -> dict[str, Any]:
    rows = list(rows)
    buckets, largest = merge_buckets(rows, field)
    return {
        "count": sum(buckets),
        "median_ms": percentile(buckets, largest, 0.5),
        "p95_ms": percentile(buckets, largest, 0.95),
    }


def _of(rows: Iterable[Row], *types: str) -> list[Row]:
    return [row for row in rows if row["type"] in types]


def _count(rows: Iterable[Row]) -> int:
    return sum(row["count"] for row in rows)


def _money(value: Decimal | float | int) -> float:
    return float(round(Decimal(value), 6))


def _turns(distribution: dict[int, int]) -> dict[str, float | None]:
    """Mean and median of the turns to resolution, from {turns: conversations}."""
    total = sum(distribution.values())
    if not total:
        return {"mean": None, "median": None}
    ordered = sorted(distribution.items())

    def nth(position: int) -> int:
        seen = 0
        for turns, count in ordered:
            seen += count
            if seen > position:
                return turns
        return ordered[-1][0]

    middle = (nth((total - 1) // 2) + nth(total // 2)) / 2
    mean = sum(turns * count for turns, count in ordered) / total
    return {"mean": round(mean, 2), "median": middle}


def _conversations(report: ReportRange, now: datetime) -> dict[str, Any]:
    durable_before = now - timedelta(days=settings.ANALYTICS_DURABLE_DAYS)
    counts = conversations_cohort_counts(
        start=report.start, end=report.end, durable_before=durable_before
    )
    turns = counts.pop("turns_to_resolution")
    counts.pop("resolved_turns")
    handled = counts["handled"]
    ai_resolved = counts["confirmed"] + counts["assumed"]
    counts["ai_resolved"] = ai_resolved
    counts["durable_pending"] = ai_resolved - counts["durable"]
    counts["open"] = handled - ai_resolved - counts["escalated"] - counts["abandoned"]
    return {
        "counts": counts,
        "rates": {
            "ai_resolution": _rate(ai_resolved, handled),
            "confirmed_resolution": _rate(counts["confirmed"], handled),
            "assumed_resolution": _rate(counts["assumed"], handled),
            "durable_resolution": _rate(counts["durable"], handled),
            "escalation": _rate(counts["escalated"], handled),
            "abandonment": _rate(counts["abandoned"], handled),
            "reopen": _rate(counts["reopened"], counts["reopen_base"]),
        },
        "turns_to_resolution": _turns(turns),
    }


def _operations(rows: list[Row]) -> list[dict[str, Any]]:
    by_operation: dict[str, list[Row]] = defaultdict(list)
    for row in _of(rows, EventType.TOOL_CALLED):
        by_operation[row["operation"]].append(row)
    table = []
    for operation, group in sorted(by_operation.items()):
        calls = _count(group)
        succeeded = _count(row for row in group if row["outcome"] == "succeeded")
        latency = _latency(group)
        table.append(
            {
                "operation": operation,
                "calls": calls,
                "succeeded": succeeded,
                "failed": calls - succeeded,
                "success_rate": _rate(succeeded, calls),
                "latency_median_ms": latency["median_ms"],
                "latency_p95_ms": latency["p95_ms"],
            }
        )
    return table


def _agents(rows: list[Row]) -> list[dict[str, Any]]:
    table: dict[str, dict[str, Any]] = {}

    def entry(name: str) -> dict[str, Any]:
        return table.setdefault(
            name,
            {
                "agent": name,
                "selections": 0,
                "model_calls": 0,
                "tokens": 0,
                "cost": Decimal(0),
                "resolving_turns": 0,
            },
        )

    for row in rows:
        if not row["agent"]:
            continue
        if row["type"] == EventType.AGENT_SELECTED:
            entry(row["agent"])["selections"] += row["count"]
        elif row["type"] == EventType.MODEL_CALLED:
            item = entry(row["agent"])
            item["model_calls"] += row["count"]
            item["tokens"] += row["prompt_tokens"] + row["completion_tokens"]
            item["cost"] += Decimal(row["cost"])
        elif row["type"] == EventType.TURN_RESOLVING:
            entry(row["agent"])["resolving_turns"] += row["count"]
    return [
        {**item, "cost": _money(item["cost"])}
        for item in sorted(table.values(), key=lambda item: (-item["selections"], item["agent"]))
    ]


def _backends(rows: list[Row]) -> list[dict[str, Any]]:
    by_backend: dict[str, list[Row]] = defaultdict(list)
    for row in _of(rows, EventType.MODEL_CALLED):
        by_backend[row["backend"] or "(none)"].append(row)
    table = []
    for backend, group in sorted(by_backend.items()):
        calls = _count(group)
        errors = _count(row for row in group if row["outcome"] != "ok")
        latency = _latency(row for row in group if row["outcome"] == "ok")
        table.append(
            {
                "backend": backend,
                "calls": calls,
                "errors": errors,
                "error_rate": _rate(errors, calls),
                "latency_median_ms": latency["median_ms"],
                "latency_p95_ms": latency["p95_ms"],
            }
        )
    return table


def _events(rows: list[Row], handled: int, ai_resolved: int) -> dict[str, Any]:
    model = _of(rows, EventType.MODEL_CALLED)
    prompt = sum(row["prompt_tokens"] for row in model)
    completion = sum(row["completion_tokens"] for row in model)
    cost = sum((Decimal(row["cost"]) for row in model), Decimal(0))
    approved = _count(_of(rows, EventType.INTERRUPT_APPROVED))
    rejected = _count(_of(rows, EventType.INTERRUPT_REJECTED))
    expired = _count(_of(rows, EventType.INTERRUPT_EXPIRED))
    reasons: dict[str, int] = defaultdict(int)
    for row in _of(rows, EventType.ESCALATION_REQUESTED):
        reasons[row["outcome"] or "unknown"] += row["count"]
    turns = _of(rows, EventType.TURN_COMPLETED)
    return {
        "messages": {
            "received": _count(_of(rows, EventType.MESSAGE_RECEIVED)),
            "rejected": _count(_of(rows, EventType.MESSAGE_REJECTED)),
        },
        "latency": {
            "first_response": _latency(turns, "first_token"),
            "turn": _latency(turns),
            "pickup": _latency(_of(rows, EventType.ESCALATION_CLAIMED)),
            "first_staff_action": _latency(_of(rows, EventType.STAFF_FIRST_MESSAGE)),
            "approval": _latency(
                _of(rows, EventType.INTERRUPT_APPROVED, EventType.INTERRUPT_REJECTED)
            ),
        },
        "approvals": {
            "requested": _count(_of(rows, EventType.INTERRUPT_CREATED)),
            "approved": approved,
            "rejected": rejected,
            "expired": expired,
            "approval_rate": _rate(approved, approved + rejected + expired),
        },
        "usage": {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "cost": _money(cost),
            "tokens_per_conversation": _rate(prompt + completion, handled),
            "cost_per_conversation": _rate(float(cost), handled),
            "cost_per_resolution": _rate(float(cost), ai_resolved),
        },
        "operations": _operations(rows),
        "agents": _agents(rows),
        "backends": _backends(rows),
        "escalation_reasons": [
            {"reason": reason, "count": count}
            for reason, count in sorted(reasons.items(), key=lambda item: (-item[1], item[0]))
        ],
    }


def _series(report: ReportRange) -> list[dict[str, Any]]:
    """One point per hour or day (in the report's time zone), empty ones included."""
    rows = series_rows(start=report.start, end=report.end)
    cohort = conversations_cohort_series(
        start=report.start, end=report.end, tz=report.tz, daily=report.daily
    )
    by_bucket: dict[datetime, dict[str, Any]] = {}
    step = timedelta(days=1) if report.daily else timedelta(hours=1)
    local = report.start.astimezone(report.tz)
    cursor = local.replace(minute=0, second=0, microsecond=0)
    if report.daily:
        cursor = cursor.replace(hour=0)
    while cursor < report.end:
        by_bucket[cursor] = {
            "start": cursor.isoformat(),
            "conversations": 0,
            "ai_resolved": 0,
            "escalated": 0,
            "tool_calls": 0,
            "tool_failures": 0,
            "cost": Decimal(0),
        }
        # Wall-clock steps: a day across a DST change is 23 or 25 hours long.
        cursor = (cursor.replace(tzinfo=None) + step).replace(tzinfo=report.tz)
    keys = sorted(by_bucket)
    wall = {key.replace(tzinfo=None): key for key in keys}

    def bucket_of(moment: datetime) -> datetime | None:
        local = moment.astimezone(report.tz).replace(minute=0, second=0, microsecond=0)
        if report.daily:
            local = local.replace(hour=0)
        return wall.get(local.replace(tzinfo=None))

    for moment, counts in cohort.items():
        found = bucket_of(moment)
        if found is not None:
            point = by_bucket[found]
            point["conversations"] += counts["started"]
            point["ai_resolved"] += counts["ai_resolved"]
            point["escalated"] += counts["escalated"]
    for row in rows:
        found = bucket_of(row["hour"])
        if found is None:
            continue
        point = by_bucket[found]
        if row["type"] == EventType.TOOL_CALLED:
            point["tool_calls"] += row["count"]
            if row["outcome"] != "succeeded":
                point["tool_failures"] += row["count"]
        else:
            point["cost"] += Decimal(row["cost"])
    return [{**by_bucket[key], "cost": _money(by_bucket[key]["cost"])} for key in keys]


def _figures(report: ReportRange, now: datetime) -> dict[str, Any]:
    conversations = _conversations(report, now)
    rows = event_rows(start=report.start, end=report.end)
    counts = conversations["counts"]
    return {
        "conversations": conversations,
        **_events(rows, counts["handled"], counts["ai_resolved"]),
    }


# The cards at the top of the dashboard: (key, label, path into the figures, unit).
CARDS: tuple[tuple[str, str, tuple[str, ...], str], ...] = (
    ("conversations", "Conversations handled", ("conversations", "counts", "handled"), "count"),
    ("ai_resolution", "AI resolution rate", ("conversations", "rates", "ai_resolution"), "rate"),
    ("escalation", "Escalation rate", ("conversations", "rates", "escalation"), "rate"),
    ("reopen", "Reopen rate", ("conversations", "rates", "reopen"), "rate"),
    ("first_response", "First response p95", ("latency", "first_response", "p95_ms"), "ms"),
    ("turn_latency", "Turn latency median", ("latency", "turn", "median_ms"), "ms"),
    ("approval_rate", "Approval rate", ("approvals", "approval_rate"), "rate"),
    ("cost_per_conversation", "Cost per conversation", ("usage", "cost_per_conversation"), "money"),
)


def _dig(data: dict[str, Any], path: tuple[str, ...]) -> Any:
    value: Any = data
    for key in path:
        value = value[key]
    return value


def _cards(current: dict[str, Any], previous: dict[str, Any]) -> list[dict[str, Any]]:
    cards = []
    for key, label, path, unit in CARDS:
        value, before = _dig(current, path), _dig(previous, path)
        change = None
        if value is not None and before is not None:
            change = round(value - before, 4)
        cards.append(
            {
                "key": key,
                "label": label,
                "unit": unit,
                "value": value,
                "previous": before,
                "change": change,
            }
        )
    return cards


def analytics_summary(*, report: ReportRange, now: datetime) -> dict[str, Any]:
    """Every figure of the range, the change of the headline ones against the previous period
    of the same length, and the series for the charts."""
    current = _figures(report, now)
    previous = _figures(report.previous, now)
    return {
        "range": {
            "from": report.start.isoformat(),
            "to": report.end.isoformat(),
            "tz": str(report.tz),
            "preset": report.preset,
            "bucket": "day" if report.daily else "hour",
        },
        "cards": _cards(current, previous),
        **current,
        "series": _series(report),
    }


def summary_tables(summary: dict[str, Any]) -> dict[str, tuple[list[str], list[list[Any]]]]:
    """Every table of the dashboard as (header, rows), for its CSV export."""
    counts = summary["conversations"]["counts"]
    rates = summary["conversations"]["rates"]
    return {
        "cards": (
            ["metric", "value", "previous", "change"],
            [[c["key"], c["value"], c["previous"], c["change"]] for c in summary["cards"]],
        ),
        "conversations": (
            ["figure", "value"],
            [[key, value] for key, value in counts.items()]
            + [[f"{key}_rate", value] for key, value in rates.items()],
        ),
        "operations": (
            [
                "operation",
                "calls",
                "succeeded",
                "failed",
                "success_rate",
                "latency_median_ms",
                "latency_p95_ms",
            ],
            [list(row.values()) for row in summary["operations"]],
        ),
        "agents": (
            ["agent", "selections", "model_calls", "tokens", "cost", "resolving_turns"],
            [list(row.values()) for row in summary["agents"]],
        ),
        "backends": (
            ["backend", "calls", "errors", "error_rate", "latency_median_ms", "latency_p95_ms"],
            [list(row.values()) for row in summary["backends"]],
        ),
        "escalation_reasons": (
            ["reason", "count"],
            [[row["reason"], row["count"]] for row in summary["escalation_reasons"]],
        ),
        "series": (
            [
                "start",
                "conversations",
                "ai_resolved",
                "escalated",
                "tool_calls",
                "tool_failures",
                "cost",
            ],
            [list(row.values()) for row in summary["series"]],
        ),
    }
