"""Resource storage: one `Store` interface, SQLite and PostgreSQL backends chosen by URL."""

from __future__ import annotations

from samhandling.infrastructure.database import POSTGRESQL, SQLITE, DatabaseUrl
from samhandling.platform.fhir.storage.base import (
    BinaryInfo,
    HistoryQuery,
    HistoryRow,
    ResourceVersion,
    Store,
    StoreTransaction,
)

__all__ = [
    "BinaryInfo",
    "HistoryQuery",
    "HistoryRow",
    "ResourceVersion",
    "Store",
    "StoreTransaction",
    "open_store",
]


async def open_store(url: str, *, migrate: bool = True, pool_size: int = 10) -> Store:
    """Open the store for a database URL, applying pending migrations unless told not to."""
    parsed = DatabaseUrl.parse(url)
    if parsed.backend == SQLITE:
        from samhandling.platform.fhir.storage.sqlite import SQLiteStore

        assert parsed.path is not None
        return SQLiteStore.open(parsed.path, migrate=migrate)
    if parsed.backend == POSTGRESQL:
        from samhandling.platform.fhir.storage.postgres import PostgresStore

        return await PostgresStore.open(parsed.url, migrate=migrate, pool_size=pool_size)
    raise AssertionError(parsed.backend)
