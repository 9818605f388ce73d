"""What a service declares about the resource types it owns: scopes, data kind, and small
functions that narrow, redact, hide and permit."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field

from samhandling.platform.auth.context import AccessContext
from samhandling.platform.fhir.search.executor import SearchPage
from samhandling.platform.fhir.search.query import SearchRequest

Narrow = Callable[[AccessContext, SearchRequest], Awaitable[None]]
Present = Callable[[AccessContext, bytes, bool], Awaitable[bytes | None]]  # (..., current)
Annotate = Callable[[AccessContext, SearchRequest, SearchPage], Awaitable[None]]
# (context, the resource to store or None for a delete, the stored content it replaces or
# None): raise a FhirError to refuse
PermitWrite = Callable[[AccessContext, dict | None, bytes | None], Awaitable[None]]


@dataclass(frozen=True)
class ServicePolicy:
    """A service's rules for the resource types it owns.

    ``service`` names it in audit records, reservations and powers of attorney. Its
    resource types in the Patient compartment hold personal information: every access to
    them is audited. With ``health`` they are health information, and the platform's
    health-data rules apply to them as well (docs/services/access-and-audit.md): security
    level, live HPR authorisation and access basis for health personnel, own data or
    representation for citizens, and the citizens' reservations and blocks.
    """

    types: frozenset[str]
    read_scope: str  # read, vread, search and history
    write_scope: str  # create, update, patch, delete, and operations
    service: str = "fhir"
    health: bool = False
    narrow: Mapping[str, Narrow] = field(default_factory=dict)  # per searched type
    present: Mapping[str, Present] = field(default_factory=dict)  # per returned type
    annotate: Mapping[str, Annotate] = field(default_factory=dict)  # per searched type
    permit_write: Mapping[str, PermitWrite] = field(default_factory=dict)  # per written type
