"""The trust service's tables (migration 0003), on either backend through the platform store."""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import orjson

from samhandling.infrastructure.database import POSTGRESQL
from samhandling.platform.fhir.search.sql import numbered
from samhandling.platform.fhir.storage import Store


@dataclass(frozen=True, slots=True)
class StoredKey:
    """A signing key row (the private part still encrypted)."""

    kid: str
    alg: str
    public_jwk: dict[str, Any]
    private_jwk: bytes
    created_at: int
    retire_at: int | None


@dataclass(frozen=True, slots=True)
class Grant:
    """A one-time grant (PAR request, code, refresh token) as it was when consumed."""

    client_id: str
    family: str | None
    document: dict[str, Any]
    expires_at: int
    was_used: bool


def handle(secret: str) -> bytes:
    """The stored handle of a secret a client holds (the secret itself is never stored)."""
    return hashlib.sha256(secret.encode()).digest()


class TrustStore:
    """SQL for keys, clients, delegations and grants; ``?`` placeholders on both backends."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._pg = store.backend == POSTGRESQL

    def _sql(self, text: str) -> str:
        return _numbered(text) if self._pg else text

    async def fetch(self, sql: str, *args: Any) -> list[Any]:
        """Rows of one statement (autocommit on PostgreSQL; SQLite writes take the writer)."""
        if sql.lstrip().upper().startswith("SELECT"):
            return await self.store.fetch(self._sql(sql), list(args))
        async with self.store.transaction() as tx:
            return await tx.fetch(self._sql(sql), list(args))

    # keys -------------------------------------------------------------------------------
    async def keys(self) -> list[StoredKey]:
        """Every signing key, newest first."""
        rows = await self.fetch(
            "SELECT kid, alg, public_jwk, private_jwk, created_at, retire_at"
            " FROM trust_signing_key ORDER BY created_at DESC, kid DESC"
        )
        return [StoredKey(r[0], r[1], orjson.loads(r[2]), bytes(r[3]), r[4], r[5]) for r in rows]

    async def add_key(self, key: StoredKey, retire_others_at: int | None) -> None:
        """Store a new current key; the previous current keys retire at ``retire_others_at``."""
        async with self.store.transaction() as tx:
            if retire_others_at is not None:
                await tx.fetch(
                    self._sql("UPDATE trust_signing_key SET retire_at = ? WHERE retire_at IS NULL"),
                    [retire_others_at],
                )
            await tx.fetch(
                self._sql(
                    "INSERT INTO trust_signing_key"
                    " (kid, alg, public_jwk, private_jwk, created_at, retire_at)"
                    " VALUES (?, ?, ?, ?, ?, NULL)"
                ),
                [key.kid, key.alg, orjson.dumps(key.public_jwk).decode(), key.private_jwk,
                 key.created_at],
            )  # fmt: skip

    # clients ----------------------------------------------------------------------------
    async def client(self, client_id: str) -> tuple[dict[str, Any], bool] | None:
        """A client's document and whether it is enabled."""
        rows = await self.fetch(
            "SELECT document, enabled FROM trust_client WHERE client_id = ?", client_id
        )
        return (orjson.loads(rows[0][0]), bool(rows[0][1])) if rows else None

    async def clients(self) -> list[tuple[dict[str, Any], bool]]:
        """Every client, oldest first."""
        rows = await self.fetch(
            "SELECT document, enabled FROM trust_client ORDER BY created_at, client_id"
        )
        return [(orjson.loads(r[0]), bool(r[1])) for r in rows]

    async def save_client(self, client_id: str, document: dict[str, Any], enabled: bool) -> None:
        """Insert or replace a client."""
        await self.fetch(
            "INSERT INTO trust_client (client_id, document, enabled, created_at)"
            " VALUES (?, ?, ?, ?) ON CONFLICT (client_id) DO UPDATE"
            " SET document = excluded.document, enabled = excluded.enabled",
            client_id, orjson.dumps(document).decode(), enabled, int(time.time()),
        )  # fmt: skip

    # delegations ------------------------------------------------------------------------
    async def delegated(self, parent_orgnr: str, supplier_orgnr: str) -> bool:
        """Whether ``parent_orgnr`` has delegated to ``supplier_orgnr``."""
        rows = await self.fetch(
            "SELECT 1 FROM trust_delegation WHERE parent_orgnr = ? AND supplier_orgnr = ?",
            parent_orgnr, supplier_orgnr,
        )  # fmt: skip
        return bool(rows)

    async def set_delegation(self, parent_orgnr: str, supplier_orgnr: str, present: bool) -> None:
        """Add or remove a delegation."""
        if present:
            await self.fetch(
                "INSERT INTO trust_delegation (parent_orgnr, supplier_orgnr, created_at)"
                " VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
                parent_orgnr, supplier_orgnr, int(time.time()),
            )  # fmt: skip
        else:
            await self.fetch(
                "DELETE FROM trust_delegation WHERE parent_orgnr = ? AND supplier_orgnr = ?",
                parent_orgnr, supplier_orgnr,
            )  # fmt: skip

    async def delegations(self) -> list[tuple[str, str]]:
        """Every (parent, supplier) delegation."""
        rows = await self.fetch(
            "SELECT parent_orgnr, supplier_orgnr FROM trust_delegation ORDER BY 1, 2"
        )
        return [(r[0], r[1]) for r in rows]

    # grants -----------------------------------------------------------------------------
    async def add_grant(
        self,
        secret: str,
        kind: str,
        client_id: str,
        document: dict[str, Any],
        expires_at: int,
        family: str | None = None,
    ) -> None:
        """Store a grant the holder of ``secret`` may use."""
        await self.fetch(
            "INSERT INTO trust_grant (handle, kind, client_id, family, document, expires_at)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            handle(secret), kind, client_id, family, orjson.dumps(document).decode(), expires_at,
        )  # fmt: skip

    async def peek_grant(self, secret: str, kind: str) -> Grant | None:
        """An unused, unexpired grant without consuming it."""
        rows = await self.fetch(
            "SELECT client_id, family, document, expires_at FROM trust_grant"
            " WHERE handle = ? AND kind = ? AND used_at IS NULL AND expires_at > ?",
            handle(secret), kind, int(time.time()),
        )  # fmt: skip
        if not rows:
            return None
        return Grant(rows[0][0], rows[0][1], orjson.loads(rows[0][2]), rows[0][3], False)

    async def use_grant(self, secret: str, kind: str) -> Grant | None:
        """Consume a grant once, across every worker: the first caller gets it unused; later
        callers get ``was_used`` (to detect replays); None when unknown or expired."""
        now = int(time.time())
        rows = await self.fetch(
            "UPDATE trust_grant SET used_at = ? WHERE handle = ? AND kind = ? AND used_at IS NULL"
            " AND expires_at > ? RETURNING client_id, family, document, expires_at",
            now, handle(secret), kind, now,
        )  # fmt: skip
        if rows:
            return Grant(rows[0][0], rows[0][1], orjson.loads(rows[0][2]), rows[0][3], False)
        rows = await self.fetch(
            "SELECT client_id, family, document, expires_at FROM trust_grant"
            " WHERE handle = ? AND kind = ? AND expires_at > ?",
            handle(secret), kind, now,
        )  # fmt: skip
        if not rows:
            return None
        return Grant(rows[0][0], rows[0][1], orjson.loads(rows[0][2]), rows[0][3], True)

    async def revoke_family(self, family: str) -> None:
        """Expire every grant of a sign-in (refresh-token reuse detected)."""
        await self.fetch("UPDATE trust_grant SET expires_at = 0 WHERE family = ?", family)

    async def purge_expired(self) -> None:
        """Delete grants that expired more than a day ago."""
        await self.fetch("DELETE FROM trust_grant WHERE expires_at < ?", int(time.time()) - 86_400)


@lru_cache(maxsize=256)
def _numbered(sql: str) -> str:
    return numbered(sql)
