"""Schedules: the grammar, and slots in local wall time across daylight-saving changes.

America/New_York in 2026: clocks spring forward on Sunday 8 March (02:00 EST
becomes 03:00 EDT) and fall back on Sunday 1 November (02:00 EDT becomes
01:00 EST, so 01:00-01:59 happens twice).
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from publisher.app.cli import main
from publisher.config import load_config
from publisher.errors import ConfigError
from publisher.schedules import Interval, WallClock, local_instant, parse_duration, parse_schedule

from .conftest import write_config

NEW_YORK = ZoneInfo("America/New_York")
UTC = timezone.utc
SPRING_FORWARD = date(2026, 3, 8)
FALL_BACK = date(2026, 11, 1)


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def walk(text: str, start: datetime, count: int, tz=NEW_YORK) -> list[datetime]:
    """The ``count`` slots of ``text`` after ``start``, by repeated next_slot."""
    schedule = parse_schedule(text)
    slots, moment = [], start
    for _ in range(count):
        moment = schedule.next_slot(moment, tz)
        slots.append(moment)
    return slots


def local(moment: datetime) -> datetime:
    return moment.astimezone(NEW_YORK)


# --- daily jobs over the daylight-saving changes ---------------------------------


@pytest.mark.parametrize("change", [SPRING_FORWARD, FALL_BACK], ids=["spring-forward", "fall-back"])
def test_daily_0700_fires_at_0700_local_on_the_days_around_a_change(change: date) -> None:
    start = datetime.combine(change - timedelta(days=3), time(12), NEW_YORK).astimezone(UTC)
    slots = walk("daily at 07:00", start, 6)

    assert [local(s).date() for s in slots] == [change + timedelta(days=d) for d in range(-2, 4)]
    assert {local(s).time() for s in slots} == {time(7, 0)}
    # The instants move by an hour in UTC across the change; the wall time does not.
    gaps = [b - a for a, b in zip(slots, slots[1:])]
    assert sorted(set(gaps)) == sorted({timedelta(hours=24), timedelta(hours=23 if change == SPRING_FORWARD else 25)})
    assert gaps.count(timedelta(hours=24)) == 4


def test_a_0230_job_on_the_spring_forward_day_fires_once_at_the_end_of_the_gap() -> None:
    slots = walk("daily at 02:30", utc(2026, 3, 6, 12), 4)

    on_the_day = [s for s in slots if local(s).date() == SPRING_FORWARD]
    assert len(on_the_day) == 1
    # 02:30 does not exist that day: the first instant after the gap, 03:00 EDT.
    assert local(on_the_day[0]).time() == time(3, 0)
    assert on_the_day[0] == utc(2026, 3, 8, 7, 0)
    assert [local(s).time() for s in slots] == [time(2, 30), time(3, 0), time(2, 30), time(2, 30)]
    assert [local(s).date().day for s in slots] == [7, 8, 9, 10]


def test_a_0130_job_on_the_fall_back_day_fires_once_at_the_first_0130() -> None:
    slots = walk("daily at 01:30", utc(2026, 10, 30, 12), 4)

    on_the_day = [s for s in slots if local(s).date() == FALL_BACK]
    assert len(on_the_day) == 1
    # The first 01:30 of the two, still on daylight time (UTC-4).
    assert on_the_day[0] == utc(2026, 11, 1, 5, 30)
    assert local(on_the_day[0]).utcoffset() == timedelta(hours=-4)
    assert {local(s).time() for s in slots} == {time(1, 30)}


def test_previous_slot_agrees_with_next_slot_across_both_changes() -> None:
    for text in ("daily at 02:30", "daily at 01:30", "daily at 07:00", "every monday at 01:30"):
        schedule = parse_schedule(text)
        for start in (utc(2026, 3, 1), utc(2026, 10, 25)):
            for slot in walk(text, start, 12):
                assert schedule.previous_slot(slot, NEW_YORK) == slot
                assert schedule.previous_slot(slot - timedelta(seconds=1), NEW_YORK) < slot
                assert schedule.next_slot(slot - timedelta(seconds=1), NEW_YORK) == slot


def test_local_instant_rules_for_gaps_and_repeats() -> None:
    assert local_instant(datetime(2026, 3, 8, 2, 0), NEW_YORK) == utc(2026, 3, 8, 7, 0)
    assert local_instant(datetime(2026, 3, 8, 2, 59), NEW_YORK) == utc(2026, 3, 8, 7, 0)
    assert local_instant(datetime(2026, 3, 8, 3, 0), NEW_YORK) == utc(2026, 3, 8, 7, 0)
    assert local_instant(datetime(2026, 11, 1, 1, 0), NEW_YORK) == utc(2026, 11, 1, 5, 0)
    assert local_instant(datetime(2026, 11, 1, 2, 0), NEW_YORK) == utc(2026, 11, 1, 7, 0)
    # A zone whose change is not on the hour: Lord Howe Island moves by 30 minutes at 02:00.
    lord_howe = ZoneInfo("Australia/Lord_Howe")
    assert local_instant(datetime(2026, 10, 4, 2, 15), lord_howe).astimezone(lord_howe).time() == time(2, 30)


# --- weekly, weekdays and intervals ---------------------------------------------------


def test_weekly_fires_once_a_week_for_ten_weeks_across_a_change() -> None:
    slots = walk("weekly on monday at 08:00", utc(2026, 2, 15), 10)

    assert len(slots) == 10
    assert {local(s).weekday() for s in slots} == {0}
    assert {local(s).time() for s in slots} == {time(8, 0)}
    dates = [local(s).date() for s in slots]
    assert [(b - a).days for a, b in zip(dates, dates[1:])] == [7] * 9
    assert dates[0] == date(2026, 2, 16) and dates[-1] == date(2026, 4, 20)
    # Spelled the other way, it is the same schedule.
    assert walk("every Monday at 8:00", utc(2026, 2, 15), 10) == slots


def test_weekdays_skip_the_weekend() -> None:
    slots = walk("weekdays at 06:45", utc(2026, 3, 6, 12), 5)  # from Friday noon
    assert [local(s).strftime("%a %H:%M") for s in slots] == [
        "Mon 06:45", "Tue 06:45", "Wed 06:45", "Thu 06:45", "Fri 06:45"
    ]


def test_intervals_are_anchored_to_utc_and_ignore_daylight_saving() -> None:
    # Across the fall-back hour (05:00-07:00 UTC on 1 November) nothing repeats or shifts.
    slots = walk("every 10 minutes", utc(2026, 11, 1, 4, 55), 15)
    assert slots[0] == utc(2026, 11, 1, 5, 0)
    assert {b - a for a, b in zip(slots, slots[1:])} == {timedelta(minutes=10)}
    assert len(set(slots)) == 15

    six_hourly = walk("every 6 hours", utc(2026, 3, 7, 22), 6)
    assert [s.hour for s in six_hourly] == [0, 6, 12, 18, 0, 6]
    assert walk("hourly", utc(2026, 3, 8, 5, 30), 3) == walk("every 1 hour", utc(2026, 3, 8, 5, 30), 3)
    assert walk("every minute", utc(2026, 3, 8, 5, 30, 20), 2) == [utc(2026, 3, 8, 5, 31), utc(2026, 3, 8, 5, 32)]

    schedule = parse_schedule("every 10 minutes")
    assert schedule.previous_slot(utc(2026, 1, 1, 9, 10), NEW_YORK) == utc(2026, 1, 1, 9, 10)
    assert schedule.previous_slot(utc(2026, 1, 1, 9, 19, 59), NEW_YORK) == utc(2026, 1, 1, 9, 10)
    assert schedule.next_slot(utc(2026, 1, 1, 9, 10), NEW_YORK) == utc(2026, 1, 1, 9, 20)


SCHEDULES = [
    "every 10 minutes", "every 7 minutes", "every 6 hours", "hourly", "daily at 07:00",
    "daily at 02:30", "daily at 01:30", "weekdays at 00:00", "weekly on sunday at 02:15",
]


@settings(max_examples=300, deadline=None)
@given(
    text=st.sampled_from(SCHEDULES),
    moment=st.datetimes(min_value=datetime(2025, 1, 1), max_value=datetime(2028, 12, 31), timezones=st.just(UTC)),
    zone=st.sampled_from(["America/New_York", "Europe/London", "Australia/Lord_Howe", "Asia/Kolkata", "UTC"]),
)
def test_slots_bracket_every_instant(text: str, moment: datetime, zone: str) -> None:
    schedule, tz = parse_schedule(text), ZoneInfo(zone)
    before, after = schedule.previous_slot(moment, tz), schedule.next_slot(moment, tz)
    assert before <= moment < after
    assert schedule.next_slot(before, tz) == after
    assert after - before <= timedelta(days=7, hours=1)


# --- the grammar -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("every 10 minutes", Interval("every 10 minutes", timedelta(minutes=10))),
        ("Every  6 Hours", Interval("Every  6 Hours", timedelta(hours=6))),
        ("every minute", Interval("every minute", timedelta(minutes=1))),
        ("every hour", Interval("every hour", timedelta(hours=1))),
        ("hourly", Interval("hourly", timedelta(hours=1))),
        ("daily at 07:00", WallClock("daily at 07:00", time(7), frozenset(range(7)))),
        ("every day at 7:05", WallClock("every day at 7:05", time(7, 5), frozenset(range(7)))),
        ("weekdays at 18:30", WallClock("weekdays at 18:30", time(18, 30), frozenset(range(5)))),
        ("every weekday at 18:30", WallClock("every weekday at 18:30", time(18, 30), frozenset(range(5)))),
        ("weekly on friday at 08:00", WallClock("weekly on friday at 08:00", time(8), frozenset({4}))),
        ("every sunday at 23:59", WallClock("every sunday at 23:59", time(23, 59), frozenset({6}))),
    ],
)
def test_the_grammar(text: str, expected) -> None:
    assert parse_schedule(text) == expected


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("dialy at 7", 'write "daily at 07:00", "weekly on monday at 08:00", "every 6 hours" or "every 10 minutes"'),
        ("daily at 7", "24-hour HH:MM"),
        ("daily at 7pm", "24-hour HH:MM"),
        ("daily at 24:00", "24:00 is not a time of day"),
        ("every 0 minutes", "at least 1 minute"),
        ("every 30 seconds", "the shortest interval is 1 minute"),
        ("every 2 days", 'say the time: "daily at 07:00"'),
        ("weekly on funday at 08:00", "is not a schedule"),
        ("", "is not a schedule"),
    ],
)
def test_what_is_not_a_schedule_is_named_with_the_fix(text: str, says: str) -> None:
    with pytest.raises(ValueError) as raised:
        parse_schedule(text)
    assert f'"{text}"' in str(raised.value)
    assert says in str(raised.value)


def test_naive_times_are_refused() -> None:
    with pytest.raises(ValueError, match="aware"):
        parse_schedule("hourly").next_slot(datetime(2026, 1, 1), NEW_YORK)
    with pytest.raises(ValueError, match="aware"):
        parse_schedule("daily at 07:00").previous_slot(datetime(2026, 1, 1), NEW_YORK)


def test_durations() -> None:
    assert parse_duration("12 hours") == timedelta(hours=12)
    assert parse_duration("30 minutes") == timedelta(minutes=30)
    assert parse_duration("1 day") == timedelta(days=1)
    assert parse_duration(" 2  Days ") == timedelta(days=2)
    for bad in ("12h", "twelve hours", "0 hours", "3 weeks", "-1 hours"):
        with pytest.raises(ValueError, match=f'"{bad}"'):
            parse_duration(bad)


# --- in the config ----------------------------------------------------------------


def bad_schedules(site: Path) -> Path:
    return write_config(
        site,
        '\n[jobs]\nbuild = "every 10 minute"\n'
        '\n[lists.daily]\ntitle = "Daily"\nschedule = "dialy at 7"\nmax_late = "12 hrs"\n'
        '\n[lists.weekly]\ntitle = "Weekly"\nschedule = "weekly on monday at 08:00"\ncatch_up = "no"\n'
        '\n[lists.fast]\ntitle = "Fast"\nschedule = "every 0 hours"\n',
    )


def test_config_names_every_bad_schedule_key(tmp_path: Path) -> None:
    path = bad_schedules(tmp_path)
    with pytest.raises(ConfigError) as raised:
        load_config(path)
    problems = str(raised.value).splitlines()
    shown = str(path)
    assert problems == [
        f'{shown}: [lists.daily] schedule: "dialy at 7" is not a schedule; write "daily at 07:00", '
        '"weekly on monday at 08:00", "every 6 hours" or "every 10 minutes" '
        "(times are 24-hour HH:MM, such as 07:00 or 19:30)",
        f'{shown}: [lists.daily] max_late: "12 hrs" is not a duration; write "30 minutes", "12 hours" or "2 days"',
        f"{shown}: [lists.weekly] catch_up: must be true or false (got 'no')",
        f"{shown}: [lists.fast] schedule: \"every 0 hours\": the interval must be at least 1 hour",
    ]


def test_good_schedules_load_as_written(tmp_path: Path) -> None:
    path = write_config(
        tmp_path,
        '\n[jobs]\nbuild = "every 10 minutes"\n'
        '\n[lists.daily]\ntitle = "Daily"\nschedule = "daily at 07:00"\ncatch_up = false\nmax_late = "2 hours"\n',
    )
    config = load_config(path)
    assert config.jobs.build == "every 10 minutes"
    daily = config.lists["daily"]
    assert (daily.schedule, daily.catch_up, daily.max_late) == ("daily at 07:00", False, "2 hours")


@pytest.mark.parametrize("command", [["check"], ["run", "--once"], ["status"]])
def test_a_bad_schedule_is_exit_2_naming_the_key(tmp_path: Path, command: list[str]) -> None:
    path = bad_schedules(tmp_path)
    result = CliRunner().invoke(main, ["--config", str(path), *command])
    assert result.exit_code == 2
    assert '[lists.daily] schedule: "dialy at 7" is not a schedule' in result.stderr
    assert "[jobs] build" not in result.stderr  # "every 10 minute" is fine
    assert "Traceback" not in result.output
    assert not (tmp_path / ".publisher").exists()
