from __future__ import annotations

from django.db.models import Count, Q, QuerySet

from openapi_import.models import ApiSpec, ImportJob, Operation


def import_job_get(*, job_id: int) -> ImportJob:
    return ImportJob.objects.select_related("spec").get(pk=job_id)


def import_job_list() -> QuerySet[ImportJob]:
    return ImportJob.objects.select_related("spec").defer("payload")


def spec_list() -> QuerySet[ApiSpec]:
    return ApiSpec.objects.all()


def operation_list(
    *,
    spec_id: int | None = None,
    access_type: str | None = None,
    approval: str | None = None,
    review_state: str | None = None,
    enabled: bool | None = None,
    search: str | None = None,
) -> QuerySet[Operation]:
    operations = Operation.objects.select_related("spec")
    if spec_id is not None:
        operations = operations.filter(spec_id=spec_id)
    if access_type:
        operations = operations.filter(access_type=access_type)
    if approval:
        operations = operations.filter(approval=approval)
    if review_state:
        operations = operations.filter(review_state=review_state)
    if enabled is not None:
        operations = operations.filter(enabled=enabled)
    if search:
        operations = operations.filter(
            Q(operation_id__icontains=search)
            | Q(path__icontains=search)
            | Q(summary__icontains=search)
        )
    return operations


def operations_available_as_tools(*, spec_ids: list[int] | None = None) -> QuerySet[Operation]:
    """Only reviewed, enabled operations still in their spec may be called by agents."""
    operations = Operation.objects.select_related("spec").filter(
        enabled=True, review_state=Operation.ReviewState.REVIEWED, removed_at__isnull=True
    )
    if spec_ids is not None:
        operations = operations.filter(spec_id__in=spec_ids)
    return operations


def shared_operation_ids() -> set[str]:
    """Operation ids that more than one live spec has: as tool names they would shadow each
    other (issue 15 item 7)."""
    rows = (
        Operation.objects.filter(removed_at__isnull=True)
        .values("operation_id")
        .annotate(specs=Count("spec_id", distinct=True))
        .filter(specs__gt=1)
        .values_list("operation_id", flat=True)
    )
    return set(rows)


def operation_tool_name(operation: Operation, shared: set[str]) -> str:
    """The tool name the model sees: the ``operationId``, or with its spec before it when
    another live spec has the same one (``conversations.llm.toolnames``)."""
    from conversations.llm.toolnames import tool_name

    return tool_name(
        spec_key=str(operation.spec_id),
        spec_title=operation.spec.title,
        operation_id=operation.operation_id,
        shared=operation.operation_id in shared,
    )


# Host names that only ever mean a private network (no DNS lookup at review time).
_PRIVATE_HOSTS = frozenset({"localhost", "localhost.localdomain", "metadata.google.internal"})
_PRIVATE_SUFFIXES = (".localhost", ".local", ".internal", ".lan", ".home.arpa", ".intranet")


def server_address_warning(url: str) -> str | None:
    """Why a server URL of a spec points at a private address, or None.

    Judged from the URL alone: literal IPs (every spelling ``safehttp`` knows) against the
    outbound block list, and host names that are private by convention. Relative URLs and
    public host names are not flagged; the outbound guard still checks every call's address.
    """
    from urllib.parse import urlsplit

    from safehttp.addresses import InvalidIPLiteral, address_block_reason, parse_ip_literal

    try:
        host = (urlsplit(url).hostname or "").rstrip(".").lower()
    except ValueError:
        return "the server URL cannot be read"
    if not host or "{" in host:
        return None  # relative, or a server variable left for staff to fill in
    try:
        ip = parse_ip_literal(host)
    except InvalidIPLiteral:
        return f"{host} is not a valid address"
    if ip is not None:
        reason = address_block_reason(ip)
        return f"{host} is {reason}" if reason else None
    if host in _PRIVATE_HOSTS or host.endswith(_PRIVATE_SUFFIXES) or "." not in host:
        return f"{host} is a private (local network) host name"
    return None


def spec_private_servers(*, spec: ApiSpec) -> list[dict[str, str]]:
    """The spec's server URLs (and its base URL) that point at private addresses."""
    urls = dict.fromkeys([*(str(s) for s in spec.servers or []), spec.base_url])
    found: list[dict[str, str]] = []
    for url in urls:
        reason = server_address_warning(url) if url else None
        if reason:
            found.append({"url": url, "reason": reason})
    return found
