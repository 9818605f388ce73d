"""The shape every national service has, and what the platform hands it at start-up."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from starlette.routing import BaseRoute

from samhandling.platform.auth.dpop import DpopVerifier
from samhandling.platform.auth.guard import ApiResource
from samhandling.platform.auth.replay import ReplayCache
from samhandling.platform.auth.tokens import AccessTokenVerifier
from samhandling.platform.fhir.engine import FhirEngine
from samhandling.platform.fhir.storage import Store
from samhandling.platform.policy import ServicePolicy
from samhandling.settings import Settings


@dataclass
class Runtime:
    """The running platform, as services see it once the store is open."""

    settings: Settings
    store: Store
    engine: FhirEngine
    secret: bytes  # the platform secret (derive per-purpose keys from it)
    replay: ReplayCache
    dpop: DpopVerifier
    api_resources: list[ApiResource]
    tokens: AccessTokenVerifier | None = None  # set by the trust service when it starts
    services: dict[str, Any] = field(default_factory=dict)  # each started service's state


RuntimeRef = Callable[[], Runtime]  # the runtime, available once the application has started


@dataclass(frozen=True)
class Service:
    """A national service: its API resources, its engine configuration, the policy of the
    resource types it owns, HTTP routes and start-up hook."""

    name: str
    api_resources: tuple[ApiResource, ...] = ()
    # the service's write checks and index views, added to an engine (by the server and by
    # offline tools such as the CLI's loaders and reindexing, so both write alike)
    configure: Callable[[FhirEngine, Settings], object] | None = None
    # the policy for the resource types the service owns, made once the platform runs
    policy: Callable[[Runtime], ServicePolicy] | None = None
    routes: Callable[[RuntimeRef], list[BaseRoute]] = field(default=lambda runtime: [])
    start: Callable[[Runtime], Awaitable[None]] | None = None
