"""Test settings with ``bench/api_urls.py`` as the URLconf (for ``bench/api.py``'s server)."""

from config.settings.test import *  # noqa: F403

ROOT_URLCONF = "bench.api_urls"
