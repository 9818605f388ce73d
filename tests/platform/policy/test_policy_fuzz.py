"""Fuzzing the request headers that complete the access context (access basis, reason,
whom a citizen acts for) and the access log's parameters: a clear 400 or a decision,
never a 500."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from policy_helpers import Person, World

from conftest import Server

FUZZ = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
# header values are latin-1 bytes on the wire (httpx refuses control characters and
# surrounding blanks before sending, so those are left out)
HEADER_TEXT = st.text(
    st.characters(min_codepoint=33, max_codepoint=255, exclude_characters="\x7f"), max_size=600
).map(lambda text: text.encode("latin-1"))
EXPECTED = {200, 400, 403, 404}


@dataclass
class Callers:
    doctor: httpx.Client
    citizen: httpx.Client
    entry: str


@pytest.fixture(scope="module")
def callers(server: Server) -> Iterator[Callers]:
    admin = httpx.Client(base_url=server.fhir, timeout=30, auth=server.auth)
    world = World(server, admin)
    person: Person = world.person(30)
    entry = f"Observation/{world.observation(person)}"
    doctor = world.clinician(world.doctor()[0])
    citizen = world.citizen(person, base=server.url)
    yield Callers(doctor, citizen, entry)
    for client in (admin, doctor, citizen):
        client.close()


@FUZZ
@given(
    basis=st.one_of(st.sampled_from([b"SAMTYKKE", b"AKUTT", b"unntak"]), HEADER_TEXT),
    reason=st.one_of(st.sampled_from([b"%C3%A6%20x", b"%FF", b"%", b"a%00b"]), HEADER_TEXT),
    acting_for=st.one_of(st.sampled_from([b"12345678901", b"1234567890"]), HEADER_TEXT),
)
def test_context_headers_never_break_a_request(
    callers: Callers, basis: bytes, reason: bytes, acting_for: bytes
) -> None:
    headers = {"nhn-access-basis": basis, "nhn-access-reason": reason}
    response = callers.doctor.get(f"/{callers.entry}", headers=headers)
    assert response.status_code in EXPECTED, response.text
    assert response.headers["content-type"].startswith("application/fhir+json")
    acting = callers.citizen.get(
        f"/fhir/{callers.entry}", headers={"samhandling-acting-for": acting_for}
    )
    assert acting.status_code in EXPECTED, acting.text


@FUZZ
@given(
    params=st.dictionaries(
        st.sampled_from(["from", "to", "service", "emergency", "count", "cursor", "x"]),
        st.text(max_size=40),
        max_size=5,
    )
)
def test_access_log_parameters_never_break_it(callers: Callers, params: dict[str, str]) -> None:
    response = callers.citizen.get("/audit/access-log", params=params)
    assert response.status_code in (200, 400), response.text
