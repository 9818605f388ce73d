"""Access policy: one model for every service, behind the FHIR engine's access hook points.

Each service declares a `ServicePolicy` for the resource types it owns: the scopes that
allow reading and writing them, and small functions, per resource type, that narrow
searches, redact or hide resources, and annotate search results. `Policy` combines them
(types no service owns fall under the platform's own FHIR API scopes) and is what the
engine asks (`samhandling.platform.fhir.access.AccessControl`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field

from samhandling.platform.auth.context import AccessContext
from samhandling.platform.fhir.access import READ_KINDS
from samhandling.platform.fhir.errors import FhirError
from samhandling.platform.fhir.search.executor import SearchPage
from samhandling.platform.fhir.search.query import SearchRequest

Narrow = Callable[[AccessContext, SearchRequest], Awaitable[None]]
Present = Callable[[AccessContext, bytes, bool], Awaitable[bytes | None]]  # (..., current)
Annotate = Callable[[AccessContext, SearchRequest, SearchPage], Awaitable[None]]


@dataclass(frozen=True)
class ServicePolicy:
    """What a service declares about the resource types it owns."""

    types: frozenset[str]
    read_scope: str  # read, vread, search and history
    write_scope: str  # create, update, patch, delete, and operations
    narrow: Mapping[str, Narrow] = field(default_factory=dict)  # per searched type
    present: Mapping[str, Present] = field(default_factory=dict)  # per returned type
    annotate: Mapping[str, Annotate] = field(default_factory=dict)  # per searched type


class Policy:
    """The platform's access decisions for the FHIR API (an `AccessControl`)."""

    def __init__(
        self, default_read: str, default_write: str, services: Iterable[ServicePolicy] = ()
    ) -> None:
        self._default = ServicePolicy(frozenset(), default_read, default_write)
        self._by_type: dict[str, ServicePolicy] = {}
        self._narrow: dict[str, Narrow] = {}
        self._present: dict[str, Present] = {}
        self._annotate: dict[str, Annotate] = {}
        services = tuple(services)
        for service in services:
            for type_name in service.types:
                if type_name in self._by_type:
                    raise ValueError(f"two services declare a policy for {type_name}")
                self._by_type[type_name] = service
            self._narrow.update(service.narrow)
            self._present.update(service.present)
            self._annotate.update(service.annotate)
        self._policies = (self._default, *services)
        self._scopes: dict[tuple[bool, str | None], tuple[str, ...]] = {}

    def scopes_for(self, kind: str, type: str | None) -> tuple[str, ...]:
        """The scopes ``kind`` on ``type`` needs (None: every type, so every service's)."""
        read = kind in READ_KINDS
        key = (read, type)
        scopes = self._scopes.get(key)
        if scopes is None:
            policies = [self._by_type.get(type, self._default)] if type else self._policies
            scopes = tuple(dict.fromkeys(p.read_scope if read else p.write_scope for p in policies))
            if len(self._scopes) < 10_000:  # types are few; never grow without bound
                self._scopes[key] = scopes
        return scopes

    def authorize(self, context: object, kind: str, type: str | None) -> None:
        """Refuse (403) unless the caller's token has the scope ``kind`` on ``type`` needs."""
        if not isinstance(context, AccessContext):
            raise FhirError.of(401, "login", "an access token is required")
        for scope in self.scopes_for(kind, type):
            if scope not in context.scopes:
                what = type or "every resource type"
                error = FhirError.of(403, "forbidden", f"{kind} of {what} needs scope {scope}")
                error.headers["www-authenticate"] = (
                    f'DPoP error="insufficient_scope", scope="{scope}"'
                )
                raise error

    async def narrow(self, context: object, request: SearchRequest) -> None:
        """Let the owners of the searched types restrict the search."""
        for type_name in request.types:
            narrow = self._narrow.get(type_name)
            if narrow is not None:
                assert isinstance(context, AccessContext)
                await narrow(context, request)

    async def present(
        self, context: object, type: str, content: bytes, current: bool = True
    ) -> bytes | None:
        """The owner's view of one resource for this caller."""
        present = self._present.get(type)
        if present is None:
            return content
        assert isinstance(context, AccessContext)
        return await present(context, content, current)

    async def annotate(self, context: object, request: SearchRequest, page: SearchPage) -> None:
        """Let the owners of the searched types add warnings."""
        for type_name in request.types:
            annotate = self._annotate.get(type_name)
            if annotate is not None:
                assert isinstance(context, AccessContext)
                await annotate(context, request, page)
