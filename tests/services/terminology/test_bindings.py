"""Binding validation on write, on a server of its own with the R4 and Norwegian terminology
loaded: unknown codes in known code systems and codes outside required bindings are
refused, naming the element and the code; extensible and preferred bindings warn."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator

import asyncpg
import httpx
import pytest
from policy_helpers import document_reference

from conftest import (
    BACKENDS,
    Server,
    postgres_admin_url,
    samhandling_cli,
    start_server,
    stop_server,
)

CLINICAL = "http://terminology.hl7.org/CodeSystem/condition-clinical"
PROFESSION = "urn:oid:2.16.578.1.12.4.1.1.9060"  # Volven 9060, in HL7 Norway's kodeverk
FAMILY = "http://hl7.no/fhir/CodeSystem/no-basis-family-relation"


@pytest.fixture(scope="module", params=BACKENDS)
def loaded(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    """A server on a fresh database with `samhandling terminology load` done."""
    data_dir = tmp_path_factory.mktemp(f"bindings-{request.param}")
    admin = None
    if request.param == "sqlite":
        url = f"sqlite:///{data_dir / 'bindings.db'}"
    else:
        admin = postgres_admin_url()
        name = f"samhandling_bindings_{uuid.uuid4().hex[:10]}"
        asyncio.run(_admin(admin, f'CREATE DATABASE "{name}"'))
        url = admin.rsplit("/", 1)[0] + f"/{name}"
    server = start_server(url, data_dir, request.param)
    try:
        samhandling_cli(server, "terminology", "load")
        yield server
    finally:
        stop_server(server)
        if admin is not None:
            asyncio.run(_admin(admin, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


async def _admin(url: str, sql: str) -> None:
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@pytest.fixture()
def api(loaded: Server) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=loaded.fhir, timeout=30, auth=loaded.auth) as client:
        yield client


def condition(code: str, system: str = CLINICAL) -> dict:
    return {"resourceType": "Condition", "subject": {"reference": "Patient/x"},
            "clinicalStatus": {"coding": [{"system": system, "code": code}]}}  # fmt: skip


def refused(response: httpx.Response) -> list[dict]:
    assert response.status_code == 422, response.text
    return response.json()["issue"]


def test_required_binding_on_create_and_update(api: httpx.Client) -> None:
    created = api.post("/Condition", json=condition("active"))
    assert created.status_code == 201, created.text
    issues = refused(api.post("/Condition", json=condition("bogus")))
    assert issues[0]["expression"] == ["Condition.clinicalStatus.coding[0].code"]
    assert "'bogus' is not a code in " + CLINICAL in issues[0]["diagnostics"]
    outside = refused(api.post("/Condition", json=condition("55561003", "http://snomed.info/sct")))
    assert outside[0]["expression"] == ["Condition.clinicalStatus"]
    assert "required binding" in outside[0]["diagnostics"]
    stored = created.json()
    update = api.put(f"/Condition/{stored['id']}", json={**condition("bogus"), "id": stored["id"]})
    refused(update)
    assert api.get(f"/Condition/{stored['id']}").json()["meta"]["versionId"] == "1"


def test_a_code_bound_by_the_schema_is_refused_too(api: httpx.Client) -> None:
    """Required bindings of code elements (Observation.status) are the schema's enums."""
    bad = api.post("/Observation", json={"resourceType": "Observation", "status": "done",
                                         "code": {"text": "x"}})  # fmt: skip
    assert bad.status_code == 400
    assert bad.json()["issue"][0]["expression"] == ["Observation.status"]


def test_norwegian_code_systems_and_profile_bindings(api: httpx.Client) -> None:
    doctor = {"resourceType": "Practitioner", "qualification": [
        {"code": {"coding": [{"system": PROFESSION, "code": "LE"}]}}]}  # fmt: skip
    assert api.post("/Practitioner", json=doctor).status_code == 201
    unknown = {"resourceType": "Practitioner", "qualification": [
        {"code": {"coding": [{"system": PROFESSION, "code": "XQ"}]}}]}  # fmt: skip
    issues = refused(api.post("/Practitioner", json=unknown))
    assert issues[0]["expression"] == ["Practitioner.qualification[0].code.coding[0].code"]
    relation = {"resourceType": "RelatedPerson", "patient": {"reference": "Patient/x"},
                "relationship": [{"coding": [{"system": FAMILY, "code": "mor"}]}]}  # fmt: skip
    assert api.post("/RelatedPerson", json=relation).status_code == 201
    relation["relationship"][0]["coding"][0]["code"] = "onkel"
    assert any("required binding" in i["diagnostics"]
               for i in refused(api.post("/RelatedPerson", json=relation)))  # fmt: skip


def test_document_types_are_volven_9602s(api: httpx.Client) -> None:
    """Kjernejournal binds a shared document's type and class to HL7 Norway's
    no-basis-documentreference-type value set (Volven 9602): a code of the right shape
    that is not in it is refused."""
    content = b"%PDF-1.4 epikrise"
    document = document_reference("x", "Binary/b", content, ("A03-2", "A00-1"))
    assert api.post("/DocumentReference", json=document).status_code == 201
    document["type"]["coding"][0]["code"] = "A99-2"
    issues = refused(api.post("/DocumentReference", json=document))
    assert [i["expression"] for i in issues] == [["DocumentReference.type"]]
    assert "no-basis-documentreference-type" in issues[0]["diagnostics"]


def test_extensible_and_preferred_bindings_warn(api: httpx.Client) -> None:
    observation = {"resourceType": "Observation", "status": "final", "code": {"text": "Puls"},
                   "category": [{"coding": [{"system": "http://example.org/kategori",
                                             "code": "egen"}]}]}  # fmt: skip
    response = api.post("/Observation", json=observation,
                        headers={"prefer": "return=OperationOutcome"})  # fmt: skip
    assert response.status_code == 201
    warnings = [i for i in response.json()["issue"] if i["severity"] == "warning"]
    assert warnings and "preferred binding" in warnings[0]["diagnostics"]
    assert warnings[0]["expression"] == ["Observation.category[0]"]


def test_a_bad_code_fails_the_whole_transaction(api: httpx.Client) -> None:
    good, bad = condition("active"), condition("nope")
    bundle = {"resourceType": "Bundle", "type": "transaction", "entry": [
        {"resource": good, "request": {"method": "POST", "url": "Condition"}},
        {"resource": bad, "request": {"method": "POST", "url": "Condition"}}]}  # fmt: skip
    response = api.post("", json=bundle)
    assert response.status_code == 422
    assert "Bundle.entry[1]" in response.text
