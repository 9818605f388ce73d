"""Loading the registers from feeds: NDJSON files of Bundles or resources.

A real deployment feeds the registers from their masters (Folkeregisteret's event feed,
HPR, Enhetsregisteret, Adresseregisteret, Fastlegeregisteret): a feed adapter turns each
event into FHIR and writes it here. The file format this loader reads is the hand-over:
one JSON value per line, either a transaction or batch Bundle (run as it is, so a line is
all or nothing) or a single resource with an ``id`` (collected, in order, into transactions
of PUTs). Every write goes through the engine's validation and the registers' checks.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import orjson

from samhandling.platform.fhir.engine import FhirEngine
from samhandling.platform.fhir.errors import FhirError
from samhandling.platform.fhir.rest.bundle import process_bundle

BATCH = 500  # resources per transaction when a feed has single resources


@dataclass
class LoadReport:
    """What a load did: lines read, resources written, and the first failure if any."""

    lines: int = 0
    resources: int = 0
    error: str | None = None
    failed_line: int | None = None
    warnings: list[str] = field(default_factory=list)


async def load_ndjson(
    engine: FhirEngine,
    lines: Iterable[bytes],
    base: str,
    progress: Callable[[int], None] = lambda n: None,
) -> LoadReport:
    """Load the lines in order; stop at the first line that fails (nothing of it is kept)."""
    report = LoadReport()
    pending: list[dict] = []
    first_pending = 0

    async def flush() -> bool:
        nonlocal pending
        if not pending:
            return True
        bundle = {"resourceType": "Bundle", "type": "transaction", "entry": pending}
        pending = []
        return await _run(engine, bundle, base, report, first_pending, progress)

    for number, raw in enumerate(lines, start=1):
        report.lines = number
        if not raw.strip():
            continue
        try:
            value = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            report.error, report.failed_line = f"not JSON: {exc}", number
            return report
        if not isinstance(value, dict) or not isinstance(value.get("resourceType"), str):
            report.error, report.failed_line = "not a FHIR resource", number
            return report
        if value["resourceType"] == "Bundle" and value.get("type") in ("transaction", "batch"):
            if not await flush():
                return report
            if not await _run(engine, value, base, report, number, progress):
                return report
            continue
        if not isinstance(value.get("id"), str):
            report.error = "a resource in a feed needs an id (it is written with PUT)"
            report.failed_line = number
            return report
        if not pending:
            first_pending = number
        pending.append({"resource": value, "request": {"method": "PUT", "url": _url(value)}})
        if len(pending) >= BATCH and not await flush():
            return report
    await flush()
    return report


def _url(resource: dict) -> str:
    return f"{resource['resourceType']}/{resource['id']}"


async def _run(
    engine: FhirEngine,
    bundle: dict,
    base: str,
    report: LoadReport,
    line: int,
    progress: Callable[[int], None],
) -> bool:
    """Run one Bundle; False (and the error in the report) when it failed as a whole."""
    try:
        response = await process_bundle(engine, bundle, base, "minimal")
    except FhirError as error:
        report.error, report.failed_line = str(error), line
        return False
    written = 0
    for entry in response.get("entry", []):
        if entry["response"]["status"].startswith("2"):
            written += 1
            continue
        for issue in entry["response"].get("outcome", {}).get("issue", []):  # a batch entry
            report.warnings.append(f"line {line}: {issue.get('diagnostics')}")
    report.resources += written
    progress(written)
    return True
