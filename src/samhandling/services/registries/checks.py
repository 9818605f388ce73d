"""Write checks of the registers: every Norwegian identifier in a register resource is valid."""

from __future__ import annotations

from collections.abc import Iterator

from samhandling.platform.fhir.engine import WriteCheck
from samhandling.platform.fhir.errors import Issue
from samhandling.platform.identifiers import SYSTEM_NAMES, identifier_error


def identifier_check(type: str, *, allow_synthetic: bool) -> WriteCheck:
    """A check that refuses invalid fødselsnumre, D-numbers, organisation numbers, HPR
    numbers, HER-ids, ... wherever ``type`` carries one (identifiers, and references by
    identifier)."""

    def check(resource: dict) -> list[Issue]:
        issues = []
        for path, system, value in _identifiers(resource, type):
            problem = identifier_error(system, value, allow_synthetic=allow_synthetic)
            if problem is not None:
                issues.append(Issue("error", "value", problem, (f"{path}.value",)))
        return issues

    return check


def _identifiers(node: object, path: str) -> Iterator[tuple[str, str, object]]:
    """(path, system, value) of every element with one of our identifier systems."""
    if isinstance(node, dict):
        system = node.get("system")
        if isinstance(system, str) and system in SYSTEM_NAMES and "value" in node:
            yield path, system, node["value"]
        for key, value in node.items():
            if isinstance(value, (dict, list)):
                yield from _identifiers(value, f"{path}.{key}")
    elif isinstance(node, list):
        for index, item in enumerate(node):
            yield from _identifiers(item, f"{path}[{index}]")
