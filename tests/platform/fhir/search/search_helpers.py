"""Helpers for the HTTP-level search tests (imported as ``search_helpers``).

The server's database is shared by every test of a session, so each test makes its own
data carrying a fresh marker (a ``meta.tag`` code, see `tagged`) and constrains every
search with that marker (`search` adds ``_tag=...`` when given one).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence

import httpx
import pytest

from conftest import Server, fresh_engine  # noqa: F401 - the search tests import it from here

TAG_SYSTEM = "http://test.example/search-marker"
Params = Mapping[str, str] | Sequence[tuple[str, str]]


def new_marker() -> str:
    """A fresh marker for one test's data."""
    return uuid.uuid4().hex


def tag_param(marker: str) -> tuple[str, str]:
    """The ``_tag`` search parameter that selects the resources marked with ``marker``."""
    return ("_tag", f"{TAG_SYSTEM}|{marker}")


def tagged(resource: dict, marker: str) -> dict:
    """``resource`` with the marker added to ``meta.tag``."""
    meta = dict(resource.get("meta", {}))
    meta["tag"] = [*meta.get("tag", []), {"system": TAG_SYSTEM, "code": marker}]
    return {**resource, "meta": meta}


def create(fhir: httpx.Client, resource: dict, marker: str | None = None) -> dict:
    """POST ``resource`` (tagged with ``marker`` if given); the stored resource."""
    if marker is not None:
        resource = tagged(resource, marker)
    response = fhir.post(f"/{resource['resourceType']}", json=resource)
    assert response.status_code == 201, response.text
    return response.json()


def create_all(fhir: httpx.Client, resources: Iterable[dict], marker: str) -> list[dict]:
    """Create several tagged resources in one transaction; the stored resources, in order."""
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {"resource": tagged(r, marker), "request": {"method": "POST", "url": r["resourceType"]}}
            for r in resources
        ],
    }
    response = fhir.post("", json=bundle)
    assert response.status_code == 200, response.text
    return [e["resource"] for e in response.json()["entry"]]


def update(fhir: httpx.Client, resource: dict) -> dict:
    """PUT ``resource`` back; the stored new version."""
    response = fhir.put(f"/{resource['resourceType']}/{resource['id']}", json=resource)
    assert response.status_code == 200, response.text
    return response.json()


def delete(fhir: httpx.Client, resource: dict) -> None:
    """DELETE ``resource``."""
    response = fhir.delete(f"/{resource['resourceType']}/{resource['id']}")
    assert response.status_code in (200, 204), response.text


def _items(params: Params | None) -> list[tuple[str, str]]:
    if params is None:
        return []
    if isinstance(params, Mapping):
        return list(params.items())
    return list(params)


def search(
    fhir: httpx.Client,
    path: str,
    params: Params | None = None,
    marker: str | None = None,
    headers: Mapping[str, str] | None = None,
) -> dict:
    """GET ``path`` with ``params`` (and the marker's ``_tag``); the searchset Bundle."""
    items = _items(params)
    if marker is not None:
        items.append(tag_param(marker))
    response = fhir.get(path, params=items, headers=dict(headers or {}))
    assert response.status_code == 200, f"{response.status_code} {response.text}"
    bundle = response.json()
    assert bundle["resourceType"] == "Bundle"
    assert bundle["type"] == "searchset"
    return bundle


def follow(fhir: httpx.Client, url: str) -> dict:
    """GET a link the server gave (absolute URL); the searchset Bundle."""
    response = fhir.get(url)
    assert response.status_code == 200, f"{response.status_code} {response.text}"
    bundle = response.json()
    assert bundle["type"] == "searchset"
    return bundle


def link(bundle: dict, relation: str) -> str | None:
    """The URL of the link ``relation`` of a Bundle, or None."""
    found = [x["url"] for x in bundle.get("link", []) if x["relation"] == relation]
    assert len(found) <= 1, bundle["link"]
    return found[0] if found else None


def entries(bundle: dict, mode: str = "match") -> list[dict]:
    """The entries of one search mode."""
    return [e for e in bundle.get("entry", []) if e.get("search", {}).get("mode") == mode]


def match_ids(bundle: dict) -> list[str]:
    """The ids of the matches, in the order given."""
    return [e["resource"]["id"] for e in entries(bundle)]


def included(bundle: dict) -> list[tuple[str, str]]:
    """(type, id) of the included resources, in the order given."""
    return [
        (e["resource"]["resourceType"], e["resource"]["id"]) for e in entries(bundle, "include")
    ]


def warnings(bundle: dict) -> list[dict]:
    """The issues of the OperationOutcome entries (search mode outcome)."""
    issues = []
    for entry in entries(bundle, "outcome"):
        assert entry["resource"]["resourceType"] == "OperationOutcome"
        issues.extend(entry["resource"]["issue"])
    return issues


def found(fhir: httpx.Client, path: str, marker: str, params: Params | None = None) -> set[str]:
    """The ids matching ``params`` among the marker's resources (all on one page)."""
    bundle = search(fhir, path, [*_items(params), ("_count", "1000")], marker)
    assert link(bundle, "next") is None
    ids = match_ids(bundle)
    assert len(ids) == len(set(ids)), f"a resource matched twice: {ids}"
    return set(ids)


def all_pages(fhir: httpx.Client, first: dict) -> list[dict]:
    """``first`` and every page after it, following ``next`` links."""
    pages = [first]
    while (url := link(pages[-1], "next")) is not None:
        pages.append(follow(fhir, url))
        assert len(pages) < 100, "next links never end"
    return pages


def rejected(
    fhir: httpx.Client,
    path: str,
    params: Params,
    *,
    status: int = 400,
    code: str | None = None,
    headers: Mapping[str, str] | None = None,
) -> dict:
    """GET a search the server must refuse; its OperationOutcome."""
    response = fhir.get(path, params=_items(params), headers=dict(headers or {}))
    assert response.status_code == status, f"{response.status_code} {response.text}"
    outcome = response.json()
    assert outcome["resourceType"] == "OperationOutcome"
    assert outcome["issue"][0]["severity"] in ("error", "fatal")
    if code is not None:
        assert outcome["issue"][0]["code"] == code, outcome
    return outcome


def xfail_on(request: pytest.FixtureRequest, backends: Iterable[str], reason: str) -> None:
    """Mark the running test as a strict expected failure when it runs on one of ``backends``."""
    if request.getfixturevalue("server").backend in backends:
        request.applymarker(pytest.mark.xfail(reason=reason, strict=True))


def names(resources: dict[str, dict]) -> dict[str, str]:
    """id -> key of a {key: resource} map (to report matches by their test names)."""
    return {r["id"]: key for key, r in resources.items()}


def keys(ids: Iterable[str], resources: dict[str, dict]) -> set[str]:
    """The test names of ``ids`` (see `names`); unknown ids appear as themselves."""
    by_id = names(resources)
    return {by_id.get(i, i) for i in ids}


def ordered_keys(ids: Iterable[str], resources: dict[str, dict]) -> list[str]:
    """Like `keys`, keeping order."""
    by_id = names(resources)
    return [by_id.get(i, i) for i in ids]


def coding(system: str | None, code: str, display: str | None = None) -> dict:
    """A Coding."""
    result: dict = {"code": code}
    if system is not None:
        result["system"] = system
    if display is not None:
        result["display"] = display
    return result


def observation(**extra: object) -> dict:
    """A small valid Observation (code text "test" unless ``code`` is given)."""
    return {"resourceType": "Observation", "status": "final", "code": {"text": "test"}, **extra}


def quantity(value: float, code: str, system: str | None = "http://unitsofmeasure.org") -> dict:
    """A Quantity."""
    result: dict = {"value": value, "unit": code, "code": code}
    if system is not None:
        result["system"] = system
    return result


def client(server: Server) -> httpx.Client:
    """A new HTTP client on a server's FHIR base, with its DPoP-bound system token (for
    module-scoped data fixtures)."""
    return httpx.Client(
        base_url=server.fhir,
        headers={"accept": "application/fhir+json"},
        timeout=30,
        auth=server.auth,
    )
