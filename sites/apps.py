from __future__ import annotations

from django.apps import AppConfig


class SitesConfig(AppConfig):
    """The businesses' websites that embed the chat widget (SPEC §3, docs/widget.md): their
    origins, look, agents and identity secret."""

    default_auto_field = "django.db.models.BigAutoField"
    name = "sites"
    label = "sites"
