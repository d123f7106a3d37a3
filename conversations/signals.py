"""Cache invalidation only (no business logic here): the runtime keeps the enabled agents and
their tools per process (``conversations.turns.setup.agents_loaded``) until one of them changes."""

from __future__ import annotations

from typing import Any

from django.db.models.signals import m2m_changed, post_delete, post_save
from django.dispatch import receiver

from config.versions import AGENT_TOOLS, bump
from conversations.models import Agent
from openapi_import.models import ApiSpec, Operation


@receiver(post_save, sender=Agent)
@receiver(post_delete, sender=Agent)
@receiver(post_save, sender=Operation)
@receiver(post_delete, sender=Operation)
@receiver(post_save, sender=ApiSpec)
@receiver(post_delete, sender=ApiSpec)
@receiver(m2m_changed, sender=Agent.operations.through)
def agent_tools_changed(**kwargs: Any) -> None:
    bump(AGENT_TOOLS)
