"""Periodic analytics work, run by ``manage.py run_scheduler`` (config/scheduler.py)."""

from __future__ import annotations

from config.scheduler import periodic


@periodic(name="analytics_rollups_refresh", every_seconds=60)
def analytics_rollups_refresh() -> int:
    """Fold the events of the last hours into the hourly rollups the dashboard reads."""
    from analytics.rollups import rollups_refresh

    return rollups_refresh()
