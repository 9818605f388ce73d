"""The person directory: what sign-in needs to know about people, from the registers.

The registries service implements `PersonDirectory` over the person register and HPR; the
trust service reads it when a person signs in.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class Person:
    """A person as the sign-in needs them."""

    pid: str  # fødselsnummer or D-number
    name: str
    given_name: str | None = None
    family_name: str | None = None
    birth_date: str | None = None
    hpr_number: str | None = None  # when the person holds an approval in force in HPR


class PersonDirectory(Protocol):
    """Lookups in the person register and HPR."""

    async def person(self, pid: str) -> Person | None:
        """The person with this fødselsnummer or D-number, with their HPR number if any."""
        ...

    async def find(self, text: str, limit: int) -> list[Person]:
        """People whose name or number matches ``text`` (everyone when it is empty)."""
        ...


class EmptyDirectory:
    """A directory that knows nobody (when no person register runs)."""

    async def person(self, pid: str) -> Person | None:
        return None

    async def find(self, text: str, limit: int) -> list[Person]:
        return []
