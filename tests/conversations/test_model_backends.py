"""Named model backends (issue 15 items 1-4): LLM_BACKENDS and the admin's rows, per-agent
choices, the dry run in the admin and the API, and breaker state shared by registries."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.test import Client

from access.services import api_key_issue
from config.errors import ApplicationError
from conversations.agents import agents_load
from conversations.llm import BackendConfig, BackendRegistry, ChatMessage, ErrorKind, LLMError
from conversations.llm.breaker import BreakerStore
from conversations.llm.configs import configs_from_entries, parse_backends
from conversations.llm.registry import registry_from_settings
from conversations.llm.types import LLMConfigurationError
from conversations.model_backends import (
    CacheBreakerStore,
    DatabaseBreakerStore,
    agent_route,
    get_registry,
    set_registry,
)
from conversations.models import Agent, BackendCircuit, ModelBackend
from tests.support.openai_server import (
    OpenAITestServer,
    error_reply,
    text_reply,
    tool_call,
    tool_calls_reply,
)

HELLO = [ChatMessage("user", "hi")]


@pytest.fixture
def server() -> Iterator[OpenAITestServer]:
    with OpenAITestServer() as running:
        yield running


@pytest.fixture
def fresh_registry() -> Iterator[None]:
    set_registry(None)
    yield
    set_registry(None)


# --- LLM_BACKENDS ------------------------------------------------------------------------------


def test_json_list_gives_every_field() -> None:
    entries = parse_backends(
        json.dumps(
            [
                {
                    "name": "local",
                    "kind": "openai",
                    "base_url": "http://127.0.0.1:11434/v1",
                    "api_key": "",
                    "model": "qwen2.5:7b",
                    "timeout": 120,
                    "retries": 1,
                    "temperature": 0.2,
                    "max_tokens": 800,
                    "headers": {"X-Team": "support"},
                    "stream_options": False,
                    "price_per_1k_prompt": "0.001",
                    "price_per_1k_completion": 0.002,
                }
            ]
        )
    )
    (config,) = configs_from_entries(entries)
    assert (config.name, config.kind, config.model, config.timeout, config.max_retries) == (
        "local",
        "openai",
        "qwen2.5:7b",
        120.0,
        1,
    )
    assert config.options == {
        "temperature": 0.2,
        "max_tokens": 800,
        "headers": {"X-Team": "support"},
        "stream_usage": False,
    }
    assert str(config.price_per_1k_prompt) == "0.001"
    assert str(config.price_per_1k_completion) == "0.002"


def test_toml_tables_are_accepted() -> None:
    entries = parse_backends(
        """
        [[backends]]
        name = "vllm"
        base_url = "http://gpu:8000/v1"
        model = "Qwen/Qwen2.5-7B-Instruct"

        [[backends]]
        name = "offline"
        kind = "offline"
        """
    )
    configs = configs_from_entries(entries)
    assert [(c.name, c.kind) for c in configs] == [("vllm", "openai"), ("offline", "offline")]


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("[{]", "neither a JSON list nor TOML"),
        ('{"name": "a"}', "not valid TOML"),
        ('[{"name": "a b"}]', "'name' must be"),
        ('[{"name": "a", "colour": "red"}]', "unknown fields colour"),
        ('[{"name": "a", "timeout": "soon"}]', "'timeout' must be a number"),
        ('[{"name": "a", "timeout": 0}]', "'timeout' must be positive"),
        ('[{"name": "a", "headers": {"X": 1}}]', "'headers' must map"),
        ('[{"name": "a", "stream_options": "no"}]', "'stream_options' must be true or false"),
        ('[{"name": "a"}, {"name": "a"}]', "two backends are named 'a'"),
        ("[1]", "list of backend objects"),
    ],
)
def test_bad_entries_are_refused_with_the_field(raw: str, message: str) -> None:
    with pytest.raises(LLMConfigurationError, match=message):
        configs_from_entries(parse_backends(raw))


class Settings:
    def __init__(self, **values: Any) -> None:
        self.LLM_BACKEND = "offline"
        self.LLM_FALLBACK: list[str] = []
        self.__dict__.update(values)


def test_environment_wins_over_stored_backends_and_offline_is_always_there() -> None:
    settings = Settings(
        LLM_BACKENDS='[{"name": "main", "base_url": "http://env/v1", "model": "env-model"}]',
        LLM_FALLBACK=["spare"],
    )
    stored = [
        BackendConfig(name="main", kind="openai", base_url="http://admin/v1"),
        BackendConfig(name="spare", kind="openai", base_url="http://spare/v1"),
    ]
    registry = registry_from_settings(settings, stored=stored)
    assert registry.names == ("main", "spare", "offline")
    assert registry.config("main").base_url == "http://env/v1"
    assert registry.primary == "main" and registry.fallback == ("spare",)


def test_empty_fallback_means_no_fallback() -> None:
    registry = registry_from_settings(
        Settings(LLM_BACKENDS='[{"name": "main", "base_url": "http://x/v1"}]', LLM_FALLBACK=[])
    )
    assert registry.fallback == ()
    assert [slot.name for slot in registry._chain(None)] == ["main"]


def test_unknown_default_backend_is_refused() -> None:
    with pytest.raises(LLMConfigurationError, match="default backend 'nope'"):
        registry_from_settings(
            Settings(LLM_BACKENDS='[{"name": "main"}]', LLM_DEFAULT_BACKEND="nope")
        )


def test_legacy_settings_still_build_one_backend_per_kind() -> None:
    registry = registry_from_settings(
        Settings(LLM_BACKEND="openai", LLM_BASE_URL="http://x/v1", LLM_FALLBACK=["offline"])
    )
    assert registry.names == ("openai", "offline") and registry.fallback == ("offline",)


# --- Agents choose a backend, a model and a fallback order ------------------------------------


def _agent(**fields: Any) -> Agent:
    values = {"slug": "orders", "name": "Orders", "description": "Orders."} | fields
    return Agent(**values)


def test_agent_with_an_unknown_backend_is_refused_at_save(db: None, settings: Any) -> None:
    settings.LLM_BACKENDS = '[{"name": "main", "base_url": "http://x/v1"}]'
    with pytest.raises(ValidationError) as caught:
        _agent(backend="missing", fallback=["offline", "ghost"]).full_clean()
    assert "Unknown backend 'missing'" in str(caught.value.message_dict["backend"])
    assert "ghost" in str(caught.value.message_dict["fallback"])
    _agent(backend="main", fallback=["offline"]).full_clean()  # fine
    ModelBackend.objects.create(name="admin-one", base_url="http://y/v1")
    _agent(backend="admin-one").full_clean()


def test_agents_file_with_an_unknown_backend_changes_nothing(db: None) -> None:
    text = "agents:\n  - {slug: a, name: A, description: d, backend: nowhere}\n"
    with pytest.raises(ApplicationError, match="Unknown backend 'nowhere'"):
        agents_load(text=text)
    assert not Agent.objects.exists()
    agents_load(text="agents:\n  - {slug: a, name: A, description: d, fallback: [offline]}\n")
    assert Agent.objects.get().fallback == ["offline"]


def test_agent_route_honours_model_and_fallback() -> None:
    registry = BackendRegistry(
        [BackendConfig(name="a", kind="offline"), BackendConfig(name="b", kind="offline")],
        fallback=["b"],
        lazy=True,
    )
    route = agent_route(_agent(backend="b", model="m-1", fallback=[]), registry)
    assert (route.backend, route.model, route.fallback) == ("b", "m-1", ())
    # Nothing chosen: the default backend and the deployment's order.
    assert agent_route(_agent(), registry).fallback is None
    # A backend removed since the agent was saved: the default answers, and it is logged.
    assert agent_route(_agent(backend="gone"), registry).backend is None


# --- Dry run: admin action and API -------------------------------------------------------------


@pytest.fixture
def supervisor_client(supervisor: User) -> Client:
    client = Client()
    client.force_login(supervisor)
    return client


def test_admin_test_connection_reports_latency_model_and_tools(
    db: None, server: OpenAITestServer, supervisor_client: Client, fresh_registry: None
) -> None:
    backend = ModelBackend.objects.create(name="lab", base_url=server.url, model="lab-model")
    server.enqueue(tool_calls_reply(tool_call("ping", {})))
    response = supervisor_client.post(
        "/admin/conversations/modelbackend/",
        {"action": "test_connection", "_selected_action": [backend.pk]},
        follow=True,
    )
    text = " ".join(str(m) for m in response.context["messages"])
    assert "lab: answered in" in text and "tool calling works" in text
    assert "'lab-model'" in text
    sent = server.chat_requests[0].json
    assert sent["model"] == "lab-model" and sent["tools"][0]["function"]["name"] == "ping"


def test_support_agents_cannot_add_backends(db: None, support_agent: User) -> None:
    client = Client()
    client.force_login(support_agent)
    assert client.get("/admin/conversations/modelbackend/add/").status_code == 403


def test_admin_saves_a_backend_and_the_registry_uses_it(
    db: None,
    supervisor_client: Client,
    fresh_registry: None,
    django_capture_on_commit_callbacks: Any,
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        response = supervisor_client.post(
            "/admin/conversations/modelbackend/add/",
            {
                "name": "ollama",
                "kind": "openai",
                "enabled": "on",
                "base_url": "http://127.0.0.1:11434/v1",
                "model": "llama3.1",
                "api_key": "sk-secret",
                "timeout": "120",
                "retries": "1",
                "headers": "{}",
                "stream_options": "on",
            },
        )
    assert response.status_code == 302, response.content[:2000]
    assert ModelBackend.objects.get().api_key == "sk-secret"
    registry = get_registry()
    assert registry.config("ollama").timeout == 120.0
    assert registry.config("ollama").api_key == "sk-secret"
    # The key is never sent back to the browser.
    page = supervisor_client.get(
        f"/admin/conversations/modelbackend/{ModelBackend.objects.get().pk}/change/"
    )
    assert b"sk-secret" not in page.content


def _key_client(user: User, scopes: list[str]) -> Client:
    key = api_key_issue(owner=user, name="t", scopes=scopes)
    return Client(headers={"Authorization": f"Bearer {key.plaintext}"})


def test_api_dry_run_needs_a_supervisor_key(
    db: None, server: OpenAITestServer, supervisor: User, support_agent: User, settings: Any,
    fresh_registry: None,
) -> None:  # fmt: skip
    settings.LLM_BACKENDS = json.dumps([{"name": "lab", "base_url": server.url, "model": "m"}])
    assert _key_client(supervisor, ["chat"]).post("/api/v1/backends/lab/test").status_code == 403
    assert (
        _key_client(support_agent, ["agents"]).post("/api/v1/backends/lab/test").status_code == 403
    )
    client = _key_client(supervisor, ["agents"])
    assert client.post("/api/v1/backends/nope/test").status_code == 404

    server.enqueue(text_reply("pong"))
    data = client.post("/api/v1/backends/lab/test").json()["data"]
    assert data["ok"] is True and data["tool_calling"] is False
    assert data["model"] == "m" and data["latency_ms"] > 0
    assert data["url"] == f"{server.url}/chat/completions"


def test_api_dry_run_reports_the_exact_error_and_url(
    db: None, server: OpenAITestServer, supervisor: User, settings: Any, fresh_registry: None
) -> None:
    base = server.url.removesuffix("/v1")
    settings.LLM_BACKENDS = json.dumps([{"name": "lab", "base_url": base, "model": "m"}])
    server.enqueue(error_reply(404, "not here"))
    data = _key_client(supervisor, ["agents"]).post("/api/v1/backends/lab/test").json()["data"]
    assert data["ok"] is False and data["error_kind"] == "bad_request"
    assert f"{base}/chat/completions" in data["error"] and "/v1 suffix" in data["error"]
    # A dry run never counts in the breaker.
    health = {h.name: h for h in get_registry().health()}
    assert health["lab"].consecutive_failures == 0


# --- Breaker state shared by every process ------------------------------------------------------


def _two_registries(url: str, store_factory: Any) -> tuple[BackendRegistry, BackendRegistry]:
    def config() -> BackendConfig:
        return BackendConfig(
            name="shared", kind="openai", base_url=url, max_retries=0, breaker_failures=2,
            breaker_cooldown=60, timeout=5,
        )  # fmt: skip

    return (
        BackendRegistry([config()], breaker_store=store_factory()),
        BackendRegistry([config()], breaker_store=store_factory()),
    )


async def _open_in_one_seen_by_the_other(server: OpenAITestServer, store_factory: Any) -> None:
    one, two = _two_registries(server.url, store_factory)
    server.enqueue(error_reply(500), error_reply(500))
    for _ in range(2):
        with pytest.raises(LLMError):
            await one.complete(HELLO)
    requests = len(server.chat_requests)
    # The other process obeys: refused at once, nothing sent.
    with pytest.raises(LLMError) as caught:
        await two.complete(HELLO)
    assert caught.value.causes[0].kind == ErrorKind.CIRCUIT_OPEN
    assert len(server.chat_requests) == requests
    (health,) = await sync_to_async(two.health)()
    assert health.state == "open" and health.consecutive_failures == 2
    assert health.cooldown_remaining > 50 and "HTTP 500" in (health.last_error or "")
    await one.aclose()
    await two.aclose()


async def test_two_registries_share_the_circuit_in_the_cache(server: OpenAITestServer) -> None:
    # Redis when REDIS_URL is set (the services run); the process's cache otherwise.
    await _open_in_one_seen_by_the_other(server, CacheBreakerStore)


@pytest.mark.django_db(transaction=True)
async def test_two_registries_share_the_circuit_in_the_database(
    server: OpenAITestServer,
) -> None:
    await _open_in_one_seen_by_the_other(server, DatabaseBreakerStore)
    assert await BackendCircuit.objects.filter(pk="shared").aexists()


async def test_memory_stores_are_not_shared(server: OpenAITestServer) -> None:
    one, two = _two_registries(server.url, BreakerStore)
    server.enqueue(error_reply(500), error_reply(500), text_reply("fine"))
    for _ in range(2):
        with pytest.raises(LLMError):
            await one.complete(HELLO)
    assert (await two.complete(HELLO)).text == "fine"


def test_every_example_configuration_in_the_docs_builds_a_registry() -> None:
    import re
    from pathlib import Path

    doc = (Path(__file__).resolve().parents[2] / "docs" / "llm-backends.md").read_text()
    section = doc.split("## Example configurations", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```(?:json|toml)\n(.*?)```", section, re.DOTALL)
    assert len(blocks) == 7
    for block in blocks:
        configs = configs_from_entries(parse_backends(block))
        fallback = [c.name for c in configs[1:]] + ["offline"]
        registry = registry_from_settings(Settings(LLM_BACKENDS=block, LLM_FALLBACK=fallback))
        assert registry.primary == configs[0].name
        assert all(c.base_url.endswith("/v1") for c in configs)
        assert all(c.timeout >= 30 for c in configs)
