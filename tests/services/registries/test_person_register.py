"""The person register: a replaced number finds the current person and says so; family
relations answer "whose parent is this person"."""

from __future__ import annotations

import httpx
from registries_helpers import DNR_SYSTEM, FNR_SYSTEM, new_dnr, new_fnr, person, put

from samhandling.services.registries.model import FAMILY_RELATION, PARENTAL_RESPONSIBILITY


def test_a_replaced_d_number_finds_the_current_person(fhir: httpx.Client) -> None:
    old, current = new_dnr(), new_fnr()
    replaced = {"use": "old", "system": DNR_SYSTEM, "value": old, "period": {"end": "2024-03-01"}}
    stored = put(fhir, person(current, extra_identifiers=[replaced]))
    for query in (f"{DNR_SYSTEM}|{old}", old):
        found = fhir.get("/Patient", params={"identifier": query}).json()
        matches = [e for e in found["entry"] if e["search"]["mode"] == "match"]
        assert [m["resource"]["id"] for m in matches] == [stored["id"]]
        outcome = next(e["resource"] for e in found["entry"] if e["search"]["mode"] == "outcome")
        message = outcome["issue"][0]["diagnostics"]
        assert f"DNR {old} is no longer in use" in message
        assert f"FNR {current}" in message
    by_current = fhir.get("/Patient", params={"identifier": f"{FNR_SYSTEM}|{current}"}).json()
    assert all(e["search"]["mode"] == "match" for e in by_current["entry"])  # no warning


def test_children_of_a_parent(fhir: httpx.Client) -> None:
    parent_fnr = new_fnr()
    parent = put(fhir, person(parent_fnr))
    children = [put(fhir, person(new_fnr())) for _ in range(2)]
    for child, responsible in zip(children, (True, False), strict=True):
        relationship = [{"coding": [{"system": FAMILY_RELATION, "code": "mor"}]}]
        if responsible:
            relationship.append({"coding": [{"system": PARENTAL_RESPONSIBILITY,
                                             "code": "felles"}]})  # fmt: skip
        fhir.post("/RelatedPerson", json={
            "resourceType": "RelatedPerson",
            "patient": {"reference": f"Patient/{child['id']}"},
            "identifier": [{"system": FNR_SYSTEM, "value": parent_fnr}],
            "relationship": relationship,
        }).raise_for_status()  # fmt: skip
    relations = fhir.get("/RelatedPerson", params={"identifier": parent_fnr}).json()["entry"]
    assert {r["resource"]["patient"]["reference"] for r in relations} == {
        f"Patient/{c['id']}" for c in children
    }
    with_responsibility = fhir.get(
        "/RelatedPerson",
        params={"identifier": parent_fnr, "relationship": f"{PARENTAL_RESPONSIBILITY}|"},
    ).json()["entry"]
    assert [r["resource"]["patient"]["reference"] for r in with_responsibility] == [
        f"Patient/{children[0]['id']}"
    ]
    assert parent["id"]
