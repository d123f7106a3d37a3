"""Development: ``make run``. Debug on, a throw-away secret key, localhost only, the demo shop on
localhost let through the SSRF guard."""

from __future__ import annotations

from .base import *  # noqa: F403
from .base import (
    ALLOWED_HOSTS,
    IDENTITY_SECRET,
    OUTBOUND_ALLOWED_HOSTS,
    SECRET_KEY,
    UPSTREAM_ALLOWED_HOSTS,
    env_bool,
)

DEBUG = env_bool("DJANGO_DEBUG", True)
SECRET_KEY = SECRET_KEY or "django-insecure-local-development-only-do-not-deploy"
# The demo's "continue as Ana" signs with it; a real site sets its own (docs/identity.md).
IDENTITY_SECRET = IDENTITY_SECRET or "local-identity-secret-development-only-do-not-deploy"
ALLOWED_HOSTS = ALLOWED_HOSTS or ["127.0.0.1", "localhost", "[::1]"]
OUTBOUND_ALLOWED_HOSTS = OUTBOUND_ALLOWED_HOSTS or ["127.0.0.1:8000", "localhost:8000"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
UPSTREAM_ALLOWED_HOSTS = UPSTREAM_ALLOWED_HOSTS or ["127.0.0.1:8000", "localhost:8000"]
UPSTREAM_ALLOW_PRIVATE = env_bool("UPSTREAM_ALLOW_PRIVATE", True)
WHITENOISE_USE_FINDERS = True
