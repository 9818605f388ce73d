"""The request headers that complete an access context: what is accepted and what is a
clear error."""

from __future__ import annotations

import pytest

from samhandling.platform.auth.context import (
    AccessBasis,
    AccessContext,
    Principal,
    RequestHeaderError,
)


def context(principal: Principal = Principal.PERSONNEL) -> AccessContext:
    return AccessContext(principal, "client", frozenset(), ("samhandling:fhir",), "t", 0,
                         person_id="13116900216")  # fmt: skip


@pytest.mark.parametrize(
    ("headers", "basis", "reason"),
    [
        ({}, None, None),
        ({"nhn-access-basis": "SAMTYKKE"}, AccessBasis.CONSENT, None),
        ({"nhn-access-basis": " akutt ", "nhn-access-reason": "hjerte%C3%A6"},
         AccessBasis.EMERGENCY, "hjerteæ"),
        ({"nhn-access-basis": "UNNTAK"}, AccessBasis.EXCEPTION, None),
    ],
)  # fmt: skip
def test_accepted(headers: dict[str, str], basis: AccessBasis | None, reason: str | None) -> None:
    completed = context().for_request(headers)
    assert completed.access_basis is basis
    assert completed.access_reason == reason


@pytest.mark.parametrize(
    "headers",
    [
        {"nhn-access-basis": "HPMOTTATTSAMTYKKE"},
        {"nhn-access-basis": ""},
        {"nhn-access-reason": "%FF"},
        {"nhn-access-reason": "a%0Ab"},  # a line break
        {"nhn-access-reason": "x" * 501},
        {"nhn-access-reason": "ø"},  # not percent-encoded
        {"samhandling-acting-for": "13116900216"},  # health personnel do not act for citizens
    ],
)
def test_refused(headers: dict[str, str]) -> None:
    with pytest.raises(RequestHeaderError):
        context().for_request(headers)


def test_a_citizen_acts_for_an_eleven_digit_number_only() -> None:
    citizen = context(Principal.CITIZEN)
    assert citizen.for_request({"samhandling-acting-for": "01021512345"}).acting_for == (
        "01021512345"
    )
    assert citizen.for_request({}).patient_person == "13116900216"
    with pytest.raises(RequestHeaderError):
        citizen.for_request({"samhandling-acting-for": "0102151234x"})
