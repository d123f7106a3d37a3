from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from access.demo import DEMO_PASSWORD, demo_accounts_ensure


class Command(BaseCommand):
    help = "Load the demo: staff accounts with a known password (development only)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--base-url",
            default="http://127.0.0.1:8000",
            help="Where the server being started answers (`make run` passes http://HOST:PORT); "
            "the demo shop's tool calls go there.",
        )
        parser.add_argument(
            "--force", action="store_true", help="Run even with DEBUG off (never in production)."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if not settings.DEBUG and not options["force"]:
            raise CommandError("setup_demo creates accounts with a known password; DEBUG is off.")
        if not settings.DEMO_SHOP_ENABLED:
            raise CommandError(
                "The demo's tools call the demo shop, which is not mounted: set "
                "DEMO_SHOP_ENABLED=true."
            )
        from django.contrib.auth import get_user_model

        from demo_shop.install import demo_install

        base = demo_base_url(options["base_url"])
        accounts = demo_accounts_ensure()
        reviewer = get_user_model().objects.get(username="supervisor")
        installed = demo_install(base_url=base, reviewer=reviewer)
        self.stdout.write("")
        self.stdout.write(self.style.SUCCESS("Actiondesk demo is ready."))
        self.stdout.write(
            f"  Demo shop: {installed.tools} operations enabled as tools for "
            f"{installed.agents} agents ({base}/demo-shop/api/docs)"
        )
        self.stdout.write(f"  Chat:    {base}/   (try: where is my order 1042?)")
        self.stdout.write(f"  Admin:   {base}/admin/")
        self.stdout.write(f"  API:     {base}/api/v1/health  (docs: {base}/api/v1/docs, staff)")
        for account in accounts:
            note = f"password {DEMO_PASSWORD}" if account.created else "existing account"
            self.stdout.write(f"  Login:   {account.username} / {note}  ({account.role})")
        self.stdout.write("")


def demo_base_url(raw: str) -> str:
    """``raw`` without a trailing slash, once it is an origin the demo's tool calls may reach:
    the demo shop is served by this server, and the upstream allow-list must let its address
    through (in development it follows ``HOST`` and ``PORT``, config/settings/local.py)."""
    base = raw.strip().rstrip("/")
    try:
        parts = urlsplit(base)
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError as exc:
        raise CommandError(f"--base-url {raw!r} is not a URL: {exc}.") from None
    if parts.scheme not in {"http", "https"} or not parts.hostname or parts.path:
        raise CommandError(
            f"--base-url {raw!r} must be the server's origin, like http://127.0.0.1:8000 "
            "(http or https, a host, optionally a port, no path)."
        )
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    allowed = {h.lower() for h in settings.UPSTREAM_ALLOWED_HOSTS}
    if not {host, f"{host}:{port}"} & allowed:
        raise CommandError(
            f"The demo's tool calls to {host}:{port} would be refused: UPSTREAM_ALLOWED_HOSTS is "
            f"{sorted(allowed) or 'empty'}. Start with the same HOST and PORT "
            f"(PORT={port} make run), or add {host}:{port} to UPSTREAM_ALLOWED_HOSTS."
        )
    return base
