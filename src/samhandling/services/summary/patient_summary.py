"""The patient summary: ``Patient/$summary``, an International Patient Summary (IPS) of the
patient's kjernejournal, made from live data and signed with the platform key.

``Patient/<id>/$summary`` or ``Patient/$summary?identifier=<fødselsnummer or D-number>``
(GET, or POST with a Parameters body) answers with a FHIR document: a Bundle of type
``document`` whose first entry is a Composition (LOINC 60591-5 Patient summary Document)
with one section per kind of information, then the Patient, the platform as author (a
Device) and every entry the sections list. The entries are read with the engine's searches
as the caller may see them (`run_search`), so Kjernejournal's scopes and the health-data
rules apply (reservations and blocked personnel refuse, hidden entries are left out) and
every resource shown is in the audit trail. Retracted (entered-in-error) entries are left
out; of the critical-information types only critical information (a Kjernejournal category)
is listed, as the health indicator counts it.

The Bundle is signed (``Bundle.signature``): a detached compact JWS with the platform key
over `signed_bytes` of the Bundle; docs/services/kjernejournal.md says how to verify it.
"""

from __future__ import annotations

import base64
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from html import escape
from typing import Any

from samhandling.platform.fhir.access import READ, Touched
from samhandling.platform.fhir.content import dumps, loads
from samhandling.platform.fhir.datetimes import format_instant
from samhandling.platform.fhir.engine import FhirEngine
from samhandling.platform.fhir.errors import FhirError, not_found
from samhandling.platform.fhir.operations import OperationCall
from samhandling.platform.fhir.rest.search import visible_search
from samhandling.platform.fhir.storage import ResourceVersion
from samhandling.platform.identifiers import DNR_SYSTEM, FNR_SYSTEM, identifier_error
from samhandling.platform.policy.registers import NoRegisters, PersonRegister
from samhandling.platform.service import Runtime
from samhandling.platform.signing import Signer, canonical_json
from samhandling.services.summary.critical import (
    LAYOUTS,
    categories,
    codings,
    recorded_at,
    verified,
)
from samhandling.services.summary.lookup import patient_operation, person_number
from samhandling.services.summary.model import CATEGORIES, CATEGORY, ENTERED_IN_ERROR

LOINC = "http://loinc.org"
EMPTY_REASON = "http://terminology.hl7.org/CodeSystem/list-empty-reason"
SIGNATURE_TYPE = "urn:iso-astm:E1762-95:2013"
AUTHORS_SIGNATURE = "1.2.840.10065.1.12.1.1"  # the platform is the document's author
FHIR_JSON = "application/fhir+json"
SECTION_LIMIT = 100  # entries per section (the newest first)
XHTML = "http://www.w3.org/1999/xhtml"


@dataclass(frozen=True, slots=True)
class Section:
    """One section of the summary: its IPS code, its title, and what fills it."""

    code: str  # LOINC
    display: str
    title: str  # Norwegian (bokmål)
    type: str | None  # the resource type listed (None: no source yet)
    criteria: tuple[tuple[str, str], ...] = ()
    empty: str = "Ingen opplysninger registrert i kjernejournalen."


def _critical(retraction: str) -> tuple[tuple[str, str], ...]:
    """Critical information only (a Kjernejournal category), retracted entries left out."""
    return (("kj-category", f"{CATEGORY}|"), (f"{retraction}:not", ENTERED_IN_ERROR))


SECTIONS: tuple[Section, ...] = (
    Section("48765-2", "Allergies and adverse reactions Document",
            "Allergier og legemiddelreaksjoner", "AllergyIntolerance",
            _critical("verification-status")),
    Section("11450-4", "Problem list - Reported", "Kritiske tilstander og problemer",
            "Condition", _critical("verification-status")),
    Section("10160-0", "History of Medication use Narrative", "Legemidler", None),
    Section("46264-8", "History of medical device use", "Implantater", "DeviceUseStatement",
            _critical("status")),
    Section("47519-4", "History of Procedures Document", "Pågående behandling", "Procedure",
            _critical("status")),
    Section("104605-1", "Alert", "Varsler og andre prosedyreendringer", "Flag",
            _critical("status")),
    # IPS has no section for shared documents: 11503-0 (Medical records) names them as such
    Section("11503-0", "Medical records", "Delte journaldokumenter", "DocumentReference",
            (("status", "current"),), "Ingen delte dokumenter."),
)  # fmt: skip
MEDICATION_NOTE = (
    "Legemiddelopplysninger er ikke tilgjengelige i pasientsammendraget ennå: "
    "Pasientens legemiddelliste (PLL) er ikke koblet til. Sjekk pasientens legemidler "
    "i e-resept eller i pasientens journal."
)


def install_patient_summary(runtime: Runtime) -> None:
    """Offer ``Patient/$summary`` on ``runtime.engine``."""
    persons = runtime.services.get("register_lookups", NoRegisters())
    summary = PatientSummary(
        runtime.engine,
        persons,
        lambda: runtime.services.get("signer"),  # the trust service starts after this one
        runtime.settings.issuer,
    )
    runtime.engine.add_operation(
        patient_operation(
            "summary",
            summary,
            "The patient's International Patient Summary from Kjernejournal: a signed FHIR "
            "document (Bundle) made from live data.",
            definition="http://hl7.org/fhir/uv/ips/OperationDefinition/summary",
        )
    )


class PatientSummary:
    """Answers ``$summary``."""

    def __init__(
        self,
        engine: FhirEngine,
        persons: PersonRegister,
        signer: Callable[[], Signer | None],
        issuer: str,
    ) -> None:
        self._engine = engine
        self._persons = persons
        self._signer = signer
        self._author = platform_device(issuer)

    async def __call__(self, call: OperationCall) -> dict[str, Any]:
        patient_id = await self._patient_id(call)
        stored = await self._engine.store.read("Patient", patient_id)
        if stored is None or stored.content is None:
            raise not_found("Patient", patient_id)
        signer = self._signer()
        if signer is None:
            raise FhirError.of(
                503, "transient", "the patient summary cannot be signed now (no platform key)"
            )
        listed = [await self._listed(call, section, patient_id) for section in SECTIONS]
        patient = await self._patient(call, stored)
        bundle = document(call.base, patient, self._author, listed, datetime.now(UTC))
        jws = await signer.sign(signed_bytes(bundle), FHIR_JSON)
        bundle["signature"] = signature(bundle["timestamp"], self._author[0], jws)
        return bundle

    async def _patient_id(self, call: OperationCall) -> str:
        """The Patient the summary is of: the instance, or the person number's Patient."""
        if call.id is not None:
            return call.id
        pid = person_number(call.parameters.get("identifier"))
        if pid is None:
            raise FhirError.of(
                400, "invalid", "identifier is not a valid fødselsnummer or D-number", "identifier"
            )
        facts = await self._persons.facts(pid)
        if facts is None or facts.patient_id is None:
            raise FhirError.of(
                404, "not-found", "nobody in the person register has this number", "identifier"
            )
        return facts.patient_id

    async def _listed(self, call: OperationCall, section: Section, patient_id: str) -> Listed:
        """The section's entries as the caller may see them (one search)."""
        if section.type is None:
            return Listed(section, [], False)
        items = [
            ("patient", f"Patient/{patient_id}"),
            *section.criteria,
            ("_sort", "-_lastUpdated"),
            ("_count", str(SECTION_LIMIT)),
        ]
        request = self._engine.parse_search((section.type,), items, strict=True)
        page = await visible_search(self._engine, request, base=call.base, context=call.context)
        call.headers.update(page.headers)  # e.g. how many blocked documents were withheld
        resources = []
        for row in page.matches:
            call.touched.append(Touched(row.type, row.id, row.version, row.content))
            resource = loads(row.content)
            assert isinstance(resource, dict)
            resources.append(resource)
        return Listed(section, resources, page.next_cursor is not None)

    async def _patient(self, call: OperationCall, stored: ResourceVersion) -> dict[str, Any]:
        """The Patient as the caller may see it (address protection applies); its id and
        person number only when the caller may not read the person register."""
        assert stored.content is not None
        patient_id = stored.id
        access = self._engine.access
        try:
            await access.authorize(call.context, READ, "Patient")
            content = await access.present(call.context, "Patient", stored.content)
        except FhirError:
            content = None
        if content is None:
            content = dumps(await self._minimal_patient(patient_id))
        call.touched.append(Touched("Patient", patient_id, stored.version, content))
        patient = loads(content)
        assert isinstance(patient, dict)
        return patient

    async def _minimal_patient(self, patient_id: str) -> dict[str, Any]:
        patient: dict[str, Any] = {"resourceType": "Patient", "id": patient_id}
        pid = await self._persons.pid_of(patient_id)
        if pid is not None:
            system = FNR_SYSTEM if not identifier_error(FNR_SYSTEM, pid) else DNR_SYSTEM
            patient["identifier"] = [{"system": system, "value": pid}]
        return patient


@dataclass(frozen=True, slots=True)
class Listed:
    """What one section lists: its resources, and whether there were more."""

    section: Section
    resources: list[dict[str, Any]]
    truncated: bool


def platform_device(issuer: str) -> tuple[str, dict[str, Any]]:
    """The platform as the summary's author: (fullUrl, Device), the same for every summary."""
    full_url = f"urn:uuid:{uuid.uuid5(uuid.NAMESPACE_URL, issuer)}"
    device = {
        "resourceType": "Device",
        "identifier": [{"system": "urn:ietf:rfc:3986", "value": issuer}],
        "deviceName": [{"name": "samhandling (kjernejournal)", "type": "user-friendly-name"}],
        "type": {"text": "Nasjonal e-helseplattform"},
    }
    return full_url, device


def document(
    base: str,
    patient: dict[str, Any],
    author: tuple[str, dict[str, Any]],
    listed: list[Listed],
    now: datetime,
) -> dict[str, Any]:
    """The summary Bundle (unsigned): Composition, Patient, author, then the entries."""
    when = format_instant(now)
    patient_url = f"{base}/Patient/{patient['id']}"
    composition = {
        "resourceType": "Composition",
        "language": "nb",
        "status": "final",
        "type": {"coding": [{"system": LOINC, "code": "60591-5",
                             "display": "Patient summary Document"}]},
        "subject": {"reference": patient_url},
        "date": when,
        "author": [{"reference": author[0]}],
        "title": "Pasientsammendrag",
        "confidentiality": "N",
        "section": [section(base, item) for item in listed],
    }  # fmt: skip
    entries = [
        {"fullUrl": f"urn:uuid:{uuid.uuid4()}", "resource": composition},
        {"fullUrl": patient_url, "resource": patient},
        {"fullUrl": author[0], "resource": author[1]},
    ]
    for item in listed:
        entries.extend(
            {"fullUrl": f"{base}/{r['resourceType']}/{r['id']}", "resource": r}
            for r in item.resources
        )
    return {
        "resourceType": "Bundle",
        "identifier": {"system": "urn:ietf:rfc:3986", "value": f"urn:uuid:{uuid.uuid4()}"},
        "type": "document",
        "timestamp": when,
        "entry": entries,
    }


def section(base: str, listed: Listed) -> dict[str, Any]:
    """A Composition section: code, Norwegian title, narrative, and its entries."""
    spec = listed.section
    out: dict[str, Any] = {
        "title": spec.title,
        "code": {"coding": [{"system": LOINC, "code": spec.code, "display": spec.display}]},
        "text": {"status": "generated", "div": narrative(listed)},
    }
    if spec.type is None:
        out["emptyReason"] = _empty_reason("unavailable", "Unavailable")
    elif listed.resources:
        out["entry"] = [
            {"reference": f"{base}/{r['resourceType']}/{r['id']}"} for r in listed.resources
        ]
    return out


def _empty_reason(code: str, display: str) -> dict[str, Any]:
    return {"coding": [{"system": EMPTY_REASON, "code": code, "display": display}]}


def signed_bytes(bundle: dict[str, Any]) -> bytes:
    """What the signature covers: the Bundle without ``signature``, as canonical JSON."""
    return canonical_json({k: v for k, v in bundle.items() if k != "signature"})


def signature(when: str, author_url: str, jws: str) -> dict[str, Any]:
    """``Bundle.signature``: the platform's author signature, the JWS base64-encoded."""
    return {
        "type": [{"system": SIGNATURE_TYPE, "code": AUTHORS_SIGNATURE,
                  "display": "Author's Signature"}],
        "when": when,
        "who": {"reference": author_url},
        "targetFormat": FHIR_JSON,
        "sigFormat": "application/jose",
        "data": base64.b64encode(jws.encode("ascii")).decode("ascii"),
    }  # fmt: skip


# ----------------------------------------------------------------------------- narrative


def narrative(listed: Listed) -> str:
    """The section's XHTML: one line per entry, in Norwegian."""
    spec = listed.section
    if spec.type is None:
        body = f"<p>{escape(MEDICATION_NOTE)}</p>"
    elif not listed.resources:
        body = f"<p>{escape(spec.empty)}</p>"
    else:
        items = "".join(f"<li>{describe(spec.type, r)}</li>" for r in listed.resources)
        body = f"<ul>{items}</ul>"
        if listed.truncated:
            body += f"<p>Viser de {SECTION_LIMIT} sist endrede oppføringene; det finnes flere.</p>"
    return f'<div xmlns="{XHTML}">{body}</div>'


CRITICALITY = {"high": "høy kritikalitet", "low": "lav kritikalitet",
               "unable-to-assess": "kritikalitet ikke vurdert"}  # fmt: skip
VERIFICATION = {"confirmed": "bekreftet", "unconfirmed": "ikke bekreftet",
                "provisional": "foreløpig", "differential": "differensialdiagnose",
                "refuted": "avkreftet"}  # fmt: skip
STATUS = {
    "Procedure": {"preparation": "planlagt", "in-progress": "pågår", "not-done": "ikke utført",
                  "on-hold": "satt på vent", "stopped": "avbrutt", "completed": "avsluttet",
                  "unknown": "ukjent status"},
    "DeviceUseStatement": {"active": "i bruk", "completed": "avsluttet", "intended": "planlagt",
                           "stopped": "avbrutt", "on-hold": "satt på vent"},
    "Flag": {"active": "aktiv", "inactive": "inaktiv"},
}  # fmt: skip


def describe(type_name: str, resource: dict[str, Any]) -> str:
    """One entry as an XHTML fragment: what it is (bold), then what else is known."""
    if type_name == "DocumentReference":
        return _describe_document(resource)
    layout = LAYOUTS[type_name]
    what = (
        _concept_text(resource.get(layout.code)) if layout.code else _device_text(resource)
    ) or "Uten beskrivelse"
    facts = [CATEGORIES[c] for c in categories(type_name, resource) if c in CATEGORIES]
    if type_name == "AllergyIntolerance":
        facts.append(CRITICALITY.get(str(resource.get("criticality")), ""))
    status = STATUS.get(type_name, {}).get(str(resource.get("status")))
    facts.append(status or "")
    facts.append(_verification(type_name, resource))
    recorded = recorded_at(type_name, resource)
    if isinstance(recorded, str) and recorded:
        facts.append(f"registrert {recorded[:10]}")
    return _line(what, facts)


def _describe_document(resource: dict[str, Any]) -> str:
    contents = resource.get("content")
    attachment = contents[0].get("attachment", {}) if isinstance(contents, list) else {}
    title = attachment.get("title") if isinstance(attachment, dict) else None
    what = title if isinstance(title, str) and title else _concept_text(resource.get("type"))
    date = resource.get("date")
    facts = [f"datert {date[:10]}" if isinstance(date, str) else ""]
    return _line(what or "Dokument", facts)


def _verification(type_name: str, resource: dict[str, Any]) -> str:
    if LAYOUTS[type_name].verification is not None:
        codes = [c.get("code") for c in codings(resource.get("verificationStatus"))]
        return next((VERIFICATION[c] for c in codes if c in VERIFICATION), "")
    is_verified = verified(type_name, resource)
    return "" if is_verified is None else ("verifisert" if is_verified else "ikke verifisert")


def _line(what: str, facts: list[str]) -> str:
    rest = "; ".join(f for f in facts if f)
    return f"<b>{escape(what)}</b>" + (f": {escape(rest)}" if rest else "")


def _concept_text(concept: Any) -> str | None:
    """A CodeableConcept's text, else its first coding's display or code."""
    if not isinstance(concept, dict):
        return None
    text = concept.get("text")
    found = codings(concept)
    code = next((c.get("code") for c in found if isinstance(c.get("code"), str)), None)
    if isinstance(text, str) and text:
        return f"{text} ({code})" if code else text
    display = next((c.get("display") for c in found if isinstance(c.get("display"), str)), None)
    return display or code


def _device_text(resource: dict[str, Any]) -> str | None:
    device = resource.get("device")
    if not isinstance(device, dict):
        return None
    display = device.get("display")
    return display if isinstance(display, str) and display else None
