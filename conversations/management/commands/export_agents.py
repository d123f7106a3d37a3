from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from conversations.agents import agents_export


class Command(BaseCommand):
    help = "Print the configured agents as YAML (the format load_agents reads)."

    def handle(self, *args: Any, **options: Any) -> None:
        self.stdout.write(agents_export())
