"""A replay cache shared by every worker process: each JWT id (``jti``) is accepted once.

Client assertions and DPoP proofs carry a ``jti``; the cache remembers it until the token
could no longer be accepted anyway (its ``exp`` or the end of the ``iat`` window), so its
size is bounded by the request rate times that window.

- PostgreSQL: an UNLOGGED table (no WAL; a crash empties it, and every entry it held has
  an acceptance window of seconds, which a restart outlasts).
- SQLite: a side file next to the database with ``synchronous=OFF``, so an API read never
  waits for the FHIR store's writer lock (decision 0009).
"""

from __future__ import annotations

import asyncio
import hashlib
import sqlite3
import time
from pathlib import Path
from typing import Protocol

from samhandling.infrastructure.database import POSTGRESQL, DatabaseUrl
from samhandling.platform.fhir.storage import Store

PURGE_EVERY = 4096  # inserts between deletions of expired entries


class ReplayCache(Protocol):
    """Remembers keys until they expire."""

    async def first_use(self, namespace: str, key: str, expires_at: int) -> bool:
        """Record ``key``; False when it was recorded before and has not expired."""
        ...

    def close(self) -> None:
        """Release resources."""
        ...


def _digest(namespace: str, key: str) -> bytes:
    return hashlib.blake2b(f"{namespace}\x00{key}".encode(), digest_size=16).digest()


class SQLiteReplayCache:
    """The cache in its own SQLite file (WAL, no fsync)."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._conn.execute("PRAGMA busy_timeout=2000")
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=OFF")
        self._conn.execute(
            "CREATE TABLE IF NOT EXISTS replay (key BLOB PRIMARY KEY, expires_at INTEGER NOT NULL)"
            " WITHOUT ROWID"
        )
        self._inserts = 0

    async def first_use(self, namespace: str, key: str, expires_at: int) -> bool:
        digest = _digest(namespace, key)
        self._inserts += 1
        if self._inserts % PURGE_EVERY == 0:
            self._conn.execute("DELETE FROM replay WHERE expires_at < ?", (int(time.time()),))
        # one statement: an expired entry is replaced, a live one is kept (then 0 rows change)
        cursor = self._conn.execute(
            "INSERT INTO replay (key, expires_at) VALUES (?, ?) ON CONFLICT (key) DO UPDATE"
            " SET expires_at = excluded.expires_at WHERE replay.expires_at < ?",
            (digest, expires_at, int(time.time())),
        )
        return cursor.rowcount == 1

    def close(self) -> None:
        self._conn.close()


class PostgresReplayCache:
    """The cache in an UNLOGGED PostgreSQL table (migration 0003), group-committed: the keys
    of requests that arrive while one insert is on its way go together in the next one, so
    a busy worker makes one round trip for many requests instead of one each."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self._inserts = 0
        self._waiting: list[tuple[bytes, int, asyncio.Future[bool]]] = []
        self._flushing = False
        self._flusher: asyncio.Future[None] | None = None

    async def first_use(self, namespace: str, key: str, expires_at: int) -> bool:
        future: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._waiting.append((_digest(namespace, key), expires_at, future))
        if not self._flushing:
            self._flushing = True
            self._flusher = asyncio.ensure_future(self._flush())  # a reference keeps it alive
        return await future

    async def _flush(self) -> None:
        try:
            while self._waiting:
                batch, self._waiting = self._waiting, []
                try:
                    fresh = await self._insert(batch)
                except Exception as exc:  # every waiter gets the error, none hangs
                    for _, _, future in batch:
                        if not future.done():
                            future.set_exception(exc)
                    continue
                for digest, _, future in batch:
                    if not future.done():
                        future.set_result(fresh.pop(digest, False))
        finally:
            self._flushing = False

    async def _insert(self, batch: list[tuple[bytes, int, asyncio.Future[bool]]]) -> dict:
        keys: dict[bytes, int] = {}
        for digest, expires_at, _ in batch:  # one row per key: a repeat in a batch is a replay
            keys.setdefault(digest, expires_at)
        now = int(time.time())
        self._inserts += len(batch)
        if self._inserts >= PURGE_EVERY:
            self._inserts = 0
            await self._store.fetch("DELETE FROM auth_replay WHERE expires_at < $1", [now])
        rows = await self._store.fetch(
            "INSERT INTO auth_replay (key, expires_at)"
            " SELECT * FROM unnest($1::bytea[], $2::bigint[]) ON CONFLICT (key) DO UPDATE"
            " SET expires_at = excluded.expires_at WHERE auth_replay.expires_at < $3"
            " RETURNING key",
            [list(keys), list(keys.values()), now],
        )
        return {bytes(row[0]): True for row in rows}

    def close(self) -> None:
        """Nothing to release: the store's pool is closed with the store."""


def open_replay_cache(store: Store, database_url: str) -> ReplayCache:
    """The replay cache that belongs with ``store``."""
    parsed = DatabaseUrl.parse(database_url)
    if parsed.backend == POSTGRESQL:
        return PostgresReplayCache(store)
    assert parsed.path is not None
    return SQLiteReplayCache(parsed.path.with_name(parsed.path.stem + "-replay.db"))
