"""Shared fixtures: a real samhandling server over real HTTP, on SQLite and on PostgreSQL.

PostgreSQL tests use ``SAMHANDLING_TEST_POSTGRES_URL`` (a database the tests may connect to
as an administrator; each test session creates and drops its own fresh database there).
Without it they are skipped, unless ``SAMHANDLING_REQUIRE_POSTGRES=1`` (set by CI), which
makes a missing or unreachable PostgreSQL an error.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import httpx
import pytest

from samhandling.platform.fhir.engine import FhirEngine
from samhandling.platform.fhir.storage import open_store
from samhandling.services.trust.tokentool import DpopAuth, TokenClient

# one platform secret for every server and command the tests start (it encrypts the token
# signing keys, so processes sharing a database must share it, as in production)
TEST_ENV = {
    **os.environ,
    "SAMHANDLING_SECRET_KEY": "dGVzdHMtb25seS1wbGF0Zm9ybS1zZWNyZXQtMzItYnl0ZXMh",
}
POSTGRES_URL_ENV = "SAMHANDLING_TEST_POSTGRES_URL"
REQUIRE_POSTGRES_ENV = "SAMHANDLING_REQUIRE_POSTGRES"
BACKENDS = ["sqlite", "postgresql"]


@dataclass(frozen=True)
class Server:
    """A running samhandling server process."""

    backend: str
    url: str  # e.g. http://127.0.0.1:PORT
    database_url: str
    process: subprocess.Popen
    data_dir: Path

    @property
    def fhir(self) -> str:
        """The FHIR base URL."""
        return f"{self.url}/fhir"

    @property
    def auth(self) -> DpopAuth:
        """DPoP authentication with a system token (read and write on the FHIR API) from a
        client registered for the tests with the CLI; the token is renewed before it expires."""
        found = _AUTH.get(self.url)
        if found is None:
            config = register_client(self)
            client = TokenClient(self.url, config["client_id"], config["jwk"])
            scope = ALL_API_SCOPES
            found = DpopAuth(
                client.client_credentials(scope),
                client.dpop,
                renew=lambda: client.client_credentials(scope),
            )
            _AUTH[self.url] = found
        return found


_AUTH: dict[str, DpopAuth] = {}
TEST_ORGNR = "912159523"  # HelseID's example parent organisation (valid check digit)
# the tests' system client may do everything: the FHIR API, the registers (grunndata),
# including protected persons' addresses, and the terminology
ALL_API_SCOPES = (
    "samhandling:fhir/read samhandling:fhir/write samhandling:grunndata/read "
    "samhandling:grunndata/admin samhandling:grunndata/protected "
    "samhandling:terminology/read samhandling:terminology/admin "
    "samhandling:privacy/read samhandling:privacy/write "
    "samhandling:kjernejournal/read samhandling:kjernejournal/write"
)


def samhandling_cli(server: Server, *args: str) -> str:
    """Run the ``samhandling`` command against a server's database; returns its stdout."""
    done = subprocess.run(
        [sys.executable, "-m", "samhandling", *args, "--data-dir", str(server.data_dir),
         "--database-url", server.database_url],
        capture_output=True, text=True, timeout=60,
        env={**TEST_ENV, "SAMHANDLING_PUBLIC_URL": server.url},
    )  # fmt: skip
    if done.returncode != 0:
        raise RuntimeError(f"samhandling {' '.join(args)} failed: {done.stderr}")
    return done.stdout


def register_client(server: Server, *options: str) -> dict:
    """Register a client with ``samhandling client create --json``; returns its configuration."""
    if not options:
        scopes = [option for scope in ALL_API_SCOPES.split() for option in ("--scope", scope)]
        options = (*scopes, "--orgnr", TEST_ORGNR)
    return json.loads(
        samhandling_cli(server, "client", "create", "--name", "tests", "--json", *options)
    )


def free_port() -> int:
    """A TCP port free on the loopback interface right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(
    database_url: str, data_dir: Path, backend: str, *extra: str, env: dict | None = None
) -> Server:
    """Start ``samhandling serve`` and wait until it answers (with the tests' platform secret,
    so servers and commands on one database can all read its signing keys)."""
    port = free_port()
    command = [
        sys.executable, "-m", "samhandling", "serve",
        "--port", str(port), "--data-dir", str(data_dir), "--database-url", database_url,
        "--log-level", "warning", *extra,
    ]  # fmt: skip
    log = open(data_dir / f"server-{port}.log", "w")  # noqa: SIM115 - lives as long as the process
    process = subprocess.Popen(
        command, stdout=log, stderr=subprocess.STDOUT, env={**TEST_ENV, **(env or {})}
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited: {(data_dir / f'server-{port}.log').read_text()}")
        try:
            if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                return Server(backend, url, database_url, process, data_dir)
        except httpx.TransportError:
            time.sleep(0.1)
    process.kill()
    raise RuntimeError("server did not start in 30 s")


def stop_server(server: Server) -> None:
    """Stop a server process."""
    server.process.terminate()
    try:
        server.process.wait(10)
    except subprocess.TimeoutExpired:
        server.process.kill()


def postgres_admin_url() -> str | None:
    """The configured PostgreSQL URL, or skip/fail as the environment says."""
    url = os.environ.get(POSTGRES_URL_ENV)
    required = os.environ.get(REQUIRE_POSTGRES_ENV) == "1"
    if not url:
        if required:
            pytest.fail(f"{REQUIRE_POSTGRES_ENV}=1 but {POSTGRES_URL_ENV} is not set")
        pytest.skip(f"PostgreSQL tests need {POSTGRES_URL_ENV}")
    return url


@pytest.fixture(scope="session")
def postgres_database() -> Iterator[str]:
    """A fresh PostgreSQL database for this test session (dropped afterwards)."""
    admin_url = postgres_admin_url()
    assert admin_url is not None
    name = f"samhandling_test_{uuid.uuid4().hex[:12]}"

    async def admin(sql: str) -> None:
        conn = await asyncpg.connect(admin_url)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    try:
        asyncio.run(admin(f'CREATE DATABASE "{name}"'))
    except (OSError, asyncpg.PostgresError) as exc:
        if os.environ.get(REQUIRE_POSTGRES_ENV) == "1":
            pytest.fail(f"PostgreSQL at {admin_url} is required but unusable: {exc}")
        pytest.skip(f"PostgreSQL at {admin_url} is unusable: {exc}")
    parts = urlsplit(admin_url)
    yield urlunsplit(parts._replace(path=f"/{name}"))
    asyncio.run(admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def database_url_for(backend: str, request: pytest.FixtureRequest, data_dir: Path) -> str:
    """A database URL of a fresh database for ``backend``."""
    if backend == "sqlite":
        return f"sqlite:///{data_dir / 'samhandling.db'}"
    return request.getfixturevalue("postgres_database")


@pytest.fixture(scope="session", params=BACKENDS)
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    """One running server per backend for the whole session."""
    data_dir = tmp_path_factory.mktemp(f"server-{request.param}")
    database_url = database_url_for(request.param, request, data_dir)
    running = start_server(database_url, data_dir, request.param)
    yield running
    stop_server(running)


@pytest.fixture()
def fhir(server: Server) -> Iterator[httpx.Client]:
    """An HTTP client for the FHIR base of the server, with a DPoP-bound system token."""
    with httpx.Client(
        base_url=server.fhir,
        headers={"accept": "application/fhir+json"},
        timeout=30,
        auth=server.auth,
    ) as client:
        yield client


def patient(family: str = "Nordmann", given: str = "Kari", **extra: object) -> dict:
    """A small valid Patient."""
    return {
        "resourceType": "Patient",
        "name": [{"family": family, "given": [given]}],
        "gender": "female",
        **extra,
    }


@contextlib.asynccontextmanager
async def fresh_engine(backend: str, tmp_path: Path) -> AsyncIterator[FhirEngine]:
    """An in-process engine on a brand-new database (not the session server's)."""
    if backend == "sqlite":
        store = await open_store(f"sqlite:///{tmp_path / 'fresh.db'}")
        try:
            yield FhirEngine(store)
        finally:
            await store.close()
        return
    admin_url = postgres_admin_url()
    assert admin_url is not None
    name = f"samhandling_fresh_{uuid.uuid4().hex[:10]}"
    admin = await asyncpg.connect(admin_url)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        store = await open_store(admin_url.rsplit("/", 1)[0] + f"/{name}")
        try:
            yield FhirEngine(store)
        finally:
            await store.close()
            await admin.execute(f'DROP DATABASE "{name}"')
    finally:
        await admin.close()
