"""Imports by URL go through the SSRF guard: the demo allow-list lets a local server through,
anything else private is refused before a connection is made."""

from __future__ import annotations

from typing import Any

import pytest

from openapi_import.models import ApiSpec, ImportJob
from openapi_import.services import import_job_create
from tests.openapi_import.specs import as_json, shop_spec
from tests.support.http_server import Route, local_server

pytestmark = pytest.mark.django_db


def _run(django_capture_on_commit_callbacks: Any, url: str) -> ImportJob:
    with django_capture_on_commit_callbacks(execute=True):
        job = import_job_create(source="url", url=url)
    job.refresh_from_db()
    return job


def test_allow_listed_local_server_is_fetched(
    settings: Any, django_capture_on_commit_callbacks: Any
) -> None:
    routes = {
        "/openapi.json": Route(
            body=as_json(shop_spec()), headers={"Content-Type": "application/json"}
        )
    }
    with local_server(routes) as server:
        settings.OUTBOUND_ALLOWED_HOSTS = [server.netloc]
        job = _run(django_capture_on_commit_callbacks, server.url("/openapi.json"))
    assert job.status == "done", job.error_message
    assert "fetch" in job.report["timings_ms"]
    spec = ApiSpec.objects.get()
    # The spec's relative server URL is resolved against where it was fetched.
    assert spec.base_url == server.url("/api")
    assert spec.source_url == server.url("/openapi.json")


def test_private_address_is_refused_without_connecting(
    settings: Any, django_capture_on_commit_callbacks: Any
) -> None:
    with local_server({"/openapi.json": Route(body=as_json(shop_spec()))}) as server:
        settings.OUTBOUND_ALLOWED_HOSTS = []
        job = _run(django_capture_on_commit_callbacks, server.url("/openapi.json"))
        assert server.requests == []
    assert job.status == "failed" and job.error_code == "fetch_blocked"
    assert "127.0.0.1" in job.error_message
    assert not ApiSpec.objects.exists()


@pytest.mark.parametrize(
    "url",
    [
        "http://169.254.169.254/latest/meta-data/",
        "http://2130706433:8000/openapi.json",
        "http://127.1/openapi.json",
        "http://[::ffff:10.0.0.1]/openapi.json",
    ],
)
def test_internal_urls_fail_the_job(
    settings: Any, django_capture_on_commit_callbacks: Any, url: str
) -> None:
    settings.OUTBOUND_ALLOWED_HOSTS = []
    job = _run(django_capture_on_commit_callbacks, url)
    assert job.status == "failed" and job.error_code == "fetch_blocked"


def test_redirect_to_metadata_is_refused(
    settings: Any, django_capture_on_commit_callbacks: Any
) -> None:
    routes = {
        "/spec": Route(status=302, headers={"Location": "http://169.254.169.254/latest/meta-data/"})
    }
    with local_server(routes) as server:
        settings.OUTBOUND_ALLOWED_HOSTS = [server.netloc]
        job = _run(django_capture_on_commit_callbacks, server.url("/spec"))
    assert job.status == "failed" and job.error_code == "fetch_blocked"
    assert "169.254.169.254" in job.error_message


def test_upstream_error_status_fails_clearly(
    settings: Any, django_capture_on_commit_callbacks: Any
) -> None:
    with local_server({}) as server:
        settings.OUTBOUND_ALLOWED_HOSTS = [server.netloc]
        job = _run(django_capture_on_commit_callbacks, server.url("/missing.json"))
    assert job.status == "failed" and job.error_code == "fetch_failed"
    assert "404" in job.error_message


def test_oversized_download_is_cut(settings: Any, django_capture_on_commit_callbacks: Any) -> None:
    with local_server({"/big.json": Route(body=b"{" + b" " * 5000 + b"}")}) as server:
        settings.OUTBOUND_ALLOWED_HOSTS = [server.netloc]
        settings.IMPORT_MAX_BYTES = 1000
        job = _run(django_capture_on_commit_callbacks, server.url("/big.json"))
    assert job.status == "failed" and job.error_code == "fetch_failed"
