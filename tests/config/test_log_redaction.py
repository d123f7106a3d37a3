"""Secrets and PII out of logs (SECURITY-TESTS rows 25 and 39): API keys in query strings, in
``Authorization`` headers (well-formed or not), cookies, and customer emails in the request
line never reach a log line, in the console and the JSON format alike. Lines are captured from
the real formatter of ``config.logging.build_logging`` behind real requests."""

from __future__ import annotations

import io
import json
import logging
import os
import secrets
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
import structlog
from django.conf import settings
from django.test import Client

from config.logging import build_logging
from config.pii import mask_request_line
from config.redaction import redact_text
from config.server import AccessLog

FORMATS = ["console", "json"]
API_KEY = f"ad_{secrets.token_hex(6)}_{secrets.token_urlsafe(32)}"
# Not shaped like one of our keys: only the parameter's name gives it away.
UPSTREAM_KEY = secrets.token_hex(20)


@contextmanager
def captured(log_format: str) -> Iterator[io.StringIO]:
    """Every log line (structlog's and the standard library's) as rendered in ``log_format``."""
    spec = build_logging(log_format=log_format, level="INFO")["formatters"]["structured"]
    formatter = structlog.stdlib.ProcessorFormatter(
        processors=spec["processors"], foreign_pre_chain=spec["foreign_pre_chain"]
    )
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter)
    root, daphne = logging.getLogger(), logging.getLogger("daphne")
    levels = root.level, daphne.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    daphne.setLevel(logging.INFO)
    try:
        yield stream
    finally:
        root.removeHandler(handler)
        root.setLevel(levels[0])
        daphne.setLevel(levels[1])


def lines(stream: io.StringIO, log_format: str) -> list[str]:
    out = [line for line in stream.getvalue().splitlines() if line.strip()]
    assert out, "nothing was logged"
    if log_format == "json":
        for line in out:
            json.loads(line)  # every captured line is one JSON object
    return out


@pytest.mark.parametrize("log_format", FORMATS)
@pytest.mark.parametrize("name", ["api_key", "key", "token", "access_token", "apiKey"])
@pytest.mark.django_db
def test_a_key_in_the_query_string_is_never_logged(log_format: str, name: str) -> None:
    """Row 25: an API key in the query string is refused and never logged."""
    with captured(log_format) as stream:
        response = Client().get(f"/api/v1/escalations?{name}={UPSTREAM_KEY}&limit=5")
        Client().get(f"/api/v1/escalations?{name}={API_KEY}")

    assert response.status_code == 401
    output = "\n".join(lines(stream, log_format))
    assert UPSTREAM_KEY not in output and API_KEY not in output
    assert f"{name}=[redacted]" in output and "limit=5" in output


@pytest.mark.parametrize("log_format", FORMATS)
@pytest.mark.parametrize(
    "header",
    [f"Bearer {API_KEY}", API_KEY, f"Token {API_KEY}", "Bearer"],
    ids=["bearer", "bare_key", "other_scheme", "bearer_alone"],
)
@pytest.mark.django_db
def test_an_authorization_header_is_never_logged(
    log_format: str, header: str, settings: pytest.FixtureRequest
) -> None:
    """Row 25: well-formed or malformed, the header's key is not logged. With DEBUG on,
    django-ninja logs a malformed header as "Unexpected auth - '<the header>'"."""
    settings.DEBUG = True  # type: ignore[attr-defined]
    with captured(log_format) as stream:
        response = Client().get("/api/v1/escalations", HTTP_AUTHORIZATION=header)

    assert response.status_code == 401
    output = "\n".join(lines(stream, log_format))
    assert API_KEY not in output
    if header in (API_KEY, f"Token {API_KEY}"):
        assert "Unexpected auth - '[redacted]'" in output


@pytest.mark.parametrize("log_format", FORMATS)
def test_secret_fields_headers_and_cookies_are_redacted(log_format: str) -> None:
    log = structlog.get_logger("tests.redaction")
    with captured(log_format) as stream:
        log.warning(
            "upstream_called",
            url=f"https://shop.example/orders?apikey={UPSTREAM_KEY}",
            headers={"Authorization": f"Basic {UPSTREAM_KEY}", "Accept": "application/json"},
            cookie=f"sessionid={UPSTREAM_KEY}",
            authorization=f"Bearer {UPSTREAM_KEY}",
        )
        logging.getLogger("tests.stdlib").warning(
            "sent %s with Cookie: sessionid=%s", {"X-Api-Key": UPSTREAM_KEY}, UPSTREAM_KEY
        )

    output = "\n".join(lines(stream, log_format))
    assert UPSTREAM_KEY not in output
    assert "application/json" in output  # the rest of the line stays


@pytest.mark.parametrize("log_format", FORMATS)
@pytest.mark.django_db
def test_an_email_in_the_request_line_is_masked(log_format: str) -> None:
    """Row 39 (logs): the ``request`` field and Django's "Not Found: <path>" carry the masked
    address, never the raw one."""
    with captured(log_format) as stream:
        Client().get("/api/v1/escalations?email=ana.lima@example.com")
        Client().get("/no/such/page/ben.smith@example.com/")

    out = lines(stream, log_format)
    output = "\n".join(out)
    assert "ana.lima@example.com" not in output and "ben.smith@example.com" not in output
    assert "a***@example.com" in output and "b***@example.com" in output
    if log_format == "json":
        requests = [json.loads(line).get("request", "") for line in out]
        assert "GET /api/v1/escalations?email=a***@example.com" in requests


@pytest.mark.parametrize("log_format", FORMATS)
def test_daphnes_access_lines_are_redacted_and_masked(log_format: str) -> None:
    """``python -m config.server`` (Makefile, Dockerfile) writes Daphne's access log through
    logging: the query's key and the email do not reach the line."""
    access = AccessLog()
    with captured(log_format) as stream:
        access(
            "http",
            "complete",
            {
                "path": f"/api/v1/escalations?api_key={API_KEY}&email=ana@example.com",
                "status": 401,
                "method": "GET",
                "client": "127.0.0.1:5000",
                "size": 120,
            },
        )
        access(
            "websocket",
            "connecting",
            {"path": f"/ws/chat/x/?token={UPSTREAM_KEY}", "client": "127.0.0.1:5001"},
        )

    out = lines(stream, log_format)
    output = "\n".join(out)
    assert API_KEY not in output and UPSTREAM_KEY not in output
    assert "ana@example.com" not in output and "a***@example.com" in output
    assert "GET /api/v1/escalations?api_key=[redacted]" in output
    if log_format == "json":
        assert json.loads(out[0])["status"] == 401


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("GET /x?api_key=abc&page=2", "GET /x?api_key=[redacted]&page=2"),
        ("GET /x?page=2&client_secret=abc", "GET /x?page=2&client_secret=[redacted]"),
        ("GET /x?sort=name&monkey=1", "GET /x?sort=name&monkey=1"),
        ("Authorization: Bearer abc.def", "Authorization: [redacted]"),
        ("{'authorization': 'Digest u=1'}", "{'authorization': [redacted]}"),
        ("used Bearer abc", "used Bearer [redacted]"),
        ("key ad_0123456789ab_abcdefghijklmnop leaked", "key [redacted] leaked"),
        ("order 1042 shipped", "order 1042 shipped"),
        ("Token budget exceeded on the basic plan", "Token budget exceeded on the basic plan"),
        ("sent Basic dXNlcjpwYXNz", "sent Basic [redacted]"),
    ],
)
def test_redact_text(text: str, expected: str) -> None:
    assert redact_text(text) == expected


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("GET /x?email=ana@example.com", "GET /x?email=a***@example.com"),
        ("GET /x?email=ana.lima%40example.com&p=1", "GET /x?email=a***%40example.com&p=1"),
        ("GET /x?phone=%2B4915123456789", "GET /x?phone=[phone]"),
        ("GET /a?from=2026-12-01&to=2026-12-03", "GET /a?from=2026-12-01&to=2026-12-03"),
        (
            "GET /c/123e4567-e89b-12d3-a456-426614174000/",
            "GET /c/123e4567-e89b-12d3-a456-426614174000/",
        ),
        ("GET /x?card=4111111111111111", "GET /x?card=[card ••••1111]"),
    ],
)
def test_mask_request_line_masks_pii_and_keeps_dates(line: str, expected: str) -> None:
    """Row 39 (logs): the request field's PII is masked; its dates and ids stay readable."""
    assert mask_request_line(line) == expected


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_the_server_command_logs_no_key_in_json(tmp_path: Path) -> None:
    """The command the Makefile and Dockerfile run, with ``LOG_FORMAT=json``: Daphne's access
    line, django-structlog's request lines and django-ninja's malformed-header line carry no
    key and no raw email."""
    port = _free_port()
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings.local", "LOG_FORMAT": "json"}
    env.update(LOG_LEVEL="INFO", DJANGO_DEBUG="true")
    for name in ("DATABASE_URL", "REDIS_URL", "DJANGO_ALLOW_ASYNC_UNSAFE"):
        env.pop(name, None)
    log = (tmp_path / "server.log").open("wb")
    command = [sys.executable, "-m", "config.server", "-b", "127.0.0.1", "-p", str(port)]
    server = subprocess.Popen(
        [*command, "config.asgi:application"],
        cwd=settings.BASE_DIR,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 20
        while True:
            assert server.poll() is None, (tmp_path / "server.log").read_text()
            try:
                if httpx.get(f"{base}/api/v1/health", timeout=1).is_success:
                    break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "the server did not start"
                time.sleep(0.2)
        httpx.get(f"{base}/api/v1/health?api_key={API_KEY}&email=ana@example.com", timeout=5)
        httpx.get(f"{base}/api/v1/escalations", headers={"Authorization": API_KEY}, timeout=5)
    finally:
        server.terminate()
        server.wait(timeout=10)
        log.close()

    output = (tmp_path / "server.log").read_text()
    assert API_KEY not in output and "ana@example.com" not in output
    events = [json.loads(line) for line in output.splitlines() if line.startswith("{")]
    access = [e["request"] for e in events if e.get("event") == "access_logged"]
    assert "GET /api/v1/health?api_key=[redacted]&email=a***@example.com" in access
    assert any("Unexpected auth - '[redacted]'" in str(e.get("event")) for e in events)
