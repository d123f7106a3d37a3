from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from django.contrib.auth.models import User

from conversations.agent.backends import set_registry
from conversations.models import Conversation
from conversations.services import conversation_start


@pytest.fixture
def conversation(transactional_db: None) -> Conversation:
    return conversation_start(visitor_id="visitor-a")


@pytest.fixture
def demo(live_server: Any, settings: Any, transactional_db: None) -> Iterator[Any]:
    """The whole demo (shop data, spec, tools, e-commerce agents) with the shop served over
    real HTTP by a live server, and the offline backend."""
    from demo_shop.install import demo_install

    host = live_server.url.removeprefix("http://")
    settings.UPSTREAM_ALLOWED_HOSTS = [host]
    settings.UPSTREAM_ALLOW_PRIVATE = True
    settings.LLM_BACKEND = "offline"
    settings.LLM_FALLBACK = []
    set_registry(None)
    reviewer = User.objects.create_superuser("reviewer", "r@example.test", "x")
    yield demo_install(base_url=live_server.url, reviewer=reviewer)
    set_registry(None)


@pytest.fixture
def model_server() -> Iterator[Any]:
    """A local OpenAI-compatible server answering with scripted replies."""
    from tests.support.openai_server import OpenAITestServer

    with OpenAITestServer() as server:
        yield server


@pytest.fixture
def openai_backend(model_server: Any, demo: Any) -> Iterator[Any]:
    """The demo, with the ``openai`` backend pointed at ``model_server`` (no retries)."""
    from conversations.llm.registry import BackendConfig, BackendRegistry

    registry = BackendRegistry(
        [BackendConfig(name="openai", kind="openai", model="test-model",
                       base_url=model_server.url, api_key="test", timeout=5, max_retries=0)]
    )  # fmt: skip
    set_registry(registry)
    yield registry
    set_registry(None)
