"""Import jobs end to end: create → run → stored operations, diffs on re-import, failures."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.db import connection

from config.errors import ApplicationError
from openapi_import.models import ApiSpec, ImportJob, Operation
from openapi_import.selectors import operations_available_as_tools
from openapi_import.services import (
    import_job_create,
    import_job_run,
    operation_update,
    operations_bulk_update,
)
from tests.openapi_import.specs import as_json, as_yaml, shop_spec

pytestmark = pytest.mark.django_db

Run = Callable[..., ImportJob]


@pytest.fixture
def run_import(django_capture_on_commit_callbacks: Any) -> Run:
    """Create a job and let it run as the immediate backend does after the commit."""

    def run(**kwargs: Any) -> ImportJob:
        with django_capture_on_commit_callbacks(execute=True):
            job = import_job_create(**kwargs)
        job.refresh_from_db()
        return job

    return run


def test_text_import_stores_classified_operations(run_import: Run) -> None:
    job = run_import(source="text", content=as_yaml(shop_spec()))
    assert job.status == "done", job.error_message
    assert job.progress == 100 and job.started_at and job.finished_at
    assert job.duration_ms is not None and job.duration_ms >= 0
    assert job.payload == b""
    spec = job.spec
    assert spec is not None and spec.title == "Test Shop"
    ops = {op.operation_id: op for op in spec.operations.all()}
    assert set(ops) == {"getOrder", "cancelOrder", "createRefund"}
    assert (ops["getOrder"].access_type, ops["getOrder"].approval) == ("read", "none")
    assert ops["cancelOrder"].access_type == "destructive"
    assert ops["cancelOrder"].approval in ("user", "staff")
    assert ops["createRefund"].approval == "staff"
    assert all(op.reasons for op in ops.values())
    assert ops["getOrder"].parameters_schema["properties"]["number"]["type"] == "integer"
    assert job.report["operations"] == 3
    assert job.report["diff"]["added"] == ["getOrder", "cancelOrder", "createRefund"]
    assert set(job.report["timings_ms"]) == {"parse", "classify", "store"}


def test_new_operations_are_not_tools_until_reviewed_and_enabled(
    run_import: Run, supervisor: User
) -> None:
    job = run_import(source="text", content=as_json(shop_spec()))
    operations = Operation.objects.filter(spec=job.spec)
    assert not operations_available_as_tools().exists()
    operations_bulk_update(operations=operations, action="enable", user=supervisor)
    assert not operations_available_as_tools().exists()
    operations_bulk_update(
        operations=operations.filter(operation_id="getOrder"), action="review", user=supervisor
    )
    assert [op.operation_id for op in operations_available_as_tools()] == ["getOrder"]


def test_reimport_reports_diff_and_keeps_staff_overrides(run_import: Run, supervisor: User) -> None:
    first = run_import(source="text", content=as_json(shop_spec()))
    spec = first.spec
    assert spec is not None
    get_order = spec.operations.get(operation_id="getOrder")
    operation_update(operation=get_order, user=supervisor, approval="user", agent_group="vip")
    operations_bulk_update(operations=spec.operations.all(), action="review", user=supervisor)
    operations_bulk_update(operations=spec.operations.all(), action="enable", user=supervisor)

    new_path = {
        "/discounts/{code}": {
            "get": {
                "operationId": "getDiscount",
                "summary": "Look up a discount code",
                "parameters": [
                    {"name": "code", "in": "path", "required": True, "schema": {"type": "string"}}
                ],
                "responses": {"200": {"description": "ok"}},
            }
        }
    }
    second = run_import(
        source="text",
        content=as_json(
            shop_spec(
                version="2.0",
                extra_paths=new_path,
                drop=("/orders/{number}/refunds",),
                order_summary="Get one order with its items",
            )
        ),
        target_spec=spec,
    )
    assert second.status == "done", second.error_message
    assert second.spec == spec
    assert second.report["diff"] == {
        "added": ["getDiscount"],
        "changed": ["getOrder"],
        "removed": ["createRefund"],
        "unchanged": 1,
    }
    spec.refresh_from_db()
    assert spec.version == "2.0"
    get_order.refresh_from_db()
    # Staff's edits survive; the changed definition needs a new review before it is a tool.
    assert (get_order.approval, get_order.agent_group) == ("user", "vip")
    assert get_order.summary == "Get one order with its items"
    assert get_order.review_state == "changed" and not get_order.is_tool
    refund = spec.operations.get(operation_id="createRefund")
    assert refund.removed_at is not None and not refund.is_tool
    cancel = spec.operations.get(operation_id="cancelOrder")
    assert cancel.is_tool  # unchanged and still reviewed
    tools = {op.operation_id for op in operations_available_as_tools()}
    assert tools == {"cancelOrder"}


def test_reimport_into_an_explicit_spec(run_import: Run) -> None:
    first = run_import(source="text", content=as_json(shop_spec()))
    renamed = shop_spec()
    renamed["info"]["title"] = "Renamed Shop"
    second = run_import(source="text", content=as_json(renamed), target_spec=first.spec)
    assert second.spec == first.spec
    assert ApiSpec.objects.count() == 1


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        (b"{not json", "JSON"),
        (b"openapi: 3.0.0\ninfo: [unclosed", "YAML"),
        (b'{"hello": "world"}', "OpenAPI"),
        (b"a: &a [1]\nb: *a\n", "alias"),
    ],
)
def test_malformed_input_fails_the_job_and_stores_nothing(
    run_import: Run, content: bytes, fragment: str
) -> None:
    job = run_import(source="upload", content=content, filename="bad.yaml")
    assert job.status == "failed"
    assert job.error_code == "spec_invalid"
    assert fragment.lower() in job.error_message.lower()
    assert job.finished_at is not None
    assert not ApiSpec.objects.exists() and not Operation.objects.exists()


def test_a_failure_while_storing_leaves_nothing_half_imported(
    run_import: Run, monkeypatch: pytest.MonkeyPatch
) -> None:
    from openapi_import import services

    def explode(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("disk full")

    monkeypatch.setattr(services, "_report", explode)
    job = run_import(source="text", content=as_json(shop_spec()))
    assert job.status == "failed" and job.error_code == "internal_error"
    assert "disk full" not in job.error_message
    assert not ApiSpec.objects.exists() and not Operation.objects.exists()


@pytest.mark.parametrize(
    ("kwargs", "code"),
    [
        ({"source": "url", "url": "ftp://example.com/spec.json"}, "validation_error"),
        ({"source": "url", "url": "not a url"}, "validation_error"),
        ({"source": "text", "content": b"   \n"}, "validation_error"),
        ({"source": "carrier-pigeon"}, "validation_error"),
    ],
)
def test_bad_requests_are_refused_before_a_job_exists(kwargs: dict[str, Any], code: str) -> None:
    with pytest.raises(ApplicationError) as caught:
        import_job_create(**kwargs)
    assert caught.value.code == code
    assert not ImportJob.objects.exists()


def test_oversized_document_is_refused(settings: Any) -> None:
    settings.IMPORT_MAX_BYTES = 100
    with pytest.raises(ApplicationError) as caught:
        import_job_create(source="text", content=b"x" * 101)
    assert caught.value.code == "payload_too_large"


def test_running_a_job_twice_does_the_work_once(run_import: Run) -> None:
    job = run_import(source="text", content=as_json(shop_spec()))
    again = import_job_run(job_id=job.pk)
    assert again.status == "done"
    assert Operation.objects.count() == 3


def test_staff_edit_rules(run_import: Run, supervisor: User) -> None:
    job = run_import(source="text", content=as_json(shop_spec()))
    assert job.spec is not None
    cancel = job.spec.operations.get(operation_id="cancelOrder")
    with pytest.raises(ApplicationError, match="needs customer or staff approval"):
        operation_update(operation=cancel, user=supervisor, approval="none")
    with pytest.raises(ApplicationError, match="Not editable"):
        operation_update(operation=cancel, user=supervisor, path="/elsewhere")
    operation_update(operation=cancel, user=supervisor, access_type="read", approval="none")
    cancel.refresh_from_db()
    assert cancel.overridden_fields == ["access_type", "approval"]


def test_import_queries_do_not_grow_per_operation(
    run_import: Run, django_assert_max_num_queries: Any
) -> None:
    many = {
        f"/things/{i}": {
            "get": {"operationId": f"getThing{i}", "responses": {"200": {"description": "ok"}}}
        }
        for i in range(200)
    }
    with django_assert_max_num_queries(40):
        job = run_import(source="text", content=as_json(shop_spec(extra_paths=many)))
    assert job.status == "done" and job.report["operations"] == 203
    assert connection.vendor in ("sqlite", "postgresql")


def test_same_title_without_an_explicit_spec_creates_a_new_spec(run_import: Run) -> None:
    """Two different documents both titled "Test Shop" never merge (issue 13 item 11)."""
    first = run_import(source="text", content=as_json(shop_spec()))
    other = shop_spec(drop=("/orders/{number}/refunds", "/orders/{number}/cancel"))
    second = run_import(source="text", content=as_json(other))
    assert second.status == "done", second.error_message
    assert second.spec != first.spec
    assert ApiSpec.objects.filter(title="Test Shop").count() == 2
    # Nothing of the first spec was retired as "removed" by the unrelated second file.
    assert second.report["diff"]["removed"] == []
    assert not Operation.objects.filter(spec=first.spec, removed_at__isnull=False).exists()


def test_reimport_keeps_overrides_of_an_operation_whose_id_was_renamed(
    run_import: Run, supervisor: User
) -> None:
    """Same method and path under a new operationId is the same operation (issue 13 item 11)."""
    first = run_import(source="text", content=as_json(shop_spec()))
    spec = first.spec
    assert spec is not None
    cancel = spec.operations.get(operation_id="cancelOrder")
    operation_update(operation=cancel, user=supervisor, approval="staff", agent_group="vip")
    operations_bulk_update(operations=spec.operations.all(), action="review", user=supervisor)
    operations_bulk_update(operations=spec.operations.all(), action="enable", user=supervisor)

    renamed = shop_spec()
    renamed["paths"]["/orders/{number}/cancel"]["post"]["operationId"] = "orderCancel"
    second = run_import(source="text", content=as_json(renamed), target_spec=spec)
    assert second.status == "done", second.error_message
    assert second.report["diff"]["added"] == []
    assert second.report["diff"]["removed"] == []
    assert second.report["diff"]["changed"] == ["orderCancel"]
    cancel.refresh_from_db()
    assert cancel.operation_id == "orderCancel"
    assert (cancel.approval, cancel.agent_group, cancel.enabled) == ("staff", "vip", True)
    assert cancel.removed_at is None and cancel.review_state == "changed"
    assert spec.operations.count() == 3


def test_nul_in_a_spec_fails_as_invalid_and_the_failed_job_keeps_no_payload(
    run_import: Run,
) -> None:
    """Not internal_error with a traceback; the raw upload is dropped (issue 13 item 16)."""
    content = as_json(shop_spec()).replace(b'"Get an order"', b'"Get\\u0000 an order"')
    job = run_import(source="upload", content=content, filename="nul.json")
    assert job.status == "failed"
    assert job.error_code == "spec_invalid", job.error_message
    assert "NUL character" in job.error_message
    assert bytes(job.payload) == b""
    assert not ApiSpec.objects.exists()
