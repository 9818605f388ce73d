"""Noticing, cheaply and across workers, that resources of some types changed.

Services keep in-memory caches of stored resources (HPR approvals, code system indexes).
A `ChangeWatch` tells them when to drop such a cache (`WatchedCache` is one): it reads the
newest version number (``resource_history.seq``) of the watched types at most every
``seconds``, so a change written by any worker or process is noticed within that time,
for the price of one indexed query per interval.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

from samhandling.platform.fhir.storage import Store

RECENT_VERSIONS = 1000  # more than ever commit out of order
V = TypeVar("V")


class ChangeWatch:
    """Whether any resource of ``types`` changed since the last look."""

    def __init__(self, store: Store, types: tuple[str, ...], seconds: float = 1.0) -> None:
        if not types or not all(t.isalpha() for t in types):
            raise ValueError("ChangeWatch needs resource type names")
        listed = ", ".join(f"'{t}'" for t in types)
        # versions are numbered when written but committed in any order (PostgreSQL): one
        # committed after a newer one is noticed by counting the recent versions too
        self._sql = (
            "SELECT m, (SELECT COUNT(*) FROM resource_history h"
            f" WHERE h.type IN ({listed}) AND h.seq > m - {RECENT_VERSIONS})"
            f" FROM (SELECT MAX(seq) AS m FROM resource_history WHERE type IN ({listed})) x"
        )
        self._store = store
        self.seconds = seconds
        self._generation: tuple[int, int] | None = None
        self._checked = 0.0
        self._lock: asyncio.Lock | None = None
        self.generation = 0  # bumped on every change noticed (caches can compare it)

    async def changed(self) -> bool:
        """True when a change was noticed now (and on the first call); False otherwise,
        also while the interval since the last look has not passed."""
        if time.monotonic() - self._checked <= self.seconds:
            return False
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            if time.monotonic() - self._checked <= self.seconds:
                return False
            rows = await self._store.fetch(self._sql, [])
            newest, recent = rows[0][0] or 0, rows[0][1] or 0
            self._checked = time.monotonic()
            if (newest, recent) == self._generation:
                return False
            self._generation = (newest, recent)
            self.generation += 1
            return True


class WatchedCache(Generic[V]):
    """Values loaded from the store by key, dropped when ``watch`` notices a change.

    A value loaded while a change was noticed is not kept (it may predate the change);
    ``keep`` can refuse others too (e.g. "not found", which may be a resource being written
    in a transaction not yet committed). Several caches may share one watch: each compares
    the watch's generation with its own.
    """

    def __init__(
        self,
        watch: ChangeWatch,
        max_size: int = 200_000,
        keep: Callable[[V], bool] | None = None,
    ) -> None:
        self._watch = watch
        self._max_size = max_size
        self._keep = keep
        self._values: dict[str, V] = {}
        self._generation = -1

    async def get(self, key: str, load: Callable[[str], Awaitable[V]]) -> V:
        """The value of ``key``: cached, or loaded (and kept, when it may be)."""
        watch = self._watch
        await watch.changed()
        if self._generation != watch.generation:
            self._values.clear()
            self._generation = watch.generation
        try:
            return self._values[key]
        except KeyError:
            pass
        value = await load(key)
        if self._generation == watch.generation and (self._keep is None or self._keep(value)):
            if len(self._values) >= self._max_size:  # never grow without bound
                self._values.clear()
            self._values[key] = value
        return value
