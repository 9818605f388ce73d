"""FHIR date/time ranges and calendar checks."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from samhandling.platform.fhir.datetimes import (
    DateTimeFormatError,
    format_instant,
    is_calendar_valid,
    parse_range,
)


@pytest.mark.parametrize(
    ("value", "start", "end"),
    [
        ("2024", datetime(2024, 1, 1, tzinfo=UTC), datetime(2025, 1, 1, tzinfo=UTC)),
        ("2024-02", datetime(2024, 2, 1, tzinfo=UTC), datetime(2024, 3, 1, tzinfo=UTC)),
        ("2024-12", datetime(2024, 12, 1, tzinfo=UTC), datetime(2025, 1, 1, tzinfo=UTC)),
        ("2024-02-29", datetime(2024, 2, 29, tzinfo=UTC), datetime(2024, 3, 1, tzinfo=UTC)),
        (
            "2024-03-01T10:15",
            datetime(2024, 3, 1, 10, 15, tzinfo=UTC),
            datetime(2024, 3, 1, 10, 16, tzinfo=UTC),
        ),
        (
            "2024-03-01T10:15:30+01:00",
            datetime(2024, 3, 1, 9, 15, 30, tzinfo=UTC),
            datetime(2024, 3, 1, 9, 15, 31, tzinfo=UTC),
        ),
        (
            "2024-03-01T10:15:30.5Z",
            datetime(2024, 3, 1, 10, 15, 30, 500000, tzinfo=UTC),
            datetime(2024, 3, 1, 10, 15, 30, 600000, tzinfo=UTC),
        ),
        (
            "2024-03-01T10:15:30.123456Z",
            datetime(2024, 3, 1, 10, 15, 30, 123456, tzinfo=UTC),
            datetime(2024, 3, 1, 10, 15, 30, 123457, tzinfo=UTC),
        ),
    ],
)
def test_ranges_follow_precision(value: str, start: datetime, end: datetime) -> None:
    assert parse_range(value) == (start, end)


@pytest.mark.parametrize(
    "value",
    [
        "2021-02-29",
        "2024-13",
        "2024-00-10",
        "2024-04-31",
        "2024-01-01T24:00:00Z",
        "2024-01-01T10:61",
        "x",
        "",
        "2024-01-01T10:00:00+15:00",
        "20240101",
    ],
)
def test_invalid_values_are_rejected(value: str) -> None:
    assert not is_calendar_valid(value)
    with pytest.raises(DateTimeFormatError):
        parse_range(value)


def test_format_instant_is_utc_with_microseconds() -> None:
    moment = datetime(2026, 11, 22, 1, 43, 43, 123456, tzinfo=UTC)
    assert format_instant(moment) == "2026-11-22T01:43:43.123456Z"
    assert parse_range(format_instant(moment))[0] == moment
