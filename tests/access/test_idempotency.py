"""Idempotency-Key on POST (issue 17 item 6): replay with one side effect, 422 for another body,
409 while running, sf-string keys, per-key scope, 24 h expiry and the cleanup job, and a real
race on PostgreSQL."""

from __future__ import annotations

import threading
import time
from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.db import connections
from django.test import Client
from django.utils import timezone

from access import idempotency
from access.idempotency import parse_key
from access.jobs import idempotency_cleanup
from access.models import IdempotencyRecord
from access.services import api_key_issue
from config.errors import ApplicationError
from conversations import headless
from conversations.models import Conversation, Message, Turn

BASE = "/api/v1/conversations"


def client_for(user: User, integration: str = "shop") -> Client:
    issued = api_key_issue(owner=user, name="t", scopes=["chat"], integration=integration)
    return Client(headers={"Authorization": f"Bearer {issued.plaintext}"})


def post(client: Client, body: dict[str, Any], key: str | None, url: str = BASE) -> Any:
    headers = {"Idempotency-Key": key} if key is not None else {}
    return client.post(url, body, content_type="application/json", headers=headers)


@pytest.fixture(autouse=True)
def _roles(request: pytest.FixtureRequest) -> None:
    """Before ``supervisor`` is made: a transactional test earlier in the worker flushed the
    role groups the migrations created."""
    if "django_db" not in request.keywords:
        return
    request.getfixturevalue("db")
    from django.apps import apps
    from django.contrib.auth.models import Group

    from access.roles import SUPERVISOR, roles_sync

    if not Group.objects.filter(name=SUPERVISOR).exists():
        roles_sync(apps=apps)


BODY = {"customer": {"id": "c1", "email": "ana@example.com"}, "metadata": {"n": 1}}


@pytest.mark.django_db
def test_same_key_and_body_replays_with_one_side_effect(supervisor: User) -> None:
    shop = client_for(supervisor)
    first = post(shop, BODY, "order-1")
    again = post(shop, BODY, "order-1")

    assert first.status_code == again.status_code == 201
    assert again.content == first.content
    assert again["Idempotent-Replayed"] == "true" and not first.has_header("Idempotent-Replayed")
    assert Conversation.objects.count() == 1
    assert IdempotencyRecord.objects.get().status == "done"


@pytest.mark.django_db
def test_same_key_other_body_is_422(supervisor: User) -> None:
    shop = client_for(supervisor)
    assert post(shop, BODY, "k").status_code == 201
    other = post(shop, {**BODY, "metadata": {"n": 2}}, "k")
    assert other.status_code == 422
    assert other.json()["error"]["code"] == "idempotency_key_reused"
    assert Conversation.objects.count() == 1


@pytest.mark.django_db
def test_same_key_on_another_path_is_422(supervisor: User) -> None:
    shop = client_for(supervisor)
    conversation_id = post(shop, BODY, "k").json()["data"]["id"]
    other = post(shop, {}, "k", url=f"{BASE}/{conversation_id}/close")
    assert other.status_code == 422
    assert Conversation.objects.get(pk=conversation_id).state == "ai_active"


@pytest.mark.django_db
def test_a_key_still_running_is_409(supervisor: User) -> None:
    shop = client_for(supervisor)
    api_key_id = supervisor.api_keys.get().pk
    fingerprint = "x" * 64
    IdempotencyRecord.objects.create(
        principal=f"key:{api_key_id}", key="busy", fingerprint=fingerprint
    )
    original = idempotency.request_fingerprint
    idempotency.request_fingerprint = lambda request: fingerprint
    try:
        response = post(shop, BODY, "busy")
    finally:
        idempotency.request_fingerprint = original
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "idempotency_key_in_use"
    assert response["Retry-After"] == "1"
    assert Conversation.objects.count() == 0


@pytest.mark.django_db
def test_keys_are_per_api_key(supervisor: User) -> None:
    first, second = client_for(supervisor), client_for(supervisor)
    assert post(first, BODY, "same").status_code == 201
    assert post(second, BODY, "same").status_code == 201
    assert Conversation.objects.count() == 2


@pytest.mark.django_db
def test_quoted_and_bare_keys_are_the_same_key(supervisor: User) -> None:
    shop = client_for(supervisor)
    assert post(shop, BODY, '"abc-1"').status_code == 201
    assert post(shop, BODY, "abc-1")["Idempotent-Replayed"] == "true"
    assert Conversation.objects.count() == 1


@pytest.mark.parametrize(
    "raw", ['"unterminated', "", "   ", "tab\tinside", "é", "x" * 256, '"a"b"']
)
def test_invalid_keys_are_refused(raw: str) -> None:
    with pytest.raises(ApplicationError) as caught:
        parse_key(raw)
    assert caught.value.code == "validation_error"


@pytest.mark.parametrize(("raw", "key"), [('"a\\"b"', 'a"b'), ("  k-1  ", "k-1"), ('"a b"', "a b")])
def test_key_parsing(raw: str, key: str) -> None:
    assert parse_key(raw) == key


@pytest.mark.django_db
def test_an_invalid_key_is_a_422_and_runs_nothing(supervisor: User) -> None:
    response = post(client_for(supervisor), BODY, '"open')
    assert response.status_code == 422
    assert response.json()["error"]["details"]["fields"][0]["field"] == "Idempotency-Key"
    assert Conversation.objects.count() == 0


@pytest.mark.django_db
def test_errors_are_stored_and_replayed(supervisor: User) -> None:
    shop = client_for(supervisor, integration="a")
    missing = "00000000-0000-0000-0000-000000000000"
    first = post(shop, {}, "close-1", url=f"{BASE}/{missing}/close")
    again = post(shop, {}, "close-1", url=f"{BASE}/{missing}/close")
    assert first.status_code == again.status_code == 404
    assert again["Idempotent-Replayed"] == "true"


@pytest.mark.django_db
def test_a_stored_5xx_is_replayed_not_run_again(
    supervisor: User, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = []

    def broken(**kwargs: Any) -> Any:
        calls.append(kwargs)
        raise RuntimeError("upstream exploded")

    monkeypatch.setattr("conversations.api.conversation_open", broken)
    shop = client_for(supervisor)
    first = post(shop, BODY, "boom")
    again = post(shop, BODY, "boom")
    assert first.status_code == again.status_code == 500
    assert len(calls) == 1 and again["Idempotent-Replayed"] == "true"


@pytest.mark.django_db
def test_validation_failures_leave_no_record(supervisor: User) -> None:
    shop = client_for(supervisor)
    assert post(shop, {"customer": {"id": "x"}}, "v").status_code == 422
    assert not IdempotencyRecord.objects.exists()
    assert post(shop, BODY, "v").status_code == 201


@pytest.mark.django_db
def test_records_expire_after_24_hours_and_the_job_removes_them(supervisor: User) -> None:
    shop = client_for(supervisor)
    assert post(shop, BODY, "old").status_code == 201
    IdempotencyRecord.objects.update(created_at=timezone.now() - timedelta(hours=25))
    fresh = IdempotencyRecord.objects.create(principal="key:0", key="new", fingerprint="f")

    # An expired key is a new key: the request runs again.
    assert post(shop, BODY, "old").status_code == 201
    assert Conversation.objects.count() == 2
    IdempotencyRecord.objects.filter(key="old").update(
        created_at=timezone.now() - timedelta(hours=25)
    )
    idempotency_cleanup()
    assert list(IdempotencyRecord.objects.values_list("pk", flat=True)) == [fresh.pk]


@pytest.mark.django_db(transaction=True)
def test_send_a_message_twice_with_one_key_runs_one_turn(supervisor: User) -> None:
    shop = client_for(supervisor)
    conversation_id = post(shop, BODY, None).json()["data"]["id"]
    url = f"{BASE}/{conversation_id}/messages"
    first = post(shop, {"content": "hello"}, "m-1", url=url)
    again = post(shop, {"content": "hello"}, "m-1", url=url)
    assert first.status_code == again.status_code == 200
    assert first.content == again.content
    assert Message.objects.filter(conversation_id=conversation_id, role="user").count() == 1
    assert Turn.objects.filter(conversation_id=conversation_id).count() == 1


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_concurrent_requests_with_one_key_have_one_side_effect(
    postgres: None, supervisor: User, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two threads (two connections) race one key on real PostgreSQL: one creates, the other
    is told it is still running (or, if it came after, gets the replay)."""
    original = headless.conversation_open

    def slow_open(**kwargs: Any) -> Any:
        time.sleep(0.5)  # hold the claim while the other request arrives
        return original(**kwargs)

    monkeypatch.setattr("conversations.api.conversation_open", slow_open)
    shop = client_for(supervisor)
    barrier = threading.Barrier(2)
    statuses: list[int] = []

    def send() -> None:
        try:
            barrier.wait()
            statuses.append(post(shop, BODY, "race").status_code)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=send) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(20)
    assert sorted(statuses) == [201, 409]
    assert Conversation.objects.count() == 1
    assert IdempotencyRecord.objects.get().status == "done"


def test_the_cleanup_runs_on_the_scheduler() -> None:
    from config.scheduler import jobs_discover

    [job] = [job for job in jobs_discover() if job.name == "idempotency_cleanup"]
    assert job.run is idempotency_cleanup and job.every_seconds == 3600
