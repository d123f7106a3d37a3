"""``$ref`` lookup inside one document.

Owns JSON-pointer resolution (``#/a/b~1c``), the rule that external references (other files,
``http:``, ``file:``) are never fetched or opened but recorded in the report, and following
reference chains for non-schema objects (Parameter, RequestBody, Response, Path Item, ...).
Schema references are expanded by ``schema.SchemaNormalizer``, which uses ``lookup`` from here.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote

from openapi_import.parsing.types import MAX_REF_DEPTH, ImportReport

__all__ = ["RefResolver", "is_internal_ref", "ref_name"]

_MISSING = object()
# Distinct from _MISSING so that "looked up and absent" is cached too.
_MISSING_TARGET = object()


def is_internal_ref(ref: str) -> bool:
    """Only same-document fragments are resolvable; anything else would need I/O."""
    return ref.startswith("#")


def ref_name(ref: str) -> str:
    """Human name of a reference target: the last pointer segment, unescaped."""
    last = ref.rstrip("/").rsplit("/", 1)[-1]
    return unquote(last).replace("~1", "/").replace("~0", "~") or ref


def _pointer_tokens(ref: str) -> list[str] | None:
    # A URI fragment is percent-encoded first, then it is a JSON pointer (RFC 6901 section 6).
    pointer = unquote(ref[1:])
    if pointer == "":
        return []
    if not pointer.startswith("/"):
        return None  # plain-name fragments ($anchor) are not supported
    return [t.replace("~1", "/").replace("~0", "~") for t in pointer.split("/")[1:]]


class RefResolver:
    """Resolves internal references of one document; memoised, never does I/O."""

    def __init__(self, doc: dict[str, Any], report: ImportReport) -> None:
        self.doc = doc
        self.report = report
        self._cache: dict[str, Any] = {}

    def lookup(self, ref: str) -> tuple[bool, Any]:
        """Return ``(found, value)`` for an internal reference; external ones are not found."""
        cached = self._cache.get(ref, _MISSING)
        if cached is not _MISSING:
            return (cached is not _MISSING_TARGET, None if cached is _MISSING_TARGET else cached)
        value = self._walk(ref) if is_internal_ref(ref) else _MISSING_TARGET
        self._cache[ref] = value
        if value is _MISSING_TARGET:
            return False, None
        return True, value

    def _walk(self, ref: str) -> Any:
        tokens = _pointer_tokens(ref)
        if tokens is None:
            return _MISSING_TARGET
        node: Any = self.doc
        for token in tokens:
            if isinstance(node, dict):
                if token not in node:
                    return _MISSING_TARGET
                node = node[token]
            elif isinstance(node, list) and token.isdigit() and int(token) < len(node):
                node = node[int(token)]
            else:
                return _MISSING_TARGET
        return node

    def external(self, ref: str) -> dict[str, Any]:
        """Record an external reference and return the placeholder that stands in for it."""
        self.report.add_unresolved(ref)
        return {"description": f"Unresolved external reference: {ref}"}

    def resolve(self, node: Any, what: str) -> Any:
        """Follow ``$ref`` chains of a non-schema object (parameter, request body, ...).

        Returns the target (with 3.1 ``summary``/``description`` overrides applied) or ``None``
        when the reference is external, dangling or circular; the reason goes to the report.
        """
        overrides: dict[str, Any] = {}
        seen: list[str] = []
        while isinstance(node, dict) and isinstance(node.get("$ref"), str):
            ref = node["$ref"]
            if not seen:
                overrides = {k: node[k] for k in ("summary", "description") if k in node}
            if not is_internal_ref(ref):
                self.report.add_unresolved(ref)
                return None
            if ref in seen or len(seen) >= MAX_REF_DEPTH:
                self.report.warn(f"circular or too deep reference chain for a {what}: {ref}")
                return None
            seen.append(ref)
            found, node = self.lookup(ref)
            if not found:
                self.report.warn(f"unresolvable reference to a {what}: {ref}")
                return None
        if overrides and isinstance(node, dict):
            return {**node, **overrides}
        return node
