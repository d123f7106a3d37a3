"""How arguments go on the wire: OpenAPI parameter serialization (SPEC §6).

Pure functions, no Django. The importer records, per property, how the spec says it is
serialized (``describe_parameter``, ``describe_body``); the tool caller expands the model's
arguments with it (``expand_path``, ``query_pairs``, ``header_value``, ``cookie_pairs``,
``form_body``, ``multipart_body``).

The rules are OpenAPI 3.1 §4.8.12.4 (the ``style`` values and their RFC 6570 expansions, with
the spec's own ``color`` examples as the test table), Swagger 2 ``collectionFormat`` and the
Encoding Object for ``application/x-www-form-urlencoded`` and ``multipart/form-data`` bodies.
Where OpenAPI leaves a case undefined we follow the widely used bracket convention (Rails, PHP,
Stripe): a ``deepObject`` (or a nested value in a form body) becomes ``a[b][c]=d``, an array of
scalars ``a[]=x`` and an array of objects ``a[0][b]=x``.

Values: booleans are ``true``/``false``, numbers their JSON text, ``None`` is "not sent".
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import quote

__all__ = [
    "SerializationError",
    "cookie_pairs",
    "default_for",
    "describe_body",
    "describe_parameter",
    "expand_path",
    "form_body",
    "header_value",
    "multipart_body",
    "query_string",
]

FORM = "application/x-www-form-urlencoded"
MULTIPART = "multipart/form-data"
STYLES = frozenset(
    {"matrix", "label", "simple", "form", "spaceDelimited", "pipeDelimited", "deepObject"}
)
COLLECTION_FORMATS = frozenset({"csv", "ssv", "tsv", "pipes", "multi"})
# RFC 3986 reserved characters a query value may keep with allowReserved, minus those that
# would change the query's own structure (& = + #).
_QUERY_RESERVED = ":/?@!$'()*,;[]"
_DELIMITERS = {"csv": ",", "ssv": " ", "tsv": "\t", "pipes": "|"}


class SerializationError(ValueError):
    """An argument cannot be written in the style the spec gives for it."""


# --- What the importer stores -----------------------------------------------------------------


def default_for(location: str) -> dict[str, Any]:
    """OpenAPI 3.x defaults: query/cookie ``form`` exploded; path/header ``simple``."""
    style = "form" if location in ("query", "cookie") else "simple"
    return {"in": location, "style": style, "explode": style == "form", "allowReserved": False}


def describe_parameter(param: Mapping[str, Any], *, swagger2: bool) -> dict[str, Any]:
    """The stored serialization of one parameter object (already resolved)."""
    location = str(param.get("in", ""))
    if swagger2:
        fmt = param.get("collectionFormat")
        # Swagger 2's default is csv, not OpenAPI 3's exploded form: a=1,2 rather than a=1&a=2.
        return {"in": location, "collectionFormat": fmt if fmt in COLLECTION_FORMATS else "csv"}
    entry = default_for(location)
    style = param.get("style")
    if isinstance(style, str) and style in STYLES:
        entry["style"] = style
        entry["explode"] = style == "form"
    if isinstance(param.get("explode"), bool):
        entry["explode"] = param["explode"]
    if param.get("allowReserved") is True:
        entry["allowReserved"] = True
    content = param.get("content")
    if isinstance(content, dict) and content:
        entry["contentType"] = str(next(iter(content)))
    return entry


def describe_body(
    content_type: str, encoding: Any, schema: Any, *, formats: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """The stored serialization of a request body: its media type and per-field encodings.

    ``encoding`` is the OpenAPI 3 Encoding map; ``formats`` the Swagger 2 formData
    ``collectionFormat`` per field. For multipart bodies, binary fields without an explicit
    content type are recorded as ``application/octet-stream``.
    """
    fields: dict[str, dict[str, Any]] = {}
    if isinstance(encoding, dict):
        for name, raw in encoding.items():
            if not isinstance(raw, dict):
                continue
            entry: dict[str, Any] = {}
            if isinstance(raw.get("style"), str) and raw["style"] in STYLES:
                entry["style"] = raw["style"]
            if isinstance(raw.get("explode"), bool):
                entry["explode"] = raw["explode"]
            if raw.get("allowReserved") is True:
                entry["allowReserved"] = True
            if isinstance(raw.get("contentType"), str) and raw["contentType"]:
                entry["contentType"] = raw["contentType"]
            if entry:
                fields[str(name)] = entry
    for name, fmt in (formats or {}).items():
        if fmt in COLLECTION_FORMATS:
            fields.setdefault(name, {})["collectionFormat"] = fmt
    if _base(content_type) == MULTIPART and isinstance(schema, dict):
        properties = schema.get("properties")
        for name, sub in (properties if isinstance(properties, dict) else {}).items():
            if _is_binary(sub) and "contentType" not in fields.get(name, {}):
                fields.setdefault(name, {})["contentType"] = "application/octet-stream"
    out: dict[str, Any] = {"contentType": content_type}
    if fields:
        out["encoding"] = fields
    return out


def _is_binary(schema: Any) -> bool:
    if not isinstance(schema, dict):
        return False
    if schema.get("format") in ("binary", "byte") or "contentMediaType" in schema:
        return True
    items = schema.get("items")
    return schema.get("type") == "array" and _is_binary(items)


def _base(content_type: str) -> str:
    return content_type.split(";", 1)[0].strip().lower()


# --- Values -----------------------------------------------------------------------------------


def scalar_text(value: Any) -> str:
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, int | float):
        return json.dumps(value)
    if isinstance(value, str):
        return value
    raise SerializationError(f"expected a single value, got {type(value).__name__}")


def _is_scalar(value: Any) -> bool:
    return value is None or isinstance(value, str | int | float | bool)


def _check_flat(name: str, style: str, value: Any) -> None:
    members = value.values() if isinstance(value, dict) else value
    if any(not _is_scalar(v) for v in members):
        raise SerializationError(
            f"{name}: nested values cannot be sent with style '{style}'; the spec allows only "
            "a flat list or object here"
        )


def _is_json(entry: Mapping[str, Any]) -> bool:
    """A parameter given by ``content`` with a JSON media type is sent as its JSON text."""
    return "json" in str(entry.get("contentType") or "").lower()


def _json_text(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def _members(value: Any) -> list[Any]:
    return list(value.values()) if isinstance(value, dict) else list(value)


def _pairs_of(value: dict[str, Any]) -> list[tuple[str, str]]:
    return [(str(k), scalar_text(v)) for k, v in value.items() if v is not None]


# --- Path, header, cookie ---------------------------------------------------------------------


def _enc(text: str, safe: str = "") -> str:
    return quote(text, safe=safe)


def expand_path(name: str, value: Any, entry: Mapping[str, Any]) -> str:
    """The text that replaces ``{name}`` in the path (simple, label or matrix)."""
    if _is_json(entry):
        return _enc(_json_text(value))
    fmt = entry.get("collectionFormat")
    if fmt and isinstance(value, list):
        _check_flat(name, fmt, value)
        return _enc(_DELIMITERS.get(fmt, ",").join(scalar_text(v) for v in value if v is not None))
    style = entry.get("style") or "simple"
    explode = bool(entry.get("explode", False))
    if style not in ("simple", "label", "matrix"):
        raise SerializationError(f"{name}: style '{style}' is not valid for a path parameter")
    if value is None:
        raise SerializationError(f"{name}: a path parameter needs a value")
    prefix = {"simple": "", "label": ".", "matrix": ";"}[style]
    if isinstance(value, list | dict):
        _check_flat(name, style, value)
    if style == "matrix":
        return _matrix(name, value, explode)
    sep = "." if (style == "label" and explode) else ","
    if isinstance(value, list):
        items = [_enc(scalar_text(v)) for v in value if v is not None]
        return prefix + sep.join(items)
    if isinstance(value, dict):
        pairs = _pairs_of(value)
        if explode:
            return prefix + sep.join(f"{_enc(k)}={_enc(v)}" for k, v in pairs)
        return prefix + ",".join(_enc(x) for kv in pairs for x in kv)
    return prefix + _enc(scalar_text(value))


def _matrix(name: str, value: Any, explode: bool) -> str:
    key = _enc(name)
    if isinstance(value, list):
        items = [_enc(scalar_text(v)) for v in value if v is not None]
        if not items:
            return f";{key}"
        if explode:
            return "".join(f";{key}={v}" for v in items)
        return f";{key}=" + ",".join(items)
    if isinstance(value, dict):
        pairs = _pairs_of(value)
        if not pairs:
            return f";{key}"
        if explode:
            return "".join(f";{_enc(k)}={_enc(v)}" for k, v in pairs)
        return f";{key}=" + ",".join(_enc(x) for kv in pairs for x in kv)
    text = scalar_text(value)
    return f";{key}={_enc(text)}" if text else f";{key}"


def header_value(name: str, value: Any, entry: Mapping[str, Any]) -> str:
    """A header's value (``simple``): lists comma-joined, objects ``k,v`` or ``k=v``."""
    if _is_json(entry):
        text = _json_text(value)
    elif isinstance(value, list):
        _check_flat(name, "simple", value)
        sep = _DELIMITERS.get(str(entry.get("collectionFormat") or "csv"), ",")
        text = sep.join(scalar_text(v) for v in value if v is not None)
    elif isinstance(value, dict):
        _check_flat(name, "simple", value)
        pairs = _pairs_of(value)
        if entry.get("explode"):
            text = ",".join(f"{k}={v}" for k, v in pairs)
        else:
            text = ",".join(x for kv in pairs for x in kv)
    else:
        text = scalar_text(value)
    if any((ord(c) < 32 and c != "\t") or ord(c) == 127 for c in text):
        raise SerializationError(f"{name}: control characters cannot go in a header")
    return text


def cookie_pairs(name: str, value: Any, entry: Mapping[str, Any]) -> list[tuple[str, str]]:
    """``name=value`` pairs for the Cookie header (``form``; exploded lists repeat the name)."""
    if value is None:
        return []
    pairs: list[tuple[str, str]] = []
    for segment in _query_raw(name, value, entry, allow_reserved=False):
        key, _, text = segment.partition("=")
        pairs.append((key, text))
    return pairs


# --- Query strings and form bodies ------------------------------------------------------------


def query_string(params: Sequence[tuple[str, Any, Mapping[str, Any]]]) -> str:
    """The query string (without ``?``) for (name, value, entry) triples, in order."""
    parts: list[str] = []
    for name, value, entry in params:
        if value is None:
            continue
        parts.extend(
            _query_raw(name, value, entry, allow_reserved=bool(entry.get("allowReserved")))
        )
    return "&".join(parts)


def _query_raw(
    name: str, value: Any, entry: Mapping[str, Any], *, allow_reserved: bool
) -> list[str]:
    """Already percent-encoded ``k=v`` segments for one parameter."""
    safe = _QUERY_RESERVED if allow_reserved else ""

    def enc(text: str) -> str:
        return quote(text, safe=safe)

    key = enc(name)
    if _is_json(entry):
        return [f"{key}={enc(_json_text(value))}"]
    fmt = entry.get("collectionFormat")
    if fmt:
        return _collection(name, value, str(fmt), enc)
    style = entry.get("style") or "form"
    explode = bool(entry.get("explode", style == "form"))
    if style == "deepObject":
        return [f"{enc(k)}={enc(v)}" for k, v in bracket_pairs(name, value)]
    if style not in ("form", "spaceDelimited", "pipeDelimited"):
        raise SerializationError(f"{name}: style '{style}' is not valid for a query parameter")
    if _is_scalar(value):
        if style != "form":
            raise SerializationError(f"{name}: style '{style}' needs a list or an object")
        return [f"{key}={enc(scalar_text(value))}"]
    _check_flat(name, style, value)
    if style == "form" and not any(v is not None for v in _members(value)):
        return [f"{key}="]  # the "empty" column: color=
    if isinstance(value, list):
        items = [enc(scalar_text(v)) for v in value if v is not None]
        if style == "form" and explode:
            return [f"{key}={v}" for v in items]
        return [f"{key}=" + _joiner(style).join(items)]
    pairs = _pairs_of(value)
    if style == "form" and explode:
        return [f"{enc(k)}={enc(v)}" for k, v in pairs]
    return [f"{key}=" + _joiner(style).join(enc(x) for kv in pairs for x in kv)]


def _joiner(style: str) -> str:
    return {"form": ",", "spaceDelimited": "%20", "pipeDelimited": "%7C"}[style]


def _collection(name: str, value: Any, fmt: str, enc: Any) -> list[str]:
    key = enc(name)
    if _is_scalar(value):
        return [f"{key}={enc(scalar_text(value))}"]
    if not isinstance(value, list):
        raise SerializationError(f"{name}: collectionFormat '{fmt}' needs a list")
    _check_flat(name, fmt, value)
    items = [scalar_text(v) for v in value if v is not None]
    if fmt == "multi":
        return [f"{key}={enc(v)}" for v in items]
    delimiter = enc(_DELIMITERS.get(fmt, ","))
    # csv keeps its comma readable (a=1,2); commas inside values are still encoded.
    return [f"{key}=" + (delimiter if fmt != "csv" else ",").join(enc(v) for v in items)]


def bracket_pairs(name: str, value: Any) -> list[tuple[str, str]]:
    """``a[b][c]=d`` flattening: objects by key, scalar lists ``a[]``, other lists ``a[0]``."""
    out: list[tuple[str, str]] = []

    def walk(key: str, node: Any) -> None:
        if node is None:
            return
        if isinstance(node, dict):
            for k, v in node.items():
                walk(f"{key}[{k}]", v)
        elif isinstance(node, list):
            indexed = any(isinstance(v, dict | list) for v in node)
            for i, v in enumerate(node):
                walk(f"{key}[{i}]" if indexed else f"{key}[]", v)
        else:
            out.append((key, scalar_text(node)))

    walk(name, value)
    return out


def form_body(body: Any, encoding: Mapping[str, Any]) -> bytes:
    """An ``application/x-www-form-urlencoded`` body from an object of fields.

    Each field follows its Encoding Object (``style``/``explode``/``allowReserved``, as for
    query parameters, default ``form`` exploded) or Swagger 2 ``collectionFormat``. A field
    whose value is nested (an object, or a list holding objects) and whose encoding names no
    style is written with brackets, ``a[b]=c`` / ``a[0][b]=c`` (the convention form APIs such
    as Stripe's parse), never as a Python or JSON repr.
    """
    if not isinstance(body, dict):
        raise SerializationError("a form body must be an object of fields")
    parts: list[str] = []
    for name, value in body.items():
        if value is None:
            continue
        entry = encoding.get(name) or {}
        nested = isinstance(value, dict) or (
            isinstance(value, list) and any(isinstance(v, dict | list) for v in value)
        )
        if "contentType" in entry and "json" in str(entry["contentType"]) and "style" not in entry:
            parts.extend(_query_raw(name, value, entry, allow_reserved=False))
        elif nested and "style" not in entry and "collectionFormat" not in entry:
            parts.extend(
                f"{quote(k, safe='')}={quote(v, safe='')}" for k, v in bracket_pairs(name, value)
            )
        else:
            parts.extend(
                _query_raw(
                    name,
                    value,
                    {k: v for k, v in entry.items() if k != "contentType"},
                    allow_reserved=bool(entry.get("allowReserved")),
                )
            )
    return "&".join(parts).encode("ascii")


def multipart_body(
    body: Any, encoding: Mapping[str, Any], *, boundary: str | None = None
) -> tuple[bytes, str]:
    """A ``multipart/form-data`` body and its Content-Type (with the boundary).

    One part per field; a list is one part per item (same name). Text parts are the value's
    text (``text/plain``), objects ``application/json``; fields recorded with a binary content
    type are sent as a file part whose bytes are the value's UTF-8 text.
    """
    if not isinstance(body, dict):
        raise SerializationError("a multipart body must be an object of fields")
    boundary = boundary or "actiondesk-" + secrets.token_hex(16)
    chunks: list[bytes] = []
    for name, value in body.items():
        if value is None:
            continue
        entry = encoding.get(name) or {}
        items = (
            value
            if isinstance(value, list) and "json" not in str(entry.get("contentType"))
            else [value]
        )
        for item in items:
            if item is None:
                continue
            chunks.append(_part(boundary, name, item, entry))
    chunks.append(f"--{boundary}--\r\n".encode())
    return b"".join(chunks), f"{MULTIPART}; boundary={boundary}"


def _part(boundary: str, name: str, value: Any, entry: Mapping[str, Any]) -> bytes:
    declared = str(entry.get("contentType") or "")
    if isinstance(value, dict | list):
        data = json.dumps(value, ensure_ascii=False).encode("utf-8")
        content_type = declared or "application/json"
    else:
        data = scalar_text(value).encode("utf-8")
        content_type = declared or "text/plain"
    disposition = f'form-data; name="{_disposition_text(name)}"'
    if _base(content_type) not in ("text/plain", "application/json") and declared:
        disposition += f'; filename="{_disposition_text(name)}"'
    head = (
        f"--{boundary}\r\nContent-Disposition: {disposition}\r\n"
        f"Content-Type: {content_type.split(',')[0].strip()}\r\n\r\n"
    )
    return head.encode("utf-8") + data + b"\r\n"


def _disposition_text(text: str) -> str:
    # The HTML form-data rule: quote, CR and LF are percent-encoded in names and file names.
    return text.replace('"', "%22").replace("\r", "%0D").replace("\n", "%0A")
