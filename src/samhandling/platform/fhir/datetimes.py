"""FHIR date, dateTime and instant values: formatting, calendar checks, and ranges.

A FHIR date-time has an implicit range by precision: ``2024`` is the whole year,
``2024-03-01T10:15`` the whole minute. Ranges here are half-open ``[start, end)``, in UTC.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta, timezone

_PATTERN = re.compile(
    r"(?P<year>\d{4})(?:-(?P<month>\d{2})(?:-(?P<day>\d{2})"
    r"(?:T(?P<hour>\d{2}):(?P<minute>\d{2})(?::(?P<second>\d{2})(?:\.(?P<fraction>\d+))?)?"
    r"(?P<tz>Z|[+-]\d{2}:\d{2})?)?)?)?"
)


class DateTimeFormatError(ValueError):
    """A value that is not a valid FHIR date, dateTime or instant."""


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def to_micros(moment: datetime) -> int:
    """A timezone-aware datetime as integer microseconds since the Unix epoch."""
    delta = moment - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def from_micros(micros: int) -> datetime:
    """Integer microseconds since the Unix epoch as a UTC datetime."""
    return datetime.fromtimestamp(micros // 1_000_000, UTC).replace(microsecond=micros % 1_000_000)


def format_instant(moment: datetime) -> str:
    """A UTC instant in FHIR form with microseconds, e.g. ``2026-11-22T01:43:43.123456Z``."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def is_calendar_valid(value: str) -> bool:
    """Whether a value that already matches the FHIR pattern names a real calendar moment."""
    try:
        parse_range(value)
    except DateTimeFormatError:
        return False
    return True


def parse_range(value: str) -> tuple[datetime, datetime]:
    """The half-open UTC range ``[start, end)`` that a date/dateTime/instant value covers.

    A value with a time but no zone is taken as UTC.
    """
    match = _PATTERN.fullmatch(value)
    if match is None:
        raise DateTimeFormatError(f"{value!r} is not a FHIR date, dateTime or instant")
    parts = match.groupdict()
    try:
        year = int(parts["year"])
        if parts["month"] is None:
            start = datetime(year, 1, 1, tzinfo=UTC)
            return start, datetime(year + 1, 1, 1, tzinfo=UTC) if year < 9999 else _MAX
        month = int(parts["month"])
        if parts["day"] is None:
            start = datetime(year, month, 1, tzinfo=UTC)
            nxt = datetime(year + (month == 12), month % 12 + 1, 1, tzinfo=UTC)
            return start, nxt
        day = date(year, month, int(parts["day"]))
        if parts["hour"] is None:
            start = datetime(day.year, day.month, day.day, tzinfo=UTC)
            return start, start + timedelta(days=1)
        hour, minute = int(parts["hour"]), int(parts["minute"])
        second = int(parts["second"] or 0)
        fraction = parts["fraction"] or ""
        micro = int((fraction + "000000")[:6])
        zone = _zone(parts["tz"])
        start = datetime(day.year, day.month, day.day, hour, minute, second, micro, tzinfo=zone)
        if parts["second"] is None:
            step = timedelta(minutes=1)
        elif not fraction:
            step = timedelta(seconds=1)
        else:
            step = timedelta(microseconds=max(1, 10 ** (6 - min(len(fraction), 6))))
        start = start.astimezone(UTC)
        return start, start + step
    except (ValueError, OverflowError) as exc:
        raise DateTimeFormatError(f"{value!r} is not a valid date or time: {exc}") from None


def parse_instant(value: str) -> datetime:
    """The start of a date/dateTime/instant value, as a UTC datetime."""
    return parse_range(value)[0]


_MAX = datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)


def _zone(text: str | None) -> timezone:
    if text is None or text == "Z":
        return UTC
    sign = -1 if text[0] == "-" else 1
    hours, minutes = int(text[1:3]), int(text[4:6])
    if hours > 14 or minutes > 59:
        raise ValueError(f"time zone offset {text} is out of range")
    return timezone(sign * timedelta(hours=hours, minutes=minutes))
