"""The test suite. Reads the same environment as production (``DATABASE_URL`` and ``REDIS_URL`` in
CI), with fast password hashing, immediate jobs, and a Redis prefix per pytest-xdist worker so that
parallel workers sharing one Redis never see each other's groups or keys."""

from __future__ import annotations

import os
import re

from .base import *  # noqa: F403
from .base import (
    CACHES,
    CHANNEL_LAYERS,
    DATABASES,
    REDIS_PREFIX,
    REDIS_URL,
    build_logging,
    env_bool,
)

DEBUG = False
SECRET_KEY = "test-secret-key-not-for-production-" + "x" * 32
IDENTITY_SECRET = "test-identity-secret-" + "y" * 32
ALLOWED_HOSTS = ["testserver", "localhost", "127.0.0.1"]
DEMO_SHOP_ENABLED = env_bool("DEMO_SHOP_ENABLED", True)
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
TASKS = {"default": {"BACKEND": "django.tasks.backends.immediate.ImmediateBackend"}}
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.InMemoryStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
LOGGING = build_logging(log_format="console", level="WARNING")

_worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
if REDIS_URL:
    # A Redis database per worker as well as a prefix: cache.clear() is FLUSHDB, which would
    # otherwise wipe the other workers' channel-layer groups and locks mid-test.
    _index = int(_worker.removeprefix("gw")) + 1 if _worker.startswith("gw") else 0
    REDIS_URL = re.sub(r"(redis://[^/]+)(/\d*)?$", rf"\g<1>/{_index % 16}", REDIS_URL)
    REDIS_PREFIX = f"{REDIS_PREFIX}-test-{_worker}"
    CHANNEL_LAYERS["default"]["CONFIG"]["hosts"][0]["address"] = REDIS_URL
    CHANNEL_LAYERS["default"]["CONFIG"]["prefix"] = f"{REDIS_PREFIX}:asgi"
    CACHES["default"]["LOCATION"] = REDIS_URL
    CACHES["default"]["KEY_PREFIX"] = REDIS_PREFIX
WHITENOISE_AUTOREFRESH = True

# Transactional tests reconnect often; keep a few pooled connections warm.
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    DATABASES["default"]["OPTIONS"]["pool"]["min_size"] = 4
WHITENOISE_USE_FINDERS = True
