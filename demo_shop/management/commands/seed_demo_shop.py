from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from demo_shop.seed import shop_seed


class Command(BaseCommand):
    help = "Load the demo shop's customers, orders and discount codes (adds only what is missing)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--reset",
            action="store_true",
            help="Delete every shop record first: undo the demo's cancellations, discounts and "
            "refunds.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        result = shop_seed(reset=options["reset"])
        action = "Reset the demo shop" if result.reset else "Seeded the demo shop"
        self.stdout.write(self.style.SUCCESS(f"{action}: {result.created} record(s) created."))
        self.stdout.write("  API:  /demo-shop/api/  (header X-Shop-Key; docs: /demo-shop/api/docs)")
