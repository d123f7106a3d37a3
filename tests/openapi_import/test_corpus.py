"""Every real spec in tests/fixtures/openapi_corpus parses with the counts given in MANIFEST."""

from __future__ import annotations

import functools
import json
import re
import time
from pathlib import Path
from typing import Any

import pytest

from openapi_import.classification import ACCESS_LEVELS, APPROVALS, classify
from openapi_import.parsing import ParsedOperation, ParsedSpec, parse_spec

CORPUS = Path(__file__).resolve().parents[1] / "fixtures" / "openapi_corpus"
TOOL_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
# Refs into the document that a schema could still dangle on if inlining missed one.
DOCUMENT_REF = re.compile(r"^#/(components|definitions|parameters|responses|paths|webhooks)/")
WEBHOOKS = {"oai-v3.1-webhook-example.yaml": 1, "readme-oas-examples-3.1-json-train-travel.json": 1}


def _manifest() -> list[tuple[str, str, int]]:
    rows: list[tuple[str, str, int]] = []
    for line in (CORPUS / "MANIFEST.md").read_text(encoding="utf-8").splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) < 5 or not cells[0].startswith("`"):
            continue
        # "`dir/spec/swagger.yaml (+4 files)`" -> the entry file.
        name = cells[0].strip("`").split(" (")[0]
        rows.append((name, cells[2], int(cells[3])))
    return rows


MANIFEST = _manifest()


def test_manifest_lists_every_spec_file() -> None:
    assert len(MANIFEST) == 22
    assert sum(count for _, _, count in MANIFEST) == 1210
    on_disk = {
        p.relative_to(CORPUS).as_posix()
        for p in CORPUS.iterdir()
        if p.is_file() and p.suffix in (".json", ".yaml")
    }
    assert on_disk <= {name for name, _, _ in MANIFEST}


@functools.cache
def parsed(name: str) -> tuple[ParsedSpec, float]:
    data = (CORPUS / name).read_bytes()
    started = time.perf_counter()
    spec = parse_spec(data)
    return spec, time.perf_counter() - started


def _dangling_refs(node: Any) -> list[str]:
    found: list[str] = []
    stack = [node]
    while stack:
        current = stack.pop()
        if isinstance(current, dict):
            ref = current.get("$ref")
            if isinstance(ref, str) and DOCUMENT_REF.match(ref):
                found.append(ref)
            stack.extend(current.values())
        elif isinstance(current, list):
            stack.extend(current)
    return found


@pytest.mark.parametrize(("name", "version", "count"), MANIFEST, ids=[r[0] for r in MANIFEST])
def test_spec_parses_with_manifest_counts(name: str, version: str, count: int) -> None:
    spec, elapsed = parsed(name)
    print(f"{name}: {len(spec.operations)} operations in {elapsed:.2f}s")
    assert spec.spec_version == version
    assert len(spec.operations) == count
    assert len(spec.webhooks) == WEBHOOKS.get(name, 0)
    assert all(w.is_webhook for w in spec.webhooks)
    assert not any(o.is_webhook for o in spec.operations)
    assert spec.report.skipped_operations == []

    every = spec.operations + spec.webhooks
    ids = [o.operation_id for o in every]
    assert len(set(ids)) == len(ids)
    assert len({i.lower() for i in ids}) == len(ids)
    for op in every:
        assert TOOL_NAME.match(op.operation_id), op.operation_id
        schema = op.parameters_schema
        assert schema["type"] == "object"
        assert schema["additionalProperties"] is False
        assert set(schema["required"]) <= set(schema["properties"])
        assert set(op.parameter_locations) == set(schema["properties"])
        assert set(op.parameter_locations.values()) <= {
            "path",
            "query",
            "header",
            "cookie",
            "body",
            "formData",
        }
        assert json.loads(json.dumps(schema)) == schema
        assert _dangling_refs(schema) == [], op.operation_id
        assert re.fullmatch(r"[0-9a-f]{64}", op.fingerprint)
        assert op.method == op.method.upper()
        if op.body_content_type is not None:
            assert "body" in schema["properties"]


def test_fingerprints_and_ids_are_reproducible() -> None:
    name = "apisguru-twilio.com-2010-04-01-swagger.yaml"
    first, _ = parsed(name)
    again = parse_spec((CORPUS / name).read_bytes())
    assert [(o.operation_id, o.fingerprint) for o in again.operations] == [
        (o.operation_id, o.fingerprint) for o in first.operations
    ]


def test_missing_operation_ids_are_generated() -> None:
    spec, _ = parsed("oai-v2.0-uber.json")
    assert all(o.operation_id_generated for o in spec.operations)
    assert {o.operation_id for o in spec.operations} >= {"get_products", "get_estimates_price"}
    squares, _ = parsed("apisguru-squareup.com-2.0-swagger.yaml")
    assert sum(o.operation_id_generated for o in squares.operations) == 6


def test_petstore_separate_reports_its_external_refs() -> None:
    spec, _ = parsed("oai-v2.0-petstore-separate/spec/swagger.yaml")
    assert set(spec.report.unresolved_refs) == {
        "parameters.yaml#/tagsParam",
        "parameters.yaml#/limitsParam",
        "Pet.yaml",
        "NewPet.yaml",
        "../common/Error.yaml",
    }
    add_pet = next(o for o in spec.operations if o.operation_id == "addPet")
    assert (
        add_pet.parameters_schema["properties"]["body"]["description"] == "Pet to add to the store"
    )
    renamed = next(o for o in spec.operations if o.original_operation_id == "find pet by id")
    assert renamed.operation_id == "find_pet_by_id"


@pytest.mark.parametrize(
    ("name", "recursive"),
    [
        ("apisguru-squareup.com-2.0-swagger.yaml", "CatalogObject"),
        ("readme-oas-examples-3.0-yaml-circular-paths.yaml", "SalesLine"),
        ("apisguru-googleapis.com-gmail-v1-openapi.yaml", "MessagePart"),
        ("readme-oas-examples-3.0-json-schema-circular.json", ""),
    ],
)
def test_specs_with_ref_cycles_terminate_with_placeholders(name: str, recursive: str) -> None:
    spec, _ = parsed(name)
    text = json.dumps([o.parameters_schema for o in spec.operations])
    assert f"Recursive reference to {recursive}" in text


def test_form_data_and_uploads() -> None:
    spec, _ = parsed("readme-oas-examples-2.0-json-petstore.json")
    upload = next(o for o in spec.operations if o.operation_id == "uploadFile")
    assert upload.body_content_type == "multipart/form-data"
    assert upload.parameter_locations["body"] == "formData"
    file_field = upload.parameters_schema["properties"]["body"]["properties"]["file"]
    assert (file_field["type"], file_field["format"]) == ("string", "binary")
    uspto, _ = parsed("oai-v3.0-uspto.yaml")
    assert uspto.servers == ["https://developer.uspto.gov/ds-api"]
    search = next(o for o in uspto.operations if o.operation_id == "perform-search")
    assert search.body_content_type == "application/x-www-form-urlencoded"


def test_unsupported_constructs_are_reported() -> None:
    assert parsed("oai-v3.0-callback-example.yaml")[0].report.unsupported == ["callbacks"]
    assert parsed("oai-v3.0-link-example.yaml")[0].report.unsupported == ["links"]


def test_github_spec_parses_quickly_and_leaves_example_refs_alone() -> None:
    spec, elapsed = parsed("github-api.github.com.json")
    print(f"GitHub spec: {len(spec.operations)} operations parsed in {elapsed:.2f}s")
    assert len(spec.operations) == 771
    assert elapsed < 30  # normally well under a second; generous for slow CI machines
    assert spec.report.unresolved_refs == []
    assert not any("unresolvable" in w for w in spec.report.warnings)
    delete = next(o for o in spec.operations if o.original_operation_id == "repos/delete")
    assert (delete.operation_id, delete.method) == ("repos_delete", "DELETE")
    # The SCIM examples hold {"$ref": "https://api.github.com/scim/..."} values: data, so they
    # are neither followed nor reported as unresolved external references (checked above).
    assert "api.github.com/scim" not in json.dumps(spec.report.as_dict())


def _all_operations() -> list[tuple[str, ParsedOperation]]:
    return [(name, op) for name, _, _ in MANIFEST for op in parsed(name)[0].operations]


def test_every_operation_classifies() -> None:
    operations = _all_operations()
    assert len(operations) == 1210
    for name, op in operations:
        result = classify(op)
        assert result.access in ACCESS_LEVELS, (name, op.operation_id)
        assert result.approval in APPROVALS
        assert 0 <= result.confidence <= 1
        assert result.reasons
        # Readable: "Pet store", not "pet_store_v2".
        assert re.fullmatch(r"[A-Z0-9][a-z0-9 ]{0,49}", result.agent_group), result.agent_group
        assert set(result.customer_parameters) <= (
            set(op.parameters_schema["properties"]) | set(op.body_field_names)
        )
        if result.access == "destructive":
            assert result.approval != "none"
        if op.method == "DELETE":
            assert result.access == "destructive"


def test_corpus_classification_sanity() -> None:
    petstore, _ = parsed("oai-v2.0-petstore-expanded.json")
    delete_pet = next(o for o in petstore.operations if o.operation_id == "deletePet")
    assert classify(delete_pet).access == "destructive"
    find_pets = next(o for o in petstore.operations if o.operation_id == "findPets")
    assert (classify(find_pets).access, classify(find_pets).approval) == ("read", "none")
    github, _ = parsed("github-api.github.com.json")
    by_original = {o.original_operation_id: o for o in github.operations}
    assert classify(by_original["repos/delete"]).access == "destructive"
    assert classify(by_original["repos/get"]).access == "read"
    cancel = classify(by_original["actions/cancel-workflow-run"])
    assert (cancel.access, cancel.approval) == ("destructive", "user")
    square, _ = parsed("apisguru-squareup.com-2.0-swagger.yaml")
    refund = next(
        o
        for o in square.operations
        if (o.method, o.path)
        == ("POST", "/v2/locations/{location_id}/transactions/{transaction_id}/refund")
    )
    assert classify(refund).approval == "staff"
    search = next(o for o in square.operations if o.original_operation_id == "SearchCatalogObjects")
    assert classify(search).access == "read"
    assert classify(search).confidence < 0.9
