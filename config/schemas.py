"""Schema bases shared by every app's API."""

from __future__ import annotations

import re
from typing import Annotated, Any

from ninja import Field, Schema
from ninja.schema import DjangoGetter
from pydantic import ConfigDict, model_validator


class BodyIn(Schema):
    """A JSON request body: an object. ninja's schemas read attributes of any value, so a body
    of ``[]`` or ``"x"`` would otherwise pass as "every field left out" when all fields are
    optional. Strict types: JSON has its own numbers and booleans, so ``true`` is not the id 1
    and ``"5"`` is not a number of seconds (what the schema says is what is accepted)."""

    model_config = ConfigDict(strict=True)

    @model_validator(mode="before")
    @classmethod
    def _an_object(cls, value: Any) -> Any:
        # ninja's own validator wraps whatever came in before this one sees it.
        raw = value._obj if isinstance(value, DjangoGetter) else value
        if not isinstance(raw, dict):
            raise ValueError("The body must be a JSON object.")
        return value


# A primary key as the database can hold it (bigint; SQLite's integers are the same size).
DatabaseId = Annotated[int, Field(ge=1, le=2**63 - 1)]


_ISO_DATETIME = re.compile(
    r"^\d{4}-\d{2}-\d{2}([Tt ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?([Zz]|[+-]\d{2}:?\d{2})?)?$"
)


def iso_datetime_text(value: Any) -> Any:
    """A query's date-time as the schema's ``format: date-time`` says, not a number that
    pydantic would read as a Unix timestamp."""
    if isinstance(value, str) and not _ISO_DATETIME.match(value):
        raise ValueError("Give an ISO 8601 date-time, e.g. 2026-12-04T10:00:00Z.")
    return value
