"""The search-expression FHIRPath compiler, unit-tested and cross-checked against fhirpathpy."""

from __future__ import annotations

import copy
import json
import re
from decimal import Decimal
from functools import cache

import fhirpathpy
import fhirpathpy.models
import pytest

from samhandling.platform.fhir.definitions import search_parameters, search_parameters_for
from samhandling.platform.fhir.fhirpath import UnsupportedExpression, compile_expression
from samhandling.synth import care_providers_bundle, patient_bundle

R4 = fhirpathpy.models.models["r4"]


# ---------------------------------------------------------------------------------------------
# Helpers


def _json_default(value: object) -> object:
    return float(value) if isinstance(value, Decimal) else str(value)


def _normalise(values: list) -> list:
    """JSON-comparable form: fhirpathpy returns copies with Decimal numbers, may return FHIR
    date/time objects (compared by their string form)."""
    out = []
    for value in values:
        if isinstance(value, dict):
            # complex values are compared without companions (see _without_companions)
            out.append(_without_companions(value))
        elif isinstance(value, list | bool | str | int | float | Decimal) or value is None:
            out.append(value)
        else:
            out.append(str(value))
    return json.loads(json.dumps(out, default=_json_default))


def _without_companions(value: object) -> object:
    """Drop ``_x`` primitive-extension companions and JSON nulls in arrays.

    Justified exception: fhirpathpy merges ``_given`` into ``given`` and returns the null
    placeholders and the companion objects as values; the compiler by design ignores
    companions and skips nulls (the brief's contract for search indexing).
    """
    if isinstance(value, dict):
        return {k: _without_companions(v) for k, v in value.items() if not k.startswith("_")}
    if isinstance(value, list):
        return [_without_companions(v) for v in value if v is not None]
    return value


_ABSTRACT_ROOT = re.compile(r"\b(?:Resource|DomainResource)\.")


_RESOLVE_IS = re.compile(r"\.where\(resolve\(\) is (\w+)\)")


def _reference_oracle(expression: str) -> str:
    """fhirpathpy does not implement ``resolve()`` ("Not implemented: resolve").

    Justified exception: ``where(resolve() is T)`` is rewritten into the documented rule of
    the compiler (a literal ``T/id`` reference, optionally ``/_history/vid``, possibly an
    absolute URL; contained ``#`` and ``urn:`` references never match), so that everything
    else in these expressions is still cross-checked.
    """
    return _RESOLVE_IS.sub(
        lambda m: (
            ".where(reference.matches('^(?!#|urn:)(.*/)?"
            + m.group(1)
            + "/[^/]+(/_history/[^/]+)?$'))"
        ),
        expression,
    )


_AS_OPERATOR = re.compile(r"\s+as\s+(\w+)\)")


def _fhirpathpy(resource: dict, expression: str) -> list:
    expression = _reference_oracle(expression)
    # Justified exception: fhirpathpy compares a leading type name with resourceType exactly,
    # so `Resource.id` is empty on a Patient; the spec's Resource/DomainResource parameters
    # apply to every resource, so the oracle gets the concrete type name instead.
    expression = _ABSTRACT_ROOT.sub(resource.get("resourceType", "Resource") + ".", expression)
    resource = _without_companions(resource)  # type: ignore[assignment]
    try:
        return _normalise(fhirpathpy.evaluate(resource, expression, model=R4))
    except ValueError as error:
        if "Expected singleton on left side of 'as'" not in str(error):
            raise
    # Justified exception: fhirpathpy applies the strict FHIRPath rule that the `as` operator
    # needs a single input, so `(Observation.component.value as Quantity)` fails on an
    # Observation with two components. R4 search parameters rely on the lenient reading (R5
    # rewrote them with ofType()), which is what the compiler does, so the oracle is asked
    # the same question with `X.ofType(T)`, only for inputs where fhirpathpy refused.
    return _normalise(
        fhirpathpy.evaluate(resource, _AS_OPERATOR.sub(r".ofType(\1))", expression), model=R4)
    )


def _ours(resource: dict, expression: str) -> list:
    return _normalise(compile_expression(expression)(resource))


def _server_side(bundle: dict) -> list[dict]:
    """The bundle's resources with ``urn:uuid`` references rewritten to ``Type/id``."""
    ids: dict[str, str] = {}
    resources = []
    for index, entry in enumerate(bundle["entry"]):
        resource = copy.deepcopy(entry["resource"])
        resource.setdefault("id", f"r{index}")
        if "fullUrl" in entry:
            ids[entry["fullUrl"]] = f"{resource['resourceType']}/{resource['id']}"
        resources.append(resource)

    def rewrite(value: object) -> None:
        if isinstance(value, dict):
            for key, item in value.items():
                if key == "reference" and isinstance(item, str) and item in ids:
                    value[key] = ids[item]
                else:
                    rewrite(item)
        elif isinstance(value, list):
            for item in value:
                rewrite(item)

    rewrite(resources)
    return resources


HAND_WRITTEN: list[dict] = [
    {
        "resourceType": "Patient",
        "id": "p1",
        "extension": [
            {"url": "http://example.org/a", "valueString": "A"},
            {"url": "http://example.org/b", "valueCodeableConcept": {"text": "B"}},
        ],
        "name": [{"given": ["Kari", None, "Anne"], "_given": [None, {"id": "x"}, None]}],
        "telecom": [
            {"system": "phone", "value": "1"},
            {"system": "email", "value": "e@x"},
            {"system": "phone", "value": "2"},
        ],
        "deceasedDateTime": "2020-01-01",
        "generalPractitioner": [
            {"reference": "Practitioner/d1"},
            {"reference": "http://other.example/fhir/Organization/o1/_history/3"},
        ],
        "link": [{"other": {"reference": "Patient/p2"}, "type": "seealso"}],
    },
    {
        "resourceType": "Observation",
        "id": "o1",
        "status": "final",
        "code": {"text": "bp"},
        "subject": {"reference": "http://example.org/fhir/Patient/p1"},
        "performer": [{"reference": "Practitioner/d1"}, {"reference": "#c1"}],
        "valueQuantity": {"value": 1.5, "unit": "mg", "system": "http://unitsofmeasure.org"},
        "effectivePeriod": {"start": "2020-01-01", "end": "2020-01-02"},
        "component": [
            {"code": {"text": "a"}, "valueQuantity": {"value": 120}},
            {"code": {"text": "b"}, "valueCodeableConcept": {"text": "high"}},
            {"code": {"text": "c"}, "valueString": "n/a"},
        ],
    },
    {
        "resourceType": "Observation",
        "id": "o2",
        "status": "final",
        "code": {"text": "note"},
        "subject": {"reference": "Group/g1"},
        "valueCodeableConcept": {"text": "positive", "coding": [{"code": "p"}]},
        "effectiveDateTime": "2021-05-06T07:08:09Z",
    },
    {
        "resourceType": "Condition",
        "id": "c1",
        "subject": {"reference": "Patient/p1/_history/2"},
        "onsetAge": {"value": 40, "unit": "a"},
        "abatementString": "in remission",
        "code": {"text": "x"},
    },
    {
        "resourceType": "MedicationRequest",
        "id": "m1",
        "status": "active",
        "intent": "order",
        "subject": {"reference": "Patient/p1"},
        "medicationReference": {"reference": "Medication/med1"},
    },
    {
        "resourceType": "ValueSet",
        "id": "v1",
        "status": "active",
        "useContext": [
            {"code": {"code": "age"}, "valueQuantity": {"value": 18}},
            {"code": {"code": "focus"}, "valueCodeableConcept": {"text": "f"}},
            {"code": {"code": "age"}, "valueRange": {"low": {"value": 1}}},
        ],
    },
    {
        "resourceType": "Group",
        "id": "g1",
        "type": "person",
        "actual": True,
        "characteristic": [
            {"code": {"text": "a"}, "valueBoolean": True, "exclude": False},
            {"code": {"text": "b"}, "valueCodeableConcept": {"text": "c"}, "exclude": True},
        ],
    },
    {
        "resourceType": "Appointment",
        "id": "a1",
        "status": "booked",
        "participant": [
            {"actor": {"reference": "Patient/p1"}, "status": "accepted"},
            {"actor": {"reference": "Location/l1"}, "status": "accepted"},
            {"actor": {"reference": "Practitioner/d1"}, "status": "accepted"},
            {"actor": {"display": "no reference"}, "status": "accepted"},
        ],
    },
    {
        "resourceType": "Library",
        "id": "lib1",
        "status": "active",
        "type": {"text": "x"},
        "relatedArtifact": [
            {"type": "depends-on", "resource": "http://example.org/Library/a"},
            {"type": "composed-of", "resource": "http://example.org/Library/b"},
            {"type": "depends-on", "resource": "http://example.org/Library/c"},
        ],
    },
    {
        "resourceType": "Bundle",
        "id": "b1",
        "type": "document",
        "identifier": {"value": "doc-1"},
        "entry": [
            {"resource": {"resourceType": "Composition", "id": "comp1", "title": "T"}},
            {"resource": {"resourceType": "Patient", "id": "p9"}},
        ],
    },
    {
        "resourceType": "ConceptMap",
        "id": "cm1",
        "status": "active",
        "sourceUri": "http://example.org/vs1",
        "targetCanonical": "http://example.org/vs2",
    },
    {
        "resourceType": "Goal",
        "id": "goal1",
        "lifecycleStatus": "active",
        "description": {"text": "d"},
        "subject": {"reference": "Patient/p1"},
        "startDate": "2020-02-02",
        "target": [{"dueDate": "2021-01-01"}, {"dueDuration": {"value": 3}}],
    },
    {
        "resourceType": "Composition",
        "id": "comp2",
        "status": "final",
        "type": {"text": "t"},
        "date": "2020-01-01",
        "title": "t",
        "author": [{"reference": "Practitioner/d1"}],
        "relatesTo": [
            {"code": "replaces", "targetIdentifier": {"value": "old"}},
            {"code": "appends", "targetReference": {"reference": "Composition/c0"}},
        ],
    },
    {
        "resourceType": "InsurancePlan",
        "id": "ip1",
        "name": "Plan",
        "alias": ["Plan", "Other"],
    },
    {
        "resourceType": "Person",
        "id": "per1",
        "telecom": [{"system": "email", "value": "p@x"}],
        "link": [
            {"target": {"reference": "Patient/p1"}},
            {"target": {"reference": "RelatedPerson/rp1"}},
            {"target": {"reference": "Practitioner/d1"}},
        ],
    },
]


@cache
def _corpus() -> tuple[dict, ...]:
    patients = patient_bundle(0)
    providers = care_providers_bundle()
    resources = [entry["resource"] for entry in patients["entry"] + providers["entry"]]
    resources += _server_side(patients) + _server_side(providers)
    return tuple(resources + HAND_WRITTEN)


def _supported_parameters(resource_type: str) -> list[tuple[str, str]]:
    found = []
    for code, parameter in search_parameters_for(resource_type).items():
        if parameter.expression is None:
            continue
        try:
            compile_expression(parameter.expression)
        except UnsupportedExpression:
            continue
        found.append((code, parameter.expression))
    return found


# ---------------------------------------------------------------------------------------------
# Coverage of the specification's expressions


def test_compiles_nearly_all_search_parameter_expressions():
    compiled = 0
    unsupported = []
    for parameter in search_parameters():
        if parameter.expression is None:
            unsupported.append(parameter.code)
            continue
        try:
            compile_expression(parameter.expression)
            compiled += 1
        except UnsupportedExpression:
            unsupported.append(parameter.code)
    # 1375 parameters: 3 have no expression (_text, _content, _query) and one uses
    # `and` / `!=` (Patient.deceased.exists() and Patient.deceased != false).
    assert compiled >= 1371
    assert sorted(unsupported) == ["_content", "_query", "_text", "deceased"]


# ---------------------------------------------------------------------------------------------
# Cross-check against fhirpathpy


def test_cross_check_with_fhirpathpy_on_corpus():
    checked = 0
    non_empty = 0
    mismatches = []
    for resource in _corpus():
        for code, expression in _supported_parameters(resource["resourceType"]):
            expected = _fhirpathpy(resource, expression)
            actual = _ours(resource, expression)
            checked += 1
            non_empty += bool(actual)
            if actual != expected:
                mismatches.append((resource["resourceType"], code, expression, actual, expected))
    assert mismatches == []
    assert checked > 3000
    assert non_empty > 900


def test_cross_check_covers_constructs():
    """The corpus exercises the interesting constructs with non-empty results."""
    seen = set()
    for resource in _corpus():
        for _code, expression in _supported_parameters(resource["resourceType"]):
            if not _ours(resource, expression):
                continue
            for marker in ("resolve()", " as ", ".as(", "where(system", "where(type", "[0]"):
                if marker in expression:
                    seen.add(marker)
    assert seen == {"resolve()", " as ", ".as(", "where(system", "where(type", "[0]"}


# ---------------------------------------------------------------------------------------------
# Unit tests per construct

PATIENT = HAND_WRITTEN[0]
OBSERVATION = HAND_WRITTEN[1]


def test_path_flattens_arrays_and_skips_nulls():
    assert compile_expression("Patient.name.given")(PATIENT) == ["Kari", "Anne"]
    assert compile_expression("Patient.name.given")(OBSERVATION) == []
    assert compile_expression("Patient.birthDate")(PATIENT) == []


def test_leading_type_filters_on_resource_type():
    evaluate = compile_expression("Patient.id | Observation.status")
    assert evaluate(PATIENT) == ["p1"]
    assert evaluate(OBSERVATION) == ["final"]
    assert evaluate({"resourceType": "Encounter", "id": "e"}) == []
    assert evaluate({"no": "type"}) == []
    assert compile_expression("Resource.id")(OBSERVATION) == ["o1"]
    assert compile_expression("DomainResource.id")(HAND_WRITTEN[9]) == []  # a Bundle


def test_relative_root_path():
    assert compile_expression("name | alias")(HAND_WRITTEN[13]) == ["Plan", "Other"]


def test_union_removes_duplicates():
    evaluate = compile_expression("Patient.telecom.system | Patient.telecom.system")
    assert evaluate(PATIENT) == ["phone", "email"]


def test_choice_element():
    assert compile_expression("Observation.value")(OBSERVATION) == [OBSERVATION["valueQuantity"]]
    assert compile_expression("Observation.effective")(HAND_WRITTEN[2]) == ["2021-05-06T07:08:09Z"]
    values = compile_expression("Observation.component.value")(OBSERVATION)
    assert values == [{"value": 120}, {"text": "high"}, "n/a"]


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("(Observation.value as Quantity)", [1.5]),
        ("Observation.value.as(Quantity)", [1.5]),
        ("Observation.value.ofType(Quantity)", [1.5]),
        ("(Observation.value as CodeableConcept)", []),
        ("(Observation.component.value as Quantity)", [120]),
    ],
)
def test_type_filters(expression, expected):
    assert [v["value"] for v in compile_expression(expression)(OBSERVATION)] == expected


def test_type_filter_then_child():
    evaluate = compile_expression(
        "(Observation.value as string) | (Observation.value as CodeableConcept).text"
    )
    assert evaluate(HAND_WRITTEN[2]) == ["positive"]
    assert compile_expression("Observation.effective.ofType(dateTime)")(HAND_WRITTEN[2]) == [
        "2021-05-06T07:08:09Z"
    ]
    assert compile_expression("Condition.onset.as(Age)")(HAND_WRITTEN[3]) == [
        {"value": 40, "unit": "a"}
    ]


@pytest.mark.parametrize(
    ("reference", "matches"),
    [
        ("Patient/p1", True),
        ("Patient/p1/_history/2", True),
        ("http://example.org/fhir/Patient/p1", True),
        ("http://example.org/fhir/Patient/p1/_history/2", True),
        ("Group/g1", False),
        ("Patient/", False),
        ("#p1", False),
        ("urn:uuid:6a0e5f7d-a05d-490c-a646-0a1417cbbde8", False),
        (None, False),
    ],
)
def test_where_resolve_is(reference, matches):
    subject = {} if reference is None else {"reference": reference}
    observation = {"resourceType": "Observation", "subject": subject}
    expected = [subject] if matches else []
    assert (
        compile_expression("Observation.subject.where(resolve() is Patient)")(observation)
        == expected
    )


def test_where_equality():
    phones = compile_expression("Patient.telecom.where(system='phone')")(PATIENT)
    assert [t["value"] for t in phones] == ["1", "2"]
    assert compile_expression("Patient.telecom.where(system = 'fax')")(PATIENT) == []
    library = HAND_WRITTEN[8]
    evaluate = compile_expression("Library.relatedArtifact.where(type='depends-on').resource")
    assert evaluate(library) == ["http://example.org/Library/a", "http://example.org/Library/c"]
    evaluate = compile_expression("Group.characteristic.where(exclude = true).code.text")
    assert evaluate(HAND_WRITTEN[6]) == ["b"]


def test_exists_and_first():
    assert compile_expression("Patient.telecom.exists()")(PATIENT) == [True]
    assert compile_expression("Patient.photo.exists()")(PATIENT) == [False]
    assert compile_expression("Patient.telecom.value.first()")(PATIENT) == ["1"]
    assert compile_expression("Bundle.entry[0].resource")(HAND_WRITTEN[9]) == [
        {"resourceType": "Composition", "id": "comp1", "title": "T"}
    ]


@pytest.mark.parametrize(
    "expression",
    [
        "Patient.extension('http://example.org/a').value",
        "Patient.extension.where(url = 'http://example.org/b').value",
        "Patient.extension('http://example.org/b').value.text",
        "Patient.extension('http://example.org/none').value",
        "Patient.extension.where(url='http://example.org/a').exists()",
    ],
)
def test_extensions_match_fhirpathpy(expression):
    assert _ours(PATIENT, expression) == _fhirpathpy(PATIENT, expression)
    assert _ours(PATIENT, expression) or "none" in expression


@pytest.mark.parametrize(
    "expression",
    [
        "Patient.deceased.exists() and Patient.deceased != false",
        "Patient.name.given.count()",
        "Patient.name.where(given.exists())",
        "Patient.name.given[",
        "Patient.nosuchelement",
        "resolve()",
        "Patient.name.given + 'x'",
        "%resource.id",
        "Observation.value as FHIR.Quantity",
        "Patient.name.where(family = given)",
    ],
)
def test_unsupported_raises_at_compile_time(expression):
    with pytest.raises(UnsupportedExpression):
        compile_expression(expression)


def test_compiled_closures_are_cached():
    assert compile_expression("Patient.name") is compile_expression("Patient.name")
