"""The replay cache on both backends: each key is accepted once, also when many requests
race (PostgreSQL group-commits concurrent keys into one statement)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from conftest import BACKENDS
from samhandling.platform.auth.replay import open_replay_cache
from samhandling.platform.fhir.storage import open_store


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'replay-test.db'}"
    return request.getfixturevalue("postgres_database")


async def test_each_key_is_accepted_once(database_url: str) -> None:
    store = await open_store(database_url)
    cache = open_replay_cache(store, database_url)
    try:
        expires = int(time.time()) + 60
        racing = await asyncio.gather(*[cache.first_use("t", "same", expires) for _ in range(20)])
        assert sorted(racing) == [False] * 19 + [True]
        mixed = await asyncio.gather(
            *[cache.first_use("t", f"k{n % 10}", expires) for n in range(30)]
        )
        assert sum(mixed) == 10
        assert await cache.first_use("other namespace", "same", expires)
        assert not await cache.first_use("t", "k3", expires)
        # an expired entry no longer blocks its key
        assert await cache.first_use("t", "old", int(time.time()) - 1)
        assert await cache.first_use("t", "old", expires)
        assert not await cache.first_use("t", "old", expires)
    finally:
        cache.close()
        await store.close()
