"""Conditional create, update, patch and delete, and conditional references in transactions."""
# ruff: noqa: E501 - the Bundle fixtures read best one entry a line

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from conftest import Server, database_url_for, patient, start_server, stop_server


def _identified(system: str, value: str = "1", **fields: object) -> dict:
    return {**patient(**fields), "identifier": [{"system": system, "value": value}]}


@pytest.fixture()
def system() -> str:
    """A fresh identifier system, so tests never see each other's resources."""
    return f"urn:test:{uuid.uuid4().hex}"


def _ids(fhir: httpx.Client, query: str) -> list[str]:
    bundle = fhir.get(f"/Patient?{query}").json()
    return [e["resource"]["id"] for e in bundle.get("entry", []) if e["search"]["mode"] == "match"]


def test_conditional_create_returns_the_existing_match(fhir: httpx.Client, system: str) -> None:
    first = fhir.post(
        "/Patient", json=_identified(system), headers={"If-None-Exist": f"identifier={system}|1"}
    )
    assert first.status_code == 201
    again = fhir.post(
        "/Patient",
        json=_identified(system, family="Other"),
        headers={"If-None-Exist": f"identifier={system}|1"},
    )
    assert again.status_code == 200
    assert again.json()["id"] == first.json()["id"]
    assert again.json()["name"] == first.json()["name"]  # nothing was written


def test_conditional_create_with_several_matches_is_412(fhir: httpx.Client, system: str) -> None:
    fhir.post("/Patient", json=_identified(system))
    fhir.post("/Patient", json=_identified(system))
    response = fhir.post(
        "/Patient", json=_identified(system), headers={"If-None-Exist": f"identifier={system}|1"}
    )
    assert response.status_code == 412
    assert response.json()["issue"][0]["code"] == "multiple-matches"
    assert len(_ids(fhir, f"identifier={system}|1")) == 2


def test_conditional_create_with_unknown_parameter_is_400(fhir: httpx.Client, system: str) -> None:
    response = fhir.post(
        "/Patient", json=_identified(system), headers={"If-None-Exist": "nonsense=1"}
    )
    assert response.status_code == 400
    assert _ids(fhir, f"identifier={system}|1") == []


def test_conditional_update_updates_creates_and_refuses_ambiguity(
    fhir: httpx.Client, system: str
) -> None:
    created = fhir.put(f"/Patient?identifier={system}|1", json=_identified(system))
    assert created.status_code == 201
    id = created.json()["id"]
    updated = fhir.put(
        f"/Patient?identifier={system}|1", json=_identified(system, family="Changed")
    )
    assert updated.status_code == 200
    assert updated.json()["id"] == id
    assert updated.json()["meta"]["versionId"] == "2"
    wrong_id = fhir.put(
        f"/Patient?identifier={system}|1", json={**_identified(system), "id": "someone-else"}
    )
    assert wrong_id.status_code == 400
    fhir.post("/Patient", json=_identified(system))
    ambiguous = fhir.put(f"/Patient?identifier={system}|1", json=_identified(system))
    assert ambiguous.status_code == 412


def test_conditional_patch(fhir: httpx.Client, system: str) -> None:
    id = fhir.post("/Patient", json=_identified(system)).json()["id"]
    patch = [{"op": "replace", "path": "/gender", "value": "male"}]
    headers = {"Content-Type": "application/json-patch+json"}
    response = fhir.patch(f"/Patient?identifier={system}|1", json=patch, headers=headers)
    assert response.status_code == 200
    assert response.json()["id"] == id and response.json()["gender"] == "male"
    missing = fhir.patch(f"/Patient?identifier={system}|2", json=patch, headers=headers)
    assert missing.status_code == 404


def test_conditional_delete_single(fhir: httpx.Client, system: str) -> None:
    id = fhir.post("/Patient", json=_identified(system)).json()["id"]
    assert fhir.delete(f"/Patient?identifier={system}|1").status_code == 204
    assert fhir.get(f"/Patient/{id}").status_code == 410
    assert fhir.delete(f"/Patient?identifier={system}|1").status_code == 204  # no match: fine
    fhir.post("/Patient", json=_identified(system, value="2"))
    fhir.post("/Patient", json=_identified(system, value="2"))
    assert fhir.delete(f"/Patient?identifier={system}|2").status_code == 412
    assert len(_ids(fhir, f"identifier={system}|2")) == 2


@pytest.fixture(scope="module")
def multiple_delete_server(
    request: pytest.FixtureRequest, server: Server, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    """A server configured to delete up to 10 matches per conditional DELETE."""
    data_dir: Path = tmp_path_factory.mktemp(f"multi-delete-{server.backend}")
    url = (
        database_url_for("sqlite", request, data_dir)
        if server.backend == "sqlite"
        else server.database_url
    )
    started = start_server(
        url, data_dir, server.backend, env={"SAMHANDLING_CONDITIONAL_DELETE_MAX": "10"}
    )
    yield started
    stop_server(started)


def test_conditional_delete_multiple_when_configured(
    multiple_delete_server: Server, system: str
) -> None:
    with httpx.Client(
        base_url=multiple_delete_server.fhir, timeout=30, auth=multiple_delete_server.auth
    ) as fhir:
        for _ in range(3):
            fhir.post("/Patient", json=_identified(system))
        assert fhir.delete(f"/Patient?identifier={system}|1").status_code == 204
        assert _ids(fhir, f"identifier={system}|1") == []
        for _ in range(11):
            fhir.post("/Patient", json=_identified(system, value="many"))
        assert fhir.delete(f"/Patient?identifier={system}|many").status_code == 412
        assert len(_ids(fhir, f"identifier={system}|many&_count=20")) == 11


def test_transaction_resolves_conditional_references_and_entries(
    fhir: httpx.Client, system: str
) -> None:
    existing = fhir.post("/Patient", json=_identified(system, value="a")).json()
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {"request": {"method": "POST", "url": "Observation"},
             "resource": {"resourceType": "Observation", "status": "final", "code": {"text": "x"},
                          "subject": {"reference": f"Patient?identifier={system}|a"}}},
            {"fullUrl": "urn:uuid:5b0cbd7c-30a7-4f5c-a2a8-4f0f0e0c7a01",
             "request": {"method": "POST", "url": "Patient", "ifNoneExist": f"identifier={system}|a"},
             "resource": _identified(system, value="a")},
            {"fullUrl": "urn:uuid:5b0cbd7c-30a7-4f5c-a2a8-4f0f0e0c7a02",
             "request": {"method": "POST", "url": "Patient", "ifNoneExist": f"identifier={system}|b"},
             "resource": _identified(system, value="b")},
            {"request": {"method": "POST", "url": "Observation"},
             "resource": {"resourceType": "Observation", "status": "final", "code": {"text": "y"},
                          "subject": {"reference": "urn:uuid:5b0cbd7c-30a7-4f5c-a2a8-4f0f0e0c7a01"},
                          "performer": [{"reference": "urn:uuid:5b0cbd7c-30a7-4f5c-a2a8-4f0f0e0c7a02"}]}},
            {"request": {"method": "PUT", "url": f"Patient?identifier={system}|c"}, "resource": _identified(system, value="c")},
            {"request": {"method": "DELETE", "url": f"Patient?identifier={system}|nobody"}},
        ],
    }  # fmt: skip
    response = fhir.post("", json=bundle)
    assert response.status_code == 200, response.text
    statuses = [e["response"]["status"] for e in response.json()["entry"]]
    assert statuses == [
        "201 Created",
        "200 OK",
        "201 Created",
        "201 Created",
        "201 Created",
        "204 No Content",
    ]
    locations = [e["response"].get("location") for e in response.json()["entry"]]
    first = fhir.get(locations[0]).json()
    assert first["subject"]["reference"] == f"Patient/{existing['id']}"
    second = fhir.get(locations[3]).json()
    assert second["subject"]["reference"] == f"Patient/{existing['id']}"
    new_b = _ids(fhir, f"identifier={system}|b")
    assert second["performer"][0]["reference"] == f"Patient/{new_b[0]}"
    assert len(_ids(fhir, f"identifier={system}|c")) == 1


def test_transaction_with_unresolvable_conditional_reference_changes_nothing(
    fhir: httpx.Client, system: str
) -> None:
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {"request": {"method": "POST", "url": "Patient"}, "resource": _identified(system, value="new")},
            {"request": {"method": "POST", "url": "Observation"},
             "resource": {"resourceType": "Observation", "status": "final", "code": {"text": "x"},
                          "subject": {"reference": f"Patient?identifier={system}|missing"}}},
        ],
    }  # fmt: skip
    response = fhir.post("", json=bundle)
    assert response.status_code == 412
    assert _ids(fhir, f"identifier={system}|new") == []
