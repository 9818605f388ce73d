"""The health indicator over HTTP: Kjernejournal's status codes for a patient, cheaply,
under Kjernejournal's access rules, and audited."""

from __future__ import annotations

import time

import httpx
import pytest
from kj_helpers import critical
from kj_helpers import retracted as retracted_entry
from policy_helpers import World, basis, born, new_person_number

from conftest import Server
from samhandling.platform.identifiers import FNR_SYSTEM

CHANGES_SEEN_WITHIN = 1.2  # seconds: the registers' caches


def values(parameters: dict) -> dict:
    """The Parameters' values by name (parts as lists of dicts)."""
    found: dict = {}
    for parameter in parameters.get("parameter", []):
        if "part" in parameter:
            found.setdefault(parameter["name"], []).append(values({"parameter": parameter["part"]}))
            continue
        found[parameter["name"]] = next(v for k, v in parameter.items() if k.startswith("value"))
    return found


@pytest.fixture(scope="module")
def world(server: Server):
    with httpx.Client(base_url=server.fhir, timeout=30, auth=server.auth) as admin:
        yield World(server, admin)


def flag(world: World, patient_id: str, *, critical_information: bool = True) -> str:
    """A Flag (category 9: another change of procedure), written by the system client; without
    the Kjernejournal category it is a plain Flag, not critical information."""
    entry = critical("9", patient_id, "2058756")
    if not critical_information:
        del entry["category"]
    response = world.admin.post("/Flag", json=entry)
    assert response.status_code == 201, response.text
    return response.json()["id"]


def test_status_codes(world: World) -> None:
    empty, critical, reserved = world.person(40), world.person(41), world.person(42)
    flag(world, critical.patient_id)
    world.reserve(reserved, "kjernejournal")
    time.sleep(CHANGES_SEEN_WITHIN)
    admin = world.admin
    nobody = new_person_number(born(70))  # a valid number no one in the register has
    unknown = admin.get("/Patient/$helseindikator", params={"identifier": nobody})
    assert values(unknown.json())["status"] == 0
    invalid = admin.get("/Patient/$helseindikator", params={"identifier": "12345678901"})
    assert values(invalid.json())["status"] == 0
    none = values(admin.get("/Patient/$helseindikator", params={"identifier": empty.pid}).json())
    assert none["status"] == 2 and none["criticalInformation"] is False
    assert none["reserved"] is False and none["blockedPersonnel"] is False
    found = admin.get(
        "/Patient/$helseindikator", params={"identifier": f"{FNR_SYSTEM}|{critical.pid}"}
    )
    got = values(found.json())
    assert got["status"] == 4 and got["criticalInformation"] is True
    assert got["criticalInformationByType"] == [
        {"type": "Flag", "count": 1, "changed": got["criticalInformationChanged"]}
    ]
    by_id = values(admin.get(f"/Patient/{critical.patient_id}/$helseindikator").json())
    assert by_id["status"] == 4
    retracted = world.person(43)
    flag_id = flag(world, retracted.patient_id)
    entry = admin.get(f"/Flag/{flag_id}").json()
    gone = admin.put(f"/Flag/{flag_id}", json=retracted_entry(entry))
    assert gone.status_code == 200, gone.text
    flag(world, retracted.patient_id, critical_information=False)
    after = values(admin.get(f"/Patient/{retracted.patient_id}/$helseindikator").json())
    assert after["status"] == 2  # neither a retracted entry nor a plain Flag is critical
    kept_out = values(
        admin.get("/Patient/$helseindikator", params={"identifier": reserved.pid}).json()
    )
    assert kept_out["status"] == 1 and kept_out["reserved"] is True


def test_under_kjernejournals_rules(world: World) -> None:
    patient = world.person(50)
    doctor = world.doctor()[0]
    with world.clinician(doctor) as clinician:
        path = f"/Patient/{patient.patient_id}/$helseindikator"
        assert clinician.get(path).status_code == 400  # no access basis
        allowed = clinician.get(path, headers=basis("UNNTAK"))
        assert allowed.status_code == 200, allowed.text
    with world.clinician(doctor, level=3) as weak:
        assert weak.get(path, headers=basis("UNNTAK")).status_code == 403
    assert world.admin.get("/Patient/$helseindikator").status_code == 400  # no identifier
    with world.citizen(patient, base=world.server.url) as citizen:  # in the patient's log
        log = citizen.get("/audit/access-log").json()["entries"]
    looks = [(e["outcome"], e["service"]) for e in log if e["who"].get("kind") == "personnel"]
    # level 3, allowed, no basis (newest first); Kjernejournal's, not the person register's
    assert looks == [("refused", "kjernejournal"), ("ok", "kjernejournal"),
                     ("refused", "kjernejournal")]  # fmt: skip
