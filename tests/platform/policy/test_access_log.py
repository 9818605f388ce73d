"""The citizen's access log over HTTP ("who has seen my information"): every access by
others to their information across services, with who, where, why and what; their own
accesses left out; the log of a child they represent; filters and paging."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from policy_helpers import Person, World, basis

from conftest import TEST_ORGNR, Server

ACTING_FOR = "samhandling-acting-for"


@dataclass
class Scene:
    world: World
    patient: Person
    parent: Person
    child: Person
    doctor: tuple[str, str]
    entry: str
    child_entry: str


@pytest.fixture(scope="module")
def scene(server: Server) -> Iterator[Scene]:
    admin = httpx.Client(base_url=server.fhir, timeout=30, auth=server.auth)
    world = World(server, admin)
    world.organisation()
    parent = world.person(36)
    scene = Scene(
        world,
        patient=world.person(55),
        parent=parent,
        child=world.person(6, parents=(parent,)),
        doctor=world.doctor(),
        entry="",
        child_entry="",
    )
    scene.entry = f"Observation/{world.observation(scene.patient)}"
    scene.child_entry = f"Observation/{world.observation(scene.child)}"
    yield scene
    admin.close()


def log_of(scene: Scene, person: Person, query: str = "", **headers: str) -> httpx.Response:
    with scene.world.citizen(person, base=scene.world.server.url) as citizen:
        return citizen.get(f"/audit/access-log{query}", headers=headers)


def test_the_log_shows_who_looked_where_and_why(scene: Scene) -> None:
    with scene.world.clinician(scene.doctor[0]) as doctor:
        assert doctor.get(f"/{scene.entry}", headers=basis("SAMTYKKE")).status_code == 200
        assert (
            doctor.get(f"/{scene.entry}", headers=basis("AKUTT", "hjertestans")).status_code == 200
        )
    with scene.world.citizen(scene.patient) as own:  # the citizen's own look is not listed
        assert own.get(f"/{scene.entry}").status_code == 200
    response = log_of(scene, scene.patient)
    assert response.status_code == 200, response.text
    log = response.json()
    assert log["person"] == scene.patient.pid
    entries = log["entries"]
    assert [e["basis"] for e in entries[:2]] == ["AKUTT", "SAMTYKKE"]  # newest first
    emergency, consent = entries[0], entries[1]
    assert emergency["emergency"] is True and emergency["reason"] == "hjertestans"
    assert consent["emergency"] is False
    who = consent["who"]
    assert who["kind"] == "personnel"
    assert who["hprNumber"] == scene.doctor[1]
    assert who["profession"] in ("LE", "Lege")
    assert who["organisationNumber"] == TEST_ORGNR
    assert who["organisation"] == "Testbyen sykehus"
    assert consent["service"] == "fhir" and consent["interaction"] == "read"
    assert consent["what"] == [f"{scene.entry}/_history/1"]
    assert all(e["who"].get("kind") != "citizen" for e in entries)


def test_refused_attempts_are_in_the_log(scene: Scene) -> None:
    with scene.world.clinician(scene.doctor[0], level=3) as weak:
        assert weak.get(f"/{scene.entry}", headers=basis("SAMTYKKE")).status_code == 403
    entries = log_of(scene, scene.patient).json()["entries"]
    refused = [e for e in entries if e["outcome"] == "refused"]
    assert refused and "security-level" in refused[0]["outcomeText"]


def test_filters_by_period_service_and_emergency(scene: Scene) -> None:
    with scene.world.clinician(scene.doctor[0]) as doctor:
        doctor.get(f"/{scene.entry}", headers=basis("AKUTT", "ulykke"))
    tomorrow = (datetime.now(UTC) + timedelta(days=1)).date().isoformat()
    assert log_of(scene, scene.patient, f"?from={tomorrow}").json()["entries"] == []
    assert log_of(scene, scene.patient, "?service=kjernejournal").json()["entries"] == []
    emergencies = log_of(scene, scene.patient, "?emergency=true").json()["entries"]
    assert emergencies and all(e["emergency"] for e in emergencies)
    assert log_of(scene, scene.patient, "?from=yesterday").status_code == 400


def test_paging_follows_the_next_link(scene: Scene) -> None:
    with scene.world.clinician(scene.doctor[0]) as doctor:
        for _ in range(3):
            doctor.get(f"/{scene.entry}", headers=basis("UNNTAK"))
    first = log_of(scene, scene.patient, "?count=2").json()
    assert len(first["entries"]) == 2 and "next" in first
    query = first["next"].split("?", 1)[1]
    second = log_of(scene, scene.patient, f"?{query}").json()
    assert {e["id"] for e in first["entries"]}.isdisjoint({e["id"] for e in second["entries"]})
    assert int(second["entries"][0]["id"]) < int(first["entries"][-1]["id"])


def test_a_parent_reads_the_childs_log_and_nobody_else_does(scene: Scene) -> None:
    with scene.world.clinician(scene.doctor[0]) as doctor:
        assert doctor.get(f"/{scene.child_entry}", headers=basis("SAMTYKKE")).status_code == 200
    child_log = log_of(scene, scene.parent, **{ACTING_FOR: scene.child.pid})
    assert child_log.status_code == 200, child_log.text
    assert any(
        e["what"] == [f"{scene.child_entry}/_history/1"] for e in child_log.json()["entries"]
    )
    other = log_of(scene, scene.patient, **{ACTING_FOR: scene.child.pid})
    assert other.status_code == 403


def test_only_citizens_read_an_access_log(scene: Scene) -> None:
    with scene.world.clinician(scene.doctor[0], base=scene.world.server.url) as doctor:
        assert doctor.get("/audit/access-log").status_code in (401, 403)


def test_a_citizen_does_not_read_the_whole_trail(scene: Scene) -> None:
    from conftest import register_client
    from samhandling.services.trust.tokentool import DpopAuth, TokenClient

    server = scene.world.server
    scopes = "samhandling:audit/read samhandling:audit/own"
    config = register_client(server, "--citizen", "--scope", "samhandling:audit/read",
                             "--scope", "samhandling:audit/own",
                             "--redirect-uri", "http://127.0.0.1:9/callback")  # fmt: skip
    tokens = TokenClient(server.url, config["client_id"], config["jwk"])
    signed_in = tokens.sign_in(
        scene.patient.pid,
        scope=f"openid helseid://scopes/identity/pid {scopes}",
        redirect_uri="http://127.0.0.1:9/callback",
    )
    auth = DpopAuth(signed_in, tokens.dpop)
    with httpx.Client(base_url=server.url, timeout=30, auth=auth) as citizen:
        assert citizen.get("/audit/AuditEvent").status_code == 403
        assert citizen.get("/audit/access-log").status_code == 200
