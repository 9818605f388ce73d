"""Kjernejournal's document sharing (IHE MHD) in process, on SQLite and PostgreSQL: ITI-65
submissions are stored whole or refused whole, a replacement supersedes, ITI-66/67 are
searches. Over HTTP (with the access policy) in test_documents_http.py."""

from __future__ import annotations

import base64
import copy
import hashlib
from collections.abc import Callable
from pathlib import Path

import orjson
import pytest
from policy_helpers import submission, urn

from conftest import BACKENDS, fresh_engine, patient
from samhandling.platform.fhir.engine import FhirEngine
from samhandling.platform.fhir.errors import FhirError
from samhandling.platform.fhir.rest.bundle import process_bundle
from samhandling.services.summary.documents import (
    DOCUMENT_TYPE_SYSTEM,
    MHD_LIST_TYPES,
    configure_documents,
)

BASE = "http://test/fhir"
# Volven 9602: A03-2 Epikrise (class A00-1), J01-2 Sykmeldinger og trygdesaker (J00-1)
EPICRISIS, SICK_LEAVE = ("A03-2", "A00-1"), ("J01-2", "J00-1")


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return request.param


async def new_patient(engine: FhirEngine) -> str:
    return (await engine.create("Patient", patient())).resource.id


async def submit(engine: FhirEngine, bundle: dict) -> list[dict]:
    response = await process_bundle(engine, bundle, BASE, "representation")
    return orjson.loads(orjson.dumps(response))["entry"]


async def count(engine: FhirEngine, type_name: str) -> int:
    rows = await engine.store.fetch(f"SELECT COUNT(*) FROM resource WHERE type = '{type_name}'", [])
    return rows[0][0]


async def search(engine: FhirEngine, type_name: str, **params: str) -> list[dict]:
    request = engine.parse_search((type_name,), list(params.items()), strict=True)
    page = await engine.search(request, BASE)
    return [orjson.loads(bytes(row.content)) for row in page.matches]


async def test_a_valid_submission_is_stored(backend: str, tmp_path: Path) -> None:
    async with fresh_engine(backend, tmp_path) as engine:
        configure_documents(engine)
        patient_id = await new_patient(engine)
        bundle = submission(
            patient_id, (b"%PDF-1 epikrise", EPICRISIS), (b"%PDF-1 syk", SICK_LEAVE)
        )
        entries = await submit(engine, bundle)
        assert [e["response"]["status"][:3] for e in entries] == ["201"] * 5
        listed, first, first_binary = (e["resource"] for e in entries[:3])
        assert first["content"][0]["attachment"]["url"] == f"Binary/{first_binary['id']}"
        assert first_binary["securityContext"]["reference"] == f"DocumentReference/{first['id']}"
        assert listed["entry"][0]["item"]["reference"] == f"DocumentReference/{first['id']}"
        assert await count(engine, "DocumentReference") == 2
        assert await count(engine, "Binary") == 2


def drop_submission_set(bundle: dict) -> int:
    del bundle["entry"][0]
    return -1


def other_patient(bundle: dict) -> int:
    bundle["entry"][3]["resource"]["subject"]["reference"] = "Patient/someone-else"
    return 3


def wrong_size(bundle: dict) -> int:
    bundle["entry"][1]["resource"]["content"][0]["attachment"]["size"] += 1
    return 1


def wrong_hash(bundle: dict) -> int:
    attachment = bundle["entry"][3]["resource"]["content"][0]["attachment"]
    attachment["hash"] = base64.b64encode(hashlib.sha1(b"other").digest()).decode()
    return 3


def url_to_nowhere(bundle: dict) -> int:
    bundle["entry"][1]["resource"]["content"][0]["attachment"]["url"] = urn()
    return 1


def unknown_type(bundle: dict) -> int:
    bundle["entry"][3]["resource"]["type"]["coding"][0]["code"] = "EPIKRISE"
    return 3


def not_listed(bundle: dict) -> int:
    del bundle["entry"][0]["resource"]["entry"][1]
    return 3


def unknown_confidentiality(bundle: dict) -> int:
    bundle["entry"][1]["resource"]["securityLabel"][0]["coding"][0]["code"] = "SECRET"
    return 1


@pytest.mark.parametrize(
    "spoil",
    [drop_submission_set, other_patient, wrong_size, wrong_hash, url_to_nowhere, unknown_type,
     not_listed, unknown_confidentiality],
)  # fmt: skip
async def test_a_faulty_submission_is_refused_whole(
    backend: str, tmp_path: Path, spoil: Callable[[dict], int]
) -> None:
    async with fresh_engine(backend, tmp_path) as engine:
        configure_documents(engine)
        patient_id = await new_patient(engine)
        bundle = submission(
            patient_id, (b"%PDF-1 epikrise", EPICRISIS), (b"%PDF-1 syk", SICK_LEAVE)
        )
        entry = spoil(bundle)
        with pytest.raises(FhirError) as refused:
            await submit(engine, bundle)
        assert refused.value.status == 422
        named = [e for issue in refused.value.issues for e in issue.expression]
        where = "Bundle.entry" if entry < 0 else f"Bundle.entry[{entry}]"
        assert any(e.startswith(where) for e in named), refused.value.issues
        for type_name in ("DocumentReference", "Binary", "List"):
            assert await count(engine, type_name) == 0


async def test_a_too_large_document_is_refused(backend: str, tmp_path: Path) -> None:
    async with fresh_engine(backend, tmp_path) as engine:
        configure_documents(engine, max_bytes=1000)
        patient_id = await new_patient(engine)
        bundle = submission(patient_id, (b"x" * 1001, EPICRISIS))
        with pytest.raises(FhirError) as refused:
            await submit(engine, bundle)
        assert refused.value.status == 422
        assert {i.code for i in refused.value.issues} == {"too-costly"}
        assert await count(engine, "Binary") == 0


async def test_a_replacement_supersedes(backend: str, tmp_path: Path) -> None:
    async with fresh_engine(backend, tmp_path) as engine:
        configure_documents(engine)
        patient_id = await new_patient(engine)
        old = (await submit(engine, submission(patient_id, (b"v1", EPICRISIS))))[1]["resource"]

        bundle = submission(patient_id, (b"v2", EPICRISIS))
        bundle["entry"][1]["resource"]["relatesTo"] = [
            {"code": "replaces", "target": {"reference": f"DocumentReference/{old['id']}"}}
        ]
        without_update = copy.deepcopy(bundle)
        with pytest.raises(FhirError) as refused:
            await submit(engine, without_update)
        assert refused.value.issues[0].expression == ("Bundle.entry[1].resource.relatesTo",)

        superseded = {k: v for k, v in old.items() if k != "meta"} | {"status": "superseded"}
        bundle["entry"].append({
            "resource": superseded,
            "request": {"method": "PUT", "url": f"DocumentReference/{old['id']}"},
        })  # fmt: skip
        entries = await submit(engine, bundle)
        new = entries[1]["resource"]
        current = await search(engine, "DocumentReference", patient=patient_id, status="current")
        assert [d["id"] for d in current] == [new["id"]]
        gone = await search(engine, "DocumentReference", patient=patient_id, status="superseded")
        assert [d["id"] for d in gone] == [old["id"]]


async def test_iti67_and_iti66_searches(backend: str, tmp_path: Path) -> None:
    async with fresh_engine(backend, tmp_path) as engine:
        configure_documents(engine)
        kari, ola = await new_patient(engine), await new_patient(engine)
        await submit(engine, submission(kari, (b"e", EPICRISIS), (b"s", SICK_LEAVE)))
        await submit(engine, submission(ola, (b"o", EPICRISIS)))

        def codes(found: list[dict]) -> list[str]:
            return sorted(d["type"]["coding"][0]["code"] for d in found)

        assert codes(await search(engine, "DocumentReference", patient=kari)) == ["A03-2", "J01-2"]
        by_type = await search(
            engine, "DocumentReference", patient=kari, type=f"{DOCUMENT_TYPE_SYSTEM}|J01-2"
        )
        assert codes(by_type) == ["J01-2"]
        by_class = await search(
            engine, "DocumentReference", patient=kari, category=f"{DOCUMENT_TYPE_SYSTEM}|A00-1"
        )
        assert codes(by_class) == ["A03-2"]
        dated = await search(
            engine, "DocumentReference", patient=ola, status="current", date="ge2026-03-01"
        )
        assert codes(dated) == ["A03-2"]
        lists = await search(engine, "List", code=f"{MHD_LIST_TYPES}|submissionset", patient=kari)
        assert len(lists) == 1 and len(lists[0]["entry"]) == 2
