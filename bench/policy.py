#!/usr/bin/env python
"""Access policy and audit trail benchmark: what a health-data decision costs, and what an
audited read costs over HTTP next to an unaudited one.

    python bench/policy.py [--backend sqlite|postgresql|both] [--part micro,http]
                           [--workers 1[,2]] [--duration 10] [--runs 3] [--persons 1000]

The data (the same for both parts; ``--seed``): ``--persons`` persons in the person register
(Patients with a fødselsnummer), ``--observations`` Observations of each (a blood pressure,
subject ``Patient/<id>``), ``--organisations`` enterprises (Organizations, among them the
client's) and one doctor in HPR (a Practitioner with a licence as a doctor in force). Nobody
has made a privacy choice (most people: the common case). Written as transaction Bundles of
PUTs through the server's configured engine (``samhandling.app.opened_engine``: the
registers' write checks included), in this process, before the server starts.

* ``micro``, **in process** (no HTTP): the policy as the app builds it
  (``start_runtime``, the services' start hooks, ``fhir_policy``) over a fresh SQLite store
  in a temporary directory. A health worker's access context (personnel, security level 4,
  the doctor's HPR number, ``nhn-access-basis: SAMTYKKE``) reads one patient's Observation:
  ``Policy.authorize(ctx, "read", "Observation")`` + ``Policy.present(ctx, "Observation",
  content)`` [target: at most 50 µs], split into its steps; a citizen reading their own
  Observation; a health worker's search naming one patient (``authorize`` + ``narrow``, by
  ``subject=Patient/<id>`` and by ``subject:Patient.identifier=<system>|<fnr>``); a read of a
  non-personal type (Organization) for comparison; and what the audit trail adds in the
  request (`AuditTrail.audit_record`: the record of the read, and its JSON). Every person,
  the doctor's HPR entry and the privacy choices are looked up once first (warm caches, as
  in a running server); the Observations are drawn at random from all persons. Timed as
  bench/auth.py's micro part (its ``measure``): CPU time (``time.process_time``) and wall
  time per call, the median of 7 slices, the slices of all steps interleaved. "other" rows
  are totals minus the listed steps.
* ``http``, **audited vs unaudited reads**: for each backend (SQLite in a fresh data
  directory; PostgreSQL: a dropped and recreated database) and each ``--workers`` count,
  one ``samhandling serve`` (tokens checked, the policy and the audit trail on). A personnel
  client is registered (``samhandling client create`` with the clinical scopes and a
  redirect URI) and the doctor signs in through the test IdP (authorization code with PAR
  and PKCE: ``TokenClient.sign_in``, security level 4), which gives a DPoP-bound token.
  Then, alternating, wrk (bench/lua/auth-read.lua) runs of
  (a) **audited**: ``GET /fhir/Observation/{random id}`` with ``nhn-access-basis: SAMTYKKE``
  (health data: the health-data rules, and one audit record group-committed before the
  response), and (b) **unaudited**: ``GET /fhir/Organization/{random id}`` with the same
  token and the same header (the same token and proof checks, the registers' policy; not
  personal information: no audit record, no health-data rules). Every request carries a
  pre-generated single-use DPoP proof (bench/auth.py's ``Generator``, in a process per core,
  just before the run). Reported: req/s of both, the ratio [target: audited at least 50% of
  unaudited], the server's CPU time per request (and that of the PostgreSQL backends of
  the benchmark's database: others' databases on the same PostgreSQL are left out, as are
  its shared WAL writer and checkpointer), the server's cores, and the audit rows
  written: ``audit_record`` is counted before and after every run (after the server has
  finished what wrk left in flight); the audited run's new rows must number at least its
  200 responses and at most the requests wrk sent (wrk stops with up to ``-c`` requests
  unanswered, which the server still serves and audits), and an unaudited run must add
  none. On PostgreSQL the number of transactions that wrote the new rows (distinct
  ``xmin``) gives the group commit's mean batch size; on SQLite it is not visible.

The audit log's write capacity (`AuditLog.record` alone) is bench/audit.py's.

It prints the machine, the commands, every run (with the CPU use of the server, wrk,
PostgreSQL and everything else, as bench/run.py does; ``NOISY`` when other processes used
more than 0.25 cores) and Markdown tables of medians, and writes everything as JSON to
``bench/results/policy-<UTC time>.json``. Exit status 1 if a run had an error or the audit
rows did not add up.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import os
import random
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import orjson

import auth as auth_bench  # bench/auth.py: pre-signed requests, generated runs, `measure`
import run as bench  # bench/run.py: servers, wrk, CPU accounting, machine

BACKENDS = bench.BACKENDS
PARTS = ("micro", "http")
ORGNR = "912159523"  # the client's organisation (in the enterprise register)
REDIRECT_URI = "http://127.0.0.1:9/callback"
CLINICAL_SCOPES = ("samhandling:fhir/read", "samhandling:fhir/write", "samhandling:grunndata/read")
USER_SCOPES = (
    "openid profile helseid://scopes/identity/pid helseid://scopes/identity/security_level "
    "helseid://scopes/hpr/hpr_number"
)
CITIZEN_SCOPES = ("samhandling:fhir/read", "samhandling:grunndata/read")
BASIS_HEADER = "nhn-access-basis: SAMTYKKE"
MICRO_TARGET_US = 50  # µs per decision, a typical read
RATIO_TARGET = 0.5  # audited req/s at least this share of unaudited
BATCH = 500  # entries per transaction Bundle when loading
SRC = bench.ROOT / "src" / "samhandling"
POLICY_SOURCES = ("platform/policy/*.py", "platform/audit/*.py", "app.py")


def policy_fingerprint() -> str:
    """A hash of the code measured here (the tree may have uncommitted changes)."""
    digest = hashlib.sha256()
    for pattern in POLICY_SOURCES:
        for path in sorted(SRC.glob(pattern)):
            digest.update(str(path.relative_to(SRC)).encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


# ---------------------------------------------------------------------------------------
# the data


@dataclass
class World:
    """Persons with Observations, enterprises and one doctor in HPR."""

    doctor_pid: str
    hpr: str
    persons: list[tuple[str, str]]  # (fødselsnummer, Patient id)
    observations: list[tuple[str, int]]  # (Observation id, index of its person)
    organisations: list[str]  # Organization ids
    bundles: list[dict[str, Any]] = field(repr=False, default_factory=list)

    @property
    def resources(self) -> int:
        return sum(len(b["entry"]) for b in self.bundles)


def make_world(persons: int, per_person: int, organisations: int, seed: int) -> World:
    from samhandling.platform.identifiers import FNR_SYSTEM, HPR_SYSTEM, ORGNR_SYSTEM
    from samhandling.services.registries.model import APPROVAL_TYPE, PROFESSION
    from samhandling.synth.identifiers import fodselsnummer, hpr_number, organisasjonsnummer

    rng = random.Random(seed)
    pids: set[str] = set()

    def new_pid(born: date) -> str:
        while True:
            pid = fodselsnummer(born, rng, bool(rng.getrandbits(1)))
            if pid not in pids:
                pids.add(pid)
                return pid

    doctor_pid = new_pid(date(1978, 3, 14))
    hpr = hpr_number(rng)
    resources: list[dict[str, Any]] = [
        {
            "resourceType": "Practitioner",
            "id": f"hpr-{hpr}",
            "identifier": [
                {"system": HPR_SYSTEM, "value": hpr},
                {"system": FNR_SYSTEM, "value": doctor_pid},
            ],
            "name": [{"family": "Lege", "given": ["Lise"]}],
            "qualification": [
                {
                    "code": {
                        "coding": [
                            {"system": PROFESSION, "code": "LE"},
                            {"system": APPROVAL_TYPE, "code": "1"},
                        ]
                    },
                    "period": {"start": "2005-01-01"},
                }
            ],
        }
    ]
    orgnrs = {ORGNR}
    while len(orgnrs) < max(1, organisations):
        orgnrs.add(organisasjonsnummer(rng))
    org_ids = []
    for n, orgnr in enumerate(sorted(orgnrs)):
        org_ids.append(f"org-{orgnr}")
        resources.append(
            {
                "resourceType": "Organization",
                "id": f"org-{orgnr}",
                "identifier": [{"system": ORGNR_SYSTEM, "value": orgnr}],
                "active": True,
                "name": "Testbyen sykehus" if orgnr == ORGNR else f"Testbyen legesenter {n}",
                "address": [
                    {"line": [f"Storgata {n + 1}"], "postalCode": "5003", "city": "Bergen"}
                ],
            }
        )
    people = []
    for i in range(persons):
        born = date.fromordinal(date(1940, 1, 1).toordinal() + rng.randrange(25_000))
        pid = new_pid(born)
        patient_id = f"pp-{i:06d}"
        people.append((pid, patient_id))
        resources.append(
            {
                "resourceType": "Patient",
                "id": patient_id,
                "identifier": [{"use": "official", "system": FNR_SYSTEM, "value": pid}],
                "name": [{"use": "official", "family": "Testesen", "given": ["Tea"]}],
                "gender": "female",
                "birthDate": born.isoformat(),
                "address": [{"line": ["Skoleveien 3"], "postalCode": "5003", "city": "Bergen"}],
            }
        )
    observations = []
    for i, (_, patient_id) in enumerate(people):
        for k in range(per_person):
            obs_id = f"obs-{i:06d}-{k}"
            observations.append((obs_id, i))
            day = date(2024, 1, 1).toordinal() + rng.randrange(700)
            resources.append(
                {
                    "resourceType": "Observation",
                    "id": obs_id,
                    "status": "final",
                    "category": [
                        {
                            "coding": [
                                {
                                    "system": "http://terminology.hl7.org/CodeSystem/"
                                    "observation-category",
                                    "code": "vital-signs",
                                }
                            ]
                        }
                    ],
                    "code": {
                        "coding": [
                            {
                                "system": "http://loinc.org",
                                "code": "8480-6",
                                "display": "Systolic blood pressure",
                            }
                        ],
                        "text": "blodtrykk",
                    },
                    "subject": {"reference": f"Patient/{patient_id}"},
                    "effectiveDateTime": date.fromordinal(day).isoformat(),
                    "valueQuantity": {
                        "value": rng.randrange(100, 170),
                        "unit": "mmHg",
                        "system": "http://unitsofmeasure.org",
                        "code": "mm[Hg]",
                    },
                }
            )
    bundles = [
        {
            "resourceType": "Bundle",
            "type": "transaction",
            "entry": [
                {
                    "resource": r,
                    "request": {"method": "PUT", "url": f"{r['resourceType']}/{r['id']}"},
                }
                for r in resources[start : start + BATCH]
            ],
        }
        for start in range(0, len(resources), BATCH)
    ]
    return World(doctor_pid, hpr, people, observations, org_ids, bundles)


async def load_world(engine: Any, base: str, world: World) -> dict[str, Any]:
    """Every Bundle through the engine's transaction processing."""
    from samhandling.platform.fhir.rest.bundle import process_bundle

    started = time.perf_counter()
    for bundle in world.bundles:
        await process_bundle(engine, bundle, base, "minimal")
    seconds = time.perf_counter() - started
    return {
        "resources_written": world.resources,
        "seconds": round(seconds, 2),
        "per_s": round(world.resources / seconds),
    }


async def _load_into(data_dir: Path, database_url: str | None, world: World) -> dict[str, Any]:
    from samhandling.app import opened_engine
    from samhandling.settings import Settings

    settings = Settings(data_dir=data_dir, database_url=database_url)
    async with opened_engine(settings) as engine:
        return await load_world(engine, f"{settings.issuer}/fhir", world)


# ---------------------------------------------------------------------------------------
# in process: the policy's decisions


def _personnel_context(world: World, basis: str | None = "SAMTYKKE") -> Any:
    from samhandling.platform.auth.context import AccessContext, Principal

    context = AccessContext(
        principal=Principal.PERSONNEL,
        client_id="bench-epj",
        scopes=frozenset((*USER_SCOPES.split(), *CLINICAL_SCOPES)),
        audience=("samhandling:fhir", "samhandling:grunndata"),
        token_id="bench-token",
        expires_at=int(time.time()) + 600,
        client_name="Bench EPJ",
        orgnr_parent=ORGNR,
        person_id=world.doctor_pid,
        hpr_number=world.hpr,
        security_level=4,
        assurance_level="high",
        name="Lise Lege",
        dpop_jkt="bench-jkt",
    )
    return context.for_request({"nhn-access-basis": basis}) if basis else context


def _citizen_context(pid: str) -> Any:
    from samhandling.platform.auth.context import AccessContext, Principal

    return AccessContext(
        principal=Principal.CITIZEN,
        client_id="bench-helsenorge",
        scopes=frozenset((*USER_SCOPES.split(), *CITIZEN_SCOPES)),
        audience=("samhandling:fhir",),
        token_id="bench-citizen-token",
        expires_at=int(time.time()) + 600,
        client_name="Bench Helsenorge",
        person_id=pid,
        security_level=4,
        assurance_level="high",
        name="Tea Testesen",
        dpop_jkt="bench-jkt",
    )


async def _micro(world: World, args: argparse.Namespace) -> dict[str, Any]:
    from orjson import loads  # as Policy.present parses (ids and references only)

    from samhandling.app import SERVICES, audit_trail, fhir_policy, start_runtime
    from samhandling.platform.audit import AuditLog
    from samhandling.platform.fhir.access import Accessed, Touched
    from samhandling.platform.fhir.storage import open_store
    from samhandling.platform.identifiers import FNR_SYSTEM
    from samhandling.platform.policy.rules import caller_denial
    from samhandling.settings import Settings

    Step = auth_bench.Step
    n = args.micro_iterations
    rng = random.Random(args.seed + 1)
    with tempfile.TemporaryDirectory(prefix="policy-bench-") as tmp:
        settings = Settings(data_dir=Path(tmp))
        store = await open_store(settings.effective_database_url)
        try:
            runtime = await start_runtime(settings, store)
        except BaseException:
            await store.close()
            raise
        try:
            load = await load_world(runtime.engine, f"{settings.issuer}/fhir", world)
            for service in SERVICES:  # as the application starts them
                if service.start is not None:
                    await service.start(runtime)
            policy = fhir_policy(runtime)  # as the application builds it
            rules, finder = policy.rules, policy.finder
            assert rules is not None and finder is not None
            trail = audit_trail(runtime, AuditLog(store, bytes(32)), policy)
            engine = runtime.engine

            async def content_of(type_name: str, id: str) -> bytes:
                found = await store.read(type_name, id)
                assert found is not None and found.content is not None, (type_name, id)
                return found.content

            doctor = _personnel_context(world)
            unstated = _personnel_context(world, None)
            citizens = [_citizen_context(pid) for pid, _ in world.persons]
            picks = [rng.randrange(len(world.observations)) for _ in range(n)]
            contents: dict[int, bytes] = {}
            for i in sorted(set(picks)):
                contents[i] = await content_of("Observation", world.observations[i][0])
            reads = [contents[i] for i in picks]
            parsed = [loads(c) for c in reads]
            person_of = [world.observations[i][1] for i in picks]
            patient_ids = [world.persons[p][1] for p in person_of]
            pids = [world.persons[p][0] for p in person_of]
            own = [(citizens[p], contents[i]) for p, i in zip(person_of, picks, strict=True)]
            by_subject = [
                engine.parse_search(("Observation",), [("subject", f"Patient/{pid}")])
                for pid in patient_ids
            ]
            by_number = [
                engine.parse_search(
                    ("Observation",), [("subject:Patient.identifier", f"{FNR_SYSTEM}|{pid}")]
                )
                for pid in pids
            ]
            org_contents = {
                o: await content_of("Organization", o) for o in set(world.organisations)
            }
            orgs = [org_contents[rng.choice(world.organisations)] for _ in range(n)]
            events = [
                Accessed(
                    doctor,
                    "read",
                    "Observation",
                    f"Observation/{world.observations[i][0]}",
                    None,
                    [Touched("Observation", world.observations[i][0], 1, contents[i])],
                    200,
                )
                for i in picks
            ]
            records = [await trail.audit_record(e, doctor, ["Observation"]) for e in events[:n]]
            headers = {"nhn-access-basis": "SAMTYKKE"}

            async def read(content: bytes) -> None:
                await policy.authorize(doctor, "read", "Observation")
                assert await policy.present(doctor, "Observation", content) is not None

            async def citizen_read(item: tuple[Any, bytes]) -> None:
                context, content = item
                await policy.authorize(context, "read", "Observation")
                assert await policy.present(context, "Observation", content) is not None

            async def search(request: Any) -> None:
                await policy.authorize(doctor, "search", "Observation")
                await policy.narrow(doctor, request)

            async def org_read(content: bytes) -> None:
                await policy.authorize(doctor, "read", "Organization")
                assert await policy.present(doctor, "Organization", content) is not None

            async def audit_record(event: Any) -> None:
                await trail.audit_record(event, doctor, ["Observation"])

            # warm every cache the steps use: each person, the HPR entry, the choices
            warm = time.perf_counter()
            for content in set(reads):
                await read(content)
            for item in own:
                await citizen_read(item)
            for request in by_subject + by_number:
                await search(request)
            for content in set(orgs):
                await org_read(content)
            warm_seconds = time.perf_counter() - warm

            bench.wait_for_quiet(args.quiet_wait)
            started = time.perf_counter()
            timings = await auth_bench.measure(
                [
                    Step("read", read, reads, awaited=True),
                    Step(
                        "authorize",
                        lambda _: policy.authorize(doctor, "read", "Observation"),
                        range(n),
                        awaited=True,
                    ),
                    Step(
                        "present",
                        lambda c: policy.present(doctor, "Observation", c),
                        reads,
                        awaited=True,
                    ),
                    Step("for_request", lambda _: unstated.for_request(headers), range(n)),
                    Step("caller_denial", lambda _: caller_denial(doctor), range(n)),
                    Step(
                        "hpr",
                        lambda _: rules.personnel.professions_in_force(world.hpr),
                        range(n),
                        awaited=True,
                    ),
                    Step("loads", loads, reads),
                    Step("finder", lambda r: finder.of_resource("Observation", r), parsed),
                    Step("pid_of", rules.persons.pid_of, patient_ids, awaited=True),
                    Step("decide", lambda p: rules.decide(doctor, "fhir", p), pids, awaited=True),
                    Step("citizen", citizen_read, own, awaited=True),
                    Step("search_subject", search, by_subject, awaited=True),
                    Step(
                        "narrow_subject",
                        lambda r: policy.narrow(doctor, r),
                        by_subject,
                        awaited=True,
                    ),
                    Step("search_number", search, by_number, awaited=True),
                    Step("organization", org_read, orgs, awaited=True),
                    Step("audit_record", audit_record, events, awaited=True),
                    Step("to_json", lambda r: r.to_json(), records),
                ]
            )
            t = {s.step: s for s in timings}
            rows = [
                _named(t["read"], "health worker reads an Observation: authorize + present"),
                _named(t["authorize"], '· authorize(ctx, "read", "Observation")'),
                _named(t["caller_denial"], "·· caller_denial (level, basis)"),
                _named(t["hpr"], "·· HPR: approvals in force (cached)"),
                auth_bench.remainder(
                    "·· other (scopes, service, representation)",
                    t["authorize"],
                    [(t["caller_denial"], 1), (t["hpr"], 1)],
                ),
                _named(t["present"], '· present(ctx, "Observation", content)'),
                _named(t["loads"], "·· parse the JSON (orjson)"),
                _named(t["finder"], "·· its patients (PatientFinder.of_resource)"),
                _named(t["pid_of"], "·· the Patient's person number (pid_of, cached)"),
                _named(t["decide"], "·· Rules.decide (privacy choices, cached)"),
                auth_bench.remainder(
                    "·· other",
                    t["present"],
                    [(t["loads"], 1), (t["finder"], 1), (t["pid_of"], 1), (t["decide"], 1)],
                ),
                _named(t["for_request"], "(AccessContext.for_request: the basis header)"),
                _named(t["citizen"], "citizen reads their own Observation: authorize + present"),
                _named(
                    t["search_subject"],
                    "health worker searches `Observation?subject=Patient/<id>`: authorize + narrow",
                ),
                _named(t["narrow_subject"], "· narrow"),
                _named(
                    t["search_number"],
                    "the same by person number (`subject:Patient.identifier`): authorize + narrow",
                ),
                _named(
                    t["organization"],
                    "for comparison, not health data: reads an Organization (authorize + present)",
                ),
                _named(t["audit_record"], "audit trail: the record of the read (audit_record)"),
                _named(t["to_json"], "audit trail: its JSON (AuditRecord.to_json)"),
            ]
            typical = t["read"]
            return {
                "settings": {"iterations": n, "rounds": auth_bench.ROUNDS},
                "load": load,
                "warm_seconds": round(warm_seconds, 2),
                "seconds": round(time.perf_counter() - started, 1),
                "steps": [r.as_json() for r in rows],
                "typical_read_cpu_us": round(typical.cpu_us, 2),
                "typical_read_wall_us": round(typical.wall_us, 2),
                "target_us": MICRO_TARGET_US,
                "meets_target": typical.cpu_us <= MICRO_TARGET_US,
                "record_bytes": len(records[0].to_json()),
            }
        finally:
            runtime.replay.close()
            await store.close()


def _named(timing: Any, step: str) -> Any:
    return auth_bench.Timing(step, timing.cpu_us, timing.wall_us, timing.calls)


def run_micro(world: World, args: argparse.Namespace) -> dict[str, Any]:
    import uvloop

    bench.log(
        f"micro: {world.resources:,} resources into a fresh SQLite store; "
        f"{args.micro_iterations:,} calls per step"
    )
    return uvloop.run(_micro(world, args))


# ---------------------------------------------------------------------------------------
# over HTTP: audited and unaudited reads


def register_client(
    data_dir: Path,
    database_url: str | None,
    issuer: str,
    *,
    scopes: Sequence[str] = CLINICAL_SCOPES,
    orgnr: str = ORGNR,
) -> dict[str, Any]:
    """A health-personnel client (an EPJ): ``samhandling client create --json``."""
    exe = Path(sys.executable).parent / "samhandling"
    argv = [str(exe) if exe.exists() else "samhandling", "client", "create", "--name", "Bench EPJ"]
    for scope in scopes:
        argv += ["--scope", scope]
    argv += ["--redirect-uri", REDIRECT_URI, "--orgnr", orgnr, "--json"]
    argv += ["--data-dir", str(data_dir), "--public-url", issuer]
    if database_url:
        argv += ["--database-url", database_url]
    out = subprocess.run(argv, capture_output=True, text=True, check=False, cwd=bench.ROOT)
    if out.returncode != 0:
        raise RuntimeError(f"client create failed ({out.returncode}): {out.stdout}{out.stderr}")
    config = orjson.loads(out.stdout)
    config["command"] = shlex.join(argv)
    return config


@dataclass
class SignedIn:
    token: str
    expires_at: float
    dpop_jwk: dict[str, Any]
    tool: Any


def sign_in(
    issuer: str, client: dict[str, Any], pid: str, scopes: Sequence[str] = CLINICAL_SCOPES
) -> SignedIn:
    """The doctor signs in through the test IdP (security level 4): a DPoP-bound token."""
    from samhandling.services.trust.tokentool import TokenClient

    tool = TokenClient(issuer, client["client_id"], client["jwk"])
    tokens = tool.sign_in(
        pid,
        scope=f"{USER_SCOPES} {' '.join(scopes)}",
        redirect_uri=REDIRECT_URI,
        security_level=4,
    )
    return SignedIn(tokens.access_token, tokens.expires_at, tool.dpop.jwk, tool)


@dataclass
class AuditCounter:
    """Counts ``audit_record`` rows (and, on PostgreSQL, the transactions that wrote them)."""

    backend: str
    data_dir: Path
    database_url: str | None

    def newest(self) -> int:
        return int(self._rows("SELECT COALESCE(MAX(id), 0) FROM audit_record")[0][0])

    def since(self, newest: int) -> dict[str, Any]:
        """Rows after id ``newest``; on PostgreSQL also the distinct writing transactions."""
        if self.backend == "postgresql":
            sql = (
                "SELECT COUNT(*), COUNT(DISTINCT xmin::text), MAX(id) FROM audit_record "
                f"WHERE id > {newest}"
            )
            rows, commits, last = self._rows(sql)[0]
            return {"rows": rows, "commits": commits, "newest": last or newest}
        rows, last = self._rows(f"SELECT COUNT(*), MAX(id) FROM audit_record WHERE id > {newest}")[
            0
        ]
        return {"rows": rows, "commits": None, "newest": last or newest}

    def settled(self, newest: int, wait: float = 5.0) -> dict[str, Any]:
        """``since(newest)`` once the count stops growing (the server has finished what wrk
        left in flight)."""
        deadline = time.monotonic() + wait
        found = self.since(newest)
        while time.monotonic() < deadline:
            time.sleep(0.3)
            again = self.since(newest)
            if again["rows"] == found["rows"]:
                return again
            found = again
        return found

    def _rows(self, sql: str) -> list[tuple]:
        return bench.stored_rows(self.backend, self.data_dir, self.database_url, sql)


def database_backends_cpu(database: str | None) -> float:
    """CPU seconds so far of the PostgreSQL backends connected to ``database`` (the
    server's pool; not the shared WAL writer, checkpointer and the like, and not the other
    databases' backends, which bench/run.py's ``postgres_cores`` counts too)."""
    if database is None:
        return 0.0
    total = 0.0
    for pid, (name, _, cpu) in bench._process_cpu().items():
        if name != "postgres":
            continue
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                title = f.read().decode(errors="replace")
        except OSError:
            continue
        if f" {database} " in title:
            total += cpu
    return total


@dataclass
class Pair:
    """Audited and unaudited read series for one backend and worker count."""

    backend: str
    workers: int
    audited: bench.Series
    unaudited: bench.Series
    audit: list[dict[str, Any]] = field(default_factory=list)  # per audited run
    unaudited_rows: list[int] = field(default_factory=list)  # per unaudited run
    generated: list[dict[str, Any]] = field(default_factory=list)
    server: str = ""
    log: str = ""

    @staticmethod
    def _cpu_us(series: bench.Series, with_db: bool) -> float:
        """Median CPU time per request of the server (with ``with_db``, plus the PostgreSQL
        backends of its database), µs."""
        values = []
        for r in series.runs:
            cores = r.cpu.get("server_cores", 0) + (
                r.cpu.get("database_backend_cores", 0) if with_db else 0
            )
            values.append(cores / r.requests_per_s * 1e6 if r.requests_per_s else 0.0)
        return statistics.median(values)

    @property
    def audit_ok(self) -> bool:
        return all(a["ok"] for a in self.audit) and not any(self.unaudited_rows)

    def summary(self) -> dict[str, Any]:
        rate_a, rate_u = self.audited.median, self.unaudited.median
        cpu_a, cpu_u = self._cpu_us(self.audited, False), self._cpu_us(self.unaudited, False)
        w = self.workers
        commits = [a["commits"] for a in self.audit if a["commits"]]
        out = {
            "backend": self.backend,
            "workers": w,
            "unaudited_req_s": round(rate_u, 1),
            "audited_req_s": round(rate_a, 1),
            "ratio": round(rate_a / rate_u, 3) if rate_u else None,
            "difference_us_per_request": round((w / rate_a - w / rate_u) * 1e6, 1),
            "unaudited_server_cpu_us": round(cpu_u, 1),
            "audited_server_cpu_us": round(cpu_a, 1),
            "difference_server_cpu_us": round(cpu_a - cpu_u, 1),
            "difference_server_and_db_cpu_us": None,
            "audit_rows_per_s": round(statistics.median(a["rows_per_s"] for a in self.audit), 1),
            "audit_rows_match": self.audit_ok,
            "mean_batch": (
                round(statistics.median(a["rows"] / a["commits"] for a in self.audit), 1)
                if self.audit and len(commits) == len(self.audit)
                else None
            ),
            "target_ratio": RATIO_TARGET,
            "meets_target": bool(rate_u) and rate_a / rate_u >= RATIO_TARGET,
        }
        if self.backend == "postgresql":
            out["difference_server_and_db_cpu_us"] = round(
                self._cpu_us(self.audited, True) - self._cpu_us(self.unaudited, True), 1
            )
        return out

    def as_json(self) -> dict[str, Any]:
        return {
            **self.summary(),
            "server": self.server,
            "server_log": self.log,
            "audited": self.audited.as_json(),
            "unaudited": self.unaudited.as_json(),
            "audit": self.audit,
            "unaudited_audit_rows": self.unaudited_rows,
            "generated": self.generated,
        }


def sanity_check(issuer: str, signed: SignedIn, world: World, counter: AuditCounter) -> None:
    """One audited and one unaudited read answer 200; only the first writes a record."""
    import httpx

    from samhandling.services.trust.tokentool import DpopAuth, Tokens

    auth = DpopAuth(Tokens(signed.token, signed.expires_at, {}), signed.tool.dpop)
    headers = {"nhn-access-basis": "SAMTYKKE"}
    with httpx.Client(base_url=f"{issuer}/fhir", auth=auth, timeout=30) as http:
        newest = counter.newest()
        answer = http.get(f"/Observation/{world.observations[0][0]}", headers=headers)
        if answer.status_code != 200:
            raise RuntimeError(f"audited read: {answer.status_code} {answer.text[:500]}")
        written = counter.since(newest)["rows"]
        answer = http.get(f"/Organization/{world.organisations[0]}", headers=headers)
        if answer.status_code != 200:
            raise RuntimeError(f"unaudited read: {answer.status_code} {answer.text[:500]}")
        after = counter.since(newest)["rows"]
    if (written, after) != (1, 1):
        raise RuntimeError(f"expected 1 audit record, then none more: {written}, {after - written}")


def run_pair(
    setup: dict[str, Any],
    world: World,
    workers: int,
    gen: auth_bench.Generator,
    args: argparse.Namespace,
    stamp: str,
) -> Pair:
    backend, data_dir, database_url = setup["backend"], setup["data_dir"], setup["database_url"]
    port = bench.free_port()
    issuer = f"http://127.0.0.1:{port}"
    argv = bench.samhandling_argv(port, data_dir, database_url, workers)
    log_path = bench.LOGS / f"{stamp}-policy-{backend}-w{workers}.log"
    threads, connections = args.threads, args.connections
    pair = Pair(
        backend,
        workers,
        bench.Series(backend, "Observation read, audited", "req/s", threads, connections),
        bench.Series(backend, "Organization read, unaudited", "req/s", threads, connections),
        server=shlex.join(argv),
        log=os.path.relpath(log_path, bench.ROOT),
    )
    counter = AuditCounter(backend, data_dir, database_url)
    rng = random.Random(args.seed + workers)
    obs_ids = [o for o, _ in world.observations]
    name = f"{backend} w{workers}"
    bench.log(f"{name}: server: {pair.server}")
    with bench.Server(argv, port, log_path) as server:
        client = register_client(data_dir, database_url, issuer)
        setup["client"] = {"client_id": client["client_id"], "command": client["command"]}
        signed = [sign_in(issuer, client, world.doctor_pid)]
        sanity_check(issuer, signed[0], world, counter)
        bench.log(f"{name}: doctor signed in (HPR {world.hpr}); 1 audited + 1 unaudited read ok")

        def token() -> SignedIn:
            if signed[0].expires_at - time.time() < 120:  # one token per series while valid
                signed[0].tool.http.close()
                signed[0] = sign_in(issuer, client, world.doctor_pid)
            return signed[0]

        def generator(kind: str) -> Callable[[int], dict[str, Any]]:
            path = data_dir / f"proofs-{kind}.tsv"

            def generate(count: int) -> dict[str, Any]:
                current = token()
                if kind == "audited":
                    paths = [f"/fhir/Observation/{rng.choice(obs_ids)}" for _ in range(count)]
                else:
                    paths = [
                        f"/fhir/Organization/{rng.choice(world.organisations)}"
                        for _ in range(count)
                    ]
                return gen.read_file(path, issuer, current.dpop_jwk, current.token, paths)

            return generate

        marks: dict[str, int] = {}

        def wrk_for(kind: str) -> Callable[[float], bench.WrkRun]:
            path = data_dir / f"proofs-{kind}.tsv"

            def wrk(seconds: float) -> bench.WrkRun:
                database = args.pg_database if backend == "postgresql" else None
                before = database_backends_cpu(database)
                run = bench.run_wrk(
                    "auth-read.lua",
                    port,
                    [str(path), str(threads), BASIS_HEADER],
                    threads,
                    connections,
                    seconds,
                    "requests",
                    server.pid,
                )
                if database is not None:
                    used = database_backends_cpu(database) - before
                    run.cpu["database_backend_cores"] = round(used / run.seconds, 2)
                if auth_bench.exhausted(run):
                    run.flagged.append(
                        f"ran out of generated proofs ({auth_bench.exhausted(run)} not sent)"
                    )
                return run

            return wrk

        def mark() -> None:  # just before wrk: the newest audit row
            marks["before"] = counter.newest()

        def one(kind: str, seconds: float, estimate: float, record: bool) -> bench.WrkRun:
            run, made = auth_bench.generated_run(
                f"{name} {kind}",
                generator(kind),
                auth_bench.lines_for(estimate, seconds, args.headroom),
                wrk_for(kind),
                seconds,
                args.quiet_wait if record else 0,
                mark,
            )
            written = counter.settled(marks["before"])
            report = run.report
            ok_200 = int(report["statuses"].get("200", 0))
            sent = int(report.get("ops", {}).get("read", 0))
            if kind == "audited":
                info = {
                    "rows": written["rows"],
                    "commits": written["commits"],
                    "responses_200": ok_200,
                    "responses": report["requests"],
                    "sent": sent,
                    "rows_per_s": round(written["rows"] / run.seconds, 1),
                    "ok": ok_200 <= written["rows"] <= sent,
                }
                if not info["ok"]:
                    run.flagged.append(
                        f"audit rows {written['rows']} not within 200 responses {ok_200} .. "
                        f"requests sent {sent}"
                    )
                if record:
                    pair.audit.append(info)
                batch = (
                    f", {written['commits']:,} commits (mean batch "
                    f"{written['rows'] / written['commits']:.1f})"
                    if written["commits"]
                    else ""
                )
                note = (
                    f"; audit rows {written['rows']:,} for {ok_200:,} 200s of {sent:,} sent "
                    f"({info['rows_per_s']:,.0f} rows/s{batch}){'' if info['ok'] else ' MISMATCH'}"
                )
            else:
                if record:
                    pair.unaudited_rows.append(written["rows"])
                if written["rows"]:
                    run.flagged.append(f"{written['rows']} audit rows from unaudited reads")
                note = f"; audit rows {written['rows']}"
            if record:
                pair.generated.append({"kind": kind, **made})
            label = f"{name} {kind}" + ("" if record else f" warm-up ({seconds:g} s)")
            auth_bench.log_run(label, run, "req/s", made)
            bench.log(f"{label}: {note[2:]}")
            if run.flagged:
                tail = server.log_tail(15)
                if tail:
                    bench.log(f"{name}: server log tail:\n{tail}")
            return run

        warmup = min(bench.WARMUP_SECONDS, args.duration)
        guess = float(args.rate_guess)
        estimate = {
            "unaudited": one("unaudited", warmup, guess, False).requests_per_s,
            "audited": one("audited", warmup, guess, False).requests_per_s,
        }
        for n in range(args.runs):
            order = ("unaudited", "audited") if n % 2 == 0 else ("audited", "unaudited")
            for kind in order:
                # proofs for the fastest rate either kind has reached (a slow warm-up on a
                # busy machine must not leave a run short of them)
                run = one(kind, args.duration, max(estimate.values()), True)
                (pair.audited if kind == "audited" else pair.unaudited).runs.append(run)
                estimate[kind] = max(estimate[kind], run.requests_per_s)
        signed[0].tool.http.close()
    return pair


def run_backend(
    backend: str,
    world: World,
    args: argparse.Namespace,
    gen: auth_bench.Generator,
    machine: dict[str, Any],
    stamp: str,
) -> dict[str, Any]:
    with bench.fresh_backend(backend, "policy", args, machine) as (data_dir, database_url):
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
        bench.log(f"{backend}: loading {world.resources:,} resources (in process)")
        info["load"] = asyncio.run(_load_into(data_dir, database_url, world))
        bench.log(f"{backend}: loaded in {info['load']['seconds']} s")
        if backend == "postgresql":
            bench.stored_rows(backend, data_dir, database_url, "ANALYZE")
        info["pairs"] = [run_pair(setup, world, w, gen, args, stamp) for w in args.workers]
        info["client"] = setup.get("client")
    return info


# ---------------------------------------------------------------------------------------
# tables


def micro_table(micro: dict[str, Any]) -> list[str]:
    lines = [
        f"Policy decisions in process (SQLite, warm caches; {WORLD_TEXT}), µs per call "
        "(CPU; wall where it differs by more than 10%), "
        f"{micro['settings']['iterations']:,} calls per step, median of "
        f"{micro['settings']['rounds']} slices):",
        "",
        "| decision / step | µs |",
        "|---|---|",
    ]
    for step in micro["steps"]:
        lines.append(f"| {step['step']} | {auth_bench._us(step)} |")
    met = "yes" if micro["meets_target"] else "**no**"
    lines.append("")
    lines.append(
        f"Typical read (health worker, Observation): **{micro['typical_read_cpu_us']:.1f} µs** "
        f"CPU per decision; target ≤ {MICRO_TARGET_US} µs: {met}. Audit record JSON "
        f"{micro['record_bytes']} bytes."
    )
    return lines


WORLD_TEXT = ""  # replaced in main: a description of the data


def http_table(infos: dict[str, Any]) -> list[str]:
    rows = [
        "| backend | workers | unaudited req/s (Organization) | audited req/s (Observation) "
        "| ratio | server CPU µs/request: unaudited → audited (difference) "
        "| server cores | p50 / p99 ms: unaudited · audited | errors | others' cores "
        "| target | met |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for backend, info in infos.items():
        for pair in info.get("pairs", []):
            s = pair.summary()
            runs_u = " · ".join(f"{r.throughput:,.0f}" for r in pair.unaudited.runs)
            runs_a = " · ".join(f"{r.throughput:,.0f}" for r in pair.audited.runs)
            db = s["difference_server_and_db_cpu_us"]
            db_text = f"; with its PostgreSQL backends' {db:+,.0f}" if db is not None else ""
            u, a = pair.unaudited, pair.audited
            rows.append(
                f"| {auth_bench._name(backend)} | {pair.workers} "
                f"| {s['unaudited_req_s']:,.0f} ({runs_u}) | {s['audited_req_s']:,.0f} ({runs_a}) "
                f"| **{s['ratio']:.2f}** "
                f"| {s['unaudited_server_cpu_us']:,.0f} → {s['audited_server_cpu_us']:,.0f} "
                f"({s['difference_server_cpu_us']:+,.0f}{db_text}) "
                f"| {u.median_server_cores:.2f} / {a.median_server_cores:.2f} "
                f"| {u.median_latency('50'):.1f} / {u.median_latency('99'):.1f} · "
                f"{a.median_latency('50'):.1f} / {a.median_latency('99'):.1f} "
                f"| {u.errors + a.errors} "
                f"| {u.median_other_cores:.2f} / {a.median_other_cores:.2f} "
                f"| ≥ {RATIO_TARGET:.0%} | {'yes' if s['meets_target'] else '**no**'} |"
            )
    return rows


def audit_table(infos: dict[str, Any]) -> list[str]:
    rows = [
        "| backend | workers | audit rows written per audited run | 200 responses | requests "
        "sent | rows = audited reads | audit rows/s (median) | group commit: mean batch "
        "| rows from unaudited runs |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for backend, info in infos.items():
        for pair in info.get("pairs", []):
            s = pair.summary()
            batch = f"{s['mean_batch']:.1f}" if s["mean_batch"] is not None else "not visible"
            written = " · ".join(f"{a['rows']:,}" for a in pair.audit)
            ok_200 = " · ".join(f"{a['responses_200']:,}" for a in pair.audit)
            sent = " · ".join(f"{a['sent']:,}" for a in pair.audit)
            rows.append(
                f"| {auth_bench._name(backend)} | {pair.workers} "
                f"| {written} | {ok_200} | {sent} "
                f"| {'yes' if pair.audit_ok else '**no**'} | {s['audit_rows_per_s']:,.0f} "
                f"| {batch} | {sum(pair.unaudited_rows)} |"
            )
    return rows


# ---------------------------------------------------------------------------------------
# the whole invocation


def _list(choices: Sequence[str]) -> Callable[[str], list[str]]:
    def parse(text: str) -> list[str]:
        values = [v.strip() for v in text.split(",") if v.strip()]
        bad = [v for v in values if v not in choices]
        if bad or not values:
            raise argparse.ArgumentTypeError(f"choose from {', '.join(choices)} (comma-separated)")
        return values

    return parse


def _ints(text: str) -> list[int]:
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError("comma-separated numbers") from None
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError("at least 1")
    return values


def main(argv: list[str] | None = None) -> int:
    global WORLD_TEXT
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backend", choices=[*BACKENDS, "both"], default="both")
    parser.add_argument(
        "--part", dest="parts", type=_list(PARTS), default=list(PARTS), help="micro,http"
    )
    parser.add_argument("--workers", type=_ints, default=[1], help="server workers, e.g. 1,2")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--duration", type=float, default=10, help="seconds per run")
    parser.add_argument("--persons", type=int, default=1000)
    parser.add_argument("--observations", type=int, default=5, help="Observations per person")
    parser.add_argument("--organisations", type=int, default=200)
    parser.add_argument("--micro-iterations", type=int, default=7000, help="calls per step")
    parser.add_argument("--threads", type=int, default=2, help="wrk -t")
    parser.add_argument("--connections", type=int, default=32, help="wrk -c")
    parser.add_argument(
        "--rate-guess", type=float, default=1500, help="req/s to generate proofs for (warm-up)"
    )
    parser.add_argument(
        "--headroom",
        type=float,
        default=1.4,
        help="generate this many times the requests the measured rate will use",
    )
    parser.add_argument("--quiet-wait", type=float, default=10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--keep-data", action="store_true")
    parser.add_argument("--pg-admin-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--pg-database", default="samhandling_policy_bench")
    args = parser.parse_args(argv)
    if args.runs < 1 or args.duration < 1 or args.persons < 1 or args.observations < 1:
        parser.error("--runs, --duration, --persons and --observations must be at least 1")
    if args.duration > 40 and "http" in args.parts:
        parser.error("--duration above 40 s: generated proofs would expire during the run")

    backends = list(BACKENDS) if args.backend == "both" else [args.backend]
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    bench.LOGS.mkdir(parents=True, exist_ok=True)
    machine = bench.machine_info()
    source = bench.source_version()
    source["policy_fingerprint"] = policy_fingerprint()
    started = time.perf_counter()
    bench.print_header(machine, source)
    print(f"policy and audit code: {source['policy_fingerprint']} ({fingerprint_text()})")
    world = make_world(args.persons, args.observations, args.organisations, args.seed)
    WORLD_TEXT = (
        f"{args.persons:,} persons with {args.observations} Observations each, "
        f"{len(world.organisations)} Organizations, one doctor in HPR"
    )
    bench.log(f"data: {WORLD_TEXT} ({world.resources:,} resources)")
    infos: dict[str, Any] = {}
    micro: dict[str, Any] | None = None
    if "http" in args.parts:
        gen = auth_bench.Generator()
        list(gen.pool.map(abs, range(gen.processes)))  # fork the workers now, before threads
        try:
            for backend in backends:
                infos[backend] = run_backend(backend, world, args, gen, machine, stamp)
        finally:
            gen.close()
    if "micro" in args.parts:
        bench.wait_for_quiet(args.quiet_wait)
        micro = run_micro(world, args)
    elapsed = time.perf_counter() - started

    result = {
        "started": stamp,
        "command": bench.command_line(),
        "machine": machine,
        "source": source,
        "settings": vars(args),
        "data": WORLD_TEXT,
        "micro": micro,
        "backends": {
            b: {
                **{k: v for k, v in info.items() if k != "pairs"},
                "pairs": [p.as_json() for p in info.get("pairs", [])],
            }
            for b, info in infos.items()
        },
        "elapsed_s": round(elapsed, 1),
    }
    out = bench.RESULTS / f"policy-{stamp}.json"
    out.write_bytes(
        orjson.dumps(
            result,
            option=orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS,
            default=str,
        )
    )

    print()
    print(f"command: `{bench.command_line()}`")
    print(
        f"machine: {machine['nproc']} CPUs ({machine['cpu_model']}), {machine['memory']}, "
        f"Linux {machine['kernel']}, Python {machine['python']}, SQLite {machine['sqlite']}, "
        f"PostgreSQL {machine['postgresql'] or '-'}, {machine['wrk']}"
    )
    print(f"{bench.code_line(source)}; policy and audit code {source['policy_fingerprint']}")
    if policy_fingerprint() != source["policy_fingerprint"]:
        now = policy_fingerprint()
        print(f"WARNING: the policy or audit code changed during the run (now {now})")
    print(f"data: {WORLD_TEXT}")
    for backend, info in infos.items():
        for pair in info.get("pairs", []):
            print(f"{backend}, {pair.workers} worker(s): `{pair.server}` (log {pair.log})")
        if info.get("client"):
            print(f"{backend}: client: `{info['client']['command']}`")
    if micro is not None:
        print()
        print("\n".join(micro_table(micro)))
    if infos:
        print(
            f"\nRead by id over HTTP as a signed-in doctor (DPoP token, security level 4, "
            f"`{BASIS_HEADER}` on both): audited `GET /fhir/Observation/{{id}}` vs unaudited "
            f"`GET /fhir/Organization/{{id}}`, alternating; median of {args.runs} runs of "
            f"{args.duration:g} s, wrk -t{args.threads} -c{args.connections}:\n"
        )
        print("\n".join(http_table(infos)))
        print(
            "\nAudit rows per audited run (`audit_record` counted before and after each run; "
            "rows must lie between the 200 responses and the requests sent):\n"
        )
        print("\n".join(audit_table(infos)))
        print(
            "\nThe audit log's write capacity (`AuditLog.record` alone, in process): "
            "bench/audit.py."
        )
    flagged = []
    noisy = 0
    for backend, info in infos.items():
        for pair in info.get("pairs", []):
            for series in (pair.audited, pair.unaudited):
                for r in series.runs:
                    if r.flagged:
                        flagged.append(
                            f"FLAGGED {backend} w{pair.workers} {series.workload}: "
                            f"{'; '.join(r.flagged)}"
                        )
                    if r.cpu.get("other_cores", 0) > bench.NOISY_CORES:
                        noisy += 1
    if noisy:
        print(f"\n{noisy} run(s) NOISY: other processes used more than {bench.NOISY_CORES} cores")
    for line in flagged:
        print(line)
    print(f"\nresults: {os.path.relpath(out)}  ({elapsed / 60:.1f} min)")
    return 1 if flagged else 0


def fingerprint_text() -> str:
    return "sha256 of " + ", ".join(f"src/samhandling/{p}" for p in POLICY_SOURCES)


if __name__ == "__main__":
    sys.exit(main())
