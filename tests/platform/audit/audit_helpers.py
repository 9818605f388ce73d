"""Helpers for the audit trail tests (imported as ``audit_helpers``): records, a started
audit log on a fresh database, and what an administrator could do to the tables."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from conftest import TEST_ENV, fresh_engine, postgres_admin_url
from samhandling.infrastructure.secrets import derive, platform_secret
from samhandling.platform.audit import AUDIT_KEY_PURPOSE, AuditAgent, AuditLog, AuditRecord
from samhandling.platform.fhir.search.sql import numbered
from samhandling.platform.fhir.storage import Store

# the key the CLI derives from the tests' platform secret
KEY = derive(platform_secret(TEST_ENV["SAMHANDLING_SECRET_KEY"], Path()), AUDIT_KEY_PURPOSE)
T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
KARI = "13116900216"  # synthetic-style fødselsnummer of the patient
OLA = "01010112345"
DOCTOR = AuditAgent(
    kind="personnel",
    client_id="epj-client",
    client_name="Legekontorets EPJ",
    person_id="05073500186",
    name="Lege Legesen",
    hpr_number="9144900",
    profession="LE",
    profession_name="Lege",
    orgnr="912159523",
    org_name="Legekontoret AS",
    child_orgnr="974600951",
)


def record(
    minutes: float = 0,
    *,
    patients: tuple[str, ...] = (KARI,),
    service: str = "fhir",
    emergency: bool = False,
    **extra: Any,
) -> AuditRecord:
    """A read by the doctor, ``minutes`` after T0."""
    return AuditRecord(
        recorded=T0 + timedelta(minutes=minutes),
        service=service,
        interaction="read",
        action="R",
        outcome=0,
        agent=DOCTOR,
        patients=patients,
        entities=(f"Patient/{patients[0] if patients else 'none'}",),
        access_basis="AKUTT" if emergency else "SAMTYKKE",
        reason="bevisstløs pasient" if emergency else None,
        emergency=emergency,
        **extra,
    )


@contextlib.asynccontextmanager
async def audited(
    backend: str, tmp_path: Path, **options: Any
) -> AsyncIterator[tuple[Store, AuditLog]]:
    """A started audit log on a brand-new database."""
    async with fresh_engine(backend, tmp_path) as engine:
        log = AuditLog(engine.store, KEY, **options)
        await log.start()
        try:
            yield engine.store, log
        finally:
            await log.stop()


async def count(store: Store, table: str) -> int:
    """Rows in ``table``."""
    return (await store.fetch(f"SELECT count(*) FROM {table}", []))[0][0]


async def chain_rows(store: Store, chain_id: str) -> list[Any]:
    """(id, position, hash) of a chain's rows in order."""
    mark = "$1" if store.backend == "postgresql" else "?"
    sql = f"SELECT id, position, hash FROM audit_record WHERE chain_id = {mark} ORDER BY position"
    return await store.fetch(sql, [chain_id])


async def database_url(store: Store) -> str:
    """The URL of the database ``store`` is open on (for the CLI)."""
    if store.backend == "sqlite":
        return f"sqlite:///{(await store.fetch('PRAGMA database_list', []))[0][2]}"
    name = (await store.fetch("SELECT current_database()", []))[0][0]
    admin_url = postgres_admin_url()
    assert admin_url is not None
    return admin_url.rsplit("/", 1)[0] + f"/{name}"


async def as_administrator(store: Store, *statements: tuple[str, list[Any]]) -> None:
    """Switch the append-only triggers off, as a database administrator can, and run
    ``statements`` (``?`` placeholders)."""
    async with store.transaction() as tx:
        if store.backend == "sqlite":
            triggers = await tx.fetch(
                "SELECT name FROM sqlite_master WHERE type = 'trigger' AND name LIKE 'audit%'", []
            )
            for (name,) in triggers:
                await tx.fetch(f"DROP TRIGGER {name}", [])
        else:
            for table in ("audit_record", "audit_patient", "audit_chain"):
                await tx.fetch(f"ALTER TABLE {table} DISABLE TRIGGER USER", [])
        for sql, args in statements:
            await tx.fetch(numbered(sql) if store.backend == "postgresql" else sql, args)
