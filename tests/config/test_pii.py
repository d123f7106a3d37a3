from __future__ import annotations

from typing import Any

import pytest

from config.pii import Placeholders, iban_valid, luhn_valid, mask, mask_text


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


SAME = "(unchanged)"


# Real-looking samples (SECURITY-TESTS row 39): what must be masked, and what must not be.
@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("mail chloe.martin+orders@mail.example.co.uk", "mail c***@mail.example.co.uk"),
        ("visa 4242 4242 4242 4242 exp 12/28", "visa [card ••••4242] exp 12/28"),
        ("amex 3782 822463 10005", "amex [card ••••0005]"),
        ("mastercard 5555555555554444", "mastercard [card ••••4444]"),
        ("IBAN GB82 WEST 1234 5698 7654 32", "IBAN GB82[iban]"),
        ("iban FR1420041010050500013M02606 please", "iban FR14[iban] please"),
        ("mobile +33 6 12 34 56 78", "mobile [phone]"),
        ("US (415) 555-2671", "US [phone]"),
        # Not PII: a failing mod-97 is no IBAN, order numbers, amounts, dates and addresses.
        ("ref GB82 WEST 1234 5698 7654 33", SAME),
        ("order #100234 of 2026-12-01 for EUR 1,299.00", SAME),
        ("delivered 04.12.2026, refund 59.90", SAME),
        ("due 12/24/2026 at 10:30", SAME),
        ("tracking 1Z999AA10123456784", SAME),
        ("from 2001:db8::1 and 198.51.100.7", SAME),
        ("qty 3, sku 40-1182", SAME),
    ],
)  # fmt: skip
def test_mask_text_samples(text: str, expected: str) -> None:
    assert mask_text(text) == (text if expected is SAME else expected)


@pytest.mark.parametrize(
    ("iban", "valid"),
    [
        ("DE89 3704 0044 0532 0130 00", True),
        ("GB82WEST12345698765432", True),
        ("NL91ABNA0417164300", True),
        ("DE89 3704 0044 0532 0130 01", False),
        ("XX00 0000 0000 0000", False),
    ],
)
def test_iban_mod97(iban: str, valid: bool) -> None:
    assert iban_valid(iban) is valid


def test_placeholders_number_values_and_restore_them() -> None:
    placeholders = Placeholders()
    text = placeholders.mask_text(
        "ana@example.com, card 4242 4242 4242 4242 and 5555 5555 5555 4444, "
        "again ana@example.com, order 1042 on 2026-12-04"
    )
    assert text == (
        "[email_1], card [card_1 ending 4242] and [card_2 ending 4444], "
        "again [email_1], order 1042 on 2026-12-04"
    )
    again = Placeholders(placeholders.mapping)  # as a resumed turn rebuilds it
    assert again.restore({"to": "[email_1]", "cards": ["[card_2 ending 4444]", "[card_2]"]}) == {
        "to": "ana@example.com",
        "cards": ["5555555555554444", "5555555555554444"],
    }
    assert again.restore("[email_7] stays") == "[email_7] stays"


def test_structlog_output_through_the_configured_pipeline(capsys: Any) -> None:
    """Row 39: a transcript logged through the real processors and JSON renderer."""
    import json
    import logging

    import structlog

    from config.logging import build_logging, configure

    configure(build_logging(log_format="json", level="INFO"))
    try:
        structlog.get_logger("pii_table").info(
            "transcript_logged",
            content="I'm ana@example.com, +49 151 23456789, card 4111 1111 1111 1111, "
            "IBAN DE89 3704 0044 0532 0130 00, order 1042 on 2026-12-04",
        )
        for handler in logging.getLogger().handlers:
            handler.flush()
        line = next(
            json.loads(x) for x in capsys.readouterr().err.splitlines() if "transcript_logged" in x
        )
    finally:
        structlog.reset_defaults()
        from django.conf import settings

        configure(settings.LOGGING)
    assert line["content"] == (
        "I'm a***@example.com, [phone], card [card ••••1111], IBAN DE89[iban], "
        "order 1042 on 2026-12-04"
    )
