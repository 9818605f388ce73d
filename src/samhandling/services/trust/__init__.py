"""Trust service (HelseID): the OAuth 2.0 / OpenID Connect authorization server.

FAPI 2.0 profile as HelseID applies it: private_key_jwt client authentication, PAR and
PKCE S256 for sign-in, DPoP-bound tokens, refresh-token rotation and token exchange.
See docs/services/trust.md.
"""

from __future__ import annotations

from dataclasses import dataclass

from starlette.routing import BaseRoute

from samhandling.infrastructure.secrets import derive
from samhandling.platform.auth.tokens import AccessTokenVerifier
from samhandling.platform.directory import EmptyDirectory, PersonDirectory
from samhandling.platform.service import Runtime, RuntimeRef, Service
from samhandling.platform.signing import KeySigner
from samhandling.services.trust.assertion import ClientAuthenticator
from samhandling.services.trust.clients import ClientRegistry
from samhandling.services.trust.identity import IdentityProvider, TestIdentityProvider
from samhandling.services.trust.keys import SigningKeys
from samhandling.services.trust.routes import trust_routes
from samhandling.services.trust.server import AuthorizationServer, TrustSettings
from samhandling.services.trust.store import TrustStore


@dataclass
class Trust:
    """The trust service's parts, wired together."""

    store: TrustStore
    keys: SigningKeys
    clients: ClientRegistry
    server: AuthorizationServer
    idp: IdentityProvider


def build(runtime: Runtime, directory: PersonDirectory | None = None) -> Trust:
    """The trust service over a runtime's store (also used by the CLI)."""
    settings = runtime.settings
    issuer = settings.issuer
    trust_settings = TrustSettings(
        issuer=issuer,
        access_token_lifetime=settings.access_token_lifetime,
        refresh_token_lifetime=settings.refresh_token_lifetime,
    )
    store = TrustStore(runtime.store)
    keys = SigningKeys(
        store,
        runtime.secret,
        alg=settings.signing_alg,
        grace_seconds=settings.access_token_lifetime + 60,
    )
    clients = ClientRegistry(store)
    audiences = {issuer, trust_settings.token_endpoint, trust_settings.par_endpoint}
    authenticator = ClientAuthenticator(clients, runtime.replay, audiences)
    runtime.tokens = AccessTokenVerifier(issuer, keys)
    # the person register's directory (the registries service publishes it when it starts)
    directory = directory or runtime.services.get("person_directory") or EmptyDirectory()
    server = AuthorizationServer(
        trust_settings,
        store,
        keys,
        clients,
        authenticator,
        runtime.dpop,
        runtime.tokens,
        directory,
        runtime.api_resources,
        derive(runtime.secret, "samhandling/trust/subject"),
    )
    return Trust(store, keys, clients, server, TestIdentityProvider(directory))


async def _start(runtime: Runtime) -> None:
    trust = build(runtime)
    await trust.keys.current()  # the first key is made here, not on the first request
    runtime.services["trust"] = trust
    runtime.services["signer"] = KeySigner(trust.keys)  # documents signed with the platform key


def _routes(runtime: RuntimeRef) -> list[BaseRoute]:
    def trust() -> Trust:
        return runtime().services["trust"]

    return trust_routes(lambda: trust().server, lambda: trust().idp)


SERVICE = Service(name="trust", routes=_routes, start=_start)
