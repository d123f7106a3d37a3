"""Recording events: masked, and batched into one insert inside ``events_batched``."""

from __future__ import annotations

from typing import Any

import pytest

from analytics.models import Event, EventType
from analytics.services import event_record, events_batched

pytestmark = pytest.mark.django_db


def test_an_event_outside_a_batch_is_stored_at_once() -> None:
    event_record(type=EventType.MESSAGE_SENT, outcome="user", data={"chars": 3})
    assert Event.objects.get().outcome == "user"


def test_a_batch_stores_its_events_with_one_insert(django_assert_num_queries: Any) -> None:
    with django_assert_num_queries(1), events_batched():
        for n in range(5):
            event_record(type=EventType.MESSAGE_SENT, outcome=str(n))
    assert sorted(Event.objects.values_list("outcome", flat=True)) == ["0", "1", "2", "3", "4"]


def test_a_nested_batch_joins_the_outer_one() -> None:
    with events_batched():
        with events_batched():
            event_record(type=EventType.MESSAGE_SENT, outcome="inner")
        assert not Event.objects.exists()  # still waiting for the outer block
        event_record(type=EventType.MESSAGE_SENT, outcome="outer")
    assert Event.objects.count() == 2


def test_events_of_a_failed_block_are_stored_and_the_error_kept() -> None:
    with pytest.raises(RuntimeError, match="the step failed"), events_batched():
        event_record(type=EventType.TURN_FAILED, outcome="internal_error")
        raise RuntimeError("the step failed")
    assert Event.objects.get().outcome == "internal_error"


def test_a_failed_store_does_not_hide_the_blocks_own_error(monkeypatch: Any) -> None:
    def broken(*args: Any, **kwargs: Any) -> None:
        raise ConnectionError("database went away")

    monkeypatch.setattr(Event.objects, "bulk_create", broken)
    with pytest.raises(RuntimeError, match="the step failed"), events_batched():
        event_record(type=EventType.TURN_FAILED)
        raise RuntimeError("the step failed")
    # With no error of its own the block reports the store's failure.
    with pytest.raises(ConnectionError), events_batched():
        event_record(type=EventType.TURN_FAILED)


def test_data_is_masked_in_a_batch_too() -> None:
    with events_batched():
        event_record(type=EventType.MESSAGE_RECEIVED, data={"note": "mail me at a@b.example"})
    assert "a@b.example" not in str(Event.objects.get().data)
