"""Helpers for Kjernejournal's tests (imported as ``kj_helpers``): critical information of
each category, shaped as the profiles ask, written by the health worker it names."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import httpx
from policy_helpers import World, auditor, born, new_person_number
from registries_helpers import approval, practitioner, put, rng

from conftest import TEST_ORGNR, Server
from samhandling.platform.identifiers import HPR_SYSTEM, ORGNR_SYSTEM
from samhandling.services.summary.model import (
    CATEGORY,
    CATEGORY_EXTENSION,
    RECORDED_EXTENSION,
    SOURCE,
    SOURCE_EXTENSION,
    VERIFIED_EXTENSION,
)
from samhandling.synth.identifiers import hpr_number

ALLERGY_VERIFICATION = "http://terminology.hl7.org/CodeSystem/allergyintolerance-verification"
CONDITION_VERIFICATION = "http://terminology.hl7.org/CodeSystem/condition-ver-status"
CONDITION_CLINICAL = "http://terminology.hl7.org/CodeSystem/condition-clinical"
ICD10 = "http://hl7.org/fhir/sid/icd-10"

# category -> (resource type, the patient's search parameter)
CATEGORY_TYPES: dict[str, tuple[str, str]] = {
    "1": ("AllergyIntolerance", "patient"),
    "2": ("AllergyIntolerance", "patient"),
    "3": ("Condition", "subject"),
    "4": ("Condition", "subject"),
    "5": ("Condition", "subject"),
    "6": ("Procedure", "subject"),
    "7": ("DeviceUseStatement", "subject"),
    "9": ("Flag", "patient"),
    "10": ("Condition", "subject"),
}


def category_concept(code: str) -> dict[str, Any]:
    return {"coding": [{"system": CATEGORY, "code": code}]}


def recorder(hpr: str, orgnr: str = TEST_ORGNR) -> dict[str, Any]:
    return {
        "resourceType": "PractitionerRole",
        "id": "recorder",
        "practitioner": {"identifier": {"system": HPR_SYSTEM, "value": hpr}},
        "organization": {"identifier": {"system": ORGNR_SYSTEM, "value": orgnr}},
    }


def source(code: str = "2") -> dict[str, Any]:
    return {"url": SOURCE_EXTENSION, "valueCoding": {"system": SOURCE, "code": code}}


def critical(category: str, patient_id: str, hpr: str, orgnr: str = TEST_ORGNR) -> dict:
    """An entry of ``category`` about ``patient_id``, registered by ``hpr`` at ``orgnr``."""
    type_name, _ = CATEGORY_TYPES[category]
    patient = {"reference": f"Patient/{patient_id}"}
    base: dict[str, Any] = {"resourceType": type_name, "contained": [recorder(hpr, orgnr)]}
    recorded = "2026-01-05T10:00:00+01:00"
    if type_name == "AllergyIntolerance":
        return {
            **base,
            "extension": [
                {"url": CATEGORY_EXTENSION, "valueCodeableConcept": category_concept(category)},
                source("1" if category == "1" else "2"),
            ],
            "clinicalStatus": {"coding": [{
                "system": "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical",
                "code": "active"}]},
            "verificationStatus": {"coding": [{"system": ALLERGY_VERIFICATION,
                                               "code": "confirmed"}]},
            "category": ["medication" if category == "1" else "food"],
            "criticality": "high",
            "code": {"text": "Penicillin" if category == "1" else "Peanøtter"},
            "patient": patient,
            "recordedDate": recorded,
            "recorder": {"reference": "#recorder"},
        }  # fmt: skip
    if type_name == "Condition":
        code: dict[str, Any] = {
            "3": {"text": "Vanskelig intubasjon"},
            "4": {"text": "Malign hypertermi"},
            "5": {"coding": [{"system": ICD10, "code": "E27.1"}], "text": "Addisons sykdom"},
            "10": {"text": "MRSA-bærer"},
        }[category]
        return {
            **base,
            "extension": [source()],
            "clinicalStatus": {"coding": [{"system": CONDITION_CLINICAL, "code": "active"}]},
            "verificationStatus": {"coding": [{"system": CONDITION_VERIFICATION,
                                               "code": "confirmed"}]},
            "category": [category_concept(category)],
            "code": code,
            "subject": patient,
            "recordedDate": recorded,
            "recorder": {"reference": "#recorder"},
        }  # fmt: skip
    extensions = [
        source(),
        {"url": VERIFIED_EXTENSION, "valueBoolean": True},
    ]
    if type_name == "DeviceUseStatement":
        return {
            **base,
            "extension": [
                {"url": CATEGORY_EXTENSION, "valueCodeableConcept": category_concept(category)},
                *extensions,
            ],
            "status": "active",
            "subject": patient,
            "recordedOn": recorded,
            "source": {"reference": "#recorder"},
            "device": {"display": "Pacemaker"},
        }
    extensions.append({"url": RECORDED_EXTENSION, "valueDateTime": recorded})
    if type_name == "Procedure":
        return {
            **base,
            "extension": extensions,
            "status": "in-progress",
            "category": category_concept(category),
            "code": {"text": "Hemodialyse"},
            "subject": patient,
            "recorder": {"reference": "#recorder"},
        }
    return {
        **base,
        "extension": extensions,
        "status": "active",
        "category": [category_concept(category)],
        "code": {"text": "Unngå blodtrykksmåling på venstre arm"},
        "subject": patient,
        "author": {"reference": "#recorder"},
    }


def with_version(resource: dict, version: str | None) -> dict:
    """A copy of ``resource`` whose meta names ``version`` (or none)."""
    out = copy.deepcopy(resource)
    meta = dict(out.get("meta") or {})
    meta.pop("versionId", None)
    if version is not None:
        meta["versionId"] = version
    out["meta"] = meta
    return out


def retracted(resource: dict) -> dict:
    """``resource`` marked entered-in-error."""
    out = copy.deepcopy(resource)
    type_name = out["resourceType"]
    if type_name == "AllergyIntolerance":
        out["verificationStatus"] = {
            "coding": [{"system": ALLERGY_VERIFICATION, "code": "entered-in-error"}]
        }
        out.pop("clinicalStatus", None)
    elif type_name == "Condition":
        out["verificationStatus"] = {
            "coding": [{"system": CONDITION_VERIFICATION, "code": "entered-in-error"}]
        }
        out.pop("clinicalStatus", None)
    else:
        out["status"] = "entered-in-error"
    return out


def expressions(response: httpx.Response) -> list[str]:
    """The expressions of an OperationOutcome's issues."""
    return [e for issue in response.json().get("issue", []) for e in issue.get("expression", [])]


def doctor(world: World, *, suspended: bool = False) -> tuple[str, str]:
    """A doctor in HPR, as ``World.doctor`` makes one, born on a random day (so the many
    doctors of these tests do not share a fødselsnummer): (pid, HPR number)."""
    random = rng()
    pid = new_person_number(born(random.randint(30, 65), random.randint(0, 364)))
    hpr = hpr_number(random)
    since = (date.today() - timedelta(days=1)).isoformat()
    licence = approval("LE", "1", "2005-01-01", None, (since, None) if suspended else None)
    put(world.admin, practitioner(hpr, pid, [licence]))
    return pid, hpr


@dataclass
class Clinic:
    """A doctor of the test organisation signed in, and an auditor."""

    world: World
    doctor: httpx.Client
    hpr: str
    audit: httpx.Client


@contextmanager
def clinic(server: Server) -> Iterator[Clinic]:
    """A `Clinic` on ``server`` (its doctor in HPR, signed in at level 4)."""
    with httpx.Client(base_url=server.fhir, timeout=30, auth=server.auth) as admin:
        world = World(server, admin)
        world.organisation()
        pid, hpr = world.doctor()
        with world.clinician(pid) as doctor, auditor(server) as audit:
            yield Clinic(world, doctor, hpr, audit)
