"""The HPR authorisation check: "is this HPR number authorised as <profession> now?" says no
for a suspended, revoked or expired approval, on both backends, and notices changes."""

from __future__ import annotations

import asyncio
import json
from datetime import date
from pathlib import Path

import httpx
import pytest
from registries_helpers import REDIRECT_URI, approval, new_fnr, new_hpr, practitioner, put

from conftest import BACKENDS, Server, fresh_engine, register_client
from samhandling.platform.auth.jose import b64url_decode
from samhandling.services import registries
from samhandling.services.registries.hpr import HprRegister
from samhandling.services.trust.tokentool import TokenClient

ON = date(2026, 6, 1)


def cases() -> list[tuple[str, list[dict], str, bool]]:
    """(name, approvals, profession asked about, authorised on ON?)"""
    return [
        ("authorised doctor", [approval("LE", "1", "2001-01-01")], "LE", True),
        ("asked as nurse", [approval("LE", "1", "2001-01-01")], "SP", False),
        ("suspended now", [approval("LE", "1", "2001-01-01", suspended=("2026-01-01", None))],
         "LE", False),
        ("suspension over", [approval("LE", "1", "2001-01-01",
                                      suspended=("2020-01-01", "2021-01-01"))], "LE", True),
        ("suspension ahead", [approval("LE", "1", "2001-01-01",
                                       suspended=("2027-01-01", None))], "LE", True),
        ("revoked", [approval("LE", "1", "2001-01-01", end="2025-12-31")], "LE", False),
        ("licence expired", [approval("LE", "4", "2024-01-01", end="2026-05-31")], "LE", False),
        ("licence valid", [approval("LE", "4", "2024-01-01", end="2026-06-01")], "LE", True),
        ("not yet", [approval("SP", "1", "2026-06-02")], "SP", False),
        ("two approvals, one in force",
         [approval("LE", "1", "2001-01-01", suspended=("2026-01-01", None)),
          approval("SP", "1", "1995-01-01")], "SP", True),
    ]  # fmt: skip


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return request.param


async def test_authorisation_matrix(backend: str, tmp_path: Path) -> None:
    async with fresh_engine(backend, tmp_path) as engine:
        registers = registries.configure(engine)
        numbers = {}
        for name, approvals, _, _ in cases():
            hpr = new_hpr()
            await engine.update(
                "Practitioner", f"hpr-{hpr}", practitioner(hpr, new_fnr(), approvals)
            )
            numbers[name] = hpr
        for name, _, profession, expected in cases():
            answer = await registers.hpr.is_authorised(numbers[name], profession, on=ON)
            assert answer is expected, name
        assert not await registers.hpr.is_authorised("123456789", "LE", on=ON)  # not in HPR
        assert not await registers.hpr.is_authorised("not a number", "LE", on=ON)
        assert await registers.hpr.professions(numbers["two approvals, one in force"], ON) == ["SP"]


async def test_a_suspension_is_seen_by_a_cached_check(backend: str, tmp_path: Path) -> None:
    async with fresh_engine(backend, tmp_path) as engine:
        registries.configure(engine)
        other_worker = HprRegister(engine, refresh_seconds=0.2)  # another process's cache
        hpr = new_hpr()
        doctor = practitioner(hpr, new_fnr(), [approval("LE", "1", "2001-01-01")])
        await engine.update("Practitioner", doctor["id"], doctor)
        assert await other_worker.is_authorised(hpr, "LE")
        suspended = practitioner(
            hpr, doctor["identifier"][1]["value"],
            [approval("LE", "1", "2001-01-01", suspended=("2020-01-01", None))],
        )  # fmt: skip
        await engine.update("Practitioner", doctor["id"], suspended)
        await asyncio.sleep(0.25)
        assert not await other_worker.is_authorised(hpr, "LE")


def test_a_suspended_doctor_signs_in_without_hpr_claims(server: Server, fhir: httpx.Client) -> None:
    """HelseID looks the HPR number up at sign-in: a suspended doctor gets none."""
    config = register_client(server, "--scope", "samhandling:fhir/read", "--orgnr",
                             "912159523", "--redirect-uri", REDIRECT_URI)  # fmt: skip
    client = TokenClient(server.url, config["client_id"], config["jwk"])
    for suspension, has_claim in ((None, True), (("2020-01-01", None), False)):
        fnr, hpr = new_fnr(), new_hpr()
        put(fhir, practitioner(hpr, fnr, [approval("LE", "1", "2001-01-01", suspended=suspension)]))
        tokens = client.sign_in(fnr, scope="openid helseid://scopes/hpr/hpr_number",
                                redirect_uri=REDIRECT_URI)  # fmt: skip
        claims = json.loads(b64url_decode(tokens.access_token.split(".")[1]))
        assert (claims.get("helseid://claims/hpr/hpr_number") == hpr) is has_claim
