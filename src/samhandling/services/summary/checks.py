"""The write checks of critical information: every entry follows its Kjernejournal profile
(critical.py says where each type keeps what); a breach is refused with 422 naming the
element."""

from __future__ import annotations

import re
from typing import Any

from samhandling.platform.fhir.engine import WriteCheck
from samhandling.platform.fhir.errors import Issue
from samhandling.platform.identifiers import HPR_SYSTEM, ORGNR_SYSTEMS, identifier_error
from samhandling.services.summary.critical import (
    LAYOUTS,
    VERIFICATION_CODES,
    categories,
    category_concepts,
    category_path,
    codings,
    contained,
    extensions,
    is_critical_information,
)
from samhandling.services.summary.model import (
    ALLERGY_CATEGORIES,
    CATEGORIES,
    CATEGORIES_OF_TYPE,
    CATEGORY,
    RECORDED_EXTENSION,
    RECORDER_ID,
    SOURCE,
    SOURCE_EXTENSION,
    SOURCES,
    VERIFIED_EXTENSION,
)

PATIENT_REFERENCE = re.compile(r"^Patient/[A-Za-z0-9\-.]{1,64}$")


def critical_check(type_name: str, *, allow_synthetic: bool) -> WriteCheck:
    """A check that refuses an entry of ``type_name`` that breaks its profile."""

    def check(resource: dict) -> list[Issue]:
        if not is_critical_information(type_name, resource):
            return []
        return profile_issues(type_name, resource, allow_synthetic=allow_synthetic)

    return check


def profile_issues(type_name: str, resource: dict, *, allow_synthetic: bool) -> list[Issue]:
    """Every breach of the critical-information profile of ``type_name`` in ``resource``."""
    issues: list[Issue] = []
    issues += _category(type_name, resource)
    issues += _subject(type_name, resource)
    issues += _recorder(type_name, resource, allow_synthetic)
    issues += _recorded(type_name, resource)
    issues += _source(type_name, resource)
    issues += _verification(type_name, resource)
    issues += _code(type_name, resource)
    return issues


def _error(code: str, message: str, path: str) -> Issue:
    return Issue("error", code, message, (path,))


def _category(type_name: str, resource: dict) -> list[Issue]:
    path = category_path(type_name)
    found = categories(type_name, resource)
    allowed = CATEGORIES_OF_TYPE[type_name]
    shown = ", ".join(f"{c} {CATEGORIES[c]}" for c in sorted(allowed, key=int))
    if any(not isinstance(c, dict) for c in category_concepts(type_name, resource)):
        return [_error("structure", "the category must be a CodeableConcept", path)]
    if not found:
        return [
            _error(
                "required",
                f"a Kjernejournal category ({CATEGORY}) is required: {type_name} holds {shown}",
                path,
            )
        ]
    if len(set(found)) > 1:
        return [_error("invalid", "an entry has one Kjernejournal category", path)]
    code = found[0]
    if code not in CATEGORIES:
        return [_error("code-invalid", f"{code!r} is not a Kjernejournal category", path)]
    if code not in allowed:
        return [
            _error(
                "invalid",
                f"category {code} ({CATEGORIES[code]}) is not held by "
                f"{type_name}; it holds {shown}",
                path,
            )
        ]
    if type_name == "AllergyIntolerance":
        own = resource.get("category")
        kinds = set(own) if isinstance(own, list) else set()
        fitting = ALLERGY_CATEGORIES[code]
        if not kinds or not kinds <= fitting:
            return [
                _error(
                    "invalid",
                    f"category {code} ({CATEGORIES[code]}) needs "
                    f"AllergyIntolerance.category {' or '.join(sorted(fitting))}",
                    "AllergyIntolerance.category",
                )
            ]
    return []


def _subject(type_name: str, resource: dict) -> list[Issue]:
    element = LAYOUTS[type_name].subject
    path = f"{type_name}.{element}"
    reference = resource.get(element)
    if not isinstance(reference, dict) or "reference" not in reference:
        return [_error("required", "the patient is required (a reference to a Patient)", path)]
    value = reference.get("reference")
    if not isinstance(value, str) or not PATIENT_REFERENCE.match(value):
        return [_error("invalid", "the patient must be a reference Patient/<id>", path)]
    return []


def _recorder(type_name: str, resource: dict, allow_synthetic: bool) -> list[Issue]:
    element = LAYOUTS[type_name].recorder
    path = f"{type_name}.{element}"
    reference = resource.get(element)
    if not isinstance(reference, dict) or reference.get("reference") != f"#{RECORDER_ID}":
        return [
            _error(
                "required",
                f"who registered it is required: {element} must "
                f"reference the contained PractitionerRole #{RECORDER_ID}",
                path,
            )
        ]
    role = contained(resource, RECORDER_ID)
    role_path = f"{type_name}.contained.where(id = '{RECORDER_ID}')"
    if role is None or role.get("resourceType") != "PractitionerRole":
        return [
            _error(
                "required", f"the contained PractitionerRole #{RECORDER_ID} is missing", role_path
            )
        ]
    issues = []
    for part, systems, what in (
        ("practitioner", frozenset({HPR_SYSTEM}), "the health worker's HPR number"),
        ("organization", ORGNR_SYSTEMS, "the organisation's number"),
    ):
        where = f"{role_path}.{part}.identifier"
        reference = role.get(part)
        identifier = reference.get("identifier") if isinstance(reference, dict) else None
        if not isinstance(identifier, dict) or identifier.get("system") not in systems:
            issues.append(
                _error(
                    "required",
                    f"{what} is required (identifier system {' or '.join(sorted(systems))})",
                    where,
                )
            )
            continue
        problem = identifier_error(
            identifier["system"], identifier.get("value"), allow_synthetic=allow_synthetic
        )
        if problem is not None:
            issues.append(_error("value", problem, f"{where}.value"))
    return issues


def _recorded(type_name: str, resource: dict) -> list[Issue]:
    element = LAYOUTS[type_name].recorded
    if element is not None:
        if not isinstance(resource.get(element), str):
            return [
                _error("required", "when it was registered is required", f"{type_name}.{element}")
            ]
        return []
    path = f"{type_name}.extension('{RECORDED_EXTENSION}')"
    values = [e.get("valueDateTime") for e in extensions(resource, RECORDED_EXTENSION)]
    if len(values) != 1 or not isinstance(values[0], str):
        return [_error("required", "when it was registered is required (one valueDateTime)", path)]
    return []


def _source(type_name: str, resource: dict) -> list[Issue]:
    path = f"{type_name}.extension('{SOURCE_EXTENSION}')"
    found = extensions(resource, SOURCE_EXTENSION)
    if len(found) != 1:
        return [
            _error(
                "required",
                f"the source of the information is required (one valueCoding in {SOURCE})",
                path,
            )
        ]
    coding = found[0].get("valueCoding")
    if not isinstance(coding, dict) or coding.get("system") != SOURCE:
        return [_error("required", f"the source must be a valueCoding in {SOURCE}", path)]
    if coding.get("code") not in SOURCES:
        return [
            _error(
                "code-invalid",
                f"{coding.get('code')!r} is not a source of information ({', '.join(SOURCES)})",
                path,
            )
        ]
    return []


def _verification(type_name: str, resource: dict) -> list[Issue]:
    system = LAYOUTS[type_name].verification
    if system is not None:
        path = f"{type_name}.verificationStatus"
        codes = [
            c.get("code")
            for c in codings(resource.get("verificationStatus"))
            if c.get("system") == system
        ]
        if not codes:
            return [
                _error(
                    "required", f"whether it is verified is required (a coding in {system})", path
                )
            ]
        if any(code not in VERIFICATION_CODES[system] for code in codes):
            allowed = ", ".join(sorted(VERIFICATION_CODES[system]))
            return [_error("code-invalid", f"the verification status is one of {allowed}", path)]
        return []
    path = f"{type_name}.extension('{VERIFIED_EXTENSION}')"
    values = [e.get("valueBoolean") for e in extensions(resource, VERIFIED_EXTENSION)]
    if len(values) != 1 or not isinstance(values[0], bool):
        return [_error("required", "whether it is verified is required (one valueBoolean)", path)]
    return []


def _code(type_name: str, resource: dict) -> list[Issue]:
    element = LAYOUTS[type_name].code
    if element is None:
        return []
    concept: Any = resource.get(element)
    if not isinstance(concept, dict) or not (codings(concept) or concept.get("text")):
        return [
            _error(
                "required",
                "what it is about is required (a coding or a text)",
                f"{type_name}.{element}",
            )
        ]
    return []
