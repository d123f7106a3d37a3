"""Schema bases shared by every app's API."""

from __future__ import annotations

from typing import Annotated, Any

from ninja import Field, Schema
from ninja.schema import DjangoGetter
from pydantic import model_validator


class BodyIn(Schema):
    """A JSON request body: an object. ninja's schemas read attributes of any value, so a body
    of ``[]`` or ``"x"`` would otherwise pass as "every field left out" when all fields are
    optional."""

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
