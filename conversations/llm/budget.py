"""Tool schemas within a budget per model call (issue 15 item 8).

One operation with 150 properties made a 69.5 KB tool and 73 KB per call. :func:`fit_tools`
keeps the tools sent on one call within ``max_tools`` and ``max_bytes`` (the JSON the server
receives), in this order: shorten descriptions (the tool's and its properties'), then drop
optional properties of the largest tools, then send fewer tools (the least relevant last in the
given order). The :class:`BudgetReport` says what was trimmed, for the log and the record.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from conversations.llm.types import ToolSpec

DESCRIPTION_CHARS = 200


@dataclass
class BudgetReport:
    tools_before: int = 0
    tools_after: int = 0
    bytes_before: int = 0
    bytes_after: int = 0
    shortened: list[str] = field(default_factory=list)  # descriptions cut
    optional_removed: dict[str, list[str]] = field(default_factory=dict)
    dropped: list[str] = field(default_factory=list)  # tools not sent on this call

    @property
    def changed(self) -> bool:
        return bool(self.shortened or self.optional_removed or self.dropped)

    def as_dict(self) -> dict[str, Any]:
        return {
            "tools": [self.tools_before, self.tools_after],
            "bytes": [self.bytes_before, self.bytes_after],
            "shortened": self.shortened,
            "optional_removed": {name: len(props) for name, props in self.optional_removed.items()},
            "dropped": self.dropped,
        }


def tool_bytes(tool: ToolSpec) -> int:
    """The size of the tool as sent (Chat Completions wire format, compact JSON)."""
    wire = {
        "type": "function",
        "function": {
            "name": tool.name,
            "description": tool.description,
            "parameters": tool.parameters,
        },
    }
    return len(json.dumps(wire, separators=(",", ":"), ensure_ascii=False).encode())


def fit_tools(
    tools: Sequence[ToolSpec], *, max_tools: int, max_bytes: int
) -> tuple[list[ToolSpec], BudgetReport]:
    """``tools`` (most relevant first) within the budget; ``0`` means no limit."""
    kept = list(tools)
    report = BudgetReport(tools_before=len(kept), bytes_before=_size(kept))
    if max_tools and len(kept) > max_tools:
        report.dropped += [tool.name for tool in kept[max_tools:]]
        kept = kept[:max_tools]
    if max_bytes and _size(kept) > max_bytes:
        kept = [_shortened(tool, report) for tool in kept]
    if max_bytes and _size(kept) > max_bytes:
        for index in sorted(range(len(kept)), key=lambda i: -tool_bytes(kept[i])):
            kept[index] = _without_optional(kept[index], report)
            if _size(kept) <= max_bytes:
                break
    while max_bytes and len(kept) > 1 and _size(kept) > max_bytes:
        report.dropped.append(kept.pop().name)
    report.tools_after = len(kept)
    report.bytes_after = _size(kept)
    return kept, report


def _size(tools: Sequence[ToolSpec]) -> int:
    return sum(tool_bytes(tool) for tool in tools) + max(len(tools) - 1, 0) + 2


def _shortened(tool: ToolSpec, report: BudgetReport) -> ToolSpec:
    parameters = copy.deepcopy(tool.parameters)
    cut = _strip_descriptions(parameters)
    description = tool.description
    if len(description) > DESCRIPTION_CHARS:
        description = description[: DESCRIPTION_CHARS - 1].rstrip() + "…"
        cut = True
    if not cut:
        return tool
    report.shortened.append(tool.name)
    return replace(tool, description=description, parameters=parameters)


def _strip_descriptions(schema: Any) -> bool:
    """Removes property descriptions (and examples) in place; the tool's own stays, cut."""
    changed = False
    if isinstance(schema, dict):
        for key, value in schema.items():
            if key == "properties" and isinstance(value, dict):
                for prop in value.values():
                    if isinstance(prop, dict):
                        for noise in ("description", "examples", "example"):
                            if noise in prop:
                                del prop[noise]
                                changed = True
            if isinstance(value, dict | list):
                changed = _strip_descriptions(value) or changed
    elif isinstance(schema, list):
        for item in schema:
            changed = _strip_descriptions(item) or changed
    return changed


def _without_optional(tool: ToolSpec, report: BudgetReport) -> ToolSpec:
    parameters = copy.deepcopy(tool.parameters)
    removed = _drop_optional(parameters, prefix="")
    if not removed:
        return tool
    report.optional_removed.setdefault(tool.name, []).extend(removed)
    return replace(tool, parameters=parameters)


def _drop_optional(schema: Any, *, prefix: str) -> list[str]:
    """Removes properties not in ``required``, at every object level; returns their paths."""
    if not isinstance(schema, dict):
        return []
    removed: list[str] = []
    properties = schema.get("properties")
    if isinstance(properties, dict):
        required = set(schema.get("required") or [])
        for name in list(properties):
            if name not in required:
                del properties[name]
                removed.append(prefix + name)
            else:
                removed += _drop_optional(properties[name], prefix=f"{prefix}{name}.")
    return removed
