"""The terminology the FHIR store holds: CodeSystems, ValueSets and ConceptMaps by canonical
URL, with in-memory indexes and expansions kept fresh across workers.

Indexes (`CodeSystemIndex`) and ValueSet expansions are built on first use and cached. The
cache is emptied when any CodeSystem, ValueSet or ConceptMap changes: every worker reads
the newest version number of those types at most every `REFRESH_SECONDS`, so a change
written anywhere is used everywhere within that time.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from samhandling.platform.fhir.changes import ChangeWatch
from samhandling.platform.fhir.engine import FhirEngine
from samhandling.services.terminology.codesystems import CodeSystemIndex

REFRESH_SECONDS = 1.0
TERMINOLOGY_TYPES = ("CodeSystem", "ValueSet", "ConceptMap")


@dataclass(frozen=True, slots=True)
class Canonical:
    """A canonical reference ``url|version`` split in two."""

    url: str
    version: str | None = None

    @classmethod
    def parse(cls, text: str, version: str | None = None) -> Canonical:
        url, _, inline = text.partition("|")
        return cls(url, version or inline or None)


class TerminologyRegistry:
    """Lookups of terminology resources by canonical URL, with cached indexes."""

    def __init__(self, engine: FhirEngine, refresh_seconds: float = REFRESH_SECONDS) -> None:
        self._engine = engine
        self._watch = ChangeWatch(engine.store, TERMINOLOGY_TYPES, refresh_seconds)
        self._resources: dict[tuple[str, str, str | None], dict[str, Any] | None] = {}
        self._indexes: dict[tuple[str, str | None], CodeSystemIndex | None] = {}
        self.cache: dict[Any, Any] = {}  # derived values (expansions), emptied with the rest

    async def fresh(self) -> None:
        """Empty the caches if a terminology resource changed (checked at most once per
        `REFRESH_SECONDS`)."""
        if await self._watch.changed():
            self._resources.clear()
            self._indexes.clear()
            self.cache.clear()

    async def resource(self, type: str, canonical: Canonical) -> dict[str, Any] | None:
        """The ``type`` resource with this URL (and version; the newest when none is given)."""
        await self.fresh()
        key = (type, canonical.url, canonical.version)
        if key in self._resources:
            return self._resources[key]
        found = await self._search(type, "url", canonical)
        if not found and canonical.url.startswith("urn:oid:"):  # a Volven OID as the system
            found = await self._search(type, "identifier", canonical)
        chosen = max(found, key=_newest, default=None)
        if len(self._resources) < 10_000:
            self._resources[key] = chosen
        return chosen

    async def _search(self, type: str, by: str, canonical: Canonical) -> list[dict[str, Any]]:
        """Resources whose ``url`` (or an ``identifier`` value) is the canonical URL."""
        value = canonical.url.replace("\\", "\\\\").replace(",", "\\,").replace("|", "\\|")
        criteria = [(by, value)]
        if canonical.version:
            criteria.append(("version", canonical.version.replace(",", "\\,")))
        request = self._engine.parse_search((type,), [*criteria, ("_count", "50")])
        page = await self._engine.search(request)
        found = [orjson.loads(row.content) for row in page.matches]
        if by == "url":
            return [r for r in found if r.get("url") == canonical.url]
        return [
            r
            for r in found
            if any(i.get("value") == canonical.url for i in r.get("identifier") or ())
        ]

    async def by_id(self, type: str, id: str) -> dict[str, Any]:
        """The ``type`` resource with ``id`` (404 when there is none)."""
        found = await self._engine.read(type, id)
        assert found.content is not None
        return orjson.loads(found.content)

    async def codesystem(self, canonical: Canonical) -> CodeSystemIndex | None:
        """The index of a stored CodeSystem (None when the server does not know it)."""
        await self.fresh()
        key = (canonical.url, canonical.version)
        if key not in self._indexes:
            resource = await self.resource("CodeSystem", canonical)
            self._indexes[key] = CodeSystemIndex(resource) if resource is not None else None
        return self._indexes[key]

    def index_of(self, resource: dict[str, Any]) -> CodeSystemIndex:
        """An index of a CodeSystem given inline (not cached)."""
        return CodeSystemIndex(resource)


def _newest(resource: dict[str, Any]) -> tuple:
    """Order versions: by ``version`` compared number by number where numeric, then by
    ``meta.lastUpdated``."""
    version = resource.get("version") or ""
    parts = tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in version.split("."))
    return parts, (resource.get("meta") or {}).get("lastUpdated", "")
