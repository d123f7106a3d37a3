"""Hourly rollups of the event record (docs/analytics.md, docs/performance.md).

:func:`rollups_refresh` (a scheduler job, every minute) folds the events of the last complete
hours into :class:`EventRollup` rows; :func:`event_rows` answers "the aggregates of these
events between two instants" with one ``GROUP BY`` over the rollups of the whole hours and the
raw events of the edges (partial hours, the hours since the last refresh) added in Python, so a
range boundary is exact and the dashboard never scans months of events.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import structlog
from django.db import connection, transaction
from django.db.models import Count, FloatField, Max, Q, QuerySet, Sum
from django.db.models.fields.json import KT
from django.db.models.functions import Cast, TruncHour
from django.utils import timezone

from analytics.models import (
    LATENCY_BOUNDS_MS,
    ROLLUP_BUCKETS,
    Event,
    EventRollup,
    EventType,
    RollupCursor,
)

logger = structlog.get_logger(__name__)

HOUR = timedelta(hours=1)
DIMENSIONS = ("type", "agent", "backend", "model", "operation", "outcome")
HISTOGRAMS = ("latency", "first_token")
BUCKETS = ROLLUP_BUCKETS
_SUMS = ("count", "latency_count", "latency_sum", "first_token_count", "prompt_tokens",
         "completion_tokens", "cost")  # fmt: skip
_BUCKET_COLUMNS = tuple(f"{h}_b{i}" for h in HISTOGRAMS for i in range(BUCKETS))
# The series of the dashboard's charts needs these per hour.
SERIES_TYPES = (EventType.TOOL_CALLED, EventType.MODEL_CALLED)


def hour_floor(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def hour_ceil(moment: datetime) -> datetime:
    floor = hour_floor(moment)
    return floor if floor == moment else floor + HOUR


def bucket_index(value: float) -> int:
    for index, bound in enumerate(LATENCY_BOUNDS_MS):
        if value <= bound:
            return index
    return BUCKETS - 1


# --- Writing ------------------------------------------------------------------------------


def _bucket_filters(field: str, name: str) -> dict[str, Q]:
    filters: dict[str, Q] = {}
    lower: float | None = None
    for index, bound in enumerate(LATENCY_BOUNDS_MS):
        condition = Q(**{f"{field}__lte": bound})
        if lower is not None:
            condition &= Q(**{f"{field}__gt": lower})
        filters[f"{name}_b{index}"] = condition
        lower = bound
    filters[f"{name}_b{BUCKETS - 1}"] = Q(**{f"{field}__gt": lower})
    return filters


def _hourly(events: QuerySet[Event]) -> list[dict[str, Any]]:
    """One row per (hour, dimensions): the columns of an :class:`EventRollup`."""
    buckets = {
        **{n: Count("id", filter=c) for n, c in _bucket_filters("latency_ms", "latency").items()},
        **{n: Count("id", filter=c) for n, c in _bucket_filters("first", "first_token").items()},
    }
    rows = (
        events.order_by()
        .annotate(
            hour=TruncHour("occurred_at", tzinfo=UTC),
            first=Cast(KT("data__first_token_ms"), FloatField()),
        )
        .values("hour", *DIMENSIONS)
        .annotate(
            count=Count("id"),
            latency_count=Count("latency_ms"),
            latency_sum=Sum("latency_ms", default=0.0),
            latency_max=Max("latency_ms"),
            first_token_count=Count("first"),
            first_token_max=Max("first"),
            prompt_tokens=Sum("prompt_tokens", default=0),
            completion_tokens=Sum("completion_tokens", default=0),
            cost=Sum("cost", default=Decimal(0)),
            **buckets,
        )
    )
    return list(rows)


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
    rows = _hourly(events)
    with transaction.atomic():
        stale = EventRollup.objects.filter(hour__lt=through)
        if start is not None:
            stale = stale.filter(hour__gte=start)
        stale.delete()
        EventRollup.objects.bulk_create([EventRollup(**row) for row in rows], batch_size=500)
        RollupCursor.objects.update_or_create(pk=1, defaults={"through": through})
    logger.info("analytics_rollups_refreshed", rows=len(rows), through=through.isoformat())
    return len(rows)


# --- Reading ------------------------------------------------------------------------------


def _empty(key: tuple[Any, ...]) -> dict[str, Any]:
    row: dict[str, Any] = dict(zip(DIMENSIONS, key, strict=True))
    row.update({name: 0 for name in _SUMS})
    row.update(latency_sum=0.0, cost=Decimal(0), latency_max=None, first_token_max=None)
    row.update(latency_buckets=[0] * BUCKETS, first_token_buckets=[0] * BUCKETS)
    return row


def _rollup_sql(*, by_hour: bool, types: tuple[str, ...] = ()) -> str:
    table = connection.ops.quote_name(EventRollup._meta.db_table)
    keys = ["hour", *DIMENSIONS] if by_hour else list(DIMENSIONS)
    columns = [connection.ops.quote_name(k) for k in keys]
    sums = [f"SUM({connection.ops.quote_name(c)})" for c in (*_SUMS, *_BUCKET_COLUMNS)]
    maxes = ["MAX(latency_max)", "MAX(first_token_max)"]
    where = "hour >= %s AND hour < %s"
    if types:
        where += " AND type IN (" + ", ".join(["%s"] * len(types)) + ")"
    return (
        f"SELECT {', '.join(columns + sums + maxes)} FROM {table} "  # noqa: S608
        f"WHERE {where} GROUP BY {', '.join(columns)}"
    )


def _from_rollups(
    start: datetime, end: datetime, *, by_hour: bool, types: tuple[str, ...] = ()
) -> dict[tuple[Any, ...], dict[str, Any]]:
    adapt = connection.ops.adapt_datetimefield_value
    with connection.cursor() as cursor:
        cursor.execute(
            _rollup_sql(by_hour=by_hour, types=types), [adapt(start), adapt(end), *types]
        )
        fetched = cursor.fetchall()
    width = len(DIMENSIONS) + (1 if by_hour else 0)
    result: dict[tuple[Any, ...], dict[str, Any]] = {}
    for record in fetched:
        key = tuple(record[:width])
        values = record[width:]
        row = _empty(key[1:] if by_hour else key)
        if by_hour:
            hour = key[0]
            if isinstance(hour, str):  # SQLite returns text
                hour = datetime.fromisoformat(hour)
            row["hour"] = hour if hour.tzinfo else hour.replace(tzinfo=UTC)
        for index, name in enumerate(_SUMS):
            row[name] = values[index] or 0
        row["cost"] = Decimal(str(row["cost"] or 0))
        offset = len(_SUMS)
        row["latency_buckets"] = [int(v or 0) for v in values[offset : offset + BUCKETS]]
        row["first_token_buckets"] = [
            int(v or 0) for v in values[offset + BUCKETS : offset + 2 * BUCKETS]
        ]
        row["latency_max"], row["first_token_max"] = values[-2], values[-1]
        result[key] = row
    return result


def _add_raw(
    into: dict[tuple[Any, ...], dict[str, Any]], events: QuerySet[Event], *, by_hour: bool
) -> None:
    """Fold raw events (a few hours at most) into the rows, as the rollups would have."""
    fields = (*DIMENSIONS, "occurred_at", "latency_ms", "prompt_tokens", "completion_tokens",
              "cost", "first")  # fmt: skip
    records = (
        events.order_by()
        .annotate(first=Cast(KT("data__first_token_ms"), FloatField()))
        .values_list(*fields)
    )
    width = len(DIMENSIONS)
    for record in records:
        dims = tuple(record[:width])
        occurred, latency, prompt, completion, cost, first = record[width:]
        key = (hour_floor(occurred), *dims) if by_hour else dims
        row = into.get(key)
        if row is None:
            row = into[key] = _empty(dims)
            if by_hour:
                row["hour"] = key[0]
        row["count"] += 1
        row["prompt_tokens"] += prompt
        row["completion_tokens"] += completion
        row["cost"] += Decimal(cost)
        for name, value in (("latency", latency), ("first_token", first)):
            if value is None:
                continue
            row[f"{name}_count"] += 1
            row[f"{name}_buckets"][bucket_index(value)] += 1
            top = row[f"{name}_max"]
            row[f"{name}_max"] = value if top is None else max(top, value)
            if name == "latency":
                row["latency_sum"] += value


def event_rows(
    *, start: datetime, end: datetime, by_hour: bool = False, types: tuple[str, ...] = ()
) -> list[dict[str, Any]]:
    """Aggregates of the events in ``[start, end)`` per dimensions (and per hour with
    ``by_hour``), optionally of some ``types`` only: whole hours the rollups cover come from
    them, the rest from the events themselves."""
    through = RollupCursor.objects.values_list("through", flat=True).first()
    full_start = hour_ceil(start)
    full_end = min(hour_floor(end), through) if through else full_start
    events = Event.objects.all()
    if types:
        events = events.filter(type__in=types)
    if full_end <= full_start:
        rows: dict[tuple[Any, ...], dict[str, Any]] = {}
        _add_raw(rows, events.filter(occurred_at__gte=start, occurred_at__lt=end), by_hour=by_hour)
        return list(rows.values())
    rows = _from_rollups(full_start, full_end, by_hour=by_hour, types=types)
    if start < full_start:
        edge = events.filter(occurred_at__gte=start, occurred_at__lt=full_start)
        _add_raw(rows, edge, by_hour=by_hour)
    if full_end < end:
        edge = events.filter(occurred_at__gte=full_end, occurred_at__lt=end)
        _add_raw(rows, edge, by_hour=by_hour)
    return list(rows.values())


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
        for index, count in enumerate(row[f"{field}_buckets"]):
            merged[index] += count
        top = row[f"{field}_max"]
        if top is not None and (largest is None or top > largest):
            largest = top
    return merged, largest


def series_rows(*, start: datetime, end: datetime) -> list[dict[str, Any]]:
    """Per hour, the tool calls and model costs the charts draw (``SERIES_TYPES``) by type and
    outcome: counts and cost only, so the chart's query stays small whatever the range."""
    through = RollupCursor.objects.values_list("through", flat=True).first()
    full_start = hour_ceil(start)
    full_end = min(hour_floor(end), through) if through else full_start
    rows: dict[tuple[Any, ...], dict[str, Any]] = {}

    def add(hour: datetime, type: str, outcome: str, count: int, cost: Any) -> None:
        row = rows.setdefault(
            (hour, type, outcome),
            {"hour": hour, "type": type, "outcome": outcome, "count": 0, "cost": Decimal(0)},
        )
        row["count"] += count
        row["cost"] += Decimal(str(cost or 0))

    edges = [(start, end)]
    if full_start < full_end:
        edges = [(start, full_start), (full_end, end)]
        table = connection.ops.quote_name(EventRollup._meta.db_table)
        adapt = connection.ops.adapt_datetimefield_value
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT hour, type, outcome, SUM(count), SUM(cost) "  # noqa: S608
                f"FROM {table} WHERE hour >= %s AND hour < %s AND type IN (%s, %s) "
                "GROUP BY hour, type, outcome",
                [adapt(full_start), adapt(full_end), *SERIES_TYPES],
            )
            for hour, type, outcome, count, cost in cursor.fetchall():
                if isinstance(hour, str):  # SQLite returns text
                    hour = datetime.fromisoformat(hour)
                add(hour if hour.tzinfo else hour.replace(tzinfo=UTC), type, outcome, count, cost)
    for begin, finish in edges:
        if begin >= finish:
            continue
        raw = Event.objects.filter(
            type__in=SERIES_TYPES, occurred_at__gte=begin, occurred_at__lt=finish
        ).order_by()
        for occurred, type, outcome, cost in raw.values_list(
            "occurred_at", "type", "outcome", "cost"
        ):
            add(hour_floor(occurred), type, outcome, 1, cost)
    return list(rows.values())
