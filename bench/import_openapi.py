#!/usr/bin/env python
"""Benchmark: import the GitHub spec (771 operations) end to end — parse, classify, store — and
the same spec doubled, against ``json.loads`` of the same bytes measured in the same run.

Targets (SPEC §14): ≤ 10 s for the GitHub spec; doubling the operations costs ≤ 2.2 × the time.
Runs on a throw-away test database (PostgreSQL when DATABASE_URL is set, as the target asks):

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/test .venv/bin/python bench/import_openapi.py
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import platform
import statistics
import sys
import time
import tracemalloc
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.test")

import django  # noqa: E402

django.setup()

from django.db import connection  # noqa: E402

SPEC = ROOT / "tests" / "fixtures" / "openapi_corpus" / "github-api.github.com.json"


def doubled(raw: bytes) -> bytes:
    """The spec with every path present twice (under a /copy prefix, operationIds suffixed)."""
    doc = json.loads(raw)
    extra: dict[str, Any] = {}
    for path, item in doc["paths"].items():
        clone = copy.deepcopy(item)
        for operation in clone.values():
            if isinstance(operation, dict) and "operationId" in operation:
                operation["operationId"] += "-copy"
        extra["/copy" + path] = clone
    doc["paths"].update(extra)
    return json.dumps(doc).encode()


STAGES: dict[int, list[dict[str, int]]] = {}


def import_once(raw: bytes) -> tuple[float, int]:
    from openapi_import.models import ApiSpec, ImportJob
    from openapi_import.services import import_job_run

    ApiSpec.objects.all().delete()
    job = ImportJob.objects.create(source="upload", payload=raw, source_name="bench.json")
    started = time.perf_counter()
    job = import_job_run(job_id=job.pk)
    elapsed = time.perf_counter() - started
    if job.status != "done":
        raise SystemExit(f"import failed: {job.error_code} {job.error_message}")
    STAGES.setdefault(job.report["operations"], []).append(job.report["timings_ms"])
    return elapsed, job.report["operations"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="runs per measurement (median)")
    args = parser.parse_args()

    raw = SPEC.read_bytes()
    raw2 = doubled(raw)
    old_name = connection.settings_dict["NAME"]
    # Its own database, so a test run on the same server is never clobbered.
    connection.settings_dict.setdefault("TEST", {})["NAME"] = "actiondesk_bench_import"
    connection.creation.create_test_db(verbosity=0, autoclobber=True, keepdb=False)
    try:
        loads = statistics.median(
            _timed(lambda: json.loads(raw)) for _ in range(max(args.repeat, 3))
        )
        single = [import_once(raw) for _ in range(args.repeat)]
        double = [import_once(raw2) for _ in range(args.repeat)]
        tracemalloc.start()
        import_once(raw)
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    finally:
        connection.creation.destroy_test_db(old_name, verbosity=0)

    t1 = statistics.median(t for t, _ in single)
    t2 = statistics.median(t for t, _ in double)
    ops1, ops2 = single[0][1], double[0][1]
    print(f"machine: {platform.node()} {platform.machine()} {os.cpu_count()} cores, "
          f"Python {platform.python_version()}, database {connection.vendor}")  # fmt: skip
    print(f"spec: {SPEC.name}, {len(raw):,} bytes, {ops1} operations")
    print(f"json.loads reference:     {loads * 1000:8.1f} ms")
    print(f"import (parse+classify+store): {t1 * 1000:8.1f} ms  = {t1 / loads:6.1f} x json.loads"
          f"   target <= 10000 ms: {'met' if t1 <= 10 else 'MISSED'}")  # fmt: skip
    print(f"doubled spec ({ops2} ops):     {t2 * 1000:8.1f} ms  = {t2 / t1:5.2f} x single"
          f"   target <= 2.2 x: {'met' if t2 / t1 <= 2.2 else 'MISSED'}")  # fmt: skip
    print(f"peak traced memory during one import: {peak / 1e6:.1f} MB")
    for ops, runs in sorted(STAGES.items()):
        stages = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
        print(f"  stages at {ops} operations (median ms): {stages}")


def _timed(fn: Any) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


if __name__ == "__main__":
    main()
