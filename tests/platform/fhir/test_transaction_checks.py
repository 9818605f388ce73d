"""The engine's transaction checks (``FhirEngine.add_transaction_check``): rules a service
adds for a transaction Bundle as a whole, run before anything is written; and the rewriting
of a new resource's fullUrl in ``Attachment.url`` (R4 http.html#trules)."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from conftest import BACKENDS, fresh_engine, patient
from samhandling.platform.fhir.errors import FhirError, Issue
from samhandling.platform.fhir.rest.bundle import process_bundle

BASE = "http://test/fhir"


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return request.param


def transaction(*resources: dict, kind: str = "transaction") -> dict:
    return {
        "resourceType": "Bundle",
        "type": kind,
        "entry": [
            {"fullUrl": f"urn:uuid:0000000{i}-0000-4000-8000-000000000000", "resource": r,
             "request": {"method": "POST", "url": r["resourceType"]}}
            for i, r in enumerate(resources)
        ],
    }  # fmt: skip


def no_two_patients(bundle: dict) -> list[Issue]:
    patients = [e for e in bundle["entry"] if e["resource"]["resourceType"] == "Patient"]
    if len(patients) < 2:
        return []
    return [Issue("error", "invalid", "one patient at a time", ("Bundle.entry[1]",))]


async def count(engine, type_name: str) -> int:
    rows = await engine.store.fetch(f"SELECT COUNT(*) FROM resource WHERE type = '{type_name}'", [])
    return rows[0][0]


async def test_a_failing_check_refuses_the_whole_transaction(backend: str, tmp_path: Path) -> None:
    async with fresh_engine(backend, tmp_path) as engine:
        seen: list[dict] = []
        engine.add_transaction_check(lambda bundle: seen.append(bundle) or [])
        engine.add_transaction_check(no_two_patients)
        with pytest.raises(FhirError) as refused:
            await process_bundle(engine, transaction(patient(), patient("Hansen")), BASE, "minimal")
        assert refused.value.status == 422
        assert [i.expression for i in refused.value.issues] == [("Bundle.entry[1]",)]
        assert await count(engine, "Patient") == 0
        # the check saw the Bundle as sent, fullUrls not rewritten
        assert seen[0]["entry"][0]["fullUrl"].startswith("urn:uuid:")

        response = await process_bundle(engine, transaction(patient()), BASE, "minimal")
        assert response["entry"][0]["response"]["status"].startswith("201")
        assert await count(engine, "Patient") == 1


async def test_warnings_pass_and_batches_are_not_checked(backend: str, tmp_path: Path) -> None:
    async with fresh_engine(backend, tmp_path) as engine:
        engine.add_transaction_check(lambda bundle: [Issue("warning", "informational", "note")])
        engine.add_transaction_check(no_two_patients)
        await process_bundle(engine, transaction(patient()), BASE, "minimal")
        batch = transaction(patient(), patient("Hansen"), kind="batch")
        response = await process_bundle(engine, batch, BASE, "minimal")
        assert [e["response"]["status"][:3] for e in response["entry"]] == ["201", "201"]


async def test_attachment_url_to_a_new_resource_is_rewritten(backend: str, tmp_path: Path) -> None:
    async with fresh_engine(backend, tmp_path) as engine:
        binary = {"resourceType": "Binary", "contentType": "text/plain", "data": "aGVp"}
        document = {
            "resourceType": "DocumentReference", "status": "current",
            "content": [{"attachment": {
                "url": "urn:uuid:00000000-0000-4000-8000-000000000000"}}],
        }  # fmt: skip
        response = await process_bundle(
            engine, transaction(binary, document), BASE, "representation"
        )
        response = orjson.loads(orjson.dumps(response))  # entries hold orjson Fragments
        binary_id = response["entry"][0]["resource"]["id"]
        stored = response["entry"][1]["resource"]
        assert stored["content"][0]["attachment"]["url"] == f"Binary/{binary_id}"
