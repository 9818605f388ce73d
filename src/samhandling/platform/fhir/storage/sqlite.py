"""SQLite backend: the embedded default.

Statements are short and run directly on the event loop (a thread-pool hop measured 5x
slower). Reads use their own connection, so in WAL mode they never wait for a writer.
Writes go through one connection guarded by an asyncio lock; ``BEGIN IMMEDIATE`` plus the
busy timeout serialise writers in other worker processes.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from samhandling.infrastructure.database import SQLITE, connect_sqlite, migrate_sqlite
from samhandling.platform.fhir.datetimes import from_micros, to_micros
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
from samhandling.platform.fhir.storage.index_sql import SQLITE_DELETES, sqlite_insert

WRITE_LOCK_TIMEOUT = 30.0  # seconds a writer waits for another process's write transaction


def _version(row: tuple) -> ResourceVersion:
    type_, id_, version, last_updated, content = row
    return ResourceVersion(type_, id_, version, from_micros(last_updated), content)


def _history(conn: sqlite3.Connection, query: HistoryQuery) -> list[HistoryRow]:
    sql, args = history_sql(query, lambda _: "?", to_micros)
    return [HistoryRow(row[0], row[1], _version(row[2:])) for row in conn.execute(sql, args)]


_READ = "SELECT type, id, version, last_updated, content FROM resource WHERE type = ? AND id = ?"
_VREAD = (
    "SELECT type, id, version, last_updated, content FROM resource_history"
    " WHERE type = ? AND id = ? AND version = ?"
)
_INSERT_CURRENT = (
    "INSERT INTO resource (type, id, version, last_updated, deleted, content)"
    " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (type, id) DO NOTHING RETURNING rid"
)
_INSERT_HISTORY = (
    "INSERT INTO resource_history (type, id, version, last_updated, method, content)"
    " VALUES (?, ?, ?, ?, ?, ?)"
)
_REPLACE_CURRENT = (
    "UPDATE resource SET version = ?, last_updated = ?, deleted = ?, content = ?"
    " WHERE type = ? AND id = ? AND version = ? RETURNING rid"
)
_BINARY_INFO = "SELECT size, sha1, sha256, chunks FROM binary_content WHERE id = ? AND version = ?"
_BINARY_CHUNK = "SELECT data FROM binary_chunk WHERE id = ? AND version = ? AND seq = ?"
_INSERT_BINARY = (
    "INSERT INTO binary_content (id, version, size, sha1, sha256, chunks) VALUES (?, ?, ?, ?, ?, ?)"
)
_INSERT_CHUNK = "INSERT INTO binary_chunk (id, version, seq, data) VALUES (?, ?, ?, ?)"


def _binary_info(conn: sqlite3.Connection, id: str, version: int) -> BinaryInfo | None:
    row = conn.execute(_BINARY_INFO, (id, version)).fetchone()
    return BinaryInfo(row[0], row[1], row[2], row[3]) if row else None


def _binary_chunk(conn: sqlite3.Connection, id: str, version: int, seq: int) -> bytes:
    row = conn.execute(_BINARY_CHUNK, (id, version, seq)).fetchone()
    if row is None:
        raise LookupError(f"Binary/{id} version {version} has no chunk {seq}")
    return row[0]


def _write_index(
    conn: sqlite3.Connection, items: list[tuple[int, IndexRows]], replace: bool
) -> None:
    """Store the index rows of resources by rid (first removing their old rows when
    ``replace``), with one ``executemany`` per table for all of them."""
    if replace:
        for delete in SQLITE_DELETES:
            conn.executemany(delete, [(rid,) for rid, _ in items])
    by_table: dict[str, list[tuple]] = {}
    for rid, index in items:
        for table, rows in index.items():
            by_table.setdefault(table, []).extend((rid, *row) for row in rows)
    for table, rows in by_table.items():
        if rows:
            conn.executemany(sqlite_insert(table), rows)


class SQLiteTransaction:
    """Writes on the writer connection between BEGIN IMMEDIATE and COMMIT."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    async def current(self, type: str, id: str, *, lock: bool = True) -> ResourceVersion | None:
        row = self._conn.execute(_READ, (type, id)).fetchone()
        return _version(row) if row else None

    async def vread(self, type: str, id: str, version: int) -> ResourceVersion | None:
        row = self._conn.execute(_VREAD, (type, id, version)).fetchone()
        return _version(row) if row else None

    async def insert_new(
        self, resource: ResourceVersion, method: str, index: IndexRows = NO_INDEX
    ) -> bool:
        r = resource
        micros = to_micros(r.last_updated)
        row = self._conn.execute(
            _INSERT_CURRENT, (r.type, r.id, r.version, micros, r.deleted, r.content)
        ).fetchone()
        if row is None:
            return False
        self._conn.execute(_INSERT_HISTORY, (r.type, r.id, r.version, micros, method, r.content))
        _write_index(self._conn, [(row[0], index)], replace=False)
        return True

    async def insert_many_new(
        self, resources: list[ResourceVersion], method: str, indexes: list[IndexRows]
    ) -> None:
        insert = (
            "INSERT INTO resource (type, id, version, last_updated, deleted, content)"
            " VALUES (?, ?, ?, ?, 0, ?) RETURNING rid"
        )
        history = (
            "INSERT INTO resource_history (type, id, version, last_updated, method, content)"
            f" VALUES (?, ?, ?, ?, '{method}', ?)"
        )
        rows = []
        items: list[tuple[int, IndexRows]] = []
        for r, index in zip(resources, indexes, strict=True):
            row = (r.type, r.id, r.version, to_micros(r.last_updated), r.content)
            rows.append(row)
            items.append((self._conn.execute(insert, row).fetchone()[0], index))
        self._conn.executemany(history, rows)
        _write_index(self._conn, items, replace=False)

    async def replace(
        self,
        resource: ResourceVersion,
        method: str,
        expected_version: int,
        index: IndexRows = NO_INDEX,
    ) -> None:
        r = resource
        micros = to_micros(r.last_updated)
        row = self._conn.execute(
            _REPLACE_CURRENT,
            (r.version, micros, r.deleted, r.content, r.type, r.id, expected_version),
        ).fetchone()
        if row is None:
            raise ConcurrentWriteError(f"{r.type}/{r.id} changed under a held write lock")
        self._conn.execute(_INSERT_HISTORY, (r.type, r.id, r.version, micros, method, r.content))
        _write_index(self._conn, [(row[0], index)], replace=True)

    async def reindex(self, items: list[tuple[int, IndexRows]]) -> None:
        _write_index(self._conn, items, replace=True)

    async def write_binary(
        self, id: str, version: int, info: BinaryInfo, chunks: Iterable[bytes]
    ) -> None:
        self._conn.execute(
            _INSERT_BINARY, (id, version, info.size, info.sha1, info.sha256, info.chunks)
        )
        rows = ((id, version, seq, chunk) for seq, chunk in enumerate(chunks))
        self._conn.executemany(_INSERT_CHUNK, rows)  # takes one row at a time

    async def binary_info(self, id: str, version: int) -> BinaryInfo | None:
        return _binary_info(self._conn, id, version)

    async def binary_chunk(self, id: str, version: int, seq: int) -> bytes:
        return _binary_chunk(self._conn, id, version, seq)

    async def history(self, query: HistoryQuery) -> list[HistoryRow]:
        return _history(self._conn, query)

    async def fetch(self, sql: str, args: list[Any]) -> list[Any]:
        return self._conn.execute(sql, args).fetchall()

    async def lock(self, key: int) -> None:
        """Nothing to do: BEGIN IMMEDIATE already serialises every writer."""


class SQLiteStore:
    """The store on one SQLite file."""

    backend = SQLITE

    def __init__(self, reader: sqlite3.Connection, writer: sqlite3.Connection) -> None:
        self._reader = reader
        self._writer = writer
        self._write_lock = asyncio.Lock()

    @classmethod
    def open(cls, path: Path, *, migrate: bool = True) -> SQLiteStore:
        """Open (and by default migrate) the database file at ``path``."""
        writer = connect_sqlite(path)
        if migrate:
            migrate_sqlite(writer)
        writer.execute("PRAGMA busy_timeout=0")  # see _begin: wait without blocking the loop
        return cls(connect_sqlite(path), writer)

    async def read(self, type: str, id: str) -> ResourceVersion | None:
        row = self._reader.execute(_READ, (type, id)).fetchone()
        return _version(row) if row else None

    async def vread(self, type: str, id: str, version: int) -> ResourceVersion | None:
        row = self._reader.execute(_VREAD, (type, id, version)).fetchone()
        return _version(row) if row else None

    async def history(self, query: HistoryQuery) -> list[HistoryRow]:
        return _history(self._reader, query)

    async def fetch(self, sql: str, args: list[Any]) -> list[Any]:
        return self._reader.execute(sql, args).fetchall()

    async def binary_info(self, id: str, version: int) -> BinaryInfo | None:
        return _binary_info(self._reader, id, version)

    async def binary_chunk(self, id: str, version: int, seq: int) -> bytes:
        return _binary_chunk(self._reader, id, version, seq)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[SQLiteTransaction]:
        async with self._write_lock:
            await self._begin()
            try:
                yield SQLiteTransaction(self._writer)
            except BaseException:
                self._writer.execute("ROLLBACK")
                raise
            self._writer.execute("COMMIT")

    async def _begin(self) -> None:
        """``BEGIN IMMEDIATE`` without blocking the event loop while another process writes.

        The writer has no busy timeout: when another worker process holds the write lock,
        this waits with ``asyncio.sleep`` (0.5 ms doubling to 5 ms) and tries again, so the
        process keeps serving reads meanwhile. Gives up after `WRITE_LOCK_TIMEOUT` seconds.
        """
        delay = 0.0005
        deadline = time.monotonic() + WRITE_LOCK_TIMEOUT
        while True:
            try:
                self._writer.execute("BEGIN IMMEDIATE")
                return
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or time.monotonic() > deadline:
                    raise
            await asyncio.sleep(delay)
            delay = min(delay * 2, 0.005)

    async def close(self) -> None:
        self._reader.close()
        self._writer.close()
