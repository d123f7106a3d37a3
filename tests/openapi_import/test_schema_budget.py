"""Schema size is bounded: a diamond fan-out keeps shared components by reference (issue 13
item 15, SPEC §8 and §14: a 22 KB diamond fan-out imports in 2 s or less, bounded memory)."""

from __future__ import annotations

import json
import time
import tracemalloc
from collections.abc import Callable
from typing import Any

import pytest

from conversations.agent.extraction import fill_arguments
from conversations.agent.routing import rank_tools
from conversations.llm.types import ToolSpec
from conversations.tools import ToolArgumentError, validate_arguments
from openapi_import.models import ImportJob, Operation
from openapi_import.parsing import parse_spec
from openapi_import.services import import_job_create
from tests.openapi_import.fanout import fanout_bytes

pytestmark = pytest.mark.django_db

Run = Callable[..., ImportJob]


@pytest.fixture
def run_import(django_capture_on_commit_callbacks: Any) -> Run:
    def run(**kwargs: Any) -> ImportJob:
        with django_capture_on_commit_callbacks(execute=True):
            job = import_job_create(**kwargs)
        job.refresh_from_db()
        return job

    return run


def test_the_fixture_is_a_22_kb_diamond_fan_out() -> None:
    data = fanout_bytes()
    assert 20_000 <= len(data) <= 24_000
    # Inlined, one top schema would have 6**8 = 1.7 million leaves.


def test_fan_out_spec_imports_in_under_two_seconds(run_import: Run) -> None:
    """Before: 12 operations already took 3.6 s to parse, 428 KB of schema each, truncated."""
    started = time.perf_counter()
    job = run_import(source="upload", content=fanout_bytes(), filename="fanout.json")
    elapsed = time.perf_counter() - started
    assert job.status == "done", job.error_message
    assert job.report["operations"] == 24
    assert elapsed < 2.0, f"import took {elapsed:.2f} s"
    for operation in Operation.objects.filter(spec=job.spec):
        schema = operation.parameters_schema
        assert schema["properties"]["body"] == {"$ref": f"#/$defs/L0N{int(operation.path[7:]) % 6}"}
        # Every component at most once: 9 levels x 6 schemas.
        assert len(schema["$defs"]) <= 54
        assert len(json.dumps(schema)) < 20_000
        assert "truncated" not in json.dumps(schema)


def test_fan_out_parse_memory_is_bounded() -> None:
    """SECURITY-TESTS row 21 (node budget). Peak traced memory of parsing stays under 16 MB
    (measured: 2.4 MB). The bound: the schemas are 24 x ~11 KB (270 KB of JSON, a few MB as
    Python objects) plus the document; before the change the same parse peaked at 28 MB with
    only 12 operations and grew with each one (854 MB on the issue's spec). 16 MB leaves room
    for other Python builds and still fails if expansion is exponential again."""
    data = fanout_bytes()
    tracemalloc.start()
    try:
        spec = parse_spec(data)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(spec.operations) == 24
    assert peak < 16 * 1024 * 1024, f"peak {peak / 1e6:.1f} MB"


def test_defs_schema_validates_arguments_and_the_chat_helpers_walk_it(run_import: Run) -> None:
    job = run_import(source="upload", content=fanout_bytes(), filename="fanout.json")
    operation = Operation.objects.get(spec=job.spec, operation_id="createThing0")
    leaf = "x"
    level7 = {f"p{j}": leaf for j in range(1)}
    body: dict[str, Any] = level7
    for _ in range(7):
        body = {"p0": body}
    validate_arguments(operation, {"body": body})  # refs resolve inside the tool schema
    with pytest.raises(ToolArgumentError, match="'p0' is a required property"):
        validate_arguments(operation, {"body": {"p1": {}}})
    with pytest.raises(ToolArgumentError, match="too long"):
        bad: dict[str, Any] = {"p0": "y" * 30}
        for _ in range(7):
            bad = {"p0": bad}
        validate_arguments(operation, {"body": bad})

    tool = ToolSpec(
        name=operation.operation_id,
        description="Create thing 0",
        parameters=operation.parameters_schema,
    )
    assert rank_tools("please create thing 0", [tool])
    fill = fill_arguments(operation.parameters_schema, "create thing 0")
    assert isinstance(fill.arguments, dict)
