"""API keys: issue (shown once), authenticate, revoke."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

import structlog
from django.contrib.auth.models import User
from django.utils import timezone

from access.models import ApiKey

logger = structlog.get_logger(__name__)

KEY_PREFIX = "ad_"
# last_used_at is written at most this often per key, so every request is not a write.
LAST_USED_RESOLUTION = timedelta(minutes=1)


@dataclass(frozen=True)
class IssuedKey:
    api_key: ApiKey
    plaintext: str


def _hash(plaintext: str) -> str:
    return hashlib.sha256(plaintext.encode()).hexdigest()


def api_key_issue(
    *,
    owner: User,
    name: str,
    scopes: list[str],
    expires_at: datetime | None = None,
    integration: str = "",
) -> IssuedKey:
    unknown = sorted(set(scopes) - set(ApiKey.Scope.values))
    if unknown:
        raise ValueError(f"Unknown scopes: {', '.join(unknown)}.")
    prefix = secrets.token_hex(6)
    plaintext = f"{KEY_PREFIX}{prefix}_{secrets.token_urlsafe(32)}"
    api_key = ApiKey.objects.create(
        owner=owner,
        name=name,
        prefix=prefix,
        key_hash=_hash(plaintext),
        scopes=sorted(set(scopes)),
        expires_at=expires_at,
        integration=integration.strip(),
    )
    logger.info("api_key_issued", api_key_id=api_key.pk, prefix=prefix, scopes=api_key.scopes)
    return IssuedKey(api_key=api_key, plaintext=plaintext)


def api_key_authenticate(*, plaintext: str) -> ApiKey | None:
    """The active key matching ``plaintext``, or ``None``. Constant-time hash comparison."""
    if not plaintext.startswith(KEY_PREFIX):
        return None
    prefix, sep, _ = plaintext[len(KEY_PREFIX) :].partition("_")
    if not sep or not prefix:
        return None
    api_key = ApiKey.objects.select_related("owner").filter(prefix=prefix).first()
    if api_key is None or not hmac.compare_digest(api_key.key_hash, _hash(plaintext)):
        return None
    if not api_key.is_active or not api_key.owner.is_active:
        return None
    now = timezone.now()
    if api_key.last_used_at is None or now - api_key.last_used_at > LAST_USED_RESOLUTION:
        ApiKey.objects.filter(pk=api_key.pk).update(last_used_at=now)
        api_key.last_used_at = now
    return api_key


def api_key_revoke(*, api_key: ApiKey) -> ApiKey:
    if api_key.revoked_at is None:
        api_key.revoked_at = timezone.now()
        api_key.save(update_fields=["revoked_at"])
        logger.info("api_key_revoked", api_key_id=api_key.pk, prefix=api_key.prefix)
    return api_key
