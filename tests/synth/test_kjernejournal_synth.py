"""Synthetic Kjernejournal data (samhandling.synth.kjernejournal): critical information and
ITI-65 submissions pass the summary service's checks, in process and through the configured
engine; deterministic; and the demo loader writes them once."""

from __future__ import annotations

import base64
import hashlib
import re
import sqlite3
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import orjson
import pytest

from samhandling.platform.fhir.validation import validate_resource
from samhandling.services.summary.checks import critical_check
from samhandling.services.summary.critical import categories, recorder_of
from samhandling.services.summary.documents import (
    check_binary,
    check_document_reference,
    check_submission_set,
    is_provide_bundle,
    provide_bundle_issues,
)
from samhandling.services.summary.model import CATEGORIES, CRITICAL_TYPES
from samhandling.synth.kjernejournal import (
    CRITICAL_ITEMS,
    Author,
    KjernejournalData,
    KjPatient,
    critical_entry,
    document_pdf,
    register_authors,
    synthetic_authors,
)
from samhandling.synth.registers import register_population

PERSONS = 150
SEED = 3


@pytest.fixture(scope="module")
def population() -> Any:
    return register_population(PERSONS, SEED)


@pytest.fixture(scope="module")
def patients(population: Any) -> list[KjPatient]:
    return [KjPatient(p.id, p.pid) for p in population.persons if p.practitioner_id is None]


@pytest.fixture(scope="module")
def authors(population: Any) -> tuple[Author, ...]:
    return register_authors(population)


def resources_of(bundles: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [entry["resource"] for bundle in bundles for entry in bundle["entry"]]


def assert_passes_checks(resource: dict[str, Any]) -> None:
    """``resource`` passes the summary service's write checks and the structure check."""
    type_name = resource["resourceType"]
    issues: list[Any] = []
    if type_name in CRITICAL_TYPES:
        issues = critical_check(type_name, allow_synthetic=False)(resource)
    elif type_name == "DocumentReference":
        issues = check_document_reference(resource)
    elif type_name == "List":
        issues = check_submission_set(resource)
    elif type_name == "Binary":
        issues = check_binary(resource)
    assert issues == [], (type_name, issues)
    validate_resource(resource, type_name)


def test_authors_are_the_registers_doctors(population: Any, authors: tuple[Author, ...]) -> None:
    orgnrs = {o.orgnr: o for o in population.organizations}
    assert authors
    for author in authors:
        assert "LE" in population.authorised_hpr_numbers[author.hpr]
        assert author.orgnr in orgnrs and orgnrs[author.orgnr].name == author.organisation
    kinds = Counter(a.kind for a in authors)
    assert kinds["sykehus"] and kinds["legevakt"] and kinds[None]  # GP offices: None


def test_every_kind_of_critical_information_passes_the_checks() -> None:
    author = synthetic_authors()[0]
    for item in CRITICAL_ITEMS:
        for verified in (True, False):
            entry = critical_entry(
                item, "p-1", author, "2025-03-01T10:00:00+01:00", source="1", verified=verified
            )
            assert_passes_checks(entry)
            assert categories(entry["resourceType"], entry) == [item.category]
            recorder = recorder_of(entry["resourceType"], entry)
            assert recorder is not None
            assert (recorder.hpr_number, recorder.orgnr) == (author.hpr, author.orgnr)
    assert {i.category for i in CRITICAL_ITEMS} == set(CATEGORIES)


def test_generated_data_pass_the_service_checks(
    patients: list[KjPatient], authors: tuple[Author, ...]
) -> None:
    data = KjernejournalData(patients, authors, SEED, document_bytes=3000)
    bundles = list(data.bundles(batch=50))
    submissions = [b for b in bundles if is_provide_bundle(b)]
    for bundle in submissions:
        assert provide_bundle_issues(bundle) == []
        document, binary = (e["resource"] for e in bundle["entry"][1:])
        content = base64.b64decode(binary["data"])
        attachment = document["content"][0]["attachment"]
        assert len(content) == attachment["size"] == 3000 and content.startswith(b"%PDF-1.4")
        assert attachment["hash"] == base64.b64encode(hashlib.sha1(content).digest()).decode()
        assert document["subject"] == bundle["entry"][0]["resource"]["subject"]
    for resource in resources_of(bundles):
        assert_passes_checks(resource)
    counts = data.counts()
    critical = [r for r in resources_of(bundles) if r["resourceType"] in CRITICAL_TYPES]
    assert len(critical) == counts["critical_entries"] and len(submissions) == counts["documents"]
    share = counts["with_critical_information"] / counts["patients"]
    assert 0.2 < share < 0.4  # about 30%
    assert 0.4 < counts["with_documents"] / counts["patients"] < 0.6
    labels = Counter(
        r["securityLabel"][0]["coding"][0]["code"]
        for r in resources_of(submissions)
        if r["resourceType"] == "DocumentReference"
    )
    assert set(labels) <= {"N", "NORS"} and labels["N"] > 10 * labels["NORS"]
    # the recorders and document authors are the registers' doctors, documents from the
    # organisations that share them
    doctors = {(a.hpr, a.orgnr) for a in authors}
    for entry in critical:
        recorder = recorder_of(entry["resourceType"], entry)
        assert recorder is not None and (recorder.hpr_number, recorder.orgnr) in doctors
    sources = {a.orgnr for a in authors if a.kind}
    for resource in resources_of(submissions):
        if resource["resourceType"] == "DocumentReference":
            assert resource["author"][0]["identifier"]["value"] in sources


def test_deterministic(patients: list[KjPatient], authors: tuple[Author, ...]) -> None:
    def dumped(data: KjernejournalData) -> list[bytes]:
        return [orjson.dumps(b) for b in data.bundles()]

    first = KjernejournalData(patients[:40], authors, SEED, document_bytes=2000)
    again = KjernejournalData(patients[:40], authors, SEED, document_bytes=2000)
    other = KjernejournalData(patients[:40], authors, SEED + 1, document_bytes=2000)
    assert dumped(first) == dumped(again)
    assert dumped(first) != dumped(other)
    assert first.marker == again.marker and first.marker != other.marker
    # a patient's part depends on that patient alone, not on who else is in the list
    alone = KjernejournalData(patients[5:6], authors, SEED, document_bytes=2000)
    assert alone.critical(patients[5]) == first.critical(patients[5])
    assert alone.submissions(patients[5]) == first.submissions(patients[5])


def test_pdf_is_valid_and_of_the_size_asked() -> None:
    for size in (0, 1000, 4097, 200 * 1024):
        pdf = document_pdf("Epikrise fra Ullevål sykehus", ["Innlagt (akutt) 01.02.2025."], size)
        assert size == 0 or len(pdf) == size
        assert pdf.startswith(b"%PDF-1.4\n") and pdf.endswith(b"%%EOF\n")
        # every object is where the cross-reference table says
        start = int(re.search(rb"startxref\n(\d+)\n", pdf).group(1))  # type: ignore[union-attr]
        assert pdf[start:].startswith(b"xref\n0 7\n")
        offsets = re.findall(rb"(\d{10}) 00000 n ", pdf[start:])
        for number, offset in enumerate(offsets, 1):
            assert pdf[int(offset) :].startswith(b"%d 0 obj\n" % number)
        assert "Ullevål".encode("cp1252") in pdf


async def test_loaded_through_the_configured_engine(
    tmp_path: Path, population: Any, patients: list[KjPatient], authors: tuple[Author, ...]
) -> None:
    """Every Bundle is accepted by the engine with all services' write checks and the
    terminology's binding validation (over the register population): 201 for every entry."""
    from samhandling.cli import _engine, _load_demo_terminology
    from samhandling.platform.fhir.rest.bundle import process_bundle
    from samhandling.settings import Settings

    settings = Settings(data_dir=tmp_path)
    base = f"{settings.issuer}/fhir"
    data = KjernejournalData(patients[:60], authors, SEED, document_bytes=2000)
    async with _engine(settings) as engine:
        await _load_demo_terminology(engine, base)
        for bundle in population.bundles():
            await process_bundle(engine, bundle, base, "minimal")
        statuses: Counter[str] = Counter()
        for bundle in data.bundles(batch=20):
            response = await process_bundle(engine, bundle, base, "minimal")
            statuses.update(e["response"]["status"].split()[0] for e in response["entry"])
        for item in CRITICAL_ITEMS:  # every kind, once
            entry = critical_entry(item, data.patients[0].patient_id, authors[0], "2025-01-02")
            request = {"method": "POST", "url": entry["resourceType"]}
            bundle = {"resourceType": "Bundle", "type": "transaction",
                      "entry": [{"resource": entry, "request": request}]}  # fmt: skip
            response = await process_bundle(engine, bundle, base, "minimal")
            statuses.update(e["response"]["status"].split()[0] for e in response["entry"])
    counts = data.counts()
    assert statuses == {"201": counts["critical_entries"] + 3 * counts["documents"]
                        + len(CRITICAL_ITEMS)}  # fmt: skip


def test_the_demo_loads_kjernejournal_data_once(tmp_path: Path) -> None:
    args = ("demo", "--data-dir", str(tmp_path), "--persons", "150", "--patients", "8")

    def demo() -> str:
        done = subprocess.run(
            [sys.executable, "-m", "samhandling", *args],
            capture_output=True,
            text=True,
            timeout=180,
        )
        assert done.returncode == 0, done.stderr
        return done.stderr

    def stored() -> dict[str, int]:
        db = sqlite3.connect(tmp_path / "samhandling.db")
        try:
            rows = db.execute(
                "SELECT type, count(*) FROM resource WHERE type IN "
                "('DocumentReference', 'List', 'Binary', 'Flag', 'Procedure', "
                "'DeviceUseStatement') GROUP BY type"
            ).fetchall()
        finally:
            db.close()
        return dict(rows)

    first = demo()
    loaded = re.search(
        r"loaded Kjernejournal data: critical information for (\d+) patients \((\d+) entries\), "
        r"(\d+) shared documents for (\d+) patients",
        first,
    )
    assert loaded is not None, first
    documents = int(loaded.group(3))
    assert documents > 0 and int(loaded.group(2)) > 0
    counts = stored()
    assert counts["DocumentReference"] == counts["Binary"] == counts["List"] == documents
    second = demo()
    assert "the Kjernejournal demo data is already loaded" in second
    assert stored() == counts
