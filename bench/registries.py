#!/usr/bin/env python
"""Registries (grunndata) benchmark: the national registers' hot paths.

    python bench/registries.py [--backend sqlite|postgresql|both] [--part hpr,load,lookup,generate]
                               [--persons 10000] [--lookup-persons 100000] [--workers 1,2]
                               [--duration 10] [--runs 3] [--no-keep-data] [--reload]

The data is the synthetic register population, ``register_population(persons, seed)`` of
samhandling.synth.registers (``--seed``, default 42): persons in households with family
relations and GP relations, health personnel with approvals (some suspended, some expired),
enterprises, address-register entries. Four parts (the issue's targets in brackets):

* ``generate`` (no target): persons/s and resources/s of building the population and
  serialising every transaction Bundle of ``.bundles()`` with orjson. This is exactly what
  bench/synth_registers.py does, so it is run as a subprocess
  (``python bench/synth_registers.py --persons N --seed S``) for ``--persons`` and
  ``--lookup-persons``, and its output is parsed.
* ``load`` [10,000 persons with everything related in <= 60 s on SQLite]: on a fresh
  database, ``samhandling demo --persons N --seed S --patients 0 --data-dir D
  [--database-url U]`` as a subprocess, timed end to end (wall clock: start-up, migrations,
  generation, every Bundle through the engine's transaction processing and the registers'
  write checks, and whatever else the demo loads: the 50 care-provider resources, the
  terminology). Resources are counted in the ``resource`` table afterwards (by type). The
  loaded database is kept for ``hpr``.
* ``hpr`` [>= 20,000 checks/s in process]: ``--persons`` loaded (the ``load`` part's
  database, or kept data, or a new load; ANALYZE on PostgreSQL), opened in this process
  (uvloop) with the server's engine (``samhandling.app.configured_engine``:
  ``registries.configure`` adds the registers' checks and returns the ``HprRegister``).
  A mix of checks is drawn from the population's facts: 60% authorised numbers asked for
  a profession they hold (True), 10% authorised numbers asked for a profession they do
  not hold, 10% suspended, 10% expired (asked for any profession) and 10% numbers not in
  HPR (all False). First every distinct number is looked up once on the empty cache, each
  timed (the **cold miss**: µs of wall and CPU time per first lookup, by kind); then
  ``--runs`` runs of ``--hpr-checks`` checks (**warm**, cached: checks/s). Every answer is
  compared with the facts; one wrong answer (e.g. a suspended number answered True) stops
  the benchmark with exit status 1. ``--profile`` prints cProfile's top functions of one
  warm run and of a cold pass.
* ``lookup`` [person lookup by identifier over HTTP >= 3,000 req/s at 100,000 persons]:
  ``--lookup-persons`` loaded (kept between invocations, see below), then for each
  ``--workers`` count ``samhandling serve`` with ``SAMHANDLING_UNPROTECTED_API=1`` (token
  checks off, as bench/run.py and bench/search.py: the engine's numbers) and wrk
  (``-t2 -c--connections``, bench/lua/registries-lookup.lua) on
  ``GET /fhir/Patient?identifier=urn:oid:2.16.578.1.12.4.1.4.1%7C<fnr>`` of persons drawn
  uniformly from the population (at most 50,000 paths; ``|`` percent-encoded); a 3 s
  warm-up, then ``--runs`` runs of ``--duration`` s: req/s, p50/p95/p99, errors, and
  answers that did not hold exactly one match, and the CPU time per request of the server
  and of PostgreSQL. Before timing, 20 lookups are checked: 200, exactly one match, the
  expected Patient. Then the same **protected** (unless
  ``--no-protected``): ``samhandling serve`` without the variable, a client registered
  with ``samhandling client create --scope samhandling:grunndata/read``, and, as
  bench/auth.py measures protected reads, every request pre-signed just before the run
  (the access token plus a single-use ES256 DPoP proof per request, made by bench/auth.py's
  ``Generator`` in a process per core) and replayed by wrk from the file. The protected
  numbers include the registers' access policy (address protection, replaced numbers).

Kept data. Loading 100,000 persons takes minutes, so the databases of ``hpr`` and ``lookup``
are kept between invocations (``--keep-data``, the default) in
``bench/results/data/registries-<key>`` and, on PostgreSQL, the database
``samhandling_reg_p<persons>_s<seed>_<hash>`` (named in the directory's ``dataset.json``).
The key is (backend, persons, seed, fingerprint of src/samhandling/synth, fingerprint of
the backend's SQL migrations); kept data of another fingerprint is deleted. ``--reload``
loads afresh. The ``load`` part always loads into a fresh database. If the registers' code
(write checks, index views) changed since a kept database was loaded, the output says so:
use ``--reload`` then.

It prints the machine and the command, every run (with the CPU used by the server or this
process, wrk, PostgreSQL and everything else: ``NOISY`` when others used more than 0.25
cores), and at the end Markdown tables with the targets; everything also goes to
``bench/results/registries-<UTC time>.json``. Exit status 1 if an answer was wrong, a run
had errors, or a lookup did not find exactly one Patient.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import hashlib
import io
import json
import os
import pstats
import random
import re
import resource
import shlex
import shutil
import statistics
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent))
import auth as auth_bench  # bench/auth.py: pre-signed protected requests
import run as bench  # bench/run.py: servers, wrk, CPU accounting, machine
import search as search_bench  # bench/search.py: schema fingerprint, ANALYZE, reindex

PARTS = ("generate", "load", "hpr", "lookup")
HPR_TARGET = 20_000  # checks/s, warm, in process
LOAD_TARGET_S = 60.0  # 10,000 persons on SQLite
LOAD_TARGET_PERSONS = 10_000
LOOKUP_TARGET = 3_000  # req/s at 100,000 persons
LOOKUP_TARGET_PERSONS = 100_000
WRK_THREADS = 2
MAX_PATHS = 50_000
CHECKED_LOOKUPS = 20
LOAD_TIMEOUT_S = 3 * 3600
DATA = bench.RESULTS / "data"
SRC = bench.ROOT / "src" / "samhandling"
REGISTRIES_CODE = SRC / "services" / "registries"
READ_SCOPE = "samhandling:grunndata/read"
ORGNR = auth_bench.ORGNR
HPR_MIX = {  # kind -> share of the checks
    "authorised": 0.6,
    "other profession": 0.1,
    "suspended": 0.1,
    "expired": 0.1,
    "unknown": 0.1,
}
COLD_WARMUP = 50  # lookups of numbers outside the mix before the cold pass (caches, plans)


def log(message: str) -> None:
    bench.log(message)


def samhandling_exe() -> str:
    exe = Path(sys.executable).parent / "samhandling"
    return str(exe) if exe.exists() else "samhandling"


def code_fingerprint(folder: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(folder.glob("*.py")):
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


# ---------------------------------------------------------------------------------------
# kept data sets


@dataclass
class DataSet:
    """Where one (backend, persons, seed) register population is (or will be) loaded."""

    backend: str
    persons: int
    seed: int
    admin_url: str
    key: str = ""
    data_dir: Path = field(default_factory=Path)
    database: str | None = None  # PostgreSQL database name
    database_url: str | None = None

    def __post_init__(self) -> None:
        self.key = f"{self.backend}-p{self.persons}-s{self.seed}-{data_fingerprint(self.backend)}"
        self.data_dir = DATA / f"registries-{self.key}"
        if self.backend == "postgresql":
            short = hashlib.sha256(self.key.encode()).hexdigest()[:8]
            self.database = f"samhandling_reg_p{self.persons}_s{self.seed}_{short}"
            self.database_url = bench.pg_url(self.admin_url, self.database)

    @property
    def name(self) -> str:
        return f"{self.backend} {self.persons:,} persons"

    @property
    def marker(self) -> Path:
        return self.data_dir / "dataset.json"

    def stored(self) -> dict[str, int]:
        """Rows of the resource table by type."""
        rows = bench.stored_rows(
            self.backend,
            self.data_dir,
            self.database_url,
            "SELECT type, count(*) FROM resource GROUP BY type",
        )
        return {t: int(n) for t, n in sorted(rows)}

    def reusable(self) -> dict[str, Any] | None:
        """The marker of a complete earlier load whose database still holds what it loaded."""
        if not self.marker.exists():
            return None
        try:
            marker = json.loads(self.marker.read_text())
            if marker.get("key") != self.key:
                return None
            if self.backend == "sqlite" and not (self.data_dir / "samhandling.db").exists():
                return None
            stored = self.stored()
        except Exception as exc:  # a dropped database, a broken file: load again
            log(f"kept data {self.data_dir.name} not usable ({exc}); loading afresh")
            return None
        if sum(stored.values()) != marker["stored"]["resources"]:
            log(f"kept data {self.data_dir.name} changed since it was loaded; reloading")
            return None
        return marker

    def fresh(self, machine: dict[str, Any]) -> None:
        """An empty data directory (and PostgreSQL database)."""
        shutil.rmtree(self.data_dir, ignore_errors=True)
        self.data_dir.mkdir(parents=True)
        if self.database:
            machine["postgresql"] = asyncio.run(bench.pg_recreate(self.admin_url, self.database))

    def remove(self) -> None:
        if self.database:
            asyncio.run(bench.pg_drop(self.admin_url, self.database))
        shutil.rmtree(self.data_dir, ignore_errors=True)


def data_fingerprint(backend: str) -> str:
    return f"{bench.synth_fingerprint()}-{search_bench.schema_fingerprint(backend)}"


def remove_stale(backend: str, admin_url: str) -> None:
    """Kept data of another synth or schema fingerprint: no longer usable."""
    suffix = "-" + data_fingerprint(backend)
    for folder in DATA.glob(f"registries-{backend}-*"):
        if not folder.is_dir() or folder.name.endswith(suffix):
            continue
        database = None
        with contextlib.suppress(OSError, ValueError, KeyError):
            database = json.loads((folder / "dataset.json").read_text())["database"]
        log(f"removing stale kept data {folder.name}" + (f" ({database})" if database else ""))
        if database:
            with contextlib.suppress(Exception):
                asyncio.run(bench.pg_drop(admin_url, database))
        shutil.rmtree(folder, ignore_errors=True)


# ---------------------------------------------------------------------------------------
# CPU use of a stretch of time (in process, or a subprocess that has ended)


def cpu_snapshot() -> tuple[float, dict, resource.struct_rusage, float, float]:
    return (
        bench._cpu_busy_seconds(),
        bench._process_cpu(),
        resource.getrusage(resource.RUSAGE_CHILDREN),
        bench._cpu_busy_seconds(steal_only=True),
        time.process_time(),
    )


def cpu_used(before: tuple, after: tuple, seconds: float, children: bool) -> dict[str, Any]:
    """Cores used by this process (or, with ``children``, by the subprocesses that ended in
    between), PostgreSQL and everything else; ``noisy`` when others used > 0.25 cores."""
    busy = after[0] - before[0]
    # this process and its children are not "others" (top_other leaves them out)
    cpu = bench._cpu_breakdown(before[1], after[1], os.getpid(), busy, 0.0, seconds)
    mine = after[4] - before[4]
    if children:
        child = (after[2].ru_utime + after[2].ru_stime) - (before[2].ru_utime + before[2].ru_stime)
        own, counted = child, child + mine  # this process: the benchmark's own overhead
    else:
        own = counted = mine
    postgres = cpu["postgres_cores"] * seconds
    out = {
        "own_cores": round(own / seconds, 2),
        "postgres_cores": cpu["postgres_cores"],
        "other_cores": round(max(0.0, busy - counted - postgres) / seconds, 2),
        "steal_cores": round((after[3] - before[3]) / seconds, 2),
        "top_other": cpu["top_other"],
    }
    # /proc counts in clock ticks (10 ms): under a second, the split says little
    out["noisy"] = out["other_cores"] > bench.NOISY_CORES if seconds >= 1 else None
    return out


def cpu_note(cpu: dict[str, Any], own: str) -> str:
    text = f"cores: {own} {cpu['own_cores']}"
    if cpu["postgres_cores"]:
        text += f", postgres {cpu['postgres_cores']}"
    text += f", other {cpu['other_cores']}"
    if cpu.get("steal_cores"):
        text += f" (steal {cpu['steal_cores']})"
    if cpu["noisy"]:
        top = ", ".join(f"{n} {c}" for n, c in cpu["top_other"].items())
        text += f" ({top}) NOISY"
    elif cpu["noisy"] is None:
        text += " (under 1 s: too short to tell)"
    return text


# ---------------------------------------------------------------------------------------
# generate (bench/synth_registers.py)

_TOTAL = re.compile(
    r"total ([\d.]+) s: ([\d,]+) persons/s, ([\d,]+) resources/s \(([\d,]+) resources in "
    r"([\d,]+) Bundles, ([\d.,]+) MB JSON\)"
)
_BUILD = re.compile(r"build ([\d.]+) s, bundles \+ orjson\.dumps ([\d.]+) s")


def _number(text: str) -> float:
    return float(text.replace(",", ""))


def run_generate(persons: int, seed: int, quiet_wait: float) -> dict[str, Any]:
    argv = [sys.executable, str(bench.BENCH / "synth_registers.py")]
    argv += ["--persons", str(persons), "--seed", str(seed)]
    command = "python " + shlex.join([os.path.relpath(argv[1], bench.ROOT), *argv[2:]])
    bench.wait_for_quiet(quiet_wait)
    before = cpu_snapshot()
    started = time.perf_counter()
    out = subprocess.run(
        argv, capture_output=True, text=True, check=False, cwd=bench.ROOT, timeout=3600
    )
    seconds = time.perf_counter() - started
    cpu = cpu_used(before, cpu_snapshot(), seconds, children=True)
    total, build = _TOTAL.search(out.stdout), _BUILD.search(out.stdout)
    if out.returncode != 0 or total is None:
        raise RuntimeError(
            f"{command} failed or printed an unknown format ({out.returncode}):\n"
            f"{out.stdout}{out.stderr}"
        )
    result = {
        "persons": persons,
        "command": command,
        "seconds": _number(total.group(1)),
        "persons_per_s": _number(total.group(2)),
        "resources_per_s": _number(total.group(3)),
        "resources": int(_number(total.group(4))),
        "bundles": int(_number(total.group(5))),
        "json_mb": _number(total.group(6)),
        "build_s": _number(build.group(1)) if build else None,
        "serialise_s": _number(build.group(2)) if build else None,
        "process_wall_s": round(seconds, 2),
        "cpu": cpu,
        "output": out.stdout.strip().splitlines(),
    }
    log(
        f"generate {persons:,} persons: {result['seconds']} s, {result['persons_per_s']:,.0f} "
        f"persons/s, {result['resources_per_s']:,.0f} resources/s ({result['resources']:,} "
        f"resources, {result['json_mb']} MB JSON; {cpu_note(cpu, 'generator')})"
    )
    return result


# ---------------------------------------------------------------------------------------
# load (samhandling demo)


def demo_argv(dataset: DataSet) -> list[str]:
    argv = [samhandling_exe(), "demo", "--persons", str(dataset.persons)]
    argv += ["--seed", str(dataset.seed), "--patients", "0", "--data-dir", str(dataset.data_dir)]
    if dataset.database_url:
        argv += ["--database-url", dataset.database_url]
    return argv


_LOADER_TIME = re.compile(r"\d\s+(?:register\s+)?resources\s+in\s+([\d.]+)\s+s")


def load_demo(dataset: DataSet, stamp: str, quiet_wait: float) -> dict[str, Any]:
    """``samhandling demo`` into the (fresh) data set, timed end to end."""
    argv = demo_argv(dataset)
    log_path = bench.LOGS / f"{stamp}-registries-load-{dataset.backend}-p{dataset.persons}.log"
    log(f"{dataset.name}: loading: {shlex.join(argv)}")
    bench.wait_for_quiet(quiet_wait)
    before = cpu_snapshot()
    started = time.perf_counter()
    with open(log_path, "wb") as out:
        proc = subprocess.Popen(
            argv,
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=bench.ROOT,
            env={**os.environ, "COLUMNS": "200"},  # rich: no wrapped lines
        )
        # The loader's PostgreSQL connections end with it: their CPU time is read from /proc
        # every second while they live (the last reading counts).
        seen = dict(before[1])
        last_progress = started
        while True:
            try:
                proc.wait(timeout=1)
                break
            except subprocess.TimeoutExpired:
                seen.update(bench._process_cpu())
                now = time.perf_counter()
                if now - started > LOAD_TIMEOUT_S:
                    proc.kill()
                    proc.wait()
                    raise RuntimeError(
                        f"{dataset.name}: load not done in {LOAD_TIMEOUT_S} s"
                    ) from None
                if dataset.persons >= 50_000 and now - last_progress >= 30:  # long loads
                    last_progress = now
                    with contextlib.suppress(Exception):
                        rows = sum(dataset.stored().values())
                        log(f"{dataset.name}: {now - started:,.0f} s, {rows:,} resources so far")
    seconds = time.perf_counter() - started
    after = cpu_snapshot()
    seen.update(after[1])
    cpu = cpu_used(before, (after[0], seen, *after[2:]), seconds, children=True)
    text = log_path.read_text(errors="replace")
    if proc.returncode != 0:
        raise RuntimeError(f"{shlex.join(argv)} exited {proc.returncode}:\n{text[-3000:]}")
    stored = dataset.stored()
    total = sum(stored.values())
    loader = _LOADER_TIME.search(text)
    result = {
        "command": shlex.join(argv),
        "seconds": round(seconds, 1),
        "resources": total,
        "by_type": stored,
        "resources_per_s": round(total / seconds),
        "loader_reported_s": float(loader.group(1)) if loader else None,
        "cpu": cpu,
        "log": os.path.relpath(log_path, bench.ROOT),
        "loaded_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    log(
        f"{dataset.name}: loaded {total:,} resources in {seconds:,.1f} s "
        f"({result['resources_per_s']:,} resources/s; the loader's own timing of the register "
        f"Bundles: {result['loader_reported_s']} s; {cpu_note(cpu, 'loader')}); {stored}"
    )
    return result


def write_marker(dataset: DataSet, loaded: dict[str, Any]) -> dict[str, Any]:
    marker = {
        "key": dataset.key,
        "backend": dataset.backend,
        "persons": dataset.persons,
        "seed": dataset.seed,
        "database": dataset.database,
        "database_url": dataset.database_url,
        "registries_code": code_fingerprint(REGISTRIES_CODE),
        "load": loaded,
        "stored": {"resources": loaded["resources"], "by_type": loaded["by_type"]},
    }
    dataset.marker.write_text(json.dumps(marker, indent=2))
    return marker


def ensure_loaded(
    dataset: DataSet, args: argparse.Namespace, machine: dict[str, Any], stamp: str
) -> dict[str, Any]:
    """Kept data if usable (and not --reload), else a new load; the marker."""
    marker = None if args.reload else dataset.reusable()
    if marker is not None:
        log(
            f"{dataset.name}: reusing kept data {os.path.relpath(dataset.data_dir)} "
            f"({marker['stored']['resources']:,} resources, loaded {marker['load']['loaded_at']}"
            "; --reload to load afresh)"
        )
        if marker.get("registries_code") != code_fingerprint(REGISTRIES_CODE):
            log(
                f"{dataset.name}: the registers' code changed since this data was loaded "
                "(index views, write checks): use --reload if that matters"
            )
        if dataset.database:
            machine["postgresql"] = bench.stored_rows(
                dataset.backend, dataset.data_dir, dataset.database_url, "SHOW server_version"
            )[0][0]
        search_bench.finish_reindex(dataset)
        marker["reused"] = True
        return marker
    dataset.fresh(machine)
    loaded = load_demo(dataset, stamp, args.quiet_wait)
    marker = write_marker(dataset, loaded)
    marker["reused"] = False
    return marker


# ---------------------------------------------------------------------------------------
# hpr: HprRegister.is_authorised in process


@dataclass(frozen=True, slots=True)
class Check:
    hpr: str
    profession: str | None
    expected: bool
    kind: str


def hpr_checks(population: Any, seed: int) -> dict[str, list[Check]]:
    """Checks of every kind, with the answers the population's facts give."""
    rng = random.Random(f"bench.registries.hpr/{seed}")
    authorised: dict[str, frozenset[str]] = population.authorised_hpr_numbers
    professions = sorted({p for ps in authorised.values() for p in ps})
    known = {p.hpr for p in population.practitioners} | set(authorised)
    known |= set(population.suspended_hpr_numbers) | set(population.expired_hpr_numbers)
    out: dict[str, list[Check]] = {kind: [] for kind in HPR_MIX}
    for number, held in sorted(authorised.items()):
        for profession in sorted(held):
            out["authorised"].append(Check(number, profession, True, "authorised"))
        others = [p for p in professions if p not in held]
        if others:
            out["other profession"].append(
                Check(number, rng.choice(others), False, "other profession")
            )
    for number in sorted(population.suspended_hpr_numbers):
        out["suspended"].append(Check(number, None, False, "suspended"))
    for number in sorted(population.expired_hpr_numbers):
        out["expired"].append(Check(number, None, False, "expired"))
    unknown: set[str] = set()
    while len(unknown) < 1000 + COLD_WARMUP:
        number = str(rng.randrange(1_000_000, 1_000_000_000))
        if number not in known:
            unknown.add(number)
    ordered = sorted(unknown)
    rng.shuffle(ordered)
    out["unknown"] = [Check(n, "LE", False, "unknown") for n in ordered]
    return out


def hpr_sequence(checks: dict[str, list[Check]], count: int, seed: int) -> list[Check]:
    rng = random.Random(f"bench.registries.hpr-mix/{seed}")
    kinds = [k for k in HPR_MIX if checks[k]]
    weights = [HPR_MIX[k] for k in kinds]
    return [rng.choice(checks[kind]) for kind in rng.choices(kinds, weights, k=count)]


class WrongAnswer(Exception):
    pass


def _verify(check: Check, answer: bool, wrong: list[str]) -> None:
    if answer is not check.expected:
        wrong.append(
            f"is_authorised({check.hpr!r}, {check.profession!r}) answered {answer}, the "
            f"population's facts say {check.expected} ({check.kind})"
        )


def _percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def _profile_text(profiler: cProfile.Profile, sort: str, top: int = 18) -> str:
    stream = io.StringIO()
    stats = pstats.Stats(profiler, stream=stream)
    stats.strip_dirs().sort_stats(sort).print_stats(top)
    lines = stream.getvalue().splitlines()
    start = next((i for i, line in enumerate(lines) if "ncalls" in line), 0)
    head = [line for line in lines[:start] if "function calls" in line]
    return "\n".join(head + lines[start:]).rstrip()


async def measure_hpr(
    dataset: DataSet, population: Any, args: argparse.Namespace
) -> dict[str, Any]:
    from samhandling.app import configured_engine
    from samhandling.platform.fhir.storage import open_store
    from samhandling.services.registries.hpr import HprRegister
    from samhandling.settings import Settings

    settings = Settings(data_dir=dataset.data_dir, database_url=dataset.database_url)
    checks = hpr_checks(population, args.seed)
    log(
        f"{dataset.name} hpr: facts: {len(population.authorised_hpr_numbers):,} authorised, "
        f"{len(population.suspended_hpr_numbers):,} suspended, "
        f"{len(population.expired_hpr_numbers):,} expired HPR numbers; checks by kind "
        + ", ".join(f"{k} {len(v):,}" for k, v in checks.items())
    )
    for kind in ("authorised", "suspended", "expired"):
        if not checks[kind]:
            raise WrongAnswer(f"the population has no {kind} HPR numbers to check")
    warmup_numbers = checks["unknown"][:COLD_WARMUP]
    checks["unknown"] = checks["unknown"][COLD_WARMUP:]
    sequence = hpr_sequence(checks, args.hpr_checks, args.seed)
    wrong: list[str] = []
    result: dict[str, Any] = {
        "mix": HPR_MIX,
        "distinct": {k: len(v) for k, v in checks.items()},
        "checks_per_run": args.hpr_checks,
        "sequence_kinds": {k: sum(1 for c in sequence if c.kind == k) for k in HPR_MIX},
    }
    store = await open_store(settings.effective_database_url, pool_size=settings.pg_pool_size)
    try:
        engine, configured = await configured_engine(settings, store)
        hpr = configured["registries"].hpr
        for check in warmup_numbers:  # statement caches, plans, pages: not part of a miss
            _verify(check, await hpr.is_authorised(check.hpr, check.profession), wrong)

        # cold: every distinct number of the mix looked up once on the empty cache
        rng = random.Random(f"bench.registries.cold/{args.seed}")
        firsts: dict[str, Check] = {}
        for check in sequence:
            firsts.setdefault(check.hpr, check)
        cold = list(firsts.values())
        rng.shuffle(cold)
        bench.wait_for_quiet(args.quiet_wait)
        timings: dict[str, list[tuple[float, float]]] = {k: [] for k in HPR_MIX}
        before = cpu_snapshot()
        started = time.perf_counter()
        for check in cold:
            t0, c0 = time.perf_counter(), time.process_time()
            answer = await hpr.is_authorised(check.hpr, check.profession)
            timings[check.kind].append(
                ((time.perf_counter() - t0) * 1e6, (time.process_time() - c0) * 1e6)
            )
            _verify(check, answer, wrong)
        seconds = time.perf_counter() - started
        cold_cpu = cpu_used(before, cpu_snapshot(), seconds, children=False)
        if wrong:
            raise WrongAnswer("\n".join(wrong[:10]))
        every = [t for values in timings.values() for t in values]
        result["cold"] = {
            "lookups": len(every),
            "by_kind": {
                kind: {
                    "lookups": len(values),
                    "wall_us_median": round(statistics.median(w for w, _ in values), 1),
                    "wall_us_mean": round(statistics.fmean(w for w, _ in values), 1),
                    "wall_us_p95": round(_percentile([w for w, _ in values], 95), 1),
                    "cpu_us_median": round(statistics.median(c for _, c in values), 1),
                }
                for kind, values in timings.items()
                if values
            },
            "wall_us_mean": round(statistics.fmean(w for w, _ in every), 1),
            "wall_us_median": round(statistics.median(w for w, _ in every), 1),
            "cpu_us_median": round(statistics.median(c for _, c in every), 1),
            "cpu": cold_cpu,
        }
        log(
            f"{dataset.name} hpr cold: {len(every):,} first lookups, median "
            f"{result['cold']['wall_us_median']} µs wall / {result['cold']['cpu_us_median']} µs "
            f"CPU, mean {result['cold']['wall_us_mean']} µs ("
            + ", ".join(f"{k} {v['wall_us_median']}" for k, v in result["cold"]["by_kind"].items())
            + f" µs median; {cpu_note(cold_cpu, 'this process')})"
        )

        # warm: the mix, cached
        runs = []
        for n in range(args.runs):
            bench.wait_for_quiet(args.quiet_wait)
            before = cpu_snapshot()
            c0 = time.process_time()
            started = time.perf_counter()
            for check in sequence:
                if (await hpr.is_authorised(check.hpr, check.profession)) is not check.expected:
                    _verify(check, not check.expected, wrong)
            seconds = time.perf_counter() - started
            cpu_s = time.process_time() - c0
            cpu = cpu_used(before, cpu_snapshot(), seconds, children=False)
            if wrong:
                raise WrongAnswer("\n".join(wrong[:10]))
            run = {
                "checks": len(sequence),
                "seconds": round(seconds, 4),
                "checks_per_s": round(len(sequence) / seconds, 1),
                "us_per_check": round(seconds / len(sequence) * 1e6, 3),
                "cpu_us_per_check": round(cpu_s / len(sequence) * 1e6, 3),
                "cpu": cpu,
            }
            runs.append(run)
            log(
                f"{dataset.name} hpr warm run {n + 1}/{args.runs}: {run['checks_per_s']:,.0f} "
                f"checks/s ({run['us_per_check']} µs each, {run['cpu_us_per_check']} µs CPU; "
                f"{cpu_note(cpu, 'this process')})"
            )
        median = statistics.median(r["checks_per_s"] for r in runs)
        result["warm"] = {
            "runs": runs,
            "median_checks_per_s": median,
            "target": HPR_TARGET,
            "meets_target": median >= HPR_TARGET,
            "noisy": any(r["cpu"]["noisy"] for r in runs),
        }

        if args.profile:
            profiler = cProfile.Profile()
            profiler.enable()
            for check in sequence:
                await hpr.is_authorised(check.hpr, check.profession)
            profiler.disable()
            warm_text = _profile_text(profiler, "tottime")
            fresh = HprRegister(engine)  # an empty cache: every first lookup a miss
            profiler = cProfile.Profile()
            profiler.enable()
            for check in cold:
                await fresh.is_authorised(check.hpr, check.profession)
            profiler.disable()
            cold_text = _profile_text(profiler, "cumulative", 30)
            result["profile"] = {"warm_tottime": warm_text, "cold_cumulative": cold_text}
            print(f"\ncProfile {dataset.name} hpr, one warm run, by own time:\n{warm_text}")
            print(f"\ncProfile {dataset.name} hpr, cold pass, by cumulative time:\n{cold_text}")
    finally:
        await store.close()
    return result


def run_hpr(dataset: DataSet, population: Any, args: argparse.Namespace) -> dict[str, Any]:
    try:
        import uvloop

        loop_factory = uvloop.new_event_loop  # as the server runs
        loop_name = "uvloop"
    except ImportError:  # pragma: no cover
        loop_factory, loop_name = None, "asyncio"
    with asyncio.Runner(loop_factory=loop_factory) as runner:
        result = runner.run(measure_hpr(dataset, population, args))
    result["loop"] = loop_name
    return result


# ---------------------------------------------------------------------------------------
# lookup: person by identifier over HTTP


def write_lookup_paths(dataset: DataSet, population: Any, seed: int) -> tuple[Path, list]:
    """``path<TAB>patient id`` of persons with a fødselsnummer, shuffled (seeded)."""
    from samhandling.platform.identifiers import FNR_SYSTEM

    rng = random.Random(f"bench.registries.lookup/{seed}")
    persons = [p for p in population.persons if p.kind == "FNR"]
    rng.shuffle(persons)
    rows = [
        (f"/fhir/Patient?identifier={quote(f'{FNR_SYSTEM}|{p.pid}', safe=':/')}", p.id, p.pid)
        for p in persons[:MAX_PATHS]
    ]
    path = dataset.data_dir / "lookup-paths.tsv"
    path.write_text("".join(f"{p}\t{i}\n" for p, i, _ in rows))
    return path, rows


def get(url: str, headers: dict[str, str]) -> tuple[int, bytes, float]:
    request = urllib.request.Request(url, headers={"Accept": "application/fhir+json", **headers})
    started = time.perf_counter()
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            status, body = response.status, response.read()
    except urllib.error.HTTPError as exc:
        status, body = exc.code, exc.read()
    return status, body, (time.perf_counter() - started) * 1000


def judge_lookup(status: int, body: bytes, patient_id: str, fnr: str) -> str | None:
    """What is wrong with a lookup's answer (None: one match, the expected Patient)."""
    if status != 200:
        return f"status {status}: {body[:200].decode(errors='replace')}"
    bundle = orjson.loads(body)
    matches = [
        e["resource"] for e in bundle.get("entry", []) if e.get("search", {}).get("mode") == "match"
    ]
    if len(matches) != 1:
        return f"{len(matches)} matches, expected exactly one"
    found = matches[0]
    values = {i.get("value") for i in found.get("identifier", [])}
    if found.get("id") != patient_id or fnr not in values:
        return f"found Patient/{found.get('id')} {sorted(values)}, expected Patient/{patient_id}"
    return None


def check_lookups(
    port: int, rows: list, headers_for: Any = None, count: int = CHECKED_LOOKUPS
) -> list[dict[str, Any]]:
    out = []
    for path, patient_id, fnr in rows[:count]:
        headers = headers_for(path) if headers_for else {}
        status, body, ms = get(f"http://127.0.0.1:{port}{path}", headers)
        problem = judge_lookup(status, body, patient_id, fnr)
        out.append({"path": path, "status": status, "ms": round(ms, 1), "problem": problem})
    bad = [r for r in out if r["problem"]]
    log(
        f"checked {len(out)} lookups: {len(out) - len(bad)} found exactly the expected Patient"
        + (f"; PROBLEMS: {bad[:3]}" if bad else f" (e.g. {out[0]['path']})")
    )
    if bad:
        raise WrongAnswer(f"lookup check failed: {bad[:3]}")
    return out


def not_one(run: bench.WrkRun) -> int:
    return int(run.report.get("extra", {}).get("not_one", 0))


def flag_not_one(series: bench.Series) -> None:
    for run in series.runs:
        if not_one(run):
            run.flagged.append(f"{not_one(run)} answers without exactly one match")


def register_client(dataset: DataSet, issuer: str) -> dict[str, Any]:
    """``samhandling client create`` with the grunndata read scope."""
    argv = [samhandling_exe(), "client", "create", "--name", "bench-registries"]
    argv += ["--scope", READ_SCOPE, "--orgnr", ORGNR, "--alg", "ES256", "--json"]
    argv += ["--data-dir", str(dataset.data_dir)]
    if dataset.database_url:
        argv += ["--database-url", dataset.database_url]
    argv += ["--public-url", issuer]
    out = subprocess.run(
        argv, capture_output=True, text=True, check=False, cwd=bench.ROOT, timeout=120
    )
    if out.returncode != 0:
        raise RuntimeError(f"client create failed ({out.returncode}): {out.stdout}{out.stderr}")
    config = orjson.loads(out.stdout)
    config["command"] = shlex.join(argv)
    return config


def log_run(name: str, run: bench.WrkRun) -> None:
    lat = run.latency_ms
    flag = f"  FLAGGED: {'; '.join(run.flagged)}" if run.flagged else ""
    log(
        f"{name}: {run.requests_per_s:,.0f} req/s (p50 {lat['50']:.1f} ms, p95 {lat['95']:.1f} "
        f"ms, p99 {lat['99']:.1f} ms, {run.errors} errors, {not_one(run)} not one match; "
        f"{bench.cpu_text(run.cpu)}){flag}"
    )


def lookup_unprotected(
    dataset: DataSet,
    workers: int,
    paths_file: Path,
    rows: list,
    args: argparse.Namespace,
    stamp: str,
) -> dict[str, Any]:
    port = bench.free_port()
    argv = bench.samhandling_argv(port, dataset.data_dir, dataset.database_url, workers)
    command = bench.env_command(bench.UNPROTECTED_ENV, argv)
    log(f"{dataset.name} lookup, {workers} worker(s), unprotected: {command}")
    log_path = bench.LOGS / f"{stamp}-registries-{dataset.backend}-w{workers}-open.log"
    with bench.Server(argv, port, log_path, env=bench.UNPROTECTED_ENV) as server:
        checked = check_lookups(port, rows)
        series = bench.measure(
            f"{dataset.name} lookup w{workers} unprotected",
            dataset.backend,
            f"lookup w{workers}",
            port,
            "registries-lookup.lua",
            ["plain", str(paths_file)],
            args,
            WRK_THREADS,
            args.connections,
            server.pid,
            args.profile,
            f"{stamp}-registries-w{workers}",
        )
    flag_not_one(series)
    return {"server_command": command, "check": checked, "series": series}


def lookup_protected(
    dataset: DataSet,
    workers: int,
    rows: list,
    estimate: float,
    generator: auth_bench.Generator,
    args: argparse.Namespace,
    stamp: str,
) -> dict[str, Any]:
    from samhandling.services.trust.tokentool import DpopKey, TokenClient

    port = bench.free_port()
    argv = bench.samhandling_argv(port, dataset.data_dir, dataset.database_url, workers)
    command = shlex.join(argv)
    log(f"{dataset.name} lookup, {workers} worker(s), protected: {command}")
    log_path = bench.LOGS / f"{stamp}-registries-{dataset.backend}-w{workers}-protected.log"
    threads, connections = WRK_THREADS, args.connections
    series = bench.Series(
        dataset.backend, f"lookup w{workers} protected", "req/s", threads, connections
    )
    proofs = dataset.data_dir / f"lookup-proofs-w{workers}.tsv"
    rng = random.Random(f"bench.registries.protected/{args.seed}")
    paths = [path for path, _, _ in rows]
    generated: list[dict[str, Any]] = []
    with bench.Server(argv, port, log_path) as server:
        issuer = f"http://127.0.0.1:{port}"
        client = register_client(dataset, issuer)
        dpop = DpopKey()  # ES256
        tool = TokenClient(issuer, client["client_id"], client["jwk"], dpop=dpop)
        token = tool.client_credentials(READ_SCOPE).access_token

        def signed(path: str) -> dict[str, str]:
            proof = dpop.proof("GET", issuer + path, access_token=token)
            return {"Authorization": f"DPoP {token}", "DPoP": proof}

        checked = check_lookups(port, rows, signed)

        def generate(count: int) -> dict[str, Any]:
            # a new token per run (10 min lifetime); each worker verifies it once, then caches
            fresh = tool.client_credentials(READ_SCOPE).access_token
            chosen = [rng.choice(paths) for _ in range(count)]
            return generator.read_file(proofs, issuer, dpop.jwk, fresh, chosen)

        def wrk(seconds: float) -> bench.WrkRun:
            run = bench.run_wrk(
                "registries-lookup.lua",
                port,
                ["signed", str(proofs), str(threads)],
                threads,
                connections,
                seconds,
                "requests",
                server.pid,
            )
            if auth_bench.exhausted(run):
                run.flagged.append(f"ran out of signed requests ({auth_bench.exhausted(run)})")
            if not_one(run):
                run.flagged.append(f"{not_one(run)} answers without exactly one match")
            return run

        name = f"{dataset.name} lookup w{workers} protected"
        warmup = min(bench.WARMUP_SECONDS, args.duration)
        run, _ = auth_bench.generated_run(
            f"{name} warm-up",
            generate,
            auth_bench.lines_for(estimate, warmup, args.headroom),
            wrk,
            warmup,
            0,
        )
        log_run(f"{name} warm-up ({warmup:g} s)", run)
        estimate = max(run.requests_per_s, 1.0)
        for n in range(args.runs):
            run, made = auth_bench.generated_run(
                name,
                generate,
                auth_bench.lines_for(estimate, args.duration, args.headroom),
                wrk,
                args.duration,
                args.quiet_wait,
            )
            series.runs.append(run)
            generated.append(made)
            estimate = max(estimate, run.requests_per_s)
            log_run(f"{name} run {n + 1}/{args.runs} ({made['lines']:,} signed requests)", run)
    return {
        "server_command": command,
        "client_command": client["command"],
        "check": checked,
        "series": series,
        "generated": generated,
    }


def run_lookup(
    dataset: DataSet,
    population: Any,
    args: argparse.Namespace,
    generator: auth_bench.Generator | None,
    stamp: str,
) -> dict[str, Any]:
    search_bench.analyze(dataset)
    paths_file, rows = write_lookup_paths(dataset, population, args.seed)
    log(f"{dataset.name}: {len(rows):,} lookup paths in {os.path.relpath(paths_file)}")
    result: dict[str, Any] = {"paths": len(rows), "paths_file": str(paths_file), "by_workers": {}}
    for workers in args.workers:
        found: dict[str, Any] = {
            "unprotected": lookup_unprotected(dataset, workers, paths_file, rows, args, stamp)
        }
        if generator is not None:
            estimate = found["unprotected"]["series"].median
            found["protected"] = lookup_protected(
                dataset, workers, rows, estimate, generator, args, stamp
            )
        result["by_workers"][workers] = found
    return result


# ---------------------------------------------------------------------------------------
# report


def cpu_per_request(series: bench.Series, key: str) -> float:
    """Median over the runs of the CPU time (µs) per request of the server or PostgreSQL."""
    values = [
        r.cpu.get(key, 0) / r.requests_per_s * 1e6 if r.requests_per_s else 0.0 for r in series.runs
    ]
    return round(statistics.median(values), 1)


def series_row(series: bench.Series) -> dict[str, Any]:
    return {
        "median_req_s": round(series.median, 1),
        "runs": [round(r.requests_per_s, 1) for r in series.runs],
        "p50_ms": round(series.median_latency("50"), 2),
        "p95_ms": round(series.median_latency("95"), 2),
        "p99_ms": round(series.median_latency("99"), 2),
        "errors": series.errors,
        "not_one": sum(not_one(r) for r in series.runs),
        "server_cores": series.median_server_cores,
        "server_cpu_us": cpu_per_request(series, "server_cores"),
        "postgres_cpu_us": cpu_per_request(series, "postgres_cores"),
        "other_cores": series.median_other_cores,
        "noisy": any(r.cpu.get("other_cores", 0) > bench.NOISY_CORES for r in series.runs),
        "flagged": [f for r in series.runs for f in r.flagged],
    }


def yes_no(ok: bool | None) -> str:
    return "" if ok is None else ("yes" if ok else "**no**")


def report_tables(results: dict[str, Any], args: argparse.Namespace) -> str:
    lines: list[str] = []
    generate = results.get("generate") or []
    if generate:
        lines += [
            "\n#### generate (register_population(N, seed).bundles() + orjson.dumps)\n",
            "| persons | resources | Bundles | MB JSON | build s | Bundles + dumps s | total s | "
            "persons/s | resources/s | others' cores |",
            "|---|---|---|---|---|---|---|---|---|---|",
        ]
        for g in generate:
            lines.append(
                f"| {g['persons']:,} | {g['resources']:,} | {g['bundles']:,} | {g['json_mb']} | "
                f"{g['build_s']} | {g['serialise_s']} | {g['seconds']} | "
                f"{g['persons_per_s']:,.0f} | {g['resources_per_s']:,.0f} | "
                f"{g['cpu']['other_cores']}{' NOISY' if g['cpu']['noisy'] else ''} |"
            )
    backends = results["backends"]
    loads = [(b, r["load"]) for b, r in backends.items() if r.get("load")]
    if loads:
        lines += [
            "\n#### load (`samhandling demo --persons N --patients 0`, wall clock)\n",
            "| backend | persons | resources | seconds | resources/s | loader's own s | "
            "loader / postgres / others' cores | target | met |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
        for backend, load in loads:
            target, ok = "", None
            if backend == "sqlite" and load["persons"] == LOAD_TARGET_PERSONS:
                target, ok = f"<= {LOAD_TARGET_S:g} s", load["seconds"] <= LOAD_TARGET_S
            cpu = load["cpu"]
            lines.append(
                f"| {backend} | {load['persons']:,} | {load['resources']:,} | "
                f"{load['seconds']:,.1f} | {load['resources_per_s']:,} | "
                f"{load['loader_reported_s']} | {cpu['own_cores']} / {cpu['postgres_cores']} / "
                f"{cpu['other_cores']}{' NOISY' if cpu['noisy'] else ''} | {target} | "
                f"{yes_no(ok)} |"
            )
    hprs = [(b, r["hpr"]) for b, r in backends.items() if r.get("hpr")]
    if hprs:
        lines += [
            "\n#### hpr (`HprRegister.is_authorised` in process)\n",
            "| backend | persons | warm checks/s (median) | runs | µs / check (CPU) | "
            "cold miss µs median (mean; CPU median) | found / not found µs median | target | met |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
        for backend, h in hprs:
            warm, cold = h["warm"], h["cold"]
            median_run = sorted(warm["runs"], key=lambda r: r["checks_per_s"])[
                len(warm["runs"]) // 2
            ]
            found = cold["by_kind"].get("authorised", {}).get("wall_us_median")
            missing = cold["by_kind"].get("unknown", {}).get("wall_us_median")
            runs = " · ".join(f"{r['checks_per_s']:,.0f}" for r in warm["runs"])
            lines.append(
                f"| {backend} | {h['persons']:,} | **{warm['median_checks_per_s']:,.0f}** | "
                f"{runs} | {median_run['us_per_check']} ({median_run['cpu_us_per_check']}) | "
                f"{cold['wall_us_median']} ({cold['wall_us_mean']}; {cold['cpu_us_median']}) | "
                f"{found} / {missing} | >= {HPR_TARGET:,} | {yes_no(warm['meets_target'])}"
                f"{' (NOISY)' if warm['noisy'] else ''} |"
            )
    lookups = [(b, r["lookup"]) for b, r in backends.items() if r.get("lookup")]
    if lookups:
        lines += [
            "\n#### lookup (`GET /fhir/Patient?identifier=<fnr system>|<fnr>`, "
            f"wrk -t{WRK_THREADS} -c{args.connections}, median of {args.runs} × "
            f"{args.duration:g} s)\n",
            "| backend | persons | workers | token checks | req/s (median) | runs | p50 / p95 / "
            "p99 ms | errors | not one match | server cores | CPU µs / request: server "
            "(PostgreSQL) | target | met |",
            "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
        ]
        for backend, lk in lookups:
            for workers, found in lk["by_workers"].items():
                for which in ("unprotected", "protected"):
                    if which not in found:
                        continue
                    row = found[which]["row"]
                    target, ok = "", None
                    if which == "unprotected" and lk["persons"] >= LOOKUP_TARGET_PERSONS:
                        target = f">= {LOOKUP_TARGET:,}"
                        ok = row["median_req_s"] >= LOOKUP_TARGET and not row["flagged"]
                    runs = " · ".join(f"{r:,.0f}" for r in row["runs"])
                    label = "off (UNPROTECTED_API)" if which == "unprotected" else "DPoP ES256"
                    lines.append(
                        f"| {backend} | {lk['persons']:,} | {workers} | {label} | "
                        f"**{row['median_req_s']:,.0f}** | {runs} | {row['p50_ms']} / "
                        f"{row['p95_ms']} / {row['p99_ms']} | {row['errors']} | "
                        f"{row['not_one']} | {row['server_cores']} | {row['server_cpu_us']}"
                        + (f" ({row['postgres_cpu_us']})" if backend == "postgresql" else "")
                        + f" | {target} | {yes_no(ok)}"
                        f"{' (NOISY)' if row['noisy'] else ''} |"
                    )
    return "\n".join(lines)


def jsonable(value: Any) -> Any:
    if isinstance(value, bench.Series):
        return value.as_json()
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    return value


# ---------------------------------------------------------------------------------------
# the whole invocation


def parse_parts(text: str) -> list[str]:
    parts = [p.strip() for p in text.split(",") if p.strip()]
    unknown = set(parts) - set(PARTS)
    if unknown or not parts:
        raise argparse.ArgumentTypeError(f"--part takes {','.join(PARTS)}, got {text!r}")
    return [p for p in PARTS if p in parts]


def parse_counts(text: str) -> list[int]:
    try:
        counts = [int(x) for x in text.split(",") if x.strip()]
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"bad list {text!r}") from exc
    if not counts or min(counts) < 1:
        raise argparse.ArgumentTypeError(f"bad list {text!r}")
    return counts


def run_backend(
    backend: str,
    args: argparse.Namespace,
    populations: dict[int, Any],
    generator: auth_bench.Generator | None,
    machine: dict[str, Any],
    stamp: str,
) -> dict[str, Any]:
    remove_stale(backend, args.pg_admin_url)
    out: dict[str, Any] = {}
    small = DataSet(backend, args.persons, args.seed, args.pg_admin_url)
    large = DataSet(backend, args.lookup_persons, args.seed, args.pg_admin_url)
    if "load" in args.part:
        small.fresh(machine)
        loaded = load_demo(small, stamp, args.quiet_wait)
        loaded["persons"] = small.persons
        out["load"] = loaded
        write_marker(small, loaded)  # complete: hpr below (and later invocations) reuse it
    if "hpr" in args.part:
        marker = ensure_loaded(small, args, machine, stamp)
        search_bench.analyze(small)  # planner statistics after a bulk load (as for lookup)
        result = run_hpr(small, populations[small.persons], args)
        result["persons"] = small.persons
        result["data"] = {"reused": marker["reused"], "load": marker["load"]}
        out["hpr"] = result
    if "lookup" in args.part:
        marker = ensure_loaded(large, args, machine, stamp)
        result = run_lookup(large, populations[large.persons], args, generator, stamp)
        result["persons"] = large.persons
        result["data"] = {"reused": marker["reused"], "load": marker["load"]}
        for found in result["by_workers"].values():
            for which in ("unprotected", "protected"):
                if which in found:
                    found[which]["row"] = series_row(found[which]["series"])
        out["lookup"] = result
    if not args.keep_data:
        for dataset in (small, large):
            if dataset.data_dir.exists():
                log(f"{dataset.name}: removing the data (--no-keep-data)")
                dataset.remove()
    return out


def failures(results: dict[str, Any]) -> list[str]:
    out = []
    for backend, r in results["backends"].items():
        for workers, found in (r.get("lookup") or {}).get("by_workers", {}).items():
            for which in ("unprotected", "protected"):
                row = found.get(which, {}).get("row")
                if row and row["flagged"]:
                    out.append(f"{backend} lookup w{workers} {which}: {row['flagged'][:3]}")
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backend", choices=[*bench.BACKENDS, "both"], default="both")
    parser.add_argument(
        "--part", type=parse_parts, default=list(PARTS), help="hpr,load,lookup,generate"
    )
    parser.add_argument("--persons", type=int, default=10_000, help="load and hpr")
    parser.add_argument("--lookup-persons", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=42, help="the population's seed")
    parser.add_argument("--duration", type=float, default=10, help="seconds per wrk run")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument(
        "--workers", type=parse_counts, default=[1, 2], help="server workers for lookup: 1,2"
    )
    parser.add_argument("--connections", type=int, default=16, help="wrk connections (lookup)")
    parser.add_argument("--hpr-checks", type=int, default=1_000_000, help="checks per warm run")
    parser.add_argument(
        "--no-protected", action="store_true", help="lookup: skip the protected (DPoP) runs"
    )
    parser.add_argument(
        "--headroom", type=float, default=1.4, help="signed requests per run vs the rate so far"
    )
    parser.add_argument(
        "--keep-data",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="keep the loaded databases for the next invocation (default: keep)",
    )
    parser.add_argument("--reload", action="store_true", help="load afresh even if data is kept")
    parser.add_argument(
        "--profile",
        action="store_true",
        help="hpr: cProfile of a warm run and a cold pass; lookup: a py-spy run if installed",
    )
    parser.add_argument(
        "--quiet-wait",
        type=float,
        default=10,
        help="before each measurement, wait up to this many seconds for other processes",
    )
    parser.add_argument("--pg-admin-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    args = parser.parse_args(argv)
    if args.runs < 1 or args.duration < 1 or args.connections < WRK_THREADS:
        parser.error("--runs and --duration must be at least 1, --connections at least 2")
    if args.persons < 1 or args.lookup_persons < 1 or args.hpr_checks < 1:
        parser.error("--persons, --lookup-persons and --hpr-checks must be positive")
    if args.duration > 40 and "lookup" in args.part and not args.no_protected:
        parser.error("signed requests expire: --duration at most 40 (or --no-protected)")

    backends = list(bench.BACKENDS) if args.backend == "both" else [args.backend]
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    bench.LOGS.mkdir(parents=True, exist_ok=True)
    machine = bench.machine_info()
    source = bench.source_version()
    started = time.perf_counter()
    bench.print_header(machine, source)
    print(
        f"synth fingerprint {bench.synth_fingerprint()}, registries code fingerprint "
        f"{code_fingerprint(REGISTRIES_CODE)}"
    )

    from samhandling.synth.registers import register_population

    results: dict[str, Any] = {"backends": {}}
    if "generate" in args.part:
        sizes = sorted({args.persons, args.lookup_persons})
        results["generate"] = [run_generate(n, args.seed, args.quiet_wait) for n in sizes]
    populations: dict[int, Any] = {}
    for persons, parts in ((args.persons, ("hpr",)), (args.lookup_persons, ("lookup",))):
        if any(p in args.part for p in parts) and persons not in populations:
            populations[persons] = register_population(persons, args.seed)
    generator = None
    if "lookup" in args.part and not args.no_protected:
        generator = auth_bench.Generator()
    status = 0
    try:
        for backend in backends:
            results["backends"][backend] = run_backend(
                backend, args, populations, generator, machine, stamp
            )
    except WrongAnswer as exc:
        print(f"\nWRONG ANSWER: {exc}", file=sys.stderr)
        status = 1
    finally:
        if generator is not None:
            generator.close()
    elapsed = time.perf_counter() - started

    out = bench.RESULTS / f"registries-{stamp}.json"
    document = {
        "started": stamp,
        "command": bench.command_line(),
        "machine": machine,
        "source": source,
        "synth_fingerprint": bench.synth_fingerprint(),
        "registries_code": code_fingerprint(REGISTRIES_CODE),
        "settings": vars(args),
        "targets": {
            "hpr_checks_per_s": HPR_TARGET,
            "load_seconds_10000_persons_sqlite": LOAD_TARGET_S,
            "lookup_req_s_100000_persons": LOOKUP_TARGET,
        },
        "results": results,
        "elapsed_s": round(elapsed, 1),
    }
    out.write_bytes(orjson.dumps(jsonable(document), option=orjson.OPT_INDENT_2))

    print()
    print(f"command: {bench.command_line()}")
    print(
        f"machine: {machine['nproc']} CPUs ({machine['cpu_model']}), {machine['memory']}, "
        f"Python {machine['python']}, SQLite {machine['sqlite']}, PostgreSQL "
        f"{machine['postgresql'] or '-'}, {machine['wrk']}"
    )
    for backend, r in results["backends"].items():
        for part in ("hpr", "lookup"):
            if part in r:
                data = r[part]["data"]
                how = "kept from an earlier invocation" if data["reused"] else "loaded now"
                print(
                    f"{backend} {part} data: {r[part]['persons']:,} persons, "
                    f"{data['load']['resources']:,} resources ({how}: "
                    f"{data['load']['seconds']:,} s, {data['load']['resources_per_s']:,} "
                    "resources/s)"
                )
        for workers, found in (r.get("lookup") or {}).get("by_workers", {}).items():
            print(f"{backend} lookup w{workers}: {found['unprotected']['server_command']}")
            if "protected" in found:
                print(
                    f"{backend} lookup w{workers} protected: {found['protected']['server_command']}"
                )
    if any(r.get("lookup") for r in results["backends"].values()):
        print(
            "lookup 'off (UNPROTECTED_API)' rows: servers with SAMHANDLING_UNPROTECTED_API=1, no "
            "token checks (engine numbers); 'DPoP ES256' rows: the normal server, pre-signed "
            "requests with an access token for samhandling:grunndata/read"
        )
    print(report_tables(results, args))
    problems = failures(results)
    for problem in problems:
        print(f"FLAGGED {problem}")
    busy = [
        f"{b} {part}"
        for b, r in results["backends"].items()
        for part, noisy in (
            ("load", (r.get("load") or {}).get("cpu", {}).get("noisy")),
            ("hpr", (r.get("hpr") or {}).get("warm", {}).get("noisy")),
        )
        if noisy
    ]
    if busy:
        print(f"the machine was BUSY (others > {bench.NOISY_CORES} cores) during: {busy}")
    print(bench.code_line(source))
    print(f"\nresults: {os.path.relpath(out)}  ({elapsed / 60:.1f} min)")
    return 1 if status or problems else 0


if __name__ == "__main__":
    sys.exit(main())
