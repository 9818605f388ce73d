#!/usr/bin/env python
"""Generation speed of the synthetic national registers (samhandling.synth.registers).

    python bench/synth_registers.py [--persons 10000] [--seed 42] [--batch 500] [--load]

Builds ``register_population(persons, seed)``, then iterates every transaction Bundle and
serialises it with ``orjson.dumps``, and prints the time of each step and the rates (persons/s
counts the ``--persons`` residents; resources/s every resource, practitioners' Patients and
the fixed registers included). ``--load`` also loads the Bundles into a fresh SQLite
database in a temporary directory (in process: the FHIR engine's transaction processing,
no HTTP) and prints that time and rate.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path

import orjson

from samhandling.synth.registers import register_population


async def load(bundles: list[dict], database: Path) -> float:
    """Seconds to load ``bundles`` into a new SQLite database at ``database``."""
    from samhandling.platform.fhir.engine import FhirEngine
    from samhandling.platform.fhir.rest.bundle import process_bundle
    from samhandling.platform.fhir.storage import open_store

    store = await open_store(f"sqlite:///{database}")
    try:
        engine = FhirEngine(store)
        start = time.perf_counter()
        for bundle in bundles:
            await process_bundle(engine, bundle, "http://localhost/fhir", "minimal")
        return time.perf_counter() - start
    finally:
        await store.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--persons", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--load", action="store_true", help="also load into a new SQLite db")
    args = parser.parse_args()

    start = time.perf_counter()
    population = register_population(args.persons, args.seed)
    built = time.perf_counter()
    size = bundles = resources = 0
    for bundle in population.bundles(args.batch):
        size += len(orjson.dumps(bundle))
        bundles += 1
        resources += len(bundle["entry"])
    done = time.perf_counter()
    total = done - start
    print(f"persons {args.persons:,}  seed {args.seed}  batch {args.batch}")
    print("counts  " + "  ".join(f"{k} {v:,}" for k, v in population.counts.items()))
    print(f"build {built - start:.2f} s, bundles + orjson.dumps {done - built:.2f} s")
    print(
        f"total {total:.2f} s: {args.persons / total:,.0f} persons/s, "
        f"{resources / total:,.0f} resources/s ({resources:,} resources in {bundles:,} "
        f"Bundles, {size / 1e6:,.1f} MB JSON)"
    )
    if args.load:
        with tempfile.TemporaryDirectory() as tmp:
            seconds = asyncio.run(load(list(population.bundles(args.batch)), Path(tmp) / "db"))
        print(f"SQLite load {seconds:.1f} s: {resources / seconds:,.0f} resources/s")


if __name__ == "__main__":
    main()
