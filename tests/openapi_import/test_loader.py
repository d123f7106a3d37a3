"""The loader is the security boundary: hostile or broken uploads must fail fast and clearly."""

from __future__ import annotations

import codecs
import json
import os
import random
import time
import tracemalloc
from typing import Any

import pytest

from openapi_import.parsing import SpecError, load_document, parse_spec
from openapi_import.parsing.loader import YAML_LOADER, PurePythonLoader, load_yaml

MINIMAL_3 = '{"openapi": "3.0.3", "info": {"title": "t", "version": "1"}, "paths": {}}'

BILLION_LAUGHS = """\
a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]
b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]
c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]
d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]
e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]
f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]
g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]
h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]
i: &i [*h,*h,*h,*h,*h,*h,*h,*h,*h]
"""
# Same attack with the anchors defined out of sight of a naive "starts with &" check.
LAUGHS_ALIAS_ONLY = "openapi: 3.0.0\ninfo: {title: t, version: '1'}\npaths: *nothing\n"

ENGINES = pytest.mark.parametrize(
    "engine", [YAML_LOADER, PurePythonLoader], ids=lambda c: c.__name__
)


def _error(data: Any, **kwargs: Any) -> str:
    with pytest.raises(SpecError) as caught:
        parse_spec(data, **kwargs)
    assert caught.value.message == str(caught.value)
    return caught.value.message


# -- well-formed input ------------------------------------------------------------------------


def test_json_and_yaml_load_to_the_same_dict() -> None:
    as_json = load_document(MINIMAL_3)
    as_yaml = load_document("openapi: 3.0.3\ninfo:\n  title: t\n  version: '1'\npaths: {}\n")
    assert as_json == as_yaml == json.loads(MINIMAL_3)


def test_bytes_with_utf8_bom_and_utf16_are_decoded() -> None:
    assert load_document(codecs.BOM_UTF8 + MINIMAL_3.encode())["openapi"] == "3.0.3"
    assert load_document(MINIMAL_3.encode("utf-16"))["openapi"] == "3.0.3"


def test_yaml_scalars_become_json_types() -> None:
    doc = load_document("200: ok\ndate: 2024-01-31\nflag: true\nratio: 1.5\nnothing: null\n")
    # `200:` keys stay strings (responses) and unquoted dates stay text (JSON has no dates).
    assert doc == {"200": "ok", "date": "2024-01-31", "flag": True, "ratio": 1.5, "nothing": None}
    json.dumps(doc)


def test_unquoted_swagger_2_0_float_is_accepted() -> None:
    spec = parse_spec("swagger: 2.0\ninfo: {title: t, version: 1.0}\npaths: {}\n")
    assert spec.spec_version == "2.0"
    assert spec.version == "1.0"


def test_duplicate_keys_keep_the_last_and_warn() -> None:
    spec = parse_spec(
        "openapi: 3.0.0\ninfo: {title: first, version: '1'}\ninfo: {title: second, version: '2'}\n"
        "paths: {}\n"
    )
    assert spec.title == "second"
    assert any("duplicate key 'info'" in w for w in spec.report.warnings)
    json_spec = parse_spec(
        '{"openapi": "3.0.0", "info": {"title": "a", "title": "b", "version": "1"}, "paths": {}}'
    )
    assert json_spec.title == "b"
    assert any("duplicate key 'title'" in w for w in json_spec.report.warnings)


# -- malformed input --------------------------------------------------------------------------


def test_malformed_json_reports_line_and_column() -> None:
    message = _error('{\n  "openapi": "3.0.0",\n  "paths": {,}\n}')
    assert message.startswith("invalid JSON at line 3, column 13")


def test_broken_json_is_not_rescued_by_yaml() -> None:
    # YAML would read this as {"b": null}; an upload that looks like JSON must be valid JSON.
    assert "invalid JSON" in _error('{"openapi": "3.0.0",\n "b": }')


def test_malformed_yaml_reports_line() -> None:
    message = _error("openapi: 3.0.0\ninfo:\n  title: [unclosed\n  version: 1\npaths: {}\n")
    assert message.startswith("invalid YAML at line ")
    assert "column" in message


def test_json_nan_is_rejected() -> None:
    assert "NaN" in _error('{"openapi": "3.0.0", "x": NaN}')


@pytest.mark.parametrize(
    ("data", "fragment"),
    [
        ('{"hello": 1}', "not an OpenAPI or Swagger document"),
        ("[1, 2, 3]", "top level is a list"),
        ("42", "not an OpenAPI or Swagger document"),
        ("just some words", "not an OpenAPI or Swagger document"),
        ('{"swaggerVersion": "1.2", "apis": []}', "1.2"),
        ('{"swagger": "1.2"}', "unsupported Swagger version"),
        ('{"openapi": "4.0.0", "paths": {}}', "unsupported OpenAPI version '4.0.0'"),
        ('{"openapi": "2.0", "paths": {}}', "unsupported OpenAPI version"),
        ('{"openapi": 3, "paths": {}}', "unsupported OpenAPI version"),
        ('{"openapi": "3.0.0", "paths": []}', "'paths' must be a mapping"),
    ],
)
def test_documents_that_are_not_openapi(data: str, fragment: str) -> None:
    assert fragment in _error(data)


@pytest.mark.parametrize("data", ["", "   \n\t\n", b"", codecs.BOM_UTF8])
def test_empty_input(data: str | bytes) -> None:
    assert _error(data) == "the document is empty"


def test_binary_garbage() -> None:
    assert "binary" in _error(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")
    noise = bytes(b | 0x80 for b in random.Random(7).randbytes(4096))  # no NUL, not UTF-8
    assert "not valid UTF-8" in _error(noise)


def test_oversized_document_fails_before_parsing() -> None:
    body = "openapi: 3.0.0\n" + "x: [unclosed\n" * 100  # also malformed: size must win
    message = _error(body, max_bytes=200)
    assert "limit is 200 bytes" in message
    assert "invalid" not in message
    assert "limit" in _error(body.encode(), max_bytes=200)
    assert load_document(MINIMAL_3, max_bytes=len(MINIMAL_3))["openapi"] == "3.0.3"


def test_huge_integers_are_refused_not_crashing() -> None:
    assert "invalid JSON" in _error('{"openapi": "3.0.0", "x": ' + "9" * 5000 + "}")


# -- attacks ----------------------------------------------------------------------------------


@ENGINES
def test_billion_laughs_is_rejected_fast_with_bounded_memory(engine: type[Any]) -> None:
    tracemalloc.start()
    started = time.perf_counter()
    try:
        with pytest.raises(SpecError) as caught:
            load_yaml(BILLION_LAUGHS, [], engine)
        elapsed = time.perf_counter() - started
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert "aliases" in caught.value.message
    assert "line 1" in caught.value.message
    assert elapsed < 5.0  # an expanding bomb would take far longer; memory is bounded below
    assert peak < 20 * 1024 * 1024


def test_billion_laughs_through_parse_spec() -> None:
    started = time.perf_counter()
    assert "aliases" in _error(BILLION_LAUGHS.encode())
    assert time.perf_counter() - started < 5.0  # generous: CI machines are loaded


@ENGINES
def test_alias_without_visible_anchor_is_rejected(engine: type[Any]) -> None:
    with pytest.raises(SpecError, match="YAML aliases are not allowed"):
        load_yaml(LAUGHS_ALIAS_ONLY, [], engine)


@ENGINES
@pytest.mark.parametrize(
    "tagged",
    [
        "x: !!python/object/apply:os.system ['echo pwned']",
        "x: !!python/name:os.system",
        "x: !!python/object:collections.OrderedDict {}",
        "x: !custom 1",
        "x: !!binary aGVsbG8=",
        "x: !!set {a, b}",
        "x: !!timestamp 2024-01-01",
        "x: !<tag:example.com,2024:thing> 1",
    ],
)
def test_non_json_tags_are_refused(
    engine: type[Any], tagged: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[str] = []

    def fake_system(command: str) -> int:
        calls.append(command)
        return 0

    monkeypatch.setattr(os, "system", fake_system)
    with pytest.raises(SpecError, match=r"YAML tag .* is not allowed"):
        load_yaml(f"openapi: 3.0.0\n{tagged}\n", [], engine)
    assert calls == []


def test_standard_explicit_tags_are_fine() -> None:
    doc = load_document("a: !!str 123\nb: !!int '7'\nc: !!map {k: v}\n")
    assert doc == {"a": "123", "b": 7, "c": {"k": "v"}}


@pytest.mark.parametrize(
    "deep",
    [
        "[" * 10_000 + "]" * 10_000,
        '{"a":' * 10_000 + "1" + "}" * 10_000,
        "[" * 100_000 + "]" * 100_000,
    ],
    ids=["json-arrays", "json-objects", "json-arrays-100k"],
)
def test_deep_json_fails_with_a_clear_error(deep: str) -> None:
    started = time.perf_counter()
    assert "nested more than 200 levels" in _error(deep)
    assert time.perf_counter() - started < 5.0  # generous: CI machines are loaded


@ENGINES
@pytest.mark.parametrize(
    "deep",
    [
        "x: " + "[" * 10_000 + "]" * 10_000,
        "x: " + "{a: " * 10_000 + "1" + "}" * 10_000,
        "".join(" " * i + "-\n" for i in range(400)),
    ],
    ids=["yaml-flow-seq", "yaml-flow-map", "yaml-block"],
)
def test_deep_yaml_fails_with_a_clear_error(engine: type[Any], deep: str) -> None:
    started = time.perf_counter()
    with pytest.raises(SpecError, match="nested more than 200 levels"):
        load_yaml(deep, [], engine)
    assert time.perf_counter() - started < 5.0  # generous: CI machines are loaded


def test_nesting_just_under_the_limit_is_accepted() -> None:
    doc = load_document('{"openapi": "3.0.0", "x": ' + "[" * 150 + "]" * 150 + "}")
    assert doc["openapi"] == "3.0.0"


def test_multiple_yaml_documents_are_refused() -> None:
    assert "invalid YAML" in _error("openapi: 3.0.0\n---\nopenapi: 3.1.0\n")


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ('{"openapi": "3.0.0", "info": {"title": "a\\u0000b"}}', "NUL character"),
        ('{"openapi": "3.0.0", "info": {"title": "\\ud800"}}', "lone UTF-16 surrogate"),
        ('{"openapi": "3.0.0", "info": {"title": "x\\udc00y"}}', "lone UTF-16 surrogate"),
        ('{"openapi": "3.0.0", "info": {"a\\u0000": "t"}}', "NUL character"),
        ('openapi: 3.0.0\ninfo:\n  title: "a\\0b"\n', "NUL character"),
    ],
)
def test_nul_and_lone_surrogates_fail_with_a_clear_error(text: str, fragment: str) -> None:
    """Escapes that decode to characters no database or UTF-8 can hold (issue 13 item 16)."""
    with pytest.raises(SpecError) as caught:
        load_document(text.encode())
    assert fragment in caught.value.message
    assert "#/info/" in caught.value.message


def test_surrogate_pairs_are_fine() -> None:
    doc = load_document(b'{"openapi": "3.0.0", "info": {"title": "\\ud83d\\ude00"}}')
    assert doc["info"]["title"] == "\U0001f600"
