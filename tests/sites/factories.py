from __future__ import annotations

from typing import Any

from sites.models import Site


def site_create(**fields: Any) -> Site:
    values: dict[str, Any] = {
        "name": "Ana's Shop",
        "allowed_origins": "https://shop.example\nhttp://localhost:8123",
    }
    values.update(fields)
    site = Site(**values)
    site.full_clean()
    site.save()
    return site
