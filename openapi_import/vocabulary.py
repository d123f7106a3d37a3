"""The one vocabulary of what an operation does, shared by import-time classification
(``openapi_import.classification``), the models' choices, the router and the reply wording
(``conversations.agent``): access levels, approval levels, identity roles, the verbs that read,
and how an operation's name splits into words. Plain Python, no Django."""

from __future__ import annotations

import re
from collections.abc import Mapping
from enum import StrEnum


class AccessType(StrEnum):
    READ = "read"
    WRITE = "write"
    DESTRUCTIVE = "destructive"


class Approval(StrEnum):
    NONE = "none"
    USER = "user"
    STAFF = "staff"


class IdentityRole(StrEnum):
    """How an operation takes part in verifying the customer inside the chat (SPEC §3)."""

    NONE = ""
    VERIFY_START = "verify_start"
    VERIFY_CONFIRM = "verify_confirm"


# Labels for forms and the admin (the models' ``choices``).
ACCESS_LABELS: Mapping[AccessType, str] = {
    AccessType.READ: "Read",
    AccessType.WRITE: "Write",
    AccessType.DESTRUCTIVE: "Destructive",
}
APPROVAL_LABELS: Mapping[Approval, str] = {
    Approval.NONE: "None",
    Approval.USER: "Customer approves",
    Approval.STAFF: "Staff approve",
}
IDENTITY_ROLE_LABELS: Mapping[IdentityRole, str] = {
    IdentityRole.NONE: "None",
    IdentityRole.VERIFY_START: "Starts verification (sends a one-time code)",
    IdentityRole.VERIFY_CONFIRM: "Confirms verification (its result names the customer)",
}


def choices[E: StrEnum](labels: Mapping[E, str]) -> list[tuple[str, str]]:
    return [(member.value, label) for member, label in labels.items()]


# Verbs that only read, as the first word of an operation's name (``getOrder``,
# ``searchProducts``) or the action of a POST (``POST /orders/search``). Entries with ``_``
# match consecutive words.
READ_VERBS: tuple[str, ...] = (
    "search",
    "scan",
    "list",
    "find",
    "query",
    "lookup",
    "look_up",
    "get",
    "count",
    "export",
    "fetch",
    "download",
    "retrieve",
    "show",
    "view",
    "describe",
    "preview",
    "estimate",
    "calculate",
    "validate",
    "check",
    "read",
)
# The same as single words, for a name already split (``split_words``).
READ_VERB_WORDS: frozenset[str] = frozenset(v for v in READ_VERBS if "_" not in v)


def split_words(name: str) -> list[str]:
    """``getOrderTracking`` → ``["get", "order", "tracking"]``; ``HTTPServer`` → ``["http",
    "server"]``; ``Idempotency-Key`` and ``order_number`` split on punctuation."""
    spaced = re.sub(r"([a-z0-9])([A-Z])", r"\1 \2", name)
    spaced = re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1 \2", spaced)
    return [word.lower() for word in re.split(r"[^A-Za-z0-9]+", spaced) if word]
