from __future__ import annotations

from argparse import ArgumentParser
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from config.scheduler import Scheduler, job_run, jobs_discover


class Command(BaseCommand):
    help = (
        "Run the periodic jobs (pending work, approval expiry, and every app's jobs module) at "
        "their intervals until stopped. Run exactly one scheduler per deployment."
    )

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("--once", action="store_true", help="run every job once and exit")
        parser.add_argument("--list", action="store_true", help="list the jobs and exit")
        parser.add_argument(
            "--heartbeat",
            type=Path,
            help="file the scheduler touches after each job (for `manage.py healthcheck`)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        jobs = jobs_discover()
        if options["list"]:
            for job in jobs:
                self.stdout.write(f"{job.name}\tevery {job.every_seconds:g} s")
            return
        if options["once"]:
            failed = [job.name for job in jobs if not job_run(job)]
            if failed:
                raise CommandError(f"Failed job(s): {', '.join(failed)} (see the log).")
            self.stdout.write(f"Ran {len(jobs)} job(s).")
            return
        scheduler = Scheduler(jobs, heartbeat=options["heartbeat"])
        scheduler.install_signal_handlers()
        scheduler.run()
