"""The authorization server: pushed authorization requests, sign-in completion and the token
endpoint's four grants. Works on plain values; `routes` turns HTTP into calls here."""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from samhandling.platform.auth import claims as c
from samhandling.platform.auth import jose
from samhandling.platform.auth.context import Principal
from samhandling.platform.auth.dpop import DpopError, DpopProof, DpopVerifier
from samhandling.platform.auth.guard import ApiResource
from samhandling.platform.auth.tokens import AccessTokenVerifier, TokenError
from samhandling.platform.directory import Person, PersonDirectory
from samhandling.services.trust import clients as grants
from samhandling.services.trust.assertion import ClientAuthenticator
from samhandling.services.trust.clients import Client, ClientRegistry
from samhandling.services.trust.errors import OAuthError
from samhandling.services.trust.keys import SigningKeys
from samhandling.services.trust.organisations import organisation_claims, parse_details
from samhandling.services.trust.store import TrustStore

REQUEST_URI_PREFIX = "urn:ietf:params:oauth:request_uri:"
ACCESS_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:access_token"
_PKCE = re.compile(r"^[A-Za-z0-9\-._~]{43,128}$")
_CHALLENGE = re.compile(r"^[A-Za-z0-9\-_]{43}$")


@dataclass(frozen=True, slots=True)
class TrustSettings:
    """Lifetimes and addresses of the authorization server."""

    issuer: str
    access_token_lifetime: int = 600
    refresh_token_lifetime: int = 8 * 3600
    code_lifetime: int = 60
    par_lifetime: int = 90

    @property
    def token_endpoint(self) -> str:
        """Where tokens are issued."""
        return f"{self.issuer}/connect/token"

    @property
    def authorization_endpoint(self) -> str:
        """Where the browser signs in."""
        return f"{self.issuer}/connect/authorize"

    @property
    def par_endpoint(self) -> str:
        """Where authorization requests are pushed."""
        return f"{self.issuer}/connect/par"


@dataclass(frozen=True, slots=True)
class SignedIn:
    """What an identity provider reports after a successful sign-in."""

    pid: str
    security_level: int
    idp: str
    amr: str = "pwd"


@dataclass(frozen=True, slots=True)
class PendingLogin:
    """A pushed authorization request waiting for the user to sign in."""

    request_uri: str
    client: Client
    params: dict[str, Any]


class AuthorizationServer:
    """HelseID's flows over the client registry, keys, replay cache and person directory."""

    def __init__(
        self,
        settings: TrustSettings,
        store: TrustStore,
        keys: SigningKeys,
        clients: ClientRegistry,
        authenticator: ClientAuthenticator,
        dpop: DpopVerifier,
        tokens: AccessTokenVerifier,
        directory: PersonDirectory,
        resources: list[ApiResource],
        subject_key: bytes,
    ) -> None:
        self.settings = settings
        self.store = store
        self.keys = keys
        self.clients = clients
        self.authenticator = authenticator
        self.dpop = dpop
        self.tokens = tokens
        self.directory = directory
        self.resources = {r.name: r for r in resources}
        self._scope_resource = {s: r.name for r in resources for s in r.scopes}
        self._subject_key = subject_key

    # token endpoint ---------------------------------------------------------------------
    async def token(self, form: dict[str, str], proof: str | None) -> dict[str, Any]:
        """Answer a token request (form fields and the DPoP header); `OAuthError` otherwise."""
        dpop = await self._proof(proof, "POST", self.settings.token_endpoint)
        client, assertion = await self.authenticator.authenticate(form)
        grant_type = form.get("grant_type")
        if grant_type not in grants.GRANT_TYPES:
            raise OAuthError(
                "unsupported_grant_type", f"grant_type {grant_type!r} is not supported"
            )
        if grant_type not in client.grant_types:
            raise OAuthError("unauthorized_client", f"this client may not use {grant_type}")
        if dpop is None and not client.allow_bearer:
            raise OAuthError("invalid_dpop_proof", "this client must send a DPoP proof")
        jkt = dpop.jkt if dpop else None
        if grant_type == grants.CLIENT_CREDENTIALS:
            return await self._client_credentials(client, form, assertion, jkt)
        if grant_type == grants.AUTHORIZATION_CODE:
            return await self._authorization_code(client, form, jkt)
        if grant_type == grants.REFRESH_TOKEN:
            return await self._refresh(client, form, assertion, jkt)
        return await self._exchange(client, form, jkt)

    async def _proof(self, proof: str | None, method: str, url: str) -> DpopProof | None:
        if proof is None:
            return None
        try:
            return await self.dpop.verify(proof, method, url, require_nonce=True)
        except DpopError as exc:
            headers = {"DPoP-Nonce": self.dpop.nonces.current()}
            raise OAuthError(exc.error, exc.description, headers=headers) from None

    async def _client_credentials(
        self, client: Client, form: dict[str, str], assertion: dict[str, Any], jkt: str | None
    ) -> dict[str, Any]:
        scopes = self._scopes(form.get("scope"), client, default=client.scopes)
        if any(s in c.IDENTITY_SCOPES for s in scopes):
            raise OAuthError("invalid_scope", "identity scopes need a signed-in user")
        details = parse_details(assertion.get("authorization_details"))
        subject = {"sub": client.client_id, c.PRINCIPAL: Principal.SYSTEM.value}
        orgs = await organisation_claims(client, details, self.clients)
        return await self._respond(client, subject, orgs, scopes, form.get("resource"), jkt)

    async def _authorization_code(
        self, client: Client, form: dict[str, str], jkt: str | None
    ) -> dict[str, Any]:
        code = form.get("code", "")
        grant = await self.store.use_grant(code, "code") if code else None
        if grant is None or grant.client_id != client.client_id:
            raise OAuthError("invalid_grant", "unknown, expired or foreign authorization code")
        if grant.was_used:
            await self.store.revoke_family(grant.family or "")
            raise OAuthError("invalid_grant", "the authorization code was used before")
        doc = grant.document
        if form.get("redirect_uri") != doc["redirect_uri"]:
            raise OAuthError("invalid_grant", "redirect_uri differs from the authorization request")
        verifier = form.get("code_verifier", "")
        if not _PKCE.match(verifier):
            raise OAuthError("invalid_grant", "code_verifier is missing or malformed")
        if not hmac.compare_digest(jose.sha256_b64url(verifier), doc["code_challenge"]):
            raise OAuthError("invalid_grant", "code_verifier does not match the code_challenge")
        if doc.get("dpop_jkt") and doc["dpop_jkt"] != jkt:
            raise OAuthError("invalid_grant", "the code is bound to another DPoP key")
        scopes = doc["scopes"]
        response = await self._respond(
            client, doc["subject"], doc["orgs"], scopes, doc.get("resource"), jkt
        )
        if "openid" in scopes:
            response["id_token"] = await self._id_token(client, doc)
        if "offline_access" in scopes and grants.REFRESH_TOKEN in client.grant_types:
            expires = int(time.time()) + self.settings.refresh_token_lifetime
            family = grant.family or jose.b64url(os.urandom(12))
            refresh = {**doc, "jkt": jkt, "family_expires": expires}
            response.update(await self._refresh_token(client, refresh, family, expires))
        return response

    async def _refresh(
        self, client: Client, form: dict[str, str], assertion: dict[str, Any], jkt: str | None
    ) -> dict[str, Any]:
        token = form.get("refresh_token", "")
        grant = await self.store.use_grant(token, "refresh") if token else None
        if grant is None or grant.client_id != client.client_id:
            raise OAuthError("invalid_grant", "unknown, expired or foreign refresh token")
        if grant.was_used:  # a rotated token came back: someone else may hold it
            await self.store.revoke_family(grant.family or "")
            raise OAuthError("invalid_grant", "the refresh token was used before; sign in again")
        doc = grant.document
        if doc.get("jkt") and doc["jkt"] != jkt:
            raise OAuthError("invalid_grant", "the refresh token is bound to another DPoP key")
        scopes = doc["scopes"]
        if form.get("scope"):
            scopes = self._scopes(form["scope"], client, allowed=set(scopes))
        orgs = doc["orgs"]
        details = parse_details(assertion.get("authorization_details"))
        if details:  # HelseID: change child organisation on refresh
            orgs = await organisation_claims(client, details, self.clients)
        response = await self._respond(
            client, doc["subject"], orgs, scopes, doc.get("resource"), jkt
        )
        refresh = {**doc, "orgs": orgs}
        response.update(
            await self._refresh_token(client, refresh, grant.family or "", doc["family_expires"])
        )
        return response

    async def _exchange(
        self, client: Client, form: dict[str, str], jkt: str | None
    ) -> dict[str, Any]:
        if form.get("subject_token_type") != ACCESS_TOKEN_TYPE:
            raise OAuthError("invalid_request", f"subject_token_type must be {ACCESS_TOKEN_TYPE}")
        try:
            subject_claims = await self.tokens.claims(form.get("subject_token", ""))
        except TokenError as exc:
            raise OAuthError("invalid_grant", f"subject_token: {exc.description}") from None
        audience = subject_claims.get("aud")
        audiences = {audience} if isinstance(audience, str) else set(audience or ())
        if not audiences & set(client.exchange_audiences):
            raise OAuthError("invalid_grant", "this client may not act on tokens for that audience")
        scopes = self._scopes(form.get("scope"), client, default=client.scopes)
        subject = {k: v for k, v in subject_claims.items() if k in _SUBJECT_CLAIMS}
        subject["act"] = {"client_id": client.client_id}
        orgs = {k: v for k, v in subject_claims.items() if k in _ORG_CLAIMS}
        return await self._respond(client, subject, orgs, scopes, form.get("resource"), jkt)

    # issuing ----------------------------------------------------------------------------
    def _scopes(
        self,
        requested: str | None,
        client: Client,
        *,
        default: list[str] | None = None,
        allowed: set[str] | None = None,
    ) -> list[str]:
        scopes = requested.split() if requested else list(default or [])
        if not scopes:
            raise OAuthError("invalid_scope", "no scope requested")
        permitted = allowed if allowed is not None else set(client.scopes) | c.IDENTITY_SCOPES
        refused = [s for s in scopes if s not in permitted]
        if refused:
            raise OAuthError(
                "invalid_scope", f"scope not allowed for this client: {' '.join(refused)}"
            )
        return list(dict.fromkeys(scopes))

    async def _respond(
        self,
        client: Client,
        subject: dict[str, Any],
        orgs: dict[str, str],
        scopes: list[str],
        resource: str | None,
        jkt: str | None,
    ) -> dict[str, Any]:
        api_scopes = [s for s in scopes if s in self._scope_resource]
        if resource:
            if resource not in self.resources:
                raise OAuthError("invalid_target", f"unknown resource {resource}")
            api_scopes = [s for s in api_scopes if self._scope_resource[s] == resource]
            if not api_scopes:
                raise OAuthError("invalid_scope", f"no requested scope belongs to {resource}")
        audiences = list(dict.fromkeys(self._scope_resource[s] for s in api_scopes))
        granted = [s for s in scopes if s in c.IDENTITY_SCOPES or s in api_scopes]
        lifetime = self.settings.access_token_lifetime
        now = int(time.time())
        claims = {
            "iss": self.settings.issuer,
            "aud": (audiences[0] if len(audiences) == 1 else audiences) or self.settings.issuer,
            "iat": now,
            "nbf": now,
            "exp": now + lifetime,
            "jti": jose.b64url(os.urandom(16)),
            "client_id": client.client_id,
            "scope": " ".join(granted),
            c.CLIENT_NAME: client.name,
            c.CLIENT_AMR: "private_key_jwt",
            **orgs,
            **subject,
        }
        if jkt:
            claims["cnf"] = {"jkt": jkt}
        key = await self.keys.current()
        token = jose.sign({"alg": key.alg, "kid": key.kid, "typ": "at+jwt"}, claims, key.key)
        return {
            "access_token": token,
            "token_type": "DPoP" if jkt else "Bearer",
            "expires_in": lifetime,
            "scope": claims["scope"],
        }

    async def _refresh_token(
        self, client: Client, document: dict[str, Any], family: str, expires: int
    ) -> dict[str, Any]:
        secret = jose.b64url(os.urandom(32))
        await self.store.add_grant(secret, "refresh", client.client_id, document, expires, family)
        return {"refresh_token": secret, "rt_expires_in": max(0, expires - int(time.time()))}

    async def _id_token(self, client: Client, doc: dict[str, Any]) -> str:
        now = int(time.time())
        claims = {
            "iss": self.settings.issuer,
            "aud": client.client_id,
            "iat": now,
            "exp": now + self.settings.access_token_lifetime,
            "auth_time": doc["auth_time"],
            "idp": doc["idp"],
            "amr": [doc["amr"]],
            **doc["subject"],
        }
        if doc.get("nonce"):
            claims["nonce"] = doc["nonce"]
        key = await self.keys.current()
        return jose.sign({"alg": key.alg, "kid": key.kid, "typ": "JWT"}, claims, key.key)

    # pushed authorization requests and sign-in --------------------------------------------
    async def push(self, form: dict[str, str], proof: str | None) -> dict[str, Any]:
        """Store a pushed authorization request; returns its ``request_uri``."""
        dpop = await self._proof(proof, "POST", self.settings.par_endpoint)
        client, _ = await self.authenticator.authenticate(form)
        params = dict(form)
        if "request_uri" in params:
            raise OAuthError("invalid_request", "request_uri may not be pushed")
        if "request" in params:
            params.update(await self.authenticator.request_object(client, params.pop("request")))
            odd = sorted(
                k for k in _STRING_PARAMS & params.keys() if not isinstance(params[k], str)
            )
            if odd:
                raise OAuthError("invalid_request_object", f"must be strings: {', '.join(odd)}")
        if grants.AUTHORIZATION_CODE not in client.grant_types:
            raise OAuthError("unauthorized_client", "this client may not use authorization_code")
        if params.get("response_type") != "code":
            raise OAuthError("unsupported_response_type", "response_type must be code")
        redirect_uri = params.get("redirect_uri")
        if redirect_uri not in client.redirect_uris:
            raise OAuthError("invalid_request", "redirect_uri is not registered for this client")
        if params.get("code_challenge_method") != "S256":
            raise OAuthError("invalid_request", "PKCE with code_challenge_method=S256 is required")
        challenge = params.get("code_challenge")
        if not isinstance(challenge, str) or not _CHALLENGE.match(challenge):
            raise OAuthError("invalid_request", "code_challenge must be a base64url SHA-256")
        scopes = self._scopes(params.get("scope"), client)
        if "openid" not in scopes:
            raise OAuthError("invalid_scope", "signing in needs the openid scope")
        resource = params.get("resource")
        if resource is not None and resource not in self.resources:
            raise OAuthError("invalid_target", f"unknown resource {resource}")
        details = parse_details(params.get("authorization_details"))
        orgs = await organisation_claims(client, details, self.clients)
        dpop_jkt = params.get("dpop_jkt") or (dpop.jkt if dpop else None)
        request_uri = REQUEST_URI_PREFIX + jose.b64url(os.urandom(24))
        document = {
            "redirect_uri": redirect_uri,
            "scopes": scopes,
            "state": params.get("state"),
            "nonce": params.get("nonce"),
            "code_challenge": challenge,
            "resource": resource,
            "orgs": orgs,
            "dpop_jkt": dpop_jkt,
            "acr_values": params.get("acr_values"),
        }
        expires = int(time.time()) + self.settings.par_lifetime
        await self.store.add_grant(request_uri, "par", client.client_id, document, expires)
        return {"request_uri": request_uri, "expires_in": self.settings.par_lifetime}

    async def pending(self, query: dict[str, str]) -> PendingLogin:
        """The pushed request an authorize call names (it must name nothing else)."""
        extra = sorted(set(query) - {"client_id", "request_uri"})
        if extra:
            raise OAuthError(
                "invalid_request",
                f"authorize takes only client_id and request_uri (push the rest): {extra}",
            )
        request_uri = query.get("request_uri", "")
        grant = await self.store.peek_grant(request_uri, "par") if request_uri else None
        if grant is None or grant.client_id != query.get("client_id"):
            raise OAuthError("invalid_request_uri", "unknown, expired or used request_uri")
        client = await self.clients.get(grant.client_id)
        if client is None or not client.enabled:
            raise OAuthError("unauthorized_client", "the client is disabled")
        return PendingLogin(request_uri, client, grant.document)

    async def complete(self, pending: PendingLogin, signed_in: SignedIn | None) -> str:
        """Finish a sign-in; returns the URL to send the browser to (with code or error)."""
        grant = await self.store.use_grant(pending.request_uri, "par")
        if grant is None or grant.was_used:
            raise OAuthError("invalid_request_uri", "the request_uri was used before")
        doc = grant.document
        if signed_in is None:
            return _redirect(doc, {"error": "access_denied", "error_description": "avbrutt"})
        person = await self.directory.person(signed_in.pid)
        if person is None:
            raise OAuthError("access_denied", "the person is not in the person register")
        subject = self.subject_claims(pending.client, person, signed_in.security_level)
        code = jose.b64url(os.urandom(32))
        now = int(time.time())
        document = {
            **doc,
            "subject": subject,
            "auth_time": now,
            "idp": signed_in.idp,
            "amr": signed_in.amr,
        }
        family = jose.b64url(os.urandom(12))
        await self.store.add_grant(
            code, "code", grant.client_id, document, now + self.settings.code_lifetime, family
        )
        return _redirect(doc, {"code": code, "iss": self.settings.issuer})

    def subject_claims(self, client: Client, person: Person, security_level: int) -> dict[str, Any]:
        """The identity claims of a signed-in person (HPR number from the register only)."""
        citizen = client.login == grants.LOGIN_CITIZEN
        subject: dict[str, Any] = {
            "sub": self._pseudonym(person.pid),
            c.PRINCIPAL: (Principal.CITIZEN if citizen else Principal.PERSONNEL).value,
            c.PID: person.pid,
            c.SECURITY_LEVEL: str(security_level),
            c.ASSURANCE_LEVEL: "high" if security_level >= 4 else "substantial",
            "name": person.name,
        }
        if person.given_name:
            subject["given_name"] = person.given_name
        if person.family_name:
            subject["family_name"] = person.family_name
        if not citizen and person.hpr_number:
            subject[c.HPR_NUMBER] = person.hpr_number
        return subject

    def _pseudonym(self, pid: str) -> str:
        return jose.b64url(hmac.new(self._subject_key, pid.encode(), hashlib.sha256).digest())


_SUBJECT_CLAIMS = frozenset(
    {"sub", c.PRINCIPAL, c.PID, c.SECURITY_LEVEL, c.ASSURANCE_LEVEL, c.HPR_NUMBER, "name",
     "given_name", "family_name"}
)  # fmt: skip
_STRING_PARAMS = frozenset(
    {"response_type", "redirect_uri", "scope", "code_challenge", "code_challenge_method",
     "state", "nonce", "resource", "acr_values", "dpop_jkt"}
)  # fmt: skip
_ORG_CLAIMS = frozenset({c.ORGNR_PARENT, c.ORGNR_CHILD, c.ORGNR_SUPPLIER, c.CLIENT_TENANCY})


def _redirect(doc: dict[str, Any], params: dict[str, str]) -> str:
    if doc.get("state") is not None:
        params = {**params, "state": doc["state"]}
    separator = "&" if "?" in doc["redirect_uri"] else "?"
    return f"{doc['redirect_uri']}{separator}{urlencode(params)}"
