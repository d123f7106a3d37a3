"""Parameter serialization rules (SPEC §6): the OpenAPI 3.1 style examples, Swagger 2
collectionFormat, bracket-style form bodies and multipart bodies, as pure functions."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl

import pytest

from openapi_import.serialization import (
    SerializationError,
    cookie_pairs,
    describe_body,
    describe_parameter,
    expand_path,
    form_body,
    header_value,
    multipart_body,
    query_string,
)

STRING = "blue"
ARRAY = ["blue", "black", "brown"]
OBJECT = {"R": 100, "G": 200, "B": 150}

# OpenAPI 3.1 §4.8.12.4 "Style Examples": (style, explode, empty, string, array, object).
# None means "n/a" in the spec's table.
SPEC_TABLE: list[tuple[str, bool, str | None, str | None, str | None, str | None]] = [
    ("matrix", False, ";color", ";color=blue", ";color=blue,black,brown",
     ";color=R,100,G,200,B,150"),
    ("matrix", True, ";color", ";color=blue", ";color=blue;color=black;color=brown",
     ";R=100;G=200;B=150"),
    ("label", False, ".", ".blue", ".blue,black,brown", ".R,100,G,200,B,150"),
    ("label", True, ".", ".blue", ".blue.black.brown", ".R=100.G=200.B=150"),
    ("simple", False, "", "blue", "blue,black,brown", "R,100,G,200,B,150"),
    ("simple", True, "", "blue", "blue,black,brown", "R=100,G=200,B=150"),
    ("form", False, "color=", "color=blue", "color=blue,black,brown",
     "color=R,100,G,200,B,150"),
    ("form", True, "color=", "color=blue", "color=blue&color=black&color=brown",
     "R=100&G=200&B=150"),
    ("spaceDelimited", False, None, None, "color=blue%20black%20brown",
     "color=R%20100%20G%20200%20B%20150"),
    ("pipeDelimited", False, None, None, "color=blue%7Cblack%7Cbrown",
     "color=R%7C100%7CG%7C200%7CB%7C150"),
    ("deepObject", True, None, None, None, "color%5BR%5D=100&color%5BG%5D=200&color%5BB%5D=150"),
]  # fmt: skip


def _serialize(style: str, explode: bool, value: Any) -> str:
    entry = {"style": style, "explode": explode}
    if style in ("matrix", "label", "simple"):
        return expand_path("color", value, entry)
    return query_string([("color", value, entry)])


@pytest.mark.parametrize(("style", "explode", "empty", "string", "array", "obj"), SPEC_TABLE)
def test_openapi_style_examples_table(
    style: str,
    explode: bool,
    empty: str | None,
    string: str | None,
    array: str | None,
    obj: str | None,
) -> None:
    for value, expected in (([], empty), (STRING, string), (ARRAY, array), (OBJECT, obj)):
        if expected is None:
            continue
        assert _serialize(style, explode, value) == expected, (style, explode, value)


def test_header_values_are_simple_style() -> None:
    assert header_value("X-Color", ARRAY, {"style": "simple"}) == "blue,black,brown"
    assert header_value("X-Color", OBJECT, {"explode": True}) == "R=100,G=200,B=150"
    assert header_value("X-Flag", True, {}) == "true"
    with pytest.raises(SerializationError, match="control characters"):
        header_value("X-Bad", "a\r\nInjected: 1", {})


def test_cookie_pairs_follow_form_style() -> None:
    assert cookie_pairs("color", ARRAY, {"style": "form", "explode": False}) == [
        ("color", "blue,black,brown")
    ]
    assert cookie_pairs("color", ARRAY, {"style": "form", "explode": True}) == [
        ("color", "blue"),
        ("color", "black"),
        ("color", "brown"),
    ]


@pytest.mark.parametrize(
    ("fmt", "expected"),
    [
        ("csv", "ids=1,2,3"),
        ("ssv", "ids=1%202%203"),
        ("tsv", "ids=1%092%093"),
        ("pipes", "ids=1%7C2%7C3"),
        ("multi", "ids=1&ids=2&ids=3"),
    ],
)
def test_swagger2_collection_formats(fmt: str, expected: str) -> None:
    assert query_string([("ids", [1, 2, 3], {"collectionFormat": fmt})]) == expected


def test_swagger2_default_collection_format_is_csv_not_exploded() -> None:
    entry = describe_parameter({"name": "ids", "in": "query", "type": "array"}, swagger2=True)
    assert entry["collectionFormat"] == "csv"
    assert query_string([("ids", ["a", "b"], entry)]) == "ids=a,b"


def test_openapi3_defaults_per_location() -> None:
    query = describe_parameter({"name": "q", "in": "query"}, swagger2=False)
    path = describe_parameter({"name": "id", "in": "path"}, swagger2=False)
    header = describe_parameter({"name": "X-A", "in": "header"}, swagger2=False)
    cookie = describe_parameter({"name": "c", "in": "cookie"}, swagger2=False)
    assert (query["style"], query["explode"]) == ("form", True)
    assert (cookie["style"], cookie["explode"]) == ("form", True)
    assert (path["style"], path["explode"]) == ("simple", False)
    assert (header["style"], header["explode"]) == ("simple", False)
    deep = describe_parameter(
        {"name": "f", "in": "query", "style": "deepObject", "explode": True}, swagger2=False
    )
    assert (deep["style"], deep["explode"]) == ("deepObject", True)
    # A style without explode takes that style's default (false unless form).
    assert (
        describe_parameter({"name": "s", "in": "query", "style": "pipeDelimited"}, swagger2=False)[
            "explode"
        ]
        is False
    )


def test_reserved_characters_are_encoded_unless_allowed() -> None:
    value = "a/b:c?d&e=f#g h+i"
    assert query_string([("p", value, {})]) == "p=a%2Fb%3Ac%3Fd%26e%3Df%23g%20h%2Bi"
    # allowReserved keeps / : ? but never what would break the query itself (& = # +).
    assert query_string([("p", value, {"allowReserved": True})]) == (
        "p=a/b:c?d%26e%3Df%23g%20h%2Bi"
    )
    assert expand_path("id", "a/b", {}) == "a%2Fb"


def test_booleans_and_numbers_are_json_text() -> None:
    assert query_string([("a", True, {}), ("b", False, {}), ("n", 1.5, {}), ("z", None, {})]) == (
        "a=true&b=false&n=1.5"
    )


def test_deep_object_nests_brackets() -> None:
    entry = {"style": "deepObject", "explode": True}
    got = query_string([("filter", {"a": {"b": "c"}, "tags": ["x", "y"]}, entry)])
    assert parse_qsl(got) == [
        ("filter[a][b]", "c"),
        ("filter[tags][]", "x"),
        ("filter[tags][]", "y"),
    ]


def test_nested_values_in_flat_styles_are_a_clear_error() -> None:
    with pytest.raises(SerializationError, match="nested values"):
        query_string([("color", {"R": {"x": 1}}, {"style": "form", "explode": True})])
    with pytest.raises(SerializationError, match="not valid for a path"):
        expand_path("id", "1", {"style": "form"})


def test_stripe_style_form_body() -> None:
    encoding = {
        "address": {"style": "deepObject", "explode": True},
        "metadata": {"style": "deepObject", "explode": True},
        "expand": {"style": "deepObject", "explode": True},
    }
    body = {
        "email": "ana@example.com",
        "address": {"line1": "1 Main St", "city": "Lisbon"},
        "metadata": {"order": "1042"},
        "expand": ["default_source", "tax"],
        "items": [{"price": "price_1", "quantity": 2}],
        "tax_exempt": "none",
        "livemode": False,
    }
    raw = form_body(body, encoding).decode()
    assert "%5B" in raw and "'" not in raw and "{" not in raw
    assert parse_qsl(raw) == [
        ("email", "ana@example.com"),
        ("address[line1]", "1 Main St"),
        ("address[city]", "Lisbon"),
        ("metadata[order]", "1042"),
        ("expand[]", "default_source"),
        ("expand[]", "tax"),
        ("items[0][price]", "price_1"),
        ("items[0][quantity]", "2"),
        ("tax_exempt", "none"),
        ("livemode", "false"),
    ]


def test_form_body_follows_field_encodings() -> None:
    encoding = {
        "tags": {"style": "form", "explode": False},
        "ids": {"collectionFormat": "pipes"},
        "extra": {"contentType": "application/json"},
    }
    raw = form_body(
        {"tags": ["a", "b"], "ids": [1, 2], "more": ["x", "y"], "extra": {"k": 1}}, encoding
    )
    assert parse_qsl(raw.decode()) == [
        ("tags", "a,b"),
        ("ids", "1|2"),
        ("more", "x"),
        ("more", "y"),
        ("extra", '{"k":1}'),
    ]
    with pytest.raises(SerializationError, match="object of fields"):
        form_body(["not", "an", "object"], {})


def test_multipart_body_parts() -> None:
    encoding = {"file": {"contentType": "application/octet-stream"}}
    data, content_type = multipart_body(
        {"title": "Hi", "meta": {"a": 1}, "tags": ["x", "y"], "file": "raw bytes", "n": 3},
        encoding,
        boundary="BOUNDARY",
    )
    assert content_type == "multipart/form-data; boundary=BOUNDARY"
    text = data.decode()
    assert text.count("--BOUNDARY\r\n") == 6 and text.endswith("--BOUNDARY--\r\n")
    assert 'name="title"\r\nContent-Type: text/plain\r\n\r\nHi\r\n' in text
    assert 'name="meta"\r\nContent-Type: application/json\r\n\r\n{"a": 1}\r\n' in text
    assert text.count('name="tags"') == 2
    assert (
        'name="file"; filename="file"\r\nContent-Type: application/octet-stream\r\n\r\nraw bytes'
        in text
    )
    assert 'name="n"\r\nContent-Type: text/plain\r\n\r\n3\r\n' in text


def test_describe_body_records_encodings_and_binary_fields() -> None:
    schema = {
        "type": "object",
        "properties": {"file": {"type": "string", "format": "binary"}, "note": {"type": "string"}},
    }
    assert describe_body("multipart/form-data", None, schema) == {
        "contentType": "multipart/form-data",
        "encoding": {"file": {"contentType": "application/octet-stream"}},
    }
    got = describe_body(
        "application/x-www-form-urlencoded",
        {"metadata": {"style": "deepObject", "explode": True, "headers": {}}, "bad": 3},
        {},
        formats={"ids": "multi"},
    )
    assert got == {
        "contentType": "application/x-www-form-urlencoded",
        "encoding": {
            "metadata": {"style": "deepObject", "explode": True},
            "ids": {"collectionFormat": "multi"},
        },
    }


# --- Recorded at import -----------------------------------------------------------------------


def test_import_records_stripe_style_form_encodings() -> None:
    from openapi_import.parsing import parse_document
    from tests.openapi_import.stripe_style import stripe_style_spec

    spec = parse_document(stripe_style_spec())
    ops = {op.operation_id: op for op in spec.operations}
    post = ops["PostCustomers"].parameter_serialization["body"]
    assert post["contentType"] == "application/x-www-form-urlencoded"
    assert post["encoding"]["metadata"] == {"style": "deepObject", "explode": True}
    assert set(post["encoding"]) == {
        "address", "expand", "invoice_settings", "metadata", "preferred_locales", "tax_id_data"
    }  # fmt: skip
    get = ops["GetCustomers"].parameter_serialization
    assert get["created"] == {
        "in": "query",
        "style": "deepObject",
        "explode": True,
        "allowReserved": False,
    }
    assert (get["email"]["style"], get["email"]["explode"]) == ("form", True)
    assert "requestBody encoding" not in " ".join(spec.report.unsupported)


def test_import_records_swagger2_form_data_collection_formats() -> None:
    from openapi_import.parsing import parse_document

    doc = {
        "swagger": "2.0",
        "info": {"title": "T", "version": "1"},
        "paths": {
            "/pets": {
                "post": {
                    "consumes": ["application/x-www-form-urlencoded"],
                    "parameters": [
                        {"name": "tags", "in": "formData", "type": "array",
                         "items": {"type": "string"}},
                        {"name": "ids", "in": "formData", "type": "array",
                         "collectionFormat": "multi", "items": {"type": "integer"}},
                        {"name": "name", "in": "formData", "type": "string"},
                    ],
                    "responses": {},
                }
            }
        },
    }  # fmt: skip
    (op,) = parse_document(doc).operations
    assert op.parameter_serialization["body"] == {
        "contentType": "application/x-www-form-urlencoded",
        "encoding": {"tags": {"collectionFormat": "csv"}, "ids": {"collectionFormat": "multi"}},
    }


def test_fingerprint_changes_with_a_declared_style_only() -> None:
    from openapi_import.parsing import parse_document

    def fingerprint(param_extra: dict[str, Any]) -> str:
        doc = {
            "openapi": "3.0.3",
            "info": {"title": "T", "version": "1"},
            "paths": {
                "/a": {
                    "get": {
                        "operationId": "a",
                        "parameters": [
                            {
                                "name": "ids",
                                "in": "query",
                                "schema": {"type": "array"},
                                **param_extra,
                            }
                        ],
                        "responses": {},
                    }
                }
            },
        }
        return parse_document(doc).operations[0].fingerprint

    plain = fingerprint({})
    # Spelling out the default is the same wire format, so the same fingerprint.
    assert fingerprint({"style": "form", "explode": True}) == plain
    assert fingerprint({"style": "form", "explode": False}) != plain
    assert fingerprint({"style": "pipeDelimited"}) != plain


@pytest.mark.django_db
def test_import_stores_serialization_and_a_new_style_is_a_changed_operation(
    django_capture_on_commit_callbacks: Any,
) -> None:
    import json

    from openapi_import.services import import_job_create
    from tests.openapi_import.stripe_style import stripe_style_spec

    def run(doc: dict[str, Any], **kwargs: Any) -> Any:
        with django_capture_on_commit_callbacks(execute=True):
            job = import_job_create(source="text", content=json.dumps(doc).encode(), **kwargs)
        job.refresh_from_db()
        assert job.status == "done", job.error_message
        return job

    doc = stripe_style_spec()
    job = run(doc)
    spec = job.spec
    stored = spec.operations.get(operation_id="GetCustomers").parameter_serialization
    assert stored["expand"]["style"] == "deepObject"
    post = spec.operations.get(operation_id="PostCustomers")
    assert post.parameter_serialization["body"]["encoding"]["address"]["style"] == "deepObject"

    doc["paths"]["/v1/customers"]["get"]["parameters"][1]["explode"] = False
    again = run(doc, target_spec=spec)
    assert again.report["diff"]["changed"] == ["GetCustomers"]
    refreshed = spec.operations.get(operation_id="GetCustomers").parameter_serialization
    assert refreshed["email"]["explode"] is False


def test_content_json_parameters_are_sent_as_json_text() -> None:
    entry = {"in": "query", "style": "form", "explode": True, "contentType": "application/json"}
    assert query_string([("filter", {"q": "a b", "n": 1}, entry)]) == (
        "filter=%7B%22q%22%3A%22a%20b%22%2C%22n%22%3A1%7D"
    )
    header_entry = {"in": "header", "contentType": "application/json"}
    assert header_value("X-Filter", {"q": ["x"]}, header_entry) == '{"q":["x"]}'
    assert expand_path("f", {"a": 1}, {"contentType": "application/json"}) == "%7B%22a%22%3A1%7D"
