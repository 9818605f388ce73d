"""The health-data rules: who may see or change a person's health information, and what
stays hidden from them (docs/services/access-and-audit.md has them as a table).

`caller_denial` judges the caller alone (before any resource is touched); `decide` judges
the caller and one person's information in one service. Both answer from the registers'
and the privacy register's in-process caches.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from enum import StrEnum

from samhandling.platform.auth.context import AccessBasis, AccessContext, Principal
from samhandling.platform.fhir.errors import FhirError, Issue
from samhandling.platform.policy.choices import PrivacyRegister
from samhandling.platform.policy.registers import PersonnelRegister, PersonRegister

REQUIRED_SECURITY_LEVEL = 4
CHILD_AGE = 12  # under 12: parents with parental responsibility act for the child
YOUTH_AGE = 16  # 12 to 15: parents see only `YOUTH_PARENT_TYPES`; from 16 nobody without a mandate
# what parents with parental responsibility see of a child aged 12 to 15 (decision 0012):
# the person's register entries, GP, appointments and vaccinations; nothing of the journal,
# the critical information, the medication list or test results
YOUTH_PARENT_TYPES = frozenset(
    {"Patient", "RelatedPerson", "EpisodeOfCare", "Appointment", "Immunization"}
)


class Reason(StrEnum):
    """Why a request was refused (in the OperationOutcome's details and the audit trail)."""

    SECURITY_LEVEL = "security-level"
    NOT_AUTHORISED = "hpr-not-authorised"
    BASIS_MISSING = "access-basis-missing"
    REASON_MISSING = "access-reason-missing"
    PATIENT_REQUIRED = "patient-required"
    RESERVED = "reserved"
    PERSONNEL_BLOCKED = "personnel-blocked"
    NOT_OWN = "not-own-information"
    NO_REPRESENTATION = "no-representation"
    REPRESENTATION_PROTECTED = "representation-protected"
    RESTRICTED = "restricted-for-representative"


REASON_SYSTEM = "http://samhandling.no/fhir/CodeSystem/access-denial-reason"


class Denied(FhirError):
    """A refusal by the access policy (403), with its reason code."""

    def __init__(self, reason: Reason, message: str, status: int = 403) -> None:
        code = "forbidden" if status == 403 else "required"
        super().__init__(status, [Issue("error", code, message, (), (REASON_SYSTEM, reason))])
        self.reason = reason
        self.persons: tuple[str, ...] = ()  # the persons whose information was refused


class Refused(FhirError):
    """A service's write rule refused a write of health information: its error, with the
    persons the write concerned (so the refusal is in their access log too)."""

    def __init__(self, error: FhirError, persons: tuple[str, ...]) -> None:
        super().__init__(error.status, error.issues, error.headers)
        self.persons = persons


@dataclass(frozen=True, slots=True)
class Decision:
    """What a caller may do with one person's information in one service."""

    hidden: frozenset[str] = frozenset()  # "Type/id" of entries the caller must not see
    types: frozenset[str] | None = None  # the only resource types they may see (None: all)
    writes: bool = True  # whether they may write it
    own: bool = False  # the caller is the person (a citizen)


OWN = Decision(own=True)
ALLOWED = Decision()


def caller_denial(context: AccessContext) -> Denied | None:
    """What is wrong with the caller for health information, before any lookup: health
    personnel need security level 4, an access basis, and a reason in an emergency."""
    if context.principal is not Principal.PERSONNEL:
        return None
    if (context.security_level or 0) < REQUIRED_SECURITY_LEVEL:
        return Denied(
            Reason.SECURITY_LEVEL,
            f"health information needs a sign-in at security level {REQUIRED_SECURITY_LEVEL}",
        )
    if context.access_basis is None:
        return Denied(
            Reason.BASIS_MISSING,
            "health personnel must state the access basis (nhn-access-basis: "
            "SAMTYKKE, AKUTT or UNNTAK)",
            400,
        )
    if context.access_basis is AccessBasis.EMERGENCY and not context.access_reason:
        return Denied(
            Reason.REASON_MISSING, "an emergency access (AKUTT) needs nhn-access-reason", 400
        )
    return None


class Rules:
    """The health-data rules over the registers and the privacy register."""

    def __init__(
        self,
        persons: PersonRegister,
        personnel: PersonnelRegister,
        privacy: PrivacyRegister,
        today: type[date] = date,
    ) -> None:
        self.persons = persons
        self.personnel = personnel
        self.privacy = privacy
        self._today = today

    async def check_personnel(self, context: AccessContext) -> None:
        """Health personnel must hold an approval in force in HPR now (not suspended)."""
        if context.principal is not Principal.PERSONNEL:
            return
        hpr = context.hpr_number
        if not hpr or not await self.personnel.professions_in_force(hpr):
            raise Denied(
                Reason.NOT_AUTHORISED,
                "the health worker has no authorisation in force in HPR",
            )

    async def decide(self, context: AccessContext, service: str, pid: str | None) -> Decision:
        """What ``context`` may do with the information of person ``pid`` in ``service``
        (None: a patient with no person number); `Denied` when nothing."""
        if context.principal is Principal.CITIZEN:
            return await self._citizen(context, service, pid)
        if pid is None:
            return ALLOWED
        choices = await self.privacy.choices(pid)
        if choices.reserves(service):
            raise Denied(Reason.RESERVED, f"the patient has reserved against {service}")
        if context.principal is Principal.PERSONNEL and choices.blocks(context.hpr_number, service):
            raise Denied(
                Reason.PERSONNEL_BLOCKED,
                f"the patient has blocked this health worker from {service}",
            )
        return Decision(hidden=choices.hidden) if choices.hidden else ALLOWED

    async def _citizen(self, context: AccessContext, service: str, pid: str | None) -> Decision:
        own = context.person_id
        if pid is not None and pid == own and context.acting_for in (None, own):
            return OWN
        if pid is None or pid != context.acting_for:
            raise Denied(Reason.NOT_OWN, "citizens see their own information only")
        return await self.representation(context, service)

    async def representation(self, context: AccessContext, service: str) -> Decision:
        """What a citizen may do for the person they act for (``acting_for``): a child
        under 12 with parental responsibility: everything; 12 to 15: `YOUTH_PARENT_TYPES`,
        read only; otherwise only with a power of attorney in force for ``service``."""
        own, other = context.person_id, context.acting_for
        if other is None or other == own:
            return OWN
        if own is None:
            raise Denied(Reason.NO_REPRESENTATION, "the citizen is not identified")
        represented = await self.persons.facts(other)
        representative = await self.persons.facts(own)
        if represented is None or representative is None:
            raise Denied(Reason.NO_REPRESENTATION, "no representation of this person")
        if represented.protected or representative.protected:
            raise Denied(
                Reason.REPRESENTATION_PROTECTED,
                "persons with a protected address cannot represent or be represented",
            )
        today = self._today.today()
        age = represented.age(today)
        choices = await self.privacy.choices(other)
        hidden = choices.hidden
        if age is not None and age < YOUTH_AGE and own in represented.parents:
            if age < CHILD_AGE:
                return Decision(hidden=hidden)
            return Decision(hidden=hidden, types=YOUTH_PARENT_TYPES, writes=False)
        if age is not None and age >= YOUTH_AGE:
            for mandate in await self.privacy.mandates(other, own):
                if mandate.covers(service, today):
                    return Decision(hidden=hidden)
        raise Denied(Reason.NO_REPRESENTATION, f"no representation of this person in {service}")


def first(items: Iterable[str]) -> str | None:
    """The one item of a collection of one (None for none; for several: the first)."""
    for item in items:
        return item
    return None
