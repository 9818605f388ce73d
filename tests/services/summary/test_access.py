"""The platform's access rules applied to Kjernejournal, over HTTP: each refusal with its
status and its audit record's outcome; and random critical-information-shaped JSON never
makes the server fail (500)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from kj_helpers import CATEGORY_TYPES, critical
from kj_helpers import doctor as new_doctor
from policy_helpers import (
    EPICRISIS,
    Person,
    World,
    auditor,
    basis,
    reason_of,
    submission,
    summary,
)

from conftest import Server
from samhandling.services.summary.model import (
    CATEGORY,
    CATEGORY_EXTENSION,
    RECORDED_EXTENSION,
    SOURCE,
    SOURCE_EXTENSION,
    VERIFIED_EXTENSION,
)

CHANGES_SEEN_WITHIN = 1.2  # seconds: the registers' caches


def records_of(audit: httpx.Client, *numbers: str) -> list[dict[str, Any]]:
    """The AuditEvents whose user is one of ``numbers`` (HPR number or person number: a
    suspended health worker's token carries no HPR number), newest first."""
    found: list[dict[str, Any]] = []
    url: str | None = "/AuditEvent?count=200"
    while url is not None:
        bundle = audit.get(url).json()
        for entry in bundle.get("entry", []):
            event = entry["resource"]
            who = event["agent"][0]["who"].get("identifier", {})
            if who.get("value") in numbers:
                found.append(event)
        url = next((link["url"] for link in bundle["link"] if link["relation"] == "next"), None)
    return found


@pytest.fixture(scope="module")
def world(server: Server) -> Iterator[World]:
    with httpx.Client(base_url=server.fhir, timeout=30, auth=server.auth) as admin:
        world = World(server, admin)
        world.organisation()
        yield world


@pytest.fixture(scope="module")
def audit(server: Server) -> Iterator[httpx.Client]:
    with auditor(server) as client:
        yield client


def entry_of(world: World, person: Person, category: str = "5") -> str:
    """Critical information about ``person``, registered by the system client; its path."""
    _, hpr = new_doctor(world)
    entry = critical(category, person.patient_id, hpr)
    created = world.admin.post(f"/{entry['resourceType']}", json=entry)
    assert created.status_code == 201, created.text
    return f"/{entry['resourceType']}/{created.json()['id']}"


def document_of(world: World, person: Person, confidentiality: str) -> str:
    """A document about ``person`` with a Volven 9603 code, shared by the system client."""
    bundle = submission(person.patient_id, (b"%PDF-1.4 notat", EPICRISIS))
    bundle["entry"][1]["resource"]["securityLabel"][0]["coding"][0]["code"] = confidentiality
    shared = world.admin.post("/", json=bundle)
    assert shared.status_code == 200, shared.text
    locations = [e["response"]["location"] for e in shared.json()["entry"]]
    document = next(loc for loc in locations if loc.startswith("DocumentReference/"))
    return "/" + document.split("/_history")[0]


# (who, headers, whose entry, answer, reason, audit outcome)
ACCESS_TABLE: list[tuple[str, dict[str, str], str, int, str | None, str]] = [
    ("doctor", basis("SAMTYKKE"), "ordinary", 200, None, "0"),
    ("doctor", basis("AKUTT", "bevisstløs i akuttmottaket"), "ordinary", 200, None, "0"),
    ("doctor", {}, "ordinary", 400, "access-basis-missing", "4"),
    ("level 3", basis("SAMTYKKE"), "ordinary", 403, "security-level", "8"),
    ("suspended", basis("SAMTYKKE"), "ordinary", 403, "hpr-not-authorised", "8"),
    ("doctor", basis("AKUTT"), "ordinary", 400, "access-reason-missing", "4"),
    ("doctor", basis("SAMTYKKE"), "reserved", 403, "reserved", "8"),
    ("doctor", basis("AKUTT", "hjertestans"), "reserved", 403, "reserved", "8"),
    ("doctor", basis("SAMTYKKE"), "hidden", 404, None, "4"),
    ("no HPR", basis("SAMTYKKE"), "ordinary", 403, "hpr-not-authorised", "8"),
    ("doctor", basis("SAMTYKKE"), "document", 200, None, "0"),
    ("doctor", basis("SAMTYKKE"), "blocked document", 404, None, "4"),
    ("doctor", basis("AKUTT", "bevisstløs"), "blocked document", 404, None, "4"),
    ("doctor", basis("SAMTYKKE"), "reserved document", 403, "reserved", "8"),
]


@pytest.fixture(scope="module")
def entries(world: World) -> dict[str, tuple[Person, str]]:
    """An ordinary patient's entry, a reserved patient's and a hidden one; documents: an
    ordinary one, one blocked (Volven 9603 NORS) and a reserved patient's."""
    ordinary, reserved, hiding = world.person(50), world.person(51), world.person(52)
    found = {
        "ordinary": (ordinary, entry_of(world, ordinary)),
        "reserved": (reserved, entry_of(world, reserved, "9")),
        "hidden": (hiding, entry_of(world, hiding, "1")),
        "document": (ordinary, document_of(world, ordinary, "N")),
        "blocked document": (ordinary, document_of(world, ordinary, "NORS")),
        "reserved document": (reserved, document_of(world, reserved, "N")),
    }
    world.reserve(reserved, "kjernejournal")
    world.hide(hiding, found["hidden"][1].lstrip("/"))
    time.sleep(CHANGES_SEEN_WITHIN)
    return found


@pytest.mark.parametrize(
    ("who", "headers", "whose", "status", "reason", "outcome"),
    ACCESS_TABLE,
    ids=[f"{row[0]}-{'-'.join(row[1].values()) or 'none'}-{row[2]}" for row in ACCESS_TABLE],
)
def test_access_table(
    world: World,
    audit: httpx.Client,
    entries: dict[str, tuple[Person, str]],
    who: str,
    headers: dict[str, str],
    whose: str,
    status: int,
    reason: str | None,
    outcome: str,
) -> None:
    person, path = entries[whose]
    if who == "no HPR":  # in the person register, signs in as a health worker; not in HPR
        pid, hpr = world.person(45).pid, "-"
    else:
        pid, hpr = new_doctor(world, suspended=who == "suspended")
    with world.clinician(pid, level=3 if who == "level 3" else 4) as doctor:
        answer = doctor.get(path, headers=headers)
        assert answer.status_code == status, answer.text
        if reason is not None:
            assert reason_of(answer) == reason
    recorded = [summary(e) for e in records_of(audit, hpr, pid)]
    assert [(r["interaction"], r["outcome"]) for r in recorded] == [("read", outcome)]
    if status not in (400, 404):  # a hidden entry's record names nobody (hidden is quiet)
        assert recorded[0]["patients"] == [person.pid]


def test_reserved_patient_gets_no_new_critical_information(
    world: World, entries: dict[str, tuple[Person, str]]
) -> None:
    person, _ = entries["reserved"]
    pid, hpr = new_doctor(world)
    with world.clinician(pid) as doctor:
        refused = doctor.post(
            "/Flag", json=critical("9", person.patient_id, hpr), headers=basis("SAMTYKKE")
        )
        assert refused.status_code == 403 and reason_of(refused) == "reserved", refused.text
        search = doctor.get(
            "/Flag", params={"patient": f"Patient/{person.patient_id}"}, headers=basis("UNNTAK")
        )
        assert search.status_code == 403 and reason_of(search) == "reserved"


def test_a_write_refused_by_kjernejournals_rules_is_in_the_patients_log(
    world: World, audit: httpx.Client
) -> None:
    """A health worker who registers in another's name is refused (403), and the record of
    the refusal names the patient (so it is in their access log)."""
    person = world.person(53)
    pid, hpr = new_doctor(world)
    _, other = new_doctor(world)
    with world.clinician(pid) as doctor:
        refused = doctor.post(
            "/Flag", json=critical("9", person.patient_id, other), headers=basis("SAMTYKKE")
        )
        assert refused.status_code == 403, refused.text
    recorded = [summary(e) for e in records_of(audit, hpr, pid)]
    assert [(r["interaction"], r["outcome"], r["patients"]) for r in recorded] == [
        ("create", "8", [person.pid])
    ]


def test_hidden_entry_is_left_out_of_searches(
    world: World, entries: dict[str, tuple[Person, str]]
) -> None:
    person, path = entries["hidden"]
    pid, _ = new_doctor(world)
    with world.clinician(pid) as doctor:
        found = doctor.get(
            "/AllergyIntolerance",
            params={"patient": f"Patient/{person.patient_id}"},
            headers=basis("SAMTYKKE"),
        )
        assert found.status_code == 200
        assert found.json().get("entry", []) == []
    with world.citizen(person) as citizen:  # the person themself sees it
        assert citizen.get(path).status_code == 200


# random JSON shaped like critical information: the profile's parts, each sometimes wrong
scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-5, 5), st.text(max_size=8), st.just("Patient/x")
)
jsons = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=8,
)
codings = st.fixed_dictionaries(
    {"system": st.sampled_from([CATEGORY, SOURCE, "urn:x"]), "code": st.one_of(
        st.sampled_from(["1", "2", "5", "6", "7", "9", "10", "42"]), jsons)}
)  # fmt: skip
concepts = st.one_of(st.fixed_dictionaries({"coding": st.lists(codings, max_size=2)}), jsons)
extension_urls = st.sampled_from(
    [CATEGORY_EXTENSION, SOURCE_EXTENSION, VERIFIED_EXTENSION, RECORDED_EXTENSION]
)
extension = st.fixed_dictionaries(
    {"url": extension_urls},
    optional={
        "valueCoding": st.one_of(codings, jsons),
        "valueCodeableConcept": concepts,
        "valueBoolean": st.one_of(st.booleans(), jsons),
        "valueDateTime": st.one_of(st.just("2026-01-01"), jsons),
    },
)
role = st.one_of(
    st.fixed_dictionaries({"resourceType": st.just("PractitionerRole"), "id": st.just("recorder")},
                          optional={"practitioner": jsons, "organization": jsons}),
    jsons,
)  # fmt: skip


@st.composite
def shaped(draw: st.DrawFn) -> dict[str, Any]:
    category = draw(st.sampled_from(sorted(CATEGORY_TYPES)))
    resource = critical(category, "x", "565501872")
    for key in list(resource):
        if key != "resourceType" and draw(st.integers(0, 4)) == 0:
            resource[key] = draw(jsons)
        elif key != "resourceType" and draw(st.integers(0, 6)) == 0:
            del resource[key]
    if draw(st.booleans()):
        resource["extension"] = draw(st.lists(extension, max_size=4))
    if draw(st.booleans()):
        resource["contained"] = draw(st.lists(role, max_size=2))
    if draw(st.booleans()):
        resource["category"] = draw(st.one_of(concepts, st.lists(concepts, max_size=2), jsons))
    return resource


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(resource=shaped())
def test_random_critical_information_never_fails(world: World, resource: dict) -> None:
    answer = world.admin.post(f"/{resource['resourceType']}", json=resource)
    assert answer.status_code < 500, answer.text
