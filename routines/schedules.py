"""Schedules of routines: parsing and validating them, and computing when they run.

Three kinds (django-celery-beat's crontab, interval and clocked schedules hold them):

- ``cron``: 5 fields (minute hour day-of-month month day-of-week) with ranges, steps, lists,
  month and weekday names, or ``@hourly @daily @midnight @weekly @monthly @yearly
  @annually``. Fields are expanded by Celery's ``crontab_parser``. Weekday 0 and 7 are
  Sunday; when both day fields are restricted a day matching either runs (as cron does).
  Times are wall-clock times in the routine's IANA zone: a time that does not exist (the
  hour skipped when clocks go forward) runs once, shifted by the gap (02:30 → 03:30); a
  time that exists twice (clocks go back) runs once, at its first occurrence.
- ``every``: a fixed interval from an anchor time (``anchor + k * every``).
- ``at``: one time (ISO 8601; without an offset it is read in the routine's zone).

Every parse error is a :class:`ScheduleError` naming the field and the problem.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from celery.schedules import crontab_parser

MACROS = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
FIELD_NAMES = ("minute", "hour", "day-of-month", "month", "day-of-week")
MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
WEEKDAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")
#: (parser max, parser min, names allowed) per field.
_PARSERS = ((60, 0, ()), (24, 0, ()), (31, 1, ()), (12, 1, MONTHS), (8, 0, WEEKDAYS))
_TOKEN = re.compile(r"^[0-9a-z*,/-]+$")
#: How far :func:`CronSpec.next_after` / ``latest_at_or_before`` look (Feb 29 needs 8 years).
SEARCH_DAYS = 366 * 8 + 2
#: Shortest interval (seconds) and the units ``every`` understands.
MIN_EVERY_SECONDS = 1
_UNITS = {"s": 1, "sec": 1, "second": 1, "m": 60, "min": 60, "minute": 60}
_UNITS |= {"h": 3600, "hour": 3600, "d": 86400, "day": 86400, "w": 604800, "week": 604800}


class ScheduleError(ValueError):
    """A schedule that cannot be used: ``field`` (cron, every, at, timezone) and why."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


def parse_timezone(name: str | None) -> ZoneInfo:
    """The IANA zone called ``name`` (``ScheduleError`` on ``timezone`` if unknown)."""
    if not name or not isinstance(name, str):
        raise ScheduleError("timezone", "a time zone is required (e.g. Europe/Berlin, UTC)")
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ScheduleError("timezone", f"unknown time zone {name!r}") from None


@dataclass(frozen=True)
class CronSpec:
    """A parsed 5-field CRON expression: the allowed values of each field."""

    expression: str
    minutes: tuple[int, ...]
    hours: tuple[int, ...]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]  # 0 = Sunday
    any_day: bool
    any_weekday: bool

    def fields(self) -> tuple[str, str, str, str, str]:
        """The five fields as plain numbers (``*`` where every value is allowed), the form
        django-celery-beat's CrontabSchedule stores."""
        full = (range(60), range(24), range(1, 32), range(1, 13), range(7))
        values = (self.minutes, self.hours, self.days, self.months, self.weekdays)
        out = []
        for allowed, every in zip(values, full, strict=True):
            out.append("*" if set(allowed) == set(every) else ",".join(map(str, sorted(allowed))))
        return tuple(out)  # type: ignore[return-value]

    def day_matches(self, day: date) -> bool:
        if day.month not in self.months:
            return False
        dom = day.day in self.days
        dow = (day.weekday() + 1) % 7 in self.weekdays
        if self.any_day or self.any_weekday:
            return dom and dow
        return dom or dow  # both restricted: either (cron's rule)

    def times_on(self, day: date, tz: ZoneInfo) -> tuple[datetime, ...]:
        """This day's run times (UTC, ascending, no duplicates) in zone ``tz``."""
        if not self.day_matches(day):
            return ()
        return _times_on(self, day, tz)

    def next_after(self, moment: datetime, tz: ZoneInfo) -> datetime | None:
        """The first run time strictly after ``moment`` (None: never again)."""
        day = moment.astimezone(tz).date() - timedelta(days=1)
        for offset in range(SEARCH_DAYS):
            for when in self.times_on(day + timedelta(days=offset), tz):
                if when > moment:
                    return when
        return None

    def latest_at_or_before(self, moment: datetime, tz: ZoneInfo) -> datetime | None:
        """The last run time at or before ``moment`` (None: none in the search window)."""
        day = moment.astimezone(tz).date() + timedelta(days=1)
        for offset in range(SEARCH_DAYS):
            for when in reversed(self.times_on(day - timedelta(days=offset), tz)):
                if when <= moment:
                    return when
        return None


@lru_cache(maxsize=64)
def _times_on(spec: CronSpec, day: date, tz: ZoneInfo) -> tuple[datetime, ...]:
    """:meth:`CronSpec.times_on` for a matching day, remembered: beat asks it of every due
    routine (often the same expression) several times a tick, and a per-minute expression
    has 1,440 times a day."""
    first = datetime.combine(day, time(0, 0), tzinfo=tz).utcoffset()
    last = datetime.combine(day, time(23, 59), tzinfo=tz).utcoffset()
    walls = (datetime.combine(day, time(h, m)) for h in spec.hours for m in spec.minutes)
    if first == last:  # no clock change this day: one offset, already in order
        return tuple((wall - first).replace(tzinfo=UTC) for wall in walls)
    return tuple(sorted({_resolve(wall, tz) for wall in walls}))


def _resolve(wall: datetime, tz: ZoneInfo) -> datetime:
    """A wall-clock time in ``tz`` as UTC: the first of two (clocks back); a time in a gap
    (clocks forward) with the offset before the gap, i.e. shifted by the gap's length."""
    return wall.replace(tzinfo=tz, fold=0).astimezone(UTC)


def _parse_field(index: int, spec: str) -> set[int]:
    name = FIELD_NAMES[index]
    max_, min_, names = _PARSERS[index]
    if not _TOKEN.match(spec):
        raise ScheduleError("cron", f"{name} {spec!r}: only digits, names, '*', ',', '-', '/'")
    for word in re.findall(r"[a-z]+", spec):
        if word not in names:
            allowed = f"one of {', '.join(names)}" if names else "a number"
            raise ScheduleError("cron", f"{name} {spec!r}: {word!r} is not {allowed}")
    try:
        values = crontab_parser(max_, min_).parse(spec)
    except (ValueError, crontab_parser.ParseException) as exc:
        raise ScheduleError("cron", f"{name} {spec!r}: {str(exc).rstrip('.')}") from None
    if not values:
        raise ScheduleError("cron", f"{name} {spec!r}: matches nothing")
    return {v % 7 for v in values} if index == 4 else values


def parse_cron(expression: str) -> CronSpec:
    """Parse a CRON expression (``ScheduleError`` on ``cron`` naming the problem)."""
    if not isinstance(expression, str) or not expression.strip():
        raise ScheduleError("cron", "a CRON expression is required, e.g. '0 9 * * 1-5'")
    return _parse_cron(expression)


@lru_cache(maxsize=1024)
def _parse_cron(expression: str) -> CronSpec:
    """``parse_cron`` of a non-empty string, remembered (a spec is immutable; beat and every
    fire read a routine's schedule again, and routines share a few expressions; an error
    is raised each time, not remembered)."""
    text = " ".join(expression.strip().lower().split())
    if text.startswith("@"):
        if text not in MACROS:
            raise ScheduleError(
                "cron", f"unknown macro {text!r}; use one of {', '.join(sorted(MACROS))}"
            )
        text = MACROS[text]
    parts = text.split(" ")
    if len(parts) != 5:
        raise ScheduleError(
            "cron",
            f"expected 5 fields (minute hour day-of-month month day-of-week), got {len(parts)}",
        )
    values = [_parse_field(i, part) for i, part in enumerate(parts)]
    return CronSpec(
        expression=" ".join(expression.strip().split()),
        minutes=tuple(sorted(values[0])),
        hours=tuple(sorted(values[1])),
        days=frozenset(values[2]),
        months=frozenset(values[3]),
        weekdays=frozenset(values[4]),
        any_day=parts[2].startswith("*"),
        any_weekday=parts[4].startswith("*"),
    )


def parse_every(value: int | float | str) -> int:
    """An interval in seconds from a number of seconds or text such as ``15m``, ``1h``,
    ``every 15 minutes`` (``ScheduleError`` on ``every``)."""
    if isinstance(value, bool):
        raise ScheduleError("every", "expected seconds or text such as '15m' or '2 hours'")
    if isinstance(value, int | float):
        seconds = value
    else:
        match = re.fullmatch(r"(?:every\s+)?(\d+(?:\.\d+)?)\s*([a-z]*?)s?", value.strip().lower())
        unit = match.group(2) if match else None
        if match is None or (unit and unit not in _UNITS):
            raise ScheduleError(
                "every", f"{value!r}: expected e.g. '30s', '15m', '2h', '1d' or 'every 15 minutes'"
            )
        seconds = float(match.group(1)) * _UNITS.get(unit or "s", 1)
    if not math.isfinite(seconds) or seconds < MIN_EVERY_SECONDS or seconds != int(seconds):
        raise ScheduleError("every", f"must be a whole number of seconds ≥ {MIN_EVERY_SECONDS}")
    return int(seconds)


def parse_at(value: str | datetime, tz: ZoneInfo) -> datetime:
    """A one-time run's time (ISO 8601; without an offset: in ``tz``), in UTC."""
    if isinstance(value, datetime):
        moment = value
    else:
        try:
            moment = datetime.fromisoformat(str(value).strip().replace("Z", "+00:00"))
        except ValueError:
            raise ScheduleError(
                "at", f"{value!r}: expected an ISO 8601 time such as 2026-12-24T18:00+01:00"
            ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=tz)
    return moment.astimezone(UTC)


@dataclass(frozen=True)
class Schedule:
    """A routine's validated schedule; computes its run times (all UTC)."""

    kind: str
    tz: ZoneInfo
    cron: CronSpec | None = None
    every_seconds: int | None = None
    anchor: datetime | None = None
    at: datetime | None = None

    def next_after(self, moment: datetime) -> datetime | None:
        """The first run time strictly after ``moment`` (None: never again)."""
        if self.cron is not None:
            return self.cron.next_after(moment, self.tz)
        if self.every_seconds is not None and self.anchor is not None:
            elapsed = (moment - self.anchor).total_seconds()
            steps = max(0, math.floor(elapsed / self.every_seconds) + 1)
            return self.anchor + timedelta(seconds=steps * self.every_seconds)
        if self.at is not None:
            return self.at if self.at > moment else None
        return None

    def latest_at_or_before(self, moment: datetime) -> datetime | None:
        """The last run time at or before ``moment`` (the one a fire at ``moment`` is for)."""
        if self.cron is not None:
            return self.cron.latest_at_or_before(moment, self.tz)
        if self.every_seconds is not None and self.anchor is not None:
            elapsed = (moment - self.anchor).total_seconds()
            if elapsed < 0:
                return None
            steps = math.floor(elapsed / self.every_seconds)
            return self.anchor + timedelta(seconds=steps * self.every_seconds)
        if self.at is not None:
            return self.at if self.at <= moment else None
        return None

    def next_runs(self, count: int, after: datetime) -> list[datetime]:
        """The next ``count`` run times after ``after``."""
        out: list[datetime] = []
        moment = after
        while len(out) < count:
            nxt = self.next_after(moment)
            if nxt is None:
                break
            out.append(nxt)
            moment = nxt
        return out


def build(
    *,
    kind: str,
    timezone: str,
    cron: str | None = None,
    every: int | float | str | None = None,
    at: str | datetime | None = None,
    anchor: datetime | None = None,
) -> Schedule:
    """Validate a schedule (``ScheduleError`` on the first bad field)."""
    tz = parse_timezone(timezone)
    if kind == "cron":
        return Schedule(kind=kind, tz=tz, cron=parse_cron(cron or ""))
    if kind == "every":
        if every is None or every == "":
            raise ScheduleError("every", "an interval is required, e.g. '15m'")
        return Schedule(
            kind=kind,
            tz=tz,
            every_seconds=parse_every(every),
            anchor=(anchor or datetime.now(UTC)).astimezone(UTC),
        )
    if kind == "at":
        if at is None or at == "":
            raise ScheduleError("at", "a time is required, e.g. 2026-12-24T18:00+01:00")
        return Schedule(kind=kind, tz=tz, at=parse_at(at, tz))
    raise ScheduleError("schedule_kind", f"unknown schedule kind {kind!r}; use cron, every or at")
