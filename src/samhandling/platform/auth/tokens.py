"""Access-token verification for resource servers: signature, issuer, lifetime."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Protocol

from samhandling.platform.auth import jose
from samhandling.platform.auth.context import AccessContext

ACCESS_TOKEN_TYPES = frozenset({"at+jwt", "application/at+jwt"})
CLOCK_SKEW = 5  # seconds of leeway for exp and nbf
_CACHE_SIZE = 8192


class TokenError(Exception):
    """A request whose credentials do not let it through (RFC 6750 / RFC 9449 error codes)."""

    def __init__(
        self, status: int, error: str | None, description: str, *, scope: str | None = None
    ) -> None:
        super().__init__(description)
        self.status = status
        self.error = error
        self.description = description
        self.scope = scope


class KeySource(Protocol):
    """Where verification keys come from (the trust service's key store)."""

    async def verification_key(self, kid: str) -> jose.PublicKey | None:
        """The public key with ``kid``, or None when no such key is published."""
        ...


@dataclass(frozen=True, slots=True)
class VerifiedToken:
    """A valid access token: its claims and what the guard checks, worked out once."""

    claims: dict[str, Any]
    context: AccessContext
    audiences: frozenset[str]
    scopes: frozenset[str]
    jkt: str | None  # the DPoP key thumbprint it is bound to


class AccessTokenVerifier:
    """Verifies JWT access tokens issued by ``issuer``; verified tokens are cached until
    they expire, so each token's signature is checked once per process."""

    def __init__(self, issuer: str, keys: KeySource) -> None:
        self.issuer = issuer
        self.keys = keys
        self._cache: dict[str, VerifiedToken] = {}

    async def claims(self, token: str) -> dict[str, Any]:
        """The claims of a valid access token; `TokenError` (401 invalid_token) otherwise."""
        return (await self.verify(token)).claims

    async def verify(self, token: str) -> VerifiedToken:
        """A valid access token; `TokenError` (401 invalid_token) otherwise."""
        now = time.time()
        cached = self._cache.get(token)
        if cached is not None:
            if cached.context.expires_at + CLOCK_SKEW > now:
                return cached
            del self._cache[token]
        claims = await self._verify(token, now)
        cnf = claims.get("cnf")
        audience = claims.get("aud")
        verified = VerifiedToken(
            claims,
            AccessContext.from_claims(claims),
            frozenset([audience] if isinstance(audience, str) else audience or ()),
            frozenset(str(claims.get("scope", "")).split()),
            cnf.get("jkt") if isinstance(cnf, dict) else None,
        )
        if len(self._cache) >= _CACHE_SIZE:
            del self._cache[next(iter(self._cache))]
        self._cache[token] = verified
        return verified

    async def _verify(self, token: str, now: float) -> dict[str, Any]:
        try:
            jws = jose.parse(token)
        except jose.JoseError as exc:
            raise _invalid(str(exc)) from None
        if str(jws.header.get("typ", "")).lower() not in ACCESS_TOKEN_TYPES:
            raise _invalid("not an access token (typ must be at+jwt)")
        kid = jws.header.get("kid")
        key = await self.keys.verification_key(kid) if isinstance(kid, str) else None
        if key is None:
            raise _invalid("the token is signed with an unknown key")
        try:
            jose.verify(jws, key)
        except jose.JoseError as exc:
            raise _invalid(str(exc)) from None
        claims = jws.claims
        check_lifetime(claims, now, _invalid)
        if claims.get("iss") != self.issuer:
            raise _invalid("the token was issued by someone else")
        return claims


def check_lifetime(claims: dict[str, Any], now: float, error: Any) -> None:
    """``exp`` in the future and ``nbf``/``iat`` not in it (with `CLOCK_SKEW`)."""
    exp = claims.get("exp")
    if not _number(exp):
        raise error("the token has no exp")
    if exp + CLOCK_SKEW <= now:
        raise error("the token has expired")
    for name in ("nbf", "iat"):
        value = claims.get(name)
        if value is not None and (not _number(value) or value > now + CLOCK_SKEW):
            raise error(f"the token is not valid yet ({name} in the future)")


def _number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _invalid(description: str) -> TokenError:
    return TokenError(401, "invalid_token", description)
