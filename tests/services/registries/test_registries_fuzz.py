"""Fuzzing register writes and searches: random identifiers, systems and protection labels
never give a 500, a write is accepted exactly when every identifier is valid, and nothing
accepted breaks a later read."""

from __future__ import annotations

import httpx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from samhandling.platform.identifiers import SYSTEM_NAMES, identifier_error
from samhandling.services.registries.model import ADDRESS_CONFIDENTIALITY

SYSTEMS = [*sorted(SYSTEM_NAMES), "http://example.org/ids"]
digits = st.text(alphabet="0123456789", min_size=0, max_size=13)
values = st.one_of(digits, st.text(max_size=14), st.integers(), st.none())
identifiers = st.lists(
    st.fixed_dictionaries({"system": st.sampled_from(SYSTEMS), "value": values}), max_size=3
)
labels = st.lists(
    st.fixed_dictionaries(
        {"system": st.sampled_from([ADDRESS_CONFIDENTIALITY, "http://example.org"]),
         "code": st.sampled_from(["fortrolig", "strengtFortrolig", "ugradert", ""])}
    ),
    max_size=2,
)  # fmt: skip
FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                HealthCheck.function_scoped_fixture])  # fmt: skip


@FUZZ
@given(
    kind=st.sampled_from(["Patient", "Organization", "Practitioner", "RelatedPerson"]),
    ids=identifiers,
    security=labels,
)
def test_register_writes_never_fail_with_500(
    fhir: httpx.Client, kind: str, ids: list[dict], security: list[dict]
) -> None:
    resource: dict = {"resourceType": kind, "identifier": ids, "meta": {"security": security}}
    if kind == "RelatedPerson":
        resource["patient"] = {"reference": "Patient/nobody"}
    response = fhir.post(f"/{kind}", json=resource)
    assert response.status_code < 500, response.text
    if response.status_code == 201:
        assert all(identifier_error(i["system"], i["value"]) is None for i in ids)
        assert fhir.get(response.headers["location"].split("/_history")[0]).status_code == 200
    else:
        assert response.json()["resourceType"] == "OperationOutcome"


@FUZZ
@given(
    name=st.sampled_from(["identifier", "address-city", "phone", "general-practitioner",
                          "_has:EpisodeOfCare:patient:care-manager", "_security:not"]),
    value=st.text(max_size=30),
)  # fmt: skip
def test_person_searches_never_fail_with_500(fhir: httpx.Client, name: str, value: str) -> None:
    response = fhir.get("/Patient", params={name: value})
    assert response.status_code < 500, response.text
    assert response.json()["resourceType"] in ("Bundle", "OperationOutcome")
