"""The patient summary over HTTP: ``Patient/$summary`` answers with a signed International
Patient Summary document made from live data, as the caller may see it, under
Kjernejournal's access rules, and audited; on SQLite and PostgreSQL."""

from __future__ import annotations

import base64
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import jsonschema_rs
import orjson
import pytest
from joserfc import jws as joserfc_jws
from joserfc.errors import BadSignatureError
from joserfc.jwk import KeySet
from kj_helpers import critical, retracted
from kj_helpers import doctor as new_doctor
from policy_helpers import (
    EPICRISIS,
    Person,
    World,
    auditor,
    basis,
    born,
    new_person_number,
    reason_of,
    records_by,
    submission,
    summary,
)
from registries_helpers import put

from conftest import TEST_ORGNR, Server, fresh_engine, patient, register_client
from samhandling.platform.auth.jose import JoseError
from samhandling.platform.fhir.definitions import json_schema
from samhandling.platform.fhir.errors import FhirError
from samhandling.platform.fhir.operations import OperationCall, OperationParameters
from samhandling.platform.identifiers import FNR_SYSTEM
from samhandling.platform.policy.registers import NoRegisters
from samhandling.platform.signing import detached_header, verify_detached
from samhandling.services.registries.model import REDACTED
from samhandling.services.summary.document_rules import NORS_COUNT_HEADER
from samhandling.services.summary.documents import CONFIDENTIALITY_SYSTEM
from samhandling.services.summary.patient_summary import (
    SECTIONS,
    Listed,
    PatientSummary,
    describe,
    narrative,
)
from samhandling.services.trust.tokentool import DpopAuth, TokenClient

CHANGES_SEEN_WITHIN = 1.2  # seconds: the registers' caches
SAMTYKKE = basis("SAMTYKKE")
ALLERGIES, PROBLEMS, MEDICATION, DEVICES, PROCEDURES, ALERTS, DOCUMENTS = (
    "48765-2", "11450-4", "10160-0", "46264-8", "47519-4", "104605-1", "11503-0"
)  # fmt: skip
SECTION_OF_TYPE = {
    "AllergyIntolerance": ALLERGIES,
    "Condition": PROBLEMS,
    "DeviceUseStatement": DEVICES,
    "Procedure": PROCEDURES,
    "Flag": ALERTS,
    "DocumentReference": DOCUMENTS,
}
NOBODY = new_person_number(born(70))  # a valid number no one in the register has
VALIDATOR = jsonschema_rs.Draft6Validator(json_schema())


@dataclass
class Record:
    """A patient's kjernejournal: what the summary must list, and what it must not."""

    person: Person
    listed: dict[str, set[str]]  # section code -> the references it lists
    retracted: str  # a retracted entry
    hidden: str  # an entry the patient hid from health personnel
    plain: str  # an entry of a critical type without a Kjernejournal category
    blocked: str  # a document blocked (sperret, NORS) from health personnel


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


def register(world: World, resource: dict[str, Any]) -> str:
    """Store ``resource`` with the system client; its reference."""
    created = world.admin.post(f"/{resource['resourceType']}", json=resource)
    assert created.status_code == 201, created.text
    return f"{resource['resourceType']}/{created.json()['id']}"


@pytest.fixture(scope="module")
def record(world: World) -> Record:
    """A patient with an allergy, a critical condition, an implant, ongoing treatment, a
    flag and a shared document; a retracted entry, a hidden one and a plain Condition."""
    person = world.person(45)
    _, hpr = new_doctor(world)
    listed: dict[str, set[str]] = {code: set() for code in SECTION_OF_TYPE.values()}
    for category in ("1", "5", "7", "6", "9"):
        reference = register(world, critical(category, person.patient_id, hpr))
        listed[SECTION_OF_TYPE[reference.split("/")[0]]].add(reference)
    document_id, _ = world.document(person)
    listed[DOCUMENTS].add(f"DocumentReference/{document_id}")
    gone = register(world, critical("10", person.patient_id, hpr))
    entry = world.admin.get(f"/{gone}").json()
    assert world.admin.put(f"/{gone}", json=retracted(entry)).status_code == 200
    hidden = register(world, critical("2", person.patient_id, hpr))
    world.hide(person, hidden)
    plain = critical("5", person.patient_id, hpr)
    del plain["category"]
    blocked = blocked_document(world, person)
    time.sleep(CHANGES_SEEN_WITHIN)
    return Record(person, listed, gone, hidden, register(world, plain), blocked)


def blocked_document(world: World, person: Person) -> str:
    """A document about ``person`` blocked from health personnel (NORS); its reference."""
    bundle = submission(person.patient_id, (b"%PDF-1.4 sperret", EPICRISIS))
    for entry in bundle["entry"]:
        if entry["resource"]["resourceType"] == "DocumentReference":
            entry["resource"]["securityLabel"] = [
                {"coding": [{"system": CONFIDENTIALITY_SYSTEM, "code": "NORS"}]}
            ]
    shared = world.admin.post("/", json=bundle)
    assert shared.status_code == 200, shared.text
    locations = [e["response"]["location"] for e in shared.json()["entry"]]
    return next(loc for loc in locations if loc.startswith("DocumentReference/")).split("/_")[0]


@pytest.fixture(scope="module")
def doctor(world: World) -> Iterator[tuple[httpx.Client, str]]:
    """A health worker signed in at level 4: (client, HPR number)."""
    pid, hpr = new_doctor(world)
    with world.clinician(pid) as client:
        yield client, hpr


@pytest.fixture(scope="module")
def answer(record: Record, doctor: tuple[httpx.Client, str]) -> httpx.Response:
    """The doctor's summary of the record's patient."""
    response = doctor[0].get(f"/Patient/{record.person.patient_id}/$summary", headers=SAMTYKKE)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/fhir+json")
    return response


@pytest.fixture(scope="module")
def document(answer: httpx.Response) -> dict[str, Any]:
    return answer.json()


def sections(bundle: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The Composition's sections by LOINC code."""
    composition = bundle["entry"][0]["resource"]
    return {s["code"]["coding"][0]["code"]: s for s in composition["section"]}


def references(section: dict[str, Any], base: str) -> set[str]:
    """The section's entries as ``Type/id``."""
    return {e["reference"].removeprefix(f"{base}/") for e in section.get("entry", [])}


def test_the_summary_is_an_ips_document(
    document: dict[str, Any], record: Record, server: Server
) -> None:
    assert VALIDATOR.is_valid(document), [str(e) for e in VALIDATOR.iter_errors(document)]
    assert not VALIDATOR.is_valid({**document, "type": "summary-document"})  # it does check
    assert document["type"] == "document"
    assert document["identifier"]["value"].startswith("urn:uuid:")
    composition = document["entry"][0]["resource"]
    assert composition["resourceType"] == "Composition"
    assert composition["status"] == "final"
    assert composition["type"]["coding"][0] == {
        "system": "http://loinc.org", "code": "60591-5", "display": "Patient summary Document"
    }  # fmt: skip
    assert composition["title"] == "Pasientsammendrag"
    assert composition["date"] == document["timestamp"]
    full_urls = {e["fullUrl"]: e["resource"] for e in document["entry"]}
    assert len(full_urls) == len(document["entry"])
    patient = full_urls[composition["subject"]["reference"]]
    assert patient["resourceType"] == "Patient" and patient["id"] == record.person.patient_id
    assert composition["subject"]["reference"] == f"{server.fhir}/Patient/{patient['id']}"
    author = full_urls[composition["author"][0]["reference"]]
    assert author["resourceType"] == "Device"
    assert [s["code"]["coding"][0]["code"] for s in composition["section"]] == [
        s.code for s in SECTIONS
    ]
    found = sections(document)
    for code, expected in record.listed.items():
        assert references(found[code], server.fhir) == expected, code
        for reference in expected:  # every entry is in the Bundle, with its narrative line
            resource = full_urls[f"{server.fhir}/{reference}"]
            assert f"{resource['resourceType']}/{resource['id']}" == reference
    for section in composition["section"]:
        assert section["title"] and section["text"]["status"] == "generated"
        assert section["text"]["div"].startswith('<div xmlns="http://www.w3.org/1999/xhtml">')
    texts = {code: found[code]["text"]["div"] for code in found}
    assert "<b>Penicillin</b>: Legemiddelreaksjon; høy kritikalitet; bekreftet" in texts[ALLERGIES]
    assert "Addisons sykdom (E27.1)" in texts[PROBLEMS]
    assert "<b>Pacemaker</b>: Implantat; i bruk; verifisert" in texts[DEVICES]
    assert "<b>Hemodialyse</b>: Pågående behandling; pågår" in texts[PROCEDURES]
    assert "Unngå blodtrykksmåling på venstre arm" in texts[ALERTS]
    assert "<b>Epikrise</b>: datert 2026-03-01" in texts[DOCUMENTS]


def test_medication_section_is_empty_with_a_note(document: dict[str, Any]) -> None:
    medication = sections(document)[MEDICATION]
    assert "entry" not in medication
    assert medication["emptyReason"]["coding"][0] == {
        "system": "http://terminology.hl7.org/CodeSystem/list-empty-reason",
        "code": "unavailable",
        "display": "Unavailable",
    }
    assert "Pasientens legemiddelliste (PLL) er ikke koblet til" in medication["text"]["div"]
    assert medication["title"] == "Legemidler"


def test_retracted_hidden_and_plain_entries_are_left_out(
    answer: httpx.Response, document: dict[str, Any], record: Record, world: World, server: Server
) -> None:
    assert answer.headers[NORS_COUNT_HEADER] == "1"  # the blocked document, withheld
    in_bundle = {
        f"{e['resource']['resourceType']}/{e['resource'].get('id')}" for e in document["entry"]
    }
    listed = set().union(*(references(s, server.fhir) for s in sections(document).values()))
    for left_out in (record.retracted, record.hidden, record.plain, record.blocked):
        assert left_out not in in_bundle and left_out not in listed
    with world.citizen(record.person) as citizen:  # the patient sees what they hid
        own = citizen.get(f"/Patient/{record.person.patient_id}/$summary")
    assert own.status_code == 200, own.text
    mine = references(sections(own.json())[ALLERGIES], server.fhir)
    assert mine == record.listed[ALLERGIES] | {record.hidden}


def published_keys(server: Server) -> dict[str, Any]:
    """The trust service's JWKS, found through its discovery document."""
    discovery = httpx.get(f"{server.url}/.well-known/openid-configuration", timeout=30).json()
    return httpx.get(discovery["jwks_uri"], timeout=30).json()


def signed_content(bundle: dict[str, Any]) -> bytes:
    """What the signature covers, as the documentation says: the Bundle without its
    signature, keys sorted, no whitespace."""
    unsigned = {k: v for k, v in bundle.items() if k != "signature"}
    return orjson.dumps(unsigned, option=orjson.OPT_SORT_KEYS)


def test_the_signature_verifies_with_the_published_keys(
    document: dict[str, Any], server: Server
) -> None:
    signature = document["signature"]
    assert signature["type"][0]["system"] == "urn:iso-astm:E1762-95:2013"
    assert signature["type"][0]["code"] == "1.2.840.10065.1.12.1.1"
    assert signature["sigFormat"] == "application/jose"
    assert signature["when"] == document["timestamp"]
    author = document["entry"][0]["resource"]["author"][0]["reference"]
    assert signature["who"]["reference"] == author
    jws = base64.b64decode(signature["data"]).decode("ascii")
    assert jws.split(".")[1] == ""  # the payload is detached
    keys = published_keys(server)
    header = detached_header(jws)
    assert header["kid"] in {k["kid"] for k in keys["keys"]}
    content = signed_content(document)
    assert verify_detached(jws, content, keys)["cty"] == "application/fhir+json"
    # an independent implementation (joserfc) agrees
    key_set = KeySet.import_key_set(keys)
    verified = joserfc_jws.deserialize_compact(jws, key_set, payload=content)
    assert verified.headers()["kid"] == header["kid"]
    # one byte changed, anywhere: it no longer verifies
    at = content.index(b"Penicillin")
    changed = content[:at] + b"Q" + content[at + 1 :]
    with pytest.raises(JoseError):
        verify_detached(jws, changed, keys)
    with pytest.raises(BadSignatureError):
        joserfc_jws.deserialize_compact(jws, key_set, payload=changed)
    altered = orjson.loads(orjson.dumps(document))
    altered["entry"][1]["resource"]["birthDate"] = "1900-01-01"
    with pytest.raises(JoseError):
        verify_detached(jws, signed_content(altered), keys)


def test_each_summary_is_a_new_signed_document(
    document: dict[str, Any], record: Record, doctor: tuple[httpx.Client, str], server: Server
) -> None:
    again = doctor[0].get(f"/Patient/{record.person.patient_id}/$summary", headers=SAMTYKKE)
    assert again.status_code == 200
    second = again.json()
    assert second["identifier"] != document["identifier"]
    verify_detached(
        base64.b64decode(second["signature"]["data"]).decode(),
        signed_content(second),
        published_keys(server),
    )
    with pytest.raises(JoseError):  # a signature belongs to its own document
        verify_detached(
            base64.b64decode(document["signature"]["data"]).decode(),
            signed_content(second),
            published_keys(server),
        )


def test_by_person_number(
    world: World, record: Record, doctor: tuple[httpx.Client, str], server: Server
) -> None:
    client, _ = doctor
    pid = record.person.pid
    subject = f"{server.fhir}/Patient/{record.person.patient_id}"
    for params in ({"identifier": pid}, {"identifier": f"{FNR_SYSTEM}|{pid}"}):
        found = client.get("/Patient/$summary", params=params, headers=SAMTYKKE)
        assert found.status_code == 200, found.text
        assert found.json()["entry"][0]["resource"]["subject"]["reference"] == subject
    posted = client.post(
        "/Patient/$summary",
        json={"resourceType": "Parameters", "parameter": [
            {"name": "identifier", "valueIdentifier": {"system": FNR_SYSTEM, "value": pid}}]},
        headers=SAMTYKKE,
    )  # fmt: skip
    assert posted.status_code == 200, posted.text
    assert posted.json()["entry"][0]["resource"]["subject"]["reference"] == subject


@pytest.mark.parametrize(
    ("path", "params", "status"),
    [
        ("/Patient/$summary", {}, 400),  # no identifier
        ("/Patient/$summary", {"identifier": "12345678901"}, 400),  # not a valid number
        ("/Patient/$summary", {"identifier": "urn:x|01010112345"}, 400),  # another system
        ("/Patient/$summary", {"identifier": NOBODY}, 404),  # valid, in nobody's name
        ("/Patient/pp-unknown-patient/$summary", {}, 404),
    ],
)
def test_bad_input_is_an_operation_outcome(
    doctor: tuple[httpx.Client, str], path: str, params: dict[str, str], status: int
) -> None:
    answer = doctor[0].get(path, params=params, headers=SAMTYKKE)
    assert answer.status_code == status, answer.text
    assert answer.json()["resourceType"] == "OperationOutcome"


def test_reserved_and_blocking_patients_refuse(world: World) -> None:
    reserved, blocking = world.person(46), world.person(47)
    pid, hpr = new_doctor(world)
    world.reserve(reserved, "kjernejournal")
    world.block_personnel(blocking, hpr)
    time.sleep(CHANGES_SEEN_WITHIN)
    with world.clinician(pid) as client:
        for person, reason in ((reserved, "reserved"), (blocking, "personnel-blocked")):
            answer = client.get(f"/Patient/{person.patient_id}/$summary", headers=SAMTYKKE)
            assert answer.status_code == 403, answer.text
            assert reason_of(answer) == reason
        # the same as a search of the patient's critical information
        search = client.get(
            "/Flag", params={"patient": f"Patient/{reserved.patient_id}"}, headers=SAMTYKKE
        )
        assert search.status_code == 403 and reason_of(search) == "reserved"


def test_without_the_kjernejournal_scope(record: Record, server: Server) -> None:
    scope = "samhandling:fhir/read samhandling:grunndata/read"
    config = register_client(
        server, "--scope", "samhandling:fhir/read", "--scope", "samhandling:grunndata/read",
        "--orgnr", TEST_ORGNR,
    )  # fmt: skip
    tokens = TokenClient(server.url, config["client_id"], config["jwk"])
    auth = DpopAuth(tokens.client_credentials(scope), tokens.dpop)
    with httpx.Client(base_url=server.fhir, timeout=30, auth=auth) as client:
        answer = client.get(f"/Patient/{record.person.patient_id}/$summary")
    assert answer.status_code == 403, answer.text
    assert "samhandling:kjernejournal/read" in answer.text


def test_the_patient_as_the_caller_may_see_it(
    world: World, record: Record, doctor: tuple[httpx.Client, str], server: Server
) -> None:
    protected = world.person(49, protected=True)
    stored = world.admin.get(f"/Patient/{protected.patient_id}").json()
    put(world.admin, {**stored, "address": [{"city": "Hemmelig by"}]})
    answer = doctor[0].get(f"/Patient/{protected.patient_id}/$summary", headers=SAMTYKKE)
    assert answer.status_code == 200, answer.text
    shown = answer.json()["entry"][1]["resource"]
    assert shown["id"] == protected.patient_id and "address" not in shown
    assert list(REDACTED) in [[s["system"], s["code"]] for s in shown["meta"]["security"]]
    # a client that may not read the person register gets the Patient's id and number only
    scope = "samhandling:kjernejournal/read"
    config = register_client(server, "--scope", scope, "--orgnr", TEST_ORGNR)
    tokens = TokenClient(server.url, config["client_id"], config["jwk"])
    auth = DpopAuth(tokens.client_credentials(scope), tokens.dpop)
    with httpx.Client(base_url=server.fhir, timeout=30, auth=auth) as client:
        answer = client.get(f"/Patient/{record.person.patient_id}/$summary")
    assert answer.status_code == 200, answer.text
    assert answer.json()["entry"][1]["resource"] == {
        "resourceType": "Patient",
        "id": record.person.patient_id,
        "identifier": [{"system": FNR_SYSTEM, "value": record.person.pid}],
    }


def test_a_health_worker_needs_level_4_and_an_access_basis(world: World, record: Record) -> None:
    pid, _ = new_doctor(world)
    path = f"/Patient/{record.person.patient_id}/$summary"
    with world.clinician(pid) as client:
        assert client.get(path).status_code == 400  # no access basis
    with world.clinician(pid, level=3) as weak:
        assert weak.get(path, headers=SAMTYKKE).status_code == 403


def test_the_summary_is_audited(
    world: World,
    document: dict[str, Any],
    record: Record,
    doctor: tuple[httpx.Client, str],
    audit: httpx.Client,
    server: Server,
) -> None:
    events = [summary(e) for e in records_by(audit, doctor[1])]
    looks = [e for e in events if e["interaction"] == "operation"]
    assert looks, events
    event = looks[-1]  # the first summary (the fixture's): newest first
    assert event["outcome"] == "0" and event["basis"] == "SAMTYKKE"
    assert event["patients"] == [record.person.pid]
    shown = {reference.split("/_history/")[0] for reference in event["data"]}
    expected = set().union(*record.listed.values()) | {f"Patient/{record.person.patient_id}"}
    assert expected <= shown
    assert record.hidden not in shown and record.retracted not in shown
    with world.citizen(record.person, base=server.url) as citizen:  # in the patient's log
        log = citizen.get("/audit/access-log").json()["entries"]
    seen = [e for e in log if e["who"].get("hprNumber") == doctor[1]]
    assert [(e["interaction"], e["outcome"]) for e in seen][-1] == ("operation", "ok")


async def test_no_summary_without_the_platform_key(tmp_path: Path) -> None:
    async with fresh_engine("sqlite", tmp_path) as engine:
        created = await engine.create("Patient", patient())
        operation = PatientSummary(engine, NoRegisters(), lambda: None, "http://test")
        call = OperationCall(
            "Patient", created.resource.id, OperationParameters(), None, "http://test/fhir"
        )
        with pytest.raises(FhirError) as refused:
            await operation(call)
    assert refused.value.status == 503


def test_narrative_escapes_and_says_when_a_section_is_cut() -> None:
    allergies = SECTIONS[0]
    entry = critical("1", "x", "565501872")
    entry["code"] = {"text": "<script>alert(1)</script> & co"}
    line = describe("AllergyIntolerance", entry)
    assert line.startswith("<b>&lt;script&gt;alert(1)&lt;/script&gt; &amp; co</b>")
    cut = narrative(Listed(allergies, [{**entry, "id": "a"}], True))
    assert "Viser de 100 sist endrede oppføringene; det finnes flere." in cut
    whole = narrative(Listed(allergies, [{**entry, "id": "a"}], False))
    assert "det finnes flere" not in whole
    empty = narrative(Listed(allergies, [], False))
    assert "Ingen opplysninger registrert i kjernejournalen." in empty
