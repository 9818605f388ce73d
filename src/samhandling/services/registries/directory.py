"""The person directory over the registers: who someone is, and their HPR number when they
hold an approval in force (a suspended or expired health worker signs in as a person only).

A person is found by a fødselsnummer or D-number, current or replaced; everyone in HPR is
also in the person register, and their HPR number comes from the Practitioner with the
same fødselsnummer.
"""

from __future__ import annotations

from typing import Any

import orjson

from samhandling.platform.directory import Person
from samhandling.platform.fhir.engine import FhirEngine
from samhandling.platform.identifiers import DNR_SYSTEM, FNR_SYSTEM, HPR_SYSTEM
from samhandling.services.registries.hpr import HprRegister

_PERSON_SYSTEMS = (FNR_SYSTEM, DNR_SYSTEM)


class RegisterDirectory:
    """`PersonDirectory` over the person register and HPR."""

    def __init__(self, engine: FhirEngine, hpr: HprRegister) -> None:
        self._engine = engine
        self._hpr = hpr

    async def person(self, pid: str) -> Person | None:
        if not pid.isdigit() or len(pid) != 11:
            return None
        criteria = ",".join(f"{system}|{pid}" for system in _PERSON_SYSTEMS)
        patients = await self._search("Patient", [("identifier", criteria)], 1)
        practitioners = await self._search("Practitioner", [("identifier", criteria)], 5)
        found = patients + practitioners
        if not found:
            return None
        return await self._person(found[0], practitioners)

    async def find(self, text: str, limit: int) -> list[Person]:
        text = text.strip()
        if text.isdigit():
            person = await self.person(text)
            return [person] if person else []
        criteria = [("name", text)] if text else []
        people: dict[str, Person] = {}
        for type_name in ("Practitioner", "Patient"):
            for resource in await self._search(type_name, [*criteria, ("_sort", "family")], limit):
                pid = pid_of_resource(resource)
                if pid and pid not in people:
                    in_hpr = [resource] if type_name == "Practitioner" else []
                    people[pid] = await self._person(resource, in_hpr)
        return list(people.values())[:limit]

    async def _person(self, resource: dict[str, Any], practitioners: list[dict]) -> Person:
        hpr = None
        for practitioner in practitioners:
            number = _identifier(practitioner, (HPR_SYSTEM,))
            if number and await self._hpr.is_authorised(number):
                hpr = number
                break
        names = resource.get("name") or [{}]
        name = next((n for n in names if n.get("use") == "official"), names[0])
        given = " ".join(name.get("given", [])) or None
        family = name.get("family")
        pid = pid_of_resource(resource) or ""
        full = name.get("text") or " ".join(part for part in (given, family) if part) or pid
        return Person(pid, full, given, family, resource.get("birthDate"), hpr)

    async def _search(
        self, type_name: str, criteria: list[tuple[str, str]], count: int
    ) -> list[dict[str, Any]]:
        return await search_resources(self._engine, type_name, criteria, count)


async def search_resources(
    engine: FhirEngine, type_name: str, criteria: list[tuple[str, str]], count: int
) -> list[dict[str, Any]]:
    """The first ``count`` resources of ``type_name`` matching ``criteria`` (no access
    control: the registers' own lookups)."""
    request = engine.parse_search((type_name,), [*criteria, ("_count", str(count))])
    page = await engine.search(request)
    return [orjson.loads(row.content) for row in page.matches]


def _identifier(resource: dict[str, Any], systems: tuple[str, ...]) -> str | None:
    for identifier in resource.get("identifier", []):
        if (
            identifier.get("system") in systems
            and identifier.get("value")
            and identifier.get("use") != "old"
        ):
            return identifier["value"]
    return None


def pid_of_resource(resource: dict[str, Any]) -> str | None:
    """The current person number (fødselsnummer or D-number) on a resource."""
    return _identifier(resource, _PERSON_SYSTEMS)
