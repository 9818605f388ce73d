"""Who may read and write privacy choices, over HTTP on both backends: citizens their own
(and those of whom they represent), never others'; health personnel nothing; systems with
the scopes everything."""

from __future__ import annotations

import httpx
import pytest
from privacy_helpers import (
    READ,
    WRITE,
    blocked_personnel,
    power_of_attorney,
    reservation,
    signed_in_citizen,
    signed_in_personnel,
)

from conftest import Server
from samhandling.platform.auth.context import ACTING_FOR_HEADER
from samhandling.platform.identifiers import FNR_SYSTEM
from services.registries.registries_helpers import client_with, new_fnr, new_hpr


def ids(bundle: dict) -> set[str]:
    """The ids of the resources in a Bundle (not outcomes; deletions in a history have none)."""
    entries = bundle.get("entry", [])
    return {e["resource"]["id"] for e in entries
            if "resource" in e and e.get("search", {}).get("mode") != "outcome"}  # fmt: skip


def by_patient(pid: str) -> dict[str, str]:
    return {"patient:identifier": f"{FNR_SYSTEM}|{pid}"}


@pytest.fixture()
def me(server: Server, fhir: httpx.Client) -> tuple[str, httpx.Client]:
    pid = new_fnr()
    with signed_in_citizen(server, fhir, pid) as client:
        yield pid, client


def test_a_citizen_keeps_their_own_choices(me: tuple[str, httpx.Client]) -> None:
    pid, client = me
    created = client.post("/Consent", json=reservation(pid, "kjernejournal"))
    assert created.status_code == 201, created.text
    own = created.json()
    blocked = client.post("/Consent", json=blocked_personnel(pid, new_hpr())).json()
    assert client.get(f"/Consent/{own['id']}").json() == own
    assert ids(client.get("/Consent").json()) == {own["id"], blocked["id"]}
    assert ids(client.get("/Consent", params=by_patient(pid)).json()) == {own["id"], blocked["id"]}
    assert client.get(f"/Consent/{own['id']}/_history").json()["entry"][0]["resource"] == own

    changed = {**own, "provision": {**own["provision"], "period": {"end": "2030-01-01"}}}
    updated = client.put(f"/Consent/{own['id']}", json=changed)
    assert updated.status_code == 200, updated.text
    withdrawn = client.delete(f"/Consent/{own['id']}")
    assert withdrawn.status_code in (200, 204), withdrawn.text
    assert client.get(f"/Consent/{own['id']}").status_code == 410
    assert ids(client.get("/Consent").json()) == {blocked["id"]}


def test_a_citizen_never_sees_or_touches_anothers(
    fhir: httpx.Client, me: tuple[str, httpx.Client]
) -> None:
    pid, client = me
    other = new_fnr()
    theirs = fhir.post("/Consent", json=reservation(other, "results")).json()
    mine = client.post("/Consent", json=reservation(pid, "results")).json()

    assert client.get(f"/Consent/{theirs['id']}").status_code == 404
    assert client.get(f"/Consent/{theirs['id']}/_history/1").status_code == 404
    assert "entry" not in client.get(f"/Consent/{theirs['id']}/_history").json()
    assert ids(client.get("/Consent").json()) == {mine["id"]}
    assert ids(client.get("/Consent", params=by_patient(other)).json()) == set()
    assert ids(client.get("/Consent", params={"_id": theirs["id"]}).json()) == set()
    assert theirs["id"] not in ids(client.get("/Consent/_history").json())

    changed = {**theirs, "status": "inactive"}
    assert client.put(f"/Consent/{theirs['id']}", json=changed).status_code == 403
    stolen = {**theirs, "patient": mine["patient"]}  # made theirs mine
    assert client.put(f"/Consent/{theirs['id']}", json=stolen).status_code == 403
    assert client.delete(f"/Consent/{theirs['id']}").status_code == 403
    for_another = client.post("/Consent", json=reservation(other, "homecare"))
    assert for_another.status_code == 403
    assert for_another.json()["issue"][0]["expression"] == ["Consent.patient"]
    given = {**mine, "patient": theirs["patient"]}  # made mine theirs
    assert client.put(f"/Consent/{mine['id']}", json=given).status_code == 403
    assert fhir.get(f"/Consent/{theirs['id']}").json() == theirs  # all as it was
    assert fhir.get(f"/Consent/{mine['id']}").json() == mine


def test_health_personnel_get_nothing(server: Server, fhir: httpx.Client) -> None:
    patient = new_fnr()
    stored = fhir.post("/Consent", json=reservation(patient, "kjernejournal")).json()
    with signed_in_personnel(server, fhir) as doctor:
        refused = doctor.get(f"/Consent/{stored['id']}")
        assert refused.status_code == 403
        assert "health personnel have no access" in refused.json()["issue"][0]["diagnostics"]
        assert doctor.get("/Consent", params=by_patient(patient)).status_code == 403
        assert doctor.get("/Consent").status_code == 403
        assert doctor.post("/Consent", json=reservation(patient, "results")).status_code == 403
        changed = {**stored, "status": "inactive"}
        assert doctor.put(f"/Consent/{stored['id']}", json=changed).status_code == 403
        assert doctor.delete(f"/Consent/{stored['id']}").status_code == 403
    assert fhir.get(f"/Consent/{stored['id']}").json() == stored


def test_systems_with_the_scopes_see_and_write_all(server: Server, fhir: httpx.Client) -> None:
    first, second = new_fnr(), new_fnr()
    with client_with(server, READ, WRITE) as backend:
        a = backend.post("/Consent", json=reservation(first, "results"))
        b = backend.post("/Consent", json=reservation(second, "results"))
        assert a.status_code == b.status_code == 201
        both = {a.json()["id"], b.json()["id"]}
        found = backend.get("/Consent", params={"_id": ",".join(both)}).json()
        assert ids(found) == both
        assert backend.get(f"/Consent/{a.json()['id']}").status_code == 200
        assert backend.delete(f"/Consent/{b.json()['id']}").status_code in (200, 204)
    with client_with(server, READ) as reader:
        assert reader.get(f"/Consent/{a.json()['id']}").status_code == 200
        assert reader.post("/Consent", json=reservation(first, "fhir")).status_code == 403
    with client_with(server, "samhandling:fhir/read", "samhandling:fhir/write") as outsider:
        assert outsider.get(f"/Consent/{a.json()['id']}").status_code == 403
        assert outsider.post("/Consent", json=reservation(first, "fhir")).status_code == 403


def test_nobody_moves_a_choice_to_another_person(fhir: httpx.Client) -> None:
    stored = fhir.post("/Consent", json=reservation(new_fnr(), "results")).json()
    moved = {**stored, "patient": {"identifier": {"system": FNR_SYSTEM, "value": new_fnr()}}}
    response = fhir.put(f"/Consent/{stored['id']}", json=moved)
    assert response.status_code == 403, response.text
    assert response.json()["issue"][0]["expression"] == ["Consent.patient"]


def test_a_representative_keeps_choices_but_gives_no_mandates(
    server: Server, fhir: httpx.Client
) -> None:
    """A receiver of a power of attorney for every service manages the giver's choices,
    but does not give or withdraw powers of attorney in the giver's name."""
    giver, receiver = new_fnr(), new_fnr()
    with signed_in_citizen(server, fhir, giver):  # the giver is in the person register
        pass
    mandate = fhir.post("/Consent", json=power_of_attorney(giver, receiver)).json()
    with signed_in_citizen(server, fhir, receiver) as client:
        client.headers[ACTING_FOR_HEADER] = giver
        made = client.post("/Consent", json=reservation(giver, "homecare"))
        assert made.status_code == 201, made.text
        assert ids(client.get("/Consent").json()) == {mandate["id"], made.json()["id"]}
        onward = power_of_attorney(giver, new_fnr())
        assert client.post("/Consent", json=onward).status_code == 403
        assert client.delete(f"/Consent/{mandate['id']}").status_code == 403
        del client.headers[ACTING_FOR_HEADER]
        assert ids(client.get("/Consent").json()) == set()  # the receiver's own: none
