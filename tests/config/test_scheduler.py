"""The scheduler process (issue 13 item 3): periodic jobs really run, at their intervals, from
one process; a failing job is logged and runs again; the healthcheck reads its heartbeat."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import structlog
from django.core.management import call_command
from django.core.management.base import CommandError
from structlog.testing import capture_logs

from config import scheduler
from config.scheduler import Job, Scheduler, heartbeat_age, job_run, jobs_discover, periodic


@pytest.fixture
def registry(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Job]]:
    jobs: dict[str, Job] = {}
    monkeypatch.setattr(scheduler, "_jobs", jobs)
    monkeypatch.setattr(scheduler, "logger", structlog.get_logger("config.scheduler"))
    yield jobs


def test_the_project_jobs_are_discovered() -> None:
    names = {job.name for job in jobs_discover()}
    assert {"pending_work", "interrupts_expire"} <= names


def test_periodic_registers_and_refuses_a_second_job_of_the_same_name(
    registry: dict[str, Job],
) -> None:
    @periodic(name="tidy", every_seconds=5)
    def tidy() -> None:
        return None

    assert registry["tidy"] == Job(name="tidy", every_seconds=5, run=tidy)
    with pytest.raises(ValueError, match="Two periodic jobs are named 'tidy'"):
        periodic(name="tidy", every_seconds=5)(lambda: None)
    with pytest.raises(ValueError, match="must be positive"):
        periodic(name="never", every_seconds=0)


def test_a_failing_job_is_logged_and_reported_not_raised(
    db: None, registry: dict[str, Job]
) -> None:
    def broken() -> None:
        raise RuntimeError("upstream down")

    with capture_logs() as logs:
        assert job_run(Job(name="broken", every_seconds=1, run=broken)) is False
    failed = [line for line in logs if line["event"] == "job_failed"]
    assert failed and failed[0]["job"] == "broken" and failed[0]["log_level"] == "error"


def test_jobs_run_at_their_intervals_until_stopped(tmp_path: Path) -> None:
    runs: dict[str, list[float]] = {"fast": [], "slow": [], "broken": []}

    def record(name: str) -> None:
        runs[name].append(time.monotonic())
        if name == "broken":
            raise RuntimeError("always")

    jobs = [
        Job(name="fast", every_seconds=0.05, run=lambda: record("fast")),
        Job(name="slow", every_seconds=600, run=lambda: record("slow")),
        Job(name="broken", every_seconds=0.05, run=lambda: record("broken")),
    ]
    beat = tmp_path / "beat"
    loop = Scheduler(jobs, heartbeat=beat)
    worker = threading.Thread(target=loop.run)
    worker.start()
    deadline = time.monotonic() + 20  # generous: a loaded machine only slows the loop
    while time.monotonic() < deadline and min(len(runs["fast"]), len(runs["broken"])) < 4:
        time.sleep(0.02)
    loop.stop()
    worker.join(timeout=2)
    assert not worker.is_alive(), "stop() ends the scheduler's sleep at once"
    assert len(runs["fast"]) >= 4
    assert len(runs["slow"]) == 1, "each job waits its own interval"
    assert len(runs["broken"]) >= 4, "a failing job runs again at its next interval"
    gaps = [b - a for a, b in zip(runs["fast"], runs["fast"][1:], strict=False)]
    assert min(gaps) >= 0.04
    age = heartbeat_age(beat)
    assert age is not None and age < 5


def test_run_scheduler_once_runs_every_job(db: None) -> None:
    call_command("run_scheduler", "--once")


def test_run_scheduler_once_fails_naming_the_failed_job(db: None, registry: dict[str, Job]) -> None:
    periodic(name="ok", every_seconds=1)(lambda: 1)

    @periodic(name="bad", every_seconds=1)
    def bad() -> None:
        raise RuntimeError("no")

    with pytest.raises(CommandError, match=r"Failed job\(s\): bad"):
        call_command("run_scheduler", "--once")


def test_healthcheck_passes_with_a_fresh_heartbeat_and_fails_on_a_stale_or_missing_one(
    db: None, tmp_path: Path
) -> None:
    beat = tmp_path / "beat"
    with pytest.raises(CommandError, match="no heartbeat at"):
        call_command("healthcheck", "--heartbeat", str(beat))
    beat.write_text(f"{time.time():.0f}\n")
    call_command("healthcheck", "--heartbeat", str(beat))
    beat.write_text(f"{time.time() - 600:.0f}\n")
    with pytest.raises(CommandError, match=r"heartbeat 6\d\d s old"):
        call_command("healthcheck", "--heartbeat", str(beat), "--max-age", "180")
    beat.write_text("garbage")
    assert heartbeat_age(beat) is None


def test_healthcheck_fails_when_the_database_is_down(
    db: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    def down() -> None:
        raise OSError("connection refused")

    monkeypatch.setattr("config.health.check_database", down)
    with pytest.raises(CommandError, match="Unhealthy: database failed: OSError"):
        call_command("healthcheck")
