"""Retry policy: which failures are retried and how long to wait before the next attempt.

Full-jitter exponential backoff (AWS Architecture Blog, "Exponential Backoff and Jitter"): the
delay before retry ``n`` (0-based) is ``uniform(0, min(cap, base * 2**n))``, which spreads
clients that failed together. A server's ``Retry-After`` replaces the jitter, capped so a chat
turn never waits minutes for one provider when a fallback could answer.
"""

from __future__ import annotations

import email.utils
import random
import time
from collections.abc import Mapping
from dataclasses import dataclass

from conversations.llm.types import LLMError


@dataclass(frozen=True)
class RetryPolicy:
    max_retries: int = 2
    base: float = 0.5
    cap: float = 8.0
    retry_after_cap: float = 20.0

    def should_retry(self, error: LLMError, *, retries_done: int) -> bool:
        return error.transient and retries_done < self.max_retries

    def backoff_bound(self, retries_done: int) -> float:
        return min(self.cap, self.base * 2**retries_done)

    def delay(self, error: LLMError, *, retries_done: int, rng: random.Random) -> float:
        if error.retry_after is not None:
            return max(0.0, min(self.retry_after_cap, error.retry_after))
        return rng.uniform(0, self.backoff_bound(retries_done))


def parse_retry_after(headers: Mapping[str, str], *, now: float | None = None) -> float | None:
    """Seconds to wait from ``retry-after-ms`` (OpenAI), ``Retry-After`` seconds or HTTP date."""
    millis = headers.get("retry-after-ms")
    if millis:
        try:
            return max(0.0, float(millis) / 1000)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))
