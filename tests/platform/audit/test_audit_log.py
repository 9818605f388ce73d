"""Writing the audit trail on both backends: group commit, records in the caller's
transaction, concurrency, restarts, and the append-only triggers."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from audit_helpers import KARI, KEY, audited, chain_rows, count, record

from conftest import BACKENDS, fresh_engine
from samhandling.platform.audit import AuditLog, AuditLogStopped, AuditRecord, verify
from samhandling.platform.fhir.storage import Store

REFUSED = (sqlite3.IntegrityError, asyncpg.PostgresError)


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return request.param


async def stored(store: Store) -> list[AuditRecord]:
    rows = await store.fetch("SELECT record FROM audit_record ORDER BY id", [])
    return [AuditRecord.from_json(bytes(row[0])) for row in rows]


async def test_concurrent_records_share_transactions(backend: str, tmp_path: Path) -> None:
    async with audited(backend, tmp_path) as (store, log):
        records = [record(i / 100) for i in range(200)]
        await asyncio.gather(*(log.record(r) for r in records))
        assert log.committed == 200
        assert 1 <= log.commits <= 10  # not one transaction each
        assert sorted(await stored(store), key=lambda r: r.recorded) == records
        assert await count(store, "audit_patient") == 200
        positions = [row[1] for row in await chain_rows(store, log.chains[0])]
        assert positions == list(range(1, 201))
        report = await verify(store, KEY)
    assert report.ok, report.problems
    assert (report.rows, report.chains) == (200, 9)


async def test_batches_hold_whole_calls_up_to_max_batch(backend: str, tmp_path: Path) -> None:
    async with audited(backend, tmp_path, max_batch=10) as (store, log):
        calls = [[record(i + j / 10) for j in range(4)] for i in range(10)]
        await asyncio.gather(*(log.record(*rs) for rs in calls))
        assert log.largest_batch <= 12 and log.commits >= 4
        alone = [record(100 + j) for j in range(15)]  # larger than a batch: goes whole
        await log.record(*alone)
        assert log.largest_batch == 15
        assert await count(store, "audit_record") == 55
        assert (await verify(store, KEY)).ok


class FailingStore:
    """A store whose next transactions fail (as when the database is unreachable)."""

    def __init__(self, store: Store, failures: int) -> None:
        self._store = store
        self.backend = store.backend
        self.failures = failures

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[Any]:
        if self.failures:
            self.failures -= 1
            raise ConnectionError("database unreachable")
        async with self._store.transaction() as tx:
            yield tx


async def test_a_failed_write_fails_every_waiting_caller(backend: str, tmp_path: Path) -> None:
    async with fresh_engine(backend, tmp_path) as engine:
        failing = FailingStore(engine.store, failures=0)
        log = AuditLog(failing, KEY)  # type: ignore[arg-type]
        await log.start()
        failing.failures = 1
        results = await asyncio.gather(
            *(log.record(record(i)) for i in range(5)), return_exceptions=True
        )
        assert all(isinstance(r, ConnectionError) for r in results), results
        await log.record(record(9))  # the next transaction works again
        await log.stop()
        assert [r.recorded for r in await stored(engine.store)] == [record(9).recorded]
        assert (await verify(engine.store, KEY)).ok


async def test_stop_writes_what_is_pending_then_refuses(backend: str, tmp_path: Path) -> None:
    async with audited(backend, tmp_path) as (store, log):
        waiting = [asyncio.ensure_future(log.record(record(i))) for i in range(50)]
        await asyncio.sleep(0)  # queued, not yet written
        await log.stop()
        await asyncio.gather(*waiting)
        assert await count(store, "audit_record") == 50
        with pytest.raises(AuditLogStopped):
            await log.record(record(99))
        await log.stop()  # again: nothing to do


async def test_append_is_rolled_back_with_its_transaction(backend: str, tmp_path: Path) -> None:
    async with audited(backend, tmp_path) as (store, log):
        with pytest.raises(RuntimeError, match="the write failed"):
            async with store.transaction() as tx:
                await log.append(tx, [record(1), record(2)])
                raise RuntimeError("the write failed")
        assert await count(store, "audit_record") == 0
        assert await count(store, "audit_patient") == 0
        assert (await verify(store, KEY)).ok
        async with store.transaction() as tx:
            await log.append(tx, [record(3)])
            await log.append(tx, [record(4), record(5, patients=(KARI, "Patient/x"))])
        rows = await store.fetch("SELECT chain_id, position FROM audit_record ORDER BY id", [])
        assert len({row[0] for row in rows}) == 1  # one lane for the whole transaction
        assert [row[1] for row in rows] == [1, 2, 3]  # the rolled-back positions are reused
        assert await count(store, "audit_patient") == 4
        report = await verify(store, KEY)
        assert report.ok and report.rows == 3


async def test_append_needs_a_started_log(backend: str, tmp_path: Path) -> None:
    async with fresh_engine(backend, tmp_path) as engine:
        log = AuditLog(engine.store, KEY)
        with pytest.raises(AuditLogStopped):
            async with engine.store.transaction() as tx:
                await log.append(tx, [record()])


async def test_concurrent_writers_keep_every_chain_valid(backend: str, tmp_path: Path) -> None:
    """Many transactions appending (some rolled back), group-committed records, and a
    second process's audit log, all at once on one database."""
    async with audited(backend, tmp_path, lanes=4) as (store, log):
        other = AuditLog(store, KEY, lanes=2)  # another worker process
        await other.start()

        async def write(n: int) -> int:
            try:
                async with store.transaction() as tx:
                    await log.append(tx, [record(n)])
                    await asyncio.sleep(0.001 * (n % 3))  # hold the lane while others queue
                    await log.append(tx, [record(n + 0.5)])
                    if n % 5 == 0:
                        raise RuntimeError("rolled back")
            except RuntimeError:
                return 0
            return 2

        results = await asyncio.gather(
            *(write(n) for n in range(60)),
            *(log.record(record(1000 + n)) for n in range(100)),
            *(other.record(record(2000 + n), record(2000.5 + n)) for n in range(50)),
        )
        await other.stop()
        written = sum(r for r in results if isinstance(r, int))
        assert written == 96
        assert await count(store, "audit_record") == written + 100 + 100
        report = await verify(store, KEY)
    assert report.ok, report.problems
    assert report.chains == 5 + 3


async def test_a_restart_starts_new_chains(backend: str, tmp_path: Path) -> None:
    async with audited(backend, tmp_path, lanes=2) as (store, log):
        await log.record(record(1))
        async with store.transaction() as tx:
            await log.append(tx, [record(2)])
        first = log.chains
        await log.stop()
        restarted = AuditLog(store, KEY, lanes=2)
        await restarted.start()
        await restarted.record(record(3), record(4))
        await restarted.stop()
        assert not set(first) & set(restarted.chains)
        assert [row[1] for row in await chain_rows(store, restarted.chains[0])] == [1, 2]
        report = await verify(store, KEY)
    assert report.ok, report.problems
    assert (report.rows, report.chains) == (4, 6)


async def test_updates_and_deletes_are_refused(backend: str, tmp_path: Path) -> None:
    async with audited(backend, tmp_path) as (store, log):
        await log.record(record(1))
        mark = "$1" if backend == "postgresql" else "?"
        attempts = [
            "UPDATE audit_record SET service = 'other'",
            "DELETE FROM audit_record",
            "UPDATE audit_patient SET person = '01010112345'",
            "DELETE FROM audit_patient",
            "DELETE FROM audit_chain",
            "UPDATE audit_chain SET last_position = 0",  # moving a head back
            "UPDATE audit_chain SET last_position = last_position + 1, chain_id = 'x'",
        ]
        if backend == "postgresql":
            attempts += [f"TRUNCATE {t}" for t in ("audit_record", "audit_patient", "audit_chain")]
        for sql in attempts:
            with pytest.raises(REFUSED, match=r"append-only|only moves forward"):
                async with store.transaction() as tx:
                    await tx.fetch(sql, [])
        # a head moves forward only together with its rows (what append does)
        async with store.transaction() as tx:
            await tx.fetch(
                f"UPDATE audit_chain SET last_position = last_position + 1 WHERE chain_id = {mark}",
                [log.chains[0]],
            )
        report = await verify(store, KEY)
        assert [p.what for p in report.problems] == [
            "chain head changed (rows after this position may have been removed)"
        ]
        assert await count(store, "audit_record") == 1
