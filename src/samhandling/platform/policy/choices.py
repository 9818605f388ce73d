"""Citizens' privacy choices and powers of attorney, as the access policy reads them.

A citizen may reserve themself against a service (it then holds nothing about them and
nobody may see or write their information there), hide entries from health personnel, and
block named health personnel (even in an emergency). A person of 16 or more may give
another adult a power of attorney (fullmakt) to act for them in some or all services.
The privacy service stores these as FHIR Consent resources and implements
`PrivacyRegister` (see docs/services/access-and-audit.md).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Protocol

ALL_SERVICES = "*"


@dataclass(frozen=True, slots=True)
class PrivacyChoices:
    """One person's choices in force."""

    reserved: frozenset[str] = frozenset()  # services reserved against (ALL_SERVICES: all)
    hidden: frozenset[str] = frozenset()  # "Type/id" of entries hidden from others
    # HPR number -> services it is blocked from (ALL_SERVICES: every service)
    blocked: Mapping[str, frozenset[str]] = field(default_factory=dict)

    def reserves(self, service: str) -> bool:
        """Whether the person reserved against ``service``."""
        return service in self.reserved or ALL_SERVICES in self.reserved

    def blocks(self, hpr_number: str | None, service: str) -> bool:
        """Whether the person blocked this health worker from ``service``."""
        if hpr_number is None:
            return False
        services = self.blocked.get(hpr_number)
        return services is not None and (service in services or ALL_SERVICES in services)


NO_CHOICES = PrivacyChoices()


@dataclass(frozen=True, slots=True)
class Mandate:
    """A power of attorney (fullmakt): ``giver`` lets ``receiver`` act for them."""

    giver: str  # pid
    receiver: str  # pid
    services: frozenset[str] = frozenset({ALL_SERVICES})
    start: date | None = None
    end: date | None = None

    def covers(self, service: str, on: date) -> bool:
        """Whether it lets the receiver act in ``service`` on ``on``."""
        if self.start is not None and on < self.start:
            return False
        if self.end is not None and on > self.end:
            return False
        return service in self.services or ALL_SERVICES in self.services


class PrivacyRegister(Protocol):
    """The citizens' choices and the powers of attorney in force."""

    async def choices(self, pid: str) -> PrivacyChoices:
        """The choices of the person with this number (NO_CHOICES when none)."""
        ...

    async def mandates(self, giver: str, receiver: str) -> list[Mandate]:
        """The powers of attorney ``giver`` has given ``receiver`` (valid or not)."""
        ...


class NoPrivacyRegister:
    """Nobody has made a choice (a platform without the privacy service)."""

    async def choices(self, pid: str) -> PrivacyChoices:
        return NO_CHOICES

    async def mandates(self, giver: str, receiver: str) -> list[Mandate]:
        return []
