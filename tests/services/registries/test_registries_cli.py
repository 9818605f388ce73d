"""Loading the registers from the command line: the demo population and NDJSON feeds, on
both backends, through the same checks as the API."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import orjson
import pytest
from registries_helpers import new_fnr, person

from conftest import BACKENDS, TEST_ENV, database_url_for
from samhandling.platform.fhir.storage import open_store
from samhandling.synth.registers import register_population


def run(database_url: str, data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "samhandling", *args,
         "--data-dir", str(data_dir), "--database-url", database_url],
        capture_output=True, text=True, timeout=300, env=TEST_ENV,
    )  # fmt: skip


@pytest.fixture(params=BACKENDS)
def database(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[str, Path]:
    """A SQLite file of the test's own, or the session's PostgreSQL database."""
    return database_url_for(request.param, request, tmp_path), tmp_path


def test_demo_population_loads_whole_and_once(database: tuple[str, Path]) -> None:
    url, data_dir = database
    seed = 9001  # a seed no other test loads
    population = register_population(120, seed)
    args = ("demo", "--persons", "120", "--seed", str(seed), "--patients", "0")
    first = run(url, data_dir, *args)
    assert first.returncode == 0, first.stderr
    assert f"120 persons, {population.total_resources} resources" in first.stderr
    second = run(url, data_dir, *args)
    assert second.returncode == 0, second.stderr
    assert "register population (seed 9001) is already loaded" in second.stderr
    assert asyncio.run(_stored(url, seed)) == population.counts


async def _stored(url: str, seed: int) -> dict[str, int]:
    """Resources of the population (ids ``<kind>-<seed>-<n>``) in the database, by type."""
    store = await open_store(url)
    try:
        rows = await store.fetch(
            f"SELECT type, count(*) FROM resource WHERE id LIKE '%-{seed}-%' AND NOT deleted"
            " GROUP BY type",
            [],
        )
    finally:
        await store.close()
    return {type_name: count for type_name, count in rows}


def test_import_stops_at_the_first_bad_line(database: tuple[str, Path]) -> None:
    url, data_dir = database
    good, bad, after = person(new_fnr()), person("12345678901"), person(new_fnr())
    entry = {"resource": good, "request": {"method": "PUT", "url": f"Patient/{good['id']}"}}
    bundle = {"resourceType": "Bundle", "type": "transaction", "entry": [entry]}
    feed = data_dir / "feed.ndjson"
    feed.write_bytes(b"\n".join(orjson.dumps(v) for v in (bundle, bad, after)) + b"\n")
    result = run(url, data_dir, "registries", "import", str(feed))
    assert result.returncode == 1
    assert "line 2" in result.stderr and "fødselsnummer" in result.stderr
    assert "1 resources were imported before it" in result.stderr
    fixed = data_dir / "fixed.ndjson"
    fixed.write_bytes(orjson.dumps(bundle) + b"\n" + orjson.dumps(after) + b"\n")
    again = run(url, data_dir, "registries", "import", str(fixed))
    assert again.returncode == 0, again.stderr
    assert "imported 2 resources from 1 file(s)" in again.stderr
