"""Helpers for the registries tests (imported as ``registries_helpers``): register data made
fresh for each test (new numbers, so tests sharing a server never collide) and clients with
chosen scopes."""

from __future__ import annotations

import random
import uuid
from datetime import date
from typing import Any

import httpx

from conftest import TEST_ORGNR, Server, register_client
from samhandling.platform.identifiers import (
    DNR_SYSTEM,
    FNR_SYSTEM,
    HPR_SYSTEM,
    ORGNR_SYSTEM,
)
from samhandling.services.registries.model import (
    ADDRESS_CONFIDENTIALITY,
    APPROVAL_TYPE,
    EPISODE_TYPE,
    HPR_SUSPENSION,
    PROFESSION,
)
from samhandling.services.trust.tokentool import DpopAuth, TokenClient
from samhandling.synth.identifiers import d_nummer, fodselsnummer, hpr_number, organisasjonsnummer

READ = "samhandling:grunndata/read"
ADMIN = "samhandling:grunndata/admin"
PROTECTED = "samhandling:grunndata/protected"
REDIRECT_URI = "http://127.0.0.1:9/callback"
USER_SCOPES = (
    "openid profile helseid://scopes/identity/pid helseid://scopes/identity/security_level"
)


def rng() -> random.Random:
    """A random source of its own for each call (fresh numbers every test)."""
    return random.Random(uuid.uuid4().int)


def new_fnr(born: date | None = None, female: bool = True) -> str:
    """A valid fødselsnummer nobody else in the session has (with high probability: a random
    day from 1940 to 2000, and a random individual number)."""
    source = rng()
    day = born or date(source.randint(1940, 2000), source.randint(1, 12), source.randint(1, 28))
    return fodselsnummer(day, source, female)


def new_dnr() -> str:
    """A valid D-number."""
    return d_nummer(date(rng().randint(1950, 1999), 3, 14), rng(), False)


def new_hpr() -> str:
    """An HPR number."""
    return hpr_number(rng())


def new_orgnr() -> str:
    """A valid organisation number."""
    return organisasjonsnummer(rng())


def put(fhir: httpx.Client, resource: dict[str, Any]) -> dict[str, Any]:
    """Write ``resource`` (it has an id) with PUT; the stored resource."""
    response = fhir.put(f"/{resource['resourceType']}/{resource['id']}", json=resource)
    assert response.status_code in (200, 201), response.text
    return response.json()


def person(
    fnr: str,
    *,
    protection: str | None = None,
    gp_role: str | None = None,
    extra_identifiers: list[dict] | None = None,
    city: str = "Bergen",
) -> dict[str, Any]:
    """A person-register Patient with address, phone and (optionally) GP and protection."""
    resource: dict[str, Any] = {
        "resourceType": "Patient",
        "id": f"p-{uuid.uuid4().hex[:16]}",
        "identifier": [
            {"use": "official", "system": FNR_SYSTEM, "value": fnr},
            *(extra_identifiers or []),
        ],
        "name": [{"use": "official", "family": "Hemmelig", "given": ["Hanne"]}],
        "telecom": [{"system": "phone", "value": f"9{rng().randrange(10**7):07d}"}],
        "address": [{"line": ["Skjultveien 7"], "postalCode": "5003", "city": city}],
        "birthDate": "1980-05-17",
    }
    if protection:
        resource["meta"] = {"security": [{"system": ADDRESS_CONFIDENTIALITY, "code": protection}]}
    if gp_role:
        resource["generalPractitioner"] = [{"reference": f"PractitionerRole/{gp_role}"}]
    return resource


def gp_episode(patient_id: str, doctor_id: str, org_id: str) -> dict[str, Any]:
    """A person's current GP (an EpisodeOfCare in the GP register; ``careManager`` is the
    GP's Practitioner, which R4's ``care-manager`` search parameter indexes)."""
    return {
        "resourceType": "EpisodeOfCare",
        "id": f"gp-{uuid.uuid4().hex[:16]}",
        "status": "active",
        "type": [{"coding": [{"system": EPISODE_TYPE, "code": "fastlege"}]}],
        "patient": {"reference": f"Patient/{patient_id}"},
        "managingOrganization": {"reference": f"Organization/{org_id}"},
        "careManager": {"reference": f"Practitioner/{doctor_id}"},
        "period": {"start": "2020-01-01"},
    }


def gp_office(fhir: httpx.Client) -> tuple[str, str, str]:
    """A GP office with one GP: (organization id, practitioner id, practitioner role id)."""
    org = put(fhir, {"resourceType": "Organization", "id": f"o-{uuid.uuid4().hex[:16]}",
                     "identifier": [{"system": ORGNR_SYSTEM, "value": new_orgnr()}],
                     "name": "Testbyen legesenter"})  # fmt: skip
    doctor = put(fhir, practitioner(new_hpr(), new_fnr(), [approval("LE", "1", "2005-01-01")]))
    role = put(fhir, {"resourceType": "PractitionerRole", "id": f"r-{uuid.uuid4().hex[:16]}",
                      "practitioner": {"reference": f"Practitioner/{doctor['id']}"},
                      "organization": {"reference": f"Organization/{org['id']}"}})  # fmt: skip
    return org["id"], doctor["id"], role["id"]


def approval(
    profession: str,
    approval_type: str,
    start: str,
    end: str | None = None,
    suspended: tuple[str, str | None] | None = None,
) -> dict[str, Any]:
    """One HPR approval as a Practitioner.qualification."""
    period = {"start": start, **({"end": end} if end else {})}
    qualification: dict[str, Any] = {
        "code": {"coding": [{"system": PROFESSION, "code": profession},
                            {"system": APPROVAL_TYPE, "code": approval_type}]},
        "period": period,
    }  # fmt: skip
    if suspended:
        start_s, end_s = suspended
        value = {"start": start_s, **({"end": end_s} if end_s else {})}
        qualification["extension"] = [{"url": HPR_SUSPENSION, "valuePeriod": value}]
    return qualification


def practitioner(hpr: str, fnr: str, approvals: list[dict[str, Any]]) -> dict[str, Any]:
    """An HPR Practitioner."""
    return {
        "resourceType": "Practitioner",
        "id": f"hpr-{hpr}",
        "identifier": [{"system": HPR_SYSTEM, "value": hpr}, {"system": FNR_SYSTEM, "value": fnr}],
        "name": [{"family": "Lege", "given": ["Lise"]}],
        "qualification": approvals,
    }


def client_with(server: Server, *scopes: str) -> httpx.Client:
    """An HTTP client on the FHIR base with a system token carrying only ``scopes``."""
    options = [option for scope in scopes for option in ("--scope", scope)]
    config = register_client(server, *options, "--orgnr", TEST_ORGNR)
    tokens = TokenClient(server.url, config["client_id"], config["jwk"])
    scope = " ".join(scopes)
    auth = DpopAuth(
        tokens.client_credentials(scope),
        tokens.dpop,
        renew=lambda: tokens.client_credentials(scope),
    )
    return httpx.Client(base_url=server.fhir, timeout=30, auth=auth)


def citizen(server: Server, pid: str, *scopes: str) -> httpx.Client:
    """An HTTP client with a citizen token for ``pid`` (signed in through the test IdP)."""
    options = [option for scope in scopes for option in ("--scope", scope)]
    config = register_client(server, "--citizen", *options, "--redirect-uri", REDIRECT_URI)
    tokens = TokenClient(server.url, config["client_id"], config["jwk"])
    signed_in = tokens.sign_in(
        pid, scope=f"{USER_SCOPES} {' '.join(scopes)}", redirect_uri=REDIRECT_URI
    )
    return httpx.Client(base_url=server.fhir, timeout=30, auth=DpopAuth(signed_in, tokens.dpop))


__all__ = ["DNR_SYSTEM", "FNR_SYSTEM", "HPR_SYSTEM", "ORGNR_SYSTEM"]
