"""PATCH over HTTP: JSON Patch and FHIRPath Patch, and what a failed patch leaves behind."""

from __future__ import annotations

import httpx

from conftest import patient

JSON_PATCH = {"content-type": "application/json-patch+json"}


def test_json_patch(fhir: httpx.Client) -> None:
    created = fhir.post("/Patient", json=patient()).json()
    response = fhir.patch(
        f"/Patient/{created['id']}",
        json=[
            {"op": "replace", "path": "/gender", "value": "male"},
            {"op": "add", "path": "/active", "value": True},
        ],
        headers=JSON_PATCH,
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["gender"] == "male" and body["active"] is True
    assert body["meta"]["versionId"] == "2"
    history = fhir.get(f"/Patient/{created['id']}/_history").json()
    assert history["entry"][0]["request"]["method"] == "PATCH"


def test_fhirpath_patch(fhir: httpx.Client) -> None:
    created = fhir.post("/Patient", json=patient(birthDate="1920-01-01")).json()
    parameters = {
        "resourceType": "Parameters",
        "parameter": [
            {
                "name": "operation",
                "part": [
                    {"name": "type", "valueCode": "replace"},
                    {"name": "path", "valueString": "Patient.birthDate"},
                    {"name": "value", "valueDate": "1930-01-01"},
                ],
            }
        ],
    }
    response = fhir.patch(f"/Patient/{created['id']}", json=parameters)
    assert response.status_code == 200, response.text
    assert response.json()["birthDate"] == "1930-01-01"


def test_failed_patch_changes_nothing(fhir: httpx.Client) -> None:
    created = fhir.post("/Patient", json=patient()).json()
    url = f"/Patient/{created['id']}"
    before = fhir.get(url).content
    failing_test = b'[{"op": "test", "path": "/gender", "value": "male"}]'
    assert fhir.patch(url, content=failing_test, headers=JSON_PATCH).status_code == 422
    invalid_result = b'[{"op": "add", "path": "/birthDate", "value": "not a date"}]'
    response = fhir.patch(url, content=invalid_result, headers=JSON_PATCH)
    assert response.status_code == 422
    assert response.json()["issue"][0]["expression"] == ["Patient.birthDate"]
    id_change = b'[{"op": "replace", "path": "/id", "value": "other"}]'
    assert fhir.patch(url, content=id_change, headers=JSON_PATCH).status_code == 422
    assert fhir.get(url).content == before


def test_patch_with_if_match(fhir: httpx.Client) -> None:
    created = fhir.post("/Patient", json=patient()).json()
    url = f"/Patient/{created['id']}"
    patch = b'[{"op": "replace", "path": "/gender", "value": "male"}]'
    assert (
        fhir.patch(url, content=patch, headers={**JSON_PATCH, "if-match": 'W/"2"'}).status_code
        == 412
    )
    assert (
        fhir.patch(url, content=patch, headers={**JSON_PATCH, "if-match": 'W/"1"'}).status_code
        == 200
    )


def test_patch_unknown_or_deleted_resource(fhir: httpx.Client) -> None:
    patch = b'[{"op": "replace", "path": "/gender", "value": "male"}]'
    assert fhir.patch("/Patient/nobody", content=patch, headers=JSON_PATCH).status_code == 404
    created = fhir.post("/Patient", json=patient()).json()
    fhir.delete(f"/Patient/{created['id']}")
    assert (
        fhir.patch(f"/Patient/{created['id']}", content=patch, headers=JSON_PATCH).status_code
        == 410
    )


def test_xml_patch_is_unsupported_media_type(fhir: httpx.Client) -> None:
    created = fhir.post("/Patient", json=patient()).json()
    response = fhir.patch(
        f"/Patient/{created['id']}",
        content=b"<diff/>",
        headers={"content-type": "application/xml-patch+xml"},
    )
    assert response.status_code == 415
