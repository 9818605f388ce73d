"""Concurrency guarantees enforced by the database: 32 concurrent requests, both backends."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from conftest import Server, database_url_for, patient, start_server, stop_server

CONCURRENCY = 32


@pytest.fixture(scope="module", params=[1, 2], ids=["1-worker", "2-workers"])
def racing(
    request: pytest.FixtureRequest, server: Server, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    """The session server (one worker), or a second server with two worker processes."""
    if request.param == 1:
        yield server
        return
    data_dir: Path = tmp_path_factory.mktemp(f"two-workers-{server.backend}")
    if server.backend == "sqlite":
        database_url = database_url_for("sqlite", request, data_dir)
    else:
        database_url = server.database_url  # same database, another server with two processes
    two = start_server(database_url, data_dir, server.backend, "--workers", "2")
    yield two
    stop_server(two)


@pytest.fixture()
def client(racing: Server) -> Iterator[httpx.Client]:
    """A client of the racing server."""
    with httpx.Client(base_url=racing.fhir, timeout=30, auth=racing.auth) as c:
        yield c


async def _all_at_once(
    server: Server, method: str, path: str, bodies: list[dict], headers: dict
) -> list[httpx.Response]:
    limits = httpx.Limits(max_connections=CONCURRENCY)
    async with httpx.AsyncClient(
        base_url=server.fhir, limits=limits, timeout=60, auth=server.auth
    ) as client:
        # open the connections first so the requests really race
        await asyncio.gather(*(client.get("/metadata") for _ in range(CONCURRENCY)))
        return await asyncio.gather(
            *(client.request(method, path, json=b, headers=headers) for b in bodies)
        )


def test_concurrent_updates_with_same_if_match_exactly_one_wins(
    racing: Server, client: httpx.Client
) -> None:
    created = client.post("/Patient", json=patient()).json()
    url = f"/Patient/{created['id']}"
    bodies = [{**created, "name": [{"family": f"Racer{i}"}]} for i in range(CONCURRENCY)]
    responses = asyncio.run(_all_at_once(racing, "PUT", url, bodies, {"if-match": 'W/"1"'}))
    statuses = Counter(r.status_code for r in responses)
    assert statuses == {200: 1, 412: CONCURRENCY - 1}, statuses
    winner = next(r for r in responses if r.status_code == 200).json()
    stored = client.get(url).json()
    assert stored["meta"]["versionId"] == "2"
    assert stored["name"] == winner["name"]
    history = client.get(f"{url}/_history").json()
    assert len(history["entry"]) == 2


def test_concurrent_creates_of_same_client_id_make_one_version_1(
    racing: Server, client: httpx.Client
) -> None:
    id = f"race-{uuid.uuid4().hex[:12]}"
    bodies = [patient(id=id, family=f"Racer{i}") for i in range(CONCURRENCY)]
    responses = asyncio.run(_all_at_once(racing, "PUT", f"/Patient/{id}", bodies, {}))
    statuses = Counter(r.status_code for r in responses)
    assert statuses == {201: 1, 200: CONCURRENCY - 1}, statuses
    versions = sorted(int(r.json()["meta"]["versionId"]) for r in responses)
    assert versions == list(range(1, CONCURRENCY + 1))
    history = client.get(f"/Patient/{id}/_history", params={"_count": 100}).json()
    assert len(history["entry"]) == CONCURRENCY
    assert [e["request"]["method"] for e in history["entry"]].count("PUT") == CONCURRENCY


def test_concurrent_if_none_match_creates_exactly_one(racing: Server, client: httpx.Client) -> None:
    id = f"race-{uuid.uuid4().hex[:12]}"
    bodies = [patient(id=id, family=f"Racer{i}") for i in range(CONCURRENCY)]
    responses = asyncio.run(
        _all_at_once(racing, "PUT", f"/Patient/{id}", bodies, {"if-none-match": "*"})
    )
    statuses = Counter(r.status_code for r in responses)
    assert statuses == {201: 1, 412: CONCURRENCY - 1}, statuses
    assert client.get(f"/Patient/{id}").json()["meta"]["versionId"] == "1"


def test_concurrent_unconditional_updates_all_get_distinct_versions(
    racing: Server, client: httpx.Client
) -> None:
    created = client.post("/Patient", json=patient()).json()
    url = f"/Patient/{created['id']}"
    bodies = [{**created, "name": [{"family": f"Racer{i}"}]} for i in range(CONCURRENCY)]
    responses = asyncio.run(_all_at_once(racing, "PUT", url, bodies, {}))
    assert {r.status_code for r in responses} == {200}
    versions = sorted(int(r.json()["meta"]["versionId"]) for r in responses)
    assert versions == list(range(2, CONCURRENCY + 2))


def test_concurrent_patches_with_same_if_match_exactly_one_wins(
    racing: Server, client: httpx.Client
) -> None:
    created = client.post("/Patient", json=patient()).json()
    url = f"/Patient/{created['id']}"

    async def race() -> list[httpx.Response]:
        async with httpx.AsyncClient(base_url=racing.fhir, timeout=60, auth=racing.auth) as racer:
            return await asyncio.gather(
                *(
                    racer.patch(
                        url,
                        json=[{"op": "replace", "path": "/gender", "value": g}],
                        headers={
                            "content-type": "application/json-patch+json",
                            "if-match": 'W/"1"',
                        },
                    )
                    for g in ["male", "other"] * (CONCURRENCY // 2)
                )
            )

    statuses = Counter(r.status_code for r in asyncio.run(race()))
    assert statuses == {200: 1, 412: CONCURRENCY - 1}, statuses


def test_concurrent_conditional_creates_make_exactly_one(
    racing: Server, client: httpx.Client
) -> None:
    system = f"urn:test:{uuid.uuid4().hex}"
    body = {**patient(), "identifier": [{"system": system, "value": "1"}]}
    criteria = {"if-none-exist": f"identifier={system}|1"}
    responses = asyncio.run(
        _all_at_once(racing, "POST", "/Patient", [body] * CONCURRENCY, criteria)
    )
    statuses = Counter(r.status_code for r in responses)
    assert statuses == {201: 1, 200: CONCURRENCY - 1}, statuses
    ids = {r.json()["id"] for r in responses}
    assert len(ids) == 1
    found = client.get("/Patient", params={"identifier": f"{system}|1", "_total": "accurate"})
    assert found.json()["total"] == 1


def test_concurrent_conditional_updates_create_exactly_one(
    racing: Server, client: httpx.Client
) -> None:
    system = f"urn:test:{uuid.uuid4().hex}"
    bodies = [
        {**patient(family=f"Racer{i}"), "identifier": [{"system": system, "value": "1"}]}
        for i in range(CONCURRENCY)
    ]
    responses = asyncio.run(
        _all_at_once(racing, "PUT", f"/Patient?identifier={system}|1", bodies, {})
    )
    statuses = Counter(r.status_code for r in responses)
    assert statuses == {201: 1, 200: CONCURRENCY - 1}, statuses
    found = client.get("/Patient", params={"identifier": f"{system}|1"}).json()
    assert len(found["entry"]) == 1
    assert found["entry"][0]["resource"]["meta"]["versionId"] == str(CONCURRENCY)
