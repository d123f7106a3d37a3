"""Normalisation rules, one small hand-written spec per rule."""

from __future__ import annotations

import builtins
import copy
import io
import json
import re
import socket
import time
import urllib.request
from typing import Any

import pytest

from openapi_import.parsing import (
    ParsedOperation,
    ParsedSpec,
    SpecError,
    generate_operation_id,
    parse_document,
    parse_spec,
)
from openapi_import.parsing.refs import RefResolver
from openapi_import.parsing.schema import SchemaNormalizer
from openapi_import.parsing.types import ImportReport

TOOL_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


def oas3(
    paths: dict[str, Any], schemas: dict[str, Any] | None = None, **extra: Any
) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "openapi": extra.pop("version", "3.0.3"),
        "info": {"title": "Test", "version": "1.2.3"},
        "paths": paths,
        "components": {"schemas": schemas or {}},
    }
    doc.update(extra)
    return doc


def swagger2(paths: dict[str, Any], **extra: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "swagger": "2.0",
        "info": {"title": "Test", "version": "1"},
        "paths": paths,
    }
    doc.update(extra)
    return doc


def json_body(schema: dict[str, Any], required: bool = True) -> dict[str, Any]:
    return {"required": required, "content": {"application/json": {"schema": schema}}}


def only(spec: ParsedSpec) -> ParsedOperation:
    assert len(spec.operations) == 1
    return spec.operations[0]


def op_by_id(spec: ParsedSpec, operation_id: str) -> ParsedOperation:
    return next(o for o in spec.operations if o.operation_id == operation_id)


def props(op: ParsedOperation) -> dict[str, Any]:
    properties: dict[str, Any] = op.parameters_schema["properties"]
    return properties


def body(op: ParsedOperation) -> dict[str, Any]:
    schema: dict[str, Any] = props(op)["body"]
    return schema


def walk(node: Any) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    stack = [node]
    while stack:
        current = stack.pop()
        if isinstance(current, dict):
            found.append(current)
            stack.extend(current.values())
        elif isinstance(current, list):
            stack.extend(current)
    return found


# -- document level ---------------------------------------------------------------------------


def test_basic_fields() -> None:
    spec = parse_document(
        oas3(
            {
                "/pets/{petId}": {
                    "get": {
                        "operationId": "showPet",
                        "summary": "Info for a pet",
                        "description": "Longer text",
                        "tags": ["pets", 7],
                        "deprecated": True,
                        "x-openai-isConsequential": False,
                        "parameters": [
                            {
                                "name": "petId",
                                "in": "path",
                                "required": True,
                                "description": "The pet",
                                "schema": {"type": "string"},
                            }
                        ],
                        "responses": {"200": {"description": "ok"}},
                    }
                }
            },
            servers=[{"url": "https://api.example.com/v1/"}],
        )
    )
    assert (spec.title, spec.version, spec.spec_version) == ("Test", "1.2.3", "3.0.3")
    assert spec.servers == ["https://api.example.com/v1"]
    op = only(spec)
    assert op.operation_id == "showPet" and not op.operation_id_generated
    assert (op.method, op.path, op.summary, op.description) == (
        "GET",
        "/pets/{petId}",
        "Info for a pet",
        "Longer text",
    )
    assert op.tags == ("pets",)
    assert op.deprecated is True
    assert op.extensions == {"x-openai-isConsequential": False}
    assert op.server_url == "https://api.example.com/v1"
    assert op.parameters_schema == {
        "type": "object",
        "properties": {"petId": {"type": "string", "description": "The pet"}},
        "required": ["petId"],
        "additionalProperties": False,
    }
    assert op.parameter_locations == {"petId": "path"}
    assert op.body_content_type is None
    assert op.is_webhook is False
    assert spec.report.as_dict() == {
        "unresolved_refs": [],
        "skipped_operations": [],
        "unsupported": [],
        "warnings": [],
    }


def test_parse_document_rejects_non_mappings_and_deep_python_input() -> None:
    with pytest.raises(SpecError, match="not a mapping"):
        parse_document([])  # type: ignore[arg-type]
    deep: dict[str, Any] = {"openapi": "3.0.0", "paths": {}}
    node = deep
    for _ in range(500):
        node["x"] = {}
        node = node["x"]
    with pytest.raises(SpecError, match="nested more than"):
        parse_document(deep)


def test_methods_order_and_non_operation_keys() -> None:
    item: dict[str, Any] = {
        method: {"responses": {}}
        for method in ("get", "put", "post", "delete", "options", "head", "patch", "trace")
    }
    item |= {
        "summary": "s",
        "description": "d",
        "x-internal": True,
        "query": {"responses": {}},
        "GET": {},
    }
    spec = parse_document(oas3({"/things": item}))
    assert [o.method for o in spec.operations] == [
        "GET",
        "PUT",
        "POST",
        "DELETE",
        "OPTIONS",
        "HEAD",
        "PATCH",
        "TRACE",
    ]
    assert "path item field 'query'" in spec.report.unsupported
    assert {
        "method": "GET",
        "path": "/things",
        "reason": "method key 'GET' must be lower case",
    } in (spec.report.skipped_operations)


def test_operations_that_are_not_objects_are_skipped_and_reported() -> None:
    spec = parse_document(
        oas3(
            {
                "/a": {"get": "nope", "post": {"responses": {}}},
                "/b": ["not", "an", "item"],
                "x-extension": {"get": {}},
            }
        )
    )
    assert [o.method + " " + o.path for o in spec.operations] == ["POST /a"]
    assert spec.report.skipped_operations == [
        {"method": "GET", "path": "/a", "reason": "operation is not an object"},
        {"method": "*", "path": "/b", "reason": "path item is not an object"},
    ]


def test_callbacks_and_links_are_reported_once() -> None:
    callback = {"{$request.query.url}": {"post": {"responses": {"200": {"description": "ok"}}}}}
    links = {"next": {"operationId": "b"}}
    spec = parse_document(
        oas3(
            {
                "/a": {
                    "post": {"callbacks": {"onData": callback}, "responses": {}},
                    "get": {"callbacks": {"onData": callback}, "responses": {}},
                },
                "/b": {
                    "get": {"responses": {"200": {"$ref": "#/components/responses/WithLinks"}}},
                    "put": {"responses": {"200": {"description": "x", "links": links}}},
                },
            },
            components={"responses": {"WithLinks": {"description": "x", "links": links}}},
        )
    )
    assert spec.report.unsupported == ["callbacks", "links"]
    # Callback operations are not operations of this API.
    assert len(spec.operations) == 4


def test_webhooks_are_separate_from_operations() -> None:
    spec = parse_document(
        oas3(
            {},
            version="3.1.0",
            webhooks={
                "newPet": {
                    "post": {
                        "requestBody": json_body({"$ref": "#/components/schemas/Pet"}),
                        "responses": {"200": {"description": "ok"}},
                    }
                }
            },
            schemas={"Pet": {"type": "object", "properties": {"name": {"type": "string"}}}},
        )
    )
    assert spec.operations == []
    (hook,) = spec.webhooks
    assert hook.is_webhook is True
    assert hook.path == "newPet"
    assert hook.operation_id == "post_newPet"
    assert hook.server_url == ""
    assert hook.body_field_names == ("name",)


def test_webhooks_in_3_0_are_not_operations() -> None:
    spec = parse_document(oas3({}, webhooks={"x": {"post": {"responses": {}}}}))
    assert spec.webhooks == []
    assert spec.operations == []
    assert spec.report.unsupported == ["webhooks outside OpenAPI 3.1 (ignored)"]


def test_3_1_without_paths_is_fine_but_3_0_warns() -> None:
    doc31 = oas3({}, version="3.1.0")
    del doc31["paths"]
    assert parse_document(doc31).report.warnings == []
    doc30 = oas3({})
    del doc30["paths"]
    assert parse_document(doc30).report.warnings == ["the document has no 'paths'"]


def test_security_operation_level_overrides_global() -> None:
    spec = parse_document(
        oas3(
            {
                "/a": {"get": {"operationId": "inherits", "responses": {}}},
                "/b": {"get": {"operationId": "public", "security": [], "responses": {}}},
                "/c": {
                    "get": {
                        "operationId": "own",
                        "security": [{"oauth": ["read"]}],
                        "responses": {},
                    }
                },
            },
            security=[{"apiKey": []}],
            components={
                "securitySchemes": {
                    "apiKey": {"type": "apiKey", "in": "header", "name": "X-Key"},
                    "oauth": {"$ref": "#/components/x-schemes/oauth"},
                },
                "x-schemes": {"oauth": {"type": "oauth2", "flows": {}}},
            },
        )
    )
    assert op_by_id(spec, "inherits").security == ({"apiKey": []},)
    assert op_by_id(spec, "public").security == ()
    assert op_by_id(spec, "own").security == ({"oauth": ["read"]},)
    assert spec.security_schemes == {
        "apiKey": {"type": "apiKey", "in": "header", "name": "X-Key"},
        "oauth": {"type": "oauth2", "flows": {}},
    }


def test_swagger2_security_definitions() -> None:
    spec = parse_document(
        swagger2(
            {"/a": {"get": {"responses": {}}}},
            securityDefinitions={"key": {"type": "apiKey", "in": "query", "name": "api_key"}},
            security=[{"key": []}],
        )
    )
    assert spec.security_schemes == {"key": {"type": "apiKey", "in": "query", "name": "api_key"}}
    assert only(spec).security == ({"key": []},)


# -- servers ----------------------------------------------------------------------------------


def test_server_variables_and_overrides() -> None:
    spec = parse_document(
        oas3(
            {
                "/doc": {"get": {"operationId": "doc", "responses": {}}},
                "/item": {
                    "servers": [{"url": "https://item.example.com"}],
                    "get": {"operationId": "item", "responses": {}},
                    "post": {
                        "operationId": "op",
                        "servers": [{"url": "/relative/api/"}],
                        "responses": {},
                    },
                },
            },
            servers=[
                {
                    "url": "{scheme}://{region}.example.com:{port}/{basePath}",
                    "variables": {
                        "scheme": {"enum": ["https", "http"], "default": "https"},
                        "region": {"default": "eu"},
                        "port": {"default": 8443},
                        "basePath": {"default": "v2"},
                    },
                },
                {"url": "https://{missing}.example.com"},
            ],
        )
    )
    assert spec.servers == ["https://eu.example.com:8443/v2", "https://{missing}.example.com"]
    assert any("'missing' has no default" in w for w in spec.report.warnings)
    assert op_by_id(spec, "doc").server_url == "https://eu.example.com:8443/v2"
    assert op_by_id(spec, "item").server_url == "https://item.example.com"
    assert op_by_id(spec, "op").server_url == "/relative/api"


def test_no_servers_gives_empty_server_url() -> None:
    spec = parse_document(oas3({"/a": {"get": {"responses": {}}}}))
    assert spec.servers == []
    assert only(spec).server_url == ""


def test_swagger2_host_base_path_schemes() -> None:
    spec = parse_document(
        swagger2(
            {
                "/a": {"get": {"operationId": "a", "responses": {}}},
                "/b": {"get": {"operationId": "b", "schemes": ["http"], "responses": {}}},
            },
            host="api.example.com:8080",
            basePath="/v1/",
            schemes=["http", "https", "ws"],
        )
    )
    assert spec.servers == ["https://api.example.com:8080/v1", "http://api.example.com:8080/v1"]
    assert op_by_id(spec, "a").server_url == "https://api.example.com:8080/v1"
    assert op_by_id(spec, "b").server_url == "http://api.example.com:8080/v1"
    relative = parse_document(swagger2({"/a": {"get": {"responses": {}}}}, basePath="/api"))
    assert relative.servers == ["/api"]
    assert only(relative).server_url == "/api"
    assert parse_document(swagger2({})).servers == []


# -- parameters -------------------------------------------------------------------------------


def test_path_level_parameters_are_merged_and_overridden_by_name_and_location() -> None:
    spec = parse_document(
        oas3(
            {
                "/users/{id}": {
                    "parameters": [
                        {
                            "name": "id",
                            "in": "path",
                            "required": True,
                            "schema": {"type": "string"},
                        },
                        {"name": "verbose", "in": "query", "schema": {"type": "boolean"}},
                        {"$ref": "#/components/parameters/Trace"},
                    ],
                    "get": {
                        "parameters": [
                            {
                                "name": "id",
                                "in": "path",
                                "required": True,
                                "schema": {"type": "integer"},
                                "description": "numeric id",
                            },
                            {"name": "id", "in": "header", "schema": {"type": "string"}},
                        ],
                        "responses": {},
                    },
                }
            },
            components={
                "parameters": {
                    "Trace": {"name": "X-Trace", "in": "header", "schema": {"type": "string"}}
                }
            },
        )
    )
    op = only(spec)
    assert props(op) == {
        "id": {"type": "integer", "description": "numeric id"},
        "verbose": {"type": "boolean"},
        "X-Trace": {"type": "string"},
        "id__header": {"type": "string"},
    }
    assert op.parameter_locations == {
        "id": "path",
        "verbose": "query",
        "X-Trace": "header",
        "id__header": "header",
    }
    assert op.parameter_names["id__header"] == "id"
    assert op.parameters_schema["required"] == ["id"]


def test_name_collision_with_body_and_between_locations() -> None:
    spec = parse_document(
        oas3(
            {
                "/x/{id}": {
                    "post": {
                        "parameters": [
                            {"name": "id", "in": "cookie", "schema": {"type": "string"}},
                            {"name": "id", "in": "query", "schema": {"type": "string"}},
                            {"name": "id", "in": "path", "required": True, "schema": {}},
                            {"name": "body", "in": "query", "schema": {"type": "string"}},
                        ],
                        "requestBody": json_body({"type": "object"}),
                        "responses": {},
                    }
                }
            }
        )
    )
    op = only(spec)
    # Path wins the bare name, then query, header, cookie; "body" is reserved for the body.
    assert op.parameter_locations == {
        "id": "path",
        "id__query": "query",
        "body__query": "query",
        "id__cookie": "cookie",
        "body": "body",
    }
    assert op.parameter_names == {
        "id": "id",
        "id__query": "id",
        "body__query": "body",
        "id__cookie": "id",
        "body": "body",
    }
    # Cookie parameters are sent now (SPEC §6), so they are no longer reported as unsupported.
    assert spec.report.unsupported == []
    assert op.parameter_serialization["id__cookie"] == {
        "in": "cookie",
        "style": "form",
        "explode": True,
        "allowReserved": False,
    }


def test_reserved_headers_are_ignored_in_3x() -> None:
    spec = parse_document(
        oas3(
            {
                "/a": {
                    "get": {
                        "parameters": [
                            {"name": name, "in": "header", "schema": {"type": "string"}}
                            for name in ("Accept", "content-type", "Authorization", "X-Tenant")
                        ],
                        "responses": {},
                    }
                }
            }
        )
    )
    assert list(props(only(spec))) == ["X-Tenant"]


def test_parameter_content_and_serialization_are_kept() -> None:
    spec = parse_document(
        oas3(
            {
                "/a": {
                    "get": {
                        "parameters": [
                            {
                                "name": "filter",
                                "in": "query",
                                "content": {
                                    "application/json": {
                                        "schema": {
                                            "type": "object",
                                            "properties": {"q": {"type": "string"}},
                                        }
                                    }
                                },
                            },
                            {
                                "name": "ids",
                                "in": "query",
                                "style": "form",
                                "explode": False,
                                "deprecated": True,
                                "schema": {"type": "array", "items": {"type": "integer"}},
                            },
                        ],
                        "responses": {},
                    }
                }
            }
        )
    )
    op = only(spec)
    assert props(op)["filter"] == {"type": "object", "properties": {"q": {"type": "string"}}}
    assert props(op)["ids"]["deprecated"] is True
    assert op.parameter_serialization == {
        "filter": {
            "in": "query",
            "style": "form",
            "explode": True,
            "allowReserved": False,
            "contentType": "application/json",
        },
        "ids": {"in": "query", "style": "form", "explode": False, "allowReserved": False},
    }


def test_undeclared_path_parameter_is_added_and_invalid_parameters_are_skipped() -> None:
    spec = parse_document(
        oas3(
            {
                "/orgs/{org}/teams/{team_slug}": {
                    "get": {
                        "parameters": [
                            {"name": "org", "in": "path", "required": True, "schema": {}},
                            {"in": "query"},
                            {"name": "x", "in": "body"},
                            "junk",
                        ],
                        "responses": {},
                    }
                }
            }
        )
    )
    op = only(spec)
    assert props(op)["team_slug"] == {"type": "string"}
    assert op.parameters_schema["required"] == ["org", "team_slug"]
    assert op.parameter_locations == {"org": "path", "team_slug": "path"}
    warnings = " | ".join(spec.report.warnings)
    assert "path parameter 'team_slug' is not declared" in warnings
    assert "unknown 'in' 'body'" in warnings
    assert "without a valid name/in" in warnings


def test_swagger2_parameters_become_schemas() -> None:
    spec = parse_document(
        swagger2(
            {
                "/pets": {
                    "get": {
                        "parameters": [
                            {
                                "name": "tags",
                                "in": "query",
                                "type": "array",
                                "items": {"type": "string"},
                                "collectionFormat": "csv",
                                "description": "tags to filter by",
                            },
                            {
                                "name": "limit",
                                "in": "query",
                                "type": "integer",
                                "format": "int32",
                                "minimum": 1,
                                "exclusiveMaximum": True,
                                "maximum": 100,
                                "default": 20,
                                "x-nullable": True,
                            },
                        ],
                        "responses": {},
                    }
                }
            }
        )
    )
    op = only(spec)
    assert props(op) == {
        "tags": {
            "type": "array",
            "items": {"type": "string"},
            "description": "tags to filter by",
        },
        "limit": {
            "type": ["integer", "null"],
            "format": "int32",
            "minimum": 1,
            "exclusiveMaximum": 100,
            "default": 20,
        },
    }
    # Swagger 2 arrays default to csv (a=1,2), unlike OpenAPI 3's exploded form.
    assert op.parameter_serialization == {
        "tags": {"in": "query", "collectionFormat": "csv"},
        "limit": {"in": "query", "collectionFormat": "csv"},
    }


# -- request bodies ---------------------------------------------------------------------------


def test_swagger2_body_parameter() -> None:
    spec = parse_document(
        swagger2(
            {
                "/pets": {
                    "post": {
                        "consumes": ["application/xml", "application/json"],
                        "parameters": [
                            {
                                "name": "pet",
                                "in": "body",
                                "required": True,
                                "description": "Pet to add",
                                "schema": {"$ref": "#/definitions/Pet"},
                            }
                        ],
                        "responses": {},
                    }
                }
            },
            definitions={
                "Pet": {
                    "type": "object",
                    "required": ["name"],
                    "properties": {"name": {"type": "string"}, "tag": {"type": "string"}},
                }
            },
        )
    )
    op = only(spec)
    assert body(op) == {
        "type": "object",
        "required": ["name"],
        "properties": {"name": {"type": "string"}, "tag": {"type": "string"}},
        "description": "Pet to add",
    }
    assert op.parameters_schema["required"] == ["body"]
    assert op.parameter_locations == {"body": "body"}
    assert op.body_content_type == "application/json"
    assert op.body_field_names == ("name", "tag")
    assert op.body_required_fields == ("name",)


def test_swagger2_form_data_with_file_is_multipart() -> None:
    spec = parse_document(
        swagger2(
            {
                "/pets/{petId}/upload": {
                    "post": {
                        "parameters": [
                            {"name": "petId", "in": "path", "required": True, "type": "integer"},
                            {"name": "note", "in": "formData", "type": "string"},
                            {
                                "name": "file",
                                "in": "formData",
                                "type": "file",
                                "required": True,
                                "description": "image",
                            },
                        ],
                        "responses": {},
                    }
                }
            }
        )
    )
    op = only(spec)
    assert body(op) == {
        "type": "object",
        "properties": {
            "note": {"type": "string"},
            "file": {"type": "string", "format": "binary", "description": "image"},
        },
        "required": ["file"],
    }
    assert op.parameter_locations == {"petId": "path", "body": "formData"}
    assert op.body_content_type == "multipart/form-data"
    assert op.parameters_schema["required"] == ["petId", "body"]
    assert op.body_field_names == ("note", "file")


@pytest.mark.parametrize(
    ("consumes", "expected"),
    [
        (None, "application/x-www-form-urlencoded"),
        (["multipart/form-data"], "multipart/form-data"),
        (
            ["application/x-www-form-urlencoded", "multipart/form-data"],
            "application/x-www-form-urlencoded",
        ),
    ],
)
def test_swagger2_form_data_content_type(consumes: list[str] | None, expected: str) -> None:
    operation: dict[str, Any] = {
        "parameters": [{"name": "name", "in": "formData", "type": "string"}],
        "responses": {},
    }
    if consumes is not None:
        operation["consumes"] = consumes
    op = only(parse_document(swagger2({"/a": {"post": operation}})))
    assert op.body_content_type == expected
    assert op.parameters_schema["required"] == []


def test_request_body_ref_description_and_required() -> None:
    spec = parse_document(
        oas3(
            {
                "/a": {
                    "post": {
                        "requestBody": {"$ref": "#/components/requestBodies/New"},
                        "responses": {},
                    }
                }
            },
            components={
                "requestBodies": {
                    "New": {
                        "description": "The thing",
                        "required": True,
                        "content": {
                            "application/xml": {"schema": {"type": "string"}},
                            "application/json; charset=utf-8": {
                                "schema": {"type": "object", "properties": {"a": {}}}
                            },
                        },
                    }
                }
            },
        )
    )
    op = only(spec)
    assert op.body_content_type == "application/json; charset=utf-8"
    assert body(op) == {"type": "object", "properties": {"a": {}}, "description": "The thing"}
    assert op.parameters_schema["required"] == ["body"]


@pytest.mark.parametrize(
    ("media_types", "chosen"),
    [
        (["text/plain", "application/vnd.api+json", "application/json"], "application/json"),
        (["application/xml", "application/vnd.api+json"], "application/vnd.api+json"),
        (
            ["multipart/form-data", "application/x-www-form-urlencoded"],
            "application/x-www-form-urlencoded",
        ),
        (["text/plain", "multipart/form-data"], "multipart/form-data"),
        (["image/png", "text/plain"], "image/png"),
    ],
)
def test_request_media_type_preference(media_types: list[str], chosen: str) -> None:
    content = {mt: {"schema": {"type": "string"}} for mt in media_types}
    op = only(
        parse_document(
            oas3({"/a": {"post": {"requestBody": {"content": content}, "responses": {}}}})
        )
    )
    assert op.body_content_type == chosen


def test_schemaless_bodies() -> None:
    paths: dict[str, Any] = {
        f"/{name}": {"post": {"requestBody": {"content": {mt: {}}}, "responses": {}}}
        for name, mt in (("png", "image/png"), ("text", "text/plain"), ("json", "application/json"))
    }
    spec = parse_document(oas3(paths))
    assert [body(op) for op in spec.operations] == [
        {"type": "string", "format": "binary"},
        {"type": "string"},
        {},
    ]
    assert all(op.parameters_schema["required"] == [] for op in spec.operations)


def test_read_only_properties_are_dropped_from_bodies() -> None:
    spec = parse_document(
        oas3(
            {
                "/pets": {
                    "post": {
                        "requestBody": json_body({"$ref": "#/components/schemas/Pet"}),
                        "responses": {},
                    }
                }
            },
            schemas={
                "Id": {"type": "integer", "readOnly": True},
                "Pet": {
                    "type": "object",
                    "required": ["id", "name", "created"],
                    "properties": {
                        "id": {"$ref": "#/components/schemas/Id"},
                        "name": {"type": "string"},
                        "created": {"type": "string", "readOnly": True},
                        "owner": {
                            "type": "object",
                            "properties": {"uid": {"type": "string", "readOnly": True}},
                        },
                        "secret": {"type": "string", "writeOnly": True},
                    },
                },
            },
        )
    )
    schema = body(only(spec))
    assert list(schema["properties"]) == ["name", "owner", "secret"]
    assert schema["required"] == ["name"]
    assert schema["properties"]["owner"]["properties"] == {}
    assert only(spec).body_field_names == ("name", "owner", "secret")


# -- schema normalisation ---------------------------------------------------------------------


def _body_schema_of(schema: dict[str, Any], **doc: Any) -> dict[str, Any]:
    spec = parse_document(
        oas3({"/a": {"post": {"requestBody": json_body(schema), "responses": {}}}}, **doc)
    )
    return body(only(spec))


def test_nullable_becomes_a_null_type() -> None:
    schema = _body_schema_of(
        {
            "type": "object",
            "properties": {
                "name": {"type": "string", "nullable": True},
                "kind": {"type": "string", "enum": ["a", "b"], "nullable": True},
                "ref": {"$ref": "#/components/schemas/Thing", "nullable": True},
                "any": {"nullable": True},
                "plain": {"type": "string", "nullable": False},
            },
        },
        schemas={"Thing": {"type": "object", "description": "A thing"}},
    )
    assert schema["properties"] == {
        "name": {"type": ["string", "null"]},
        "kind": {"type": ["string", "null"], "enum": ["a", "b", None]},
        "ref": {"type": ["object", "null"], "description": "A thing"},
        "any": {},
        "plain": {"type": "string"},
    }


def test_nullable_without_type_wraps_in_any_of() -> None:
    schema = _body_schema_of(
        {"allOf": [{"type": "string"}], "nullable": True, "description": "maybe"}
    )
    assert schema == {
        "description": "maybe",
        "anyOf": [{"allOf": [{"type": "string"}]}, {"type": "null"}],
    }


def test_openapi_3_1_json_schema_passes_through() -> None:
    schema = _body_schema_of(
        {
            "type": "object",
            "$defs": {"Tag": {"type": "string", "minLength": 1}},
            "properties": {
                "name": {"type": ["string", "null"]},
                "pair": {"type": "array", "prefixItems": [{"type": "string"}, {"type": "number"}]},
                "fixed": {"const": "v1"},
                "tag": {"$ref": "#/$defs/Tag"},
                "shared": {"$ref": "#/$defs/Shared"},
                "cond": {"if": {"type": "string"}, "then": {"minLength": 2}, "else": False},
                "range": {"type": "number", "exclusiveMinimum": 0},
            },
            "unevaluatedProperties": False,
        },
        version="3.1.0",
        **{"$defs": {"Shared": {"type": "boolean"}}},
    )
    assert schema == {
        "type": "object",
        "properties": {
            "name": {"type": ["string", "null"]},
            "pair": {"type": "array", "prefixItems": [{"type": "string"}, {"type": "number"}]},
            "fixed": {"const": "v1"},
            "tag": {"type": "string", "minLength": 1},
            "shared": {"type": "boolean"},
            "cond": {"if": {"type": "string"}, "then": {"minLength": 2}, "else": False},
            "range": {"type": "number", "exclusiveMinimum": 0},
        },
        "unevaluatedProperties": False,
    }


def test_noise_is_dropped_but_descriptions_kept() -> None:
    schema = _body_schema_of(
        {
            "type": "object",
            "description": "keep me",
            "example": {"a": 1},
            "examples": [{"a": 1}],
            "externalDocs": {"url": "https://example.com"},
            "xml": {"name": "thing"},
            "x-internal-id": 7,
            "discriminator": {"propertyName": "kind"},
            "properties": {"a": {"type": "string", "title": "A", "format": "email"}},
        }
    )
    assert schema == {
        "type": "object",
        "description": "keep me",
        "discriminator": {"propertyName": "kind"},
        "properties": {"a": {"type": "string", "title": "A", "format": "email"}},
    }


def test_ref_keys_inside_data_values_are_untouched() -> None:
    example_member = {"value": "9", "$ref": "https://api.github.com/scim/v2/Users/9"}
    spec = parse_document(
        oas3(
            {
                "/scim": {
                    "post": {
                        "requestBody": {
                            "content": {
                                "application/json": {
                                    "schema": {"$ref": "#/components/schemas/Group"},
                                    "examples": {"g": {"value": {"members": [example_member]}}},
                                }
                            }
                        },
                        "responses": {},
                    }
                }
            },
            schemas={
                "Group": {
                    "type": "object",
                    "example": {"members": [{"$ref": "#/components/schemas/Nope"}]},
                    "default": {"members": [{"$ref": "#/components/schemas/Nope"}]},
                    "properties": {
                        "members": {
                            "type": "array",
                            "items": {
                                "type": "object",
                                # A property *named* $ref (GitHub's SCIM schemas have one).
                                "properties": {"$ref": {"type": "string"}, "value": {}},
                            },
                        },
                        "mode": {"enum": [{"$ref": "#/x"}, "plain"]},
                        "fixed": {"const": {"$ref": "file:///etc/passwd"}},
                    },
                }
            },
        )
    )
    schema = body(only(spec))
    assert schema["default"] == {"members": [{"$ref": "#/components/schemas/Nope"}]}
    assert "example" not in schema
    members = schema["properties"]["members"]["items"]["properties"]
    assert members == {"$ref": {"type": "string"}, "value": {}}
    assert schema["properties"]["mode"]["enum"] == [{"$ref": "#/x"}, "plain"]
    assert schema["properties"]["fixed"]["const"] == {"$ref": "file:///etc/passwd"}
    assert spec.report.unresolved_refs == []
    assert spec.report.warnings == []


def test_json_pointer_escapes_and_percent_encoding() -> None:
    schema = _body_schema_of(
        {
            "type": "object",
            "properties": {
                "slash": {"$ref": "#/components/schemas/a~1b"},
                "tilde": {"$ref": "#/components/schemas/c~0d"},
                "space": {"$ref": "#/components/schemas/with%20space"},
                "list": {"$ref": "#/components/schemas/Tuple/prefixItems/1"},
            },
        },
        schemas={
            "a/b": {"type": "string"},
            "c~d": {"type": "integer"},
            "with space": {"type": "boolean"},
            "Tuple": {"prefixItems": [{"type": "null"}, {"type": "number"}]},
        },
    )
    assert schema["properties"] == {
        "slash": {"type": "string"},
        "tilde": {"type": "integer"},
        "space": {"type": "boolean"},
        "list": {"type": "number"},
    }


def test_ref_cycles_become_placeholders_and_terminate() -> None:
    spec = parse_document(
        oas3(
            {
                "/tree": {
                    "post": {
                        "requestBody": json_body({"$ref": "#/components/schemas/Node"}),
                        "responses": {},
                    }
                },
                "/pair": {
                    "put": {
                        "requestBody": json_body({"$ref": "#/components/schemas/A"}),
                        "responses": {},
                    }
                },
                "/self": {
                    "patch": {
                        "requestBody": json_body({"$ref": "#/components/schemas/Self"}),
                        "responses": {},
                    }
                },
            },
            schemas={
                "Node": {
                    "type": "object",
                    "properties": {
                        "value": {"type": "string"},
                        "children": {
                            "type": "array",
                            "items": {"$ref": "#/components/schemas/Node"},
                        },
                    },
                },
                "A": {"type": "object", "properties": {"b": {"$ref": "#/components/schemas/B"}}},
                "B": {"type": "object", "properties": {"a": {"$ref": "#/components/schemas/A"}}},
                "Self": {"$ref": "#/components/schemas/Self"},
            },
        )
    )
    tree, pair, self_ref = spec.operations
    assert body(tree)["properties"]["children"]["items"] == {
        "type": "object",
        "description": "Recursive reference to Node (not expanded)",
    }
    assert body(pair)["properties"]["b"]["properties"]["a"] == {
        "type": "object",
        "description": "Recursive reference to A (not expanded)",
    }
    assert body(self_ref) == {"description": "Recursive reference to Self (not expanded)"}
    assert spec.report.warnings == []  # a cycle is normal, not a problem


def test_cycles_reached_from_different_entry_points_stay_finite() -> None:
    spec = parse_document(
        oas3(
            {
                "/a": {
                    "post": {
                        "requestBody": json_body({"$ref": "#/components/schemas/A"}),
                        "responses": {},
                    }
                },
                "/b": {
                    "post": {
                        "requestBody": json_body({"$ref": "#/components/schemas/B"}),
                        "responses": {},
                    }
                },
            },
            schemas={
                "A": {"type": "object", "properties": {"b": {"$ref": "#/components/schemas/B"}}},
                "B": {"type": "object", "properties": {"a": {"$ref": "#/components/schemas/A"}}},
            },
        )
    )
    via_a, via_b = spec.operations
    assert body(via_a)["properties"]["b"]["properties"]["a"] == {
        "type": "object",
        "description": "Recursive reference to A (not expanded)",
    }
    # Reached from B, A may be the memoised unrolling A -> B -> (A): still finite and correct.
    expanded_a = body(via_b)["properties"]["a"]
    assert expanded_a["type"] == "object"
    placeholders = [
        n["description"] for n in walk(expanded_a) if "Recursive" in n.get("description", "")
    ]
    assert len(placeholders) == 1
    assert placeholders[0] in (
        "Recursive reference to A (not expanded)",
        "Recursive reference to B (not expanded)",
    )


def test_external_refs_are_never_fetched(monkeypatch: pytest.MonkeyPatch) -> None:
    doc = oas3(
        {
            "/a": {
                "$ref": "https://example.com/paths.yaml#/a",
            },
            "/b": {
                "post": {
                    "parameters": [{"$ref": "parameters.yaml#/limit"}],
                    "requestBody": json_body(
                        {
                            "type": "object",
                            "properties": {
                                "pet": {"$ref": "Pet.yaml"},
                                "err": {"$ref": "../common/Error.yaml#/Error"},
                                "passwd": {"$ref": "file:///etc/passwd"},
                                "remote": {"$ref": "http://169.254.169.254/latest/meta-data#/x"},
                            },
                        }
                    ),
                    "responses": {"200": {"$ref": "responses.yaml#/Ok"}},
                }
            },
            "/c": {"post": {"requestBody": {"$ref": "bodies.json#/New"}, "responses": {}}},
        }
    )

    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError(f"I/O attempted: {args!r}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(urllib.request, "urlopen", refuse)
    monkeypatch.setattr(builtins, "open", refuse)
    monkeypatch.setattr(io, "open", refuse)
    spec = parse_document(doc)
    monkeypatch.undo()

    assert spec.report.unresolved_refs == [
        "https://example.com/paths.yaml#/a",
        "parameters.yaml#/limit",
        "Pet.yaml",
        "../common/Error.yaml#/Error",
        "file:///etc/passwd",
        "http://169.254.169.254/latest/meta-data#/x",
        "responses.yaml#/Ok",
        "bodies.json#/New",
    ]
    assert {
        "method": "*",
        "path": "/a",
        "reason": ("path item reference 'https://example.com/paths.yaml#/a' could not be resolved"),
    } in spec.report.skipped_operations
    b, c = spec.operations
    assert body(b)["properties"]["passwd"] == {
        "description": "Unresolved external reference: file:///etc/passwd"
    }
    assert "parameters.yaml#/limit" in " ".join(spec.report.warnings)
    assert body(c) == {"description": "Request body (unresolved reference bodies.json#/New)"}


def test_ref_siblings_refine_the_target() -> None:
    schema = _body_schema_of(
        {
            "type": "object",
            "properties": {
                "status": {"$ref": "#/components/schemas/Status", "description": "Order status"}
            },
        },
        schemas={"Status": {"type": "string", "enum": ["open", "done"], "description": "generic"}},
    )
    assert schema["properties"]["status"] == {
        "type": "string",
        "enum": ["open", "done"],
        "description": "Order status",
    }


PET_3_1 = {
    "type": "object",
    "required": ["name", "photoUrls"],
    "properties": {
        "id": {"type": "integer", "format": "int64"},
        "name": {"type": "string"},
        "photoUrls": {"type": "array", "items": {"type": "string"}},
        "status": {"type": "string", "enum": ["available", "pending", "sold"]},
    },
}


def test_ref_siblings_are_all_of_the_target_and_keep_its_required() -> None:
    """Petstore 3.1 style: siblings with their own `required` must not drop the target's
    (issue 13 item 13)."""
    import jsonschema

    schema = _body_schema_of(
        {
            "$ref": "#/components/schemas/Pet",
            "description": "Pet to add",
            "required": ["status"],
            "properties": {"status": {"type": "string", "enum": ["available"]}},
        },
        schemas={"Pet": PET_3_1},
        version="3.1.0",
    )
    assert schema["description"] == "Pet to add"
    validator = jsonschema.Draft202012Validator(schema)
    assert validator.is_valid({"name": "Rex", "photoUrls": [], "status": "available"})
    assert not validator.is_valid({"status": "available"})  # name, photoUrls still required
    assert not validator.is_valid({"name": "Rex", "photoUrls": []})  # and status too
    assert not validator.is_valid({"name": "Rex", "photoUrls": [], "status": "sold"})


def test_ref_sibling_required_is_united_with_the_target() -> None:
    schema = _body_schema_of(
        {"$ref": "#/components/schemas/Pet", "required": ["id"]},
        schemas={"Pet": PET_3_1},
        version="3.1.0",
    )
    assert schema["required"] == ["name", "photoUrls", "id"]
    assert set(schema["properties"]) == {"id", "name", "photoUrls", "status"}


def test_discriminator_mapping_is_kept() -> None:
    discriminator = {
        "propertyName": "petType",
        "mapping": {"cat": "#/components/schemas/Cat", "dog": "#/components/schemas/Dog"},
    }
    schema = _body_schema_of(
        {"$ref": "#/components/schemas/Pet"},
        schemas={
            "Pet": {
                "oneOf": [
                    {"$ref": "#/components/schemas/Cat"},
                    {"$ref": "#/components/schemas/Dog"},
                ],
                "discriminator": discriminator,
            },
            "Cat": {"type": "object", "properties": {"petType": {"const": "cat"}}},
            "Dog": {"type": "object", "properties": {"petType": {"const": "dog"}}},
        },
    )
    assert schema["discriminator"] == discriminator
    assert len(schema["oneOf"]) == 2


@pytest.mark.parametrize(
    ("ref", "message"),
    [
        (None, "$ref must be a string, not null"),
        (7, "$ref must be a string, not 7"),
        ({"a": 1}, "$ref must be a string"),
        ("", "$ref is empty"),
        ("#/nonexistent", "$ref '#/nonexistent' points at nothing in the document"),
        ("#/components/schemas/Nope", "'#/components/schemas/Nope' points at nothing"),
    ],
)
def test_malformed_refs_fail_with_a_clear_error_naming_the_location(ref: Any, message: str) -> None:
    """Not a silent `{}` (issue 13 item 13)."""
    doc = oas3(
        {
            "/pets": {
                "post": {
                    "requestBody": json_body(
                        {"type": "object", "properties": {"tag": {"$ref": ref}}}
                    ),
                    "responses": {},
                }
            }
        }
    )
    with pytest.raises(SpecError) as caught:
        parse_document(doc)
    assert message in caught.value.message
    assert (
        "at #/paths/~1pets/post/requestBody/content/application~1json/schema/properties/tag"
        in caught.value.message
    )


def test_reference_depth_budget_truncates_with_a_warning() -> None:
    schemas = {
        f"S{i}": {
            "type": "object",
            "properties": {"next": {"$ref": f"#/components/schemas/S{i + 1}"}},
        }
        for i in range(30)
    }
    schemas["S30"] = {"type": "string"}
    spec = parse_document(
        oas3(
            {
                "/deep": {
                    "post": {
                        "requestBody": json_body({"$ref": "#/components/schemas/S0"}),
                        "responses": {},
                    }
                }
            },
            schemas=schemas,
        )
    )
    node = body(only(spec))
    depth = 0
    while "properties" in node:
        node = node["properties"]["next"]
        depth += 1
    assert depth == 20
    assert node["description"] == "Reference to S20 not expanded (nesting too deep)"
    assert any("references nested more than 20 deep" in w for w in spec.report.warnings)


def test_node_budget_truncates_exponential_schemas_quickly() -> None:
    # Each level references the next one 8 times: 8**7 ~ 2M nodes if expanded naively.
    schemas: dict[str, Any] = {"L7": {"type": "string"}}
    for level in range(7):
        schemas[f"L{level}"] = {
            "type": "object",
            "properties": {
                f"p{i}": {"$ref": f"#/components/schemas/L{level + 1}"} for i in range(8)
            },
        }
    started = time.perf_counter()
    spec = parse_document(
        oas3(
            {
                "/bomb": {
                    "post": {
                        "requestBody": json_body({"$ref": "#/components/schemas/L0"}),
                        "responses": {},
                    }
                },
                "/ok": {
                    "post": {
                        "requestBody": json_body({"$ref": "#/components/schemas/L6"}),
                        "responses": {},
                    }
                },
            },
            schemas=schemas,
        )
    )
    elapsed = time.perf_counter() - started
    bomb, ok = spec.operations
    # Past the inline budget the shared components are kept once each under $defs: nothing
    # is truncated and the schema is linear in the document (issue 13 item 15).
    nodes = len(walk(bomb.parameters_schema))
    assert nodes < 200
    assert set(bomb.parameters_schema["$defs"]) == {f"L{i}" for i in range(8)}
    assert bomb.parameters_schema["properties"]["body"] == {"$ref": "#/$defs/L0"}
    assert "truncated" not in json.dumps(bomb.parameters_schema)
    assert any("kept once under $defs" in w for w in spec.report.warnings)
    assert "$defs" not in ok.parameters_schema  # 8 nodes inline: stays inline
    assert "truncated" not in json.dumps(ok.parameters_schema)
    assert elapsed < 5


def test_total_node_budget_fails_the_import() -> None:
    doc = oas3(
        {}, schemas={"Big": {"type": "object", "properties": {f"p{i}": {} for i in range(50)}}}
    )
    report = ImportReport()
    normalizer = SchemaNormalizer(RefResolver(doc, report), report, max_total_nodes=80)
    normalizer.begin("GET /a")
    normalizer.normalize({"$ref": "#/components/schemas/Big"})
    normalizer.begin("GET /b")
    with pytest.raises(SpecError, match="too large to import"):
        normalizer.normalize({"$ref": "#/components/schemas/Big"})


def test_shared_components_are_not_shared_objects_in_results() -> None:
    shared = {"$ref": "#/components/schemas/Pet"}
    spec = parse_document(
        oas3(
            {
                "/a": {"post": {"requestBody": json_body(shared), "responses": {}}},
                "/b": {"post": {"requestBody": json_body(shared), "responses": {}}},
            },
            schemas={
                "Pet": {
                    "type": "object",
                    "properties": {"tags": {"type": "array", "items": {"enum": ["x"]}}},
                }
            },
        )
    )
    a, b = spec.operations
    assert a.parameters_schema == b.parameters_schema
    body(a)["properties"]["tags"]["items"]["enum"].append("mutated")
    assert body(b)["properties"]["tags"]["items"]["enum"] == ["x"]


def test_parse_does_not_mutate_the_input_document() -> None:
    doc = oas3(
        {
            "/a": {
                "post": {
                    "parameters": [
                        {"name": "q", "in": "query", "schema": {"$ref": "#/components/schemas/Q"}}
                    ],
                    "requestBody": json_body({"$ref": "#/components/schemas/Pet"}),
                    "responses": {},
                }
            }
        },
        schemas={
            "Q": {"type": "string", "nullable": True},
            "Pet": {"type": "object", "required": ["id"], "properties": {"id": {"readOnly": True}}},
        },
    )
    before = copy.deepcopy(doc)
    parse_document(doc)
    assert doc == before


# -- operation IDs ----------------------------------------------------------------------------


def test_generated_operation_ids() -> None:
    assert generate_operation_id("GET", "/pets/{petId}") == "get_pets_petId"
    assert generate_operation_id("POST", "/v1/pets.json") == "post_v1_pets"
    assert generate_operation_id("GET", "/") == "get"
    assert generate_operation_id("GET", "/Accounts/{Sid}/Calls{ext}") == "get_Accounts_Sid_Calls"
    assert generate_operation_id("GET", "/repos/{owner}-{repo}") == "get_repos_owner_repo"
    long_path = "/Accounts/{AccountSid}/SIP/Domains/{DomainSid}/CredentialListMappings/{Sid}"
    generated = generate_operation_id("DELETE", long_path)
    assert TOOL_NAME.match(generated)
    assert generated.startswith("delete_") and generated.endswith("CredentialListMappings_Sid")


def test_operation_ids_are_unique_valid_and_stable() -> None:
    paths: dict[str, Any] = {
        "/pets/{petId}": {"get": {"responses": {}}, "delete": {"responses": {}}},
        "/pets/petId": {"get": {"responses": {}}},
        "/pets/{petId}.json": {"get": {"responses": {}}},
        "/given": {
            "get": {"operationId": "get_pets_petId", "responses": {}},
            "put": {"operationId": "find pet by id", "responses": {}},
            "post": {"operationId": "repos/delete", "responses": {}},
            "patch": {"operationId": "dup", "responses": {}},
            "delete": {"operationId": "DUP", "responses": {}},
            "head": {"operationId": "x" * 80, "responses": {}},
            "options": {"operationId": "!!!", "responses": {}},
        },
    }
    first = parse_document(oas3(paths))
    ids = {(o.method, o.path): o.operation_id for o in first.operations}
    assert ids == {
        # Suffixes follow (path, method) order: "/pets/petId" sorts before "/pets/{petId}".
        ("GET", "/pets/petId"): "get_pets_petId_2",
        ("GET", "/pets/{petId}"): "get_pets_petId_3",
        ("DELETE", "/pets/{petId}"): "delete_pets_petId",
        ("GET", "/pets/{petId}.json"): "get_pets_petId_4",
        ("GET", "/given"): "get_pets_petId",
        ("PUT", "/given"): "find_pet_by_id",
        ("POST", "/given"): "repos_delete",
        ("PATCH", "/given"): "dup",
        ("DELETE", "/given"): "DUP_2",
        ("HEAD", "/given"): "x" * 64,
        ("OPTIONS", "/given"): "options_given",
    }
    assert all(TOOL_NAME.match(i) for i in ids.values())
    generated = {(o.method, o.path) for o in first.operations if o.operation_id_generated}
    assert generated == {
        ("GET", "/pets/{petId}"),
        ("DELETE", "/pets/{petId}"),
        ("GET", "/pets/petId"),
        ("GET", "/pets/{petId}.json"),
        ("OPTIONS", "/given"),
    }
    put = next(o for o in first.operations if o.operation_id == "find_pet_by_id")
    assert put.original_operation_id == "find pet by id"
    assert any("'DUP'" in w and "DUP_2" in w for w in first.report.warnings)
    assert any("'find pet by id' -> 'find_pet_by_id'" in w for w in first.report.warnings)

    # Same input, same IDs; and reordering the document does not move the suffixes.
    again = parse_document(oas3(copy.deepcopy(paths)))
    assert [o.operation_id for o in again.operations] == [o.operation_id for o in first.operations]
    reordered = parse_document(oas3(dict(reversed(list(paths.items())))))
    assert {(o.method, o.path): o.operation_id for o in reordered.operations} == ids


# -- fingerprints -----------------------------------------------------------------------------


def test_fingerprint_tracks_callable_shape_only() -> None:
    def spec_with(summary: str, param_type: str, description: str) -> ParsedOperation:
        return only(
            parse_document(
                oas3(
                    {
                        "/a": {
                            "get": {
                                "summary": summary,
                                "description": description,
                                "parameters": [
                                    {"name": "q", "in": "query", "schema": {"type": param_type}}
                                ],
                                "responses": {},
                            }
                        }
                    }
                )
            )
        )

    base = spec_with("Find", "string", "one")
    assert re.fullmatch(r"[0-9a-f]{64}", base.fingerprint)
    assert spec_with("Find", "string", "two").fingerprint == base.fingerprint
    assert spec_with("Find", "integer", "one").fingerprint != base.fingerprint
    assert spec_with("Search", "string", "one").fingerprint != base.fingerprint


def test_yaml_and_json_of_the_same_spec_parse_identically() -> None:
    doc = oas3({"/a": {"get": {"operationId": "a", "responses": {"200": {"description": "ok"}}}}})
    import yaml

    from_yaml = parse_spec(yaml.safe_dump(doc))
    from_json = parse_spec(json.dumps(doc).encode())
    assert from_yaml.operations == from_json.operations


def test_huge_shared_enums_and_texts_are_bounded() -> None:
    huge_enum = [f"value-{i}" for i in range(50_000)]
    long_text = "x" * 50_000
    spec = parse_document(
        oas3(
            {
                f"/r{i}": {
                    "get": {
                        "parameters": [
                            {
                                "name": "kind",
                                "in": "query",
                                "schema": {"$ref": "#/components/schemas/Kind"},
                            },
                            {
                                "name": "note",
                                "in": "query",
                                "schema": {"$ref": "#/components/schemas/Note"},
                            },
                        ],
                        "responses": {},
                    }
                }
                for i in range(50)
            },
            schemas={
                "Kind": {"type": "string", "enum": huge_enum},
                "Note": {"type": "string", "description": long_text},
            },
        )
    )
    for op in spec.operations:
        assert "enum" not in props(op)["kind"]
        assert len(props(op)["note"]["description"]) == 20_001
    warnings = " | ".join(spec.report.warnings)
    assert "parameters schema exceeds" in warnings
    assert "'description' longer than 20000 characters cut" in warnings


def test_odd_shapes_do_not_crash() -> None:
    spec = parse_document(
        {
            "openapi": "3.0.0",
            "info": "not an object",
            "paths": {
                404: {"get": {"tags": "pets", "summary": 7, "responses": {}}},
                "/b": {"post": {"requestBody": {"content": {}}, "responses": {}}},
                "/c": {"post": {"requestBody": {"content": {"application/json": "x"}}}},
                "/d": {"get": {"parameters": {"not": "a list"}}},
            },
        }
    )
    first, second, third, fourth = spec.operations
    assert (first.path, first.tags, first.summary) == ("404", (), "7")
    assert "body" not in props(second)
    assert body(third) == {}
    assert props(fourth) == {}
    warnings = " | ".join(spec.report.warnings)
    assert "no 'info' object" in warnings
    assert "requestBody has no content" in warnings
    assert "'parameters' is not a list" in warnings


def test_python_documents_that_contain_themselves_are_refused() -> None:
    schema: dict[str, Any] = {"type": "object", "properties": {}}
    schema["properties"]["self"] = schema
    doc = oas3({"/a": {"post": {"requestBody": json_body(schema), "responses": {}}}})
    with pytest.raises(SpecError, match="contains itself"):
        parse_document(doc)
    shared = {"type": "string"}
    ok = oas3(
        {
            "/a": {
                "get": {
                    "parameters": [
                        {"name": "x", "in": "query", "schema": shared},
                        {"name": "y", "in": "query", "schema": shared},
                    ],
                    "responses": {},
                }
            }
        }
    )
    assert props(only(parse_document(ok))) == {"x": {"type": "string"}, "y": {"type": "string"}}
