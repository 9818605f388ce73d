"""The terminology operations over HTTP, with the R4 parameters and their error cases, on
code systems and value sets the tests store (each test under URLs of its own)."""

from __future__ import annotations

import time
import uuid

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import TEST_ORGNR, Server, register_client
from samhandling.services.trust.tokentool import DpopAuth, TokenClient

ICPC_LIKE = [
    {"code": "K", "display": "Hjerte-karsystemet", "concept": [
        {"code": "K86", "display": "Hypertensjon ukomplisert",
         "designation": [{"language": "en", "value": "Hypertension uncomplicated"}]},
        {"code": "K87", "display": "Hypertensjon med komplikasjoner"},
        {"code": "K74", "display": "Angina pectoris", "property": [
            {"code": "inactive", "valueBoolean": True}]},
    ]},
    {"code": "T", "display": "Endokrine, metabolske og ernæringsmessige", "concept": [
        {"code": "T90", "display": "Diabetes type 2", "concept": [
            {"code": "T90.1", "display": "Diabetes type 2 med nevropati"}]},
    ]},
]  # fmt: skip


def stored(fhir: httpx.Client, resource: dict) -> dict:
    response = fhir.post(f"/{resource['resourceType']}", json=resource)
    assert response.status_code == 201, response.text
    return response.json()


@pytest.fixture()
def system(fhir: httpx.Client) -> tuple[str, dict]:
    url = f"http://example.org/cs/{uuid.uuid4().hex}"
    resource = stored(fhir, {
        "resourceType": "CodeSystem", "url": url, "version": "2", "name": "TestICPC",
        "status": "active", "content": "complete", "hierarchyMeaning": "is-a",
        "concept": ICPC_LIKE})  # fmt: skip
    return url, resource


def params(response: httpx.Response) -> dict:
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["resourceType"] == "Parameters"
    out: dict = {}
    for p in body["parameter"]:
        value = next((v for k, v in p.items() if k.startswith("value")), p.get("part"))
        out.setdefault(p["name"], []).append(value)
    return {k: v[0] if len(v) == 1 else v for k, v in out.items()}


def test_lookup(fhir: httpx.Client, system: tuple[str, dict]) -> None:
    url, resource = system
    found = params(fhir.get("/CodeSystem/$lookup", params={"system": url, "code": "T90"}))
    assert found["name"] == "TestICPC" and found["version"] == "2"
    assert found["display"] == "Diabetes type 2"
    properties = {(p[0]["valueCode"], next(iter(p[1].values())) if len(p[1]) == 2 else None)
                  for p in found["property"]}  # fmt: skip
    assert {c for c, _ in properties} >= {"parent", "child", "inactive"}
    post = fhir.post("/CodeSystem/$lookup", json={"resourceType": "Parameters", "parameter": [
        {"name": "coding", "valueCoding": {"system": url, "code": "K86"}},
        {"name": "displayLanguage", "valueCode": "en"}]})  # fmt: skip
    assert params(post)["display"] == "Hypertension uncomplicated"
    instance = fhir.get(f"/CodeSystem/{resource['id']}/$lookup", params={"code": "K86"})
    assert params(instance)["display"] == "Hypertensjon ukomplisert"
    unknown = fhir.get("/CodeSystem/$lookup", params={"system": url, "code": "X99"})
    assert unknown.status_code == 404
    assert unknown.json()["resourceType"] == "OperationOutcome"
    no_system = fhir.get("/CodeSystem/$lookup", params={"system": url + "x", "code": "K86"})
    assert no_system.status_code == 404
    assert fhir.get("/CodeSystem/$lookup", params={"system": url}).status_code == 400


def test_validate_code_in_a_code_system(fhir: httpx.Client, system: tuple[str, dict]) -> None:
    url, _ = system
    ok = params(fhir.get("/CodeSystem/$validate-code", params={"url": url, "code": "K86"}))
    assert ok["result"] is True and ok["display"] == "Hypertensjon ukomplisert"
    assert "message" not in ok
    unknown = params(fhir.get("/CodeSystem/$validate-code", params={"url": url, "code": "K99"}))
    assert unknown["result"] is False and "K99" in unknown["message"]
    wrong_display = params(fhir.get("/CodeSystem/$validate-code", params={
        "url": url, "code": "K86", "display": "Blodtrykk"}))  # fmt: skip
    assert wrong_display["result"] is True and "Blodtrykk" in wrong_display["message"]
    inactive = params(fhir.get("/CodeSystem/$validate-code", params={"url": url, "code": "K74"}))
    assert inactive["result"] is True and "inactive" in inactive["message"]
    no_system = params(fhir.get("/CodeSystem/$validate-code", params={
        "url": "http://example.org/none", "code": "K86"}))  # fmt: skip
    assert no_system["result"] is False and "not known" in no_system["message"]


def test_subsumes(fhir: httpx.Client, system: tuple[str, dict]) -> None:
    url, _ = system

    def outcome(a: str, b: str) -> str:
        given = {"system": url, "codeA": a, "codeB": b}
        return params(fhir.get("/CodeSystem/$subsumes", params=given))["outcome"]

    assert outcome("T", "T90.1") == "subsumes"
    assert outcome("T90.1", "T") == "subsumed-by"
    assert outcome("K86", "K86") == "equivalent"
    assert outcome("K86", "T90") == "not-subsumed"
    assert fhir.get("/CodeSystem/$subsumes", params={
        "system": url, "codeA": "K86", "codeB": "nope"}).status_code == 404  # fmt: skip


def valueset(fhir: httpx.Client, compose: dict) -> dict:
    return stored(fhir, {"resourceType": "ValueSet", "url": f"http://example.org/vs/{uuid.uuid4().hex}",
                         "status": "active", "compose": compose})  # fmt: skip


def codes(expansion: dict) -> list[str]:
    return [c["code"] for c in expansion["expansion"].get("contains", [])]


def test_expand_with_filters(fhir: httpx.Client, system: tuple[str, dict]) -> None:
    url, _ = system
    cardio = valueset(fhir, {"include": [{"system": url, "filter": [
        {"property": "concept", "op": "is-a", "value": "K"}]}]})  # fmt: skip
    expanded = fhir.get("/ValueSet/$expand", params={"url": cardio["url"]}).json()
    assert codes(expanded) == ["K", "K86", "K87", "K74"]
    assert expanded["expansion"]["total"] == 4
    below = valueset(fhir, {"include": [{"system": url, "filter": [
        {"property": "concept", "op": "descendent-of", "value": "T"}]}],
        "exclude": [{"system": url, "concept": [{"code": "T90.1"}]}]})  # fmt: skip
    assert codes(fhir.get(f"/ValueSet/{below['id']}/$expand").json()) == ["T90"]
    pattern = valueset(fhir, {"include": [{"system": url, "filter": [
        {"property": "code", "op": "regex", "value": "K8[0-9]"}]}]})  # fmt: skip
    assert codes(fhir.get(f"/ValueSet/{pattern['id']}/$expand").json()) == ["K86", "K87"]
    not_a = valueset(fhir, {"include": [{"system": url, "filter": [
        {"property": "concept", "op": "is-not-a", "value": "K"}]}]})  # fmt: skip
    assert set(codes(fhir.get(f"/ValueSet/{not_a['id']}/$expand").json())) == {"T", "T90", "T90.1"}
    inactive = fhir.get("/ValueSet/$expand", params={"url": cardio["url"], "activeOnly": "true"})
    assert "K74" not in codes(inactive.json())
    imported = valueset(fhir, {"include": [{"valueSet": [cardio["url"]]}]})
    assert codes(fhir.get(f"/ValueSet/{imported['id']}/$expand").json()) == codes(expanded)


def test_expand_text_filter_and_paging(fhir: httpx.Client, system: tuple[str, dict]) -> None:
    url, _ = system
    everything = valueset(fhir, {"include": [{"system": url}]})
    typed = fhir.get("/ValueSet/$expand", params={"url": everything["url"], "filter": "hyper"})
    assert codes(typed.json()) == ["K86", "K87"]
    words = fhir.get("/ValueSet/$expand", params={"url": everything["url"], "filter": "diab nevro"})
    assert codes(words.json()) == ["T90.1"]
    page = fhir.get("/ValueSet/$expand", params={"url": everything["url"], "offset": "2",
                                                 "count": "2"}).json()  # fmt: skip
    assert page["expansion"]["total"] == 7 and page["expansion"]["offset"] == 2
    assert codes(page) == ["K87", "K74"]
    designations = fhir.get("/ValueSet/$expand", params={
        "url": everything["url"], "filter": "K86", "includeDesignations": "true",
        "displayLanguage": "en"}).json()  # fmt: skip
    (entry,) = designations["expansion"]["contains"]
    assert entry["display"] == "Hypertension uncomplicated" and entry["designation"]
    assert (
        fhir.get("/ValueSet/$expand", params={"url": "http://example.org/none"}).status_code == 404
    )
    assert fhir.get("/ValueSet/$expand", params={"url": everything["url"],
                                                 "count": "-1"}).status_code == 400  # fmt: skip


def test_validate_code_in_a_value_set(fhir: httpx.Client, system: tuple[str, dict]) -> None:
    url, _ = system
    cardio = valueset(fhir, {"include": [{"system": url, "filter": [
        {"property": "concept", "op": "is-a", "value": "K"}]}]})  # fmt: skip

    def check(**given: str) -> dict:
        return params(fhir.get("/ValueSet/$validate-code", params={"url": cardio["url"], **given}))

    assert check(system=url, code="K86")["result"] is True
    assert check(system=url, code="T90")["result"] is False
    assert check(system=url, code="K74", activeOnly="true")["result"] is False
    posted = fhir.post("/ValueSet/$validate-code", json={
        "resourceType": "Parameters", "parameter": [
        {"name": "url", "valueUri": cardio["url"]},
        {"name": "codeableConcept", "valueCodeableConcept": {"coding": [
            {"system": url, "code": "K87", "display": "feil tekst"}]}}]})  # fmt: skip
    answer = params(posted)
    assert answer["result"] is True and "feil tekst" in answer["message"]
    unknown_set = params(fhir.get("/ValueSet/$validate-code", params={
        "url": "http://example.org/none", "system": url, "code": "K86"}))  # fmt: skip
    assert unknown_set["result"] is False


def test_translate(fhir: httpx.Client) -> None:
    source, target = "http://example.org/icpc", "http://example.org/icd"
    conceptmap = stored(fhir, {
        "resourceType": "ConceptMap", "url": f"http://example.org/cm/{uuid.uuid4().hex}",
        "status": "active", "group": [{"source": source, "target": target, "element": [
            {"code": "K86", "target": [{"code": "I10", "display": "Essensiell hypertensjon",
                                        "equivalence": "equivalent"}]},
            {"code": "K87", "target": [{"code": "I11", "equivalence": "wider"},
                                       {"code": "I12", "equivalence": "wider"}]}]}]})  # fmt: skip
    found = params(fhir.get("/ConceptMap/$translate", params={
        "url": conceptmap["url"], "system": source, "code": "K86"}))  # fmt: skip
    assert found["result"] is True
    assert found["match"][1]["valueCoding"] == {"system": target, "code": "I10",
                                                 "display": "Essensiell hypertensjon"}  # fmt: skip
    two = params(fhir.get(f"/ConceptMap/{conceptmap['id']}/$translate",
                          params={"system": source, "code": "K87"}))  # fmt: skip
    assert len(two["match"]) == 2
    back = params(fhir.get("/ConceptMap/$translate", params={
        "url": conceptmap["url"], "system": target, "code": "I10", "reverse": "true"}))  # fmt: skip
    assert back["match"][1]["valueCoding"]["code"] == "K86"
    none = params(fhir.get("/ConceptMap/$translate", params={
        "url": conceptmap["url"], "system": source, "code": "A01"}))  # fmt: skip
    assert none["result"] is False


def test_operations_need_the_terminology_scope_and_are_in_the_capability_statement(
    server: Server, fhir: httpx.Client, system: tuple[str, dict]
) -> None:
    statement = httpx.get(f"{server.fhir}/metadata").json()
    by_type = {r["type"]: r for r in statement["rest"][0]["resource"]}
    assert {o["name"] for o in by_type["ValueSet"]["operation"]} == {"expand", "validate-code"}
    assert {o["name"] for o in by_type["CodeSystem"]["operation"]} == {
        "lookup", "validate-code", "subsumes"}  # fmt: skip
    assert fhir.get("/Patient/1/$everything").status_code == 501
    assert fhir.delete("/CodeSystem/$lookup").status_code == 405
    config = register_client(server, "--scope", "samhandling:fhir/read", "--orgnr", TEST_ORGNR)
    client = TokenClient(server.url, config["client_id"], config["jwk"])
    auth = DpopAuth(client.client_credentials(), client.dpop)
    lookup = httpx.get(f"{server.fhir}/CodeSystem/$lookup", auth=auth,
                       params={"system": system[0], "code": "K86"})  # fmt: skip
    assert lookup.status_code == 403
    assert 'scope="samhandling:terminology/read"' in lookup.headers["www-authenticate"]


@pytest.mark.parametrize(
    "body",
    [
        {"resourceType": "Patient"},
        {"resourceType": "Parameters", "parameter": "nope"},
        {"resourceType": "Parameters", "parameter": [{"valueString": "x"}]},
        {"resourceType": "Parameters", "parameter": [{"name": "code"}]},
        {"resourceType": "Parameters", "parameter": [
            {"name": "code", "valueCode": "a", "valueString": "b"}]},
        {"resourceType": "Parameters", "parameter": [{"name": "coding", "valueString": "x"}]},
        {"resourceType": "Parameters", "parameter": [
            {"name": "code", "valueCode": "a"}, {"name": "code", "valueCode": "b"},
            {"name": "system", "valueUri": "http://x"}]},
    ],
)  # fmt: skip
def test_malformed_parameters_are_400(fhir: httpx.Client, body: dict) -> None:
    response = fhir.post("/CodeSystem/$lookup", json=body)
    assert response.status_code == 400, response.text
    assert response.json()["resourceType"] == "OperationOutcome"


SETTINGS = settings(max_examples=50, deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture])  # fmt: skip
names = st.sampled_from(["url", "system", "code", "display", "filter", "count", "offset",
                         "activeOnly", "version", "codeA", "codeB", "reverse", "x"])  # fmt: skip


@SETTINGS
@given(
    path=st.sampled_from(["/CodeSystem/$lookup", "/CodeSystem/$validate-code",
                          "/CodeSystem/$subsumes", "/ValueSet/$expand",
                          "/ValueSet/$validate-code", "/ConceptMap/$translate"]),
    query=st.lists(st.tuples(names, st.text(max_size=12)), max_size=5),
)  # fmt: skip
def test_operations_never_fail_with_500(
    fhir: httpx.Client, path: str, query: list[tuple[str, str]]
) -> None:
    response = fhir.get(path, params=query)
    assert response.status_code < 500 or response.status_code == 501, response.text
    assert response.json()["resourceType"] in ("Parameters", "ValueSet", "OperationOutcome")


def test_a_changed_code_system_is_used_within_a_second(
    fhir: httpx.Client, system: tuple[str, dict]
) -> None:
    url, resource = system
    check = {"url": url, "code": "K99"}
    assert params(fhir.get("/CodeSystem/$validate-code", params=check))["result"] is False
    changed = {**resource, "concept": [*ICPC_LIKE, {"code": "K99", "display": "Annen"}]}
    assert fhir.put(f"/CodeSystem/{resource['id']}", json=changed).status_code == 200
    time.sleep(1.2)  # every worker looks for terminology changes once a second
    assert params(fhir.get("/CodeSystem/$validate-code", params=check))["result"] is True
