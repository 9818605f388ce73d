"""What the access policy needs to know from the national registers, as protocols.

The registries service implements them over the person register and HPR; the policy asks
them live (through the registers' own caches) on every decision.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Protocol


@dataclass(frozen=True, slots=True)
class PersonFacts:
    """What the policy needs to know about one person."""

    pid: str  # fødselsnummer or D-number
    patient_id: str | None = None  # the person's Patient in the person register
    birth_date: date | None = None
    protected: bool = False  # fortrolig or strengt fortrolig address
    name: str | None = None
    parents: frozenset[str] = field(default_factory=frozenset)  # with parental responsibility

    def age(self, on: date) -> int | None:
        """Whole years on ``on`` (None when the birth date is unknown)."""
        born = self.birth_date
        if born is None:
            return None
        return on.year - born.year - ((on.month, on.day) < (born.month, born.day))


class PersonRegister(Protocol):
    """Lookups in the person register."""

    async def facts(self, pid: str) -> PersonFacts | None:
        """The person with this number (None: not in the register)."""
        ...

    async def pid_of(self, patient_id: str) -> str | None:
        """The number of the person a ``Patient`` id stands for (None: no number)."""
        ...


class PersonnelRegister(Protocol):
    """Lookups in the health personnel register (HPR)."""

    async def professions_in_force(self, hpr_number: str) -> list[tuple[str, str | None]]:
        """(profession code in Volven 9060, its name) of each approval the HPR number holds
        in force today; empty when unknown, suspended, revoked or expired."""
        ...


class OrganisationRegister(Protocol):
    """Lookups in the enterprise register."""

    async def name(self, orgnr: str) -> str | None:
        """The name of the organisation with this organisation number."""
        ...


class NoRegisters:
    """No registers: nobody is known (a platform without the registries service)."""

    async def facts(self, pid: str) -> PersonFacts | None:
        return None

    async def pid_of(self, patient_id: str) -> str | None:
        return None

    async def professions_in_force(self, hpr_number: str) -> list[tuple[str, str | None]]:
        return []

    async def name(self, orgnr: str) -> str | None:
        return None
