"""One stored Consent read as the privacy choice it records, and everything wrong with it.

`read_choice` is the one reading of the profile (docs/services/privacy.md): the write check
refuses a Consent for the issues it finds, and the register takes the choice it returns. A
Consent with an error is no choice at all (None), so the register never half-applies one.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import date
from typing import Any

from samhandling.platform.fhir.definitions import is_resource_type
from samhandling.platform.fhir.errors import Issue
from samhandling.platform.fhir.ids import is_valid_id
from samhandling.platform.identifiers import HPR_SYSTEM, birth_date, identifier_error
from samhandling.services.privacy.model import (
    CHOICE_SYSTEM,
    GIVER_MIN_AGE,
    INSTANCE,
    PATIENT_PRIVACY,
    PERSON_SYSTEMS,
    POWER_OF_ATTORNEY_ROLE,
    PROVISION_TYPE,
    RECEIVER_MIN_AGE,
    ROLE_CODE,
    SCOPE_SYSTEM,
    SERVICE_SYSTEM,
    SERVICES,
    Kind,
)

_KINDS = ", ".join(kind.value for kind in Kind)
_SERVICE_CODES = ", ".join(sorted(SERVICES))
# the provision elements each kind needs (first) and may have (second); others are refused
_ELEMENTS: dict[Kind, tuple[str, frozenset[str]]] = {
    Kind.RESERVATION: ("class", frozenset({"class"})),
    Kind.BLOCKED_ENTRIES: ("data", frozenset({"data"})),
    Kind.BLOCKED_PERSONNEL: ("actor", frozenset({"actor", "class"})),
    Kind.POWER_OF_ATTORNEY: ("actor", frozenset({"actor", "class"})),
}
_KIND_ELEMENTS = ("actor", "class", "data")
# provision elements that would narrow a choice in ways the register does not apply (a
# power of attorney only for some actions, a reservation only for some purposes, ...)
_NARROWING = ("provision", "code", "action", "dataPeriod", "purpose", "securityLabel")


@dataclass(frozen=True, slots=True)
class PrivacyChoice:
    """What one Consent records (its elements parsed; nothing evaluated)."""

    kind: Kind
    person: str  # the fødselsnummer or D-number of the person whose choice it is
    active: bool  # status active (every other status counts for nothing)
    services: frozenset[str] = frozenset()  # named services; empty: every service
    entries: frozenset[str] = frozenset()  # blocked-entries: "Type/id" of the hidden entries
    personnel: frozenset[str] = frozenset()  # blocked-personnel: HPR numbers
    receivers: tuple[str, ...] = ()  # power-of-attorney: the receivers' numbers
    start: date | None = None  # provision.period, as days (inclusive)
    end: date | None = None

    def in_force(self, on: date) -> bool:
        """Whether the choice counts on ``on``: active, and ``on`` within its period."""
        return (
            self.active
            and (self.start is None or self.start <= on)
            and (self.end is None or on <= self.end)
        )


def read_choice(
    consent: dict[str, Any], *, allow_synthetic: bool = False, written_on: date | None = None
) -> tuple[PrivacyChoice | None, list[Issue]]:
    """The choice ``consent`` records and the issues that make it break the profile (the
    choice is None when there is any). With ``written_on``, also the rules that hold on the
    day a Consent is written: the ages of a power of attorney's giver and receiver."""
    reader = _Reader(allow_synthetic, written_on)
    choice = reader.read(consent)
    return (choice if not reader.issues else None), reader.issues


def age_on(pid: str, on: date) -> int | None:
    """Whole years of the person with number ``pid`` on ``on`` (None: the number tells no
    birth date)."""
    born = birth_date(pid)
    if born is None:
        return None
    return on.year - born.year - ((on.month, on.day) < (born.month, born.day))


class _Reader:
    """Reads one Consent, collecting issues."""

    def __init__(self, allow_synthetic: bool, written_on: date | None) -> None:
        self.allow_synthetic = allow_synthetic
        self.written_on = written_on
        self.issues: list[Issue] = []

    def error(self, path: str, message: str, code: str = "value") -> None:
        self.issues.append(Issue("error", code, message, (path,)))

    def read(self, consent: dict[str, Any]) -> PrivacyChoice | None:
        status = consent.get("status")
        if not isinstance(status, str):
            self.error("Consent.status", "a privacy choice needs a status", "required")
        if "dateTime" not in consent:
            self.error(
                "Consent.dateTime", "a privacy choice needs the time it was made", "required"
            )
        self._scope(consent.get("scope"))
        kind = self._kind(consent.get("category"))
        person = self._patient(consent.get("patient"))
        provision = consent.get("provision")
        if not isinstance(provision, dict):
            self.error("Consent.provision", "a privacy choice needs a provision", "required")
            return None
        start, end = self._period(provision.get("period"))
        if kind is None:
            return None
        self._shape(kind, provision)
        services = self._services(provision.get("class"))
        entries: frozenset[str] = frozenset()
        personnel: frozenset[str] = frozenset()
        receivers: tuple[str, ...] = ()
        if kind is Kind.BLOCKED_ENTRIES:
            entries = self._entries(provision.get("data"))
        elif kind is Kind.BLOCKED_PERSONNEL:
            personnel = self._personnel(provision.get("actor"))
        elif kind is Kind.POWER_OF_ATTORNEY:
            receivers = self._receivers(provision.get("actor"), person)
            if person is not None:
                self._age(person, GIVER_MIN_AGE, "Consent.patient.identifier.value", "by")
        if person is None:
            return None
        return PrivacyChoice(
            kind, person, status == "active", services, entries, personnel, receivers, start, end
        )

    # common elements

    def _scope(self, scope: object) -> None:
        if not any(
            coding.get("system") == SCOPE_SYSTEM and coding.get("code") == PATIENT_PRIVACY
            for coding in _codings(scope)
        ):
            self.error(
                "Consent.scope", f"a privacy choice has scope {SCOPE_SYSTEM}#{PATIENT_PRIVACY}"
            )

    def _kind(self, categories: object) -> Kind | None:
        kinds: set[Kind] = set()
        seen = False
        for i, category in enumerate(_list(categories)):
            for j, coding in enumerate(_codings(category)):
                if coding.get("system") != CHOICE_SYSTEM:
                    continue
                seen = True
                code = coding.get("code")
                try:
                    kinds.add(Kind(code))
                except ValueError:
                    self.error(
                        f"Consent.category[{i}].coding[{j}].code",
                        f"{str(code)[:40]!r} is not a kind of privacy choice ({_KINDS})",
                        "code-invalid",
                    )
        if not seen:
            self.error(
                "Consent.category",
                f"a privacy choice needs a category coding of {CHOICE_SYSTEM} ({_KINDS})",
                "required",
            )
        if len(kinds) > 1:
            self.error("Consent.category", "a Consent records one kind of privacy choice")
        return kinds.pop() if len(kinds) == 1 else None

    def _patient(self, patient: object) -> str | None:
        if not isinstance(patient, dict):
            self.error("Consent.patient", "a privacy choice names its person", "required")
            return None
        return self._person(patient.get("identifier"), "Consent.patient.identifier")

    def _person(self, identifier: object, path: str) -> str | None:
        """A fødselsnummer or D-number given as an Identifier at ``path``."""
        if not isinstance(identifier, dict):
            self.error(
                path, "the person is named by fødselsnummer or D-number (an identifier)", "required"
            )
            return None
        system, value = identifier.get("system"), identifier.get("value")
        if system not in PERSON_SYSTEMS:
            self.error(
                f"{path}.system",
                f"the person is named by fødselsnummer ({PERSON_SYSTEMS[0]}) or D-number "
                f"({PERSON_SYSTEMS[1]}), not {str(system)[:60]!r}",
            )
            return None
        assert isinstance(system, str)
        problem = identifier_error(system, value, allow_synthetic=self.allow_synthetic)
        if problem is not None:
            self.error(f"{path}.value", problem)
            return None
        assert isinstance(value, str)
        return value

    def _period(self, period: object) -> tuple[date | None, date | None]:
        if not isinstance(period, dict):
            return None, None
        start = _day(period.get("start"), first=True)
        end = _day(period.get("end"), first=False)
        if start is not None and end is not None and end < start:
            self.error("Consent.provision.period", "the period ends before it starts")
        return start, end

    # the provision, per kind

    def _shape(self, kind: Kind, provision: dict[str, Any]) -> None:
        wanted = PROVISION_TYPE[kind]
        if provision.get("type") != wanted:
            self.error("Consent.provision.type", f"a {kind.value} has provision.type {wanted!r}")
        needed, allowed = _ELEMENTS[kind]
        if not provision.get(needed):
            self.error(
                f"Consent.provision.{needed}",
                f"a {kind.value} needs provision.{needed}",
                "required",
            )
        for name in (*_KIND_ELEMENTS, *_NARROWING):
            if provision.get(name) and name not in allowed:
                self.error(
                    f"Consent.provision.{name}",
                    f"a {kind.value} has no provision.{name} in this profile",
                    "not-supported",
                )

    def _services(self, classes: object) -> frozenset[str]:
        services = set()
        for i, coding in enumerate(_list(classes)):
            path = f"Consent.provision.class[{i}]"
            if not isinstance(coding, dict) or coding.get("system") != SERVICE_SYSTEM:
                self.error(f"{path}.system", f"a service is a code of {SERVICE_SYSTEM}")
                continue
            code = coding.get("code")
            if code not in SERVICES:
                self.error(
                    f"{path}.code",
                    f"{str(code)[:40]!r} is not a service ({_SERVICE_CODES})",
                    "code-invalid",
                )
                continue
            services.add(code)
        return frozenset(services)

    def _entries(self, data: object) -> frozenset[str]:
        entries = set()
        for i, item in enumerate(_list(data)):
            path = f"Consent.provision.data[{i}]"
            item = _dict(item)
            if item.get("meaning") != INSTANCE:
                self.error(f"{path}.meaning", f"a hidden entry has meaning {INSTANCE!r}")
            reference = _dict(item.get("reference")).get("reference")
            if not _is_local_reference(reference):
                self.error(
                    f"{path}.reference.reference",
                    "a hidden entry is a reference Type/id to a resource on this server",
                    "required" if reference is None else "value",
                )
                continue
            entries.add(reference)
        return frozenset(entries)

    def _personnel(self, actors: object) -> frozenset[str]:
        numbers = set()
        for i, actor in enumerate(_list(actors)):
            path = f"Consent.provision.actor[{i}]"
            actor = _dict(actor)
            if not _codings(actor.get("role")):
                self.error(
                    f"{path}.role",
                    "a blocked health worker has a role (e.g. v3-ParticipationType#PRCP)",
                    "required",
                )
            identifier = _dict(actor.get("reference")).get("identifier")
            path = f"{path}.reference.identifier"
            if not isinstance(identifier, dict):
                self.error(path, "a blocked health worker is named by HPR number", "required")
                continue
            if identifier.get("system") != HPR_SYSTEM:
                self.error(
                    f"{path}.system",
                    f"a blocked health worker is named by HPR number ({HPR_SYSTEM})",
                )
                continue
            value = identifier.get("value")
            problem = identifier_error(HPR_SYSTEM, value)
            if problem is not None:
                self.error(f"{path}.value", problem)
                continue
            numbers.add(value)
        return frozenset(numbers)

    def _receivers(self, actors: object, giver: str | None) -> tuple[str, ...]:
        receivers: list[str] = []
        for i, actor in enumerate(_list(actors)):
            path = f"Consent.provision.actor[{i}]"
            actor = _dict(actor)
            if not any(
                c.get("system") == ROLE_CODE and c.get("code") == POWER_OF_ATTORNEY_ROLE
                for c in _codings(actor.get("role"))
            ):
                self.error(
                    f"{path}.role",
                    f"the receiver of a power of attorney has role "
                    f"{ROLE_CODE}#{POWER_OF_ATTORNEY_ROLE}",
                )
            identifier = _dict(actor.get("reference")).get("identifier")
            receiver = self._person(identifier, f"{path}.reference.identifier")
            if receiver is None:
                continue
            if receiver == giver:
                self.error(
                    f"{path}.reference.identifier.value",
                    "a person cannot give a power of attorney to themself",
                )
                continue
            self._age(receiver, RECEIVER_MIN_AGE, f"{path}.reference.identifier.value", "to")
            if receiver not in receivers:
                receivers.append(receiver)
        return tuple(receivers)

    def _age(self, pid: str, minimum: int, path: str, by_or_to: str) -> None:
        """A power of attorney is given by a person of at least 16, to one of at least 18
        on the day it is written (checked when a write is, as of the number's birth date)."""
        if self.written_on is None:
            return
        age = age_on(pid, self.written_on)
        if age is None:
            self.error(path, f"the age of {pid} cannot be told from the number", "business-rule")
        elif age < minimum:
            self.error(
                path,
                f"a power of attorney is given {by_or_to} a person of at least {minimum}, "
                f"and {pid} is {age}",
                "business-rule",
            )


def _dict(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _list(value: object) -> list[Any]:
    return value if isinstance(value, list) else []


def _codings(concept: object) -> list[dict[str, Any]]:
    """The codings of a CodeableConcept (or of a list of them)."""
    concepts = concept if isinstance(concept, list) else [concept]
    return [
        coding
        for c in concepts
        if isinstance(c, dict)
        for coding in _list(c.get("coding"))
        if isinstance(coding, dict)
    ]


def _is_local_reference(reference: object) -> bool:
    if not isinstance(reference, str):
        return False
    type_name, _, id = reference.partition("/")
    return is_resource_type(type_name) and is_valid_id(id)


def _day(text: object, *, first: bool) -> date | None:
    """The day a FHIR date or dateTime begins (``first``) or ends in: a year or a month is
    its first or its last day."""
    if not isinstance(text, str) or len(text) < 4:
        return None
    try:
        year = int(text[:4])
        if len(text) < 7:
            return date(year, 1, 1) if first else date(year, 12, 31)
        month = int(text[5:7])
        if len(text) < 10:
            last = calendar.monthrange(year, month)[1]
            return date(year, month, 1 if first else last)
        return date(year, month, int(text[8:10]))
    except ValueError:
        return None
