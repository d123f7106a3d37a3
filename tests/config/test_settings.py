"""Settings from the environment, in a fresh interpreter per case (settings load once)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
GOOD_SECRET = "s" * 30 + "-production-secret-" + "k" * 20

PROBE = """
import json, django
from django.conf import settings
django.setup()
db = settings.DATABASES["default"]
print(json.dumps({
    "engine": db["ENGINE"],
    "pool": db.get("OPTIONS", {}).get("pool"),
    "conn_max_age": db.get("CONN_MAX_AGE"),
    "layer": settings.CHANNEL_LAYERS["default"]["BACKEND"],
    "layer_socket_timeout": (settings.CHANNEL_LAYERS["default"].get("CONFIG", {})
                             .get("hosts", [{}])[0].get("socket_timeout")),
    "cache": settings.CACHES["default"]["BACKEND"],
    "llm": settings.LLM_BACKEND,
    "tasks": settings.TASKS["default"]["BACKEND"],
    "debug": settings.DEBUG,
}))
"""

# Variables the probe must not inherit from the machine or CI.
ACTIONDESK_VARS = (
    "DATABASE_URL",
    "REDIS_URL",
    "DJANGO_SECRET_KEY",
    "DJANGO_ALLOWED_HOSTS",
    "DJANGO_DEBUG",
    "LLM_BACKEND",
    "LLM_BASE_URL",
    "LLM_MODEL",
    "TASKS_BACKEND",
    "LOG_FORMAT",
    "ESCALATION_WEBHOOK_SIGN",
    "ESCALATION_WEBHOOK_SECRET",
)


def run(
    code: str, module: str, env: dict[str, str] | None = None, *, args: list[str] | None = None
) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if k not in ACTIONDESK_VARS}
    clean.update({"DJANGO_SETTINGS_MODULE": module, **(env or {})})
    command = [sys.executable, *(args or ["-c", code])]
    return subprocess.run(
        command, cwd=ROOT, env=clean, capture_output=True, text=True, timeout=60, check=False
    )


def probe(module: str, env: dict[str, str] | None = None) -> dict[str, object]:
    result = run(PROBE, module, env)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_no_environment_is_the_embedded_default() -> None:
    assert probe("config.settings.local") == {
        "engine": "django.db.backends.sqlite3",
        "pool": None,
        "conn_max_age": 0,
        "layer": "channels.layers.InMemoryChannelLayer",
        "layer_socket_timeout": None,
        "cache": "django.core.cache.backends.locmem.LocMemCache",
        "llm": "offline",
        "tasks": "django.tasks.backends.immediate.ImmediateBackend",
        "debug": True,
    }


def test_database_and_redis_urls_switch_to_postgres_and_redis() -> None:
    settings = probe(
        "config.settings.local",
        {
            "DATABASE_URL": "postgres://postgres@127.0.0.1:5432/test",
            "REDIS_URL": "redis://127.0.0.1:6379/0",
            "TASKS_BACKEND": "database",
        },
    )
    assert settings["engine"] == "django.db.backends.postgresql"
    assert settings["pool"] == {"min_size": 1, "max_size": 10, "timeout": 10.0}
    # Persistent connections and the pool do not mix (and do not suit ASGI threads).
    assert settings["conn_max_age"] == 0
    assert settings["layer"] == "channels_redis.core.RedisChannelLayer"
    # Longer than channels_redis's 5 s blocking pop, or idle consumers die (redis-py 8).
    assert (
        isinstance(settings["layer_socket_timeout"], int) and settings["layer_socket_timeout"] > 5
    )
    assert settings["cache"] == "config.cache.ReusingRedisCache"
    assert settings["tasks"] == "django_tasks_db.DatabaseBackend"


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"DATABASE_URL": "mysql://root@localhost/x"}, "DATABASE_URL must be a postgres://"),
        ({"DJANGO_DEBUG": "maybe"}, "DJANGO_DEBUG='maybe' is not a boolean"),
        ({"TASKS_BACKEND": "celery"}, "TASKS_BACKEND='celery'"),
        ({"LOG_FORMAT": "xml"}, "LOG_FORMAT='xml'"),
    ],
)
def test_bad_environment_values_are_refused_with_a_message(
    env: dict[str, str], message: str
) -> None:
    result = run(PROBE, "config.settings.local", env)
    assert result.returncode != 0
    assert message in result.stderr


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"DJANGO_ALLOWED_HOSTS": "support.example.com"}, "DJANGO_SECRET_KEY is not set"),
        (
            {"DJANGO_SECRET_KEY": "short", "DJANGO_ALLOWED_HOSTS": "a.example"},
            "at least 50 random characters",
        ),
        ({"DJANGO_SECRET_KEY": GOOD_SECRET}, "DJANGO_ALLOWED_HOSTS is not set"),
    ],
)
def test_production_refuses_to_start_without_secret_and_hosts(
    env: dict[str, str], message: str
) -> None:
    result = run(PROBE, "config.settings.production", env)
    assert result.returncode != 0
    assert message in result.stderr


def test_production_settings_pass_check_deploy() -> None:
    result = run(
        "",
        "config.settings.production",
        {
            "DJANGO_SECRET_KEY": GOOD_SECRET,
            "DJANGO_ALLOWED_HOSTS": "support.example.com",
            "REDIS_URL": "redis://127.0.0.1:6379/0",
            "TASKS_BACKEND": "database",
        },
        args=["manage.py", "check", "--deploy", "--fail-level", "WARNING"],
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_check_deploy_warns_about_the_single_process_shape() -> None:
    result = run(
        "",
        "config.settings.production",
        {"DJANGO_SECRET_KEY": GOOD_SECRET, "DJANGO_ALLOWED_HOSTS": "support.example.com"},
        args=["manage.py", "check", "--deploy", "--fail-level", "WARNING"],
    )
    assert result.returncode != 0
    assert "actiondesk.W001" in result.stderr and "actiondesk.W002" in result.stderr


@pytest.mark.parametrize(
    ("env", "check_id", "hint"),
    [
        ({"ESCALATION_WEBHOOK_SIGN": "true"}, "actiondesk.E001", "ESCALATION_WEBHOOK_SECRET"),
        ({"LLM_BACKEND": "anthropic"}, "actiondesk.E002", "offline, openai, recorded"),
        ({"LLM_BACKEND": "openai", "LLM_MODEL": "m"}, "actiondesk.E003", "LLM_BASE_URL"),
        (
            {"LLM_BACKEND": "openai", "LLM_BASE_URL": "ftp://x", "LLM_MODEL": "m"},
            "actiondesk.E004",
            "/v1",
        ),
        (
            {"LLM_BACKEND": "openai", "LLM_BASE_URL": "http://127.0.0.1:11434/v1"},
            "actiondesk.E005",
            "LLM_MODEL",
        ),
        ({"LLM_FALLBACK": "offline,skynet"}, "actiondesk.E006", "skynet"),
        ({"OUTBOUND_ALLOWED_HOSTS": "https://shop.example/api"}, "actiondesk.E007", "host"),
    ],
)
def test_unsafe_settings_fail_system_checks_and_asgi_start(
    env: dict[str, str], check_id: str, hint: str
) -> None:
    check = run("", "config.settings.local", env, args=["manage.py", "check"])
    assert check.returncode != 0
    assert check_id in check.stderr and hint in check.stderr
    # Daphne does not run checks, so loading the ASGI application must refuse too.
    start = run("import config.asgi", "config.settings.local", env)
    assert start.returncode != 0
    assert "Actiondesk refuses to start" in start.stderr and check_id in start.stderr


def test_json_log_format_writes_json_lines() -> None:
    code = (
        "import django, structlog; django.setup();"
        "structlog.get_logger('t').info('thing_happened', order_id=7)"
    )
    result = run(code, "config.settings.local", {"LOG_FORMAT": "json"})
    assert result.returncode == 0, result.stderr
    line = json.loads(result.stderr.strip().splitlines()[-1])
    assert line["event"] == "thing_happened" and line["order_id"] == 7
    assert line["level"] == "info" and "timestamp" in line


def test_find_python_fails_clearly_without_a_recent_python(tmp_path: Path) -> None:
    old = tmp_path / "bin"
    old.mkdir()
    fake = old / "python3"
    fake.write_text("#!/bin/sh\nexit 1\n")
    fake.chmod(0o755)
    env = {"PATH": f"{old}:/usr/bin:/bin", "HOME": str(tmp_path), "PYENV_ROOT": str(tmp_path)}
    result = subprocess.run(
        [str(ROOT / "scripts" / "find-python")],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode == 0 and "/usr/bin/" in result.stdout:
        pytest.skip(f"this machine's {result.stdout.strip()} is >= 3.12 itself")
    assert result.returncode == 1
    assert "needs Python >= 3.12" in result.stderr


def test_find_python_prefers_the_pinned_version() -> None:
    result = subprocess.run(
        [str(ROOT / "scripts" / "find-python")], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0
    version = subprocess.run(
        [result.stdout.strip(), "-c", "import sys; print(sys.version_info[:2] >= (3, 12))"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert version.stdout.strip() == "True"
