#!/usr/bin/env python
"""What search indexing costs on the write path, in process (no HTTP).

    python bench/index_cost.py [--patients 200] [--backend sqlite|postgresql|both]

Writes ``--patients`` synthetic patient transaction Bundles (50 resources each) into a fresh
database three times: with full indexing, with extraction but no index rows stored, and
with no indexing at all; prints resources/s and µs per resource for each. PostgreSQL uses a
throwaway database on ``postgresql://postgres@127.0.0.1:5432`` (``--pg-admin-url``).
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
import uuid
from pathlib import Path

import asyncpg

from samhandling.platform.fhir.engine import FhirEngine
from samhandling.platform.fhir.rest.bundle import process_bundle
from samhandling.platform.fhir.storage import open_store
from samhandling.synth import care_providers_bundle, patient_bundle

MODES = ("full", "extract-only", "no-index")


async def _run(url: str, mode: str, bundles: list[dict]) -> float:
    store = await open_store(url)
    try:
        engine = FhirEngine(store)
        real = engine.index
        if mode == "no-index":
            engine.index = lambda type, body: {}  # type: ignore[method-assign]
        elif mode == "extract-only":
            engine.index = lambda type, body: (real(type, body), {})[1]  # type: ignore[method-assign]
        await process_bundle(engine, care_providers_bundle(), "http://bench/fhir", "minimal")
        start = time.perf_counter()
        for bundle in bundles:
            await process_bundle(engine, bundle, "http://bench/fhir", "minimal")
        return time.perf_counter() - start
    finally:
        await store.close()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patients", type=int, default=200)
    parser.add_argument("--backend", choices=("sqlite", "postgresql", "both"), default="both")
    parser.add_argument("--pg-admin-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    args = parser.parse_args()
    bundles = [patient_bundle(i) for i in range(args.patients)]
    count = sum(len(b["entry"]) for b in bundles)
    backends = ("sqlite", "postgresql") if args.backend == "both" else (args.backend,)
    print(f"{count} resources in {args.patients} Bundles, one at a time, in process")
    for backend in backends:
        for mode in MODES:
            if backend == "sqlite":
                with tempfile.TemporaryDirectory() as tmp:
                    seconds = await _run(f"sqlite:///{Path(tmp) / 'cost.db'}", mode, bundles)
            else:
                name = f"samhandling_cost_{uuid.uuid4().hex[:8]}"
                admin = await asyncpg.connect(args.pg_admin_url)
                await admin.execute(f'CREATE DATABASE "{name}"')
                try:
                    url = args.pg_admin_url.rsplit("/", 1)[0] + f"/{name}"
                    seconds = await _run(url, mode, bundles)
                finally:
                    await admin.execute(f'DROP DATABASE "{name}"')
                    await admin.close()
            print(
                f"{backend:<11} {mode:<13} {count / seconds:7.0f} resources/s"
                f"  {seconds / count * 1e6:6.0f} µs/resource"
            )


if __name__ == "__main__":
    asyncio.run(main())
