"""Writes to the registers: invalid identifiers are refused with an OperationOutcome that
names the element; only the administrator scope may write; scopes per register type."""

from __future__ import annotations

import httpx
import pytest
from registries_helpers import (
    ADMIN,
    DNR_SYSTEM,
    FNR_SYSTEM,
    HPR_SYSTEM,
    ORGNR_SYSTEM,
    READ,
    client_with,
    new_dnr,
    new_fnr,
    new_orgnr,
    person,
)

from conftest import Server

SYNTHETIC_FNR = "16858399649"  # Skatteetaten's synthetic test person (month + 80)


@pytest.mark.parametrize(
    ("resource", "expression", "words"),
    [
        (person("12345678901"), "Patient.identifier[0].value", "fødselsnummer"),
        (person(SYNTHETIC_FNR), "Patient.identifier[0].value", "synthetic"),
        (person("0101"), "Patient.identifier[0].value", "11 digits"),
        (
            person(new_fnr(), extra_identifiers=[{"system": DNR_SYSTEM, "value": "01017000000"}]),
            "Patient.identifier[1].value",
            "D-number",
        ),
        (
            {"resourceType": "Organization", "identifier": [{"system": ORGNR_SYSTEM,
                                                              "value": "912159524"}]},
            "Organization.identifier[0].value",
            "organisation number",
        ),
        (
            {"resourceType": "Practitioner", "identifier": [{"system": HPR_SYSTEM,
                                                              "value": "0912"}]},
            "Practitioner.identifier[0].value",
            "HPR",
        ),
        (
            {"resourceType": "RelatedPerson", "patient": {"identifier": {
                "system": FNR_SYSTEM, "value": "31129912345"}}},
            "RelatedPerson.patient.identifier.value",
            "fødselsnummer",
        ),
    ],
)  # fmt: skip
def test_invalid_identifiers_are_refused(
    fhir: httpx.Client, resource: dict, expression: str, words: str
) -> None:
    resource = {k: v for k, v in resource.items() if k != "id"}
    response = fhir.post(f"/{resource['resourceType']}", json=resource)
    assert response.status_code == 422, response.text
    issue = response.json()["issue"][0]
    assert issue["severity"] == "error"
    assert issue["expression"] == [expression]
    assert words.lower() in issue["diagnostics"].lower(), issue["diagnostics"]


def test_valid_identifiers_are_accepted(fhir: httpx.Client) -> None:
    created = fhir.post("/Patient", json=person(new_fnr()))
    assert created.status_code == 201, created.text
    d_numbered = person(new_dnr())
    d_numbered["identifier"][0]["system"] = DNR_SYSTEM
    assert fhir.post("/Patient", json=d_numbered).status_code == 201
    org = {"resourceType": "Organization",
           "identifier": [{"system": ORGNR_SYSTEM, "value": new_orgnr()}]}  # fmt: skip
    assert fhir.post("/Organization", json=org).status_code == 201


def test_a_refused_update_keeps_the_stored_version(fhir: httpx.Client) -> None:
    stored = fhir.post("/Patient", json=person(new_fnr())).json()
    broken = {**stored, "identifier": [{"system": FNR_SYSTEM, "value": "11111111111"}]}
    assert fhir.put(f"/Patient/{stored['id']}", json=broken).status_code == 422
    patch = [{"op": "replace", "path": "/identifier/0/value", "value": "22222222222"}]
    patched = fhir.patch(
        f"/Patient/{stored['id']}",
        json=patch,
        headers={"content-type": "application/json-patch+json"},
    )
    assert patched.status_code == 422
    now = fhir.get(f"/Patient/{stored['id']}").json()
    assert now["identifier"] == stored["identifier"]
    assert now["meta"]["versionId"] == "1"


def test_a_bad_number_fails_the_whole_transaction(fhir: httpx.Client) -> None:
    good, bad = person(new_fnr()), person("12345678901")
    bundle = {"resourceType": "Bundle", "type": "transaction", "entry": [
        {"resource": good, "request": {"method": "PUT", "url": f"Patient/{good['id']}"}},
        {"resource": bad, "request": {"method": "PUT", "url": f"Patient/{bad['id']}"}},
    ]}  # fmt: skip
    response = fhir.post("", json=bundle)
    assert response.status_code == 422
    assert "Bundle.entry[1]" in response.text
    assert fhir.get(f"/Patient/{good['id']}").status_code == 404


def test_only_the_administrator_scope_writes(server: Server) -> None:
    with client_with(server, READ) as reader:
        assert reader.get("/Patient", params={"_count": "1"}).status_code == 200
        refused = reader.post("/Patient", json=person(new_fnr()))
        assert refused.status_code == 403
        assert 'scope="samhandling:grunndata/admin"' in refused.headers["www-authenticate"]
        assert refused.json()["issue"][0]["code"] == "forbidden"
        assert reader.get("/Observation").status_code == 403  # not the FHIR API's scope
    with client_with(server, "samhandling:fhir/read", "samhandling:fhir/write") as clinical:
        assert clinical.get("/Observation").status_code == 200
        assert clinical.get("/Patient").status_code == 403
        assert (
            clinical.post("/Organization", json={"resourceType": "Organization"}).status_code == 403
        )
        bundle = {"resourceType": "Bundle", "type": "transaction", "entry": [
            {"resource": {"resourceType": "Organization"},
             "request": {"method": "POST", "url": "Organization"}}]}  # fmt: skip
        assert clinical.post("", json=bundle).status_code == 403
        everything = clinical.get("", params={"_type": "Patient,Observation"})
        assert everything.status_code == 403
    with client_with(server, READ, ADMIN) as admin:
        assert admin.post("/Patient", json=person(new_fnr())).status_code == 201
