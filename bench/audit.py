#!/usr/bin/env python
"""Audit trail benchmark, in process (no HTTP): write capacity and verification speed.

    python bench/audit.py [--backend sqlite|postgresql|both] [--producers 64] [--duration 5]
                          [--per-call 1] [--lanes 8] [--pg-admin-url URL]

For each backend, on a fresh database (a temporary SQLite file; PostgreSQL: a throwaway
database on ``--pg-admin-url``, default ``$SAMHANDLING_BENCH_POSTGRES_URL`` or
``postgresql://postgres@127.0.0.1:5432/postgres``):

* ``record``: ``--producers`` tasks call ``AuditLog.record`` (``--per-call`` records each)
  in a loop for ``--duration`` seconds, as concurrent API reads would. Prints records/s,
  the group-commit transactions and their sizes, and the latency of a call.
* ``append``: as many tasks each open a write transaction, ``append`` one record and
  commit (the audit of a write, without the write), for ``--duration`` seconds; then the
  same with empty transactions, so the difference is what the audit adds to a write. A
  lane's chain stays locked until its transaction commits, so on PostgreSQL this scales
  with ``--lanes``.
* ``verify``: `verify` over everything written; rows/s.

Records look like a doctor's reads and searches of one of 10,000 patients (560-750 bytes
of JSON each). Durability as in production: SQLite WAL with ``synchronous=NORMAL`` (a
commit survives the process, not a power cut), PostgreSQL ``synchronous_commit=on``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import platform
import random
import sqlite3
import statistics
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path

import asyncpg

from samhandling.platform.audit import AuditAgent, AuditLog, AuditRecord, verify
from samhandling.platform.fhir.storage import Store, open_store

KEY = bytes(range(32))
PG_ADMIN = os.environ.get(
    "SAMHANDLING_BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
AGENT = AuditAgent(
    kind="personnel", client_id="8f2c6b1e-epj", client_name="Legekontorets EPJ",
    person_id="05073500186", name="Lege Legesen", hpr_number="9144900", profession="LE",
    profession_name="Lege", orgnr="912159523", org_name="Legekontoret AS",
    child_orgnr="974600951",
)  # fmt: skip


def audit_record(rng: random.Random) -> AuditRecord:
    """A doctor's read or search of one patient's information."""
    patient = f"{rng.randrange(10_000):011d}"
    search = rng.random() < 0.5
    return AuditRecord(
        recorded=datetime.now(UTC),
        service=rng.choice(("fhir", "kjernejournal", "registries")),
        interaction="search" if search else "read",
        action="E" if search else "R",
        outcome=0,
        agent=AGENT,
        patients=(patient,),
        entities=tuple(f"Observation/{uuid.uuid4()}" for _ in range(3 if search else 1)),
        query=f"patient.identifier=urn:oid:2.16.578.1.12.4.1.4.1|{patient}" if search else None,
        access_basis="SAMTYKKE",
        request_id=uuid.uuid4().hex,
    )


@contextlib.asynccontextmanager
async def fresh_store(backend: str, pg_admin: str) -> AsyncIterator[Store]:
    """A store on a brand-new database, removed afterwards."""
    if backend == "sqlite":
        with tempfile.TemporaryDirectory() as tmp:
            store = await open_store(f"sqlite:///{Path(tmp) / 'audit.db'}")
            try:
                yield store
            finally:
                await store.close()
        return
    name = f"samhandling_audit_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(pg_admin)
    await admin.execute(f'CREATE DATABASE "{name}"')
    try:
        store = await open_store(
            pg_admin.rsplit("/", 1)[0] + f"/{name}", pool_size=10
        )  # the app's default
        try:
            yield store
        finally:
            await store.close()
    finally:
        await admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
        await admin.close()


async def run_for(
    seconds: float, tasks: int, work: Callable[[random.Random], Awaitable[int]]
) -> tuple[int, list[float]]:
    """Run ``work`` in ``tasks`` loops for ``seconds``: (units done, latency of each call)."""
    deadline = time.perf_counter() + seconds
    latencies: list[float] = []

    async def loop(seed: int) -> int:
        rng, done = random.Random(seed), 0
        while time.perf_counter() < deadline:
            started = time.perf_counter()
            done += await work(rng)
            latencies.append(time.perf_counter() - started)
        return done

    return sum(await asyncio.gather(*(loop(n) for n in range(tasks)))), latencies


def milliseconds(latencies: list[float], share: float) -> float:
    return statistics.quantiles(latencies, n=100)[int(share * 100) - 1] * 1000


async def bench(backend: str, args: argparse.Namespace) -> None:
    async with fresh_store(backend, args.pg_admin_url) as store:
        log = AuditLog(store, KEY, lanes=args.lanes)
        await log.start()

        async def record(rng: random.Random) -> int:
            await log.record(*(audit_record(rng) for _ in range(args.per_call)))
            return args.per_call

        started = time.perf_counter()
        records, latencies = await run_for(args.duration, args.producers, record)
        seconds = time.perf_counter() - started
        print(
            f"{backend:<10} record   {records / seconds:8.0f} records/s  ({records} in"
            f" {seconds:.1f} s, {args.producers} producers x {args.per_call}); {log.commits}"
            f" commits, {log.committed / log.commits:.0f} records each on average, largest"
            f" {log.largest_batch}; a call took p50 {milliseconds(latencies, 0.5):.1f} ms,"
            f" p99 {milliseconds(latencies, 0.99):.1f} ms",
            flush=True,
        )

        async def append(rng: random.Random) -> int:
            async with store.transaction() as tx:
                await log.append(tx, [audit_record(rng)])
            return 1

        async def empty(rng: random.Random) -> int:
            async with store.transaction():
                return 1

        for name, work in (("append", append), ("empty tx", empty)):
            started = time.perf_counter()
            done, latencies = await run_for(args.duration, args.producers, work)
            seconds = time.perf_counter() - started
            print(
                f"{backend:<10} {name:<8} {done / seconds:8.0f} transactions/s"
                f" ({args.producers} concurrent, {args.lanes} lanes);"
                f" p50 {milliseconds(latencies, 0.5):.1f} ms,"
                f" p99 {milliseconds(latencies, 0.99):.1f} ms",
                flush=True,
            )
        await log.stop()
        started = time.perf_counter()
        report = await verify(store, KEY)
        seconds = time.perf_counter() - started
        assert report.ok, report.problems[:5]
        print(
            f"{backend:<10} verify   {report.rows / seconds:8.0f} rows/s  ({report.rows} rows"
            f" in {report.chains} chains, {seconds:.1f} s)",
            flush=True,
        )


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=("sqlite", "postgresql", "both"), default="both")
    parser.add_argument("--producers", type=int, default=64)
    parser.add_argument("--duration", type=float, default=5.0)
    parser.add_argument("--per-call", type=int, default=1)
    parser.add_argument("--lanes", type=int, default=8, help="AuditLog lanes (for append)")
    parser.add_argument("--pg-admin-url", default=PG_ADMIN)
    args = parser.parse_args()
    print(
        f"{platform.node()}: {os.cpu_count()} cores, Python {platform.python_version()},"
        f" SQLite {sqlite3.sqlite_version}"
    )
    for backend in ("sqlite", "postgresql") if args.backend == "both" else (args.backend,):
        await bench(backend, args)


if __name__ == "__main__":
    asyncio.run(main())
