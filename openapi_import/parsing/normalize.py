"""From a loaded document to ``ParsedSpec``: validation and per-operation normalisation.

Owns: version detection (Swagger 2.0, OpenAPI 3.0.x / 3.1.x), walking ``paths`` and 3.1
``webhooks``, merging path- and operation-level parameters, building the single
``parameters_schema`` per operation (parameters as top-level properties, request body under
``"body"``), servers and security, stable unique operation IDs, fingerprints and the import
report. Schema details are delegated to ``schema.SchemaNormalizer``.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from typing import Any

from openapi_import.parsing.loader import check_depth, load_document_with_warnings
from openapi_import.parsing.refs import RefResolver, is_internal_ref
from openapi_import.parsing.schema import SchemaNormalizer, clone
from openapi_import.parsing.types import (
    HTTP_METHODS,
    MAX_DOCUMENT_BYTES,
    MAX_NESTING_DEPTH,
    MAX_OPERATIONS,
    ImportReport,
    ParsedOperation,
    ParsedSpec,
    SpecError,
)
from openapi_import.serialization import default_for, describe_body, describe_parameter

__all__ = ["generate_operation_id", "parse_document", "parse_spec", "sanitize_operation_id"]

_LOCATION_ORDER = {"path": 0, "query": 1, "header": 2, "cookie": 3}
_PATH_ITEM_FIELDS = frozenset({"parameters", "servers", "summary", "description", "$ref"})
# OpenAPI 3.x: header parameters with these names "SHALL be ignored" (they are set by the client).
_IGNORED_HEADERS = frozenset({"accept", "content-type", "authorization"})
# Swagger 2.0 non-body parameters carry their schema keywords inline.
_SWAGGER2_SCHEMA_KEYS = (
    "type",
    "format",
    "items",
    "enum",
    "default",
    "minimum",
    "maximum",
    "exclusiveMinimum",
    "exclusiveMaximum",
    "minLength",
    "maxLength",
    "pattern",
    "minItems",
    "maxItems",
    "uniqueItems",
    "multipleOf",
    "x-nullable",
)
# Keywords whose values are data, never references, wherever they appear.
_DATA_KEYWORDS = frozenset({"example", "examples", "default", "enum", "const"})
# Keywords whose values map names chosen by the spec author to objects.
_NAME_MAPS = frozenset(
    {
        "paths",
        "webhooks",
        "properties",
        "patternProperties",
        "dependentSchemas",
        "definitions",
        "$defs",
        "schemas",
        "parameters",
        "responses",
        "requestBodies",
        "headers",
        "securitySchemes",
        "securityDefinitions",
        "links",
        "callbacks",
        "pathItems",
        "content",
        "encoding",
        "variables",
    }
)
_TOOL_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_MAX_TOOL_NAME = 64
_FORM = "application/x-www-form-urlencoded"
_MULTIPART = "multipart/form-data"
_JSON = "application/json"


def parse_spec(data: bytes | str, *, max_bytes: int = MAX_DOCUMENT_BYTES) -> ParsedSpec:
    """Load (JSON or YAML), validate and normalise an uploaded spec."""
    doc, notes = load_document_with_warnings(data, max_bytes=max_bytes)
    return _Parser(doc, notes).parse()


def parse_document(doc: dict[str, Any]) -> ParsedSpec:
    """Validate and normalise an already-loaded document (never does I/O)."""
    if not isinstance(doc, dict):
        raise SpecError("not an OpenAPI or Swagger document: the top level is not a mapping")
    check_depth(doc, MAX_NESTING_DEPTH)
    return _Parser(doc, []).parse()


def sanitize_operation_id(raw: str) -> str:
    """Make a spec operationId a valid tool name (``^[A-Za-z0-9_-]{1,64}$``); may return ""."""
    if _TOOL_NAME.match(raw):
        return raw
    return re.sub(r"[^A-Za-z0-9_-]+", "_", raw).strip("_")[:_MAX_TOOL_NAME].rstrip("_")


def generate_operation_id(method: str, path: str) -> str:
    """``get /pets/{petId}`` -> ``get_pets_petId``; shortened to 64 characters when needed."""
    words: list[tuple[str, bool]] = []
    for segment in path.split("/"):
        segment = re.sub(r"\.(json|xml|ya?ml)$", "", segment)
        parts = [p for p in re.split(r"(\{[^{}]*\})", segment) if p]
        for index, part in enumerate(parts):
            is_param = part.startswith("{")
            # A parameter glued to the end of other text ("Calls{mediaTypeExtension}") is a
            # format suffix, not a resource: leave it out of the name.
            previous = parts[index - 1] if index else ""
            if is_param and (previous[-1:].isalnum() or previous.endswith("}")):
                continue
            word = re.sub(r"[^A-Za-z0-9]+", "_", part).strip("_")
            if word:
                words.append((word, is_param))
    head = method.lower()
    # Long Twilio-style paths: first drop inner {param} words, then leading literal words,
    # so the name keeps the resource it acts on (the end of the path).
    while words and len("_".join([head, *(w for w, _ in words)])) > _MAX_TOOL_NAME:
        inner_params = [i for i, (_, p) in enumerate(words[:-1]) if p]
        del words[inner_params[0] if inner_params else 0]
    return "_".join([head, *(w for w, _ in words)])[:_MAX_TOOL_NAME]


@dataclass
class _RawOperation:
    method: str
    path: str
    op: dict[str, Any]
    item: dict[str, Any]
    is_webhook: bool


@dataclass
class _Body:
    schema: Any
    required: bool
    content_type: str | None
    location: str  # "body" or "formData"
    serialization: dict[str, Any]


class _Parser:
    def __init__(self, doc: dict[str, Any], notes: list[str]) -> None:
        self.doc = doc
        self.report = ImportReport()
        for note in notes:
            self.report.warn(note)
        self.family, self.spec_version = _detect_version(doc)
        self.resolver = RefResolver(doc, self.report)
        self.schemas = SchemaNormalizer(self.resolver, self.report)

    # -- document level ----------------------------------------------------------------------

    def parse(self) -> ParsedSpec:
        info = self.doc.get("info")
        if not isinstance(info, dict):
            self.report.warn("the document has no 'info' object")
            info = {}
        self._scan_external_refs()
        raw = self._collect_all()
        if len(raw) > MAX_OPERATIONS:
            raise SpecError(
                f"the spec has {len(raw):,} operations; the limit is {MAX_OPERATIONS:,}"
            )
        ids = self._assign_ids(raw)
        operations: list[ParsedOperation] = []
        webhooks: list[ParsedOperation] = []
        for entry, (op_id, generated) in zip(raw, ids, strict=True):
            parsed = self._build(entry, op_id, generated)
            (webhooks if entry.is_webhook else operations).append(parsed)
        return ParsedSpec(
            title=_text(info.get("title")),
            version=_text(info.get("version")),
            spec_version=self.spec_version,
            servers=self._document_servers(),
            operations=operations,
            webhooks=webhooks,
            security_schemes=self._security_schemes(),
            report=self.report,
        )

    def _scan_external_refs(self) -> None:
        """List every external ``$ref`` up front (also in responses), so the report is complete,
        and refuse malformed or dangling internal ones, naming where they are.

        Values of data keywords (examples, defaults, enums, consts) are skipped: a ``$ref`` key
        inside an example payload is data (the GitHub SCIM examples have some). Children of
        name maps (``properties``, ``responses``...) are always walked: a property or a
        response may be *named* ``default`` or ``example`` (or ``$ref``).
        """
        # Each entry: node, is it a name map, and its place as a linked list (parent, key) so a
        # pointer is only built for the rare bad reference.
        stack: list[tuple[Any, bool, _Place | None]] = [(self.doc, False, None)]
        found: list[str] = []
        bad: list[str] = []
        seen: set[int] = set()
        while stack:
            node, is_name_map, place = stack.pop()
            if id(node) in seen:  # shared sub-trees (documents built in Python)
                continue
            seen.add(id(node))
            if isinstance(node, list):
                stack.extend(
                    (item, False, (place, str(i))) for i, item in reversed(list(enumerate(node)))
                )
                continue
            if not isinstance(node, dict):
                continue
            if not is_name_map and "$ref" in node:
                ref = node["$ref"]
                if isinstance(ref, str) and ref and not is_internal_ref(ref):
                    found.append(ref)
                else:
                    problem = self._bad_ref(ref)
                    if problem and len(bad) < 10:
                        bad.append(f"{problem} at {_pointer(place)}")
            for key, value in reversed(node.items()):
                if not isinstance(value, dict | list):
                    continue
                if not is_name_map and (key in _DATA_KEYWORDS or key.startswith("x-")):
                    continue
                stack.append((value, not is_name_map and key in _NAME_MAPS, (place, str(key))))
        if bad:
            raise SpecError("invalid $ref: " + "; ".join(bad))
        for ref in found:
            self.report.add_unresolved(ref)

    def _bad_ref(self, ref: Any) -> str:
        """Why an internal ``$ref`` value cannot be used, or "" when it resolves."""
        if not isinstance(ref, str):
            return f"$ref must be a string, not {json.dumps(ref)[:60]}"
        if not ref:
            return "$ref is empty"
        found, _ = self.resolver.lookup(ref)
        if found or _resolves_locally(ref):
            return ""
        return f"$ref {ref!r} points at nothing in the document"

    def _collect_all(self) -> list[_RawOperation]:
        raw: list[_RawOperation] = []
        paths = self.doc.get("paths")
        if paths is None:
            if self.family != "3.1":
                self.report.warn("the document has no 'paths'")
            paths = {}
        if not isinstance(paths, dict):
            raise SpecError("'paths' must be a mapping of path -> path item")
        for key, item in paths.items():
            path = str(key)  # documents built in Python may use non-string keys
            if path.startswith("x-"):
                continue
            if not path.startswith("/"):
                self.report.warn(f"path {path!r} does not start with '/'")
            self._collect(path, item, False, raw)
        webhooks = self.doc.get("webhooks")
        if webhooks is not None and self.family != "3.1":
            self.report.add_unsupported("webhooks outside OpenAPI 3.1 (ignored)")
        elif isinstance(webhooks, dict):
            for name, item in webhooks.items():
                self._collect(str(name), item, True, raw)
        return raw

    def _collect(self, path: str, item: Any, is_webhook: bool, out: list[_RawOperation]) -> None:
        resolved = self.resolver.resolve(item, "path item")
        if not isinstance(resolved, dict):
            reason = "path item is not an object"
            if isinstance(item, dict) and "$ref" in item:
                reason = f"path item reference {item['$ref']!r} could not be resolved"
            self.report.skip("*", path, reason)
            return
        for raw_key, op in resolved.items():
            key = str(raw_key)
            if key in HTTP_METHODS:
                if isinstance(op, dict):
                    out.append(_RawOperation(key.upper(), path, op, resolved, is_webhook))
                else:
                    self.report.skip(key.upper(), path, "operation is not an object")
            elif key.lower() in HTTP_METHODS:
                self.report.skip(key.upper(), path, f"method key {key!r} must be lower case")
            elif key not in _PATH_ITEM_FIELDS and not key.startswith("x-"):
                self.report.add_unsupported(f"path item field {key!r}")

    def _document_servers(self) -> list[str]:
        if self.family == "2.0":
            return self._swagger2_servers(self.doc.get("schemes"))
        return self._servers(self.doc.get("servers"))

    def _servers(self, servers: Any) -> list[str]:
        if not isinstance(servers, list):
            return []
        urls = [_server_url(s, self.report) for s in servers]
        return [u for u in urls if u is not None]

    def _swagger2_servers(self, schemes: Any) -> list[str]:
        host = self.doc.get("host")
        base_path = _text(self.doc.get("basePath")).rstrip("/")
        if not isinstance(host, str) or not host:
            return [base_path] if base_path else []
        listed = [s for s in schemes if isinstance(s, str)] if isinstance(schemes, list) else []
        # Swagger's default scheme is "the one the spec was fetched with"; we assume https.
        ordered = sorted(listed or ["https"], key=lambda s: s != "https")
        return [f"{s}://{host}{base_path}" for s in ordered if s in ("https", "http")] or [
            f"https://{host}{base_path}"
        ]

    def _security_schemes(self) -> dict[str, Any]:
        if self.family == "2.0":
            raw = self.doc.get("securityDefinitions")
        else:
            components = self.doc.get("components")
            raw = components.get("securitySchemes") if isinstance(components, dict) else None
        if not isinstance(raw, dict):
            return {}
        schemes: dict[str, Any] = {}
        for name, scheme in raw.items():
            resolved = self.resolver.resolve(scheme, "security scheme")
            if isinstance(resolved, dict):
                schemes[str(name)] = clone(resolved)
        return schemes

    # -- operation IDs -------------------------------------------------------------------------

    def _assign_ids(self, raw: list[_RawOperation]) -> list[tuple[str, bool]]:
        claimed: set[str] = set()
        result: list[tuple[str, bool] | None] = [None] * len(raw)
        renamed: list[str] = []
        pending: list[int] = []
        for index, entry in enumerate(raw):
            given = entry.op.get("operationId")
            clean = sanitize_operation_id(given) if isinstance(given, str) else ""
            if not clean:
                pending.append(index)
                continue
            unique = _unique(clean, claimed)
            if unique != clean:
                self.report.warn(
                    f"duplicate operationId {given!r}: {entry.method} {entry.path} "
                    f"renamed to {unique!r}"
                )
            elif clean != given:
                renamed.append(f"{given!r} -> {clean!r}")
            result[index] = (unique, False)
        # Generated names are handed out in (path, method) order, not document order, so that
        # reordering a spec does not swap the _2/_3 suffixes between operations.
        method_rank = {m.upper(): i for i, m in enumerate(HTTP_METHODS)}
        pending.sort(
            key=lambda i: (raw[i].is_webhook, raw[i].path, method_rank.get(raw[i].method, 99))
        )
        for index in pending:
            entry = raw[index]
            base = generate_operation_id(entry.method, entry.path) or entry.method.lower()
            result[index] = (_unique(base, claimed), True)
        if renamed:
            shown = ", ".join(renamed[:10])
            more = f" and {len(renamed) - 10} more" if len(renamed) > 10 else ""
            self.report.warn(
                f"{len(renamed)} operationIds were changed to be valid tool names "
                f"([A-Za-z0-9_-], at most 64 characters): {shown}{more}"
            )
        return [r for r in result if r is not None]

    # -- one operation -------------------------------------------------------------------------

    def _build(self, entry: _RawOperation, op_id: str, generated: bool) -> ParsedOperation:
        op, method, path = entry.op, entry.method, entry.path
        self.schemas.begin(f"{method} {path}")
        params = self._merged_parameters(entry)
        body = self._body(entry, params)
        properties: dict[str, Any] = {}
        required: list[str] = []
        locations: dict[str, str] = {}
        names: dict[str, str] = {}
        serialization: dict[str, dict[str, Any]] = {}
        reserved = {"body"} if body is not None else set()
        plain = [p for p in params if p["in"] in _LOCATION_ORDER]
        plain.sort(key=lambda p: _LOCATION_ORDER[p["in"]])
        for param in plain:
            name, location = param["name"], param["in"]
            if self.family != "2.0" and location == "header" and name.lower() in _IGNORED_HEADERS:
                continue
            prop = name
            if prop in properties or prop in reserved:
                # Same name in two locations (e.g. path id and header id): suffix the later one.
                prop = f"{name}__{location}"
                while prop in properties or prop in reserved:
                    prop += "_"
            properties[prop] = self._parameter_schema(param)
            locations[prop] = location
            names[prop] = name
            if param.get("required") is True or location == "path":
                required.append(prop)
            # How it goes on the wire, with the version's defaults filled in (SPEC §6).
            serialization[prop] = describe_parameter(param, swagger2=self.family == "2.0")
        if not entry.is_webhook:
            self._add_undeclared_path_params(entry, properties, required, locations, names)
        body_fields: tuple[str, ...] = ()
        body_required: tuple[str, ...] = ()
        defs = self.schemas.take_defs()  # all of this operation's schemas are normalised
        if body is not None:
            properties["body"] = body.schema
            locations["body"] = body.location
            names["body"] = "body"
            if body.required:
                required.append("body")
            if body.serialization:
                serialization["body"] = body.serialization
            body_fields, body_required = _top_level_fields(_in_defs(body.schema, defs))
        # One final copy: memoised sub-schemas are shared while building, never in results.
        root: dict[str, Any] = {
            "type": "object",
            "properties": properties,
            "required": required,
            "additionalProperties": False,
        }
        if defs:  # shared components kept by reference past the inline budget
            root["$defs"] = defs
        parameters_schema = clone(root)
        self._note_unsupported(op)
        summary = _text(op.get("summary"))
        return ParsedOperation(
            operation_id=op_id,
            operation_id_generated=generated,
            method=method,
            path=path,
            summary=summary,
            description=_text(op.get("description")),
            tags=_tags(op.get("tags")),
            parameters_schema=parameters_schema,
            parameter_locations=locations,
            body_content_type=body.content_type if body is not None else None,
            server_url="" if entry.is_webhook else self._operation_server(entry),
            security=self._security(op),
            deprecated=op.get("deprecated") is True,
            extensions={k: clone(v) for k, v in op.items() if k.startswith("x-")},
            body_field_names=body_fields,
            is_webhook=entry.is_webhook,
            fingerprint=_fingerprint(
                method, path, parameters_schema, summary, _declared_wire(serialization)
            ),
            original_operation_id=_text(op.get("operationId")),
            parameter_names=names,
            parameter_serialization=serialization,
            required_parameters=tuple(required),
            body_required_fields=body_required,
        )

    def _merged_parameters(self, entry: _RawOperation) -> list[dict[str, Any]]:
        merged: dict[tuple[str, str], dict[str, Any]] = {}
        label = f"{entry.method} {entry.path}"
        for source in (entry.item.get("parameters"), entry.op.get("parameters")):
            if source is None:
                continue
            if not isinstance(source, list):
                self.report.warn(f"{label}: 'parameters' is not a list; ignored")
                continue
            for raw in source:
                param = self.resolver.resolve(raw, "parameter")
                if param is None:
                    if isinstance(raw, dict) and "$ref" in raw:
                        self.report.warn(
                            f"{label}: parameter {raw['$ref']!r} could not be resolved; omitted"
                        )
                    continue
                name, location = (
                    (param.get("name"), param.get("in")) if isinstance(param, dict) else (0, 0)
                )
                if not isinstance(name, str) or not isinstance(location, str):
                    self.report.warn(f"{label}: a parameter without a valid name/in; ignored")
                    continue
                valid = ("body", "formData") if self.family == "2.0" else ("cookie",)
                if location not in _LOCATION_ORDER and location not in valid:
                    self.report.warn(f"{label}: parameter {name!r} has unknown 'in' {location!r}")
                    continue
                # Operation-level parameters override path-level ones with the same name+in.
                merged[(name, location)] = param
        return list(merged.values())

    def _parameter_schema(self, param: dict[str, Any]) -> Any:
        if self.family == "2.0":
            schema = self.schemas.normalize(
                {k: param[k] for k in _SWAGGER2_SCHEMA_KEYS if k in param}
            )
        elif "schema" in param:
            schema = self.schemas.normalize(param["schema"])
        elif isinstance(param.get("content"), dict) and param["content"]:
            media = next(iter(param["content"].values()))
            schema = self.schemas.normalize(
                media.get("schema", {}) if isinstance(media, dict) else {}
            )
        else:
            schema = {}
        if not isinstance(schema, dict):
            schema = {}
        extra: dict[str, Any] = {}
        if isinstance(param.get("description"), str) and param["description"]:
            extra["description"] = param["description"]
        if param.get("deprecated") is True:
            extra["deprecated"] = True
        return {**schema, **extra} if extra else schema

    def _body(self, entry: _RawOperation, params: list[dict[str, Any]]) -> _Body | None:
        if self.family == "2.0":
            return self._swagger2_body(entry, params)
        if "requestBody" not in entry.op:
            return None
        label = f"{entry.method} {entry.path}"
        request_body = self.resolver.resolve(entry.op["requestBody"], "request body")
        if not isinstance(request_body, dict):
            raw = entry.op["requestBody"]
            if isinstance(raw, dict) and "$ref" in raw:
                # The body exists but its definition is elsewhere: still let the model send one.
                schema = {"description": f"Request body (unresolved reference {raw['$ref']})"}
                return _Body(schema, False, _JSON, "body", {})
            self.report.warn(f"{label}: requestBody is not an object; ignored")
            return None
        content = request_body.get("content")
        if not isinstance(content, dict) or not content:
            self.report.warn(f"{label}: requestBody has no content; ignored")
            return None
        media_type = _choose_media_type(list(content))
        media = content[media_type] if isinstance(content[media_type], dict) else {}
        if "schema" in media:
            schema = self.schemas.normalize(media["schema"])
        else:
            schema = _schemaless_body(media_type)
        if media.get("encoding") and _base_type(media_type) not in (_FORM, _MULTIPART):
            self.report.add_unsupported("requestBody encoding outside form and multipart bodies")
        serialization = describe_body(media_type, media.get("encoding"), schema)
        description = request_body.get("description")
        if isinstance(description, str) and description and isinstance(schema, dict):
            schema = {**schema, "description": description}
        required = request_body.get("required") is True
        return _Body(schema, required, media_type, "body", serialization)

    def _swagger2_body(self, entry: _RawOperation, params: list[dict[str, Any]]) -> _Body | None:
        label = f"{entry.method} {entry.path}"
        body_params = [p for p in params if p["in"] == "body"]
        form_params = [p for p in params if p["in"] == "formData"]
        consumes = entry.op.get("consumes", self.doc.get("consumes"))
        consumes = [c for c in consumes if isinstance(c, str)] if isinstance(consumes, list) else []
        if body_params:
            if len(body_params) > 1:
                self.report.warn(f"{label}: more than one body parameter; using the first")
            if form_params:
                self.report.warn(
                    f"{label}: body and formData parameters together; formData ignored"
                )
            param = body_params[0]
            schema = self.schemas.normalize(param.get("schema", {}))
            description = param.get("description")
            if isinstance(description, str) and description and isinstance(schema, dict):
                schema = {**schema, "description": description}
            content_type = _choose_media_type(consumes) if consumes else _JSON
            serialization = describe_body(content_type, None, schema)
            return _Body(schema, param.get("required") is True, content_type, "body", serialization)
        if not form_params:
            return None
        properties: dict[str, Any] = {}
        required: list[str] = []
        formats: dict[str, Any] = {}
        has_file = False
        for param in form_params:
            has_file = has_file or param.get("type") == "file"
            properties[param["name"]] = self._parameter_schema(param)
            if param.get("required") is True:
                required.append(param["name"])
            if param.get("type") == "array":
                # Swagger 2's default for arrays is csv, in a form body as in a query.
                formats[param["name"]] = param.get("collectionFormat", "csv")
        form_schema: dict[str, Any] = {"type": "object", "properties": properties}
        if required:
            form_schema["required"] = required
        if has_file:
            content_type = _MULTIPART
        elif _FORM in consumes or not consumes:
            content_type = _FORM
        else:
            content_type = _MULTIPART if _MULTIPART in consumes else consumes[0]
        serialization = describe_body(content_type, None, form_schema, formats=formats)
        return _Body(form_schema, bool(required), content_type, "formData", serialization)

    def _add_undeclared_path_params(
        self,
        entry: _RawOperation,
        properties: dict[str, Any],
        required: list[str],
        locations: dict[str, str],
        names: dict[str, str],
    ) -> None:
        declared = {names[p] for p, loc in locations.items() if loc == "path"}
        for name in re.findall(r"\{([^{}/]+)\}", entry.path):
            if name in declared:
                continue
            # The call cannot be made without it, so the model must be able to supply it.
            self.report.warn(
                f"{entry.method} {entry.path}: path parameter {name!r} is not declared; "
                "added as a required string"
            )
            prop = name if name not in properties and name != "body" else f"{name}__path"
            properties[prop] = {"type": "string"}
            required.append(prop)
            locations[prop] = "path"
            names[prop] = name
            declared.add(name)

    def _operation_server(self, entry: _RawOperation) -> str:
        if self.family == "2.0":
            schemes = entry.op.get("schemes", self.doc.get("schemes"))
            servers = self._swagger2_servers(schemes)
        else:
            servers = []
            # Most specific wins: operation, then path item, then document servers.
            for source in (entry.op, entry.item, self.doc):
                if isinstance(source.get("servers"), list) and source["servers"]:
                    servers = self._servers(source["servers"])
                    break
        return servers[0] if servers else ""

    def _security(self, op: dict[str, Any]) -> tuple[dict[str, Any], ...]:
        # Operation-level security replaces the global one, including `security: []` (= none).
        requirements = op["security"] if "security" in op else self.doc.get("security")
        if not isinstance(requirements, list):
            return ()
        return tuple(clone(r) for r in requirements if isinstance(r, dict))

    def _note_unsupported(self, op: dict[str, Any]) -> None:
        if op.get("callbacks"):
            self.report.add_unsupported("callbacks")
        responses = op.get("responses")
        if not isinstance(responses, dict):
            return
        for response in responses.values():
            resolved = self.resolver.resolve(response, "response")
            if isinstance(resolved, dict) and resolved.get("links"):
                self.report.add_unsupported("links")
                return


# Where a node sits in the document: (parent place, key), root is None.
_Place = tuple[Any, str]


def _pointer(place: _Place | None) -> str:
    """The JSON pointer (as a URI fragment) of a place, e.g. ``#/paths/~1pets/get``."""
    keys: list[str] = []
    while place is not None:
        place, key = place
        keys.append(key.replace("~", "~0").replace("/", "~1"))
    return "#/" + "/".join(reversed(keys)) if keys else "#"


def _resolves_locally(ref: str) -> bool:
    """``#/$defs/X`` written inside a component may mean that schema's own ``$defs`` (see
    ``SchemaNormalizer._local_def``, which warns when it is not there either)."""
    return ref.startswith(("#/$defs/", "#/definitions/"))


def _detect_version(doc: dict[str, Any]) -> tuple[str, str]:
    swagger = doc.get("swagger")
    openapi = doc.get("openapi")
    if swagger is not None:
        # `swagger: 2.0` unquoted in YAML is the float 2.0.
        if swagger in ("2.0", 2.0):
            return "2.0", "2.0"
        raise SpecError(
            f"unsupported Swagger version {swagger!r}: only Swagger 2.0 and OpenAPI 3.0/3.1 "
            "are supported"
        )
    if openapi is not None:
        match = re.fullmatch(r"3\.([01])(\.\d+)?(-[0-9A-Za-z.-]+)?", str(openapi))
        if isinstance(openapi, str) and match:
            return f"3.{match.group(1)}", openapi
        raise SpecError(
            f"unsupported OpenAPI version {openapi!r}: only Swagger 2.0 and OpenAPI 3.0/3.1 "
            "are supported"
        )
    if "swaggerVersion" in doc:
        raise SpecError(
            f"not an OpenAPI or Swagger document: Swagger {doc['swaggerVersion']!r} (1.x) is "
            "not supported; convert it to OpenAPI 3"
        )
    raise SpecError(
        "not an OpenAPI or Swagger document: no 'openapi: 3.x' or 'swagger: \"2.0\"' field"
    )


def _server_url(server: Any, report: ImportReport) -> str | None:
    if not isinstance(server, dict) or not isinstance(server.get("url"), str):
        return None
    variables = server.get("variables")
    variables = variables if isinstance(variables, dict) else {}

    def substitute(match: re.Match[str]) -> str:
        variable = variables.get(match.group(1))
        default = variable.get("default") if isinstance(variable, dict) else None
        if default is None:
            report.warn(f"server variable {match.group(1)!r} has no default; left in the URL")
            return match.group(0)
        return str(default)

    url: str = re.sub(r"\{([^{}]+)\}", substitute, server["url"])
    return url.rstrip("/")


def _choose_media_type(types: list[str]) -> str:
    def base(media_type: str) -> str:
        return media_type.split(";", 1)[0].strip().lower()

    for accept in (
        lambda t: base(t) == _JSON,
        lambda t: base(t).endswith("+json") or base(t).endswith("/json"),
        lambda t: base(t) == _FORM,
        lambda t: base(t) == _MULTIPART,
    ):
        for media_type in types:
            if accept(media_type):
                return media_type
    return types[0]


def _schemaless_body(media_type: str) -> dict[str, Any]:
    base = media_type.split(";", 1)[0].strip().lower()
    if "json" in base or base in (_FORM, _MULTIPART):
        return {}
    if base.startswith("text/"):
        return {"type": "string"}
    return {"type": "string", "format": "binary"}


def _in_defs(schema: Any, defs: dict[str, Any]) -> Any:
    """A body kept by reference (``{"$ref": "#/$defs/Pet"}``) seen as its definition."""
    if isinstance(schema, dict) and isinstance(schema.get("$ref"), str) and defs:
        target = defs.get(schema["$ref"].removeprefix("#/$defs/"))
        if isinstance(target, dict):
            return {**target, **{k: v for k, v in schema.items() if k != "$ref"}}
    return schema


def _top_level_fields(schema: Any) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Property names and required names of a body schema, looking one level into combiners."""
    if not isinstance(schema, dict):
        return (), ()
    all_of = [p for p in schema.get("allOf") or () if isinstance(p, dict)]
    alternatives = [
        p for key in ("anyOf", "oneOf") for p in schema.get(key) or () if isinstance(p, dict)
    ]
    names: dict[str, None] = {}
    required: dict[str, None] = {}
    for part in [schema, *all_of, *alternatives]:
        if isinstance(part.get("properties"), dict):
            names.update(dict.fromkeys(part["properties"]))
    # allOf parts must all hold, so their required fields are required; anyOf/oneOf are choices.
    for part in [schema, *all_of]:
        if isinstance(part.get("required"), list):
            required.update(dict.fromkeys(r for r in part["required"] if isinstance(r, str)))
    return tuple(names), tuple(r for r in required if r in names)


def _unique(base: str, claimed: set[str]) -> str:
    # Case-insensitive: tool names end up in places (DB collations, some LLM APIs) that fold case.
    candidate = base
    counter = 1
    while candidate.lower() in claimed:
        counter += 1
        suffix = f"_{counter}"
        candidate = base[: _MAX_TOOL_NAME - len(suffix)] + suffix
    claimed.add(candidate.lower())
    return candidate


def _base_type(media_type: str) -> str:
    return media_type.split(";", 1)[0].strip().lower()


def _declared_wire(serialization: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The parts of the serialization that differ from the defaults: a spec that changes a
    style changes the fingerprint, while specs that declare none keep their old fingerprints."""
    declared: dict[str, Any] = {}
    for prop, entry in serialization.items():
        if prop == "body" and entry.get("encoding"):
            declared[prop] = entry["encoding"]
        elif prop != "body":
            location = str(entry.get("in", ""))
            default = (
                {"in": location, "collectionFormat": "csv"}
                if "collectionFormat" in entry
                else default_for(location)
            )
            if entry != default:
                declared[prop] = entry
    return declared


def _fingerprint(
    method: str, path: str, schema: dict[str, Any], summary: str, wire: dict[str, Any]
) -> str:
    parts: list[Any] = [method, path, schema, summary]
    if wire:
        parts.append(wire)
    canonical = json.dumps(
        parts,
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
        default=str,
    )
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def _tags(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list):
        return ()
    return tuple(t for t in value if isinstance(t, str))


def _text(value: Any) -> str:
    if value is None:
        return ""
    return value if isinstance(value, str) else str(value)
