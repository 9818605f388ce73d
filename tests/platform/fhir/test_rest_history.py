"""History interactions: instance, type and system, with _since, _at, _count and paging."""

from __future__ import annotations

import time
import uuid

import httpx

from conftest import patient


def _new_type_resource(fhir: httpx.Client, resource_type: str = "Basic") -> dict:
    body = {"resourceType": resource_type, "code": {"text": uuid.uuid4().hex}}
    response = fhir.post(f"/{resource_type}", json=body)
    assert response.status_code == 201, response.text
    return response.json()


def test_instance_history_lists_all_versions_newest_first(fhir: httpx.Client) -> None:
    created = fhir.post("/Patient", json=patient()).json()
    url = f"/Patient/{created['id']}"
    for gender in ("male", "other"):
        assert fhir.put(url, json={**created, "gender": gender}).status_code == 200
    bundle = fhir.get(f"{url}/_history").json()
    assert bundle["resourceType"] == "Bundle"
    assert bundle["type"] == "history"
    versions = [e["resource"]["meta"]["versionId"] for e in bundle["entry"]]
    assert versions == ["3", "2", "1"]
    assert [e["request"]["method"] for e in bundle["entry"]] == ["PUT", "PUT", "POST"]
    first = bundle["entry"][0]
    assert first["fullUrl"].endswith(f"/fhir/Patient/{created['id']}")
    assert first["response"]["etag"] == 'W/"3"'
    assert bundle["link"][0]["relation"] == "self"


def test_paging_follows_next_links_to_the_end(fhir: httpx.Client) -> None:
    created = fhir.post("/Patient", json=patient()).json()
    url = f"/Patient/{created['id']}"
    for _ in range(6):
        fhir.put(url, json=created)
    seen: list[str] = []
    next_url: str | None = f"{fhir.base_url}{url}/_history?_count=3"
    pages = 0
    while next_url:
        bundle = fhir.get(next_url).json()
        pages += 1
        seen.extend(e["resource"]["meta"]["versionId"] for e in bundle.get("entry", []))
        next_url = next(
            (link["url"] for link in bundle["link"] if link["relation"] == "next"), None
        )
    assert seen == ["7", "6", "5", "4", "3", "2", "1"]
    assert pages == 3


def test_type_history_only_lists_that_type(fhir: httpx.Client) -> None:
    created = _new_type_resource(fhir, "Basic")
    fhir.post("/Patient", json=patient())
    bundle = fhir.get("/Basic/_history", params={"_count": 50}).json()
    types = {e["resource"]["resourceType"] for e in bundle["entry"] if "resource" in e}
    assert types == {"Basic"}
    assert any(e["resource"]["id"] == created["id"] for e in bundle["entry"])


def test_system_history_lists_every_type(fhir: httpx.Client) -> None:
    basic = _new_type_resource(fhir, "Basic")
    person = fhir.post("/Patient", json=patient()).json()
    bundle = fhir.get("/_history", params={"_count": 2}).json()
    ids = [e["resource"]["id"] for e in bundle["entry"]]
    assert ids == [person["id"], basic["id"]]
    assert any(link["relation"] == "next" for link in bundle["link"])


def test_since_excludes_older_versions(fhir: httpx.Client) -> None:
    created = fhir.post("/Patient", json=patient()).json()
    time.sleep(0.01)
    updated = fhir.put(f"/Patient/{created['id']}", json=created).json()
    since = updated["meta"]["lastUpdated"]
    bundle = fhir.get(f"/Patient/{created['id']}/_history", params={"_since": since}).json()
    assert [e["resource"]["meta"]["versionId"] for e in bundle["entry"]] == ["2"]


def test_at_lists_the_version_current_at_that_time(fhir: httpx.Client) -> None:
    created = fhir.post("/Patient", json=patient()).json()
    time.sleep(0.01)
    fhir.put(f"/Patient/{created['id']}", json=created)
    at = created["meta"]["lastUpdated"]  # microsecond precision: version 1 was current then
    bundle = fhir.get(f"/Patient/{created['id']}/_history", params={"_at": at}).json()
    assert [e["resource"]["meta"]["versionId"] for e in bundle["entry"]] == ["1"]
    year = at[:4]  # both versions were current during this year
    bundle = fhir.get(f"/Patient/{created['id']}/_history", params={"_at": year}).json()
    assert [e["resource"]["meta"]["versionId"] for e in bundle["entry"]] == ["2", "1"]


def test_history_of_unknown_instance_is_empty(fhir: httpx.Client) -> None:
    bundle = fhir.get("/Patient/unknown-history/_history").json()
    assert bundle["type"] == "history"
    assert "entry" not in bundle


def test_history_rejects_bad_parameters(fhir: httpx.Client) -> None:
    for params in ({"_count": "-1"}, {"_count": "x"}, {"_since": "yesterday"}, {"_at": "2020-13"}):
        response = fhir.get("/Patient/_history", params=params)
        assert response.status_code == 400, params
        assert response.json()["resourceType"] == "OperationOutcome"


def test_count_is_capped(fhir: httpx.Client) -> None:
    bundle = fhir.get("/_history", params={"_count": "100000"}).json()
    assert len(bundle.get("entry", [])) <= 1000
