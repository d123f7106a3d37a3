from __future__ import annotations

from django.db.models import Q, QuerySet

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
