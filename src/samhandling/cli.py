"""The ``samhandling`` command: serve, migrate, load demo data."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from samhandling.infrastructure.database import DatabaseUrl, DatabaseUrlError
from samhandling.settings import DEFAULT_DATA_DIR, Settings

DEMO_PERSONS = 2_000
DEMO_SEED = 42
DEMO_PATIENTS = 20

app = typer.Typer(
    help="samhandling: Norway's national e-health interoperability platform.", no_args_is_help=True
)
console = Console(stderr=True)

DataDir = Annotated[
    Path,
    typer.Option(
        "--data-dir",
        envvar="SAMHANDLING_DATA_DIR",
        help="Where the embedded SQLite database lives.",
    ),
]
DatabaseUrlOption = Annotated[
    str | None,
    typer.Option(
        "--database-url",
        envvar="SAMHANDLING_DATABASE_URL",
        help="postgresql://user@host:port/db for PostgreSQL; default: SQLite in --data-dir.",
    ),
]


PublicUrl = Annotated[
    str | None,
    typer.Option(
        "--public-url",
        envvar="SAMHANDLING_PUBLIC_URL",
        help="The server's public base URL (the token issuer); default http://127.0.0.1:8080.",
    ),
]


def _settings(data_dir: Path, database_url: str | None, **overrides: object) -> Settings:
    settings = Settings.from_env()
    settings = Settings(
        **{
            **{f: getattr(settings, f) for f in settings.__dataclass_fields__},
            "data_dir": data_dir,
            "database_url": database_url,
            **overrides,
        }
    )  # type: ignore[arg-type]
    try:
        DatabaseUrl.parse(settings.effective_database_url)
    except DatabaseUrlError as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from None
    return settings


@app.command()
def serve(
    data_dir: DataDir = DEFAULT_DATA_DIR,
    database_url: DatabaseUrlOption = None,
    host: Annotated[str, typer.Option(envvar="SAMHANDLING_HOST")] = "127.0.0.1",
    port: Annotated[int, typer.Option(envvar="SAMHANDLING_PORT")] = 8080,
    workers: Annotated[int, typer.Option(envvar="SAMHANDLING_WORKERS", min=1)] = 1,
    demo: Annotated[
        bool, typer.Option("--demo", help="Load synthetic demo data before serving.")
    ] = False,
    demo_persons: Annotated[
        int, typer.Option(min=0, help="Persons in the demo population (with --demo).")
    ] = DEMO_PERSONS,
    log_level: Annotated[str, typer.Option(envvar="SAMHANDLING_LOG_LEVEL")] = "info",
    public_url: PublicUrl = None,
) -> None:
    """Start the platform (FHIR API under /fhir, HelseID-style trust service under /connect)."""
    import uvicorn

    from samhandling.infrastructure.secrets import platform_secret

    settings = _settings(
        data_dir,
        database_url,
        host=host,
        port=port,
        workers=workers,
        log_level=log_level,
        public_url=public_url,
    )
    logging.basicConfig(
        level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    asyncio.run(_migrate(settings))
    platform_secret(settings.secret_key, settings.data_dir)  # made once, before the workers
    if demo:
        asyncio.run(_load_demo(settings, demo_persons, DEMO_SEED, DEMO_PATIENTS))
    backend = DatabaseUrl.parse(settings.effective_database_url)
    console.print(
        f"samhandling serving http://{host}:{port}/fhir with {workers} worker(s) "
        f"on {backend.backend} ({backend.redacted()})"
    )
    os.environ.update(settings.to_env())
    uvicorn.run(
        "samhandling.app:create_app_from_env",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level=log_level,
        access_log=False,
        loop="uvloop",
        http="httptools",
    )


@app.command()
def migrate(data_dir: DataDir = DEFAULT_DATA_DIR, database_url: DatabaseUrlOption = None) -> None:
    """Apply pending schema migrations."""
    applied = asyncio.run(_migrate(_settings(data_dir, database_url)))
    console.print(
        f"applied {len(applied)} migration(s)" + (f": {', '.join(applied)}" if applied else "")
    )


@app.command()
def demo(
    data_dir: DataDir = DEFAULT_DATA_DIR,
    database_url: DatabaseUrlOption = None,
    persons: Annotated[
        int, typer.Option(min=0, help="Persons in the register population (0: none).")
    ] = DEMO_PERSONS,
    seed: Annotated[int, typer.Option(min=0, help="The population's seed.")] = DEMO_SEED,
    patients: Annotated[
        int, typer.Option(min=0, help="Patients with clinical records (GP offices' own).")
    ] = DEMO_PATIENTS,
) -> None:
    """Load a synthetic population: the registers (persons and families, health personnel,
    enterprises, address register, GP lists) and patients with clinical records."""
    asyncio.run(_load_demo(_settings(data_dir, database_url), persons, seed, patients))


async def _migrate(settings: Settings) -> list[str]:
    from samhandling.infrastructure.database import (
        SQLITE,
        connect_sqlite,
        migrate_postgres,
        migrate_sqlite,
    )

    url = DatabaseUrl.parse(settings.effective_database_url)
    if url.backend == SQLITE:
        assert url.path is not None
        conn = connect_sqlite(url.path)
        try:
            return [f"{m.version:04d}_{m.name}" for m in migrate_sqlite(conn)]
        finally:
            conn.close()
    import asyncpg

    conn = await asyncpg.connect(url.url)
    try:
        return [f"{m.version:04d}_{m.name}" for m in await migrate_postgres(conn)]
    finally:
        await conn.close()


async def _load_demo(settings: Settings, persons: int, seed: int, patients: int) -> None:
    from samhandling.platform.fhir.rest.bundle import process_bundle
    from samhandling.synth import care_providers_bundle, patient_bundles

    async with _engine(settings) as engine:
        base = f"{settings.issuer}/fhir"
        if persons:
            await _load_registers(engine, base, persons, seed)
        await _load_demo_terminology(engine, base)
        providers = care_providers_bundle()
        marker = providers["entry"][0]["resource"]
        if await engine.store.read(marker["resourceType"], marker["id"]) is not None:
            console.print("the clinical demo data is already loaded")
        else:
            await process_bundle(engine, providers, base, "minimal")
            for bundle in patient_bundles(patients):
                await process_bundle(engine, _existing_person_kept(bundle), base, "minimal")
            console.print(f"loaded GP offices and {patients} patients with clinical records")
        await _load_demo_kjernejournal(engine, base, persons, seed, patients)


async def _load_demo_kjernejournal(
    engine: Any, base: str, persons: int, seed: int, patients: int
) -> None:
    """Kjernejournal's synthetic data (critical information, shared documents) for the demo
    patients, written by the register population's doctors (the GP offices' and synthetic
    hospitals' without registers); once (the last resource it writes is the marker)."""
    from samhandling.platform.fhir.rest.bundle import process_bundle
    from samhandling.platform.identifiers import FNR_SYSTEM
    from samhandling.services.registries.directory import search_resources
    from samhandling.synth import care_providers_bundle, patient_bundles
    from samhandling.synth.kjernejournal import (
        KjernejournalData,
        KjPatient,
        authors_from,
        register_authors,
        synthetic_authors,
    )
    from samhandling.synth.registers import register_population

    found = []
    for bundle in patient_bundles(patients):
        patient = bundle["entry"][0]["resource"]
        fnr = next(i["value"] for i in patient["identifier"] if i["system"] == FNR_SYSTEM)
        stored = await search_resources(
            engine, "Patient", [("identifier", f"{FNR_SYSTEM}|{fnr}")], 1
        )
        if stored:  # the person is in the person register
            found.append(KjPatient(stored[0]["id"], fnr))
    if persons:
        authors = register_authors(register_population(persons, seed))
    else:
        providers = (e["resource"] for e in care_providers_bundle()["entry"])
        authors = (*authors_from(providers), *synthetic_authors(seed))
    data = KjernejournalData(found, authors, seed)
    marker = data.marker
    if marker is None:
        return
    type_name, parameter, value = marker
    if await search_resources(engine, type_name, [(parameter, value)], 1):
        console.print("the Kjernejournal demo data is already loaded")
        return
    for bundle in data.bundles():
        await process_bundle(engine, bundle, base, "minimal")
    counts = data.counts()
    console.print(
        f"loaded Kjernejournal data: critical information for "
        f"{counts['with_critical_information']} patients ({counts['critical_entries']} entries), "
        f"{counts['documents']} shared documents for {counts['with_documents']} patients",
        soft_wrap=True,
    )


async def _load_demo_terminology(engine: Any, base: str) -> None:
    """Load the terminology this installation has (bundled, and ICD-10 when installed);
    when it is loaded already, nothing is written."""
    from samhandling.services.terminology.loader import available_parts

    written, totals, seconds = await _terminology(engine, base, available_parts())
    if not any(written.values()):
        console.print(f"the terminology ({', '.join(written)}) is already loaded")
        return
    console.print(
        f"loaded the terminology: {', '.join(f'{p} {n}' for p, n in totals.items())} resources"
        f" ({sum(written.values())} written) in {seconds:.1f} s",
        soft_wrap=True,
    )


async def _load_registers(engine: Any, base: str, persons: int, seed: int) -> None:
    """Load the synthetic register population, with a progress bar (once per seed)."""
    import time

    from rich.progress import Progress

    from samhandling.platform.fhir.rest.bundle import process_bundle
    from samhandling.synth.registers import register_population

    population = register_population(persons, seed)
    if await engine.store.read(*population.marker) is not None:
        console.print(f"the register population (seed {seed}) is already loaded")
        return
    started = time.perf_counter()
    with Progress(console=console, transient=True) as progress:
        task = progress.add_task("registers", total=population.total_resources)
        for bundle in population.bundles():
            await process_bundle(engine, bundle, base, "minimal")
            progress.advance(task, len(bundle["entry"]))
    console.print(
        f"loaded the register population (seed {seed}): {persons} persons, "
        f"{population.total_resources} resources in {time.perf_counter() - started:.1f} s",
        soft_wrap=True,
    )


def _existing_person_kept(bundle: dict) -> dict:
    """A patient record Bundle whose Patient is created only when the person register does
    not know the fødselsnummer already (then the record is about that person)."""
    from samhandling.platform.identifiers import FNR_SYSTEM

    for entry in bundle["entry"]:
        resource = entry["resource"]
        if resource["resourceType"] == "Patient":
            fnr = next(i["value"] for i in resource["identifier"] if i["system"] == FNR_SYSTEM)
            entry["request"]["ifNoneExist"] = f"identifier={FNR_SYSTEM}|{fnr}"
    return bundle


@contextlib.asynccontextmanager
async def _engine(settings: Settings) -> AsyncIterator[Any]:
    """A migrated database and an engine over it with every service's write checks and
    index views (loaders and reindexing write exactly as the server does)."""
    from samhandling.app import opened_engine

    await _migrate(settings)
    async with opened_engine(settings) as engine:
        yield engine


registries_app = typer.Typer(help="The national registers (grunndata).", no_args_is_help=True)
app.add_typer(registries_app, name="registries")


@registries_app.command("import")
def registries_import(
    files: Annotated[list[Path], typer.Argument(help="NDJSON files: Bundles or resources.")],
    data_dir: DataDir = DEFAULT_DATA_DIR,
    database_url: DatabaseUrlOption = None,
) -> None:
    """Load register data from NDJSON feeds (one Bundle or resource with an id per line)."""
    settings = _settings(data_dir, database_url)
    total = asyncio.run(_import(settings, files))
    console.print(f"imported {total} resources from {len(files)} file(s)")


async def _import(settings: Settings, files: list[Path]) -> int:
    from samhandling.services.registries.loader import load_ndjson

    total = 0
    async with _engine(settings) as engine:
        for path in files:
            with path.open("rb") as lines:
                report = await load_ndjson(engine, lines, f"{settings.issuer}/fhir")
            total += report.resources
            for warning in report.warnings:
                console.print(f"[yellow]warning:[/yellow] {path}: {warning}", soft_wrap=True)
            if report.error is not None:
                console.print(
                    f"[red]error:[/red] {path} line {report.failed_line}: {report.error} "
                    f"({total} resources were imported before it)",
                    soft_wrap=True,
                )
                raise typer.Exit(1)
    return total


terminology_app = typer.Typer(help="The terminology service (kodeverk).", no_args_is_help=True)
app.add_typer(terminology_app, name="terminology")


@terminology_app.command("load")
def terminology_load(
    fhir_r4: Annotated[
        bool, typer.Option("--fhir-r4/--no-fhir-r4", help="Every FHIR R4 CodeSystem and ValueSet.")
    ] = True,
    norwegian: Annotated[
        bool,
        typer.Option(
            "--norwegian/--no-norwegian", help="HL7 Norway's kodeverk and no-basis terminology."
        ),
    ] = True,
    icd10: Annotated[
        bool,
        typer.Option(
            "--icd10", help="WHO's ICD-10 (needs the extra: pip install 'samhandling\\[icd10]')."
        ),
    ] = False,
    loinc: Annotated[
        Path | None, typer.Option(help="LOINC's LoincTable/Loinc.csv.", exists=True)
    ] = None,
    icd10_no: Annotated[
        Path | None, typer.Option(help="ICD-10 Norsk as a code list (see the docs).", exists=True)
    ] = None,
    icpc2: Annotated[
        Path | None, typer.Option(help="ICPC-2 as a code list (see the docs).", exists=True)
    ] = None,
    nlk: Annotated[
        Path | None,
        typer.Option(help="Norsk laboratoriekodeverk as a code list (see the docs).", exists=True),
    ] = None,
    data_dir: DataDir = DEFAULT_DATA_DIR,
    database_url: DatabaseUrlOption = None,
) -> None:
    """Load code systems and value sets into the FHIR store (again: only what changed)."""
    parts = [
        *(["fhir-r4"] if fhir_r4 else []),
        *(["norwegian"] if norwegian else []),
        *(["icd10"] if icd10 else []),
        *(f"{kind}={path}" for kind, path in
          (("loinc", loinc), ("icd10-no", icd10_no), ("icpc2", icpc2), ("nlk", nlk)) if path),
    ]  # fmt: skip
    if not parts:
        console.print("nothing to load")
        return
    asyncio.run(_load_terminology(_settings(data_dir, database_url), parts))


async def _load_terminology(settings: Settings, parts: list[str]) -> None:
    """Load ``parts`` and print what was written; a part that cannot load is an error."""
    from rich.markup import escape

    from samhandling.platform.fhir.errors import FhirError
    from samhandling.services.terminology.licensed import LicensedFileError
    from samhandling.services.terminology.loader import TerminologyUnavailable

    try:
        async with _engine(settings) as engine:
            written, totals, seconds = await _terminology(engine, f"{settings.issuer}/fhir", parts)
    except (TerminologyUnavailable, LicensedFileError, FhirError) as exc:
        console.print(f"[red]error:[/red] {escape(str(exc))}", soft_wrap=True)
        raise typer.Exit(1) from None
    for part, count in written.items():
        console.print(f"{part}: {totals[part]} resources, {count} written", soft_wrap=True)
    console.print(f"done in {seconds:.1f} s")


async def _terminology(
    engine: Any, base: str, parts: list[str]
) -> tuple[dict[str, int], dict[str, int], float]:
    """Load terminology parts with a progress bar: (resources written per part, resources
    per part, seconds taken)."""
    import time

    from rich.progress import Progress

    from samhandling.services.terminology.loader import load_terminology

    totals: dict[str, int] = {}
    started = time.perf_counter()
    with Progress(console=console, transient=True) as progress:
        tasks: dict[str, Any] = {}

        def advance(part: str, done: int, total: int) -> None:
            if part not in tasks:
                tasks[part] = progress.add_task(f"terminology {part}", total=total)
            totals[part] = total
            progress.update(tasks[part], completed=done)

        written = await load_terminology(engine, parts, base, advance)
    return written, totals, time.perf_counter() - started


@app.command()
def reindex(
    data_dir: DataDir = DEFAULT_DATA_DIR,
    database_url: DatabaseUrlOption = None,
    status: Annotated[bool, typer.Option("--status", help="Only show the jobs.")] = False,
    everything: Annotated[
        bool, typer.Option("--all", help="Queue a reindex of every resource first.")
    ] = False,
) -> None:
    """Show reindex jobs, or run the queued ones to the end (they also run in the server)."""
    settings = _settings(data_dir, database_url)
    asyncio.run(_reindex(settings, status, everything))


async def _reindex(settings: Settings, status: bool, everything: bool) -> None:
    from samhandling.platform.fhir.search import reindex

    async with _engine(settings) as engine:
        store = engine.store
        if everything and not status:
            async with store.transaction() as tx:
                await reindex.enqueue(tx, store.backend, "samhandling reindex --all", ["*"])
        if not status:
            batches = await reindex.run_pending(engine, settle=0)
            console.print(f"ran {batches} batch(es)")
        jobs = await reindex.jobs(engine)
        if not jobs:
            typer.echo("no reindex jobs")
        for job in jobs:  # one line per job, never wrapped: scripts read this
            typer.echo(
                f"job {job.id}: {job.status:<8} {job.progress:<24} types={job.resource_types}"
                f" reason={job.reason}{' error=' + job.error if job.error else ''}"
            )


client_app = typer.Typer(help="Register and manage clients of the trust service (HelseID).")
keys_app = typer.Typer(help="The trust service's token signing keys.")
app.add_typer(client_app, name="client")
app.add_typer(keys_app, name="keys")


def _print_json(value: object) -> None:
    import orjson

    typer.echo(orjson.dumps(value, option=orjson.OPT_INDENT_2).decode())


def _trust_command(settings: Settings, work: Callable[[Any], Awaitable[Any]]) -> Any:
    """Run ``work(trust)`` on the trust service over the settings' database."""
    from samhandling.services.trust.admin import opened
    from samhandling.services.trust.clients import ClientError

    async def run() -> Any:
        async with opened(settings) as trust:
            return await work(trust)

    try:
        return asyncio.run(run())
    except ClientError as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from None


@client_app.command("create")
def client_create(
    name: Annotated[str, typer.Option(help="The client's name (shown at sign-in).")],
    scope: Annotated[
        list[str], typer.Option(help="An API scope the client may ask for (repeatable).")
    ],
    orgnr: Annotated[
        str | None, typer.Option(help="The client's organisation (multi-tenant: the supplier).")
    ] = None,
    child_orgnr: Annotated[
        list[str] | None, typer.Option(help="A child organisation it may act for (repeatable).")
    ] = None,
    multi_tenant: Annotated[bool, typer.Option(help="A supplier acting for customers.")] = False,
    redirect_uri: Annotated[
        list[str] | None, typer.Option(help="For sign-in (authorization_code); repeatable.")
    ] = None,
    grant: Annotated[
        list[str] | None, typer.Option(help="A grant type (default: from the other options).")
    ] = None,
    exchange_audience: Annotated[
        list[str] | None, typer.Option(help="Token exchange: an audience it acts for.")
    ] = None,
    citizen: Annotated[bool, typer.Option(help="Citizens sign in through this client.")] = False,
    bearer: Annotated[bool, typer.Option(help="Allow tokens without DPoP binding.")] = False,
    alg: Annotated[str, typer.Option(help="The client key's algorithm.")] = "ES256",
    as_json: Annotated[bool, typer.Option("--json", help="Print only the JSON.")] = False,
    data_dir: DataDir = DEFAULT_DATA_DIR,
    database_url: DatabaseUrlOption = None,
    public_url: PublicUrl = None,
) -> None:
    """Register a client with a new key pair and print its configuration (with the private
    key: keep it secret)."""
    from samhandling.app import api_resources
    from samhandling.platform.auth import claims as c
    from samhandling.services.trust.admin import client_configuration
    from samhandling.services.trust.clients import LOGIN_CITIZEN, LOGIN_PERSONNEL

    settings = _settings(data_dir, database_url, public_url=public_url)
    scopes = [s for value in scope for s in value.split()]
    known = {s for r in api_resources() for s in r.scopes} | c.IDENTITY_SCOPES

    async def create(trust: Any) -> dict:
        client, jwk = await trust.clients.create(
            name=name,
            scopes=scopes,
            known_scopes=known,
            grant_types=grant,
            redirect_uris=redirect_uri,
            tenancy=c.TENANCY_MULTI if multi_tenant else c.TENANCY_SINGLE,
            orgnr=orgnr,
            child_orgnrs=child_orgnr,
            allow_bearer=bearer,
            login=LOGIN_CITIZEN if citizen else LOGIN_PERSONNEL,
            exchange_audiences=exchange_audience,
            alg=alg,
        )
        return client_configuration(trust, client, jwk)

    configuration = _trust_command(settings, create)
    if not as_json:
        console.print(
            f"registered client [bold]{configuration['client_id']}[/bold]; its configuration"
            " follows (the jwk is the private key: store it safely)"
        )
    _print_json(configuration)


@client_app.command("list")
def client_list(
    as_json: Annotated[bool, typer.Option("--json")] = False,
    data_dir: DataDir = DEFAULT_DATA_DIR,
    database_url: DatabaseUrlOption = None,
) -> None:
    """List the registered clients."""
    from samhandling.services.trust.admin import client_summary

    async def listing(trust: Any) -> list:
        return [client_summary(client) for client in await trust.clients.all()]

    clients = _trust_command(_settings(data_dir, database_url), listing)
    if as_json:
        _print_json(clients)
        return
    for client in clients:
        state = "enabled " if client["enabled"] else "disabled"
        typer.echo(
            f"{client['client_id']}  {state}  orgnr={client['orgnr'] or '-'}  "
            f"{client['tenancy']}  {client['name']}  scopes={' '.join(client['scopes'])}"
        )


@client_app.command("disable")
def client_disable(
    client_id: str, data_dir: DataDir = DEFAULT_DATA_DIR, database_url: DatabaseUrlOption = None
) -> None:
    """Disable a client: it gets no new tokens (issued tokens live until they expire)."""
    _set_enabled(client_id, False, _settings(data_dir, database_url))


@client_app.command("enable")
def client_enable(
    client_id: str, data_dir: DataDir = DEFAULT_DATA_DIR, database_url: DatabaseUrlOption = None
) -> None:
    """Enable a disabled client again."""
    _set_enabled(client_id, True, _settings(data_dir, database_url))


def _set_enabled(client_id: str, enabled: bool, settings: Settings) -> None:
    _trust_command(settings, lambda t: t.clients.set_enabled(client_id, enabled))
    typer.echo(f"{'enabled' if enabled else 'disabled'} {client_id}")


@client_app.command("rotate-key")
def client_rotate_key(
    client_id: str,
    keep_old: Annotated[
        bool, typer.Option(help="Keep accepting the old key until the next rotation.")
    ] = False,
    data_dir: DataDir = DEFAULT_DATA_DIR,
    database_url: DatabaseUrlOption = None,
) -> None:
    """Give a client a new key pair; prints the new private JWK."""
    jwk = _trust_command(
        _settings(data_dir, database_url),
        lambda t: t.clients.rotate_key(client_id, keep_old=keep_old),
    )
    _print_json(jwk)


@client_app.command("delegate")
def client_delegate(
    parent_orgnr: Annotated[str, typer.Option(help="The organisation that delegates.")],
    supplier_orgnr: Annotated[str, typer.Option(help="The supplier it lets act for it.")],
    remove: Annotated[bool, typer.Option(help="Withdraw the delegation.")] = False,
    data_dir: DataDir = DEFAULT_DATA_DIR,
    database_url: DatabaseUrlOption = None,
) -> None:
    """Record a delegation (as in Altinn) from an organisation to a multi-tenant supplier."""
    _trust_command(
        _settings(data_dir, database_url),
        lambda t: t.clients.delegate(parent_orgnr, supplier_orgnr, not remove),
    )
    typer.echo(f"{'removed' if remove else 'added'} delegation {parent_orgnr} -> {supplier_orgnr}")


@keys_app.command("rotate")
def keys_rotate(
    data_dir: DataDir = DEFAULT_DATA_DIR, database_url: DatabaseUrlOption = None
) -> None:
    """Make a new signing key; tokens signed by the old one stay valid until they expire."""
    kid = _trust_command(_settings(data_dir, database_url), lambda t: t.keys.rotate())
    typer.echo(f"new signing key {kid}")


@keys_app.command("list")
def keys_list(data_dir: DataDir = DEFAULT_DATA_DIR, database_url: DatabaseUrlOption = None) -> None:
    """List the signing keys (newest first) and when the older ones retire."""

    async def listing(trust: Any) -> list:
        return await trust.store.keys()

    for key in _trust_command(_settings(data_dir, database_url), listing):
        state = "current" if key.retire_at is None else f"retires at {key.retire_at}"
        typer.echo(f"{key.kid}  {key.alg}  created {key.created_at}  {state}")


audit_app = typer.Typer(help="The audit trail.", no_args_is_help=True)
app.add_typer(audit_app, name="audit")


@audit_app.command("verify")
def audit_verify(
    data_dir: DataDir = DEFAULT_DATA_DIR, database_url: DatabaseUrlOption = None
) -> None:
    """Check the audit trail's hash chains; exit status 1 when a row was changed, inserted
    or removed."""
    report = asyncio.run(_verify_audit(_settings(data_dir, database_url)))
    for problem in report.problems:
        typer.echo(str(problem))
    if report.unlisted:
        typer.echo(f"... and {report.unlisted} more problem(s)")
    found = len(report.problems) + report.unlisted
    typer.echo(
        f"checked {report.rows} rows in {report.chains} chains: "
        + (f"{found} problem(s)" if found else "intact")
    )
    if found and report.problems[0].what == "chain registration changed":
        console.print(
            "[yellow]hint:[/yellow] the first chain's registration does not match: is this the"
            " platform secret (SAMHANDLING_SECRET_KEY or the data directory's secret.key) the"
            " server writes with?",
            soft_wrap=True,
        )
    if found:
        raise typer.Exit(1)


async def _verify_audit(settings: Settings) -> Any:
    from samhandling.infrastructure.secrets import derive, platform_secret
    from samhandling.platform.audit import AUDIT_KEY_PURPOSE, verify
    from samhandling.platform.fhir.storage import open_store

    key = derive(platform_secret(settings.secret_key, settings.data_dir), AUDIT_KEY_PURPOSE)
    store = await open_store(settings.effective_database_url, pool_size=2)
    try:
        return await verify(store, key)
    finally:
        await store.close()


@app.command()
def token(
    person: Annotated[
        str | None, typer.Option(help="Sign in as this person (fødselsnummer) via the test IdP.")
    ] = None,
    security_level: Annotated[int, typer.Option(min=3, max=4)] = 4,
    citizen: Annotated[bool, typer.Option(help="A citizen token instead of personnel.")] = False,
    orgnr: Annotated[str | None, typer.Option(help="The organisation to act for.")] = None,
    scope: Annotated[str | None, typer.Option(help="Scopes (space-separated).")] = None,
    client_config: Annotated[
        Path | None, typer.Option(help="A client's JSON from 'client create --json'.")
    ] = None,
    url: Annotated[str | None, typer.Option(help="The URL the curl line calls.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print token, DPoP key, client.")] = False,
    data_dir: DataDir = DEFAULT_DATA_DIR,
    database_url: DatabaseUrlOption = None,
    public_url: PublicUrl = None,
) -> None:
    """Get a DPoP-bound access token from a running server and print a ready curl line."""
    import orjson

    from samhandling.services.trust.admin import CLI_REDIRECT_URI, USER_SCOPES, cli_client
    from samhandling.services.trust.tokentool import TokenClient, TokenRequestError

    settings = _settings(data_dir, database_url, public_url=public_url)
    if client_config is not None:
        config = orjson.loads(client_config.read_bytes())
    else:
        config = _trust_command(settings, lambda t: cli_client(t, settings, citizen, orgnr))
    issuer = config.get("issuer", settings.issuer)
    tool = TokenClient(issuer, config["client_id"], config["jwk"])
    api_scope = " ".join(_default_api_scopes())
    try:
        if person or citizen:
            if not person:
                console.print("[red]error:[/red] --citizen needs --person <fødselsnummer>")
                raise typer.Exit(2)
            tokens = tool.sign_in(
                person,
                scope=scope or f"{USER_SCOPES} {api_scope}",
                redirect_uri=config.get("redirect_uris", [CLI_REDIRECT_URI])[0],
                security_level=security_level,
            )
        else:
            tokens = tool.client_credentials(scope or api_scope)
    except TokenRequestError as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(1) from None
    except httpx_errors() as exc:
        console.print(f"[red]error:[/red] cannot reach {issuer}: {exc}")
        raise typer.Exit(1) from None
    target = url or f"{issuer}/fhir/Patient?_count=5"
    proof = tool.dpop.proof("GET", target, access_token=tokens.access_token)
    if as_json:
        _print_json(
            {
                "access_token": tokens.access_token,
                "token_type": tokens.raw.get("token_type"),
                "expires_in": tokens.raw.get("expires_in"),
                "scope": tokens.raw.get("scope"),
                "refresh_token": tokens.refresh_token,
                "id_token": tokens.raw.get("id_token"),
                "dpop_jwk": tool.dpop.jwk,
                "client_id": tool.client_id,
                "issuer": issuer,
            }
        )
        return
    console.print(
        "[green]token issued[/green]; this curl line works once within 60 s (each DPoP proof"
        " is single-use):"
    )
    typer.echo(
        f"curl -s '{target}' -H 'Authorization: DPoP {tokens.access_token}' -H 'DPoP: {proof}'"
    )


def _default_api_scopes() -> list[str]:
    """What ``samhandling token`` asks for unless told: every API scope but the one that
    shows protected persons' addresses."""
    from samhandling.app import api_resources
    from samhandling.services.registries import PROTECTED_SCOPE

    scopes = {scope for resource in api_resources() for scope in resource.scopes}
    return sorted(scopes - {PROTECTED_SCOPE})


def httpx_errors() -> type[Exception]:
    """The transport errors of the HTTP client."""
    import httpx

    return httpx.TransportError


def main() -> None:
    """Entry point of the ``samhandling`` command."""
    app()
