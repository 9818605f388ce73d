"""The registers as the access policy and the audit trail ask them, on every request.

`RegisterLookups` answers who a person is (number, Patient id, birth date, address
protection, who holds parental responsibility for them), which organisation has a number,
and which approvals a health worker holds, from in-process caches that are dropped when any
worker changes a person, a family relation or an organisation (noticed within
`REFRESH_SECONDS`, like HPR's).
"""

from __future__ import annotations

from datetime import date
from typing import Any

import orjson

from samhandling.platform.fhir.changes import ChangeWatch, WatchedCache
from samhandling.platform.fhir.engine import FhirEngine
from samhandling.platform.identifiers import DNR_SYSTEM, FNR_SYSTEM, ORGNR_SYSTEM, birth_date
from samhandling.platform.policy.registers import PersonFacts
from samhandling.services.registries.directory import pid_of_resource, search_resources
from samhandling.services.registries.hpr import HprRegister
from samhandling.services.registries.model import PARENTAL_RESPONSIBILITY
from samhandling.services.registries.protection import protection

REFRESH_SECONDS = 1.0
MAX_PARENT_ENTRIES = 20


class RegisterLookups:
    """`PersonRegister`, `PersonnelRegister` and `OrganisationRegister` over the registers."""

    def __init__(
        self, engine: FhirEngine, hpr: HprRegister, refresh_seconds: float = REFRESH_SECONDS
    ) -> None:
        self._engine = engine
        self._hpr = hpr
        watch = ChangeWatch(
            engine.store, ("Patient", "RelatedPerson", "Organization"), refresh_seconds
        )
        # not found is not kept: it may be being written (in a transaction not yet committed)
        self._facts: WatchedCache[PersonFacts | None] = WatchedCache(watch, keep=_found)
        self._pids: WatchedCache[str | None] = WatchedCache(watch, keep=_found)
        self._orgs: WatchedCache[str | None] = WatchedCache(watch, keep=_found)

    async def facts(self, pid: str) -> PersonFacts | None:
        """The person with this number (None: not in the person register)."""
        return await self._facts.get(pid, self._load_facts)

    async def pid_of(self, patient_id: str) -> str | None:
        """The number of the person a Patient id stands for."""
        return await self._pids.get(patient_id, self._load_pid)

    async def name(self, orgnr: str) -> str | None:
        """The name of the organisation with this organisation number."""
        return await self._orgs.get(orgnr, self._load_org)

    async def professions_in_force(self, hpr_number: str) -> list[tuple[str, str | None]]:
        """(profession, its name) of each of the health worker's approvals in force today."""
        return await self._hpr.professions_in_force(hpr_number)

    async def _load_facts(self, pid: str) -> PersonFacts | None:
        if not (pid.isascii() and pid.isdigit() and len(pid) == 11):
            return None
        criteria = f"{FNR_SYSTEM}|{pid},{DNR_SYSTEM}|{pid}"
        found = await self._search("Patient", [("identifier", criteria)], 1)
        if not found:
            return None
        patient = found[0]
        relations = await self._search(
            "RelatedPerson", [("patient", f"Patient/{patient['id']}")], MAX_PARENT_ENTRIES
        )
        parents = frozenset(
            number
            for relation in relations
            if _has_parental_responsibility(relation) and (number := pid_of_resource(relation))
        )
        return PersonFacts(
            pid=pid,
            patient_id=patient["id"],
            birth_date=_birth_date(patient, pid),
            protected=protection(patient) is not None,
            name=_name(patient),
            parents=parents,
        )

    async def _load_pid(self, patient_id: str) -> str | None:
        found = await self._engine.store.read("Patient", patient_id)
        if found is None or found.content is None:
            return None
        return pid_of_resource(orjson.loads(found.content))

    async def _load_org(self, orgnr: str) -> str | None:
        if not (orgnr.isascii() and orgnr.isdigit()):
            return None
        found = await self._search("Organization", [("identifier", f"{ORGNR_SYSTEM}|{orgnr}")], 1)
        name = found[0].get("name") if found else None
        return name if isinstance(name, str) else None

    async def _search(
        self, type_name: str, criteria: list[tuple[str, str]], count: int
    ) -> list[dict[str, Any]]:
        return await search_resources(self._engine, type_name, criteria, count)


def _found(value: object) -> bool:
    return value is not None


def _has_parental_responsibility(relation: dict[str, Any]) -> bool:
    return relation.get("active", True) is not False and any(
        coding.get("system") == PARENTAL_RESPONSIBILITY
        for concept in relation.get("relationship") or ()
        for coding in concept.get("coding") or ()
    )


def _birth_date(patient: dict[str, Any], pid: str) -> date | None:
    text = patient.get("birthDate")
    if isinstance(text, str) and len(text) == 10:
        try:
            return date.fromisoformat(text)
        except ValueError:
            pass
    return birth_date(pid)


def _name(patient: dict[str, Any]) -> str | None:
    names = patient.get("name") or [{}]
    name = next((n for n in names if n.get("use") == "official"), names[0])
    given = " ".join(name.get("given", []))
    return name.get("text") or " ".join(p for p in (given, name.get("family")) if p) or None
