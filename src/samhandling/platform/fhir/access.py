"""The engine's access hook points: who may do what, and what they get to see.

The FHIR REST layer calls an `AccessControl` at named points, whatever the request came
through (a single request or a Bundle entry): before an interaction (`authorize`), before a
search runs (`narrow`: extra criteria, so counts and paging stay right), on every resource
it is about to return (`present`: redact or hide), after a search (`annotate`: warnings for
the searchset), and inside a write's transaction before anything is stored (`permit_write`).

A `Trail` is told of every interaction once it has run or failed (`record`): the engine
tells it of each write inside the write's transaction, the REST layer of everything else
before the response is sent. The platform's audit trail is one.

The engine knows nothing about tokens, registers or audit records: the caller's context is
an opaque value the platform passes in, and the platform decides
(`samhandling.platform.policy`, `samhandling.platform.audit`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from samhandling.platform.fhir.search.executor import SearchPage
from samhandling.platform.fhir.search.query import SearchRequest

if TYPE_CHECKING:
    from samhandling.platform.fhir.errors import FhirError
    from samhandling.platform.fhir.storage import StoreTransaction

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
WRITE_KINDS = frozenset({CREATE, UPDATE, PATCH, DELETE})
TRANSACTION = "transaction"  # a transaction Bundle that failed as a whole (Trail only)


@dataclass(frozen=True, slots=True)
class Touched:
    """A resource version an interaction returned, wrote or replaced."""

    type: str
    id: str
    version: int
    content: bytes | None  # None: a deletion tombstone


@dataclass(slots=True)
class Accessed:
    """One interaction as a `Trail` sees it, once it has run (or failed)."""

    context: object  # the caller
    kind: str  # READ, SEARCH, ..., OPERATION, TRANSACTION
    type: str | None  # the resource type addressed (None: system level)
    target: str  # the path addressed, e.g. ``Patient/1`` or ``Observation``
    query: str | None = None  # search or operation parameters, as a query string
    touched: list[Touched] = field(default_factory=list)  # what it returned or wrote
    status: int = 200
    error: FhirError | None = None  # why it failed (status >= 400)
    # the type whose access rules governed it, when not ``type`` (an operation's access_type)
    governed_by: str | None = None


class AccessControl(Protocol):
    """What the REST layer asks before and after it touches resources."""

    async def authorize(self, context: object, kind: str, type: str | None) -> None:
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

    async def permit_write(
        self, context: object, type: str, new: dict | None, current: bytes | None
    ) -> None:
        """Raise a `FhirError` when ``context`` may not store ``new`` (None: a delete) over
        ``current`` (None: nothing stored yet); runs inside the write's transaction."""
        ...


class Trail(Protocol):
    """What is told of every interaction (the platform's audit trail)."""

    async def record(self, event: Accessed, tx: StoreTransaction | None) -> None:
        """Take note of ``event``: inside ``tx`` when given (it commits or rolls back with
        it), else durably before returning."""
        ...


class OpenAccess:
    """No restrictions: the engine on its own (benchmarks, in-process tools)."""

    async def authorize(self, context: object, kind: str, type: str | None) -> None:
        return None

    async def narrow(self, context: object, request: SearchRequest) -> None:
        return None

    async def present(
        self, context: object, type: str, content: bytes, current: bool = True
    ) -> bytes | None:
        return content

    async def annotate(self, context: object, request: SearchRequest, page: SearchPage) -> None:
        return None

    async def permit_write(
        self, context: object, type: str, new: dict | None, current: bytes | None
    ) -> None:
        return None


OPEN_ACCESS = OpenAccess()


class NoTrail:
    """Nothing is recorded: the engine on its own."""

    async def record(self, event: Accessed, tx: StoreTransaction | None) -> None:
        return None


NO_TRAIL = NoTrail()
