"""Flagging prompt-injection attempts in customer text and tool output (SPEC §6, §12).

Detection only informs: it is logged, counted and recorded. What keeps an injection harmless is
structural — tool output is delimited as data, and every consequential call needs an approval
that only the customer or staff can give, never text inside a conversation.
"""

from __future__ import annotations

import re

from prometheus_client import Counter

INJECTIONS = Counter(
    "actiondesk_injection_flagged_total", "Instruction-like content flagged", ["source"]
)

_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = tuple(
    (name, re.compile(pattern, re.IGNORECASE))
    for name, pattern in (
        (
            "ignore_instructions",
            r"\b(ignore|disregard|forget)\b.{0,40}\b(previous|prior|above|"
            r"earlier|all|your)\b.{0,20}\b(instructions?|rules|prompts?)\b",
        ),
        ("role_override", r"\b(you are now|act as|pretend to be|from now on you)\b"),
        ("system_prompt", r"(^|\n)\s*(system|assistant)\s*:|<\s*/?\s*(system|tool_output)\b"),
        ("reveal_prompt", r"\b(reveal|print|show)\b.{0,30}\b(system prompt|instructions)\b"),
        ("tool_command", r"\b(call|invoke|run|execute)\b.{0,30}\b(tool|function|api|operation)\b"),
        (
            "approval_claim",
            r"\b(already )?(approved|authori[sz]ed) by (the )?(customer|staff|"
            r"admin|user)\b|\bno (approval|confirmation) (is )?(needed|required)\b",
        ),
        ("exfiltrate", r"\b(send|post|forward)\b.{0,40}\b(https?://|to this url|webhook)\b"),
    )
)


def detect_injection(text: str) -> list[str]:
    """Names of the patterns ``text`` matches (empty when it looks like plain data)."""
    return [name for name, pattern in _PATTERNS if pattern.search(text)]
