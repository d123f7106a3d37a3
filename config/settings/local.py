"""Development: ``make run``. Debug on, a throw-away secret key, localhost only, the demo shop
let through the SSRF guard on the address ``make run`` serves (``HOST``, ``PORT``)."""

from __future__ import annotations

from .base import *  # noqa: F403
from .base import (
    ALLOWED_HOSTS,
    IDENTITY_SECRET,
    OUTBOUND_ALLOWED_HOSTS,
    SECRET_KEY,
    UPSTREAM_ALLOWED_HOSTS,
    env_bool,
    env_int,
    env_str,
)

# Where `make run` serves (the Makefile's HOST and PORT). The demo shop is served by that same
# server, so the demo's tool calls (and an import of its spec by URL) go to exactly this
# address, and the allow-lists below follow it. A wildcard bind is reached on loopback.
RUN_HOST = env_str("HOST", "127.0.0.1").removeprefix("[").removesuffix("]")
RUN_PORT = env_int("PORT", 8000, minimum=1)


def _demo_hosts(host: str, port: int) -> tuple[list[str], list[str]]:
    """(ALLOWED_HOSTS additions, host:port entries for the outbound allow-lists)."""
    names = ["127.0.0.1", "localhost"]
    if host not in {"0.0.0.0", "::", "", *names}:  # noqa: S104  (compared with, not bound)
        names.append(f"[{host}]" if ":" in host else host)
    return names, [f"{name}:{port}" for name in names]


_RUN_NAMES, _RUN_ADDRESSES = _demo_hosts(RUN_HOST, RUN_PORT)

DEBUG = env_bool("DJANGO_DEBUG", True)
DEMO_SHOP_ENABLED = env_bool("DEMO_SHOP_ENABLED", True)
SECRET_KEY = SECRET_KEY or "django-insecure-local-development-only-do-not-deploy"
# The demo's "continue as Ana" signs with it; a real site sets its own (docs/identity.md).
IDENTITY_SECRET = IDENTITY_SECRET or "local-identity-secret-development-only-do-not-deploy"
ALLOWED_HOSTS = ALLOWED_HOSTS or list(dict.fromkeys([*_RUN_NAMES, "[::1]"]))
OUTBOUND_ALLOWED_HOSTS = OUTBOUND_ALLOWED_HOSTS or _RUN_ADDRESSES
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
UPSTREAM_ALLOWED_HOSTS = UPSTREAM_ALLOWED_HOSTS or _RUN_ADDRESSES
UPSTREAM_ALLOW_PRIVATE = env_bool("UPSTREAM_ALLOW_PRIVATE", True)
WHITENOISE_USE_FINDERS = True
