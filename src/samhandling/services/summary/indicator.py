"""The health indicator (helseindikator): whether a patient has a kjernejournal with
anything in it, cheaply, so an EHR can show an indicator without opening the record.

``Patient/$helseindikator?identifier=<fødselsnummer or D-number>`` (or
``Patient/<id>/$helseindikator``) answers with Kjernejournal's status codes
(norway.md §2.3): 0 the number is not a valid person number, or nobody in the person
register has it; 1 no kjernejournal (the person reserved themself against it); 2 a
kjernejournal with nothing registered; 4 critical information registered. (3, information
the patient registered, comes with the citizen's own entries.) With it: whether documents
are shared, when critical information last changed (by resource type), and whether the
patient has blocked a health worker (Kjernejournal then shares no clinical information with
anyone through its API). One query over the search index, whatever the record holds.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from samhandling.platform.fhir.datetimes import format_instant
from samhandling.platform.fhir.definitions import patient_compartment
from samhandling.platform.fhir.engine import FhirEngine
from samhandling.platform.fhir.operations import Operation, OperationCall
from samhandling.platform.fhir.search.sql import numbered
from samhandling.platform.policy.choices import PrivacyRegister
from samhandling.platform.policy.registers import PersonRegister
from samhandling.services.summary.lookup import RecordLookup, patient_operation
from samhandling.services.summary.model import CATEGORY, CRITICAL_TYPES, SERVICE_NAME
from samhandling.services.summary.search_parameters import CATEGORY_CODE

INVALID, NO_RECORD, AVAILABLE, PATIENT_ENTERED, CRITICAL = 0, 1, 2, 3, 4
STATUS_TEXT = {
    INVALID: "Ugyldig fødselsnummer eller ukjent person",
    NO_RECORD: "Pasienten har ikke kjernejournal",
    AVAILABLE: "Pasienten har kjernejournal",
    PATIENT_ENTERED: "Pasienten har registrert egne opplysninger",
    CRITICAL: "Kritisk informasjon er registrert",
}
DOCUMENT_TYPES = ("DocumentReference",)
# the search parameter that says an entry was retracted (entered-in-error), per type
RETRACTION_STATUS = {
    "AllergyIntolerance": "verification-status",
    "Condition": "verification-status",
    "Procedure": "status",
    "DeviceUseStatement": "status",
    "Flag": "status",
    "DocumentReference": "status",
}
ENTERED_IN_ERROR = "entered-in-error"


def indicator_operation(
    engine: FhirEngine, persons: PersonRegister, privacy: PrivacyRegister
) -> Operation:
    """``$helseindikator`` on Patient, governed by Kjernejournal's access rules."""
    return patient_operation(
        "helseindikator",
        HealthIndicator(engine, persons, privacy),
        "Whether the patient has a kjernejournal, critical information, documents, or has "
        "reserved themself; Kjernejournal's status codes.",
    )


class HealthIndicator(RecordLookup):
    """Answers ``$helseindikator``."""

    async def __call__(self, call: OperationCall) -> dict[str, Any]:
        patient = await self.patient_of(call)
        if patient is None:
            return indicator_parameters(INVALID)
        pid, patient_id = patient
        choices = await self.privacy.choices(pid)
        if choices.reserves(SERVICE_NAME):
            return indicator_parameters(NO_RECORD, reserved=True)
        counts = await self._counts(patient_id)
        critical = {t: v for t, v in counts.items() if t in CRITICAL_TYPES}
        status = CRITICAL if critical else AVAILABLE
        return indicator_parameters(
            status,
            reserved=False,
            critical=critical,
            documents=any(t in counts for t in DOCUMENT_TYPES),
            blocked=bool(choices.blocked),
        )

    async def _counts(self, patient_id: str) -> dict[str, tuple[int, str]]:
        """(how many, last changed) per type of the patient's entries, in one query."""
        registry = self.engine.registry
        types = sorted((*CRITICAL_TYPES, *DOCUMENT_TYPES))
        pids = [
            p.pid
            for t in types
            for code in patient_compartment().get(t, ())
            if (p := registry.get(t, code)) is not None
        ]
        retracted = [
            p.pid
            for t, code in RETRACTION_STATUS.items()
            if (p := registry.get(t, code)) is not None
        ]
        categorised = [  # only entries with a Kjernejournal category are critical information
            p.pid for t in CRITICAL_TYPES if (p := registry.get(t, CATEGORY_CODE)) is not None
        ] or [0]
        sql = (
            "SELECT r.type, COUNT(*), MAX(r.last_updated) FROM resource r"
            f" WHERE r.type IN ({', '.join('?' * len(types))}) AND NOT r.deleted AND r.rid IN"
            " (SELECT a.rid FROM search_reference a"
            f" WHERE a.pid IN ({', '.join('?' * len(pids))})"
            " AND a.target_type = 'Patient' AND a.target_id = ?)"
            " AND r.rid NOT IN (SELECT t.rid FROM search_token t"
            f" WHERE t.pid IN ({', '.join('?' * len(retracted))}) AND t.code = ?)"
            " AND (r.type = ? OR r.rid IN (SELECT c.rid FROM search_token c"
            f" WHERE c.pid IN ({', '.join('?' * len(categorised))}) AND c.system = ?))"
            " GROUP BY r.type"
        )
        store = self.engine.store
        if store.backend == "postgresql":
            sql = numbered(sql)
        arguments = [
            *types,
            *pids,
            patient_id,
            *retracted,
            ENTERED_IN_ERROR,
            "DocumentReference",
            *categorised,
            CATEGORY,
        ]
        rows = await store.fetch(sql, arguments)
        return {row[0]: (int(row[1]), _instant(row[2])) for row in rows}


def _instant(value: object) -> str:
    """A stored ``last_updated`` (SQLite: microseconds since the epoch) as a FHIR instant."""
    if isinstance(value, int):
        return format_instant(datetime.fromtimestamp(value / 1_000_000, UTC))
    assert isinstance(value, datetime)
    return format_instant(value)


def indicator_parameters(
    status: int,
    *,
    reserved: bool | None = None,
    critical: dict[str, tuple[int, str]] | None = None,
    documents: bool | None = None,
    blocked: bool | None = None,
) -> dict[str, Any]:
    """The indicator as a Parameters resource (``critical``: per type, how many entries and
    when they last changed)."""
    parameter: list[dict[str, Any]] = [
        {"name": "status", "valueInteger": status},
        {"name": "statusText", "valueString": STATUS_TEXT[status]},
    ]
    if reserved is not None:
        parameter.append({"name": "reserved", "valueBoolean": reserved})
    if critical is not None:
        parameter.append({"name": "criticalInformation", "valueBoolean": bool(critical)})
        if critical:
            last = max(changed for _, changed in critical.values())
            parameter.append({"name": "criticalInformationChanged", "valueInstant": last})
        for type_name, (count, changed) in sorted(critical.items()):
            parameter.append({"name": "criticalInformationByType", "part": [
                {"name": "type", "valueCode": type_name},
                {"name": "count", "valueInteger": count},
                {"name": "changed", "valueInstant": changed},
            ]})  # fmt: skip
    if documents is not None:
        parameter.append({"name": "documents", "valueBoolean": documents})
    if blocked is not None:
        parameter.append({"name": "blockedPersonnel", "valueBoolean": blocked})
    return {"resourceType": "Parameters", "parameter": parameter}
