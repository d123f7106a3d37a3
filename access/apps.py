from __future__ import annotations

from django.apps import AppConfig


class AccessConfig(AppConfig):
    """API keys and staff roles: the access concerns no listed app owns."""

    default_auto_field = "django.db.models.BigAutoField"
    name = "access"
