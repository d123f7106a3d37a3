"""Arguments on the wire as the spec says (SPEC §6, issue 13 items 12 and 16): specs are
imported, their operations called with the model's arguments against a local upstream that
records the raw request, and the exact bytes asserted."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, cast
from urllib.parse import parse_qsl, urlsplit

import pytest
import structlog

from conversations import tools
from conversations.turns.setup import tool_spec
from openapi_import.models import ApiSpec, Operation
from openapi_import.services import import_job_create
from tests.openapi_import.stripe_style import stripe_style_spec
from tests.support.http_server import LocalServer, RecordedRequest, Route, local_server

pytestmark = pytest.mark.django_db

CORPUS = Path(__file__).resolve().parents[1] / "fixtures" / "openapi_corpus"
OK = Route(body=b'{"ok": true}', headers={"Content-Type": "application/json"})

Importer = Callable[..., dict[str, Operation]]


@pytest.fixture
def upstream(settings: Any) -> Iterator[LocalServer]:
    with local_server({"*": OK}) as server:  # every path answers 200 with a small JSON body
        settings.UPSTREAM_ALLOWED_HOSTS = [server.netloc]
        settings.UPSTREAM_ALLOW_PRIVATE = True
        yield server


@pytest.fixture
def imported(upstream: LocalServer, django_capture_on_commit_callbacks: Any) -> Importer:
    """Import a spec (a corpus file name or a document) and point it at the upstream."""

    def run(
        source: str | dict[str, Any], *, base_path: str = "", **spec_fields: Any
    ) -> dict[str, Operation]:
        content = (
            json.dumps(source).encode()
            if isinstance(source, dict)
            else (CORPUS / source).read_bytes()
        )
        with django_capture_on_commit_callbacks(execute=True):
            job = import_job_create(source="text", content=content)
        job.refresh_from_db()
        assert job.status == "done", job.error_message
        assert job.spec_id is not None
        ApiSpec.objects.filter(pk=job.spec_id).update(
            base_url=upstream.origin + base_path, **spec_fields
        )
        Operation.objects.filter(spec_id=job.spec_id).update(server_url="")
        ops = Operation.objects.filter(spec_id=job.spec_id).select_related("spec")
        return {op.operation_id: op for op in ops}

    return run


def call(upstream: LocalServer, operation: Operation, arguments: dict[str, Any]) -> RecordedRequest:
    before = len(upstream.recorded)
    outcome = asyncio.run(tools.execute(operation, arguments))
    assert outcome.ok, (outcome.error_kind, outcome.message)
    assert len(upstream.recorded) == before + 1
    return upstream.recorded[-1]


def header(request: RecordedRequest, name: str) -> str | None:
    return next((v for k, v in request.headers.items() if k.lower() == name.lower()), None)


def test_stripe_style_post_customers_sends_bracketed_form_fields(
    upstream: LocalServer, imported: Importer
) -> None:
    ops = imported(
        stripe_style_spec(), auth_header="Authorization", auth_value="Bearer sk_test_123"
    )
    request = call(
        upstream,
        ops["PostCustomers"],
        {
            "body": {
                "email": "ana@example.com",
                "name": "Ana Lima",
                "address": {"line1": "1 Rua Augusta", "city": "Lisboa", "country": "PT"},
                "metadata": {"order_id": "1042", "channel": "chat"},
                "expand": ["default_source", "tax"],
                "invoice_settings": {"custom_fields": [{"name": "PO", "value": "77"}]},
                "tax_id_data": [{"type": "eu_vat", "value": "PT123"}],
                "preferred_locales": ["pt", "en"],
                "balance": -500,
                "tax_exempt": "none",
            }
        },
    )
    assert (request.method, request.target) == ("POST", "/v1/customers")
    assert header(request, "Content-Type") == "application/x-www-form-urlencoded"
    assert header(request, "Authorization") == "Bearer sk_test_123"
    assert request.body == (
        b"email=ana%40example.com&name=Ana%20Lima"
        b"&address%5Bline1%5D=1%20Rua%20Augusta&address%5Bcity%5D=Lisboa&address%5Bcountry%5D=PT"
        b"&metadata%5Border_id%5D=1042&metadata%5Bchannel%5D=chat"
        b"&expand%5B%5D=default_source&expand%5B%5D=tax"
        b"&invoice_settings%5Bcustom_fields%5D%5B0%5D%5Bname%5D=PO"
        b"&invoice_settings%5Bcustom_fields%5D%5B0%5D%5Bvalue%5D=77"
        b"&tax_id_data%5B0%5D%5Btype%5D=eu_vat&tax_id_data%5B0%5D%5Bvalue%5D=PT123"
        b"&preferred_locales%5B%5D=pt&preferred_locales%5B%5D=en"
        b"&balance=-500&tax_exempt=none"
    )
    # What a form parser (Stripe's, Rails', PHP's) reads back: no Python or JSON reprs.
    pairs = dict(parse_qsl(request.body.decode()))
    assert pairs["address[city]"] == "Lisboa" and pairs["metadata[order_id]"] == "1042"
    assert "{" not in request.body.decode() and "True" not in request.body.decode()


def test_stripe_style_list_filters_go_as_deep_objects(
    upstream: LocalServer, imported: Importer
) -> None:
    ops = imported(stripe_style_spec())
    request = call(
        upstream,
        ops["GetCustomers"],
        {
            "created": {"gte": 1700000000},
            "email": "ana@example.com",
            "expand": ["data.tax"],
            "limit": 3,
        },
    )
    path, _, query = request.target.partition("?")
    assert path == "/v1/customers"
    assert (
        query == "created%5Bgte%5D=1700000000&email=ana%40example.com&expand%5B%5D=data.tax&limit=3"
    )


def test_swagger2_multi_collection_format_repeats_the_name(
    upstream: LocalServer, imported: Importer
) -> None:
    ops = imported("readme-oas-examples-2.0-json-petstore.json", base_path="/v2")
    request = call(upstream, ops["findPetsByStatus"], {"status": ["available", "sold"]})
    assert request.target == "/v2/pet/findByStatus?status=available&status=sold"


def test_swagger2_csv_is_the_default_collection_format(
    upstream: LocalServer, imported: Importer
) -> None:
    ops = imported("oai-v2.0-petstore-expanded.json", base_path="/api")
    (find,) = [op for op in ops.values() if op.method == "GET" and op.path == "/pets"]
    request = call(upstream, find, {"tags": ["dog", "cat"], "limit": 5})
    assert request.target == "/api/pets?tags=dog,cat&limit=5"


def test_swagger2_form_data_body(upstream: LocalServer, imported: Importer) -> None:
    ops = imported("readme-oas-examples-2.0-json-petstore.json", base_path="/v2")
    request = call(
        upstream, ops["updatePetWithForm"], {"petId": 7, "body": {"name": "Rex", "status": "sold"}}
    )
    assert request.target == "/v2/pet/7"
    assert header(request, "Content-Type") == "application/x-www-form-urlencoded"
    assert request.body == b"name=Rex&status=sold"


def test_multipart_body_from_the_corpus(upstream: LocalServer, imported: Importer) -> None:
    ops = imported("readme-oas-examples-3.0-yaml-file-uploads.yaml")
    request = call(
        upstream,
        ops["post_anything_multipart_formdata"],
        {"body": {"orderId": 1042, "userId": 7, "documentFile": "hello, file"}},
    )
    content_type = header(request, "Content-Type") or ""
    assert content_type.startswith("multipart/form-data; boundary=")
    boundary = content_type.split("boundary=", 1)[1]
    assert (
        request.body
        == (
            f"--{boundary}\r\n"
            'Content-Disposition: form-data; name="orderId"\r\nContent-Type: text/plain\r\n\r\n'
            "1042\r\n"
            f"--{boundary}\r\n"
            'Content-Disposition: form-data; name="userId"\r\nContent-Type: text/plain\r\n\r\n'
            "7\r\n"
            f"--{boundary}\r\n"
            'Content-Disposition: form-data; name="documentFile"; filename="documentFile"\r\n'
            "Content-Type: application/octet-stream\r\n\r\n"
            "hello, file\r\n"
            f"--{boundary}--\r\n"
        ).encode()
    )


def _styles_spec() -> dict[str, Any]:
    def param(name: str, where: str, schema: dict[str, Any], **extra: Any) -> dict[str, Any]:
        return {"name": name, "in": where, "schema": schema, "required": where == "path", **extra}

    array = {"type": "array", "items": {"type": "string"}}
    return {
        "openapi": "3.1.0",
        "info": {"title": "Styles", "version": "1"},
        "paths": {
            "/items/{ids}/{filter}": {
                "get": {
                    "operationId": "listItems",
                    "parameters": [
                        param("ids", "path", array, style="label", explode=True),
                        param("filter", "path", {"type": "object"}, style="matrix", explode=True),
                        param("tags", "query", array, style="pipeDelimited", explode=False),
                        param("sort", "query", array, explode=False),
                        param("next", "query", {"type": "string"}, allowReserved=True),
                        param("flag", "query", {"type": "boolean"}),
                        param("X-Colors", "header", array),
                        param("session_hint", "cookie", {"type": "string"}),
                        param("prefs", "cookie", array, explode=False),
                    ],
                    "responses": {"200": {"description": "ok"}},
                }
            }
        },
    }


def test_path_query_header_and_cookie_styles_on_the_wire(
    upstream: LocalServer, imported: Importer
) -> None:
    ops = imported(_styles_spec())
    request = call(
        upstream,
        ops["listItems"],
        {
            "ids": ["a", "b"],
            "filter": {"color": "red", "size": "M"},
            "tags": ["x", "y"],
            "sort": ["-price", "name"],
            "next": "/page/2?x=1",
            "flag": True,
            "X-Colors": ["blue", "black"],
            "session_hint": "abc",
            "prefs": ["dark", "compact"],
        },
    )
    path, _, query = request.target.partition("?")
    assert path == "/items/.a.b/;color=red;size=M"
    assert query == "tags=x%7Cy&sort=-price,name&next=/page/2?x%3D1&flag=true"
    assert header(request, "X-Colors") == "blue,black"
    assert header(request, "Cookie") == "session_hint=abc; prefs=dark,compact"


def test_a_value_the_style_cannot_carry_is_a_validation_error(
    upstream: LocalServer, imported: Importer
) -> None:
    ops = imported(_styles_spec())
    outcome = asyncio.run(
        tools.execute(
            ops["listItems"],
            {"ids": ["a"], "filter": {"color": {"nested": "no"}}},
        )
    )
    assert not outcome.ok and outcome.error_kind == "validation"
    assert "nested values" in outcome.message
    assert upstream.recorded == []


# --- Credential parameters (issue 13 item 16) -------------------------------------------------


def test_model_api_key_is_never_sent_the_specs_credential_is(
    upstream: LocalServer, imported: Importer
) -> None:
    """The corpus petstore's deletePet declares an ``api_key`` header, which is its apiKey
    security scheme's parameter: the model's value is dropped, the spec's credential sent."""
    ops = imported(
        "readme-oas-examples-2.0-json-petstore.json",
        base_path="/v2",
        auth_header="api_key",
        auth_value="spec-secret-1",
    )
    delete = ops["deletePet"]
    assert "api_key" in tools.credential_properties(delete)
    assert "api_key" not in tool_spec(delete).parameters["properties"]
    with structlog.testing.capture_logs() as logs:
        request = call(upstream, delete, {"petId": 9, "api_key": "model-made-up"})
    assert request.target == "/v2/pet/9"
    assert header(request, "api_key") == "spec-secret-1"
    assert "model-made-up" not in json.dumps(request.headers)
    assert "spec-secret-1" not in json.dumps(logs, default=str)


def _key_spec(where: str) -> dict[str, Any]:
    return {
        "openapi": "3.0.3",
        "info": {"title": "Keyed", "version": "1"},
        "components": {
            "securitySchemes": {"key": {"type": "apiKey", "in": where, "name": "api_key"}}
        },
        "security": [{"key": []}],
        "paths": {
            "/orders/{number}": {
                "get": {
                    "operationId": "getOrder",
                    "parameters": [
                        {
                            "name": "number",
                            "in": "path",
                            "required": True,
                            "schema": {"type": "integer"},
                        },
                        {
                            "name": "api_key",
                            "in": where,
                            "required": True,
                            "schema": {"type": "string"},
                        },
                        {"name": "token", "in": "query", "schema": {"type": "string"}},
                    ],
                    "responses": {"200": {"description": "ok"}},
                }
            }
        },
    }


def test_query_string_api_key_scheme_gets_the_specs_credential(
    upstream: LocalServer, imported: Importer
) -> None:
    ops = imported(_key_spec("query"), auth_value="q-secret")
    get = ops["getOrder"]
    # The importer's classification marks credentials; set here as it would.
    get.credential_parameters = ["api_key", "token"]
    schema = tool_spec(get).parameters
    assert set(schema["properties"]) == {"number"} and schema["required"] == ["number"]
    # Required in the spec, but not the model's to give: validation passes without it.
    request = call(upstream, get, {"number": 1042, "api_key": "model", "token": "model-token"})
    assert request.target == "/orders/1042?api_key=q-secret"


def test_security_scheme_key_is_added_even_when_not_declared_as_a_parameter(
    upstream: LocalServer, imported: Importer
) -> None:
    doc = _key_spec("query")
    doc["paths"]["/orders/{number}"]["get"]["parameters"] = doc["paths"]["/orders/{number}"]["get"][
        "parameters"
    ][:1]
    ops = imported(doc, auth_value="q-secret")
    request = call(upstream, ops["getOrder"], {"number": 7})
    assert request.target == "/orders/7?api_key=q-secret"


def test_cookie_api_key_scheme_and_no_credential_configured(
    upstream: LocalServer, imported: Importer
) -> None:
    ops = imported(_key_spec("cookie"), auth_value="c-secret")
    request = call(upstream, ops["getOrder"], {"number": 7, "api_key": "model"})
    assert header(request, "Cookie") == "api_key=c-secret"
    ApiSpec.objects.filter(pk=ops["getOrder"].spec_id).update(auth_value="")
    bare = Operation.objects.select_related("spec").get(pk=ops["getOrder"].pk)
    request = call(upstream, bare, {"number": 7, "api_key": "model"})
    # No credential configured: nothing is sent rather than the model's value.
    assert header(request, "Cookie") is None
    assert urlsplit(request.target).query == ""


def test_stored_arguments_are_the_models_minus_credentials() -> None:
    from tests.openapi_import.factories import ApiSpecFactory, OperationFactory

    spec = ApiSpecFactory(
        security_schemes={"k": {"type": "apiKey", "in": "header", "name": "X-Key"}}
    )
    op = cast(
        Operation,
        OperationFactory(
            spec=spec,
            parameter_locations={"X-Key": "header", "q": "query", "token": "query"},
            credential_parameters=["token"],
        ),
    )
    assert tools.without_credentials(op, {"X-Key": "m", "q": "shoes", "token": "t"}) == {
        "q": "shoes"
    }


# --- The whole corpus -------------------------------------------------------------------------


def _sample(schema: Any, depth: int = 0) -> Any:
    """One plausible value per schema: every type, nesting and enum the corpus has."""
    if not isinstance(schema, dict) or depth > 4:
        return "x y/z"
    for key in ("anyOf", "oneOf", "allOf"):
        if schema.get(key):
            return _sample(schema[key][0], depth + 1)
    if schema.get("enum"):
        return schema["enum"][0]
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "string")
    if kind == "array":
        return [_sample(schema.get("items", {}), depth + 1)]
    if kind == "object" or "properties" in schema:
        props = list((schema.get("properties") or {}).items())[:6]
        return {k: _sample(v, depth + 1) for k, v in props} or {"k": "v"}
    return {"integer": 1, "number": 1.5, "boolean": True}.get(str(kind), "x y/z")


def test_no_corpus_operation_sends_a_python_repr() -> None:
    """Every operation of the 22 corpus specs, called with a value for every property: the
    request carries no Python repr (``{'``, ``True``, ``None``), and what cannot be serialized
    is a clear ToolArgumentError, never a crash. (Before this change 75 of the 1,206 requests
    carried reprs and 16 raised.)"""
    import re
    from urllib.parse import unquote_plus

    from openapi_import.parsing import parse_spec

    repr_like = re.compile(r"[\[{]'|': |True|False|None")
    prepared = refused = 0
    for path in sorted(CORPUS.glob("*.*")):
        if path.suffix not in (".json", ".yaml", ".yml"):
            continue
        parsed = parse_spec(path.read_bytes())
        spec = ApiSpec(
            title=parsed.title,
            base_url="https://api.example",
            spec_version=parsed.spec_version,
            security_schemes=parsed.security_schemes,
        )
        for p in parsed.operations:
            op = Operation(
                spec=spec,
                operation_id=p.operation_id,
                method=p.method,
                path=p.path,
                parameters_schema=p.parameters_schema,
                parameter_locations=p.parameter_locations,
                parameter_names=p.parameter_names,
                body_content_type=p.body_content_type or "",
                parameter_serialization=p.parameter_serialization,
                security=list(p.security),
            )
            args = {k: _sample(v) for k, v in p.parameters_schema["properties"].items()}
            try:
                request = tools.prepare_request(op, args)
            except tools.ToolArgumentError:
                refused += 1
                continue
            prepared += 1
            body = request.content.decode("utf-8", "replace") if request.content else ""
            text = " ".join([unquote_plus(request.url), *request.headers.values(), body])
            assert not repr_like.search(text), (path.name, p.operation_id, text[:300])
    assert prepared >= 1190  # 1,199 of 1,206 when written
    # The refusals: gmail's message/* uploads given an object, a header array of objects.
    assert refused <= 7
