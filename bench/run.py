#!/usr/bin/env python
"""Benchmark runner for the samhandling FHIR server.

    python bench/run.py [--backend sqlite|postgresql|both] [--workload read|crud|ingest|all]
                        [--runs 3] [--duration 10] [--workers 1] [--resources 100000]

For each backend it starts ``samhandling serve`` on a fresh database (a new data directory;
for PostgreSQL a dropped and recreated database), loads the synthetic care providers and
enough synthetic patient transaction Bundles to store ``--resources`` resources, then runs
each workload ``--runs`` times with wrk (Lua scripts in ``bench/lua``):

* ``read``: GET /fhir/{type}/{id} of random stored ids (ids file in the data directory);
* ``crud``: 40% read, 25% create, 25% update, 10% delete over nine resource types;
* ``ingest``: POST /fhir of pre-generated patient transaction Bundles (Prefer: return=minimal).

The servers run with ``SAMHANDLING_UNPROTECTED_API=1`` in their environment: the FHIR API
without access-token and DPoP checks, so these numbers measure the FHIR engine (what the
checks cost is measured by bench/auth.py).

In the same invocation it measures the machine's ceiling: the bare Starlette JSON endpoint
of ``bench/ceiling_app.py`` under uvicorn (uvloop, httptools, same worker count) and the same
wrk settings. It prints the machine, the commands and a table of medians (and every run),
and writes everything as JSON to ``bench/results/``. See docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import json
import os
import platform
import resource
import shlex
import shutil
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
LUA = BENCH / "lua"
RESULTS = BENCH / "results"
CACHE = RESULTS / "cache"
LOGS = RESULTS / "logs"
SYNTH_SOURCES = ROOT / "src" / "samhandling" / "synth"

BACKENDS = ("sqlite", "postgresql")
WORKLOADS = ("read", "crud", "ingest")
CRUD_TYPES = (
    "Patient",
    "Organization",
    "Practitioner",
    "Location",
    "Encounter",
    "Observation",
    "MedicationRequest",
    "Condition",
    "AllergyIntolerance",
)
# Targets (requests/s for read and crud, resources/s for ingest).
TARGETS = {
    ("read", "sqlite"): 8000,
    ("read", "postgresql"): 4000,
    ("crud", "sqlite"): 1300,
    ("crud", "postgresql"): 800,
    ("ingest", "sqlite"): 2500,
    ("ingest", "postgresql"): 1500,
}
# wrk threads and connections per workload, chosen with --sweep on the 2-core reference
# machine (docs/benchmarks.md): more connections did not add throughput, only latency.
WRK_SETTINGS = {"read": (2, 32), "crud": (1, 16), "ingest": (1, 8)}
WRK_TIMEOUT = "15s"
WARMUP_SECONDS = 3
LOAD_CONCURRENCY = 8
INGEST_BUNDLES = 400  # distinct Bundles cycled by the ingest workload
INGEST_FIRST_INDEX = 5_000_000  # patient indices of the ingest Bundles (not in the load set)
# The FHIR engine's benchmarks run the API without token checks (allowed on loopback only);
# bench/auth.py measures the checks themselves.
UNPROTECTED_ENV = {"SAMHANDLING_UNPROTECTED_API": "1"}


# ---------------------------------------------------------------------------------------
# machine and commands


def machine_info() -> dict[str, Any]:
    """What the numbers were measured on."""
    model = "unknown"
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as cpuinfo:
        for line in cpuinfo:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    memory = None
    with contextlib.suppress(OSError), open("/proc/meminfo") as meminfo:
        for line in meminfo:
            if line.startswith("MemTotal"):
                memory = f"{int(line.split()[1]) // 1024 // 1024} GiB"
    wrk = subprocess.run(["wrk", "-v"], capture_output=True, text=True, check=False)
    return {
        "nproc": os.cpu_count(),
        "cpu_model": model,
        "memory": memory,
        "kernel": platform.release(),
        "python": sys.version.split()[0],
        "sqlite": sqlite3.sqlite_version,
        "wrk": (wrk.stdout or wrk.stderr).splitlines()[0] if (wrk.stdout or wrk.stderr) else "",
        "postgresql": None,  # filled in when PostgreSQL is benchmarked
    }


def source_version() -> dict[str, Any]:
    """The server code measured: git commit and uncommitted changes (read-only git calls)."""

    def git(*argv: str) -> str:
        out = subprocess.run(["git", *argv], capture_output=True, text=True, cwd=ROOT, check=False)
        return out.stdout.strip()

    status = git("status", "--porcelain", "--", "src")
    changed = [line.split(maxsplit=1)[-1] for line in status.splitlines() if line.strip()]
    return {"commit": git("rev-parse", "--short", "HEAD"), "uncommitted_src_changes": changed}


def print_header(machine: dict[str, Any], source: dict[str, Any]) -> None:
    """Print the command, the machine and the server code a benchmark runs."""
    print(f"command: {command_line()}")
    print(
        f"machine: {machine['nproc']} CPUs ({machine['cpu_model']}), {machine['memory']}, "
        f"Linux {machine['kernel']}, Python {machine['python']}, SQLite {machine['sqlite']}, "
        f"{machine['wrk']}"
    )
    print(code_line(source))


def code_line(source: dict[str, Any]) -> str:
    """``server code: commit abc1234`` (plus a note of uncommitted changes under src/)."""
    dirty = source["uncommitted_src_changes"]
    extra = f" plus uncommitted changes in {len(dirty)} file(s) under src/" if dirty else ""
    return f"server code: commit {source['commit']}{extra}"


def command_line() -> str:
    argv = [os.path.relpath(sys.argv[0]), *sys.argv[1:]]
    return "python " + " ".join(shlex.quote(arg) for arg in argv)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def log(message: str) -> None:
    print(f"[{datetime.now().strftime('%H:%M:%S')}] {message}", flush=True)


# ---------------------------------------------------------------------------------------
# servers


class Server:
    """A server subprocess in its own process group; ready when GET /health answers."""

    def __init__(self, argv: list[str], port: int, log_path: Path, env: dict | None = None):
        self.argv = argv
        self.port = port
        self.log_path = log_path
        self.env = env
        self.proc: subprocess.Popen | None = None

    def __enter__(self) -> Server:
        log_file = open(self.log_path, "ab")  # closed in __exit__
        self._log_file = log_file
        self.proc = subprocess.Popen(
            self.argv,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            cwd=ROOT,
            env={**os.environ, **(self.env or {})},
        )
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited ({self.proc.returncode}):\n{self.log_tail()}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/health", timeout=2):
                    return self
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                time.sleep(0.2)
        self.__exit__()
        raise RuntimeError(f"server not ready in 120 s:\n{self.log_tail()}")

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None and self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGINT)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self._log_file.close()

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


def samhandling_argv(port: int, data_dir: Path, database_url: str | None, workers: int) -> list:
    exe = Path(sys.executable).parent / "samhandling"
    argv = [str(exe) if exe.exists() else "samhandling"]
    argv += ["serve", "--port", str(port)]
    argv += ["--data-dir", str(data_dir), "--workers", str(workers), "--log-level", "warning"]
    if database_url:
        argv += ["--database-url", database_url]
    return argv


def env_command(env: dict[str, str], argv: list[str]) -> str:
    """The command line as a shell would run it, environment first."""
    return " ".join([*(f"{k}={shlex.quote(v)}" for k, v in env.items()), shlex.join(argv)])


def ceiling_argv(port: int, workers: int) -> list[str]:
    return [
        sys.executable,
        "-m",
        "uvicorn",
        "ceiling_app:app",
        "--app-dir",
        str(BENCH),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        str(workers),
        "--loop",
        "uvloop",
        "--http",
        "httptools",
        "--no-access-log",
        "--log-level",
        "warning",
    ]


# ---------------------------------------------------------------------------------------
# PostgreSQL


def pg_url(admin_url: str, database: str) -> str:
    return admin_url.rsplit("/", 1)[0] + "/" + database


async def pg_recreate(admin_url: str, database: str) -> str:
    import asyncpg

    conn = await asyncpg.connect(admin_url)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        await conn.execute(f'CREATE DATABASE "{database}"')
        return await conn.fetchval("SHOW server_version")
    finally:
        await conn.close()


async def pg_drop(admin_url: str, database: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(admin_url)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
    finally:
        await conn.close()


@contextlib.contextmanager
def fresh_backend(
    backend: str, name: str, args: argparse.Namespace, machine: dict[str, Any]
) -> Iterator[tuple[Path, str | None]]:
    """(data directory, database URL) of a brand-new ``backend`` for the benchmark ``name``:
    an empty data directory, and on PostgreSQL a recreated ``args.pg_database`` (its server
    version into ``machine``); both removed afterwards unless ``args.keep_data``."""
    data_dir = RESULTS / "data" / f"{name}-{backend}"
    shutil.rmtree(data_dir, ignore_errors=True)
    data_dir.mkdir(parents=True)
    database_url = None
    if backend == "postgresql":
        database_url = pg_url(args.pg_admin_url, args.pg_database)
        machine["postgresql"] = asyncio.run(pg_recreate(args.pg_admin_url, args.pg_database))
    try:
        yield data_dir, database_url
    finally:
        if backend == "postgresql" and not args.keep_data:
            asyncio.run(pg_drop(args.pg_admin_url, args.pg_database))
        if not args.keep_data:
            shutil.rmtree(data_dir, ignore_errors=True)


async def pg_settings(url: str) -> dict[str, str]:
    import asyncpg

    conn = await asyncpg.connect(url)
    try:
        names = ["shared_buffers", "synchronous_commit", "fsync", "max_connections", "work_mem"]
        return {n: await conn.fetchval(f"SHOW {n}") for n in names}
    finally:
        await conn.close()


# ---------------------------------------------------------------------------------------
# stored resources: ids and templates, read straight from the database


@dataclass
class Dataset:
    count: int  # current (not deleted) resources
    by_type: dict[str, int]
    ids_file: Path  # every current resource, "Type/id"
    crud_ids_file: Path  # those of CRUD_TYPES
    templates_file: Path  # create and update bodies of CRUD_TYPES


def _rows_sqlite(path: Path, sql: str) -> list[tuple]:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


async def _rows_pg(url: str, sql: str) -> list[tuple]:
    import asyncpg

    conn = await asyncpg.connect(url)
    try:
        return [tuple(r) for r in await conn.fetch(sql)]
    finally:
        await conn.close()


def stored_rows(backend: str, data_dir: Path, database_url: str | None, sql: str) -> list:
    if backend == "sqlite":
        return _rows_sqlite(data_dir / "samhandling.db", sql)
    assert database_url is not None
    return asyncio.run(_rows_pg(database_url, sql))


def write_dataset(backend: str, data_dir: Path, database_url: str | None) -> Dataset:
    deleted = "0" if backend == "sqlite" else "false"
    ids = stored_rows(
        backend,
        data_dir,
        database_url,
        f"SELECT type, id FROM resource WHERE deleted = {deleted}",
    )
    ids_file = data_dir / "ids.txt"
    ids_file.write_text("".join(f"{t}/{i}\n" for t, i in ids))
    crud_ids_file = data_dir / "crud-ids.txt"
    crud_ids_file.write_text("".join(f"{t}/{i}\n" for t, i in ids if t in CRUD_TYPES))
    lines = []
    for type_ in CRUD_TYPES:
        rows = stored_rows(
            backend,
            data_dir,
            database_url,
            f"SELECT content FROM resource WHERE type = '{type_}' AND deleted = {deleted} "
            "ORDER BY id LIMIT 1",
        )
        if not rows:
            raise RuntimeError(f"no stored {type_} to make a CRUD template of")
        body = orjson.loads(rows[0][0])
        body.pop("meta", None)
        body.pop("id", None)
        lines.append(f"create\t{type_}\t{orjson.dumps(body).decode()}\n")
        update = {"resourceType": type_, "id": "__ID__"}
        update.update((k, v) for k, v in body.items() if k != "resourceType")
        lines.append(f"update\t{type_}\t{orjson.dumps(update).decode()}\n")
    templates_file = data_dir / "crud-templates.tsv"
    templates_file.write_text("".join(lines))
    by_type = Counter(t for t, _ in ids)
    return Dataset(len(ids), dict(by_type), ids_file, crud_ids_file, templates_file)


# ---------------------------------------------------------------------------------------
# synthetic data: pre-generated Bundle files (cached under bench/results/cache)


def synth_fingerprint() -> str:
    digest = hashlib.sha256()
    for path in sorted(SYNTH_SOURCES.glob("*.py")):
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


def _generate(args: tuple[Path, int, int, int]) -> tuple[int, int]:
    from samhandling.synth import patient_bundle

    folder, index, seed, resources = args
    bundle = patient_bundle(index, seed=seed, resources=resources)
    (folder / f"patient-{index:07d}.json").write_bytes(orjson.dumps(bundle))
    return index, len(bundle["entry"])


class BundleCache:
    """Patient transaction Bundles as files, generated once per synth version and size."""

    def __init__(self, seed: int, resources_per_bundle: int) -> None:
        self.seed = seed
        self.resources = resources_per_bundle
        self.folder = CACHE / f"synth-{synth_fingerprint()}-s{seed}-r{resources_per_bundle}"
        self.folder.mkdir(parents=True, exist_ok=True)
        for stale in CACHE.glob("synth-*"):  # Bundles of an older synth version
            if stale.is_dir() and not stale.name.startswith(f"synth-{synth_fingerprint()}-"):
                shutil.rmtree(stale, ignore_errors=True)
        self.manifest_path = self.folder / "manifest.json"
        self.sizes: dict[int, int] = {}
        if self.manifest_path.exists():
            self.sizes = {int(k): v for k, v in json.loads(self.manifest_path.read_text()).items()}

    def path(self, index: int) -> Path:
        return self.folder / f"patient-{index:07d}.json"

    def ensure(self, indices: list[int]) -> None:
        missing = [i for i in indices if i not in self.sizes or not self.path(i).exists()]
        if not missing:
            return
        log(f"generating {len(missing)} patient Bundles into {os.path.relpath(self.folder)}")
        jobs = [(self.folder, i, self.seed, self.resources) for i in missing]
        with ProcessPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
            for index, size in pool.map(_generate, jobs, chunksize=32):
                self.sizes[index] = size
        self.manifest_path.write_text(json.dumps({str(k): v for k, v in self.sizes.items()}))

    def care_providers(self) -> Path:
        path = self.folder / "care-providers.json"
        if not path.exists():
            from samhandling.synth import care_providers_bundle

            path.write_bytes(orjson.dumps(care_providers_bundle(seed=self.seed)))
        return path

    def load_set(self, target_resources: int) -> list[Path]:
        """Bundles 0, 1, ... until they hold ``target_resources`` (with the care providers)."""
        count = max(1, -(-target_resources // self.resources))
        self.ensure(list(range(count)))
        total = len(orjson.loads(self.care_providers().read_bytes())["entry"])
        paths = []
        index = 0
        while total < target_resources:
            if index not in self.sizes:
                self.ensure(list(range(index, index + 100)))
            paths.append(self.path(index))
            total += self.sizes[index]
            index += 1
        return paths

    def ingest_set(self, count: int) -> list[Path]:
        indices = list(range(INGEST_FIRST_INDEX, INGEST_FIRST_INDEX + count))
        self.ensure(indices)
        return [self.path(i) for i in indices]


# ---------------------------------------------------------------------------------------
# loading data


async def _post_bundles(
    base: str,
    paths: list[Path],
    concurrency: int,
    progress: Callable[[int, int], None] | None = None,
) -> tuple[int, int]:
    """POST the transaction Bundles; ``progress(bundles done, resources written)`` after each
    (used by bench/search.py for its long loads)."""
    import aiohttp

    headers = {"Content-Type": "application/fhir+json", "Prefer": "return=minimal"}
    queue: asyncio.Queue[Path] = asyncio.Queue()
    for path in paths:
        queue.put_nowait(path)
    written = 0
    done = 0  # Bundles answered
    errors: list[str] = []

    async def worker(session: aiohttp.ClientSession) -> None:
        nonlocal written, done
        while not queue.empty():
            path = queue.get_nowait()
            async with session.post(base, data=path.read_bytes(), headers=headers) as response:
                body = await response.read()
            if response.status != 200:
                errors.append(f"{path.name}: {response.status} {body[:300]!r}")
                continue
            entries = orjson.loads(body).get("entry", [])
            bad = [e for e in entries if not e["response"]["status"].startswith("20")]
            if bad:
                errors.append(f"{path.name}: {bad[:2]}")
            written += len(entries) - len(bad)
            done += 1
            if progress is not None:
                progress(done, written)

    timeout = aiohttp.ClientTimeout(total=None, sock_read=120)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        await asyncio.gather(*(worker(session) for _ in range(concurrency)))
    if errors:
        raise RuntimeError(f"{len(errors)} Bundles failed to load, e.g. {errors[:3]}")
    return written, len(paths)


def load_data(port: int, cache: BundleCache, target: int) -> dict[str, Any]:
    base = f"http://127.0.0.1:{port}/fhir"
    started = time.perf_counter()
    asyncio.run(_post_bundles(base, [cache.care_providers()], 1))
    paths = cache.load_set(target)
    written, bundles = asyncio.run(_post_bundles(base, paths, LOAD_CONCURRENCY))
    seconds = time.perf_counter() - started
    return {
        "bundles": bundles,
        "resources_written": written,
        "seconds": round(seconds, 1),
        "resources_per_s": round(written / seconds),
        "concurrency": LOAD_CONCURRENCY,
    }


# ---------------------------------------------------------------------------------------
# wrk


@dataclass
class WrkRun:
    command: str
    report: dict[str, Any]
    seconds: float
    throughput: float  # requests/s (read, crud, ceiling) or resources/s (ingest)
    requests_per_s: float
    errors: int  # non-2xx responses plus socket errors (connect, read, write, timeout)
    cpu: dict[str, Any] = field(default_factory=dict)
    profile: str | None = None
    flagged: list[str] = field(default_factory=list)

    @property
    def per_server_core(self) -> float:
        """Throughput per core the server used: steadier than throughput on a shared machine."""
        cores = self.cpu.get("server_cores") or 0
        return self.throughput / cores if cores else 0.0

    @property
    def latency_ms(self) -> dict[str, float]:
        percentiles = self.report["latency_us"]["percentiles"]
        return {p: percentiles[p] / 1000 for p in ("50", "95", "99")}

    def as_json(self) -> dict[str, Any]:
        return {
            "command": self.command,
            "throughput": round(self.throughput, 1),
            "requests_per_s": round(self.requests_per_s, 1),
            "per_server_core": round(self.per_server_core, 1),
            "latency_ms": {k: round(v, 3) for k, v in self.latency_ms.items()},
            "errors": self.errors,
            "cpu": self.cpu,
            "flagged": self.flagged,
            "profile": self.profile,
            "wrk": self.report,
        }


def _cpu_busy_seconds(steal_only: bool = False) -> float:
    """Machine-wide busy CPU time (all cores) from /proc/stat, or only the hypervisor's steal."""
    with open("/proc/stat") as stat:
        fields = [int(x) for x in stat.readline().split()[1:]]
    if steal_only:
        return fields[7] / os.sysconf("SC_CLK_TCK")
    idle = fields[3] + fields[4]  # idle + iowait
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def _process_cpu() -> dict[int, tuple[str, int, float]]:
    """Every process: (name, parent pid, user + system CPU seconds so far)."""
    tick = os.sysconf("SC_CLK_TCK")
    out = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as stat:
                text = stat.read()
        except OSError:
            continue
        name = text[text.index("(") + 1 : text.rindex(")")]
        fields = text.rsplit(")", 1)[1].split()
        out[int(entry)] = (name, int(fields[1]), (int(fields[11]) + int(fields[12])) / tick)
    return out


def _cpu_breakdown(
    before: dict[int, tuple[str, int, float]],
    after: dict[int, tuple[str, int, float]],
    server_pid: int | None,
    busy: float,
    wrk: float,
    seconds: float,
) -> dict[str, Any]:
    """Cores used during a run by the server (with workers), wrk, PostgreSQL and the rest."""
    tree = {server_pid} if server_pid else set()
    grew = True
    while grew:
        grew = False
        for pid, (_, parent, _) in after.items():
            if parent in tree and pid not in tree:
                tree.add(pid)
                grew = True
    used: Counter[str] = Counter()
    others: Counter[str] = Counter()
    for pid, (name, _, cpu) in after.items():
        delta = cpu - (before[pid][2] if pid in before and before[pid][0] == name else 0.0)
        if delta <= 0:
            continue
        if pid in tree:
            used["server"] += delta
        elif name == "postgres":
            used["postgres"] += delta
        else:
            others[name] += delta
    other = max(0.0, busy - used["server"] - used["postgres"] - wrk)
    return {
        "machine_cores_busy": round(busy / seconds, 2),
        "server_cores": round(used["server"] / seconds, 2),
        "wrk_cores": round(wrk / seconds, 2),
        "postgres_cores": round(used["postgres"] / seconds, 2),
        "other_cores": round(other / seconds, 2),
        "top_other": {n: round(c / seconds, 2) for n, c in others.most_common(3) if c > 0.05},
    }


def run_wrk(
    script: str,
    port: int,
    script_args: list[str],
    threads: int,
    connections: int,
    duration: float,
    metric: str = "requests",
    server_pid: int | None = None,
) -> WrkRun:
    argv = [
        "wrk",
        f"-t{threads}",
        f"-c{connections}",
        f"-d{int(duration)}s",
        "--timeout",
        WRK_TIMEOUT,
        "-s",
        os.path.relpath(LUA / script, ROOT),
        f"http://127.0.0.1:{port}",
        "--",
        *script_args,
    ]
    steal = _cpu_busy_seconds(steal_only=True)
    before = (_cpu_busy_seconds(), _process_cpu(), resource.getrusage(resource.RUSAGE_CHILDREN))
    out = subprocess.run(argv, capture_output=True, text=True, check=False, cwd=ROOT)
    after = (_cpu_busy_seconds(), _process_cpu(), resource.getrusage(resource.RUSAGE_CHILDREN))
    steal = _cpu_busy_seconds(steal_only=True) - steal
    lines = [line for line in out.stdout.splitlines() if line.startswith("BENCH_RESULT ")]
    if out.returncode != 0 or not lines:
        raise RuntimeError(f"wrk failed ({out.returncode}): {out.stdout}\n{out.stderr}")
    report = json.loads(lines[-1].removeprefix("BENCH_RESULT "))
    seconds = report["duration_us"] / 1e6
    socket_errors = sum(
        report["socket_errors"].get(k, 0) for k in ("connect", "read", "write", "timeout")
    )
    requests_per_s = report["requests"] / seconds
    wrk_cpu = (after[2].ru_utime + after[2].ru_stime) - (before[2].ru_utime + before[2].ru_stime)
    cpu = _cpu_breakdown(before[1], after[1], server_pid, after[0] - before[0], wrk_cpu, seconds)
    cpu["steal_cores"] = round(steal / seconds, 2)  # taken by the hypervisor (in other_cores)
    if metric == "resources":
        throughput = report["extra"].get("resources", 0) / seconds
    else:
        throughput = requests_per_s
    run = WrkRun(
        command=shlex.join(argv),
        report=report,
        seconds=seconds,
        throughput=throughput,
        requests_per_s=requests_per_s,
        errors=report["non_2xx"] + socket_errors,
        cpu=cpu,
    )
    if report["non_2xx"]:
        run.flagged.append(
            f"{report['non_2xx']} non-2xx responses {report['statuses']}: "
            f"{list(report['error_samples'])[:2]}"
        )
    if socket_errors:
        run.flagged.append(f"socket errors {report['socket_errors']}")
    return run


WORKLOAD_SCRIPTS = {"read": "read.lua", "crud": "crud.lua", "ingest": "ingest.lua"}


def workload_args(workload: str, dataset: Dataset | None, ingest_index: Path | None) -> list[str]:
    if workload == "ingest":
        assert ingest_index is not None
        return [str(ingest_index)]
    assert dataset is not None
    if workload == "read":
        return [str(dataset.ids_file)]
    return [str(dataset.crud_ids_file), str(dataset.templates_file)]


# ---------------------------------------------------------------------------------------
# profiles (py-spy)


def py_spy_path() -> str | None:
    local = Path(sys.executable).parent / "py-spy"
    return str(local) if local.exists() else shutil.which("py-spy")


PROFILE_RATE = 250


def start_profile(pid: int, out: Path, seconds: float) -> subprocess.Popen | None:
    exe = py_spy_path()
    if exe is None:
        log("py-spy not found (pip install py-spy); no profile")
        return None
    argv = [
        exe,
        "record",
        "--pid",
        str(pid),
        "--subprocesses",
        "--nonblocking",
        "--rate",
        str(PROFILE_RATE),
        "--duration",
        str(int(seconds)),
        "--format",
        "raw",
        "--output",
        str(out),
    ]
    return subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _frame_name(frame: str) -> str:
    """``handle (samhandling/app.py:84)`` -> ``handle (samhandling/app.py)`` (no line)."""
    name, _, where = frame.partition(" (")
    file = where.rsplit(":", 1)[0].rstrip(")")
    for marker in ("site-packages/", "/src/", "/lib/python3"):
        if marker in file:
            file = file.split(marker, 1)[1]
    return f"{name} ({file})" if file else name


def summarize_profile(path: Path, top: int = 15) -> dict[str, Any]:
    """Own (self) and total (inclusive) time per function from py-spy's collapsed stacks."""
    own: Counter[str] = Counter()
    total: Counter[str] = Counter()
    samples = 0
    for line in path.read_text(errors="replace").splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [_frame_name(f) for f in stack.split(";")]
        frames = [f for f in frames if not f.startswith("process ")]
        if not frames:
            continue
        samples += count
        own[frames[-1]] += count
        for frame in set(frames):
            total[frame] += count
    if not samples:
        return {"samples": 0, "own": [], "total": []}

    def share(counter: Counter[str]) -> list[tuple[str, float]]:
        return [(name, round(100 * n / samples, 1)) for name, n in counter.most_common(top)]

    # Inclusive time of the process entry frames (CLI, uvicorn, asyncio runner) says nothing
    # (and coroutines resumed by the event loop are sampled without them anyway).
    for name in list(total):
        if any(marker in name for marker in _ENTRY_FRAMES):
            del total[name]
    return {"samples": samples, "own": share(own), "total": share(total)}


_ENTRY_FRAMES = (
    "(typer/",
    "(click/",
    "(asyncio/",
    "(uvicorn/main.py",
    "(uvicorn/server.py",
    "(uvicorn/_compat.py",
    "(samhandling/cli.py",
    "<module>",
    "(samhandling)",
)


def print_profile(title: str, summary: dict[str, Any], seconds: float) -> None:
    busy = summary["samples"] / (PROFILE_RATE * seconds)
    print(
        f"\nprofile {title}: {summary['samples']} samples (py-spy {PROFILE_RATE} Hz, on-CPU "
        f"samples only: the server was busy {busy:.0%} of the run)"
    )
    print("  own time (function itself)                                   %")
    for name, pct in summary["own"]:
        print(f"    {name[:70]:<70} {pct:5.1f}")
    print("  total time (function and its callees)                        %")
    for name, pct in summary["total"]:
        print(f"    {name[:70]:<70} {pct:5.1f}")


# ---------------------------------------------------------------------------------------
# one benchmark series


@dataclass
class Series:
    backend: str  # sqlite, postgresql or ceiling
    workload: str
    unit: str
    threads: int
    connections: int
    runs: list[WrkRun] = field(default_factory=list)
    profile: dict[str, Any] | None = None

    @property
    def median(self) -> float:
        return statistics.median(r.throughput for r in self.runs)

    @property
    def median_per_core(self) -> float:
        return statistics.median(r.per_server_core for r in self.runs)

    @property
    def median_server_cores(self) -> float:
        return statistics.median(r.cpu.get("server_cores", 0) for r in self.runs)

    @property
    def median_other_cores(self) -> float:
        return statistics.median(r.cpu.get("other_cores", 0) for r in self.runs)

    def median_latency(self, p: str) -> float:
        return statistics.median(r.latency_ms[p] for r in self.runs)

    @property
    def errors(self) -> int:
        return sum(r.errors for r in self.runs)

    def as_json(self) -> dict[str, Any]:
        target = TARGETS.get((self.workload, self.backend))
        return {
            "backend": self.backend,
            "workload": self.workload,
            "unit": self.unit,
            "wrk_threads": self.threads,
            "wrk_connections": self.connections,
            "median": round(self.median, 1),
            "median_per_server_core": round(self.median_per_core, 1),
            "median_server_cores": self.median_server_cores,
            "median_other_cores": self.median_other_cores,
            "median_latency_ms": {p: round(self.median_latency(p), 3) for p in ("50", "95", "99")},
            "errors": self.errors,
            "target": target,
            "meets_target": None if target is None else self.median >= target,
            "runs": [r.as_json() for r in self.runs],
            "profile": self.profile,
        }


NOISY_CORES = 0.25  # other processes using more than this during a run: flagged as noisy


def cpu_text(cpu: dict[str, Any]) -> str:
    text = f"cores: server {cpu['server_cores']}, wrk {cpu['wrk_cores']}"
    if cpu["postgres_cores"]:
        text += f", postgres {cpu['postgres_cores']}"
    text += f", other {cpu['other_cores']}"
    if cpu.get("steal_cores"):
        text += f" (steal {cpu['steal_cores']})"
    if cpu["other_cores"] > NOISY_CORES and cpu["top_other"]:
        text += " (" + ", ".join(f"{n} {c}" for n, c in cpu["top_other"].items()) + ") NOISY"
    return text


def wait_for_quiet(max_wait: float) -> None:
    """Before a run: wait up to ``max_wait`` s for other processes to use < NOISY_CORES."""
    deadline = time.monotonic() + max_wait
    waited = False
    while True:
        before = _cpu_busy_seconds()
        time.sleep(0.5)
        load = (_cpu_busy_seconds() - before) / 0.5
        if load < NOISY_CORES:
            if waited:
                log("machine quiet again")
            return
        if time.monotonic() >= deadline:
            log(f"machine still busy ({load:.2f} cores used by others); running anyway")
            return
        if not waited:
            log(f"waiting up to {max_wait:g} s for a quiet machine ({load:.2f} cores busy)")
            waited = True


def measure(
    name: str,
    backend: str,
    workload: str,
    port: int,
    script: str,
    script_args: list[str],
    args: argparse.Namespace,
    threads: int,
    connections: int,
    server_pid: int,
    profile: bool,
    stamp: str,
    settle: Callable[[], None] | None = None,
) -> Series:
    """Warm-up, then ``args.runs`` runs (and a profiled one). ``settle()``, if given, is called
    before each (bench/search.py: wait until the server has finished the requests wrk left
    in flight, which slow searches can keep it busy with for seconds)."""
    unit = "resources/s" if workload == "ingest" else "req/s"
    metric = "resources" if workload == "ingest" else "requests"
    series = Series(backend, workload, unit, threads, connections)
    warmup = min(WARMUP_SECONDS, args.duration)
    if warmup >= 1:
        if settle is not None:
            settle()
        run_wrk(script, port, script_args, threads, connections, warmup, metric)
    for n in range(args.runs):
        if settle is not None:
            settle()
        wait_for_quiet(args.quiet_wait)
        run = run_wrk(
            script, port, script_args, threads, connections, args.duration, metric, server_pid
        )
        series.runs.append(run)
        flag = f"  FLAGGED: {'; '.join(run.flagged)}" if run.flagged else ""
        lat = run.latency_ms
        log(
            f"{name} run {n + 1}/{args.runs}: {run.throughput:,.0f} {unit} "
            f"({run.requests_per_s:,.0f} req/s, p50 {lat['50']:.1f} ms, p99 {lat['99']:.1f} ms, "
            f"{run.errors} errors; {cpu_text(run.cpu)}){flag}"
        )
    if profile:
        out = RESULTS / "profiles" / f"{stamp}-{backend}-{workload}.collapsed.txt"
        out.parent.mkdir(parents=True, exist_ok=True)
        if settle is not None:
            settle()
        spy = start_profile(server_pid, out, args.duration)
        if spy is not None:
            time.sleep(0.5)
            run = run_wrk(
                script, port, script_args, threads, connections, args.duration, metric, server_pid
            )
            spy.wait(timeout=args.duration + 30)
            if out.exists():
                summary = summarize_profile(out)
                run.profile = str(out.relative_to(ROOT))
                print_profile(
                    f"{backend} {workload} ({run.throughput:,.0f} {unit} while "
                    f"profiled; {run.profile})",
                    summary,
                    run.seconds,
                )
                series.profile = {"file": run.profile, **summary}
    return series


def sweep(
    name: str,
    backend: str,
    workload: str,
    port: int,
    script: str,
    script_args: list[str],
    args: argparse.Namespace,
    server_pid: int,
) -> list[dict[str, Any]]:
    """One run per connection count in --sweep (wrk threads as given or 1 and 2)."""
    metric = "resources" if workload == "ingest" else "requests"
    rows = []
    thread_counts = [args.threads] if args.threads else [1, 2]
    for threads in thread_counts:
        for connections in args.sweep:
            if connections < threads:
                continue
            wait_for_quiet(args.quiet_wait)
            run = run_wrk(
                script, port, script_args, threads, connections, args.duration, metric, server_pid
            )
            lat = run.latency_ms
            log(
                f"sweep {name} -t{threads} -c{connections}: {run.throughput:,.0f} "
                f"({run.requests_per_s:,.0f} req/s, p50 {lat['50']:.1f} ms, "
                f"p99 {lat['99']:.1f} ms, {run.errors} errors; {cpu_text(run.cpu)})"
            )
            rows.append(
                {
                    "backend": backend,
                    "workload": workload,
                    "threads": threads,
                    "connections": connections,
                    **run.as_json(),
                }
            )
    return rows


# ---------------------------------------------------------------------------------------
# the whole invocation


def wrk_settings(workload: str, args: argparse.Namespace) -> tuple[int, int]:
    threads, connections = WRK_SETTINGS[workload]
    if args.threads:
        threads = args.threads
    if args.connections and workload in args.connections:
        connections = args.connections[workload]
    return threads, connections


def parse_connections(text: str) -> dict[str, int]:
    """``32`` (every workload) or ``read=64,crud=32,ingest=8``."""
    if text.isdigit():
        return dict.fromkeys((*WORKLOADS, "ceiling"), int(text))
    out = {}
    for part in text.split(","):
        key, _, value = part.partition("=")
        if key not in WORKLOADS or not value.isdigit():
            raise argparse.ArgumentTypeError(f"bad --connections part {part!r}")
        out[key] = int(value)
    return out


def run_ceiling(args: argparse.Namespace, workloads: list[str], stamp: str) -> list[Series]:
    """The bare Starlette endpoint, under each distinct wrk setting of the workloads."""
    out = []
    settings = sorted({wrk_settings(w, args) for w in workloads})
    port = free_port()
    log_path = LOGS / f"{stamp}-ceiling.log"
    log(f"ceiling: {shlex.join(ceiling_argv(port, args.workers))}")
    with Server(ceiling_argv(port, args.workers), port, log_path) as server:
        for threads, connections in settings:
            name = f"ceiling -t{threads} -c{connections}"
            series = measure(
                name,
                "ceiling",
                "ceiling",
                port,
                "ceiling.lua",
                [],
                args,
                threads,
                connections,
                server.pid,
                args.profile_ceiling,
                stamp,
            )
            out.append(series)
    return out


def run_backend(
    backend: str,
    workloads: list[str],
    args: argparse.Namespace,
    cache: BundleCache,
    machine: dict[str, Any],
    stamp: str,
) -> tuple[list[Series], dict[str, Any], list[dict[str, Any]]]:
    data_dir = RESULTS / "data" / backend
    shutil.rmtree(data_dir, ignore_errors=True)
    data_dir.mkdir(parents=True)
    database_url = None
    info: dict[str, Any] = {"data_dir": os.path.relpath(data_dir, ROOT)}
    if backend == "postgresql":
        database_url = pg_url(args.pg_admin_url, args.pg_database)
        machine["postgresql"] = asyncio.run(pg_recreate(args.pg_admin_url, args.pg_database))
        info["database_url"] = database_url
    port = free_port()
    argv = samhandling_argv(port, data_dir, database_url, args.workers)
    info["server_command"] = env_command(UNPROTECTED_ENV, argv)
    log(f"{backend}: {info['server_command']}")
    series_list: list[Series] = []
    sweeps: list[dict[str, Any]] = []
    ingest_index = None
    if "ingest" in workloads:
        index = data_dir / "ingest-bundles.txt"
        index.write_text("".join(f"{p}\n" for p in cache.ingest_set(INGEST_BUNDLES)))
        ingest_index = index
    try:
        with Server(
            argv, port, LOGS / f"{stamp}-{backend}-server.log", env=UNPROTECTED_ENV
        ) as server:
            if backend == "postgresql":
                info["postgresql_settings"] = asyncio.run(pg_settings(database_url))  # type: ignore[arg-type]
            dataset = None
            needs_data = any(w in ("read", "crud") for w in workloads)
            target = args.resources if needs_data else 0
            log(
                f"{backend}: loading {target:,} resources (transaction Bundles, "
                f"{LOAD_CONCURRENCY} concurrent)"
            )
            info["load"] = load_data(port, cache, target)
            log(
                f"{backend}: loaded {info['load']['resources_written']:,} resources in "
                f"{info['load']['seconds']} s ({info['load']['resources_per_s']:,} resources/s)"
            )
            if needs_data:
                dataset = write_dataset(backend, data_dir, database_url)
                info["stored"] = {"resources": dataset.count, "by_type": dataset.by_type}
                log(f"{backend}: {dataset.count:,} resources stored: {dataset.by_type}")
            else:
                info["stored"] = {"resources": info["load"]["resources_written"], "by_type": {}}
            for workload in workloads:
                script = WORKLOAD_SCRIPTS[workload]
                script_args = workload_args(workload, dataset, ingest_index)
                name = f"{backend} {workload}"
                if args.sweep:
                    sweeps += sweep(
                        name, backend, workload, port, script, script_args, args, server.pid
                    )
                    continue
                threads, connections = wrk_settings(workload, args)
                found = measure(
                    name,
                    backend,
                    workload,
                    port,
                    script,
                    script_args,
                    args,
                    threads,
                    connections,
                    server.pid,
                    args.profile,
                    stamp,
                )
                series_list.append(found)
            info["stored_after"] = stored_rows(
                backend, data_dir, database_url, "SELECT count(*) FROM resource_history"
            )[0][0]
    finally:
        if backend == "postgresql" and not args.keep_data:
            asyncio.run(pg_drop(args.pg_admin_url, args.pg_database))
        if not args.keep_data:
            for path in data_dir.glob("samhandling.db*"):
                path.unlink()
    return series_list, info, sweeps


def ceiling_share(series: Series, series_list: list[Series]) -> float | None:
    """Requests/s as a share of the ceiling measured with the same wrk settings."""
    for c in series_list:
        if c.backend == "ceiling" and (c.threads, c.connections) == (
            series.threads,
            series.connections,
        ):
            requests = statistics.median(r.requests_per_s for r in series.runs)
            return requests / c.median
    return None


def format_table(series_list: list[Series]) -> str:
    header = (
        f"{'backend':<11} {'workload':<8} {'median':>8} {'unit':<12} {'runs':<22} "
        f"{'p50 ms':>7} {'p95 ms':>7} {'p99 ms':>7} {'errors':>6} {'per core':>8} "
        f"{'srv/oth':>9} {'wrk':>9} {'ceil%':>5} {'target':>6} {'ok':<3}"
    )
    lines = [header, "-" * len(header)]
    for s in series_list:
        share = ceiling_share(s, series_list) if s.workload in ("read", "crud") else None
        share_text = f"{share:.0%}" if share is not None else ""
        target = TARGETS.get((s.workload, s.backend))
        ok = "" if target is None else ("yes" if s.median >= target else "NO")
        runs = " ".join(f"{r.throughput:,.0f}" for r in s.runs)
        cores = f"{s.median_server_cores:.2f}/{s.median_other_cores:.2f}"
        lines.append(
            f"{s.backend:<11} {s.workload:<8} {s.median:>8,.0f} {s.unit:<12} {runs:<22} "
            f"{s.median_latency('50'):>7.2f} {s.median_latency('95'):>7.2f} "
            f"{s.median_latency('99'):>7.2f} {s.errors:>6} {s.median_per_core:>8,.0f} "
            f"{cores:>9} {f'-t{s.threads} -c{s.connections}':>9} {share_text:>5} "
            f"{target or '':>6} {ok:<3}"
        )
    lines.append(
        "per core: throughput per CPU core the server used (steadier than throughput when "
        "other processes compete); srv/oth: cores used by the server / by other processes "
        "(not wrk, not PostgreSQL); ceil%: requests/s as a share of the ceiling's median "
        "under the same wrk settings"
    )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backend", choices=[*BACKENDS, "both"], default="both")
    parser.add_argument("--workload", choices=[*WORKLOADS, "all"], default="all")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--duration", type=float, default=10, help="seconds per run")
    parser.add_argument("--workers", type=int, default=1, help="server worker processes")
    parser.add_argument(
        "--resources",
        type=int,
        default=100_000,
        help="resources to store before the read and crud workloads",
    )
    parser.add_argument("--threads", type=int, default=0, help="wrk threads (default per workload)")
    parser.add_argument(
        "--connections",
        type=parse_connections,
        default=None,
        help="wrk connections: N, or read=N,crud=N,ingest=N",
    )
    parser.add_argument("--seed", type=int, default=0, help="synthetic data seed")
    parser.add_argument(
        "--bundle-resources", type=int, default=50, help="resources per patient Bundle"
    )
    parser.add_argument(
        "--profile",
        action="store_true",
        help="one extra run per workload under py-spy; top functions printed",
    )
    parser.add_argument("--profile-ceiling", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument(
        "--sweep",
        type=lambda t: [int(x) for x in t.split(",")],
        default=None,
        help="instead of the runs: one run per wrk connection count, e.g. 8,16,32",
    )
    parser.add_argument(
        "--quiet-wait",
        type=float,
        default=10,
        help="before each run, wait up to this many seconds for other processes to go idle",
    )
    parser.add_argument("--no-ceiling", action="store_true", help="skip the ceiling measurement")
    parser.add_argument("--keep-data", action="store_true", help="keep the databases afterwards")
    parser.add_argument("--pg-admin-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--pg-database", default="samhandling_bench")
    args = parser.parse_args(argv)
    if args.runs < 1 or args.duration < 1:
        parser.error("--runs and --duration must be at least 1")

    backends = list(BACKENDS) if args.backend == "both" else [args.backend]
    workloads = list(WORKLOADS) if args.workload == "all" else [args.workload]
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    LOGS.mkdir(parents=True, exist_ok=True)
    machine = machine_info()
    source = source_version()
    started = time.perf_counter()
    print_header(machine, source)
    cache = BundleCache(args.seed, args.bundle_resources)

    series_list: list[Series] = []
    sweeps: list[dict[str, Any]] = []
    if not args.no_ceiling and not args.sweep:
        series_list += run_ceiling(args, workloads, stamp)
    backend_info = {}
    for backend in backends:
        found, info, swept = run_backend(backend, workloads, args, cache, machine, stamp)
        series_list += found
        sweeps += swept
        backend_info[backend] = info
    elapsed = time.perf_counter() - started

    result = {
        "started": stamp,
        "command": command_line(),
        "machine": machine,
        "source": source,
        "settings": {k: v for k, v in vars(args).items()},
        "wrk_settings": {w: wrk_settings(w, args) for w in workloads},
        "backends": backend_info,
        "series": [
            s.as_json()
            | {
                "share_of_ceiling": ceiling_share(s, series_list)
                if s.workload in ("read", "crud")
                else None
            }
            for s in series_list
        ],
        "sweep": sweeps,
        "elapsed_s": round(elapsed, 1),
    }
    out = RESULTS / f"{stamp}.json"
    out.write_bytes(orjson.dumps(result, option=orjson.OPT_INDENT_2))

    print()
    print(f"command: {command_line()}")
    print(
        f"machine: {machine['nproc']} CPUs ({machine['cpu_model']}), Python {machine['python']}"
        f", SQLite {machine['sqlite']}, PostgreSQL {machine['postgresql'] or '-'}, "
        f"server workers {args.workers}"
    )
    for backend, info in backend_info.items():
        print(f"{backend}: {info['server_command']}")
        print(
            f"  stored before the workloads: {info['stored']['resources']:,} resources; load "
            f"{info['load']['resources_per_s']:,} resources/s"
        )
    if series_list:
        print(
            f"\nmedian of {args.runs} runs of {args.duration:g} s (all runs listed); "
            "latency: median over runs of wrk's percentiles"
        )
        print(format_table(series_list))
    flagged = [(s, r) for s in series_list for r in s.runs if r.flagged]
    for s, r in flagged:
        print(f"FLAGGED {s.backend} {s.workload}: {'; '.join(r.flagged)}")
    print(code_line(source))
    print(f"\nresults: {os.path.relpath(out)}  ({elapsed / 60:.1f} min)")
    return 1 if flagged else 0


if __name__ == "__main__":
    sys.exit(main())
