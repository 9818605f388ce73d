"""Kjernejournal's critical information over HTTP: each category registered by a health
worker, read back and found; and every breach of the profiles refused with 422 naming the
element."""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from kj_helpers import CATEGORY_TYPES, critical, expressions
from kj_helpers import doctor as new_doctor
from policy_helpers import World, basis, ids

from conftest import Server
from samhandling.services.summary.model import (
    CATEGORY,
    CATEGORY_EXTENSION,
    RECORDED_EXTENSION,
    SOURCE_EXTENSION,
    VERIFIED_EXTENSION,
)

CONSENT = basis("SAMTYKKE")


@pytest.fixture(scope="module")
def world(server: Server) -> Iterator[World]:
    with httpx.Client(base_url=server.fhir, timeout=30, auth=server.auth) as admin:
        world = World(server, admin)
        world.organisation()
        yield world


@pytest.fixture(scope="module")
def doctor(world: World) -> Iterator[tuple[httpx.Client, str]]:
    pid, hpr = new_doctor(world)
    with world.clinician(pid) as client:
        yield client, hpr


@pytest.mark.parametrize("category", sorted(CATEGORY_TYPES, key=int))
def test_each_category(world: World, doctor: tuple[httpx.Client, str], category: str) -> None:
    client, hpr = doctor
    patient = world.person(50)
    type_name, by_patient = CATEGORY_TYPES[category]
    entry = critical(category, patient.patient_id, hpr)
    created = client.post(f"/{type_name}", json=entry, headers=CONSENT)
    assert created.status_code == 201, created.text
    stored = created.json()
    read = client.get(f"/{type_name}/{stored['id']}", headers=CONSENT)
    assert read.status_code == 200
    assert read.json()["contained"][0]["practitioner"]["identifier"]["value"] == hpr
    found = client.get(
        f"/{type_name}", params={by_patient: f"Patient/{patient.patient_id}"}, headers=CONSENT
    )
    assert found.status_code == 200, found.text
    assert ids(found.json()) == {stored["id"]}
    mine = {by_patient: f"Patient/{patient.patient_id}"}
    if type_name == "AllergyIntolerance":  # FHIR's own category tells 1 from 2
        kind, other = ("medication", "food") if category == "1" else ("food", "medication")
        filters = [({"category": kind}, {stored["id"]}), ({"category": other}, set())]
    elif type_name in ("DeviceUseStatement", "Flag"):
        filters = []  # R4 has no category search parameter on these (an open point)
    else:
        other = "9" if category != "9" else "6"  # a category of another type: nothing
        filters = [
            ({"category": f"{CATEGORY}|{category}"}, {stored["id"]}),
            ({"category": f"{CATEGORY}|{other}"}, set()),
        ]
    for criteria, expected in filters:
        filtered = client.get(f"/{type_name}", params={**mine, **criteria}, headers=CONSENT)
        assert filtered.status_code == 200, filtered.text
        assert ids(filtered.json()) == expected, criteria


Breach = Callable[[dict[str, Any]], None]


def drop(key: str) -> Breach:
    return lambda r: r.pop(key, None)


def set_(key: str, value: Any) -> Breach:
    return lambda r: r.__setitem__(key, value)


def drop_extension(url: str) -> Breach:
    def change(resource: dict[str, Any]) -> None:
        resource["extension"] = [e for e in resource.get("extension", []) if e["url"] != url]

    return change


def change_extension(url: str, value: dict[str, Any]) -> Breach:
    def change(resource: dict[str, Any]) -> None:
        for e in resource.get("extension", []):
            if e["url"] == url:
                e.clear()
                e.update({"url": url, **value})

    return change


def role(part: str, value: Any) -> Breach:
    def change(resource: dict[str, Any]) -> None:
        resource["contained"][0][part] = value

    return change


# (category, what is wrong, the change, a word the expression names); the patient is
# required by R4 itself, refused by the structural validation (400) before the profile's
# fmt: off
BREACHES: list[tuple[str, str, Breach, str]] = [
    ("3", "category of another type", set_("category", [{"coding": [
        {"system": CATEGORY, "code": "6"}]}]), "Condition.category"),
    ("3", "unknown category", set_("category", [{"coding": [
        {"system": CATEGORY, "code": "99"}]}]), "Condition.category"),
    ("6", "Procedure with category 9", set_("category", {"coding": [
        {"system": CATEGORY, "code": "9"}]}), "Procedure.category"),
    ("1", "drug reaction without FHIR category medication", set_("category", ["food"]),
     "AllergyIntolerance.category"),
    ("5", "no subject", drop("subject"), "Condition.subject"),
    ("5", "subject not a Patient", set_("subject", {"reference": "Group/g1"}),
     "Condition.subject"),
    ("1", "no patient", drop("patient"), "AllergyIntolerance.patient"),
    ("5", "no recorder", drop("recorder"), "Condition.recorder"),
    ("5", "recorder not the contained role", set_("recorder", {"reference": "Practitioner/x"}),
     "Condition.recorder"),
    ("5", "no contained role", drop("contained"), "contained"),
    ("5", "recorder without HPR number", role("practitioner", {"display": "Lege"}),
     "practitioner.identifier"),
    ("5", "recorder with an invalid HPR number", role("practitioner", {"identifier": {
        "system": "urn:oid:2.16.578.1.12.4.1.4.4", "value": "abc"}}),
     "practitioner.identifier.value"),
    ("5", "recorder without organisation", role("organization", {"display": "Sykehuset"}),
     "organization.identifier"),
    ("5", "recorder with an invalid organisation number", role("organization", {
        "identifier": {"system": "urn:oid:2.16.578.1.12.4.1.4.101", "value": "123456789"}}),
     "organization.identifier.value"),
    ("9", "Flag without author", drop("author"), "Flag.author"),
    ("7", "implant without source (recorder)", drop("source"), "DeviceUseStatement.source"),
    ("5", "no recordedDate", drop("recordedDate"), "Condition.recordedDate"),
    ("7", "no recordedOn", drop("recordedOn"), "DeviceUseStatement.recordedOn"),
    ("6", "no recorded extension", drop_extension(RECORDED_EXTENSION), RECORDED_EXTENSION),
    ("9", "no source of information", drop_extension(SOURCE_EXTENSION), SOURCE_EXTENSION),
    ("9", "unknown source of information", change_extension(SOURCE_EXTENSION, {
        "valueCoding": {"system": "http://samhandling.no/fhir/CodeSystem/"
                        "critical-information-source", "code": "42"}}),
     SOURCE_EXTENSION),
    ("9", "source as a string", change_extension(SOURCE_EXTENSION, {"valueString": "lege"}),
     SOURCE_EXTENSION),
    ("5", "no verificationStatus", drop("verificationStatus"), "Condition.verificationStatus"),
    ("2", "no verificationStatus", drop("verificationStatus"),
     "AllergyIntolerance.verificationStatus"),
    ("9", "no verified extension", drop_extension(VERIFIED_EXTENSION), VERIFIED_EXTENSION),
    ("6", "verified not a boolean", change_extension(VERIFIED_EXTENSION,
     {"valueString": "ja"}), VERIFIED_EXTENSION),
    ("3", "no code", drop("code"), "Condition.code"),
    ("9", "empty code", set_("code", {}), "Flag.code"),
]
# fmt: on


@pytest.mark.parametrize(
    ("category", "breach", "change", "element"),
    BREACHES,
    ids=[f"{c}-{what}" for c, what, _, _ in BREACHES],
)
def test_profile_breaches_are_refused(
    world: World,
    doctor: tuple[httpx.Client, str],
    category: str,
    breach: str,
    change: Breach,
    element: str,
) -> None:
    client, hpr = doctor
    patient = world.person(30)
    entry = copy.deepcopy(critical(category, patient.patient_id, hpr))
    change(entry)
    type_name = entry["resourceType"]
    status = 400 if breach in ("no subject", "no patient") else 422
    for writer, headers in ((client, CONSENT), (world.admin, {})):
        refused = writer.post(f"/{type_name}", json=entry, headers=headers)
        assert refused.status_code == status, (breach, refused.text)
        found = expressions(refused)
        assert any(element in e for e in found), (breach, found)


# without a Kjernejournal category an entry is not critical information: a plain FHIR
# resource of the same type (an EHR's diagnosis, the demo's clinical data), kept as it is
NOT_CRITICAL: list[tuple[str, Breach]] = [
    ("3", drop("category")),
    ("1", drop_extension(CATEGORY_EXTENSION)),
    ("7", drop_extension(CATEGORY_EXTENSION)),
]


@pytest.mark.parametrize(("category", "change"), NOT_CRITICAL)
def test_without_the_category_it_is_not_critical_information(
    world: World, doctor: tuple[httpx.Client, str], category: str, change: Breach
) -> None:
    client, hpr = doctor
    patient = world.person(30)
    entry = copy.deepcopy(critical(category, patient.patient_id, hpr))
    change(entry)
    type_name = entry["resourceType"]
    stored = world.admin.post(f"/{type_name}", json=entry)
    assert stored.status_code == 201, stored.text
    critical_entry = critical(category, patient.patient_id, hpr)
    made = client.post(f"/{type_name}", json=critical_entry, headers=CONSENT)
    assert made.status_code == 201, made.text
    uncategorised = {k: v for k, v in made.json().items() if k != "meta"}
    change(uncategorised)
    uncategorised["meta"] = {"versionId": made.json()["meta"]["versionId"]}
    kept = client.put(f"/{type_name}/{made.json()['id']}", json=uncategorised, headers=CONSENT)
    assert kept.status_code == 409, kept.text  # critical information keeps its category
