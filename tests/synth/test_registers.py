"""Tests for samhandling.synth.registers: the synthetic national registers (grunndata)."""

from __future__ import annotations

import base64
import hashlib
import os
import subprocess
import sys
from collections import Counter, defaultdict
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

import orjson
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from joserfc import jwe, jws
from joserfc.jwk import ECKey

from samhandling.platform.fhir.engine import FhirEngine
from samhandling.platform.fhir.rest.bundle import process_bundle
from samhandling.platform.fhir.storage import open_store
from samhandling.platform.fhir.validation import validate_resource
from samhandling.platform.fhir.walk import find
from samhandling.platform.identifiers import SYSTEM_NAMES, identifier_error
from samhandling.synth.identifiers import (
    DNR_SYSTEM,
    FNR_SYSTEM,
    HER_SYSTEM,
    HPR_SYSTEM,
    ORGNR_SYSTEM,
    RESH_SYSTEM,
    fodselsnummer_birth_date,
    is_valid_d_nummer,
    is_valid_fodselsnummer,
    is_valid_organisasjonsnummer,
)
from samhandling.synth.registers import (
    ADDRESS_CONFIDENTIALITY_SYSTEM,
    APPROVAL_TYPE_SYSTEM,
    ENTERPRISE_TYPE_SYSTEM,
    EPISODE_TYPE_SYSTEM,
    FACTS_VALID_UNTIL,
    FAMILY_RELATION_SYSTEM,
    GP_LIST_URL,
    GP_ROLE_SYSTEM,
    HPR_SUSPENSION_URL,
    PARENTAL_RESPONSIBILITY_SYSTEM,
    PROFESSION_SYSTEM,
    PROFILES,
    PUBLIC_KEY_URL,
    REFERENCE_DATE,
    RegisterPopulation,
    register_population,
)

HTEST = {
    "system": "http://terminology.hl7.org/CodeSystem/v3-ActReason",
    "code": "HTEST",
    "display": "test health data",
}
PERSONS = 2_000
SEED = 7
Resources = dict[str, dict[str, dict[str, Any]]]  # type -> id -> resource


def age(birth: date, on: date) -> int:
    return on.year - birth.year - ((on.month, on.day) < (birth.month, birth.day))


def parse_date(value: str) -> date:
    return date.fromisoformat(value[:10])


def ident(resource: dict[str, Any], system: str, use: str | None = "official") -> list[str]:
    return [
        i["value"]
        for i in resource.get("identifier", ())
        if i["system"] == system and (use is None or i.get("use") == use)
    ]


def ref_id(reference: dict[str, str], type_: str) -> str:
    kind, _, id_ = reference["reference"].partition("/")
    assert kind == type_, reference
    return id_


def coding(concepts: list[dict[str, Any]], system: str) -> list[str]:
    return [c["code"] for cc in concepts for c in cc.get("coding", ()) if c["system"] == system]


@pytest.fixture(scope="module")
def pop() -> RegisterPopulation:
    return register_population(PERSONS, SEED)


@pytest.fixture(scope="module")
def bundles(pop: RegisterPopulation) -> list[dict[str, Any]]:
    return list(pop.bundles(batch=500))


@pytest.fixture(scope="module")
def resources(bundles: list[dict[str, Any]]) -> Resources:
    out: Resources = defaultdict(dict)
    for bundle in bundles:
        for entry in bundle["entry"]:
            resource = entry["resource"]
            assert resource["id"] not in out[resource["resourceType"]]
            out[resource["resourceType"]][resource["id"]] = resource
    return out


# ------------------------------------------------------------------------ bundles and ids


def test_same_arguments_give_byte_identical_bundles(bundles: list[dict[str, Any]]) -> None:
    again = list(register_population(PERSONS, SEED).bundles(batch=500))
    assert [orjson.dumps(b) for b in again] == [orjson.dumps(b) for b in bundles]


def test_another_seed_gives_other_data(pop: RegisterPopulation) -> None:
    other = register_population(PERSONS, SEED + 1)
    assert [p.pid for p in other.persons] != [p.pid for p in pop.persons]
    first = orjson.dumps(next(other.bundles(50)))
    assert first != orjson.dumps(next(pop.bundles(50)))
    assert all(p.id.startswith(f"person-{SEED + 1}-") for p in other.persons)


def test_output_does_not_depend_on_hash_seed() -> None:
    code = (
        "import hashlib, orjson\n"
        "from samhandling.synth.registers import register_population\n"
        "h = hashlib.sha256()\n"
        "for b in register_population(300, 3).bundles():\n"
        "    h.update(orjson.dumps(b))\n"
        "print(h.hexdigest())\n"
    )
    digests = set()
    for hash_seed in ("1", "2"):
        env = dict(os.environ, PYTHONHASHSEED=hash_seed)
        out = subprocess.run(
            [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
        )
        digests.add(out.stdout.strip())
    assert len(digests) == 1


def test_bundles_are_transactions_of_puts_with_fixed_ids(
    pop: RegisterPopulation, bundles: list[dict[str, Any]]
) -> None:
    kinds = {
        "Organization": "org",
        "Endpoint": "endpoint",
        "Practitioner": "prac",
        "PractitionerRole": "role",
        "HealthcareService": "service",
        "Patient": "person",
        "RelatedPerson": "related",
        "EpisodeOfCare": "gp",
    }
    order: list[str] = []
    total = 0
    for bundle in bundles:
        assert bundle["resourceType"] == "Bundle" and bundle["type"] == "transaction"
        assert 1 <= len(bundle["entry"]) <= 500
        for entry in bundle["entry"]:
            resource = entry["resource"]
            type_, id_ = resource["resourceType"], resource["id"]
            assert entry["request"] == {"method": "PUT", "url": f"{type_}/{id_}"}
            kind, seed, number = id_.rsplit("-", 2)
            assert kind == kinds[type_] and seed == str(SEED) and len(number) == 6
            if not order or order[-1] != type_:
                order.append(type_)
            total += 1
    assert total == pop.total_resources == sum(pop.counts.values())
    assert order == list(kinds)  # each type in one run; registers before the person register
    assert sum(len(b["entry"]) for b in pop.bundles(batch=7)) == total


def test_counts_match_resources(pop: RegisterPopulation, resources: Resources) -> None:
    assert {t: len(r) for t, r in resources.items()} == pop.counts


def test_every_resource_is_valid_r4_with_tag_and_profile(resources: Resources) -> None:
    for type_, by_id in resources.items():
        for id_, resource in by_id.items():
            validate_resource(resource, type_, id=id_)
            assert resource["meta"]["tag"] == [HTEST]
            if type_ in PROFILES:
                assert resource["meta"]["profile"] == [PROFILES[type_]]
            else:
                assert "profile" not in resource["meta"]


def test_every_reference_resolves_to_an_allowed_type(resources: Resources) -> None:
    checked = 0
    for by_id in resources.values():
        for resource in by_id.values():
            for node in find(resource, frozenset({"Reference"})):
                value: dict[str, str] = node.value  # type: ignore[assignment]
                if "reference" not in value:  # Practitioner.qualification.issuer: display only
                    assert node.path.endswith(".issuer") and value == {
                        "display": "Helsedirektoratet"
                    }
                    continue
                reference = value["reference"]
                type_, _, id_ = reference.partition("/")
                assert id_ in resources[type_], (node.path, reference)
                assert not node.element.targets or type_ in node.element.targets, node.path
                checked += 1
    assert checked > 10_000


# ---------------------------------------------------------------------------- identifiers


def test_every_identifier_passes_the_registers_write_check(resources: Resources) -> None:
    checked = 0

    def walk(node: object) -> None:
        nonlocal checked
        if isinstance(node, dict):
            if node.get("system") in SYSTEM_NAMES and "value" in node:
                assert identifier_error(node["system"], node["value"]) is None, node
                checked += 1
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    for by_id in resources.values():
        for resource in by_id.values():
            walk(resource)
    assert checked > 3_000


def test_identifiers_are_valid_and_unique(resources: Resources) -> None:
    patients = resources["Patient"].values()
    fnr = [v for p in patients for v in ident(p, FNR_SYSTEM)]
    dnr = [v for p in patients for v in ident(p, DNR_SYSTEM, use=None)]
    assert all(is_valid_fodselsnummer(v) for v in fnr)
    assert all(is_valid_d_nummer(v) for v in dnr)
    assert len(set(fnr + dnr)) == len(fnr) + len(dnr)
    for p in patients:
        official = [i for i in p["identifier"] if i.get("use") == "official"]
        assert len(official) == 1
        born = fodselsnummer_birth_date(official[0]["value"])
        assert born == date.fromisoformat(p["birthDate"])
        assert (int(official[0]["value"][8]) % 2 == 0) == (p["gender"] == "female")

    orgs = resources["Organization"].values()
    orgnr = [v for o in orgs for v in ident(o, ORGNR_SYSTEM)]
    assert len(orgnr) == len(orgs) and len(set(orgnr)) == len(orgnr)
    assert all(is_valid_organisasjonsnummer(v) for v in orgnr)
    resh = [v for o in orgs for v in ident(o, RESH_SYSTEM, use=None)]
    assert len(set(resh)) == len(resh) and all(v.isdigit() for v in resh)

    her = [
        v
        for t in ("Organization", "HealthcareService", "PractitionerRole")
        for r in resources[t].values()
        for v in ident(r, HER_SYSTEM, use=None)
    ]
    assert len(set(her)) == len(her) and all(v.isdigit() and v[0] != "0" for v in her)

    pracs = resources["Practitioner"].values()
    hpr = [v for p in pracs for v in ident(p, HPR_SYSTEM)]
    assert len(hpr) == len(pracs) and len(set(hpr)) == len(hpr)
    prac_fnr = [v for p in pracs for v in ident(p, FNR_SYSTEM)]
    assert len(set(prac_fnr)) == len(pracs)


def test_practitioners_are_persons_with_the_same_number(
    pop: RegisterPopulation, resources: Resources
) -> None:
    by_fnr = {
        ident(p, FNR_SYSTEM)[0]: p for p in resources["Patient"].values() if ident(p, FNR_SYSTEM)
    }
    for record in pop.practitioners:
        prac = resources["Practitioner"][record.id]
        (fnr,) = ident(prac, FNR_SYSTEM)
        patient = by_fnr[fnr]
        assert patient["id"] == record.person_id
        for key in ("name", "gender", "birthDate"):
            assert patient[key] == prac[key]
        assert fodselsnummer_birth_date(fnr) == date.fromisoformat(prac["birthDate"])
    assert len(pop.persons) == PERSONS + len(pop.practitioners)


def test_organisation_identifiers_by_type(resources: Resources) -> None:
    for org in resources["Organization"].values():
        (type_,) = coding(org["type"], ENTERPRISE_TYPE_SYSTEM)
        has_resh = bool(ident(org, RESH_SYSTEM, use=None))
        assert has_resh == (
            type_ in ("rhf", "hf", "sykehus") or ("partOf" in org and type_ == "laboratorium")
        )
        is_party = bool(ident(org, HER_SYSTEM, use=None))
        assert is_party == ("endpoint" in org)
        if type_ == "rhf" or (type_ == "apotek" and "partOf" not in org):
            assert not is_party


# ------------------------------------------------------------------- enterprise register


def test_enterprise_hierarchy(resources: Resources) -> None:
    orgs = resources["Organization"]
    types = {i: coding(o["type"], ENTERPRISE_TYPE_SYSTEM)[0] for i, o in orgs.items()}
    parent = {i: ref_id(o["partOf"], "Organization") for i, o in orgs.items() if "partOf" in o}
    count = Counter(types.values())
    rhf = {orgs[i]["name"] for i, t in types.items() if t == "rhf"}
    assert rhf == {"Helse Sør-Øst RHF", "Helse Vest RHF", "Helse Midt-Norge RHF", "Helse Nord RHF"}
    children = defaultdict(list)
    for child, p in parent.items():
        children[p].append(types[child])
    for i, t in types.items():
        if t == "rhf":
            assert i not in parent and 2 <= children[i].count("hf") <= 4
        elif t == "hf":
            assert types[parent[i]] == "rhf" and 1 <= children[i].count("sykehus") <= 3
        elif t == "sykehus":
            assert types[parent[i]] == "hf"
        elif t in ("sykehjem", "legevakt"):
            assert types[parent[i]] == "kommune"
        elif t == "kommune":
            assert i not in parent
            assert children[i].count("legevakt") == 1 and children[i].count("sykehjem") >= 1
        elif t == "apotek" and i in parent:
            assert types[parent[i]] == "apotek" and parent[i] not in parent
        elif t == "laboratorium" and i in parent:
            assert types[parent[i]] == "hf"
    assert count["kommune"] == 24
    assert count["fastlegekontor"] == max(4, round(PERSONS / 1500))
    chains = [i for i, t in types.items() if t == "apotek" and i not in parent]
    assert len(chains) == 2
    assert count["apotek"] - len(chains) >= 3
    assert count["laboratorium"] >= 3 and count["avtalespesialist"] >= 3
    assert any(
        types.get(parent.get(i, "")) == "hf" for i, t in types.items() if t == "laboratorium"
    )
    for org in orgs.values():
        district = org["address"][0]["_district"]["extension"][0]["valueCoding"]["code"]
        assert len(district) == 4 and org["telecom"][0]["value"].startswith("+47")


def test_fixed_part_does_not_depend_on_persons(resources: Resources) -> None:
    """Specialist care, municipalities, labs, chains and their staff: identical for any size."""
    small: Resources = defaultdict(dict)
    for resource in register_population(300, SEED).resources():
        small[resource["resourceType"]][resource["id"]] = resource
    fixed_orgs = [
        o
        for o in small["Organization"].values()
        if coding(o["type"], ENTERPRISE_TYPE_SYSTEM)[0]
        not in ("fastlegekontor", "avtalespesialist")
        and not (coding(o["type"], ENTERPRISE_TYPE_SYSTEM)[0] == "apotek" and "partOf" in o)
    ]
    assert len(fixed_orgs) > 100
    fixed = {o["id"] for o in fixed_orgs}
    for org in fixed_orgs:
        assert org == resources["Organization"][org["id"]]
        for reference in org.get("endpoint", ()):
            endpoint_id = ref_id(reference, "Endpoint")
            assert small["Endpoint"][endpoint_id] == resources["Endpoint"][endpoint_id]
    assert small["HealthcareService"] == resources["HealthcareService"]
    staff = 0  # the fixed organisations' staff come first, then the scaled ones'
    for role_id, role in sorted(small["PractitionerRole"].items()):
        if ref_id(role["organization"], "Organization") not in fixed:
            break
        assert role == resources["PractitionerRole"][role_id]
        prac_id = ref_id(role["practitioner"], "Practitioner")
        assert small["Practitioner"][prac_id] == resources["Practitioner"][prac_id]
        staff += 1
    assert staff > 300


# ---------------------------------------------------------------------- address register


def test_services_and_endpoints(resources: Resources) -> None:
    orgs = resources["Organization"]
    endpoints = resources["Endpoint"]
    for org in orgs.values():
        if "endpoint" not in org:
            continue
        (her,) = ident(org, HER_SYSTEM, use=None)
        kinds = {}
        for reference in org["endpoint"]:
            ep = endpoints[ref_id(reference, "Endpoint")]
            assert ref_id(ep["managingOrganization"], "Organization") == org["id"]
            assert ep["status"] == "active"
            assert ep["payloadType"][0]["coding"][0]["code"] == "any"
            kinds[ep["connectionType"]["code"]] = ep
        assert {"E_EDI", "E_KS", "E_SS"} <= set(kinds) <= {"E_EDI", "E_FHIR", "E_KS", "E_SS"}
        assert kinds["E_EDI"]["address"] == f"mailto:{her}@edi.samhandling.test"
        if "E_FHIR" in kinds:
            assert kinds["E_FHIR"]["address"].startswith("https://")
            assert kinds["E_FHIR"]["address"].endswith(".samhandling.test/fhir")
        for kind, use, alg in (("E_KS", "enc", "ECDH-ES"), ("E_SS", "sig", "ES256")):
            (ext,) = kinds[kind]["extension"]
            assert ext["url"] == PUBLIC_KEY_URL
            assert ext["valueAttachment"]["contentType"] == "application/jwk+json"
            jwk = orjson.loads(base64.b64decode(ext["valueAttachment"]["data"]))
            assert "d" not in jwk
            assert (jwk["kty"], jwk["crv"], jwk["use"], jwk["alg"]) == ("EC", "P-256", use, alg)
            assert kinds[kind]["address"] == f"urn:samhandling:jwk:{jwk['kid']}"
    names = Counter(s["name"] for s in resources["HealthcareService"].values())
    assert {"Mottak av henvisninger", "Laboratoriesvar", "Legevakt"} <= set(names)
    for service in resources["HealthcareService"].values():
        provider = orgs[ref_id(service["providedBy"], "Organization")]
        assert ident(service, HER_SYSTEM, use=None)
        assert service["endpoint"] == provider["endpoint"]


def b64url_int(value: str) -> int:
    return int.from_bytes(base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)), "big")


def test_public_keys_match_private_jwk(pop: RegisterPopulation, resources: Resources) -> None:
    endpoints = resources["Endpoint"]
    orgs = [o for o in resources["Organization"].values() if "endpoint" in o]
    for org in orgs[:40]:
        (her,) = ident(org, HER_SYSTEM, use=None)
        for reference in org["endpoint"]:
            ep = endpoints[ref_id(reference, "Endpoint")]
            if ep["connectionType"]["code"] not in ("E_KS", "E_SS"):
                continue
            public = orjson.loads(base64.b64decode(ep["extension"][0]["valueAttachment"]["data"]))
            private = pop.private_jwk(int(her), public["use"])
            assert {k: v for k, v in private.items() if k != "d"} == public
            assert pop.public_jwk(her, public["use"]) == public
            numbers = (
                ec.derive_private_key(b64url_int(private["d"]), ec.SECP256R1())
                .public_key()
                .public_numbers()
            )
            assert (numbers.x, numbers.y) == (b64url_int(public["x"]), b64url_int(public["y"]))
            thumb = orjson.dumps({k: public[k] for k in ("crv", "kty", "x", "y")})
            kid = base64.urlsafe_b64encode(hashlib.sha256(thumb).digest()).rstrip(b"=").decode()
            assert public["kid"] == kid
            private_key, public_key = ECKey.import_key(private), ECKey.import_key(public)
            if public["use"] == "enc":  # a message encrypted for the party, opened by it
                token = jwe.encrypt_compact(
                    {"alg": "ECDH-ES", "enc": "A256GCM"}, b"hei", public_key
                )
                assert jwe.decrypt_compact(token, private_key).plaintext == b"hei"
            else:  # a message signed by the party, checked against its published key
                token = jws.serialize_compact({"alg": "ES256"}, b"hei", private_key)
                assert jws.deserialize_compact(token, public_key).payload == b"hei"
    enc = [pop.private_jwk(o.her_id, "enc")["d"] for o in pop.organizations if o.her_id]
    assert len(set(enc)) == len(enc)
    her = next(o.her_id for o in pop.organizations if o.her_id)
    assert pop.private_jwk(her, "enc")["d"] != pop.private_jwk(her, "sig")["d"]
    # A service or GP uses its organisation's keys.
    gp = pop.gp_roles[0]
    office = next(o for o in pop.organizations if o.id == gp.organization_id)
    assert pop.private_jwk(gp.her_id, "enc") == pop.private_jwk(office.her_id, "enc")  # type: ignore[arg-type]
    assert pop.communication_parties[gp.her_id] == f"PractitionerRole/{gp.role_id}"
    with pytest.raises(KeyError):
        pop.private_jwk("1", "enc")


# -------------------------------------------------------------------------- HPR


def test_practitioner_qualifications(pop: RegisterPopulation, resources: Resources) -> None:
    approvals = suspensions = revoked = 0
    professions = Counter()
    for prac in resources["Practitioner"].values():
        for q in prac["qualification"]:
            systems = [c["system"] for c in q["code"]["coding"]]
            assert q["issuer"] == {"display": "Helsedirektoratet"}
            assert parse_date(q["period"]["start"]) <= REFERENCE_DATE
            if PROFESSION_SYSTEM in systems:
                approvals += 1
                assert systems == [PROFESSION_SYSTEM, APPROVAL_TYPE_SYSTEM]
                profession, approval = (c["code"] for c in q["code"]["coding"])
                professions[profession] += 1
                if approval in ("4", "18", "2"):
                    assert "end" in q["period"]
                elif "end" in q["period"]:
                    revoked += 1
                for ext in q.get("extension", ()):
                    assert ext["url"] == HPR_SUSPENSION_URL
                    assert parse_date(ext["valuePeriod"]["start"]) < REFERENCE_DATE
                    suspensions += 1
            else:
                assert len(systems) == 1 and systems[0] in (
                    "urn:oid:2.16.578.1.12.4.1.1.7426",
                    "http://samhandling.no/fhir/CodeSystem/requisition-right",
                )
    assert set(professions) == {"LE", "SP", "FA1", "FA2", "BI", "HF", "PS", "FT", "JO", "TL"}
    assert professions["SP"] > professions["JO"] and professions["LE"] > professions["PS"]
    assert 0.005 <= suspensions / approvals <= 0.03
    assert revoked >= 2


def test_hpr_facts_agree_with_the_resources(pop: RegisterPopulation, resources: Resources) -> None:
    def valid(q: dict[str, Any], on: date) -> bool:
        period = q["period"]
        if parse_date(period["start"]) > on:
            return False
        if "end" in period and parse_date(period["end"]) < on:
            return False
        for ext in q.get("extension", ()):
            s = ext["valuePeriod"]
            if parse_date(s["start"]) <= on and ("end" not in s or parse_date(s["end"]) >= on):
                return False
        return True

    # the facts hold from REFERENCE_DATE through FACTS_VALID_UNTIL (and so, today)
    for on in (REFERENCE_DATE, date.today(), FACTS_VALID_UNTIL):
        authorised, suspended, expired = {}, set(), set()
        for prac in resources["Practitioner"].values():
            (hpr,) = ident(prac, HPR_SYSTEM)
            approvals = [
                q
                for q in prac["qualification"]
                if q["code"]["coding"][0]["system"] == PROFESSION_SYSTEM
            ]
            ok = {q["code"]["coding"][0]["code"] for q in approvals if valid(q, on)}
            if ok:
                authorised[hpr] = ok
            elif any("extension" in q for q in approvals):
                suspended.add(hpr)
            else:
                expired.add(hpr)
        assert pop.authorised_hpr_numbers == authorised
        assert pop.suspended_hpr_numbers == suspended and len(suspended) >= 2
        assert pop.expired_hpr_numbers == expired and len(expired) >= 2
    assert not (suspended & expired) and not (set(authorised) & (suspended | expired))


# ------------------------------------------------------------------------ roles and GPs


def gp_role_finder(roles: dict[str, dict]) -> Callable[[dict], str]:
    """The GP role a GP episode belongs to: its careManager (the GP's Practitioner) at its
    managingOrganization (the GP office)."""
    by_doctor_and_office = {
        (ref_id(r["practitioner"], "Practitioner"), ref_id(r["organization"], "Organization")): i
        for i, r in roles.items()
        if "fastlege" in coding(r["code"], GP_ROLE_SYSTEM)
    }

    def find(episode: dict) -> str:
        doctor = ref_id(episode["careManager"], "Practitioner")
        return by_doctor_and_office[(doctor, ref_id(episode["managingOrganization"],
                                                    "Organization"))]  # fmt: skip

    return find


def test_roles_and_gp_lists(pop: RegisterPopulation, resources: Resources) -> None:
    roles = resources["PractitionerRole"]
    gps = {g.role_id: g for g in pop.gp_roles}
    for role_id, role in roles.items():
        assert role["code"][0]["text"]
        is_gp = "fastlege" in coding(role["code"], GP_ROLE_SYSTEM)
        assert is_gp == (role_id in gps)
        if is_gp:
            assert coding(
                role["code"], "http://terminology.hl7.org/CodeSystem/practitioner-role"
            ) == ["doctor"]
            (ext,) = role["extension"]
            assert ext["url"] == GP_LIST_URL
            values = {
                e["url"]: next(v for k, v in e.items() if k.startswith("value"))
                for e in ext["extension"]
            }
            g = gps[role_id]
            assert values == {
                "listLength": g.list_length,
                "openForNewPatients": g.open_for_new_patients,
            }
            assert ident(role, HER_SYSTEM, use=None) == [g.her_id] and role["endpoint"]
            office = resources["Organization"][ref_id(role["organization"], "Organization")]
            assert coding(office["type"], ENTERPRISE_TYPE_SYSTEM) == ["fastlegekontor"]
    gp_role = gp_role_finder(roles)
    active = Counter(
        gp_role(e) for e in resources["EpisodeOfCare"].values() if e["status"] == "active"
    )
    closed = 0
    for g in pop.gp_roles:
        assert active[g.role_id] == g.listed
        assert g.listed <= g.list_length
        closed += not g.open_for_new_patients
    assert sum(g.listed for g in pop.gp_roles) == sum(active.values())
    assert 1 <= closed < len(pop.gp_roles)
    assert len(pop.gp_roles) >= round(PERSONS / 1500)


def test_gp_episodes(pop: RegisterPopulation, resources: Resources) -> None:
    roles = resources["PractitionerRole"]
    gp_role = gp_role_finder(roles)
    gp_roles = {g.role_id for g in pop.gp_roles}
    by_patient = defaultdict(list)
    for e in resources["EpisodeOfCare"].values():
        assert coding(e["type"], EPISODE_TYPE_SYSTEM) == ["fastlege"]
        role_id = gp_role(e)
        assert role_id in gp_roles
        assert ref_id(e["managingOrganization"], "Organization") == ref_id(
            roles[role_id]["organization"], "Organization"
        )
        assert (e["status"] == "active") == ("end" not in e["period"])
        assert e["period"]["start"] >= roles[role_id]["period"]["start"]
        if "end" in e["period"]:
            assert e["period"]["start"] <= e["period"]["end"]
        by_patient[ref_id(e["patient"], "Patient")].append(e)
    living = [p for p in pop.persons if p.deceased is None]
    with_gp = 0
    history = 0
    for person in pop.persons:
        episodes = by_patient.get(person.id, [])
        patient = resources["Patient"][person.id]
        current = [e for e in episodes if e["status"] == "active"]
        assert len(current) <= 1
        if current:
            with_gp += 1
            role_id = gp_role(current[0])
            assert person.gp_role_id == role_id
            assert ref_id(patient["generalPractitioner"][0], "PractitionerRole") == role_id
            assert current[0]["period"]["start"] >= patient["birthDate"]
            earlier = [e for e in episodes if e["status"] == "finished"]
            history += bool(earlier)
            for e in earlier:
                assert e["period"]["end"] < current[0]["period"]["start"]
                assert e["careManager"]["reference"] != current[0]["careManager"]["reference"]
        else:
            assert person.gp_role_id is None and "generalPractitioner" not in patient
        if person.practitioner_id and current:
            gp = roles[person.gp_role_id]  # type: ignore[index]
            assert ref_id(gp["practitioner"], "Practitioner") != person.practitioner_id
    assert 0.97 <= with_gp / len(living) <= 0.995
    assert 0.06 <= history / with_gp <= 0.14


def test_gps_are_chosen_in_the_persons_municipality(pop: RegisterPopulation) -> None:
    office_muni = {o.id: o.municipality for o in pop.organizations}
    gp_muni = {g.role_id: office_muni[g.organization_id] for g in pop.gp_roles}
    served = set(gp_muni.values())
    local = [
        gp_muni[p.gp_role_id] == p.municipality
        for p in pop.persons
        if p.gp_role_id and p.municipality in served
    ]
    assert sum(local) / len(local) > 0.95


# ---------------------------------------------------------------------- person register


def test_person_register_proportions(pop: RegisterPopulation, resources: Resources) -> None:
    residents = [p for p in pop.persons if p.practitioner_id is None]
    assert len(residents) == PERSONS
    n = len(residents)
    kinds = Counter(p.kind for p in residents)
    assert kinds["DNR"] == round(0.02 * n)
    for p in residents:
        if p.kind == "DNR":
            assert 18 <= age(p.birth_date, REFERENCE_DATE) <= 66 and p.deceased is None
    deceased = [p for p in residents if p.deceased]
    assert len(deceased) == round(0.008 * n)
    for p in deceased:
        assert age(p.birth_date, p.deceased) >= 70 and p.deceased <= REFERENCE_DATE
        assert resources["Patient"][p.id]["deceasedDateTime"] == p.deceased.isoformat()
    assert len(pop.replaced_numbers) == round(0.005 * n)
    children = sum(age(p.birth_date, REFERENCE_DATE) < 18 for p in residents) / n
    assert 0.15 <= children <= 0.32
    for p in residents:
        patient = resources["Patient"][p.id]
        adult = age(p.birth_date, REFERENCE_DATE) >= 18
        assert ("telecom" in patient) == (adult and p.deceased is None)


def test_replaced_d_numbers(pop: RegisterPopulation, resources: Resources) -> None:
    by_pid = {p.pid: p for p in pop.persons}
    for old, current in pop.replaced_numbers.items():
        assert is_valid_d_nummer(old) and is_valid_fodselsnummer(current)
        person = by_pid[current]
        assert person.kind == "FNR" and person.old_dnr == old
        patient = resources["Patient"][person.id]
        (entry,) = [i for i in patient["identifier"] if i.get("use") == "old"]
        assert entry["system"] == DNR_SYSTEM and entry["value"] == old
        assert parse_date(entry["period"]["end"]) < REFERENCE_DATE
        assert old[2:6] == current[2:6] and int(old[:2]) - 40 == int(current[:2])


def test_households(pop: RegisterPopulation, resources: Resources) -> None:
    members = defaultdict(list)
    for p in pop.persons:
        members[p.household_id].append(p)
    sizes = Counter(len(m) for m in members.values())
    assert sizes[1] > 0 and sizes[2] > 0 and sum(v for k, v in sizes.items() if k >= 3) > 0
    for household in members.values():
        addresses = {orjson.dumps(resources["Patient"][p.id]["address"]) for p in household}
        assert len(addresses) == 1
        assert len({p.municipality for p in household}) == 1
    # children and their parents
    by_id = {p.id: p for p in pop.persons}
    by_pid = {p.pid: p for p in pop.persons}
    parents_of = defaultdict(list)
    for related in resources["RelatedPerson"].values():
        parents_of[ref_id(related["patient"], "Patient")].append(related)
    assert parents_of
    with_children = set()
    single_parent = set()
    for child_id, related in parents_of.items():
        child = by_id[child_id]
        assert age(child.birth_date, REFERENCE_DATE) < 18
        in_household = 0
        for r in related:
            parent = by_pid[ident(r, FNR_SYSTEM)[0]]
            assert 18 <= age(parent.birth_date, child.birth_date) <= 45
            assert r["birthDate"] == parent.birth_date.isoformat()
            in_household += parent.household_id == child.household_id
        assert in_household >= 1
        with_children.add(child.household_id)
        if in_household == 1:
            single_parent.add(child.household_id)
    share = len(single_parent) / len(with_children)
    assert 0.08 <= share <= 0.25
    for p in pop.persons:
        if p.id not in parents_of:
            assert p.practitioner_id or age(p.birth_date, REFERENCE_DATE) >= 18


def test_family_relations(pop: RegisterPopulation, resources: Resources) -> None:
    by_id = {p.id: p for p in pop.persons}
    by_pid = {p.pid: p for p in pop.persons}
    per_child = defaultdict(list)
    for r in resources["RelatedPerson"].values():
        (fnr,) = ident(r, FNR_SYSTEM)
        parent = by_pid[fnr]
        assert parent.kind == "FNR"
        assert r["name"] == resources["Patient"][parent.id]["name"]
        relation = coding(r["relationship"], FAMILY_RELATION_SYSTEM)
        responsibility = coding(r["relationship"], PARENTAL_RESPONSIBILITY_SYSTEM)
        assert len(relation) == 1 and len(responsibility) <= 1
        assert relation[0] in ("mor", "far", "medmor")
        assert (relation[0] == "far") == (parent.gender == "male")
        child = by_id[ref_id(r["patient"], "Patient")]
        per_child[child.pid].append(
            (fnr, relation[0], responsibility[0] if responsibility else None)
        )
    patterns = Counter()
    for child_pid, links in per_child.items():
        responsible = [(rel, resp) for _, rel, resp in links if resp]
        assert responsible, "every child has someone with parental responsibility"
        if len(responsible) == 2:
            assert all(resp == "felles" for _, resp in responsible)
        else:
            ((rel, resp),) = responsible
            assert resp == rel
        patterns[(len(links), len(responsible))] += 1
        for fnr, _, resp in links:
            assert (child_pid, resp is not None) in pop.children_of(fnr)
    assert patterns[(2, 2)] > patterns[(1, 1)] > 0 and patterns[(2, 1)] > 0
    assert patterns[(2, 2)] > patterns[(2, 1)]
    total = sum(len(pop.children_of(p.pid)) for p in pop.persons)
    assert total == pop.counts["RelatedPerson"]


def test_address_protection(pop: RegisterPopulation, resources: Resources) -> None:
    members = defaultdict(list)
    for p in pop.persons:
        members[p.household_id].append(p)
    levels = Counter()
    for p in pop.persons:
        security = resources["Patient"][p.id]["meta"].get("security")
        if p.protection is None:
            assert security is None
        else:
            assert security == [
                {
                    "system": ADDRESS_CONFIDENTIALITY_SYSTEM,
                    "code": p.protection,
                    "display": {"fortrolig": "Fortrolig", "strengtFortrolig": "Strengt fortrolig"}[
                        p.protection
                    ],
                }
            ]
            levels[p.protection] += 1
            assert {m.protection for m in members[p.household_id]} == {p.protection}
    for type_, by_id in resources.items():
        if type_ != "Patient":
            assert all("security" not in r["meta"] for r in by_id.values())
    n = PERSONS
    assert 0.002 * n <= levels["fortrolig"] <= 0.012 * n + 3
    assert 0.001 * n <= levels["strengtFortrolig"] <= 0.005 * n + 3


def test_small_and_invalid_sizes() -> None:
    tiny = register_population(1, 0)
    assert tiny.counts["Patient"] == 1 + len(tiny.practitioners)
    assert all(p.id.startswith("person-0-") for p in tiny.persons)
    with pytest.raises(ValueError):
        register_population(0)
    with pytest.raises(ValueError):
        register_population(10, -1)
    with pytest.raises(ValueError):
        next(tiny.bundles(0))


async def test_loading_twice_into_sqlite_is_idempotent(tmp_path: Path) -> None:
    population = register_population(300, SEED)
    store = await open_store(f"sqlite:///{tmp_path / 'registers.db'}")
    try:
        engine = FhirEngine(store)
        for _ in range(2):
            for bundle in population.bundles(batch=400):
                response = await process_bundle(engine, bundle, "http://test/fhir", "minimal")
                statuses = {e["response"]["status"][:3] for e in response["entry"]}
                assert statuses <= {"200", "201"}
        rows = await store.fetch(
            "SELECT type, count(*), max(version) FROM resource GROUP BY type", []
        )
    finally:
        await store.close()
    assert {type_: n for type_, n, _ in rows} == population.counts
    assert max(version for _, _, version in rows) <= 2


def test_marker_is_the_last_resource_written() -> None:
    for persons in (1, 40, 300):
        population = register_population(persons, 5)
        last = list(population.resources())[-1]
        assert population.marker == (last["resourceType"], last["id"])
