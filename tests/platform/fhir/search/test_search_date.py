"""Date search: every prefix with range semantics at precision boundaries, Periods (also
open-ended), Timing, instants, time zones, and malformed values.

The targets (inclusive UTC ranges, by the precision each value is written with):

    second    2024-03-05T10:00:00Z                [10:00:00, 10:00:00.999999] on 03-05
    day       2024-03-05                          the whole of 03-05
    straddle  Period 03-05T22:00:00Z..03-06T02:00:00Z, across midnight
    open_end  Period start 2024-01-01T00:00:00Z, no end
    open_start  Period end 2023-12-31T23:59:59Z, no start
    milli     instant 2024-03-05T11:00:00.000+01:00 = [10:00:00.000, 10:00:00.000999] UTC
    timing    Timing events 03-01T08:00:00Z and 03-10T08:00:00Z (outer limits count)
    zoned     2024-03-05T23:30:00-02:00 = 03-06T01:30:00Z
"""

from __future__ import annotations

import httpx
import pytest
from search_helpers import client, create, found, keys, new_marker, observation, rejected

from conftest import Server, patient

ALL = {"second", "day", "straddle", "open_end", "open_start", "milli", "timing", "zoned"}


def _targets(fhir: httpx.Client, marker: str) -> dict[str, dict]:
    effective = {
        "second": {"effectiveDateTime": "2024-03-05T10:00:00Z"},
        "day": {"effectiveDateTime": "2024-03-05"},
        "straddle": {
            "effectivePeriod": {"start": "2024-03-05T22:00:00Z", "end": "2024-03-06T02:00:00Z"}
        },
        "open_end": {"effectivePeriod": {"start": "2024-01-01T00:00:00Z"}},
        "open_start": {"effectivePeriod": {"end": "2023-12-31T23:59:59Z"}},
        "milli": {"effectiveInstant": "2024-03-05T11:00:00.000+01:00"},
        "timing": {"effectiveTiming": {"event": ["2024-03-01T08:00:00Z", "2024-03-10T08:00:00Z"]}},
        "zoned": {"effectiveDateTime": "2024-03-05T23:30:00-02:00"},
    }
    return {name: create(fhir, observation(**value), marker) for name, value in effective.items()}


@pytest.fixture(scope="module")
def targets(server: Server) -> tuple[str, dict[str, dict]]:
    marker = new_marker()
    with client(server) as fhir:
        return marker, _targets(fhir, marker)


CASES = [
    # day precision
    ("2024-03-05", {"second", "day", "milli"}),
    ("eq2024-03-05", {"second", "day", "milli"}),
    ("ne2024-03-05", {"straddle", "open_end", "open_start", "timing", "zoned"}),
    ("2024-03-04", set()),
    ("gt2024-03-04", ALL - {"open_start"}),
    ("gt2024-03-05", {"straddle", "open_end", "timing", "zoned"}),
    ("lt2024-03-05", {"open_end", "open_start", "timing"}),
    ("ge2024-03-05", ALL - {"open_start"}),
    ("le2024-03-05", {"second", "day", "milli", "open_end", "open_start", "timing"}),
    ("sa2024-03-05", {"zoned"}),
    ("sa2024-03-04", {"second", "day", "straddle", "milli", "zoned"}),
    ("eb2024-03-05", {"open_start"}),
    ("eb2024-03-06", {"second", "day", "milli", "open_start"}),
    ("2024-03-06", {"zoned"}),
    ("lt2024-03-06", ALL - {"zoned"}),
    ("gt2024-03-06", {"open_end", "timing"}),
    ("ge2024-03-06", {"open_end", "timing", "zoned"}),
    ("le2024-03-06", ALL),
    # minute precision (no zone: UTC)
    ("2024-03-05T10:00", {"second", "milli"}),
    ("gt2024-03-05T09:59", ALL - {"open_start"}),
    ("lt2024-03-05T10:00", {"day", "open_end", "open_start", "timing"}),
    ("le2024-03-05T10:00", {"second", "day", "milli", "open_end", "open_start", "timing"}),
    ("ge2024-03-05T10:00", ALL - {"open_start"}),
    ("gt2024-03-05T10:00", {"day", "straddle", "open_end", "timing", "zoned"}),
    ("sa2024-03-05T09:59", {"second", "straddle", "milli", "zoned"}),
    ("sa2024-03-05T10:00", {"straddle", "zoned"}),
    ("eb2024-03-05T10:01", {"second", "milli", "open_start"}),
    ("eb2024-03-05T10:00", {"open_start"}),
    ("ne2024-03-05T10:00", ALL - {"second", "milli"}),
    ("2024-03-05T22:00", set()),  # the straddling period is not inside that minute
    ("2024-03-05T11:00+01:00", {"second", "milli"}),  # the same minute in another zone
    ("2024-03-05T10:00-01:00", set()),  # = 11:00Z
    ("2024-03-06T01:30", {"zoned"}),
    ("2024-03-05T23:30-02:00", {"zoned"}),
    # second and sub-second precision
    ("2024-03-05T10:00:00Z", {"second", "milli"}),
    ("2024-03-05T10:00:00.000Z", {"milli"}),  # the whole second is not inside one millisecond
    ("gt2024-03-05T10:00:00.000Z", {"second", "day", "straddle", "open_end", "timing", "zoned"}),
    ("eb2024-03-05T10:00:01Z", {"second", "milli", "open_start"}),
    # month and year precision
    ("2024-03", {"second", "day", "straddle", "milli", "timing", "zoned"}),
    ("2024-02", set()),
    ("gt2024-02", ALL - {"open_start"}),
    ("2024", {"second", "day", "straddle", "milli", "timing", "zoned"}),
    ("ne2024", {"open_end", "open_start"}),
    ("2023", set()),
    ("2023-12", set()),
    # open-ended periods
    ("gt2030", {"open_end"}),
    ("ge3000", {"open_end"}),
    ("lt1900", {"open_start"}),
    ("sa2023", ALL - {"open_start"}),
    ("eb2024", {"open_start"}),
    ("lt2024-01-01", {"open_start"}),
    ("le2024-01-01", {"open_start"}),
    ("ge2024-01-01", ALL - {"open_start"}),
    ("sa2023-12-31T23:59:59Z", ALL - {"open_start"}),
    ("eb2024-01-01T00:00:00Z", {"open_start"}),
    ("2024-01-01T00:00:00Z", set()),
    # OR
    ("2024-03-06,eb2024", {"zoned", "open_start"}),
]


@pytest.mark.parametrize(("value", "expected"), CASES)
def test_date_prefixes_and_precision(
    fhir: httpx.Client, targets: tuple[str, dict], value: str, expected: set[str]
) -> None:
    marker, obs = targets
    assert keys(found(fhir, "/Observation", marker, {"date": value}), obs) == expected


def test_repeated_dates_are_and(fhir: httpx.Client, targets: tuple[str, dict]) -> None:
    marker, obs = targets
    between = [("date", "ge2024-03-05"), ("date", "lt2024-03-06")]
    assert keys(found(fhir, "/Observation", marker, between), obs) == ALL - {
        "open_start",
        "zoned",
    }
    inside = [("date", "gt2024-03-05T09:00"), ("date", "lt2024-03-05T11:00")]
    assert keys(found(fhir, "/Observation", marker, inside), obs) == {
        "second",
        "day",
        "milli",
        "open_end",
        "timing",
    }


def test_approximately(fhir: httpx.Client, targets: tuple[str, dict]) -> None:
    marker, obs = targets
    near = keys(found(fhir, "/Observation", marker, {"date": "ap2024-03-05"}), obs)
    assert {"second", "day", "milli", "straddle", "zoned"} <= near
    assert keys(found(fhir, "/Observation", marker, {"date": "ap1950-06-01"}), obs) <= {
        "open_start"
    }


@pytest.fixture(scope="module")
def born(server: Server) -> tuple[str, str]:
    """A patient born 1980-05-17 and one without a birth date (who never matches)."""
    marker = new_marker()
    with client(server) as fhir:
        person = create(fhir, patient(birthDate="1980-05-17"), marker)
        create(fhir, patient(), marker)
    return marker, person["id"]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("1980-05-17", True),
        ("1980-05", True),
        ("1980", True),
        ("1980-05-18", False),
        ("lt1980-05-17", False),
        ("le1980-05-17", True),
        ("gt1980-05-17", False),
        ("ge1980-05-17", True),
        ("gt1980-05-16", True),
        ("sa1980-05-16", True),
        ("eb1980-05-18", True),
        ("eb1980-05-17", False),
        ("1980-05-17T12:00", False),  # a day is not inside a minute
        ("ne1980-05-17T12:00", True),
        ("gt1980-05-17T12:00", True),  # the day ends after that minute
        ("lt1980-05-17T12:00", True),  # ... and starts before it
        ("sa1980-05-17T12:00", False),
    ],
)
def test_birthdate_is_a_date(
    fhir: httpx.Client, born: tuple[str, str], value: str, expected: bool
) -> None:
    marker, person = born
    assert found(fhir, "/Patient", marker, {"birthdate": value}) == (
        {person} if expected else set()
    )


def test_encounter_period(fhir: httpx.Client) -> None:
    marker = new_marker()
    stay = create(
        fhir,
        {
            "resourceType": "Encounter",
            "status": "finished",
            "class": {"code": "IMP"},
            "period": {"start": "2024-06-01T08:00:00+02:00", "end": "2024-06-03T12:00:00+02:00"},
        },
        marker,
    )
    ids = {stay["id"]}
    assert found(fhir, "/Encounter", marker, {"date": "2024-06"}) == ids
    assert found(fhir, "/Encounter", marker, {"date": "2024-06-02"}) == set()
    assert found(fhir, "/Encounter", marker, {"date": "ne2024-06-02"}) == ids
    assert found(fhir, "/Encounter", marker, {"date": "gt2024-06-02"}) == ids
    assert found(fhir, "/Encounter", marker, {"date": "lt2024-06-02"}) == ids
    assert found(fhir, "/Encounter", marker, {"date": "sa2024-05-31"}) == ids
    # it starts at 06:00:00Z on 06-01...
    assert found(fhir, "/Encounter", marker, {"date": "sa2024-06-01T05:59Z"}) == ids
    assert found(fhir, "/Encounter", marker, {"date": "sa2024-06-01T06:00Z"}) == set()
    # ...and ends 10:00Z on 06-03
    assert found(fhir, "/Encounter", marker, {"date": "eb2024-06-03T10:01Z"}) == ids
    assert found(fhir, "/Encounter", marker, {"date": "eb2024-06-03T10:00Z"}) == set()


@pytest.mark.parametrize(
    "value",
    [
        "2024-13-01",
        "2024-02-30",
        "2024-03-05T25:00",
        "2024-03-05T10",
        "24-03-05",
        "2024/03/05",
        "xx2024",
        "today",
        "gt",
        "2024-03-05T10:00+15:00",
        "2024-03-05 10:00",
    ],
)
def test_malformed_dates_are_400(fhir: httpx.Client, value: str) -> None:
    rejected(fhir, "/Observation", {"date": value})
