"""The ASGI application: the FHIR engine and the enabled services in one Starlette app."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from importlib.metadata import PackageNotFoundError, version

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from samhandling.infrastructure.database import DatabaseUrl
from samhandling.platform.fhir.engine import FhirEngine
from samhandling.platform.fhir.rest.endpoint import FhirEndpoint
from samhandling.platform.fhir.search.reindex import ReindexWorker
from samhandling.platform.fhir.storage import Store, open_store
from samhandling.settings import Settings

log = logging.getLogger("samhandling")
FHIR_PREFIX = "/fhir"


def software_version() -> str:
    """The installed samhandling version."""
    try:
        return version("samhandling")
    except PackageNotFoundError:
        return "0+unknown"


def create_app(settings: Settings | None = None, store: Store | None = None) -> PlatformApp:
    """Build the application; it opens (and migrates) its store at start-up unless given one."""
    settings = settings or Settings.from_env()
    endpoint = _LazyEndpoint(settings)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        opened = store or await open_store(
            settings.effective_database_url, pool_size=settings.pg_pool_size
        )
        engine = FhirEngine(opened, conditional_delete_max=settings.conditional_delete_max)
        await engine.refresh_search_parameters()
        endpoint.bind(engine)
        worker = ReindexWorker(engine)
        worker.start()
        log.info(
            "samhandling %s ready: FHIR API at http://%s:%s%s, %s backend (%s)",
            software_version(),
            settings.host,
            settings.port,
            FHIR_PREFIX,
            opened.backend,
            DatabaseUrl.parse(settings.effective_database_url).redacted(),
        )
        try:
            yield
        finally:
            await worker.stop()
            if store is None:
                await opened.close()

    async def health(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    web = Starlette(routes=[Route("/health", health, methods=["GET"])], lifespan=lifespan)
    return PlatformApp(web, endpoint, FHIR_PREFIX)


class PlatformApp:
    """The ASGI application: the FHIR API on a direct path, everything else through Starlette.

    FHIR requests skip Starlette's router and middleware stack (15% of a read's server time
    in the profile); the FHIR endpoint answers every error itself as an OperationOutcome.
    Cross-cutting concerns for the API are composed around the endpoint explicitly.
    """

    def __init__(self, web: Starlette, fhir: ASGIApp, prefix: str) -> None:
        self.web = web
        self._fhir = fhir
        self._prefix = prefix
        self._prefix_slash = prefix + "/"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            path = scope["path"]
            if path == self._prefix or path.startswith(self._prefix_slash):
                await self._fhir(scope, receive, send)
                return
        await self.web(scope, receive, send)


class _LazyEndpoint:
    """The FHIR endpoint, bound to its engine once the store is open."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._endpoint: FhirEndpoint | None = None

    def bind(self, engine: FhirEngine) -> None:
        """Serve with ``engine`` from now on."""
        self._endpoint = FhirEndpoint(
            engine,
            prefix=FHIR_PREFIX,
            max_body_bytes=self._settings.max_body_bytes,
            software_version=software_version(),
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        assert self._endpoint is not None, "the application has not started"
        response = await self._endpoint(Request(scope, receive))
        await response(scope, receive, send)


def create_app_from_env() -> PlatformApp:
    """Factory for ``uvicorn --factory`` (worker processes read settings from the environment)."""
    return create_app(Settings.from_env())
