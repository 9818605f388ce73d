"""The privacy register in process, on both backends: choices and powers of attorney follow
writes within the refresh interval (also in another worker's cache), only active Consents
within their period count, and a power of attorney's services and period are kept."""

from __future__ import annotations

import asyncio
import logging
from datetime import date, timedelta
from pathlib import Path

import pytest
from privacy_helpers import (
    blocked_entries,
    blocked_personnel,
    power_of_attorney,
    reservation,
    today,
)

from conftest import BACKENDS, fresh_engine
from samhandling.platform.fhir.engine import FhirEngine
from samhandling.platform.identifiers import DNR_SYSTEM
from samhandling.platform.policy.choices import ALL_SERVICES, NO_CHOICES
from samhandling.services import privacy
from samhandling.services.privacy import register as register_module
from samhandling.services.privacy.register import ConsentRegister
from services.registries.registries_helpers import new_dnr, new_fnr, new_hpr

REFRESH = 0.05  # the tests' ChangeWatch interval
NOTICED = 0.12  # long enough for a change to be noticed


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return request.param


async def create(engine: FhirEngine, resource: dict) -> str:
    return (await engine.create("Consent", resource)).resource.id


def days(n: int) -> str:
    return (today() + timedelta(days=n)).isoformat()


async def test_each_kind_counts(backend: str, tmp_path: Path) -> None:
    async with fresh_engine(backend, tmp_path) as engine:
        register = privacy.configure(engine)
        pid, doctor, nurse, receiver = new_fnr(), new_hpr(), new_hpr(), new_fnr()
        await create(engine, reservation(pid, "kjernejournal", "e-resept"))
        await create(engine, reservation(pid, "results"))
        await create(engine, blocked_entries(pid, "DocumentReference/d1", "Flag/f2"))
        await create(engine, blocked_personnel(pid, doctor))
        await create(engine, blocked_personnel(pid, nurse, only=("e-resept",)))
        await create(engine, power_of_attorney(pid, receiver, only=("results",)))

        choices = await register.choices(pid)
        assert choices.reserved == {"kjernejournal", "e-resept", "results"}
        assert choices.reserves("results") and not choices.reserves("homecare")
        assert choices.hidden == {"DocumentReference/d1", "Flag/f2"}
        assert choices.blocked == {doctor: {ALL_SERVICES}, nurse: {"e-resept"}}
        assert choices.blocks(doctor, "messaging") and choices.blocks(nurse, "e-resept")
        assert not choices.blocks(nurse, "kjernejournal") and not choices.blocks(None, "fhir")
        [mandate] = await register.mandates(pid, receiver)
        assert (mandate.giver, mandate.receiver, mandate.services) == (pid, receiver, {"results"})
        assert await register.mandates(receiver, pid) == []  # it goes one way
        assert await register.choices(receiver) is NO_CHOICES
        assert await register.choices(new_fnr()) is NO_CHOICES
        assert await register.choices("not a number") is NO_CHOICES


async def test_a_d_number_person(backend: str, tmp_path: Path) -> None:
    async with fresh_engine(backend, tmp_path) as engine:
        register = privacy.configure(engine)
        dnr = new_dnr()
        await create(engine, reservation(dnr, "homecare", system=DNR_SYSTEM))
        assert (await register.choices(dnr)).reserved == {"homecare"}


async def test_writes_are_seen_within_the_refresh_interval(backend: str, tmp_path: Path) -> None:
    async with fresh_engine(backend, tmp_path) as engine:
        privacy.configure(engine)
        this_worker = ConsentRegister(engine, refresh_seconds=REFRESH)
        other_worker = ConsentRegister(engine, refresh_seconds=REFRESH)
        pid, receiver, hpr = new_fnr(), new_fnr(), new_hpr()
        for register in (this_worker, other_worker):  # both have the person cached as empty
            assert await register.choices(pid) is NO_CHOICES
            assert await register.mandates(pid, receiver) == []

        reserved = await create(engine, reservation(pid, "kjernejournal"))
        mandate = power_of_attorney(pid, receiver)
        mandate_id = await create(engine, mandate)
        await asyncio.sleep(NOTICED)
        for register in (this_worker, other_worker):
            assert (await register.choices(pid)).reserved == {"kjernejournal"}
            assert len(await register.mandates(pid, receiver)) == 1

        # withdrawn (inactive), changed, deleted
        withdrawn = {**mandate, "id": mandate_id, "status": "inactive"}
        await engine.update("Consent", mandate_id, withdrawn)
        changed = {**reservation(pid, "kjernejournal", "e-resept"), "id": reserved}
        await engine.update("Consent", reserved, changed)
        await create(engine, blocked_personnel(pid, hpr))
        await asyncio.sleep(NOTICED)
        for register in (this_worker, other_worker):
            choices = await register.choices(pid)
            assert choices.reserved == {"kjernejournal", "e-resept"}
            assert choices.blocks(hpr, "fhir")
            assert await register.mandates(pid, receiver) == []

        await engine.delete("Consent", reserved)
        await asyncio.sleep(NOTICED)
        assert (await other_worker.choices(pid)).reserved == frozenset()


async def test_only_active_consents_in_their_period_count(backend: str, tmp_path: Path) -> None:
    async with fresh_engine(backend, tmp_path) as engine:
        register = privacy.configure(engine)
        pid = new_fnr()
        for status in ("draft", "proposed", "rejected", "inactive", "entered-in-error"):
            await create(engine, reservation(pid, "messaging", status=status))
        await create(engine, reservation(pid, "results", end=days(-1)))  # ended yesterday
        await create(engine, reservation(pid, "homecare", end="2020"))  # ended in 2020
        await create(engine, reservation(pid, "e-resept", start=days(1)))  # from tomorrow
        await create(engine, reservation(pid, "fhir", start=days(0), end=days(0)))  # today only
        await create(engine, reservation(pid, "kjernejournal", start="2020-01",
                                         end=f"{days(5)}T12:00:00+01:00"))  # fmt: skip
        assert (await register.choices(pid)).reserved == {"fhir", "kjernejournal"}
        tomorrow = today() + timedelta(days=1)
        assert (await register.choices(pid, on=tomorrow)).reserved == {"e-resept", "kjernejournal"}
        long_ago = date(2019, 12, 31)
        assert (await register.choices(pid, on=long_ago)).reserved == {"homecare", "results"}
        assert (await register.choices(pid)).reserved == {"fhir", "kjernejournal"}  # again


async def test_a_mandate_keeps_its_services_and_period(backend: str, tmp_path: Path) -> None:
    async with fresh_engine(backend, tmp_path) as engine:
        register = privacy.configure(engine)
        giver, receiver, other = new_fnr(), new_fnr(), new_fnr()
        await create(engine, power_of_attorney(giver, receiver, only=("e-resept", "results"),
                                               start="2026-01-01", end="2026-12-31"))  # fmt: skip
        await create(engine, power_of_attorney(giver, other))  # every service, no end
        await create(engine, power_of_attorney(giver, receiver, status="inactive"))
        [limited] = await register.mandates(giver, receiver)
        assert limited.services == {"e-resept", "results"}
        assert (limited.start, limited.end) == (date(2026, 1, 1), date(2026, 12, 31))
        assert limited.covers("e-resept", date(2026, 6, 1))
        assert not limited.covers("kjernejournal", date(2026, 6, 1))
        assert not limited.covers("e-resept", date(2027, 1, 1))
        assert not limited.covers("e-resept", date(2025, 12, 31))
        [general] = await register.mandates(giver, other)
        assert general.services == {ALL_SERVICES} and general.end is None
        assert general.covers("kjernejournal", date(2040, 1, 1))
        assert await register.mandates(giver, new_fnr()) == []
        assert await register.choices(giver) is NO_CHOICES  # a mandate is no restriction


async def test_many_consents_are_read_page_by_page(
    backend: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(register_module, "_PAGE", "2")
    async with fresh_engine(backend, tmp_path) as engine:
        register = privacy.configure(engine)
        pid = new_fnr()
        for n in range(5):
            await create(engine, blocked_entries(pid, f"DocumentReference/doc-{n}"))
        hidden = (await register.choices(pid)).hidden
        assert hidden == {f"DocumentReference/doc-{n}" for n in range(5)}


async def test_a_consent_stored_without_the_check_counts_for_nothing(
    backend: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async with fresh_engine(backend, tmp_path) as engine:
        pid = new_fnr()
        broken = reservation(pid, "kjernejournal")
        broken["provision"]["type"] = "permit"
        await create(engine, broken)  # no write check: privacy is not configured yet
        register = privacy.configure(engine)
        with caplog.at_level(logging.WARNING, "samhandling.privacy"):
            assert await register.choices(pid) is NO_CHOICES
        assert "breaks the privacy profile" in caplog.text
