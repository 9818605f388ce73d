"""Query plans of every benchmark query class: the planned index use, checked with EXPLAIN.

A fresh database gets 60 synthetic patients (about 3,000 resources and 75,000 index rows,
planner statistics refreshed), then each query class of ``bench/search.py`` is planned on
both backends. No plan may scan a whole table: PostgreSQL plans have no ``Seq Scan`` and
SQLite plans no ``SCAN`` of a table (only ``SEARCH`` through an index).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest
from search_helpers import fresh_engine

from samhandling.platform.fhir.engine import FhirEngine
from samhandling.platform.fhir.rest.bundle import process_bundle
from samhandling.platform.fhir.search.sql import POSTGRESQL
from samhandling.synth import care_providers_bundle, patient_bundle

FNR = "urn:oid:2.16.578.1.12.4.1.4.1"


class _Recorder:
    """A Fetcher that remembers every query it runs."""

    def __init__(self, engine: FhirEngine) -> None:
        self.store = engine.store
        self.queries: list[tuple[str, list]] = []

    async def fetch(self, sql: str, args: list[Any]) -> list[Any]:
        self.queries.append((sql, args))
        return await self.store.fetch(sql, args)


async def _plan_lines(engine: FhirEngine, sql: str, args: list) -> list[str]:
    """Scans in the plan: ("Seq Scan on resource", "SEARCH d USING INDEX ...", ...)."""
    if engine.store.backend == POSTGRESQL:
        rows = await engine.store.fetch("EXPLAIN (FORMAT JSON) " + sql, args)
        plan = orjson.loads(rows[0][0]) if isinstance(rows[0][0], str) else rows[0][0]
        lines: list[str] = []

        def walk(node: dict) -> None:
            if "Relation Name" in node:
                lines.append(f"{node['Node Type']} on {node['Relation Name']}")
            for child in node.get("Plans", ()):
                walk(child)

        walk(plan[0]["Plan"])
        return lines
    rows = await engine.store.fetch("EXPLAIN QUERY PLAN " + sql, args)
    return [row[3] for row in rows]


def _full_scans(lines: list[str]) -> list[str]:
    return [
        line for line in lines
        if line.startswith("Seq Scan") or (line.startswith("SCAN ") and "CONSTANT" not in line)
    ]  # fmt: skip


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
async def loaded(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):
    """An engine on a fresh database with 60 synthetic patients, statistics up to date."""
    path: Path = tmp_path_factory.mktemp(f"plans-{request.param}")
    async with fresh_engine(request.param, path) as engine:
        base = "http://plans.example/fhir"
        await process_bundle(engine, care_providers_bundle(), base, "minimal")
        for index in range(60):
            await process_bundle(engine, patient_bundle(index), base, "minimal")
        async with engine.store.transaction() as tx:
            await tx.fetch("ANALYZE", [])
        yield engine


async def _values(engine: FhirEngine) -> dict[str, str]:
    rows = await engine.store.fetch(
        "SELECT content FROM resource WHERE type = 'Patient' ORDER BY rid LIMIT 1", []
    )
    patient = orjson.loads(bytes(rows[0][0]))
    fnr = next(i["value"] for i in patient["identifier"] if i["system"] == FNR)
    return {
        "id": patient["id"],
        "fnr": fnr,
        "family": patient["name"][0]["family"],
        "given": patient["name"][0]["given"][0],
    }


CLASSES = {
    "token": ("Observation", "code=http://loinc.org|8867-4&_count=20"),
    "date": ("Observation", "subject=Patient/{id}&date=ge2020-01-01&date=lt2021-01-01"),
    "reference": ("Observation", "subject=Patient/{id}"),
    "string": ("Patient", "family={family}&given={given}"),
    "chain": ("Observation", "encounter:Encounter.subject:Patient.identifier=" + FNR + "|{fnr}"),
    "has": ("Practitioner", "_has:Encounter:participant:subject=Patient/{id}"),
    "include": ("MedicationRequest", "subject=Patient/{id}&_include=MedicationRequest:requester"),
    "revinclude": ("Patient", "_id={id}&_revinclude=Encounter:subject"),
    "sort": ("Condition", "patient=Patient/{id}&_sort=-recorded-date"),
    "total": ("Observation", "subject=Patient/{id}&_total=accurate&_count=5"),
}


@pytest.mark.parametrize("query_class", sorted(CLASSES))
async def test_no_query_class_scans_a_table(loaded: FhirEngine, query_class: str) -> None:
    from urllib.parse import parse_qsl

    engine = loaded
    resource_type, template = CLASSES[query_class]
    query = template.format(**await _values(engine))
    request = engine.parse_search((resource_type,), parse_qsl(query), strict=True)
    recorder = _Recorder(engine)
    page = await engine.executor.search(recorder, request)
    assert page.matches, f"{query_class}: {query} found nothing"
    assert recorder.queries
    for sql, args in recorder.queries:
        lines = await _plan_lines(engine, sql, args)
        assert not _full_scans(lines), f"{query_class}: {sql}\n" + "\n".join(lines)
