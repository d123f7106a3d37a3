"""Tool names the model sees, unique across specs (issue 15 item 7).

Two imported specs may both have an ``operationId`` ``getOrder``; as tool names they would
shadow each other (the call went to the wrong server). An operation id used by one spec only
keeps its name; one used by several becomes ``<spec slug>__<operation id>``. Names keep the
Chat Completions rules: at most 64 characters of ``[A-Za-z0-9_-]``; a longer one is cut and
ends with a short hash of the whole, so it stays stable and distinct.
"""

from __future__ import annotations

import hashlib
import re
from collections import Counter
from collections.abc import Sequence

MAX_LENGTH = 64
_INVALID = re.compile(r"[^A-Za-z0-9_-]+")


def slug(text: str) -> str:
    return _INVALID.sub("_", text).strip("_").lower()[:24]


def safe_name(name: str) -> str:
    """``name`` within the character set and length rules (a hash keeps cut names distinct)."""
    cleaned = _INVALID.sub("_", name).strip("_") or "tool"
    if len(cleaned) <= MAX_LENGTH:
        return cleaned
    digest = hashlib.sha256(name.encode()).hexdigest()[:8]
    return f"{cleaned[: MAX_LENGTH - 9]}_{digest}"


def unique_tool_names(operations: Sequence[tuple[str, str, str]]) -> list[str]:
    """One name per ``(spec key, spec title, operation id)``, in order. ``spec key`` tells specs
    apart (their id) when two have the same title."""
    per_id = Counter(operation_id for _, _, operation_id in dict.fromkeys(operations))
    specs_per_id: dict[str, set[str]] = {}
    for key, _, operation_id in operations:
        specs_per_id.setdefault(operation_id, set()).add(key)
    names = []
    for key, title, operation_id in operations:
        if per_id[operation_id] <= 1 or len(specs_per_id[operation_id]) <= 1:
            names.append(safe_name(operation_id))
        else:
            names.append(safe_name(f"{slug(title) or 'spec'}_{key}__{operation_id}"))
    return names
