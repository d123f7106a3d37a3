from __future__ import annotations

from django.apps import AppConfig


class EscalationsConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "escalations"

    def ready(self) -> None:
        from conversations.handoff import handoff_receiver_register
        from escalations import signals  # noqa: F401  (connects the session-ending receivers)
        from escalations.services import escalation_open

        # Hand-offs from the chat open an escalation (queue, packet, notifications).
        handoff_receiver_register(escalation_open)
