"""PostgreSQL backend (asyncpg with a pool).

Writers lock the current row with ``SELECT ... FOR UPDATE``; a brand-new id is claimed with
``INSERT ... ON CONFLICT DO NOTHING``, which waits for a concurrent inserter and then
reports the conflict, so exactly one of many concurrent creators of an id makes version 1.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from typing import Any

import asyncpg

from samhandling.infrastructure.database import POSTGRESQL, create_pg_pool, migrate_postgres
from samhandling.platform.fhir.storage.base import (
    NO_INDEX,
    BinaryInfo,
    ConcurrentWriteError,
    HistoryQuery,
    HistoryRow,
    IndexRows,
    ResourceVersion,
)
from samhandling.platform.fhir.storage.history_sql import history_sql
from samhandling.platform.fhir.storage.index_sql import postgres_arguments, postgres_write

_READ = "SELECT type, id, version, last_updated, content FROM resource WHERE type = $1 AND id = $2"
_READ_FOR_UPDATE = _READ + " FOR UPDATE"
_VREAD = (
    "SELECT type, id, version, last_updated, content FROM resource_history"
    " WHERE type = $1 AND id = $2 AND version = $3"
)
_INSERT_CURRENT = (
    "INSERT INTO resource (type, id, version, last_updated, deleted, content)"
    " VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (type, id) DO NOTHING RETURNING rid"
)
_INSERT_HISTORY = (
    "INSERT INTO resource_history (type, id, version, last_updated, method, content)"
    " VALUES ($1, $2, $3, $4, $5, $6)"
)
_REPLACE_CURRENT = (
    "UPDATE resource SET version = $1, last_updated = $2, deleted = $3, content = $4"
    " WHERE type = $5 AND id = $6 AND version = $7 RETURNING rid"
)
_INSERT_MANY_CURRENT = (
    "INSERT INTO resource (type, id, version, last_updated, deleted, content)"
    " SELECT t, i, v, l, false, c FROM unnest($1::text[], $2::text[], $3::int[],"
    " $4::timestamptz[], $5::bytea[]) AS u(t, i, v, l, c) RETURNING id, rid"
)
_INSERT_MANY_HISTORY = (
    "INSERT INTO resource_history (type, id, version, last_updated, method, content)"
    " SELECT t, i, v, l, $6, c FROM unnest($1::text[], $2::text[], $3::int[],"
    " $4::timestamptz[], $5::bytea[]) AS u(t, i, v, l, c)"
)
_BINARY_INFO = (
    "SELECT size, sha1, sha256, chunks FROM binary_content WHERE id = $1 AND version = $2"
)
_BINARY_CHUNK = "SELECT data FROM binary_chunk WHERE id = $1 AND version = $2 AND seq = $3"
_INSERT_BINARY = (
    "INSERT INTO binary_content (id, version, size, sha1, sha256, chunks)"
    " VALUES ($1, $2, $3, $4, $5, $6)"
)
_INSERT_CHUNK = "INSERT INTO binary_chunk (id, version, seq, data) VALUES ($1, $2, $3, $4)"


async def _binary_info(
    conn: asyncpg.Connection | asyncpg.Pool, id: str, version: int
) -> BinaryInfo | None:
    row = await conn.fetchrow(_BINARY_INFO, id, version)
    return BinaryInfo(row[0], row[1], row[2], row[3]) if row else None


async def _binary_chunk(
    conn: asyncpg.Connection | asyncpg.Pool, id: str, version: int, seq: int
) -> bytes:
    data = await conn.fetchval(_BINARY_CHUNK, id, version, seq)
    if data is None:
        raise LookupError(f"Binary/{id} version {version} has no chunk {seq}")
    return data


def _version(row: asyncpg.Record) -> ResourceVersion:
    return ResourceVersion(row[0], row[1], row[2], row[3], row[4])


async def _history(
    conn: asyncpg.Connection | asyncpg.Pool, query: HistoryQuery
) -> list[HistoryRow]:
    sql, args = history_sql(query, lambda n: f"${n}", lambda moment: moment)
    rows = await conn.fetch(sql, *args)
    return [HistoryRow(row[0], row[1], _version(row[2:])) for row in rows]


class PostgresTransaction:
    """Writes on one pooled connection inside a database transaction."""

    def __init__(self, conn: asyncpg.Connection) -> None:
        self._conn = conn

    async def current(self, type: str, id: str, *, lock: bool = True) -> ResourceVersion | None:
        row = await self._conn.fetchrow(_READ_FOR_UPDATE if lock else _READ, type, id)
        return _version(row) if row else None

    async def vread(self, type: str, id: str, version: int) -> ResourceVersion | None:
        row = await self._conn.fetchrow(_VREAD, type, id, version)
        return _version(row) if row else None

    async def insert_new(
        self, resource: ResourceVersion, method: str, index: IndexRows = NO_INDEX
    ) -> bool:
        r = resource
        rid = await self._conn.fetchval(
            _INSERT_CURRENT, r.type, r.id, r.version, r.last_updated, r.deleted, r.content
        )
        if rid is None:
            return False
        await self._conn.execute(
            _INSERT_HISTORY, r.type, r.id, r.version, r.last_updated, method, r.content
        )
        await self._write_index([rid], [index], delete=False)
        return True

    async def insert_many_new(
        self, resources: list[ResourceVersion], method: str, indexes: list[IndexRows]
    ) -> None:
        columns = (
            [r.type for r in resources],
            [r.id for r in resources],
            [r.version for r in resources],
            [r.last_updated for r in resources],
            [r.content for r in resources],
        )
        rids = {row[0]: row[1] for row in await self._conn.fetch(_INSERT_MANY_CURRENT, *columns)}
        await self._conn.execute(_INSERT_MANY_HISTORY, *columns, method)
        await self._write_index([rids[r.id] for r in resources], indexes, delete=False)

    async def replace(
        self,
        resource: ResourceVersion,
        method: str,
        expected_version: int,
        index: IndexRows = NO_INDEX,
    ) -> None:
        r = resource
        rid = await self._conn.fetchval(
            _REPLACE_CURRENT,
            r.version,
            r.last_updated,
            r.deleted,
            r.content,
            r.type,
            r.id,
            expected_version,
        )
        if rid is None:
            raise ConcurrentWriteError(f"{r.type}/{r.id} changed under a held write lock")
        await self._conn.execute(
            _INSERT_HISTORY, r.type, r.id, r.version, r.last_updated, method, r.content
        )
        await self._write_index([rid], [index], delete=True)

    async def write_binary(
        self, id: str, version: int, info: BinaryInfo, chunks: Iterable[bytes]
    ) -> None:
        await self._conn.execute(
            _INSERT_BINARY, id, version, info.size, info.sha1, info.sha256, info.chunks
        )
        for seq, chunk in enumerate(chunks):  # one at a time: never all in memory
            await self._conn.execute(_INSERT_CHUNK, id, version, seq, chunk)

    async def binary_info(self, id: str, version: int) -> BinaryInfo | None:
        return await _binary_info(self._conn, id, version)

    async def binary_chunk(self, id: str, version: int, seq: int) -> bytes:
        return await _binary_chunk(self._conn, id, version, seq)

    async def reindex(self, items: list[tuple[int, IndexRows]]) -> None:
        if items:
            await self._write_index([i[0] for i in items], [i[1] for i in items], delete=True)

    async def _write_index(self, rids: list[int], indexes: list[IndexRows], delete: bool) -> None:
        tables, arguments = postgres_arguments(rids, indexes)
        if tables or delete:
            await self._conn.execute(postgres_write(tables, delete), rids, *arguments)

    async def history(self, query: HistoryQuery) -> list[HistoryRow]:
        return await _history(self._conn, query)

    async def fetch(self, sql: str, args: list[Any]) -> list[Any]:
        return await self._conn.fetch(sql, *args)

    async def lock(self, key: int) -> None:
        await self._conn.execute("SELECT pg_advisory_xact_lock($1)", key)


class PostgresStore:
    """The store on a PostgreSQL database.

    Two connection pools: one for transactions, one for single statements (reads and the
    lookups services make). Code inside a transaction often reads through the store (the
    access policy and the audit trail ask the registers); were both on one pool, a burst of
    transactions waiting on one row's lock could hold every connection while the one holding
    the lock waited for a connection to read: a deadlock. A statement never waits for a
    transaction's connection, so two pools cannot.
    """

    backend = POSTGRESQL

    def __init__(self, transactions: asyncpg.Pool, statements: asyncpg.Pool | None = None) -> None:
        self._transactions = transactions
        self._statements = statements or transactions

    @classmethod
    async def open(cls, url: str, *, migrate: bool = True, pool_size: int = 10) -> PostgresStore:
        """Connect the pools (``pool_size`` connections each at most), and by default
        migrate the schema."""
        transactions = await create_pg_pool(url, min_size=min(2, pool_size), max_size=pool_size)
        if migrate:
            async with transactions.acquire() as conn:
                await migrate_postgres(conn)
        statements = await create_pg_pool(url, min_size=min(2, pool_size), max_size=pool_size)
        return cls(transactions, statements)

    async def read(self, type: str, id: str) -> ResourceVersion | None:
        row = await self._statements.fetchrow(_READ, type, id)
        return _version(row) if row else None

    async def vread(self, type: str, id: str, version: int) -> ResourceVersion | None:
        row = await self._statements.fetchrow(_VREAD, type, id, version)
        return _version(row) if row else None

    async def history(self, query: HistoryQuery) -> list[HistoryRow]:
        return await _history(self._statements, query)

    async def fetch(self, sql: str, args: list[Any]) -> list[Any]:
        return await self._statements.fetch(sql, *args)

    async def binary_info(self, id: str, version: int) -> BinaryInfo | None:
        return await _binary_info(self._statements, id, version)

    async def binary_chunk(self, id: str, version: int, seq: int) -> bytes:
        return await _binary_chunk(self._statements, id, version, seq)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[PostgresTransaction]:
        async with self._transactions.acquire() as conn, conn.transaction():
            yield PostgresTransaction(conn)

    async def close(self) -> None:
        await self._transactions.close()
        if self._statements is not self._transactions:
            await self._statements.close()
