"""The audit trail over HTTP: every request that touched personal health information has
exactly one audit record with the right fields (denied and failed ones too), nothing else
has one; and a server killed mid-load sent no response whose record is missing."""

from __future__ import annotations

import asyncio
import os
import signal
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from policy_helpers import Person, World, auditor, basis, records_by, summary

from conftest import BACKENDS, Server, database_url_for, start_server, stop_server
from samhandling.platform.audit import events
from samhandling.platform.fhir.storage import open_store


@pytest.fixture(scope="module")
def world(server: Server) -> Iterator[World]:
    admin = httpx.Client(base_url=server.fhir, timeout=30, auth=server.auth)
    world = World(server, admin)
    world.organisation()
    yield world
    admin.close()


def test_every_access_has_exactly_one_record(world: World) -> None:
    patient: Person = world.person(44)
    entry = world.observation(patient)
    pid, hpr = world.doctor()
    subject = {"reference": f"Patient/{patient.patient_id}"}
    note = {"resourceType": "Observation", "status": "final", "code": {"text": "x"},
            "subject": subject}  # fmt: skip
    expected: list[dict[str, Any]] = []

    def expect(interaction: str, action: str, outcome: str, data: list[str], how: str) -> None:
        expected.append({"interaction": interaction, "action": action, "outcome": outcome,
                         "patients": [patient.pid], "data": sorted(data),
                         "basis": how})  # fmt: skip

    with world.clinician(pid) as doctor:
        consent, exception = basis("SAMTYKKE"), basis("UNNTAK")
        assert doctor.get(f"/Observation/{entry}", headers=consent).status_code == 200
        expect("read", "R", "0", [f"Observation/{entry}/_history/1"], "SAMTYKKE")
        found = doctor.get(f"/Observation?subject=Patient/{patient.patient_id}", headers=exception)
        assert found.status_code == 200
        expect("search", "R", "0", [f"Observation/{entry}/_history/1"], "UNNTAK")
        created = doctor.post("/Observation", json=note, headers=consent)
        assert created.status_code == 201
        new = created.json()["id"]
        expect("create", "C", "0", [f"Observation/{new}/_history/1"], "SAMTYKKE")
        updated = doctor.put(f"/Observation/{new}", json={**note, "id": new, "status": "amended"},
                             headers=consent)  # fmt: skip
        assert updated.status_code == 200
        expect("update", "U", "0", [f"Observation/{new}/_history/1",
                                    f"Observation/{new}/_history/2"], "SAMTYKKE")  # fmt: skip
        patch = [{"op": "replace", "path": "/status", "value": "corrected"}]
        json_patch = {**consent, "content-type": "application/json-patch+json"}
        patched = doctor.patch(f"/Observation/{new}", json=patch, headers=json_patch)
        assert patched.status_code == 200, patched.text
        expect("patch", "U", "0", [f"Observation/{new}/_history/2",
                                   f"Observation/{new}/_history/3"], "SAMTYKKE")  # fmt: skip
        assert doctor.get(f"/Observation/{new}/_history/1", headers=consent).status_code == 200
        expect("vread", "R", "0", [f"Observation/{new}/_history/1"], "SAMTYKKE")
        assert doctor.delete(f"/Observation/{new}", headers=consent).status_code == 204
        expect("delete", "D", "0", [f"Observation/{new}/_history/3",
                                    f"Observation/{new}/_history/4"], "SAMTYKKE")  # fmt: skip
        tagged = {**note, "identifier": [{"system": "urn:test", "value": patient.patient_id}]}
        first = doctor.post("/Observation", json=tagged, headers=consent)
        assert first.status_code == 201
        expect("create", "C", "0", [f"Observation/{first.json()['id']}/_history/1"], "SAMTYKKE")
        condition = {**consent, "if-none-exist": f"identifier=urn:test|{patient.patient_id}"}
        again = doctor.post("/Observation", json=tagged, headers=condition)
        assert again.status_code == 200  # found, not written: recorded as what it showed
        expect("create", "C", "0", [f"Observation/{first.json()['id']}/_history/1"], "SAMTYKKE")
        invalid = doctor.post("/Observation", json={**note, "status": "nonsense"}, headers=consent)
        assert invalid.status_code in (400, 422)
        expected.append({"interaction": "create", "action": "C", "outcome": "4", "patients": [],
                         "data": [], "basis": "SAMTYKKE"})  # fmt: skip
        assert doctor.get(f"/Observation/{entry}").status_code == 400  # no access basis
        expect("read", "R", "4", [], None)
        transaction = {"resourceType": "Bundle", "type": "transaction", "entry": [
            {"resource": note, "request": {"method": "POST", "url": "Observation"}},
            {"resource": note, "request": {"method": "POST", "url": "Observation"}},
        ]}  # fmt: skip
        done = doctor.post("/", json=transaction, headers=consent)
        assert done.status_code == 200, done.text
        for item in done.json()["entry"]:
            created_id = item["response"]["location"].split("/")[1]
            expect("create", "C", "0", [f"Observation/{created_id}/_history/1"], "SAMTYKKE")
        # not personal health information: no record
        assert doctor.get("/Practitioner?_count=1").status_code == 200
        assert doctor.get("/metadata").status_code == 200
    with world.clinician(pid, level=3) as weak:
        assert weak.get(f"/Observation/{entry}", headers=consent).status_code == 403
        expect("read", "R", "8", [], "SAMTYKKE")
    with auditor(world.server) as audit:
        recorded = [summary(event) for event in records_by(audit, hpr)]
    key = lambda r: (r["interaction"], r["outcome"], r["data"], r["basis"] or "")  # noqa: E731
    assert sorted(recorded, key=key) == sorted(expected, key=key)


@pytest.mark.parametrize("backend", BACKENDS)
def test_no_response_without_its_record_when_the_server_is_killed(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """Readers hammer the server; it is killed with SIGKILL mid-load. Every read answered
    with 200 before the kill has its audit record in the database afterwards."""
    database_url = database_url_for(backend, request, tmp_path)
    server = start_server(database_url, tmp_path, backend)
    try:
        admin = httpx.Client(base_url=server.fhir, timeout=30, auth=server.auth)
        world = World(server, admin)
        patient = world.person(33)
        entries = [world.observation(patient) for _ in range(60)]
        answered: list[str] = []
        stop = threading.Event()
        doctor_pid, _ = world.doctor()
        doctors = [world.clinician(doctor_pid) for _ in range(4)]

        def reader(doctor: httpx.Client) -> None:
            for id in entries * 50:
                if stop.is_set():
                    return
                try:
                    response = doctor.get(f"/Observation/{id}", headers=basis("UNNTAK"))
                except httpx.TransportError:
                    return
                if response.status_code == 200:
                    answered.append(id)

        threads = [threading.Thread(target=reader, args=(doctor,)) for doctor in doctors]
        for thread in threads:
            thread.start()
        waited = 0.0
        while len(answered) < 200 and waited < 20:
            stop.wait(0.05)
            waited += 0.05
        os.kill(server.process.pid, signal.SIGKILL)  # mid-load: requests are in flight
        server.process.wait(10)
        stop.set()
        for thread in threads:
            thread.join(30)
        for doctor in doctors:
            doctor.close()
        admin.close()
    finally:
        stop_server(server)
    assert len(answered) > 50, "the load did not get going before the kill"

    async def audited_reads() -> dict[str, int]:
        store = await open_store(database_url)
        try:
            counts: dict[str, int] = {}
            before = None
            while True:
                page = await events(store, before_id=before, limit=1000)
                for stored in page:
                    for entity in stored.record.entities:
                        if stored.record.interaction == "read":
                            id = entity.split("/")[1]
                            counts[id] = counts.get(id, 0) + 1
                if len(page) < 1000:
                    return counts
                before = page[-1].id
        finally:
            await store.close()

    counts = asyncio.run(audited_reads())
    answers: dict[str, int] = {}
    for id in answered:
        answers[id] = answers.get(id, 0) + 1
    missing = {id: n for id, n in answers.items() if counts.get(id, 0) < n}
    assert not missing, f"reads answered without their audit record: {missing}"
