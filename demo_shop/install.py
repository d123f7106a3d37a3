"""The whole demo in one call (``make run``): shop data, its spec imported and enabled as tools,
the upstream credential, and the e-commerce agents."""

from __future__ import annotations

import json
from dataclasses import dataclass

from django.conf import settings
from django.contrib.auth.models import User
from django.db import transaction
from django.db.models import QuerySet

from conversations.agents import agents_load, template_text
from conversations.approval_rules import threshold_rule
from demo_shop.seed import shop_seed
from openapi_import.models import ApiSpec, IdentityRole, ImportJob, Operation
from openapi_import.services import (
    import_job_create,
    import_job_run,
    operation_update,
    operations_bulk_update,
)

VERIFIERS = {
    "startVerification": IdentityRole.VERIFY_START,
    "confirmVerification": IdentityRole.VERIFY_CONFIRM,
}


@dataclass(frozen=True)
class DemoInstall:
    spec: ApiSpec
    tools: int
    agents: int


def demo_install(*, base_url: str, reviewer: User) -> DemoInstall:
    from demo_shop.api import api as shop_api

    shop_seed()
    schema = shop_api.get_openapi_schema()
    with transaction.atomic():
        existing = ApiSpec.objects.filter(title=schema["info"]["title"]).first()
        job = import_job_create(
            source=ImportJob.Source.TEXT,
            content=json.dumps(schema).encode(),
            filename="demo-shop-openapi.json",
            created_by=reviewer,
            target_spec=existing,
        )
    job = import_job_run(job_id=job.pk)
    if job.status != ImportJob.Status.DONE or job.spec is None:
        raise RuntimeError(f"The demo shop spec did not import: {job.error_message}")
    spec = job.spec
    spec.base_url = base_url.rstrip("/") + "/demo-shop/api"
    spec.auth_header = "X-Shop-Key"
    spec.auth_value = settings.DEMO_SHOP_API_KEY
    spec.save(update_fields=["base_url", "auth_header", "auth_value", "updated_at"])
    operations = spec.operations.filter(removed_at__isnull=True)
    operations_bulk_update(operations=operations, action="review", user=reviewer)
    operations_bulk_update(operations=operations, action="enable", user=reviewer)
    _refund_rule_seed(spec, reviewer)
    _bind_identity(operations, reviewer)
    result = agents_load(text=template_text("ecommerce"))
    return DemoInstall(
        spec=spec,
        tools=operations.count(),
        agents=len(result.created) + len(result.updated),
    )


def _refund_rule_seed(spec: ApiSpec, reviewer: User) -> None:
    """The customer approves a refund up to ``REFUND_STAFF_THRESHOLD``; above it, staff do
    (an approval rule on ``createRefund``, shown and editable in the operation review)."""
    refund = spec.operations.filter(operation_id="createRefund", removed_at__isnull=True).first()
    if refund is None:
        return
    operation_update(
        operation=refund,
        user=reviewer,
        approval="user",
        approval_rules=[threshold_rule("amount", settings.REFUND_STAFF_THRESHOLD)],
    )


def _bind_identity(operations: QuerySet[Operation], reviewer: User) -> None:
    """What a supervisor does in the review (docs/identity.md): accept the suggested bindings
    (the customer's email as ``X-Customer-Email``, and ``email`` of listOrders) and mark the
    two verification operations."""
    for operation in operations:
        changes: dict[str, object] = {}
        if operation.suggested_identity_bindings:
            changes["identity_bindings"] = dict(operation.suggested_identity_bindings)
            changes["personal_data"] = True
        if operation.operation_id in VERIFIERS:
            changes["identity_role"] = VERIFIERS[operation.operation_id]
        if changes:
            operation_update(operation=operation, user=reviewer, **changes)
