"""Safe production defaults (issue 12 item 4), each in a fresh interpreter: SECURITY-TESTS
rows 3 (no ``*`` host with DEBUG off), 9 (dependency floors), 10 (Python >= 3.12.4) and 42
(``check --deploy`` refuses the demo shop's published key)."""

from __future__ import annotations

import tomllib
from importlib.metadata import version
from typing import Any

import pytest
from django.core.exceptions import ImproperlyConfigured
from packaging.requirements import Requirement
from packaging.version import Version

from config import checks
from tests.config.test_settings import GOOD_SECRET, ROOT, run

PRODUCTION = {
    "DJANGO_SECRET_KEY": GOOD_SECRET,
    "DJANGO_ALLOWED_HOSTS": "support.example.com",
    "REDIS_URL": "redis://127.0.0.1:6379/0",
    "TASKS_BACKEND": "database",
}
RESOLVE = (
    "import django; django.setup()\n"
    "from django.urls import resolve, Resolver404\n"
    "try:\n    resolve('/demo-shop/api/orders/1042'); print('mounted')\n"
    "except Resolver404:\n    print('absent')\n"
)


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"DJANGO_ALLOWED_HOSTS": "*"}, "DJANGO_ALLOWED_HOSTS contains '*'"),
        ({"DJANGO_ALLOWED_HOSTS": "support.example.com,*"}, "DJANGO_ALLOWED_HOSTS contains '*'"),
        ({"DJANGO_CSRF_TRUSTED_ORIGINS": "https://*"}, "DJANGO_CSRF_TRUSTED_ORIGINS contains"),
    ],
)
def test_production_refuses_wildcard_hosts_at_start(env: dict[str, str], message: str) -> None:
    result = run("import django; django.setup()", "config.settings.production", PRODUCTION | env)
    assert result.returncode != 0
    assert message in result.stderr


def test_subdomain_wildcards_of_one_domain_are_allowed() -> None:
    env = PRODUCTION | {
        "DJANGO_ALLOWED_HOSTS": ".example.com",
        "DJANGO_CSRF_TRUSTED_ORIGINS": "https://*.example.com",
    }
    result = run("import django; django.setup()", "config.settings.production", env)
    assert result.returncode == 0, result.stderr


def test_wildcard_host_with_debug_off_fails_the_system_check_and_asgi_start() -> None:
    env = {"DJANGO_DEBUG": "false", "DJANGO_ALLOWED_HOSTS": "*"}
    check = run("", "config.settings.local", env, args=["manage.py", "check"])
    assert check.returncode != 0 and "actiondesk.E021" in check.stderr
    start = run("import config.asgi", "config.settings.local", env)
    assert start.returncode != 0 and "actiondesk.E021" in start.stderr


def test_the_demo_shop_is_not_mounted_in_production() -> None:
    result = run(RESOLVE, "config.settings.production", PRODUCTION)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "absent"


def test_the_demo_shop_is_mounted_in_development_and_when_enabled() -> None:
    assert run(RESOLVE, "config.settings.local").stdout.strip() == "mounted"
    enabled = PRODUCTION | {"DEMO_SHOP_ENABLED": "true", "DEMO_SHOP_API_KEY": "k" * 40}
    assert run(RESOLVE, "config.settings.production", enabled).stdout.strip() == "mounted"


def test_check_deploy_fails_on_the_demo_shops_published_key() -> None:
    env = PRODUCTION | {"DEMO_SHOP_ENABLED": "true"}
    result = run("", "config.settings.production", env, args=["manage.py", "check", "--deploy"])
    assert result.returncode != 0
    assert "actiondesk.E020" in result.stderr and "DEMO_SHOP_API_KEY" in result.stderr
    own_key = env | {"DEMO_SHOP_API_KEY": "a-long-random-shop-key-" + "q" * 30}
    passed = run(
        "",
        "config.settings.production",
        own_key,
        args=["manage.py", "check", "--deploy", "--fail-level", "WARNING"],
    )
    assert passed.returncode == 0, passed.stderr


@pytest.mark.parametrize(
    ("found", "refused"),
    [((3, 12, 3), True), ((3, 11, 9), True), ((3, 12, 4), False), ((3, 13, 0), False)],
)
def test_python_older_than_3_12_4_is_refused(
    monkeypatch: Any, found: tuple[int, int, int], refused: bool
) -> None:
    monkeypatch.setattr(checks, "_python_version", lambda: found)
    errors = checks.check_python_version()
    assert [e.id for e in errors] == (["actiondesk.E022"] if refused else [])
    if refused:
        monkeypatch.setattr(checks.checks, "run_checks", lambda tags: errors)
        with pytest.raises(ImproperlyConfigured, match=r"actiondesk\.E022"):
            checks.raise_on_startup_errors()


def test_this_interpreter_passes_the_python_check() -> None:
    assert checks.check_python_version() == []


FLOORS = {"daphne": "4.2.2", "channels": "4.3.2", "django": "6.1.3"}


@pytest.mark.parametrize(("name", "floor"), FLOORS.items())
def test_dependency_floors_in_pyproject(name: str, floor: str) -> None:
    """Row 9: daphne >= 4.2.2 (CVE-2026-44545/44546), channels >= 4.3.2 (CVE-2020-35681),
    Django >= its latest 6.x patch (6.1.3 on 2026-11). Installed versions meet them too."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    requirements = {Requirement(r).name.lower(): Requirement(r) for r in project["dependencies"]}
    specifier = requirements[name].specifier
    minimums = [Version(s.version) for s in specifier if s.operator in (">=", "==", "~=")]
    assert minimums and min(minimums) >= Version(floor), f"{name}: {specifier}"
    assert not specifier.contains(str(Version(floor).release[0]) + ".0.0")
    assert Version(version(name)) >= Version(floor)
