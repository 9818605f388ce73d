"""The ``samhandling`` command: serve, migrate, load demo data."""

from __future__ import annotations

import asyncio
import logging
import os
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from samhandling.infrastructure.database import DatabaseUrl, DatabaseUrlError
from samhandling.settings import DEFAULT_DATA_DIR, Settings

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
    log_level: Annotated[str, typer.Option(envvar="SAMHANDLING_LOG_LEVEL")] = "info",
) -> None:
    """Start the platform (FHIR API under /fhir)."""
    import uvicorn

    settings = _settings(
        data_dir, database_url, host=host, port=port, workers=workers, log_level=log_level
    )
    logging.basicConfig(
        level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    asyncio.run(_migrate(settings))
    if demo:
        asyncio.run(_load_demo(settings))
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
    patients: Annotated[int, typer.Option(min=0)] = 20,
) -> None:
    """Load synthetic demo data (care providers and patients) into the database."""
    asyncio.run(_load_demo(_settings(data_dir, database_url), patients))


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


async def _load_demo(settings: Settings, patients: int = 20) -> None:
    from samhandling.platform.fhir.engine import FhirEngine
    from samhandling.platform.fhir.rest.bundle import process_bundle
    from samhandling.platform.fhir.storage import open_store
    from samhandling.synth import care_providers_bundle, patient_bundles

    store = await open_store(settings.effective_database_url)
    try:
        engine = FhirEngine(store)
        marker = care_providers_bundle()["entry"][0]["resource"]
        if await store.read(marker["resourceType"], marker["id"]) is not None:
            console.print("demo data is already loaded")
            return
        base = f"http://{settings.host}:{settings.port}/fhir"
        await process_bundle(engine, care_providers_bundle(), base, "minimal")
        for bundle in patient_bundles(patients):
            await process_bundle(engine, bundle, base, "minimal")
        console.print(f"loaded demo data: care providers and {patients} patients")
    finally:
        await store.close()


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
    from samhandling.platform.fhir.engine import FhirEngine
    from samhandling.platform.fhir.search import reindex
    from samhandling.platform.fhir.storage import open_store

    store = await open_store(settings.effective_database_url)
    try:
        engine = FhirEngine(store)
        await engine.refresh_search_parameters()
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
    finally:
        await store.close()


def main() -> None:
    """Entry point of the ``samhandling`` command."""
    app()
