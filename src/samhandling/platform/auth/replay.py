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
    """The cache in an UNLOGGED PostgreSQL table (migration 0003)."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self._inserts = 0

    async def first_use(self, namespace: str, key: str, expires_at: int) -> bool:
        digest = _digest(namespace, key)
        self._inserts += 1
        now = int(time.time())
        if self._inserts % PURGE_EVERY == 0:
            await self._store.fetch("DELETE FROM auth_replay WHERE expires_at < $1", [now])
        rows = await self._store.fetch(
            "INSERT INTO auth_replay (key, expires_at) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE"
            " SET expires_at = excluded.expires_at WHERE auth_replay.expires_at < $3 RETURNING 1",
            [digest, expires_at, now],
        )
        return bool(rows)

    def close(self) -> None:
        """Nothing to release: the store's pool is closed with the store."""


def open_replay_cache(store: Store, database_url: str) -> ReplayCache:
    """The replay cache that belongs with ``store``."""
    parsed = DatabaseUrl.parse(database_url)
    if parsed.backend == POSTGRESQL:
        return PostgresReplayCache(store)
    assert parsed.path is not None
    return SQLiteReplayCache(parsed.path.with_name(parsed.path.stem + "-replay.db"))
