from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from ninja import Field, ModelSchema, Schema
from pydantic import model_validator

from config.schemas import BodyIn, DatabaseId
from openapi_import.models import ApiSpec, ImportJob, Operation


class ImportIn(BodyIn):
    """Exactly one of ``url`` and ``text``; files go to ``POST /imports/upload``."""

    url: str | None = Field(
        None, max_length=2000, examples=["https://api.example.com/openapi.json"]
    )
    text: str | None = Field(None, description="The spec document, JSON or YAML.")
    spec_id: int | None = Field(None, description="Re-import a new version into this spec.")

    @model_validator(mode="after")
    def one_source(self) -> ImportIn:
        if bool(self.url) == bool(self.text):
            raise ValueError("Give exactly one of url and text.")
        return self


class ImportJobOut(ModelSchema):
    spec_id: int | None
    duration_ms: int | None

    class Meta:
        model = ImportJob
        fields = [
            "id",
            "source",
            "source_url",
            "source_name",
            "status",
            "progress",
            "stage",
            "error_code",
            "error_message",
            "report",
            "created_at",
            "started_at",
            "finished_at",
        ]


class ApiSpecOut(ModelSchema):
    # JSON columns: ninja would declare them as objects, but these hold lists.
    servers: list[Any]

    class Meta:
        model = ApiSpec
        fields = [
            "id",
            "title",
            "version",
            "spec_version",
            "source_url",
            "base_url",
            "servers",
            "created_at",
            "updated_at",
        ]


class OperationOut(ModelSchema):
    spec_id: int
    is_tool: bool
    # JSON columns holding lists (ninja would declare them as objects).
    tags: list[Any]
    approval_rules: list[Any]
    customer_parameters: list[Any]
    reasons: list[Any]
    overridden_fields: list[Any]

    class Meta:
        model = Operation
        fields = [
            "id",
            "operation_id",
            "method",
            "path",
            "summary",
            "description",
            "tags",
            "parameters_schema",
            "parameter_locations",
            "server_url",
            "access_type",
            "approval",
            "approval_rules",
            "agent_group",
            "customer_parameters",
            "suggested_access_type",
            "suggested_approval",
            "confidence",
            "reasons",
            "overridden_fields",
            "enabled",
            "review_state",
            "reviewed_at",
            "removed_at",
        ]


class OperationPatch(BodyIn):
    access_type: Literal["read", "write", "destructive"] | None = None
    approval: Literal["none", "user", "staff"] | None = None
    # [{"when": {"argument": "amount", "op": ">", "value": 50}, "approver": "staff"}]; checked
    # by the service (docs/approvals.md), an empty list removes them.
    approval_rules: list[dict[str, Any]] | None = None
    agent_group: str | None = Field(None, max_length=50)
    customer_parameters: list[str] | None = None
    enabled: bool | None = None

    def changes(self) -> dict[str, Any]:
        return self.model_dump(exclude_unset=True, exclude_none=True)


class OperationBulkIn(BodyIn):
    ids: list[DatabaseId] = Field(..., min_length=1, max_length=1000)
    action: Literal["enable", "disable", "review"]


class BulkOut(Schema):
    updated: int


class OperationFilters(Schema):
    access_type: Literal["read", "write", "destructive"] | None = None
    approval: Literal["none", "user", "staff"] | None = None
    review_state: Literal["unreviewed", "reviewed", "changed"] | None = None
    enabled: bool | None = None
    search: str | None = None


class ImportJobListItem(Schema):
    id: int
    source: str
    source_url: str
    status: str
    progress: int
    spec_id: int | None
    created_at: datetime
    finished_at: datetime | None
