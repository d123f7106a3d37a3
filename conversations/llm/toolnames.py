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


def tool_name(*, spec_key: str, spec_title: str, operation_id: str, shared: bool) -> str:
    """The operation's tool name; ``shared``: another live spec has the same operation id, so
    the spec (title slug and key, which tells apart specs of the same title) goes before it."""
    if not shared:
        return safe_name(operation_id)
    return safe_name(f"{slug(spec_title) or 'spec'}_{spec_key}__{operation_id}")
