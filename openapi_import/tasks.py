"""Background jobs (django.tasks): the immediate backend runs them in-process in development
and tests; the database backend queues them for ``manage.py db_worker`` in production."""

from __future__ import annotations

from django.tasks import task

from openapi_import.services import import_job_run


@task()
def run_import(job_id: int) -> str:
    return str(import_job_run(job_id=job_id).status)
