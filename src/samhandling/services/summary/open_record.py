"""Open the record: ``Patient/$open-record`` gives an EHR what it shows when a health worker
opens a patient's kjernejournal, in one request: the health indicator, the critical
information in force, and the list of shared documents.

``Patient/<id>/$open-record`` or ``Patient/$open-record?identifier=<fødselsnummer>``
answers with a ``collection`` Bundle: first the indicator (a Parameters resource, as
``$helseindikator`` gives it, computed from what the caller sees), then the critical
information (the five types, with a Kjernejournal category, not retracted) and the current
documents (DocumentReference, status current; without content: ITI-68 reads a document's
Binary). It is one search over the six types, run with the caller's rights (reservations,
blocks, hidden entries and confidentiality apply, and every resource returned is audited),
and one count of the blocked documents for health personnel
(``NHN-SecurityLabel-Nors-Count``). A reserved patient's record holds nothing: the
indicator says reserved.
"""

from __future__ import annotations

from typing import Any, Final

import orjson

from samhandling.platform.fhir.access import Touched
from samhandling.platform.fhir.engine import FhirEngine
from samhandling.platform.fhir.operations import Operation, OperationCall
from samhandling.platform.fhir.rest.search import compartment_criterion, visible_search
from samhandling.platform.policy.choices import PrivacyRegister
from samhandling.platform.policy.registers import PersonRegister
from samhandling.services.summary.critical import is_critical_information, is_retracted
from samhandling.services.summary.indicator import (
    AVAILABLE,
    CRITICAL,
    INVALID,
    NO_RECORD,
    indicator_parameters,
)
from samhandling.services.summary.lookup import RecordLookup, patient_operation
from samhandling.services.summary.model import CRITICAL_TYPES, SERVICE_NAME

RECORD_TYPES: Final = (*sorted(CRITICAL_TYPES), "DocumentReference")
MAX_ENTRIES: Final = 500  # a kjernejournal holds a few dozen entries; more is cut and said


def open_record_operation(
    engine: FhirEngine, persons: PersonRegister, privacy: PrivacyRegister
) -> Operation:
    """``$open-record`` on Patient, governed by Kjernejournal's access rules."""
    return patient_operation(
        "open-record",
        OpenRecord(engine, persons, privacy),
        "What an EHR shows when a patient's kjernejournal is opened: the health indicator, "
        "the critical information in force and the current documents.",
    )


class OpenRecord(RecordLookup):
    """Answers ``$open-record``."""

    async def __call__(self, call: OperationCall) -> dict[str, Any]:
        patient = await self.patient_of(call)
        if patient is None:
            return _bundle(indicator_parameters(INVALID), [])
        pid, patient_id = patient
        choices = await self.privacy.choices(pid)
        if choices.reserves(SERVICE_NAME):
            return _bundle(indicator_parameters(NO_RECORD, reserved=True), [])
        request = self.engine.parse_search(
            RECORD_TYPES, [("_count", str(MAX_ENTRIES))], strict=True
        )
        request.criteria.append(
            compartment_criterion(self.engine, "Patient", patient_id, RECORD_TYPES)
        )
        page = await visible_search(self.engine, request, base=call.base, context=call.context)
        call.headers.update(page.headers)
        entries = []
        critical: dict[str, tuple[int, str]] = {}
        documents = False
        for row in page.matches:
            resource = orjson.loads(row.content)
            if not _in_force(resource):
                continue
            entries.append({"fullUrl": f"{call.base}/{row.type}/{row.id}",
                            "resource": orjson.Fragment(row.content)})  # fmt: skip
            call.touched.append(Touched(row.type, row.id, row.version, row.content))
            documents = documents or row.type == "DocumentReference"
            if row.type in CRITICAL_TYPES:
                count, changed = critical.get(row.type, (0, ""))
                critical[row.type] = (count + 1, max(changed, resource["meta"]["lastUpdated"]))
        indicator = indicator_parameters(
            CRITICAL if critical else AVAILABLE,
            reserved=False,
            critical=critical,
            documents=documents,
            blocked=bool(choices.blocked),
        )
        if page.next_cursor is not None:
            indicator["parameter"].append({"name": "truncated", "valueBoolean": True})
        return _bundle(indicator, entries)


def _in_force(resource: dict[str, Any]) -> bool:
    """Critical information not retracted, and current documents."""
    type_name = resource.get("resourceType")
    if type_name == "DocumentReference":
        return resource.get("status") == "current"
    return (
        type_name in CRITICAL_TYPES
        and is_critical_information(type_name, resource)
        and not is_retracted(type_name, resource)
    )


def _bundle(indicator: dict[str, Any], entries: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [
            {"resource": indicator},
            *entries,
        ],
    }
