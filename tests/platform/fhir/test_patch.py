"""FHIR PATCH engine: the official conformance cases plus unit and fuzz tests."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from samhandling.platform.fhir.patch import PatchError, apply_fhirpath_patch, apply_json_patch

CONFORMANCE = Path(__file__).resolve().parents[2] / "conformance" / "patch"
FHIR_CASES: list[dict] = json.loads((CONFORMANCE / "fhir-patch-tests.json").read_text())["cases"]
JSON_CASES: list[dict] = json.loads((CONFORMANCE / "json-patch-tests.json").read_text())


def _narrative_stripped(resource: dict) -> dict:
    """The derived JSON keeps the XML whitespace after </div> in `text.div` (see the README in
    tests/conformance/patch); whitespace around the XHTML root element is not content."""
    div = resource.get("text", {}).get("div")
    if not isinstance(div, str):
        return resource
    return {**resource, "text": {**resource["text"], "div": div.strip()}}


def op(type_: str, path: str, **parts: Any) -> dict:
    """A FHIRPath Patch `operation` parameter; `value` is given as the part's value[x] dict."""
    part = [{"name": "type", "valueCode": type_}, {"name": "path", "valueString": path}]
    for name, value in parts.items():
        if name == "value":
            part.append({"name": "value", **value})
        elif name == "name":
            part.append({"name": "name", "valueString": value})
        else:
            part.append({"name": name, "valueInteger": value})
    return {"name": "operation", "part": part}


def fhir_patch(resource: dict, *operations: dict) -> dict:
    return apply_fhirpath_patch(
        resource, {"resourceType": "Parameters", "parameter": list(operations)}
    )


# ---------------------------------------------------------------------------------------------
# conformance


def test_conformance_case_counts() -> None:
    assert len(FHIR_CASES) == 33
    assert len(JSON_CASES) == 16


@pytest.mark.parametrize("case", FHIR_CASES, ids=[c["name"] for c in FHIR_CASES])
def test_fhirpath_patch_conformance(case: dict) -> None:
    if "error" in case:
        with pytest.raises(PatchError):
            apply_fhirpath_patch(case["input"], case["diff"])
        return
    result = apply_fhirpath_patch(case["input"], case["diff"])
    assert _narrative_stripped(result) == _narrative_stripped(case["output"])
    if case["name"] != "Full Resource":  # only that case has the whitespace artefact
        assert result == case["output"]


@pytest.mark.parametrize("case", JSON_CASES, ids=[c["comment"] for c in JSON_CASES])
def test_json_patch_conformance(case: dict) -> None:
    if "error" in case:
        with pytest.raises(PatchError):
            apply_json_patch(case["doc"], case["patch"])
        return
    assert apply_json_patch(case["doc"], case["patch"]) == case["expected"]


# ---------------------------------------------------------------------------------------------
# inputs are never mutated and never shared with the result


@pytest.mark.parametrize("case", FHIR_CASES, ids=[c["name"] for c in FHIR_CASES])
def test_fhirpath_patch_leaves_inputs_alone(case: dict) -> None:
    resource, diff = copy.deepcopy(case["input"]), copy.deepcopy(case["diff"])
    try:
        result = apply_fhirpath_patch(resource, diff)
    except PatchError:
        result = None
    assert resource == case["input"]
    assert diff == case["diff"]
    if result is not None:
        _scribble(result)
        assert resource == case["input"]
        assert diff == case["diff"]


@pytest.mark.parametrize("case", JSON_CASES, ids=[c["comment"] for c in JSON_CASES])
def test_json_patch_leaves_inputs_alone(case: dict) -> None:
    doc, patch = copy.deepcopy(case["doc"]), copy.deepcopy(case["patch"])
    try:
        result = apply_json_patch(doc, patch)
    except PatchError:
        result = None
    assert doc == case["doc"]
    assert patch == case["patch"]
    if result is not None:
        _scribble(result)
        assert doc == case["doc"]
        assert patch == case["patch"]


def test_json_patch_result_shares_nothing_with_patch_values() -> None:
    patch = [
        {"op": "add", "path": "/a", "value": {"b": []}},
        {"op": "add", "path": "/a/b/-", "value": 1},
    ]
    original = copy.deepcopy(patch)
    result = apply_json_patch({}, patch)
    assert result == {"a": {"b": [1]}}
    assert patch == original
    _scribble(result)
    assert patch == original


def test_fhirpath_patch_result_shares_nothing_with_patch_values() -> None:
    value = {"valueIdentifier": {"system": "s", "value": "v"}}
    params = {
        "resourceType": "Parameters",
        "parameter": [op("add", "Patient", name="identifier", value=value)],
    }
    original = copy.deepcopy(params)
    result = apply_fhirpath_patch({"resourceType": "Patient"}, params)
    _scribble(result)
    assert params == original


def _scribble(value: Any) -> None:
    """Mutate every dict and list inside `value`."""
    if isinstance(value, dict):
        for item in list(value.values()):
            _scribble(item)
        value["scribbled"] = True
    elif isinstance(value, list):
        for item in value:
            _scribble(item)
        value.append("scribbled")


# ---------------------------------------------------------------------------------------------
# FHIRPath Patch behaviour


PATIENT = {
    "resourceType": "Patient",
    "birthDate": "1920-01-01",
    "_birthDate": {"extension": [{"url": "http://example.org/time", "valueTime": "10:00:00"}]},
    "name": [
        {
            "given": ["Anne", "Berit", "Cecilie"],
            "_given": [
                None,
                {"extension": [{"url": "http://example.org/x", "valueString": "x"}]},
                None,
            ],
        }
    ],
    "identifier": [{"system": "urn:a", "value": "1"}, {"system": "urn:b", "value": "2"}],
    "deceasedBoolean": False,
}


def test_replace_matching_several_elements_is_an_error() -> None:
    with pytest.raises(PatchError) as info:
        fhir_patch(PATIENT, op("replace", "Patient.identifier.value", value={"valueString": "x"}))
    assert "2 elements" in info.value.message
    assert info.value.expression == "Parameters.parameter[0]"


def test_replace_single_match_of_a_filter() -> None:
    result = fhir_patch(
        PATIENT,
        op(
            "replace",
            "Patient.identifier.where(system = 'urn:b').value",
            value={"valueString": "9"},
        ),
    )
    assert result["identifier"] == [
        {"system": "urn:a", "value": "1"},
        {"system": "urn:b", "value": "9"},
    ]


def test_delete_primitive_removes_its_extension_companion() -> None:
    result = fhir_patch(PATIENT, op("delete", "Patient.birthDate"))
    assert "birthDate" not in result
    assert "_birthDate" not in result


def test_delete_primitive_list_item_keeps_companion_aligned() -> None:
    result = fhir_patch(PATIENT, op("delete", "Patient.name[0].given[0]"))
    assert result["name"][0]["given"] == ["Berit", "Cecilie"]
    assert result["name"][0]["_given"] == [PATIENT["name"][0]["_given"][1], None]
    result = fhir_patch(PATIENT, op("delete", "Patient.name[0].given[1]"))
    assert result["name"][0] == {"given": ["Anne", "Cecilie"]}


def test_replace_primitive_replaces_the_whole_element() -> None:
    result = fhir_patch(
        PATIENT, op("replace", "Patient.birthDate", value={"valueDate": "1930-01-01"})
    )
    assert result["birthDate"] == "1930-01-01"
    assert "_birthDate" not in result
    extension = {"extension": [{"url": "http://example.org/y", "valueString": "y"}]}
    value = {"valueDate": "1930-01-01", "_valueDate": extension}
    result = fhir_patch(PATIENT, op("replace", "Patient.birthDate", value=value))
    assert result["_birthDate"] == extension


def test_delete_of_nothing_is_a_no_op() -> None:
    assert fhir_patch(PATIENT, op("delete", "Patient.gender")) == PATIENT
    assert fhir_patch(PATIENT, op("delete", "Patient.identifier.where(system = 'none')")) == PATIENT


def test_delete_matching_several_elements_is_an_error() -> None:
    with pytest.raises(PatchError):
        fhir_patch(PATIENT, op("delete", "Patient.identifier"))


def test_delete_last_list_item_removes_the_list() -> None:
    result = fhir_patch(
        PATIENT, op("delete", "Patient.identifier[0]"), op("delete", "Patient.identifier[0]")
    )
    assert "identifier" not in result


def test_choice_elements() -> None:
    result = fhir_patch(
        PATIENT, op("replace", "Patient.deceased", value={"valueDateTime": "2020-01-01"})
    )
    assert result["deceasedDateTime"] == "2020-01-01"
    assert "deceasedBoolean" not in result
    result = fhir_patch(
        PATIENT, op("add", "Patient", name="multipleBirth", value={"valueInteger": 2})
    )
    assert result["multipleBirthInteger"] == 2
    with pytest.raises(PatchError):  # already has a value
        fhir_patch(PATIENT, op("add", "Patient", name="deceased", value={"valueBoolean": True}))


def test_add_creates_lists_for_repeating_elements_only() -> None:
    patient = {"resourceType": "Patient"}
    result = fhir_patch(
        patient,
        op("add", "Patient", name="telecom", value={"valueContactPoint": {"value": "1"}}),
        op("add", "Patient", name="gender", value={"valueCode": "other"}),
        op(
            "add",
            "Patient",
            name="meta",
            value={"part": [{"name": "tag", "valueCoding": {"code": "t"}}]},
        ),
    )
    assert result == {
        "resourceType": "Patient",
        "telecom": [{"value": "1"}],
        "gender": "other",
        "meta": {"tag": [{"code": "t"}]},
    }


def test_add_to_existing_single_element_is_an_error() -> None:
    with pytest.raises(PatchError):
        fhir_patch(
            PATIENT, op("add", "Patient", name="birthDate", value={"valueDate": "2000-01-01"})
        )


def test_add_extension_to_primitive_goes_to_companion() -> None:
    extension = {"url": "http://example.org/z", "valueString": "z"}
    result = fhir_patch(
        PATIENT,
        op("add", "Patient.birthDate", name="extension", value={"valueExtension": extension}),
    )
    assert result["_birthDate"]["extension"][-1] == extension
    result = fhir_patch(
        PATIENT,
        op(
            "add", "Patient.name[0].given[2]", name="extension", value={"valueExtension": extension}
        ),
    )
    assert result["name"][0]["_given"][2] == {"extension": [extension]}


def test_insert_and_move_keep_primitive_companions_aligned() -> None:
    result = fhir_patch(
        PATIENT, op("insert", "Patient.name[0].given", index=0, value={"valueString": "Z"})
    )
    assert result["name"][0]["given"] == ["Z", "Anne", "Berit", "Cecilie"]
    assert result["name"][0]["_given"][2] == PATIENT["name"][0]["_given"][1]
    result = fhir_patch(PATIENT, op("move", "Patient.name[0].given", source=1, destination=0))
    assert result["name"][0]["given"] == ["Berit", "Anne", "Cecilie"]
    assert result["name"][0]["_given"][0] == PATIENT["name"][0]["_given"][1]


def test_insert_into_missing_list_at_zero() -> None:
    result = fhir_patch(
        PATIENT,
        op("insert", "Patient.telecom", index=0, value={"valueContactPoint": {"value": "1"}}),
    )
    assert result["telecom"] == [{"value": "1"}]


@pytest.mark.parametrize(
    "operation",
    [
        op("insert", "Patient.identifier", index=3, value={"valueIdentifier": {"value": "3"}}),
        op("move", "Patient.identifier", source=2, destination=0),
        op("move", "Patient.identifier", source=0, destination=2),
        op(
            "insert",
            "Patient.identifier.where(value = '1')",
            index=0,
            value={"valueIdentifier": {}},
        ),
        op("insert", "Patient.birthDate", index=0, value={"valueDate": "2000-01-01"}),
        op("insert", "Patient.gender", index=0, value={"valueCode": "other"}),
        op("move", "Patient.telecom", source=0, destination=0),
    ],
)
def test_insert_and_move_errors(operation: dict) -> None:
    with pytest.raises(PatchError):
        fhir_patch(PATIENT, operation)


def test_narrative_div_path() -> None:
    patient = {"resourceType": "Patient", "text": {"status": "generated", "div": "<div>a</div>"}}
    result = fhir_patch(
        patient, op("replace", "Patient.text.div", value={"valueString": "<div>b</div>"})
    )
    assert result["text"]["div"] == "<div>b</div>"


def test_contained_resources() -> None:
    patient = {
        "resourceType": "Patient",
        "contained": [{"resourceType": "Observation", "id": "o", "valueQuantity": {"value": 1}}],
    }
    result = fhir_patch(
        patient, op("replace", "Patient.contained[0].value.value", value={"valueDecimal": 2})
    )
    assert result["contained"][0]["valueQuantity"] == {"value": 2}
    new = {"resourceType": "Organization", "id": "org"}
    result = fhir_patch(patient, op("add", "Patient", name="contained", value={"resource": new}))
    assert result["contained"][1] == new


def test_operations_apply_in_order_and_atomically() -> None:
    resource = copy.deepcopy(PATIENT)
    with pytest.raises(PatchError) as info:
        fhir_patch(
            resource,
            op("delete", "Patient.birthDate"),
            op("replace", "Patient.gender", value={"valueCode": "x"}),
        )
    assert info.value.expression == "Parameters.parameter[1]"
    assert resource == PATIENT


@pytest.mark.parametrize(
    "path",
    [
        "Patient.name.where(",
        "Patient.(",
        "Patient..name",
        "Patient.name )",
        "`unterminated",
        "Patient.unknownFunction()",
        "1 +",
        "Patient.name.exists()",
        "'a literal'",
        "Patient",
    ],
)
def test_bad_paths_raise_patch_error(path: str) -> None:
    with pytest.raises(PatchError):
        fhir_patch(PATIENT, op("replace", path, value={"valueString": "x"}))


# ---------------------------------------------------------------------------------------------
# malformed patch documents


GARBAGE_PARAMETERS: list[Any] = [
    None,
    [],
    "Parameters",
    {"resourceType": "Patient"},
    {"resourceType": "Parameters", "parameter": {}},
    {"resourceType": "Parameters", "parameter": [1]},
    {"resourceType": "Parameters", "parameter": [{"name": "other", "part": []}]},
    {"resourceType": "Parameters", "parameter": [{"name": "operation"}]},
    {
        "resourceType": "Parameters",
        "parameter": [{"name": "operation", "part": [{"name": "type"}]}],
    },
    {"resourceType": "Parameters", "parameter": [op("explode", "Patient")]},
    {"resourceType": "Parameters", "parameter": [op("replace", "Patient.birthDate")]},
    {"resourceType": "Parameters", "parameter": [op("add", "Patient", value={"valueString": "x"})]},
    {
        "resourceType": "Parameters",
        "parameter": [op("insert", "Patient.identifier", index=-1, value={"valueIdentifier": {}})],
    },
    {"resourceType": "Parameters", "parameter": [op("move", "Patient.identifier", source=0)]},
    {
        "resourceType": "Parameters",
        "parameter": [
            {
                "name": "operation",
                "part": [
                    {"name": "type", "valueCode": "delete"},
                    {"name": "path", "valueInteger": 1},
                ],
            }
        ],
    },
    {
        "resourceType": "Parameters",
        "parameter": [
            {
                "name": "operation",
                "part": [
                    {"name": "type", "valueCode": "delete"},
                    {"name": "path", "valueString": ""},
                ],
            }
        ],
    },
    {
        "resourceType": "Parameters",
        "parameter": [
            op("replace", "Patient.birthDate", value={"valueDate": "x", "valueString": "y"})
        ],
    },
    {
        "resourceType": "Parameters",
        "parameter": [op("add", "Patient", name="contact", value={"part": []})],
    },
    {
        "resourceType": "Parameters",
        "parameter": [op("add", "Patient", name="contact", value={"part": [{"name": 1}]})],
    },
    {
        "resourceType": "Parameters",
        "parameter": [op("add", "Patient", name="1bad", value={"valueString": "x"})],
    },
]


@pytest.mark.parametrize("parameters", GARBAGE_PARAMETERS)
def test_garbage_parameters_raise_patch_error(parameters: Any) -> None:
    with pytest.raises(PatchError):
        apply_fhirpath_patch(PATIENT, parameters)


GARBAGE_JSON_PATCHES: list[Any] = [
    None,
    {},
    "[]",
    [1],
    [{}],
    [{"op": "add"}],
    [{"op": "add", "path": 1, "value": 1}],
    [{"op": "add", "path": "/a"}],
    [{"op": "jump", "path": "/a"}],
    [{"op": "move", "path": "/a"}],
    [{"op": "remove", "path": "a"}],
    [{"op": "remove", "path": "/missing"}],
    [{"op": "replace", "path": "", "value": 5}],
    [{"op": "add", "path": "/name/x", "value": 1}],
    [{"op": "test", "path": "/active", "value": 1}],
]


@pytest.mark.parametrize("operations", GARBAGE_JSON_PATCHES)
def test_garbage_json_patches_raise_patch_error(operations: Any) -> None:
    with pytest.raises(PatchError):
        apply_json_patch(
            {"resourceType": "Patient", "active": True, "name": [{"family": "A"}]}, operations
        )


def test_json_patch_error_points_at_operation() -> None:
    patch = [{"op": "test", "path": "/active", "value": True}, {"op": "remove", "path": "/gender"}]
    with pytest.raises(PatchError) as info:
        apply_json_patch({"resourceType": "Patient", "active": True}, patch)
    assert info.value.expression == "/1"


# ---------------------------------------------------------------------------------------------
# fuzzing: nothing but PatchError may escape

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=6), children, max_size=4)
    ),
    max_leaves=20,
)

PATHS = st.sampled_from(
    [
        "Patient",
        "Patient.birthDate",
        "Patient.name",
        "Patient.name[0]",
        "Patient.name.given",
        "Patient.name[0].given",
        "Patient.name[0].given[1]",
        "Patient.identifier",
        "Patient.identifier[1].value",
        "Patient.deceased",
        "Patient.birthDate.extension",
        "Patient.text.div",
        "Patient.name.where(given = 'Anne')",
        "name",
        "Patient.name.given.first()",
        "Patient.(",
        "%resource",
        "",
    ]
)
ELEMENT_NAMES = st.sampled_from(
    ["given", "birthDate", "extension", "identifier", "deceased", "telecom", "x", "contact"]
)
REQUIRED_PARTS = {
    "add": ["name", "value"],
    "insert": ["value", "index"],
    "delete": [],
    "replace": ["value"],
    "move": ["source", "destination"],
    "bogus": ["value"],
}


@st.composite
def value_parts(draw: st.DrawFn, depth: int = 0) -> dict:
    kind = draw(
        st.sampled_from(
            ["valueString", "valueIdentifier", "valueDate", "_valueString", "resource", "junk"]
            + (["part"] if depth < 2 else [])
        )
    )
    if kind == "part" and draw(st.booleans()):
        sub = draw(st.lists(value_parts(depth + 1), max_size=3))
        for item in sub:
            item["name"] = draw(ELEMENT_NAMES)
        return {"part": sub}
    if kind == "resource" and draw(st.booleans()):
        return {"resource": {"resourceType": "Organization", "id": draw(st.text(max_size=3))}}
    return {kind: draw(json_values)}


@st.composite
def operation_parameters(draw: st.DrawFn) -> dict:
    """Mostly well-formed operations with random paths, names, indexes and values."""
    operations = []
    for _ in range(draw(st.integers(min_value=1, max_value=3))):
        kind = draw(st.sampled_from(sorted(REQUIRED_PARTS)))
        listed: list[dict] = [
            {"name": "type", "valueCode": kind},
            {"name": "path", "valueString": draw(PATHS)},
        ]
        for name in REQUIRED_PARTS[kind]:
            if name == "name":
                listed.append({"name": "name", "valueString": draw(ELEMENT_NAMES)})
            elif name == "value":
                listed.append({"name": "value", **draw(value_parts())})
            else:
                integer = draw(st.integers(min_value=-1, max_value=4))
                listed.append({"name": name, "valueInteger": integer})
        if draw(st.integers(min_value=0, max_value=9)) == 0:  # now and then, break the shape
            listed = draw(st.permutations(listed))[: draw(st.integers(0, len(listed)))]
            listed.append({"name": draw(st.text(max_size=5)), "valueString": "?"})
        operations.append({"name": "operation", "part": listed})
    return {"resourceType": "Parameters", "parameter": operations}


def _only_patch_error(function: Any, resource: dict, document: Any) -> None:
    snapshot = copy.deepcopy(resource)
    try:
        result = function(resource, document)
    except PatchError as exc:
        assert isinstance(exc.message, str)
    else:
        assert isinstance(result, dict)
    assert resource == snapshot


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(document=json_values)
def test_fuzz_fhirpath_patch_random_json(document: Any) -> None:
    _only_patch_error(apply_fhirpath_patch, PATIENT, document)


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(document=operation_parameters())
def test_fuzz_fhirpath_patch_random_operations(document: dict) -> None:
    _only_patch_error(apply_fhirpath_patch, PATIENT, document)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(document=json_values)
def test_fuzz_json_patch_random_json(document: Any) -> None:
    _only_patch_error(apply_json_patch, PATIENT, document)


JSON_POINTERS = st.sampled_from(
    ["", "/", "/name", "/name/0", "/name/-", "/name/0/given/1", "/x/y", "/~2", "/name/01"]
)


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    document=st.lists(
        st.fixed_dictionaries(
            {"op": st.sampled_from(["add", "remove", "replace", "move", "copy", "test", "x"])},
            optional={
                "path": JSON_POINTERS | json_values,
                "from": JSON_POINTERS | json_values,
                "value": json_values,
            },
        ),
        max_size=4,
    )
)
def test_fuzz_json_patch_random_operations(document: list) -> None:
    _only_patch_error(apply_json_patch, PATIENT, document)
