from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from django.core.management import CommandError, call_command

from openapi_import.models import ApiSpec, Operation
from tests.openapi_import.specs import as_json, shop_spec

pytestmark = pytest.mark.django_db

CORPUS = Path(__file__).resolve().parents[1] / "fixtures" / "openapi_corpus"


def test_import_a_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "shop.json"
    path.write_bytes(as_json(shop_spec()))
    call_command("import_openapi", str(path))
    out = capsys.readouterr().out
    assert "Imported Test Shop 1.0" in out and "3 operations; 3 added" in out
    assert Operation.objects.count() == 3
    assert not Operation.objects.filter(enabled=True).exists()


def test_enable_marks_everything_reviewed_and_enabled(tmp_path: Path, supervisor: Any) -> None:
    path = tmp_path / "shop.json"
    path.write_bytes(as_json(shop_spec()))
    supervisor.is_superuser = True
    supervisor.save()
    call_command("import_openapi", str(path), "--enable")
    assert all(op.is_tool for op in Operation.objects.all())


def test_json_report(capsys: pytest.CaptureFixture[str]) -> None:
    call_command("import_openapi", str(CORPUS / "oai-v3.0-petstore.json"), "--json")
    report = json.loads(capsys.readouterr().out)
    assert report["operations"] == 3 and report["spec_version"].startswith("3.0")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["/no/such/file.yaml"], "neither an http(s) URL nor a readable file"),
        (["ftp://example.com/x"], "neither an http(s) URL nor a readable file"),
        (["http://10.0.0.1/spec.json"], "fetch_blocked"),
    ],
)
def test_bad_sources_fail_clearly(args: list[str], message: str, settings: Any) -> None:
    settings.OUTBOUND_ALLOWED_HOSTS = []
    with pytest.raises(CommandError, match=message.replace("(", r"\(").replace(")", r"\)")):
        call_command("import_openapi", *args)
    assert not ApiSpec.objects.exists()


def test_malformed_file_fails_with_the_parser_message(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("openapi: 3.0.0\npaths: [\n")
    with pytest.raises(CommandError, match="spec_invalid"):
        call_command("import_openapi", str(path))


def test_import_a_directory_of_a_multi_file_spec(capsys: pytest.CaptureFixture[str]) -> None:
    """Relative $refs between the files resolve inside the directory (issue 13 item 14)."""
    call_command("import_openapi", str(CORPUS / "oai-v2.0-petstore-separate"))
    out = capsys.readouterr().out
    assert "4 operations; 4 added" in out
    add_pet = Operation.objects.get(operation_id="addPet")
    assert "Unresolved" not in json.dumps(add_pet.parameters_schema)


def test_a_single_file_with_external_refs_fails_and_says_how_to_bundle() -> None:
    path = CORPUS / "oai-v2.0-petstore-separate" / "spec" / "swagger.yaml"
    with pytest.raises(CommandError, match=r"unresolved external references: .*redocly bundle"):
        call_command("import_openapi", str(path))
    assert not ApiSpec.objects.exists()
