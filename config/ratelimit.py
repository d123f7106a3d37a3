"""A sliding-window rate limit on the cache, so every process sharing Redis shares the count
(SPEC §2: no correctness-relevant state in one process's memory).

The window is approximated from two fixed buckets, weighting the previous one by how much of it
still overlaps the window — the usual "sliding window counter": one atomic ``incr`` per hit, no
per-request list to store, and no burst of twice the limit at a bucket boundary.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

from django.core.cache import cache


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    count: float
    retry_after: int


def hit(key: str, *, limit: int, window: int, now: float | None = None) -> Verdict:
    """Count one hit on ``key``; refused hits are counted too, so a flood stays refused."""
    now = time.time() if now is None else now
    bucket = int(now // window)
    current_key = f"rl:{key}:{bucket}"
    previous_key = f"rl:{key}:{bucket - 1}"
    # add() is atomic and only sets when absent; incr() is atomic on Redis.
    cache.add(current_key, 0, timeout=window * 2)
    try:
        current = cache.incr(current_key)
    except ValueError:  # expired between add and incr
        cache.add(current_key, 1, timeout=window * 2)
        current = 1
    previous = cache.get(previous_key, 0)
    overlap = 1 - (now - bucket * window) / window
    count = current + previous * overlap
    if count <= limit:
        return Verdict(True, count, 0)
    return Verdict(False, count, retry_after(count, previous, limit, window, now))


def retry_after(count: float, previous: int, limit: int, window: int, now: float) -> int:
    """Seconds until the weighted count drops back under the limit (at least one)."""
    bucket = int(now // window)
    if previous:
        needed = (count - limit) / previous * window
        return max(1, math.ceil(min(needed, (bucket + 1) * window - now)))
    return max(1, math.ceil((bucket + 1) * window - now))
