#!/usr/bin/env python
"""Trust service benchmark: token issuance, and what token checks cost a FHIR API call.

    python bench/auth.py [--backend sqlite|postgresql|both] [--workers 1] [--duration 10]
                         [--runs 3] [--part token,overhead,micro] [--dpop-alg ES256,RS256]

For each backend it starts two ``samhandling serve`` processes on one fresh database (a new
data directory; PostgreSQL: a dropped and recreated database): the normal, protected one,
and one with ``SAMHANDLING_UNPROTECTED_API=1`` (the FHIR API without token checks). It loads
``--resources`` synthetic resources (bench/run.py's patient transaction Bundles, through the
unprotected server) and registers a client with ``samhandling client create`` (scopes
``samhandling:fhir/read`` and ``samhandling:fhir/write``, an ES256 key). Then three parts:

* ``token``, **token issuance**: ``POST /connect/token`` with grant ``client_credentials``,
  client authentication ``private_key_jwt`` and a DPoP proof carrying the server's nonce.
  Every request needs its own client assertion and DPoP proof (both single-use), and
  signing them costs client CPU on the same machine as the server. So just before each run
  the bodies and proofs are generated (``TokenClient.assertion`` and ``DpopKey.proof`` of
  samhandling.services.trust.tokentool, in a process per core, after fetching the current
  nonce) into a file that wrk's Lua (bench/lua/auth-token.lua) walks, one line per request,
  never twice. The run then costs wrk only the sending. Tokens/s counts 200 responses that
  hold a DPoP access token; every other status is an error. The generated lines are valid
  for about 60 s (nonce, proof ``iat``, assertion ``exp``), so ``--duration`` must stay
  well below that (the runner warns).
* ``overhead``, **verification overhead on an API call**: ``GET /fhir/Patient/{id}`` of
  random stored Patients on the protected server (``Authorization: DPoP <token>`` and a
  pre-generated single-use proof per request with ``ath`` for the token and a fresh ``iat``:
  bench/lua/auth-read.lua) and on the unprotected one (bench/lua/read.lua), runs
  alternating. Reported: req/s of both, their ratio, and the overhead per request:
  ``W/rate_protected - W/rate_unprotected`` (W server workers; with W workers saturating
  W cores that is the CPU cost of a request) and, steadier on a shared machine, the
  difference of the server's measured CPU time per request (plus PostgreSQL's, where the
  replay cache lives on PostgreSQL). Target: at most 150 µs per request. One access token
  per run (verified once per worker, then cached); each ``--dpop-alg`` gets its own runs.
* ``micro``, **in process** (no HTTP, servers stopped): `ApiGuard.check` on ASGI scope
  dicts with pre-generated proofs, split into the access token (cached, and its first use),
  DPoP proof verification and its steps (parse, key, signature, thumbprint, ``htu``,
  ``ath``, the replay cache insert), for ES256 and RS256 DPoP keys; and
  `AuthorizationServer.token` (the token endpoint without HTTP) with its steps. The replay
  cache's share is the difference to the same check with a no-op cache (`NoReplay`): in a
  tight loop of its own it looks cheaper than it is between signature checks. Timed with
  the process's CPU clock (``time.process_time``; other processes do not inflate it) and
  the wall clock (which includes waiting for PostgreSQL); median of 7 slices, the slices of
  all steps interleaved. "other" rows are totals minus the listed steps.

It prints the machine, the commands, a fingerprint of the auth code measured (the tree may
have uncommitted changes), every run (with the CPU use of the server, wrk,
PostgreSQL and everything else, as bench/run.py does; ``NOISY`` when other processes used
more than 0.25 cores) and Markdown tables of medians to paste into docs/benchmarks.md, and
writes everything as JSON to ``bench/results/auth-<UTC time>.json``. Exit status 1 if any
run had an error. ``--profile`` adds one protected run of each HTTP part under py-spy and
prints the server's top functions.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import hashlib
import math
import multiprocessing
import os
import random
import shlex
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from urllib.parse import parse_qsl, urlencode

import orjson

import run as bench  # bench/run.py: servers, data, wrk, CPU accounting, profiles

BACKENDS = bench.BACKENDS
PARTS = ("token", "overhead", "micro")
# reads of Patient (a register type) need the registers' read scope
SCOPES = ("samhandling:fhir/read", "samhandling:fhir/write", "samhandling:grunndata/read")
ORGNR = "912159523"
TOKEN_TARGET = 500  # tokens/s
OVERHEAD_TARGET_US = 150  # µs per request
LINES_VALID_S = 55  # generated proofs and assertions: nonce >= 60 s, proof iat 60 s
RESULTS = bench.RESULTS
SRC = bench.ROOT / "src" / "samhandling"
AUTH_SOURCES = ("platform/auth/*.py", "services/trust/*.py", "app.py")


def auth_fingerprint() -> str:
    """A hash of the code measured here (the tree may have uncommitted changes)."""
    digest = hashlib.sha256()
    for pattern in AUTH_SOURCES:
        for path in sorted(SRC.glob(pattern)):
            digest.update(str(path.relative_to(SRC)).encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


# ---------------------------------------------------------------------------------------
# generating single-use requests (in worker processes: signing is the client's CPU cost)


def _token_lines(job: tuple[str, str, dict, dict, str, str, int]) -> list[str]:
    """``<DPoP proof>\\t<form body>`` lines of client_credentials token requests."""
    from samhandling.services.trust.assertion import ASSERTION_TYPE
    from samhandling.services.trust.tokentool import DpopKey, TokenClient

    issuer, client_id, client_jwk, dpop_jwk, nonce, scope, count = job
    client = TokenClient(issuer, client_id, client_jwk, dpop=DpopKey(dpop_jwk), http=_NoHttp())
    endpoint = issuer + "/connect/token"
    lines = []
    for _ in range(count):
        # the longest lifetime the server accepts (60 s), not tokentool's 30 s: lines are
        # generated before the run and sent during it
        assertion = client.assertion(exp=int(time.time()) + 60)
        body = urlencode(
            {
                "grant_type": "client_credentials",
                "scope": scope,
                "client_id": client_id,
                "client_assertion_type": ASSERTION_TYPE,
                "client_assertion": assertion,
            }
        )
        lines.append(f"{client.dpop.proof('POST', endpoint, nonce=nonce)}\t{body}")
    return lines


def _read_lines(job: tuple[dict, str, str, list[str]]) -> list[str]:
    """``<path>\\t<DPoP proof>`` lines for GETs with ``token``."""
    from samhandling.services.trust.tokentool import DpopKey

    dpop_jwk, base, token, paths = job
    key = DpopKey(dpop_jwk)
    return [f"{path}\t{key.proof('GET', base + path, access_token=token)}" for path in paths]


class _NoHttp:
    """Stands in for httpx.Client where a TokenClient only signs."""

    def close(self) -> None:
        pass


def _chunks(count: int, parts: int) -> list[int]:
    size = -(-count // parts)
    return [min(size, count - i) for i in range(0, count, size)] if count else []


class Generator:
    """Signs requests in a process per core (forked once; idle between generations)."""

    def __init__(self) -> None:
        self.processes = os.cpu_count() or 2
        self.pool = ProcessPoolExecutor(
            self.processes, mp_context=multiprocessing.get_context("fork")
        )

    def close(self) -> None:
        self.pool.shutdown()

    def token_file(
        self, path: Path, issuer: str, client: dict, dpop_jwk: dict, nonce: str, count: int
    ) -> dict[str, Any]:
        started = time.perf_counter()
        scope = " ".join(SCOPES)
        jobs = [
            (issuer, client["client_id"], client["jwk"], dpop_jwk, nonce, scope, n)
            for n in _chunks(count, self.processes * 8)
        ]
        with open(path, "w") as out:
            for lines in self.pool.map(_token_lines, jobs):
                out.write("\n".join(lines) + "\n")
        return _generated(count, started)

    def read_file(
        self, path: Path, base: str, dpop_jwk: dict, token: str, paths: list[str]
    ) -> dict[str, Any]:
        started = time.perf_counter()
        size = -(-len(paths) // (self.processes * 8))
        jobs = [(dpop_jwk, base, token, paths[i : i + size]) for i in range(0, len(paths), size)]
        with open(path, "w") as out:
            out.write(token + "\n")
            for lines in self.pool.map(_read_lines, jobs):
                out.write("\n".join(lines) + "\n")
        return _generated(len(paths), started)


def _generated(count: int, started: float) -> dict[str, Any]:
    seconds = time.perf_counter() - started
    return {"lines": count, "seconds": round(seconds, 2), "per_s": round(count / seconds)}


# ---------------------------------------------------------------------------------------
# servers, client, data


@dataclass
class Setup:
    backend: str
    data_dir: Path
    database_url: str | None
    protected_port: int
    open_port: int
    protected_pid: int = 0
    open_pid: int = 0
    client: dict[str, Any] = field(default_factory=dict)
    patients_file: Path | None = None  # "Patient/<id>" lines
    patient_ids: list[str] = field(default_factory=list)

    @property
    def issuer(self) -> str:
        return f"http://127.0.0.1:{self.protected_port}"


def register_client(setup: Setup, alg: str) -> dict[str, Any]:
    """``samhandling client create --json`` against the servers' database."""
    exe = Path(sys.executable).parent / "samhandling"
    argv = [str(exe) if exe.exists() else "samhandling", "client", "create", "--name", "bench"]
    for scope in SCOPES:
        argv += ["--scope", scope]
    argv += ["--orgnr", ORGNR, "--alg", alg, "--json", "--data-dir", str(setup.data_dir)]
    if setup.database_url:
        argv += ["--database-url", setup.database_url]
    argv += ["--public-url", setup.issuer]
    out = subprocess.run(argv, capture_output=True, text=True, check=False, cwd=bench.ROOT)
    if out.returncode != 0:
        raise RuntimeError(f"client create failed ({out.returncode}): {out.stdout}{out.stderr}")
    config = orjson.loads(out.stdout)
    config["command"] = shlex.join(argv)
    return config


def write_patients(setup: Setup) -> None:
    deleted = "0" if setup.backend == "sqlite" else "false"
    rows = bench.stored_rows(
        setup.backend,
        setup.data_dir,
        setup.database_url,
        f"SELECT id FROM resource WHERE type = 'Patient' AND deleted = {deleted}",
    )
    setup.patient_ids = sorted(r[0] for r in rows)
    if not setup.patient_ids:
        raise RuntimeError("no stored Patients to read")
    setup.patients_file = setup.data_dir / "patient-ids.txt"
    setup.patients_file.write_text("".join(f"Patient/{i}\n" for i in setup.patient_ids))


# ---------------------------------------------------------------------------------------
# wrk runs with generated requests


def exhausted(run: bench.WrkRun) -> int:
    return int(run.report.get("ops", {}).get("exhausted", 0))


def log_run(name: str, run: bench.WrkRun, unit: str, gen: dict[str, Any] | None) -> None:
    lat = run.latency_ms
    made = f"; {gen['lines']:,} generated in {gen['seconds']} s" if gen else ""
    flag = f"  FLAGGED: {'; '.join(run.flagged)}" if run.flagged else ""
    bench.log(
        f"{name}: {run.throughput:,.0f} {unit} (p50 {lat['50']:.1f} ms, p95 {lat['95']:.1f} ms, "
        f"p99 {lat['99']:.1f} ms, {run.errors} errors; {bench.cpu_text(run.cpu)}{made}){flag}"
    )


def generated_run(
    name: str,
    generate: Callable[[int], dict[str, Any]],
    count: int,
    wrk: Callable[[float], bench.WrkRun],
    seconds: float,
    quiet_wait: float,
    before_wrk: Callable[[], None] | None = None,
) -> tuple[bench.WrkRun, dict[str, Any]]:
    """Generate ``count`` single-use requests, then run wrk over them; if wrk ran out of
    them (a rate above the estimate), once more with twice as many. ``before_wrk`` (the
    profiler's start) is called after generating, just before wrk."""
    for attempt in range(2):
        gen = generate(count)
        if gen["seconds"] + seconds * 0.25 > LINES_VALID_S:
            bench.log(
                f"{name}: generating took {gen['seconds']} s; the first lines may be too old by "
                "the time they are sent (lower --duration)"
            )
        bench.wait_for_quiet(quiet_wait)
        if before_wrk is not None:
            before_wrk()
        run = wrk(seconds)
        gen["exhausted"] = exhausted(run)
        if not gen["exhausted"] or attempt == 1:
            return run, gen
        bench.log(f"{name}: used up all {count:,} generated requests; again with {2 * count:,}")
        count *= 2
    raise AssertionError


def token_throughput(run: bench.WrkRun) -> None:
    """Tokens/s: 200 responses with a DPoP token (auth-token.lua counts them)."""
    run.throughput = run.report["extra"].get("tokens", 0) / run.seconds
    if exhausted(run):
        run.flagged.append(f"ran out of generated requests ({exhausted(run)} not sent)")


def run_token(setup: Setup, gen: Generator, args: argparse.Namespace, stamp: str) -> dict[str, Any]:
    """Token issuance: warm-up, then ``--runs`` runs of fresh generated requests."""
    from samhandling.services.trust.tokentool import DpopKey, TokenClient

    client = setup.client
    dpop = DpopKey()  # ES256, as tokentool's clients have
    tool = TokenClient(setup.issuer, client["client_id"], client["jwk"], dpop=dpop)
    threads, connections = 1, args.token_connections
    series = bench.Series(setup.backend, "token", "tokens/s", threads, connections)
    path = setup.data_dir / "token-requests.tsv"
    name = f"{setup.backend} token"

    def generate(count: int) -> dict[str, Any]:
        tool.client_credentials(" ".join(SCOPES))  # the current nonce (in the response)
        assert tool.nonce
        return gen.token_file(path, setup.issuer, client, dpop.jwk, tool.nonce, count)

    def wrk(seconds: float) -> bench.WrkRun:
        run = bench.run_wrk(
            "auth-token.lua",
            setup.protected_port,
            [str(path), str(threads)],
            threads,
            connections,
            seconds,
            "requests",
            setup.protected_pid,
        )
        token_throughput(run)
        return run

    estimate = float(args.token_rate_guess)
    warmup = min(bench.WARMUP_SECONDS, args.duration)
    runs_info = []
    run, made = generated_run(
        f"{name} warm-up",
        generate,
        lines_for(estimate, warmup, args.headroom),
        wrk,
        warmup,
        0,
    )
    log_run(f"{name} warm-up ({warmup:g} s)", run, "tokens/s", made)
    estimate = run.throughput
    for n in range(args.runs):
        run, made = generated_run(
            name,
            generate,
            lines_for(estimate, args.duration, args.headroom),
            wrk,
            args.duration,
            args.quiet_wait,
        )
        series.runs.append(run)
        runs_info.append(made)
        estimate = max(estimate, run.throughput)
        log_run(f"{name} run {n + 1}/{args.runs}", run, "tokens/s", made)
    result: dict[str, Any] = {"series": series, "generated": runs_info}
    if args.profile:
        result["profile"] = profiled(
            f"{setup.backend} token",
            setup.protected_pid,
            lambda hook: generated_run(
                name,
                generate,
                lines_for(estimate, args.duration, args.headroom),
                wrk,
                args.duration,
                args.quiet_wait,
                hook,
            )[0],
            args.duration,
            stamp,
        )
    return result


def lines_for(rate: float, seconds: float, headroom: float) -> int:
    return math.ceil(max(rate, 50) * seconds * headroom) + 200


def profiled(
    title: str,
    pid: int,
    work: Callable[[Callable[[], None]], bench.WrkRun],
    seconds: float,
    stamp: str,
) -> dict[str, Any] | None:
    """One more run under py-spy (started by ``work``'s hook once the requests are
    generated: generating is the client's work, not the server's); prints the summary."""
    out = RESULTS / "profiles" / f"{stamp}-auth-{title.replace(' ', '-')}.collapsed.txt"
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
    summary = bench.summarize_profile(out)
    bench.print_profile(
        f"{title} ({run.throughput:,.0f}/s while profiled; {os.path.relpath(out)})",
        summary,
        run.seconds,
    )
    return {"file": os.path.relpath(out, bench.ROOT), **summary}


@dataclass
class Overhead:
    """Protected and unprotected read-by-id series for one DPoP key algorithm."""

    backend: str
    alg: str
    workers: int
    protected: bench.Series
    unprotected: bench.Series
    generated: list[dict[str, Any]] = field(default_factory=list)
    profile: dict[str, Any] | None = None

    @staticmethod
    def _cpu_us(series: bench.Series, with_db: bool) -> float:
        """Median CPU time per request (server, plus PostgreSQL with ``with_db``), µs."""
        values = []
        for r in series.runs:
            cores = r.cpu.get("server_cores", 0) + (
                r.cpu.get("postgres_cores", 0) if with_db else 0
            )
            values.append(cores / r.requests_per_s * 1e6 if r.requests_per_s else 0.0)
        return statistics.median(values)

    def summary(self) -> dict[str, Any]:
        rate_p, rate_u = self.protected.median, self.unprotected.median
        w = self.workers
        per_worker = (w / rate_p - w / rate_u) * 1e6
        cpu = self._cpu_us(self.protected, False) - self._cpu_us(self.unprotected, False)
        out = {
            "backend": self.backend,
            "dpop_alg": self.alg,
            "workers": w,
            "unprotected_req_s": round(rate_u, 1),
            "protected_req_s": round(rate_p, 1),
            "ratio": round(rate_p / rate_u, 3),
            "overhead_us_per_request": round(per_worker, 1),
            "overhead_server_cpu_us": round(cpu, 1),
            "unprotected_server_cpu_us": round(self._cpu_us(self.unprotected, False), 1),
            "protected_server_cpu_us": round(self._cpu_us(self.protected, False), 1),
            "overhead_server_and_db_cpu_us": None,
            "target_us": OVERHEAD_TARGET_US,
            "meets_target": per_worker <= OVERHEAD_TARGET_US,
        }
        if self.backend == "postgresql":
            out["overhead_server_and_db_cpu_us"] = round(
                self._cpu_us(self.protected, True) - self._cpu_us(self.unprotected, True), 1
            )
        return out

    def as_json(self) -> dict[str, Any]:
        return {
            **self.summary(),
            "protected": self.protected.as_json(),
            "unprotected": self.unprotected.as_json(),
            "generated": self.generated,
            "profile": self.profile,
        }


def run_overhead(
    setup: Setup, alg: str, gen: Generator, args: argparse.Namespace, stamp: str
) -> Overhead:
    """Read by id, protected and unprotected, alternating."""
    from samhandling.platform.auth import jose
    from samhandling.services.trust.tokentool import DpopKey, TokenClient

    assert setup.patients_file is not None
    client = setup.client
    dpop = DpopKey(jose.generate_jwk(alg, "dpop"))
    tool = TokenClient(setup.issuer, client["client_id"], client["jwk"], dpop=dpop)
    threads, connections = args.read_threads, args.read_connections
    protected = bench.Series(setup.backend, f"read+auth {alg}", "req/s", threads, connections)
    unprotected = bench.Series(setup.backend, "read", "req/s", threads, connections)
    result = Overhead(setup.backend, alg, args.workers, protected, unprotected)
    path = setup.data_dir / f"read-proofs-{alg}.tsv"
    rng = random.Random(args.seed)
    name = f"{setup.backend} read"

    def generate(count: int) -> dict[str, Any]:
        # a new token per run (10 min lifetime); each worker verifies it once, then caches it
        token = tool.client_credentials("samhandling:fhir/read").access_token
        paths = [f"/fhir/Patient/{rng.choice(setup.patient_ids)}" for _ in range(count)]
        return gen.read_file(path, setup.issuer, dpop.jwk, token, paths)

    def wrk_protected(seconds: float) -> bench.WrkRun:
        run = bench.run_wrk(
            "auth-read.lua",
            setup.protected_port,
            [str(path), str(threads)],
            threads,
            connections,
            seconds,
            "requests",
            setup.protected_pid,
        )
        if exhausted(run):
            run.flagged.append(f"ran out of generated proofs ({exhausted(run)} not sent)")
        return run

    def wrk_open(seconds: float) -> bench.WrkRun:
        return bench.run_wrk(
            "read.lua",
            setup.open_port,
            [str(setup.patients_file)],
            threads,
            connections,
            seconds,
            "requests",
            setup.open_pid,
        )

    def protected_run(
        seconds: float, record: bool, estimate: float, hook: Callable[[], None] | None = None
    ) -> bench.WrkRun:
        run, made = generated_run(
            f"{name} protected",
            generate,
            lines_for(estimate, seconds, args.headroom),
            wrk_protected,
            seconds,
            args.quiet_wait if record else 0,
            hook,
        )
        if record:
            result.generated.append(made)
        return run

    warmup = min(bench.WARMUP_SECONDS, args.duration)
    run = wrk_open(warmup)
    log_run(f"{name} unprotected warm-up ({warmup:g} s)", run, "req/s", None)
    # proofs for the protected runs: as many as the fastest protected run so far could use
    # (the first time, the unprotected rate), with --headroom
    run = protected_run(warmup, False, run.requests_per_s)
    log_run(f"{name} protected {alg} warm-up ({warmup:g} s)", run, "req/s", None)
    estimate = run.requests_per_s
    for n in range(args.runs):
        order = ("open", "protected") if n % 2 == 0 else ("protected", "open")
        for which in order:
            if which == "open":
                bench.wait_for_quiet(args.quiet_wait)
                run = wrk_open(args.duration)
                unprotected.runs.append(run)
                log_run(f"{name} unprotected run {n + 1}/{args.runs}", run, "req/s", None)
            else:
                run = protected_run(args.duration, True, estimate)
                protected.runs.append(run)
                made = result.generated[-1]
                log_run(f"{name} protected {alg} run {n + 1}/{args.runs}", run, "req/s", made)
                estimate = max(estimate, run.requests_per_s)
    if args.profile:
        result.profile = profiled(
            f"{setup.backend} read protected {alg}",
            setup.protected_pid,
            lambda hook: protected_run(args.duration, False, estimate, hook),
            args.duration,
            stamp,
        )
    return result


# ---------------------------------------------------------------------------------------
# in process: ApiGuard.check and AuthorizationServer.token, step by step

ROUNDS = 7  # each step is timed in this many slices, interleaved with the other steps


@dataclass
class Timing:
    step: str
    cpu_us: float
    wall_us: float
    calls: int

    def as_json(self) -> dict[str, Any]:
        return {
            "step": self.step,
            "cpu_us": round(self.cpu_us, 2),
            "wall_us": round(self.wall_us, 2),
            "calls": self.calls,
        }


@dataclass
class Step:
    """One thing to time: ``call(item)`` for each item (awaited when ``awaited``)."""

    name: str
    call: Callable[[Any], Any]
    items: Sequence[Any]
    awaited: bool = False


async def measure(steps: list[Step]) -> list[Timing]:
    """µs per call of each step: the median over ``ROUNDS`` slices of its items, the slices
    of all steps interleaved (round 1 of every step, then round 2, ...), so that a busy
    moment on the machine touches every step alike. CPU time is the process's own
    (``time.process_time``); wall time also counts waiting (for PostgreSQL)."""
    cpu: list[list[float]] = [[] for _ in steps]
    wall: list[list[float]] = [[] for _ in steps]
    for round_ in range(ROUNDS):
        for i, step in enumerate(steps):
            size = max(1, len(step.items) // ROUNDS)
            part = step.items[round_ * size : (round_ + 1) * size]
            if not part:
                continue
            c0, w0 = time.process_time(), time.perf_counter()
            if step.awaited:
                for item in part:
                    await step.call(item)
            else:
                for item in part:
                    step.call(item)
            cpu[i].append((time.process_time() - c0) / len(part))
            wall[i].append((time.perf_counter() - w0) / len(part))
    return [
        Timing(s.name, statistics.median(c) * 1e6, statistics.median(w) * 1e6, len(s.items))
        for s, c, w in zip(steps, cpu, wall, strict=True)
    ]


class NoReplay:
    """A replay cache that accepts everything: the ablation that shows what the real one
    costs in context (alone in a tight loop it looks cheaper: its code and pages stay in the
    CPU caches, which signature checks between its calls evict)."""

    async def first_use(self, namespace: str, key: str, expires_at: int) -> bool:
        return True

    def close(self) -> None:
        pass


def difference(step: str, a: Timing, b: Timing) -> Timing:
    """``a`` minus ``b``: the cost of what ``a`` does and ``b`` does not."""
    return Timing(step, a.cpu_us - b.cpu_us, a.wall_us - b.wall_us, 0)


def remainder(step: str, total: Timing, parts: list[tuple[Timing, int]]) -> Timing:
    """What ``total`` spends outside ``parts`` (each counted ``n`` times per call)."""
    return Timing(
        step,
        total.cpu_us - sum(t.cpu_us * n for t, n in parts),
        total.wall_us - sum(t.wall_us * n for t, n in parts),
        0,
    )


async def _micro(setup: Setup, args: argparse.Namespace, gen: Generator) -> dict[str, Any]:
    from samhandling.app import fhir_policy, start_runtime
    from samhandling.platform.auth import jose
    from samhandling.platform.auth.context import AccessContext
    from samhandling.platform.auth.dpop import DpopVerifier, normalise_url
    from samhandling.platform.auth.guard import ApiGuard
    from samhandling.platform.auth.tokens import AccessTokenVerifier
    from samhandling.platform.fhir.storage import open_store
    from samhandling.services import trust
    from samhandling.services.trust.tokentool import DpopKey
    from samhandling.settings import Settings

    settings = Settings(
        data_dir=setup.data_dir,
        database_url=setup.database_url,
        port=setup.protected_port,
        **({"signing_alg": args.signing_alg} if args.signing_alg else {}),
    )
    store = await open_store(settings.effective_database_url)
    runtime = await start_runtime(settings, store)
    try:
        service = trust.build(runtime)
        signing = await service.keys.current()
        # the same service and checks without replay protection (NoReplay)
        no_replay = DpopVerifier(NoReplay(), runtime.dpop.nonces)
        bare = trust.build(dataclasses.replace(runtime, replay=NoReplay(), dpop=no_replay))
        await bare.keys.current()
        tokens = runtime.tokens
        assert tokens is not None
        # as the application builds it: the guard checks the token and the proof, the
        # policy the scope of each interaction (measured with the guard below)
        api_guard = ApiGuard(runtime.api_resources, None, tokens, runtime.dpop, settings.issuer)
        policy = fhir_policy(runtime)

        async def guard_check(asgi_scope: dict[str, Any]) -> AccessContext:
            context = await api_guard.check(asgi_scope)
            policy.authorize(context, "read", "Patient")
            return context

        guard = SimpleNamespace(check=guard_check)
        client = setup.client
        n = args.micro_iterations
        replay_seq = iter(range(10**9))

        def replay_insert(_: object) -> Awaitable[bool]:
            return runtime.replay.first_use("bench", str(next(replay_seq)), int(time.time()) + 70)

        out: dict[str, Any] = {
            "settings": {
                "iterations": n,
                "rounds": ROUNDS,
                "signing_alg": signing.alg,
                "issuer": settings.issuer,
            },
            "check": {},
            "token": [],
        }

        # the token endpoint, without HTTP
        dpop = DpopKey()
        nonce = runtime.dpop.nonces.current()
        path = setup.data_dir / "micro-token-requests.tsv"
        gen.token_file(path, settings.issuer, client, dpop.jwk, nonce, n)
        pairs = [line.split("\t", 1) for line in path.read_text().splitlines()]
        forms = [dict(parse_qsl(body)) for _, body in pairs]
        requests = [(form, proof) for (proof, _), form in zip(pairs, forms, strict=True)]
        issued = await service.server.token(
            *_fresh_token_request(settings.issuer, client, dpop, nonce)
        )
        token_claims = jose.parse(issued["access_token"]).claims
        client_key = jose.public_key(jose.public_jwk(client["jwk"]))
        token_proofs = [jose.parse(proof) for proof, _ in pairs]
        proof_key = jose.public_key(dpop.public)
        header = {"alg": signing.alg, "kid": signing.kid, "typ": "at+jwt"}
        half = len(requests) // 2
        total, without, *parts = await measure(
            [
                Step(
                    "AuthorizationServer.token (client_credentials, DPoP)",
                    lambda r: service.server.token(r[0], r[1]),
                    requests[:half],
                    awaited=True,
                ),
                Step(
                    "(the same without the replay cache)",
                    lambda r: bare.server.token(r[0], r[1]),
                    requests[half:],
                    awaited=True,
                ),
                Step(
                    f"client assertion: parse + {client['jwk']['alg']} signature",
                    lambda f: jose.verify(jose.parse(f["client_assertion"]), client_key),
                    forms,
                ),
                Step(
                    "DPoP proof: parse + ES256 signature",
                    lambda p: jose.verify(jose.parse(p[1]), proof_key),
                    requests,
                ),
                Step(
                    "client lookup (ClientRegistry.get, database)",
                    lambda _: service.clients.get(client["client_id"]),
                    range(n),
                    awaited=True,
                ),
                Step(
                    "nonce check (HMAC)",
                    lambda p: runtime.dpop.nonces.valid(p.claims.get("nonce")),
                    token_proofs,
                ),
                Step(
                    f"access token signature ({signing.alg})",
                    lambda _: jose.sign(header, token_claims, signing.key),
                    range(max(ROUNDS * 20, n // 5)),
                ),
            ]
        )
        replay = difference("replay cache inserts (two: assertion and proof jti)", total, without)
        other = remainder(
            "other (form and claim checks, scopes, token claims, JSON; cache effects)",
            without,
            [(t, 1) for t in parts],
        )
        out["token"] = [s.as_json() for s in [total, replay, *parts, other]]

        # ApiGuard.check on an ASGI scope, per DPoP key algorithm
        request_path = f"/fhir/Patient/{setup.patient_ids[0] if setup.patient_ids else 'x'}"
        url = settings.issuer + request_path
        for alg in args.micro_algs:
            key = DpopKey(jose.generate_jwk(alg, "dpop"))
            nonce = runtime.dpop.nonces.current()
            issued = await service.server.token(
                *_fresh_token_request(settings.issuer, client, key, nonce)
            )
            token = issued["access_token"]
            proofs_path = setup.data_dir / f"micro-proofs-{alg}.tsv"
            made = gen.read_file(
                proofs_path, settings.issuer, key.jwk, token, [request_path] * 2 * n
            )
            proofs = [line.split("\t", 1)[1] for line in proofs_path.read_text().splitlines()[1:]]
            for_check, for_verify = proofs[:n], proofs[n:]
            scopes = [_asgi_scope(request_path, token, p, setup.protected_port) for p in for_check]
            await guard.check(scopes[0])  # the token's first use (cached from now on)
            jwss = [jose.parse(p) for p in for_verify]
            jwk = jwss[0].header["jwk"]
            public = jose.public_key(jwk)
            claims = await tokens.claims(token)
            half = len(for_verify) // 2
            check, cached, verify, verify_bare, context, first_use, alone, *parts = await measure(
                [
                    Step("ApiGuard.check (total)", guard.check, scopes[1:], awaited=True),
                    Step(
                        "access token, cached (AccessTokenVerifier.claims)",
                        tokens.claims,
                        [token] * n,
                        awaited=True,
                    ),
                    Step(
                        "DPoP proof (DpopVerifier.verify, total)",
                        lambda p, t=token: runtime.dpop.verify(p, "GET", url, access_token=t),
                        for_verify[:half],
                        awaited=True,
                    ),
                    Step(
                        "DPoP proof without the replay cache",
                        lambda p, t=token: no_replay.verify(p, "GET", url, access_token=t),
                        for_verify[half:],
                        awaited=True,
                    ),
                    Step(
                        "access context (AccessContext.from_claims)",
                        AccessContext.from_claims,
                        [claims] * n,
                    ),
                    Step(
                        f"(access token, first use per worker: {signing.alg} signature, claims)",
                        lambda t: AccessTokenVerifier(settings.issuer, service.keys).claims(t),
                        [token] * max(ROUNDS * 10, n // 20),
                        awaited=True,
                    ),
                    Step(
                        "(replay cache insert alone, in a loop)",
                        replay_insert,
                        range(n),
                        awaited=True,
                    ),
                    Step("  parse (base64url, JSON)", jose.parse, for_verify),
                    Step("  public key from the jwk (cached)", jose.public_key, [jwk] * n),
                    Step("  signature", lambda j, k=public: jose.verify(j, k), jwss),
                    Step("  jwk thumbprint", jose.thumbprint, [jwk] * n),
                    Step(
                        "  htu: normalise both URLs",
                        lambda j: normalise_url(j.claims["htu"]) == normalise_url(url),
                        jwss,
                    ),
                    Step("  ath: SHA-256 of the token", jose.sha256_b64url, [token] * n),
                ]
            )
            replay = difference(
                "  replay cache insert (verify with it − without)", verify, verify_bare
            )
            steps = [
                check,
                cached,
                verify,
                replay,
                *parts,
                remainder(
                    "  other (claim checks; cache effects)", verify_bare, [(t, 1) for t in parts]
                ),
                context,
                remainder(
                    "other (headers, audience, scope)",
                    check,
                    [(cached, 1), (verify, 1), (context, 1)],
                ),
                first_use,
                alone,
            ]
            out["check"][alg] = {
                "steps": [s.as_json() for s in steps],
                "generated": made,
                "proof_bytes": len(for_verify[0]),
            }
        return out
    finally:
        runtime.replay.close()
        await store.close()


def _fresh_token_request(issuer: str, client: dict, dpop: Any, nonce: str) -> tuple[dict, str]:
    from samhandling.services.trust.assertion import ASSERTION_TYPE
    from samhandling.services.trust.tokentool import TokenClient

    tool = TokenClient(issuer, client["client_id"], client["jwk"], dpop=dpop, http=_NoHttp())
    form = {
        "grant_type": "client_credentials",
        "scope": " ".join(SCOPES),
        "client_id": client["client_id"],
        "client_assertion_type": ASSERTION_TYPE,
        "client_assertion": tool.assertion(),
    }
    return form, dpop.proof("POST", issuer + "/connect/token", nonce=nonce)


def _asgi_scope(path: str, token: str, proof: str, port: int) -> dict[str, Any]:
    return {
        "type": "http",
        "method": "GET",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [
            (b"host", f"127.0.0.1:{port}".encode()),
            (b"accept", b"application/fhir+json"),
            (b"authorization", b"DPoP " + token.encode()),
            (b"dpop", proof.encode()),
        ],
    }


def run_micro(setup: Setup, args: argparse.Namespace, gen: Generator) -> dict[str, Any]:
    import uvloop

    bench.wait_for_quiet(args.quiet_wait)
    started = time.perf_counter()
    result = uvloop.run(_micro(setup, args, gen))
    result["seconds"] = round(time.perf_counter() - started, 1)
    return result


# ---------------------------------------------------------------------------------------
# one backend


def run_backend(
    backend: str,
    args: argparse.Namespace,
    cache: bench.BundleCache,
    gen: Generator,
    machine: dict[str, Any],
    stamp: str,
) -> dict[str, Any]:
    data_dir = RESULTS / "data" / f"auth-{backend}"
    shutil.rmtree(data_dir, ignore_errors=True)
    data_dir.mkdir(parents=True)
    database_url = None
    info: dict[str, Any] = {"backend": backend, "data_dir": os.path.relpath(data_dir, bench.ROOT)}
    if backend == "postgresql":
        database_url = bench.pg_url(args.pg_admin_url, args.pg_database)
        machine["postgresql"] = asyncio.run(bench.pg_recreate(args.pg_admin_url, args.pg_database))
        info["database_url"] = database_url
    setup = Setup(backend, data_dir, database_url, bench.free_port(), bench.free_port())
    env = {"SAMHANDLING_SIGNING_ALG": args.signing_alg} if args.signing_alg else {}
    open_env = {**env, **bench.UNPROTECTED_ENV}
    protected_argv = bench.samhandling_argv(
        setup.protected_port, data_dir, database_url, args.workers
    )
    open_argv = bench.samhandling_argv(setup.open_port, data_dir, database_url, args.workers)
    info["protected_server"] = bench.env_command(env, protected_argv)
    info["unprotected_server"] = bench.env_command(open_env, open_argv)
    http_parts = [p for p in args.parts if p != "micro"]
    try:
        if http_parts:
            bench.log(f"{backend}: protected server: {info['protected_server']}")
            bench.log(f"{backend}: unprotected server: {info['unprotected_server']}")
            logs = bench.LOGS
            with (
                bench.Server(
                    protected_argv,
                    setup.protected_port,
                    logs / f"{stamp}-auth-{backend}-protected.log",
                    env=env,
                ) as protected,
                bench.Server(
                    open_argv,
                    setup.open_port,
                    logs / f"{stamp}-auth-{backend}-unprotected.log",
                    env=open_env,
                ) as unprotected,
            ):
                setup.protected_pid, setup.open_pid = protected.pid, unprotected.pid
                prepare(setup, args, cache, info)
                if "token" in args.parts:
                    found = run_token(setup, gen, args, stamp)
                    info["token"] = {
                        **found["series"].as_json(),
                        "generated": found["generated"],
                        "profile": found.get("profile"),
                    }
                    info["_token_series"] = found["series"]
                if "overhead" in args.parts:
                    info["overhead"] = [
                        run_overhead(setup, alg, gen, args, stamp) for alg in args.dpop_algs
                    ]
        else:
            prepare(setup, args, cache, info, http=False)
        if "micro" in args.parts:
            bench.log(f"{backend}: in-process checks ({args.micro_iterations:,} per step)")
            info["micro"] = run_micro(setup, args, gen)
    finally:
        if backend == "postgresql" and not args.keep_data:
            asyncio.run(bench.pg_drop(args.pg_admin_url, args.pg_database))
        if not args.keep_data:
            shutil.rmtree(data_dir, ignore_errors=True)
    return info


def prepare(
    setup: Setup,
    args: argparse.Namespace,
    cache: bench.BundleCache,
    info: dict[str, Any],
    http: bool = True,
) -> None:
    """Data (through the unprotected server) and the benchmark's client."""
    if http and "overhead" in args.parts:
        bench.log(f"{setup.backend}: loading {args.resources:,} resources")
        info["load"] = bench.load_data(setup.open_port, cache, args.resources)
        write_patients(setup)
        bench.log(
            f"{setup.backend}: loaded {info['load']['resources_written']:,} resources "
            f"({len(setup.patient_ids):,} Patients) in {info['load']['seconds']} s"
        )
    if http:
        setup.client = register_client(setup, args.client_alg)
    else:
        setup.client = asyncio.run(_register_in_process(setup, args))
    info["client"] = {
        "client_id": setup.client["client_id"],
        "alg": setup.client["jwk"]["alg"],
        "command": setup.client.get("command"),
    }
    bench.log(f"{setup.backend}: client {setup.client['client_id']} ({info['client']['alg']})")


async def _register_in_process(setup: Setup, args: argparse.Namespace) -> dict[str, Any]:
    from samhandling.app import api_resources
    from samhandling.services.trust.admin import opened
    from samhandling.settings import Settings

    settings = Settings(
        data_dir=setup.data_dir, database_url=setup.database_url, port=setup.protected_port
    )
    known = {s for r in api_resources() for s in r.scopes}
    async with opened(settings) as service:
        client, jwk = await service.clients.create(
            name="bench", scopes=list(SCOPES), known_scopes=known, orgnr=ORGNR, alg=args.client_alg
        )
    return {"client_id": client.client_id, "jwk": jwk}


# ---------------------------------------------------------------------------------------
# tables


def token_table(backends: dict[str, Any], workers: int) -> list[str]:
    rows = [
        "| backend | workers | tokens/s (median) | runs | p50 ms | p95 ms | p99 ms | errors "
        "| server cores | per server core | others' cores | target | met |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for backend, info in backends.items():
        s = info.get("_token_series")
        if s is None:
            continue
        runs = " · ".join(f"{r.throughput:,.0f}" for r in s.runs)
        rows.append(
            f"| {_name(backend)} | {workers} | **{s.median:,.0f}** | {runs} "
            f"| {s.median_latency('50'):.1f} | {s.median_latency('95'):.1f} "
            f"| {s.median_latency('99'):.1f} | {s.errors} | {s.median_server_cores:.2f} "
            f"| {s.median_per_core:,.0f} | {s.median_other_cores:.2f} | {TOKEN_TARGET} "
            f"| {'yes' if s.median >= TOKEN_TARGET else '**no**'} |"
        )
    return rows


def overhead_table(backends: dict[str, Any]) -> list[str]:
    rows = [
        "| backend | workers | DPoP key | unprotected req/s | protected req/s | ratio "
        "| overhead µs/request (W/rate) | server CPU µs/request: unprotected → protected "
        "(difference) | errors | others' cores | target | met |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for backend, info in backends.items():
        for o in info.get("overhead", []):
            s = o.summary()
            runs_u = " · ".join(f"{r.throughput:,.0f}" for r in o.unprotected.runs)
            runs_p = " · ".join(f"{r.throughput:,.0f}" for r in o.protected.runs)
            db = s["overhead_server_and_db_cpu_us"]
            db_text = f"; with PostgreSQL's CPU {db:+,.0f}" if db is not None else ""
            rows.append(
                f"| {_name(backend)} | {s['workers']} | {s['dpop_alg']} "
                f"| {s['unprotected_req_s']:,.0f} ({runs_u}) "
                f"| {s['protected_req_s']:,.0f} ({runs_p}) | {s['ratio']:.2f} "
                f"| **{s['overhead_us_per_request']:,.0f}** "
                f"| {s['unprotected_server_cpu_us']:,.0f} → {s['protected_server_cpu_us']:,.0f} "
                f"({s['overhead_server_cpu_us']:+,.0f}{db_text}) "
                f"| {o.unprotected.errors + o.protected.errors} "
                f"| {o.unprotected.median_other_cores:.2f} / {o.protected.median_other_cores:.2f} "
                f"| ≤ {OVERHEAD_TARGET_US} "
                f"| {'yes' if s['meets_target'] else '**no**'} |"
            )
    return rows


def micro_tables(backends: dict[str, Any]) -> list[str]:
    lines: list[str] = []
    for backend, info in backends.items():
        micro = info.get("micro")
        if not micro:
            continue
        algs = list(micro["check"])
        lines.append("")
        lines.append(
            f"{_name(backend)}, `ApiGuard.check` in process, µs per call (CPU; wall where it "
            f"differs by more than 10%), {micro['settings']['iterations']:,} calls per step:"
        )
        lines.append("")
        lines.append("| step | " + " | ".join(f"{a} DPoP key" for a in algs) + " |")
        lines.append("|---|" + "---|" * len(algs))
        steps = [s["step"] for s in micro["check"][algs[0]]["steps"]]
        for i, step in enumerate(steps):
            cells = [_us(micro["check"][a]["steps"][i]) for a in algs]
            label = "· " + step[2:] if step.startswith("  ") else step
            lines.append(f"| {label} | " + " | ".join(cells) + " |")
        lines.append("")
        lines.append(
            f"{_name(backend)}, token endpoint in process (`AuthorizationServer.token`, "
            f"access tokens signed {micro['settings']['signing_alg']}), µs per call:"
        )
        lines.append("")
        lines.append("| step | µs |")
        lines.append("|---|---|")
        for s in micro["token"]:
            lines.append(f"| {s['step']} | {_us(s)} |")
    return lines


def _us(step: dict[str, Any]) -> str:
    cpu, wall = step["cpu_us"], step["wall_us"]
    text = f"{cpu:,.1f}" if cpu < 100 else f"{cpu:,.0f}"
    if wall > cpu * 1.1 and wall - cpu > 1:
        text += f" (wall {wall:,.0f})"
    return text


def _name(backend: str) -> str:
    return {"sqlite": "SQLite", "postgresql": "PostgreSQL"}.get(backend, backend)


# ---------------------------------------------------------------------------------------
# the whole invocation


def _list(choices: Sequence[str]) -> Callable[[str], list[str]]:
    def parse(text: str) -> list[str]:
        values = [v.strip() for v in text.split(",") if v.strip()]
        if "all" in values:
            return list(choices)
        bad = [v for v in values if v not in choices]
        if bad or not values:
            raise argparse.ArgumentTypeError(f"choose from {', '.join(choices)} (comma-separated)")
        return values

    return parse


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backend", choices=[*BACKENDS, "both"], default="both")
    parser.add_argument(
        "--part", dest="parts", type=_list(PARTS), default=list(PARTS), help="token,overhead,micro"
    )
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--duration", type=float, default=10, help="seconds per run")
    parser.add_argument("--workers", type=int, default=1, help="server worker processes")
    parser.add_argument(
        "--dpop-alg",
        dest="dpop_algs",
        type=_list(("ES256", "RS256")),
        default=["ES256"],
        help="DPoP key algorithms of the overhead runs (ES256,RS256; RS256 proofs take "
        "about 2 ms each to generate)",
    )
    parser.add_argument(
        "--micro-alg",
        dest="micro_algs",
        type=_list(("ES256", "RS256")),
        default=["ES256", "RS256"],
        help="DPoP key algorithms of the in-process checks",
    )
    parser.add_argument("--micro-iterations", type=int, default=3000, help="calls per step")
    parser.add_argument(
        "--resources", type=int, default=10_000, help="resources stored for the reads"
    )
    parser.add_argument("--token-connections", type=int, default=16, help="wrk -c, token runs")
    parser.add_argument("--read-threads", type=int, default=2, help="wrk -t, read runs")
    parser.add_argument("--read-connections", type=int, default=32, help="wrk -c, read runs")
    parser.add_argument(
        "--token-rate-guess",
        type=float,
        default=1500,
        help="tokens/s to generate requests for in the warm-up (later: the measured rate)",
    )
    parser.add_argument(
        "--headroom",
        type=float,
        default=1.4,
        help="generate this many times the requests the measured rate will use",
    )
    parser.add_argument("--client-alg", default="ES256", help="the client's key (assertions)")
    parser.add_argument(
        "--signing-alg",
        default=None,
        help="the server's token signing algorithm (SAMHANDLING_SIGNING_ALG; default RS256)",
    )
    parser.add_argument("--profile", action="store_true", help="one extra run under py-spy")
    parser.add_argument("--quiet-wait", type=float, default=10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--keep-data", action="store_true")
    parser.add_argument("--pg-admin-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--pg-database", default="samhandling_auth_bench")
    args = parser.parse_args(argv)
    if args.runs < 1 or args.duration < 1:
        parser.error("--runs and --duration must be at least 1")
    if args.duration > 40 and any(p in args.parts for p in ("token", "overhead")):
        parser.error("--duration above 40 s: generated proofs would expire during the run")

    backends = list(BACKENDS) if args.backend == "both" else [args.backend]
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    bench.LOGS.mkdir(parents=True, exist_ok=True)
    machine = bench.machine_info()
    source = bench.source_version()
    source["auth_fingerprint"] = auth_fingerprint()
    started = time.perf_counter()
    bench.print_header(machine, source)
    print(f"auth code: {source['auth_fingerprint']} ({fingerprint_text()})")
    cache = bench.BundleCache(args.seed, 50)
    gen = Generator()
    infos: dict[str, Any] = {}
    try:
        for backend in backends:
            infos[backend] = run_backend(backend, args, cache, gen, machine, stamp)
    finally:
        gen.close()
    elapsed = time.perf_counter() - started

    result = {
        "started": stamp,
        "command": bench.command_line(),
        "machine": machine,
        "source": source,
        "settings": vars(args),
        "backends": {
            b: {
                **{k: v for k, v in info.items() if not k.startswith("_") and k != "overhead"},
                "overhead": [o.as_json() for o in info.get("overhead", [])],
            }
            for b, info in infos.items()
        },
        "elapsed_s": round(elapsed, 1),
    }
    out = RESULTS / f"auth-{stamp}.json"
    out.write_bytes(orjson.dumps(result, option=orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS))

    print()
    print(f"command: `{bench.command_line()}`")
    print(
        f"machine: {machine['nproc']} CPUs ({machine['cpu_model']}), {machine['memory']}, "
        f"Linux {machine['kernel']}, Python {machine['python']}, SQLite {machine['sqlite']}, "
        f"PostgreSQL {machine['postgresql'] or '-'}, {machine['wrk']}; server workers "
        f"{args.workers}"
    )
    print(f"{bench.code_line(source)}; auth code {source['auth_fingerprint']}")
    if auth_fingerprint() != source["auth_fingerprint"]:
        print(f"WARNING: the auth code changed during the run (now {auth_fingerprint()})")
    for backend, info in infos.items():
        if any(p in args.parts for p in ("token", "overhead")):
            print(f"{backend}: protected: `{info['protected_server']}`")
            print(f"{backend}: unprotected: `{info['unprotected_server']}`")
    if "token" in args.parts:
        print(
            f"\nToken issuance (client_credentials, private_key_jwt {args.client_alg}, DPoP "
            f"ES256 with nonce, access tokens signed {args.signing_alg or 'RS256'}; median of "
            f"{args.runs} runs of {args.duration:g} s, wrk -t1 -c{args.token_connections}; "
            "latency: median of the runs' percentiles):\n"
        )
        print("\n".join(token_table(infos, args.workers)))
    if "overhead" in args.parts:
        print(
            f"\nRead by id (`GET /fhir/Patient/{{id}}`), protected vs unprotected server, "
            f"alternating; median of {args.runs} runs of {args.duration:g} s each, wrk "
            f"-t{args.read_threads} -c{args.read_connections}:\n"
        )
        print("\n".join(overhead_table(infos)))
    if "micro" in args.parts:
        print("\n".join(micro_tables(infos)))
    flagged = []
    for backend, info in infos.items():
        series = [info.get("_token_series")]
        for o in info.get("overhead", []):
            series += [o.protected, o.unprotected]
        for s in series:
            for r in s.runs if s else []:
                if r.flagged:
                    flagged.append(f"FLAGGED {backend} {s.workload}: {'; '.join(r.flagged)}")
    noisy = sum(
        1
        for info in infos.values()
        for s in [info.get("_token_series"), *_overhead_series(info)]
        if s
        for r in s.runs
        if r.cpu.get("other_cores", 0) > bench.NOISY_CORES
    )
    if noisy:
        print(f"\n{noisy} run(s) NOISY: other processes used more than {bench.NOISY_CORES} cores")
    for line in flagged:
        print(line)
    print(f"\nresults: {os.path.relpath(out)}  ({elapsed / 60:.1f} min)")
    return 1 if flagged else 0


def fingerprint_text() -> str:
    return "sha256 of " + ", ".join(f"src/samhandling/{p}" for p in AUTH_SOURCES)


def _overhead_series(info: dict[str, Any]) -> list[bench.Series]:
    return [s for o in info.get("overhead", []) for s in (o.protected, o.unprotected)]


if __name__ == "__main__":
    sys.exit(main())
