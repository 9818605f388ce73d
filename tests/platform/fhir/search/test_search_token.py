"""Token search: system|code forms, CodeableConcept/Coding/Identifier/code/boolean/ContactPoint,
:not, :text, :of-type, :missing, and the modifiers this server refuses."""

from __future__ import annotations

import httpx
import pytest
from search_helpers import (
    client,
    coding,
    create,
    found,
    keys,
    new_marker,
    observation,
    rejected,
)

from conftest import Server, patient

LOINC = "http://loinc.org"
SNOMED = "http://snomed.info/sct"
V2_0203 = "http://terminology.hl7.org/CodeSystem/v2-0203"
CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"


def _observations(fhir: httpx.Client, marker: str) -> dict[str, dict]:
    vital = {"coding": [coding(CATEGORY, "vital-signs")]}
    return {
        "loinc": create(
            fhir,
            observation(
                code={
                    "coding": [coding(LOINC, "8480-6", "Systolic blood pressure")],
                    "text": "BP sys",
                },
                category=[vital],
            ),
            marker,
        ),
        "snomed": create(fhir, observation(code={"coding": [coding(SNOMED, "8480-6")]}), marker),
        "no_system": create(fhir, observation(code={"coding": [coding(None, "8480-6")]}), marker),
        "text_only": create(fhir, observation(code={"text": "Blodtrykk, diastolisk"}), marker),
        "two_codings": create(
            fhir,
            observation(
                code={
                    "coding": [
                        coding(SNOMED, "271649006", "Systolisk blodtrykk"),
                        coding(LOINC, "8462-4", "Diastolic blood pressure"),
                    ]
                }
            ),
            marker,
        ),
    }


@pytest.fixture(scope="module")
def observations(server: Server) -> tuple[str, dict[str, dict]]:
    marker = new_marker()
    with client(server) as fhir:
        return marker, _observations(fhir, marker)


@pytest.fixture(scope="module")
def patients(server: Server) -> tuple[str, dict[str, dict]]:
    marker = new_marker()
    with client(server) as fhir:
        return marker, _patients(fhir, marker)


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"code": "8480-6"}, {"loinc", "snomed", "no_system"}),
        ({"code": f"{LOINC}|8480-6"}, {"loinc"}),
        ({"code": "|8480-6"}, {"no_system"}),
        ({"code": f"{LOINC}|"}, {"loinc", "two_codings"}),
        ({"code": f"{SNOMED}|271649006"}, {"two_codings"}),  # any coding of the concept
        ({"code": "8462-4"}, {"two_codings"}),
        ({"code": "8480"}, set()),  # tokens match whole codes
        ({"code": "8480-6,8462-4"}, {"loinc", "snomed", "no_system", "two_codings"}),
        ({"code": f"{LOINC}|8480-6,{SNOMED}|271649006"}, {"loinc", "two_codings"}),
        ({"code:text": "systolic"}, {"loinc"}),  # Coding.display, starts-with
        ({"code:text": "SYSTOLISK"}, {"two_codings"}),
        ({"code:text": "bp"}, {"loinc"}),  # CodeableConcept.text
        ({"code:text": "blodtr"}, {"text_only"}),
        ({"code:text": "blood"}, set()),  # starts-with, not contains
        ({"code:not": f"{LOINC}|8480-6"}, {"snomed", "no_system", "text_only", "two_codings"}),
        ({"code:not": "8480-6"}, {"text_only", "two_codings"}),
        ({"category": "vital-signs"}, {"loinc"}),
        ({"category": f"{CATEGORY}|vital-signs"}, {"loinc"}),
        ({"category:missing": "true"}, {"snomed", "no_system", "text_only", "two_codings"}),
        ({"category:missing": "false"}, {"loinc"}),
        # :not includes resources that lack the element altogether
        ({"category:not": "vital-signs"}, {"snomed", "no_system", "text_only", "two_codings"}),
    ],
)
def test_codeable_concept_tokens(
    fhir: httpx.Client, observations: tuple[str, dict], params: dict, expected: set[str]
) -> None:
    marker, observations = observations
    assert keys(found(fhir, "/Observation", marker, params), observations) == expected


def _patients(fhir: httpx.Client, marker: str) -> dict[str, dict]:
    mrn_type = {"coding": [coding(V2_0203, "MR")], "text": "Journalnummer"}
    return {
        "kari": create(
            fhir,
            patient(
                "Nordmann",
                "Kari",
                active=True,
                identifier=[
                    {"system": "urn:oid:2.16.578.1.12.4.1.4.1", "value": "13116900216"},
                    {"system": "http://sykehus.example/mrn", "value": "12345", "type": mrn_type},
                ],
                telecom=[
                    {"system": "phone", "value": "+4791234567"},
                    {"system": "email", "value": "kari@example.no"},
                ],
            ),
            marker,
        ),
        "ola": create(
            fhir,
            {
                "resourceType": "Patient",
                "gender": "male",
                "active": False,
                "identifier": [{"value": "12345"}],  # no system
                "telecom": [{"system": "email", "value": "ola@example.no"}],
            },
            marker,
        ),
        "unknown": create(fhir, {"resourceType": "Patient"}, marker),
    }


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"gender": "female"}, {"kari"}),
        ({"gender": "male,female"}, {"kari", "ola"}),
        ({"gender:not": "female"}, {"ola", "unknown"}),
        ({"gender:missing": "true"}, {"unknown"}),
        ({"active": "true"}, {"kari"}),
        ({"active": "false"}, {"ola"}),
        ({"active:not": "true"}, {"ola", "unknown"}),
        ({"identifier": "urn:oid:2.16.578.1.12.4.1.4.1|13116900216"}, {"kari"}),
        ({"identifier": "13116900216"}, {"kari"}),
        ({"identifier": "12345"}, {"kari", "ola"}),
        ({"identifier": "|12345"}, {"ola"}),
        ({"identifier": "http://sykehus.example/mrn|12345"}, {"kari"}),
        ({"identifier": "http://sykehus.example/mrn|"}, {"kari"}),
        ({"identifier": "urn:oid:2.16.578.1.12.4.1.4.1|12345"}, set()),
        ({"identifier:of-type": f"{V2_0203}|MR|12345"}, {"kari"}),
        ({"identifier:of-type": f"{V2_0203}|MR|13116900216"}, set()),  # that one has no type
        ({"identifier:of-type": f"{V2_0203}|NI|12345"}, set()),
        ({"identifier:missing": "true"}, {"unknown"}),
        ({"telecom": "+4791234567"}, {"kari"}),
        ({"phone": "+4791234567"}, {"kari"}),
        ({"email": "kari@example.no"}, {"kari"}),
        ({"email": "+4791234567"}, set()),  # the phone is not an email
        ({"email": "ola@example.no,kari@example.no"}, {"kari", "ola"}),
    ],
)
def test_patient_tokens(
    fhir: httpx.Client, patients: tuple[str, dict], params: dict, expected: set[str]
) -> None:
    marker, patients = patients
    assert keys(found(fhir, "/Patient", marker, params), patients) == expected


def test_repeated_token_parameters_are_and(
    fhir: httpx.Client, observations: tuple[str, dict]
) -> None:
    marker, observations = observations
    both = [("code", f"{SNOMED}|"), ("code", f"{LOINC}|")]
    assert keys(found(fhir, "/Observation", marker, both), observations) == {"two_codings"}
    with_not = [("code", "8480-6"), ("code:not", f"{LOINC}|8480-6")]
    assert keys(found(fhir, "/Observation", marker, with_not), observations) == {
        "snomed",
        "no_system",
    }


def test_escaped_separators_in_tokens(fhir: httpx.Client) -> None:
    marker = new_marker()
    odd = create(fhir, patient(identifier=[{"system": "urn:x", "value": "a,b|c"}]), marker)
    create(fhir, patient(identifier=[{"system": "urn:x", "value": "a"}]), marker)
    assert found(fhir, "/Patient", marker, {"identifier": "urn:x|a\\,b\\|c"}) == {odd["id"]}


@pytest.mark.parametrize(
    ("modifier", "code"),
    [("in", "not-found"), ("not-in", "not-found"), ("above", "invalid"), ("below", "invalid")],
)
def test_terminology_modifiers_refuse_unknown_value_sets_and_bare_codes(
    fhir: httpx.Client, modifier: str, code: str
) -> None:
    """(They work with the terminology service: tests/services/terminology.)"""
    rejected(
        fhir, "/Observation", {f"code:{modifier}": "http://example.org/ValueSet/vs"}, code=code
    )


@pytest.mark.parametrize(
    ("path", "params"),
    [
        ("/Observation", {"code": "a|b|c"}),
        ("/Observation", {"code": "|"}),
        ("/Observation", {"code:bogus": "x"}),
        ("/Observation", {"code:missing": "maybe"}),
        ("/Observation", {"code": ""}),
        ("/Observation", {"code": "a,,b"}),
        ("/Patient", {"gender:of-type": "x|y|z"}),  # :of-type is for identifiers
        ("/Patient", {"identifier:of-type": "MR|12345"}),  # needs system|code|value
        ("/Patient", {"identifier:of-type": f"{V2_0203}||12345"}),
    ],
)
def test_malformed_tokens_are_400(fhir: httpx.Client, path: str, params: dict) -> None:
    rejected(fhir, path, params)


def test_coding_tokens(fhir: httpx.Client) -> None:
    act_code = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
    marker = new_marker()

    def encounter(klass: dict) -> dict:
        return {"resourceType": "Encounter", "status": "finished", "class": klass}

    ambulatory = create(fhir, encounter(coding(act_code, "AMB", "ambulatory")), marker)
    inpatient = create(fhir, encounter(coding(act_code, "IMP", "inpatient encounter")), marker)
    bare = create(fhir, encounter({"code": "AMB"}), marker)
    assert found(fhir, "/Encounter", marker, {"class": "AMB"}) == {ambulatory["id"], bare["id"]}
    assert found(fhir, "/Encounter", marker, {"class": f"{act_code}|AMB"}) == {ambulatory["id"]}
    assert found(fhir, "/Encounter", marker, {"class": "|AMB"}) == {bare["id"]}
    assert found(fhir, "/Encounter", marker, {"class:text": "inpat"}) == {inpatient["id"]}
    assert found(fhir, "/Encounter", marker, {"class:not": f"{act_code}|AMB"}) == {
        inpatient["id"],
        bare["id"],
    }
