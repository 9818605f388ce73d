"""Kjernejournal's critical information (kritisk informasjon) as FHIR: where each resource
type keeps what its profile asks for, and how to read it.

Every entry carries (norway.md §2.2, docs/services/kjernejournal.md):

- its Kjernejournal category (a coding in ``model.CATEGORY``), in the type's own category
  element, or in the extension ``critical-information-category`` where the type has none
  (AllergyIntolerance, whose own category is a code, and DeviceUseStatement);
- the patient it is about;
- who registered it: a contained PractitionerRole ``#recorder`` with the health worker's HPR
  number and the organisation's number, referenced from the type's recorder element, and
  when (the type's recorded element, or the extension ``critical-information-recorded``);
- the source of the information (extension ``critical-information-source``);
- whether it is verified (``verificationStatus``, or the extension
  ``critical-information-verified``);
- a retraction is ``entered-in-error`` (``verificationStatus`` or ``status``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from samhandling.platform.identifiers import HPR_SYSTEM, ORGNR_SYSTEMS
from samhandling.services.summary.model import (
    CATEGORY,
    CATEGORY_EXTENSION,
    ENTERED_IN_ERROR,
    RECORDED_EXTENSION,
    RECORDER_ID,
    VERIFIED_EXTENSION,
)

ALLERGY_VERIFICATION = "http://terminology.hl7.org/CodeSystem/allergyintolerance-verification"
CONDITION_VERIFICATION = "http://terminology.hl7.org/CodeSystem/condition-ver-status"


@dataclass(frozen=True, slots=True)
class Layout:
    """Where one resource type keeps the parts of critical information (element names)."""

    subject: str  # the patient
    recorder: str  # a Reference to the contained PractitionerRole
    recorded: str | None  # a dateTime element; None: the recorded extension
    category: str | None  # a CodeableConcept (or a list of them); None: the extension
    category_many: bool  # whether the category element is a list
    verification: str | None  # a CodeableConcept system; None: the verified extension
    retraction: str  # "verificationStatus" (coded) or "status" (a code)
    code: str | None  # the element naming what it is about, when the type has one


LAYOUTS: dict[str, Layout] = {
    "AllergyIntolerance": Layout(
        "patient", "recorder", "recordedDate", None, False, ALLERGY_VERIFICATION,
        "verificationStatus", "code",
    ),
    "Condition": Layout(
        "subject", "recorder", "recordedDate", "category", True, CONDITION_VERIFICATION,
        "verificationStatus", "code",
    ),
    "Procedure": Layout(
        "subject", "recorder", None, "category", False, None, "status", "code",
    ),
    "DeviceUseStatement": Layout(
        "subject", "source", "recordedOn", None, False, None, "status", None,
    ),
    "Flag": Layout(
        "subject", "author", None, "category", True, None, "status", "code",
    ),
}  # fmt: skip

# the verification codes of AllergyIntolerance and Condition
VERIFICATION_CODES: dict[str, frozenset[str]] = {
    ALLERGY_VERIFICATION: frozenset({"unconfirmed", "confirmed", "refuted", ENTERED_IN_ERROR}),
    CONDITION_VERIFICATION: frozenset(
        {"unconfirmed", "provisional", "differential", "confirmed", "refuted", ENTERED_IN_ERROR}
    ),
}


@dataclass(frozen=True, slots=True)
class Recorder:
    """Who registered an entry: the health worker's HPR number and the organisation's number."""

    hpr_number: str | None
    orgnr: str | None


def extensions(resource: dict[str, Any], url: str) -> list[dict[str, Any]]:
    """The extensions of ``resource`` with ``url``."""
    found = resource.get("extension")
    if not isinstance(found, list):
        return []
    return [e for e in found if isinstance(e, dict) and e.get("url") == url]


def category_path(type_name: str) -> str:
    """The FHIRPath of where ``type_name`` keeps its Kjernejournal category."""
    layout = LAYOUTS[type_name]
    if layout.category is None:
        return f"{type_name}.extension('{CATEGORY_EXTENSION}')"
    return f"{type_name}.{layout.category}"


def category_concepts(type_name: str, resource: dict[str, Any]) -> list[Any]:
    """The CodeableConcepts that hold the Kjernejournal category (unchecked values)."""
    layout = LAYOUTS[type_name]
    if layout.category is None:
        return [e.get("valueCodeableConcept") for e in extensions(resource, CATEGORY_EXTENSION)]
    value = resource.get(layout.category)
    if value is None:
        return []
    return list(value) if isinstance(value, list) else [value]


def categories(type_name: str, resource: dict[str, Any]) -> list[str]:
    """The Kjernejournal category codes of an entry (normally one)."""
    found = []
    for concept in category_concepts(type_name, resource):
        for coding in codings(concept):
            code = coding.get("code")
            if coding.get("system") == CATEGORY and isinstance(code, str):
                found.append(code)
    return found


def is_critical_information(type_name: str, resource: dict[str, Any]) -> bool:
    """Whether an entry is Kjernejournal's: it carries a Kjernejournal category. Other
    entries of the same types (an EHR's diagnoses, the demo's clinical data) are plain FHIR
    resources, not critical information (decision 0013)."""
    return any(
        isinstance(coding, dict) and coding.get("system") == CATEGORY
        for concept in category_concepts(type_name, resource)
        for coding in codings(concept)
    )


def recorder_of(type_name: str, resource: dict[str, Any]) -> Recorder | None:
    """Who registered the entry, per its contained PractitionerRole; None when the recorder
    element does not point to one."""
    reference = resource.get(LAYOUTS[type_name].recorder)
    if not isinstance(reference, dict) or reference.get("reference") != f"#{RECORDER_ID}":
        return None
    role = contained(resource, RECORDER_ID)
    if role is None or role.get("resourceType") != "PractitionerRole":
        return None
    return Recorder(
        _identifier(role.get("practitioner"), frozenset({HPR_SYSTEM})),
        _identifier(role.get("organization"), ORGNR_SYSTEMS),
    )


def contained(resource: dict[str, Any], id: str) -> dict[str, Any] | None:
    """The contained resource with ``id``."""
    found = resource.get("contained")
    if not isinstance(found, list):
        return None
    return next((r for r in found if isinstance(r, dict) and r.get("id") == id), None)


def is_retracted(type_name: str, resource: dict[str, Any]) -> bool:
    """Whether the entry is marked entered-in-error."""
    layout = LAYOUTS[type_name]
    value = resource.get(layout.retraction)
    if layout.retraction == "status":
        return value == ENTERED_IN_ERROR
    return any(c.get("code") == ENTERED_IN_ERROR for c in codings(value))


def verified(type_name: str, resource: dict[str, Any]) -> bool | None:
    """Whether the entry is verified (confirmed); None when it does not say."""
    layout = LAYOUTS[type_name]
    if layout.verification is not None:
        codes = [c.get("code") for c in codings(resource.get("verificationStatus"))]
        return None if not codes else "confirmed" in codes
    values = [e.get("valueBoolean") for e in extensions(resource, VERIFIED_EXTENSION)]
    return values[0] if values and isinstance(values[0], bool) else None


def recorded_at(type_name: str, resource: dict[str, Any]) -> Any:
    """When the entry was registered (the value as written)."""
    layout = LAYOUTS[type_name]
    if layout.recorded is not None:
        return resource.get(layout.recorded)
    values = [e.get("valueDateTime") for e in extensions(resource, RECORDED_EXTENSION)]
    return values[0] if values else None


def _identifier(reference: Any, systems: frozenset[str]) -> str | None:
    if not isinstance(reference, dict):
        return None
    identifier = reference.get("identifier")
    if not isinstance(identifier, dict) or identifier.get("system") not in systems:
        return None
    value = identifier.get("value")
    return value if isinstance(value, str) else None


def codings(concept: Any) -> list[dict[str, Any]]:
    if not isinstance(concept, dict):
        return []
    codings = concept.get("coding")
    if not isinstance(codings, list):
        return []
    return [c for c in codings if isinstance(c, dict)]
