"""Production: refuses to start without a secret key and allowed hosts, and passes
``manage.py check --deploy``."""

from __future__ import annotations

from django.core.exceptions import ImproperlyConfigured

from config.hosts import wildcard_entries

from .base import *  # noqa: F403
from .base import (
    ALLOWED_HOSTS,
    CHAOS_ENABLED,
    CSRF_TRUSTED_ORIGINS,
    SECRET_KEY,
    env_bool,
    env_int,
)

if not SECRET_KEY:
    raise ImproperlyConfigured(
        "DJANGO_SECRET_KEY is not set. Generate one with "
        "`python -c 'import secrets; print(secrets.token_urlsafe(50))'`."
    )
if len(SECRET_KEY) < 50 or SECRET_KEY.startswith("django-insecure"):
    raise ImproperlyConfigured("DJANGO_SECRET_KEY must be at least 50 random characters.")
if not ALLOWED_HOSTS:
    raise ImproperlyConfigured(
        "DJANGO_ALLOWED_HOSTS is not set: list the host names this server answers to, "
        "comma-separated (for example support.example.com)."
    )
# With "*" the WebSocket origin check (AllowedHostsOriginValidator) admits every origin.
if wildcard_entries(ALLOWED_HOSTS):
    raise ImproperlyConfigured(
        "DJANGO_ALLOWED_HOSTS contains '*', which admits every host and every WebSocket "
        "origin: list the host names this server answers to (for example support.example.com)."
    )
if wildcard_entries(CSRF_TRUSTED_ORIGINS):
    raise ImproperlyConfigured(
        f"DJANGO_CSRF_TRUSTED_ORIGINS contains {wildcard_entries(CSRF_TRUSTED_ORIGINS)}, which "
        "trusts every origin: list full origins (for example https://support.example.com)."
    )

if CHAOS_ENABLED:
    raise ImproperlyConfigured(
        "CHAOS_ENABLED is on: chaos mode injects failures for soak tests and never runs with "
        "production settings."
    )

DEBUG = False
SECURE_SSL_REDIRECT = env_bool("DJANGO_SECURE_SSL_REDIRECT", True)
# Behind a TLS-terminating proxy that sets X-Forwarded-Proto.
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
# Load balancers probe health over plain HTTP on the public name too.
SECURE_REDIRECT_EXEMPT = [r"^api/v1/health(/ready)?/?$"]
SECURE_HSTS_SECONDS = env_int("DJANGO_SECURE_HSTS_SECONDS", 31_536_000, minimum=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("DJANGO_SECURE_HSTS_INCLUDE_SUBDOMAINS", True)
SECURE_HSTS_PRELOAD = env_bool("DJANGO_SECURE_HSTS_PRELOAD", True)
SESSION_COOKIE_SECURE = True
CSRF_COOKIE_SECURE = True
