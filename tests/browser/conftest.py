"""Browser tests: a real Daphne serving the test database, driven by Debian's Chromium.

One server and one Chromium serve the whole package; each test gets a fresh browser context (a
new visitor) and, being ``django_db(transaction=True)``, an empty database. The server is a
subprocess, so it must see the rows the test writes and the test must see the server's: both
use the database of ``tests.support.shared_db`` (the PostgreSQL test database, or the SQLite
test database copied to a file while the package runs).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from django.conf import settings
from playwright.sync_api import Browser, ConsoleMessage, Page, expect, sync_playwright
from pytest_django import DjangoDbBlocker

from tests.conftest import BROWSER_REQUIRED, _missing_service
from tests.support.shared_db import SETTINGS_PRELUDE, shared_database

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
STARTUP_TIMEOUT_SECONDS = 20.0
# An agent turn on a busy CI machine can take a few seconds; expect() waits 5 s by default.
expect.set_options(timeout=10_000)
ASGI_APP = "config.asgi:application"

# `daphne ...` after pointing the test settings at the shared database (see the docstring) and
# serving static files straight from the source tree, as there is no collectstatic here.
_SERVE = (
    SETTINGS_PRELUDE
    + """\
settings_module.WHITENOISE_USE_FINDERS = True
from daphne.cli import CommandLineInterface
CommandLineInterface.entrypoint()
"""
)

REPORT_CSP_VIOLATIONS = """
document.addEventListener("securitypolicyviolation", (event) => {
  const blocked = event.blockedURI || "inline code";
  console.error(`CSP violation: ${event.violatedDirective} blocked ${blocked}`);
});
"""


@dataclass
class Server:
    url: str
    port: int
    log: Path


@dataclass
class Console:
    """What the page reported: console errors and Content-Security-Policy violations."""

    errors: list[str] = field(default_factory=list)

    def record(self, message: ConsoleMessage) -> None:
        if message.type != "error":
            return
        # Browsers ask every site for /favicon.ico; the admin has none, and that is fine.
        if message.location.get("url", "").endswith("/favicon.ico"):
            return
        self.errors.append(message.text)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _server_env(port: int, database: str) -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in {"DJANGO_ALLOW_ASYNC_UNSAFE", "DJANGO_DEBUG"}
    }
    env.update(
        DJANGO_SETTINGS_MODULE="config.settings.test",
        ACTIONDESK_SHARED_DB=database,
        # The agent's tools call the demo shop served by this same server.
        UPSTREAM_ALLOWED_HOSTS=f"127.0.0.1:{port}",
        UPSTREAM_ALLOW_PRIVATE="true",
        PYTHONUNBUFFERED="1",
    )
    if settings.REDIS_URL:
        env["REDIS_URL"] = str(settings.REDIS_URL)
    return env


def _wait_until_healthy(process: subprocess.Popen[bytes], url: str, log: Path) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"Daphne exited with {process.returncode}:\n{log.read_text()[-3000:]}")
        try:
            if httpx.get(f"{url}/api/v1/health", timeout=1.0).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    pytest.fail(f"Daphne did not become healthy in {STARTUP_TIMEOUT_SECONDS} s:\n{log.read_text()}")


@pytest.fixture(scope="package")
def _orm_beside_playwright() -> Iterator[None]:
    """Playwright's sync API keeps its event loop marked as running on this thread, so Django
    would refuse ORM calls from these tests as coming from "an async context". Nothing here is
    concurrent, so allow them, for this package only."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
        yield


@pytest.fixture(autouse=True)
def _release_async_connections() -> None:
    """Replaces the suite's async fixture of this name (tests/conftest.py): pytest-asyncio cannot
    start a loop beside Playwright's, and these tests make no async ORM calls to clean up."""


@pytest.fixture(scope="package")
def server(
    _orm_beside_playwright: None,
    django_db_setup: None,
    django_db_blocker: DjangoDbBlocker,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Server]:
    """Daphne on a free port serving the test database, shared by this package's tests (each
    test still starts from an empty database: they are ``django_db(transaction=True)``)."""
    directory = tmp_path_factory.mktemp("browser")
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    log = directory / "daphne.log"
    with shared_database(directory, django_db_blocker) as database, log.open("wb") as output:
        process = subprocess.Popen(
            [sys.executable, "-c", _SERVE, "-b", "127.0.0.1", "-p", str(port), ASGI_APP],
            cwd=settings.BASE_DIR,
            env=_server_env(port, database),
            stdout=output,
            stderr=subprocess.STDOUT,
        )
        try:
            _wait_until_healthy(process, url, log)
            yield Server(url=url, port=port, log=log)
        finally:
            process.terminate()
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


@pytest.fixture(scope="package")
def browser(_orm_beside_playwright: None) -> Iterator[Browser]:
    """Chromium for this package only: Playwright's running loop would break async tests that
    came after it in the same process."""
    if not CHROMIUM.exists():
        _missing_service(f"Chromium at {CHROMIUM}", required=BROWSER_REQUIRED)
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def console() -> Console:
    return Console()


@pytest.fixture
def page(
    transactional_db: None, browser: Browser, server: Server, console: Console
) -> Iterator[Page]:
    """A fresh browser profile (no cookies: a new visitor) on the live server."""
    log_start = server.log.stat().st_size
    context = browser.new_context(base_url=server.url)
    context.set_default_timeout(10_000)
    # Report every Content-Security-Policy violation as a console error, with what it blocked.
    context.add_init_script(REPORT_CSP_VIOLATIONS)
    tab = context.new_page()
    tab.on("console", console.record)
    tab.on("pageerror", lambda error: console.errors.append(f"uncaught: {error}"))
    try:
        yield tab
    finally:
        context.close()
        # pytest shows captured output only for a failed test: the server's side of it.
        with server.log.open("rb") as log:
            log.seek(log_start)
            print(f"--- Daphne log ({server.log}) ---\n{log.read().decode(errors='replace')}")
