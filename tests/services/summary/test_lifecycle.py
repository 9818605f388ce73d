"""The life of an entry of critical information over HTTP: registered, corrected (naming the
version it corrects), verified, retracted (entered-in-error, never deleted); who registered
it is the health worker who wrote it; citizens read theirs and write none. Each step leaves
exactly one audit record."""

from __future__ import annotations

import copy
from collections.abc import Iterator

import httpx
import pytest
from kj_helpers import CONDITION_VERIFICATION, critical, retracted, with_version
from kj_helpers import doctor as new_doctor
from policy_helpers import World, auditor, basis, records_by, summary

from conftest import Server

CONSENT = basis("SAMTYKKE")


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


def verification(code: str) -> dict:
    return {"coding": [{"system": CONDITION_VERIFICATION, "code": code}]}


def test_register_correct_verify_retract(world: World, audit: httpx.Client) -> None:
    patient = world.person(60)
    pid, hpr = new_doctor(world)
    entry = critical("5", patient.patient_id, hpr)
    entry["verificationStatus"] = verification("unconfirmed")
    steps: list[tuple[str, str]] = []  # (interaction, outcome) of each step, in order
    with world.clinician(pid) as doctor:
        created = doctor.post("/Condition", json=entry, headers=CONSENT)
        assert created.status_code == 201, created.text
        steps.append(("create", "0"))
        first = created.json()
        path = f"/Condition/{first['id']}"

        corrected = copy.deepcopy(first)
        corrected["note"] = [{"text": "Kortisonbehandling må ikke avbrytes"}]
        answer = doctor.put(path, json=with_version(corrected, "1"), headers=CONSENT)
        assert answer.status_code == 200, answer.text
        assert answer.json()["meta"]["versionId"] == "2"
        steps.append(("update", "0"))

        stale = doctor.put(path, json=with_version(corrected, "1"), headers=CONSENT)
        assert stale.status_code == 409, stale.text
        assert "current version is 2" in stale.text
        steps.append(("update", "4"))
        missing = doctor.put(path, json=with_version(corrected, None), headers=CONSENT)
        assert missing.status_code == 409, missing.text
        assert "meta.versionId" in missing.text
        steps.append(("update", "4"))

        confirmed = {**corrected, "verificationStatus": verification("confirmed")}
        answer = doctor.put(path, json=with_version(confirmed, "2"), headers=CONSENT)
        assert answer.status_code == 200, answer.text
        steps.append(("update", "0"))

        gone = retracted(confirmed)
        answer = doctor.put(path, json=with_version(gone, "3"), headers=CONSENT)
        assert answer.status_code == 200, answer.text
        steps.append(("update", "0"))

        back = doctor.put(path, json=with_version(confirmed, "4"), headers=CONSENT)
        assert back.status_code == 409, back.text
        assert "entered-in-error" in back.text
        steps.append(("update", "4"))
        patched = doctor.patch(
            path,
            json=[{"op": "add", "path": "/note", "value": [{"text": "x"}]}],
            headers={**CONSENT, "content-type": "application/json-patch+json"},
        )
        assert patched.status_code == 409, patched.text
        steps.append(("patch", "4"))

        deleted = doctor.delete(path, headers=CONSENT)
        assert deleted.status_code == 405, deleted.text
        assert "entered-in-error" in deleted.json()["issue"][0]["diagnostics"]
        steps.append(("delete", "4"))

    history = world.admin.get(f"{path}/_history").json()
    versions = sorted(e["resource"]["meta"]["versionId"] for e in history["entry"])
    assert versions == ["1", "2", "3", "4"]
    assert world.admin.get(path).json()["verificationStatus"] == verification("entered-in-error")

    recorded = [summary(e) for e in reversed(records_by(audit, hpr))]
    assert [(r["interaction"], r["outcome"]) for r in recorded] == steps
    assert all(r["basis"] == "SAMTYKKE" for r in recorded), recorded
    # the successful steps name the patient; a write the service's rules refused touched
    # nothing, and its record names no patient (an open point of the platform's trail)
    assert all(r["patients"] == [patient.pid] for r in recorded if r["outcome"] == "0")


def test_every_type_retracts_and_refuses_delete(world: World) -> None:
    patient = world.person(61)
    pid, hpr = new_doctor(world)
    with world.clinician(pid) as doctor:
        for category in ("1", "6", "7", "9"):
            entry = critical(category, patient.patient_id, hpr)
            type_name = entry["resourceType"]
            created = doctor.post(f"/{type_name}", json=entry, headers=CONSENT)
            assert created.status_code == 201, created.text
            path = f"/{type_name}/{created.json()['id']}"
            assert doctor.delete(path, headers=CONSENT).status_code == 405
            gone = with_version(retracted(created.json()), "1")
            answer = doctor.put(path, json=gone, headers=CONSENT)
            assert answer.status_code == 200, (type_name, answer.text)
            again = doctor.put(path, json=with_version(created.json(), "2"), headers=CONSENT)
            assert again.status_code == 409, (type_name, again.text)


def test_the_recorder_is_the_health_worker_who_writes(world: World) -> None:
    patient = world.person(62)
    pid, hpr = new_doctor(world)
    _, colleague = new_doctor(world)
    with world.clinician(pid) as doctor:
        for someone_else in (
            critical("9", patient.patient_id, colleague),
            critical("9", patient.patient_id, hpr, orgnr="974703300"),
        ):
            refused = doctor.post("/Flag", json=someone_else, headers=CONSENT)
            assert refused.status_code == 403, refused.text
            assert "recorder" in refused.text, refused.text
        created = doctor.post("/Flag", json=critical("9", patient.patient_id, hpr), headers=CONSENT)
        assert created.status_code == 201, created.text
        # a correction by a colleague names the colleague; naming the first doctor is refused
        stored = created.json()
        path = f"/Flag/{stored['id']}"
    colleague_pid, colleague_hpr = new_doctor(world)
    with world.clinician(colleague_pid) as other:
        same = other.put(path, json=with_version(stored, "1"), headers=CONSENT)
        assert same.status_code == 403, same.text
        own = critical("9", patient.patient_id, colleague_hpr)
        own = {**own, "id": stored["id"], "meta": {"versionId": "1"}}
        assert other.put(path, json=own, headers=CONSENT).status_code == 200
    # a system (the EHR's integration) with the write scope names whom it records for
    by_system = world.admin.post("/Flag", json=critical("9", patient.patient_id, colleague))
    assert by_system.status_code == 201, by_system.text


def test_citizens_read_their_own_and_write_none(world: World) -> None:
    patient = world.person(40)
    pid, hpr = new_doctor(world)
    with world.clinician(pid) as doctor:
        created = doctor.post(
            "/AllergyIntolerance", json=critical("1", patient.patient_id, hpr), headers=CONSENT
        )
        assert created.status_code == 201, created.text
    entry = created.json()
    with world.citizen(patient) as citizen:
        assert citizen.get(f"/AllergyIntolerance/{entry['id']}").status_code == 200
        mine = citizen.get("/AllergyIntolerance")
        assert mine.status_code == 200
        assert [e["resource"]["id"] for e in mine.json().get("entry", [])] == [entry["id"]]
        write = citizen.post("/AllergyIntolerance", json=critical("1", patient.patient_id, hpr))
        assert write.status_code == 403, write.text
        change = citizen.put(
            f"/AllergyIntolerance/{entry['id']}", json=with_version(retracted(entry), "1")
        )
        assert change.status_code == 403, change.text
        assert citizen.delete(f"/AllergyIntolerance/{entry['id']}").status_code == 403
