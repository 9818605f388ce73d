"""Reading the audit trail: a person's access log and the auditors' listing, with filters
and keyset paging, on both backends."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from audit_helpers import KARI, OLA, T0, audited, record

from conftest import BACKENDS
from samhandling.platform.audit import AuditLog, AuditRecord, StoredEvent, events, events_for

WRITTEN = [
    record(0),
    record(10, patients=(OLA,)),
    record(20, service="kjernejournal"),
    record(30, patients=(KARI, OLA), emergency=True),
    record(40),
    record(50, service="kjernejournal", emergency=True),
    record(60, patients=()),  # concerns no one (e.g. a search that found nothing)
    record(70),
]


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return request.param


def minutes(found: list[StoredEvent]) -> list[int]:
    """When each event was recorded, in minutes after T0."""
    return [int((event.record.recorded - T0).total_seconds() // 60) for event in found]


async def write(log: AuditLog, records: list[AuditRecord]) -> None:
    for one in records:  # one at a time: ids follow the list
        await log.record(one)


async def test_a_persons_access_log(backend: str, tmp_path: Path) -> None:
    async with audited(backend, tmp_path) as (store, log):
        await write(log, WRITTEN)
        kari = await events_for(store, [KARI])
        assert minutes(kari) == [70, 50, 40, 30, 20, 0]
        assert [e.id for e in kari] == sorted((e.id for e in kari), reverse=True)
        assert kari[0].record == WRITTEN[7]
        assert minutes(await events_for(store, [OLA])) == [30, 10]
        assert minutes(await events_for(store, [KARI, OLA])) == [70, 50, 40, 30, 20, 10, 0]
        assert await events_for(store, []) == []
        assert await events_for(store, ["01010199999"]) == []


@pytest.mark.parametrize("persons", [[KARI], [KARI, OLA]])
async def test_access_log_filters(backend: str, tmp_path: Path, persons: list[str]) -> None:
    async with audited(backend, tmp_path) as (store, log):
        await write(log, WRITTEN)
        since, until = T0 + timedelta(minutes=20), T0 + timedelta(minutes=50)

        async def found(**filters: object) -> list[int]:
            return minutes(await events_for(store, persons, **filters))  # type: ignore[arg-type]

        assert await found(since=since, until=until) == [40, 30, 20]  # until is exclusive
        assert await found(since=since) == [70, 50, 40, 30, 20]
        assert await found(until=until) == ([40, 30, 20, 0] if len(persons) == 1
                                            else [40, 30, 20, 10, 0])  # fmt: skip
        assert await found(service="kjernejournal") == [50, 20]
        assert await found(emergency_only=True) == [50, 30]
        assert await found(service="kjernejournal", emergency_only=True, since=since) == [50]
        assert await found(service="nothing") == []


@pytest.mark.parametrize("persons", [[KARI], [KARI, OLA]])
async def test_access_log_pages(backend: str, tmp_path: Path, persons: list[str]) -> None:
    async with audited(backend, tmp_path) as (store, log):
        await write(log, WRITTEN)
        everything = await events_for(store, persons)
        pages, before = [], None
        while page := await events_for(store, persons, before_id=before, limit=2):
            pages.append(page)
            before = page[-1].id
        assert [len(page) for page in pages] == [2] * (len(everything) // 2) + (
            [1] if len(everything) % 2 else []
        )
        assert [e for page in pages for e in page] == everything
        assert minutes(await events_for(store, persons, before_id=everything[1].id, limit=1)) == [
            minutes(everything)[2]
        ]


async def test_auditors_see_every_record(backend: str, tmp_path: Path) -> None:
    async with audited(backend, tmp_path) as (store, log):
        await write(log, WRITTEN)
        assert minutes(await events(store)) == [70, 60, 50, 40, 30, 20, 10, 0]
        assert minutes(await events(store, emergency_only=True)) == [50, 30]
        since, until = T0 + timedelta(minutes=10), T0 + timedelta(minutes=60)
        assert minutes(await events(store, since=since, until=until)) == [50, 40, 30, 20, 10]
        assert minutes(await events(store, service="kjernejournal")) == [50, 20]
        first = await events(store, limit=3)
        assert minutes(first) == [70, 60, 50]
        assert minutes(await events(store, before_id=first[-1].id, limit=3)) == [40, 30, 20]
