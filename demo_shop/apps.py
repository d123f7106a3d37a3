from __future__ import annotations

from django.apps import AppConfig


class DemoShopConfig(AppConfig):
    """A small, real e-commerce API served by the project: the upstream the demo's agents call."""

    default_auto_field = "django.db.models.BigAutoField"
    name = "demo_shop"
    verbose_name = "Demo shop"
