"""_id, _lastUpdated, _tag, _profile, _security, _source; uri (:below, :above); composites."""

from __future__ import annotations

import time

import httpx
import pytest
from search_helpers import (
    TAG_SYSTEM,
    client,
    coding,
    create,
    found,
    keys,
    new_marker,
    observation,
    quantity,
    rejected,
    search,
    update,
)

from conftest import Server, patient

LOINC = "http://loinc.org"
CONFIDENTIALITY = "http://terminology.hl7.org/CodeSystem/v3-Confidentiality"


def test_id(fhir: httpx.Client) -> None:
    marker = new_marker()
    a, b, _c = (create(fhir, patient(), marker) for _ in range(3))
    assert found(fhir, "/Patient", marker, {"_id": a["id"]}) == {a["id"]}
    assert found(fhir, "/Patient", marker, {"_id": f"{a['id']},{b['id']}"}) == {a["id"], b["id"]}
    assert found(fhir, "/Patient", marker, {"_id": "no-such-id"}) == set()
    both = [("_id", f"{a['id']},{b['id']}"), ("_id", b["id"])]
    assert found(fhir, "/Patient", marker, both) == {b["id"]}
    # the id of another type's resource does not match
    obs = create(fhir, observation(), marker)
    assert found(fhir, "/Patient", marker, {"_id": obs["id"]}) == set()


def test_last_updated(fhir: httpx.Client) -> None:
    marker = new_marker()
    first = create(fhir, patient(), marker)
    time.sleep(0.002)
    second = create(fhir, patient(), marker)
    time.sleep(0.002)
    third = create(fhir, patient(), marker)
    ids = {"first": first, "second": second, "third": third}
    at = second["meta"]["lastUpdated"]  # microsecond precision: a range of one microsecond

    def lu(value: str) -> set[str]:
        return keys(found(fhir, "/Patient", marker, {"_lastUpdated": value}), ids)

    assert lu(at) == {"second"}
    assert lu(f"eq{at}") == {"second"}
    assert lu(f"ne{at}") == {"first", "third"}
    assert lu(f"gt{at}") == {"third"}
    assert lu(f"ge{at}") == {"second", "third"}
    assert lu(f"lt{at}") == {"first"}
    assert lu(f"le{at}") == {"first", "second"}
    assert lu(f"sa{at}") == {"third"}
    assert lu(f"eb{at}") == {"first"}
    assert lu("gt2000-01-01") == {"first", "second", "third"}
    assert lu("lt2000-01-01") == set()
    assert lu(f"lt{first['meta']['lastUpdated']},gt{at}") == {"third"}
    # an update moves lastUpdated
    time.sleep(0.002)
    update(fhir, {**first, "gender": "male"})
    assert lu(f"gt{at}") == {"first", "third"}
    rejected(fhir, "/Patient", {"_lastUpdated": "yesterday"})
    rejected(fhir, "/Patient", {"_lastUpdated:missing": "true"})


def test_tag(fhir: httpx.Client) -> None:
    marker = new_marker()
    flagged = create(
        fhir,
        patient(meta={"tag": [{"system": "http://tags.example", "code": "vip"}]}),
        marker,
    )
    other = create(
        fhir, patient(meta={"tag": [{"system": "http://tags.example", "code": "ordinary"}]}),
        marker,
    )  # fmt: skip
    plain = create(fhir, patient(), marker)
    assert found(fhir, "/Patient", marker, {"_tag": "http://tags.example|vip"}) == {flagged["id"]}
    assert found(fhir, "/Patient", marker, {"_tag": "vip"}) == {flagged["id"]}
    assert found(fhir, "/Patient", marker, {"_tag": "http://tags.example|"}) == {
        flagged["id"],
        other["id"],
    }
    assert found(fhir, "/Patient", marker, {"_tag:not": "http://tags.example|vip"}) == {
        other["id"],
        plain["id"],
    }
    # the marker tag itself works across types
    obs = create(fhir, observation(), marker)
    every = search(fhir, "", {"_tag": f"{TAG_SYSTEM}|{marker}"})
    assert {e["resource"]["id"] for e in every["entry"]} == {
        flagged["id"],
        other["id"],
        plain["id"],
        obs["id"],
    }


def test_profile_security_source(fhir: httpx.Client) -> None:
    marker = new_marker()
    profile = f"http://profiles.example/{marker}/StructureDefinition/no-patient"
    source = f"http://source.example/{marker}"
    profiled = create(fhir, patient(meta={"profile": [profile]}), marker)
    restricted = create(fhir, patient(meta={"security": [coding(CONFIDENTIALITY, "R")]}), marker)
    sourced = create(fhir, patient(meta={"source": source}), marker)
    assert found(fhir, "/Patient", marker, {"_profile": profile}) == {profiled["id"]}
    assert found(fhir, "/Patient", marker, {"_profile": profile + "-other"}) == set()
    assert found(fhir, "/Patient", marker, {"_security": f"{CONFIDENTIALITY}|R"}) == {
        restricted["id"]
    }
    assert found(fhir, "/Patient", marker, {"_security": "R"}) == {restricted["id"]}
    assert found(fhir, "/Patient", marker, {"_security:not": f"{CONFIDENTIALITY}|R"}) == {
        profiled["id"],
        sourced["id"],
    }
    assert found(fhir, "/Patient", marker, {"_source": source}) == {sourced["id"]}
    assert found(fhir, "/Patient", marker, {"_profile:missing": "false"}) == {profiled["id"]}


# ----------------------------------------------------------------------------------------
# uri


@pytest.fixture(scope="module")
def value_sets(server: Server) -> tuple[str, str, dict[str, dict]]:
    marker = new_marker()
    root = f"http://vs.example/{marker}/fhir"
    urls = {
        "root": root,
        "abc": f"{root}/ValueSet/abc",
        "abcd": f"{root}/ValueSet/abcd",
        "def": f"{root}/ValueSet/def",
        "other": f"http://elsewhere.example/{marker}/ValueSet/abc",
    }
    with client(server) as fhir:
        created = {
            k: create(fhir, {"resourceType": "ValueSet", "status": "active", "url": url}, marker)
            for k, url in urls.items()
        }
    return marker, root, created


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"url": "{root}/ValueSet/abc"}, {"abc"}),
        ({"url": "{root}/ValueSet/ab"}, set()),  # exact, not a prefix
        ({"url": "{root}/valueset/abc"}, set()),  # case-sensitive
        ({"url": "{root}/ValueSet/abc,{root}/ValueSet/def"}, {"abc", "def"}),
        ({"url:below": "{root}/ValueSet"}, {"abc", "abcd", "def"}),
        ({"url:below": "{root}"}, {"root", "abc", "abcd", "def"}),
        ({"url:above": "{root}/ValueSet/abc/version/2"}, {"abc", "root"}),
        ({"url:above": "{root}/ValueSet/abc"}, {"abc", "root"}),
        ({"url:above": "{root}/ValueSet/abcd"}, {"abcd", "root"}),
        ({"url:missing": "false"}, {"root", "abc", "abcd", "def", "other"}),
    ],
)
def test_uri(fhir: httpx.Client, value_sets: tuple[str, dict], params: dict, expected: set) -> None:
    marker, root, created = value_sets
    query = {k: v.format(root=root) for k, v in params.items()}
    assert keys(found(fhir, "/ValueSet", marker, query), created) == expected


# ----------------------------------------------------------------------------------------
# composite


def _bp(code: str, value: float | None = None, components: list | None = None) -> dict:
    resource = observation(code={"coding": [coding(LOINC, code)]})
    if value is not None:
        resource["valueQuantity"] = quantity(value, "mm[Hg]")
    if components is not None:
        resource["component"] = [
            {"code": {"coding": [coding(LOINC, c)]}, "valueQuantity": quantity(v, "mm[Hg]")}
            for c, v in components
        ]
    return resource


@pytest.fixture(scope="module")
def pressures(server: Server) -> tuple[str, dict[str, dict]]:
    marker = new_marker()
    with client(server) as fhir:
        created = {
            "sys140": create(fhir, _bp("8480-6", 140), marker),
            "sys120": create(fhir, _bp("8480-6", 120), marker),
            "panel_high_sys": create(
                fhir, _bp("85354-9", components=[("8480-6", 150), ("8462-4", 90)]), marker
            ),
            # a high value, but on the diastolic component: must not match systolic > 130
            "panel_high_dia": create(
                fhir, _bp("85354-9", components=[("8480-6", 110), ("8462-4", 135)]), marker
            ),
        }
    return marker, created


SYS = f"{LOINC}|8480-6"
DIA = f"{LOINC}|8462-4"


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"code-value-quantity": f"{SYS}$gt130"}, {"sys140"}),
        ({"code-value-quantity": f"{SYS}$lt130"}, {"sys120"}),
        ({"code-value-quantity": f"{SYS}$140"}, {"sys140"}),
        ({"code-value-quantity": f"{SYS}$140|http://unitsofmeasure.org|mm[Hg]"}, {"sys140"}),
        ({"code-value-quantity": "8480-6$ge120"}, {"sys140", "sys120"}),
        ({"code-value-quantity": f"{SYS}$gt130,{SYS}$lt125"}, {"sys140", "sys120"}),
        ({"code-value-quantity": f"{DIA}$gt0"}, set()),
        ({"component-code-value-quantity": f"{SYS}$gt130"}, {"panel_high_sys"}),
        ({"component-code-value-quantity": f"{DIA}$gt130"}, {"panel_high_dia"}),
        ({"component-code-value-quantity": f"{DIA}$lt100"}, {"panel_high_sys"}),
        ({"component-code-value-quantity": f"{SYS}$lt100"}, set()),
        ({"combo-code-value-quantity": f"{SYS}$gt130"}, {"sys140", "panel_high_sys"}),
        ({"combo-code-value-quantity": f"{DIA}$gt130"}, {"panel_high_dia"}),
        ({"combo-code": "8462-4"}, {"panel_high_sys", "panel_high_dia"}),
        ({"component-value-quantity": "gt130"}, {"panel_high_sys", "panel_high_dia"}),
        (
            [
                ("component-code-value-quantity", f"{SYS}$gt130"),
                ("component-code-value-quantity", f"{DIA}$lt100"),
            ],
            {"panel_high_sys"},
        ),
    ],
)
def test_composite(
    fhir: httpx.Client, pressures: tuple[str, dict], params: dict | list, expected: set
) -> None:
    marker, created = pressures
    assert keys(found(fhir, "/Observation", marker, params), created) == expected


@pytest.mark.parametrize(
    "value", [SYS, f"{SYS}$gt130$x", f"{SYS}$abc", f"{SYS}$zz130", "a|b|c$130"]
)
def test_malformed_composites_are_400(fhir: httpx.Client, value: str) -> None:
    rejected(fhir, "/Observation", {"code-value-quantity": value})
