"""Imports: create a job, run it (fetch, parse, classify, store atomically), and staff edits of
the resulting operations. Parsing and classification are pure (``parsing``, ``classification``);
this module owns the I/O and the database."""

from __future__ import annotations

import time
from collections import Counter
from typing import Any
from urllib.parse import urljoin, urlsplit

import structlog
from django.conf import settings
from django.contrib.auth.models import User
from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

import safehttp
from config.errors import ApplicationError, ErrorCode, invalid_fields
from config.versions import AGENT_TOOLS, bump
from conversations.approval_rules import ApprovalRuleError, normalize
from openapi_import.classification import Classification, classify
from openapi_import.identity import bindings_clean, suggest_bindings
from openapi_import.models import (
    AccessType,
    ApiSpec,
    Approval,
    IdentityRole,
    ImportJob,
    Operation,
)
from openapi_import.parsing import ParsedOperation, ParsedSpec, SpecError, parse_upload

logger = structlog.get_logger(__name__)

ACCEPT = "application/json, application/yaml, application/x-yaml, text/yaml, text/plain, */*"
# Fields staff may change; a change is remembered so a re-import keeps it.
EDITABLE_FIELDS = (
    "access_type",
    "approval",
    "approval_rules",
    "agent_group",
    "customer_parameters",
    "enabled",
)
# Fields a re-import refreshes from the new spec.
SPEC_FIELDS = (
    "operation_id_generated",
    "method",
    "path",
    "summary",
    "description",
    "tags",
    "parameters_schema",
    "parameter_locations",
    "parameter_names",
    "body_content_type",
    "parameter_serialization",
    "server_url",
    "security",
    "deprecated",
    "extensions",
    "fingerprint",
)
CLASSIFIER_FIELDS = ("suggested_access_type", "suggested_approval", "confidence", "reasons")
# Who the customer is (docs/identity.md): editable too, and kept across re-imports once set.
IDENTITY_FIELDS = ("identity_bindings", "personal_data", "identity_role")


# --- Creating a job ------------------------------------------------------------------------


def import_job_create(
    *,
    source: str,
    url: str = "",
    content: bytes = b"",
    filename: str = "",
    created_by: User | None = None,
    target_spec: ApiSpec | None = None,
) -> ImportJob:
    """Validate the request, store the job and queue it. The job runs after the commit."""
    if source == ImportJob.Source.URL:
        url = url.strip()
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ApplicationError(
                ErrorCode.VALIDATION_ERROR,
                "Give an http:// or https:// URL of an OpenAPI or Swagger document.",
                details={"fields": [{"field": "url", "message": "Not an http(s) URL."}]},
            )
        content = b""
    elif source in (ImportJob.Source.UPLOAD, ImportJob.Source.TEXT):
        if not content.strip():
            raise ApplicationError(
                ErrorCode.VALIDATION_ERROR,
                "The document is empty.",
                details={"fields": [{"field": "content", "message": "Empty."}]},
            )
        if len(content) > settings.IMPORT_MAX_BYTES:
            raise ApplicationError(
                ErrorCode.PAYLOAD_TOO_LARGE,
                f"The document is {len(content):,} bytes; the limit is "
                f"{settings.IMPORT_MAX_BYTES:,} bytes.",
            )
        url = ""
    else:
        raise ApplicationError(ErrorCode.VALIDATION_ERROR, f"Unknown source {source!r}.")

    job = ImportJob.objects.create(
        source=source,
        source_url=url,
        source_name=filename[:255],
        payload=content,
        target_spec=target_spec,
        created_by=created_by,
    )
    logger.info("import_job_created", job_id=job.pk, source=source, url=url or None)
    transaction.on_commit(lambda: _enqueue(job.pk))
    return job


def _enqueue(job_id: int) -> None:
    from openapi_import.tasks import run_import

    run_import.enqueue(job_id)


# --- Running a job -------------------------------------------------------------------------


def _progress(job: ImportJob, progress: int, stage: str) -> None:
    job.progress, job.stage = progress, stage
    ImportJob.objects.filter(pk=job.pk).update(progress=progress, stage=stage)


def _fail(job: ImportJob, code: ErrorCode, message: str, report: dict[str, Any]) -> ImportJob:
    job.status = ImportJob.Status.FAILED
    job.error_code, job.error_message = str(code), message
    job.finished_at = timezone.now()
    job.report = report
    # Nothing re-runs a failed job (a retry is a new job): the raw upload is not kept.
    job.payload = b""
    job.save(
        update_fields=["status", "error_code", "error_message", "finished_at", "report", "payload"]
    )
    logger.warning("import_job_failed", job_id=job.pk, code=str(code), reason=message)
    return job


def fetch_policy() -> safehttp.Policy:
    return safehttp.Policy(
        allowed_hosts=frozenset(h.lower() for h in settings.OUTBOUND_ALLOWED_HOSTS),
        max_bytes=settings.IMPORT_MAX_BYTES,
        timeout=settings.IMPORT_TIMEOUT_SECONDS,
    )


def _fetch(url: str) -> bytes:
    try:
        response = safehttp.safe_get(url, policy=fetch_policy(), headers={"Accept": ACCEPT})
    except safehttp.BlockedDestination as exc:
        raise ApplicationError(ErrorCode.FETCH_BLOCKED, str(exc)) from exc
    except safehttp.SafeHttpError as exc:
        raise ApplicationError(ErrorCode.FETCH_FAILED, str(exc)) from exc
    if not 200 <= response.status_code < 300:
        raise ApplicationError(
            ErrorCode.FETCH_FAILED,
            f"{url} answered HTTP {response.status_code}; expected the spec document.",
        )
    return response.content


def import_job_run(*, job_id: int) -> ImportJob:
    """Run a pending job once. Safe to call twice: only the caller that moves it from pending
    to processing does the work (two workers, or a retried task)."""
    started = timezone.now()
    claimed = ImportJob.objects.filter(pk=job_id, status=ImportJob.Status.PENDING).update(
        status=ImportJob.Status.PROCESSING, started_at=started, progress=5, stage="starting"
    )
    job = ImportJob.objects.get(pk=job_id)
    if not claimed:
        logger.info("import_job_skipped", job_id=job_id, status=job.status)
        return job
    structlog.contextvars.bind_contextvars(import_job_id=job_id)
    timings: dict[str, int] = {}
    try:
        return _run(job, timings)
    except ApplicationError as exc:
        return _fail(job, exc.code, exc.message, {"timings_ms": timings})
    except Exception:
        logger.exception("import_job_crashed", job_id=job_id)
        return _fail(
            job,
            ErrorCode.INTERNAL_ERROR,
            f"Unexpected error while importing; the logs have the details (job {job_id}).",
            {"timings_ms": timings},
        )
    finally:
        structlog.contextvars.unbind_contextvars("import_job_id")


def _run(job: ImportJob, timings: dict[str, int]) -> ImportJob:
    clock = time.perf_counter()
    if job.source == ImportJob.Source.URL:
        _progress(job, 10, "fetching")
        data = _fetch(job.source_url)
        timings["fetch"] = _ms(clock)
    else:
        data = bytes(job.payload)

    _progress(job, 40, "parsing")
    clock = time.perf_counter()
    try:
        # One JSON/YAML document, or a .zip of a multi-file spec (relative $refs between files).
        parsed = parse_upload(data, max_bytes=settings.IMPORT_MAX_BYTES)
    except SpecError as exc:
        timings["parse"] = _ms(clock)
        raise ApplicationError(ErrorCode.SPEC_INVALID, exc.message) from exc
    timings["parse"] = _ms(clock)

    _progress(job, 65, "classifying")
    clock = time.perf_counter()
    classified = [
        (op, classify(op, security_schemes=parsed.security_schemes)) for op in parsed.operations
    ]
    timings["classify"] = _ms(clock)
    flagged = _injection_flags(job, parsed)

    _progress(job, 80, "storing")
    clock = time.perf_counter()
    with transaction.atomic():
        spec = _spec_for(job, parsed)
        diff = _store_operations(spec, classified)
        job.spec = spec
        job.status = ImportJob.Status.DONE
        job.progress, job.stage = 100, "done"
        job.finished_at = timezone.now()
        timings["store"] = _ms(clock)
        job.report = _report(parsed, classified, diff, timings)
        if flagged:
            job.report["injection_flags"] = flagged
        job.payload = b""  # the parsed result is stored; the raw document is not needed
        job.save()
    logger.info(
        "import_job_finished",
        job_id=job.pk,
        spec_id=spec.pk,
        operations=len(classified),
        added=len(diff["added"]),
        changed=len(diff["changed"]),
        removed=len(diff["removed"]),
        duration_ms=job.duration_ms,
    )
    return job


def _injection_flags(job: ImportJob, parsed: ParsedSpec) -> list[dict[str, Any]]:
    """Spec text that reads like instructions (SECURITY-TESTS row 23): it becomes tool
    descriptions a model reads, so it is logged, counted and listed in the job's report for
    the reviewer. Rendering it is safe either way: the admin autoescapes."""
    from conversations.agent.injection import INJECTIONS, detect_injection, injection_excerpt

    flagged: list[dict[str, Any]] = []
    for op in parsed.operations:
        text = f"{op.summary}\n{op.description}"
        patterns = detect_injection(text)
        if patterns:
            excerpt = injection_excerpt(text)
            INJECTIONS.labels(source="spec").inc()
            logger.warning(
                "injection_flagged",
                source="spec",
                job_id=job.pk,
                operation=op.operation_id,
                patterns=patterns,
                excerpt=excerpt,
            )
            flagged.append({"operation": op.operation_id, "patterns": patterns, "excerpt": excerpt})
    return flagged


def _ms(since: float) -> int:
    return int((time.perf_counter() - since) * 1000)


def _absolute(server: str, source_url: str) -> str:
    """A relative server URL (``/api/v3``) means relative to where the spec was fetched."""
    if server and source_url and not urlsplit(server).scheme:
        return urljoin(source_url, server)
    return server


def _spec_for(job: ImportJob, parsed: ParsedSpec) -> ApiSpec:
    """The spec this import updates (locked against a concurrent re-import), or a new one.

    Only an explicit choice (``target_spec``) or the same source URL selects an existing spec.
    Never the title: five different "Swagger Petstore" files are five specs, and merging them
    would retire each other's operations as removed.
    """
    specs = ApiSpec.objects.select_for_update()
    spec = None
    if job.target_spec_id:
        spec = specs.filter(pk=job.target_spec_id).first()
    if spec is None and job.source_url:
        spec = specs.filter(source_url=job.source_url).order_by("pk").first()
    if spec is None:
        spec = ApiSpec(title=parsed.title[:200] or "Untitled API")
    spec.version = parsed.version[:100]
    spec.spec_version = parsed.spec_version[:20]
    if job.source_url:
        spec.source_url = job.source_url
    spec.servers = [_absolute(s, job.source_url) for s in parsed.servers]
    spec.security_schemes = parsed.security_schemes
    if not spec.base_url and spec.servers:
        spec.base_url = spec.servers[0][:2000]
    spec.save()
    return spec


def _apply_classification(
    operation: Operation, classification: Classification, *, keep: set[str]
) -> None:
    operation.suggested_access_type = classification.access
    operation.suggested_approval = classification.approval
    operation.confidence = classification.confidence
    operation.reasons = list(classification.reasons)
    applied = {
        "access_type": classification.access,
        "approval": classification.approval,
        "agent_group": classification.agent_group[:50],
        "customer_parameters": list(classification.customer_parameters),
    }
    for field, value in applied.items():
        if field not in keep:
            setattr(operation, field, value)
    # Not editable: a credential parameter is always filled from the upstream credentials.
    operation.credential_parameters = list(classification.credential_parameters)
    _suggest_identity(operation, keep=keep)


def _suggest_identity(operation: Operation, *, keep: set[str]) -> None:
    """Bindings are only suggested (a supervisor accepts them in the review); an operation
    that takes the customer's email or id is marked personal until staff say otherwise."""
    suggested = suggest_bindings(operation.parameter_locations, operation.parameter_names or {})
    operation.suggested_identity_bindings = suggested
    if "personal_data" not in keep:
        operation.personal_data = bool(suggested)


def _spec_values(parsed: ParsedOperation, source_url: str) -> dict[str, Any]:
    return {
        "operation_id_generated": parsed.operation_id_generated,
        "method": parsed.method,
        "path": parsed.path[:1000],
        "summary": parsed.summary[:500],
        "description": parsed.description,
        "tags": list(parsed.tags),
        "parameters_schema": parsed.parameters_schema,
        "parameter_locations": parsed.parameter_locations,
        "parameter_names": {k: v for k, v in parsed.parameter_names.items() if k != v},
        "body_content_type": (parsed.body_content_type or "")[:100],
        "parameter_serialization": parsed.parameter_serialization,
        "server_url": _absolute(parsed.server_url, source_url)[:2000],
        "security": list(parsed.security),
        "deprecated": parsed.deprecated,
        "extensions": parsed.extensions,
        "fingerprint": parsed.fingerprint,
    }


def _store_operations(
    spec: ApiSpec, classified: list[tuple[ParsedOperation, Classification]]
) -> dict[str, list[str]]:
    """Insert new operations, refresh changed ones (keeping staff overrides), mark removed
    ones; returns the operation ids added, changed, removed and unchanged."""
    now = timezone.now()
    existing = {op.operation_id: op for op in spec.operations.all()}
    renamed = _renamed_operations(existing, classified)
    diff: dict[str, list[str]] = {"added": [], "changed": [], "removed": [], "unchanged": []}
    to_create: list[Operation] = []
    to_update: list[Operation] = []
    seen: set[str] = set()
    for parsed, classification in classified:
        seen.add(parsed.operation_id)
        values = _spec_values(parsed, spec.source_url)
        operation = existing.get(parsed.operation_id)
        if operation is None and parsed.operation_id in renamed:
            # Same method and path under a new operationId: the same operation, renamed. It
            # keeps its staff overrides, enabled and review state; the rename is a change.
            operation = renamed[parsed.operation_id]
            seen.add(operation.operation_id)
            operation.operation_id = parsed.operation_id
            operation.fingerprint = ""  # counted as changed below
        if operation is None:
            operation = Operation(spec=spec, operation_id=parsed.operation_id, **values)
            _apply_classification(operation, classification, keep=set())
            to_create.append(operation)
            diff["added"].append(parsed.operation_id)
            continue
        changed = operation.fingerprint != parsed.fingerprint or operation.removed_at is not None
        for field, value in values.items():
            setattr(operation, field, value)
        _apply_classification(operation, classification, keep=set(operation.overridden_fields))
        if changed:
            operation.removed_at = None
            # A reviewed tool whose definition changed needs a new review before agents use it.
            if operation.review_state == Operation.ReviewState.REVIEWED:
                operation.review_state = Operation.ReviewState.CHANGED
            diff["changed"].append(parsed.operation_id)
        else:
            diff["unchanged"].append(parsed.operation_id)
        operation.updated_at = now
        to_update.append(operation)
    for operation_id, operation in existing.items():
        if operation_id not in seen and operation.removed_at is None:
            operation.removed_at = now
            operation.updated_at = now
            to_update.append(operation)
            diff["removed"].append(operation_id)
    Operation.objects.bulk_create(to_create, batch_size=500)
    # Bulk writes send no model signals: tell the processes' tool caches directly.
    bump(AGENT_TOOLS)
    Operation.objects.bulk_update(
        to_update,
        [
            *SPEC_FIELDS,
            *CLASSIFIER_FIELDS,
            "access_type",
            "approval",
            "agent_group",
            "customer_parameters",
            "credential_parameters",
            "suggested_identity_bindings",
            "personal_data",
            "removed_at",
            "review_state",
            "updated_at",
            "operation_id",
        ],
        batch_size=500,
    )
    return diff


def _renamed_operations(
    existing: dict[str, Operation], classified: list[tuple[ParsedOperation, Classification]]
) -> dict[str, Operation]:
    """New operationId -> the stored operation it renames (same method and path).

    Matching is by operationId first; only stored operations whose id is gone from the new spec
    and parsed ones whose id is new are paired, and only when (method, path) is unambiguous.
    """
    parsed_ids = {parsed.operation_id for parsed, _ in classified}
    orphans: dict[tuple[str, str], list[Operation]] = {}
    for operation_id, operation in existing.items():
        if operation_id not in parsed_ids:
            key = (operation.method.lower(), operation.path)
            orphans.setdefault(key, []).append(operation)
    newcomers: dict[tuple[str, str], list[str]] = {}
    for parsed, _ in classified:
        if parsed.operation_id not in existing:
            key = (parsed.method.lower(), parsed.path[:1000])
            newcomers.setdefault(key, []).append(parsed.operation_id)
    renamed: dict[str, Operation] = {}
    for key, new_ids in newcomers.items():
        old = orphans.get(key, [])
        if len(new_ids) == 1 and len(old) == 1:
            renamed[new_ids[0]] = old[0]
    return renamed


def _private_servers(parsed: ParsedSpec) -> list[dict[str, str]]:
    from openapi_import.selectors import server_address_warning

    urls = dict.fromkeys([*parsed.servers, *(op.server_url for op in parsed.operations)])
    found: list[dict[str, str]] = []
    for url in urls:
        reason = server_address_warning(url) if url else None
        if reason and len(found) < 50:
            found.append({"url": url, "reason": reason})
    return found


def _report(
    parsed: ParsedSpec,
    classified: list[tuple[ParsedOperation, Classification]],
    diff: dict[str, list[str]],
    timings: dict[str, int],
) -> dict[str, Any]:
    access = Counter(c.access for _, c in classified)
    approval = Counter(c.approval for _, c in classified)
    return {
        "title": parsed.title,
        "version": parsed.version,
        "spec_version": parsed.spec_version,
        "operations": len(classified),
        "webhooks": [f"{w.method} {w.path}" for w in parsed.webhooks],
        **parsed.report.as_dict(),
        "private_servers": _private_servers(parsed),
        "diff": {
            "added": diff["added"],
            "changed": diff["changed"],
            "removed": diff["removed"],
            "unchanged": len(diff["unchanged"]),
        },
        "classification": {
            "access": {k: access.get(k, 0) for k in AccessType},
            "approval": {k: approval.get(k, 0) for k in Approval},
        },
        "timings_ms": timings,
    }


# --- Staff review ------------------------------------------------------------------------


def operation_update(*, operation: Operation, user: User, **changes: Any) -> Operation:
    """Apply staff edits; each edited field is remembered as an override."""
    unknown = set(changes) - set(EDITABLE_FIELDS) - set(IDENTITY_FIELDS)
    if unknown:
        raise ApplicationError(
            ErrorCode.VALIDATION_ERROR, f"Not editable: {', '.join(sorted(unknown))}."
        )
    if "access_type" in changes and changes["access_type"] not in set(AccessType):
        raise ApplicationError(ErrorCode.VALIDATION_ERROR, "Unknown access type.")
    if "approval" in changes and changes["approval"] not in set(Approval):
        raise ApplicationError(ErrorCode.VALIDATION_ERROR, "Unknown approval.")
    if "approval_rules" in changes:
        changes["approval_rules"] = _approval_rules_clean(changes["approval_rules"])
    access = changes.get("access_type", operation.access_type)
    approval = changes.get("approval", operation.approval)
    if access != AccessType.READ and approval == Approval.NONE:
        raise ApplicationError(
            ErrorCode.VALIDATION_ERROR,
            "A write or destructive operation needs customer or staff approval.",
            details={"fields": [{"field": "approval", "message": "Must not be none."}]},
        )
    if "identity_bindings" in changes:
        try:
            changes["identity_bindings"] = bindings_clean(
                changes["identity_bindings"], properties=operation.parameter_locations
            )
        except ValueError as exc:
            raise _field_error("identity_bindings", str(exc)) from None
    if changes.get("identity_role", "") not in set(IdentityRole):
        raise ApplicationError(ErrorCode.VALIDATION_ERROR, "Unknown identity role.")
    if changes.get("enabled") and operation.removed_at is not None:
        raise ApplicationError(
            ErrorCode.CONFLICT, "This operation is gone from the spec; it cannot be enabled."
        )
    overridden = set(operation.overridden_fields)
    fields = []
    for field, value in changes.items():
        if getattr(operation, field) != value:
            setattr(operation, field, value)
            fields.append(field)
            if field != "enabled":
                overridden.add(field)
    if fields:
        operation.overridden_fields = sorted(overridden)
        operation.save(update_fields=[*fields, "overridden_fields", "updated_at"])
        logger.info("operation_updated", operation_id=operation.pk, fields=fields, user_id=user.pk)
    return operation


def _approval_rules_clean(rules: Any) -> list[dict[str, Any]]:
    try:
        return normalize(rules)
    except ApprovalRuleError as exc:
        raise _field_error("approval_rules", str(exc)) from exc


def _field_error(field: str, message: str) -> ApplicationError:
    """A validation error on one field of the review."""
    return invalid_fields(message, {field: message})


def operations_bulk_update(*, operations: QuerySet[Operation], action: str, user: User) -> int:
    """``enable``, ``disable`` or ``review`` (mark reviewed) many operations at once."""
    live = operations.filter(removed_at__isnull=True)
    now = timezone.now()
    if action == "enable":
        count = live.update(enabled=True, updated_at=now)
    elif action == "disable":
        count = operations.update(enabled=False, updated_at=now)
    elif action == "review":
        count = live.update(
            review_state=Operation.ReviewState.REVIEWED,
            reviewed_by=user,
            reviewed_at=now,
            updated_at=now,
        )
    else:
        raise ApplicationError(ErrorCode.VALIDATION_ERROR, f"Unknown action {action!r}.")
    bump(AGENT_TOOLS)  # queryset updates send no model signals
    logger.info("operations_bulk_updated", action=action, count=count, user_id=user.pk)
    return count
