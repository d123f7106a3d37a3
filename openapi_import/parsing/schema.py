"""Normalising OpenAPI Schema Objects into self-contained JSON Schema for LLM tool calling.

Owns: inlining of ``$ref`` (only where a schema is expected, never inside ``example``/``default``/
``enum``/``const`` values), cycle breaking, the expansion budgets (reference depth, nodes per
operation, nesting depth), ``nullable``/``x-nullable`` -> ``"null"`` types, Swagger ``type: file``,
dropping ``readOnly`` properties (everything here is request-side) and noise (``example``,
``xml``, ``externalDocs``, ``x-*``).

Expanded component schemas are memoised when their expansion does not depend on where they
were reached from, so big specs (GitHub: thousands of refs) are expanded once per component.
Returned trees may share memoised sub-trees: callers must copy before mutating (``clone``).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

from openapi_import.parsing.refs import RefResolver, is_internal_ref, ref_name
from openapi_import.parsing.types import (
    MAX_INLINE_NODES_PER_OPERATION,
    MAX_REF_DEPTH,
    MAX_SCHEMA_DEPTH,
    MAX_SCHEMA_NODES_PER_OPERATION,
    MAX_TOTAL_SCHEMA_NODES,
    ImportReport,
    SpecError,
)

__all__ = ["MAX_TEXT", "SchemaNormalizer", "clone", "data_cost"]


class _InlineBudgetExceeded(Exception):
    """Inlining this operation's schemas would exceed the inline budget: use ``$defs``."""


# Keywords whose value is a schema / a list of schemas / a map of name -> schema (2020-12 and
# draft-4 spellings). Everything else is data and is copied verbatim, refs and all.
_SCHEMA_KEYS = frozenset(
    {
        "additionalProperties",
        "not",
        "contains",
        "propertyNames",
        "if",
        "then",
        "else",
        "unevaluatedItems",
        "unevaluatedProperties",
        "additionalItems",
        "contentSchema",
    }
)
_SCHEMA_LIST_KEYS = frozenset({"allOf", "anyOf", "oneOf", "prefixItems"})
_SCHEMA_MAP_KEYS = frozenset({"properties", "patternProperties", "dependentSchemas"})
# Dropped from output: noise for a model, or only meaningful with refs we have inlined.
_DROPPED_KEYS = frozenset(
    {
        "example",
        "examples",
        "externalDocs",
        "$schema",
        "$id",
        "$anchor",
        "$dynamicAnchor",
        "$comment",
        "$defs",
        "definitions",
        "nullable",
        "writeOnly",
    }
)
_UNSUPPORTED_KEYS = {
    "xml": "xml (schema XML metadata ignored)",
    "$dynamicRef": "$dynamicRef / $recursiveRef (JSON Schema dynamic references)",
    "$recursiveRef": "$dynamicRef / $recursiveRef (JSON Schema dynamic references)",
}
TRUNCATED = "Schema truncated: too large to expand fully"
# Longest single string kept in a schema (descriptions, patterns, defaults).
MAX_TEXT = 20_000


def clone(tree: Any) -> Any:
    """Copy the containers of a JSON tree; strings and numbers are immutable and stay shared.

    Sharing leaves matters: a long description reused by hundreds of operations is stored once.
    Iterative, so data values nested deep inside deep schemas cannot exhaust the stack.
    """
    if not isinstance(tree, dict | list):
        return tree
    root: Any = {} if isinstance(tree, dict) else []
    stack: list[tuple[Any, Any]] = [(tree, root)]
    while stack:
        source, target = stack.pop()
        items = source.items() if isinstance(source, dict) else enumerate(source)
        for key, value in items:
            if isinstance(value, dict | list):
                copy: Any = {} if isinstance(value, dict) else []
                stack.append((value, copy))
                value = copy
            if isinstance(target, dict):
                target[key] = value
            else:
                target.append(value)
    return root


def data_cost(value: Any, limit: int) -> int:
    """Budget cost of a data value (enum, default...): elements plus text/100; stops past limit."""
    cost = 0
    stack = [value]
    while stack and cost <= limit:
        item = stack.pop()
        if isinstance(item, str):
            cost += len(item) // 100
        elif isinstance(item, dict):
            cost += len(item)
            stack.extend(item.values())
        elif isinstance(item, list):
            cost += len(item)
            stack.extend(item)
    return cost


@dataclass
class _Memo:
    tree: Any
    nodes: int
    ref_depth: int  # nested reference levels inside, including the memoised one
    height: int  # output nesting levels inside


class SchemaNormalizer:
    """One per document; ``begin`` starts the per-operation budget."""

    def __init__(
        self,
        resolver: RefResolver,
        report: ImportReport,
        *,
        max_ref_depth: int = MAX_REF_DEPTH,
        max_nodes: int = MAX_SCHEMA_NODES_PER_OPERATION,
        max_depth: int = MAX_SCHEMA_DEPTH,
        max_total_nodes: int = MAX_TOTAL_SCHEMA_NODES,
        max_inline_nodes: int = MAX_INLINE_NODES_PER_OPERATION,
    ) -> None:
        self.resolver = resolver
        self.report = report
        self.max_ref_depth = max_ref_depth
        self.max_nodes = max_nodes
        self.max_depth = max_depth
        self.max_total_nodes = max_total_nodes
        self.max_inline_nodes = max_inline_nodes
        self.total_nodes = 0
        # By-reference mode (per operation): component schemas go to ``$defs`` once each.
        self._by_ref = False
        self._defs: dict[str, Any] = {}
        self._def_keys: dict[str, str] = {}
        self._def_depth = 0
        self._memo: dict[str, _Memo] = {}
        self._label = ""
        self._nodes = 0
        self._stack: dict[str, int] = {}
        self._local_defs: list[dict[str, Any]] = []
        # Per-expansion facts, saved/restored around each reference expansion (see _expand).
        self._lowest_cycle = math.inf
        self._deepest_ref = 0
        self._deepest_level = 0
        self._truncations = 0

    def begin(self, label: str) -> None:
        """Start a new operation: fresh node budget, warnings labelled with ``label``."""
        self._label = label
        self._nodes = 0
        self._stack = {}
        self._truncations = 0
        self._by_ref = False
        self._defs = {}
        self._def_keys = {}

    def normalize(self, schema: Any) -> Any:
        """Normalise one schema (may be a ``$ref``); never raises for bad schemas.

        Schemas are inlined while the operation stays within ``max_inline_nodes``. Past that
        (shared components fanning out: A uses B and C, both use D, ...) this and the
        operation's later schemas keep each component once under ``$defs`` and point at it
        with ``{"$ref": "#/$defs/Name"}``, so the size is linear in the document, not
        exponential. The caller puts ``take_defs()`` at the root of the operation's schema.
        """
        if self._by_ref:
            return self._schema(schema, 0)
        nodes, total = self._nodes, self.total_nodes
        try:
            return self._schema(schema, 0)
        except _InlineBudgetExceeded:
            self._nodes, self.total_nodes = nodes, total
            self._lowest_cycle, self._deepest_ref, self._deepest_level = math.inf, 0, 0
            self._by_ref = True
            self.report.warn(
                f"{self._label}: schemas exceed {self.max_inline_nodes:,} nodes inlined; "
                "shared components kept once under $defs"
            )
            return self._schema(schema, 0)

    def take_defs(self) -> dict[str, Any]:
        """The ``$defs`` the operation's schemas refer to (empty when everything is inline)."""
        defs, self._defs = self._defs, {}
        return defs

    # -- internals -------------------------------------------------------------------------

    def _charge(self, count: int, *, data: bool = False) -> bool:
        # Schema nodes past the inline budget switch to $defs (sharing helps there); a big data
        # value (an enum) is the same size either way and only meets the hard budget.
        if not data and not self._by_ref and self._nodes + count > self.max_inline_nodes:
            raise _InlineBudgetExceeded
        if self._nodes + count > self.max_nodes:
            self._truncate(f"parameters schema exceeds {self.max_nodes} nodes; truncated")
            return False
        self._nodes += count
        self.total_nodes += count
        if self.total_nodes > self.max_total_nodes:
            # Per-operation budgets bound each schema; this bounds the whole import's memory.
            raise SpecError(
                f"the expanded schemas exceed {self.max_total_nodes:,} nodes in total; "
                "the spec is too large to import"
            )
        return True

    def _truncate(self, why: str) -> None:
        self._truncations += 1
        self.report.warn(f"{self._label}: {why}")

    def _schema(self, node: Any, depth: int) -> Any:
        if isinstance(node, bool):
            return node
        if not isinstance(node, dict):
            return {}
        self._deepest_level = max(self._deepest_level, depth)
        if depth > self.max_depth:
            self._truncate(f"schema nested more than {self.max_depth} levels; truncated")
            return {"description": TRUNCATED}
        if not self._charge(1):
            return {"description": TRUNCATED}
        ref = node.get("$ref")
        if isinstance(ref, str):
            return self._ref(node, ref, depth)
        defs = node.get("$defs")
        if isinstance(defs, dict):
            self._local_defs.append(defs)
        try:
            out = self._keywords(node, depth)
        finally:
            if isinstance(defs, dict):
                self._local_defs.pop()
        return self._finish(out, node)

    def _keywords(self, node: dict[str, Any], depth: int) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, value in node.items():
            if key in _SCHEMA_MAP_KEYS:
                if isinstance(value, dict):
                    out[key] = {name: self._schema(v, depth + 1) for name, v in value.items()}
            elif key in _SCHEMA_LIST_KEYS:
                if isinstance(value, list):
                    out[key] = [self._schema(v, depth + 1) for v in value]
            elif key == "items":
                if isinstance(value, list):  # draft-4 tuple form
                    out[key] = [self._schema(v, depth + 1) for v in value]
                else:
                    out[key] = self._schema(value, depth + 1)
            elif key in _SCHEMA_KEYS:
                if isinstance(value, dict | bool):
                    out[key] = self._schema(value, depth + 1)
            elif key in _UNSUPPORTED_KEYS:
                self.report.add_unsupported(_UNSUPPORTED_KEYS[key])
            elif key in _DROPPED_KEYS or key.startswith("x-") or key == "$ref":
                continue
            else:
                # Data keywords (enum, default, const, format, ...) are shared, not walked: a
                # "$ref" inside a default or an enum value is data, not a reference. They are
                # charged to the budget so a huge enum reused by every operation cannot explode.
                if isinstance(value, str) and len(value) > MAX_TEXT:
                    value = value[:MAX_TEXT] + "…"
                    self.report.warn(
                        f"{self._label}: '{key}' longer than {MAX_TEXT} characters cut"
                    )
                cost = data_cost(value, self.max_nodes)
                if cost and not self._charge(cost, data=True):
                    continue
                out[key] = value
        return out

    def _finish(self, out: dict[str, Any], source: dict[str, Any]) -> Any:
        if out.get("type") == "file":  # Swagger 2.0 upload
            out["type"] = "string"
            out["format"] = "binary"
        for bound in ("Minimum", "Maximum"):
            exclusive = out.get(f"exclusive{bound}")
            if isinstance(exclusive, bool):  # draft-4 / OpenAPI 3.0 boolean form
                del out[f"exclusive{bound}"]
                limit = out.get(bound.lower())
                if exclusive and isinstance(limit, int | float):
                    out[f"exclusive{bound}"] = limit
                    del out[bound.lower()]
        props = out.get("properties")
        if isinstance(props, dict):
            read_only = [k for k, v in props.items() if isinstance(v, dict) and v.get("readOnly")]
            for name in read_only:
                del props[name]
            required = out.get("required")
            if read_only and isinstance(required, list):
                out["required"] = [r for r in required if r not in read_only]
        if source.get("nullable") is True or source.get("x-nullable") is True:
            return _nullable(out)
        return out

    def _ref(self, node: dict[str, Any], ref: str, depth: int) -> Any:
        if not is_internal_ref(ref):
            return self.resolver.external(ref)
        if self._by_ref:
            pointer = self._def_ref(ref)
            if pointer is not None:
                # JSON Schema 2020-12: a $ref applies together with its siblings.
                extra = self._keywords({k: v for k, v in node.items() if k != "$ref"}, depth)
                out = {**pointer, **extra}
                return _nullable(out) if node.get("nullable") is True else out
        target = self._expand(ref, depth)
        siblings = {k: v for k, v in node.items() if k != "$ref"}
        if not siblings or not isinstance(target, dict):
            return target
        # Siblings of $ref (3.1: the ref and its siblings both apply, an allOf; common in 3.0
        # too, where we apply them the same way rather than ignore them). Annotations
        # (description, title...) and keywords the target lacks are overlaid; `required` lists
        # are united; any other keyword present on both sides becomes `allOf: [target, those]`
        # so the target's constraints (its `required`, its properties) are never overwritten.
        extra = self._keywords(siblings, depth)
        merged = _merge_siblings(target, extra)
        if siblings.get("nullable") is True:
            return _nullable(merged)
        return merged

    def _def_ref(self, ref: str) -> dict[str, str] | None:
        """By-reference mode: ``{"$ref": "#/$defs/Key"}`` for a document component, normalised
        into ``$defs`` on first use (a cycle simply refers to itself). None: expand inline
        (a ``$defs`` of the enclosing schema, or a dangling reference)."""
        key = self._def_keys.get(ref)
        if key is None:
            found, target = self.resolver.lookup(ref)
            if not found:
                return None
            if self._def_depth >= self.max_ref_depth:
                self._truncate(f"references nested more than {self.max_ref_depth} deep; truncated")
                return {
                    "description": f"Reference to {ref_name(ref)} not expanded (nesting too deep)"
                }
            key = _def_key(ref_name(ref), self._def_keys.values())
            self._def_keys[ref] = key
            self._defs[key] = {}  # reserved: refs back to it while it is built are cycles
            self._def_depth += 1
            try:
                self._defs[key] = self._schema(target, 0)
            finally:
                self._def_depth -= 1
        return {"$ref": f"#/$defs/{key}"}

    def _expand(self, ref: str, depth: int) -> Any:
        name = ref_name(ref)
        level = self._stack.get(ref)
        if level is not None:
            self._lowest_cycle = min(self._lowest_cycle, level)
            return self._recursive_placeholder(ref, name)
        if len(self._stack) >= self.max_ref_depth:
            self._truncate(f"references nested more than {self.max_ref_depth} deep; truncated")
            return {"description": f"Reference to {name} not expanded (nesting too deep)"}
        memo = self._memo.get(ref)
        if (
            memo is not None
            and len(self._stack) + memo.ref_depth <= self.max_ref_depth
            and depth + memo.height <= self.max_depth
            and self._charge(memo.nodes)
        ):
            self._deepest_ref = max(self._deepest_ref, len(self._stack) + memo.ref_depth)
            self._deepest_level = max(self._deepest_level, depth + memo.height)
            return memo.tree
        found, target = self.resolver.lookup(ref)
        context_free = True
        if not found:
            target = self._local_def(ref)
            if target is None:
                self.report.warn(f"unresolvable reference {ref}")
                return {"description": f"Unresolvable reference: {ref}"}
            context_free = False  # resolved against the enclosing schema's $defs
        return self._expand_target(ref, target, depth, context_free)

    def _expand_target(self, ref: str, target: Any, depth: int, context_free: bool) -> Any:
        my_level = len(self._stack)
        saved = (self._lowest_cycle, self._deepest_ref, self._deepest_level, self._truncations)
        self._lowest_cycle, self._deepest_ref, self._deepest_level = math.inf, my_level + 1, depth
        nodes_before = self._nodes
        self._stack[ref] = my_level
        try:
            result = self._schema(target, depth)
        finally:
            del self._stack[ref]
        lowest, deepest_ref, deepest_level = (
            self._lowest_cycle,
            self._deepest_ref,
            self._deepest_level,
        )
        # Memoise only if the result is the same wherever the ref is reached from: no cycle
        # back to an outer ref, no truncation, no $defs found through the enclosing schema.
        if context_free and lowest >= my_level and self._truncations == saved[3]:
            self._memo[ref] = _Memo(
                tree=result,
                nodes=self._nodes - nodes_before,
                ref_depth=deepest_ref - my_level,
                height=deepest_level - depth,
            )
        self._lowest_cycle = min(saved[0], lowest)
        self._deepest_ref = max(saved[1], deepest_ref)
        self._deepest_level = max(saved[2], deepest_level)
        return result

    def _recursive_placeholder(self, ref: str, name: str) -> dict[str, Any]:
        _, target = self.resolver.lookup(ref)
        out: dict[str, Any] = {}
        if isinstance(target, dict):
            kind = target.get("type")
            if isinstance(kind, str):
                out["type"] = kind
            elif "properties" in target:
                out["type"] = "object"
        out["description"] = f"Recursive reference to {name} (not expanded)"
        return out

    def _local_def(self, ref: str) -> Any:
        # `#/$defs/X` written inside a component usually means that component's own $defs.
        for prefix in ("#/$defs/", "#/definitions/"):
            if ref.startswith(prefix):
                key = ref_name(ref)
                for defs in reversed(self._local_defs):
                    if key in defs:
                        return defs[key]
        return None


def _def_key(name: str, taken: Any) -> str:
    """A ``$defs`` key for a component: its name, safe in a JSON pointer, made unique."""
    base = re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("_")[:60] or "Schema"
    used = set(taken)
    key, n = base, 2
    while key in used:
        key, n = f"{base}_{n}", n + 1
    return key


_ANNOTATIONS = frozenset(
    {"title", "description", "default", "deprecated", "readOnly", "writeOnly", "format"}
)


def _merge_siblings(target: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    """``$ref`` target refined by its siblings without losing what the target requires."""
    merged = dict(target)  # target may be a memoised tree: never mutate it
    conflicts: dict[str, Any] = {}
    for key, value in extra.items():
        if key not in target or key in _ANNOTATIONS:
            merged[key] = value
        elif key == "required" and isinstance(value, list) and isinstance(target[key], list):
            merged[key] = list(dict.fromkeys([*target[key], *value]))
        elif target[key] != value:
            conflicts[key] = value
    if not conflicts:
        return merged
    outer: dict[str, Any] = {k: merged.pop(k) for k in ("title", "description") if k in merged}
    return {**outer, "allOf": [merged, conflicts]}


def _nullable(schema: dict[str, Any]) -> dict[str, Any]:
    """OpenAPI 3.0 ``nullable: true`` expressed the JSON Schema way."""
    kind = schema.get("type")
    if isinstance(kind, str):
        schema = {**schema, "type": [kind, "null"]}
    elif isinstance(kind, list):
        if "null" not in kind:
            schema = {**schema, "type": [*kind, "null"]}
    elif schema:
        # No type to extend (e.g. allOf / ref): allow null alongside whatever the schema says.
        outer: dict[str, Any] = {k: schema[k] for k in ("title", "description") if k in schema}
        inner = {k: v for k, v in schema.items() if k not in outer}
        return {**outer, "anyOf": [inner, {"type": "null"}]}
    else:
        return schema
    enum = schema.get("enum")
    if isinstance(enum, list) and None not in enum:
        schema["enum"] = [*enum, None]
    return schema
