"""Batch and transaction Bundles."""

from __future__ import annotations

import base64
import uuid

import httpx
import orjson

from conftest import patient


def _urn() -> str:
    return f"urn:uuid:{uuid.uuid4()}"


def _transaction(*entries: dict) -> dict:
    return {"resourceType": "Bundle", "type": "transaction", "entry": list(entries)}


def _newest(fhir: httpx.Client, resource_type: str) -> str | None:
    bundle = fhir.get(f"/{resource_type}/_history", params={"_count": 1}).json()
    entries = bundle.get("entry", [])
    return f"{entries[0]['fullUrl']}|{entries[0]['response']['etag']}" if entries else None


def test_transaction_rewrites_urn_uuid_references(fhir: httpx.Client) -> None:
    patient_url, encounter_url = _urn(), _urn()
    bundle = _transaction(
        {
            "fullUrl": encounter_url,
            "resource": {
                "resourceType": "Encounter",
                "status": "finished",
                "class": {"code": "AMB"},
                "subject": {"reference": patient_url},
            },
            "request": {"method": "POST", "url": "Encounter"},
        },
        {
            "fullUrl": patient_url,
            "resource": patient(),
            "request": {"method": "POST", "url": "Patient"},
        },
        {
            "fullUrl": _urn(),
            "resource": {
                "resourceType": "Observation",
                "status": "final",
                "code": {"text": "puls"},
                "subject": {"reference": patient_url},
                "encounter": {"reference": encounter_url},
            },
            "request": {"method": "POST", "url": "Observation"},
        },
    )
    response = fhir.post("", json=bundle)
    assert response.status_code == 200, response.text
    result = response.json()
    assert result["type"] == "transaction-response"
    statuses = [e["response"]["status"] for e in result["entry"]]
    assert statuses == ["201 Created"] * 3
    encounter, created_patient, observation = (e["resource"] for e in result["entry"])
    assert encounter["subject"]["reference"] == f"Patient/{created_patient['id']}"
    assert observation["subject"]["reference"] == f"Patient/{created_patient['id']}"
    assert observation["encounter"]["reference"] == f"Encounter/{encounter['id']}"
    location = result["entry"][1]["response"]["location"]
    assert location == f"Patient/{created_patient['id']}/_history/1"
    stored = fhir.get(f"/Observation/{observation['id']}").json()
    assert stored["subject"]["reference"] == f"Patient/{created_patient['id']}"


def test_transaction_is_atomic(fhir: httpx.Client) -> None:
    existing = fhir.post("/Patient", json=patient()).json()
    before_patient = fhir.get(f"/Patient/{existing['id']}").content
    before_newest = _newest(fhir, "Patient")
    bundle = _transaction(
        {
            "fullUrl": _urn(),
            "resource": patient(family="Ny"),
            "request": {"method": "POST", "url": "Patient"},
        },
        {
            "resource": {**existing, "gender": "male"},
            "request": {"method": "PUT", "url": f"Patient/{existing['id']}"},
        },
        {
            "fullUrl": _urn(),
            "resource": patient(birthDate="2001-02-30"),  # invalid: the whole transaction fails
            "request": {"method": "POST", "url": "Patient"},
        },
    )
    response = fhir.post("", json=bundle)
    assert response.status_code == 422
    outcome = response.json()
    assert outcome["resourceType"] == "OperationOutcome"
    assert "Bundle.entry[2]" in outcome["issue"][0]["diagnostics"]
    assert fhir.get(f"/Patient/{existing['id']}").content == before_patient
    assert _newest(fhir, "Patient") == before_newest


def test_transaction_failure_in_database_phase_rolls_back(fhir: httpx.Client) -> None:
    existing = fhir.post("/Patient", json=patient()).json()
    before_newest = _newest(fhir, "Patient")
    bundle = _transaction(
        {
            "fullUrl": _urn(),
            "resource": patient(family="Ny"),
            "request": {"method": "POST", "url": "Patient"},
        },
        {
            "resource": {**existing, "gender": "male"},
            "request": {"method": "PUT", "url": f"Patient/{existing['id']}", "ifMatch": 'W/"9"'},
        },
    )
    response = fhir.post("", json=bundle)
    assert response.status_code == 412
    assert _newest(fhir, "Patient") == before_newest


def test_transaction_processes_delete_post_put_get_in_spec_order(fhir: httpx.Client) -> None:
    doomed = fhir.post("/Patient", json=patient()).json()
    kept = fhir.post("/Patient", json=patient()).json()
    bundle = _transaction(
        {"request": {"method": "GET", "url": f"Patient/{kept['id']}"}},
        {
            "resource": {**kept, "gender": "male"},
            "request": {"method": "PUT", "url": f"Patient/{kept['id']}"},
        },
        {"fullUrl": _urn(), "resource": patient(), "request": {"method": "POST", "url": "Patient"}},
        {"request": {"method": "DELETE", "url": f"Patient/{doomed['id']}"}},
    )
    result = fhir.post("", json=bundle).json()
    get, put, post, delete = result["entry"]
    # GET runs last, so it sees the PUT made in the same transaction
    assert get["resource"]["gender"] == "male"
    assert get["response"]["status"] == "200 OK"
    assert put["response"]["status"] == "200 OK"
    assert post["response"]["status"] == "201 Created"
    assert delete["response"]["status"] == "204 No Content"
    assert fhir.get(f"/Patient/{doomed['id']}").status_code == 410


def test_transaction_put_fullurl_references_are_rewritten(fhir: httpx.Client) -> None:
    org_id = f"org-{uuid.uuid4().hex[:8]}"
    org_urn = _urn()
    bundle = _transaction(
        {
            "fullUrl": org_urn,
            "resource": {"resourceType": "Organization", "id": org_id, "name": "Legesenteret"},
            "request": {"method": "PUT", "url": f"Organization/{org_id}"},
        },
        {
            "fullUrl": _urn(),
            "resource": patient(managingOrganization={"reference": org_urn}),
            "request": {"method": "POST", "url": "Patient"},
        },
    )
    result = fhir.post("", json=bundle).json()
    assert (
        result["entry"][1]["resource"]["managingOrganization"]["reference"]
        == f"Organization/{org_id}"
    )


def test_transaction_patch_entries(fhir: httpx.Client) -> None:
    created = fhir.post("/Patient", json=patient()).json()
    json_patch = [{"op": "replace", "path": "/gender", "value": "male"}]
    binary = {
        "resourceType": "Binary",
        "contentType": "application/json-patch+json",
        "data": base64.b64encode(orjson.dumps(json_patch)).decode(),
    }
    bundle = _transaction(
        {"resource": binary, "request": {"method": "PATCH", "url": f"Patient/{created['id']}"}}
    )
    result = fhir.post("", json=bundle)
    assert result.status_code == 200, result.text
    assert result.json()["entry"][0]["resource"]["gender"] == "male"


def test_batch_entries_succeed_or_fail_independently(fhir: httpx.Client) -> None:
    bundle = {
        "resourceType": "Bundle",
        "type": "batch",
        "entry": [
            {"resource": patient(), "request": {"method": "POST", "url": "Patient"}},
            {
                "resource": patient(birthDate="1999-99-99"),
                "request": {"method": "POST", "url": "Patient"},
            },
            {"request": {"method": "GET", "url": "Patient/does-not-exist"}},
            {"request": {"method": "FETCH", "url": "Patient"}},
        ],
    }
    response = fhir.post("", json=bundle)
    assert response.status_code == 200
    result = response.json()
    assert result["type"] == "batch-response"
    statuses = [e["response"]["status"] for e in result["entry"]]
    assert statuses[0] == "201 Created"
    assert statuses[1].startswith("400")
    assert statuses[2].startswith("404")
    assert statuses[3].startswith("400")
    assert result["entry"][1]["response"]["outcome"]["resourceType"] == "OperationOutcome"
    created_id = result["entry"][0]["resource"]["id"]
    assert fhir.get(f"/Patient/{created_id}").status_code == 200


def test_bundle_prefer_minimal_omits_resources(fhir: httpx.Client) -> None:
    bundle = _transaction(
        {"fullUrl": _urn(), "resource": patient(), "request": {"method": "POST", "url": "Patient"}}
    )
    result = fhir.post("", json=bundle, headers={"prefer": "return=minimal"}).json()
    entry = result["entry"][0]
    assert "resource" not in entry
    assert entry["response"]["location"].startswith("Patient/")


def test_transaction_absolute_request_urls_on_this_server(fhir: httpx.Client) -> None:
    bundle = _transaction(
        {
            "fullUrl": _urn(),
            "resource": patient(),
            "request": {"method": "POST", "url": f"{fhir.base_url}/Patient"},
        }
    )
    assert fhir.post("", json=bundle).status_code == 200
    elsewhere = _transaction(
        {
            "fullUrl": _urn(),
            "resource": patient(),
            "request": {"method": "POST", "url": "http://elsewhere/Patient"},
        }
    )
    assert fhir.post("", json=elsewhere).status_code == 400
