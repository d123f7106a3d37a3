"""Periodic jobs (SPEC §13): one scheduler process (``manage.py run_scheduler``) runs every job
at its interval; the web processes run none, so a job never runs twice because two web
processes each kept a timer.

A job is a plain synchronous function in an app's ``jobs`` module, registered with
``@periodic``; the scheduler imports every installed app's ``jobs`` module at start. The loop
is the standard library's ``sched`` (no cron daemon or broker needed in the image): a job that
raises is logged and runs again at its next interval, and a slow job delays only itself.
"""

from __future__ import annotations

import contextlib
import sched
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

import structlog
from django.db import connections
from django.utils.module_loading import autodiscover_modules

logger = structlog.get_logger(__name__)

JobFunction = Callable[[], object]


@dataclass(frozen=True)
class Job:
    name: str
    every_seconds: float
    run: JobFunction


_jobs: dict[str, Job] = {}


def periodic(*, name: str, every_seconds: float) -> Callable[[JobFunction], JobFunction]:
    """Registers the decorated function as the job ``name``, run every ``every_seconds``."""
    if every_seconds <= 0:
        raise ValueError(f"Job {name!r}: every_seconds must be positive, got {every_seconds}.")

    def register(func: JobFunction) -> JobFunction:
        existing = _jobs.get(name)
        if existing is not None and existing.run is not func:
            raise ValueError(f"Two periodic jobs are named {name!r}.")
        _jobs[name] = Job(name=name, every_seconds=every_seconds, run=func)
        return func

    return register


def jobs_discover() -> list[Job]:
    """Every registered job, after importing each installed app's ``jobs`` module."""
    autodiscover_modules("jobs")
    return sorted(_jobs.values(), key=lambda job: job.name)


def _close_stale_connections() -> None:
    """``close_old_connections`` between jobs (a long-lived process must not keep a broken or
    expired connection), except inside a transaction, which only its owner may end."""
    for conn in connections.all(initialized_only=True):
        if not conn.in_atomic_block:
            conn.close_if_unusable_or_obsolete()


def job_run(job: Job) -> bool:
    """Runs one job once; True when it finished without raising. Never raises itself."""
    _close_stale_connections()
    started = time.monotonic()
    try:
        result = job.run()
    except Exception:
        logger.exception("job_failed", job=job.name)
        return False
    finally:
        _close_stale_connections()
    logger.info(
        "job_finished",
        job=job.name,
        duration_ms=round((time.monotonic() - started) * 1000, 1),
        result=result if isinstance(result, int | str | dict) else None,
    )
    return True


class Scheduler:
    """Runs jobs at their intervals until stopped (SIGTERM/SIGINT, or ``stop()``)."""

    def __init__(self, jobs: list[Job], *, heartbeat: Path | None = None) -> None:
        self.jobs = jobs
        self.heartbeat = heartbeat
        self._stopped = threading.Event()
        # sched sleeps through this event's wait, so stop() ends a sleep at once.
        self._queue = sched.scheduler(time.monotonic, self._sleep)

    def _sleep(self, seconds: float) -> None:
        self._stopped.wait(seconds)

    def stop(self, signum: int | None = None, frame: FrameType | None = None) -> None:
        self._stopped.set()
        for event in list(self._queue.queue):
            with contextlib.suppress(ValueError):  # it ran meanwhile
                self._queue.cancel(event)

    def _beat(self) -> None:
        if self.heartbeat is not None:
            self.heartbeat.write_text(f"{time.time():.0f}\n")

    def _tick(self, job: Job) -> None:
        if self._stopped.is_set():
            return
        job_run(job)
        self._beat()
        if not self._stopped.is_set():
            self._queue.enter(job.every_seconds, 0, self._tick, (job,))

    def run(self) -> None:
        logger.info("scheduler_started", jobs={job.name: job.every_seconds for job in self.jobs})
        self._beat()
        for job in self.jobs:
            self._queue.enter(0, 0, self._tick, (job,))
        self._queue.run()
        logger.info("scheduler_stopped")

    def install_signal_handlers(self) -> None:
        signal.signal(signal.SIGTERM, self.stop)
        signal.signal(signal.SIGINT, self.stop)


def heartbeat_age(path: Path) -> float | None:
    """Seconds since the scheduler last wrote ``path``; None when it never did."""
    try:
        written = float(path.read_text().strip())
    except (OSError, ValueError):
        return None
    return max(0.0, time.time() - written)
