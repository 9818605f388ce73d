"""Code systems whose owners license them: read the owner's file, get a FHIR CodeSystem.

samhandling does not ship these; a user who has the files (and the right to use them) loads
them with ``samhandling terminology load --loinc PATH --icd10-no PATH --icpc2 PATH --nlk
PATH``. Two input formats:

**LOINC** (Regenstrief), the ``LoincTable/Loinc.csv`` of the LOINC release: comma-separated,
double-quoted, UTF-8, a header row. Used columns: ``LOINC_NUM`` (the code, required),
``LONG_COMMON_NAME`` (the display; when empty, the fully specified name
``COMPONENT:PROPERTY:TIME_ASPCT:SYSTEM:SCALE_TYP:METHOD_TYP``), ``STATUS`` (``ACTIVE``,
``TRIAL``, ``DISCOURAGED``, ``DEPRECATED``; deprecated codes are ``inactive``), and as
string properties of the same names ``COMPONENT``, ``PROPERTY``, ``TIME_ASPCT``, ``SYSTEM``,
``SCALE_TYP``, ``METHOD_TYP``, ``CLASS``, ``STATUS`` (HL7's LOINC CodeSystem types the six
axes as Codings of LOINC part numbers; Loinc.csv has only their names). Other columns are
ignored. Canonical ``http://loinc.org``.

**The Norwegian code lists** (ICD-10 Norsk and ICPC-2 from Helsedirektoratet's FinnKode,
NLK — Norsk laboratoriekodeverk): one text file per code system, read in samhandling's own
documented format (it is *our* input format, not verified against Helsedirektoratet's
current export; convert an export to it if they differ):

- UTF-8, with or without a byte-order mark (a file that is not valid UTF-8 is read as
  Windows-1252, as older Norwegian exports are);
- a header row naming the columns, separated by tabs if the header has a tab, otherwise by
  semicolons; values may be double-quoted; blank lines are skipped;
- columns, by name (case-insensitive, any order, other columns ignored):
  ``code`` (required) the code as it is used in messages (ICD-10 Norsk without a dot:
  ``E119``); ``text`` (required) the display; ``parent`` (optional) the code of the parent
  concept, empty for a top-level concept; ``active`` (optional) ``1``/``0``,
  ``true``/``false``, ``ja``/``nei``, ``j``/``n``, empty meaning active.

Codes must be unique and every parent must be a code of the file. Concepts are nested
under their parents (``hierarchyMeaning: is-a``), in file order; an inactive concept stays
in the code system with the property ``inactive: true``.

What each kind becomes (canonical url; identifiers; resource id):

- ``icd10-no``: ``http://hl7.org/fhir/sid/icd-10-no``; ``urn:oid:2.16.578.1.12.4.1.1.7110``;
  ``no-kodeverk-ICD-10.codesystem``, the id of kodeverk's placeholder, which it replaces;
- ``icpc2``: ``http://hl7.org/fhir/sid/icpc-2``; ``urn:oid:2.16.840.1.113883.6.139`` and
  Volven's ``urn:oid:2.16.578.1.12.4.1.1.7170``; ``icpc-2``;
- ``nlk``: ``urn:oid:2.16.578.1.12.4.1.1.7280`` (the system lab messages use); the same OID;
  ``nlk``;
- ``loinc``: ``http://loinc.org``; ``urn:oid:2.16.840.1.113883.6.1``; ``loinc``.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from samhandling.services.terminology.content import OID_SYSTEM

INACTIVE_PROPERTY = {
    "code": "inactive",
    "uri": "http://hl7.org/fhir/concept-properties#inactive",
    "description": "the concept is no longer to be used",
    "type": "boolean",
}
LOINC_AXES = ("COMPONENT", "PROPERTY", "TIME_ASPCT", "SYSTEM", "SCALE_TYP", "METHOD_TYP")
LOINC_PROPERTIES = (*LOINC_AXES, "CLASS", "STATUS")
LOINC_COPYRIGHT = (
    "This material contains content from LOINC (http://loinc.org). LOINC is copyright"
    " Regenstrief Institute, Inc. and the Logical Observation Identifiers Names and Codes"
    " (LOINC) Committee and is available at no cost under the license at"
    " http://loinc.org/license. LOINC® is a registered United States trademark of"
    " Regenstrief Institute, Inc."
)
_TRUE = frozenset({"", "1", "true", "ja", "j", "yes", "y"})
_FALSE = frozenset({"0", "false", "nei", "n", "no"})
_FORBIDDEN_SPACE = re.compile(r"[^\S \r\n\t]")  # white space a FHIR string may not hold


class LicensedFileError(ValueError):
    """A file not in the expected format; names the file and, when known, the line."""

    def __init__(self, path: Path, message: str, line: int | None = None) -> None:
        where = f"{path}" + (f" line {line}" if line is not None else "")
        super().__init__(f"{where}: {message}")


@dataclass(frozen=True)
class CodeList:
    """The identity of a Norwegian code system read from the simple code-list format."""

    id: str
    url: str
    identifiers: tuple[str, ...]
    name: str
    title: str
    publisher: str
    description: str


ICD10_NO = CodeList(
    id="no-kodeverk-ICD-10.codesystem",
    url="http://hl7.org/fhir/sid/icd-10-no",
    identifiers=("urn:oid:2.16.578.1.12.4.1.1.7110",),
    name="NoKodeverkICD10",
    title="ICD-10",
    publisher="Helsedirektoratet",
    description="Klassifikasjon av sykdommer og beslektede helseproblemer (ICD-10 Norsk).",
)
ICPC2 = CodeList(
    id="icpc-2",
    url="http://hl7.org/fhir/sid/icpc-2",
    identifiers=("urn:oid:2.16.840.1.113883.6.139", "urn:oid:2.16.578.1.12.4.1.1.7170"),
    name="ICPC2",
    title="ICPC-2 (Norwegian edition)",
    publisher="Helsedirektoratet",
    description=(
        "International Classification of Primary Care, 2nd edition (Wonca International"
        " Classification Committee), the Norwegian edition."
    ),
)
NLK = CodeList(
    id="nlk",
    url="urn:oid:2.16.578.1.12.4.1.1.7280",
    identifiers=("urn:oid:2.16.578.1.12.4.1.1.7280",),
    name="NorskLaboratoriekodeverk",
    title="Norsk laboratoriekodeverk (NLK)",
    publisher="Helsedirektoratet",
    description="Norsk laboratoriekodeverk: the national code system for laboratory analyses.",
)
CODE_LISTS = {"icd10-no": ICD10_NO, "icpc2": ICPC2, "nlk": NLK}


def licensed_codesystem(kind: str, path: Path, version: str | None = None) -> dict[str, Any]:
    """The CodeSystem in the owner's file ``path`` of ``kind`` (see `KINDS`)."""
    reader = KINDS.get(kind)
    if reader is None:
        raise ValueError(f"unknown kind {kind!r} (known: {', '.join(KINDS)})")
    return reader(path, version)


# --------------------------------------------------------------------------- Norwegian lists


def read_icd10_no(path: Path, version: str | None = None) -> dict[str, Any]:
    """ICD-10 Norsk from a code list in the documented format."""
    return read_code_list(path, ICD10_NO, version)


def read_icpc2(path: Path, version: str | None = None) -> dict[str, Any]:
    """ICPC-2 (Norwegian edition) from a code list in the documented format."""
    return read_code_list(path, ICPC2, version)


def read_nlk(path: Path, version: str | None = None) -> dict[str, Any]:
    """Norsk laboratoriekodeverk from a code list in the documented format."""
    return read_code_list(path, NLK, version)


def read_code_list(path: Path, identity: CodeList, version: str | None = None) -> dict[str, Any]:
    """A CodeSystem ``identity`` from a file in the documented code-list format."""
    concepts: dict[str, dict[str, Any]] = {}
    parents: dict[str, str] = {}
    lines: dict[str, int] = {}
    for line, row in _rows(path):
        code, text = _text(row.get("code")), _text(row.get("text"))
        if not code:
            raise LicensedFileError(path, "no code", line)
        if code in concepts:
            raise LicensedFileError(path, f"code {code!r} is repeated", line)
        if not text:
            raise LicensedFileError(path, f"code {code!r} has no text", line)
        concept: dict[str, Any] = {"code": code, "display": text}
        if not _active(path, line, row.get("active")):
            concept["property"] = [{"code": "inactive", "valueBoolean": True}]
        concepts[code], lines[code] = concept, line
        parent = _text(row.get("parent"))
        if parent:
            parents[code] = parent
    roots = _nest(path, concepts, parents, lines)
    codesystem: dict[str, Any] = {
        "resourceType": "CodeSystem",
        "id": identity.id,
        "url": identity.url,
        "identifier": [{"system": OID_SYSTEM, "value": value} for value in identity.identifiers],
    }
    if version:
        codesystem["version"] = version
    codesystem |= {
        "name": identity.name,
        "title": identity.title,
        "status": "active",
        "publisher": identity.publisher,
        "description": identity.description,
        "caseSensitive": True,
        "hierarchyMeaning": "is-a",
        "content": "complete",
        "count": len(concepts),
        "property": [INACTIVE_PROPERTY],
        "concept": roots,
    }
    return codesystem


def _rows(path: Path) -> Iterator[tuple[int, dict[str, str]]]:
    """(line number, row by lower-case column name) of a code-list file."""
    text = _decode(path.read_bytes())
    header = text.split("\n", 1)[0]
    reader = csv.reader(io.StringIO(text), delimiter="\t" if "\t" in header else ";")
    try:
        columns = [name.strip().lower() for name in next(reader)]
    except StopIteration:
        raise LicensedFileError(path, "the file is empty") from None
    missing = [name for name in ("code", "text") if name not in columns]
    if missing:
        raise LicensedFileError(
            path, f"the header has no column {', '.join(missing)} (it has {columns})", 1
        )
    for values in reader:
        if not any(value.strip() for value in values):
            continue
        yield reader.line_num, dict(zip(columns, values, strict=False))


def _text(value: str | None) -> str:
    """A cell as a FHIR string: trimmed, white space FHIR does not allow made a space."""
    return _FORBIDDEN_SPACE.sub(" ", value or "").strip()


def _decode(data: bytes) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return data.decode("cp1252")


def _active(path: Path, line: int, value: str | None) -> bool:
    flag = (value or "").strip().lower()
    if flag in _TRUE:
        return True
    if flag in _FALSE:
        return False
    raise LicensedFileError(path, f"active must be 1/0, true/false or ja/nei, not {value!r}", line)


def _nest(
    path: Path,
    concepts: dict[str, dict[str, Any]],
    parents: dict[str, str],
    lines: dict[str, int],
) -> list[dict[str, Any]]:
    """Put each concept under its parent; the top-level concepts, in file order."""
    roots = []
    for code, concept in concepts.items():
        parent = parents.get(code)
        if parent is None:
            roots.append(concept)
        elif parent not in concepts:
            raise LicensedFileError(
                path, f"parent {parent!r} of {code!r} is not a code", lines[code]
            )
        else:
            concepts[parent].setdefault("concept", []).append(concept)
    placed = _count(roots)
    if placed != len(concepts):  # the rest hang in cycles of parents
        raise LicensedFileError(path, f"{len(concepts) - placed} codes are their own ancestors")
    return roots


def _count(concepts: list[dict[str, Any]]) -> int:
    return sum(1 + _count(c.get("concept", [])) for c in concepts)


# --------------------------------------------------------------------------- LOINC


def read_loinc(path: Path, version: str | None = None) -> dict[str, Any]:
    """LOINC from the release's ``LoincTable/Loinc.csv``."""
    with path.open(encoding="utf-8-sig", newline="") as f:
        reader = csv.DictReader(f)
        columns = set(reader.fieldnames or ())
        if "LOINC_NUM" not in columns:
            raise LicensedFileError(path, "no LOINC_NUM column: not a Loinc.csv", 1)
        properties = [name for name in LOINC_PROPERTIES if name in columns]
        concepts = [_loinc_concept(path, reader.line_num, row, properties) for row in reader]
    codesystem: dict[str, Any] = {
        "resourceType": "CodeSystem",
        "id": "loinc",
        "url": "http://loinc.org",
        "identifier": [{"system": OID_SYSTEM, "value": "urn:oid:2.16.840.1.113883.6.1"}],
    }
    if version:
        codesystem["version"] = version
    codesystem |= {
        "name": "LOINC",
        "title": "LOINC",
        "status": "active",
        "publisher": "Regenstrief Institute, Inc.",
        "description": "Logical Observation Identifiers, Names and Codes, from Loinc.csv.",
        "copyright": LOINC_COPYRIGHT,
        "caseSensitive": False,
        "content": "complete",
        "count": len(concepts),
        "property": [
            *(
                {"code": name, "description": f"Loinc.csv {name}", "type": "string"}
                for name in properties
            ),
            INACTIVE_PROPERTY,
        ],
        "concept": concepts,
    }
    return codesystem


def _loinc_concept(
    path: Path, line: int, row: dict[str, str], properties: list[str]
) -> dict[str, Any]:
    code = _text(row.get("LOINC_NUM"))
    if not code:
        raise LicensedFileError(path, "no LOINC_NUM", line)
    display = _text(row.get("LONG_COMMON_NAME")) or ":".join(
        _text(row.get(axis)) for axis in LOINC_AXES
    ).rstrip(":")
    values = [
        {"code": name, "valueString": value}
        for name in properties
        if (value := _text(row.get(name)))
    ]
    if _text(row.get("STATUS")).upper() == "DEPRECATED":
        values.append({"code": "inactive", "valueBoolean": True})
    concept: dict[str, Any] = {"code": code}
    if display:
        concept["display"] = display
    if values:
        concept["property"] = values
    return concept


KINDS: dict[str, Callable[[Path, str | None], dict[str, Any]]] = {
    "icd10-no": read_icd10_no,
    "icpc2": read_icpc2,
    "nlk": read_nlk,
    "loinc": read_loinc,
}
