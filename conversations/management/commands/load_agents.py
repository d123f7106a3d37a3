from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from config.errors import ApplicationError
from conversations.agents import TEMPLATES, agents_load, template_text


class Command(BaseCommand):
    help = f"Load agents from a YAML file or a template ({', '.join(TEMPLATES)})."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("source", help="a YAML file, or a template name")

    def handle(self, *args: Any, **options: Any) -> None:
        source: str = options["source"]
        path = Path(source)
        try:
            text = path.read_text() if path.is_file() else template_text(source)
            result = agents_load(text=text)
        except ApplicationError as exc:
            raise CommandError(exc.message) from exc
        self.stdout.write(
            self.style.SUCCESS(
                f"Agents: {len(result.created)} created, {len(result.updated)} updated."
            )
        )
        for slug, missing in result.missing_operations.items():
            self.stdout.write(f"  {slug}: not imported yet: {', '.join(missing)}")
