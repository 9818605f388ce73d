"""Replaced person numbers: a D-number that became a fødselsnummer, a corrected number.

The person register keeps a replaced number on the current person as an identifier with
``use: old`` (and the date it ended), so a search by the old number finds the current
person. The search result says so in a warning, naming the current number.
"""

from __future__ import annotations

from collections.abc import Iterator

import orjson

from samhandling.platform.auth.context import AccessContext
from samhandling.platform.fhir.search.executor import SearchPage
from samhandling.platform.fhir.search.query import Leaf, SearchRequest
from samhandling.platform.identifiers import PERSON_SYSTEMS, SYSTEM_NAMES

_OLD = b'"old"'


def _searched_values(request: SearchRequest) -> set[str]:
    """The values of the top-level ``identifier`` criteria (without their systems)."""
    values = set()
    for criterion in request.criteria:
        if (
            isinstance(criterion, Leaf)
            and criterion.code == "identifier"
            and not criterion.modifier
        ):
            values.update(value.rpartition("|")[2] for value in criterion.values)
    return values


def _replacements(patient: dict, searched: set[str]) -> Iterator[str]:
    identifiers = patient.get("identifier") or []
    current = next(
        (
            i
            for i in identifiers
            if i.get("system") in PERSON_SYSTEMS and i.get("use") != "old" and i.get("value")
        ),
        None,
    )
    for identifier in identifiers:
        system = identifier.get("system")
        if identifier.get("use") == "old" and system in PERSON_SYSTEMS:
            value = identifier.get("value")
            if value in searched:
                name = SYSTEM_NAMES[system]
                now = (
                    f"{SYSTEM_NAMES[current['system']]} {current['value']}"
                    if current
                    else "another number"
                )
                yield f"{name} {value} is no longer in use: it was replaced by {now}"


async def annotate_replaced(
    context: AccessContext, request: SearchRequest, page: SearchPage
) -> None:
    """Warn when a person was found by a number that has been replaced."""
    searched = _searched_values(request)
    if not searched:
        return
    for row in page.matches:
        if row.type == "Patient" and _OLD in row.content:
            page.warnings.extend(_replacements(orjson.loads(row.content), searched))
