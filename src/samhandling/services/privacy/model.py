"""The privacy service's FHIR model: the Consent profile's URLs and codes.

Every Consent on the platform is one privacy choice of one person (docs/services/privacy.md):
its kind is the ``category`` coding in `CHOICE_SYSTEM`, the person is ``patient`` (by
fødselsnummer or D-number), and ``provision`` says what the choice covers.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Final

from samhandling.platform.identifiers import DNR_SYSTEM, FNR_SYSTEM

OWN: Final = "http://samhandling.no/fhir"  # the canonical base of samhandling's definitions
PROFILE: Final = f"{OWN}/StructureDefinition/privacy-consent"
CHOICE_SYSTEM: Final = f"{OWN}/CodeSystem/privacy-choice"
SERVICE_SYSTEM: Final = f"{OWN}/CodeSystem/service"

# The services a choice can name (provision.class codes): the names the services' access
# policies go by. "*" (every service) is not a code: a choice without services covers all.
SERVICES: Final = frozenset(
    {"kjernejournal", "e-resept", "results", "homecare", "messaging", "fhir"}
)

SCOPE_SYSTEM: Final = "http://terminology.hl7.org/CodeSystem/consentscope"
PATIENT_PRIVACY: Final = "patient-privacy"
PARTICIPATION_TYPE: Final = "http://terminology.hl7.org/CodeSystem/v3-ParticipationType"
PRIMARY_PERFORMER: Final = "PRCP"  # the role of a blocked health worker (recommended)
ROLE_CODE: Final = "http://terminology.hl7.org/CodeSystem/v3-RoleCode"
POWER_OF_ATTORNEY_ROLE: Final = "POWATT"  # the receiver of a power of attorney

PERSON_SYSTEMS: Final = (FNR_SYSTEM, DNR_SYSTEM)  # how the patient and receivers are named

GIVER_MIN_AGE: Final = 16  # "helserettslig myndig"
RECEIVER_MIN_AGE: Final = 18


class Kind(StrEnum):
    """The four kinds of privacy choice (codes of `CHOICE_SYSTEM`)."""

    RESERVATION = "reservation"  # reservasjon: against named services
    BLOCKED_ENTRIES = "blocked-entries"  # sperring: entries hidden from health personnel
    BLOCKED_PERSONNEL = "blocked-personnel"  # blokkering av navngitt helsepersonell
    POWER_OF_ATTORNEY = "power-of-attorney"  # fullmakt


DENY: Final = "deny"
PERMIT: Final = "permit"
# the provision.type each kind must have
PROVISION_TYPE: Final = {
    Kind.RESERVATION: DENY,
    Kind.BLOCKED_ENTRIES: DENY,
    Kind.BLOCKED_PERSONNEL: DENY,
    Kind.POWER_OF_ATTORNEY: PERMIT,
}
INSTANCE: Final = "instance"  # provision.data.meaning of a hidden entry
