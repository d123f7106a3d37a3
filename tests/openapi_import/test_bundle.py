"""Multi-file specs: a directory or a .zip with relative $refs, resolved inside its root only
(issue 13 item 14)."""

from __future__ import annotations

import io
import json
import stat
import zipfile
from pathlib import Path
from typing import Any

import pytest
import yaml

from openapi_import.parsing import SpecError, parse_upload
from openapi_import.parsing.bundle import directory_zip, read_zip

CORPUS = Path(__file__).resolve().parents[1] / "fixtures" / "openapi_corpus"
SEPARATE = CORPUS / "oai-v2.0-petstore-separate"


def make_zip(files: dict[str, Any], *, symlinks: tuple[str, ...] = ()) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, content in files.items():
            data = content if isinstance(content, bytes) else yaml.safe_dump(content).encode()
            archive.writestr(name, data)
        for name in symlinks:
            info = zipfile.ZipInfo(name)
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            archive.writestr(info, "/etc/passwd")
    return buffer.getvalue()


def root_doc(body_ref: str, **extra: Any) -> dict[str, Any]:
    return {
        "openapi": "3.0.3",
        "info": {"title": "Split", "version": "1"},
        "paths": {
            "/pets": {
                "post": {
                    "operationId": "addPet",
                    "requestBody": {
                        "required": True,
                        "content": {"application/json": {"schema": {"$ref": body_ref}}},
                    },
                    "responses": {"200": {"description": "ok"}},
                }
            }
        },
        **extra,
    }


def test_petstore_separate_directory_imports_with_its_refs_resolved() -> None:
    spec = parse_upload(directory_zip(SEPARATE))
    assert spec.title == "Swagger Petstore"
    assert len(spec.operations) == 4
    assert spec.report.unresolved_refs == []
    ops = {o.operation_id: o for o in spec.operations}
    find = ops["findPets"].parameters_schema["properties"]
    assert set(find) == {"tags", "limit"}  # from parameters.yaml#/...
    body = ops["addPet"].parameters_schema["properties"]["body"]
    text = json.dumps(body)
    assert '"name"' in text and "Unresolved" not in text  # NewPet.yaml + Pet.yaml merged in


def test_refs_between_files_and_their_own_internal_refs_resolve() -> None:
    files = {
        "api/openapi.yaml": root_doc("models/pet.yaml#/Pet"),
        "api/models/pet.yaml": {
            "Pet": {
                "type": "object",
                "required": ["name"],
                "properties": {
                    "name": {"type": "string"},
                    "owner": {"$ref": "#/Owner"},  # internal to pet.yaml
                    "tag": {"$ref": "../shared/tag.yaml"},  # still inside the root
                },
            },
            "Owner": {"type": "object", "properties": {"email": {"type": "string"}}},
        },
        "api/shared/tag.yaml": {"type": "string", "maxLength": 10},
        "README.md": b"ignored",
    }
    spec = parse_upload(make_zip(files))
    body = spec.operations[0].parameters_schema["properties"]["body"]
    assert body["required"] == ["name"]
    assert body["properties"]["owner"]["properties"]["email"] == {"type": "string"}
    assert body["properties"]["tag"] == {"type": "string", "maxLength": 10}


@pytest.mark.parametrize(
    ("ref", "named"),
    [
        ("../outside.yaml#/Pet", "'../outside.yaml#/Pet' in openapi.yaml (escapes the root"),
        ("/etc/passwd", "'/etc/passwd' in openapi.yaml (an absolute path)"),
        ("https://example.com/pet.yaml", "'https://example.com/pet.yaml' in openapi.yaml (a URL"),
        ("file:///etc/passwd", "'file:///etc/passwd' in openapi.yaml (a URL"),
        ("missing.yaml#/Pet", "(missing.yaml is not in the .zip)"),
    ],
)
def test_refs_leaving_the_root_are_refused_and_named(ref: str, named: str) -> None:
    """SECURITY-TESTS row 20: URL and file refs are never opened, and named."""
    with pytest.raises(SpecError) as caught:
        parse_upload(make_zip({"openapi.yaml": root_doc(ref)}))
    assert caught.value.message.startswith("refused references: ")
    assert named in caught.value.message


def test_a_single_file_with_external_refs_fails_naming_them_and_how_to_bundle() -> None:
    """SECURITY-TESTS row 20: the refs are reported (by name), never fetched."""
    data = (SEPARATE / "spec" / "swagger.yaml").read_bytes()
    with pytest.raises(SpecError) as caught:
        parse_upload(data)
    message = caught.value.message
    assert message.startswith("unresolved external references: ")
    for ref in ("parameters.yaml#/tagsParam", "Pet.yaml", "NewPet.yaml", "../common/Error.yaml"):
        assert ref in message
    assert "redocly bundle" in message and "upload a .zip" in message


@pytest.mark.parametrize(
    ("name", "fragment"),
    [
        ("../evil.yaml", "points outside the archive"),
        ("a/../../evil.yaml", "points outside the archive"),
        ("/etc/evil.yaml", "absolute path"),
        ("C:\\evil.yaml", "absolute path"),
    ],
)
def test_zip_slip_member_names_are_refused(name: str, fragment: str) -> None:
    with pytest.raises(SpecError, match=fragment):
        read_zip(make_zip({"openapi.yaml": root_doc("#/x"), name: {"a": 1}}))


def test_zip_symlinks_are_refused() -> None:
    with pytest.raises(SpecError, match="symbolic link"):
        read_zip(make_zip({"openapi.yaml": {"a": 1}}, symlinks=("link.yaml",)))


def test_zip_bomb_stops_at_the_decompressed_limit_without_trusting_headers() -> None:
    """SECURITY-TESTS rows 15 and 22: counted on decompressed bytes, memory bounded."""
    bomb = make_zip({"openapi.yaml": b"#" * 5_000_000})
    assert len(bomb) < 20_000
    with pytest.raises(SpecError, match="more than 1,000,000 bytes decompressed"):
        read_zip(bomb, max_bytes=1_000_000)


def test_zip_file_count_is_capped() -> None:
    files = {f"f{i}.yaml": {"n": i} for i in range(6)}
    with pytest.raises(SpecError, match="more than 5 JSON/YAML files"):
        read_zip(make_zip(files), max_files=5)


@pytest.mark.parametrize(
    ("data", "fragment"),
    [
        (make_zip({"README.md": b"hi"}), "no .json, .yaml or .yml file"),
        (make_zip({"a.yaml": {"x": 1}}), "no file in the .zip is an OpenAPI"),
        (
            make_zip({"a.yaml": {"openapi": "3.0.0"}, "b.yaml": {"openapi": "3.0.0"}}),
            "several root documents",
        ),
        (b"PK\x03\x04 truncated", "cannot be read"),
    ],
)
def test_bad_archives_fail_clearly(data: bytes, fragment: str) -> None:
    with pytest.raises(SpecError, match=fragment):
        parse_upload(data)


def test_directory_zip_does_not_follow_symlinks(tmp_path: Path) -> None:
    (tmp_path / "openapi.yaml").write_text(yaml.safe_dump(root_doc("secret.yaml")))
    outside = tmp_path.parent / f"{tmp_path.name}-outside.yaml"
    outside.write_text("type: string\n")
    (tmp_path / "secret.yaml").symlink_to(outside)
    with pytest.raises(SpecError, match=r"secret.yaml is not in the .zip"):
        parse_upload(directory_zip(tmp_path))
