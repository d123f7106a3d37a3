"""Contract testing (issue 17 item 9): schemathesis generates positive and negative requests for
every operation of the live schema and sends them over real HTTP to a live server with the demo
seeded and an all-scopes key. No response may be a 500, and every response must match what the
schema declares (status, content type, headers, body), with invalid data rejected as a 4xx."""

from __future__ import annotations

from typing import Any, cast

import httpx
import pytest
import schemathesis
from django.contrib.auth.models import User
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis.checks import not_a_server_error
from schemathesis.generation import GenerationMode
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from access.models import ApiKey
from access.services import api_key_issue
from tests.conversations.conftest import demo  # noqa: F401  (fixture)

pytestmark = pytest.mark.django_db(transaction=True)

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    negative_data_rejection,
]
EXAMPLES = 20


def test_every_operation_honours_the_schema(
    demo: Any,  # noqa: F811
    live_server: Any,
    settings_override: None,
) -> None:
    from django.apps import apps

    from access.roles import roles_sync
    from tests.factories import StaffFactory

    roles_sync(apps=apps)
    owner = cast(User, StaffFactory(username="contract", is_superuser=True))
    key = api_key_issue(owner=owner, name="contract", scopes=list(ApiKey.Scope.values))
    headers = {"Authorization": f"Bearer {key.plaintext}"}
    raw = httpx.get(f"{live_server.url}/api/v1/openapi.json", headers=headers, timeout=30).json()
    schema = schemathesis.openapi.from_dict(raw)
    operations = [result.ok() for result in schema.get_all_operations()]  # type: ignore[union-attr]
    assert len(operations) >= 30

    failures: list[str] = []
    for operation in operations:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

            @given(case=operation.as_strategy(generation_mode=mode))
            @settings(
                max_examples=EXAMPLES,
                deadline=None,
                database=None,
                derandomize=True,
                suppress_health_check=list(HealthCheck),
            )
            def run(case: Any) -> None:
                case.call_and_validate(
                    base_url=live_server.url, headers=headers, checks=CHECKS, timeout=60
                )

            try:
                run()
            except Unsatisfiable:
                # Nothing to make invalid (an operation without parameters or body).
                assert mode == GenerationMode.NEGATIVE, operation.label
            except (Exception, BaseExceptionGroup) as exc:  # report every operation's failure
                failures.append(f"{operation.label} [{mode}]: {str(exc)[:1500]}")
    assert not failures, "\n\n".join(failures)


@pytest.fixture
def settings_override(settings: Any) -> None:
    # Thousands of requests from one key in a minute, and chat bursts: not what is tested here.
    settings.API_RATE_LIMIT = "100000/m"
    settings.CHAT_RATE_LIMIT_MESSAGES = 100000
    settings.API_MAX_WAIT_SECONDS = 2.0
