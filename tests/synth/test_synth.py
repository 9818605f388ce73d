"""Tests for samhandling.synth: Norwegian identifiers and synthetic FHIR transaction Bundles."""

from __future__ import annotations

import hashlib
import itertools
import random
import re
import time
from collections import Counter
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from samhandling.platform.fhir.validation import validate_resource
from samhandling.synth import (
    DNR_SYSTEM,
    FNR_SYSTEM,
    HPR_SYSTEM,
    ICD10_SYSTEM,
    ORGNR_SYSTEM,
    REFERENCE_DATE,
    care_providers_bundle,
    d_nummer,
    fodselsnummer,
    fodselsnummer_birth_date,
    fodselsnumre,
    hpr_number,
    is_valid_d_nummer,
    is_valid_fodselsnummer,
    is_valid_organisasjonsnummer,
    nth_fodselsnummer,
    organisasjonsnummer,
    patient_bundle,
    patient_bundles,
)

# Independent restatement of the check-digit rules (norway.md §5.1, §5.2).
FNR_K1 = (3, 7, 6, 1, 8, 9, 4, 5, 2, 1)
FNR_K2 = (5, 4, 3, 2, 7, 6, 5, 4, 3, 2, 1)
ORG_W = (3, 2, 7, 6, 5, 4, 3, 2, 1)


def classic_checksums_ok(s: str) -> bool:
    d = [int(c) for c in s]
    return (
        sum(w * x for w, x in zip(FNR_K1, d[:10], strict=True)) % 11 == 0
        and sum(w * x for w, x in zip(FNR_K2, d, strict=True)) % 11 == 0
    )


def with_check_digits(nine: str) -> str | None:
    """Complete nine digits with both check digits, None if either would be 10."""
    d = [int(c) for c in nine]
    k1 = (11 - sum(w * x for w, x in zip(FNR_K1, d, strict=False)) % 11) % 11
    if k1 == 10:
        return None
    d.append(k1)
    k2 = (11 - sum(w * x for w, x in zip(FNR_K2, d, strict=False)) % 11) % 11
    return None if k2 == 10 else f"{nine}{k1}{k2}"


def random_date(rng: random.Random, first: date, last: date) -> date:
    return date.fromordinal(rng.randint(first.toordinal(), last.toordinal()))


# ---------------------------------------------------------------------------- fødselsnummer


def test_generated_fodselsnumre_have_valid_check_digits() -> None:
    rng = random.Random(20240601)
    numbers = set()
    for _ in range(10_000):
        birth = random_date(rng, date(1900, 1, 1), date(2039, 12, 31))
        female = rng.random() < 0.5
        fnr = fodselsnummer(birth, rng, female)
        assert len(fnr) == 11 and fnr.isdigit()
        assert classic_checksums_ok(fnr), fnr
        assert is_valid_fodselsnummer(fnr, allow_2032=False), fnr
        assert fnr[:6] == birth.strftime("%d%m%y")
        assert fodselsnummer_birth_date(fnr) == birth
        assert (int(fnr[8]) % 2 == 0) == female
        assert not is_valid_d_nummer(fnr)
        numbers.add(fnr)
    assert len(numbers) > 9_900  # random draws: a few collisions at most


def test_generated_d_numbers_and_synthetic_numbers() -> None:
    rng = random.Random(7)
    for _ in range(2_000):
        birth = random_date(rng, date(1930, 1, 1), date(2024, 12, 31))
        female = rng.random() < 0.5
        dnr = d_nummer(birth, rng, female)
        assert int(dnr[0]) >= 4 and classic_checksums_ok(dnr)
        assert is_valid_d_nummer(dnr) and not is_valid_fodselsnummer(dnr)
        assert fodselsnummer_birth_date(dnr) == birth
        synthetic = fodselsnummer(birth, rng, female, synthetic=True)
        assert int(synthetic[2:4]) == birth.month + 80 and classic_checksums_ok(synthetic)
        assert not is_valid_fodselsnummer(synthetic)
        assert is_valid_fodselsnummer(synthetic, allow_synthetic=True)
        assert fodselsnummer_birth_date(synthetic) == birth


def test_known_fodselsnumre() -> None:
    # Published test persons / examples (norway.md §5.1, no-basis example Patient).
    for fnr in ("12057900499", "04021950128", "10086148248", "21030550231"):
        assert is_valid_fodselsnummer(fnr, allow_2032=False), fnr
    assert fodselsnummer_birth_date("12057900499") == date(1979, 5, 12)
    # Skatteetaten's worked examples for the check-digit rule of numbers issued from 2032.
    for fnr in ("02013299997", "30108299920", "30108299939"):
        assert is_valid_fodselsnummer(fnr), fnr
    assert not is_valid_fodselsnummer("30108299939", allow_2032=False)
    # Synthetic test persons: Tenor (month + 80) and a Dolly D-number (day + 40, month + 40).
    assert is_valid_fodselsnummer("16858399649", allow_synthetic=True)
    assert not is_valid_fodselsnummer("16858399649")
    assert is_valid_d_nummer("55507608360", allow_synthetic=True)
    assert not is_valid_d_nummer("55507608360")


def test_corrupted_fodselsnumre_are_rejected() -> None:
    rng = random.Random(99)
    checked = 0
    for _ in range(300):
        birth = random_date(rng, date(1930, 1, 1), date(2024, 12, 31))
        fnr = fodselsnummer(birth, rng, rng.random() < 0.5)
        for i in range(11):
            for digit in "0123456789":
                if digit != fnr[i]:
                    bad = fnr[:i] + digit + fnr[i + 1 :]
                    assert not is_valid_fodselsnummer(bad), (fnr, bad)
                    assert not is_valid_fodselsnummer(bad, allow_synthetic=True), (fnr, bad)
                    checked += 1
        for i in range(10):
            if fnr[i] != fnr[i + 1]:
                swapped = fnr[:i] + fnr[i + 1] + fnr[i] + fnr[i + 2 :]
                assert not is_valid_fodselsnummer(swapped), (fnr, swapped)
    assert checked > 25_000


def test_impossible_dates_and_malformed_input_are_rejected() -> None:
    # Correct check digits, impossible dates.
    impossible = []
    for prefix in ("300280", "310480", "290201", "001080", "321080", "011380", "010080"):
        for i in range(0, 500):
            fnr = with_check_digits(f"{prefix}{i:03d}")
            if fnr is not None:
                impossible.append(fnr)
                break
    assert len(impossible) == 7
    for fnr in impossible:
        assert classic_checksums_ok(fnr)
        assert not is_valid_fodselsnummer(fnr), fnr
    # 29 February exists in 2000 (individnummer 500-999) but not in 1900 (000-499).
    leap_2000 = next(x for i in range(500, 1000) if (x := with_check_digits(f"290200{i:03d}")))
    leap_1900 = next(x for i in range(0, 500) if (x := with_check_digits(f"290200{i:03d}")))
    assert is_valid_fodselsnummer(leap_2000, allow_2032=False)
    assert not is_valid_fodselsnummer(leap_1900, allow_2032=False)
    # Individnummer 500-749 with year 40-53 encodes no century.
    no_century = next(x for i in range(500, 750) if (x := with_check_digits(f"010145{i:03d}")))
    assert not is_valid_fodselsnummer(no_century, allow_2032=False)
    assert fodselsnummer_birth_date(no_century) is None
    for bad in ("", "1205790049", "120579004999", "1205790049x", "12057900499 ", "١٢٠٥٧٩٠٠٤٩٩"):
        assert not is_valid_fodselsnummer(bad)
    assert not is_valid_fodselsnummer(None)
    assert not is_valid_fodselsnummer(12057900499)


@given(
    st.dates(min_value=date(1900, 1, 1), max_value=date(2039, 12, 31)),
    st.booleans(),
    st.integers(min_value=0, max_value=2**32),
)
def test_fodselsnummer_property(birth: date, female: bool, seed: int) -> None:
    fnr = fodselsnummer(birth, random.Random(seed), female)
    assert is_valid_fodselsnummer(fnr, allow_2032=False)
    assert fodselsnummer_birth_date(fnr) == birth


@given(st.text(max_size=14))
def test_validators_never_raise(text: str) -> None:
    assert isinstance(is_valid_fodselsnummer(text), bool)
    assert isinstance(is_valid_d_nummer(text, allow_synthetic=True), bool)
    assert isinstance(is_valid_organisasjonsnummer(text), bool)


def test_fodselsnumre_enumeration() -> None:
    birth = date(1975, 3, 4)
    numbers = list(fodselsnumre(birth, True))
    assert len(numbers) >= 200 and len(set(numbers)) == len(numbers)
    assert all(is_valid_fodselsnummer(n, allow_2032=False) for n in numbers)
    assert all(int(n[8]) % 2 == 0 for n in numbers)
    assert [nth_fodselsnummer(birth, True, i) for i in range(len(numbers))] == numbers
    for bad in (len(numbers), -1):
        with pytest.raises(IndexError):
            nth_fodselsnummer(birth, True, bad)


# ---------------------------------------------------------------------- organisasjonsnummer


def test_generated_organisasjonsnumre_have_valid_check_digit() -> None:
    rng = random.Random(5)
    for _ in range(10_000):
        orgnr = organisasjonsnummer(rng)
        assert len(orgnr) == 9 and orgnr.isdigit() and orgnr[0] in "89"
        assert sum(w * int(c) for w, c in zip(ORG_W, orgnr, strict=True)) % 11 == 0, orgnr
        assert is_valid_organisasjonsnummer(orgnr)


def test_known_and_corrupted_organisasjonsnumre() -> None:
    assert is_valid_organisasjonsnummer("915933149")  # no-basis example Organization
    assert is_valid_organisasjonsnummer("974760673")
    rng = random.Random(6)
    for _ in range(500):
        orgnr = organisasjonsnummer(rng)
        for i in range(9):
            for digit in "0123456789":
                if digit != orgnr[i]:
                    assert not is_valid_organisasjonsnummer(orgnr[:i] + digit + orgnr[i + 1 :])
    # Eight digits whose check digit would be 10 have no valid completion.
    eight = next(
        f"{n:08d}"
        for n in range(10_000_000, 10_001_000)
        if (11 - sum(w * int(c) for w, c in zip(ORG_W, f"{n:08d}", strict=False)) % 11) == 10
    )
    assert not any(is_valid_organisasjonsnummer(eight + d) for d in "0123456789")
    for bad in ("", "91593314", "9159331490", "91593314x", None, 915933149):
        assert not is_valid_organisasjonsnummer(bad)


def test_hpr_numbers() -> None:
    rng = random.Random(8)
    for _ in range(1_000):
        hpr = hpr_number(rng)
        assert hpr.isdigit() and 7 <= len(hpr) <= 9 and hpr[0] != "0"


# ------------------------------------------------------------------------------- bundles


def walk(node: Any, path: str = "") -> Iterator[tuple[str, Any]]:
    """(path, value) for every leaf in a JSON tree; paths use '.' and ignore indices."""
    if isinstance(node, dict):
        for key, value in node.items():
            yield from walk(value, f"{path}.{key}" if path else key)
    elif isinstance(node, list):
        for value in node:
            yield from walk(value, path)
    else:
        yield path, node


def references(resource: dict[str, Any]) -> list[str]:
    return [v for p, v in walk(resource) if p == "reference" or p.endswith(".reference")]


def provider_ids(bundle: dict[str, Any]) -> set[str]:
    return {f"{e['resource']['resourceType']}/{e['resource']['id']}" for e in bundle["entry"]}


def test_care_providers_bundle() -> None:
    bundle = care_providers_bundle()
    assert bundle["resourceType"] == "Bundle" and bundle["type"] == "transaction"
    types = Counter(e["resource"]["resourceType"] for e in bundle["entry"])
    assert types == {"Organization": 5, "Location": 5, "Practitioner": 20, "PractitionerRole": 20}
    ids = provider_ids(bundle)
    assert len(ids) == 50
    assert {
        "Organization/org-0001",
        "Practitioner/prac-0001",
        "PractitionerRole/role-0001",
        "Location/loc-0001",
    } <= ids
    for entry in bundle["entry"]:
        resource = entry["resource"]
        assert entry["request"] == {
            "method": "PUT",
            "url": f"{resource['resourceType']}/{resource['id']}",
        }
        for ref in references(resource):
            assert ref in ids, ref
    orgs = [
        e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Organization"
    ]
    orgnrs = [i["value"] for o in orgs for i in o["identifier"] if i["system"] == ORGNR_SYSTEM]
    assert len(set(orgnrs)) == 5 and all(is_valid_organisasjonsnummer(n) for n in orgnrs)
    assert len({o["name"] for o in orgs}) == 5
    pracs = [
        e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Practitioner"
    ]
    hprs = [i["value"] for p in pracs for i in p["identifier"] if i["system"] == HPR_SYSTEM]
    assert len(set(hprs)) == 20
    # Deterministic, seed-dependent, and other seeds use other ids.
    assert orjson.dumps(care_providers_bundle()) == orjson.dumps(bundle)
    other = care_providers_bundle(seed=3, organizations=30, practitioners_per_org=2)
    assert len(other["entry"]) == 30 * 2 + 30 * 2 * 2
    assert "Organization/org-3-0001" in provider_ids(other)
    assert not provider_ids(other) & ids
    assert (
        len(
            {
                e["resource"].get("name")
                for e in other["entry"]
                if e["resource"]["resourceType"] == "Organization"
            }
        )
        == 30
    )


@pytest.mark.parametrize("resources", [1, 2, 3, 5, 10, 20, 50, 51, 100, 333])
def test_patient_bundle_has_exactly_the_requested_number_of_entries(resources: int) -> None:
    for index in range(5):
        bundle = patient_bundle(index, resources=resources)
        assert len(bundle["entry"]) == resources
        assert bundle["entry"][0]["resource"]["resourceType"] == "Patient"


def test_patient_bundle_is_deterministic() -> None:
    for index in (0, 1, 17, 123_456):
        first = orjson.dumps(patient_bundle(index, seed=4))
        assert orjson.dumps(patient_bundle(index, seed=4)) == first
        assert orjson.dumps(patient_bundle(index, seed=5)) != first
        assert orjson.dumps(patient_bundle(index + 1, seed=4)) != first
    listed = [orjson.dumps(b) for b in patient_bundles(3, seed=4, start=16)]
    assert listed == [orjson.dumps(patient_bundle(i, seed=4)) for i in (16, 17, 18)]


@pytest.mark.parametrize(("seed", "organizations", "per_org"), [(0, 5, 4), (2, 3, 1), (9, 12, 6)])
def test_every_reference_resolves(seed: int, organizations: int, per_org: int) -> None:
    providers = provider_ids(care_providers_bundle(seed, organizations, per_org))
    uuid_re = re.compile(
        r"^urn:uuid:[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$"
    )
    for bundle in patient_bundles(
        40, seed, 50, organizations=organizations, practitioners_per_org=per_org
    ):
        full_urls = [e["fullUrl"] for e in bundle["entry"]]
        assert len(set(full_urls)) == len(full_urls)
        patient_urn = full_urls[0]
        for entry in bundle["entry"]:
            resource = entry["resource"]
            assert uuid_re.match(entry["fullUrl"]), entry["fullUrl"]
            assert entry["request"] == {"method": "POST", "url": resource["resourceType"]}
            assert "id" not in resource
            for ref in references(resource):
                assert ref in full_urls or ref in providers, ref
            subject = resource.get("subject", resource.get("patient"))
            if subject is not None:
                assert subject == {"reference": patient_urn}
        gp = bundle["entry"][0]["resource"]["generalPractitioner"][0]["reference"]
        assert gp.startswith("Practitioner/") and gp in providers


def test_patients_have_distinct_valid_fodselsnumre() -> None:
    seen: set[str] = set()
    for index in range(3_000):
        patient = patient_bundle(index, seed=1, resources=1)["entry"][0]["resource"]
        (identifier,) = patient["identifier"]
        assert identifier["system"] == FNR_SYSTEM
        fnr = identifier["value"]
        assert is_valid_fodselsnummer(fnr, allow_2032=False)
        birth = date.fromisoformat(patient["birthDate"])
        assert date(1930, 1, 1) <= birth <= date(2024, 12, 31)
        assert fodselsnummer_birth_date(fnr) == birth
        assert patient["gender"] == ("female" if int(fnr[8]) % 2 == 0 else "male")
        seen.add(fnr)
    assert len(seen) == 3_000
    assert FNR_SYSTEM != DNR_SYSTEM


def practitioners(bundle: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Practitioner"
    ]


@pytest.mark.parametrize(
    ("seed", "organizations", "per_org"), [(0, 5, 4), (1, 3, 1), (5, 7, 3), (9, 120, 6)]
)
def test_practitioners_have_fodselsnumre(seed: int, organizations: int, per_org: int) -> None:
    """Every practitioner can sign in: an official fødselsnummer first, then the HPR number."""
    pracs = practitioners(care_providers_bundle(seed, organizations, per_org))
    assert len(pracs) == organizations * per_org
    fnrs: list[str] = []
    for prac in pracs:
        fnr_identifier, hpr_identifier = prac["identifier"]
        assert fnr_identifier["system"] == FNR_SYSTEM and fnr_identifier["use"] == "official"
        assert hpr_identifier["system"] == HPR_SYSTEM and hpr_identifier["use"] == "official"
        fnr = fnr_identifier["value"]
        assert classic_checksums_ok(fnr), fnr
        assert is_valid_fodselsnummer(fnr, allow_2032=False), fnr
        assert not is_valid_d_nummer(fnr)
        female = prac["gender"] == "female"
        assert int(fnr[8]) % 2 == (0 if female else 1)
        # Born 23-34 years before the authorisation (the birth date the number encodes).
        birth = fodselsnummer_birth_date(fnr)
        assert birth is not None
        authorised = date.fromisoformat(prac["qualification"][0]["period"]["start"])
        assert 23 <= authorised.year - birth.year <= 34, (fnr, authorised)
        # Never one of the numbers patients get (the first 200 per birth date and gender).
        assert fnr not in set(itertools.islice(fodselsnumre(birth, female), 200)), fnr
        fnrs.append(fnr)
    assert len(set(fnrs)) == len(fnrs)


def test_practitioner_fodselsnumre_do_not_clash_with_patients() -> None:
    for seed in (0, 1):
        pracs = {
            i["value"]
            for p in practitioners(care_providers_bundle(seed, 40, 5))
            for i in p["identifier"]
            if i["system"] == FNR_SYSTEM
        }
        assert len(pracs) == 200
        patients = {
            patient_bundle(index, seed=seed, resources=1)["entry"][0]["resource"]["identifier"][0][
                "value"
            ]
            for index in range(2_000)
        }
        assert not pracs & patients
    # Deterministic and seed-dependent.
    first = practitioners(care_providers_bundle(2))
    assert practitioners(care_providers_bundle(2)) == first
    assert [p["identifier"][0] for p in practitioners(care_providers_bundle(3))] != [
        p["identifier"][0] for p in first
    ]


# SHA-256 of care_providers_bundle(...) (keys sorted) without the practitioners' fødselsnumre,
# as generated before they were added: giving practitioners a fødselsnummer changed nothing else.
# (The approval is now one qualification, as no-basis has it; the test hashes the old shape.)
PROVIDERS_BEFORE_FNR = {
    (0, 5, 4): "d6a7f4f5db7a6109d1d47c8d4e499872ff0a65dee7075f915861172ce03140c8",
    (5, 7, 3): "dc65f01516c063f9176c2aa9804aec855fc80688a9d0bc84717eb730e212ccca",
    (3, 30, 2): "c88f011a204038bd9a2c316ce9dbe1a60694b154a5944d0b424c283a61fa54a1",
    (1, 3, 1): "c559e37b707b84a9eab258a3c411c2d5a58485921e0e907ca9e990089751dbac",
}


@pytest.mark.parametrize("args", sorted(PROVIDERS_BEFORE_FNR))
def test_practitioner_fodselsnumre_change_nothing_else(args: tuple[int, int, int]) -> None:
    bundle = care_providers_bundle(*args)
    for prac in practitioners(bundle):
        prac["identifier"] = [i for i in prac["identifier"] if i["system"] != FNR_SYSTEM]
        approval, *rest = prac["qualification"]
        profession, approval_type = approval["code"]["coding"]
        prac["qualification"] = [
            {"code": {"coding": [profession]}},
            {"code": {"coding": [approval_type]}, "period": approval["period"]},
            *rest,
        ]
    digest = hashlib.sha256(orjson.dumps(bundle, option=orjson.OPT_SORT_KEYS)).hexdigest()
    assert digest == PROVIDERS_BEFORE_FNR[args]


DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
DATETIME_RE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?([+-]\d{2}:\d{2}|Z)$")
DATE_KEYS = re.compile(
    r"(birthDate|DateTime|recordedDate|authoredOn|issued|start|end)$", re.IGNORECASE
)


def test_dates_are_real_timezoned_and_in_the_past() -> None:
    latest = datetime.combine(REFERENCE_DATE + timedelta(days=1), datetime.min.time())
    for bundle in patient_bundles(60, seed=11):
        patient = bundle["entry"][0]["resource"]
        birth = date.fromisoformat(patient["birthDate"])
        checked = 0
        for path, value in walk(bundle):
            if not isinstance(value, str) or not DATE_KEYS.search(path.split(".")[-1]):
                continue
            checked += 1
            if DATE_RE.match(value):
                day = date.fromisoformat(value)  # raises on e.g. 30 February
            else:
                assert DATETIME_RE.match(value), (path, value)
                moment = datetime.fromisoformat(value)
                assert moment.utcoffset() in (timedelta(hours=1), timedelta(hours=2))
                assert moment.replace(tzinfo=None) < latest, (path, value)
                day = moment.date()
            assert birth <= day <= REFERENCE_DATE + timedelta(days=365), (path, value)
            if "validityPeriod" not in path:
                assert day <= REFERENCE_DATE, (path, value)
        assert checked > 40


def test_clinical_content() -> None:
    types: Counter[str] = Counter()
    for bundle in patient_bundles(100, seed=12):
        resources = [e["resource"] for e in bundle["entry"]]
        types.update(r["resourceType"] for r in resources)
        allergy_atc = {
            c["code"]
            for r in resources
            if r["resourceType"] == "AllergyIntolerance"
            for c in r["code"]["coding"]
            if c["system"] == "http://www.whocc.no/atc"
        }
        for r in resources:
            assert r["meta"]["tag"][0]["code"] == "HTEST"
            kind = r["resourceType"]
            if kind == "Observation":
                assert r["status"] == "final"
                (category,) = r["category"][0]["coding"]
                assert category["code"] in ("vital-signs", "laboratory")
                assert r["code"]["coding"][0]["system"] == "http://loinc.org"
                quantities = (
                    [r["valueQuantity"]]
                    if "valueQuantity" in r
                    else [c["valueQuantity"] for c in r["component"]]
                )
                for q in quantities:
                    assert q["system"] == "http://unitsofmeasure.org" and q["code"]
                    assert isinstance(q["value"], int | float) and q["value"] > 0
            elif kind == "Condition":
                assert r["code"]["coding"][0]["system"] == ICD10_SYSTEM
                assert re.fullmatch(r"[A-Z]\d{2,3}", r["code"]["coding"][0]["code"])
            elif kind == "MedicationRequest":
                (coding,) = r["medicationCodeableConcept"]["coding"]
                assert coding["system"] == "http://www.whocc.no/atc"
                assert re.fullmatch(r"[A-Z]\d{2}[A-Z]{2}\d{2}", coding["code"])
                assert coding["code"] not in allergy_atc
                assert r["requester"]["reference"].startswith("PractitionerRole/")
    assert set(types) == {
        "Patient",
        "Encounter",
        "Observation",
        "Condition",
        "AllergyIntolerance",
        "MedicationRequest",
    }
    assert types["Patient"] == 100 and types["Observation"] > 2_000


def test_invalid_arguments() -> None:
    with pytest.raises(ValueError):
        patient_bundle(-1)
    with pytest.raises(ValueError):
        patient_bundle(0, resources=0)
    with pytest.raises(ValueError):
        care_providers_bundle(organizations=0)
    with pytest.raises(ValueError):
        patient_bundle(0, seed=-1)


# ----------------------------------------------------------- valid FHIR R4, as the engine checks


def test_resources_are_valid_fhir_r4() -> None:
    """Every resource passes the engine's own validation (R4 schema, dates, references)."""
    bundles = [care_providers_bundle(), care_providers_bundle(5, 7, 3)]
    bundles += list(patient_bundles(25, seed=0))
    bundles += list(patient_bundles(10, seed=3, resources=120))
    bundles += [patient_bundle(i, seed=8, resources=r) for i, r in enumerate((1, 2, 7, 13))]
    count = 0
    for bundle in bundles:
        for entry in bundle["entry"]:
            resource = entry["resource"]
            validate_resource(resource, resource["resourceType"])
            count += 1
    assert count > 2_000


# ------------------------------------------------------------------------------- speed


def test_generation_speed(capsys: pytest.CaptureFixture[str]) -> None:
    start = time.perf_counter()
    n = 300
    total = sum(len(b["entry"]) for b in patient_bundles(n, seed=21))
    elapsed = time.perf_counter() - start
    with capsys.disabled():
        print(f"\nsynth: {n / elapsed:.0f} patient bundles/s, {total / elapsed:.0f} resources/s")
    assert total == n * 50
    assert n / elapsed > 50  # generous floor; measured ~1000/s on the 2-core dev machine
