"""``Patient/$open-record`` over HTTP: what an EHR shows when a kjernejournal is opened
(indicator, critical information in force, current documents), with the caller's rights,
and audited."""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import pytest
from kj_helpers import Clinic, clinic, critical, retracted
from policy_helpers import basis, records_by, submission, summary
from test_documents_http import EPICRISIS, PDF, labelled, locations
from test_indicator import values

from conftest import Server
from samhandling.services.summary.document_rules import NORS_COUNT_HEADER

SAMTYKKE = basis("SAMTYKKE")
CHANGES_SEEN_WITHIN = 1.2  # seconds: the registers' caches


@pytest.fixture(scope="module")
def setting(server: Server) -> Iterator[Clinic]:
    with clinic(server) as setting:
        yield setting


def write(setting: Clinic, entry: dict) -> str:
    response = setting.doctor.post(f"/{entry['resourceType']}", json=entry, headers=SAMTYKKE)
    assert response.status_code == 201, response.text
    return f"{entry['resourceType']}/{response.json()['id']}"


def opened(
    client: httpx.Client, path: str, **params: str
) -> tuple[dict, list[str], httpx.Response]:
    response = client.get(path, params=params, headers=SAMTYKKE)
    assert response.status_code == 200, response.text
    bundle = response.json()
    assert bundle["type"] == "collection"
    indicator = values(bundle["entry"][0]["resource"])
    shown = sorted(
        f"{e['resource']['resourceType']}/{e['resource']['id']}" for e in bundle["entry"][1:]
    )
    return indicator, shown, response


def test_the_record_shows_what_is_in_force(setting: Clinic) -> None:
    world, doctor = setting.world, setting.doctor
    person = world.person(55)
    patient = person.patient_id
    allergy = write(setting, critical("1", patient, setting.hpr))
    infection = write(setting, critical("10", patient, setting.hpr))
    implant = write(setting, critical("7", patient, setting.hpr))
    gone = write(setting, critical("5", patient, setting.hpr))
    stored = doctor.get(f"/{gone}", headers=SAMTYKKE).json()
    assert doctor.put(f"/{gone}", json=retracted(stored), headers=SAMTYKKE).status_code == 200
    plain = critical("5", patient, setting.hpr)
    del plain["category"]  # an EHR's diagnosis: not critical information
    write(setting, plain)
    shared = setting.doctor.post("/", json=submission(patient, (PDF, EPICRISIS)), headers=SAMTYKKE)
    (document,) = locations(shared, "DocumentReference")
    blocked = setting.doctor.post("/", json=labelled(person, "NORS"), headers=SAMTYKKE)
    assert blocked.status_code == 200, blocked.text

    indicator, shown, response = opened(doctor, f"/Patient/{patient}/$open-record")
    assert shown == sorted([allergy, infection, implant, document])
    assert indicator["status"] == 4 and indicator["documents"] is True
    assert sorted(p["type"] for p in indicator["criticalInformationByType"]) == [
        "AllergyIntolerance", "Condition", "DeviceUseStatement"]  # fmt: skip
    assert response.headers[NORS_COUNT_HEADER] == "1"
    by_number, shown_by_number, _ = opened(doctor, "/Patient/$open-record", identifier=person.pid)
    assert shown_by_number == shown and by_number == indicator
    # audited: the Patient and every entry shown, under the access basis given
    record = next(
        summary(r)
        for r in records_by(setting.audit, setting.hpr)
        if r["subtype"][0]["code"] == "operation"
    )
    assert record["patients"] == [person.pid] and record["basis"] == "SAMTYKKE"
    assert {d.split("/_history")[0] for d in record["data"]} == {f"Patient/{patient}", *shown}


def test_a_reserved_or_unknown_patient(setting: Clinic) -> None:
    world = setting.world
    reserved = world.person(56)
    write(setting, critical("1", reserved.patient_id, setting.hpr))
    world.reserve(reserved, "kjernejournal")
    time.sleep(CHANGES_SEEN_WITHIN)
    indicator, shown, _ = opened(setting.doctor, f"/Patient/{reserved.patient_id}/$open-record")
    assert indicator["status"] == 1 and indicator["reserved"] is True and shown == []
    invalid, shown, _ = opened(setting.doctor, "/Patient/$open-record", identifier="12345678901")
    assert invalid["status"] == 0 and shown == []
    missing = setting.doctor.get("/Patient/$open-record", headers=SAMTYKKE)
    assert missing.status_code == 400
    assert missing.json()["resourceType"] == "OperationOutcome"
    without_basis = setting.doctor.get(f"/Patient/{reserved.patient_id}/$open-record")
    assert without_basis.status_code == 400
