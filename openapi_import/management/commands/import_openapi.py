from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction

from config.errors import ApplicationError
from openapi_import.models import ApiSpec, ImportJob
from openapi_import.parsing import SpecError
from openapi_import.parsing.bundle import directory_zip
from openapi_import.selectors import import_job_get
from openapi_import.services import import_job_create, import_job_run, operations_bulk_update


class Command(BaseCommand):
    help = "Import an OpenAPI/Swagger spec from a URL or a file, in this process."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "source",
            help="http(s) URL, path of a JSON/YAML file or a .zip, or a directory of a "
            "multi-file spec (relative $refs between its files)",
        )
        parser.add_argument("--spec", type=int, help="Re-import into the spec with this id.")
        parser.add_argument(
            "--enable",
            action="store_true",
            help="Mark every operation reviewed and enabled (demos and trusted specs only).",
        )
        parser.add_argument("--json", action="store_true", help="Print the report as JSON.")

    def handle(self, *args: Any, **options: Any) -> None:
        source: str = options["source"]
        target = None
        if options["spec"] is not None:
            target = ApiSpec.objects.filter(pk=options["spec"]).first()
            if target is None:
                raise CommandError(f"No spec with id {options['spec']}.")
        try:
            with transaction.atomic():
                job = self._create(source, target)
        except ApplicationError as exc:
            raise CommandError(exc.message) from exc
        # Run here rather than waiting for a worker: a command's caller wants the outcome.
        import_job_run(job_id=job.pk)
        job = import_job_get(job_id=job.pk)
        if job.status != ImportJob.Status.DONE:
            raise CommandError(f"Import #{job.pk} failed ({job.error_code}): {job.error_message}")
        assert job.spec is not None
        if options["enable"]:
            from django.contrib.auth import get_user_model

            operations = job.spec.operations.filter(removed_at__isnull=True)
            user = get_user_model().objects.filter(is_superuser=True).order_by("pk").first()
            if user is None:
                raise CommandError("--enable needs a superuser to record as the reviewer.")
            operations_bulk_update(operations=operations, action="review", user=user)
            operations_bulk_update(operations=operations, action="enable", user=user)
        if options["json"]:
            self.stdout.write(json.dumps(job.report, indent=2))
            return
        report = job.report
        diff = report.get("diff", {})
        self.stdout.write(
            self.style.SUCCESS(
                f"Imported {job.spec} (spec #{job.spec.pk}): {report.get('operations')} "
                f"operations; {len(diff.get('added', []))} added, "
                f"{len(diff.get('changed', []))} changed, {len(diff.get('removed', []))} removed "
                f"in {job.duration_ms} ms."
            )
        )
        for key in ("unresolved_refs", "unsupported", "warnings"):
            if report.get(key):
                self.stdout.write(f"  {key.replace('_', ' ')}: {len(report[key])}")

    def _create(self, source: str, target: ApiSpec | None) -> ImportJob:
        if source.startswith(("http://", "https://")):
            return import_job_create(source=ImportJob.Source.URL, url=source, target_spec=target)
        path = Path(source)
        if path.is_dir():
            try:
                content = directory_zip(path, max_bytes=settings.IMPORT_MAX_BYTES)
            except SpecError as exc:
                raise CommandError(f"{source}: {exc.message}") from exc
            return import_job_create(
                source=ImportJob.Source.UPLOAD,
                content=content,
                filename=f"{path.resolve().name}.zip",
                target_spec=target,
            )
        if not path.is_file():
            raise CommandError(
                f"{source} is neither an http(s) URL nor a readable file or directory."
            )
        if path.stat().st_size > settings.IMPORT_MAX_BYTES:
            raise CommandError(
                f"{source} is {path.stat().st_size:,} bytes; the limit is "
                f"{settings.IMPORT_MAX_BYTES:,} (IMPORT_MAX_BYTES)."
            )
        return import_job_create(
            source=ImportJob.Source.UPLOAD,
            content=path.read_bytes(),
            filename=path.name,
            target_spec=target,
        )
