"""Result types and limits of the OpenAPI parsing layer.

Owns the data contract between parsing and the rest of the importer: ``SpecError`` (the import
fails), ``ImportReport`` (the import succeeds with notes), ``ParsedOperation`` / ``ParsedSpec``
(what the parser produces) and the numeric limits that keep hostile documents bounded. Pure data,
no Django.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# Hard limits. They exist so that an uploaded spec cannot exhaust memory or CPU; every one of them
# is far above what the real specs in tests/fixtures/openapi_corpus need.
MAX_DOCUMENT_BYTES = 10 * 1024 * 1024
MAX_NESTING_DEPTH = 200
MAX_REF_DEPTH = 20
MAX_SCHEMA_NODES_PER_OPERATION = 20_000
# Past this many nodes an operation's schemas keep shared components once under $defs instead of
# inlining them (the biggest real operation in the corpus, Square's, inlines to about 1,000).
MAX_INLINE_NODES_PER_OPERATION = 2_500
MAX_SCHEMA_DEPTH = 64
MAX_TOTAL_SCHEMA_NODES = 2_000_000
MAX_OPERATIONS = 10_000
MAX_REPORT_ENTRIES = 500

HTTP_METHODS: tuple[str, ...] = (
    "get",
    "put",
    "post",
    "delete",
    "options",
    "head",
    "patch",
    "trace",
)


class SpecError(Exception):
    """The document cannot be imported at all; ``message`` is safe to show to the uploader."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass
class ImportReport:
    """What the import could not do or had to change; shown to the person importing."""

    unresolved_refs: list[str] = field(default_factory=list)
    skipped_operations: list[dict[str, str]] = field(default_factory=list)
    unsupported: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    dropped_warnings: int = 0

    def add_unresolved(self, ref: str) -> None:
        if ref not in self.unresolved_refs and len(self.unresolved_refs) < MAX_REPORT_ENTRIES:
            self.unresolved_refs.append(ref)

    def add_unsupported(self, what: str) -> None:
        if what not in self.unsupported and len(self.unsupported) < MAX_REPORT_ENTRIES:
            self.unsupported.append(what)

    def warn(self, message: str) -> None:
        # A hostile spec could produce millions of identical notes; keep the report bounded.
        if message in self.warnings:
            return
        if len(self.warnings) >= MAX_REPORT_ENTRIES:
            self.dropped_warnings += 1
            return
        self.warnings.append(message)

    def skip(self, method: str, path: str, reason: str) -> None:
        if len(self.skipped_operations) < MAX_REPORT_ENTRIES:
            self.skipped_operations.append({"method": method, "path": path, "reason": reason})

    def as_dict(self) -> dict[str, Any]:
        warnings = list(self.warnings)
        if self.dropped_warnings:
            warnings.append(f"... and {self.dropped_warnings} more warnings not shown")
        return {
            "unresolved_refs": list(self.unresolved_refs),
            "skipped_operations": [dict(s) for s in self.skipped_operations],
            "unsupported": list(self.unsupported),
            "warnings": warnings,
        }


@dataclass(frozen=True)
class ParsedOperation:
    """One callable operation (or a 3.1 webhook), normalised for LLM tool calling."""

    operation_id: str
    operation_id_generated: bool
    method: str
    path: str
    summary: str
    description: str
    tags: tuple[str, ...]
    parameters_schema: dict[str, Any]
    parameter_locations: dict[str, str]
    body_content_type: str | None
    server_url: str
    security: tuple[dict[str, Any], ...]
    deprecated: bool
    extensions: dict[str, Any]
    body_field_names: tuple[str, ...]
    is_webhook: bool
    fingerprint: str
    # Additions beyond the agreed interface; all have defaults so callers may omit them.
    original_operation_id: str = ""
    parameter_names: dict[str, str] = field(default_factory=dict)
    parameter_serialization: dict[str, dict[str, Any]] = field(default_factory=dict)
    required_parameters: tuple[str, ...] = ()
    body_required_fields: tuple[str, ...] = ()


@dataclass
class ParsedSpec:
    """A whole parsed document."""

    title: str
    version: str
    spec_version: str
    servers: list[str]
    operations: list[ParsedOperation]
    webhooks: list[ParsedOperation]
    security_schemes: dict[str, Any]
    report: ImportReport
