#!/usr/bin/env python
"""Benchmark: the 7-day analytics summary (what the dashboard and GET /api/v1/analytics
compute, previous period and series included) on 1,000,000 events over 90 days, against a
full-table ``count(*)`` of the events measured in the same run.

Target (issue 16): summary ≤ 0.5 × count(*) and ≤ 500 ms, on PostgreSQL. The summary reads the
hourly rollups (analytics.rollups) for whole hours and raw events for the edges; the rollups are
rebuilt once after generating (timed and printed too).

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/test .venv/bin/python bench/analytics.py
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.test")
os.environ.setdefault("PYTEST_XDIST_WORKER", "bench")

import django  # noqa: E402

django.setup()

from django.db import connection  # noqa: E402
from django.utils import timezone  # noqa: E402

# One row per weighted event kind: (type, agent, backend, operation, outcome, latency range).
KINDS = [
    ("message_received", "", "", "", "", None),
    ("message_received", "", "", "", "", None),
    ("message_sent", "Orders", "", "", "assistant", None),
    ("message_sent", "Returns", "", "", "assistant", None),
    ("agent_selected", "Orders", "", "", "", None),
    ("agent_selected", "Returns", "", "", "", None),
    ("model_called", "Orders", "openai", "", "ok", 2000),
    ("model_called", "Returns", "openai", "", "ok", 2000),
    ("model_called", "Help", "fallback", "", "timeout", 30000),
    ("tool_called", "", "", "getOrder", "succeeded", 400),
    ("tool_called", "", "", "listOrders", "succeeded", 400),
    ("tool_called", "", "", "cancelOrder", "succeeded", 600),
    ("tool_called", "", "", "createRefund", "http_error", 800),
    ("turn_completed", "", "", "", "completed", 5000),
    ("turn_completed", "", "", "", "completed", 5000),
    ("interrupt_created", "", "", "cancelOrder", "user", None),
    ("interrupt_approved", "", "", "cancelOrder", "customer", 60000),
    ("escalation_requested", "", "", "", "customer_button", None),
    ("escalation_claimed", "", "", "", "customer_button", 300000),
    ("state_changed", "", "", "", "ai_active", None),
]


def _array(index: int) -> str:
    values = [kind[index] for kind in KINDS]
    return "ARRAY[" + ",".join(f"'{v}'" for v in values) + "]"


def generate(*, events: int, conversations: int, days: int) -> None:
    from conversations.models import Conversation

    batch = 5000
    for start in range(0, conversations, batch):
        Conversation.objects.bulk_create(
            [Conversation(visitor_id="bench") for _ in range(min(batch, conversations - start))]
        )
    table = connection.ops.quote_name(Conversation._meta.db_table)
    with connection.cursor() as cursor:
        # Spread over the days, with outcomes in plausible shares.
        cursor.execute(
            f"UPDATE {table} SET created_at = now() - random() * interval '{days} days', "  # noqa: S608
            "turn_count = 1 + floor(random() * 4)::int"
        )
        cursor.execute(
            f"UPDATE {table} SET resolution = CASE WHEN random() < 0.35 THEN 'confirmed' "  # noqa: S608
            "WHEN random() < 0.5 THEN 'assumed' ELSE '' END, state = 'closed', "
            "closed_at = created_at + interval '40 minutes'"
        )
        cursor.execute(
            f"UPDATE {table} SET resolved_at = closed_at, resolved_turns = turn_count "  # noqa: S608
            "WHERE resolution <> ''"
        )
        cursor.execute(
            f"UPDATE {table} SET escalated_at = created_at + interval '5 minutes' "  # noqa: S608
            "WHERE random() < 0.15"
        )
        n = len(KINDS)
        latency = "ARRAY[" + ",".join(str(k[5] or "NULL") for k in KINDS) + "]::float[]"
        cursor.execute(
            "INSERT INTO analytics_event (type, occurred_at, conversation_id, agent, backend, "  # noqa: S608 (constants)
            "model, operation, outcome, latency_ms, prompt_tokens, completion_tokens, cost, data) "
            f"SELECT ({_array(0)})[k], now() - random() * interval '{days} days', NULL, "
            f"({_array(1)})[k], ({_array(2)})[k], CASE WHEN ({_array(2)})[k] <> '' THEN 'm' "
            f"ELSE '' END, ({_array(3)})[k], ({_array(4)})[k], random() * ({latency})[k], "
            "CASE WHEN k BETWEEN 7 AND 9 THEN 400 ELSE 0 END, "
            "CASE WHEN k BETWEEN 7 AND 9 THEN 80 ELSE 0 END, "
            "CASE WHEN k BETWEEN 7 AND 9 THEN 0.0012 ELSE 0 END, "
            f"CASE WHEN ({_array(0)})[k] = 'turn_completed' "
            f"THEN jsonb_build_object('first_token_ms', random() * 1500) ELSE '{{}}'::jsonb END "
            f"FROM (SELECT 1 + (i %% {n}) AS k FROM generate_series(1, %s) AS i) AS g",
            [events],
        )
        cursor.execute("ANALYZE analytics_event")
        cursor.execute(f"ANALYZE {table}")


def _median_ms(run: object, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        run()  # type: ignore[operator]
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--conversations", type=int, default=100_000)
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--repeat", type=int, default=7, help="runs per measurement (median)")
    parser.add_argument("--profile", action="store_true", help="print a profile of one summary")
    parser.add_argument(
        "--keepdb", action="store_true", help="keep the database, and reuse it when it has data"
    )
    args = parser.parse_args()
    if connection.vendor != "postgresql":
        print(
            "note: the target is for PostgreSQL (set DATABASE_URL); running on", connection.vendor
        )

    from analytics.ranges import range_parse
    from analytics.rollups import rollups_refresh
    from analytics.selectors import analytics_summary

    old_name = connection.settings_dict["NAME"]
    connection.settings_dict.setdefault("TEST", {})["NAME"] = "actiondesk_bench_analytics"
    connection.creation.create_test_db(verbosity=0, autoclobber=True, keepdb=args.keepdb)
    try:
        from analytics.models import Event, EventRollup

        generated = rebuilt = 0.0
        if Event.objects.exists():
            rows = EventRollup.objects.count()  # a kept database
        else:
            started = time.perf_counter()
            generate(events=args.events, conversations=args.conversations, days=args.days)
            generated = time.perf_counter() - started
            started = time.perf_counter()
            rows = rollups_refresh(rebuild=True)
            rebuilt = time.perf_counter() - started
        started = time.perf_counter()
        rollups_refresh()
        refreshed = time.perf_counter() - started

        # What autovacuum would have done by now: the generator's updates left dead rows.
        from conversations.models import Conversation

        for model in (Event, EventRollup, Conversation):
            with connection.cursor() as cursor:
                cursor.execute(f"VACUUM ANALYZE {connection.ops.quote_name(model._meta.db_table)}")

        def count() -> None:
            with connection.cursor() as cursor:
                cursor.execute("SELECT count(*) FROM analytics_event")
                cursor.fetchone()

        def summary() -> None:
            now = timezone.now()
            analytics_summary(report=range_parse(preset="7d", now=now), now=now)

        summary()  # warm: the first call imports and plans
        count()
        count_ms = _median_ms(count, args.repeat)
        summary_ms = _median_ms(summary, args.repeat)
        if args.profile:
            import cProfile
            import pstats

            profiler = cProfile.Profile()
            profiler.runcall(summary)
            pstats.Stats(profiler).sort_stats("cumulative").print_stats(25)
        with connection.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM analytics_event")
            total = cursor.fetchone()[0]
    finally:
        connection.creation.destroy_test_db(old_name, verbosity=0, keepdb=args.keepdb)

    ratio = summary_ms / count_ms
    print(
        f"machine: {platform.node()} {platform.machine()} {os.cpu_count()} cores, "
        f"Python {platform.python_version()}, database {connection.vendor}"
    )
    print(
        f"data: {total:,} events and {args.conversations:,} conversations over {args.days} days "
        f"(generated in {generated:.1f} s)"
    )
    print(
        f"rollups: rebuilt {rows:,} rows in {rebuilt:.1f} s; "
        f"a refresh (last hours) {refreshed * 1000:.0f} ms"
    )
    print(f"count(*) of the events:        {count_ms:8.1f} ms (median of {args.repeat})")
    print(
        f"7-day summary:                 {summary_ms:8.1f} ms = {ratio:.2f} x count(*)   "
        f"targets <= 0.5 x: {'met' if ratio <= 0.5 else 'MISSED'}, "
        f"<= 500 ms: {'met' if summary_ms <= 500 else 'MISSED'}"
    )


if __name__ == "__main__":
    main()
