"""Settings shared by every environment, read from the environment in this one module.

With no environment at all the project runs embedded: SQLite file, in-memory channel layer,
local-memory cache and the offline agent backend. ``DATABASE_URL`` switches to PostgreSQL through
psycopg 3 with a connection pool, ``REDIS_URL`` to the Redis channel layer and cache.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import dj_database_url
from django.utils.csp import CSP

from config.logging import build_logging

BASE_DIR = Path(__file__).resolve().parent.parent.parent


class EnvError(ValueError):
    """An environment variable holds a value the settings cannot use."""


def env_str(name: str, default: str = "") -> str:
    return os.environ.get(name, default).strip()


def env_bool(name: str, default: bool = False) -> bool:
    raw = os.environ.get(name)
    if raw is None or not raw.strip():
        return default
    value = raw.strip().lower()
    if value in {"1", "true", "yes", "on"}:
        return True
    if value in {"0", "false", "no", "off"}:
        return False
    raise EnvError(f"{name}={raw!r} is not a boolean; use true or false.")


def env_int(name: str, default: int, *, minimum: int | None = None) -> int:
    raw = os.environ.get(name)
    if raw is None or not raw.strip():
        return default
    try:
        value = int(raw.strip())
    except ValueError as exc:
        raise EnvError(f"{name}={raw!r} is not an integer.") from exc
    if minimum is not None and value < minimum:
        raise EnvError(f"{name}={value} must be at least {minimum}.")
    return value


def env_float(name: str, default: float) -> float:
    raw = os.environ.get(name)
    if raw is None or not raw.strip():
        return default
    try:
        return float(raw.strip())
    except ValueError as exc:
        raise EnvError(f"{name}={raw!r} is not a number.") from exc


def env_list(name: str, default: list[str] | None = None) -> list[str]:
    raw = os.environ.get(name)
    if raw is None or not raw.strip():
        return list(default or [])
    return [item.strip() for item in raw.split(",") if item.strip()]


# --- Core ---------------------------------------------------------------------------------------

SECRET_KEY = env_str("DJANGO_SECRET_KEY")
DEBUG = env_bool("DJANGO_DEBUG", False)
ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS")
CSRF_TRUSTED_ORIGINS = env_list("DJANGO_CSRF_TRUSTED_ORIGINS")

INSTALLED_APPS = [
    "daphne",
    "config.apps.ActiondeskAdminConfig",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "channels",
    "ninja",
    "django_structlog",
    "django_tasks_db",
    "access",
    "conversations",
    "sites",
    "analytics",
    "escalations",
    "openapi_import",
    "demo_shop",
]

MIDDLEWARE = [
    "config.middleware.InternalHealthMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "django.middleware.csp.ContentSecurityPolicyMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "config.middleware.RequestLogMiddleware",
    "config.middleware.RequestIdMiddleware",
    "config.middleware.QueryGuardMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "config.middleware.ApiEnvelopeMiddleware",
]

ROOT_URLCONF = "config.urls"
ASGI_APPLICATION = "config.asgi.application"
WSGI_APPLICATION = None

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# --- Database -----------------------------------------------------------------------------------

DATABASE_URL = env_str("DATABASE_URL")


def database_from_url(url: str) -> dict[str, Any]:
    """PostgreSQL from ``DATABASE_URL`` with psycopg's pool, or the embedded SQLite file.

    Under ASGI every request may run on another thread, so persistent connections
    (``CONN_MAX_AGE``) are off and the pool does the reuse instead.
    """
    if not url:
        return {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": BASE_DIR / "db.sqlite3",
            "OPTIONS": {"transaction_mode": "IMMEDIATE", "timeout": 20},
        }
    config: dict[str, Any] = dict(dj_database_url.parse(url, conn_max_age=0))
    if config["ENGINE"] != "django.db.backends.postgresql":
        raise EnvError(f"DATABASE_URL must be a postgres:// URL, not {config['ENGINE']}.")
    config["OPTIONS"] = {
        "pool": {
            "min_size": env_int("DATABASE_POOL_MIN", 1, minimum=0),
            "max_size": env_int("DATABASE_POOL_MAX", 10, minimum=1),
            "timeout": env_float("DATABASE_POOL_TIMEOUT", 10.0),
        },
    }
    config["CONN_MAX_AGE"] = 0
    config["CONN_HEALTH_CHECKS"] = False
    return config


DATABASES = {"default": database_from_url(DATABASE_URL)}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Redis: channel layer and cache --------------------------------------------------------------

REDIS_URL = env_str("REDIS_URL")
# Keeps several deployments (or parallel test workers) on one Redis apart.
REDIS_PREFIX = env_str("REDIS_PREFIX", "actiondesk")

CHANNEL_LAYERS: dict[str, dict[str, Any]]
CACHES: dict[str, dict[str, Any]]
if REDIS_URL:
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {
                # redis-py 8 reads with a 5 s socket timeout by default, which kills every
                # idle consumer's blocking BZPOPMIN (channels_redis#422); allow longer reads.
                "hosts": [{"address": REDIS_URL, "socket_timeout": 30}],
                "prefix": f"{REDIS_PREFIX}:asgi",
                "capacity": 1000,
                "expiry": 60,
            },
        }
    }
    CACHES = {
        "default": {
            "BACKEND": "config.cache.ReusingRedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": REDIS_PREFIX,
            "OPTIONS": {"socket_connect_timeout": 2, "socket_timeout": 2},
        }
    }
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# --- Chaos mode (config.chaos; docs/hardening.md) -------------------------------------------------
# Faults at these rates (0..1), from a seed, for soak tests. Off by default; refused in production.
CHAOS_ENABLED = env_bool("CHAOS_ENABLED", False)
CHAOS_SEED = env_int("CHAOS_SEED", 0)
CHAOS_MODEL_LATENCY_RATE = env_float("CHAOS_MODEL_LATENCY_RATE", 0.0)
CHAOS_MODEL_LATENCY_MS = env_int("CHAOS_MODEL_LATENCY_MS", 2000, minimum=0)
CHAOS_MODEL_ERROR_RATE = env_float("CHAOS_MODEL_ERROR_RATE", 0.0)
CHAOS_TOOL_FAILURE_RATE = env_float("CHAOS_TOOL_FAILURE_RATE", 0.0)
CHAOS_TOOL_TIMEOUT_RATE = env_float("CHAOS_TOOL_TIMEOUT_RATE", 0.0)
CHAOS_REDIS_ERROR_RATE = env_float("CHAOS_REDIS_ERROR_RATE", 0.0)
CHAOS_DB_TIMEOUT_RATE = env_float("CHAOS_DB_TIMEOUT_RATE", 0.0)
for _name in [n for n in dir() if n.startswith("CHAOS_") and n.endswith("_RATE")]:
    if not 0.0 <= globals()[_name] <= 1.0:
        raise EnvError(f"{_name}={globals()[_name]} must be between 0 and 1.")
if CHAOS_ENABLED and CHAOS_REDIS_ERROR_RATE > 0:
    CACHES["default"]["BACKEND"] = (
        "config.chaos.ChaosRedisCache" if REDIS_URL else "config.chaos.ChaosLocMemCache"
    )

# --- Background jobs (django.tasks) --------------------------------------------------------------

# "immediate" runs a job inside the request (development, tests); "database" queues it for
# `manage.py db_worker` (production).
TASKS_BACKEND = env_str("TASKS_BACKEND", "immediate")
_TASK_BACKENDS = {
    "immediate": "django.tasks.backends.immediate.ImmediateBackend",
    "database": "django_tasks_db.DatabaseBackend",
}
if TASKS_BACKEND not in _TASK_BACKENDS:
    raise EnvError(f"TASKS_BACKEND={TASKS_BACKEND!r}; use one of {sorted(_TASK_BACKENDS)}.")
TASKS = {"default": {"BACKEND": _TASK_BACKENDS[TASKS_BACKEND]}}

# --- Auth, i18n, static ---------------------------------------------------------------------------

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "admin:login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = env_str("TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}

# --- Security headers ----------------------------------------------------------------------------

SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_HTTPONLY = True

# Content-Security-Policy (SPEC §12), sent by ContentSecurityPolicyMiddleware. Nothing inline:
# pages load their scripts and styles from static files. connect-src 'self' also covers the
# chat WebSocket (ws/wss to the same host) in current browsers.
SECURE_CSP = {
    "default-src": [CSP.SELF],
    "script-src": [CSP.SELF],
    "style-src": [CSP.SELF],
    "img-src": [CSP.SELF, "data:"],
    "connect-src": [CSP.SELF],
    "object-src": [CSP.NONE],
    "base-uri": [CSP.NONE],
    "form-action": [CSP.SELF],
    "frame-ancestors": [CSP.NONE],
}

# --- Logging ------------------------------------------------------------------------------------

LOG_FORMAT = env_str("LOG_FORMAT", "console")
LOG_LEVEL = env_str("LOG_LEVEL", "INFO").upper()
if LOG_FORMAT not in {"console", "json"}:
    raise EnvError(f"LOG_FORMAT={LOG_FORMAT!r}; use console or json.")
LOGGING = build_logging(log_format=LOG_FORMAT, level=LOG_LEVEL)
LOGGING_CONFIG = "config.logging.configure"
DJANGO_STRUCTLOG_CELERY_ENABLED = False
# X-Request-ID from the client is used only when this is on (a proxy in front sets it) and the
# value is at most 64 of [A-Za-z0-9-]; otherwise every request gets a fresh id
# (config.middleware.RequestLogMiddleware). LOG_TRUST_REQUEST_ID is the old name.
TRUST_REQUEST_ID_HEADER = env_bool("TRUST_REQUEST_ID_HEADER", env_bool("LOG_TRUST_REQUEST_ID"))
# django-structlog takes whatever header reaches it; RequestLogMiddleware removes it first unless
# trusted and well-formed.
DJANGO_STRUCTLOG_TRUST_UPSTREAM_REQUEST_ID = True

# --- Actiondesk --------------------------------------------------------------------------------

# LLM backends (SPEC §5). The default is the offline backend, which needs nothing.
LLM_BACKEND = env_str("LLM_BACKEND", "offline")
LLM_BASE_URL = env_str("LLM_BASE_URL")
LLM_API_KEY = env_str("LLM_API_KEY")
LLM_MODEL = env_str("LLM_MODEL")
LLM_TIMEOUT_SECONDS = env_float("LLM_TIMEOUT_SECONDS", 30.0)
# Backend names tried after the default backend. Unset: offline; set but empty: no fallback.
LLM_FALLBACK = (
    env_list("LLM_FALLBACK", ["offline"]) if os.environ.get("LLM_FALLBACK") is None else
    env_list("LLM_FALLBACK")
)  # fmt: skip
# Named backends (issue 15): a JSON list or TOML [[backends]] tables; see docs/llm-backends.md.
# They take precedence over same-named rows in the admin (Model backends).
LLM_BACKENDS = env_str("LLM_BACKENDS")
# With LLM_BACKENDS: the default backend's name (empty: the first one).
LLM_DEFAULT_BACKEND = env_str("LLM_DEFAULT_BACKEND")
# The escalation assessment's backend (empty: the conversation's agent's).
LLM_ESCALATION_BACKEND = env_str("LLM_ESCALATION_BACKEND")
# Where circuit breakers keep their state: auto (Redis with REDIS_URL, else the database),
# cache, database or memory (this process only).
LLM_BREAKER_STORE = env_str("LLM_BREAKER_STORE", "auto")
# A turn's model calls share one deadline: the turn's limit minus this margin; each backend
# after the first in the chain is kept this many seconds of it.
LLM_FALLBACK_RESERVE_SECONDS = env_float("LLM_FALLBACK_RESERVE_SECONDS", 10.0)
# Without a first token by then, the customer is told the answer is delayed (with a human offer).
LLM_DELAYED_NOTICE_SECONDS = env_float("LLM_DELAYED_NOTICE_SECONDS", 20.0)
# Tools sent per model call: at most this many, and this many bytes of schema (0: no limit).
# Over it, descriptions are shortened, then optional properties dropped, then fewer tools sent.
LLM_TOOLS_MAX_COUNT = env_int("LLM_TOOLS_MAX_COUNT", 32, minimum=0)
LLM_TOOLS_MAX_BYTES = env_int("LLM_TOOLS_MAX_BYTES", 32_000, minimum=0)

# Outgoing escalation notifications (Slack-compatible webhook), optionally signed.
ESCALATION_WEBHOOK_URL = env_str("ESCALATION_WEBHOOK_URL")
ESCALATION_WEBHOOK_SIGN = env_bool("ESCALATION_WEBHOOK_SIGN", False)
ESCALATION_WEBHOOK_SECRET = env_str("ESCALATION_WEBHOOK_SECRET")
# Hosts (host or host:port) the webhook may reach on private addresses, e.g. an internal relay.
ESCALATION_WEBHOOK_ALLOWED_HOSTS = env_list("ESCALATION_WEBHOOK_ALLOWED_HOSTS")
ESCALATION_WEBHOOK_TIMEOUT_SECONDS = env_float("ESCALATION_WEBHOOK_TIMEOUT_SECONDS", 5.0)
ESCALATION_WEBHOOK_ATTEMPTS = env_int("ESCALATION_WEBHOOK_ATTEMPTS", 3, minimum=1)
# Waits between attempts: this, then twice this, ...
ESCALATION_WEBHOOK_BACKOFF_SECONDS = env_float("ESCALATION_WEBHOOK_BACKOFF_SECONDS", 2.0)
# Public origin of the admin for links in notifications (empty: links are relative paths).
ESCALATION_LINK_BASE_URL = env_str("ESCALATION_LINK_BASE_URL")
# The model's assessment in the handoff packet: past this it is "unavailable".
ESCALATION_ASSESSMENT_TIMEOUT_SECONDS = env_float("ESCALATION_ASSESSMENT_TIMEOUT_SECONDS", 3.0)

# Outbound HTTP (spec imports and tool calls) through the SSRF guard.
OUTBOUND_ALLOWED_HOSTS = env_list("OUTBOUND_ALLOWED_HOSTS")
IMPORT_MAX_BYTES = env_int("IMPORT_MAX_BYTES", 10 * 1024 * 1024, minimum=1)
IMPORT_TIMEOUT_SECONDS = env_float("IMPORT_TIMEOUT_SECONDS", 20.0)

# API (SPEC §11): requests per API key (or staff session), shared across processes via the cache.
API_RATE_LIMIT = env_str("API_RATE_LIMIT", "600/m")
# Requests that present no valid credentials, per client address (REMOTE_ADDR).
API_ANON_RATE_LIMIT = env_str("API_ANON_RATE_LIMIT", "60/m")
# How long an Idempotency-Key and its stored response are kept.
IDEMPOTENCY_TTL_HOURS = env_int("IDEMPOTENCY_TTL_HOURS", 24, minimum=1)
# The longest `wait` a program may ask of POST /conversations/{id}/messages.
API_MAX_WAIT_SECONDS = env_float("API_MAX_WAIT_SECONDS", 30.0)

# Approvals.
INTERRUPT_TTL_SECONDS = env_int("INTERRUPT_TTL_SECONDS", 30 * 60, minimum=1)

# Chat limits (SPEC §3).
CHAT_MAX_FRAME_BYTES = 32 * 1024
CHAT_MAX_MESSAGE_CHARS = 10_000
CHAT_RATE_LIMIT_MESSAGES = env_int("CHAT_RATE_LIMIT_MESSAGES", 10, minimum=1)
CHAT_RATE_LIMIT_WINDOW_SECONDS = env_int("CHAT_RATE_LIMIT_WINDOW_SECONDS", 10, minimum=1)

# Environment variables that must be set for the services to count as ready (health/ready).
READINESS_TIMEOUT_SECONDS = env_float("READINESS_TIMEOUT_SECONDS", 2.0)
# Rate-limited frames a socket may send before it is closed as flooding.
CHAT_FLOOD_STRIKES = env_int("CHAT_FLOOD_STRIKES", 20, minimum=1)
# Per client IP and per visitor (cookie), shared through the cache (conversations.socket_limits):
# handshakes per minute, sockets open at once, customer messages per minute. Past one, the
# handshake is closed with 4429 and a reason, or the message refused with retry_after.
CHAT_HANDSHAKES_PER_MINUTE = env_int("CHAT_HANDSHAKES_PER_MINUTE", 60, minimum=1)
CHAT_MAX_SOCKETS_PER_IP = env_int("CHAT_MAX_SOCKETS_PER_IP", 50, minimum=1)
CHAT_MAX_SOCKETS_PER_VISITOR = env_int("CHAT_MAX_SOCKETS_PER_VISITOR", 10, minimum=1)
CHAT_MESSAGES_PER_MINUTE_PER_IP = env_int("CHAT_MESSAGES_PER_MINUTE_PER_IP", 120, minimum=1)
CHAT_MESSAGES_PER_MINUTE_PER_VISITOR = env_int(
    "CHAT_MESSAGES_PER_MINUTE_PER_VISITOR", 30, minimum=1
)

# Tool calls to the business's API (SPEC §6): only these hosts (host or host:port). With
# UPSTREAM_ALLOW_PRIVATE off, a listed host must still resolve to a public address.
UPSTREAM_ALLOWED_HOSTS = env_list("UPSTREAM_ALLOWED_HOSTS")
UPSTREAM_ALLOW_PRIVATE = env_bool("UPSTREAM_ALLOW_PRIVATE", False)
TOOL_TIMEOUT_SECONDS = env_float("TOOL_TIMEOUT_SECONDS", 10.0)
# The demo seeds createRefund's approval rule with it (amount > this → staff, docs/approvals.md).
REFUND_STAFF_THRESHOLD = env_float("REFUND_STAFF_THRESHOLD", 50.0)
# Budgets per turn and conversation (SPEC §12).
TURN_MAX_TOOL_CALLS = env_int("TURN_MAX_TOOL_CALLS", 5, minimum=1)
TURN_MAX_MODEL_CALLS = env_int("TURN_MAX_MODEL_CALLS", 6, minimum=1)
TURN_TIMEOUT_SECONDS = env_float("TURN_TIMEOUT_SECONDS", 90.0)
CONVERSATION_MAX_TURNS = env_int("CONVERSATION_MAX_TURNS", 200, minimum=1)
# Prompt plus completion tokens over the whole conversation (conversations.budgets).
CONVERSATION_MAX_TOKENS = env_int("CONVERSATION_MAX_TOKENS", 500_000, minimum=1)
# PII (emails, phones, cards, IBANs) replaced by numbered placeholders before text reaches a
# model; the model's tool arguments get the customer's values back (config.pii.Placeholders).
PII_MASK_MODEL_INPUT = env_bool("PII_MASK_MODEL_INPUT", False)
# Days message text, tool arguments and results are kept as typed; after that the scheduler
# masks their PII (conversations.retention). 0 keeps them as typed.
MESSAGE_RETENTION_DAYS = env_int("MESSAGE_RETENTION_DAYS", 0, minimum=0)
# The longest a process keeps the enabled agents and tools without re-reading them; changes
# made through the app reach every process at once (config.versions), this bounds the rest.
AGENT_CACHE_SECONDS = env_float("AGENT_CACHE_SECONDS", 60.0)
# A conversation escalates (trigger tool_failure) after this many failed tool calls in it, 4xx
# refusals aside (SPEC §7 policy).
ESCALATE_AFTER_TOOL_FAILURES = env_int("ESCALATE_AFTER_TOOL_FAILURES", 3, minimum=1)
ESCALATE_AFTER_REJECTIONS = env_int("ESCALATE_AFTER_REJECTIONS", 3, minimum=1)
# The resolution lifecycle (docs/analytics.md): the scheduler closes conversations idle this
# long; an AI resolution that sees no reopen within ANALYTICS_DURABLE_DAYS is durable.
CONVERSATION_IDLE_CLOSE_MINUTES = env_int("CONVERSATION_IDLE_CLOSE_MINUTES", 30, minimum=1)
ANALYTICS_DURABLE_DAYS = env_int("ANALYTICS_DURABLE_DAYS", 7, minimum=1)

# The demo shop at /demo-shop/: mounted only when enabled (default on in local and test, off in
# production). Its upstream key (the demo's tools send it as X-Shop-Key) is published, so
# `check --deploy` refuses an enabled shop that still uses it (actiondesk.E020).
DEMO_SHOP_ENABLED = env_bool("DEMO_SHOP_ENABLED", False)
# Signed customer identities from the business's site (docs/identity.md): the shared HMAC
# secret (empty: refused) and the longest a token may live (exp - iat).
IDENTITY_SECRET = env_str("IDENTITY_SECRET")
IDENTITY_TOKEN_MAX_AGE_SECONDS = env_int("IDENTITY_TOKEN_MAX_AGE_SECONDS", 600, minimum=10)
# The demo shop's upstream key (the demo's tools send it as X-Shop-Key).
DEMO_SHOP_API_KEY = env_str("DEMO_SHOP_API_KEY", "demo-shop-key")
# Prometheus /metrics: with a token, scrapers send it as a bearer token; without, staff only.
METRICS_TOKEN = env_str("METRICS_TOKEN")
