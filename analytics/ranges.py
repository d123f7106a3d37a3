"""The reporting range of the dashboard and the API: a preset (24h, 7d, 30d) ending now, or a
custom ``from``/``to`` read in a time zone. Pure logic, no ORM."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from config.errors import ApplicationError, ErrorCode

PRESETS: dict[str, timedelta] = {
    "24h": timedelta(hours=24),
    "7d": timedelta(days=7),
    "30d": timedelta(days=30),
}
LONGEST = timedelta(days=366)


@dataclass(frozen=True)
class ReportRange:
    start: datetime
    end: datetime
    tz: tzinfo
    preset: str  # "" for a custom range

    @property
    def daily(self) -> bool:
        """Charts count per day beyond two days, per hour below."""
        return self.end - self.start > timedelta(hours=48)

    @property
    def previous(self) -> ReportRange:
        """The period of the same length just before, for the change shown on each card (a
        preset's is exactly its length, so it starts on the hour too)."""
        length = PRESETS.get(self.preset) or self.end - self.start
        return ReportRange(self.start - length, self.start, self.tz, self.preset)


def _zone(name: str) -> tzinfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ApplicationError(
            ErrorCode.VALIDATION_ERROR, f"Unknown time zone {name!r}.", details={"tz": name}
        ) from exc


def _moment(value: str, tz: tzinfo, *, end: bool) -> datetime:
    """A date means its midnight in ``tz`` (the day after for ``to``: the day is included); a
    date-time without an offset is read in ``tz``."""
    try:
        if len(value) == 10:
            day = date.fromisoformat(value)
            if end:
                day += timedelta(days=1)
            return datetime.combine(day, time(), tzinfo=tz)
        moment = datetime.fromisoformat(value)
    except ValueError as exc:
        raise ApplicationError(
            ErrorCode.VALIDATION_ERROR,
            f"{value!r} is not a date (YYYY-MM-DD) or an ISO 8601 date-time.",
            details={"from" if not end else "to": value},
        ) from exc
    return moment if moment.tzinfo else moment.replace(tzinfo=tz)


def range_parse(
    *, preset: str = "", start: str = "", end: str = "", tz: str = "UTC", now: datetime
) -> ReportRange:
    zone = _zone(tz or "UTC")
    if start or end:
        if not (start and end):
            raise ApplicationError(
                ErrorCode.VALIDATION_ERROR, "A custom range needs both from and to."
            )
        # In UTC: arithmetic on datetimes sharing a zone ignores a DST change between them.
        begin = _moment(start, zone, end=False).astimezone(UTC)
        finish = _moment(end, zone, end=True).astimezone(UTC)
        if finish <= begin:
            raise ApplicationError(ErrorCode.VALIDATION_ERROR, "from must be before to.")
        if finish - begin > LONGEST:
            raise ApplicationError(ErrorCode.VALIDATION_ERROR, "A range may span at most 366 days.")
        return ReportRange(begin, finish, zone, "")
    preset = preset or "7d"
    if preset not in PRESETS:
        raise ApplicationError(
            ErrorCode.VALIDATION_ERROR,
            f"range must be one of {', '.join(PRESETS)} (or give from and to).",
            details={"range": preset},
        )
    # A preset starts on the hour ("the last 7 days" from 14:00, up to now): whole hours are
    # read from the rollups, so only the current hour is counted from raw events.
    begin = (now - PRESETS[preset]).astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    return ReportRange(begin, now, zone, preset)
