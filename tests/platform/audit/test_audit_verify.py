"""Tamper detection: what a database administrator changes behind the triggers, `verify`
and ``samhandling audit verify`` find, naming the row."""

from __future__ import annotations

import asyncio
import dataclasses
import sys
from pathlib import Path

import pytest
from audit_helpers import (
    KEY,
    OLA,
    as_administrator,
    audited,
    chain_rows,
    database_url,
    record,
)

from conftest import BACKENDS, TEST_ENV
from samhandling.platform.audit import AuditLog, AuditRecord, Problem, verify
from samhandling.platform.fhir.storage import Store

TAMPERING = ["edit a record", "change a person", "delete a middle row", "delete the newest row",
             "delete the newest row and move the head back", "remove a whole chain",
             "insert a row"]  # fmt: skip


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return request.param


async def cli_verify(store: Store, data_dir: Path) -> tuple[int, str]:
    """Run ``samhandling audit verify`` on the store's database: (exit status, output)."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "samhandling", "audit", "verify",
        "--data-dir", str(data_dir), "--database-url", await database_url(store),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT, env=TEST_ENV,
    )  # fmt: skip
    output, _ = await asyncio.wait_for(process.communicate(), 60)
    return process.returncode or 0, output.decode()


async def tamper(store: Store, how: str, log: AuditLog) -> Problem:
    """Do ``how`` to the writer's chain (rows at positions 1-5); the problem to expect."""
    chain = log.chains[0]
    (id1, _, _), (_, _, _), (id3, _, _), (id4, _, hash4), (id5, _, _) = await chain_rows(
        store, chain
    )
    if how == "edit a record":
        rows = await store.fetch(f"SELECT record FROM audit_record WHERE id = {id3}", [])
        edited = AuditRecord.from_json(bytes(rows[0][0]))
        edited = dataclasses.replace(edited, agent=dataclasses.replace(edited.agent, name="Noen"))
        await as_administrator(
            store, ("UPDATE audit_record SET record = ? WHERE id = ?", [edited.to_json(), id3])
        )
        return Problem(id3, chain, 3, "content changed")
    if how == "change a person":
        await as_administrator(
            store,
            (
                "UPDATE audit_patient SET person = ? WHERE record_id = ? AND person = ?",
                [OLA, id3, "Patient/p"],
            ),
        )
        return Problem(id3, chain, 3, "persons concerned (audit_patient) differ from the record")
    if how == "delete a middle row":
        await as_administrator(store, ("DELETE FROM audit_record WHERE id = ?", [id3]))
        return Problem(None, chain, 3, f"row 3 missing, before row {id4}")
    if how == "delete the newest row":
        await as_administrator(store, ("DELETE FROM audit_record WHERE id = ?", [id5]))
        return Problem(None, chain, 5, "newest row 5 missing")
    if how == "delete the newest row and move the head back":
        await as_administrator(
            store,
            ("DELETE FROM audit_record WHERE id = ?", [id5]),
            ("UPDATE audit_chain SET last_position = 4, last_hash = ? WHERE chain_id = ?",
             [bytes(hash4), chain]),
        )  # fmt: skip
        return Problem(
            None, chain, 4, "chain head changed (rows after this position may have been removed)"
        )
    if how == "remove a whole chain":
        await as_administrator(
            store,
            ("DELETE FROM audit_patient WHERE record_id IN"
             " (SELECT id FROM audit_record WHERE chain_id = ?)", [chain]),
            ("DELETE FROM audit_record WHERE chain_id = ?", [chain]),
            ("DELETE FROM audit_chain WHERE chain_id = ?", [chain]),
        )  # fmt: skip
        return Problem(None, log.chains[1], None, "chain registration 1 missing before")
    assert how == "insert a row"
    await as_administrator(
        store,
        ("INSERT INTO audit_record (chain_id, position, recorded, service, emergency, record,"
         " prev_hash, hash) SELECT chain_id, 6, recorded, service, emergency, record, hash, hash"
         " FROM audit_record WHERE id = ?", [id5]),
    )  # fmt: skip
    (id6,) = (await store.fetch("SELECT max(id) FROM audit_record", []))[0]
    assert id6 > id5 > id1
    return Problem(id6, chain, 6, "row 6 after the chain head")


@pytest.mark.parametrize("how", TAMPERING)
async def test_tampering_is_found_and_the_row_named(backend: str, tmp_path: Path, how: str) -> None:
    async with audited(backend, tmp_path, lanes=1) as (store, log):
        for minutes in range(5):
            await log.record(record(minutes, patients=(f"0101011234{minutes}", "Patient/p")))
        async with store.transaction() as tx:
            await log.append(tx, [record(10)])  # another chain, untouched
        assert (await verify(store, KEY)).ok
        expected = await tamper(store, how, log)
        report = await verify(store, KEY)
        assert report.problems == [expected]
        status, output = await cli_verify(store, tmp_path)
    assert status == 1, output
    assert str(expected) in output


async def test_the_command_says_intact(backend: str, tmp_path: Path) -> None:
    async with audited(backend, tmp_path) as (store, log):
        await log.record(record(1), record(2))
        status, output = await cli_verify(store, tmp_path)
    assert status == 0, output
    assert "checked 2 rows in 9 chains: intact" in output


async def test_another_key_finds_nothing_valid(backend: str, tmp_path: Path) -> None:
    async with audited(backend, tmp_path, lanes=1) as (store, log):
        await log.record(record(1))
        report = await verify(store, b"another secret key of 32 bytes!!")
        assert {p.what for p in report.problems} == {
            "chain registration changed",
            "chain head changed (rows after this position may have been removed)",
            "content changed",
        }


async def test_verify_reads_long_chains_in_pages(backend: str, tmp_path: Path) -> None:
    async with audited(backend, tmp_path, lanes=1) as (store, log):
        await log.record(*(record(i) for i in range(25)))
        report = await verify(store, KEY, page=4)
        assert report.ok and report.rows == 25
        await as_administrator(store, ("UPDATE audit_record SET service = 'x'", []))
        report = await verify(store, KEY, page=4, max_problems=10)
        assert len(report.problems) == 10 and report.unlisted == 15
        assert report.problems[0].what == "service column differs from the record"


async def test_verify_while_the_platform_writes(backend: str, tmp_path: Path) -> None:
    """Rows appended during the check are neither missed nor mistaken for tampering."""
    async with audited(backend, tmp_path, lanes=2) as (store, log):
        writing = True

        async def reads() -> None:
            while writing:
                await log.record(record(1), record(2))

        async def writes() -> None:
            while writing:
                async with store.transaction() as tx:
                    await log.append(tx, [record(3)])
                await asyncio.sleep(0)  # SQLite's transactions never wait: let others run

        tasks = [*(reads() for _ in range(8)), *(writes() for _ in range(4))]
        running = [asyncio.ensure_future(task) for task in tasks]
        await asyncio.sleep(0.2)
        reports = []
        for _ in range(3):
            reports.append(await verify(store, KEY, page=7))
            await asyncio.sleep(0.05)
        writing = False
        await asyncio.gather(*running)
    assert all(report.ok for report in reports), [r.problems for r in reports]
    assert reports[0].rows < reports[-1].rows
