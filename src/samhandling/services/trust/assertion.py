"""Client authentication by ``private_key_jwt`` (the only method HelseID accepts) and signed
request objects, both checked against the client's registered public keys."""

from __future__ import annotations

import time
from typing import Any

from samhandling.platform.auth import jose
from samhandling.platform.auth.replay import ReplayCache
from samhandling.platform.auth.tokens import CLOCK_SKEW, check_lifetime
from samhandling.services.trust.clients import Client, ClientRegistry
from samhandling.services.trust.errors import OAuthError

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
ASSERTION_TYPES = frozenset({"jwt", "client-authentication+jwt"})
MAX_ASSERTION_LIFETIME = 60


def _invalid_client(description: str) -> OAuthError:
    return OAuthError("invalid_client", description, status=401)


class ClientAuthenticator:
    """Checks client assertions: signature by a registered key, iss = sub = client id,
    audience, a lifetime of at most 60 s, and a ``jti`` never seen before."""

    def __init__(self, clients: ClientRegistry, replay: ReplayCache, audiences: set[str]) -> None:
        self.clients = clients
        self.replay = replay
        self.audiences = audiences  # the issuer and the endpoint URLs

    async def authenticate(self, form: dict[str, str]) -> tuple[Client, dict[str, Any]]:
        """The authenticated client and its assertion's claims; `OAuthError` otherwise."""
        if form.get("client_assertion_type") != ASSERTION_TYPE:
            raise _invalid_client(
                f"client authentication must be private_key_jwt ({ASSERTION_TYPE})"
            )
        assertion = form.get("client_assertion")
        if not assertion:
            raise _invalid_client("client_assertion is missing")
        try:
            jws = jose.parse(assertion)
        except jose.JoseError as exc:
            raise _invalid_client(f"client_assertion: {exc}") from None
        if str(jws.header.get("typ", "JWT")).lower() not in ASSERTION_TYPES:
            raise _invalid_client("client_assertion typ must be JWT or client-authentication+jwt")
        claims = jws.claims
        client_id = claims.get("iss")
        if not isinstance(client_id, str) or claims.get("sub") != client_id:
            raise _invalid_client("client_assertion iss and sub must both be the client id")
        if form.get("client_id", client_id) != client_id:
            raise _invalid_client("client_id does not match the client_assertion")
        client = await self.verified_client(jws, client_id, "client_assertion")
        self._check_claims(claims, "client_assertion")
        jti = claims.get("jti")
        if not isinstance(jti, str) or not jti or len(jti) > 256:
            raise _invalid_client("client_assertion needs a jti")
        if not await self.replay.first_use("assertion:" + client_id, jti, int(claims["exp"]) + 60):
            raise _invalid_client("client_assertion jti was used before")
        return client, claims

    async def request_object(self, client: Client, request: str) -> dict[str, Any]:
        """The parameters of a signed request object (PAR ``request``)."""
        try:
            jws = jose.parse(request)
        except jose.JoseError as exc:
            raise OAuthError("invalid_request_object", f"request: {exc}") from None
        claims = jws.claims
        if (
            claims.get("iss", client.client_id) != client.client_id
            or claims.get("client_id", client.client_id) != client.client_id
        ):
            raise OAuthError("invalid_request_object", "request iss/client_id is another client")
        await self.verified_client(jws, client.client_id, "request", error="invalid_request_object")
        self._check_claims(claims, "request", error="invalid_request_object")
        return claims

    async def verified_client(
        self, jws: jose.Jws, client_id: str, what: str, error: str = "invalid_client"
    ) -> Client:
        """The enabled client whose registered key signed ``jws``."""
        client = await self.clients.get(client_id)
        if client is None or not client.enabled:
            raise OAuthError(error, f"unknown or disabled client {client_id}", status=401)
        kid = jws.header.get("kid")
        candidates = [k for k in client.jwks if kid is None or k.get("kid") == kid]
        if not candidates:
            raise OAuthError(error, f"{what} is signed with an unknown key (kid)", status=401)
        for jwk in candidates:
            try:
                jose.verify(jws, jose.public_key(jwk))
                return client
            except jose.JoseError:
                continue
        raise OAuthError(error, f"{what} signature does not verify", status=401)

    def _check_claims(
        self, claims: dict[str, Any], what: str, error: str = "invalid_client"
    ) -> None:
        def fail(description: str) -> OAuthError:
            return OAuthError(error, f"{what}: {description}", status=401)

        audience = claims.get("aud")
        audiences = [audience] if isinstance(audience, str) else audience
        if not isinstance(audiences, list) or not self.audiences.intersection(
            a for a in audiences if isinstance(a, str)
        ):
            raise fail("aud must be the issuer or the endpoint URL")
        now = time.time()
        check_lifetime(claims, now, fail)
        iat = claims.get("iat", claims.get("nbf"))
        if not isinstance(iat, int | float):
            raise fail("iat is required")
        if claims["exp"] - iat > MAX_ASSERTION_LIFETIME:
            raise fail(f"exp may be at most {MAX_ASSERTION_LIFETIME} s after iat")
        if iat < now - MAX_ASSERTION_LIFETIME - CLOCK_SKEW:
            raise fail("iat is too old")
