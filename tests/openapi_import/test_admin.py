"""The supervisor's path in the admin: import by upload, watch the job, review operations."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import User
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from openapi_import.models import ImportJob, Operation
from tests.openapi_import.specs import as_json, as_yaml, shop_spec

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff(client: Client, supervisor: User) -> Client:
    client.force_login(supervisor)
    return client


def _import(staff: Client, capture: Any, data: dict[str, Any]) -> Any:
    with capture(execute=True):
        return staff.post("/admin/openapi_import/importjob/add/", data)


def test_import_form_renders(staff: Client) -> None:
    page = staff.get("/admin/openapi_import/importjob/add/")
    assert page.status_code == 200
    assert b"Import an OpenAPI spec" in page.content and b'type="file"' in page.content


def test_upload_runs_and_shows_the_job(
    staff: Client, django_capture_on_commit_callbacks: Any
) -> None:
    upload = SimpleUploadedFile("shop.yaml", as_yaml(shop_spec()))
    response = _import(staff, django_capture_on_commit_callbacks, {"file": upload})
    job = ImportJob.objects.get()
    assert response.status_code == 302
    assert response["Location"] == f"/admin/openapi_import/importjob/{job.pk}/change/"
    page = staff.get(response["Location"])
    assert page.status_code == 200
    assert b"Done" in page.content and b"Review operations" in page.content
    assert b'http-equiv="refresh"' not in page.content


def test_pending_job_page_refreshes_itself(staff: Client, supervisor: User) -> None:
    job = ImportJob.objects.create(source="text", payload=b"x", created_by=supervisor)
    page = staff.get(f"/admin/openapi_import/importjob/{job.pk}/change/")
    assert b'http-equiv="refresh"' in page.content


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({}, b"exactly one"),
        ({"url": "https://x.example/a.json", "text": "openapi: 3.0.0"}, b"exactly one"),
        ({"url": "not a url"}, b"Enter a valid URL"),
    ],
)
def test_bad_form_input_is_shown_and_nothing_is_created(
    staff: Client, data: dict[str, Any], message: bytes
) -> None:
    page = staff.post("/admin/openapi_import/importjob/add/", data)
    assert page.status_code == 200 and message in page.content
    assert not ImportJob.objects.exists()


def test_review_operations_with_filters_inline_edits_and_actions(
    staff: Client, django_capture_on_commit_callbacks: Any
) -> None:
    _import(staff, django_capture_on_commit_callbacks, {"text": as_json(shop_spec()).decode()})
    listing = staff.get("/admin/openapi_import/operation/?access_type__exact=destructive")
    assert listing.status_code == 200
    assert b"cancelOrder" in listing.content and b"getOrder" not in listing.content

    ids = list(Operation.objects.values_list("pk", flat=True))
    staff.post(
        "/admin/openapi_import/operation/",
        {"action": "mark_reviewed", "_selected_action": ids},
    )
    staff.post("/admin/openapi_import/operation/", {"action": "enable", "_selected_action": ids})
    assert all(op.is_tool for op in Operation.objects.all())

    # Inline edit in the list: raise cancelOrder to staff approval.
    ops = list(Operation.objects.order_by("spec", "path", "method"))
    form: dict[str, Any] = {
        "form-TOTAL_FORMS": str(len(ops)),
        "form-INITIAL_FORMS": str(len(ops)),
        "_save": "Save",
    }
    for i, op in enumerate(ops):
        form[f"form-{i}-id"] = str(op.pk)
        form[f"form-{i}-access_type"] = op.access_type
        form[f"form-{i}-approval"] = "staff" if op.operation_id == "cancelOrder" else op.approval
        if op.enabled:
            form[f"form-{i}-enabled"] = "on"
    response = staff.post("/admin/openapi_import/operation/", form)
    assert response.status_code == 302
    cancel = Operation.objects.get(operation_id="cancelOrder")
    assert cancel.approval == "staff" and cancel.overridden_fields == ["approval"]

    detail = staff.get(f"/admin/openapi_import/operation/{cancel.pk}/change/")
    assert detail.status_code == 200
    assert cancel.reasons[0].encode() in detail.content.replace(b"&gt;", b">").replace(
        b"&#x27;", b"'"
    )


def test_viewer_cannot_import(client: Client, viewer: User) -> None:
    client.force_login(viewer)
    response = client.get("/admin/openapi_import/importjob/add/")
    assert response.status_code in (302, 403)


def test_admin_pages_use_no_inline_styles_the_csp_would_block(
    staff: Client, django_capture_on_commit_callbacks: Any
) -> None:
    _import(staff, django_capture_on_commit_callbacks, {"text": as_json(shop_spec()).decode()})
    job = ImportJob.objects.get()
    operation = Operation.objects.first()
    assert operation is not None
    for url in (
        f"/admin/openapi_import/importjob/{job.pk}/change/",
        f"/admin/openapi_import/operation/{operation.pk}/change/",
    ):
        page = staff.get(url).content.decode()
        assert 'class="ad-json"' in page and "actiondesk/admin.css" in page
        assert "<pre style=" not in page


def test_review_shows_credential_parameters_and_flags_private_servers(
    staff: Client, django_capture_on_commit_callbacks: Any
) -> None:
    """Credential parameters come from upstream credentials; private servers are flagged
    (issue 13 item 16)."""
    spec = shop_spec()
    spec["servers"] = [{"url": "http://10.0.0.1/api"}, {"url": "https://shop.example.com/api"}]
    spec["components"] = {
        "securitySchemes": {"shopKey": {"type": "apiKey", "in": "query", "name": "shop_key"}}
    }
    spec["paths"]["/orders/{number}"]["get"]["parameters"].append(
        {"name": "shop_key", "in": "query", "required": True, "schema": {"type": "string"}}
    )
    _import(staff, django_capture_on_commit_callbacks, {"text": as_json(spec).decode()})
    job = ImportJob.objects.get()
    assert job.status == "done", job.error_message
    assert job.report["private_servers"] == [
        {"url": "http://10.0.0.1/api", "reason": "10.0.0.1 is a private address"}
    ]
    get_order = Operation.objects.get(operation_id="getOrder")
    assert get_order.credential_parameters == ["shop_key"]
    assert "shop_key" not in get_order.customer_parameters

    detail = staff.get(f"/admin/openapi_import/operation/{get_order.pk}/change/")
    assert detail.status_code == 200
    assert b"<code>shop_key</code>: credential, from upstream credentials" in detail.content
    assert b"private server: 10.0.0.1 is a private address" in detail.content

    assert job.spec is not None
    spec_page = staff.get(f"/admin/openapi_import/apispec/{job.spec.pk}/change/")
    assert spec_page.status_code == 200
    assert b"http://10.0.0.1/api: 10.0.0.1 is a private address" in spec_page.content
    assert b"https://shop.example.com/api:" not in spec_page.content


def test_zip_upload_in_the_admin_form(
    staff: Client, django_capture_on_commit_callbacks: Any
) -> None:
    """Issue 13 item 14: a refused reference fails the job and names the reference."""
    import io
    import zipfile

    buffer = io.BytesIO()
    spec = shop_spec()
    spec["paths"]["/orders/{number}"]["get"]["parameters"].append({"$ref": "../up.yaml#/P"})
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("openapi.json", as_json(spec))
    upload = SimpleUploadedFile("shop.zip", buffer.getvalue(), "application/zip")
    _import(staff, django_capture_on_commit_callbacks, {"file": upload})
    job = ImportJob.objects.get()
    assert job.status == "failed" and job.error_code == "spec_invalid"
    assert "'../up.yaml#/P' in openapi.json (escapes the root of the .zip)" in job.error_message
    assert bytes(job.payload) == b""


def _change_form(op: Operation, rules: str) -> dict[str, Any]:
    import json

    return {
        "access_type": op.access_type,
        "approval": op.approval,
        "approval_rules": rules,
        "agent_group": op.agent_group,
        "customer_parameters": json.dumps(op.customer_parameters),
        "_save": "Save",
    }


def test_review_sets_an_approval_rule_and_shows_it(
    staff: Client, django_capture_on_commit_callbacks: Any
) -> None:
    """Approval that depends on an argument is set and shown in the review (issue 13 item 7)."""
    _import(staff, django_capture_on_commit_callbacks, {"text": as_json(shop_spec()).decode()})
    op = Operation.objects.get(operation_id="cancelOrder")
    url = f"/admin/openapi_import/operation/{op.pk}/change/"
    rule = (
        '[{"when": {"argument": "order_number", "op": ">=", "value": 5000}, "approver": "staff"}]'
    )
    response = staff.post(url, _change_form(op, rule))
    assert response.status_code == 302, response.content.decode()[:2000]
    op.refresh_from_db()
    assert op.approval_rules == [
        {"when": {"argument": "order_number", "op": ">=", "value": 5000}, "approver": "staff"}
    ]
    assert "approval_rules" in op.overridden_fields
    page = staff.get(url).content.decode()
    assert "order_number &gt;= 5000 → staff" in page
    assert "otherwise: Customer approves" in page


@pytest.mark.parametrize(
    ("rules", "message"),
    [
        ("{not json", "Enter a valid JSON"),
        ('{"when": {}}', "must be a list of rules"),
        ('[{"when": {"argument": "amount", "op": "~", "value": 1}, "approver": "staff"}]',
         "Rule 1: &quot;op&quot; must be one of"),
        ('[{"when": {"argument": "amount", "op": "&gt;", "value": "lots"}, "approver": "staff"}]',
         "compares numbers"),
        ('[{"when": {"argument": "amount", "op": "&gt;", "value": 5}, "approver": "boss"}]',
         "Rule 1: &quot;approver&quot; must be one of user, staff"),
    ],
)  # fmt: skip
def test_review_refuses_a_bad_approval_rule_and_keeps_the_old_one(
    staff: Client, django_capture_on_commit_callbacks: Any, rules: str, message: str
) -> None:
    import html

    _import(staff, django_capture_on_commit_callbacks, {"text": as_json(shop_spec()).decode()})
    op = Operation.objects.get(operation_id="cancelOrder")
    response = staff.post(
        f"/admin/openapi_import/operation/{op.pk}/change/", _change_form(op, html.unescape(rules))
    )
    assert response.status_code == 200  # the form again, with the error on the field
    assert message in response.content.decode()
    op.refresh_from_db()
    assert op.approval_rules == []
