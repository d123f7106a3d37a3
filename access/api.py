from __future__ import annotations

from django.http import HttpRequest
from ninja import Router, Schema

router = Router()


class MeOut(Schema):
    username: str
    roles: list[str]
    is_superuser: bool
    api_key: str | None
    scopes: list[str] | None


@router.get("/me", response=MeOut, summary="Who the credentials belong to")
def get_me(request: HttpRequest) -> dict[str, object]:
    """Lets a program check its API key: the owner, their roles and the key's scopes."""
    api_key = getattr(request, "api_key", None)
    user = request.user
    return {
        "username": user.get_username(),
        "roles": sorted(user.groups.values_list("name", flat=True)),
        "is_superuser": user.is_superuser,
        "api_key": f"ad_{api_key.prefix}_…" if api_key else None,
        "scopes": list(api_key.scopes) if api_key else None,
    }
