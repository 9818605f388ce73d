"""Synthetic Kjernejournal data: critical information and shared documents, for demos and
benchmarks.

For patients (`KjPatient`: a Patient id and the person's fødselsnummer or D-number) and the
health workers who write (`Author`: an HPR number at an organisation number),
:class:`KjernejournalData` makes, deterministically from the seed and each patient's number:

- **critical information** (kritisk informasjon) for a share of the patients: one to three
  entries of Kjernejournal's categories (drug reactions and other allergies, complications
  of anaesthesia, critical conditions, ongoing treatment, implants, infections, other
  changes to procedures), each shaped as the summary service's profile asks
  (services/summary/checks.py): the category, the patient, the contained PractitionerRole
  ``#recorder`` naming the health worker's HPR number and the organisation's number, when it
  was registered, the source of the information and whether it is verified. SNOMED CT
  codings where the concept is certain, Norwegian (bokmål) texts always. Written as PUTs
  with fixed ids (loading twice changes nothing);
- **shared documents** for a share of the patients: one or more IHE MHD ITI-65 Provide
  Document Bundles, each a SubmissionSet List, a DocumentReference and the Binary with the
  document, as services/summary/documents.py checks them: a Volven 9602 type and class, the
  author organisation (organisation number) and health worker (HPR number), Volven 9603
  confidentiality (``N``; a few ``NORS``, blocked), the kind of source, and an attachment
  whose size and SHA-1 match the Binary. The document is a small valid PDF with Norwegian
  text, padded to the size asked for.

:func:`authors_from` finds the doctors (and their organisations) among register resources
(the registers' synthetic population, or the GP offices of ``care_providers_bundle``), so the
numbers used are ones the demo's registers hold; :func:`synthetic_authors` makes valid
numbers of its own. Every resource carries the HTEST tag.
"""

from __future__ import annotations

import base64
import hashlib
import random
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from samhandling.platform.identifiers import HPR_SYSTEM, ORGNR_SYSTEM
from samhandling.services.registries.model import ENTERPRISE_TYPE
from samhandling.services.summary.critical import ALLERGY_VERIFICATION, CONDITION_VERIFICATION
from samhandling.services.summary.documents import (
    BLOCKED,
    COMPREHENSIVE_PROVIDE_BUNDLE,
    CONFIDENTIALITY_CODES,
    CONFIDENTIALITY_SYSTEM,
    DOCUMENT_TYPE_SYSTEM,
    MHD_LIST_TYPES,
    SOURCE_KIND_SYSTEM,
    SOURCE_KINDS,
)
from samhandling.services.summary.model import (
    CATEGORIES,
    CATEGORY,
    CATEGORY_EXTENSION,
    RECORDED_EXTENSION,
    RECORDER_ID,
    SOURCE,
    SOURCE_EXTENSION,
    SOURCES,
    VERIFIED_EXTENSION,
)
from samhandling.synth.identifiers import hpr_number, organisasjonsnummer
from samhandling.synth.population import REFERENCE_DATE, _meta, _oslo

CONFIDENTIALITY = {"N": CONFIDENTIALITY_CODES["N"], BLOCKED: CONFIDENTIALITY_CODES[BLOCKED]}
URI_SYSTEM = "urn:ietf:rfc:3986"  # masterIdentifier and SubmissionSet uniqueId: urn:oid:2.25.<n>
SNOMED = "http://snomed.info/sct"
PDF = "application/pdf"
DEFAULT_DOCUMENT_BYTES = 8 * 1024
PRACTITIONER_ROLE = "http://terminology.hl7.org/CodeSystem/practitioner-role"
# enterprise types of the registers whose documents Kjernejournal shares, by source kind
_KIND_OF_ENTERPRISE = {"sykehus": "sykehus", "avtalespesialist": "avtalespesialist",
                       "legevakt": "legevakt"}  # fmt: skip

_ALLERGY_CLINICAL = "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical"
_CONDITION_CLINICAL = "http://terminology.hl7.org/CodeSystem/condition-clinical"


@dataclass(frozen=True, slots=True)
class KjPatient:
    """A patient: the Patient's id and the person's number (fødselsnummer or D-number)."""

    patient_id: str
    pid: str


@dataclass(frozen=True, slots=True)
class Author:
    """A health worker who registers critical information or shares documents, at an
    organisation. ``kind`` is the kind of source (`SOURCE_KINDS`) when the organisation
    shares documents; None: it only registers critical information (a GP office)."""

    hpr: str
    orgnr: str
    organisation: str
    kind: str | None = None
    name: str | None = None


# ---------------------------------------------------------------------------- authors


def synthetic_authors(seed: int = 0) -> tuple[Author, ...]:
    """A doctor at each of a few synthetic organisations (valid numbers, in no register): two
    hospitals, a contract specialist, an emergency room and a GP office."""
    rng = random.Random(f"samhandling.synth/kjernejournal-authors/{seed}")
    places = (
        ("Testbyen sykehus", "sykehus", "Kari Lege"),
        ("Fjordbyen sykehus", "sykehus", "Ola Overlege"),
        ("Hjertespesialist Berg AS", "avtalespesialist", "Nils Berg"),
        ("Testbyen legevakt", "legevakt", "Ingrid Vakt"),
        ("Testbyen legesenter", None, "Per Fastlege"),
    )
    return tuple(
        Author(hpr_number(rng), organisasjonsnummer(rng), organisation, kind, name)
        for organisation, kind, name in places
    )


def authors_from(
    resources: Iterable[dict[str, Any]],
    authorised: Mapping[str, Iterable[str]] | None = None,
) -> tuple[Author, ...]:
    """The doctors among register resources: each PractitionerRole with the role code
    ``doctor`` whose Practitioner (HPR number) and Organization (organisation number) are
    among ``resources``. The registers' enterprise type gives the kind of source (hospital,
    contract specialist, emergency room); other organisations (GP offices) only register
    critical information. With ``authorised`` (HPR number -> professions in force, as
    ``RegisterPopulation.authorised_hpr_numbers``), only doctors (``LE``) in force."""
    organisations: dict[str, tuple[str, str, str | None]] = {}
    practitioners: dict[str, tuple[str, str | None]] = {}
    roles: list[tuple[str, str]] = []
    for resource in resources:
        kind = resource.get("resourceType")
        if kind == "Organization":
            orgnr = _identifier(resource, ORGNR_SYSTEM)
            if orgnr is not None:
                types = [
                    coding.get("code")
                    for concept in resource.get("type", [])
                    for coding in concept.get("coding", [])
                    if coding.get("system") == ENTERPRISE_TYPE
                ]
                source = next(
                    (_KIND_OF_ENTERPRISE[t] for t in types if t in _KIND_OF_ENTERPRISE), None
                )
                organisations[resource["id"]] = (orgnr, resource.get("name", orgnr), source)
        elif kind == "Practitioner":
            hpr = _identifier(resource, HPR_SYSTEM)
            if hpr is not None:
                names = resource.get("name") or [{}]
                given = " ".join(names[0].get("given", []))
                name = " ".join(p for p in (given, names[0].get("family")) if p) or None
                practitioners[resource["id"]] = (hpr, name)
        elif kind == "PractitionerRole" and _is_doctor(resource):
            practitioner = (resource.get("practitioner") or {}).get("reference", "")
            organisation = (resource.get("organization") or {}).get("reference", "")
            roles.append((practitioner.rpartition("/")[2], organisation.rpartition("/")[2]))
    found: dict[tuple[str, str], Author] = {}
    for practitioner_id, organisation_id in roles:
        if practitioner_id not in practitioners or organisation_id not in organisations:
            continue
        hpr, name = practitioners[practitioner_id]
        if authorised is not None and "LE" not in authorised.get(hpr, ()):
            continue
        orgnr, organisation, kind = organisations[organisation_id]
        found.setdefault((hpr, orgnr), Author(hpr, orgnr, organisation, kind, name))
    return tuple(found.values())


def register_authors(population: Any) -> tuple[Author, ...]:
    """The doctors in force of a ``RegisterPopulation`` (samhandling.synth.registers), with
    their organisations."""

    def registers() -> Iterator[dict[str, Any]]:
        for resource in population.resources():  # organisations, endpoints, staff, roles, ...
            if resource["resourceType"] in ("HealthcareService", "Patient"):
                return  # the staff and their roles come before these
            yield resource

    return authors_from(registers(), population.authorised_hpr_numbers)


def _identifier(resource: dict[str, Any], system: str) -> str | None:
    return next(
        (i["value"] for i in resource.get("identifier", [])
         if i.get("system") == system and i.get("value") and i.get("use") != "old"),
        None,
    )  # fmt: skip


def _is_doctor(role: dict[str, Any]) -> bool:
    return any(
        coding.get("system") == PRACTITIONER_ROLE and coding.get("code") == "doctor"
        for concept in role.get("code", [])
        for coding in concept.get("coding", [])
    )


# ---------------------------------------------------------------------------- critical information


@dataclass(frozen=True, slots=True)
class CriticalItem:
    """What an entry of critical information is about."""

    category: str  # Kjernejournal category (model.CATEGORIES)
    text: str  # Norwegian text
    snomed: tuple[str, str] | None = None  # (code, display) when the concept is certain
    kind: str | None = None  # AllergyIntolerance.category (allergies); device text (implants)
    criticality: str = "high"  # allergies
    reactions: tuple[tuple[str, str, str], ...] = ()  # (SNOMED code, display, Norwegian text)


_ANAPHYLAXIS = ("39579001", "Anaphylaxis", "Anafylaksi")
_URTICARIA = ("126485001", "Urticaria", "Elveblest")
_RASH = ("271807003", "Eruption of skin", "Utslett")
_DYSPNEA = ("267036007", "Dyspnea", "Tungpustethet")
_NAUSEA = ("422587007", "Nausea", "Kvalme")

# fmt: off
CRITICAL_ITEMS: tuple[CriticalItem, ...] = (
    # 1 Legemiddelreaksjon (AllergyIntolerance, category medication)
    CriticalItem("1", "Penicillin", ("764146007", "Penicillin"), "medication", "high",
                 (_ANAPHYLAXIS, _URTICARIA)),
    CriticalItem("1", "Amoksicillin", ("372687004", "Amoxicillin"), "medication", "high",
                 (_URTICARIA,)),
    CriticalItem("1", "Acetylsalisylsyre", ("387458008", "Aspirin"), "medication", "high",
                 (_DYSPNEA, _URTICARIA)),
    CriticalItem("1", "Ibuprofen", ("387207008", "Ibuprofen"), "medication", "low", (_RASH,)),
    CriticalItem("1", "Morfin", ("373529000", "Morphine"), "medication", "low", (_NAUSEA,)),
    CriticalItem("1", "Sulfametoksazol (trimetoprim-sulfa)", ("387406002", "Sulfamethoxazole"),
                 "medication", "low", (_RASH,)),
    # 2 Annen allergi (AllergyIntolerance, category food, environment or biologic)
    CriticalItem("2", "Peanøtter", ("256349002", "Peanut - dietary"), "food", "high",
                 (_ANAPHYLAXIS,)),
    CriticalItem("2", "Cashewnøtter", ("227493005", "Cashew nuts"), "food", "high",
                 (_ANAPHYLAXIS, _URTICARIA)),
    CriticalItem("2", "Skalldyr", ("44027008", "Seafood"), "food", "high", (_ANAPHYLAXIS,)),
    CriticalItem("2", "Lateks", ("111088007", "Latex"), "environment", "high", (_URTICARIA,)),
    CriticalItem("2", "Bigift (bistikk)", ("288328004", "Bee venom"), "environment", "high",
                 (_ANAPHYLAXIS,)),
    # 3 Intubasjonsproblem (Condition)
    CriticalItem("3", "Vanskelig maskeventilasjon og intubasjon",
                 ("718446005", "Difficulty with mask ventilation and tracheal intubation")),
    CriticalItem("3", "Vanskelig intubasjon: bruk videolaryngoskop"),
    # 4 Annet problem ved anestesi (Condition)
    CriticalItem("4", "Malign hypertermi", ("405501007", "Malignant hyperthermia")),
    CriticalItem("4", "Forlenget virkning av suksametonium (kolinesterasemangel)"),
    # 5 Kritisk medisinsk tilstand (Condition)
    CriticalItem("5", "Addisons sykdom (binyrebarksvikt)", ("363732003", "Addison's disease")),
    CriticalItem("5", "Myasthenia gravis", ("91637004", "Myasthenia gravis")),
    CriticalItem("5", "Hemofili A", ("28293008", "Hereditary factor VIII deficiency disease")),
    # 6 Pågående behandling (Procedure)
    CriticalItem("6", "Hemodialyse", ("302497006", "Hemodialysis")),
    CriticalItem("6", "Peritonealdialyse", ("71192002", "Peritoneal dialysis")),
    CriticalItem("6", "Antikoagulasjonsbehandling (warfarin)",
                 ("182764009", "Anticoagulant therapy")),
    CriticalItem("6", "Immundempende behandling etter nyretransplantasjon"),
    # 7 Implantat (DeviceUseStatement)
    CriticalItem("7", "Pacemaker", ("14106009", "Cardiac pacemaker"), "Pacemaker"),
    CriticalItem("7", "Implanterbar hjertestarter (ICD)", ("72506001", "Implantable defibrillator"),
                 "ICD"),
    CriticalItem("7", "Cochleaimplantat", ("43252007", "Cochlear prosthesis"), "Cochleaimplantat"),
    # 9 Annen prosedyreendring (Flag)
    CriticalItem("9", "Unngå blodtrykksmåling og stikk på venstre arm (AV-fistel)"),
    CriticalItem("9", "Bruk lateksfritt utstyr"),
    CriticalItem("9", "Ikke MR-undersøkelse uten avklaring med kardiolog"),
    # 10 Smitte (Condition)
    CriticalItem("10", "Bærer av MRSA (meticillinresistente gule stafylokokker)"),
    CriticalItem("10", "Bærer av ESBL-produserende bakterier"),
    CriticalItem("10", "Kronisk hepatitt B", ("61977001", "Chronic type B viral hepatitis")),
    CriticalItem("10", "Hiv-infeksjon", ("86406008", "Human immunodeficiency virus infection")),
)
# fmt: on
# how often each category occurs among entries (allergies are the most common)
CATEGORY_WEIGHTS = {"1": 30, "2": 20, "3": 5, "4": 5, "5": 12, "6": 10, "7": 8, "9": 4, "10": 6}
RESOURCE_TYPES = {"1": "AllergyIntolerance", "2": "AllergyIntolerance", "3": "Condition",
                  "4": "Condition", "5": "Condition", "6": "Procedure",
                  "7": "DeviceUseStatement", "9": "Flag", "10": "Condition"}  # fmt: skip
_SOURCE_WEIGHTS = {"1": 20, "2": 45, "3": 15, "4": 5, "5": 15}


def _concept(system: str, code: str, display: str) -> dict[str, Any]:
    return {"coding": [{"system": system, "code": code, "display": display}]}


def _about(item: CriticalItem) -> dict[str, Any]:
    concept: dict[str, Any] = {}
    if item.snomed is not None:
        concept["coding"] = [{"system": SNOMED, "code": item.snomed[0], "display": item.snomed[1]}]
    concept["text"] = item.text
    return concept


def recorder(author: Author) -> dict[str, Any]:
    """The contained PractitionerRole ``#recorder``: the health worker's HPR number and the
    organisation's number."""
    practitioner: dict[str, Any] = {"identifier": {"system": HPR_SYSTEM, "value": author.hpr}}
    if author.name:
        practitioner["display"] = author.name
    return {
        "resourceType": "PractitionerRole",
        "id": RECORDER_ID,
        "practitioner": practitioner,
        "organization": {
            "identifier": {"system": ORGNR_SYSTEM, "value": author.orgnr},
            "display": author.organisation,
        },
    }


def critical_entry(
    item: CriticalItem,
    patient_id: str,
    author: Author,
    recorded: str,
    *,
    source: str = "2",
    verified: bool = True,
    id: str | None = None,
) -> dict[str, Any]:
    """An entry of critical information about ``item`` for Patient ``patient_id``,
    registered by ``author`` at ``recorded`` (a dateTime), in the resource type and shape of
    its category's profile."""
    category = item.category
    type_name = RESOURCE_TYPES[category]
    patient = {"reference": f"Patient/{patient_id}"}
    kj_category = _concept(CATEGORY, category, CATEGORIES[category])
    source_extension = {
        "url": SOURCE_EXTENSION,
        "valueCoding": {"system": SOURCE, "code": source, "display": SOURCES[source]},
    }
    resource: dict[str, Any] = {"resourceType": type_name}
    if id is not None:
        resource["id"] = id
    resource["meta"] = _meta()
    if type_name == "AllergyIntolerance":
        reaction = [{
            "manifestation": [{**_concept(SNOMED, code, display), "text": text}],
            "severity": "severe" if item.criticality == "high" else "mild",
        } for code, display, text in item.reactions]  # fmt: skip
        return {
            **resource,
            "contained": [recorder(author)],
            "extension": [
                {"url": CATEGORY_EXTENSION, "valueCodeableConcept": kj_category},
                source_extension,
            ],
            "clinicalStatus": _concept(_ALLERGY_CLINICAL, "active", "Active"),
            "verificationStatus": _verification(ALLERGY_VERIFICATION, verified),
            "type": "allergy",
            "category": [item.kind],
            "criticality": item.criticality,
            "code": _about(item),
            "patient": patient,
            "recordedDate": recorded,
            "recorder": {"reference": f"#{RECORDER_ID}"},
            **({"reaction": reaction} if reaction else {}),
        }
    if type_name == "Condition":
        return {
            **resource,
            "contained": [recorder(author)],
            "extension": [source_extension],
            "clinicalStatus": _concept(_CONDITION_CLINICAL, "active", "Active"),
            "verificationStatus": _verification(CONDITION_VERIFICATION, verified),
            "category": [kj_category],
            "code": _about(item),
            "subject": patient,
            "recordedDate": recorded,
            "recorder": {"reference": f"#{RECORDER_ID}"},
        }
    extensions: list[dict[str, Any]] = [
        source_extension,
        {"url": VERIFIED_EXTENSION, "valueBoolean": verified},
    ]
    if type_name == "DeviceUseStatement":
        device: dict[str, Any] = {
            "resourceType": "Device",
            "id": "device",
            "deviceName": [{"name": item.kind or item.text, "type": "user-friendly-name"}],
            "type": _about(item),
        }
        return {
            **resource,
            "contained": [recorder(author), device],
            "extension": [
                {"url": CATEGORY_EXTENSION, "valueCodeableConcept": kj_category},
                *extensions,
            ],
            "status": "active",
            "subject": patient,
            "recordedOn": recorded,
            "source": {"reference": f"#{RECORDER_ID}"},
            "device": {"reference": "#device", "display": item.text},
        }
    extensions.append({"url": RECORDED_EXTENSION, "valueDateTime": recorded})
    if type_name == "Procedure":
        return {
            **resource,
            "contained": [recorder(author)],
            "extension": extensions,
            "status": "in-progress",
            "category": kj_category,
            "code": _about(item),
            "subject": patient,
            "performedPeriod": {"start": recorded},
            "recorder": {"reference": f"#{RECORDER_ID}"},
        }
    return {  # Flag
        **resource,
        "contained": [recorder(author)],
        "extension": extensions,
        "status": "active",
        "category": [kj_category],
        "code": _about(item),
        "subject": patient,
        "period": {"start": recorded},
        "author": {"reference": f"#{RECORDER_ID}"},
    }


def _verification(system: str, verified: bool) -> dict[str, Any]:
    code, display = ("confirmed", "Confirmed") if verified else ("unconfirmed", "Unconfirmed")
    return _concept(system, code, display)


# ---------------------------------------------------------------------------- documents


@dataclass(frozen=True, slots=True)
class DocumentType:
    """A Volven 9602 document type (XDS typeCode) and its class (classCode)."""

    code: str
    display: str
    class_code: str
    class_display: str
    kinds: frozenset[str]  # the kinds of source that share it
    weight: int
    lines: tuple[str, ...]  # the document's Norwegian text ({organisation}, {date})


_SUMMARIES = ("A00-1", "Epikriser og sammenfatninger")
_RECORD = ("B00-1", "Kontinuerlig/løpende journal")
# The type and class codes of Volven 9602 (the no-basis-documentreference-type value set:
# a type "A03-2" belongs to the class "A00-1").
# fmt: off
DOCUMENT_TYPES: tuple[DocumentType, ...] = (
    DocumentType("A03-2", "Epikrise", *_SUMMARIES, frozenset({"sykehus"}), 40, (
        "Pasienten ble innlagt ved {organisation} og skrevet ut {date} i stabil tilstand.",
        "Behandlingen er avsluttet. Videre oppfølging hos fastlege.",
        "Legemiddellisten er gjennomgått og oppdatert ved utskrivning.",
    )),
    DocumentType("A13-2", "Poliklinisk epikrise", *_SUMMARIES,
                 frozenset({"sykehus", "avtalespesialist"}), 20, (
        "Pasienten ble undersøkt poliklinisk ved {organisation} {date}.",
        "Funnene er drøftet med pasienten. Ny kontroll om seks måneder.",
    )),
    DocumentType("A12-2", "Utskrivings-/Pasientorientering", *_SUMMARIES,
                 frozenset({"sykehus", "kad"}), 8, (
        "Informasjon til deg som skrives ut fra {organisation} {date}.",
        "Ta kontakt med fastlegen eller legevakten ved forverring.",
    )),
    DocumentType("B03-2", "Poliklinisk notat", *_RECORD,
                 frozenset({"avtalespesialist", "sykehus"}), 10, (
        "Poliklinisk konsultasjon ved {organisation} {date}.",
        "Uendret tilstand. Fortsetter gjeldende behandling.",
    )),
    DocumentType("B02-2", "Journalnotat", *_RECORD, frozenset({"legevakt", "kad"}), 12, (
        "Pasienten ble vurdert ved {organisation} {date}.",
        "Ingen tegn til alvorlig sykdom. Råd om egenbehandling er gitt.",
    )),
    DocumentType("F02-2", "Anestesi- og opr. Rapporter", "F00-1",
                 "Kurve, observasjon og behandling", frozenset({"sykehus"}), 5, (
        "Operasjon i generell anestesi ved {organisation} {date}.",
        "Ukomplisert forløp. Pasienten ble overført til postoperativ avdeling.",
    )),
    DocumentType("C03-2", "Mikrobiologi, virologi og serologi", "C00-1",
                 "Prøvesvar, vev og væsker", frozenset({"sykehus"}), 5, (
        "Prøvesvar fra {organisation}, prøve tatt {date}.",
        "Dyrkning: ingen vekst av sykdomsfremkallende bakterier.",
    )),
)
# fmt: on


def document_pdf(title: str, lines: Sequence[str], size: int = 0, *, seed: str = "") -> bytes:
    """A valid one-page PDF (1.4, Helvetica, WinAnsiEncoding) showing ``title`` and
    ``lines``, padded with comment lines in its content stream to exactly ``size`` bytes
    (when that is more than it needs). ``seed`` varies the padding."""
    text = ["BT", "/F1 16 Tf", "56 780 Td", f"({_pdf_text(title)}) Tj", "/F1 11 Tf", "0 -28 Td"]
    for line in lines:
        text += [f"({_pdf_text(line)}) Tj", "0 -16 Td"]
    text.append("ET")
    stream = "\n".join(text).encode("cp1252")
    info = f"<< /Title ({_pdf_text(title)}) /Producer (samhandling synth) >>"

    def build(padding: bytes) -> bytes:
        content = stream + padding
        objects = [
            b"<< /Type /Catalog /Pages 2 0 R >>",
            b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] "
            b"/Resources << /Font << /F1 5 0 R >> >> /Contents 4 0 R >>",
            b"<< /Length %d >>\nstream\n%s\nendstream" % (len(content), content),
            b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>",
            info.encode("cp1252"),
        ]
        out = bytearray(b"%PDF-1.4\n%\xe6\xf8\xe5\xc6\n")
        offsets = []
        for number, body in enumerate(objects, 1):
            offsets.append(len(out))
            out += b"%d 0 obj\n%s\nendobj\n" % (number, body)
        start = len(out)
        out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
        out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
        out += b"trailer\n<< /Size %d /Root 1 0 R /Info 6 0 R >>\n" % (len(objects) + 1)
        out += b"startxref\n%d\n%%%%EOF\n" % start
        return bytes(out)

    document = build(b"")
    rng = random.Random(f"samhandling.synth/pdf/{seed}")
    padding = 0
    for _ in range(4):  # the stream's /Length and startxref grow a digit at a time: settles
        missing = size - len(document)
        if missing == 0 or padding + missing <= 0:
            break
        padding += missing
        document = build(_padding(padding, rng))
    return document


_PAD_LETTERS = "abcdefghijklmnopqrstuvwxyzæøå ABCDEFGHIJKLMNOPQRSTUVWXYZÆØÅ0123456789".encode(
    "cp1252"
)
_PAD_TABLE = bytes(_PAD_LETTERS[i % len(_PAD_LETTERS)] for i in range(256))


def _padding(count: int, rng: random.Random) -> bytes:
    """``count`` bytes of PDF comment lines (``%`` and letters, 80 bytes a line)."""
    letters = rng.randbytes(count).translate(_PAD_TABLE)
    out = bytearray(b"\n")
    used = 0
    while len(out) < count:
        width = min(78, count - len(out) - 2)  # "%", the letters, "\n"
        if width < 0:
            out += b"\n"
            break
        out += b"%" + letters[used : used + width] + b"\n"
        used += width
    return bytes(out[:count])


def _pdf_text(text: str) -> str:
    return text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")


@dataclass(frozen=True, slots=True)
class SharedDocument:
    """One document of a submission, with what its metadata says."""

    content: bytes
    type: DocumentType
    author: Author
    date: str  # when it was written (a FHIR instant)
    title: str
    unique_id: str  # masterIdentifier: urn:oid:2.25.<n>
    document_url: str  # the DocumentReference's fullUrl (urn:uuid)
    binary_url: str  # the Binary's fullUrl (urn:uuid)
    confidentiality: str = "N"  # Volven 9603


def document_reference(patient_id: str, document: SharedDocument) -> dict[str, Any]:
    """The DocumentReference of ``document`` with Kjernejournal's metadata."""
    author = document.author
    assert author.kind is not None, "the author organisation of a document has a kind of source"
    doc_type = document.type
    practitioner: dict[str, Any] = {
        "type": "Practitioner",
        "identifier": {"system": HPR_SYSTEM, "value": author.hpr},
    }
    if author.name:
        practitioner["display"] = author.name
    return {
        "resourceType": "DocumentReference",
        "meta": _meta(),
        "masterIdentifier": {"system": URI_SYSTEM, "value": document.unique_id},
        "status": "current",
        "docStatus": "final",
        "type": _concept(DOCUMENT_TYPE_SYSTEM, doc_type.code, doc_type.display),
        "category": [_concept(DOCUMENT_TYPE_SYSTEM, doc_type.class_code, doc_type.class_display)],
        "subject": {"reference": f"Patient/{patient_id}"},
        "date": document.date,
        "author": [
            {
                "type": "Organization",
                "identifier": {"system": ORGNR_SYSTEM, "value": author.orgnr},
                "display": author.organisation,
            },
            practitioner,
        ],
        "description": document.title,
        "securityLabel": [
            _concept(
                CONFIDENTIALITY_SYSTEM,
                document.confidentiality,
                CONFIDENTIALITY[document.confidentiality],
            )
        ],
        "content": [
            {
                "attachment": {
                    "contentType": PDF,
                    "url": document.binary_url,
                    "size": len(document.content),
                    "hash": base64.b64encode(hashlib.sha1(document.content).digest()).decode(),
                    "title": document.title,
                    "creation": document.date,
                }
            }
        ],
        "context": {
            "facilityType": _concept(SOURCE_KIND_SYSTEM, author.kind, SOURCE_KINDS[author.kind]),
        },
    }


def provide_bundle(
    patient_id: str, documents: Sequence[SharedDocument], *, unique_id: str, date: str
) -> dict[str, Any]:
    """An ITI-65 Provide Document Bundle: the SubmissionSet List (``unique_id``, ``date``),
    then each document's DocumentReference and Binary (``securityContext``: the
    DocumentReference's fullUrl)."""
    entries: list[dict[str, Any]] = []
    for document in documents:
        entries.append({
            "fullUrl": document.document_url,
            "resource": document_reference(patient_id, document),
            "request": {"method": "POST", "url": "DocumentReference"},
        })  # fmt: skip
        entries.append({
            "fullUrl": document.binary_url,
            "resource": {
                "resourceType": "Binary",
                "meta": _meta(),
                "contentType": PDF,
                "securityContext": {"reference": document.document_url},
                "data": base64.b64encode(document.content).decode(),
            },
            "request": {"method": "POST", "url": "Binary"},
        })  # fmt: skip
    submission_set = {
        "resourceType": "List",
        "meta": _meta(),
        "identifier": [{"use": "usual", "system": URI_SYSTEM, "value": unique_id}],
        "status": "current",
        "mode": "working",
        "title": ", ".join(d.title for d in documents),
        "code": _concept(MHD_LIST_TYPES, "submissionset", "SubmissionSet as a FHIR List"),
        "subject": {"reference": f"Patient/{patient_id}"},
        "date": date,
        "entry": [{"item": {"reference": d.document_url}} for d in documents],
    }
    list_url = _urn(random.Random(unique_id))
    return {
        "resourceType": "Bundle",
        "meta": {"profile": [COMPREHENSIVE_PROVIDE_BUNDLE]},
        "type": "transaction",
        "entry": [
            {"fullUrl": list_url, "resource": submission_set,
             "request": {"method": "POST", "url": "List"}},
            *entries,
        ],
    }  # fmt: skip


def _urn(rng: random.Random) -> str:
    return f"urn:uuid:{uuid.UUID(int=rng.getrandbits(128), version=4)}"


def _oid(rng: random.Random) -> str:
    return f"urn:oid:2.25.{uuid.UUID(int=rng.getrandbits(128), version=4).int}"


# ---------------------------------------------------------------------------- a data set


@dataclass(frozen=True, slots=True)
class _DocumentPlan:
    type: DocumentType
    author: Author
    when: datetime
    unique_id: str
    submission_id: str
    document_url: str
    binary_url: str
    confidentiality: str
    seed: str


@dataclass(frozen=True)
class KjernejournalData:
    """Kjernejournal's synthetic data for ``patients``, written by ``authors``; a pure
    function of its fields (each patient's part depends only on the seed, that patient and
    the authors, not on the other patients).

    ``critical_share`` of the patients have critical information (one to three entries),
    ``document_share`` have shared documents (one to ``most_documents``, each in its own
    submission) of ``document_bytes`` bytes; ``blocked_share`` of the documents are blocked
    (Volven 9603 ``NORS``)."""

    patients: Sequence[KjPatient]
    authors: Sequence[Author] = field(default_factory=synthetic_authors)
    seed: int = 0
    critical_share: float = 0.3
    document_share: float = 0.5
    most_documents: int = 3
    document_bytes: int = DEFAULT_DOCUMENT_BYTES
    blocked_share: float = 0.03

    def __post_init__(self) -> None:
        if not self.authors:
            raise ValueError("at least one author is needed")
        if self.document_share > 0 and not any(a.kind for a in self.authors):
            raise ValueError("documents need an author with a kind of source (SOURCE_KINDS)")
        if self.most_documents < 1:
            raise ValueError("most_documents must be at least 1")

    def _rng(self, patient: KjPatient, part: str) -> random.Random:
        return random.Random(f"samhandling.synth/kjernejournal/{self.seed}/{patient.pid}/{part}")

    def _key(self, patient: KjPatient) -> str:
        digest = hashlib.sha1(f"{self.seed}/{patient.pid}".encode()).hexdigest()
        return digest[:12]

    def critical(self, patient: KjPatient) -> list[dict[str, Any]]:
        """The patient's critical information (resources with ids; empty for most)."""
        rng = self._rng(patient, "critical")
        if rng.random() >= self.critical_share:
            return []
        count = rng.choices((1, 2, 3), weights=(60, 30, 10))[0]
        items: list[CriticalItem] = []
        while len(items) < count:
            category = rng.choices(list(CATEGORY_WEIGHTS), weights=list(CATEGORY_WEIGHTS.values()))
            item = rng.choice([i for i in CRITICAL_ITEMS if i.category == category[0]])
            if item not in items:
                items.append(item)
        entries = []
        for n, item in enumerate(items, 1):
            when = _moment(rng, 1, 8 * 365)
            source = rng.choices(list(_SOURCE_WEIGHTS), weights=list(_SOURCE_WEIGHTS.values()))[0]
            entries.append(
                critical_entry(
                    item,
                    patient.patient_id,
                    rng.choice(self.authors),
                    _oslo(when),
                    source=source,
                    verified=rng.random() < 0.85,
                    id=f"kj-{self.seed}-{self._key(patient)}-{n}",
                )
            )
        return entries

    def _document_plans(self, patient: KjPatient) -> list[_DocumentPlan]:
        rng = self._rng(patient, "documents")
        if rng.random() >= self.document_share:
            return []
        sources = [a for a in self.authors if a.kind]
        plans = []
        for _ in range(rng.randint(1, self.most_documents)):
            author = rng.choice(sources)
            fitting = [t for t in DOCUMENT_TYPES if author.kind in t.kinds] or list(DOCUMENT_TYPES)
            doc_type = rng.choices(fitting, weights=[t.weight for t in fitting])[0]
            blocked = rng.random() < self.blocked_share
            plans.append(
                _DocumentPlan(
                    doc_type,
                    author,
                    _moment(rng, 1, 3 * 365),
                    _oid(rng),
                    _oid(rng),
                    _urn(rng),
                    _urn(rng),
                    BLOCKED if blocked else "N",
                    f"{self.seed}/{patient.pid}/{len(plans)}",
                )
            )
        return sorted(plans, key=lambda p: p.when)

    def submissions(self, patient: KjPatient) -> list[dict[str, Any]]:
        """The patient's ITI-65 submissions (one document each), oldest first."""
        return [self._submission(patient, plan) for plan in self._document_plans(patient)]

    def _submission(self, patient: KjPatient, plan: _DocumentPlan) -> dict[str, Any]:
        day = plan.when.strftime("%d.%m.%Y")
        title = f"{plan.type.display} fra {plan.author.organisation}"
        lines = [
            line.format(organisation=plan.author.organisation, date=day) for line in plan.type.lines
        ]
        lines.append(f"Dokumentet er skrevet av {plan.author.name or 'behandlende lege'}.")
        lines.append("Syntetiske testdata (HTEST): ikke et ekte pasientdokument.")
        content = document_pdf(title, lines, self.document_bytes, seed=plan.seed)
        date = _oslo(plan.when)
        document = SharedDocument(
            content,
            plan.type,
            plan.author,
            date,
            title,
            plan.unique_id,
            plan.document_url,
            plan.binary_url,
            plan.confidentiality,
        )
        return provide_bundle(
            patient.patient_id, [document], unique_id=plan.submission_id, date=date
        )

    def bundles(self, batch: int = 200) -> Iterator[dict[str, Any]]:
        """Everything as transaction Bundles, in the order to write it: the critical
        information (PUTs, at most ``batch`` a Bundle), then each patient's submissions."""
        entries: list[dict[str, Any]] = []
        for patient in self.patients:
            for resource in self.critical(patient):
                url = f"{resource['resourceType']}/{resource['id']}"
                entries.append({"resource": resource, "request": {"method": "PUT", "url": url}})
                if len(entries) == batch:
                    yield {"resourceType": "Bundle", "type": "transaction", "entry": entries}
                    entries = []
        if entries:
            yield {"resourceType": "Bundle", "type": "transaction", "entry": entries}
        for patient in self.patients:
            yield from self.submissions(patient)

    @property
    def marker(self) -> tuple[str, str, str] | None:
        """(type, search parameter, value) finding the last resource :meth:`bundles` writes:
        once it is stored, everything is (a loader's "already loaded" check). None when
        there is nothing to write."""
        for patient in reversed(self.patients):
            plans = self._document_plans(patient)
            if plans:
                return "DocumentReference", "identifier", f"{URI_SYSTEM}|{plans[-1].unique_id}"
        for patient in reversed(self.patients):
            entries = self.critical(patient)
            if entries:
                return entries[-1]["resourceType"], "_id", entries[-1]["id"]
        return None

    def counts(self) -> dict[str, int]:
        """How many patients have critical information and documents, and how many entries,
        documents and blocked documents there are (without making the documents)."""
        critical = [len(self.critical(p)) for p in self.patients]
        plans = [self._document_plans(p) for p in self.patients]
        return {
            "patients": len(self.patients),
            "with_critical_information": sum(1 for c in critical if c),
            "critical_entries": sum(critical),
            "with_documents": sum(1 for p in plans if p),
            "documents": sum(len(p) for p in plans),
            "blocked_documents": sum(1 for p in plans for d in p if d.confidentiality != "N"),
        }


def _moment(rng: random.Random, first_days: int, last_days: int) -> datetime:
    """A time of day in working hours, between ``last_days`` and ``first_days`` before
    the reference date."""
    day = REFERENCE_DATE - timedelta(days=rng.randint(first_days, last_days))
    return datetime(day.year, day.month, day.day, rng.randint(8, 15), rng.randrange(60))
