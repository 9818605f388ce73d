"""Custom SearchParameters and reindexing: honoured by search once the job is done; resumable."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from search_helpers import fresh_engine

from conftest import Server
from samhandling.platform.fhir.engine import FhirEngine
from samhandling.platform.fhir.search import reindex


def _status(server: Server) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "samhandling", "reindex", "--status",
         "--database-url", server.database_url],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return done.stdout + done.stderr


def _wait_for_jobs(server: Server, reason: str, timeout: float = 30) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        lines = [line for line in _status(server).splitlines() if reason in line]
        if lines and all(" done " in line for line in lines):
            return "\n".join(lines)
        time.sleep(0.3)
    raise AssertionError(f"reindex jobs for {reason} did not finish: {_status(server)}")


def _search_parameter(code: str, url: str, expression: str, kind: str = "token") -> dict:
    return {
        "resourceType": "SearchParameter",
        "url": url,
        "name": code,
        "status": "active",
        "description": "test parameter",
        "code": code,
        "base": ["Patient"],
        "type": kind,
        "expression": expression,
    }


def _ids(bundle: dict) -> set[str]:
    return {e["resource"]["id"] for e in bundle.get("entry", []) if e["search"]["mode"] == "match"}


def test_custom_parameter_indexes_existing_and_new_resources(
    server: Server, fhir: httpx.Client
) -> None:
    marker = uuid.uuid4().hex
    code = f"marital{marker[:8]}"
    married = {"coding": [{"system": f"urn:{marker}", "code": "M"}]}
    before = fhir.post("/Patient", json={"resourceType": "Patient", "maritalStatus": married})
    other = fhir.post("/Patient", json={"resourceType": "Patient", "maritalStatus": {"text": "x"}})
    assert before.status_code == other.status_code == 201
    created = fhir.post(
        "/SearchParameter",
        json=_search_parameter(code, f"http://example.org/{marker}", "Patient.maritalStatus"),
    )
    assert created.status_code == 201
    sp_id = created.json()["id"]
    time.sleep(1.0)  # the workers know the parameter (0.5 s polls); the job waits 2 s to start
    early = fhir.get("/Patient", params={code: f"urn:{marker}|M"}).json()
    assert any(
        "being rebuilt" in issue["diagnostics"]
        for entry in early.get("entry", [])
        if entry["search"]["mode"] == "outcome"
        for issue in entry["resource"]["issue"]
    ), early
    status = _wait_for_jobs(server, f"SearchParameter/{sp_id}")
    assert "types=Patient" in status
    after = fhir.post("/Patient", json={"resourceType": "Patient", "maritalStatus": married})
    time.sleep(0.6)  # the worker clears its "reindexing" flag in the poll that finished the job
    found = fhir.get("/Patient", params={code: f"urn:{marker}|M"}).json()
    assert _ids(found) == {before.json()["id"], after.json()["id"]}
    assert all(e["search"]["mode"] == "match" for e in found["entry"])  # no warning once done

    # changing the definition reindexes: now the parameter reads gender
    changed = _search_parameter(code, f"http://example.org/{marker}", "Patient.gender")
    fhir.put(f"/SearchParameter/{sp_id}", json={**changed, "id": sp_id})
    _wait_for_jobs(server, f"SearchParameter/{sp_id}")
    female = fhir.post("/Patient", json={"resourceType": "Patient", "gender": "female",
                                         "maritalStatus": married})  # fmt: skip
    assert _ids(fhir.get("/Patient", params={code: f"urn:{marker}|M"}).json()) == set()
    assert female.json()["id"] in _ids(fhir.get("/Patient", params={code: "female"}).json())

    # deleting it: the parameter is unknown again (a warning, or 400 when strict)
    fhir.delete(f"/SearchParameter/{sp_id}")
    _wait_for_jobs(server, f"SearchParameter/{sp_id}")
    strict = fhir.get("/Patient", params={code: "female"}, headers={"Prefer": "handling=strict"})
    assert strict.status_code == 400


@pytest.fixture(params=["sqlite", "postgresql"])
async def fresh(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[FhirEngine]:
    """An engine on a brand-new database (not shared with the session server)."""
    async with fresh_engine(request.param, tmp_path) as engine:
        yield engine


async def test_reindex_job_is_resumable_and_reports_progress(fresh: FhirEngine) -> None:
    engine = fresh
    count = reindex.BATCH + 120
    async with engine.transaction() as tx:
        items = [("Patient", f"p{i}", {"resourceType": "Patient", "gender": "male"})
                 for i in range(count)]  # fmt: skip
        await engine.create_many(items, tx)
    async with engine.store.transaction() as tx:  # forget the index rows, as if never built
        await tx.fetch("DELETE FROM search_token", [])
        await reindex.enqueue(tx, engine.store.backend, "test", ["Patient"])
    assert await reindex._step(engine, settle=0)  # one batch, then "crash"
    [job] = await reindex.jobs(engine)
    assert (job.status, job.processed, job.total) == ("running", reindex.BATCH, count)
    assert job.progress == f"{reindex.BATCH}/{count} ({100 * reindex.BATCH // count}%)"

    restarted = FhirEngine(engine.store)  # a new process would start from the stored job
    assert await reindex.run_pending(restarted, settle=0) == 1
    [job] = await reindex.jobs(restarted)
    assert (job.status, job.processed) == ("done", count)
    request = restarted.parse_search(("Patient",), [("gender", "male"), ("_total", "accurate")])
    page = await restarted.search(request)
    assert page.total == count


async def test_a_new_job_waits_for_workers_to_settle(fresh: FhirEngine) -> None:
    async with fresh.store.transaction() as tx:
        await reindex.enqueue(tx, fresh.store.backend, "test", ["*"])
    assert not await reindex._step(fresh, settle=60)
    assert await reindex.run_pending(fresh, settle=0) == 1
    await asyncio.sleep(0)
