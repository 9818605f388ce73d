"""The terminology the engine asks for: the codes behind the search modifiers ``:in``,
``:not-in``, ``:below`` and ``:above`` (its `TerminologyResolver`), and whether a code is
known and in a value set for binding validation on write (its `CodeValidator`)."""

from __future__ import annotations

from samhandling.platform.fhir.errors import FhirError
from samhandling.services.terminology.registry import Canonical, TerminologyRegistry
from samhandling.services.terminology.valuesets import Expansion, expand


class TerminologyCodes:
    """Value set expansions, subsumption and code checks, from the stored terminology."""

    def __init__(self, registry: TerminologyRegistry) -> None:
        self._registry = registry

    async def _expansion(self, valueset: str) -> Expansion | None:
        found = await self._registry.resource("ValueSet", Canonical.parse(valueset))
        if found is None:
            return None
        return await expand(self._registry, found)

    # search

    async def codes_in(self, valueset: str) -> list[tuple[str, str]] | None:
        try:
            expansion = await self._expansion(valueset)
        except FhirError as error:  # e.g. a code system it needs is not here
            raise FhirError(400, error.issues) from None
        if expansion is None:
            return None
        return [(code.system, code.code) for code in expansion.codes]

    async def related(self, system: str, code: str, direction: str) -> list[str] | None:
        index = await self._registry.codesystem(Canonical.parse(system))
        if index is None:
            return None
        concept = index.get(code)
        if concept is None:
            return [code]
        if direction == "below":
            family = index.descendants(concept.code)
        else:
            family = index.ancestors(concept.code)
        return [concept.code, *sorted(family)]

    # binding validation

    async def known_code(self, system: str, code: str) -> bool | None:
        index = await self._registry.codesystem(Canonical.parse(system))
        if index is None or index.content != "complete":
            return None
        return index.get(code) is not None

    async def in_valueset(self, valueset: str, system: str, code: str) -> bool | None:
        try:
            expansion = await self._expansion(valueset)
        except FhirError:  # cannot be expanded here: nothing can be said
            return None
        if expansion is None:
            return None
        return expansion.contains(system, code) is not None
