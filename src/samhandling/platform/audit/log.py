"""Writing the audit trail: group-committed records, or records in the caller's transaction.

Each process registers its own chains at `AuditLog.start`: one for the group-commit writer
and ``lanes`` for `AuditLog.append`. A chain's head lives only in ``audit_chain``; a
writer reads it under a row lock (PostgreSQL ``SELECT ... FOR UPDATE``; SQLite has one
writer at a time) and moves it in the transaction that appends, so a rollback takes the
head back with the rows and nothing in memory can fall out of step.
"""

from __future__ import annotations

import asyncio
import secrets
import weakref
from collections.abc import Sequence
from datetime import UTC, datetime
from itertools import count
from typing import Any

from samhandling.platform.audit.chain import (
    GENESIS,
    Dialect,
    head_mac,
    persons_of,
    registration_link,
    row_hash,
)
from samhandling.platform.audit.record import AuditRecord
from samhandling.platform.fhir.datetimes import to_micros
from samhandling.platform.fhir.storage import Store, StoreTransaction

REGISTRY_LOCK = 0x4155_4449_5443_484E  # advisory lock serialising chain registration
_SQLITE_ROWS = 200  # records per SQLite INSERT (9 parameters each; the limit is 32766)

_PG_HEAD = "SELECT last_position, last_hash FROM audit_chain WHERE chain_id = $1 FOR UPDATE"
_SQLITE_HEAD = "SELECT last_position, last_hash FROM audit_chain WHERE chain_id = ?"
_HEAD_UPDATE = (
    "UPDATE audit_chain SET last_position = ?, last_hash = ?, head_mac = ? WHERE chain_id = ?"
)
# the rows, their persons and the new head in one round trip
_PG_APPEND = """
WITH new AS (
    INSERT INTO audit_record
        (chain_id, position, recorded, service, emergency, record, prev_hash, hash)
    SELECT $1, p, t, s, e, j, ph, h FROM unnest($2::bigint[], $3::timestamptz[], $4::text[],
        $5::boolean[], $6::bytea[], $7::bytea[], $8::bytea[]) AS u(p, t, s, e, j, ph, h)
    RETURNING id, position, recorded
), persons AS (
    INSERT INTO audit_patient (person, record_id, recorded)
    SELECT m.person, new.id, new.recorded
    FROM unnest($9::bigint[], $10::text[]) AS m(position, person)
    JOIN new ON new.position = m.position
)
UPDATE audit_chain SET last_position = $11, last_hash = $12, head_mac = $13
WHERE chain_id = $1
"""


class AuditLogStopped(RuntimeError):
    """A record was offered to an audit log that is not running."""


class AuditLog:
    """The audit trail's writer for one process."""

    def __init__(self, store: Store, key: bytes, *, lanes: int = 8, max_batch: int = 1000) -> None:
        if lanes < 1 or max_batch < 1:
            raise ValueError("lanes and max_batch must be at least 1")
        self._store = store
        self._key = key
        self._lane_count = lanes
        self._max_batch = max_batch
        self._dialect = Dialect(store)
        self._writer_chain: str | None = None
        self._lanes: list[str] = []
        self._tx_lanes: weakref.WeakKeyDictionary[Any, str] = weakref.WeakKeyDictionary()
        self._next_lane = count()
        self._pending: list[tuple[list[tuple[AuditRecord, bytes]], asyncio.Future[None]]] = []
        self._wakeup = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self.commits = 0  # group-commit transactions committed
        self.committed = 0  # records they held
        self.largest_batch = 0

    @property
    def chains(self) -> tuple[str, ...]:
        """This process's chain ids: the group-commit writer's first, then the lanes."""
        return (self._writer_chain, *self._lanes) if self._writer_chain else ()

    async def start(self) -> None:
        """Register this process's chains and start the group-commit task."""
        if self._task is not None:
            return
        chain_ids = [secrets.token_hex(8) for _ in range(1 + self._lane_count)]
        await self._register(chain_ids)
        self._writer_chain, self._lanes = chain_ids[0], chain_ids[1:]
        self._stopping = False
        self._task = asyncio.create_task(self._run(), name="audit group commit")

    async def stop(self) -> None:
        """Write everything pending, then stop (a second call does nothing)."""
        if self._task is None:
            return
        self._stopping = True
        self._wakeup.set()
        await self._task
        self._task = None

    async def record(self, *records: AuditRecord) -> None:
        """Store ``records``; returns once they are committed, or raises what the write
        raised. Concurrent callers share one transaction.

        Never await it inside an open store transaction (use `append` there): the writer
        needs a transaction of its own (SQLite's write lock, a pooled PostgreSQL
        connection), and the open one may be what it waits for.
        """
        if not records:
            return
        if self._task is None or self._stopping:
            raise AuditLogStopped("the audit log is not running")
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pending.append(([(r, r.to_json()) for r in records], future))
        self._wakeup.set()
        await future

    async def append(self, tx: StoreTransaction, records: Sequence[AuditRecord]) -> None:
        """Store ``records`` in the caller's open write transaction (committed or rolled
        back with it).

        Call it after the transaction's other writes: it holds one of this process's lane
        chains locked until the transaction ends (always the same one for a transaction),
        and a transaction that takes more locks, or waits for another pooled connection,
        while holding it makes the others on that lane wait too.
        """
        if not records:
            return
        if not self._lanes:
            raise AuditLogStopped("the audit log was not started")
        lane = self._tx_lanes.get(tx)
        if lane is None:
            lane = self._tx_lanes[tx] = self._lanes[next(self._next_lane) % len(self._lanes)]
        await self._write(tx, lane, [(r, r.to_json()) for r in records])

    # ---------------------------------------------------------------------------- writing
    async def _run(self) -> None:
        """Commit what is pending, batch after batch, until stopped with nothing pending."""
        try:
            while True:
                await self._wakeup.wait()
                self._wakeup.clear()
                while self._pending:
                    await self._commit(self._take())
                if self._stopping:
                    return
        finally:  # cancelled: no caller may wait for ever
            for _, future in self._pending:
                if not future.done():
                    future.set_exception(AuditLogStopped("the audit log stopped"))
            self._pending.clear()

    def _take(self) -> list[tuple[list[tuple[AuditRecord, bytes]], asyncio.Future[None]]]:
        """The callers whose records go into the next transaction (whole calls, at most
        ``max_batch`` records unless one call alone has more)."""
        size, end = 0, 0
        for items, _ in self._pending:
            if end and size + len(items) > self._max_batch:
                break
            size += len(items)
            end += 1
        batch, self._pending = self._pending[:end], self._pending[end:]
        return batch

    async def _commit(
        self, batch: list[tuple[list[tuple[AuditRecord, bytes]], asyncio.Future[None]]]
    ) -> None:
        items = [item for items, _ in batch for item in items]
        assert self._writer_chain is not None
        try:
            async with self._store.transaction() as tx:
                await self._write(tx, self._writer_chain, items)
        except BaseException as exc:  # every waiting caller fails its request
            failure = exc if isinstance(exc, Exception) else AuditLogStopped("stopped")
            for _, future in batch:
                if not future.done():
                    future.set_exception(failure)
            if failure is not exc:
                raise
            return
        self.commits += 1
        self.committed += len(items)
        self.largest_batch = max(self.largest_batch, len(items))
        for _, future in batch:
            if not future.done():
                future.set_result(None)

    async def _write(
        self, tx: StoreTransaction, chain_id: str, items: list[tuple[AuditRecord, bytes]]
    ) -> None:
        """Append records (with their JSON) to a chain inside ``tx``, moving its head."""
        pg = self._dialect.pg
        head = await tx.fetch(_PG_HEAD if pg else _SQLITE_HEAD, [chain_id])
        if not head:
            raise LookupError(f"audit chain {chain_id} is not registered")
        position, prev = head[0][0], bytes(head[0][1])
        rows: list[tuple[Any, ...]] = []
        persons: list[tuple[int, str]] = []
        for record, document in items:
            position += 1
            mapped = persons_of(record.patients)
            digest = row_hash(
                self._key, prev, chain_id, position, to_micros(record.recorded), mapped, document
            )
            rows.append((position, record.recorded, record.service, record.emergency,
                         document, prev, digest))  # fmt: skip
            persons += [(position, person) for person in mapped]
            prev = digest
        mac = head_mac(self._key, chain_id, position, prev)
        if pg:
            columns = [list(column) for column in zip(*rows, strict=True)]
            await tx.fetch(
                _PG_APPEND,
                [chain_id, *columns, [p for p, _ in persons], [n for _, n in persons],
                 position, prev, mac],
            )  # fmt: skip
        else:
            await self._sqlite_insert(tx, chain_id, rows, persons)
            await tx.fetch(_HEAD_UPDATE, [position, prev, mac, chain_id])

    async def _sqlite_insert(
        self,
        tx: StoreTransaction,
        chain_id: str,
        rows: list[tuple[Any, ...]],
        persons: list[tuple[int, str]],
    ) -> None:
        """Multi-row INSERTs of the rows, then of their persons (by the ids they got)."""
        ids: dict[int, tuple[int, int]] = {}  # position -> (id, recorded)
        for start in range(0, len(rows), _SQLITE_ROWS):
            chunk = rows[start : start + _SQLITE_ROWS]
            values = ", ".join(["(?, ?, ?, ?, ?, ?, ?, ?)"] * len(chunk))
            args: list[Any] = []
            for position, recorded, service, emergency, document, prev, digest in chunk:
                args += [chain_id, position, to_micros(recorded), service, emergency,
                         document, prev, digest]  # fmt: skip
            returned = await tx.fetch(
                "INSERT INTO audit_record"
                " (chain_id, position, recorded, service, emergency, record, prev_hash, hash)"
                f" VALUES {values} RETURNING position, id, recorded",
                args,
            )
            ids.update((row[0], (row[1], row[2])) for row in returned)
        for start in range(0, len(persons), _SQLITE_ROWS * 3):
            chunk = persons[start : start + _SQLITE_ROWS * 3]
            args = []
            for position, person in chunk:
                args += [person, *ids[position]]
            values = ", ".join(["(?, ?, ?)"] * len(chunk))
            await tx.fetch(
                f"INSERT INTO audit_patient (person, record_id, recorded) VALUES {values}", args
            )

    # ----------------------------------------------------------------------- registration
    async def _register(self, chain_ids: list[str]) -> None:
        """Add chains to the registry, each linked to the one registered before it."""
        sql = self._dialect.sql
        now = datetime.now(UTC)
        async with self._store.transaction() as tx:
            await tx.lock(REGISTRY_LOCK)
            last = await tx.fetch("SELECT seq, link FROM audit_chain ORDER BY seq DESC LIMIT 1", [])
            seq, link = (last[0][0], bytes(last[0][1])) if last else (0, GENESIS)
            for chain_id in chain_ids:
                seq += 1
                link = registration_link(self._key, link, seq, chain_id, to_micros(now))
                await tx.fetch(
                    sql(
                        "INSERT INTO audit_chain (chain_id, seq, created, link, last_position,"
                        " last_hash, head_mac) VALUES (?, ?, ?, ?, 0, ?, ?)"
                    ),
                    [chain_id, seq, self._dialect.time(now), link, GENESIS,
                     head_mac(self._key, chain_id, 0, GENESIS)],
                )  # fmt: skip
