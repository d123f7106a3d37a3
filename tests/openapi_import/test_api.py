"""/api/v1 imports and classification review, in the envelope."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import User
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from access.services import api_key_issue
from openapi_import.models import Operation
from tests.openapi_import.specs import as_json, as_yaml, shop_spec

pytestmark = pytest.mark.django_db


def _start(api: Client, capture: Any, **body: Any) -> Any:
    with capture(execute=True):
        return api.post("/api/v1/imports", body, content_type="application/json")


def test_import_by_text_then_poll(api: Client, django_capture_on_commit_callbacks: Any) -> None:
    response = _start(api, django_capture_on_commit_callbacks, text=as_yaml(shop_spec()).decode())
    assert response.status_code == 202
    job = response.json()["data"]
    assert job["status"] == "pending"
    polled = api.get(f"/api/v1/imports/{job['id']}").json()["data"]
    assert polled["status"] == "done" and polled["progress"] == 100
    assert polled["report"]["operations"] == 3
    listed = api.get("/api/v1/imports").json()["data"]
    assert listed["count"] == 1 and listed["items"][0]["id"] == job["id"]


def test_import_by_upload(api: Client, django_capture_on_commit_callbacks: Any) -> None:
    upload = SimpleUploadedFile("shop.json", as_json(shop_spec()), "application/json")
    with django_capture_on_commit_callbacks(execute=True):
        response = api.post("/api/v1/imports/upload", {"file": upload})
    assert response.status_code == 202
    job = api.get(f"/api/v1/imports/{response.json()['data']['id']}").json()["data"]
    assert job["status"] == "done" and job["source_name"] == "shop.json"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, ""),
        ({"url": "https://x.example/spec.json", "text": "openapi: 3.0.0"}, ""),
        ({"url": 42}, "url"),
    ],
)
def test_bad_import_requests_are_422(api: Client, body: dict[str, Any], field: str) -> None:
    response = api.post("/api/v1/imports", body, content_type="application/json")
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "validation_error"
    assert any(field in f["field"] for f in error["details"]["fields"])


def test_ftp_url_is_refused(api: Client) -> None:
    response = api.post(
        "/api/v1/imports", {"url": "ftp://x.example/spec"}, content_type="application/json"
    )
    assert response.status_code == 422
    assert "http" in response.json()["error"]["message"]


def test_failed_job_reports_its_error(api: Client, django_capture_on_commit_callbacks: Any) -> None:
    response = _start(api, django_capture_on_commit_callbacks, text='{"swagger": "1.2"}')
    job = api.get(f"/api/v1/imports/{response.json()['data']['id']}").json()["data"]
    assert job["status"] == "failed" and job["error_code"] == "spec_invalid"
    assert job["error_message"]


def test_unknown_job_is_404(api: Client) -> None:
    response = api.get("/api/v1/imports/999999")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


def test_review_operations_through_the_api(
    api: Client, django_capture_on_commit_callbacks: Any
) -> None:
    _start(api, django_capture_on_commit_callbacks, text=as_json(shop_spec()).decode())
    spec_id = api.get("/api/v1/specs").json()["data"]["items"][0]["id"]
    listed = api.get(f"/api/v1/specs/{spec_id}/operations?access_type=read").json()["data"]
    assert [op["operation_id"] for op in listed["items"]] == ["getOrder"]
    op_id = listed["items"][0]["id"]

    patched = api.patch(
        f"/api/v1/operations/{op_id}", {"approval": "user"}, content_type="application/json"
    )
    assert patched.status_code == 200
    assert patched.json()["data"]["overridden_fields"] == ["approval"]

    bulk = api.post(
        "/api/v1/operations/bulk",
        {"ids": [op_id], "action": "review"},
        content_type="application/json",
    )
    assert bulk.json()["data"] == {"updated": 1}, bulk.json()
    api.post(
        "/api/v1/operations/bulk",
        {"ids": [op_id], "action": "enable"},
        content_type="application/json",
    )
    assert Operation.objects.get(pk=op_id).is_tool


def test_patch_refuses_unsafe_classification(
    api: Client, django_capture_on_commit_callbacks: Any
) -> None:
    _start(api, django_capture_on_commit_callbacks, text=as_json(shop_spec()).decode())
    cancel = Operation.objects.get(operation_id="cancelOrder")
    response = api.patch(
        f"/api/v1/operations/{cancel.pk}", {"approval": "none"}, content_type="application/json"
    )
    assert response.status_code == 422
    bad = api.patch(
        f"/api/v1/operations/{cancel.pk}", {"approval": "boss"}, content_type="application/json"
    )
    assert bad.status_code == 422
    assert bad.json()["error"]["details"]["fields"][0]["field"] == "body.payload.approval"


def test_key_without_imports_scope_is_403(client: Client, supervisor: User) -> None:
    issued = api_key_issue(owner=supervisor, name="chat only", scopes=["chat"])
    response = client.get(
        "/api/v1/imports", headers={"Authorization": f"Bearer {issued.plaintext}"}
    )
    assert response.status_code == 403
    assert "imports" in response.json()["error"]["message"]


def test_viewer_may_read_but_not_import(client: Client, viewer: User) -> None:
    issued = api_key_issue(owner=viewer, name="viewer", scopes=["imports"])
    headers = {"Authorization": f"Bearer {issued.plaintext}"}
    assert client.get("/api/v1/imports", headers=headers).status_code == 200
    response = client.post(
        "/api/v1/imports",
        {"text": "openapi: 3.0.0"},
        content_type="application/json",
        headers=headers,
    )
    assert response.status_code == 403


def test_anonymous_is_401(client: Client) -> None:
    assert client.get("/api/v1/imports").status_code == 401


def test_import_a_zip_upload(api: Client, django_capture_on_commit_callbacks: Any) -> None:
    """A .zip of a multi-file spec (issue 13 item 14)."""
    from pathlib import Path

    from openapi_import.parsing.bundle import directory_zip

    corpus = Path(__file__).resolve().parents[1] / "fixtures" / "openapi_corpus"
    content = directory_zip(corpus / "oai-v2.0-petstore-separate")
    upload = SimpleUploadedFile("petstore.zip", content, "application/zip")
    with django_capture_on_commit_callbacks(execute=True):
        response = api.post("/api/v1/imports/upload", {"file": upload})
    assert response.status_code == 202
    job = api.get(f"/api/v1/imports/{response.json()['data']['id']}").json()["data"]
    assert job["status"] == "done", job
    assert job["report"]["operations"] == 4 and job["report"]["unresolved_refs"] == []
