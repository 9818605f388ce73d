"""Token search with :in, :not-in, :below and :above, backed by the terminology service, in
plain criteria, in _has, and with large value sets."""

from __future__ import annotations

import uuid

import httpx
import pytest

HIERARCHY = [
    {"code": "T", "display": "Endokrint", "concept": [
        {"code": "T90", "display": "Diabetes type 2", "concept": [
            {"code": "T90.1", "display": "Diabetes type 2 med nevropati"}]},
        {"code": "T89", "display": "Diabetes type 1"}]},
    {"code": "K", "display": "Hjerte-kar", "concept": [{"code": "K86", "display": "Hypertensjon"}]},
]  # fmt: skip


def created(fhir: httpx.Client, resource: dict) -> dict:
    response = fhir.post(f"/{resource['resourceType']}", json=resource)
    assert response.status_code == 201, response.text
    return response.json()


@pytest.fixture()
def world(fhir: httpx.Client) -> dict:
    system = f"http://example.org/cs/{uuid.uuid4().hex}"
    created(fhir, {"resourceType": "CodeSystem", "url": system, "status": "active",
                   "content": "complete", "concept": HIERARCHY})  # fmt: skip
    diabetes = created(fhir, {
        "resourceType": "ValueSet", "url": f"http://example.org/vs/{uuid.uuid4().hex}",
        "status": "active", "compose": {"include": [{"system": system, "filter": [
            {"property": "concept", "op": "is-a", "value": "T90"}]}]}})  # fmt: skip
    patient = created(fhir, {"resourceType": "Patient"})
    conditions = {}
    for code in ("T90", "T90.1", "T89", "K86"):
        conditions[code] = created(fhir, {
            "resourceType": "Condition", "subject": {"reference": f"Patient/{patient['id']}"},
            "code": {"coding": [{"system": system, "code": code}]}})["id"]  # fmt: skip
    return {"system": system, "valueset": diabetes["url"], "conditions": conditions,
            "patient": patient["id"]}  # fmt: skip


def found(fhir: httpx.Client, path: str, params: dict) -> set[str]:
    response = fhir.get(path, params=params)
    assert response.status_code == 200, response.text
    return {e["resource"]["id"] for e in response.json().get("entry", [])
            if e["search"]["mode"] == "match"}  # fmt: skip


def test_in_and_not_in(fhir: httpx.Client, world: dict) -> None:
    c = world["conditions"]
    mine = {"subject": f"Patient/{world['patient']}"}
    diabetes2, others = {c["T90"], c["T90.1"]}, {c["T89"], c["K86"]}
    assert found(fhir, "/Condition", {**mine, "code:in": world["valueset"]}) == diabetes2
    assert found(fhir, "/Condition", {**mine, "code:not-in": world["valueset"]}) == others
    through = {"_id": world["patient"], "_has:Condition:subject:code:in": world["valueset"]}
    has = found(fhir, "/Patient", through)
    assert has == {world["patient"]}
    unknown = fhir.get("/Condition", params={"code:in": "http://example.org/vs/none"})
    assert unknown.status_code == 400


def test_below_and_above(fhir: httpx.Client, world: dict) -> None:
    c, system = world["conditions"], world["system"]
    mine = {"subject": f"Patient/{world['patient']}"}
    assert found(fhir, "/Condition", {**mine, "code:below": f"{system}|T"}) == {
        c["T90"], c["T90.1"], c["T89"]}  # fmt: skip
    assert found(fhir, "/Condition", {**mine, "code:below": f"{system}|T90"}) == {
        c["T90"], c["T90.1"]}  # fmt: skip
    assert found(fhir, "/Condition", {**mine, "code:above": f"{system}|T90.1"}) == {
        c["T90"], c["T90.1"]}  # fmt: skip
    assert fhir.get("/Condition", params={"code:below": "T90"}).status_code == 400


def test_a_large_value_set_stays_one_flat_query(fhir: httpx.Client) -> None:
    system = f"http://example.org/cs/{uuid.uuid4().hex}"
    concepts = [{"code": f"C{n:04d}"} for n in range(1500)]
    created(fhir, {"resourceType": "CodeSystem", "url": system, "status": "active",
                   "content": "complete", "concept": concepts})  # fmt: skip
    everything = created(fhir, {"resourceType": "ValueSet", "status": "active",
                                "url": f"http://example.org/vs/{uuid.uuid4().hex}",
                                "compose": {"include": [{"system": system}]}})  # fmt: skip
    target = created(fhir, {"resourceType": "Condition", "subject": {"reference": "Patient/x"},
                            "code": {"coding": [{"system": system, "code": "C1499"}]}})  # fmt: skip
    assert found(fhir, "/Condition", {"code:in": everything["url"]}) == {target["id"]}
