from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

import pytest
from asgiref.sync import async_to_sync
from django.conf import settings as django_settings
from django.contrib.auth import authenticate
from django.core.management import CommandError, call_command
from django.test import Client
from pytest_django.fixtures import Settings as SettingsWrapper

from conversations.identity import Identity
from conversations.tools import execute
from openapi_import.models import ApiSpec, Operation


@pytest.fixture(autouse=True)
def _demo_shop_reachable(settings: SettingsWrapper) -> None:
    """setup_demo's default base URL, let through as `make run`'s settings do."""
    settings.UPSTREAM_ALLOWED_HOSTS = ["127.0.0.1:8000", "localhost:8000"]


@pytest.mark.django_db
def test_setup_demo_creates_staff_accounts_once(
    settings: SettingsWrapper, capsys: pytest.CaptureFixture[str]
) -> None:
    settings.DEBUG = True
    call_command("setup_demo")
    out = capsys.readouterr().out
    assert "supervisor / password actiondesk-demo" in out
    user = authenticate(username="supervisor", password="actiondesk-demo")
    assert user is not None and user.is_staff and user.is_superuser
    agent = authenticate(username="agent", password="actiondesk-demo")
    assert agent is not None and list(agent.groups.values_list("name", flat=True)) == [
        "support_agent"
    ]
    user.set_password("changed-by-owner")
    user.save()
    call_command("setup_demo")
    assert "supervisor / existing account" in capsys.readouterr().out
    assert authenticate(username="supervisor", password="changed-by-owner") is not None


@pytest.mark.django_db
def test_setup_demo_refuses_without_debug() -> None:
    with pytest.raises(CommandError, match="DEBUG is off"):
        call_command("setup_demo")


@pytest.mark.django_db
def test_admin_login_with_demo_account(client: Client, settings: SettingsWrapper) -> None:
    settings.DEBUG = True
    call_command("setup_demo")
    response = client.post(
        "/admin/login/?next=/admin/",
        {"username": "supervisor", "password": "actiondesk-demo"},
    )
    assert response.status_code == 302 and response["Location"] == "/admin/"
    page = client.get("/admin/")
    assert page.status_code == 200 and b"Actiondesk" in page.content


def local_settings(**env: str) -> dict[str, Any]:
    """What config.settings.local (`make run`) makes of HOST and PORT, in a fresh process."""
    names = ("ALLOWED_HOSTS", "UPSTREAM_ALLOWED_HOSTS", "OUTBOUND_ALLOWED_HOSTS")
    code = (
        "import json; from django.conf import settings as s; "
        f"print(json.dumps({{n: getattr(s, n) for n in {names!r}}}))"
    )
    clean = {
        k: v
        for k, v in os.environ.items()
        if k not in {"HOST", "PORT", *names, "DJANGO_ALLOWED_HOSTS"}
    }
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=django_settings.BASE_DIR,
        env={**clean, **env, "DJANGO_SETTINGS_MODULE": "config.settings.local"},
        capture_output=True,
        text=True,
        check=True,
    )
    return dict(json.loads(result.stdout))


@pytest.mark.parametrize(
    ("env", "addresses", "hosts"),
    [
        ({}, ["127.0.0.1:8000", "localhost:8000"], ["127.0.0.1", "localhost", "[::1]"]),
        ({"PORT": "8123"}, ["127.0.0.1:8123", "localhost:8123"], ["127.0.0.1", "localhost"]),
        ({"PORT": "8123", "HOST": "0.0.0.0"}, ["127.0.0.1:8123", "localhost:8123"], []),
        (
            {"PORT": "9000", "HOST": "shop.lan"},
            ["127.0.0.1:9000", "localhost:9000", "shop.lan:9000"],
            ["shop.lan"],
        ),
        ({"PORT": "8123", "HOST": "::1"}, ["[::1]:8123"], ["[::1]"]),
    ],
)
def test_make_run_allow_lists_follow_host_and_port(
    env: dict[str, str], addresses: list[str], hosts: list[str]
) -> None:
    loaded = local_settings(**env)
    for address in addresses:
        assert address in loaded["UPSTREAM_ALLOWED_HOSTS"]
        assert address in loaded["OUTBOUND_ALLOWED_HOSTS"]
    assert set(hosts) <= set(loaded["ALLOWED_HOSTS"])
    port = env.get("PORT", "8000")
    assert all(a.endswith(f":{port}") for a in loaded["UPSTREAM_ALLOWED_HOSTS"])
    assert "0.0.0.0" not in loaded["ALLOWED_HOSTS"]


@pytest.mark.django_db(transaction=True)
def test_demo_on_another_port_calls_the_shop_on_that_port(
    live_server: Any, settings: SettingsWrapper, capsys: pytest.CaptureFixture[str]
) -> None:
    """`PORT=<n> make run`: setup_demo gets http://127.0.0.1:<n>, the allow-list follows PORT,
    and a tool call reaches the shop served on that port (not 8000)."""
    from django.apps import apps

    from access.roles import roles_sync

    # A transactional test before this one in the worker flushed the roles the migrations made.
    roles_sync(apps=apps)
    port = live_server.url.rsplit(":", 1)[1]
    assert port != "8000"
    settings.DEBUG = True
    settings.UPSTREAM_ALLOWED_HOSTS = local_settings(PORT=port)["UPSTREAM_ALLOWED_HOSTS"]
    settings.UPSTREAM_ALLOW_PRIVATE = True
    call_command("setup_demo", base_url=live_server.url + "/")
    out = capsys.readouterr().out
    assert f"Chat:    {live_server.url}/ " in out
    assert f"Admin:   {live_server.url}/admin/" in out
    assert ":8000" not in out

    spec = ApiSpec.objects.get(title="Demo Shop API")
    assert spec.base_url == f"{live_server.url}/demo-shop/api"
    operation = Operation.objects.select_related("spec").get(spec=spec, operation_id="getOrder")
    ana = Identity(customer_id="ana@example.com", email="ana@example.com", name="Ana")
    outcome = async_to_sync(execute)(operation, {"order_number": 1042}, identity=ana)
    assert outcome.ok, outcome.message
    assert outcome.data["number"] == 1042


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("base_url", "message"),
    [
        ("http://127.0.0.1:8123", r"refused: .*PORT=8123 make run"),
        ("127.0.0.1:8000", "must be the server's origin"),
        ("http://127.0.0.1:8000/chat", "must be the server's origin"),
        ("http://127.0.0.1:notaport", "is not a URL"),
    ],
)
def test_setup_demo_refuses_a_base_url_its_tools_could_not_reach(
    settings: SettingsWrapper, base_url: str, message: str
) -> None:
    settings.DEBUG = True
    with pytest.raises(CommandError, match=message):
        call_command("setup_demo", base_url=base_url)
    assert not ApiSpec.objects.exists()
