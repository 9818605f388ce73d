"""HTTP endpoints of the trust service, at HelseID's paths (norway.md §1.1)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from html import escape
from typing import Any
from urllib.parse import parse_qsl

import orjson
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from samhandling.platform.auth import claims as c
from samhandling.platform.auth import jose
from samhandling.services.trust.errors import OAuthError
from samhandling.services.trust.identity import TEST_IDP, IdentityProvider
from samhandling.services.trust.server import AuthorizationServer

MAX_FORM_BYTES = 64 * 1024
JWKS_PATH = "/.well-known/openid-configuration/jwks"
_NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    """A JSON response that is never cached."""
    return Response(
        orjson.dumps(body), status, {**_NO_STORE, **(headers or {})}, "application/json"
    )


def oauth_error(error: OAuthError) -> Response:
    """An OAuth error response (``WWW-Authenticate`` for client authentication failures)."""
    headers = dict(error.headers)
    if error.status == 401:
        headers["WWW-Authenticate"] = f'Bearer error="{error.error}"'
    return json_response(error.body(), error.status, headers)


async def read_form(request: Request) -> dict[str, str]:
    """An ``application/x-www-form-urlencoded`` body; each parameter at most once."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != "application/x-www-form-urlencoded":
        raise OAuthError("invalid_request", "the body must be application/x-www-form-urlencoded")
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM_BYTES:
            raise OAuthError("invalid_request", "the request body is too large")
    try:
        pairs = parse_qsl(body.decode("utf-8"), keep_blank_values=True, strict_parsing=False)
    except UnicodeDecodeError:
        raise OAuthError("invalid_request", "the body is not UTF-8") from None
    form: dict[str, str] = {}
    for name, value in pairs:
        if name in form:
            raise OAuthError("invalid_request", f"parameter {name} is repeated")
        form[name] = value
    return form


def _dpop_header(request: Request) -> str | None:
    proofs = request.headers.getlist("dpop")
    if len(proofs) > 1:
        raise OAuthError("invalid_dpop_proof", "more than one DPoP header")
    return proofs[0] if proofs else None


def discovery(server: AuthorizationServer) -> dict[str, Any]:
    """The OpenID Provider metadata."""
    issuer = server.settings.issuer
    scopes = sorted(c.IDENTITY_SCOPES | {s for r in server.resources.values() for s in r.scopes})
    algs = sorted(jose.ALGORITHMS)
    return {
        "issuer": issuer,
        "jwks_uri": issuer + JWKS_PATH,
        "authorization_endpoint": server.settings.authorization_endpoint,
        "token_endpoint": server.settings.token_endpoint,
        "pushed_authorization_request_endpoint": server.settings.par_endpoint,
        "require_pushed_authorization_requests": True,
        "scopes_supported": scopes,
        "claims_supported": sorted(
            {
                "sub",
                "name",
                "given_name",
                "family_name",
                "idp",
                "amr",
                "auth_time",
                "client_id",
                "scope",
                "cnf",
                "act",
                c.PID,
                c.SECURITY_LEVEL,
                c.ASSURANCE_LEVEL,
                c.HPR_NUMBER,
                c.CLIENT_NAME,
                c.CLIENT_AMR,
                c.ORGNR_PARENT,
                c.ORGNR_CHILD,
                c.ORGNR_SUPPLIER,
                c.CLIENT_TENANCY,
                c.PRINCIPAL,
            }
        ),
        "grant_types_supported": [
            "authorization_code",
            "client_credentials",
            "refresh_token",
            "urn:ietf:params:oauth:grant-type:token-exchange",
        ],
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "subject_types_supported": ["public"],
        "code_challenge_methods_supported": ["S256"],
        "token_endpoint_auth_methods_supported": ["private_key_jwt"],
        "token_endpoint_auth_signing_alg_values_supported": algs,
        "request_object_signing_alg_values_supported": algs,
        "id_token_signing_alg_values_supported": [server.keys.alg],
        "dpop_signing_alg_values_supported": algs,
        "authorization_details_types_supported": ["helseid_authorization"],
        "authorization_response_iss_parameter_supported": True,
        "acr_values_supported": ["Level3", "Level4", "idp:" + TEST_IDP],
        "resources_supported": sorted(server.resources),
    }


Server = Callable[[], AuthorizationServer]


def trust_routes(server: Server, idp: Callable[[], IdentityProvider]) -> list[BaseRoute]:
    """The endpoints; ``server`` and ``idp`` are looked up per request (bound at start-up)."""

    def handled(
        handler: Callable[[Request], Awaitable[Response]],
    ) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            try:
                return await handler(request)
            except OAuthError as error:
                return oauth_error(error)

        return endpoint

    async def openid_configuration(request: Request) -> Response:
        return Response(
            orjson.dumps(discovery(server())),
            headers={"Cache-Control": "public, max-age=300"},
            media_type="application/json",
        )

    async def jwks(request: Request) -> Response:
        return Response(
            orjson.dumps(await server().keys.jwks()),
            headers={"Cache-Control": "public, max-age=60"},
            media_type="application/jwk-set+json",
        )

    async def token(request: Request) -> Response:
        authority = server()
        response = await authority.token(await read_form(request), _dpop_header(request))
        return json_response(response, headers={"DPoP-Nonce": authority.dpop.nonces.current()})

    async def par(request: Request) -> Response:
        authority = server()
        response = await authority.push(await read_form(request), _dpop_header(request))
        return json_response(response, 201, {"DPoP-Nonce": authority.dpop.nonces.current()})

    async def authorize(request: Request) -> Response:
        authority = server()
        try:
            if request.method == "GET":
                query = {k: v for k, v in request.query_params.items() if k != "q"}
                return await idp().page(request, await authority.pending(query))
            form = await read_form(request)
            action = {k: form.pop(k) for k in list(form) if k not in ("client_id", "request_uri")}
            pending = await authority.pending(form)
            outcome = await idp().authenticate(action, pending)
            if isinstance(outcome, str):
                return await idp().page(request, pending, outcome)
            return RedirectResponse(await authority.complete(pending, outcome), 303, _NO_STORE)
        except OAuthError as error:
            return _error_page(error)

    return [
        Route("/.well-known/openid-configuration", openid_configuration, methods=["GET"]),
        Route(JWKS_PATH, jwks, methods=["GET"]),
        Route("/connect/token", handled(token), methods=["POST"]),
        Route("/connect/par", handled(par), methods=["POST"]),
        Route("/connect/authorize", authorize, methods=["GET", "POST"]),
    ]


_PAGE_MESSAGES = {
    "invalid_request_uri": "Innloggingen er utløpt eller allerede fullført. Gå tilbake til"
    " tjenesten og start innloggingen på nytt.",
    "invalid_request": "Tjenesten sendte en ugyldig innloggingsforespørsel.",
    "unauthorized_client": "Tjenesten har ikke lov til å logge inn brukere.",
    "access_denied": "Personen finnes ikke i folkeregisteret.",
}


def _error_page(error: OAuthError) -> Response:
    """Errors before the client's redirect URI is trusted are shown, not redirected."""
    message = _PAGE_MESSAGES.get(error.error, "Noe gikk galt under innloggingen.")
    return HTMLResponse(
        "<!doctype html><html lang='nb'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>"
        "<title>Innlogging feilet</title></head><body><main><h1>Innlogging feilet</h1>"
        f"<p role='alert'>{escape(message)}</p><p>Teknisk feilkode: <code>{escape(error.error)}"
        f"</code> ({escape(error.description)})</p></main></body></html>",
        status_code=error.status,
        headers=_NO_STORE,
    )
