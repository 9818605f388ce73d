"""The access decision table, run through HTTP against the real services: caller kind x
security level x HPR status x access basis x the patient's reservations and blocks x
representation by age band -> allowed, or refused with the reason code
(docs/services/access-and-audit.md has the same table)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest
from policy_helpers import Person, World, basis, ids, reason_of

from conftest import Server
from samhandling.platform.identifiers import FNR_SYSTEM

ACTING_FOR = "samhandling-acting-for"
CHANGES_SEEN_WITHIN = 1.2  # seconds


@dataclass
class Setting:
    """The world the table runs in: persons, health personnel and their information."""

    world: World
    persons: dict[str, Person]
    entries: dict[str, str]  # name -> "Type/id"
    callers: dict[str, httpx.Client]


@pytest.fixture(scope="module")
def setting(server: Server) -> Iterator[Setting]:
    admin = httpx.Client(base_url=server.fhir, timeout=30, auth=server.auth)
    world = World(server, admin)
    world.organisation()
    doctor = world.doctor()
    suspended = world.doctor(suspended=True)
    blocked = world.doctor()
    p: dict[str, Person] = {}
    p["plain"] = world.person(40)
    p["reserved"] = world.person(41)
    p["blocking"] = world.person(42)
    p["hiding"] = world.person(43)
    p["parent"] = world.person(38)
    p["stranger"] = world.person(50)
    p["child"] = world.person(8, parents=(p["parent"],))
    p["youth"] = world.person(14, parents=(p["parent"],))
    p["teen"] = world.person(17, parents=(p["parent"],))
    p["protected-child"] = world.person(7, protected=True, parents=(p["parent"],))
    p["giver"] = world.person(30)
    p["expired-giver"] = world.person(31)
    p["other-service-giver"] = world.person(32)
    e = {name: f"Observation/{world.observation(person)}" for name, person in p.items()}
    e["hidden"] = f"Observation/{world.observation(p['hiding'], 'skjult')}"
    e["youth-vaccine"] = f"Immunization/{world.immunization(p['youth'])}"
    for name in ("plain", "reserved"):
        e[f"{name}-binary"] = f"Binary/{world.document(p[name])[1]}"
    hidden_document, hidden_binary = world.document(p["hiding"])
    e["hidden-binary"] = f"Binary/{hidden_binary}"
    world.reserve(p["reserved"])
    world.reserve(p["reserved"], "kjernejournal")  # documents are Kjernejournal's
    world.block_personnel(p["blocking"], blocked[1])
    world.hide(p["hiding"], e["hidden"])
    world.hide(p["hiding"], f"DocumentReference/{hidden_document}")
    world.mandate(p["giver"], p["parent"])
    world.mandate(p["expired-giver"], p["parent"], end="2021-12-31")
    world.mandate(p["other-service-giver"], p["parent"], services=("kjernejournal",))
    time.sleep(CHANGES_SEEN_WITHIN)  # the registers' caches notice changes within a second
    callers = {
        "doctor": world.clinician(doctor[0]),
        "doctor-level-3": world.clinician(doctor[0], level=3),
        "suspended-doctor": world.clinician(suspended[0]),
        "blocked-doctor": world.clinician(blocked[0]),
        "system": admin,
        "parent": world.citizen(p["parent"]),
        "stranger": world.citizen(p["stranger"]),
        "hiding": world.citizen(p["hiding"]),
    }
    yield Setting(world, p, e, callers)
    for client in callers.values():
        client.close()


# (caller, access basis [, reason], action, whose / which entry, expected status, reason code)
SAMTYKKE, AKUTT, UNNTAK = basis("SAMTYKKE"), basis("AKUTT", "bevisstløs"), basis("UNNTAK")
TABLE = [
    # health personnel: security level, HPR, access basis
    ("doctor", SAMTYKKE, "read", "plain", 200, None),
    ("doctor", UNNTAK, "search", "plain", 200, None),
    ("doctor", UNNTAK, "search-by-patient", "plain", 200, None),
    ("doctor", UNNTAK, "search-by-number", "plain", 200, None),
    ("doctor", AKUTT, "read", "plain", 200, None),
    ("doctor", basis("AKUTT"), "read", "plain", 400, "access-reason-missing"),
    ("doctor", {}, "read", "plain", 400, "access-basis-missing"),
    ("doctor-level-3", SAMTYKKE, "read", "plain", 403, "security-level"),
    ("suspended-doctor", SAMTYKKE, "read", "plain", 403, "hpr-not-authorised"),
    ("doctor", SAMTYKKE, "search-everyone", "plain", 403, "patient-required"),
    ("doctor", SAMTYKKE, "history", "plain", 403, "patient-required"),
    ("doctor", SAMTYKKE, "create", "plain", 201, None),
    ("doctor", {}, "create", "plain", 400, "access-basis-missing"),
    # the patient's choices
    ("doctor", SAMTYKKE, "read", "reserved", 403, "reserved"),
    ("doctor", AKUTT, "search", "reserved", 403, "reserved"),
    ("doctor", SAMTYKKE, "create", "reserved", 403, "reserved"),
    ("system", {}, "read", "reserved", 403, "reserved"),
    ("blocked-doctor", SAMTYKKE, "read", "blocking", 403, "personnel-blocked"),
    ("blocked-doctor", AKUTT, "read", "blocking", 403, "personnel-blocked"),
    ("doctor", SAMTYKKE, "read", "blocking", 200, None),
    ("blocked-doctor", SAMTYKKE, "read", "plain", 200, None),
    ("doctor", SAMTYKKE, "read", "hidden", 404, None),
    ("doctor", AKUTT, "read", "hidden", 404, None),
    ("system", {}, "read", "hidden", 404, None),
    ("doctor", SAMTYKKE, "search", "hiding", 200, None),  # finds the other entry only
    ("hiding", {}, "read", "hidden", 200, None),  # the person sees what they hid
    # a document's content (Binary) is judged by the document (its securityContext)
    ("doctor", SAMTYKKE, "read", "plain-binary", 200, None),
    ("doctor", SAMTYKKE, "read", "reserved-binary", 403, "reserved"),
    ("doctor", SAMTYKKE, "read", "hidden-binary", 404, None),
    ("stranger", {}, "read", "plain-binary", 404, None),
    # citizens: their own information, and representation by age band
    ("stranger", {}, "search-own", "stranger", 200, None),
    ("stranger", {}, "read", "plain", 404, None),
    ("stranger", {}, "search", "plain", 403, "not-own-information"),
    ("parent", {ACTING_FOR: "child"}, "read", "child", 200, None),
    ("parent", {ACTING_FOR: "child"}, "search-own", "child", 200, None),
    ("parent", {ACTING_FOR: "child"}, "read", "youth", 404, None),  # not whom they act for
    ("parent", {ACTING_FOR: "youth"}, "read", "youth", 403, "restricted-for-representative"),
    ("parent", {ACTING_FOR: "youth"}, "read", "youth-vaccine", 200, None),
    ("parent", {ACTING_FOR: "youth"}, "read-person", "youth", 200, None),
    ("parent", {ACTING_FOR: "teen"}, "read", "teen", 403, "no-representation"),
    ("parent", {ACTING_FOR: "protected-child"}, "read", "protected-child", 403,
     "representation-protected"),
    ("stranger", {ACTING_FOR: "child"}, "read", "child", 403, "no-representation"),
    ("parent", {ACTING_FOR: "giver"}, "read", "giver", 200, None),
    ("parent", {ACTING_FOR: "expired-giver"}, "read", "expired-giver", 403, "no-representation"),
    ("parent", {ACTING_FOR: "other-service-giver"}, "read", "other-service-giver", 403,
     "no-representation"),
    # systems: scopes only, but the patient's reservations and hidden entries hold
    ("system", {}, "read", "plain", 200, None),
    ("system", {}, "search-everyone", "plain", 200, None),
]  # fmt: skip


def _request(s: Setting, caller: str, headers: dict, action: str, target: str) -> httpx.Response:
    headers = dict(headers)
    if ACTING_FOR in headers:
        headers[ACTING_FOR] = s.persons[headers[ACTING_FOR]].pid
    client = s.callers[caller]
    entry = s.entries.get(target)
    person = s.persons.get(target)
    if action == "read":
        return client.get(f"/{entry}", headers=headers)
    assert person is not None
    if action == "search":
        return client.get(f"/Observation?subject=Patient/{person.patient_id}", headers=headers)
    if action == "search-by-patient":
        return client.get(f"/Observation?patient=Patient/{person.patient_id}", headers=headers)
    if action == "search-by-number":
        query = f"patient.identifier={FNR_SYSTEM}|{person.pid}"
        return client.get(f"/Observation?{query}", headers=headers)
    if action == "search-own":
        return client.get("/Observation", headers=headers)
    if action == "search-everyone":
        return client.get("/Observation?status=final&_count=5", headers=headers)
    if action == "history":
        return client.get(f"/{entry}/_history", headers=headers)
    if action == "read-person":
        return client.get(f"/Patient/{person.patient_id}", headers=headers)
    assert action == "create"
    observation = {
        "resourceType": "Observation",
        "status": "final",
        "code": {"text": "puls"},
        "subject": {"reference": f"Patient/{person.patient_id}"},
    }
    return client.post("/Observation", json=observation, headers=headers)


@pytest.mark.parametrize(
    ("caller", "headers", "action", "target", "status", "reason"),
    TABLE,
    ids=[f"{r[0]}-{r[2]}-{r[3]}-{'-'.join(str(v) for v in r[1].values())}" for r in TABLE],
)
def test_decision(
    setting: Setting,
    caller: str,
    headers: dict,
    action: str,
    target: str,
    status: int,
    reason: str | None,
) -> None:
    response = _request(setting, caller, headers, action, target)
    assert response.status_code == status, response.text
    if reason is not None:
        assert reason_of(response) == reason, response.text


def test_a_search_leaves_hidden_entries_out_in_the_query(setting: Setting) -> None:
    """The hidden entry is neither in the page nor in the total (narrowed in the query)."""
    person = setting.persons["hiding"]
    response = setting.callers["doctor"].get(
        f"/Observation?subject=Patient/{person.patient_id}&_total=accurate", headers=SAMTYKKE
    )
    assert response.status_code == 200, response.text
    found = response.json()
    hidden = setting.entries["hidden"].split("/")[1]
    visible = setting.entries["hiding"].split("/")[1]
    assert ids(found) == {visible}
    assert found["total"] == 1
    own = setting.callers["hiding"].get("/Observation?_total=accurate").json()
    assert ids(own) == {visible, hidden} and own["total"] == 2


def test_a_citizen_searches_only_their_own_or_whom_they_represent(setting: Setting) -> None:
    p, e = setting.persons, setting.entries
    own = setting.callers["stranger"].get("/Observation").json()
    assert ids(own) == {e["stranger"].split("/")[1]}
    child = (
        setting.callers["parent"].get("/Observation", headers={ACTING_FOR: p["child"].pid}).json()
    )
    assert ids(child) == {e["child"].split("/")[1]}
