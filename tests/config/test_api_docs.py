"""docs/api.md's complete headless conversation, run exactly as written (the curl block with bash,
the httpx block with Python) against a live server with the demo: the order is cancelled once
and the conversation ends closed (issue 17, "done when")."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any, cast

import pytest
from django.contrib.auth.models import User

from access.services import api_key_issue
from tests.conversations.conftest import demo  # noqa: F401  (fixture)

pytestmark = pytest.mark.django_db(transaction=True)

DOC = Path(__file__).resolve().parents[2] / "docs" / "api.md"


def documented_block(marker: str) -> str:
    match = re.search(rf"<!-- {marker}:[^>]*-->\n```\w+\n(.*?)\n```", DOC.read_text(), re.S)
    assert match, f"docs/api.md lost its {marker} block"
    return match.group(1)


def _key() -> str:
    from django.apps import apps

    from access.roles import SUPERVISOR, roles_sync
    from tests.factories import StaffFactory

    roles_sync(apps=apps)
    owner = cast(User, StaffFactory(username="integrator", roles=[SUPERVISOR]))
    return api_key_issue(owner=owner, name="docs", scopes=["chat"], integration="my-shop").plaintext


def _run(command: list[str], live_server: Any) -> str:
    env = {**os.environ, "BASE_URL": live_server.url, "API_KEY": _key()}
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def _assert_cancelled_once_and_closed(output: str) -> None:
    from conversations.models import Conversation
    from demo_shop.models import Order, OrderEvent

    assert Order.objects.get(number=1042).status == "cancelled"
    assert OrderEvent.objects.filter(order__number=1042, kind="cancelled").count() == 1
    conversation = Conversation.objects.get()
    assert conversation.state == "closed" and conversation.integration == "my-shop"
    assert conversation.is_verified and conversation.metadata == {"ticket": "T-1042"}
    assert output.strip().splitlines()[-1] == "closed"


@pytest.mark.skipif(not (shutil.which("curl") and shutil.which("jq")), reason="needs curl, jq")
def test_the_curl_conversation_runs_as_documented(demo: Any, live_server: Any) -> None:  # noqa: F811
    output = _run(
        ["bash", "-euo", "pipefail", "-c", documented_block("headless-curl")], live_server
    )
    assert "cancel" in output.lower()
    _assert_cancelled_once_and_closed(output)


def test_the_httpx_conversation_runs_as_documented(demo: Any, live_server: Any) -> None:  # noqa: F811
    output = _run([sys.executable, "-c", documented_block("headless-httpx")], live_server)
    assert "needs approval: Cancel" in output
    _assert_cancelled_once_and_closed(output)
