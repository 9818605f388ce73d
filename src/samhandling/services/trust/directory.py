"""Where the claims about people come from: the person register and HPR.

`PersonDirectory` is the small interface the trust service reads; the grunndata service
(registries) will implement it over the real registers. Until then `FhirPersonDirectory`
reads Patient and Practitioner resources from the FHIR store: a person is found by a
fødselsnummer or D-number identifier, and their HPR number by the HPR identifier of an
active Practitioner with the same fødselsnummer.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import orjson

from samhandling.platform.fhir.engine import FhirEngine
from samhandling.synth.identifiers import (  # move to a platform module with #5
    DNR_SYSTEM,
    FNR_SYSTEM,
    HPR_SYSTEM,
)

_PERSON_SYSTEMS = (FNR_SYSTEM, DNR_SYSTEM)


@dataclass(frozen=True, slots=True)
class Person:
    """A person as the sign-in needs them."""

    pid: str  # fødselsnummer or D-number
    name: str
    given_name: str | None = None
    family_name: str | None = None
    birth_date: str | None = None
    hpr_number: str | None = None  # when the person is registered in HPR


class PersonDirectory(Protocol):
    """Lookups in the person register and HPR."""

    async def person(self, pid: str) -> Person | None:
        """The person with this fødselsnummer or D-number, with their HPR number if any."""
        ...

    async def find(self, text: str, limit: int) -> list[Person]:
        """People whose name or number matches ``text`` (everyone when it is empty)."""
        ...


class FhirPersonDirectory:
    """The directory over the FHIR store's Patient and Practitioner resources."""

    def __init__(self, engine: FhirEngine) -> None:
        self._engine = engine

    async def person(self, pid: str) -> Person | None:
        if not pid.isdigit() or len(pid) != 11:
            return None
        criteria = ",".join(f"{system}|{pid}" for system in _PERSON_SYSTEMS)
        practitioners = await self._search("Practitioner", [("identifier", criteria)], 5)
        patients = await self._search("Patient", [("identifier", criteria)], 1)
        found = patients + practitioners
        if not found:
            return None
        hpr = next((_hpr(r) for r in practitioners if r.get("active", True) and _hpr(r)), None)
        return _person(found[0], pid, hpr)

    async def find(self, text: str, limit: int) -> list[Person]:
        text = text.strip()
        if text.isdigit():
            person = await self.person(text)
            return [person] if person else []
        criteria = [("name", text)] if text else []
        people: dict[str, Person] = {}
        for type_name in ("Practitioner", "Patient"):
            for resource in await self._search(type_name, [*criteria, ("_sort", "family")], limit):
                pid = _pid(resource)
                if pid and pid not in people:
                    hpr = _hpr(resource) if type_name == "Practitioner" else None
                    people[pid] = _person(resource, pid, hpr)
        return list(people.values())[:limit]

    async def _search(
        self, type_name: str, criteria: list[tuple[str, str]], count: int
    ) -> list[dict[str, Any]]:
        request = self._engine.parse_search((type_name,), [*criteria, ("_count", str(count))])
        page = await self._engine.search(request)
        return [orjson.loads(row.content) for row in page.matches]


def _identifier(resource: dict[str, Any], systems: tuple[str, ...]) -> str | None:
    for identifier in resource.get("identifier", []):
        if identifier.get("system") in systems and identifier.get("value"):
            return identifier["value"]
    return None


def _pid(resource: dict[str, Any]) -> str | None:
    return _identifier(resource, _PERSON_SYSTEMS)


def _hpr(resource: dict[str, Any]) -> str | None:
    return _identifier(resource, (HPR_SYSTEM,))


def _person(resource: dict[str, Any], pid: str, hpr: str | None) -> Person:
    names = resource.get("name") or [{}]
    name = next((n for n in names if n.get("use") == "official"), names[0])
    given = " ".join(name.get("given", [])) or None
    family = name.get("family")
    full = name.get("text") or " ".join(part for part in (given, family) if part) or pid
    return Person(pid, full, given, family, resource.get("birthDate"), hpr)
