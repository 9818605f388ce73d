"""The health personnel register (HPR): approvals, and the authorisation check every
clinical request can afford.

A Practitioner's approvals are its ``qualification`` elements whose code has a profession
(Volven 9060) and an approval type (Volven 7704); the approval is in force from
``period.start`` to ``period.end`` (an expired licence or a revoked authorisation has an
end), except while an ``hpr-suspension`` extension's period covers the moment asked about.

`HprRegister.is_authorised` answers from an in-process cache of parsed approvals. The cache
is emptied when any Practitioner changes, which it notices by reading the newest
Practitioner version number at most every `REFRESH_SECONDS`: a change written by any worker
is seen within that time.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

import orjson

from samhandling.platform.fhir.changes import ChangeWatch, WatchedCache
from samhandling.platform.fhir.engine import FhirEngine
from samhandling.platform.identifiers import HPR_SYSTEM
from samhandling.services.registries.model import (
    APPROVAL_TYPE,
    HPR_SUSPENSION,
    PROFESSION,
    SPECIALITY,
)

REFRESH_SECONDS = 1.0


@dataclass(frozen=True, slots=True)
class Approval:
    """One approval (godkjenning) in HPR."""

    profession: str  # Volven 9060, e.g. LE (lege), SP (sykepleier)
    approval_type: str  # Volven 7704, e.g. 1 (autorisasjon), 4 (lisens)
    start: str | None  # FHIR date or dateTime
    end: str | None
    suspensions: tuple[tuple[str | None, str | None], ...] = ()  # (start, end) periods
    profession_name: str | None = None  # the 9060 display, e.g. Lege

    def in_force(self, on: str) -> bool:
        """Whether the approval is valid on ``on`` (an ISO date)."""
        if self.start and self.start[:10] > on:
            return False
        if self.end and self.end[:10] < on:
            return False
        return not any(
            (start is None or start[:10] <= on) and (end is None or end[:10] >= on)
            for start, end in self.suspensions
        )


@dataclass(frozen=True, slots=True)
class HprEntry:
    """What HPR says about one HPR number."""

    hpr_number: str
    practitioner_id: str
    active: bool
    approvals: tuple[Approval, ...]
    specialities: tuple[str, ...]  # Volven 7426 codes


def parse_entry(practitioner: dict[str, Any], hpr_number: str) -> HprEntry:
    """The HPR facts a Practitioner resource records."""
    approvals = []
    specialities = []
    for qualification in practitioner.get("qualification") or ():
        codings = qualification["code"].get("coding", [])
        codes = {c.get("system"): c.get("code") for c in codings}
        names = {c.get("system"): c.get("display") for c in codings}
        period = qualification.get("period") or {}
        if PROFESSION in codes and APPROVAL_TYPE in codes:
            suspensions = tuple(
                (ext["valuePeriod"].get("start"), ext["valuePeriod"].get("end"))
                for ext in qualification.get("extension") or ()
                if ext.get("url") == HPR_SUSPENSION and "valuePeriod" in ext
            )
            approvals.append(
                Approval(
                    codes[PROFESSION],
                    codes[APPROVAL_TYPE],
                    period.get("start"),
                    period.get("end"),
                    suspensions,
                    names.get(PROFESSION),
                )
            )
        elif SPECIALITY in codes:
            specialities.append(codes[SPECIALITY])
    return HprEntry(
        hpr_number,
        practitioner["id"],
        practitioner.get("active", True),
        tuple(approvals),
        tuple(specialities),
    )


def today() -> str:
    """Today's date in UTC, as ISO text."""
    return datetime.now(UTC).date().isoformat()


class HprRegister:
    """Lookups in HPR over the FHIR store, with a cache kept fresh across workers."""

    def __init__(self, engine: FhirEngine, refresh_seconds: float = REFRESH_SECONDS) -> None:
        self._engine = engine
        watch = ChangeWatch(engine.store, ("Practitioner",), refresh_seconds)
        self._entries: WatchedCache[HprEntry | None] = WatchedCache(watch)

    async def entry(self, hpr_number: str) -> HprEntry | None:
        """The register entry of ``hpr_number`` (None when it is not in HPR)."""
        return await self._entries.get(hpr_number, self._lookup)

    async def is_authorised(
        self, hpr_number: str, profession: str | None = None, on: date | None = None
    ) -> bool:
        """Whether ``hpr_number`` holds an approval in force (as ``profession`` when given;
        Volven 9060 code) today or ``on``: "no" for a suspended, revoked or expired one."""
        found = await self.entry(hpr_number)
        if found is None or not found.active:
            return False
        day = on.isoformat() if on is not None else today()
        return any(
            approval.in_force(day)
            for approval in found.approvals
            if profession is None or approval.profession == profession
        )

    async def professions(self, hpr_number: str, on: date | None = None) -> list[str]:
        """The professions ``hpr_number`` is approved for today (or ``on``)."""
        found = await self.entry(hpr_number)
        if found is None or not found.active:
            return []
        day = on.isoformat() if on is not None else today()
        return list(dict.fromkeys(a.profession for a in found.approvals if a.in_force(day)))

    async def professions_in_force(
        self, hpr_number: str, on: date | None = None
    ) -> list[tuple[str, str | None]]:
        """(profession, its name) of each approval in force today (or ``on``)."""
        found = await self.entry(hpr_number)
        if found is None or not found.active:
            return []
        day = on.isoformat() if on is not None else today()
        named = {a.profession: a.profession_name for a in found.approvals if a.in_force(day)}
        return list(named.items())

    async def _lookup(self, hpr_number: str) -> HprEntry | None:
        if not (hpr_number.isascii() and hpr_number.isdigit()):
            return None
        request = self._engine.parse_search(
            ("Practitioner",), [("identifier", f"{HPR_SYSTEM}|{hpr_number}"), ("_count", "2")]
        )
        page = await self._engine.search(request)
        if not page.matches:
            return None
        return parse_entry(orjson.loads(page.matches[0].content), hpr_number)
