"""Resource-server protection: one check every API runs before it does anything.

`ApiGuard.check` verifies the access token (signature with cached keys, ``iss``, ``aud``,
``exp``/``nbf``), the DPoP proof bound to it (``htm``, ``htu``, ``iat``, ``ath``, replay,
key thumbprint = ``cnf.jkt``) and the scope the request needs, and returns the caller's
`AccessContext`. `Protected` wraps an ASGI app with it; errors follow RFC 6750 and RFC 9449
(status, ``WWW-Authenticate``), with a body the API chooses (OperationOutcome for FHIR).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from samhandling.platform.auth import jose
from samhandling.platform.auth.context import (
    ACCESS_BASIS_HEADER,
    ACCESS_REASON_HEADER,
    ACTING_FOR_HEADER,
    AccessContext,
    RequestHeaderError,
)
from samhandling.platform.auth.dpop import DpopError, DpopVerifier, normalise_path
from samhandling.platform.auth.tokens import AccessTokenVerifier, TokenError

ACCESS_CONTEXT = "samhandling.access"  # the ASGI scope key a checked request carries
DPOP_ALGS = " ".join(sorted(jose.ALGORITHMS))


@dataclass(frozen=True, slots=True)
class ApiResource:
    """An API as the trust service knows it: its audience and the scopes it accepts."""

    name: str  # the audience, e.g. samhandling:fhir
    title: str
    scopes: dict[str, str] = field(default_factory=dict)  # scope -> what it allows


ScopeRule = Callable[[str, str], str]  # (method, path) -> the scope the request needs


class ApiGuard:
    """Checks requests to an API that one or more API resources share (their audiences).

    With a ``required_scope`` rule the guard also checks the scope; without one the API
    checks scopes itself, per interaction (the FHIR API's policy does).
    """

    def __init__(
        self,
        resources: Sequence[ApiResource],
        required_scope: ScopeRule | None,
        tokens: AccessTokenVerifier,
        dpop: DpopVerifier,
        public_url: str,
    ) -> None:
        self.audiences = frozenset(resource.name for resource in resources)
        self._names = " or ".join(sorted(self.audiences))
        self.required_scope = required_scope
        self.tokens = tokens
        self.dpop = dpop
        self.public_url = public_url.rstrip("/")

    async def check(self, scope: Scope) -> AccessContext:
        """The caller's access context; `TokenError` when the request may not pass."""
        authorization, proofs = _credentials(scope)
        if authorization is None:
            raise TokenError(401, None, "an access token is required")
        kind, _, token = authorization.partition(" ")
        kind = kind.lower()
        token = token.strip()
        if kind not in ("dpop", "bearer") or not token:
            raise TokenError(400, "invalid_request", "Authorization must be 'DPoP <token>'")
        verified = await self.tokens.verify(token)
        bound = verified.jkt
        if kind == "bearer":
            if bound:
                raise TokenError(401, "invalid_token", "a DPoP-bound token needs the DPoP scheme")
        else:
            if not bound:
                raise TokenError(401, "invalid_token", "the token is not DPoP-bound; use Bearer")
            if len(proofs) != 1:
                raise TokenError(401, "invalid_dpop_proof", "exactly one DPoP header is required")
            # the path as the client sent it (percent-encoded), which is what the proof names
            raw = scope.get("raw_path")
            path = (
                raw.decode("latin-1")
                if raw and raw.isascii()
                else normalise_path(raw or scope["path"])
            )
            url = self.public_url + scope.get("root_path", "") + path
            try:
                proof = await self.dpop.verify(proofs[0], scope["method"], url, access_token=token)
            except DpopError as exc:
                raise TokenError(401, exc.error, exc.description) from None
            if proof.jkt != bound:
                raise TokenError(401, "invalid_token", "the token is bound to another key")
        if self.audiences.isdisjoint(verified.audiences):
            raise TokenError(401, "invalid_token", f"the token is not for {self._names}")
        if self.required_scope is not None:
            needed = self.required_scope(scope["method"], scope["path"])
            if needed not in verified.scopes:
                raise TokenError(403, "insufficient_scope", f"needs scope {needed}", scope=needed)
        try:
            return verified.context.for_request(_context_headers(scope))
        except RequestHeaderError as exc:
            raise TokenError(400, "invalid_request", str(exc)) from None


_CONTEXT_HEADERS = frozenset(
    name.encode() for name in (ACCESS_BASIS_HEADER, ACCESS_REASON_HEADER, ACTING_FOR_HEADER)
)


def _context_headers(scope: Scope) -> dict[str, str]:
    """The request headers that complete an access context (the last of each)."""
    return {
        name.decode(): value.decode("latin-1")
        for name, value in scope["headers"]
        if name in _CONTEXT_HEADERS
    }


def _credentials(scope: Scope) -> tuple[str | None, list[str]]:
    authorization = None
    proofs = []
    for name, value in scope["headers"]:
        if name == b"authorization":
            if authorization is not None:
                raise TokenError(400, "invalid_request", "more than one Authorization header")
            authorization = value.decode("latin-1")
        elif name == b"dpop":
            proofs.append(value.decode("latin-1"))
    return authorization, proofs


def challenge(error: TokenError) -> list[str]:
    """``WWW-Authenticate`` values for an error (RFC 6750 §3, RFC 9449 §7.1)."""
    details = ""
    if error.error:
        # a header value is latin-1 and a quoted string: keep it printable ASCII, no quotes
        description = "".join(
            ch if " " <= ch <= "~" and ch not in '"\\' else "?" for ch in error.description
        )
        details = f', error="{error.error}", error_description="{description}"'
        if error.scope:
            details += f', scope="{error.scope}"'
    dpop = f'DPoP algs="{DPOP_ALGS}"{details}'
    if error.error in ("invalid_dpop_proof", "use_dpop_nonce"):
        return [dpop]
    return [dpop, "Bearer" + (" " + details[2:] if details else "")]


ErrorBody = Callable[[TokenError], Response]


class Protected:
    """An ASGI app that only checked requests reach; others get the guard's error."""

    def __init__(self, app: ASGIApp, guard: Callable[[], ApiGuard], error_body: ErrorBody) -> None:
        self._app = app
        self._guard = guard  # looked up per request: the guard exists once the store is open
        self._error_body = error_body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            context = await self._guard().check(scope)
        except TokenError as error:
            response = self._error_body(error)
            for value in challenge(error):
                response.headers.append("WWW-Authenticate", value)
            await response(scope, receive, send)
            return
        scope[ACCESS_CONTEXT] = context
        await self._app(scope, receive, send)
