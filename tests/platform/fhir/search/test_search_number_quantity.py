"""Number search (implicit precision for eq/ne, exact comparisons otherwise) and quantity
search (value|system|code, value||code, UCUM normalisation)."""

from __future__ import annotations

import httpx
import pytest
from search_helpers import (
    all_pages,
    client,
    create,
    found,
    keys,
    match_ids,
    new_marker,
    observation,
    ordered_keys,
    quantity,
    rejected,
    search,
)

from conftest import Server

UCUM = "http://unitsofmeasure.org"
OTHER_UNITS = "http://units.example/other"


def _risk(probability: float) -> dict:
    return {
        "resourceType": "RiskAssessment",
        "status": "final",
        "subject": {"reference": "Patient/risk-subject"},
        "prediction": [{"probabilityDecimal": probability}],
    }


PROBABILITIES = {"p9_4": 9.4, "p9_5": 9.5, "p10": 10, "p10_49": 10.49, "p10_5": 10.5, "p11": 11}


@pytest.fixture(scope="module")
def risks(server: Server) -> tuple[str, dict[str, dict]]:
    marker = new_marker()
    with client(server) as fhir:
        created = {k: create(fhir, _risk(v), marker) for k, v in PROBABILITIES.items()}
        created["none"] = create(
            fhir, {**_risk(0), "prediction": [{"outcome": {"text": "unknown"}}]}, marker
        )
    return marker, created


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("10", {"p9_5", "p10", "p10_49"}),  # [9.5, 10.5)
        ("eq10", {"p9_5", "p10", "p10_49"}),
        ("10.0", {"p10"}),  # [9.95, 10.05)
        ("10.00", {"p10"}),
        ("10.49", {"p10_49"}),  # [10.485, 10.495)
        ("10.5", {"p10_49", "p10_5"}),  # [10.45, 10.55)
        ("9", {"p9_4"}),  # [8.5, 9.5)
        ("8", set()),
        ("ne10", {"p9_4", "p10_5", "p11"}),
        ("ne10.0", {"p9_4", "p9_5", "p10_49", "p10_5", "p11"}),
        ("gt10", {"p10_49", "p10_5", "p11"}),  # exact comparisons
        ("ge10", {"p10", "p10_49", "p10_5", "p11"}),
        ("lt10", {"p9_4", "p9_5"}),
        ("le10", {"p9_4", "p9_5", "p10"}),
        ("gt10.5", {"p11"}),
        ("lt9.5", {"p9_4"}),
        ("ge10.49", {"p10_49", "p10_5", "p11"}),
        ("9.4,11.0", {"p9_4", "p11"}),
        ("9.4,11", {"p9_4", "p10_5", "p11"}),  # 11 is [10.5, 11.5)
        ("-10", set()),
        ("gt-1", set(PROBABILITIES)),
        ("ap10", set(PROBABILITIES)),  # within 10%: [9, 11]
        ("ap9", {"p9_4", "p9_5"}),  # [8.1, 9.9]
    ],
)
def test_number(fhir: httpx.Client, risks: tuple[str, dict], value: str, expected: set) -> None:
    marker, created = risks
    assert keys(found(fhir, "/RiskAssessment", marker, {"probability": value}), created) == (
        expected
    )


def test_number_and_missing(fhir: httpx.Client, risks: tuple[str, dict]) -> None:
    marker, created = risks
    between = [("probability", "gt9.5"), ("probability", "lt10.5")]
    assert keys(found(fhir, "/RiskAssessment", marker, between), created) == {"p10", "p10_49"}
    missing = {"probability:missing": "true"}
    assert keys(found(fhir, "/RiskAssessment", marker, missing), created) == {"none"}


@pytest.mark.parametrize(
    ("sort", "expected"),
    [
        ("probability", ["p9_4", "p9_5", "p10", "p10_49", "p10_5", "p11", "none"]),
        ("-probability", ["p11", "p10_5", "p10_49", "p10", "p9_5", "p9_4", "none"]),
    ],
)
def test_sort_by_number_across_pages(
    fhir: httpx.Client, risks: tuple[str, dict], sort: str, expected: list[str]
) -> None:
    marker, created = risks
    first = search(fhir, "/RiskAssessment", {"_sort": sort, "_count": "3"}, marker)
    pages = all_pages(fhir, first)
    assert [len(match_ids(p)) for p in pages] == [3, 3, 1]
    assert ordered_keys((i for p in pages for i in match_ids(p)), created) == expected


@pytest.mark.parametrize("value", ["abc", "1.2.3", "10x", "gt", "xx10", "1,,2", "NaN", "inf"])
def test_malformed_numbers_are_400(fhir: httpx.Client, value: str) -> None:
    rejected(fhir, "/RiskAssessment", {"probability": value})


# ----------------------------------------------------------------------------------------
# quantity


@pytest.fixture(scope="module")
def quantities(server: Server) -> tuple[str, dict[str, dict]]:
    values = {
        "mg": quantity(5.4, "mg"),
        "ug": quantity(5400, "ug"),  # the same amount as "mg"
        "other_system": quantity(5.4, "mg", OTHER_UNITS),
        "mg6": quantity(6, "mg"),
        "unit_only": {"value": 5.4, "unit": "mg"},
        "mmhg": quantity(140, "mm[Hg]"),
        "kg": quantity(0.0054, "kg"),  # 1000 times "mg"
    }
    marker = new_marker()
    with client(server) as fhir:
        created = {k: create(fhir, observation(valueQuantity=v), marker) for k, v in values.items()}
        created["no_value"] = create(fhir, observation(valueString="5.4 mg"), marker)
    return marker, created


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("5.4", {"mg", "other_system", "unit_only"}),
        ("5.4||mg", {"mg", "other_system", "unit_only"}),  # any system
        (f"5.4|{UCUM}|mg", {"mg", "ug"}),
        (f"0.0054|{UCUM}|g", {"mg", "ug"}),
        (f"5.4|{UCUM}|g", {"kg"}),
        (f"gt5.5|{UCUM}|mg", {"mg6", "kg"}),
        (f"lt6|{UCUM}|mg", {"mg", "ug"}),
        (f"le6000|{UCUM}|ug", {"mg", "ug", "mg6"}),
        (f"ge6|{UCUM}|mg", {"mg6", "kg"}),
        (f"ne5.4|{UCUM}|mg", {"mg6", "kg"}),
        (f"5.4|{OTHER_UNITS}|mg", {"other_system"}),
        (f"5400|{OTHER_UNITS}|ug", set()),  # no conversion outside UCUM
        ("gt100", {"ug", "mmhg"}),
        ("lt0.01", {"kg"}),
        (f"140|{UCUM}|mm[Hg]", {"mmhg"}),
        ("140||mm[Hg]", {"mmhg"}),
        (f"140|{UCUM}|mg", set()),
        ("6,140", {"mg6", "mmhg"}),
    ],
)
def test_quantity(
    fhir: httpx.Client, quantities: tuple[str, dict], value: str, expected: set
) -> None:
    marker, created = quantities
    query = {"value-quantity": value}
    assert keys(found(fhir, "/Observation", marker, query), created) == expected


@pytest.mark.parametrize(
    "value",
    [
        f"5.4|{UCUM}|mg",  # [5.35, 5.45) mg
        f"5.4e3|{UCUM}|ug",  # [5350, 5450) ug: 5400 would be [5399.5, 5400.5)
        f"0.0054|{UCUM}|g",  # [0.00535, 0.00545) g
    ],
)
def test_ucum_search_keeps_the_precision_of_the_value_as_written(
    fhir: httpx.Client, value: str
) -> None:
    marker = new_marker()
    created = {
        "exact": create(fhir, observation(valueQuantity=quantity(5.4, "mg")), marker),
        "near": create(fhir, observation(valueQuantity=quantity(5.36, "mg")), marker),
        "near_ug": create(fhir, observation(valueQuantity=quantity(5440, "ug")), marker),
        "far": create(fhir, observation(valueQuantity=quantity(5.46, "mg")), marker),
    }
    query = {"value-quantity": value}
    assert keys(found(fhir, "/Observation", marker, query), created) == {
        "exact",
        "near",
        "near_ug",
    }


def test_quantity_missing(fhir: httpx.Client, quantities: tuple[str, dict]) -> None:
    marker, created = quantities
    query = {"value-quantity:missing": "true"}
    assert keys(found(fhir, "/Observation", marker, query), created) == {"no_value"}


@pytest.mark.parametrize("value", ["abc", "5.4|mg", "5.4|a|b|c", "xx5", "|http://x|mg"])
def test_malformed_quantities_are_400(fhir: httpx.Client, value: str) -> None:
    rejected(fhir, "/Observation", {"value-quantity": value})
