"""Audit records: canonical JSON that round-trips, and valid R4 AuditEvents (IHE BALP)."""

from __future__ import annotations

import base64
import dataclasses

import orjson
import pytest
from audit_helpers import DOCTOR, KARI, T0, record

from samhandling.platform.audit import AuditAgent, AuditRecord
from samhandling.platform.fhir.validation import validate_resource
from samhandling.platform.identifiers import FNR_SYSTEM, HPR_SYSTEM, ORGNR_SYSTEM

CITIZEN = AuditAgent(
    kind="citizen", client_id="helsenorge", person_id="01017012345", name="Mor Nordmann",
    acting_for=KARI,
)  # fmt: skip
SYSTEM = AuditAgent(
    kind="system", client_id="lab-system", client_name="Laboratoriet", orgnr="974600951",
    actor_client_id="api-gateway",
)  # fmt: skip


def everything() -> AuditRecord:
    """A record with every field set."""
    return record(
        emergency=True,
        patients=(KARI, "Patient/abc"),
        query="identifier=urn:oid:2.16.578.1.12.4.1.4.1|13116900216",
        outcome_text="",
        request_id="req-1",
    )


@pytest.mark.parametrize(
    "original",
    [
        everything(),
        AuditRecord(T0, "registries", "search", "E", 8, SYSTEM, outcome_text="DENIED: no"),
        dataclasses.replace(everything(), agent=CITIZEN, entities=("Observation/1/_history/2",)),
    ],
)
def test_json_round_trip(original: AuditRecord) -> None:
    stored = original.to_json()
    assert AuditRecord.from_json(stored) == original
    assert AuditRecord.from_json(stored).to_json() == stored  # canonical: stable bytes
    document = orjson.loads(stored)
    assert document["schema"] == 1
    assert list(document) == sorted(document)
    assert document["recorded"] == "2026-03-01T12:00:00.000000Z"


def test_json_leaves_out_what_is_not_set() -> None:
    document = orjson.loads(AuditRecord(T0, "fhir", "read", "R", 0, SYSTEM).to_json())
    assert set(document) == {"schema", "recorded", "service", "interaction", "action",
                             "outcome", "agent"}  # fmt: skip
    assert document["agent"] == {"kind": "system", "client_id": "lab-system",
                                 "client_name": "Laboratoriet", "orgnr": "974600951",
                                 "actor_client_id": "api-gateway"}  # fmt: skip


@pytest.mark.parametrize(
    "stored",
    [b"[]", b'{"schema": 2}', b'{"schema": 1, "recorded": "2026-01-01T00:00:00Z"}', b"{"],
)
def test_from_json_refuses_anything_else(stored: bytes) -> None:
    with pytest.raises(ValueError):
        AuditRecord.from_json(stored)


@pytest.mark.parametrize(
    "change",
    [
        {"recorded": T0.replace(tzinfo=None)},
        {"action": "X"},
        {"outcome": 1},
        {"interaction": "peek"},
        {"access_basis": "FORDI"},
    ],
)
def test_invalid_records_are_refused(change: dict) -> None:
    with pytest.raises(ValueError):
        dataclasses.replace(record(), **change)


def test_a_list_of_patients_becomes_a_tuple() -> None:
    made = AuditRecord(T0, "fhir", "read", "R", 0, SYSTEM, patients=[KARI])  # type: ignore[arg-type]
    assert made.patients == (KARI,)
    assert hash(made)


@pytest.mark.parametrize(
    "source",
    [
        everything(),
        AuditRecord(T0, "registries", "search", "E", 8, SYSTEM, query="name=x",
                    outcome_text="DENIED: not allowed"),
        dataclasses.replace(everything(), agent=CITIZEN, interaction="update", action="U",
                            entities=("Observation/1/_history/2",)),
        AuditRecord(T0, "fhir", "operation", "E", 0, DOCTOR, patients=("Patient/p1",),
                    query="$everything", access_basis="UNNTAK"),
    ],
)  # fmt: skip
def test_to_fhir_is_a_valid_r4_audit_event(source: AuditRecord) -> None:
    event = source.to_fhir("a1")
    validate_resource(event, "AuditEvent", id="a1")
    assert event["type"]["code"] == "rest"
    assert event["subtype"][0] == {
        "system": "http://hl7.org/fhir/restful-interaction",
        "code": source.interaction,
    }
    assert event["outcome"] == str(source.outcome)
    assert event["source"]["type"][0]["code"] == "4"
    assert all(isinstance(agent["requestor"], bool) for agent in event["agent"])
    assert sum(agent["requestor"] for agent in event["agent"]) == 1


def test_to_fhir_names_who_whose_what_and_why() -> None:
    event = everything().to_fhir("a1")
    user, client = event["agent"][0], event["agent"][1]
    assert user["requestor"] is True
    assert user["who"]["identifier"] == {"system": HPR_SYSTEM, "value": "9144900"}
    assert user["altId"] == DOCTOR.person_id
    assert user["role"][0]["coding"][0] == {
        "system": "urn:oid:2.16.578.1.12.4.1.1.9060", "code": "LE", "display": "Lege",
    }  # fmt: skip
    assert client["who"]["identifier"]["value"] == "epj-client"
    organisations = [a["who"]["identifier"] for a in event["agent"][2:] if "identifier" in a["who"]]
    assert {"system": ORGNR_SYSTEM, "value": "912159523"} in organisations
    assert {"system": ORGNR_SYSTEM, "value": "974600951"} in organisations
    patient, other = event["entity"][0], event["entity"][1]
    assert patient["what"]["identifier"] == {"system": FNR_SYSTEM, "value": KARI}
    assert patient["role"]["code"] == "1"
    assert other["what"] == {"reference": "Patient/abc"}
    query = next(e for e in event["entity"] if e["role"]["code"] == "24")
    assert base64.b64decode(query["query"]).decode() == everything().query
    purpose = event["purposeOfEvent"][0]
    assert [c["code"] for c in purpose["coding"]] == ["ETREAT", "AKUTT"]
    assert purpose["coding"][0]["system"] == "http://terminology.hl7.org/CodeSystem/v3-ActReason"
    assert purpose["text"] == "bevisstløs pasient"
    assert event["meta"]["tag"][0]["code"] == "emergency"


def test_to_fhir_of_a_citizen_acting_for_another_person() -> None:
    event = dataclasses.replace(everything(), agent=CITIZEN).to_fhir("a2")
    user = event["agent"][0]
    assert user["who"]["identifier"] == {"system": FNR_SYSTEM, "value": "01017012345"}
    assert user["extension"][0]["valueIdentifier"]["value"] == KARI


def test_to_fhir_of_a_system_names_the_client_and_the_api_acting_for_it() -> None:
    event = AuditRecord(T0, "registries", "search", "E", 0, SYSTEM).to_fhir("a3")
    client = event["agent"][0]
    assert client["requestor"] is True
    assert client["who"]["display"] == "Laboratoriet"
    actors = [a for a in event["agent"] if a["type"]["coding"][0]["code"] == "110150"]
    assert actors[0]["who"]["identifier"]["value"] == "api-gateway"
