from __future__ import annotations

from argparse import ArgumentParser
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from config.health import readiness
from config.scheduler import heartbeat_age


class Command(BaseCommand):
    help = (
        "Exit 0 when this process's dependencies answer (database, Redis when configured) and, "
        "with --heartbeat, the scheduler wrote its heartbeat recently; else exit 1 naming why. "
        "For container healthchecks of processes that serve no HTTP (worker, scheduler)."
    )

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("--heartbeat", type=Path, help="the scheduler's heartbeat file")
        parser.add_argument(
            "--max-age", type=float, default=180.0, help="seconds a heartbeat stays fresh"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        problems = [f"{name} {state}" for name, state in readiness().items() if state != "ok"]
        if options["heartbeat"] is not None:
            age = heartbeat_age(options["heartbeat"])
            if age is None:
                problems.append(f"no heartbeat at {options['heartbeat']}")
            elif age > options["max_age"]:
                problems.append(f"heartbeat {age:.0f} s old (limit {options['max_age']:g} s)")
        if problems:
            raise CommandError("Unhealthy: " + "; ".join(problems) + ".")
        self.stdout.write("healthy")
