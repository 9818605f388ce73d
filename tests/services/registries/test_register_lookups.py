"""The generated population over the API: the lookups other services make — by HER-id,
organisation number and name, endpoints and keys, GP lists, children, authorisation."""

from __future__ import annotations

import base64
import subprocess
import sys

import httpx
import orjson
import pytest

from conftest import TEST_ENV, Server
from samhandling.platform.identifiers import FNR_SYSTEM, HER_SYSTEM, ORGNR_SYSTEM
from samhandling.services.registries.model import (
    ADDRESS_COMPONENT_TYPE,
    PARENTAL_RESPONSIBILITY,
    PUBLIC_KEY,
)
from samhandling.synth.registers import RegisterPopulation, register_population

PERSONS, SEED = 400, 31


@pytest.fixture(scope="module")
def population(server: Server) -> RegisterPopulation:
    """The population, loaded into the session server's database with the CLI."""
    done = subprocess.run(
        [sys.executable, "-m", "samhandling", "demo", "--persons", str(PERSONS),
         "--seed", str(SEED), "--patients", "0", "--data-dir", str(server.data_dir),
         "--database-url", server.database_url],
        capture_output=True, text=True, timeout=300, env=TEST_ENV,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return register_population(PERSONS, SEED)


def matches(bundle: dict) -> list[dict]:
    return [e["resource"] for e in bundle.get("entry", []) if e["search"]["mode"] == "match"]


def test_organisation_lookups(fhir: httpx.Client, population: RegisterPopulation) -> None:
    hospital = next(o for o in population.organizations if o.type == "sykehus")
    for query in (f"{HER_SYSTEM}|{hospital.her_id}", f"{ORGNR_SYSTEM}|{hospital.orgnr}"):
        found = matches(fhir.get("/Organization", params={"identifier": query}).json())
        assert [o["id"] for o in found] == [hospital.id]
    by_name = matches(fhir.get("/Organization", params={"name:exact": hospital.name}).json())
    assert hospital.id in {o["id"] for o in by_name}
    parent = fhir.get(f"/Organization/{hospital.part_of}").json()  # the hospital trust
    assert parent["partOf"]["reference"].startswith("Organization/")  # the RHF above it
    units = matches(fhir.get("/Organization", params={"partof": hospital.part_of}).json())
    assert hospital.id in {o["id"] for o in units}


def test_endpoints_carry_the_partys_keys(
    fhir: httpx.Client, population: RegisterPopulation
) -> None:
    org = next(o for o in population.organizations if o.her_id and o.type == "sykehus")
    for code, use in (("E_KS", "enc"), ("E_SS", "sig")):
        found = matches(fhir.get("/Endpoint", params={
            "organization": f"Organization/{org.id}",
            "connection-type": f"{ADDRESS_COMPONENT_TYPE}|{code}"}).json())  # fmt: skip
        (endpoint,) = found
        (key,) = [e for e in endpoint["extension"] if e["url"] == PUBLIC_KEY]
        jwk = orjson.loads(base64.b64decode(key["valueAttachment"]["data"]))
        assert jwk == population.public_jwk(org.her_id, use)
    edi = matches(fhir.get("/Endpoint", params={
        "organization": f"Organization/{org.id}",
        "connection-type": f"{ADDRESS_COMPONENT_TYPE}|E_EDI"}).json())  # fmt: skip
    assert edi and edi[0]["address"].startswith("mailto:")


def test_gp_lists_and_a_persons_gp(fhir: httpx.Client, population: RegisterPopulation) -> None:
    gp = population.gp_roles[0]
    gp_list = {
        "care-manager": f"Practitioner/{gp.practitioner_id}",
        "status": "active",
        "organization": f"Organization/{gp.organization_id}",
        "_summary": "count",
    }
    listed = fhir.get("/EpisodeOfCare", params=gp_list).json()
    assert listed["total"] == gp.listed  # the test client may see protected persons
    person = next(p for p in population.persons if p.gp_role_id == gp.role_id)
    patient = fhir.get(f"/Patient/{person.id}").json()
    assert patient["generalPractitioner"][0]["reference"] == f"PractitionerRole/{gp.role_id}"


def test_children_with_parental_responsibility(
    fhir: httpx.Client, population: RegisterPopulation
) -> None:
    parent = next(p for p in population.persons if population.children_of(p.pid))
    expected = {child for child, responsible in population.children_of(parent.pid) if responsible}
    relations = matches(fhir.get("/RelatedPerson", params={
        "identifier": f"{FNR_SYSTEM}|{parent.pid}",
        "relationship": f"{PARENTAL_RESPONSIBILITY}|", "_include": "RelatedPerson:patient",
        "_count": "100"}).json())  # fmt: skip
    children = {r["patient"]["reference"] for r in relations}
    pids = {p.id: p.pid for p in population.persons}
    assert {pids[c.removeprefix("Patient/")] for c in children} == expected
