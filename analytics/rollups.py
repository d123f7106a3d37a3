"""Hourly rollups of the event record (docs/analytics.md, docs/performance.md).

:func:`rollups_refresh` (a scheduler job, every minute) folds the events of the last complete
hours into :class:`EventRollup` rows; :func:`event_rows` answers "the aggregates of these
events between two instants" from rollups for the whole hours and from raw events for the
edges, so a range boundary is exact and the dashboard never scans months of events.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import structlog
from django.db import transaction
from django.db.models import Count, FloatField, Max, Q, QuerySet, Sum
from django.db.models.fields.json import KT
from django.db.models.functions import Cast, TruncHour
from django.utils import timezone

from analytics.models import LATENCY_BOUNDS_MS, Event, EventRollup, RollupCursor

logger = structlog.get_logger(__name__)

HOUR = timedelta(hours=1)
DIMENSIONS = ("type", "agent", "backend", "model", "operation", "outcome")
BUCKETS = len(LATENCY_BOUNDS_MS) + 1


def hour_floor(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def hour_ceil(moment: datetime) -> datetime:
    floor = hour_floor(moment)
    return floor if floor == moment else floor + HOUR


def _bucket_filters(field: str) -> dict[str, Q]:
    filters: dict[str, Q] = {}
    lower: float | None = None
    for index, bound in enumerate(LATENCY_BOUNDS_MS):
        condition = Q(**{f"{field}__lte": bound})
        if lower is not None:
            condition &= Q(**{f"{field}__gt": lower})
        filters[f"{field}_b{index}"] = condition
        lower = bound
    filters[f"{field}_b{BUCKETS - 1}"] = Q(**{f"{field}__gt": lower})
    return filters


def _aggregate(events: QuerySet[Event]) -> list[dict[str, Any]]:
    """One row per (hour, dimensions) with counts, sums and both latency histograms."""
    buckets = {
        name: Count("id", filter=condition)
        for field in ("latency_ms", "first_token")
        for name, condition in _bucket_filters(field).items()
    }
    rows = (
        events.order_by()
        .annotate(
            hour=TruncHour("occurred_at", tzinfo=UTC),
            first_token=Cast(KT("data__first_token_ms"), FloatField()),
        )
        .values("hour", *DIMENSIONS)
        .annotate(
            count=Count("id"),
            latency_count=Count("latency_ms"),
            latency_sum=Sum("latency_ms"),
            latency_max=Max("latency_ms"),
            first_token_count=Count("first_token"),
            first_token_max=Max("first_token"),
            prompt_tokens=Sum("prompt_tokens"),
            completion_tokens=Sum("completion_tokens"),
            cost=Sum("cost"),
            **buckets,
        )
    )
    result = []
    for row in rows:
        result.append(
            {
                "hour": row["hour"],
                **{name: row[name] for name in DIMENSIONS},
                "count": row["count"],
                "latency_count": row["latency_count"],
                "latency_sum": row["latency_sum"] or 0.0,
                "latency_max": row["latency_max"],
                "latency_buckets": [row[f"latency_ms_b{i}"] for i in range(BUCKETS)],
                "first_token_count": row["first_token_count"],
                "first_token_max": row["first_token_max"],
                "first_token_buckets": [row[f"first_token_b{i}"] for i in range(BUCKETS)],
                "prompt_tokens": row["prompt_tokens"] or 0,
                "completion_tokens": row["completion_tokens"] or 0,
                "cost": row["cost"] or Decimal(0),
            }
        )
    return result


def rollups_refresh(*, now: datetime | None = None, rebuild: bool = False) -> int:
    """Recompute the rollups from the hour before the cursor up to the last complete hour (the
    hour before is redone: a turn stores its events when it ends, a little after they
    happened). ``rebuild`` recomputes everything. Returns the rows written."""
    through = hour_floor(now or timezone.now())
    cursor = RollupCursor.objects.first()
    start: datetime | None = None
    if cursor is not None and not rebuild:
        start = hour_floor(cursor.through) - HOUR
    events = Event.objects.filter(occurred_at__lt=through)
    if start is not None:
        events = events.filter(occurred_at__gte=start)
    rows = _aggregate(events)
    with transaction.atomic():
        stale = EventRollup.objects.filter(hour__lt=through)
        if start is not None:
            stale = stale.filter(hour__gte=start)
        stale.delete()
        EventRollup.objects.bulk_create(
            [EventRollup(**_rollup_fields(row)) for row in rows], batch_size=1000
        )
        RollupCursor.objects.update_or_create(pk=1, defaults={"through": through})
    logger.info("analytics_rollups_refreshed", rows=len(rows), through=through.isoformat())
    return len(rows)


def _rollup_fields(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "hour": row["hour"],
        **{name: row[name] for name in DIMENSIONS},
        "count": row["count"],
        "latency_count": row["latency_count"],
        "latency_sum": row["latency_sum"],
        "latency_max": row["latency_max"],
        "latency_buckets": row["latency_buckets"],
        "first_token_count": row["first_token_count"],
        "first_token_max": row["first_token_max"],
        "first_token_buckets": row["first_token_buckets"],
        "prompt_tokens": row["prompt_tokens"],
        "completion_tokens": row["completion_tokens"],
        "cost": row["cost"],
    }


_ROLLUP_COLUMNS = (
    "hour",
    *DIMENSIONS,
    "count",
    "latency_count",
    "latency_sum",
    "latency_max",
    "latency_buckets",
    "first_token_count",
    "first_token_max",
    "first_token_buckets",
    "prompt_tokens",
    "completion_tokens",
    "cost",
)


def event_rows(*, start: datetime, end: datetime) -> list[dict[str, Any]]:
    """Aggregates of the events in ``[start, end)``: whole hours the rollups cover are read
    from them, the rest (the partial hours at the edges, the hours since the last refresh)
    from the events themselves."""
    cursor = RollupCursor.objects.values_list("through", flat=True).first()
    full_start = hour_ceil(start)
    full_end = min(hour_floor(end), cursor) if cursor else full_start
    if full_end <= full_start:
        return _aggregate(Event.objects.filter(occurred_at__gte=start, occurred_at__lt=end))
    rows: list[dict[str, Any]] = list(
        EventRollup.objects.filter(hour__gte=full_start, hour__lt=full_end)
        .order_by()
        .values(*_ROLLUP_COLUMNS)
    )
    edges = Q(occurred_at__gte=start, occurred_at__lt=full_start) | Q(
        occurred_at__gte=full_end, occurred_at__lt=end
    )
    if start < full_start or full_end < end:
        rows.extend(_aggregate(Event.objects.filter(edges)))
    return rows


def percentile(buckets: Iterable[int], largest: float | None, fraction: float) -> float | None:
    """The ``fraction`` quantile read from a histogram: the upper bound of the bucket holding
    it, or the largest value when that is smaller (or the bucket is the open last one)."""
    counts = list(buckets)
    total = sum(counts)
    if total == 0:
        return None
    rank = max(1, math.ceil(fraction * total))
    seen = 0
    for index, count in enumerate(counts):
        seen += count
        if seen >= rank:
            if index >= len(LATENCY_BOUNDS_MS):
                return largest
            bound = float(LATENCY_BOUNDS_MS[index])
            return min(bound, largest) if largest is not None else bound
    return largest


def merge_buckets(rows: Iterable[dict[str, Any]], field: str) -> tuple[list[int], float | None]:
    merged = [0] * BUCKETS
    largest: float | None = None
    for row in rows:
        for index, count in enumerate(row[f"{field}_buckets"] or ()):
            merged[index] += count
        top = row[f"{field}_max"]
        if top is not None and (largest is None or top > largest):
            largest = top
    return merged, largest
