"""The engine's access hook points: who may do what, and what they get to see.

The FHIR REST layer calls an `AccessControl` at four named points, whatever the request
came through (a single request or a Bundle entry): before an interaction (`authorize`),
before a search runs (`narrow`: extra criteria, so counts and paging stay right), on every
resource it is about to return (`present`: redact or hide), and after a search
(`annotate`: warnings for the searchset). The engine knows nothing about tokens or
registers: the caller's context is an opaque value the platform passes in, and the
platform's policy decides (`samhandling.platform.policy`).
"""

from __future__ import annotations

from typing import Protocol

from samhandling.platform.fhir.search.executor import SearchPage
from samhandling.platform.fhir.search.query import SearchRequest

# Interaction kinds, as `authorize` receives them.
READ = "read"  # read and vread
SEARCH = "search"
HISTORY = "history"
CREATE = "create"
UPDATE = "update"
PATCH = "patch"
DELETE = "delete"
OPERATION = "operation"
READ_KINDS = frozenset({READ, SEARCH, HISTORY})


class AccessControl(Protocol):
    """What the REST layer asks before and after it touches resources."""

    def authorize(self, context: object, kind: str, type: str | None) -> None:
        """Raise a `FhirError` (401/403) when ``context`` may not do ``kind`` on ``type``
        (None: every type, as in a system search or history)."""
        ...

    async def narrow(self, context: object, request: SearchRequest) -> None:
        """Add criteria to ``request`` that restrict what the caller may find."""
        ...

    async def present(
        self, context: object, type: str, content: bytes, current: bool = True
    ) -> bytes | None:
        """The resource as the caller may see it: ``content``, a redacted copy, or None
        when the caller must not see it at all (``current`` False: an earlier version, as
        a vread or a history returns it)."""
        ...

    async def annotate(self, context: object, request: SearchRequest, page: SearchPage) -> None:
        """Add warnings to a search page before it is returned."""
        ...


class OpenAccess:
    """No restrictions: the engine on its own (benchmarks, in-process tools)."""

    def authorize(self, context: object, kind: str, type: str | None) -> None:
        return None

    async def narrow(self, context: object, request: SearchRequest) -> None:
        return None

    async def present(
        self, context: object, type: str, content: bytes, current: bool = True
    ) -> bytes | None:
        return content

    async def annotate(self, context: object, request: SearchRequest, page: SearchPage) -> None:
        return None


OPEN_ACCESS = OpenAccess()
