from __future__ import annotations

from typing import Any

import pytest

from config.pii import luhn_valid, mask, mask_text


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("mail ana@example.com now", "mail a***@example.com now"),
        ("card 4111 1111 1111 1111 ok", "card [card ••••1111] ok"),
        ("card 4111-1111-1111-1112", "card 4111-1111-1111-1112"),  # fails Luhn: not a card
        ("iban DE89 3704 0044 0532 0130 00", "iban DE89[iban]"),
        ("call +49 151 23456789", "call [phone]"),
        ("call (030) 1234-5678", "call [phone]"),
        ("order 1042 total 59.90", "order 1042 total 59.90"),
        ("year 2026, order #104211", "year 2026, order #104211"),
        # IP addresses are not phone numbers (issue 13 item 16); phones beside them still are
        # (SECURITY-TESTS row 39).
        ("server 10.0.0.1 up", "server 10.0.0.1 up"),
        ("host 192.168.1.20", "host 192.168.1.20"),
        ("upstream 172.16.254.1:8080 refused", "upstream 172.16.254.1:8080 refused"),
        ("from 203.0.113.195, call +49 151 23456789", "from 203.0.113.195, call [phone]"),
        ("call 555-123-4567 or 10.10.10.10", "call [phone] or 10.10.10.10"),
    ],
)
def test_mask_text(text: str, expected: str) -> None:
    assert mask_text(text) == expected


def test_mask_walks_structures() -> None:
    data = {"email": "ben@example.com", "items": [{"note": "+44 20 7946 0958"}], "n": 5}
    assert mask(data) == {
        "email": "b***@example.com",
        "items": [{"note": "[phone]"}],
        "n": 5,
    }


def test_luhn() -> None:
    assert luhn_valid("4111111111111111") and not luhn_valid("4111111111111112")


def test_logs_are_masked() -> None:
    import structlog

    from config.logging import mask_pii

    processors: list[Any] = [mask_pii]
    with structlog.testing.capture_logs(processors=processors) as logs:
        structlog.get_logger("t").info("customer_wrote", text="I am ana@example.com")
    assert logs[0]["text"] == "I am a***@example.com"
