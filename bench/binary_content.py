#!/usr/bin/env python
"""Binary content benchmark: raw upload and download throughput of a Binary, and the
server's memory while a large one streams in and out (IHE MHD ITI-65/68).

    python bench/binary_content.py [--backend sqlite|postgresql|both] [--size-mb 10]
                                   [--runs 5] [--large-mb 100] [--pg-admin-url URL]

For each backend it starts ``samhandling serve`` (bench/run.py's ``Server``, one worker,
``SAMHANDLING_UNPROTECTED_API=1``: no token checks, so what is measured is the engine and its
storage; ``SAMHANDLING_MAX_BINARY_BYTES`` above ``--large-mb``) on a fresh database (a
temporary SQLite data directory; PostgreSQL: a throwaway database on ``--pg-admin-url``,
default ``$SAMHANDLING_BENCH_POSTGRES_URL`` or ``postgresql://postgres@127.0.0.1:5432/
postgres``). One client on the same machine (httpx, one connection):

* ``upload``: ``--runs`` raw creates (``POST /fhir/Binary``, ``Content-Type:
  application/octet-stream``, with Content-Length) of ``--size-mb`` MB of random bytes:
  MB/s (10^6 bytes) from the first byte sent to the 201;
* ``download``: ``--runs`` raw reads (``GET /fhir/Binary/<id>``, ``Accept:
  application/octet-stream``) of it: MB/s until the last byte, each checked against what
  was sent (SHA-256);
* ``json``: three FHIR JSON reads of it (``data`` put back as base64, whole in
  memory): MB/s of content, for comparison;
* ``memory`` (first, on the fresh server: later runs leave freed memory behind that the
  next ones reuse unseen): one ``--large-mb`` MB raw upload and then one raw download of
  it, each with the server process's peak resident memory (VmHWM, reset through
  ``/proc/<pid>/clear_refs`` just before) and its peak anonymous memory (RssAnon sampled
  every millisecond: the heap, SQLite's page cache included, without the file pages SQLite
  maps to read from), as growth over their values just before. SQLite's WAL is
  checkpointed before the download (a document is read a while after its upload, when
  checkpoints have moved it into the database file). On SQLite the upload's growth is
  mostly the writer connection's page cache (``cache_size``, 64 MiB) filling with the
  transaction's pages, and the download's resident growth the mapped database file; the
  Python heap's own growth is what tests/platform/fhir/test_binary_content.py bounds.

Prints the machine, the commands, and per backend the median and best of the runs and the
memory growth.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import hashlib
import os
import platform
import random
import sqlite3
import statistics
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
import run as bench  # bench/run.py: servers, machine information

MB = 1_000_000
OCTETS = "application/octet-stream"
PG_ADMIN = os.environ.get(
    "SAMHANDLING_BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)


def print_header() -> None:
    """The command, the machine (without bench/run.py's wrk) and the server code."""
    model = "unknown"
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as cpuinfo:
        model = next(line.split(":", 1)[1].strip() for line in cpuinfo if "model name" in line)
    print(f"command: {bench.command_line()}")
    print(
        f"machine: {os.cpu_count()} CPUs ({model}), Linux {platform.release()}, "
        f"Python {sys.version.split()[0]}, SQLite {sqlite3.sqlite_version}"
    )
    print(bench.code_line(bench.source_version()))


def status_kib(pid: int, field: str) -> int:
    """A ``/proc/<pid>/status`` field in KiB (VmHWM, VmRSS, RssAnon)."""
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith(f"{field}:"):
                return int(line.split()[1])
    raise KeyError(field)


@contextlib.contextmanager
def memory_growth(pid: int) -> Iterator[dict[str, float]]:
    """Peak growth (MB) of the process's resident memory and of its anonymous memory while
    the block runs."""
    with open(f"/proc/{pid}/clear_refs", "w") as clear:
        clear.write("5")  # VmHWM := VmRSS
    rss, anon = status_kib(pid, "VmRSS"), status_kib(pid, "RssAnon")
    peak_anon = anon
    done = threading.Event()

    def sample() -> None:
        nonlocal peak_anon
        while not done.is_set():
            peak_anon = max(peak_anon, status_kib(pid, "RssAnon"))
            time.sleep(0.001)

    sampler = threading.Thread(target=sample)
    sampler.start()
    growth: dict[str, float] = {}
    try:
        yield growth
    finally:
        done.set()
        sampler.join()
    growth["rss_mb"] = (status_kib(pid, "VmHWM") - rss) * 1024 / MB
    growth["anon_mb"] = (peak_anon - anon) * 1024 / MB


def upload(client: httpx.Client, content: bytes) -> tuple[str, float]:
    """A raw create; its id and MB/s."""
    started = time.perf_counter()
    response = client.post("/Binary", content=content, headers={"content-type": OCTETS})
    elapsed = time.perf_counter() - started
    response.raise_for_status()
    return response.json()["id"], len(content) / MB / elapsed


def download(client: httpx.Client, id: str, digest: bytes, accept: str = OCTETS) -> float:
    """A raw read (or a FHIR JSON one), checked; MB/s of content."""
    received = hashlib.sha256()
    started = time.perf_counter()
    with client.stream("GET", f"/Binary/{id}", headers={"accept": accept}) as response:
        response.raise_for_status()
        if accept == OCTETS:
            size = 0
            for piece in response.iter_bytes():
                received.update(piece)
                size += len(piece)
        else:
            response.read()
            data = base64.b64decode(response.json()["data"])
            received.update(data)
            size = len(data)
    elapsed = time.perf_counter() - started
    if received.digest() != digest:
        raise RuntimeError(f"Binary/{id} came back different")
    return size / MB / elapsed


def runs(measure: Callable[[], float], count: int) -> dict[str, float]:
    values = [measure() for _ in range(count)]
    return {"median": statistics.median(values), "best": max(values)}


def checkpoint(data_dir: Path) -> None:
    """Move SQLite's WAL into the database file (as the server's checkpoints do in time)."""
    with contextlib.closing(sqlite3.connect(data_dir / "samhandling.db")) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")


def measure_memory(
    client: httpx.Client, pid: int, size_mb: int, data_dir: Path, rng: random.Random
) -> dict[str, dict[str, float]]:
    """The server's memory growth while ``size_mb`` MB go up, then come down (on a fresh
    server: the runs that follow leave freed memory behind for later ones to reuse)."""
    large = rng.randbytes(size_mb * MB)
    digest = hashlib.sha256(large).digest()
    with memory_growth(pid) as upload_memory:
        id, _ = upload(client, large)
    del large
    if (data_dir / "samhandling.db").exists():
        checkpoint(data_dir)
    with memory_growth(pid) as download_memory:
        download(client, id, digest)
    return {"upload": upload_memory, "download": download_memory}


def measure_backend(backend: str, args: argparse.Namespace, work: Path) -> dict:
    data_dir = work / backend
    database_url = None
    if backend == "postgresql":
        database = f"samhandling_bench_binary_{uuid.uuid4().hex[:8]}"
        asyncio.run(bench.pg_recreate(args.pg_admin_url, database))
        database_url = bench.pg_url(args.pg_admin_url, database)
    port = bench.free_port()
    argv = bench.samhandling_argv(port, data_dir, database_url, 1)
    env = {
        **bench.UNPROTECTED_ENV,
        "SAMHANDLING_MAX_BINARY_BYTES": str(max(args.size_mb, args.large_mb) * MB + MB),
    }
    print(f"$ {bench.env_command(env, argv)}")
    data_dir.mkdir(parents=True)
    rng = random.Random(0)
    content = rng.randbytes(args.size_mb * MB)
    digest = hashlib.sha256(content).digest()
    try:
        with (
            bench.Server(argv, port, work / f"{backend}.log", env) as server,
            httpx.Client(base_url=f"http://127.0.0.1:{port}/fhir", timeout=600) as client,
        ):
            warm_id, _ = upload(client, b"warm-up")  # lazy imports, caches, connections
            download(client, warm_id, hashlib.sha256(b"warm-up").digest())
            memory = measure_memory(client, server.pid, args.large_mb, data_dir, rng)
            id, _ = upload(client, content)
            result = {
                "upload": runs(lambda: upload(client, content)[1], args.runs),
                "download": runs(lambda: download(client, id, digest), args.runs),
                "json": runs(lambda: download(client, id, digest, "application/fhir+json"), 3),
                "memory": memory,
            }
            return result
    finally:
        if database_url is not None:
            asyncio.run(bench.pg_drop(args.pg_admin_url, database_url.rsplit("/", 1)[1]))


def report(backend: str, args: argparse.Namespace, result: dict) -> None:
    print(f"\n{backend}: a {args.size_mb} MB Binary, {args.runs} runs (MB/s, median / best)")
    for name in ("upload", "download", "json"):
        value = result[name]
        print(f"  {name:<9} {value['median']:8.1f} / {value['best']:8.1f}")
    print(f"  server memory while {args.large_mb} MB stream (growth of the peak, MB):")
    for name, growth in result["memory"].items():
        print(f"  {name:<9} resident {growth['rss_mb']:7.1f}   anonymous {growth['anon_mb']:7.1f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=("sqlite", "postgresql", "both"), default="both")
    parser.add_argument("--size-mb", type=int, default=10)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--large-mb", type=int, default=100)
    parser.add_argument("--pg-admin-url", default=PG_ADMIN)
    args = parser.parse_args()
    print_header()
    backends = bench.BACKENDS if args.backend == "both" else (args.backend,)
    with tempfile.TemporaryDirectory(prefix="bench-binary-") as work:
        for backend in backends:
            report(backend, args, measure_backend(backend, args, Path(work)))


if __name__ == "__main__":
    main()
