"""PII masking (SPEC §12): emails, phone numbers, card numbers (Luhn-checked) and IBANs, for
logs, analytics and handoff context. Pure functions."""

from __future__ import annotations

import re
from typing import Any

_EMAIL = re.compile(r"\b([A-Za-z0-9._%+-])[A-Za-z0-9._%+-]*@([A-Za-z0-9.-]+\.[A-Za-z]{2,})\b")
_IBAN = re.compile(r"\b([A-Z]{2}\d{2})(?:[ ]?[A-Z0-9]){11,30}\b")
_CARD = re.compile(r"\b(?:\d[ -]?){12,18}\d\b")
# International or grouped national numbers; a bare short number (an order number) is not one.
_PHONE = re.compile(r"(?<![\w+])(?:\+\d{1,3}[ .-]?)?(?:\(?\d{2,4}\)?[ .-]?){2,4}\d{2,4}(?!\w)")
# A dotted-quad IPv4 address (10.0.0.1, 192.168.1.20:8080) is not a phone number.
_OCTET = r"(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)"
_IPV4 = re.compile(rf"(?<![\w.]){_OCTET}(?:\.{_OCTET}){{3}}(?![\w]|\.\d)")


def luhn_valid(digits: str) -> bool:
    total = 0
    for i, char in enumerate(reversed(digits)):
        n = int(char)
        if i % 2 == 1:
            n = n * 2 - 9 if n > 4 else n * 2
        total += n
    return total % 10 == 0


def _card(match: re.Match[str]) -> str:
    digits = re.sub(r"\D", "", match.group(0))
    if 13 <= len(digits) <= 19 and luhn_valid(digits):
        return f"[card ••••{digits[-4:]}]"
    return match.group(0)


def _phone(match: re.Match[str]) -> str:
    text = match.group(0)
    digits = re.sub(r"\D", "", text)
    # Phone-shaped: at least 8 digits with a separator or a leading +; plain 4-7 digit runs
    # (order numbers, years, amounts) stay.
    if 8 <= len(digits) <= 15 and (text.startswith("+") or re.search(r"[ .()-]", text.strip())):
        return "[phone]"
    return text


def mask_text(text: str) -> str:
    text = _EMAIL.sub(lambda m: f"{m.group(1)}***@{m.group(2)}", text)
    text = _IBAN.sub(lambda m: f"{m.group(1)}[iban]", text)
    text = _CARD.sub(_card, text)
    return _mask_phones(text)


def _mask_phones(text: str) -> str:
    """Phones masked everywhere except inside IPv4 addresses, which stay readable in logs."""
    if "." not in text:
        return _PHONE.sub(_phone, text)
    parts: list[str] = []
    last = 0
    for match in _IPV4.finditer(text):
        parts.append(_PHONE.sub(_phone, text[last : match.start()]))
        parts.append(match.group(0))
        last = match.end()
    parts.append(_PHONE.sub(_phone, text[last:]))
    return "".join(parts)


# In a URL: "@" percent-encoded, and international numbers ("+" or "%2B" first). National
# numbers are left: in a request line, digit groups are far more often dates and ids.
_EMAIL_ENCODED = re.compile(
    r"\b([A-Za-z0-9._+-])[A-Za-z0-9._%+-]*?%40([A-Za-z0-9.-]+\.[A-Za-z]{2,})\b", re.IGNORECASE
)
_PHONE_IN_URL = re.compile(r"(?:%2B|\+)\d(?:[\d.()-]|%20|\+){6,20}\d", re.IGNORECASE)


def mask_request_line(text: str) -> str:
    """A request line (``GET /path?query``) with emails (also ``%40``-encoded), cards, IBANs
    and international phone numbers masked; dates and ids in it stay readable."""
    text = _EMAIL.sub(lambda m: f"{m.group(1)}***@{m.group(2)}", text)
    text = _EMAIL_ENCODED.sub(lambda m: f"{m.group(1)}***%40{m.group(2)}", text)
    text = _IBAN.sub(lambda m: f"{m.group(1)}[iban]", text)
    text = _CARD.sub(_card, text)
    return _PHONE_IN_URL.sub("[phone]", text)


def mask(value: Any) -> Any:
    """Mask every string inside ``value`` (dicts, lists, tuples), keys left as they are."""
    if isinstance(value, str):
        return mask_text(value)
    if isinstance(value, dict):
        return {k: mask(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [mask(v) for v in value]
    return value
