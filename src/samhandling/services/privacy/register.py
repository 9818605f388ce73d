"""The privacy register: each person's choices in force and the powers of attorney they gave,
as the access policy asks for them on every request about a person.

`ConsentRegister` answers from an in-process cache of each asked-about person's active
Consents, parsed (`read_choice`). A person is loaded on the first question about them, with
one search, ``Consent?patient:identifier=<pid>``: the number in any system, so that it is
one indexed lookup (the write check lets only fødselsnumre and D-numbers name a patient, and
`read_choice` reads the system again); the status is judged here, not in the query, whose
plan would otherwise start from every active Consent when the database has no statistics.
A person without Consents is cached too (the common case costs one dictionary lookup). The
cache is emptied when any Consent changes, which it notices by reading the newest Consent
version number at most every `REFRESH_SECONDS` (`ChangeWatch`): a change written by any
worker is seen within that time. Periods are judged on the day asked about, not when
loaded: a person's choices in force are worked out again when the (UTC) day changes.
"""

from __future__ import annotations

import logging
import time
from datetime import date

import orjson

from samhandling.platform.fhir.changes import ChangeWatch, WatchedCache
from samhandling.platform.fhir.engine import FhirEngine
from samhandling.platform.policy.choices import (
    ALL_SERVICES,
    NO_CHOICES,
    Mandate,
    PrivacyChoices,
)
from samhandling.services.privacy.choice import PrivacyChoice, read_choice
from samhandling.services.privacy.model import Kind

log = logging.getLogger("samhandling.privacy")
REFRESH_SECONDS = 1.0
MAX_CACHED_PERSONS = 200_000  # a bound on memory: the cache starts afresh beyond it
_SECONDS_PER_DAY = 86_400
_EPOCH = date(1970, 1, 1).toordinal()
_EVERY_SERVICE = frozenset({ALL_SERVICES})
_PAGE = "1000"


def in_force(consents: tuple[PrivacyChoice, ...], on: date) -> PrivacyChoices:
    """The choices among ``consents`` (one person's) that count on ``on``, combined."""
    reserved: set[str] = set()
    hidden: set[str] = set()
    blocked: dict[str, set[str]] = {}
    for choice in consents:
        if not choice.in_force(on):
            continue
        if choice.kind is Kind.RESERVATION:
            reserved |= choice.services
        elif choice.kind is Kind.BLOCKED_ENTRIES:
            hidden |= choice.entries
        elif choice.kind is Kind.BLOCKED_PERSONNEL:
            services = choice.services or _EVERY_SERVICE
            for hpr_number in choice.personnel:
                blocked.setdefault(hpr_number, set()).update(services)
    if not (reserved or hidden or blocked):
        return NO_CHOICES
    return PrivacyChoices(
        frozenset(reserved),
        frozenset(hidden),
        {hpr: frozenset(_EVERY_SERVICE if ALL_SERVICES in s else s) for hpr, s in blocked.items()},
    )


def mandates_of(consents: tuple[PrivacyChoice, ...]) -> dict[str, tuple[Mandate, ...]]:
    """The powers of attorney among ``consents`` (one giver's), by receiver."""
    given: dict[str, list[Mandate]] = {}
    for choice in consents:
        if choice.kind is not Kind.POWER_OF_ATTORNEY or not choice.active:
            continue
        services = choice.services or _EVERY_SERVICE
        for receiver in choice.receivers:
            mandate = Mandate(choice.person, receiver, services, choice.start, choice.end)
            given.setdefault(receiver, []).append(mandate)
    return {receiver: tuple(mandates) for receiver, mandates in given.items()}


class _Person:
    """One person's active Consents, and what they amount to on the day last asked about."""

    __slots__ = ("choices", "consents", "day", "mandates")

    def __init__(self, consents: tuple[PrivacyChoice, ...]) -> None:
        self.consents = consents
        self.mandates = mandates_of(consents)
        self.day = -1
        self.choices = NO_CHOICES

    def choices_on(self, day: int) -> PrivacyChoices:
        """The choices in force on ``day`` (days since 1970-01-01)."""
        if day != self.day:
            self.choices = in_force(self.consents, date.fromordinal(_EPOCH + day))
            self.day = day
        return self.choices


_NOBODY = _Person(())  # every person without active Consents


class ConsentRegister:
    """`PrivacyRegister` over the Consents in the FHIR store, cached and kept fresh across
    workers."""

    def __init__(
        self,
        engine: FhirEngine,
        refresh_seconds: float = REFRESH_SECONDS,
        max_cached: int = MAX_CACHED_PERSONS,
    ) -> None:
        self._engine = engine
        watch = ChangeWatch(engine.store, ("Consent",), refresh_seconds)
        self._people: WatchedCache[_Person] = WatchedCache(watch, max_cached)

    async def choices(self, pid: str, on: date | None = None) -> PrivacyChoices:
        """The choices in force of the person with number ``pid`` today (or ``on``):
        NO_CHOICES when there are none."""
        person = await self._person(pid)
        if person is _NOBODY:
            return NO_CHOICES
        if on is not None:
            return in_force(person.consents, on)
        return person.choices_on(int(time.time() // _SECONDS_PER_DAY))

    async def mandates(self, giver: str, receiver: str) -> list[Mandate]:
        """The powers of attorney in active Consents that ``giver`` has given ``receiver``,
        whatever their periods (`Mandate.covers` judges them)."""
        person = await self._person(giver)
        return list(person.mandates.get(receiver, ()))

    async def consents(self, pid: str) -> tuple[PrivacyChoice, ...]:
        """The person's active Consents, parsed (in force or not)."""
        return (await self._person(pid)).consents

    async def _person(self, pid: str) -> _Person:
        if not (len(pid) == 11 and pid.isascii() and pid.isdigit()):
            return _NOBODY
        return await self._people.get(pid, self._load)

    async def _load(self, pid: str) -> _Person:
        request = self._engine.parse_search(
            ("Consent",),
            [("patient:identifier", pid), ("_count", _PAGE)],
        )
        consents = []
        while True:
            page = await self._engine.search(request)
            for row in page.matches:
                choice, issues = read_choice(orjson.loads(row.content), allow_synthetic=True)
                if choice is None:  # stored without the write check (by an older version)
                    log.warning(
                        "Consent/%s breaks the privacy profile and counts for nothing: %s",
                        row.id,
                        issues[0].diagnostics if issues else "?",
                    )
                elif choice.person == pid and choice.active:
                    consents.append(choice)
            if not page.next_cursor:
                break
            request.cursor = page.next_cursor
        return _Person(tuple(consents)) if consents else _NOBODY
