"""Multi-file specs: a ``.zip`` of a directory whose files ``$ref`` each other by relative path.

Owns: reading an archive safely (member names, counts and decompressed sizes capped, nothing
written to disk), choosing the root document, and *bundling*: every file a reference reaches is
loaded (with the same safe loader as a single upload) and placed under ``x-actiondesk-bundle`` in
the root document, and every reference between files is rewritten into a same-document
reference to it. After that the ordinary parser sees one document. References are resolved
inside the archive's root only: one that escapes it (``../``), an absolute path or a URL is
refused and named. No network, no file system.

``parse_upload`` is the importer's entry: a zip is bundled; a single document whose external
references cannot be resolved fails, naming them and how to bundle, instead of importing with
placeholders.
"""

from __future__ import annotations

import io
import posixpath
import re
import stat
import zipfile
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote

from openapi_import.parsing.loader import load_document_with_warnings
from openapi_import.parsing.normalize import _DATA_KEYWORDS, _NAME_MAPS, _Parser, parse_spec
from openapi_import.parsing.types import MAX_DOCUMENT_BYTES, ParsedSpec, SpecError

__all__ = [
    "BUNDLE_KEY",
    "MAX_ARCHIVE_FILES",
    "bundle_files",
    "directory_zip",
    "is_zip",
    "parse_upload",
    "read_zip",
]

BUNDLE_KEY = "x-actiondesk-bundle"
MAX_ARCHIVE_FILES = 200
SPEC_SUFFIXES = (".json", ".yaml", ".yml")
_ROOT_NAMES = ("openapi", "swagger")
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")
_MAX_NAMED = 10
BUNDLE_HINT = (
    "bundle the spec into one file (e.g. `redocly bundle openapi.yaml -o bundled.yaml`) or "
    "upload a .zip of its directory"
)


def is_zip(data: bytes) -> bool:
    return data[:4] == b"PK\x03\x04"


def parse_upload(data: bytes, *, max_bytes: int = MAX_DOCUMENT_BYTES) -> ParsedSpec:
    """Parse what was uploaded or fetched: a single JSON/YAML document or a ``.zip``."""
    if is_zip(data):
        files = read_zip(data, max_bytes=max_bytes)
        doc, notes = bundle_files(files, max_bytes=max_bytes)
        return _Parser(doc, notes).parse()
    spec = parse_spec(data, max_bytes=max_bytes)
    external = spec.report.unresolved_refs
    if external:
        raise SpecError(f"unresolved external references: {_listing(external)}; {BUNDLE_HINT}")
    return spec


def _listing(items: list[str]) -> str:
    shown = ", ".join(items[:_MAX_NAMED])
    if len(items) > _MAX_NAMED:
        shown += f" (and {len(items) - _MAX_NAMED} more)"
    return shown


# --- The archive ----------------------------------------------------------------------------


def directory_zip(
    directory: Path, *, max_bytes: int = MAX_DOCUMENT_BYTES, max_files: int = MAX_ARCHIVE_FILES
) -> bytes:
    """The JSON/YAML files under ``directory`` as a .zip (what an upload of it would be).

    For the command line, whose user names a directory. Symbolic links are not followed (a
    link could point anywhere on the machine); sizes and counts have the archive's limits.
    """
    root = directory.resolve()
    buffer = io.BytesIO()
    total = count = 0
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(root.rglob("*")):
            if path.is_symlink() or not path.is_file():
                continue
            if not path.name.lower().endswith(SPEC_SUFFIXES):
                continue
            count += 1
            if count > max_files:
                raise SpecError(f"the directory has more than {max_files} JSON/YAML files")
            total += path.stat().st_size
            if total > max_bytes:
                raise SpecError(
                    f"the directory's JSON/YAML files are more than {max_bytes:,} bytes"
                )
            archive.writestr(path.relative_to(root).as_posix(), path.read_bytes())
    if not count:
        raise SpecError("the directory contains no .json, .yaml or .yml file")
    return buffer.getvalue()


def read_zip(
    data: bytes, *, max_bytes: int = MAX_DOCUMENT_BYTES, max_files: int = MAX_ARCHIVE_FILES
) -> dict[str, bytes]:
    """The archive's JSON/YAML files by their normalised relative path.

    Refused: member names that are absolute or contain ``..`` (zip slip), symbolic links,
    encrypted members, more than ``max_files`` spec files, and more than ``max_bytes``
    decompressed in total (checked while reading, never trusting the sizes the archive
    declares). Other files (README.md, images) and directories are ignored.
    """
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, ValueError) as exc:
        raise SpecError(f"the .zip file cannot be read: {exc}") from exc
    files: dict[str, bytes] = {}
    total = 0
    with archive:
        members = archive.infolist()
        if len(members) > max_files * 10:
            raise SpecError(
                f"the .zip has {len(members):,} entries; the limit is {max_files * 10:,}"
            )
        for info in members:
            name = info.filename
            if info.is_dir() or name.startswith("__MACOSX/"):
                continue
            path = _member_path(name)
            if stat.S_ISLNK(info.external_attr >> 16):
                raise SpecError(f"the .zip member {name!r} is a symbolic link; links are refused")
            if not path.lower().endswith(SPEC_SUFFIXES):
                continue
            if info.flag_bits & 0x1:
                raise SpecError(f"the .zip member {name!r} is encrypted")
            if len(files) >= max_files:
                raise SpecError(f"the .zip has more than {max_files} JSON/YAML files")
            if path in files:
                raise SpecError(f"the .zip has {path!r} twice")
            try:
                with archive.open(info) as member:
                    content = member.read(max_bytes - total + 1)
            except (zipfile.BadZipFile, NotImplementedError, RuntimeError, OSError) as exc:
                raise SpecError(f"the .zip member {name!r} cannot be read: {exc}") from exc
            total += len(content)
            if total > max_bytes:
                raise SpecError(
                    f"the .zip's JSON/YAML files are more than {max_bytes:,} bytes decompressed; "
                    f"the limit is {max_bytes:,} bytes"
                )
            files[path] = content
    if not files:
        raise SpecError("the .zip contains no .json, .yaml or .yml file")
    return files


def _member_path(name: str) -> str:
    raw = name.replace("\\", "/")
    if raw.startswith("/") or re.match(r"^[A-Za-z]:", raw):
        raise SpecError(f"the .zip member {name!r} has an absolute path; refused")
    parts = [p for p in raw.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise SpecError(f"the .zip member {name!r} points outside the archive ('..'); refused")
    return "/".join(parts)


def find_root(files: dict[str, bytes]) -> str:
    """The root document: the shallowest ``openapi.*``/``swagger.*``, else the one file whose
    top level has an ``openapi`` or ``swagger`` key."""
    named = [p for p in files if posixpath.basename(p).rsplit(".", 1)[0].lower() in _ROOT_NAMES]
    if named:
        depth = min(p.count("/") for p in named)
        shallowest = sorted(p for p in named if p.count("/") == depth)
        if len(shallowest) == 1:
            return shallowest[0]
    candidates = [p for p in sorted(files) if _looks_like_root(files[p])]
    if len(candidates) == 1:
        return candidates[0]
    if not candidates:
        raise SpecError(
            "no file in the .zip is an OpenAPI or Swagger document (a top-level 'openapi' or "
            "'swagger' key)"
        )
    raise SpecError(
        f"the .zip has several root documents ({_listing(candidates)}); keep one, or name it "
        "openapi.yaml"
    )


def _looks_like_root(content: bytes) -> bool:
    head = content[:4096].decode("utf-8", "replace")
    return bool(re.search(r'(^|\n|[{,]\s*)"?(openapi|swagger)"?\s*:', head))


# --- Bundling -------------------------------------------------------------------------------


def bundle_files(
    files: dict[str, bytes], *, root: str | None = None, max_bytes: int = MAX_DOCUMENT_BYTES
) -> tuple[dict[str, Any], list[str]]:
    """One document from ``files``: the root with every referenced file under ``BUNDLE_KEY``
    and references between files rewritten to same-document ones. Raises ``SpecError`` naming
    every refused or missing reference."""
    root = root or find_root(files)
    docs: dict[str, Any] = {}
    notes: list[str] = []
    refused: list[str] = []
    queue = [root]
    while queue:
        path = queue.pop()
        if path in docs:
            continue
        doc, warnings = _load(files[path], path, max_bytes)
        docs[path] = doc
        notes.extend(f"{path}: {w}" for w in warnings)
        for target in _rewrite_refs(doc, path, root, files, refused):
            if target not in docs:
                queue.append(target)
    if refused:
        raise SpecError(f"refused references: {_listing(refused)}")
    bundled = docs.pop(root)
    if docs:
        if BUNDLE_KEY in bundled:
            raise SpecError(f"the root document already has a key {BUNDLE_KEY!r}")
        bundled[BUNDLE_KEY] = docs
    return bundled, notes


def _load(content: bytes, path: str, max_bytes: int) -> tuple[Any, list[str]]:
    try:
        return load_document_with_warnings(content, max_bytes=max_bytes)
    except SpecError as exc:
        raise SpecError(f"{path}: {exc.message}") from exc


def _pointer_to(path: str, root: str) -> str:
    """Same-document fragment of a bundled file's top (``#`` for the root itself)."""
    if path == root:
        return "#"
    token = path.replace("~", "~0").replace("/", "~1")
    return f"#/{BUNDLE_KEY}/{quote(token, safe='~.-_')}"


def _rewrite_refs(
    doc: Any, path: str, root: str, files: dict[str, bytes], refused: list[str]
) -> set[str]:
    """Rewrite the references of one loaded file in place; returns the files they reach.

    Walks like the parser's reference scan: data keywords (``example``, ``default``, ``enum``,
    ...) and ``x-`` extensions are data, children of name maps (``properties``...) are names.
    """
    here = posixpath.dirname(path)
    reached: set[str] = set()
    stack: list[tuple[Any, bool]] = [(doc, False)]
    while stack:
        node, is_name_map = stack.pop()
        if isinstance(node, list):
            stack.extend((item, False) for item in node)
            continue
        if not isinstance(node, dict):
            continue
        ref = node.get("$ref") if not is_name_map else None
        if isinstance(ref, str) and ref:
            rewritten = _rewrite(ref, path, here, root, files, refused)
            if rewritten is not None:
                node["$ref"], target = rewritten
                if target != path:
                    reached.add(target)
        for key, value in node.items():
            if not isinstance(value, dict | list):
                continue
            if not is_name_map and (key in _DATA_KEYWORDS or key.startswith("x-")):
                continue
            stack.append((value, not is_name_map and key in _NAME_MAPS))
    return reached


def _rewrite(
    ref: str, path: str, here: str, root: str, files: dict[str, bytes], refused: list[str]
) -> tuple[str, str] | None:
    location, _, fragment = ref.partition("#")
    if fragment and not fragment.startswith("/"):
        refused.append(f"{ref!r} in {path} (only JSON-pointer fragments are supported)")
        return None
    if not location:
        if path == root:
            return None  # the root's own references are already same-document
        return _pointer_to(path, root) + fragment, path
    if _SCHEME.match(location) or location.startswith("//"):
        refused.append(f"{ref!r} in {path} (a URL; only files inside the .zip are resolved)")
        return None
    if location.startswith("/"):
        refused.append(f"{ref!r} in {path} (an absolute path)")
        return None
    target = posixpath.normpath(posixpath.join(here, unquote(location)))
    if target == ".." or target.startswith("../"):
        refused.append(f"{ref!r} in {path} (escapes the root of the .zip)")
        return None
    if target not in files:
        refused.append(f"{ref!r} in {path} ({target} is not in the .zip)")
        return None
    return _pointer_to(target, root) + fragment, target
