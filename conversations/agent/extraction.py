"""Entities in a customer's message and tool arguments filled from them (SPEC §4, §5).

``extract_entities`` finds order-like numbers, emails, money amounts, discount-code-like tokens,
dates and a free-text reason with regular expressions. ``fill_arguments`` maps those entities to a
tool's JSON Schema by property name and type, coerces them, and fills required arguments that the
message leaves out from remembered conversation context ("cancel that one"). ``remember`` keeps
that context up to date from tool calls and results.

Nothing is ever invented: a property gets a value only when the message (or the context) holds
one of the right kind, so a missing value is reported and asked for instead of guessed.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from openapi_import.vocabulary import split_words

__all__ = [
    "CONTEXT_CODE",
    "CONTEXT_EMAIL",
    "CONTEXT_ORDER",
    "ArgumentFill",
    "Entities",
    "Money",
    "coerce",
    "extract_entities",
    "fill_arguments",
    "object_schema",
    "property_category",
    "remember",
    "remember_entities",
    "schema_types",
    "split_words",
]

# Context keys: the only things remembered across turns are identifiers a customer refers back
# to. Amounts and reasons are never carried over, because reusing them would invent intent.
CONTEXT_ORDER = "order_number"
CONTEXT_EMAIL = "email"
CONTEXT_CODE = "code"
_CONTEXT_BY_CATEGORY = {"number": CONTEXT_ORDER, "email": CONTEXT_EMAIL, "code": CONTEXT_CODE}


@dataclass(frozen=True)
class Money:
    amount: Decimal
    currency: str | None = None  # ISO 4217 code when the text named one


@dataclass
class Entities:
    """What a message mentions, each list in the order it matters (see ``extract_entities``)."""

    order_numbers: list[int] = field(default_factory=list)
    emails: list[str] = field(default_factory=list)
    amounts: list[Money] = field(default_factory=list)
    codes: list[str] = field(default_factory=list)
    dates: list[date] = field(default_factory=list)
    reason: str | None = None
    phones: list[str] = field(default_factory=list)

    def is_empty(self) -> bool:
        return not (
            self.order_numbers or self.emails or self.amounts or self.codes or self.dates
        ) and (self.reason is None)


@dataclass
class ArgumentFill:
    arguments: dict[str, Any] = field(default_factory=dict)
    missing: list[str] = field(default_factory=list)  # dotted paths, e.g. "body.code"
    from_context: list[str] = field(default_factory=list)  # dotted paths filled from context

    @property
    def complete(self) -> bool:
        return not self.missing


# -- entity extraction ---------------------------------------------------------------------------

_EMAIL_RE = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")

_PHONE_RES = (
    # International: +49 151 23456789, 0044 20 7946 0958.
    re.compile(r"(?:(?<![\w+])\+|\b00)\d{1,3}[\s./-]?(?:\(\d{1,4}\)[\s./-]?)?\d[\d\s./-]{4,}\d"),
    # Area code in parentheses: (555) 123-4567.
    re.compile(r"\(\d{2,5}\)\s?\d[\d\s.-]{4,}\d"),
    # Three dash-separated groups: 555-123-4567.
    re.compile(r"\b\d{2,5}-\d{2,5}-\d{2,5}\b"),
    # National with a trunk zero and a separator: 0151 23456789.
    re.compile(r"\b0\d{2,4}[\s/-]\d{3,}(?:[\s-]\d+)*\b"),
    # Anything announced as a phone number.
    re.compile(
        r"(?:phone|mobile|cell|tel|telephone|call me(?: at| on)?|whatsapp)(?:\s+number)?"
        r"\s*(?:is\b|:)?\s*(\+?\d[\d\s./()-]{5,}\d)",
        re.IGNORECASE,
    ),
)

_MONTHS = {
    "jan": 1, "january": 1, "feb": 2, "february": 2, "mar": 3, "march": 3, "apr": 4,
    "april": 4, "may": 5, "jun": 6, "june": 6, "jul": 7, "july": 7, "aug": 8, "august": 8,
    "sep": 9, "sept": 9, "september": 9, "oct": 10, "october": 10, "nov": 11, "november": 11,
    "dec": 12, "december": 12,
}  # fmt: skip
_MONTH_ALT = "|".join(sorted(_MONTHS, key=len, reverse=True))
_WEEKDAYS = {
    "monday": 0, "mon": 0, "tuesday": 1, "tue": 1, "tues": 1, "wednesday": 2, "wed": 2,
    "thursday": 3, "thu": 3, "thurs": 3, "friday": 4, "fri": 4, "saturday": 5, "sat": 5,
    "sunday": 6, "sun": 6,
}  # fmt: skip
_WEEKDAY_ALT = "|".join(sorted(_WEEKDAYS, key=len, reverse=True))
_SMALL_NUMBERS = {"a": 1, "an": 1, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5}

_ISO_DATE_RE = re.compile(r"\b(\d{4})-(\d{1,2})-(\d{1,2})(?!\d)")
_DMY_RE = re.compile(r"\b(\d{1,2})[./](\d{1,2})[./](\d{4})\b")
_DAY_MONTH_RE = re.compile(
    rf"\b(\d{{1,2}})(?:st|nd|rd|th)?\s+(?:of\s+)?({_MONTH_ALT})\.?(?:,?\s+(\d{{4}}))?\b",
    re.IGNORECASE,
)
_MONTH_DAY_RE = re.compile(
    rf"\b({_MONTH_ALT})\.?\s+(\d{{1,2}})(?:st|nd|rd|th)?\b(?:,?\s+(\d{{4}})\b)?", re.IGNORECASE
)
_RELATIVE_RE = re.compile(
    r"\b(?:(day after tomorrow)|(today|tonight)|(tomorrow)|(yesterday)|(next week)"
    r"|in\s+(\d{1,2}|a|an|one|two|three|four|five)\s+(days?|weeks?))\b",
    re.IGNORECASE,
)
_WEEKDAY_RE = re.compile(rf"\b(?:(next|this|coming|on)\s+)?({_WEEKDAY_ALT})\b", re.IGNORECASE)
_TIME_RE = re.compile(r"\b\d{1,2}:\d{2}(?::\d{2})?\b")

_CURRENCY_SYMBOLS = {"€": "EUR", "$": "USD", "£": "GBP", "¥": "JPY"}
_CURRENCY_CODES = (
    "EUR",
    "USD",
    "GBP",
    "CHF",
    "JPY",
    "CAD",
    "AUD",
    "NZD",
    "SEK",
    "NOK",
    "DKK",
    "PLN",
    "CZK",
    "HUF",
    "INR",
    "BRL",
    "MXN",
    "CNY",
    "ZAR",
    "SGD",
    "HKD",
)
_CURRENCY_WORDS = {
    "euro": "EUR", "euros": "EUR", "dollar": "USD", "dollars": "USD", "bucks": "USD",
    "pound": "GBP", "pounds": "GBP", "francs": "CHF",
}  # fmt: skip
_NUM = r"\d{1,3}(?:[.,']\d{3})+(?:[.,]\d{1,2})?|\d+(?:[.,]\d{1,2})?"
_CODES_ALT = "|".join(_CURRENCY_CODES)
_WORDS_ALT = "|".join(sorted(_CURRENCY_WORDS, key=len, reverse=True))
_MONEY_PREFIX_RE = re.compile(
    rf"(?P<cur>[€$£¥]|\b(?:{_CODES_ALT})\b)\s?(?P<num>{_NUM})(?![\d.,]*\d)", re.IGNORECASE
)
_MONEY_SUFFIX_RE = re.compile(
    rf"(?<![\w.,])(?P<num>{_NUM})\s?(?P<cur>[€$£¥]|(?:{_CODES_ALT}|{_WORDS_ALT})\b)",
    re.IGNORECASE,
)
_MONEY_KEYWORD_RE = re.compile(
    r"\b(?:refund|amount|total|sum)\s*(?:of|is|:|=)\s*(?P<num>\d+(?:[.,]\d{1,2})?)(?![\d.,]*\d)",
    re.IGNORECASE,
)
_MONEY_DECIMAL_RE = re.compile(r"(?<![\w.,])(?P<num>\d+[.,]\d{2})(?![.,]?\d)")

_CODE_KEYWORD_RE = re.compile(
    r"\b(?:code|coupon|promo|voucher)s?\b(?:\s+code\b)?\s*(?:is\b|:|=)?\s*[\"'\u201c\u2018]?"
    r"(?P<code>[A-Za-z0-9][A-Za-z0-9_-]{2,39})\b",
    re.IGNORECASE,
)
# Upper-case letters and digits with at least one of each (WELCOME10, SPRING5, 10OFF): ordinary
# words in capitals ("HELLO", "I", "DHL") are not codes.
_CODE_SHAPE_RE = re.compile(
    r"(?<![\w@.-])(?=[A-Z0-9_-]*[A-Z])(?=[A-Z0-9_-]*\d)[A-Z0-9][A-Z0-9_-]{2,39}(?![\w@-])"
)

_ORDER_MARKED_RE = re.compile(
    r"\b(?:orders?|order\s+(?:number|no\.?|nr\.?|num|id)|reference|ref\.?)\s*(?:is\s+|:\s*)?"
    r"#?\s?(?P<num>\d{3,10})(?!\d)",
    re.IGNORECASE,
)
_ORDER_HASH_RE = re.compile(r"#\s?(?P<num>\d{1,10})(?!\d)")
_ORDER_BARE_RE = re.compile(r"(?<![\w@#.,/:+-])(?P<num>\d{3,10})(?![\w@]|[.,:/-]\d)")
_NEGATED_RE = re.compile(r"\b(?:not|n't|instead of|rather than)\s+(?:#\s?|order\s+)?$", re.I)

_REASON_RE = re.compile(
    r"\b(?:because(?:\s+of)?|since|due\s+to|as\s+(?=(?:it|they|the|i|we)\b)"
    r"|reason\s*(?:is|:|=|being))\s*[:,-]?\s*(?P<reason>[^.!?;\n]+)",
    re.IGNORECASE,
)
# "since yesterday" / "since monday" is about time, not a reason.
_SINCE_TIME_RE = re.compile(
    rf"^(?:yesterday|today|last|this|then|\d|{_WEEKDAY_ALT}|{_MONTH_ALT})\b", re.IGNORECASE
)

# Words a keyword-introduced code can never be ("the code is not working").
_NOT_CODES = frozenset(
    {
        "the",
        "a",
        "an",
        "to",
        "for",
        "on",
        "my",
        "your",
        "this",
        "that",
        "it",
        "is",
        "and",
        "or",
        "of",
        "in",
        "at",
        "still",
        "valid",
        "work",
        "works",
        "please",
        "again",
        "doesn",
        "don",
        "isn",
        "won",
        "can",
        "code",
        "codes",
    }
)


class _Spans:
    """Character ranges already claimed by an entity, so one digit run is never two things."""

    def __init__(self) -> None:
        self._taken: list[tuple[int, int]] = []

    def free(self, start: int, end: int) -> bool:
        return all(end <= s or start >= e for s, e in self._taken)

    def take(self, start: int, end: int) -> None:
        self._taken.append((start, end))


def extract_entities(text: str, *, today: date | None = None) -> Entities:
    """Finds the entities in ``text``; ``today`` anchors relative dates ("tomorrow").

    Order numbers: ``#1042``, ``order 1042`` and bare runs of 3 to 10 digits, with marked ones
    first, then the rest in text order; numbers after "not" are dropped ("order #1042, not
    1043" gives ``[1042]``). Digits inside phone numbers, dates, times, amounts, emails and codes
    are never order numbers.
    """
    today = today or date.today()
    spans = _Spans()
    found = Entities()

    for match in _EMAIL_RE.finditer(text):
        found.emails.append(match.group(0).rstrip("."))
        spans.take(*match.span())

    found.dates = _dates(text, today, spans)
    for match in _TIME_RE.finditer(text):
        spans.take(*match.span())

    for pattern in _PHONE_RES:
        for match in pattern.finditer(text):
            group = 1 if pattern.groups else 0
            start, end = match.span(group)
            digits = re.sub(r"\D", "", match.group(group))
            if 7 <= len(digits) <= 15 and spans.free(start, end):
                found.phones.append(match.group(group).strip())
                spans.take(start, end)

    found.amounts = _amounts(text, spans)
    found.codes = _codes(text, spans)
    found.order_numbers = _order_numbers(text, spans)
    found.reason = _reason(text)
    return found


def _dates(text: str, today: date, spans: _Spans) -> list[date]:
    hits: list[tuple[int, date]] = []

    def add(match: re.Match[str], value: date | None) -> None:
        if value is not None and spans.free(*match.span()):
            hits.append((match.start(), value))
            spans.take(*match.span())

    for match in _ISO_DATE_RE.finditer(text):
        add(match, _safe_date(int(match[1]), int(match[2]), int(match[3])))
    for match in _DMY_RE.finditer(text):
        add(match, _safe_date(int(match[3]), int(match[2]), int(match[1])))
    for match in _DAY_MONTH_RE.finditer(text):
        if _is_month(match[2]):
            year = int(match[3]) if match[3] else today.year
            add(match, _safe_date(year, _MONTHS[match[2].lower()], int(match[1])))
    for match in _MONTH_DAY_RE.finditer(text):
        if _is_month(match[1]):
            year = int(match[3]) if match[3] else today.year
            add(match, _safe_date(year, _MONTHS[match[1].lower()], int(match[2])))
    for match in _RELATIVE_RE.finditer(text):
        add(match, _relative(match, today))
    for match in _WEEKDAY_RE.finditer(text):
        word = match[2].lower()
        # Short forms ("sat", "sun", "wed") are ordinary words unless introduced by next/on/...
        if len(word) <= 4 and not match[1]:
            continue
        ahead = (_WEEKDAYS[word] - today.weekday() - 1) % 7 + 1
        add(match, today + timedelta(days=ahead))
    hits.sort(key=lambda hit: hit[0])
    return [value for _, value in hits]


def _is_month(word: str) -> bool:
    # "may" is far more often the verb than the month; only a capitalised "May" counts.
    return word.lower() != "may" or word == "May"


def _safe_date(year: int, month: int, day: int) -> date | None:
    try:
        return date(year, month, day)
    except ValueError:
        return None


def _relative(match: re.Match[str], today: date) -> date | None:
    if match[1]:
        return today + timedelta(days=2)
    if match[2]:
        return today
    if match[3]:
        return today + timedelta(days=1)
    if match[4]:
        return today - timedelta(days=1)
    if match[5]:
        return today + timedelta(days=7)
    count = _SMALL_NUMBERS.get(match[6].lower()) or int(match[6])
    unit = 7 if match[7].lower().startswith("week") else 1
    return today + timedelta(days=count * unit)


def _amounts(text: str, spans: _Spans) -> list[Money]:
    hits: list[tuple[int, Money]] = []
    patterns = (_MONEY_PREFIX_RE, _MONEY_SUFFIX_RE, _MONEY_KEYWORD_RE, _MONEY_DECIMAL_RE)
    for pattern in patterns:
        for match in pattern.finditer(text):
            start, end = match.span()
            amount = _parse_amount(match["num"])
            if amount is None or not spans.free(*match.span("num")):
                continue
            currency = _currency(match.groupdict().get("cur"))
            hits.append((start, Money(amount, currency)))
            spans.take(start, end)
    hits.sort(key=lambda hit: hit[0])
    return [money for _, money in hits]


def _currency(token: str | None) -> str | None:
    if not token:
        return None
    if token in _CURRENCY_SYMBOLS:
        return _CURRENCY_SYMBOLS[token]
    return _CURRENCY_WORDS.get(token.lower(), token.upper())


def _parse_amount(raw: str) -> Decimal | None:
    """Reads "19.99", "19,99", "1.234,56", "1,234.56" and "1'000"; the last separator followed
    by one or two digits is the decimal point."""
    value = raw.replace("'", "")
    last = max(value.rfind("."), value.rfind(","))
    if last != -1 and len(value) - last - 1 in (1, 2):
        whole, fraction = value[:last], value[last + 1 :]
        value = re.sub(r"[.,]", "", whole) + "." + fraction
    else:
        value = re.sub(r"[.,]", "", value)
    try:
        amount = Decimal(value)
    except InvalidOperation:
        return None
    return amount if amount > 0 else None


def _codes(text: str, spans: _Spans) -> list[str]:
    hits: list[tuple[int, str]] = []
    for match in _CODE_KEYWORD_RE.finditer(text):
        code = match["code"]
        has_digit = any(ch.isdigit() for ch in code)
        has_letter = any(ch.isalpha() for ch in code)
        # A lower-case word after "code" is usually prose ("the code is not working").
        if code.lower() in _NOT_CODES or not has_letter or not (has_digit or code.isupper()):
            continue
        if spans.free(*match.span("code")):
            hits.append((match.start("code"), code))
            spans.take(*match.span("code"))
    for match in _CODE_SHAPE_RE.finditer(text):
        code = match.group(0)
        if code[:3] in _CURRENCY_CODES and code[3:].replace(".", "").isdigit():
            continue  # "EUR20" is money
        if spans.free(*match.span()):
            hits.append((match.start(), code))
            spans.take(*match.span())
    hits.sort(key=lambda hit: hit[0])
    return _unique(code for _, code in hits)


def _order_numbers(text: str, spans: _Spans) -> list[int]:
    marked: list[tuple[int, int]] = []
    bare: list[tuple[int, int]] = []
    for pattern, bucket in (
        (_ORDER_MARKED_RE, marked),
        (_ORDER_HASH_RE, marked),
        (_ORDER_BARE_RE, bare),
    ):
        for match in pattern.finditer(text):
            start, end = match.span("num")
            if not spans.free(start, end):
                continue
            spans.take(start, end)
            if _NEGATED_RE.search(text[max(0, match.start() - 20) : match.start()]) or (
                _NEGATED_RE.search(text[max(0, start - 20) : start])
            ):
                continue
            number = int(match["num"])
            if number > 0:
                bucket.append((start, number))
    marked.sort()
    bare.sort()
    return _unique(number for _, number in [*marked, *bare])


def _reason(text: str) -> str | None:
    for match in _REASON_RE.finditer(text):
        reason = match["reason"].strip(" ,:-\"'")
        if match.group(0).lower().startswith("since") and _SINCE_TIME_RE.match(reason):
            continue
        if len(reason) >= 2:
            return reason
    return None


def _unique[T](values: Iterable[T]) -> list[T]:
    return list(dict.fromkeys(values))


# -- JSON Schema helpers -------------------------------------------------------------------------


def schema_types(schema: Mapping[str, Any]) -> list[str]:
    """The non-null JSON types a schema accepts, in the order it lists them (``type`` arrays and
    ``anyOf``/``oneOf`` members included); empty when the schema does not say."""
    types: list[str] = []
    declared = schema.get("type")
    if isinstance(declared, str):
        types.append(declared)
    elif isinstance(declared, list):
        types.extend(t for t in declared if isinstance(t, str))
    for key in ("anyOf", "oneOf", "allOf"):
        for member in schema.get(key) or ():
            if isinstance(member, Mapping):
                types.extend(schema_types(member))
    return [t for t in _unique(types) if t != "null"]


def object_schema(schema: Any) -> Mapping[str, Any] | None:
    """The object member of a schema (directly or inside anyOf/oneOf), if it has properties."""
    if not isinstance(schema, Mapping):
        return None
    if isinstance(schema.get("properties"), Mapping):
        return schema
    for key in ("anyOf", "oneOf", "allOf"):
        for member in schema.get(key) or ():
            found = object_schema(member)
            if found is not None:
                return found
    return None


_CATEGORY_WORDS: tuple[tuple[str, frozenset[str]], ...] = (
    ("email", frozenset({"email", "mail", "e-mail"})),
    ("date", frozenset({"date", "day", "deadline"})),
    ("money", frozenset({"amount", "price", "sum", "total", "cost", "refund"})),
    ("currency", frozenset({"currency"})),
    ("code", frozenset({"code", "coupon", "promo", "voucher"})),
    ("reason", frozenset({"reason", "comment", "note", "notes", "message", "explanation", "why"})),
    ("query", frozenset({"query", "q", "search", "term", "keyword", "keywords"})),
    ("number", frozenset({"number", "id", "order", "no", "nr", "num", "ref", "reference"})),
)
# Names that contain a category word but hold something else ("phone_number", "postal_code").
_NOT_ENTITY_WORDS = frozenset(
    {
        "phone",
        "mobile",
        "tel",
        "fax",
        "card",
        "iban",
        "account",
        "quantity",
        "count",
        "limit",
        "page",
        "size",
        "offset",
        "postal",
        "zip",
        "country",
        "language",
        "status",
        "error",
        "sku",
        "tracking",
        "idempotency",
        "key",
    }
)


def property_category(name: str, schema: Mapping[str, Any] | None = None) -> str | None:
    """Which kind of entity a property takes, from its name and format: ``number`` (order-like
    ids), ``email``, ``money``, ``currency``, ``code``, ``date``, ``reason``, ``query``, or None."""
    schema = schema or {}
    fmt = schema.get("format")
    if fmt == "email":
        return "email"
    if fmt in ("date", "date-time"):
        return "date"
    words = set(split_words(name))
    if words & _NOT_ENTITY_WORDS:
        return None
    for category, vocabulary in _CATEGORY_WORDS:
        if words & vocabulary:
            return category
    return None


# -- argument filling ----------------------------------------------------------------------------


class _Candidates:
    """Entity values per category, handed out in order so two number properties get two
    different numbers."""

    def __init__(self, entities: Entities, text: str) -> None:
        self.values: dict[str, list[Any]] = {
            "number": list(entities.order_numbers),
            "email": list(entities.emails),
            "money": [money.amount for money in entities.amounts],
            "currency": _unique(m.currency for m in entities.amounts if m.currency),
            "code": list(entities.codes),
            "date": list(entities.dates),
            "reason": [entities.reason] if entities.reason else [],
            "query": [text.strip()] if text.strip() else [],
        }
        self.used: dict[str, int] = dict.fromkeys(self.values, 0)

    def take(self, category: str, schema: Mapping[str, Any]) -> tuple[bool, Any]:
        values = self.values.get(category, [])
        for index in range(self.used.get(category, 0), len(values)):
            ok, value = _coerce(values[index], schema)
            if ok:
                self.used[category] = index + 1
                return True, value
        return False, None

    def take_all(self, category: str, schema: Mapping[str, Any]) -> list[Any]:
        taken: list[Any] = []
        while True:
            ok, value = self.take(category, schema)
            if not ok:
                return taken
            taken.append(value)


def fill_arguments(
    schema: Mapping[str, Any],
    text: str,
    *,
    context: Mapping[str, Any] | None = None,
    entities: Entities | None = None,
    today: date | None = None,
) -> ArgumentFill:
    """Arguments for a tool whose parameters are ``schema`` from the message ``text``.

    Properties are matched to entities by name and type (see ``property_category``), enum
    properties by their values appearing in the text, booleans by their name appearing in the
    text. Required properties still empty are taken from ``context`` (remembered order number,
    email, code) and listed in ``from_context``; the rest are listed in ``missing``.
    """
    entities = entities if entities is not None else extract_entities(text, today=today)
    fill = ArgumentFill()
    candidates = _Candidates(entities, text)
    fill.arguments = _fill_object(schema, text, candidates, dict(context or {}), "", fill)
    return fill


def _fill_object(
    schema: Mapping[str, Any],
    text: str,
    candidates: _Candidates,
    context: Mapping[str, Any],
    prefix: str,
    fill: ArgumentFill,
) -> dict[str, Any]:
    properties = schema.get("properties") or {}
    required = [name for name in schema.get("required") or () if name in properties]
    # Required properties claim entities first, so an optional id never takes the order number.
    ordered = [*required, *(name for name in properties if name not in required)]
    out: dict[str, Any] = {}
    for name in ordered:
        prop = properties[name]
        if not isinstance(prop, Mapping) or prop.get("readOnly"):
            continue
        path = f"{prefix}{name}"
        is_required = name in required
        nested = object_schema(prop)
        if nested is not None and "object" in (schema_types(prop) or ["object"]):
            value = _fill_object(nested, text, candidates, context, f"{path}.", fill)
            if value or (is_required and not nested.get("required")):
                out[name] = value
            elif is_required and not any(m.startswith(f"{path}.") for m in fill.missing):
                fill.missing.append(path)
            continue
        ok, value = _fill_property(name, prop, text, candidates)
        if not ok and is_required:
            ok, value = _from_context(name, prop, context)
            if ok:
                fill.from_context.append(path)
        if ok:
            out[name] = value
        elif is_required:
            fill.missing.append(path)
    return out


def _fill_property(
    name: str, prop: Mapping[str, Any], text: str, candidates: _Candidates
) -> tuple[bool, Any]:
    category = property_category(name, prop)
    types = schema_types(prop)
    if "array" in types:
        raw_items = prop.get("items")
        items: Mapping[str, Any] = raw_items if isinstance(raw_items, Mapping) else {}
        item_category = category or property_category(name, items)
        if item_category is None:
            return False, None
        values = candidates.take_all(item_category, items)
        return (True, values) if values else (False, None)
    enum = prop.get("enum")
    if isinstance(enum, list) and enum:
        if category is not None:
            ok, value = candidates.take(category, prop)
            if ok:
                return ok, value
        return _enum_from_text(enum, text)
    if types == ["boolean"]:
        return _boolean_from_text(name, text)
    if category is None:
        return False, None
    return candidates.take(category, prop)


def _enum_from_text(enum: Sequence[Any], text: str) -> tuple[bool, Any]:
    lowered = f" {re.sub(r'[^a-z0-9]+', ' ', text.lower())} "
    hits = []
    for value in enum:
        if value is None:
            continue
        phrase = re.sub(r"[^a-z0-9]+", " ", str(value).lower()).strip()
        position = lowered.find(f" {phrase} ") if phrase else -1
        if position != -1:
            hits.append((position, -len(phrase), value))
    if not hits:
        return False, None
    # The earliest mention wins; at one position the longest value ("in transit" over "in").
    return True, min(hits, key=lambda hit: (hit[0], hit[1]))[2]


def _boolean_from_text(name: str, text: str) -> tuple[bool, Any]:
    words = [w for w in split_words(name) if w not in {"is", "has", "should", "do", "with"}]
    lowered = text.lower()
    for word in words:
        match = re.search(rf"\b{re.escape(word)}\w*", lowered)
        if match:
            before = lowered[max(0, match.start() - 12) : match.start()]
            negated = re.search(r"\b(?:no|not|don't|dont|do not|without|never)\s+$", before)
            return True, not negated
    return False, None


def _from_context(
    name: str, prop: Mapping[str, Any], context: Mapping[str, Any]
) -> tuple[bool, Any]:
    context_key = _CONTEXT_BY_CATEGORY.get(property_category(name, prop) or "")
    if context_key is None:
        # Only identifiers carry over; an amount or reason from context would be invented.
        return False, None
    for key in (name, context_key):
        if key in context and context[key] is not None:
            ok, value = _coerce(context[key], prop)
            if ok:
                return True, value
    return False, None


def coerce(value: Any, schema: Mapping[str, Any]) -> tuple[bool, Any]:
    """``(True, value)`` converted to a type ``schema`` accepts and within its constraints
    (enum, minimum, maxLength, pattern...), or ``(False, None)``."""
    return _coerce(value, schema)


def _coerce(value: Any, schema: Mapping[str, Any]) -> tuple[bool, Any]:
    """``value`` converted to a type the schema accepts and within its constraints."""
    enum = schema.get("enum")
    if isinstance(enum, list) and enum:
        for option in enum:
            if option is not None and _same(option, value):
                return True, option
        return False, None
    types = schema_types(schema) or [""]
    for kind in types:
        ok, converted = _convert(value, kind)
        if ok and _within(converted, schema):
            return True, converted
    return False, None


def _same(option: Any, value: Any) -> bool:
    if isinstance(option, str):
        return option.lower() == str(value).lower()
    try:
        return Decimal(str(option)) == Decimal(str(value))
    except InvalidOperation:
        return False


def _convert(value: Any, kind: str) -> tuple[bool, Any]:
    if isinstance(value, bool):
        return (kind in ("boolean", ""), value)
    if kind == "integer":
        number = _decimal(value)
        if number is None or number != number.to_integral_value():
            return False, None
        return True, int(number)
    if kind == "number":
        number = _decimal(value)
        if number is None:
            return False, None
        return True, _json_number(number)
    if kind == "string":
        if isinstance(value, date):
            return True, value.isoformat()
        if isinstance(value, Decimal):
            return True, _decimal_text(value)
        return (True, str(value)) if isinstance(value, str | int) else (False, None)
    if kind == "boolean":
        return False, None
    if kind in ("object", "array"):
        return (isinstance(value, dict if kind == "object" else list), value)
    # Untyped schema: keep the value, in a JSON-friendly form.
    if isinstance(value, Decimal):
        return True, _json_number(value)
    if isinstance(value, date):
        return True, value.isoformat()
    return True, value


def _decimal(value: Any) -> Decimal | None:
    if isinstance(value, Decimal):
        return value
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, float):
        return Decimal(str(value))
    if isinstance(value, str) and re.fullmatch(r"-?\d+(?:\.\d+)?", value.strip()):
        return Decimal(value.strip())
    return None


def _json_number(number: Decimal) -> int | float:
    return int(number) if number == number.to_integral_value() else float(number)


def _decimal_text(number: Decimal) -> str:
    if number == number.to_integral_value():
        return str(int(number))
    exponent = number.as_tuple().exponent
    return f"{number:.2f}" if isinstance(exponent, int) and exponent >= -2 else str(number)


def _within(value: Any, schema: Mapping[str, Any]) -> bool:
    """Whether ``value`` meets the schema's constraints; with anyOf/oneOf, those of at least one
    member of a fitting type."""
    if not _constraints_allow(value, schema):
        return False
    members = [
        member
        for key in ("anyOf", "oneOf")
        for member in schema.get(key) or ()
        if isinstance(member, Mapping)
    ]
    if not members:
        return True
    return any(
        (not schema_types(member) or any(_type_matches(value, t) for t in schema_types(member)))
        and _within(value, member)
        for member in members
    )


def _constraints_allow(value: Any, schema: Mapping[str, Any]) -> bool:
    if isinstance(value, int | float) and not isinstance(value, bool):
        if "minimum" in schema and value < schema["minimum"]:
            return False
        if "maximum" in schema and value > schema["maximum"]:
            return False
        low, high = schema.get("exclusiveMinimum"), schema.get("exclusiveMaximum")
        if isinstance(low, int | float) and not isinstance(low, bool) and value <= low:
            return False
        if isinstance(high, int | float) and not isinstance(high, bool) and value >= high:
            return False
    if isinstance(value, str):
        if "minLength" in schema and len(value) < schema["minLength"]:
            return False
        if "maxLength" in schema and len(value) > schema["maxLength"]:
            return False
        pattern = schema.get("pattern")
        if isinstance(pattern, str):
            try:
                if re.search(pattern, value) is None:
                    return False
            except re.error:
                pass  # a pattern Python cannot read is not a reason to refuse a value
    return True


def _type_matches(value: Any, kind: str) -> bool:
    if kind == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == "number":
        return isinstance(value, int | float) and not isinstance(value, bool)
    if kind == "string":
        return isinstance(value, str)
    if kind == "boolean":
        return isinstance(value, bool)
    return True


# -- conversation context ------------------------------------------------------------------------

_ERROR_KEYS = frozenset({"detail", "error", "errors", "message", "code", "title", "status"})


def _is_error(result: Any) -> bool:
    if not isinstance(result, Mapping) or not result:
        return False
    has_text = any(isinstance(result.get(key), str | Mapping) for key in ("detail", "error"))
    return has_text and set(result) <= _ERROR_KEYS


def _context_key(key: str, value: Any) -> str | None:
    words = split_words(key)
    if key == "number" or ("order" in words and words[-1] in {"number", "id", "no"}):
        ok, _ = _convert(value, "integer")
        return CONTEXT_ORDER if ok else None
    category = property_category(key)
    if category in ("email", "code") and isinstance(value, str) and value:
        return _CONTEXT_BY_CATEGORY[category]
    return None


def _remember_from(memory: dict[str, Any], values: Mapping[str, Any], *, depth: int = 0) -> None:
    for key, value in values.items():
        if isinstance(value, Mapping):
            # Only the request body nests remembered things; results' nested items do not.
            if depth == 0 and key == "body":
                _remember_from(memory, value, depth=1)
            continue
        target = _context_key(str(key), value)
        if target == CONTEXT_ORDER:
            memory[target] = int(Decimal(str(value)))
        elif target is not None:
            memory[target] = value


def remember(
    context: Mapping[str, Any],
    arguments: Mapping[str, Any],
    result: Any,
    *,
    failed: bool = False,
) -> dict[str, Any]:
    """A new context remembering the order number, email and code that a tool call referred to
    and that its result shows.

    A failed call (``failed``, or a result that is an error body) is not remembered, and the
    values it used are forgotten, so "cancel that one" never points at an order that does not
    exist.
    """
    memory = dict(context)
    if failed or _is_error(result):
        used: dict[str, Any] = {}
        _remember_from(used, arguments)
        for key, value in used.items():
            if memory.get(key) == value:
                del memory[key]
        return memory
    _remember_from(memory, arguments)
    if isinstance(result, list) and len(result) == 1:
        result = result[0]
    if isinstance(result, Mapping):
        _remember_from(memory, result, depth=1)
    return memory


def remember_entities(context: Mapping[str, Any], entities: Entities) -> dict[str, Any]:
    """A new context with the first order number, email and code a message mentions."""
    memory = dict(context)
    if entities.order_numbers:
        memory[CONTEXT_ORDER] = entities.order_numbers[0]
    if entities.emails:
        memory[CONTEXT_EMAIL] = entities.emails[0]
    if entities.codes:
        memory[CONTEXT_CODE] = entities.codes[0]
    return memory
