"""Outbound fetches reach ports 80 and 443 only, unless an allow-list entry names ``host:port``
(SECURITY-TESTS row 14: "odd ports"; issue 12 item 4: an import reached ports 22 and 6379 of a
public host). Everything here is refused before any connection: the transport fails the test
if it is reached."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest

from safehttp import BlockedDestination, Policy, async_safe_request, safe_request

PUBLIC = "93.184.216.34"


def resolver(host: str, port: int) -> list[str]:
    return [PUBLIC]


def must_not_connect(request: httpx.Request) -> httpx.Response:
    raise AssertionError(f"connected to {request.url} although the port is not allowed")


def reached() -> tuple[list[httpx.Request], httpx.MockTransport]:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, text="ok")

    return seen, httpx.MockTransport(handler)


@pytest.mark.parametrize(
    "url",
    [
        "http://shop.example:22/openapi.json",
        "https://shop.example:6379/",
        f"http://{PUBLIC}:6379/",
        "http://shop.example:8080/",
        "https://shop.example:80443/",
    ],
)
def test_public_host_on_a_non_standard_port_is_refused_before_connecting(url: str) -> None:
    port = httpx.URL(url).port
    with pytest.raises(BlockedDestination, match=re.escape(f"port {port} is not allowed")):
        safe_request(
            "GET",
            url,
            policy=Policy(resolver=resolver),
            transport=httpx.MockTransport(must_not_connect),
        )


def test_the_refusal_says_how_to_allow_the_port() -> None:
    with pytest.raises(BlockedDestination) as caught:
        safe_request(
            "GET",
            "http://shop.example:6379/",
            policy=Policy(resolver=resolver),
            transport=httpx.MockTransport(must_not_connect),
        )
    assert str(caught.value) == (
        "fetch refused: port 6379 is not allowed (only 80 and 443, or an allowed-hosts entry "
        "shop.example:6379)"
    )


def test_ipv6_literal_gets_a_bracketed_entry_in_the_hint() -> None:
    with pytest.raises(BlockedDestination, match=re.escape("entry [2606:4700::1]:22)")):
        safe_request(
            "GET",
            "http://[2606:4700::1]:22/",
            policy=Policy(),
            transport=httpx.MockTransport(must_not_connect),
        )


@pytest.mark.parametrize("url", ["http://shop.example/", "https://shop.example:443/x"])
def test_standard_ports_need_no_entry(url: str) -> None:
    seen, transport = reached()
    response = safe_request("GET", url, policy=Policy(resolver=resolver), transport=transport)
    assert response.status_code == 200 and len(seen) == 1


def test_a_host_port_entry_opens_that_port_only() -> None:
    policy = Policy(allowed_hosts=frozenset({"shop.example:8443"}), resolver=resolver)
    seen, transport = reached()
    safe_request("GET", "https://shop.example:8443/", policy=policy, transport=transport)
    assert len(seen) == 1
    with pytest.raises(BlockedDestination, match="port 8444 is not allowed"):
        safe_request(
            "GET",
            "https://shop.example:8444/",
            policy=policy,
            transport=httpx.MockTransport(must_not_connect),
        )


def test_a_bare_host_entry_does_not_open_its_other_ports() -> None:
    policy = Policy(
        allowed_hosts=frozenset({"shop.example"}), require_allowlist=True, resolver=resolver
    )
    seen, transport = reached()
    safe_request("GET", "https://shop.example/", policy=policy, transport=transport)
    assert len(seen) == 1
    with pytest.raises(BlockedDestination, match="port 22 is not allowed"):
        safe_request(
            "GET",
            "http://shop.example:22/",
            policy=policy,
            transport=httpx.MockTransport(must_not_connect),
        )


def test_a_redirect_to_a_non_standard_port_is_refused() -> None:
    calls: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(str(request.url))
        if len(calls) > 1:
            raise AssertionError("followed a redirect to port 6379")
        return httpx.Response(302, headers={"Location": "http://shop.example:6379/"})

    with pytest.raises(
        BlockedDestination, match=re.escape("fetch refused after a redirect: port 6379")
    ):
        safe_request(
            "GET",
            "https://shop.example/spec",
            policy=Policy(resolver=resolver),
            transport=httpx.MockTransport(handler),
        )
    assert len(calls) == 1


async def test_async_fetch_applies_the_same_port_rule() -> None:
    async def handler(request: httpx.Request) -> httpx.Response:
        raise AssertionError("connected to a refused port")

    with pytest.raises(BlockedDestination, match="port 22 is not allowed"):
        await async_safe_request(
            "GET",
            "http://shop.example:22/",
            policy=Policy(resolver=resolver),
            transport=httpx.MockTransport(handler),
        )


# --- through the callers: spec imports and tool calls --------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("port", [22, 6379])
def test_import_from_a_public_host_on_port_22_or_6379_fails_clearly(
    settings: Any, django_capture_on_commit_callbacks: Any, port: int
) -> None:
    from openapi_import.services import import_job_create

    settings.OUTBOUND_ALLOWED_HOSTS = []
    with django_capture_on_commit_callbacks(execute=True):
        job = import_job_create(source="url", url=f"http://{PUBLIC}:{port}/openapi.json")
    job.refresh_from_db()
    assert job.status == "failed" and job.error_code == "fetch_blocked"
    assert f"port {port} is not allowed" in job.error_message


@pytest.mark.django_db(transaction=True)
async def test_tool_call_to_an_allow_listed_host_on_another_port_is_refused(
    settings: Any,
) -> None:
    from asgiref.sync import sync_to_async

    from conversations.tools import execute
    from openapi_import.models import Operation
    from tests.openapi_import.factories import ApiSpecFactory, OperationFactory

    settings.UPSTREAM_ALLOWED_HOSTS = ["shop.example.com"]
    settings.UPSTREAM_ALLOW_PRIVATE = False

    def make() -> Operation:
        spec = ApiSpecFactory(base_url="http://shop.example.com:6379/api")
        created = OperationFactory(
            spec=spec,
            operation_id="getOrder",
            method="GET",
            path="/orders",
            parameters_schema={"type": "object", "properties": {}},
            parameter_locations={},
        )
        return Operation.objects.select_related("spec").get(pk=created.pk)  # type: ignore[attr-defined]

    outcome = await execute(await sync_to_async(make)(), {})
    assert not outcome.ok
    assert "port 6379 is not allowed" in outcome.message
