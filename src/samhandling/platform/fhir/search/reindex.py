"""Reindexing: resumable background jobs that rewrite index rows when parameters change.

A job is a row of ``reindex_job``: the resource types it covers, and the rids still to do,
``(last_rid, max_rid]``. Each batch is one transaction that locks the job row, reads the
next resources (locked against concurrent writers on PostgreSQL; SQLite has one writer),
replaces their index rows and advances ``last_rid``. So a job survives restarts, several
workers can share it, and it never overwrites the rows of a newer version.

A job starts only `SETTLE_SECONDS` after it was queued: every worker re-reads the
SearchParameter resources every `POLL_SECONDS`, so by then all of them index new writes
with the new definitions, and the job covers everything stored before.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from samhandling.platform.fhir.content import loads
from samhandling.platform.fhir.datetimes import to_micros
from samhandling.platform.fhir.search.sql import POSTGRESQL, numbered

if TYPE_CHECKING:
    from samhandling.platform.fhir.engine import FhirEngine
    from samhandling.platform.fhir.storage import StoreTransaction

log = logging.getLogger(__name__)

POLL_SECONDS = 0.5
SETTLE_SECONDS = 2.0
BATCH = 500


@dataclass(frozen=True, slots=True)
class Job:
    """A reindex job as reported by ``samhandling reindex --status``."""

    id: int
    reason: str
    resource_types: str
    status: str
    processed: int
    total: int | None
    last_rid: int
    max_rid: int | None
    error: str | None

    @property
    def progress(self) -> str:
        """E.g. ``1200/5000 (24%)``."""
        if self.total is None:
            return "not started"
        share = 100 * self.processed // self.total if self.total else 100
        return f"{self.processed}/{self.total} ({share}%)"


def _sql(backend: str, text: str) -> str:
    return numbered(text) if backend == POSTGRESQL else text


def _now(backend: str) -> object:
    moment = datetime.now(UTC)
    return moment if backend == POSTGRESQL else to_micros(moment)


async def enqueue(tx: StoreTransaction, backend: str, reason: str, types: list[str]) -> None:
    """Queue a job for ``types`` (``["*"]``: every type), in the caller's transaction."""
    now = _now(backend)
    await tx.fetch(
        _sql(
            backend,
            "INSERT INTO reindex_job (reason, resource_types, status, created, updated)"
            " VALUES (?, ?, 'pending', ?, ?) RETURNING id",
        ),
        [reason, ",".join(sorted(set(types))), now, now],
    )


async def jobs(engine: FhirEngine) -> list[Job]:
    """Every job, newest first."""
    rows = await engine.store.fetch(
        "SELECT id, reason, resource_types, status, processed, total, last_rid, max_rid, error"
        " FROM reindex_job ORDER BY id DESC",
        [],
    )
    return [Job(*row) for row in rows]


async def run_pending(engine: FhirEngine, *, settle: float = SETTLE_SECONDS) -> int:
    """Work on queued jobs until none is left; returns the number of batches done."""
    batches = 0
    while await _step(engine, settle):
        batches += 1
        await asyncio.sleep(0)  # let requests in between batches
    return batches


async def _step(engine: FhirEngine, settle: float) -> bool:
    """One batch of the oldest unfinished job; False when there is nothing to do."""
    backend = engine.store.backend
    lock = " FOR UPDATE" if backend == POSTGRESQL else ""
    waiting = await engine.store.fetch(  # a plain read first: most polls find nothing to do
        "SELECT 1 FROM reindex_job WHERE status IN ('pending', 'running') LIMIT 1", []
    )
    if not waiting:
        return False
    async with engine.store.transaction() as tx:
        rows = await tx.fetch(
            "SELECT id, resource_types, status, last_rid, max_rid, created, processed"
            " FROM reindex_job WHERE status IN ('pending', 'running') ORDER BY id LIMIT 1" + lock,
            [],
        )
        if not rows:
            return False
        job_id, types_text, status, last_rid, max_rid, created, processed = rows[0]
        if _age_seconds(backend, created) < settle:
            return False
        types = [t for t in types_text.split(",") if t and t != "*"]
        type_filter, type_args = _type_filter(types)
        if status == "pending":
            max_rid = (await tx.fetch("SELECT COALESCE(MAX(rid), 0) FROM resource", []))[0][0]
            total = (
                await tx.fetch(
                    _sql(
                        backend,
                        "SELECT COUNT(*) FROM resource WHERE rid <= ? AND NOT deleted"
                        + type_filter,
                    ),
                    [max_rid, *type_args],
                )
            )[0][0]
            await tx.fetch(
                _sql(
                    backend,
                    "UPDATE reindex_job SET status = 'running', max_rid = ?, total = ?,"
                    " updated = ? WHERE id = ? RETURNING id",
                ),
                [max_rid, total, _now(backend), job_id],
            )
        batch = await tx.fetch(
            _sql(
                backend,
                "SELECT rid, type, content FROM resource WHERE rid > ? AND rid <= ?"
                " AND NOT deleted" + type_filter + f" ORDER BY rid LIMIT {BATCH}" + lock,
            ),
            [last_rid, max_rid, *type_args],
        )
        items: list[tuple[int, dict[str, list[tuple]]]] = []
        for rid, type_name, content in batch:
            resource = loads(bytes(content))
            if isinstance(resource, dict):
                items.append((rid, engine.index(type_name, resource)))
        await tx.reindex(items)
        done = len(batch) < BATCH
        new_last = batch[-1][0] if batch else max_rid
        await tx.fetch(
            _sql(
                backend,
                "UPDATE reindex_job SET last_rid = ?, processed = ?, status = ?, updated = ?"
                " WHERE id = ? RETURNING id",
            ),
            [
                max_rid if done else new_last,
                processed + len(batch),
                "done" if done else "running",
                _now(backend),
                job_id,
            ],
        )
    if done:
        log.info("reindex job %s done (%s resources)", job_id, processed + len(batch))
    return True


def _type_filter(types: list[str]) -> tuple[str, list[Any]]:
    if not types:
        return "", []
    return f" AND type IN ({', '.join('?' * len(types))})", list(types)


def _age_seconds(backend: str, created: Any) -> float:
    now = datetime.now(UTC)
    if isinstance(created, datetime):
        return (now - created).total_seconds()
    return (to_micros(now) - int(created)) / 1e6


class ReindexWorker:
    """The in-process background loop: keep search parameters current, run reindex jobs."""

    def __init__(self, engine: FhirEngine) -> None:
        self.engine = engine
        self._task: asyncio.Task | None = None

    def start(self) -> None:
        """Start polling (call from a running event loop)."""
        self._task = asyncio.get_running_loop().create_task(self._loop())

    async def stop(self) -> None:
        """Stop polling."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _loop(self) -> None:
        while True:
            try:
                await self.engine.refresh_search_parameters()
                await run_pending(self.engine)
                unfinished = await self.engine.store.fetch(
                    "SELECT COUNT(*) FROM reindex_job WHERE status IN ('pending', 'running')", []
                )
                self.engine.reindexing = unfinished[0][0] > 0
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("reindex worker: a step failed; retrying")
            await asyncio.sleep(POLL_SECONDS)
