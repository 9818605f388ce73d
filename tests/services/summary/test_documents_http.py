"""Kjernejournal's document sharing (IHE MHD) over HTTP, with the access policy, on SQLite
and PostgreSQL: ITI-65 by a health worker, ITI-67 and ITI-66 searches, ITI-68 reads,
replacement and deprecation, the document write rules, and confidentiality (Volven 9603)."""

from __future__ import annotations

import base64
import copy
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from kj_helpers import Clinic, clinic
from policy_helpers import Person, basis, records_by, submission, summary, urn

from conftest import TEST_ORGNR, Server
from samhandling.platform.identifiers import FNR_SYSTEM, ORGNR_SYSTEM
from samhandling.services.summary.document_rules import NORS_COUNT_HEADER
from samhandling.services.summary.documents import (
    CONFIDENTIALITY_SYSTEM,
    DOCUMENT_TYPE_SYSTEM,
    MHD_LIST_TYPES,
    SOURCE_KIND_SYSTEM,
)

SAMTYKKE = basis("SAMTYKKE")
EPICRISIS, SICK_LEAVE = ("A03-2", "A00-1"), ("J01-2", "J00-1")
PDF = b"%PDF-1.4 epikrise fra sykehuset"


@pytest.fixture(scope="module")
def setting(server: Server) -> Iterator[Clinic]:
    with clinic(server) as setting:
        yield setting


def share(setting: Clinic, bundle: dict[str, Any]) -> httpx.Response:
    return setting.doctor.post("/", json=bundle, headers=SAMTYKKE)


def locations(response: httpx.Response, type_name: str) -> list[str]:
    assert response.status_code == 200, response.text
    return [
        e["response"]["location"].split("/_history")[0]
        for e in response.json()["entry"]
        if e["response"]["location"].startswith(f"{type_name}/")
    ]


def found(client: httpx.Client, path: str, **headers: str) -> list[str]:
    response = client.get(path, headers={**SAMTYKKE, **headers})
    assert response.status_code == 200, response.text
    return sorted(
        f"{e['resource']['resourceType']}/{e['resource']['id']}"
        for e in response.json().get("entry", [])
        if e.get("search", {}).get("mode") == "match"
    )


def labelled(person: Person, code: str, content: bytes = PDF) -> dict[str, Any]:
    """A submission of one document with confidentiality ``code``."""
    bundle = submission(person.patient_id, (content, EPICRISIS))
    label = bundle["entry"][1]["resource"]["securityLabel"][0]["coding"][0]
    label["code"] = code
    return bundle


def test_a_shared_document_is_found_with_iti67_iti66_and_read_with_iti68(
    setting: Clinic,
) -> None:
    person = setting.world.person(45)
    response = share(setting, submission(person.patient_id, (PDF, EPICRISIS), (b"syk", SICK_LEAVE)))
    assert [e["response"]["status"][:3] for e in response.json()["entry"]] == ["201"] * 5
    documents = sorted(locations(response, "DocumentReference"))
    epicrisis = locations(response, "DocumentReference")[0]
    binary = locations(response, "Binary")[0]
    submission_set = locations(response, "List")[0]
    doctor, patient = setting.doctor, person.patient_id

    def where(query: str) -> list[str]:
        return found(doctor, f"/DocumentReference?patient={patient}&{query}")

    assert where("status=current") == documents
    assert where(f"type={DOCUMENT_TYPE_SYSTEM}|A03-2") == [epicrisis]
    assert where(f"category={DOCUMENT_TYPE_SYSTEM}|A00-1") == [epicrisis]
    assert where(f"author:identifier={ORGNR_SYSTEM}|{TEST_ORGNR}") == documents
    assert where(f"author:identifier={ORGNR_SYSTEM}|999999999") == []
    assert where("date=ge2026-02-01") == documents
    assert where("date=lt2026-02-01") == []
    assert where(f"facility={SOURCE_KIND_SYSTEM}|sykehus") == documents
    # PJD's shape: POST _search with the patient's fødselsnummer in a form body
    searched = doctor.post(
        "/DocumentReference/_search",
        data={
            "patient.identifier": f"{FNR_SYSTEM}|{person.pid}",
            "status": "current",
            "_sort": "-date",
        },
        headers=SAMTYKKE,
    )
    assert searched.status_code == 200, searched.text
    assert len(searched.json()["entry"]) == 2
    assert searched.headers[NORS_COUNT_HEADER] == "0"
    # ITI-66: the SubmissionSet
    assert found(doctor, f"/List?patient={patient}&code={MHD_LIST_TYPES}|submissionset") == [
        submission_set
    ]
    # ITI-68: the document's content, from the url in its DocumentReference
    document = doctor.get(f"/{epicrisis}", headers=SAMTYKKE).json()
    url = document["content"][0]["attachment"]["url"]
    assert url == binary
    raw = doctor.get(f"/{url}", headers={**SAMTYKKE, "Accept": "application/pdf"})
    assert raw.status_code == 200 and raw.content == PDF
    assert raw.headers["content-type"].startswith("application/pdf")
    assert raw.headers["x-security-context"] == epicrisis
    content = doctor.get(f"/{url}", headers={**SAMTYKKE, "Accept": "application/fhir+json"})
    assert base64.b64decode(content.json()["data"]) == PDF
    assert content.json()["securityContext"]["reference"] == epicrisis
    # the submission and the content read are in the trail, with the patient they concern
    seen = [summary(r) for r in records_by(setting.audit, setting.hpr)]
    assert {"interaction": "read", "action": "R", "outcome": "0", "patients": [person.pid],
            "data": [f"{binary}/_history/1"], "basis": "SAMTYKKE"} in seen  # fmt: skip
    shared = [s for s in seen if f"{epicrisis}/_history/1" in s["data"] and s["action"] == "C"]
    assert shared and shared[0]["patients"] == [person.pid]


def missing_master_identifier(bundle: dict) -> None:
    del bundle["entry"][1]["resource"]["masterIdentifier"]


def other_patient_in_one_entry(bundle: dict, other: str) -> None:
    bundle["entry"][3]["resource"]["subject"]["reference"] = f"Patient/{other}"


def wrong_hash(bundle: dict) -> None:
    bundle["entry"][1]["resource"]["content"][0]["attachment"]["hash"] = base64.b64encode(
        b"\0" * 20
    ).decode()


def type_of_another_class(bundle: dict) -> None:
    bundle["entry"][1]["resource"]["type"]["coding"][0]["code"] = "J01-2"  # class J00-1


def no_author_organisation(bundle: dict) -> None:
    authors = bundle["entry"][1]["resource"]["author"]
    authors[:] = [a for a in authors if a["type"] != "Organization"]


@pytest.mark.parametrize(
    ("spoil", "status"),
    [(missing_master_identifier, 422), ("other-patient", 422), (wrong_hash, 422),
     (no_author_organisation, 422), (type_of_another_class, 422)],
)  # fmt: skip
def test_an_invalid_submission_is_refused_whole(
    setting: Clinic, spoil: Callable[[dict], None] | str, status: int
) -> None:
    person, other = setting.world.person(46), setting.world.person(47)
    bundle = submission(person.patient_id, (PDF, EPICRISIS), (b"syk", SICK_LEAVE))
    if spoil == "other-patient":
        other_patient_in_one_entry(bundle, other.patient_id)
    else:
        assert callable(spoil)
        spoil(bundle)
    response = share(setting, bundle)
    assert response.status_code == status, response.text
    assert response.json()["resourceType"] == "OperationOutcome"
    for someone in (person, other):
        assert found(setting.doctor, f"/DocumentReference?patient={someone.patient_id}") == []
        assert found(setting.doctor, f"/List?patient={someone.patient_id}") == []


def replacing(person: Person, old: str, content: bytes) -> dict[str, Any]:
    """A submission of a document that replaces ``old``, with ``old`` superseded."""
    bundle = submission(person.patient_id, (content, EPICRISIS))
    bundle["entry"][1]["resource"]["relatesTo"] = [
        {"code": "replaces", "target": {"reference": old}}
    ]
    return bundle


def test_a_newer_document_replaces_the_old(setting: Clinic) -> None:
    person = setting.world.person(48)
    doctor = setting.doctor
    (old,) = locations(share(setting, submission(person.patient_id, (PDF, EPICRISIS))),
                       "DocumentReference")  # fmt: skip
    stored = doctor.get(f"/{old}", headers=SAMTYKKE).json()
    # replacing without superseding the old one in the same submission is refused
    alone = share(setting, replacing(person, old, b"%PDF-1.4 v2"))
    assert alone.status_code == 422, alone.text
    bundle = replacing(person, old, b"%PDF-1.4 v2")
    superseded = {**copy.deepcopy(stored), "status": "superseded"}
    bundle["entry"].append(
        {"resource": superseded, "request": {"method": "PUT", "url": old}, "fullUrl": urn()}
    )
    (new,) = set(locations(share(setting, bundle), "DocumentReference")) - {old}
    patient = person.patient_id
    assert found(doctor, f"/DocumentReference?patient={patient}&status=current") == [new]
    assert found(doctor, f"/DocumentReference?patient={patient}&status=superseded") == [old]
    assert doctor.get(f"/{new}", headers=SAMTYKKE).json()["relatesTo"][0]["target"] == {
        "reference": old
    }


def test_a_shared_document_only_changes_status_forward(setting: Clinic) -> None:
    person = setting.world.person(49)
    doctor = setting.doctor
    response = share(setting, submission(person.patient_id, (PDF, EPICRISIS)))
    (document,), (binary,) = locations(response, "DocumentReference"), locations(response, "Binary")
    stored = doctor.get(f"/{document}", headers=SAMTYKKE).json()
    retitled = copy.deepcopy(stored)
    retitled["content"][0]["attachment"]["title"] = "Noe annet"
    assert doctor.put(f"/{document}", json=retitled, headers=SAMTYKKE).status_code == 409
    assert doctor.delete(f"/{document}", headers=SAMTYKKE).status_code == 405
    fhir_json = {**SAMTYKKE, "Accept": "application/fhir+json"}
    content = doctor.get(f"/{binary}", headers=fhir_json).json()
    assert doctor.put(f"/{binary}", json=content, headers=SAMTYKKE).status_code == 405
    assert doctor.delete(f"/{binary}", headers=SAMTYKKE).status_code == 405
    deprecated = {**stored, "status": "entered-in-error"}
    changed = doctor.put(f"/{document}", json=deprecated, headers=SAMTYKKE)
    assert changed.status_code == 200, changed.text
    back = {**stored, "status": "current"}
    assert doctor.put(f"/{document}", json=back, headers=SAMTYKKE).status_code == 409
    assert found(doctor, f"/DocumentReference?patient={person.patient_id}&status=current") == []
    # citizens read documents; they do not share them
    with setting.world.citizen(person) as citizen:
        own = submission(person.patient_id, (PDF, EPICRISIS))
        assert citizen.post("/", json=own).status_code == 403


def test_confidentiality_codes_hide_documents(setting: Clinic) -> None:
    person = setting.world.person(51)
    doctor, patient = setting.doctor, person.patient_id
    normal = locations(share(setting, labelled(person, "N")), "DocumentReference")[0]
    blocked_response = share(setting, labelled(person, "NORS", b"%PDF sperret"))
    blocked = locations(blocked_response, "DocumentReference")[0]
    blocked_binary = locations(blocked_response, "Binary")[0]
    denied = locations(share(setting, labelled(person, "NORN_EPO")), "DocumentReference")[0]
    # health personnel: the blocked document is withheld, and counted
    response = doctor.get(f"/DocumentReference?patient={patient}&_total=accurate",
                          headers=SAMTYKKE)  # fmt: skip
    assert response.status_code == 200, response.text
    assert sorted(e["resource"]["id"] for e in response.json()["entry"]) == sorted(
        d.split("/")[1] for d in (normal, denied)
    )
    assert response.json()["total"] == 2
    assert response.headers[NORS_COUNT_HEADER] == "1"
    assert doctor.get(f"/{blocked}", headers=SAMTYKKE).status_code == 404
    assert doctor.get(f"/{blocked_binary}", headers=SAMTYKKE).status_code == 404
    labelled_search = (
        f"/DocumentReference?patient={patient}&security-label={CONFIDENTIALITY_SYSTEM}|NORS"
    )
    assert found(doctor, labelled_search) == []
    # the patient: their blocked document, not the one withheld from them (innsyn nektet)
    with setting.world.citizen(person) as citizen:
        assert found(citizen, f"/DocumentReference?patient={patient}") == sorted([normal, blocked])
        assert citizen.get(f"/{denied}").status_code == 404
        assert citizen.get(f"/{blocked_binary}").status_code == 200
        assert NORS_COUNT_HEADER not in citizen.get(f"/DocumentReference?patient={patient}").headers


def test_a_large_document_is_shared_and_retrieved_whole(setting: Clinic) -> None:
    """An 8 MB document in an ITI-65 submission, read back with ITI-68 as a stream (the
    engine's memory bound is tests/platform/fhir/test_binary_content.py's)."""
    person = setting.world.person(52)
    content = b"%PDF-1.4\n" + bytes(range(256)) * (8 * 1024 * 4)  # 8 MiB and a header
    response = share(setting, submission(person.patient_id, (content, EPICRISIS)))
    (binary,) = locations(response, "Binary")
    pdf = {**SAMTYKKE, "Accept": "application/pdf"}
    with setting.doctor.stream("GET", f"/{binary}", headers=pdf) as raw:
        assert raw.status_code == 200
        received = b"".join(raw.iter_bytes())
    assert received == content
    assert int(raw.headers["content-length"]) == len(content)


def test_other_lists_and_binaries_are_plain_resources(setting: Clinic) -> None:
    """Only a SubmissionSet and a document's content are written once: another List, or a
    Binary that holds no document, is updated and deleted as usual."""
    person = setting.world.person(53)
    doctor = setting.doctor
    listed = {"resourceType": "List", "status": "current", "mode": "working",
              "subject": {"reference": f"Patient/{person.patient_id}"}}  # fmt: skip
    created = doctor.post("/List", json=listed, headers=SAMTYKKE)
    assert created.status_code == 201, created.text
    path = f"/List/{created.json()['id']}"
    changed = doctor.put(path, json={**created.json(), "status": "retired"}, headers=SAMTYKKE)
    assert changed.status_code == 200, changed.text
    assert doctor.delete(path, headers=SAMTYKKE).status_code in (200, 204)
    admin = setting.world.admin
    binary = {"resourceType": "Binary", "contentType": "text/plain", "data": "aGVp"}
    made = admin.post("/Binary", json=binary)
    assert made.status_code == 201, made.text
    path = f"/Binary/{made.json()['id']}"
    assert admin.put(path, json={**binary, "id": made.json()["id"]}).status_code == 200
    assert admin.delete(path).status_code in (200, 204)
