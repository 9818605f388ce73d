"""The storage interface the FHIR engine writes through, and its records."""

from __future__ import annotations

from collections.abc import Iterable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

IndexRows = dict[str, list[tuple]]  # search index table -> rows (pid, grp, *values)
NO_INDEX: IndexRows = {}


@dataclass(frozen=True, slots=True)
class ResourceVersion:
    """One version of a resource: its JSON bytes as served, or a tombstone (content None)."""

    type: str
    id: str
    version: int
    last_updated: datetime
    content: bytes | None

    @property
    def deleted(self) -> bool:
        """Whether this version is a deletion tombstone."""
        return self.content is None


@dataclass(frozen=True, slots=True)
class BinaryInfo:
    """The stored content of one Binary version: size, digests, and how many chunks."""

    size: int
    sha1: bytes
    sha256: bytes
    chunks: int


@dataclass(frozen=True, slots=True)
class HistoryRow:
    """A version as listed in a history: the interaction that made it and its global order."""

    seq: int
    method: str
    resource: ResourceVersion


@dataclass(frozen=True, slots=True)
class HistoryQuery:
    """Which versions a history interaction lists (newest first)."""

    type: str | None = None
    id: str | None = None
    since: datetime | None = None
    at: tuple[datetime, datetime] | None = None  # versions current during [start, end)
    before_seq: int | None = None  # keyset cursor: only versions older than this
    count: int = 50


class StoreTransaction(Protocol):
    """Writes (and reads that must see them) inside one atomic database transaction."""

    async def current(self, type: str, id: str, *, lock: bool = True) -> ResourceVersion | None:
        """The current version (or tombstone); with ``lock`` no one else writes it until commit."""
        ...

    async def vread(self, type: str, id: str, version: int) -> ResourceVersion | None:
        """A specific version, as seen inside this transaction."""
        ...

    async def insert_new(
        self, resource: ResourceVersion, method: str, index: IndexRows = NO_INDEX
    ) -> bool:
        """Store the first version of a new id with its search index rows; False when the id
        exists already."""
        ...

    async def insert_many_new(
        self, resources: list[ResourceVersion], method: str, indexes: list[IndexRows]
    ) -> None:
        """Store the first versions of many new server-assigned ids in one round trip."""
        ...

    async def replace(
        self,
        resource: ResourceVersion,
        method: str,
        expected_version: int,
        index: IndexRows = NO_INDEX,
    ) -> None:
        """Store a new version over ``expected_version`` (held under lock by ``current``),
        replacing its search index rows (a tombstone has none)."""
        ...

    async def reindex(self, items: list[tuple[int, IndexRows]]) -> None:
        """Replace the search index rows of resources by rid."""
        ...

    async def write_binary(
        self, id: str, version: int, info: BinaryInfo, chunks: Iterable[bytes]
    ) -> None:
        """Store the content of version ``version`` of Binary ``id`` (``info.chunks``
        chunks, taken one at a time from ``chunks``)."""
        ...

    async def binary_info(self, id: str, version: int) -> BinaryInfo | None:
        """What content a Binary version has (None: none), as seen inside this transaction."""
        ...

    async def binary_chunk(self, id: str, version: int, seq: int) -> bytes:
        """Chunk ``seq`` (from 0) of a Binary version's content."""
        ...

    async def fetch(self, sql: str, args: list[Any]) -> list[Any]:
        """Rows of a query (placeholders in the backend's style), inside this transaction."""
        ...

    async def lock(self, key: int) -> None:
        """Hold a lock on ``key`` (a 63-bit number) until the transaction ends."""
        ...

    async def history(self, query: HistoryQuery) -> list[HistoryRow]:
        """History as seen inside this transaction."""
        ...


class Store(Protocol):
    """A FHIR resource store; every method is safe to call from many concurrent requests."""

    backend: str

    async def read(self, type: str, id: str) -> ResourceVersion | None:
        """The current version (or tombstone) of a resource, or None if it never existed."""
        ...

    async def vread(self, type: str, id: str, version: int) -> ResourceVersion | None:
        """A specific version of a resource."""
        ...

    async def history(self, query: HistoryQuery) -> list[HistoryRow]:
        """Up to ``query.count`` versions, newest first."""
        ...

    async def fetch(self, sql: str, args: list[Any]) -> list[Any]:
        """Rows of a read-only query (placeholders in the backend's style)."""
        ...

    async def binary_info(self, id: str, version: int) -> BinaryInfo | None:
        """What content a Binary version has (None: none)."""
        ...

    async def binary_chunk(self, id: str, version: int, seq: int) -> bytes:
        """Chunk ``seq`` (from 0) of a Binary version's content (one short statement, so a
        slow download holds no transaction or connection between chunks)."""
        ...

    def transaction(self) -> AbstractAsyncContextManager[StoreTransaction]:
        """An atomic unit of writes: committed on exit, rolled back on an exception."""
        ...

    async def close(self) -> None:
        """Release connections."""
        ...


class ConcurrentWriteError(RuntimeError):
    """A version changed under a transaction that held no lock on it (a bug, not user error)."""
