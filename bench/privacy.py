#!/usr/bin/env python
"""Privacy register benchmark: what the access policy pays per request to learn a person's
privacy choices (`ConsentRegister.choices`) and powers of attorney (`mandates`).

    python bench/privacy.py [--persons 10000] [--calls 200000] [--runs 5] [--seed 0]
                            [--database-url URL]

``--persons`` persons get Consents (each one to three: a reservation, blocked entries,
blocked health personnel, a power of attorney to another person of the set; some withdrawn,
some with a period), written through the configured engine (the write check included) in
transactions of 500, on a fresh SQLite database in a temporary directory (or the empty
database ``--database-url`` names, e.g. a new PostgreSQL database). As many persons again
have no Consents (most people: the common case on a clinical request).

Then, in this process (uvloop when installed), the same engine and register as the server:

* **cold**: every person asked once on an empty cache (one search each): µs per first
  lookup, for persons with and without Consents;
* **warm**: ``--runs`` runs of ``--calls`` calls of ``choices(pid)`` for persons drawn at
  random (half with Consents): µs per call (wall and CPU), best run; the register's
  once-a-second change check runs as in the server; the same for ``mandates(giver,
  receiver)``.

Every warm answer is compared with the cold one: a difference stops the benchmark (exit 1).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import random
import sys
import tempfile
import time
from datetime import date
from pathlib import Path
from typing import Any

from samhandling.platform.fhir.engine import FhirEngine
from samhandling.platform.fhir.storage import open_store
from samhandling.platform.identifiers import FNR_SYSTEM, HPR_SYSTEM
from samhandling.services import privacy
from samhandling.services.privacy.model import (
    CHOICE_SYSTEM,
    PARTICIPATION_TYPE,
    PATIENT_PRIVACY,
    POWER_OF_ATTORNEY_ROLE,
    PRIMARY_PERFORMER,
    ROLE_CODE,
    SCOPE_SYSTEM,
    SERVICE_SYSTEM,
    SERVICES,
)
from samhandling.synth.identifiers import fodselsnummer, hpr_number

BATCH = 500


def consent(kind: str, pid: str, provision: dict[str, Any], rng: random.Random) -> dict:
    """A Consent of the privacy profile; one in ten withdrawn, one in five with a period."""
    if rng.random() < 0.2:
        provision["period"] = {"start": "2024-01-01", "end": rng.choice(["2025-06-30", "2035"])}
    return {
        "resourceType": "Consent",
        "status": "inactive" if rng.random() < 0.1 else "active",
        "scope": {"coding": [{"system": SCOPE_SYSTEM, "code": PATIENT_PRIVACY}]},
        "category": [{"coding": [{"system": CHOICE_SYSTEM, "code": kind}]}],
        "patient": {"identifier": {"system": FNR_SYSTEM, "value": pid}},
        "dateTime": "2026-01-05T10:00:00+01:00",
        "provision": provision,
    }


def choices_of(pid: str, others: list[str], rng: random.Random) -> list[dict]:
    """One to three Consents of different kinds for ``pid``."""
    services = sorted(SERVICES)
    made = []
    for kind in rng.sample(["reservation", "blocked-entries", "blocked-personnel",
                            "power-of-attorney"], rng.randint(1, 3)):  # fmt: skip
        named = [{"system": SERVICE_SYSTEM, "code": c} for c in rng.sample(services, 2)]
        if kind == "reservation":
            provision = {"type": "deny", "class": named}
        elif kind == "blocked-entries":
            data = [{"meaning": "instance", "reference": {"reference": f"DocumentReference/d{n}"}}
                    for n in range(rng.randint(1, 3))]  # fmt: skip
            provision = {"type": "deny", "data": data}
        elif kind == "blocked-personnel":
            actor = _actor(PARTICIPATION_TYPE, PRIMARY_PERFORMER, HPR_SYSTEM, hpr_number(rng))
            provision = {"type": "deny", "actor": [actor]}
        else:
            receiver = rng.choice([o for o in others[:50] if o != pid])
            actor = _actor(ROLE_CODE, POWER_OF_ATTORNEY_ROLE, FNR_SYSTEM, receiver)
            provision = {"type": "permit", "actor": [actor]}
            if rng.random() < 0.5:
                provision["class"] = named
        made.append(consent(kind, pid, provision, rng))
    return made


def _actor(role_system: str, role: str, system: str, value: str) -> dict[str, Any]:
    return {
        "role": {"coding": [{"system": role_system, "code": role}]},
        "reference": {"identifier": {"system": system, "value": value}},
    }


def people(count: int, rng: random.Random) -> list[str]:
    """``count`` distinct adults' fødselsnumre."""
    found: set[str] = set()
    while len(found) < count:
        born = date(rng.randint(1940, 2000), rng.randint(1, 12), rng.randint(1, 28))
        found.add(fodselsnummer(born, rng, rng.random() < 0.5))
    return sorted(found)


async def load(engine: FhirEngine, persons: list[str], rng: random.Random) -> tuple[int, float]:
    """Write every person's Consents; (Consents written, seconds)."""
    resources = [c for pid in persons for c in choices_of(pid, persons, rng)]
    started = time.perf_counter()
    for first in range(0, len(resources), BATCH):
        async with engine.transaction() as tx:
            for resource in resources[first : first + BATCH]:
                await engine.create("Consent", resource, tx)
    return len(resources), time.perf_counter() - started


async def timed_calls(call: Any, args: list[tuple], runs: int) -> tuple[float, float, list]:
    """Best (wall µs, CPU µs) per call over ``runs`` runs, and the answers of the last."""
    best_wall = best_cpu = float("inf")
    answers: list = []
    for _ in range(runs):
        answers = []
        append = answers.append
        wall, cpu = time.perf_counter(), time.process_time()
        for a in args:
            append(await call(*a))
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        best_wall, best_cpu = min(best_wall, wall), min(best_cpu, cpu)
    return best_wall / len(args) * 1e6, best_cpu / len(args) * 1e6, answers


async def bench(args: argparse.Namespace) -> int:
    rng = random.Random(args.seed)
    with tempfile.TemporaryDirectory() as tmp:
        url = args.database_url or f"sqlite:///{Path(tmp) / 'privacy.db'}"
        store = await open_store(url)
        try:
            engine = FhirEngine(store)
            await engine.refresh_search_parameters()
            register = privacy.configure(engine)
            everyone = people(args.persons * 2, rng)
            with_choices, without = everyone[: args.persons], everyone[args.persons :]
            written, seconds = await load(engine, with_choices, rng)
            print(f"loaded {written} Consents of {args.persons} persons in {seconds:.1f} s "
                  f"({written / seconds:.0f}/s, {store.backend})")  # fmt: skip

            cold = {}
            for label, group in (("with Consents", with_choices), ("without", without)):
                started = time.perf_counter()
                for pid in group:
                    cold[pid] = await register.choices(pid)
                per = (time.perf_counter() - started) / len(group) * 1e6
                print(f"cold choices(), persons {label}: {per:8.1f} µs per first lookup")

            asked = [(rng.choice(with_choices if rng.random() < 0.5 else without),)
                     for _ in range(args.calls)]  # fmt: skip
            wall, cpu, answers = await timed_calls(register.choices, asked, args.runs)
            print(f"warm choices():  {wall:6.2f} µs per call (CPU {cpu:.2f} µs), "
                  f"{1e6 / wall:,.0f} calls/s, best of {args.runs} x {args.calls}")  # fmt: skip
            wrong = sum(answer != cold[a[0]] for a, answer in zip(asked, answers, strict=True))
            pairs = [(rng.choice(with_choices), rng.choice(with_choices[:50]))
                     for _ in range(args.calls)]  # fmt: skip
            wall, cpu, _ = await timed_calls(register.mandates, pairs, args.runs)
            print(f"warm mandates(): {wall:6.2f} µs per call (CPU {cpu:.2f} µs), "
                  f"{1e6 / wall:,.0f} calls/s")  # fmt: skip
            print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python "
                  f"{platform.python_version()}; command: {' '.join(sys.argv)}")  # fmt: skip
            if wrong:
                print(f"WRONG: {wrong} warm answers differ from the cold ones")
                return 1
            return 0
        finally:
            await store.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--persons", type=int, default=10_000)
    parser.add_argument("--calls", type=int, default=200_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--database-url", help="an empty database (default: a new SQLite file)")
    args = parser.parse_args()
    try:
        import uvloop

        sys.exit(uvloop.run(bench(args)))
    except ImportError:
        sys.exit(asyncio.run(bench(args)))


if __name__ == "__main__":
    main()
