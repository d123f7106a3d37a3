"""Flagging prompt-injection attempts in customer text and tool output (SPEC §6, §12).

Detection only informs: it is logged, counted and recorded. What keeps an injection harmless is
structural — tool output is delimited as data, and every consequential call needs an approval
that only the customer or staff can give, never text inside a conversation.
"""

from __future__ import annotations

import re

from prometheus_client import Counter

from config.pii import mask_text

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
            r"admin|user)\b|\bno (approval|confirmation) (is )?(needed|required)\b"
            r"|\b(skip|bypass|without)\b.{0,20}\b(approval|confirmation)\b"
            r"|\bapprove (it|this|that|the \w+) (yourself|for me|on my behalf)\b",
        ),
        ("exfiltrate", r"\b(send|post|forward)\b.{0,40}\b(https?://|to this url|webhook)\b"),
    )
)


def detect_injection(text: str) -> list[str]:
    """Names of the patterns ``text`` matches (empty when it looks like plain data)."""
    return [name for name, pattern in _PATTERNS if pattern.search(text)]


def injection_excerpt(text: str, *, around: int = 60, limit: int = 200) -> str:
    """The text around the first flagged pattern, PII masked and whitespace collapsed: what an
    event may carry (the whole text can be long and personal)."""
    starts = [m.start() for _, pattern in _PATTERNS if (m := pattern.search(text))]
    start = min(starts) if starts else 0
    snippet = text[max(0, start - around) : start + around * 2]
    return " ".join(mask_text(snippet).split())[:limit]


# A run of the system prompt this long in a reply is the prompt leaking, not a coincidence.
_LEAK_RUN = 40
# Secret-looking tokens in a system prompt (a canary, a key): letters and digits, 8 or more.
_SECRET_TOKEN = re.compile(r"\b(?=[\w-]*\d)(?=[\w-]*[A-Za-z])[\w-]{8,}\b")


def leaks_prompt(text: str, system_prompt: str) -> bool:
    """Whether a model's reply repeats its system prompt (SECURITY-TESTS row 40, LLM07): a
    secret-looking token of it, or any run of ``_LEAK_RUN`` characters, whitespace-normalised."""
    reply = " ".join(text.split()).lower()
    prompt = " ".join(system_prompt.split()).lower()
    if not reply or not prompt:
        return False
    if any(token.lower() in reply for token in _SECRET_TOKEN.findall(system_prompt)):
        return True
    step = _LEAK_RUN // 2
    return any(
        prompt[i : i + _LEAK_RUN] in reply for i in range(0, max(1, len(prompt) - _LEAK_RUN), step)
    )
