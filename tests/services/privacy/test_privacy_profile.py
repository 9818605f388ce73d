"""The Consent profile over HTTP, on both backends: each kind of choice round-trips, and each
rule of the write check refuses a Consent with 422 naming the element."""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from privacy_helpers import (
    aged,
    blocked_entries,
    blocked_personnel,
    power_of_attorney,
    reservation,
    services,
    today,
)

from samhandling.platform.identifiers import FNR_SYSTEM, HPR_SYSTEM
from samhandling.services.privacy.choice import read_choice
from samhandling.services.privacy.model import CHOICE_SYSTEM
from services.registries.registries_helpers import new_dnr, new_fnr, new_hpr

GIVER = new_fnr()
RECEIVER = new_fnr()


def examples() -> list[tuple[str, dict[str, Any]]]:
    return [
        ("reservation", reservation(GIVER, "kjernejournal", "e-resept")),
        ("blocked-entries", blocked_entries(GIVER, "DocumentReference/doc-1", "Flag/f-1")),
        ("blocked-personnel", blocked_personnel(GIVER, new_hpr(), only=("e-resept",))),
        ("blocked-personnel everywhere", blocked_personnel(GIVER, new_hpr(), new_hpr())),
        ("power-of-attorney", power_of_attorney(GIVER, RECEIVER, only=("results",),
                                                start="2026-01-01", end="2027-12-31")),
        ("power-of-attorney, every service", power_of_attorney(GIVER, RECEIVER)),
        ("withdrawn", reservation(GIVER, "homecare", status="inactive")),
    ]  # fmt: skip


@pytest.mark.parametrize(("name", "resource"), examples(), ids=[n for n, _ in examples()])
def test_each_kind_round_trips(fhir: httpx.Client, name: str, resource: dict) -> None:
    created = fhir.post("/Consent", json=resource)
    assert created.status_code == 201, created.text
    stored = fhir.get(f"/Consent/{created.json()['id']}").json()
    assert {k: v for k, v in stored.items() if k not in ("id", "meta")} == resource
    found = fhir.get("/Consent", params={"patient:identifier": f"{FNR_SYSTEM}|{GIVER}",
                                         "_id": stored["id"]}).json()  # fmt: skip
    assert [e["resource"]["id"] for e in found["entry"]] == [stored["id"]]


def _set(path: str, value: Any) -> Callable[[dict], None]:
    """A change setting the element at dotted ``path`` (list indexes as numbers)."""

    def change(resource: dict) -> None:
        *parents, last = [int(p) if p.isdigit() else p for p in path.split(".")]
        node: Any = resource
        for part in parents:
            node = node[part]
        if value is _DELETE:
            del node[last]
        else:
            node[last] = value

    return change


_DELETE = object()
_ANOTHER_KIND = {"system": CHOICE_SYSTEM, "code": "blocked-entries"}
_PERSON = {"system": FNR_SYSTEM, "value": new_fnr()}


def cases() -> list[tuple[str, dict, Callable[[dict], None], str]]:
    """(name, a valid Consent, what breaks it, the element the 422 names)"""
    res = reservation(GIVER, "kjernejournal")
    ent = blocked_entries(GIVER, "DocumentReference/doc-1")
    per = blocked_personnel(GIVER, new_hpr())
    poa = power_of_attorney(GIVER, RECEIVER)
    return [
        ("category in text only", res, _set("category", [{"text": "reservasjon"}]),
         "Consent.category"),
        ("category of another system", res, _set("category.0.coding.0.system",
                                                 "http://example.org"), "Consent.category"),
        ("unknown kind", res, _set("category.0.coding.0.code", "everything"),
         "Consent.category[0].coding[0].code"),
        ("two kinds", res, lambda r: r["category"][0]["coding"].append(_ANOTHER_KIND),
         "Consent.category"),
        ("no status", res, _set("status", _DELETE), "Consent.status"),
        ("no dateTime", res, _set("dateTime", _DELETE), "Consent.dateTime"),
        ("another scope", res, _set("scope.coding.0.code", "treatment"), "Consent.scope"),
        ("no patient", res, _set("patient", _DELETE), "Consent.patient"),
        ("patient by reference only", res, _set("patient", {"reference": "Patient/p1"}),
         "Consent.patient.identifier"),
        ("patient by HPR number", res, _set("patient.identifier.system", HPR_SYSTEM),
         "Consent.patient.identifier.system"),
        ("patient with a wrong number", res, _set("patient.identifier.value", "12345678901"),
         "Consent.patient.identifier.value"),
        ("fødselsnummer as D-number", res, _set("patient.identifier.value", new_dnr()),
         "Consent.patient.identifier.value"),
        ("no provision", res, _set("provision", _DELETE), "Consent.provision"),
        ("a period backwards", res, _set("provision.period",
                                         {"start": "2026-05-01", "end": "2026-04-30"}),
         "Consent.provision.period"),
        ("nested provisions", res, _set("provision.provision", [{"type": "permit"}]),
         "Consent.provision.provision"),
        ("reservation as permit", res, _set("provision.type", "permit"),
         "Consent.provision.type"),
        ("reservation without type", res, _set("provision.type", _DELETE),
         "Consent.provision.type"),
        ("reservation without services", res, _set("provision.class", _DELETE),
         "Consent.provision.class"),
        ("reservation against an unknown service", res,
         _set("provision.class.0.code", "tannhelse"), "Consent.provision.class[0].code"),
        ("reservation against '*'", res, _set("provision.class.0.code", "*"),
         "Consent.provision.class[0].code"),
        ("service of another system", res, _set("provision.class.0.system",
                                                "http://example.org"),
         "Consent.provision.class[0].system"),
        ("reservation with entries", res, _set("provision.data", ent["provision"]["data"]),
         "Consent.provision.data"),
        ("reservation with actors", res, _set("provision.actor", per["provision"]["actor"]),
         "Consent.provision.actor"),
        ("entries as permit", ent, _set("provision.type", "permit"), "Consent.provision.type"),
        ("entries without data", ent, _set("provision.data", _DELETE),
         "Consent.provision.data"),
        ("entry of another meaning", ent, _set("provision.data.0.meaning", "related"),
         "Consent.provision.data[0].meaning"),
        ("entry by absolute URL", ent, _set("provision.data.0.reference.reference",
                                            "https://example.org/fhir/Flag/1"),
         "Consent.provision.data[0].reference.reference"),
        ("entry by identifier", ent, _set("provision.data.0.reference",
                                          {"identifier": _PERSON}),
         "Consent.provision.data[0].reference.reference"),
        ("entries for some services", ent, _set("provision.class", services("results")),
         "Consent.provision.class"),
        ("personnel as permit", per, _set("provision.type", "permit"),
         "Consent.provision.type"),
        ("personnel without actors", per, _set("provision.actor", _DELETE),
         "Consent.provision.actor"),
        ("personnel by fødselsnummer", per,
         _set("provision.actor.0.reference.identifier", _PERSON),
         "Consent.provision.actor[0].reference.identifier.system"),
        ("personnel by reference only", per,
         _set("provision.actor.0.reference", {"reference": "Practitioner/x"}),
         "Consent.provision.actor[0].reference.identifier"),
        ("personnel with a wrong HPR number", per,
         _set("provision.actor.0.reference.identifier.value", "0123"),
         "Consent.provision.actor[0].reference.identifier.value"),
        ("personnel with an unknown service", per, _set("provision.class", services("x")),
         "Consent.provision.class[0].code"),
        ("power of attorney as deny", poa, _set("provision.type", "deny"),
         "Consent.provision.type"),
        ("power of attorney without receiver", poa, _set("provision.actor", _DELETE),
         "Consent.provision.actor"),
        ("receiver in another role", poa, _set("provision.actor.0.role.coding.0.code", "PRCP"),
         "Consent.provision.actor[0].role"),
        ("receiver by HPR number", poa,
         _set("provision.actor.0.reference.identifier", {"system": HPR_SYSTEM,
                                                          "value": new_hpr()}),
         "Consent.provision.actor[0].reference.identifier.system"),
        ("receiver with a wrong number", poa,
         _set("provision.actor.0.reference.identifier.value", "01010112345"),
         "Consent.provision.actor[0].reference.identifier.value"),
        ("power of attorney to oneself", poa,
         _set("provision.actor.0.reference.identifier.value", GIVER),
         "Consent.provision.actor[0].reference.identifier.value"),
        ("giver of 15", poa, _set("patient.identifier.value", aged(15, days_to_birthday=1)),
         "Consent.patient.identifier.value"),
        ("receiver of 17", poa,
         _set("provision.actor.0.reference.identifier.value", aged(17, days_to_birthday=1)),
         "Consent.provision.actor[0].reference.identifier.value"),
        ("power of attorney only for some actions", poa,
         _set("provision.action", [{"coding": [{"code": "access"}]}]),
         "Consent.provision.action"),
        ("power of attorney with entries", poa, _set("provision.data", ent["provision"]["data"]),
         "Consent.provision.data"),
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("name", "valid", "change", "expression"), cases(), ids=[c[0] for c in cases()]
)
def test_each_rule_refuses_with_422(
    fhir: httpx.Client,
    name: str,
    valid: dict,
    change: Callable[[dict], None],
    expression: str,
) -> None:
    assert fhir.post("/Consent", json=valid).status_code == 201  # the unbroken one is fine
    broken = copy.deepcopy(valid)
    change(broken)
    response = fhir.post("/Consent", json=broken)
    assert response.status_code == 422, response.text
    outcome = response.json()
    assert outcome["resourceType"] == "OperationOutcome"
    named = [e for issue in outcome["issue"] for e in issue.get("expression", [])]
    assert expression in named, outcome


def test_the_age_limits_hold_on_the_day(fhir: httpx.Client) -> None:
    """Sixteen and eighteen today is old enough."""
    giver, receiver = aged(16), aged(18)
    response = fhir.post("/Consent", json=power_of_attorney(giver, receiver))
    assert response.status_code == 201, response.text


def test_an_update_is_checked_and_refused_whole(fhir: httpx.Client) -> None:
    created = fhir.post("/Consent", json=reservation(new_fnr(), "results")).json()
    broken = {**created, "provision": {"type": "deny", "class": services("nothing")}}
    response = fhir.put(f"/Consent/{created['id']}", json=broken)
    assert response.status_code == 422, response.text
    assert fhir.get(f"/Consent/{created['id']}").json() == created


def test_the_documented_examples_follow_the_profile() -> None:
    page = Path(__file__).parents[3] / "docs" / "services" / "privacy.md"
    blocks = re.findall(r"```json\n(.*?)```", page.read_text(), re.DOTALL)
    examples = [json.loads(b) for b in blocks if '"resourceType": "Consent"' in b]
    assert len(examples) == 4
    for example in examples:
        assert read_choice(example, written_on=today()) == (read_choice(example)[0], [])
