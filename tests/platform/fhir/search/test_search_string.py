"""String search: starts-with, case- and accent-insensitive; :exact; :contains; OR/AND."""

from __future__ import annotations

import httpx
import pytest
from search_helpers import client, create, found, keys, new_marker

from conftest import Server, patient


def _people(fhir: httpx.Client, marker: str) -> dict[str, dict]:
    address = {"line": ["Storgata 1"], "city": "Oslo", "postalCode": "0150", "country": "NO"}
    return {
        "asebo": create(fhir, patient("Åsebø", "Kari"), marker),
        "hansen": create(fhir, patient("Hansen", "Åse", address=[address]), marker),
        "jensen": create(fhir, patient("Jensen", "Lise"), marker),
        "basen": create(fhir, patient("Basen", "Ola"), marker),
        "text_only": create(
            fhir, {"resourceType": "Patient", "name": [{"text": "Per Persen"}]}, marker
        ),
    }


@pytest.fixture(scope="module")
def people(server: Server) -> tuple[str, dict[str, dict]]:
    marker = new_marker()
    with client(server) as fhir:
        return marker, _people(fhir, marker)


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"name": "ase"}, {"asebo", "hansen"}),  # starts-with on family and on given
        ({"name": "ASE"}, {"asebo", "hansen"}),  # case-insensitive
        ({"name": "Åse"}, {"asebo", "hansen"}),  # the accent in the query is folded too
        ({"name": "åsebø"}, {"asebo"}),
        ({"name": "sen"}, set()),  # not a substring search
        ({"name": "per"}, {"text_only"}),  # HumanName.text
        ({"name": "persen"}, set()),  # text is one string: starts-with on the whole of it
        ({"family": "ase"}, {"asebo"}),
        ({"given": "ase"}, {"hansen"}),
        ({"given": "kari"}, {"asebo"}),
        ({"name": "hansen,jensen"}, {"hansen", "jensen"}),  # OR
        ({"name:exact": "Åsebø"}, {"asebo"}),
        ({"name:exact": "åsebø"}, set()),  # :exact is case-sensitive
        ({"name:exact": "Asebø"}, set()),  # ... and accent-sensitive
        ({"name:exact": "Åse"}, {"hansen"}),  # the whole given name, not a prefix
        ({"name:exact": "Åseb"}, set()),
        ({"family:exact": "Hansen,Jensen"}, {"hansen", "jensen"}),
        ({"name:contains": "ase"}, {"asebo", "hansen", "basen"}),
        ({"name:contains": "SEN"}, {"hansen", "jensen", "basen", "text_only"}),
        ({"name:contains": "rse"}, {"text_only"}),
        ({"address": "oslo"}, {"hansen"}),
        ({"address": "storg"}, {"hansen"}),
        ({"address-city": "OSL"}, {"hansen"}),
        ({"address-postalcode": "015"}, {"hansen"}),
        ({"address-city": "bergen"}, set()),
        ({"family:missing": "true"}, {"text_only"}),
        ({"family:missing": "false"}, {"asebo", "hansen", "jensen", "basen"}),
    ],
)
def test_string_matching(
    fhir: httpx.Client, people: tuple[str, dict], params: dict, expected: set[str]
) -> None:
    marker, people = people
    assert keys(found(fhir, "/Patient", marker, params), people) == expected


def test_repeated_parameters_are_and(fhir: httpx.Client, people: tuple[str, dict]) -> None:
    marker, people = people
    both = [("name", "hansen"), ("name", "åse")]
    assert keys(found(fhir, "/Patient", marker, both), people) == {"hansen"}
    neither = [("name", "hansen"), ("name", "lise")]
    assert found(fhir, "/Patient", marker, neither) == set()


def test_escaped_comma_is_a_literal_comma(fhir: httpx.Client) -> None:
    marker = new_marker()
    people = {
        "comma": create(fhir, patient("Berg,Olsen"), marker),
        "olsen": create(fhir, patient("Olsen"), marker),
        "berg": create(fhir, patient("Bergum"), marker),
    }
    escaped = found(fhir, "/Patient", marker, {"family": "berg\\,olsen"})
    assert keys(escaped, people) == {"comma"}
    unescaped = found(fhir, "/Patient", marker, {"family": "berg,olsen"})
    assert keys(unescaped, people) == {"comma", "olsen", "berg"}
    exact = found(fhir, "/Patient", marker, {"family:exact": "Berg\\,Olsen"})
    assert keys(exact, people) == {"comma"}


def test_like_wildcards_are_literal(fhir: httpx.Client) -> None:
    marker = new_marker()
    people = {
        "underscore": create(fhir, patient("a_b"), marker),
        "x": create(fhir, patient("axb"), marker),
        "percent": create(fhir, patient("10%off"), marker),
        "plain": create(fhir, patient("10xoff"), marker),
    }
    assert keys(found(fhir, "/Patient", marker, {"family:contains": "a_b"}), people) == {
        "underscore"
    }
    assert keys(found(fhir, "/Patient", marker, {"family": "a_"}), people) == {"underscore"}
    assert keys(found(fhir, "/Patient", marker, {"family:contains": "0%o"}), people) == {"percent"}
    assert keys(found(fhir, "/Patient", marker, {"family": "10%"}), people) == {"percent"}


def test_strings_on_other_types(fhir: httpx.Client) -> None:
    marker = new_marker()
    organization = create(
        fhir, {"resourceType": "Organization", "name": "Helse Sør-Øst RHF"}, marker
    )
    other = create(fhir, {"resourceType": "Organization", "name": "Helse Vest"}, marker)
    assert found(fhir, "/Organization", marker, {"name": "HELSE SØR"}) == {organization["id"]}
    assert found(fhir, "/Organization", marker, {"name": "HELSE"}) == {
        organization["id"],
        other["id"],
    }
    assert found(fhir, "/Organization", marker, {"name:contains": "sør-ø"}) == {organization["id"]}
