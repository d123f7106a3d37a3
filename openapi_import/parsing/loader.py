"""Turning uploaded bytes into a plain JSON-compatible ``dict``, safely.

Owns the security boundary of the importer: size cap, text decoding, JSON/YAML parsing with a
YAML loader that refuses aliases, anchors and non-JSON tags (billion-laughs, object construction),
and a nesting-depth limit enforced without recursion. Nothing here knows about OpenAPI beyond
"the top level must be a mapping"; version checks live in ``normalize``.
"""

from __future__ import annotations

import codecs
import json
import re
from typing import TYPE_CHECKING, Any, NoReturn

from yaml.composer import Composer
from yaml.constructor import ConstructorError, SafeConstructor
from yaml.error import MarkedYAMLError, YAMLError
from yaml.events import AliasEvent, Event, NodeEvent
from yaml.nodes import MappingNode, Node, ScalarNode
from yaml.parser import Parser
from yaml.reader import Reader
from yaml.resolver import Resolver
from yaml.scanner import Scanner

from openapi_import.parsing.types import MAX_DOCUMENT_BYTES, MAX_NESTING_DEPTH, SpecError

try:  # libyaml's event parser is ~5x faster; composition stays in Python so we can vet events.
    from yaml._yaml import CParser as _EventParser

    _HAVE_LIBYAML = True
except ImportError:  # pragma: no cover - depends on how PyYAML was built
    _HAVE_LIBYAML = False

__all__ = [
    "YAML_LOADER",
    "PurePythonLoader",
    "check_depth",
    "check_text",
    "load_document",
    "load_document_with_warnings",
    "load_yaml",
]

# Explicit tags that map onto JSON types. Everything else (python/*, !custom, !!binary, !!set,
# !!timestamp, !!omap ...) is refused: it either runs code or yields values JSON cannot hold.
_ALLOWED_TAGS = frozenset(
    f"tag:yaml.org,2002:{name}" for name in ("str", "int", "float", "bool", "null", "map", "seq")
) | {"!"}
_MAX_DUPLICATE_NOTES = 20


class _Refused(MarkedYAMLError):
    """A construct we refuse on purpose (alias, anchor, tag, depth), with its position."""

    def __init__(self, problem: str, mark: Any) -> None:
        super().__init__(problem=problem, problem_mark=mark)


class _StrictComposer(Composer):
    """Composer that rejects aliases/anchors/odd tags *before* any node sharing can happen."""

    _depth = 0

    if TYPE_CHECKING:  # provided by the parser half of the loader (libyaml or pure Python)

        def check_event(self, *choices: type[Event]) -> bool: ...
        def get_event(self) -> Event: ...
        def peek_event(self) -> Event: ...

    def compose_node(self, parent: Node | None, index: Any) -> Node | None:
        if self.check_event(AliasEvent):
            event = self.get_event()
            raise _Refused("YAML aliases are not allowed", event.start_mark)
        event = self.peek_event()
        if isinstance(event, NodeEvent) and event.anchor is not None:
            raise _Refused("YAML aliases and anchors are not allowed", event.start_mark)
        # Plain and quoted scalars carry no tag; any tag seen here was written explicitly.
        tag = getattr(event, "tag", None)
        if tag is not None and tag not in _ALLOWED_TAGS:
            raise _Refused(f"YAML tag {tag!r} is not allowed", event.start_mark)
        self._depth += 1
        try:
            if self._depth > MAX_NESTING_DEPTH:
                raise _Refused(
                    f"document is nested more than {MAX_NESTING_DEPTH} levels deep",
                    event.start_mark,
                )
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


class _JsonConstructor(SafeConstructor):
    """SafeConstructor producing only JSON types; mapping keys are kept as their source text."""

    def __init__(self) -> None:
        super().__init__()
        self.duplicate_keys: list[str] = []

    def construct_mapping(self, node: MappingNode, deep: bool = False) -> dict[Any, Any]:
        if not isinstance(node, MappingNode):
            raise ConstructorError(None, None, "expected a mapping", node.start_mark)
        self.flatten_mapping(node)
        mapping: dict[str, Any] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, ScalarNode):
                raise ConstructorError(
                    None, None, "mapping keys must be plain scalars", key_node.start_mark
                )
            # `200:` must stay the string "200" (as in JSON), not the int 200.
            key = str(key_node.value)
            if key in mapping and len(self.duplicate_keys) < _MAX_DUPLICATE_NOTES:
                line = key_node.start_mark.line + 1
                self.duplicate_keys.append(f"duplicate key {key!r} at line {line}; kept the last")
            mapping[key] = self.construct_object(value_node, deep=deep)
        return mapping

    def construct_timestamp_as_text(self, node: ScalarNode) -> str:
        return str(self.construct_scalar(node))


# Unquoted dates (`date: 2024-01-01`) would become datetime objects that JSON cannot store.
_JsonConstructor.yaml_constructors = {
    **SafeConstructor.yaml_constructors,
    "tag:yaml.org,2002:timestamp": _JsonConstructor.construct_timestamp_as_text,
}


class PurePythonLoader(Reader, Scanner, Parser, _StrictComposer, _JsonConstructor, Resolver):
    """The same rules on PyYAML's pure-Python scanner (used when libyaml is missing)."""

    def __init__(self, stream: str) -> None:
        Reader.__init__(self, stream)
        Scanner.__init__(self)
        Parser.__init__(self)
        _StrictComposer.__init__(self)
        _JsonConstructor.__init__(self)
        Resolver.__init__(self)


if _HAVE_LIBYAML:

    class LibyamlLoader(_StrictComposer, _EventParser, _JsonConstructor, Resolver):
        """libyaml produces events; our Python composer vets each one before building nodes."""

        def __init__(self, stream: str) -> None:
            _EventParser.__init__(self, stream)
            _StrictComposer.__init__(self)
            _JsonConstructor.__init__(self)
            Resolver.__init__(self)

    YAML_LOADER: type[LibyamlLoader] | type[PurePythonLoader] = LibyamlLoader
else:  # pragma: no cover
    YAML_LOADER = PurePythonLoader


def load_document(data: bytes | str, *, max_bytes: int = MAX_DOCUMENT_BYTES) -> dict[str, Any]:
    """Parse JSON or YAML text into a dict, or raise ``SpecError`` with a user-facing message."""
    return load_document_with_warnings(data, max_bytes=max_bytes)[0]


def load_document_with_warnings(
    data: bytes | str, *, max_bytes: int = MAX_DOCUMENT_BYTES
) -> tuple[dict[str, Any], list[str]]:
    """Like ``load_document`` but also returns notes (duplicate keys) for the import report."""
    text = _decode(data, max_bytes)
    if not text.strip():
        raise SpecError("the document is empty")
    warnings: list[str] = []
    # JSON documents (most big specs) take the C json parser: faster, and clearer errors.
    if text.lstrip()[:1] in ("{", "["):
        doc = _load_json(text, warnings)
    else:
        doc = load_yaml(text, warnings)
    if not isinstance(doc, dict):
        kind = "a list" if isinstance(doc, list) else f"a {type(doc).__name__} value"
        raise SpecError(
            f"not an OpenAPI or Swagger document: the top level is {kind}, not a mapping"
        )
    check_depth(doc, MAX_NESTING_DEPTH)
    check_text(doc)
    return doc, warnings


_SURROGATE = re.compile("[\ud800-\udfff]")


def check_text(doc: Any) -> None:
    """Refuse NUL characters and lone surrogates in keys and strings (``"\\u0000"``,
    ``"\\ud800"`` escapes in JSON, ``"\\0"`` in YAML). Neither can be stored (PostgreSQL text
    and jsonb refuse NUL; UTF-8 cannot encode a lone surrogate), so say so now, naming where.
    Call after ``check_depth``: the walks are iterative and assume a tree. The first walk only
    looks (big specs have a million strings); the second, on a bad document, finds the place."""
    stack: list[Any] = [doc]
    while stack:
        node = stack.pop()
        items = node.items() if isinstance(node, dict) else enumerate(node)
        for key, value in items:
            if isinstance(value, str):
                if _bad(value):
                    _locate(doc)
            elif isinstance(value, dict | list):
                stack.append(value)
            if isinstance(key, str) and _bad(key):
                _locate(doc)


def _bad(text: str) -> bool:
    return "\x00" in text or (not text.isascii() and _SURROGATE.search(text) is not None)


def _locate(doc: Any) -> None:
    stack: list[tuple[Any, str]] = [(doc, "")]
    while stack:
        node, where = stack.pop()
        items = node.items() if isinstance(node, dict) else enumerate(node)
        for key, value in items:
            token = str(key).replace("~", "~0").replace("/", "~1")
            here = f"{where}/{token}"
            if isinstance(key, str):
                _check_string(key, here)
            if isinstance(value, str):
                _check_string(value, here)
            elif isinstance(value, dict | list):
                stack.append((value, here))


def _check_string(text: str, where: str) -> None:
    if "\x00" in text:
        raise SpecError(
            f"the document contains a NUL character (\\u0000) at {_shown(where)}; "
            "text cannot contain it"
        )
    if not text.isascii() and _SURROGATE.search(text):
        raise SpecError(
            f"the document contains a lone UTF-16 surrogate (such as \\ud800) at "
            f"{_shown(where)}; it is not a valid character"
        )


def _shown(where: str) -> str:
    where = "".join(c if c != "\x00" and not _SURROGATE.match(c) else "?" for c in where)
    return "#" + where[:200]


def check_depth(doc: Any, limit: int = MAX_NESTING_DEPTH) -> None:
    """Raise ``SpecError`` if containers nest deeper than ``limit``; iterative, so stack-safe.

    Also refuses containers that contain themselves, which only a document built in Python can
    do (parsed JSON/YAML is always a tree); shared sub-trees are walked once.
    """
    on_path: set[int] = set()
    done: set[int] = set()
    stack: list[tuple[Any, int, bool]] = [(doc, 1, False)]
    while stack:
        node, depth, leaving = stack.pop()
        key = id(node)
        if leaving:
            on_path.discard(key)
            done.add(key)
            continue
        if depth > limit:
            raise SpecError(f"the document is nested more than {limit} levels deep")
        if key in on_path:
            raise SpecError("the document contains itself (a reference cycle between objects)")
        if key in done:
            continue
        on_path.add(key)
        stack.append((node, depth, True))
        children = node.values() if isinstance(node, dict) else node
        stack.extend((c, depth + 1, False) for c in children if isinstance(c, dict | list))


def _decode(data: bytes | str, max_bytes: int) -> str:
    if isinstance(data, str):
        # A str has at most as many characters as its UTF-8 bytes: reject before encoding.
        if len(data) > max_bytes:
            _too_big(len(data), max_bytes)
        try:
            raw = data.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise SpecError("the document contains invalid characters (lone surrogates)") from exc
    elif isinstance(data, bytes | bytearray | memoryview):
        raw = bytes(data)
    else:
        raise SpecError(f"expected bytes or text, got {type(data).__name__}")
    if len(raw) > max_bytes:
        _too_big(len(raw), max_bytes)
    encoding = "utf-8"
    if raw.startswith(codecs.BOM_UTF8):
        raw = raw[len(codecs.BOM_UTF8) :]
    elif raw.startswith((codecs.BOM_UTF32_LE, codecs.BOM_UTF32_BE)):
        encoding = "utf-32"
    elif raw.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        encoding = "utf-16"
    # Text formats never contain NUL; without this check an image would fail as "bad YAML".
    if encoding == "utf-8" and b"\x00" in raw:
        raise SpecError("the file looks binary (it contains NUL bytes), not JSON or YAML text")
    try:
        text = raw.decode(encoding)
    except UnicodeDecodeError as exc:
        raise SpecError(
            f"the file is not valid {encoding.upper()} text (bad byte at offset {exc.start})"
        ) from exc
    return text.lstrip("\ufeff")


def _too_big(size: int, limit: int) -> NoReturn:
    raise SpecError(f"the document is {size:,} bytes; the limit is {limit:,} bytes")


def _reject_constant(name: str) -> NoReturn:
    raise SpecError(f"invalid JSON: {name} is not allowed")


def _load_json(text: str, warnings: list[str]) -> Any:
    duplicates: list[str] = []

    def pairs_hook(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        result = dict(pairs)
        if len(result) != len(pairs) and len(duplicates) < _MAX_DUPLICATE_NOTES:
            seen: set[str] = set()
            for key, _ in pairs:
                if key in seen:
                    duplicates.append(f"duplicate key {key!r}; kept the last")
                seen.add(key)
        return result

    try:
        # NaN/Infinity are not JSON and PostgreSQL's jsonb would refuse them later.
        doc = json.loads(text, object_pairs_hook=pairs_hook, parse_constant=_reject_constant)
    except RecursionError as exc:  # the C decoder's own guard against very deep input
        raise SpecError(
            f"the document is nested more than {MAX_NESTING_DEPTH} levels deep"
        ) from exc
    except json.JSONDecodeError as exc:
        # No YAML fallback: YAML would accept broken JSON such as `{"b": }` as {"b": null}.
        raise SpecError(
            f"invalid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}"
        ) from exc
    except ValueError as exc:  # e.g. integers longer than Python's int/str conversion limit
        raise SpecError(f"invalid JSON: {exc}") from exc
    warnings.extend(duplicates)
    return doc


def load_yaml(text: str, warnings: list[str], loader_class: type[Any] | None = None) -> Any:
    """Parse YAML text with the strict loader; ``loader_class`` lets tests pick the engine."""
    loader = (loader_class or YAML_LOADER)(text)
    try:
        doc = loader.get_single_data()
    except MarkedYAMLError as exc:
        raise SpecError(_yaml_message(exc)) from exc
    except YAMLError as exc:
        raise SpecError(f"invalid YAML: {exc}") from exc
    except RecursionError as exc:
        raise SpecError(
            f"the document is nested more than {MAX_NESTING_DEPTH} levels deep"
        ) from exc
    except ValueError as exc:
        raise SpecError(f"invalid YAML value: {exc}") from exc
    finally:
        loader.dispose()
    warnings.extend(loader.duplicate_keys)
    return doc


def _yaml_message(exc: MarkedYAMLError) -> str:
    mark = exc.problem_mark or exc.context_mark
    problem = exc.problem or exc.context or "malformed YAML"
    if "maximum nesting depth" in problem:
        # libyaml (PyYAML 6.0.4 and later) has its own depth guard; one message for both.
        return f"the document is nested more than {MAX_NESTING_DEPTH} levels deep"
    prefix = "refused YAML" if isinstance(exc, _Refused) else "invalid YAML"
    if mark is None:
        return f"{prefix}: {problem}"
    return f"{prefix} at line {mark.line + 1}, column {mark.column + 1}: {problem}"
