# No `from __future__ import annotations` here: django-ninja reads the annotations at import.
"""``/api/v1/backends``: the configured model backends, their health, and a dry run
(issue 15 item 3). Testing a backend sends a request to a server: supervisors only (the
``agents`` scope and the right to change model backends)."""

from django.http import HttpRequest
from ninja import Router, Schema

from access.auth import require
from config.errors import ApplicationError, ErrorCode
from conversations.llm.types import LLMConfigurationError

router = Router(tags=["backends"])
SCOPE = "agents"
TEST_PERMISSION = "conversations.change_modelbackend"
VIEW_PERMISSION = "conversations.view_modelbackend"


class BackendOut(Schema):
    name: str
    kind: str
    model: str
    state: str
    error_rate: float
    recent_calls: int
    cooldown_remaining: float
    consecutive_failures: int
    last_error: str | None


class DryRunOut(Schema):
    backend: str
    kind: str
    ok: bool
    url: str
    configured_model: str
    model: str
    latency_ms: float
    tool_calling: bool | None
    error_kind: str
    error: str


@router.get("/backends", response=list[BackendOut], summary="Model backends and their circuits")
def list_backends(request: HttpRequest) -> object:
    from conversations.model_backends import get_registry

    require(request, scope=SCOPE, permission=VIEW_PERMISSION)
    return [health.__dict__ for health in get_registry().health()]


@router.post(
    "/backends/{name}/test",
    response=DryRunOut,
    summary="Send one tiny request: latency, answering model, tool calling, or the exact error",
)
def test_backend(request: HttpRequest, name: str) -> object:
    from conversations.model_backends import backend_test_sync, get_registry

    require(request, scope=SCOPE, permission=TEST_PERMISSION)
    if name not in get_registry().names:
        raise ApplicationError(ErrorCode.NOT_FOUND, f"No backend named {name!r}.")
    try:
        return backend_test_sync(name=name).as_dict()
    except LLMConfigurationError as exc:
        raise ApplicationError(ErrorCode.VALIDATION_ERROR, str(exc)) from exc
