"""Resource validation: structure (R4 JSON schema) and content rules, without a server."""

from __future__ import annotations

import pytest

from samhandling.platform.fhir.errors import FhirError
from samhandling.platform.fhir.validation import validate_resource


def _error(resource: object, resource_type: str = "Patient", **kwargs: str) -> FhirError:
    with pytest.raises(FhirError) as caught:
        validate_resource(resource, resource_type, **kwargs)
    return caught.value


def test_valid_resources_pass() -> None:
    observation = {
        "resourceType": "Observation",
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]},
        "subject": {"reference": "Patient/p1"},
        "effectiveDateTime": "2024-05-01T10:00:00+02:00",
        "valueQuantity": {
            "value": 72,
            "unit": "/min",
            "system": "http://unitsofmeasure.org",
            "code": "/min",
        },
        "contained": [{"resourceType": "Device", "id": "d1"}],
        "device": {"reference": "#d1"},
    }
    assert validate_resource(observation, "Observation") is observation


def test_unknown_property_points_at_it() -> None:
    error = _error({"resourceType": "Patient", "name": [{"family": "X", "nickname": "Y"}]})
    assert error.status == 400
    assert error.issues[0].code == "structure"
    assert error.issues[0].expression == ("Patient.name[0].nickname",)


def test_wrong_type_points_at_element() -> None:
    error = _error({"resourceType": "Patient", "birthDate": 1980})
    assert error.issues[0].expression == ("Patient.birthDate",)


def test_calendar_invalid_date_is_422() -> None:
    error = _error({"resourceType": "Patient", "birthDate": "2021-02-29"})
    assert error.status == 422
    assert error.issues[0].expression == ("Patient.birthDate",)


def test_dates_inside_extensions_and_contained_resources_are_checked() -> None:
    extension = {"url": "http://example.org/x", "valueDate": "2021-02-30"}
    error = _error({"resourceType": "Patient", "extension": [extension]})
    assert error.issues[0].expression == ("Patient.extension[0].valueDate",)
    contained = {"resourceType": "Patient", "id": "c", "birthDate": "2021-04-31"}
    error = _error(
        {"resourceType": "Observation", "status": "final", "code": {}, "contained": [contained]},
        "Observation",
    )
    assert error.issues[0].expression == ("Observation.contained[0].birthDate",)


@pytest.mark.parametrize(
    ("reference", "ok"),
    [
        ("Patient/123", True),
        ("Patient/123/_history/2", True),
        ("https://fhir.example.no/Patient/1", True),
        ("urn:uuid:5f0f3b35-7b0a-4a58-a26d-9c6f3a2b7e51", True),
        ("#contained", True),
        ("Patient", False),
        ("Patient/", False),
        ("Patient/has space", False),
        ("Foo/1", False),
        ("Medication/1", False),  # not an allowed target of Observation.subject
        ("", False),
    ],
)
def test_references(reference: str, ok: bool) -> None:
    observation = {
        "resourceType": "Observation",
        "status": "final",
        "code": {},
        "subject": {"reference": reference},
    }
    if ok:
        validate_resource(observation, "Observation")
    else:
        error = _error(observation, "Observation")
        assert error.issues[0].expression in (
            ("Observation.subject.reference",),
            ("Observation.subject",),
        )


def test_resource_type_and_id_must_match_url() -> None:
    assert _error({"resourceType": "Observation"}).issues[0].expression == ("resourceType",)
    assert _error({"resourceType": "Patient", "id": "a"}, id="b").status == 400
    assert _error({"resourceType": "Patient"}, id="b").issues[0].code == "required"
    assert _error([], "Patient").status == 400
