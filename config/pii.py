"""PII masking (SPEC §12): emails, phone numbers, card numbers (Luhn-checked) and IBANs
(mod-97-checked), for logs, analytics, replay and handoff context, and (``PII_MASK_MODEL_INPUT``)
for text on its way to a model, where :class:`Placeholders` numbers each value so the model's
tool arguments can be mapped back to what the customer typed. Pure functions."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

_EMAIL = re.compile(r"\b([A-Za-z0-9._%+-])[A-Za-z0-9._%+-]*@([A-Za-z0-9.-]+\.[A-Za-z]{2,})\b")
_IBAN = re.compile(r"\b([A-Z]{2}\d{2})(?:[ ]?[A-Z0-9]){11,30}\b")
_CARD = re.compile(r"\b(?:\d[ -]?){12,18}\d\b")
# International or grouped national numbers; a bare short number (an order number) is not one.
_PHONE = re.compile(r"(?<![\w+])(?:\+\d{1,3}[ .-]?)?(?:\(?\d{1,4}\)?[ .-]?){2,5}\d{2,4}(?!\w)")
# A dotted-quad IPv4 address (10.0.0.1, 192.168.1.20:8080) is not a phone number.
_OCTET = r"(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)"
_IPV4 = re.compile(rf"(?<![\w.]){_OCTET}(?:\.{_OCTET}){{3}}(?![\w]|\.\d)")
# Dates (2026-12-04, 04.12.2026, 12/04/2026) are not phone numbers either.
_DATE = re.compile(
    r"(?<![\w.-])(?:(?:19|20)\d\d-[01]?\d-[0-3]?\d|[0-3]?\d[./-][01]?\d[./-](?:19|20)\d\d"
    r"|[01]?\d/[0-3]?\d/(?:19|20)\d\d)(?![\w-]|\.\d)"
)
# IBAN-shaped text that fails mod-97 is left whole too (its digit groups are no phone).
_NOT_PHONE = re.compile(f"{_IPV4.pattern}|{_DATE.pattern}|{_IBAN.pattern}")


def luhn_valid(digits: str) -> bool:
    total = 0
    for i, char in enumerate(reversed(digits)):
        n = int(char)
        if i % 2 == 1:
            n = n * 2 - 9 if n > 4 else n * 2
        total += n
    return total % 10 == 0


def iban_valid(text: str) -> bool:
    """ISO 13616 check: the country and check digits moved to the end, letters as 10..35,
    the number mod 97 is 1."""
    compact = re.sub(r"\s", "", text).upper()
    if not re.fullmatch(r"[A-Z]{2}\d{2}[A-Z0-9]{11,30}", compact):
        return False
    moved = compact[4:] + compact[:4]
    return int("".join(str(int(char, 36)) for char in moved)) % 97 == 1


def _iban(match: re.Match[str]) -> str:
    return f"{match.group(1)}[iban]" if iban_valid(match.group(0)) else match.group(0)


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
    text = _IBAN.sub(_iban, text)
    text = _CARD.sub(_card, text)
    return _mask_phones(text)


def _mask_phones(text: str, phone: Any = None) -> str:
    """Phones masked everywhere except inside IPv4 addresses and dates, which stay readable."""
    phone = phone or _phone
    if not any(char in text for char in "./-") and not _IBAN.search(text):
        return _PHONE.sub(phone, text)
    parts: list[str] = []
    last = 0
    for match in _NOT_PHONE.finditer(text):
        parts.append(_PHONE.sub(phone, text[last : match.start()]))
        parts.append(match.group(0))
        last = match.end()
    parts.append(_PHONE.sub(phone, text[last:]))
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
    text = _IBAN.sub(_iban, text)
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


_PLACEHOLDER = re.compile(r"\[(email|phone|card|iban)_(\d+)(?: ending \d{4})?\]")


class Placeholders:
    """Numbered stand-ins for the PII in text sent to a model (``[email_1]``,
    ``[card_2 ending 4242]``): the same value always gets the same placeholder, so a model can
    still tell two cards apart and refer to one, and :meth:`restore` puts the customer's values
    back into the tool arguments it writes. ``mapping`` (placeholder key -> value) is plain
    JSON, kept on the turn so a paused turn restores after a restart too."""

    def __init__(self, mapping: dict[str, str] | None = None) -> None:
        self.mapping: dict[str, str] = dict(mapping or {})

    def _key(self, kind: str, value: str) -> str:
        for key, known in self.mapping.items():
            if known == value and key.startswith(kind + "_"):
                return key
        count = sum(key.startswith(kind + "_") for key in self.mapping)
        key = f"{kind}_{count + 1}"
        self.mapping[key] = value
        return key

    def mask_text(self, text: str) -> str:
        def email(match: re.Match[str]) -> str:
            return f"[{self._key('email', match.group(0))}]"

        def iban(match: re.Match[str]) -> str:
            if not iban_valid(match.group(0)):
                return match.group(0)
            return f"[{self._key('iban', re.sub(r'\s', '', match.group(0)))}]"

        def card(match: re.Match[str]) -> str:
            digits = re.sub(r"\D", "", match.group(0))
            if 13 <= len(digits) <= 19 and luhn_valid(digits):
                return f"[{self._key('card', digits)} ending {digits[-4:]}]"
            return match.group(0)

        def phone(match: re.Match[str]) -> str:
            if _phone(match) == match.group(0):
                return match.group(0)
            return f"[{self._key('phone', match.group(0).strip())}]"

        text = _EMAIL.sub(email, text)
        text = _IBAN.sub(iban, text)
        text = _CARD.sub(card, text)
        return _mask_phones(text, phone)

    def restore_text(self, text: str) -> str:
        def back(match: re.Match[str]) -> str:
            return self.mapping.get(f"{match.group(1)}_{match.group(2)}", match.group(0))

        return _PLACEHOLDER.sub(back, text)

    def restore(self, value: Any) -> Any:
        """``value`` (tool arguments: dicts, lists, strings) with every placeholder replaced by
        the value it stands for; unknown placeholders stay as they are."""
        if isinstance(value, str):
            return self.restore_text(value)
        if isinstance(value, dict):
            return {k: self.restore(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self.restore(v) for v in value]
        return value


def mask_messages[M](messages: Sequence[M], placeholders: Placeholders) -> list[M]:
    """Chat messages (``conversations.llm.types.ChatMessage``) with the PII in every non-system
    text replaced by ``placeholders``; the system prompt is ours and stays as written."""
    masked: list[M] = []
    for message in messages:
        content = getattr(message, "content", None)
        if getattr(message, "role", "") == "system" or not content:
            masked.append(message)
        else:
            masked.append(replace(message, content=placeholders.mask_text(content)))  # type: ignore[type-var]
    return masked
