"""Address protection: no response and no search shows a protected person's address, contact
details or GP to an unauthorised caller; the person themself and privileged callers see them."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import httpx
import pytest
from registries_helpers import (
    PROTECTED,
    READ,
    citizen,
    client_with,
    gp_episode,
    gp_office,
    new_fnr,
    person,
    put,
)

from conftest import Server
from samhandling.services.registries.model import CONFIDENTIAL, STRICTLY_CONFIDENTIAL


@dataclass
class World:
    hidden: dict  # a strictly confidential person
    hidden_fnr: str
    open: dict  # an ordinary person on the same GP list and street
    role: str
    doctor: str
    episode_hidden: str
    episode_open: str
    city: str


@pytest.fixture(params=[STRICTLY_CONFIDENTIAL, CONFIDENTIAL])
def world(server: Server, fhir: httpx.Client, request: pytest.FixtureRequest) -> World:
    org, doctor, role = gp_office(fhir)
    city = f"By{uuid.uuid4().hex[:10]}"  # a city no other test uses
    hidden_fnr = new_fnr()
    hidden = put(fhir, person(hidden_fnr, protection=request.param, gp_role=role, city=city))
    ordinary = put(fhir, person(new_fnr(), gp_role=role, city=city))
    episode_hidden = put(fhir, gp_episode(hidden["id"], doctor, org))["id"]
    episode_open = put(fhir, gp_episode(ordinary["id"], doctor, org))["id"]
    return World(hidden, hidden_fnr, ordinary, role, doctor, episode_hidden, episode_open, city)


def ids(bundle: dict, mode: str = "match") -> set[str]:
    return {e["resource"]["id"] for e in bundle.get("entry", []) if e["search"]["mode"] == mode}


def assert_redacted(patient: dict) -> None:
    for element in ("address", "telecom", "generalPractitioner"):
        assert element not in patient, element
    assert {"system": "http://terminology.hl7.org/CodeSystem/v3-ObservationValue",
            "code": "REDACTED"} in patient["meta"]["security"]  # fmt: skip


def test_reads_are_redacted_for_others(server: Server, world: World) -> None:
    with client_with(server, READ) as reader:
        response = reader.get(f"/Patient/{world.hidden['id']}")
        assert response.status_code == 200
        assert_redacted(response.json())
        assert response.json()["name"] == world.hidden["name"]  # who they are is not secret
        version = reader.get(f"/Patient/{world.hidden['id']}/_history/1").json()
        assert_redacted(version)
        history = reader.get(f"/Patient/{world.hidden['id']}/_history").json()
        for entry in history["entry"]:
            assert_redacted(entry["resource"])
        by_number = reader.get("/Patient", params={"identifier": world.hidden_fnr}).json()
        assert ids(by_number) == {world.hidden["id"]}
        assert_redacted(by_number["entry"][0]["resource"])
        ordinary = reader.get(f"/Patient/{world.open['id']}").json()
        assert ordinary["address"] == world.open["address"]  # others are not redacted


@pytest.mark.parametrize(
    "params",
    [
        {"address-city": "{city}"},
        {"address": "Skjultveien"},
        {"address-postalcode": "5003", "address-city": "{city}"},
        {"general-practitioner": "PractitionerRole/{role}"},
        {"_has:EpisodeOfCare:patient:care-manager": "Practitioner/{doctor}"},
    ],
)
def test_searches_never_find_a_protected_person_by_where_they_live(
    server: Server, world: World, params: dict[str, str]
) -> None:
    values = {
        k: v.format(city=world.city, role=world.role, doctor=world.doctor)
        for k, v in params.items()
    }
    with client_with(server, READ, PROTECTED) as privileged, client_with(server, READ) as reader:
        found = reader.get("/Patient", params=values).json()
        assert world.hidden["id"] not in ids(found)
        if "_has" not in next(iter(values)):  # not even with the scope: nothing is indexed
            assert world.hidden["id"] not in ids(privileged.get("/Patient", params=values).json())
        if "general-practitioner" not in values and "_has" not in next(iter(values)):
            assert world.open["id"] in ids(reader.get("/Patient", params=values).json())


def test_phone_search_and_chains_do_not_reveal_a_protected_person(
    server: Server, world: World
) -> None:
    phone = world.hidden["telecom"][0]["value"]
    with client_with(server, READ) as reader:
        assert ids(reader.get("/Patient", params={"phone": phone}).json()) == set()
        chained = reader.get("/EpisodeOfCare", params={"patient.address-city": world.city}).json()
        assert ids(chained) == {world.episode_open}


def test_gp_relations_of_a_protected_person_are_hidden(server: Server, world: World) -> None:
    with client_with(server, READ) as reader:
        gp_list = reader.get(
            "/EpisodeOfCare", params={"care-manager": f"Practitioner/{world.doctor}"}
        ).json()
        assert ids(gp_list) == {world.episode_open}
        assert reader.get(f"/EpisodeOfCare/{world.episode_hidden}").status_code == 404
        with_episodes = reader.get(
            "/Patient",
            params={"_id": world.hidden["id"], "_revinclude": "EpisodeOfCare:patient"},
        ).json()
        assert ids(with_episodes, "include") == set()
        included = reader.get(
            "/EpisodeOfCare",
            params={"care-manager": f"Practitioner/{world.doctor}", "_include": "*"},
        ).json()
        assert world.hidden["id"] not in ids(included, "include")


def test_privileged_callers_see_everything(server: Server, world: World) -> None:
    with client_with(server, READ, PROTECTED) as privileged:
        whole = privileged.get(f"/Patient/{world.hidden['id']}").json()
        assert whole["address"] == world.hidden["address"]
        assert whole["generalPractitioner"] == world.hidden["generalPractitioner"]
        assert privileged.get(f"/EpisodeOfCare/{world.episode_hidden}").status_code == 200
        gp_list = privileged.get(
            "/EpisodeOfCare", params={"care-manager": f"Practitioner/{world.doctor}"}
        ).json()
        assert ids(gp_list) == {world.episode_open, world.episode_hidden}


def test_the_person_themself_sees_their_address(server: Server, world: World) -> None:
    with citizen(server, world.hidden_fnr, READ) as own:
        mine = own.get(f"/Patient/{world.hidden['id']}")
        assert mine.status_code == 200, mine.text
        assert mine.json()["address"] == world.hidden["address"]
        assert own.get(f"/EpisodeOfCare/{world.episode_hidden}").status_code == 200
    with citizen(server, world.open["identifier"][0]["value"], READ) as neighbour:
        # a citizen sees only their own entries (acting for others: the access policy)
        assert neighbour.get(f"/Patient/{world.hidden['id']}").status_code == 404
        assert neighbour.get(f"/EpisodeOfCare/{world.episode_hidden}").status_code == 404
        own = neighbour.get("/Patient", params={"address-city": world.city}).json()
        assert ids(own) == {world.open["id"]}
        assert ids(neighbour.get("/EpisodeOfCare").json()) == {world.episode_open}
        assert neighbour.get("/Practitioner", params={"_count": "1"}).status_code == 200


def test_earlier_versions_are_redacted_once_a_person_is_protected(
    server: Server, fhir: httpx.Client
) -> None:
    before = put(fhir, person(new_fnr(), city="Gamleby"))
    protected = {**before, "meta": {"security": [
        {"system": "http://ehelse.no/fhir/CodeSystem/gd-address-confidentiality",
         "code": STRICTLY_CONFIDENTIAL}]},
        "address": [{"line": ["Ny adresse 1"], "city": "Nyby"}]}  # fmt: skip
    put(fhir, protected)
    with client_with(server, READ) as reader:
        old = reader.get(f"/Patient/{before['id']}/_history/1").json()
        assert "address" not in old and "telecom" not in old
        history = reader.get(f"/Patient/{before['id']}/_history").json()
        assert all("address" not in e["resource"] for e in history["entry"])
        system_history = reader.get("/Patient/_history", params={"_count": "1000"}).json()
        mine = [
            e["resource"]
            for e in system_history["entry"]
            if e.get("resource", {}).get("id") == before["id"]
        ]  # (deletions have none)
        assert len(mine) == 2 and all("address" not in r for r in mine)
    with client_with(server, READ, PROTECTED) as privileged:
        old = privileged.get(f"/Patient/{before['id']}/_history/1").json()
        assert old["address"][0]["city"] == "Gamleby"
