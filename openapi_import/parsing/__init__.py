"""Pure OpenAPI parsing: uploaded bytes -> ``ParsedSpec`` (no Django, no I/O beyond the input).

Modules: ``loader`` (safe JSON/YAML loading and limits), ``refs`` (internal ``$ref`` lookup,
external refs recorded but never fetched), ``schema`` (JSON Schema normalisation and ``$ref``
inlining with budgets), ``normalize`` (operations, parameters, servers, IDs), ``bundle`` (multi-file
specs in a .zip; ``parse_upload`` is the importer's entry) and ``types``.
"""

from __future__ import annotations

from openapi_import.parsing.bundle import parse_upload
from openapi_import.parsing.loader import load_document
from openapi_import.parsing.normalize import (
    generate_operation_id,
    parse_document,
    parse_spec,
    sanitize_operation_id,
)
from openapi_import.parsing.types import (
    HTTP_METHODS,
    MAX_DOCUMENT_BYTES,
    ImportReport,
    ParsedOperation,
    ParsedSpec,
    SpecError,
)

__all__ = [
    "HTTP_METHODS",
    "MAX_DOCUMENT_BYTES",
    "ImportReport",
    "ParsedOperation",
    "ParsedSpec",
    "SpecError",
    "generate_operation_id",
    "load_document",
    "parse_document",
    "parse_spec",
    "parse_upload",
    "sanitize_operation_id",
]
