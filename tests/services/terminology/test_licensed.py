"""Licensed code systems from their owners' files (small fixtures written by the tests):
the documented code-list format (ICD-10 Norsk, ICPC-2, NLK) and LOINC's Loinc.csv."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import orjson
import pytest

from conftest import fresh_engine
from samhandling.platform.fhir.validation import validate_resource
from samhandling.services.terminology.licensed import (
    LicensedFileError,
    licensed_codesystem,
    read_icd10_no,
    read_icpc2,
    read_loinc,
    read_nlk,
)
from samhandling.services.terminology.loader import load_terminology

ICD10_NO_LIST = (
    "code;text;parent;active\n"
    "E10-E14;Diabetes mellitus;;1\n"
    "E11;Diabetes mellitus type 2;E10-E14;1\n"
    'E119;"Diabetes mellitus type 2; uten komplikasjoner";E11;1\n'
    "E118;Diabetes mellitus type 2 med uspesifiserte komplikasjoner;E11;0\n"
    "\n"
    "I10;Essensiell (primær) hypertensjon;;ja\n"
)
LOINC_HEADER = [
    "LOINC_NUM", "COMPONENT", "PROPERTY", "TIME_ASPCT", "SYSTEM", "SCALE_TYP", "METHOD_TYP",
    "CLASS", "VersionLastChanged", "CHNG_TYPE", "DefinitionDescription", "STATUS",
    "CONSUMER_NAME", "CLASSTYPE", "SHORTNAME", "ORDER_OBS", "LONG_COMMON_NAME",
]  # fmt: skip


def _codes(concepts: list[dict[str, Any]]) -> list[str]:
    return [c["code"] for c in concepts]


def _write(tmp_path: Path, text: str, name: str = "list.txt", encoding: str = "utf-8") -> Path:
    path = tmp_path / name
    path.write_bytes(text.encode(encoding))
    return path


def _loinc_file(tmp_path: Path, rows: list[dict[str, str]]) -> Path:
    path = tmp_path / "Loinc.csv"
    with path.open("w", encoding="utf-8", newline="") as f:
        writer = csv.DictWriter(f, LOINC_HEADER, quoting=csv.QUOTE_ALL)
        writer.writeheader()
        for row in rows:
            writer.writerow({name: row.get(name, "") for name in LOINC_HEADER})
    return path


# --------------------------------------------------------------------------- code lists


def test_icd10_no_nests_codes_under_their_parents(tmp_path: Path) -> None:
    codesystem = read_icd10_no(_write(tmp_path, ICD10_NO_LIST), version="2025")
    assert codesystem["url"] == "http://hl7.org/fhir/sid/icd-10-no"
    assert codesystem["id"] == "no-kodeverk-ICD-10.codesystem"  # kodeverk's placeholder
    assert codesystem["identifier"][0]["value"] == "urn:oid:2.16.578.1.12.4.1.1.7110"
    assert codesystem["version"] == "2025" and codesystem["count"] == 5
    assert codesystem["hierarchyMeaning"] == "is-a" and codesystem["content"] == "complete"
    block, i10 = codesystem["concept"]
    assert _codes([block, i10]) == ["E10-E14", "I10"]
    e11 = block["concept"][0]
    assert _codes(e11["concept"]) == ["E119", "E118"]
    assert e11["concept"][0]["display"] == "Diabetes mellitus type 2; uten komplikasjoner"
    assert e11["concept"][1]["property"] == [{"code": "inactive", "valueBoolean": True}]
    assert "property" not in i10
    validate_resource(codesystem, "CodeSystem", id=codesystem["id"])


def test_tab_separated_any_column_order_bom_and_extra_columns(tmp_path: Path) -> None:
    text = "\ufeffactive\tTEXT\tnote\tCode\tParent\nfalse\tHoste\tx\tR05\t\n"
    codesystem = read_icpc2(_write(tmp_path, text))
    assert codesystem["url"] == "http://hl7.org/fhir/sid/icpc-2"
    assert [i["value"] for i in codesystem["identifier"]] == [
        "urn:oid:2.16.840.1.113883.6.139",
        "urn:oid:2.16.578.1.12.4.1.1.7170",
    ]
    assert codesystem["concept"] == [
        {
            "code": "R05",
            "display": "Hoste",
            "property": [{"code": "inactive", "valueBoolean": True}],
        }
    ]
    validate_resource(codesystem, "CodeSystem", id="icpc-2")


def test_windows_1252_files_are_read(tmp_path: Path) -> None:
    text = 'code;text\nNPU02319;"B-Hemoglobin; massekonsentrasjon (blød)"\n'
    codesystem = read_nlk(_write(tmp_path, text, encoding="cp1252"))
    assert codesystem["url"] == "urn:oid:2.16.578.1.12.4.1.1.7280"
    assert codesystem["concept"][0]["display"] == "B-Hemoglobin; massekonsentrasjon (blød)"


def test_forbidden_white_space_becomes_a_space(tmp_path: Path) -> None:
    codesystem = read_icpc2(_write(tmp_path, "code;text\nA01;Smerte\u00a0generell \n"))
    assert codesystem["concept"][0]["display"] == "Smerte generell"
    validate_resource(codesystem, "CodeSystem", id="icpc-2")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "the file is empty"),
        ("kode;tekst\nA;B\n", "the header has no column code, text"),
        ("code;text\nA01;x\nA01;y\n", "line 3: code 'A01' is repeated"),
        ("code;text\nA01;\n", "line 2: code 'A01' has no text"),
        ("code;text\n;x\n", "line 2: no code"),
        ("code;text;parent\nA01;x;A00\n", "line 2: parent 'A00' of 'A01' is not a code"),
        ("code;text;parent\nA;x;B\nB;y;A\n", "2 codes are their own ancestors"),
        ("code;text;active\nA01;x;maybe\n", "line 2: active must be"),
    ],
)
def test_code_list_errors_name_the_line(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(LicensedFileError, match=message):
        read_icd10_no(_write(tmp_path, text))


def test_unknown_kind_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown kind 'snomed'"):
        licensed_codesystem("snomed", tmp_path / "x.txt")


# --------------------------------------------------------------------------- LOINC


def test_loinc_from_loinc_csv(tmp_path: Path) -> None:
    rows = [
        {"LOINC_NUM": "2345-7", "COMPONENT": "Glucose", "PROPERTY": "MCnc", "TIME_ASPCT": "Pt",
         "SYSTEM": "Ser/Plas", "SCALE_TYP": "Qn", "CLASS": "CHEM", "STATUS": "ACTIVE",
         "SHORTNAME": "Glucose SerPl-mCnc",
         "LONG_COMMON_NAME": "Glucose [Mass/volume] in Serum or Plasma"},
        {"LOINC_NUM": "1234-5", "COMPONENT": "Old test", "PROPERTY": "ACnc", "TIME_ASPCT": "Pt",
         "SYSTEM": "Ser", "SCALE_TYP": "Ord", "METHOD_TYP": "Strip", "CLASS": "CHEM",
         "STATUS": "DEPRECATED"},
    ]  # fmt: skip
    codesystem = read_loinc(_loinc_file(tmp_path, rows), version="2.80")
    assert codesystem["url"] == "http://loinc.org" and codesystem["id"] == "loinc"
    assert codesystem["version"] == "2.80" and codesystem["count"] == 2
    assert "Regenstrief" in codesystem["copyright"]
    assert [p["code"] for p in codesystem["property"]] == [
        "COMPONENT", "PROPERTY", "TIME_ASPCT", "SYSTEM", "SCALE_TYP", "METHOD_TYP", "CLASS",
        "STATUS", "inactive",
    ]  # fmt: skip
    glucose, old = codesystem["concept"]
    assert glucose["display"] == "Glucose [Mass/volume] in Serum or Plasma"
    assert {"code": "SCALE_TYP", "valueString": "Qn"} in glucose["property"]
    assert not any(p["code"] in ("METHOD_TYP", "inactive") for p in glucose["property"])
    assert old["display"] == "Old test:ACnc:Pt:Ser:Ord:Strip"  # no long common name
    assert {"code": "inactive", "valueBoolean": True} in old["property"]
    validate_resource(codesystem, "CodeSystem", id="loinc")


def test_a_file_without_loinc_num_is_not_loinc(tmp_path: Path) -> None:
    path = _write(tmp_path, "CODE,NAME\n1,x\n", "Loinc.csv")
    with pytest.raises(LicensedFileError, match="no LOINC_NUM column"):
        read_loinc(path)


# --------------------------------------------------------------------------- loading


async def _stored(engine: Any, type_name: str, id: str) -> dict[str, Any]:
    found = await engine.store.read(type_name, id)
    assert found is not None and found.content is not None
    return orjson.loads(found.content)


async def test_licensed_files_load_once_and_outlive_the_placeholder(tmp_path: Path) -> None:
    icd10_no = _write(tmp_path, ICD10_NO_LIST)
    loinc = _loinc_file(tmp_path, [{"LOINC_NUM": "2345-7", "LONG_COMMON_NAME": "Glucose"}])
    parts = [f"icd10-no={icd10_no}", f"loinc={loinc}"]
    async with fresh_engine("sqlite", tmp_path) as engine:
        base = "http://localhost/fhir"
        assert await load_terminology(engine, ["norwegian"], base) == {"norwegian": 57}
        placeholder = await _stored(engine, "CodeSystem", "no-kodeverk-ICD-10.codesystem")
        assert placeholder["content"] == "not-present"
        done: list[tuple[str, int, int]] = []
        written = await load_terminology(engine, parts, base, lambda *p: done.append(p))
        assert written == {"icd10-no": 1, "loinc": 1}
        assert done == [("icd10-no", 0, 1), ("icd10-no", 1, 1), ("loinc", 0, 1), ("loinc", 1, 1)]
        assert await load_terminology(engine, parts, base) == {"icd10-no": 0, "loinc": 0}
        # loading the Norwegian part again keeps the licensed ICD-10 Norsk
        assert await load_terminology(engine, ["norwegian"], base) == {"norwegian": 0}
        stored = await _stored(engine, "CodeSystem", "no-kodeverk-ICD-10.codesystem")
        assert stored["content"] == "complete" and stored["count"] == 5
        assert stored["meta"]["versionId"] == "2"
        assert (await _stored(engine, "CodeSystem", "loinc"))["concept"][0]["code"] == "2345-7"


async def test_unknown_part_is_refused(tmp_path: Path) -> None:
    async with fresh_engine("sqlite", tmp_path) as engine:
        with pytest.raises(ValueError, match="unknown terminology part 'snomed'"):
            await load_terminology(engine, ["snomed"], "http://localhost/fhir")
