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
from samhandling.infrastructure.secrets import derive, platform_secret
from samhandling.platform.audit import AUDIT_KEY_PURPOSE, AuditLog
from samhandling.platform.audit.routes import AUDIT_API, audit_routes, required_scope
from samhandling.platform.audit.routes import PREFIX as AUDIT_PREFIX
from samhandling.platform.audit.trail import AuditTrail
from samhandling.platform.auth.dpop import DpopVerifier, Nonces
from samhandling.platform.auth.guard import ApiGuard, ApiResource, Protected
from samhandling.platform.auth.replay import open_replay_cache
from samhandling.platform.auth.tokens import TokenError
from samhandling.platform.fhir.engine import FhirEngine
from samhandling.platform.fhir.errors import FhirError
from samhandling.platform.fhir.rest.endpoint import FhirEndpoint
from samhandling.platform.fhir.rest.http import error_response
from samhandling.platform.fhir.search.reindex import ReindexWorker
from samhandling.platform.fhir.storage import Store, open_store
from samhandling.platform.policy import Policy, Rules
from samhandling.platform.policy.choices import NoPrivacyRegister
from samhandling.platform.policy.registers import NoRegisters
from samhandling.platform.service import Runtime, Service
from samhandling.services import privacy, registries, summary, terminology, trust
from samhandling.settings import Settings

log = logging.getLogger("samhandling")
FHIR_PREFIX = "/fhir"
FHIR_SERVICE = "fhir"  # the types no national service owns, in audit records and choices
FHIR_READ = "samhandling:fhir/read"
FHIR_WRITE = "samhandling:fhir/write"
FHIR_API = ApiResource(
    name="samhandling:fhir",
    title="FHIR API",
    scopes={
        FHIR_READ: "read, search and history of resource types no national service owns",
        FHIR_WRITE: "create, update, patch and delete of resource types no service owns",
    },
)
# the registries start first: the trust service signs in the persons they know
SERVICES: tuple[Service, ...] = (
    registries.SERVICE,
    privacy.SERVICE,
    summary.SERVICE,
    terminology.SERVICE,
    trust.SERVICE,
)


def api_resources() -> list[ApiResource]:
    """Every API resource tokens can be issued for."""
    return [FHIR_API, AUDIT_API, *(r for service in SERVICES for r in service.api_resources)]


def fhir_policy(runtime: Runtime) -> Policy:
    """The FHIR API's access policy: the services' rules for the types they own, and the
    platform's FHIR API scopes for the rest (health information, as a clinical system's);
    the health-data rules over the registers and the citizens' privacy choices."""
    owned = [service.policy(runtime) for service in SERVICES if service.policy is not None]
    lookups = runtime.services.get("register_lookups", NoRegisters())
    choices = runtime.services.get("privacy_register", NoPrivacyRegister())
    rules = Rules(lookups, lookups, choices)
    return Policy(
        FHIR_READ,
        FHIR_WRITE,
        owned,
        engine=runtime.engine,
        rules=rules,
        default_service=FHIR_SERVICE,
        default_health=True,
    )


def audit_trail(runtime: Runtime, log: AuditLog, policy: Policy) -> AuditTrail:
    """The audit trail the engine tells of every interaction."""
    lookups = runtime.services.get("register_lookups", NoRegisters())
    return AuditTrail(log, policy, runtime.engine, lookups, lookups, lookups)


def software_version() -> str:
    """The installed samhandling version."""
    try:
        return version("samhandling")
    except PackageNotFoundError:
        return "0+unknown"


async def configured_engine(settings: Settings, store: Store) -> tuple[FhirEngine, dict]:
    """An engine over ``store`` with every service's write checks and index views, and what
    each service's configuration returned (by service name)."""
    engine = FhirEngine(
        store,
        conditional_delete_max=settings.conditional_delete_max,
        max_binary_bytes=settings.max_binary_bytes,
    )
    await engine.refresh_search_parameters()
    configured = {
        service.name: service.configure(engine, settings)
        for service in SERVICES
        if service.configure is not None
    }
    return engine, configured


@contextlib.asynccontextmanager
async def opened_engine(settings: Settings) -> AsyncIterator[FhirEngine]:
    """A configured engine over the settings' database (for offline tools: loaders,
    reindexing), closed afterwards."""
    store = await open_store(settings.effective_database_url, pool_size=settings.pg_pool_size)
    try:
        engine, _ = await configured_engine(settings, store)
        yield engine
    finally:
        await store.close()


async def start_runtime(settings: Settings, store: Store) -> Runtime:
    """The platform over an open store: the configured engine, secret, replay cache, DPoP
    checks."""
    engine, configured = await configured_engine(settings, store)
    secret = platform_secret(settings.secret_key, settings.data_dir)
    replay = open_replay_cache(store, settings.effective_database_url)
    dpop = DpopVerifier(replay, Nonces(derive(secret, "samhandling/dpop-nonce")))
    runtime = Runtime(settings, store, engine, secret, replay, dpop, api_resources())
    runtime.services.update(configured)
    return runtime


def create_app(settings: Settings | None = None, store: Store | None = None) -> PlatformApp:
    """Build the application; it opens (and migrates) its store at start-up unless given one."""
    settings = settings or Settings.from_env()
    endpoint = _LazyEndpoint(settings)
    running: list[Runtime] = []
    guards: list[ApiGuard] = []

    def runtime() -> Runtime:
        return running[0]

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        opened = store or await open_store(
            settings.effective_database_url, pool_size=settings.pg_pool_size
        )
        started = await start_runtime(settings, opened)
        running.append(started)
        for service in SERVICES:
            if service.start is not None:
                await service.start(started)
        assert started.tokens is not None, "the trust service verifies tokens"
        # the FHIR API serves every API resource; its policy checks scopes per interaction
        guards.append(
            ApiGuard(started.api_resources, None, started.tokens, started.dpop, settings.issuer)
        )
        guards.append(
            ApiGuard([AUDIT_API], required_scope, started.tokens, started.dpop, settings.issuer)
        )
        audit_log = AuditLog(opened, derive(started.secret, AUDIT_KEY_PURPOSE))
        if not settings.unprotected_api:
            await audit_log.start()
            started.services["audit_log"] = audit_log
            policy = fhir_policy(started)
            started.engine.access = policy
            started.engine.trail = audit_trail(started, audit_log, policy)
        endpoint.bind(started.engine)
        worker = ReindexWorker(started.engine)
        worker.start()
        if settings.unprotected_api:
            log.warning("SAMHANDLING_UNPROTECTED_API=1: the FHIR API checks no tokens")
        log.info(
            "samhandling %s ready: FHIR API at %s%s, issuer %s, %s backend (%s)",
            software_version(),
            settings.issuer,
            FHIR_PREFIX,
            settings.issuer,
            opened.backend,
            DatabaseUrl.parse(settings.effective_database_url).redacted(),
        )
        try:
            yield
        finally:
            await worker.stop()
            await audit_log.stop()
            started.replay.close()
            if store is None:
                await opened.close()

    async def health(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    def policy() -> Rules:
        access = running[0].engine.access
        assert isinstance(access, Policy) and access.rules is not None
        return access.rules

    audit_api = Starlette(routes=audit_routes(lambda: running[0].store, policy))
    routes = [
        Route("/health", health, methods=["GET"]),
        # the guard sees the request's own path (a Mount would move it to root_path)
        Route(
            f"{AUDIT_PREFIX}/{{rest:path}}",
            Protected(audit_api, lambda: guards[1], _fhir_auth_error),
        ),
    ]
    for service in SERVICES:
        routes.extend(service.routes(runtime))
    web = Starlette(routes=routes, lifespan=lifespan)

    if settings.unprotected_api and settings.host not in ("127.0.0.1", "localhost", "::1"):
        raise ValueError("SAMHANDLING_UNPROTECTED_API is for benchmarks on a loopback address")
    api: ASGIApp = endpoint
    if not settings.unprotected_api:
        api = Protected(endpoint, lambda: guards[0], _fhir_auth_error)
    return PlatformApp(web, api, endpoint, FHIR_PREFIX)


def _fhir_auth_error(error: TokenError) -> Response:
    code = {401: "login", 403: "forbidden"}.get(error.status, "invalid")
    return error_response(FhirError.of(error.status, code, error.description))


class PlatformApp:
    """The ASGI application: the FHIR API on a direct path, everything else through Starlette.

    FHIR requests skip Starlette's router and middleware stack (15% of a read's server time
    in the profile); the FHIR endpoint answers every error itself as an OperationOutcome.
    Token protection wraps the endpoint explicitly; only ``/metadata`` is open.
    """

    def __init__(self, web: Starlette, fhir: ASGIApp, open_fhir: ASGIApp, prefix: str) -> None:
        self.web = web
        self._fhir = fhir
        self._open_fhir = open_fhir  # the same endpoint without protection, for /metadata
        self._prefix = prefix
        self._prefix_slash = prefix + "/"
        self._metadata = prefix + "/metadata"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            path = scope["path"]
            if path == self._metadata:
                await self._open_fhir(scope, receive, send)
                return
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
