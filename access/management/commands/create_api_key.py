from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from access.models import ApiKey
from access.services import api_key_issue


class Command(BaseCommand):
    help = "Issue an API key for a user; the key is printed once and cannot be shown again."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username")
        parser.add_argument("--name", default="cli")
        parser.add_argument(
            "--scope",
            action="append",
            dest="scopes",
            choices=ApiKey.Scope.values,
            help="Repeat for several scopes; default: all.",
        )
        parser.add_argument("--days", type=int, default=None, help="Expire after N days.")
        parser.add_argument(
            "--integration",
            default="",
            help="The program the key belongs to: its keys share the conversations they open.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        user_model = get_user_model()
        try:
            owner = user_model.objects.get(username=options["username"])
        except user_model.DoesNotExist as exc:
            raise CommandError(f"No user named {options['username']!r}.") from exc
        days = options["days"]
        if days is not None and days < 1:
            raise CommandError("--days must be at least 1.")
        issued = api_key_issue(
            owner=owner,
            name=options["name"],
            scopes=options["scopes"] or list(ApiKey.Scope.values),
            expires_at=timezone.now() + timedelta(days=days) if days else None,
            integration=options["integration"],
        )
        self.stdout.write(issued.plaintext)
