from __future__ import annotations

from django.apps import AppConfig


class AccessConfig(AppConfig):
    """API keys, staff roles and the version stamps of `config.versions` without Redis: the
    cross-cutting concerns no listed app owns."""

    default_auto_field = "django.db.models.BigAutoField"
    name = "access"
