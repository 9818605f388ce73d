#!/usr/bin/env python
"""Kjernejournal benchmark: "open the record" and ITI-65 document submissions over HTTP.

    python bench/kjernejournal.py [--backend sqlite|postgresql|both] [--patients 10000]
                                  [--part open,iti65] [--workers 1[,2]] [--duration 10]
                                  [--runs 3] [--document-kb 200] [--profile]

The issue's targets: at 10,000 generated patients with critical information and documents,
"open the record" (the indicator, the critical information and the document list in one
audited request) at least 800 req/s with p95 at most 30 ms on SQLite (PostgreSQL reported
too); ITI-65 submissions of a 200 KB document at least 100/s.

The data (``--seed``): the registers' synthetic population of ``--patients`` residents
(samhandling.synth.registers: persons and families, health personnel, enterprises, GP
lists; the practitioners are persons too), and Kjernejournal's synthetic data for every
resident (samhandling.synth.kjernejournal): critical information for ``--critical-share``
of them (one to three entries), and one to three shared documents for each (ITI-65
submissions of a ``--loaded-document-kb`` PDF; about 3% blocked, Volven 9603 ``NORS``),
written by the registers' doctors; plus the bundled terminology. All of it goes through the
server's configured engine (``samhandling.app.opened_engine``: every service's write checks
and the terminology's binding checks), in this process, before the server starts; the load
time is printed.

For each backend (SQLite in a fresh data directory; PostgreSQL: a dropped and recreated
database) and each ``--workers`` count, one ``samhandling serve`` (tokens checked, the access
policy and the audit trail on). A personnel client (an EPJ of a hospital: ``samhandling
client create`` with the FHIR, register and Kjernejournal scopes and the hospital's
organisation number) is registered, and one of the hospital's doctors (in HPR, a doctor's
approval in force) signs in through the test IdP (``TokenClient.sign_in``, security level 4):
a DPoP-bound token. Every request carries a pre-generated single-use DPoP proof (bench/
auth.py's ``Generator``, a process per core, just before the run) and
``nhn-access-basis: SAMTYKKE``.

* ``open``: wrk (bench/lua/open-record.lua) sends ``GET /fhir/Patient/<id>/$open-record``.
  The persons are taken in a random order: the server's warm-up opens the first
  ``--warmup-persons`` records again and again; one measured run opens each of the next
  records once (**first openings**: the persons' register lookups are not cached yet, as for
  most records opened in a register of millions); then every record is opened (a pass per
  worker and one more: each worker caches on its own; not measured), and the ``--runs``
  measured runs open random records (**warm**: the target's numbers). Reported: req/s,
  p50/p95/p99 latency, the server's CPU time per request, the entries shown per record,
  and the audit rows written (``audit_record`` counted before and after every run: at
  least the 200 responses, at most the requests sent).
* ``iti65``: wrk (bench/lua/iti65.lua) POSTs ITI-65 Provide Document Bundles to ``/fhir``:
  a SubmissionSet, a DocumentReference and a Binary with a ``--document-kb`` PDF, authored
  by the signed-in doctor for the hospital (the token's organisation), about a random
  patient; every body its own (new identifiers and PDF), pre-built with its proof just
  before the run (``Prefer: return=minimal``). A submission counts when the answer is 200
  with each of its three entries ``201 Created``. Reported: submissions/s, latency, the
  server's CPU time per submission.
* SQL statements per request (unless ``--no-count-sql``): after the runs, the server is
  started once more with a ``sitecustomize`` (written to the data directory) that counts
  every statement the process runs (SQLite: ``sqlite3`` trace callbacks, trigger programs
  left out; PostgreSQL: asyncpg ``Connection`` calls, BEGIN and COMMIT included), and
  ``--count-requests`` sequential requests of each kind are sent; the statements the idle
  server runs in the same time (the registers' change polling) are subtracted. The DPoP
  replay cache and the audit record's writes are part of what is counted.

``--profile`` adds one run of each part under py-spy and prints the server's top functions.
It prints the machine, the commands, every run (with the CPU use of the server, wrk,
PostgreSQL and everything else, as bench/run.py does; ``NOISY`` when other processes used
more than 0.25 cores) and Markdown tables of medians, and writes everything as JSON to
``bench/results/kjernejournal-<UTC time>.json``. Exit status 1 if a request failed, a
submission was not accepted whole or the audit rows did not add up.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import os
import random
import shlex
import shutil
import statistics
import subprocess
import sys
import textwrap
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

import auth as auth_bench  # bench/auth.py: generated single-use requests
import policy as policy_bench  # bench/policy.py: audit row counting, the database's CPU
import run as bench  # bench/run.py: servers, wrk, CPU accounting, machine, profiles

BACKENDS = bench.BACKENDS
PARTS = ("open", "iti65")
SCOPES = (
    "samhandling:fhir/read",
    "samhandling:fhir/write",
    "samhandling:grunndata/read",
    "samhandling:kjernejournal/read",
    "samhandling:kjernejournal/write",
)
BASIS_HEADER = "nhn-access-basis: SAMTYKKE"
OPEN_TARGET_RPS = 800
OPEN_TARGET_P95_MS = 30
ITI65_TARGET = 100  # submissions/s
ITI65_ENTRIES = 3  # SubmissionSet, DocumentReference, Binary
LOAD_LOG_EVERY = 2000  # Bundles
SRC = bench.ROOT / "src" / "samhandling"
SOURCES = (
    "services/summary/*.py",
    "synth/kjernejournal.py",
    "platform/fhir/binaries.py",
    "platform/fhir/rest/*.py",
    "platform/policy/*.py",
    "platform/audit/*.py",
    "app.py",
)
SQL_COUNT_ENV = "SAMHANDLING_BENCH_SQL_COUNT"
# Loaded by the server (PYTHONPATH) for the statement count: counts every SQL statement of
# the process and writes the total to <dir>/<pid> ten times a second.
SITECUSTOMIZE = textwrap.dedent(
    '''
    """Counts this process's SQL statements (bench/kjernejournal.py writes this file)."""
    import os
    import threading
    import time

    _DIR = os.environ.get("SAMHANDLING_BENCH_SQL_COUNT")
    if _DIR:
        _lock = threading.Lock()
        _count = [0]

        def _tick() -> None:
            with _lock:
                _count[0] += 1

        import sqlite3

        _connect = sqlite3.connect

        def _traced(statement: str) -> None:
            if not statement.startswith("--"):  # trigger programs are part of a statement
                _tick()

        def _counting_connect(*args, **kwargs):
            conn = _connect(*args, **kwargs)
            conn.set_trace_callback(_traced)
            return conn

        sqlite3.connect = _counting_connect
        try:
            import asyncpg.connection as _pg
        except ImportError:
            _pg = None
        if _pg is not None:

            def _counted(method):
                async def call(self, *args, **kwargs):
                    _tick()
                    return await method(self, *args, **kwargs)

                return call

            for _name in ("execute", "executemany", "fetch", "fetchrow", "fetchval"):
                setattr(_pg.Connection, _name, _counted(getattr(_pg.Connection, _name)))

        def _report() -> None:
            path = os.path.join(_DIR, str(os.getpid()))
            while True:
                with open(path + ".tmp", "w") as out:
                    out.write(str(_count[0]))
                os.replace(path + ".tmp", path)
                time.sleep(0.1)

        threading.Thread(target=_report, daemon=True).start()
    '''
)


def fingerprint() -> str:
    """A hash of the code measured here (the tree may have uncommitted changes)."""
    digest = hashlib.sha256()
    for pattern in SOURCES:
        for path in sorted(SRC.glob(pattern)):
            digest.update(str(path.relative_to(SRC)).encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


# ---------------------------------------------------------------------------------------
# the data


@dataclass
class World:
    """The register population, Kjernejournal's data for its residents, and the doctor."""

    population: Any  # RegisterPopulation
    data: Any  # KjernejournalData
    doctor: Any  # Author: the signed-in doctor and their hospital
    doctor_pid: str
    counts: dict[str, int]

    @property
    def patients(self) -> Sequence[Any]:
        return self.data.patients

    def describe(self) -> str:
        c = self.counts
        return (
            f"{c['patients']:,} patients (the registers' population: "
            f"{self.population.total_resources:,} register resources) with critical information "
            f"for {c['with_critical_information']:,} ({c['critical_entries']:,} entries) and "
            f"{c['documents']:,} shared documents ({c['blocked_documents']:,} blocked) of "
            f"{self.data.document_bytes // 1024} KB"
        )


def make_world(args: argparse.Namespace) -> World:
    from samhandling.synth.kjernejournal import KjernejournalData, KjPatient, register_authors
    from samhandling.synth.registers import register_population

    population = register_population(args.patients, args.seed)
    residents = [KjPatient(p.id, p.pid) for p in population.persons if p.practitioner_id is None][
        : args.patients
    ]
    authors = register_authors(population)
    data = KjernejournalData(
        residents,
        authors,
        args.seed,
        critical_share=args.critical_share,
        document_share=1.0,
        most_documents=3,
        document_bytes=args.loaded_document_kb * 1024,
    )
    hospital = [a for a in authors if a.kind == "sykehus"]
    doctor = random.Random(args.seed).choice(hospital)
    pid = next(p.fnr for p in population.practitioners if p.hpr == doctor.hpr)
    return World(population, data, doctor, pid, data.counts())


async def _load(data_dir: Path, database_url: str | None, world: World, concurrency: int) -> dict:
    """The terminology, the registers and Kjernejournal's data through the configured engine,
    the services started first (as the server starts them: their search parameters exist
    before the data, so nothing is left to reindex); Kjernejournal's Bundles
    ``concurrency`` at a time."""
    from samhandling.app import SERVICES, start_runtime
    from samhandling.platform.fhir.rest.bundle import process_bundle
    from samhandling.platform.fhir.search import reindex
    from samhandling.platform.fhir.storage import open_store
    from samhandling.services.terminology.loader import available_parts, load_terminology
    from samhandling.settings import Settings

    settings = Settings(data_dir=data_dir, database_url=database_url)
    times: dict[str, float] = {}
    store = await open_store(settings.effective_database_url, pool_size=settings.pg_pool_size)
    try:
        runtime = await start_runtime(settings, store)
    except BaseException:
        await store.close()
        raise
    try:
        for service in SERVICES:
            if service.start is not None:
                await service.start(runtime)
        engine = runtime.engine
        base = f"{settings.issuer}/fhir"
        started = time.perf_counter()
        await load_terminology(engine, available_parts(), base)
        times["terminology_s"] = time.perf_counter() - started
        started = time.perf_counter()
        for bundle in world.population.bundles():
            await process_bundle(engine, bundle, base, "minimal")
        times["registers_s"] = time.perf_counter() - started
        bench.log(f"loaded the registers in {times['registers_s']:.1f} s")
        started = time.perf_counter()
        bundles = iter(world.data.bundles())
        done = [0, 0]  # Bundles, resources

        async def writer() -> None:
            for bundle in bundles:
                await process_bundle(engine, bundle, base, "minimal")
                done[0] += 1
                done[1] += len(bundle["entry"])
                if done[0] % LOAD_LOG_EVERY == 0:
                    rate = done[1] / (time.perf_counter() - started)
                    bench.log(f"kjernejournal: {done[0]:,} Bundles, {rate:,.0f} resources/s")

        await asyncio.gather(*(writer() for _ in range(concurrency)))
        times["kjernejournal_s"] = time.perf_counter() - started
        started = time.perf_counter()
        batches = await reindex.run_pending(engine, settle=0)  # what the services queued
        times["reindex_s"] = time.perf_counter() - started
    finally:
        runtime.replay.close()
        await store.close()
    return {
        "register_resources": world.population.total_resources,
        "kjernejournal_bundles": done[0],
        "kjernejournal_resources": done[1],
        **{k: round(v, 1) for k, v in times.items()},
        "reindex_batches": batches,
        "kjernejournal_resources_per_s": round(done[1] / times["kjernejournal_s"]),
        "concurrency": concurrency,
    }


def wait_for_reindex(backend: str, data_dir: Path, database_url: str | None) -> float:
    """Wait until the server has no reindex job left (its background worker would compete
    with the runs); the seconds waited."""
    started = time.monotonic()
    while True:
        rows = bench.stored_rows(
            backend,
            data_dir,
            database_url,
            "SELECT COUNT(*) FROM reindex_job WHERE status IN ('pending', 'running')",
        )
        if not rows[0][0] or time.monotonic() - started > 600:
            return time.monotonic() - started
        time.sleep(1)


# ---------------------------------------------------------------------------------------
# generated requests (in the Generator's worker processes)


def _iti65_lines(job: tuple[str, str, dict, str, list[str], tuple, int, str]) -> int:
    """Write ``<DPoP proof>\\t<ITI-65 Bundle>`` lines to a file: one submission of a new
    ``size``-byte PDF by ``author`` for each patient id."""
    from samhandling.services.trust.tokentool import DpopKey
    from samhandling.synth.kjernejournal import (
        DOCUMENT_TYPES,
        Author,
        SharedDocument,
        document_pdf,
        provide_bundle,
    )

    path, url, dpop_jwk, token, patient_ids, author_fields, size, salt = job
    key = DpopKey(dpop_jwk)
    author = Author(*author_fields)
    epicrisis = DOCUMENT_TYPES[0]
    now = datetime.now(UTC).astimezone()
    date = now.isoformat(timespec="seconds")
    rng = random.Random(salt)

    def new_id() -> str:
        return f"urn:oid:2.25.{uuid.UUID(int=rng.getrandbits(128), version=4).int}"

    def new_urn() -> str:
        return f"urn:uuid:{uuid.UUID(int=rng.getrandbits(128), version=4)}"

    with open(path, "wb") as out:
        for patient_id in patient_ids:
            title = f"{epicrisis.display} fra {author.organisation}"
            lines = [
                line.format(organisation=author.organisation, date=now.strftime("%d.%m.%Y"))
                for line in epicrisis.lines
            ]
            content = document_pdf(title, lines, size, seed=new_id())
            document = SharedDocument(
                content, epicrisis, author, date, title, new_id(), new_urn(), new_urn()
            )
            body = orjson.dumps(provide_bundle(patient_id, [document], unique_id=new_id(),
                                               date=date))  # fmt: skip
            proof = key.proof("POST", url, access_token=token)
            out.write(proof.encode() + b"\t" + body + b"\n")
    return len(patient_ids)


def iti65_files(
    gen: auth_bench.Generator,
    directory: Path,
    issuer: str,
    signed: policy_bench.SignedIn,
    world: World,
    count: int,
    size: int,
    rng: random.Random,
) -> tuple[Path, dict[str, Any]]:
    """``count`` submissions with proofs, in a file per job; the index file wrk reads."""
    started = time.perf_counter()
    for old in directory.glob("iti65-*.part"):
        old.unlink()
    doctor = world.doctor
    author = (doctor.hpr, doctor.orgnr, doctor.organisation, doctor.kind, doctor.name)
    patients = [rng.choice(world.patients).patient_id for _ in range(count)]
    parts = gen.processes * 2
    size_per_job = -(-count // parts)
    jobs = []
    for n, start in enumerate(range(0, count, size_per_job)):
        path = directory / f"iti65-{n:03d}.part"
        salt = f"{time.time_ns()}/{n}/{rng.random()}"
        jobs.append((str(path), issuer + "/fhir", signed.dpop_jwk, signed.token,
                     patients[start : start + size_per_job], author, size, salt))  # fmt: skip
    written = sum(gen.pool.map(_iti65_lines, jobs))
    index = directory / "iti65-index.txt"
    index.write_text(signed.token + "\n" + "".join(f"{job[0]}\n" for job in jobs))
    seconds = time.perf_counter() - started
    megabytes = sum(Path(job[0]).stat().st_size for job in jobs) / 1e6
    return index, {"lines": written, "seconds": round(seconds, 2),
                   "per_s": round(written / seconds), "megabytes": round(megabytes)}  # fmt: skip


# ---------------------------------------------------------------------------------------
# the server, the client, the doctor


def register_client(data_dir: Path, database_url: str | None, issuer: str, orgnr: str) -> dict:
    """The hospital's EPJ: ``samhandling client create --json`` with Kjernejournal's scopes."""
    return policy_bench.register_client(data_dir, database_url, issuer, scopes=SCOPES, orgnr=orgnr)


def sign_in(issuer: str, client: dict[str, Any], pid: str) -> policy_bench.SignedIn:
    """The doctor signs in through the test IdP (security level 4): a DPoP-bound token."""
    return policy_bench.sign_in(issuer, client, pid, SCOPES)


def http_client(issuer: str, signed: policy_bench.SignedIn) -> Any:
    import httpx

    from samhandling.services.trust.tokentool import DpopAuth, Tokens

    auth = DpopAuth(Tokens(signed.token, signed.expires_at, {}), signed.tool.dpop)
    return httpx.Client(auth=auth, timeout=60)


def one_submission(issuer: str, signed: policy_bench.SignedIn, world: World, size: int) -> bytes:
    """One ITI-65 body (its proof is made by the HTTP client)."""
    path = bench.RESULTS / "data" / f"one-{os.getpid()}.part"
    doctor = world.doctor
    author = (doctor.hpr, doctor.orgnr, doctor.organisation, doctor.kind, doctor.name)
    job = (str(path), issuer + "/fhir", signed.dpop_jwk, signed.token,
           [world.patients[-1].patient_id], author, size, f"one/{time.time_ns()}")  # fmt: skip
    _iti65_lines(job)
    line = path.read_bytes()
    path.unlink()
    return line.split(b"\t", 1)[1].rstrip(b"\n")


def sanity_check(
    issuer: str, signed: policy_bench.SignedIn, world: World, counter: Any, size: int
) -> dict[str, Any]:
    """Open one record with critical information (200, what the data says it holds, one
    audit record) and share one document (200, three entries 201)."""
    patient = next(p for p in world.patients if world.data.critical(p))
    critical = {f"{r['resourceType']}/{r['id']}" for r in world.data.critical(patient)}
    documents = sum(  # the generated ones (a benchmark's submissions may have added more)
        1
        for bundle in world.data.submissions(patient)
        for entry in bundle["entry"]
        if entry["resource"]["resourceType"] == "DocumentReference"
        and entry["resource"]["securityLabel"][0]["coding"][0]["code"] == "N"
    )
    headers = {"nhn-access-basis": "SAMTYKKE"}
    with http_client(issuer, signed) as http:
        newest = counter.newest()
        answer = http.get(f"{issuer}/fhir/Patient/{patient.patient_id}/$open-record",
                          headers=headers)  # fmt: skip
        if answer.status_code != 200:
            raise RuntimeError(f"open the record: {answer.status_code} {answer.text[:500]}")
        record = answer.json()
        indicator = {p["name"]: p for p in record["entry"][0]["resource"]["parameter"]}
        shown = [f"{e['resource']['resourceType']}/{e['resource']['id']}"
                 for e in record["entry"][1:]]  # fmt: skip
        shown_documents = sum(1 for s in shown if s.startswith("DocumentReference/"))
        if (
            indicator["status"]["valueInteger"] != 4
            or set(shown) - {s for s in shown if s.startswith("DocumentReference/")} != critical
            or shown_documents < documents
        ):
            raise RuntimeError(
                f"open the record: status {indicator['status']}, shown {shown}, expected "
                f"{sorted(critical)} and at least {documents} documents: {answer.text[:500]}"
            )
        audited = counter.settled(newest, 2.0)["rows"]
        if audited != 1:
            raise RuntimeError(f"open the record wrote {audited} audit records, not 1")
        body = one_submission(issuer, signed, world, size)
        answer = http.post(
            f"{issuer}/fhir",
            content=body,
            headers={**headers, "Content-Type": "application/fhir+json",
                     "Prefer": "return=minimal"},
        )  # fmt: skip
        if answer.status_code != 200:
            raise RuntimeError(f"ITI-65: {answer.status_code} {answer.text[:500]}")
        statuses = [e["response"]["status"] for e in answer.json()["entry"]]
        if statuses != ["201 Created"] * ITI65_ENTRIES:
            raise RuntimeError(f"ITI-65: {statuses}")
    return {
        "patient": patient.patient_id,
        "entries_shown": len(shown),
        "submission_bytes": len(body),
    }


# ---------------------------------------------------------------------------------------
# runs


@dataclass
class Measured:
    """Both parts' series for one backend and worker count."""

    backend: str
    workers: int
    open: bench.Series
    iti65: bench.Series
    cold: bench.Series | None = None  # first openings: the persons not yet cached
    audit: list[dict[str, Any]] = field(default_factory=list)  # per open run (cold, warm)
    generated: list[dict[str, Any]] = field(default_factory=list)
    statements: dict[str, Any] | None = None
    profiles: dict[str, Any] = field(default_factory=dict)
    server: str = ""
    log: str = ""
    sanity: dict[str, Any] = field(default_factory=dict)

    @staticmethod
    def cpu_us(series: bench.Series, with_db: bool = False) -> float | None:
        """Median CPU time per request (or submission) of the server (with ``with_db``,
        plus the PostgreSQL backends of its database), µs."""
        values = []
        for r in series.runs:
            cores = r.cpu.get("server_cores", 0) + (
                r.cpu.get("database_backend_cores", 0) if with_db else 0
            )
            values.append(cores / r.throughput * 1e6 if r.throughput else 0.0)
        return statistics.median(values) if values else None

    @property
    def audit_ok(self) -> bool:
        return all(a["ok"] for a in self.audit)

    def summary(self) -> dict[str, Any]:
        out: dict[str, Any] = {"backend": self.backend, "workers": self.workers}
        if self.open.runs:
            rate, p95 = self.open.median, self.open.median_latency("95")
            entries = [
                r.report["extra"].get("entries", 0) / max(1, r.report["extra"].get("records", 0))
                for r in self.open.runs
            ]
            out["open"] = {
                "req_s": round(rate, 1),
                "latency_ms": {
                    p: round(self.open.median_latency(p), 2) for p in ("50", "95", "99")
                },
                "server_cpu_us": _round(self.cpu_us(self.open)),
                "server_and_db_cpu_us": (
                    _round(self.cpu_us(self.open, True)) if self.backend == "postgresql" else None
                ),
                "server_cores": self.open.median_server_cores,
                "entries_per_record": round(statistics.median(entries), 2),
                "errors": self.open.errors,
                "audit_rows_match": self.audit_ok,
                "target": {"req_s": OPEN_TARGET_RPS, "p95_ms": OPEN_TARGET_P95_MS},
                "meets_target": rate >= OPEN_TARGET_RPS and p95 <= OPEN_TARGET_P95_MS,
            }
        if self.cold is not None and self.cold.runs:
            out["open_cold"] = {
                "req_s": round(self.cold.median, 1),
                "latency_ms": {
                    p: round(self.cold.median_latency(p), 2) for p in ("50", "95", "99")
                },
                "server_cpu_us": _round(self.cpu_us(self.cold)),
                "server_and_db_cpu_us": (
                    _round(self.cpu_us(self.cold, True)) if self.backend == "postgresql" else None
                ),
                "server_cores": self.cold.median_server_cores,
                "errors": self.cold.errors,
            }
        if self.iti65.runs:
            rate = self.iti65.median
            out["iti65"] = {
                "submissions_s": round(rate, 1),
                "latency_ms": {
                    p: round(self.iti65.median_latency(p), 1) for p in ("50", "95", "99")
                },
                "server_cpu_ms": _round(self.cpu_us(self.iti65), 1000),
                "server_and_db_cpu_ms": (
                    _round(self.cpu_us(self.iti65, True), 1000)
                    if self.backend == "postgresql"
                    else None
                ),
                "server_cores": self.iti65.median_server_cores,
                "errors": self.iti65.errors,
                "target": ITI65_TARGET,
                "meets_target": rate >= ITI65_TARGET,
            }
        return out

    def as_json(self) -> dict[str, Any]:
        return {
            **self.summary(),
            "server": self.server,
            "server_log": self.log,
            "sanity": self.sanity,
            "open_series": self.open.as_json() if self.open.runs else None,
            "open_cold_series": self.cold.as_json() if self.cold and self.cold.runs else None,
            "iti65_series": self.iti65.as_json() if self.iti65.runs else None,
            "audit": self.audit,
            "generated": self.generated,
            "sql_statements": self.statements,
            "profiles": self.profiles,
        }


def _round(value: float | None, per: float = 1) -> float | None:
    return None if value is None else round(value / per, 2 if per > 1 else 1)


def run_workers(
    setup: dict[str, Any],
    world: World,
    workers: int,
    gen: auth_bench.Generator,
    args: argparse.Namespace,
    stamp: str,
) -> Measured:
    backend, data_dir, database_url = setup["backend"], setup["data_dir"], setup["database_url"]
    port = bench.free_port()
    issuer = f"http://127.0.0.1:{port}"
    argv = bench.samhandling_argv(port, data_dir, database_url, workers)
    log_path = bench.LOGS / f"{stamp}-kjernejournal-{backend}-w{workers}.log"
    measured = Measured(
        backend,
        workers,
        bench.Series(backend, "open the record", "req/s", args.threads, args.connections),
        bench.Series(
            backend, "ITI-65 submission", "submissions/s", args.iti65_threads,
            args.iti65_connections,
        ),
        server=shlex.join(argv),
        log=os.path.relpath(log_path, bench.ROOT),
    )  # fmt: skip
    counter = policy_bench.AuditCounter(backend, data_dir, database_url)
    rng = random.Random(args.seed + workers)
    name = f"{backend} w{workers}"
    database = args.pg_database if backend == "postgresql" else None
    bench.log(f"{name}: server: {measured.server}")
    with bench.Server(argv, port, log_path) as server:
        client = setup.get("client_config")
        if client is None:
            client = register_client(data_dir, database_url, issuer, world.doctor.orgnr)
            setup["client_config"] = client
            setup["client"] = {"client_id": client["client_id"], "command": client["command"]}
        waited = wait_for_reindex(backend, data_dir, database_url)
        if waited > 1:
            bench.log(f"{name}: waited {waited:.0f} s for the server's reindex jobs")
        signed = [sign_in(issuer, client, world.doctor_pid)]
        measured.sanity = sanity_check(issuer, signed[0], world, counter, args.document_kb * 1024)
        bench.log(
            f"{name}: doctor signed in (HPR {world.doctor.hpr}, {world.doctor.organisation}); "
            f"one record opened ({measured.sanity['entries_shown']} entries), one document "
            "shared: ok"
        )

        def token() -> policy_bench.SignedIn:
            if signed[0].expires_at - time.time() < 180:  # a token per series while valid
                signed[0].tool.http.close()
                signed[0] = sign_in(issuer, client, world.doctor_pid)
            return signed[0]

        def cpu_of_database(run: bench.WrkRun, before: float) -> None:
            if database is not None:
                used = policy_bench.database_backends_cpu(database) - before
                run.cpu["database_backend_cores"] = round(used / run.seconds, 2)

        proofs = data_dir / "proofs-open.tsv"
        marks: dict[str, int] = {}

        def generate_open(
            count: int, chosen: Sequence[Any] | None = None, pool: Sequence[Any] | None = None
        ) -> dict[str, Any]:
            """Proofs for ``count`` openings of random patients (of ``pool``), or for those of
            ``chosen`` (each once, in order)."""
            current = token()
            draw = pool or world.patients
            patients = chosen if chosen is not None else [
                rng.choice(draw) for _ in range(count)
            ]  # fmt: skip
            paths = [f"/fhir/Patient/{p.patient_id}/$open-record" for p in patients]
            return gen.read_file(proofs, issuer, current.dpop_jwk, current.token, paths)

        def wrk_open(seconds: float) -> bench.WrkRun:
            before = policy_bench.database_backends_cpu(database)
            run = bench.run_wrk(
                "open-record.lua",
                port,
                [str(proofs), str(args.threads), BASIS_HEADER],
                args.threads,
                args.connections,
                seconds,
                "requests",
                server.pid,
            )
            cpu_of_database(run, before)
            if auth_bench.exhausted(run):
                run.flagged.append(f"ran out of generated proofs ({auth_bench.exhausted(run)})")
            malformed = run.report["extra"].get("malformed", 0)
            if malformed:
                run.flagged.append(f"{malformed} 200 responses that are not a record")
            return run

        def open_run(
            seconds: float,
            estimate: float,
            record: bool,
            hook: Any = None,
            chosen: Sequence[Any] | None = None,
            pool: Sequence[Any] | None = None,
        ) -> Any:
            def before() -> None:
                marks["before"] = counter.newest()
                if hook is not None:
                    hook()

            run, made = auth_bench.generated_run(
                f"{name} open",
                lambda count: generate_open(count, chosen, pool),
                len(chosen) if chosen else auth_bench.lines_for(estimate, seconds, args.headroom),
                wrk_open,
                seconds,
                args.quiet_wait if record else 0,
                before,
            )
            written = counter.settled(marks["before"])
            ok_200 = int(run.report["statuses"].get("200", 0))
            sent = int(run.report.get("ops", {}).get("open", 0))
            info = {
                "rows": written["rows"],
                "commits": written["commits"],
                "responses_200": ok_200,
                "sent": sent,
                "ok": ok_200 <= written["rows"] <= sent,
            }
            if not info["ok"]:
                run.flagged.append(
                    f"audit rows {written['rows']} not within 200 responses {ok_200} .. "
                    f"requests sent {sent}"
                )
            if record:
                measured.audit.append(info)
                measured.generated.append({"kind": "open", **made})
            return run, made, info

        iti65_dir = data_dir / "iti65"
        iti65_dir.mkdir(exist_ok=True)
        size = args.document_kb * 1024

        def iti65_run(seconds: float, estimate: float, record: bool, hook: Any = None) -> Any:
            count = auth_bench.lines_for(estimate, seconds, args.headroom)
            made: dict[str, Any] = {}
            for attempt in range(2):
                index, made = iti65_files(gen, iti65_dir, issuer, token(), world, count, size, rng)
                if made["seconds"] + seconds * 0.25 > auth_bench.LINES_VALID_S:
                    bench.log(f"{name} iti65: generating took {made['seconds']} s (too long?)")
                bench.wait_for_quiet(args.quiet_wait if record else 0)
                if hook is not None:
                    hook()
                before = policy_bench.database_backends_cpu(database)
                run = bench.run_wrk(
                    "iti65.lua",
                    port,
                    [str(index), str(args.iti65_threads), str(ITI65_ENTRIES), BASIS_HEADER],
                    args.iti65_threads,
                    args.iti65_connections,
                    seconds,
                    "requests",
                    server.pid,
                )
                cpu_of_database(run, before)
                made["exhausted"] = auth_bench.exhausted(run)
                if not made["exhausted"] or attempt == 1:
                    break
                bench.log(f"{name} iti65: used up {count:,} submissions; again with {2 * count:,}")
                count *= 2
            for part in iti65_dir.glob("iti65-*.part"):
                part.unlink()
            extra = run.report["extra"]
            run.throughput = extra.get("accepted", 0) / run.seconds
            if made["exhausted"]:
                run.flagged.append(f"ran out of generated submissions ({made['exhausted']})")
            if extra.get("partial"):
                run.flagged.append(f"{extra['partial']} submissions not accepted whole")
            if record:
                measured.generated.append({"kind": "iti65", **made})
            return run, made

        warmup = min(bench.WARMUP_SECONDS, args.duration)
        if "open" in args.parts:
            # the persons in a random order: the server's warm-up opens the first few (again
            # and again), the cold run each of the next once (their register lookups are not
            # cached yet: the first opening of a record); then every record is opened (each
            # worker has its caches) and the measured runs open random records
            order = list(world.patients)
            rng.shuffle(order)
            known = order[: args.warmup_persons]
            run, made, info = open_run(warmup, args.rate_guess, False, pool=known)
            auth_bench.log_run(f"{name} open warm-up ({warmup:g} s)", run, "req/s", made)
            estimate = run.requests_per_s
            measured.cold = bench.Series(
                backend, "open the record, first opening", "req/s", args.threads,
                args.connections,
            )  # fmt: skip
            unseen = order[args.warmup_persons :]
            cold_seconds = min(args.duration, len(unseen) / (estimate * 1.25))
            if cold_seconds >= 2:
                run, made, info = open_run(cold_seconds, estimate, True, chosen=unseen)
                measured.cold.runs.append(run)
                auth_bench.log_run(f"{name} open, first openings ({cold_seconds:.0f} s)", run,
                                   "req/s", made)  # fmt: skip
                _log_open(name, run, info)
                _server_tail(run, server, name)
            else:
                bench.log(f"{name} open: too few persons for a run of first openings")
            passes = workers + 1  # each worker caches on its own
            everyone = [p for _ in range(passes) for p in rng.sample(order, len(order))]
            seconds = min(40.0, len(everyone) / max(run.requests_per_s, 100) + 2)
            generate_open(len(everyone), everyone)
            run = wrk_open(seconds)  # stops with the persons' list used up: not measured
            bench.log(
                f"{name} open: every record opened ({passes} pass(es), "
                f"{run.report['ops'].get('open', 0):,} requests; not measured)"
            )
            for n in range(args.runs):
                run, made, info = open_run(args.duration, estimate, True)
                measured.open.runs.append(run)
                estimate = max(estimate, run.requests_per_s)
                auth_bench.log_run(f"{name} open run {n + 1}/{args.runs}", run, "req/s", made)
                _log_open(name, run, info)
                _server_tail(run, server, name)
            if args.profile:
                measured.profiles["open"] = profiled(
                    f"{backend} w{workers} open the record",
                    server.pid,
                    lambda hook: open_run(args.duration, estimate, False, hook)[0],
                    args.duration,
                    stamp,
                )
        if "iti65" in args.parts:
            run, made = iti65_run(warmup, args.iti65_rate_guess, False)
            auth_bench.log_run(f"{name} iti65 warm-up ({warmup:g} s)", run, "submissions/s", made)
            estimate = max(run.throughput, 20)
            for n in range(args.runs):
                run, made = iti65_run(args.duration, estimate, True)
                measured.iti65.runs.append(run)
                estimate = max(estimate, run.requests_per_s)
                label = f"{name} iti65 run {n + 1}/{args.runs}"
                auth_bench.log_run(label, run, "submissions/s", made)
                _server_tail(run, server, name)
            if args.profile:
                measured.profiles["iti65"] = profiled(
                    f"{backend} w{workers} ITI-65",
                    server.pid,
                    lambda hook: iti65_run(args.duration, estimate, False, hook)[0],
                    args.duration,
                    stamp,
                )
        signed[0].tool.http.close()
    if args.count_sql and workers == args.workers[0]:
        try:
            measured.statements = count_statements(setup, world, port, args, stamp, client)
        except Exception as error:  # optional: report and go on
            bench.log(f"{name}: counting SQL statements failed: {type(error).__name__}: {error}")
    return measured


def _log_open(name: str, run: bench.WrkRun, info: dict[str, Any]) -> None:
    entries = run.report["extra"].get("entries", 0)
    records = max(1, run.report["extra"].get("records", 0))
    bench.log(
        f"{name} open: {entries / records:.2f} entries per record; audit rows "
        f"{info['rows']:,} for {info['responses_200']:,} 200s of {info['sent']:,} "
        f"sent{'' if info['ok'] else ' MISMATCH'}"
    )


def _server_tail(run: bench.WrkRun, server: bench.Server, name: str) -> None:
    if run.flagged:
        tail = server.log_tail(15)
        if tail:
            bench.log(f"{name}: server log tail:\n{tail}")


def profiled(
    title: str, pid: int, work: Callable[[Callable[[], None]], bench.WrkRun], seconds: float,
    stamp: str,
) -> dict[str, Any] | None:  # fmt: skip
    """One more run under py-spy, started just before wrk; prints the summary."""
    slug = title.replace(" ", "-").replace("/", "-")
    out = bench.RESULTS / "profiles" / f"{stamp}-kjernejournal-{slug}.collapsed.txt"
    out.parent.mkdir(parents=True, exist_ok=True)
    spies: list[subprocess.Popen] = []

    def start() -> None:
        spy = bench.start_profile(pid, out, seconds)
        if spy is not None:
            spies.append(spy)
            time.sleep(0.5)

    run = work(start)
    if not spies:
        return None
    spies[0].wait(timeout=seconds + 30)
    if not out.exists():
        return None
    summary = bench.summarize_profile(out, top=25)
    bench.print_profile(
        f"{title} ({run.throughput:,.0f}/s while profiled; {os.path.relpath(out)})",
        summary,
        run.seconds,
    )
    return {"file": os.path.relpath(out, bench.ROOT), "rate": run.throughput, **summary}


def count_statements(
    setup: dict[str, Any],
    world: World,
    port: int,
    args: argparse.Namespace,
    stamp: str,
    client: dict[str, Any],
) -> dict[str, Any]:
    """SQL statements per request: a server with the counting ``sitecustomize``, one worker,
    sequential requests; the idle server's statements in the same time subtracted."""
    backend, data_dir, database_url = setup["backend"], setup["data_dir"], setup["database_url"]
    hook = data_dir / "sqlcount"
    shutil.rmtree(hook, ignore_errors=True)
    counts = hook / "counts"
    counts.mkdir(parents=True)
    (hook / "sitecustomize.py").write_text(SITECUSTOMIZE)
    env = {"PYTHONPATH": str(hook), SQL_COUNT_ENV: str(counts)}
    issuer = f"http://127.0.0.1:{port}"
    argv = bench.samhandling_argv(port, data_dir, database_url, 1)
    log_path = bench.LOGS / f"{stamp}-kjernejournal-{backend}-sqlcount.log"

    def total() -> int:
        time.sleep(0.35)
        return sum(int(p.read_text() or 0) for p in counts.iterdir() if p.suffix != ".tmp")

    headers = {"nhn-access-basis": "SAMTYKKE"}
    rng = random.Random(args.seed + 99)
    result: dict[str, Any] = {"server": bench.env_command(env, argv)}
    with bench.Server(argv, port, log_path, env=env):
        signed = sign_in(issuer, client, world.doctor_pid)
        with http_client(issuer, signed) as http:
            for _ in range(5):  # warm the caches (the person, HPR, privacy choices)
                patient = rng.choice(world.patients).patient_id
                http.get(f"{issuer}/fhir/Patient/{patient}/$open-record", headers=headers)
            idle_start = total()
            started = time.perf_counter()
            time.sleep(3)
            idle_rate = (total() - idle_start) / (time.perf_counter() - started)

            def per_request(send: Callable[[], Any], n: int) -> dict[str, Any]:
                first = total()
                started = time.perf_counter()
                for _ in range(n):
                    answer = send()
                    if answer.status_code != 200:
                        raise RuntimeError(f"{answer.status_code} {answer.text[:300]}")
                elapsed = time.perf_counter() - started
                statements = total() - first - idle_rate * (elapsed + 0.35)
                return {"requests": n, "statements": round(statements),
                        "per_request": round(statements / n, 1)}  # fmt: skip

            result["idle_statements_per_s"] = round(idle_rate, 1)
            result["open"] = per_request(
                lambda: http.get(
                    f"{issuer}/fhir/Patient/{rng.choice(world.patients).patient_id}/$open-record",
                    headers=headers,
                ),
                args.count_requests,
            )
            if "iti65" in args.parts:
                size = args.document_kb * 1024
                bodies = [one_submission(issuer, signed, world, size) for _ in range(10)]
                result["iti65"] = per_request(
                    lambda: http.post(
                        f"{issuer}/fhir",
                        content=bodies.pop(),
                        headers={
                            **headers,
                            "Content-Type": "application/fhir+json",
                            "Prefer": "return=minimal",
                        },
                    ),
                    10,
                )
        signed.tool.http.close()
    bench.log(
        f"{backend}: SQL statements per request: open the record "
        f"{result['open']['per_request']}"
        + (f", ITI-65 {result['iti65']['per_request']}" if "iti65" in result else "")
        + f" (idle server: {result['idle_statements_per_s']}/s, subtracted)"
    )
    return result


def run_backend(
    backend: str,
    world: World,
    args: argparse.Namespace,
    gen: auth_bench.Generator,
    machine: dict[str, Any],
    stamp: str,
) -> dict[str, Any]:
    with bench.fresh_backend(backend, "kjernejournal", args, machine) as (data_dir, database_url):
        setup: dict[str, Any] = {
            "backend": backend,
            "data_dir": data_dir,
            "database_url": database_url,
        }
        info: dict[str, Any] = {
            "backend": backend,
            "data_dir": os.path.relpath(data_dir, bench.ROOT),
            "database_url": database_url,
        }
        bench.log(f"{backend}: loading (in process): {world.describe()}")
        info["load"] = asyncio.run(_load(data_dir, database_url, world, args.load_concurrency))
        load = info["load"]
        bench.log(
            f"{backend}: loaded: terminology {load['terminology_s']} s, registers "
            f"{load['registers_s']} s, kjernejournal {load['kjernejournal_resources']:,} "
            f"resources in {load['kjernejournal_s']} s ({load['kjernejournal_resources_per_s']:,}"
            "/s)"
        )
        if backend == "postgresql":
            bench.stored_rows(backend, data_dir, database_url, "ANALYZE")
        info["measured"] = [run_workers(setup, world, w, gen, args, stamp) for w in args.workers]
        info["client"] = setup.get("client")
    return info


# ---------------------------------------------------------------------------------------
# tables


def load_table(infos: dict[str, Any]) -> list[str]:
    rows = [
        "| backend | terminology s | registers (resources, s) | Kjernejournal (resources, s, "
        "per s) | concurrency |",
        "|---|---|---|---|---|",
    ]
    for backend, info in infos.items():
        load = info.get("load")
        if load:
            rows.append(
                f"| {auth_bench._name(backend)} | {load['terminology_s']} "
                f"| {load['register_resources']:,} in {load['registers_s']} "
                f"| {load['kjernejournal_resources']:,} in {load['kjernejournal_s']} "
                f"({load['kjernejournal_resources_per_s']:,}/s) | {load['concurrency']} |"
            )
    return rows


def open_table(infos: dict[str, Any]) -> list[str]:
    rows = [
        "| backend | workers | records opened | req/s (runs) | p50 / p95 / p99 ms "
        "| server CPU µs/request | server cores | entries per record | audit rows = 200s "
        "| SQL statements/request | errors | others' cores | target | met |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for backend, info in infos.items():
        for m in info.get("measured", []):
            summary = m.summary()
            cold = len(m.cold.runs) if m.cold is not None else 0
            for key, series, audits in (
                ("open_cold", m.cold, m.audit[:cold]),
                ("open", m.open, m.audit[cold:]),
            ):
                s = summary.get(key)
                if s is None or series is None:
                    continue
                runs = " · ".join(f"{r.throughput:,.0f}" for r in series.runs)
                lat = s["latency_ms"]
                cpu = f"{s['server_cpu_us']:,.0f}"
                if s["server_and_db_cpu_us"] is not None:
                    cpu += f" (with its PostgreSQL backends {s['server_and_db_cpu_us']:,.0f})"
                entries = statistics.median(
                    r.report["extra"].get("entries", 0)
                    / max(1, r.report["extra"].get("records", 0))
                    for r in series.runs
                )
                audit = " · ".join(f"{a['rows']:,}/{a['responses_200']:,}" for a in audits)
                ok = all(a["ok"] for a in audits)
                statements = (m.statements or {}).get("open", {}).get("per_request", "-")
                if key == "open_cold":
                    what, target, met = "first openings (persons not cached)", "-", "-"
                    statements = "-"
                else:
                    what = "random (every person opened before)"
                    target = f"≥ {OPEN_TARGET_RPS} req/s, p95 ≤ {OPEN_TARGET_P95_MS} ms"
                    met = "yes" if s["meets_target"] else "**no**"
                rows.append(
                    f"| {auth_bench._name(backend)} | {m.workers} | {what} "
                    f"| **{s['req_s']:,.0f}** ({runs}) "
                    f"| {lat['50']:.1f} / **{lat['95']:.1f}** / {lat['99']:.1f} | {cpu} "
                    f"| {s['server_cores']:.2f} | {entries:.2f} "
                    f"| {'yes' if ok else '**no**'} ({audit}) | {statements} "
                    f"| {s['errors']} | {series.median_other_cores:.2f} | {target} | {met} |"
                )
    return rows


def iti65_table(infos: dict[str, Any]) -> list[str]:
    rows = [
        "| backend | workers | submissions/s (runs) | p50 / p95 / p99 ms "
        "| server CPU ms/submission | server cores | SQL statements/submission | errors "
        "| others' cores | target | met |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for backend, info in infos.items():
        for m in info.get("measured", []):
            s = m.summary().get("iti65")
            if s is None:
                continue
            runs = " · ".join(f"{r.throughput:,.0f}" for r in m.iti65.runs)
            lat = s["latency_ms"]
            cpu = f"{s['server_cpu_ms']:.2f}"
            if s["server_and_db_cpu_ms"] is not None:
                cpu += f" (with its PostgreSQL backends {s['server_and_db_cpu_ms']:.2f})"
            statements = (m.statements or {}).get("iti65", {}).get("per_request", "-")
            rows.append(
                f"| {auth_bench._name(backend)} | {m.workers} | **{s['submissions_s']:,.1f}** "
                f"({runs}) | {lat['50']:.0f} / {lat['95']:.0f} / {lat['99']:.0f} | {cpu} "
                f"| {s['server_cores']:.2f} | {statements} | {s['errors']} "
                f"| {m.iti65.median_other_cores:.2f} | ≥ {ITI65_TARGET}/s "
                f"| {'yes' if s['meets_target'] else '**no**'} |"
            )
    return rows


# ---------------------------------------------------------------------------------------
# the whole invocation


_list = policy_bench._list  # comma-separated choices


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backend", choices=[*BACKENDS, "both"], default="both")
    parser.add_argument("--part", dest="parts", type=_list(PARTS), default=list(PARTS))
    parser.add_argument("--workers", type=policy_bench._ints, default=[1], help="e.g. 1,2")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--duration", type=float, default=10, help="seconds per run")
    parser.add_argument("--patients", type=int, default=10_000)
    parser.add_argument("--critical-share", type=float, default=0.3)
    parser.add_argument(
        "--loaded-document-kb", type=int, default=8, help="size of the loaded documents' PDFs"
    )
    parser.add_argument("--document-kb", type=int, default=200, help="ITI-65 document size")
    parser.add_argument("--load-concurrency", type=int, default=4)
    parser.add_argument("--threads", type=int, default=2, help="wrk -t (open the record)")
    parser.add_argument("--connections", type=int, default=16, help="wrk -c (open the record)")
    parser.add_argument("--iti65-threads", type=int, default=1, help="wrk -t (ITI-65)")
    parser.add_argument("--iti65-connections", type=int, default=8, help="wrk -c (ITI-65)")
    parser.add_argument("--rate-guess", type=float, default=1000, help="open req/s (warm-up)")
    parser.add_argument(
        "--warmup-persons", type=int, default=100, help="persons the server's warm-up opens"
    )
    parser.add_argument("--iti65-rate-guess", type=float, default=150)
    parser.add_argument("--headroom", type=float, default=1.4)
    parser.add_argument("--quiet-wait", type=float, default=10)
    parser.add_argument("--count-sql", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument("--count-requests", type=int, default=200)
    parser.add_argument("--profile", action="store_true", help="one run of each part in py-spy")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--keep-data", action="store_true")
    parser.add_argument("--pg-admin-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--pg-database", default="samhandling_kjernejournal_bench")
    args = parser.parse_args(argv)
    if args.runs < 1 or args.duration < 1 or args.patients < 1:
        parser.error("--runs, --duration and --patients must be at least 1")
    if args.duration > 40:
        parser.error("--duration above 40 s: generated proofs would expire during the run")

    backends = list(BACKENDS) if args.backend == "both" else [args.backend]
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    bench.LOGS.mkdir(parents=True, exist_ok=True)
    machine = bench.machine_info()
    source = bench.source_version()
    source["kjernejournal_fingerprint"] = fingerprint()
    started = time.perf_counter()
    bench.print_header(machine, source)
    print(f"measured code: {source['kjernejournal_fingerprint']} (sha256 of "
          f"{', '.join(f'src/samhandling/{p}' for p in SOURCES)})")  # fmt: skip
    world = make_world(args)
    bench.log(f"data: {world.describe()}; the doctor: HPR {world.doctor.hpr} at "
              f"{world.doctor.organisation} ({world.doctor.orgnr})")  # fmt: skip
    gen = auth_bench.Generator()
    list(gen.pool.map(abs, range(gen.processes)))  # fork the workers now, before threads
    infos: dict[str, Any] = {}
    failed: list[str] = []
    try:
        for backend in backends:
            try:
                infos[backend] = run_backend(backend, world, args, gen, machine, stamp)
            except Exception as error:  # report what was measured, then fail
                failed.append(f"{backend}: {type(error).__name__}: {error}")
                bench.log(f"FAILED {failed[-1]}")
    finally:
        gen.close()
    elapsed = time.perf_counter() - started

    result = {
        "started": stamp,
        "command": bench.command_line(),
        "machine": machine,
        "source": source,
        "settings": vars(args),
        "data": world.describe(),
        "data_counts": world.counts,
        "doctor": {
            "hpr": world.doctor.hpr,
            "organisation": world.doctor.organisation,
            "orgnr": world.doctor.orgnr,
        },
        "backends": {
            b: {
                **{k: v for k, v in info.items() if k != "measured"},
                "measured": [m.as_json() for m in info.get("measured", [])],
            }
            for b, info in infos.items()
        },
        "failed": failed,
        "elapsed_s": round(elapsed, 1),
    }
    out = bench.RESULTS / f"kjernejournal-{stamp}.json"
    out.write_bytes(
        orjson.dumps(result, option=orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS, default=str)
    )

    print()
    print(f"command: `{bench.command_line()}`")
    print(
        f"machine: {machine['nproc']} CPUs ({machine['cpu_model']}), {machine['memory']}, "
        f"Linux {machine['kernel']}, Python {machine['python']}, SQLite {machine['sqlite']}, "
        f"PostgreSQL {machine['postgresql'] or '-'}, {machine['wrk']}"
    )
    print(f"{bench.code_line(source)}; measured code {source['kjernejournal_fingerprint']}")
    if fingerprint() != source["kjernejournal_fingerprint"]:
        print(f"WARNING: the measured code changed during the run (now {fingerprint()})")
    print(f"data: {world.describe()}")
    for backend, info in infos.items():
        for m in info.get("measured", []):
            print(f"{backend}, {m.workers} worker(s): `{m.server}` (log {m.log})")
            if m.statements:
                print(f"{backend}: statement count: `{m.statements['server']}`")
        if info.get("client"):
            print(f"{backend}: client: `{info['client']['command']}`")
    if infos:
        print("\nLoading (in process, through the configured engine):\n")
        print("\n".join(load_table(infos)))
    if "open" in args.parts and infos:
        print(
            f"\nOpen the record: `GET /fhir/Patient/{{id}}/$open-record` (random patients) as a "
            f"signed-in doctor (DPoP token, security level 4, `{BASIS_HEADER}`), audited; median "
            f"of {args.runs} runs of {args.duration:g} s, wrk -t{args.threads} "
            f"-c{args.connections}:\n"
        )
        print("\n".join(open_table(infos)))
    if "iti65" in args.parts and infos:
        print(
            f"\nITI-65: `POST /fhir` of a Provide Document Bundle (SubmissionSet, "
            f"DocumentReference, Binary with a {args.document_kb} KB PDF) by the same doctor; "
            f"accepted = 200 with three 201 entries; median of {args.runs} runs of "
            f"{args.duration:g} s, wrk -t{args.iti65_threads} -c{args.iti65_connections}:\n"
        )
        print("\n".join(iti65_table(infos)))
    flagged = []
    noisy = 0
    for backend, info in infos.items():
        for m in info.get("measured", []):
            for series in (m.cold, m.open, m.iti65):
                for r in series.runs if series is not None else []:
                    if r.flagged:
                        flagged.append(
                            f"FLAGGED {backend} w{m.workers} {series.workload}: "
                            f"{'; '.join(r.flagged)}"
                        )
                    if r.cpu.get("other_cores", 0) > bench.NOISY_CORES:
                        noisy += 1
    if noisy:
        print(f"\n{noisy} run(s) NOISY: other processes used more than {bench.NOISY_CORES} cores")
    for line in flagged + [f"FAILED {f}" for f in failed]:
        print(line)
    print(f"\nresults: {os.path.relpath(out)}  ({elapsed / 60:.1f} min)")
    return 1 if flagged or failed else 0


if __name__ == "__main__":
    sys.exit(main())
