"""``limit``/``offset`` pagination with both bounded, for every list endpoint of the API.

django-ninja's ``LimitOffsetPagination`` leaves ``offset`` (and, by default, ``limit``) without
an upper bound, so ``?offset=99999999999999999999`` reached PostgreSQL as an out-of-range
``OFFSET`` and answered 500. Out of range here is a 422 ``validation_error`` naming the field.
"""

from __future__ import annotations

from ninja import Field, Schema
from ninja.pagination import LimitOffsetPagination

MAX_LIMIT = 500
DEFAULT_LIMIT = 100
# Far beyond any real list, far below bigint (and SQLite's 64-bit integers).
MAX_OFFSET = 1_000_000_000


class BoundedPagination(LimitOffsetPagination):
    class Input(Schema):
        limit: int = Field(DEFAULT_LIMIT, ge=1, le=MAX_LIMIT)
        offset: int = Field(0, ge=0, le=MAX_OFFSET)

    def __init__(self, **kwargs: object) -> None:
        super().__init__(max_limit=MAX_LIMIT, **kwargs)
