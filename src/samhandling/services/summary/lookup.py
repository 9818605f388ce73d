"""What Kjernejournal's operations on Patient share: how they are offered (under
Kjernejournal's access rules), what they look things up in, and how they find the patient
they are asked about (by the Patient's id, or ``identifier=<fødselsnummer or D-number>``)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from samhandling.platform.fhir.access import Touched
from samhandling.platform.fhir.engine import FhirEngine
from samhandling.platform.fhir.errors import FhirError
from samhandling.platform.fhir.operations import INSTANCE, TYPE, Operation, OperationCall
from samhandling.platform.identifiers import DNR_SYSTEM, FNR_SYSTEM, identifier_error
from samhandling.platform.policy.choices import PrivacyRegister
from samhandling.platform.policy.registers import PersonRegister

GOVERNING_TYPE = "Flag"  # any type Kjernejournal owns: its scopes and health-data rules


def patient_operation(
    name: str,
    handler: Callable[[OperationCall], Awaitable[dict]],
    documentation: str,
    definition: str | None = None,
) -> Operation:
    """``Patient/$name`` and ``Patient/<id>/$name``, read-only, under Kjernejournal's rules
    (and audited as Kjernejournal's)."""
    return Operation(
        name=name,
        handler=handler,
        types=("Patient",),
        levels=frozenset({TYPE, INSTANCE}),
        access_type=GOVERNING_TYPE,
        definition=definition,
        documentation=documentation,
    )


@dataclass(frozen=True)
class RecordLookup:
    """What an operation on a patient's kjernejournal looks things up in."""

    engine: FhirEngine
    persons: PersonRegister
    privacy: PrivacyRegister

    async def patient_of(self, call: OperationCall) -> tuple[str, str] | None:
        """(person number, Patient id) of the patient ``call`` names; None when the number is
        not a valid one or nobody in the person register has it. The Patient is added to
        ``call.touched`` (the caller learnt who it is)."""
        if call.id is not None:  # the Patient's number, from the register's cached index
            pid, patient_id = await self.persons.pid_of(call.id), call.id
        else:
            pid, patient_id = person_number(call.parameters.get("identifier")), None
            facts = await self.persons.facts(pid) if pid is not None else None
            patient_id = facts.patient_id if facts is not None else None
        if pid is None or patient_id is None:
            return None
        current = await self.engine.store.read("Patient", patient_id)
        if current is None or current.content is None:
            return None
        call.touched.append(Touched("Patient", current.id, current.version, current.content))
        return pid, patient_id


def person_number(given: object) -> str | None:
    """The fødselsnummer or D-number of an ``identifier`` parameter (``[system|]value``, or an
    Identifier from a Parameters body); None when it is not a valid one; 400 when it is
    missing or of another system."""
    if isinstance(given, dict):  # valueIdentifier
        system, value = given.get("system"), given.get("value")
        given = f"{system}|{value}" if system is not None else value
    if not isinstance(given, str) or not given:
        raise FhirError.of(
            400, "required", "the patient is named by identifier=<fødselsnummer>", "identifier"
        )
    system, bar, value = given.rpartition("|")
    if bar and system not in (FNR_SYSTEM, DNR_SYSTEM):
        raise FhirError.of(
            400, "invalid", "identifier must be a fødselsnummer or a D-number", "identifier"
        )
    systems = (system,) if system else (FNR_SYSTEM, DNR_SYSTEM)
    if all(identifier_error(s, value) for s in systems):
        return None
    return value
