# No `from __future__ import annotations` here: django-ninja reads the parameter annotations
# (Query[...], File[...]) at import time.
from django.http import HttpRequest
from django.shortcuts import get_object_or_404
from ninja import File, Form, Query, Router, Status, UploadedFile
from ninja.pagination import paginate

from access.auth import require
from config.pagination import BoundedPagination
from openapi_import.models import ApiSpec, ImportJob, Operation
from openapi_import.schemas import (
    ApiSpecOut,
    BulkOut,
    ImportIn,
    ImportJobListItem,
    ImportJobOut,
    OperationBulkIn,
    OperationFilters,
    OperationOut,
    OperationPatch,
)
from openapi_import.selectors import import_job_get, import_job_list, operation_list, spec_list
from openapi_import.services import import_job_create, operation_update, operations_bulk_update

router = Router(tags=["imports"])

VIEW = "openapi_import.view_importjob"
ADD = "openapi_import.add_importjob"
CHANGE = "openapi_import.change_operation"


def _target(spec_id: int | None) -> ApiSpec | None:
    return get_object_or_404(ApiSpec, pk=spec_id) if spec_id is not None else None


@router.post("/imports", response={202: ImportJobOut}, summary="Start an import (URL or text)")
def create_import(request: HttpRequest, payload: ImportIn) -> Status:
    require(request, scope="imports", permission=ADD)
    target = _target(payload.spec_id)
    if payload.url:
        job = import_job_create(
            source=ImportJob.Source.URL,
            url=payload.url,
            created_by=request.user,  # type: ignore[arg-type]
            target_spec=target,
        )
    else:
        job = import_job_create(
            source=ImportJob.Source.TEXT,
            content=(payload.text or "").encode(),
            created_by=request.user,  # type: ignore[arg-type]
            target_spec=target,
        )
    return Status(202, job)


@router.post("/imports/upload", response={202: ImportJobOut}, summary="Start an import (file)")
def create_import_upload(
    request: HttpRequest, file: File[UploadedFile], spec_id: Form[int | None] = None
) -> Status:
    require(request, scope="imports", permission=ADD)
    job = import_job_create(
        source=ImportJob.Source.UPLOAD,
        content=file.read(),
        filename=file.name or "",
        created_by=request.user,  # type: ignore[arg-type]
        target_spec=_target(spec_id),
    )
    return Status(202, job)


@router.get("/imports", response=list[ImportJobListItem], summary="List imports")
@paginate(BoundedPagination)
def list_imports(request: HttpRequest) -> object:
    require(request, scope="imports", permission=VIEW)
    return import_job_list()


@router.get("/imports/{job_id}", response=ImportJobOut, summary="Poll an import")
def get_import(request: HttpRequest, job_id: int) -> ImportJob:
    require(request, scope="imports", permission=VIEW)
    return import_job_get(job_id=job_id)


@router.get("/specs", response=list[ApiSpecOut], summary="List imported specs")
@paginate(BoundedPagination)
def list_specs(request: HttpRequest) -> object:
    require(request, scope="imports", permission="openapi_import.view_apispec")
    return spec_list()


@router.get(
    "/specs/{spec_id}/operations", response=list[OperationOut], summary="A spec's operations"
)
@paginate(BoundedPagination)
def list_operations(request: HttpRequest, spec_id: int, filters: Query[OperationFilters]) -> object:
    require(request, scope="imports", permission="openapi_import.view_operation")
    get_object_or_404(ApiSpec, pk=spec_id)
    return operation_list(spec_id=spec_id, **filters.model_dump())


# Declared before /operations/{operation_id} so "bulk" is not taken for an id.
@router.post("/operations/bulk", response=BulkOut, summary="Enable, disable or mark reviewed")
def bulk_update_operations(request: HttpRequest, payload: OperationBulkIn) -> dict[str, int]:
    require(request, scope="imports", permission=CHANGE)
    operations = Operation.objects.filter(pk__in=payload.ids)
    count = operations_bulk_update(operations=operations, action=payload.action, user=request.user)  # type: ignore[arg-type]
    return {"updated": count}


@router.patch("/operations/{operation_id}", response=OperationOut, summary="Edit a classification")
def update_operation(request: HttpRequest, operation_id: int, payload: OperationPatch) -> Operation:
    require(request, scope="imports", permission=CHANGE)
    operation = get_object_or_404(Operation, pk=operation_id)
    return operation_update(operation=operation, user=request.user, **payload.changes())  # type: ignore[arg-type]
