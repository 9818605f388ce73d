"""Validation of every resource written: R4 structure, ids, references, dates, meta.

Structure is checked with the official R4 JSON schema (jsonschema-rs, one compiled
validator per resource type). What the schema cannot express is checked by one typed walk:
calendar-valid dates, well-formed references to allowed target types.
"""

from __future__ import annotations

import re
from functools import cache

import jsonschema_rs
import orjson

from samhandling.platform.fhir.content import FhirDecimal, dumps
from samhandling.platform.fhir.datetimes import is_calendar_valid
from samhandling.platform.fhir.definitions import is_resource_type, json_schema
from samhandling.platform.fhir.errors import FhirError, Issue
from samhandling.platform.fhir.ids import is_valid_id
from samhandling.platform.fhir.walk import find

MAX_REPORTED_ISSUES = 20
_DATE_TYPES = frozenset({"date", "dateTime", "instant"})
_INTEGER_TYPES = frozenset({"integer", "positiveInt", "unsignedInt"})
_CHECKED_TYPES = _DATE_TYPES | _INTEGER_TYPES | {"Reference"}
_RELATIVE_REFERENCE = re.compile(
    r"(?P<type>[A-Z][A-Za-z]+)/(?P<id>[A-Za-z0-9\-.]{1,64})(?:/_history/[A-Za-z0-9\-.]{1,64})?"
)
_ABSOLUTE_REFERENCE = re.compile(
    r"(?:https?://\S+|urn:uuid:[0-9a-fA-F-]{36}|urn:oid:[0-2](?:\.\d+)+)"
)


def check_resource_type(resource_type: str) -> None:
    """404 unless ``resource_type`` is a concrete R4 resource type."""
    if not is_resource_type(resource_type):
        raise FhirError.of(404, "not-supported", f"unknown resource type {resource_type!r}")


def check_id(id: str) -> None:
    """400 unless ``id`` is a valid FHIR id."""
    if not is_valid_id(id):
        raise FhirError.of(
            400, "invalid", f"{id!r} is not a valid resource id ([A-Za-z0-9-.]{{1,64}})"
        )


def validate_resource(resource: object, resource_type: str, *, id: str | None = None) -> dict:
    """Check a resource about to be written as ``resource_type`` (and, for update, ``id``).

    Returns the resource; raises FhirError 400 (structure) or 422 (content rules).
    """
    if not isinstance(resource, dict):
        raise FhirError.of(400, "structure", "the body must be a JSON object (a FHIR resource)")
    declared = resource.get("resourceType")
    if declared != resource_type:
        raise FhirError.of(
            400,
            "invalid",
            f"resourceType {declared!r} does not match {resource_type!r} in the URL",
            "resourceType",
        )
    if id is not None:
        if "id" not in resource:
            raise FhirError.of(
                400, "required", "an update must carry the resource id", f"{resource_type}.id"
            )
        if resource["id"] != id:
            raise FhirError.of(
                400,
                "invalid",
                f"id {resource['id']!r} in the body does not match {id!r} in the URL",
                f"{resource_type}.id",
            )
    _check_structure(resource, resource_type)
    _check_content(resource)
    return resource


@cache
def _validator(resource_type: str) -> jsonschema_rs.Draft6Validator:
    schema = json_schema()
    return jsonschema_rs.Draft6Validator(
        {"$ref": f"#/definitions/{resource_type}", "definitions": schema["definitions"]}
    )


def _check_structure(resource: dict, resource_type: str) -> None:
    validator = _validator(resource_type)
    try:
        if validator.is_valid(resource):
            return
    except ValueError:  # jsonschema-rs refuses float subclasses outside number positions
        pass
    if _has_decimals(resource):
        # jsonschema-rs does not take FhirDecimal (a float subclass): check a plain copy
        resource = orjson.loads(dumps(resource))
        if validator.is_valid(resource):
            return
    issues = []
    for error in validator.iter_errors(resource):
        expression = _expression(resource_type, error.instance_path)
        kind = error.kind
        if isinstance(kind, jsonschema_rs.ValidationErrorKind.AdditionalProperties):
            expression += f".{kind.unexpected[0]}"
        elif isinstance(kind, jsonschema_rs.ValidationErrorKind.Required):
            expression += f".{kind.property}"
        issues.append(Issue("error", "structure", error.message, (expression,)))
        if len(issues) >= MAX_REPORTED_ISSUES:
            break
    raise FhirError(400, issues)


def _has_decimals(value: object) -> bool:
    if isinstance(value, FhirDecimal):
        return True
    if isinstance(value, dict):
        return any(_has_decimals(v) for v in value.values())
    if isinstance(value, list):
        return any(_has_decimals(v) for v in value)
    return False


def _expression(resource_type: str, instance_path: list) -> str:
    expression = resource_type
    for step in instance_path:
        expression += f"[{step}]" if isinstance(step, int) else f".{step}"
    return expression


def _check_content(resource: dict) -> None:
    """Rules the schema cannot express; a JSON-form problem is 400, a content problem 422."""
    issues: list[Issue] = []
    status = 422
    for node in find(resource, _CHECKED_TYPES):
        element_type, value = node.element.type, node.value
        if element_type in _DATE_TYPES:
            if isinstance(value, str) and not is_calendar_valid(value):
                message = f"{value!r} is not a valid {element_type}"
                issues.append(Issue("error", "value", message, (node.path,)))
        elif element_type in _INTEGER_TYPES:
            # the schema's "integer" accepts 2.0; FHIR JSON writes integers without a fraction
            if isinstance(value, float):
                message = f"{element_type} must be written without a fraction"
                issues.append(Issue("error", "structure", message, (node.path,)))
                status = 400
        elif element_type == "Reference" and isinstance(value, dict):
            problem = _reference_problem(value.get("reference"), node.element.targets)
            if problem:
                issues.append(Issue("error", "value", problem, (f"{node.path}.reference",)))
        if len(issues) >= MAX_REPORTED_ISSUES:
            break
    if issues:
        raise FhirError(status, issues)


def _reference_problem(reference: object, targets: tuple[str, ...]) -> str | None:
    if reference is None:
        return None
    if not isinstance(reference, str) or not reference:
        return "a reference must be a non-empty string"
    if reference.startswith("#"):
        return None
    if _ABSOLUTE_REFERENCE.fullmatch(reference):
        return None
    match = _RELATIVE_REFERENCE.fullmatch(reference)
    if match is None:
        return (
            f"{reference!r} is not a valid reference: expected Type/id, an absolute URL, "
            "urn:uuid:, urn:oid: or #contained"
        )
    target = match["type"]
    if not is_resource_type(target):
        return f"{reference!r} refers to the unknown resource type {target!r}"
    if targets and target not in targets:
        return f"{reference!r} may not refer to {target} here (allowed: {', '.join(targets)})"
    return None
