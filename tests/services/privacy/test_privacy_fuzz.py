"""Fuzzing Consent writes: random Consent-shaped JSON never gives a 500, a Consent is stored
exactly when the profile reading finds nothing wrong, and the reading itself never fails on
any JSON at all."""

from __future__ import annotations

import httpx
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from privacy_helpers import (
    blocked_entries,
    blocked_personnel,
    power_of_attorney,
    reservation,
    today,
)

from samhandling.platform.identifiers import DNR_SYSTEM, FNR_SYSTEM, HPR_SYSTEM
from samhandling.services.privacy.choice import read_choice
from samhandling.services.privacy.model import (
    CHOICE_SYSTEM,
    PARTICIPATION_TYPE,
    PATIENT_PRIVACY,
    ROLE_CODE,
    SCOPE_SYSTEM,
    SERVICE_SYSTEM,
    SERVICES,
    Kind,
)
from services.registries.registries_helpers import new_fnr, new_hpr

FUZZ = settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                HealthCheck.function_scoped_fixture])  # fmt: skip
OTHER = "http://example.org/x"
TOP = ["status", "scope", "category", "patient", "dateTime", "provision"]
PROVISION_KEYS = ["type", "class", "actor", "data", "period", "action", "provision"]
DELETE = object()


def maybe(strategy: st.SearchStrategy) -> st.SearchStrategy:
    return st.one_of(st.none(), strategy)


def coding(systems: list[str], codes: list[str]) -> st.SearchStrategy:
    code = st.one_of(st.sampled_from(codes), st.text(max_size=8))
    return st.fixed_dictionaries({"system": st.sampled_from(systems), "code": code})


numbers = st.one_of(
    st.builds(new_fnr), st.builds(new_hpr), st.text(alphabet="0123456789", max_size=12),
    st.text(max_size=12), st.integers(),
)  # fmt: skip
identifiers = st.fixed_dictionaries(
    {"system": st.sampled_from([FNR_SYSTEM, DNR_SYSTEM, HPR_SYSTEM, OTHER]), "value": numbers}
)
dates = st.sampled_from(["2020", "2026-01", "2026-02-30", "2030-12-31", "1999-01-01T10:00:00Z"])
actor = st.fixed_dictionaries(
    {"role": st.fixed_dictionaries({"coding": st.lists(coding(
        [ROLE_CODE, PARTICIPATION_TYPE, OTHER], ["POWATT", "PRCP", "X"]), max_size=2)}),
     "reference": st.one_of(st.fixed_dictionaries({"identifier": identifiers}),
                            st.just({"reference": "Practitioner/p1"}))}
)  # fmt: skip
data = st.fixed_dictionaries(
    {"meaning": st.sampled_from(["instance", "related", "dependents", "authoredby"]),
     "reference": st.fixed_dictionaries({"reference": st.sampled_from(
         ["DocumentReference/d1", "Flag/x", "Nothing/1", "Flag/", "https://x.org/Flag/1"])})}
)  # fmt: skip
provision = st.fixed_dictionaries(
    {},
    optional={
        "type": st.sampled_from(["deny", "permit"]),
        "class": st.lists(coding([SERVICE_SYSTEM, OTHER], [*sorted(SERVICES), "*"]), max_size=3),
        "actor": st.lists(actor, max_size=2),
        "data": st.lists(data, max_size=2),
        "period": st.fixed_dictionaries({}, optional={"start": dates, "end": dates}),
    },
)
consents = st.fixed_dictionaries(
    {"resourceType": st.just("Consent"),
     "scope": st.fixed_dictionaries({"coding": st.lists(coding(
         [SCOPE_SYSTEM, OTHER], [PATIENT_PRIVACY, "treatment"]), min_size=1, max_size=2)}),
     "category": st.lists(st.fixed_dictionaries({"coding": st.lists(coding(
         [CHOICE_SYSTEM, OTHER], [k.value for k in Kind]), min_size=1, max_size=2)}),
         min_size=1, max_size=2),
     "status": st.sampled_from(["active", "inactive", "draft", "rejected"]),
     "dateTime": st.just("2026-03-01T12:00:00+01:00"),
     "patient": st.fixed_dictionaries({"identifier": identifiers}),
     "provision": provision},
)  # fmt: skip


@st.composite
def near_valid(draw: st.DrawFn) -> dict:
    """A valid Consent of some kind with one element changed, removed or added (or none:
    the random ones of `consents` are mostly refused)."""
    giver, other = new_fnr(), new_fnr()
    consent = draw(st.sampled_from([
        reservation(giver, "kjernejournal"), blocked_entries(giver, "Flag/f1"),
        blocked_personnel(giver, new_hpr(), only=("results",)),
        power_of_attorney(giver, other, only=("e-resept",), end="2030-01-01"),
    ]))  # fmt: skip
    where = draw(st.sampled_from(["none", "", "provision"]))
    if where != "none":
        node = consent["provision"] if where else consent
        key = draw(st.sampled_from(PROVISION_KEYS if where else TOP))
        value = draw(st.one_of(st.just(DELETE), json_values))
        if value is DELETE:
            node.pop(key, None)
        else:
            node[key] = value
    return consent


json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=6)),
    lambda children: st.lists(children, max_size=3)
    | st.dictionaries(
        st.sampled_from(["status", "scope", "category", "coding", "system", "code", "patient",
                         "identifier", "value", "provision", "type", "class", "actor", "role",
                         "reference", "data", "meaning", "period", "start", "end"]),
        children, max_size=4,
    ),
    max_leaves=20,
)  # fmt: skip


@FUZZ
@given(consent=st.one_of(near_valid(), consents))
def test_consent_writes_never_fail_with_500(fhir: httpx.Client, consent: dict) -> None:
    response = fhir.post("/Consent", json=consent)
    assert response.status_code < 500, response.text
    event(f"HTTP {response.status_code}")  # --hypothesis-show-statistics
    _, issues = read_choice(consent, written_on=today())
    if response.status_code == 201:
        assert issues == []
        assert fhir.get(response.headers["location"].split("/_history")[0]).status_code == 200
    else:
        assert response.status_code in (400, 422), response.text
        assert response.json()["resourceType"] == "OperationOutcome"
        assert issues or response.status_code == 400  # refused for what the profile says


@settings(max_examples=500, deadline=None)
@given(consent=st.dictionaries(st.sampled_from(TOP), json_values))
def test_reading_any_json_never_fails(consent: dict) -> None:
    choice, issues = read_choice(consent, written_on=today())
    assert (choice is None) == bool(issues)
