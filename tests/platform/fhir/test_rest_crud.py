"""Read, vread, create, update, delete over real HTTP, on both backends."""

from __future__ import annotations

import time
import uuid
from email.utils import format_datetime, parsedate_to_datetime

import httpx

from conftest import patient


def create(fhir: httpx.Client, resource: dict) -> httpx.Response:
    response = fhir.post(f"/{resource['resourceType']}", json=resource)
    assert response.status_code == 201, response.text
    return response


def test_create_assigns_id_meta_and_headers(fhir: httpx.Client) -> None:
    response = create(fhir, patient(id="client-id-is-ignored"))
    body = response.json()
    assert body["id"] != "client-id-is-ignored"
    assert len(body["id"]) == 36
    assert body["meta"]["versionId"] == "1"
    assert body["meta"]["lastUpdated"].endswith("Z")
    assert response.headers["etag"] == 'W/"1"'
    assert response.headers["location"].endswith(f"/fhir/Patient/{body['id']}/_history/1")
    assert response.headers["content-type"].startswith("application/fhir+json")
    assert parsedate_to_datetime(response.headers["last-modified"]).year >= 2024


def test_server_ids_are_time_ordered(fhir: httpx.Client) -> None:
    ids = [create(fhir, patient()).json()["id"] for _ in range(5)]
    assert ids == sorted(ids)


def test_read_returns_exactly_the_stored_bytes(fhir: httpx.Client) -> None:
    created = create(fhir, patient(birthDate="1970-01-01"))
    read = fhir.get(f"/Patient/{created.json()['id']}")
    assert read.status_code == 200
    assert read.content == created.content
    assert read.headers["etag"] == 'W/"1"'


def test_update_creates_new_version_and_vread_keeps_old(fhir: httpx.Client) -> None:
    first = create(fhir, patient()).json()
    changed = {**first, "gender": "male"}
    response = fhir.put(f"/Patient/{first['id']}", json=changed)
    assert response.status_code == 200
    assert response.json()["meta"]["versionId"] == "2"
    assert response.headers["etag"] == 'W/"2"'
    assert fhir.get(f"/Patient/{first['id']}/_history/1").json()["gender"] == "female"
    assert fhir.get(f"/Patient/{first['id']}/_history/2").json()["gender"] == "male"
    assert fhir.get(f"/Patient/{first['id']}/_history/3").status_code == 404


def test_update_ignores_client_meta_version_but_keeps_tags(fhir: httpx.Client) -> None:
    first = create(fhir, patient()).json()
    tag = {"system": "urn:test", "code": "x"}
    changed = {
        **first,
        "meta": {"versionId": "99", "lastUpdated": "2000-01-01T00:00:00Z", "tag": [tag]},
    }
    body = fhir.put(f"/Patient/{first['id']}", json=changed).json()
    assert body["meta"]["versionId"] == "2"
    assert body["meta"]["lastUpdated"] != "2000-01-01T00:00:00Z"
    assert body["meta"]["tag"] == [tag]


def test_create_on_update_with_client_id(fhir: httpx.Client) -> None:
    id = f"client-{uuid.uuid4().hex[:10]}"
    response = fhir.put(f"/Patient/{id}", json=patient(id=id))
    assert response.status_code == 201
    assert response.json()["meta"]["versionId"] == "1"
    again = fhir.put(f"/Patient/{id}", json=patient(id=id))
    assert again.status_code == 200
    assert again.json()["meta"]["versionId"] == "2"


def test_delete_is_a_versioned_tombstone(fhir: httpx.Client) -> None:
    created = create(fhir, patient()).json()
    url = f"/Patient/{created['id']}"
    deleted = fhir.delete(url)
    assert deleted.status_code == 204
    assert deleted.headers["etag"] == 'W/"2"'
    gone = fhir.get(url)
    assert gone.status_code == 410
    assert gone.json()["resourceType"] == "OperationOutcome"
    assert fhir.get(f"{url}/_history/1").status_code == 200
    assert fhir.get(f"{url}/_history/2").status_code == 410
    assert fhir.delete(url).status_code == 204  # deleting again changes nothing
    history = fhir.get(f"{url}/_history").json()
    assert [e["request"]["method"] for e in history["entry"]] == ["DELETE", "POST"]
    recreated = fhir.put(url, json={**created, "gender": "other"})
    assert recreated.status_code == 201
    assert recreated.json()["meta"]["versionId"] == "3"


def test_delete_of_unknown_resource_is_no_content(fhir: httpx.Client) -> None:
    assert fhir.delete(f"/Patient/never-{uuid.uuid4().hex[:8]}").status_code == 204


def test_read_unknown_is_404_with_outcome(fhir: httpx.Client) -> None:
    response = fhir.get("/Patient/does-not-exist")
    assert response.status_code == 404
    assert response.json()["issue"][0]["code"] == "not-found"


def test_unknown_resource_type_is_404(fhir: httpx.Client) -> None:
    response = fhir.get("/Patientt/1")
    assert response.status_code == 404
    assert response.json()["resourceType"] == "OperationOutcome"
    assert fhir.post("/Foo", json={"resourceType": "Foo"}).status_code == 404


def test_if_match_mismatch_is_412_and_changes_nothing(fhir: httpx.Client) -> None:
    created = create(fhir, patient()).json()
    url = f"/Patient/{created['id']}"
    stale = fhir.put(url, json={**created, "gender": "male"}, headers={"if-match": 'W/"7"'})
    assert stale.status_code == 412
    assert fhir.get(url).json()["meta"]["versionId"] == "1"
    ok = fhir.put(url, json={**created, "gender": "male"}, headers={"if-match": 'W/"1"'})
    assert ok.status_code == 200
    assert fhir.delete(url, headers={"if-match": 'W/"1"'}).status_code == 412
    assert fhir.delete(url, headers={"if-match": 'W/"2"'}).status_code == 204


def test_if_match_malformed_is_400(fhir: httpx.Client) -> None:
    created = create(fhir, patient()).json()
    response = fhir.put(f"/Patient/{created['id']}", json=created, headers={"if-match": "nonsense"})
    assert response.status_code == 400


def test_if_none_match_star_refuses_to_overwrite(fhir: httpx.Client) -> None:
    created = create(fhir, patient()).json()
    response = fhir.put(f"/Patient/{created['id']}", json=created, headers={"if-none-match": "*"})
    assert response.status_code == 412


def test_conditional_read_if_none_match_and_if_modified_since(fhir: httpx.Client) -> None:
    created = create(fhir, patient())
    url = f"/Patient/{created.json()['id']}"
    assert fhir.get(url, headers={"if-none-match": 'W/"1"'}).status_code == 304
    assert fhir.get(url, headers={"if-none-match": 'W/"2"'}).status_code == 200
    modified = parsedate_to_datetime(created.headers["last-modified"])
    assert (
        fhir.get(url, headers={"if-modified-since": created.headers["last-modified"]}).status_code
        == 304
    )
    before = format_datetime(modified.replace(year=modified.year - 1), usegmt=True)
    assert fhir.get(url, headers={"if-modified-since": before}).status_code == 200


def test_head_read_has_headers_and_no_body(fhir: httpx.Client) -> None:
    created = create(fhir, patient()).json()
    response = fhir.head(f"/Patient/{created['id']}")
    assert response.status_code == 200
    assert response.headers["etag"] == 'W/"1"'
    assert response.content == b""


def test_prefer_return(fhir: httpx.Client) -> None:
    minimal = fhir.post("/Patient", json=patient(), headers={"prefer": "return=minimal"})
    assert minimal.status_code == 201
    assert minimal.content == b""
    assert "location" in minimal.headers
    outcome = fhir.post("/Patient", json=patient(), headers={"prefer": "return=OperationOutcome"})
    assert outcome.json()["resourceType"] == "OperationOutcome"
    representation = fhir.post(
        "/Patient", json=patient(), headers={"prefer": "return=representation"}
    )
    assert representation.json()["resourceType"] == "Patient"


def test_summary_and_elements_on_read(fhir: httpx.Client) -> None:
    created = create(
        fhir,
        patient(
            text={
                "status": "generated",
                "div": '<div xmlns="http://www.w3.org/1999/xhtml">Kari</div>',
            },
            maritalStatus={"text": "gift"},
            birthDate="1980-05-05",
        ),
    ).json()
    url = f"/Patient/{created['id']}"
    summary = fhir.get(url, params={"_summary": "true"}).json()
    assert "birthDate" in summary and "name" in summary
    assert "text" not in summary and "maritalStatus" not in summary  # not summary elements
    assert any(t["code"] == "SUBSETTED" for t in summary["meta"]["tag"])
    text = fhir.get(url, params={"_summary": "text"}).json()
    assert set(text) == {"resourceType", "id", "meta", "text"}
    data = fhir.get(url, params={"_summary": "data"}).json()
    assert "text" not in data and "maritalStatus" in data
    assert fhir.get(url, params={"_summary": "false"}).json() == created
    elements = fhir.get(url, params={"_elements": "birthDate,gender"}).json()
    assert set(elements) == {"resourceType", "id", "meta", "birthDate", "gender"}
    assert fhir.get(url, params={"_summary": "bogus"}).status_code == 400


def test_elements_matches_choice_base_name(fhir: httpx.Client) -> None:
    observation = {
        "resourceType": "Observation",
        "status": "final",
        "code": {"text": "puls"},
        "valueQuantity": {"value": 60, "unit": "/min"},
        "note": [{"text": "rolig"}],
    }
    created = create(fhir, observation).json()
    body = fhir.get(f"/Observation/{created['id']}", params={"_elements": "value"}).json()
    assert "valueQuantity" in body
    assert "note" not in body
    assert "status" in body and "code" in body  # mandatory elements are always returned


def test_content_negotiation(fhir: httpx.Client) -> None:
    created = create(fhir, patient()).json()
    url = f"/Patient/{created['id']}"
    assert fhir.get(url, headers={"accept": "application/fhir+xml"}).status_code == 406
    assert fhir.get(url, headers={"accept": "application/json"}).status_code == 200
    assert fhir.get(url, headers={"accept": "*/*"}).status_code == 200
    assert fhir.get(url, params={"_format": "xml"}).status_code == 406
    assert fhir.get(url, params={"_format": "json"}).status_code == 200
    assert fhir.get(url, params={"_format": "application/fhir+json"}).status_code == 200
    xml = fhir.post(
        "/Patient",
        content=b'<Patient xmlns="http://hl7.org/fhir"/>',
        headers={"content-type": "application/fhir+xml"},
    )
    assert xml.status_code == 415
    assert xml.json()["resourceType"] == "OperationOutcome"
    plain_json = fhir.post("/Patient", json=patient(), headers={"content-type": "application/json"})
    assert plain_json.status_code == 201


def test_last_updated_increases_with_versions(fhir: httpx.Client) -> None:
    created = create(fhir, patient()).json()
    time.sleep(0.002)
    updated = fhir.put(f"/Patient/{created['id']}", json=created).json()
    assert updated["meta"]["lastUpdated"] > created["meta"]["lastUpdated"]


def test_metadata_is_a_capability_statement(fhir: httpx.Client) -> None:
    statement = fhir.get("/metadata").json()
    assert statement["resourceType"] == "CapabilityStatement"
    assert statement["fhirVersion"] == "4.0.1"
    types = {r["type"] for r in statement["rest"][0]["resource"]}
    assert len(types) == 146 and "Patient" in types
    patient_caps = next(r for r in statement["rest"][0]["resource"] if r["type"] == "Patient")
    assert {i["code"] for i in patient_caps["interaction"]} >= {
        "read",
        "vread",
        "update",
        "patch",
        "delete",
        "create",
    }
    assert {i["code"] for i in statement["rest"][0]["interaction"]} == {
        "transaction",
        "batch",
        "history-system",
        "search-system",
    }
    assert "application/json-patch+json" in statement["patchFormat"]
    assert patient_caps["conditionalCreate"] is True
    assert patient_caps["conditionalDelete"] == "single"
    patient_params = {p["name"]: p for p in patient_caps["searchParam"]}
    # exactly what works: indexed core parameters and the columns, not _text/_content/deceased
    assert {"_id", "_lastUpdated", "_tag", "name", "identifier", "birthdate"} <= set(patient_params)
    assert not {"_text", "_content", "_query", "deceased"} & set(patient_params)
    assert ":exact" in patient_params["name"]["documentation"]
    assert ":of-type" in patient_params["identifier"]["documentation"]
    assert ":of-type" not in patient_params["gender"]["documentation"]
    assert "Patient:general-practitioner" in patient_caps["searchInclude"]
    common = {p["name"] for p in statement["rest"][0]["searchParam"]}
    assert common == {"_id", "_lastUpdated", "_tag", "_profile", "_security", "_source"}
