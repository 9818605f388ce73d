"""Helpers for the privacy tests (imported as ``privacy_helpers``): Consents of each kind,
persons of a chosen age, and clients signed in as citizens and as health personnel."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import httpx

from conftest import TEST_ORGNR, Server, register_client
from samhandling.platform.identifiers import FNR_SYSTEM, HPR_SYSTEM
from samhandling.services.privacy.model import (
    CHOICE_SYSTEM,
    PARTICIPATION_TYPE,
    PATIENT_PRIVACY,
    POWER_OF_ATTORNEY_ROLE,
    PRIMARY_PERFORMER,
    ROLE_CODE,
    SCOPE_SYSTEM,
    SERVICE_SYSTEM,
)
from samhandling.services.trust.tokentool import DpopAuth, TokenClient
from samhandling.synth.identifiers import fodselsnummer
from services.registries.registries_helpers import (
    REDIRECT_URI,
    approval,
    citizen,
    new_fnr,
    new_hpr,
    person,
    practitioner,
    put,
    rng,
)

READ = "samhandling:privacy/read"
WRITE = "samhandling:privacy/write"
PERSONNEL_SCOPES = (
    "openid profile helseid://scopes/identity/pid helseid://scopes/identity/security_level "
    "helseid://scopes/hpr/hpr_number"
)


def today() -> date:
    """Today in UTC, the day the service judges choices on."""
    return datetime.now(UTC).date()


def aged(years: int, days_to_birthday: int = 0) -> str:
    """A fødselsnummer of a person who is ``years`` old today and has their next birthday
    in ``days_to_birthday`` days (0: today is the birthday)."""
    now = today()
    born = date.fromordinal(now.toordinal() + days_to_birthday)
    try:
        born = born.replace(year=born.year - years - (1 if days_to_birthday else 0))
    except ValueError:  # 29 February
        born = born.replace(year=born.year - years - (1 if days_to_birthday else 0), day=28)
    return fodselsnummer(born, rng(), True)


def consent(
    kind: str,
    pid: str,
    provision: dict[str, Any],
    *,
    status: str = "active",
    system: str = FNR_SYSTEM,
    start: str | None = None,
    end: str | None = None,
) -> dict[str, Any]:
    """A Consent of the privacy profile."""
    if start or end:
        provision = {
            **provision,
            "period": {k: v for k, v in (("start", start), ("end", end)) if v},
        }
    return {
        "resourceType": "Consent",
        "status": status,
        "scope": {"coding": [{"system": SCOPE_SYSTEM, "code": PATIENT_PRIVACY}]},
        "category": [{"coding": [{"system": CHOICE_SYSTEM, "code": kind}]}],
        "patient": {"identifier": {"system": system, "value": pid}},
        "dateTime": "2026-01-05T10:00:00+01:00",
        "provision": provision,
    }


def services(*codes: str) -> list[dict[str, str]]:
    """provision.class codings naming services."""
    return [{"system": SERVICE_SYSTEM, "code": code} for code in codes]


def reservation(pid: str, *codes: str, **options: Any) -> dict[str, Any]:
    """A reservation against ``codes`` (services)."""
    return consent("reservation", pid, {"type": "deny", "class": services(*codes)}, **options)


def blocked_entries(pid: str, *references: str, **options: Any) -> dict[str, Any]:
    """Entries (``Type/id``) hidden from health personnel."""
    data = [{"meaning": "instance", "reference": {"reference": r}} for r in references]
    return consent("blocked-entries", pid, {"type": "deny", "data": data}, **options)


def blocked_personnel(
    pid: str, *hpr_numbers: str, only: tuple[str, ...] = (), **options: Any
) -> dict[str, Any]:
    """Health personnel blocked (from the services ``only``; none: every service)."""
    role = {"coding": [{"system": PARTICIPATION_TYPE, "code": PRIMARY_PERFORMER}]}
    actors = [
        {"role": role, "reference": {"identifier": {"system": HPR_SYSTEM, "value": number}}}
        for number in hpr_numbers
    ]
    provision: dict[str, Any] = {"type": "deny", "actor": actors}
    if only:
        provision["class"] = services(*only)
    return consent("blocked-personnel", pid, provision, **options)


def power_of_attorney(
    giver: str, *receivers: str, only: tuple[str, ...] = (), **options: Any
) -> dict[str, Any]:
    """A power of attorney (fullmakt) from ``giver`` to ``receivers``."""
    role = {"coding": [{"system": ROLE_CODE, "code": POWER_OF_ATTORNEY_ROLE}]}
    actors = [
        {"role": role, "reference": {"identifier": {"system": FNR_SYSTEM, "value": receiver}}}
        for receiver in receivers
    ]
    provision: dict[str, Any] = {"type": "permit", "actor": actors}
    if only:
        provision["class"] = services(*only)
    return consent("power-of-attorney", giver, provision, **options)


def signed_in_citizen(server: Server, fhir: httpx.Client, pid: str | None = None) -> httpx.Client:
    """A citizen (in the person register) signed in with the privacy scopes."""
    pid = pid or new_fnr()
    put(fhir, person(pid))
    return citizen(server, pid, READ, WRITE)


def signed_in_personnel(server: Server, fhir: httpx.Client) -> httpx.Client:
    """A doctor in HPR signed in (HelseID style) with the privacy scopes."""
    fnr, hpr = new_fnr(), new_hpr()
    put(fhir, practitioner(hpr, fnr, [approval("LE", "1", "2001-01-01")]))
    config = register_client(
        server, "--scope", READ, "--scope", WRITE, "--orgnr", TEST_ORGNR,
        "--redirect-uri", REDIRECT_URI,
    )  # fmt: skip
    tokens = TokenClient(server.url, config["client_id"], config["jwk"])
    signed_in = tokens.sign_in(
        fnr, scope=f"{PERSONNEL_SCOPES} {READ} {WRITE}", redirect_uri=REDIRECT_URI
    )
    return httpx.Client(base_url=server.fhir, timeout=30, auth=DpopAuth(signed_in, tokens.dpop))
