"""ValueSet expansion: ``compose`` (include and exclude by system and version, concept lists,
filters, imported value sets) into the list of codes, cached per value set.

Expansion is in memory over the code systems' indexes. An expansion is computed once per
(value set, version) and reused until a terminology resource changes; `$expand`'s text
filter and paging then work on the cached list.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from samhandling.platform.fhir.errors import FhirError
from samhandling.services.terminology.codesystems import CodeSystemIndex
from samhandling.services.terminology.registry import Canonical, TerminologyRegistry

MAX_EXPANSION = 200_000  # codes; a larger value set cannot be expanded here
_MAX_DEPTH = 20  # value sets importing value sets


@dataclass(frozen=True, slots=True)
class Code:
    """One code in an expansion."""

    system: str
    code: str
    display: str | None = None
    version: str | None = None
    inactive: bool = False
    abstract: bool = False


@dataclass
class Expansion:
    """A value set's codes, in order, and what was used to make them."""

    codes: list[Code]
    used: list[str] = field(default_factory=list)  # code systems (url|version) used
    _index: dict[tuple[str | None, str], Code] | None = None
    _position: dict[tuple[str, str], int] | None = None

    def in_order(self, codes: set[tuple[str, str]]) -> list[Code]:
        """The entries for (system, code) pairs, in the expansion's order."""
        if self._position is None:
            self._position = {(c.system, c.code): i for i, c in enumerate(self.codes)}
        positions = sorted(p for key in codes if (p := self._position.get(key)) is not None)
        return [self.codes[p] for p in positions]

    def contains(self, system: str | None, code: str) -> Code | None:
        """The entry for ``code`` (in ``system`` when given; any system when None)."""
        if self._index is None:
            index: dict[tuple[str | None, str], Code] = {}
            for entry in self.codes:
                index.setdefault((entry.system, entry.code), entry)
                index.setdefault((None, entry.code), entry)
            self._index = index
        return self._index.get((system, code))


async def expand(
    registry: TerminologyRegistry, valueset: dict[str, Any], depth: int = 0
) -> Expansion:
    """The codes of ``valueset`` (cached when it is a stored, canonical value set)."""
    key = ("expansion", valueset.get("url"), valueset.get("version"), valueset.get("id"))
    cacheable = bool(valueset.get("url")) and "meta" in valueset  # stored, not inline
    if cacheable and key in registry.cache:
        return registry.cache[key]
    if depth > _MAX_DEPTH:
        raise FhirError.of(422, "processing", "value sets import each other too deeply")
    compose = valueset.get("compose")
    if compose is None:
        found = Expansion(_from_expansion(valueset.get("expansion") or {}))
    else:
        found = await _compose(registry, compose, depth)
    if len(found.codes) > MAX_EXPANSION:
        raise FhirError.of(422, "too-costly", f"the value set has more than {MAX_EXPANSION} codes")
    if cacheable:
        registry.cache[key] = found
    return found


def _from_expansion(expansion: dict[str, Any]) -> list[Code]:
    codes: list[Code] = []

    def walk(entries: list[dict[str, Any]]) -> None:
        for entry in entries:
            if entry.get("code") and entry.get("system"):
                codes.append(
                    Code(
                        entry["system"],
                        entry["code"],
                        entry.get("display"),
                        entry.get("version"),
                        bool(entry.get("inactive")),
                        bool(entry.get("abstract")),
                    )
                )
            walk(entry.get("contains") or [])

    walk(expansion.get("contains") or [])
    return codes


async def _compose(registry: TerminologyRegistry, compose: dict[str, Any], depth: int) -> Expansion:
    included: dict[tuple[str, str], Code] = {}
    used: list[str] = []
    for part in compose.get("include") or ():
        for code in await _part(registry, part, depth, used):
            included.setdefault((code.system, code.code), code)
    for part in compose.get("exclude") or ():
        for code in await _part(registry, part, depth, used):
            included.pop((code.system, code.code), None)
    codes = list(included.values())
    if compose.get("inactive") is False:
        codes = [c for c in codes if not c.inactive]
    return Expansion(codes, used)


async def _part(
    registry: TerminologyRegistry, part: dict[str, Any], depth: int, used: list[str]
) -> list[Code]:
    """The codes one ``include`` or ``exclude`` selects."""
    selected: list[Code] | None = None
    system = part.get("system")
    if system:
        version = part.get("version")
        index = await registry.codesystem(Canonical(system, version))
        used.append(f"{system}|{index.version}" if index and index.version else system)
        selected = _from_system(system, version, index, part)
    for reference in part.get("valueSet") or ():
        canonical = Canonical.parse(reference)
        imported = await registry.resource("ValueSet", canonical)
        if imported is None:
            raise FhirError.of(
                422, "not-found", f"the value set {reference!r} it imports is not known"
            )
        codes = (await expand(registry, imported, depth + 1)).codes
        if selected is None:
            selected = codes
        else:  # several value sets (and a system) intersect
            keep = {(c.system, c.code) for c in codes}
            selected = [c for c in selected if (c.system, c.code) in keep]
    return selected or []


def _from_system(
    system: str, version: str | None, index: CodeSystemIndex | None, part: dict[str, Any]
) -> list[Code]:
    concepts = part.get("concept")
    filters = part.get("filter")
    if concepts:  # an enumeration: taken as given where the system is not known
        codes = []
        for entry in concepts:
            code = entry.get("code")
            if not isinstance(code, str):
                continue
            concept = index.get(code) if index else None
            display = entry.get("display") or (concept.display if concept else None)
            codes.append(
                Code(
                    system,
                    concept.code if concept else code,
                    display,
                    version or (index.version if index else None),
                    concept.inactive if concept else False,
                    concept.abstract if concept else False,
                )
            )
        return codes
    if index is None or index.content not in ("complete", "fragment"):
        raise FhirError.of(
            422,
            "not-found",
            f"the code system {system!r} is not available here with its codes, "
            "so a value set that includes all of it or a filter on it cannot be expanded",
        )
    selected: set[str] | None = None
    for entry in filters or ():
        try:
            matched = index.filter(
                entry.get("property", ""), entry.get("op", ""), entry.get("value", "")
            )
        except (ValueError, TypeError, re.error) as exc:
            raise FhirError.of(422, "not-supported", str(exc)) from None
        selected = matched if selected is None else selected & matched
    return [
        Code(system, c.code, c.display, index.version, c.inactive, c.abstract)
        for code, c in index.concepts.items()
        if selected is None or code in selected
    ]
