"""Tool calls on the upstream: request building, credentials, the error taxonomy and the retry
policy (SPEC §6), against a local HTTP server."""

from __future__ import annotations

import json
import random
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, cast

import pytest
import structlog

from conversations import tools
from conversations.tools import RetrySettings, ToolArgumentError, execute, prepare_request
from openapi_import.models import Operation
from tests.openapi_import.factories import ApiSpecFactory, OperationFactory

pytestmark = pytest.mark.django_db(transaction=True)


class Upstream:
    """Answers with a scripted list of (status, headers, body); records what it received."""

    def __init__(self) -> None:
        self.script: list[tuple[int, dict[str, str], Any]] = []
        self.received: list[dict[str, Any]] = []

    def handler(self) -> type[BaseHTTPRequestHandler]:
        upstream = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                upstream.received.append(
                    {"method": self.command, "path": self.path, "headers": dict(self.headers),
                     "body": body}
                )  # fmt: skip
                status, headers, payload = (
                    upstream.script.pop(0) if upstream.script else (200, {}, {"ok": True})
                )
                data = json.dumps(payload).encode()
                self.send_response(status)
                for name, value in {"Content-Type": "application/json", **headers}.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = _answer

            def log_message(self, *args: object) -> None:
                pass

        return Handler


@pytest.fixture
def upstream(settings: Any) -> Iterator[tuple[Upstream, str]]:
    state = Upstream()
    server = ThreadingHTTPServer(("127.0.0.1", 0), state.handler())
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    host = f"127.0.0.1:{server.server_address[1]}"
    settings.UPSTREAM_ALLOWED_HOSTS = [host]
    settings.UPSTREAM_ALLOW_PRIVATE = True
    yield state, f"http://{host}"
    server.shutdown()
    server.server_close()


def _operation(base: str, **kwargs: Any) -> Operation:
    spec = ApiSpecFactory(base_url=base + "/api", auth_header="X-Api-Key", auth_value="s3cret")
    defaults: dict[str, Any] = {
        "operation_id": "getOrder",
        "method": "GET",
        "path": "/orders/{order_number}",
        "parameters_schema": {
            "type": "object",
            "properties": {"order_number": {"type": "integer"}, "expand": {"type": "string"},
                           "Authorization": {"type": "string"}},
            "required": ["order_number"],
        },
        "parameter_locations": {"order_number": "path", "expand": "query",
                                "Authorization": "header"},
    }  # fmt: skip
    defaults.update(kwargs)
    return cast(Operation, OperationFactory(spec=spec, **defaults))


class NoSleep:
    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, delay: float) -> None:
        self.delays.append(delay)


async def test_request_carries_credentials_but_never_model_auth_headers(upstream: Any) -> None:
    server, base = upstream
    op = await _aop(base)
    with structlog.testing.capture_logs() as logs:
        outcome = await execute(
            op, {"order_number": 1042, "expand": "items", "Authorization": "Bearer evil"}
        )
    assert outcome.ok and outcome.status_code == 200
    request = server.received[0]
    assert request["path"] == "/api/orders/1042?expand=items"
    assert request["headers"]["X-Api-Key"] == "s3cret"
    assert "Bearer evil" not in json.dumps(request["headers"])
    assert "s3cret" not in json.dumps(logs)


async def _aop(base: str, **kwargs: Any) -> Operation:
    from asgiref.sync import sync_to_async

    op: Operation = await sync_to_async(_operation)(base, **kwargs)
    return await Operation.objects.select_related("spec").aget(pk=op.pk)


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({}, "'order_number' is a required property"),
        ({"order_number": "ten"}, "order_number"),
    ],
)
async def test_arguments_are_checked_against_the_schema(
    upstream: Any, arguments: dict[str, Any], message: str
) -> None:
    server, base = upstream
    outcome = await execute(await _aop(base), arguments)
    assert outcome.error_kind == "validation" and message in outcome.message
    assert server.received == []


async def test_transient_errors_are_retried_with_full_jitter(upstream: Any) -> None:
    server, base = upstream
    server.script = [(503, {}, {"detail": "busy"}), (500, {}, {}), (502, {}, {}),
                     (200, {}, {"number": 1042})]  # fmt: skip
    sleep, retry = NoSleep(), RetrySettings(attempts=3, base=0.5, cap=8.0)
    outcome = await execute(
        await _aop(base), {"order_number": 1042}, retry=retry, sleep=sleep,
        rng=random.Random(7),
    )  # fmt: skip
    assert outcome.ok and outcome.attempts == 4 and outcome.data == {"number": 1042}
    assert len(sleep.delays) == 3
    for n, delay in enumerate(sleep.delays):
        assert 0 <= delay <= min(retry.cap, retry.base * 2**n)
    # Seeded: the same delays every run.
    rng = random.Random(7)
    assert sleep.delays == [rng.uniform(0, min(8.0, 0.5 * 2**n)) for n in range(3)]


async def test_gives_up_after_three_retries(upstream: Any) -> None:
    server, base = upstream
    server.script = [(503, {}, {})] * 5
    outcome = await execute(await _aop(base), {"order_number": 1}, sleep=NoSleep())
    assert not outcome.ok and outcome.error_kind == "transient" and outcome.attempts == 4
    assert len(server.received) == 4


async def test_429_honours_retry_after(upstream: Any) -> None:
    server, base = upstream
    server.script = [(429, {"Retry-After": "3"}, {}), (200, {}, {})]
    sleep = NoSleep()
    outcome = await execute(await _aop(base), {"order_number": 1}, sleep=sleep)
    assert outcome.ok and sleep.delays == [3.0]


@pytest.mark.parametrize(
    ("status", "kind", "escalate"),
    [(400, "validation", False), (404, "validation", False), (409, "validation", False),
     (422, "validation", False), (401, "auth", True), (403, "auth", True)],
)  # fmt: skip
async def test_client_errors_are_not_retried(
    upstream: Any, status: int, kind: str, escalate: bool
) -> None:
    server, base = upstream
    server.script = [(status, {}, {"detail": "Order 9 not found."})]
    sleep = NoSleep()
    outcome = await execute(await _aop(base), {"order_number": 9}, sleep=sleep)
    assert outcome.error_kind == kind and outcome.escalate is escalate
    assert outcome.message == "Order 9 not found."
    assert len(server.received) == 1 and sleep.delays == []


def _post_op(base: str, *, with_key_header: bool) -> Operation:
    locations = {"order_number": "path"}
    if with_key_header:
        locations["Idempotency-Key"] = "header"
    return _operation(
        base,
        operation_id="cancelOrder",
        method="POST",
        path="/orders/{order_number}/cancel",
        parameters_schema={"type": "object", "properties": {"order_number": {"type": "integer"}}},
        parameter_locations=locations,
    )


@pytest.mark.parametrize(("with_key", "attempts"), [(False, 1), (True, 2)])
async def test_non_idempotent_calls_retry_only_with_an_idempotency_key(
    upstream: Any, with_key: bool, attempts: int
) -> None:
    from asgiref.sync import sync_to_async

    server, base = upstream
    server.script = [(503, {}, {}), (200, {}, {"status": "cancelled"})]
    op = await sync_to_async(_post_op)(base, with_key_header=with_key)
    op = await Operation.objects.select_related("spec").aget(pk=op.pk)
    outcome = await execute(op, {"order_number": 1042}, idempotency_key="key-1", sleep=NoSleep())
    assert outcome.attempts == attempts
    keys = [r["headers"].get("Idempotency-Key") for r in server.received]
    assert keys == (["key-1", "key-1"] if with_key else [None])


async def test_hosts_off_the_allow_list_are_refused(upstream: Any, settings: Any) -> None:
    server, base = upstream
    settings.UPSTREAM_ALLOWED_HOSTS = ["shop.example.com"]
    outcome = await execute(await _aop(base), {"order_number": 1})
    assert outcome.error_kind == "unknown" and outcome.escalate
    assert server.received == []


async def test_private_addresses_need_the_explicit_setting(upstream: Any, settings: Any) -> None:
    server, base = upstream
    settings.UPSTREAM_ALLOW_PRIVATE = False
    outcome = await execute(await _aop(base), {"order_number": 1})
    assert outcome.error_kind == "unknown" and "127.0.0.1" in outcome.message
    assert server.received == []


def test_relative_base_url_is_a_clear_error() -> None:
    op = _operation("", server_url="/api")
    op.spec.base_url = "/api"
    with pytest.raises(ToolArgumentError, match="no absolute base URL"):
        prepare_request(op, {"order_number": 1})


def test_tool_calls_counter_counts_outcomes() -> None:
    before = tools.TOOL_CALLS.labels(outcome="validation")._value.get()
    op = _operation("http://127.0.0.1:9")
    tools._finish(op, tools.ToolOutcome(ok=False, error_kind="validation"), 0.0)
    assert tools.TOOL_CALLS.labels(outcome="validation")._value.get() == before + 1
