"""Schedules: the small grammar of ``[jobs] build`` and ``[lists.NAME] schedule``.

Pure: no I/O and no clock. Times go in and come out as aware datetimes; the
site's time zone is passed in. ``publisher.app.scheduler`` decides what to run
with ``previous_slot`` and ``next_slot``.

    schedule = parse_schedule("daily at 07:00")
    schedule.next_slot(now, ZoneInfo("America/New_York"))      # the next 07:00 in New York
    schedule.previous_slot(now, ZoneInfo("America/New_York"))  # the latest 07:00 at or before now
    parse_duration("12 hours")                                  # timedelta(hours=12)

The grammar (case and extra spaces do not matter; times are 24-hour HH:MM
wall-clock times in the site's time zone):

    every N minutes | every minute        every N hours | every hour | hourly
    daily at HH:MM | every day at HH:MM
    weekdays at HH:MM | every weekday at HH:MM          (Monday to Friday)
    weekly on monday at HH:MM | every monday at HH:MM   (any weekday name)

Interval schedules ("every 10 minutes", "every 6 hours") are anchored to
UTC: their slots are the multiples of the interval since 1970-01-01 00:00
UTC, so "every 6 hours" fires at 00:00, 06:00, 12:00 and 18:00 UTC and a
daylight-saving change neither shifts nor repeats them.

Time-of-day schedules are kept in local wall time, so a daily 07:00 job
fires at 07:00 on both sides of a daylight-saving change. Two wall-clock
times need a rule:

- a time that does not exist that day (02:30 on the spring-forward day in
  New York, when clocks go from 02:00 to 03:00) fires once, at the first
  instant after the gap (03:00 local);
- a time that happens twice (01:30 on the fall-back day) fires once, at
  its first occurrence (the earlier one, still on summer time: ``fold=0``).

Durations (``max_late``) are "N minutes", "N hours" or "N days".
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone, tzinfo

__all__ = ["Schedule", "Interval", "WallClock", "local_instant", "parse_schedule", "parse_duration"]

_EXAMPLES = 'write "daily at 07:00", "weekly on monday at 08:00", "every 6 hours" or "every 10 minutes"'

WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_EVERY_DAY = frozenset(range(7))
_WORKING_DAYS = frozenset(range(5))
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_UNITS = {"minute": timedelta(minutes=1), "hour": timedelta(hours=1), "day": timedelta(days=1)}


def _aware(moment: datetime, name: str) -> None:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"{name} must be an aware datetime (got naive {moment.isoformat()})")


class Schedule(ABC):
    """When a job runs: a series of instants (slots), computed for a time zone."""

    text: str  # as written in the config

    @abstractmethod
    def next_slot(self, after: datetime, tz: tzinfo) -> datetime:
        """The first slot strictly after ``after`` (aware, UTC)."""

    @abstractmethod
    def previous_slot(self, at_or_before: datetime, tz: tzinfo) -> datetime:
        """The latest slot at or before ``at_or_before`` (aware, UTC)."""


@dataclass(frozen=True)
class Interval(Schedule):
    """Every ``step``, anchored to the Unix epoch in UTC (time zones do not matter)."""

    text: str
    step: timedelta

    def next_slot(self, after: datetime, tz: tzinfo) -> datetime:
        _aware(after, "after")
        return _EPOCH + ((after - _EPOCH) // self.step + 1) * self.step

    def previous_slot(self, at_or_before: datetime, tz: tzinfo) -> datetime:
        _aware(at_or_before, "at_or_before")
        return _EPOCH + ((at_or_before - _EPOCH) // self.step) * self.step


@dataclass(frozen=True)
class WallClock(Schedule):
    """At ``at`` local time on each of ``weekdays`` (0 = Monday)."""

    text: str
    at: time
    weekdays: frozenset[int]

    def next_slot(self, after: datetime, tz: tzinfo) -> datetime:
        _aware(after, "after")
        day = after.astimezone(tz).date() - timedelta(days=1)
        for offset in range(9):  # a week and the days either side
            candidate = self._slot_on(day + timedelta(days=offset), tz)
            if candidate is not None and candidate > after:
                return candidate
        raise AssertionError(f"{self.text!r}: no slot within a week after {after.isoformat()}")

    def previous_slot(self, at_or_before: datetime, tz: tzinfo) -> datetime:
        _aware(at_or_before, "at_or_before")
        day = at_or_before.astimezone(tz).date() + timedelta(days=1)
        for offset in range(9):
            candidate = self._slot_on(day - timedelta(days=offset), tz)
            if candidate is not None and candidate <= at_or_before:
                return candidate
        raise AssertionError(f"{self.text!r}: no slot within a week before {at_or_before.isoformat()}")

    def _slot_on(self, day: date, tz: tzinfo) -> datetime | None:
        if day.weekday() not in self.weekdays:
            return None
        return local_instant(datetime.combine(day, self.at), tz)


def local_instant(wall: datetime, tz: tzinfo) -> datetime:
    """The UTC instant of the naive wall-clock time ``wall`` in ``tz``.

    A repeated time (fall back) is its first occurrence; a time in a gap
    (spring forward) becomes the first instant after the gap.
    """
    first = wall.replace(tzinfo=tz, fold=0).astimezone(timezone.utc)
    if first.astimezone(tz).replace(tzinfo=None) == wall:
        return first
    # In a gap: fold=0 reads the wall time with the offset before the change,
    # fold=1 with the offset after; the change itself lies between the two.
    second = wall.replace(tzinfo=tz, fold=1).astimezone(timezone.utc)
    low, high = sorted((int(first.timestamp()), int(second.timestamp())))
    after = _at(high, tz).utcoffset()
    while high - low > 1:  # whole seconds: zone changes happen on them
        middle = (low + high) // 2
        if _at(middle, tz).utcoffset() == after:
            high = middle
        else:
            low = middle
    return datetime.fromtimestamp(high, timezone.utc)


def _at(seconds: int, tz: tzinfo) -> datetime:
    return datetime.fromtimestamp(seconds, timezone.utc).astimezone(tz)


_TIME = r"(?P<hour>\d{1,2}):(?P<minute>\d{2})"
_DAY = "(?P<day>" + "|".join(WEEKDAYS) + ")"
_FORMS: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(pattern), kind)
    for pattern, kind in (
        (r"every (?P<n>\d+) (?P<unit>minute|hour)s?", "interval"),
        (r"every (?P<unit>minute|hour)", "interval"),
        (r"(?P<unit>hour)ly", "interval"),
        (rf"(?:daily|every day) at {_TIME}", "daily"),
        (rf"(?:weekdays|every weekday) at {_TIME}", "weekdays"),
        (rf"(?:weekly on|every) {_DAY}s? at {_TIME}", "weekly"),
    )
)


def _normal(text: str) -> str:
    return " ".join(text.lower().split())


def parse_schedule(text: str) -> Schedule:
    """The schedule ``text`` describes; ``ValueError`` quoting it and the grammar if none."""
    normal = _normal(text)
    for pattern, kind in _FORMS:
        match = pattern.fullmatch(normal)
        if match is None:
            continue
        fields = match.groupdict()
        if kind == "interval":
            count = int(fields.get("n") or 1)
            if count < 1:
                raise ValueError(f'"{text}": the interval must be at least 1 {fields["unit"]}')
            return Interval(text=text, step=count * _UNITS[fields["unit"]])
        at = _time_of_day(text, fields["hour"], fields["minute"])
        if kind == "daily":
            return WallClock(text=text, at=at, weekdays=_EVERY_DAY)
        if kind == "weekdays":
            return WallClock(text=text, at=at, weekdays=_WORKING_DAYS)
        return WallClock(text=text, at=at, weekdays=frozenset({WEEKDAYS.index(fields["day"])}))
    raise ValueError(f'"{text}" is not a schedule; {_EXAMPLES}{_hint(normal)}')


def _time_of_day(text: str, hour: str, minute: str) -> time:
    if int(hour) > 23 or int(minute) > 59:
        raise ValueError(f'"{text}": {hour}:{minute} is not a time of day; use 24-hour HH:MM from 00:00 to 23:59')
    return time(int(hour), int(minute))


def _hint(normal: str) -> str:
    """A pointer at the usual slips, in the manner of "Use minutes instead of minute"."""
    if re.search(r"\bsecond", normal):
        return " (the shortest interval is 1 minute)"
    if re.fullmatch(r"every \d+ (days?|weeks?)", normal):
        return ' (for days and weeks, say the time: "daily at 07:00", "weekly on monday at 08:00")'
    if re.search(r"\bat \d{1,2}(\s*(am|pm))?$", normal):
        return " (times are 24-hour HH:MM, such as 07:00 or 19:30)"
    return ""


_DURATION = re.compile(r"(?P<n>\d+) (?P<unit>minute|hour|day)s?")


def parse_duration(text: str) -> timedelta:
    """``"12 hours"`` → ``timedelta(hours=12)``; ``ValueError`` saying the form if not one."""
    match = _DURATION.fullmatch(_normal(text))
    if match is None:
        raise ValueError(f'"{text}" is not a duration; write "30 minutes", "12 hours" or "2 days"')
    length = int(match["n"]) * _UNITS[match["unit"]]
    if not length:
        raise ValueError(f'"{text}": a duration must be longer than 0')
    return length
