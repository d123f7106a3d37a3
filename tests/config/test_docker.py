"""Docker is real (issue 13 item 3). Docker itself is not installed here, so what can be checked
without it is: the compose file's services, commands and healthchecks; the web healthcheck's
exact request answered by Django with production settings; the worker's and scheduler's
healthcheck commands; and the ``.dockerignore``."""

from __future__ import annotations

import json
import os
import shlex

import psycopg
import pytest
import yaml
from django.core.management import get_commands

from tests.config.test_production_defaults import PRODUCTION
from tests.config.test_settings import ROOT, run
from tests.conftest import _missing_service

COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SERVICES = COMPOSE["services"]
APP_SERVICES = ("web", "worker", "scheduler", "migrate")


def healthcheck_argv(service: str) -> list[str]:
    test = SERVICES[service]["healthcheck"]["test"]
    assert test[0] == "CMD", f"{service}: exec form keeps the check free of a shell"
    return list(test[1:])


def test_compose_runs_web_worker_scheduler_and_the_services() -> None:
    assert set(SERVICES) == {"web", "worker", "scheduler", "migrate", "db", "redis"}
    for name in APP_SERVICES:
        assert SERVICES[name]["build"] == ".", name
        assert SERVICES[name]["environment"]["DATABASE_URL"].startswith("postgres://"), name
    assert SERVICES["worker"]["command"][:3] == ["python", "manage.py", "db_worker"]
    assert SERVICES["scheduler"]["command"][:3] == ["python", "manage.py", "run_scheduler"]


def test_every_long_running_service_has_a_healthcheck() -> None:
    for name in ("web", "worker", "scheduler", "db", "redis"):
        assert "healthcheck" in SERVICES[name], name
    # Something that waits for the web process can wait for it to be healthy.
    for name in ("web", "worker", "scheduler"):
        assert SERVICES[name]["depends_on"]["migrate"] == {
            "condition": "service_completed_successfully"
        }


def test_compose_commands_are_real_management_commands() -> None:
    commands = get_commands()
    for name in ("worker", "scheduler", "migrate"):
        argv = SERVICES[name]["command"]
        assert argv[1] == "manage.py" and argv[2] in commands, argv
    for name in ("worker", "scheduler"):
        argv = healthcheck_argv(name)
        assert argv[1] == "manage.py" and argv[2] in commands, argv


def test_scheduler_healthcheck_reads_the_heartbeat_the_scheduler_writes() -> None:
    command = SERVICES["scheduler"]["command"]
    written = command[command.index("--heartbeat") + 1]
    check = healthcheck_argv("scheduler")
    assert check[check.index("--heartbeat") + 1] == written


def test_web_healthcheck_targets_the_port_the_image_serves() -> None:
    url = web_healthcheck_url()
    dockerfile = (ROOT / "Dockerfile").read_text()
    cmd = json.loads(dockerfile.split("\nCMD ", 1)[1].strip())
    served = shlex.split(cmd[-1])
    assert served[served.index("--port") + 1] == url.split(":")[2].split("/")[0]
    assert SERVICES["web"]["ports"] == ["8000:8000"]


def web_healthcheck_url() -> str:
    argv = healthcheck_argv("web")
    code = argv[argv.index("-c") + 1]
    return code.split("urlopen('", 1)[1].split("'", 1)[0]


PROBE = """
import json, django
django.setup()
from django.test import Client
from django.test.utils import setup_test_environment
setup_test_environment()
out = {}
for name, host, path, method, secure in [
    ("probe", "127.0.0.1:8000", PATH, "get", False),
    ("probe_live", "127.0.0.1:8000", "/api/v1/health", "get", False),
    ("loopback_page", "127.0.0.1:8000", "/", "get", False),
    ("loopback_post", "127.0.0.1:8000", PATH, "post", False),
    ("public_health_http", "support.example.com", PATH, "get", False),
    ("public_page_http", "support.example.com", "/api/v1/me", "get", False),
    ("other_host", "evil.example", PATH, "get", False),
]:
    r = getattr(Client(HTTP_HOST=host), method)(path, secure=secure)
    out[name] = [r.status_code, r.content.decode()[:300]]
print(json.dumps(out))
"""


# Production settings take PostgreSQL only; readiness runs ``SELECT 1`` and touches no table.
LOCAL_POSTGRES = "postgres://postgres@127.0.0.1:5432/postgres"


def reachable_postgres() -> str:
    url = os.environ.get("DATABASE_URL") or LOCAL_POSTGRES
    try:
        psycopg.connect(url, connect_timeout=2).close()
    except psycopg.OperationalError:
        _missing_service(f"PostgreSQL at {url}")
    return url


@pytest.fixture(scope="module")
def production_answers() -> dict[str, list]:
    env = {k: v for k, v in PRODUCTION.items() if k != "REDIS_URL"}
    env |= {"DATABASE_URL": reachable_postgres(), "DJANGO_SECURE_SSL_REDIRECT": "true"}
    path = web_healthcheck_url().split("8000", 1)[1]
    result = run(PROBE.replace("PATH", repr(path)), "config.settings.production", env)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_the_web_healthcheck_request_passes_with_production_settings(
    production_answers: dict[str, list],
) -> None:
    status, body = production_answers["probe"]
    assert status == 200, body
    assert json.loads(body) == {
        "success": True,
        "data": {"status": "ready", "checks": {"database": "ok"}},
        "error": None,
    }
    assert production_answers["probe_live"][0] == 200


def test_loopback_is_allowed_for_health_only(production_answers: dict[str, list]) -> None:
    # The loopback name opens the two read-only health routes, nothing else.
    assert production_answers["loopback_page"][0] == 400
    assert production_answers["loopback_post"][0] != 200
    assert production_answers["other_host"][0] == 400


def test_health_is_not_redirected_to_https(production_answers: dict[str, list]) -> None:
    assert production_answers["public_health_http"][0] == 200
    assert production_answers["public_page_http"][0] == 301


def test_dockerignore_keeps_secrets_environments_and_caches_out() -> None:
    ignored = {
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    }
    for entry in (".env", ".venv", ".git", "db.sqlite3", "__pycache__", ".pytest_cache"):
        assert entry in ignored, entry
    assert "!.env.example" in ignored
