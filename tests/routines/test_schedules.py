"""Parsing and validating schedules, and computing their run times (DST included)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from routines.schedules import ScheduleError, build, parse_cron, parse_every, parse_timezone

BERLIN = ZoneInfo("Europe/Berlin")


def utc(*args) -> datetime:
    return datetime(*args, tzinfo=UTC)


@pytest.mark.parametrize(
    ("expr", "fields"),
    [
        (
            "*/15 9-17 * * mon-fri",
            ("0,15,30,45", "9,10,11,12,13,14,15,16,17", "*", "*", "1,2,3,4,5"),
        ),
        ("0 0 1,15 jan,jul *", ("0", "0", "1,15", "1,7", "*")),
        ("5 4 * * 7", ("5", "4", "*", "*", "0")),
        ("5 4 * * sun,SAT", ("5", "4", "*", "*", "0,6")),
        ("0 22 * * fri-sun", ("0", "22", "*", "*", "0,5,6")),
        ("@hourly", ("0", "*", "*", "*", "*")),
        ("@daily", ("0", "0", "*", "*", "*")),
        ("@weekly", ("0", "0", "*", "*", "0")),
        ("@monthly", ("0", "0", "1", "*", "*")),
        ("@yearly", ("0", "0", "1", "1", "*")),
        ("0-10/5 */6 1-10/3 */2 *", ("0,5,10", "0,6,12,18", "1,4,7,10", "1,3,5,7,9,11", "*")),
    ],
)
def test_cron_fields(expr, fields):
    assert parse_cron(expr).fields() == fields


@pytest.mark.parametrize(
    ("expr", "words"),
    [
        ("99 99 * * *", ["minute", "99"]),
        ("0 24 * * *", ["hour", "24"]),
        ("0 0 32 * *", ["day-of-month", "32"]),
        ("0 0 * 13 *", ["month", "13"]),
        ("0 0 * * 8", ["day-of-week", "8"]),
        ("bad cron", ["expected 5 fields", "got 2"]),
        ("0 0 * * * *", ["expected 5 fields", "got 6"]),
        ("", ["required"]),
        ("@reboot", ["unknown macro"]),
        ("0 0 * mon *", ["month", "'mon'"]),
        ("0 0 * * jan", ["day-of-week", "'jan'"]),
        ("x 0 * * *", ["minute", "'x'"]),
        ("*/0 * * * *", ["minute"]),
        ("0 0 * * $", ["day-of-week", "only digits"]),
        ("1,,2 * * * *", ["minute"]),
    ],
)
def test_cron_errors_name_the_problem(expr, words):
    with pytest.raises(ScheduleError) as caught:
        parse_cron(expr)
    assert caught.value.field == "cron"
    for word in words:
        assert word in caught.value.message


def test_unknown_timezone():
    with pytest.raises(ScheduleError) as caught:
        parse_timezone("Mars/Olympus")
    assert caught.value.field == "timezone"
    assert "Mars/Olympus" in caught.value.message
    with pytest.raises(ScheduleError):
        parse_timezone("../../etc/passwd")
    assert parse_timezone("Europe/Berlin") == BERLIN


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        (900, 900),
        ("15m", 900),
        ("every 15 minutes", 900),
        ("2h", 7200),
        ("30s", 30),
        ("1 day", 86400),
    ],
)
def test_every(text, seconds):
    assert parse_every(text) == seconds


@pytest.mark.parametrize("text", ["0", "-5m", "fortnightly", "15 parsecs", "1.5s", True])
def test_every_errors(text):
    with pytest.raises(ScheduleError) as caught:
        parse_every(text)
    assert caught.value.field == "every"


def test_weekday_nine_in_berlin():
    schedule = build(kind="cron", cron="0 9 * * 1-5", timezone="Europe/Berlin")
    # Friday 2026-11-27 10:00 Berlin → next: Monday 30th 09:00 CET (08:00 UTC)
    runs = schedule.next_runs(3, utc(2026, 11, 27, 9, 0))
    assert runs == [utc(2026, 11, 30, 8), utc(2026, 12, 1, 8), utc(2026, 12, 2, 8)]
    assert schedule.latest_at_or_before(utc(2026, 11, 29, 12)) == utc(2026, 11, 27, 8)


def test_dom_and_dow_both_restricted_is_either():
    schedule = build(kind="cron", cron="0 0 13 * fri", timezone="UTC")
    runs = schedule.next_runs(4, utc(2026, 2, 1))
    assert [r.day for r in runs] == [6, 13, 20, 27]  # Fridays of Feb 2026, and the 13th


def test_dst_spring_forward_runs_once_shifted():
    """Europe/Berlin 2026-03-29: 02:00 → 03:00. The daily 02:30 runs once, at 03:30 CEST."""
    schedule = build(kind="cron", cron="30 2 * * *", timezone="Europe/Berlin")
    runs = schedule.next_runs(3, utc(2026, 3, 27, 12))
    local = [r.astimezone(BERLIN).strftime("%m-%d %H:%M %Z") for r in runs]
    assert local == ["03-28 02:30 CET", "03-29 03:30 CEST", "03-30 02:30 CEST"]


def test_dst_fall_back_runs_once_at_first():
    """Europe/Berlin 2026-10-25: 03:00 → 02:00. 02:30 happens twice; it runs at the first."""
    schedule = build(kind="cron", cron="30 2 * * *", timezone="Europe/Berlin")
    runs = schedule.next_runs(3, utc(2026, 10, 23, 12))
    local = [r.astimezone(BERLIN).strftime("%m-%d %H:%M %Z") for r in runs]
    assert local == ["10-24 02:30 CEST", "10-25 02:30 CEST", "10-26 02:30 CET"]
    # after the first 02:30 (00:30 UTC) the next is the next day, not the second 02:30
    assert schedule.next_after(utc(2026, 10, 25, 0, 30)) == utc(2026, 10, 26, 1, 30)
    assert schedule.latest_at_or_before(utc(2026, 10, 25, 1, 45)) == utc(2026, 10, 25, 0, 30)


def test_hourly_across_spring_gap_has_no_duplicates():
    schedule = build(kind="cron", cron="30 * * * *", timezone="Europe/Berlin")
    runs = schedule.next_runs(4, utc(2026, 3, 28, 23, 0))
    assert runs == [
        utc(2026, 3, 28, 23, 30),
        utc(2026, 3, 29, 0, 30),
        utc(2026, 3, 29, 1, 30),
        utc(2026, 3, 29, 2, 30),
    ]


def test_interval_and_one_time():
    anchor = utc(2026, 1, 1, 0, 0)
    every = build(kind="every", every="15m", timezone="UTC", anchor=anchor)
    assert every.next_after(utc(2026, 1, 1, 0, 20)) == utc(2026, 1, 1, 0, 30)
    assert every.latest_at_or_before(utc(2026, 1, 1, 0, 20)) == utc(2026, 1, 1, 0, 15)
    assert every.latest_at_or_before(anchor - timedelta(seconds=1)) is None
    at = build(kind="at", at="2026-12-24T18:00+01:00", timezone="UTC")
    assert at.next_runs(5, utc(2026, 1, 1)) == [utc(2026, 12, 24, 17)]
    assert at.next_after(utc(2026, 12, 25)) is None
    naive = build(kind="at", at="2026-12-24T18:00", timezone="Europe/Berlin")
    assert naive.at == utc(2026, 12, 24, 17)


def test_at_and_kind_errors():
    with pytest.raises(ScheduleError) as caught:
        build(kind="at", at="christmas", timezone="UTC")
    assert caught.value.field == "at"
    with pytest.raises(ScheduleError) as caught:
        build(kind="weekly", timezone="UTC")
    assert caught.value.field == "schedule_kind"
    with pytest.raises(ScheduleError) as caught:
        build(kind="cron", cron="0 0 30 2 *", timezone="Nowhere/Land")
    assert caught.value.field == "timezone"


def test_never_matching_date():
    schedule = build(kind="cron", cron="0 0 30 2 *", timezone="UTC")
    assert schedule.next_after(utc(2026, 1, 1)) is None
    leap = build(kind="cron", cron="0 0 29 2 *", timezone="UTC")
    assert leap.next_after(utc(2026, 1, 1)) == utc(2028, 2, 29)


def _times_each_resolved(spec, day, tz):
    """A day's run times the plain way: every wall time resolved on its own."""
    walls = (
        datetime.combine(day, datetime.min.time()).replace(hour=h, minute=m)
        for h in spec.hours
        for m in spec.minutes
    )
    return tuple(sorted({w.replace(tzinfo=tz, fold=0).astimezone(UTC) for w in walls}))


@pytest.mark.parametrize(
    "zone", ["Europe/Berlin", "America/New_York", "Australia/Lord_Howe", "Asia/Kolkata", "UTC"]
)
@pytest.mark.parametrize("expr", ["* * * * *", "*/7 1-3 * * *", "30 2 * * *", "0 0,23 * * *"])
def test_day_times_equal_resolving_each_wall_time_across_a_year(zone, expr):
    """The one-offset shortcut for days without a clock change (and the remembered days)
    give exactly the times of resolving every wall time on its own, DST days included."""
    spec, tz = parse_cron(expr), ZoneInfo(zone)
    # the weeks around both hemispheres' clock changes (March/April, September-November)
    for start, days in ((date(2026, 3, 1), 46), (date(2026, 9, 25), 47)):
        for offset in range(days):
            day = start + timedelta(days=offset)
            expected = _times_each_resolved(spec, day, tz)
            assert spec.times_on(day, tz) == expected, (zone, expr, day)
