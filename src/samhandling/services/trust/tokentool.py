"""A small HelseID-style client: client assertions, DPoP proofs, PAR sign-in, refresh, exchange.

What `samhandling token` runs, and what tests and scripts use to call the APIs. It talks to a
running server over HTTP only, as a vendor's system would.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Generator
from dataclasses import dataclass, field
from html import unescape
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import orjson

from samhandling.platform.auth import jose
from samhandling.services.trust.assertion import ASSERTION_TYPE

ASSERTION_TYP = "client-authentication+jwt"


class TokenRequestError(RuntimeError):
    """The server refused a request; ``error`` is its OAuth error code."""

    def __init__(self, status: int, body: dict[str, Any]) -> None:
        self.status = status
        self.error = body.get("error", "")
        self.description = body.get("error_description", "")
        super().__init__(f"{status} {self.error}: {self.description}")


@dataclass
class DpopKey:
    """A DPoP key pair and the proofs it signs."""

    jwk: dict[str, Any] = field(default_factory=lambda: jose.generate_jwk("ES256", "dpop"))

    def __post_init__(self) -> None:
        self._key = jose.private_key(self.jwk)
        public = jose.public_jwk(self.jwk)
        self.public = {k: public[k] for k in ("kty", "crv", "x", "y", "n", "e") if k in public}
        self.jkt = jose.thumbprint(self.public)

    def proof(
        self, method: str, url: str, *, nonce: str | None = None, access_token: str | None = None
    ) -> str:
        """A fresh proof for one request."""
        claims: dict[str, Any] = {
            "jti": jose.b64url(os.urandom(16)),
            "htm": method,
            "htu": url.split("?")[0],
            "iat": int(time.time()),
        }
        if nonce:
            claims["nonce"] = nonce
        if access_token:
            claims["ath"] = jose.sha256_b64url(access_token)
        alg = self.jwk["alg"]
        return jose.sign({"typ": "dpop+jwt", "alg": alg, "jwk": self.public}, claims, self._key)


@dataclass
class Tokens:
    """A token response."""

    access_token: str
    expires_at: float
    raw: dict[str, Any]

    @property
    def refresh_token(self) -> str | None:
        """The refresh token, when one was issued."""
        return self.raw.get("refresh_token")


class TokenClient:
    """One registered client talking to the trust service at ``issuer``."""

    def __init__(
        self,
        issuer: str,
        client_id: str,
        jwk: dict[str, Any],
        *,
        dpop: DpopKey | None = None,
        http: httpx.Client | None = None,
    ) -> None:
        self.issuer = issuer.rstrip("/")
        self.client_id = client_id
        self.jwk = jwk
        self._key = jose.private_key(jwk)
        self.dpop = dpop or DpopKey()
        self.http = http or httpx.Client(timeout=30)
        self.nonce: str | None = None

    def assertion(self, **extra: Any) -> str:
        """A fresh client assertion (``private_key_jwt``)."""
        now = int(time.time())
        claims = {
            "iss": self.client_id,
            "sub": self.client_id,
            "aud": self.issuer,
            "iat": now,
            "nbf": now,
            "exp": now + 30,
            "jti": jose.b64url(os.urandom(16)),
            **extra,
        }
        header = {"alg": self.jwk["alg"], "kid": self.jwk["kid"], "typ": ASSERTION_TYP}
        return jose.sign(header, claims, self._key)

    def _post(self, path: str, form: dict[str, str], **assertion_claims: Any) -> httpx.Response:
        """POST with client authentication and a DPoP proof, answering one nonce challenge."""
        url = self.issuer + path
        for _ in range(2):
            body = {
                **form,
                "client_id": self.client_id,
                "client_assertion_type": ASSERTION_TYPE,
                "client_assertion": self.assertion(**assertion_claims),
            }
            proof = self.dpop.proof("POST", url, nonce=self.nonce)
            response = self.http.post(url, data=body, headers={"DPoP": proof})
            if "DPoP-Nonce" in response.headers:
                self.nonce = response.headers["DPoP-Nonce"]
            if response.status_code == 400 and response.json().get("error") == "use_dpop_nonce":
                continue
            break
        return response

    def token(self, form: dict[str, str], **assertion_claims: Any) -> Tokens:
        """A token request; `TokenRequestError` when refused."""
        response = self._post("/connect/token", form, **assertion_claims)
        if response.status_code != 200:
            raise TokenRequestError(response.status_code, response.json())
        body = response.json()
        return Tokens(body["access_token"], time.time() + body["expires_in"], body)

    def client_credentials(
        self, scope: str | None = None, *, authorization_details: Any = None
    ) -> Tokens:
        """A system token (details, such as a child organisation, go in the assertion)."""
        form = {"grant_type": "client_credentials"}
        if scope:
            form["scope"] = scope
        extra = {"authorization_details": authorization_details} if authorization_details else {}
        return self.token(form, **extra)

    def refresh(self, refresh_token: str, **assertion_claims: Any) -> Tokens:
        """Exchange a refresh token for new tokens (the old refresh token is spent)."""
        return self.token(
            {"grant_type": "refresh_token", "refresh_token": refresh_token}, **assertion_claims
        )

    def exchange(self, subject_token: str, scope: str) -> Tokens:
        """Token exchange: a token for another API, on behalf of ``subject_token``'s caller."""
        return self.token(
            {
                "grant_type": "urn:ietf:params:oauth:grant-type:token-exchange",
                "subject_token": subject_token,
                "subject_token_type": "urn:ietf:params:oauth:token-type:access_token",
                "scope": scope,
            }
        )

    def push(self, params: dict[str, str]) -> str:
        """A pushed authorization request; returns its ``request_uri``."""
        response = self._post("/connect/par", params)
        if response.status_code != 201:
            raise TokenRequestError(response.status_code, response.json())
        return response.json()["request_uri"]

    def sign_in(
        self,
        pid: str,
        *,
        scope: str,
        redirect_uri: str,
        security_level: int = 4,
        authorization_details: Any = None,
    ) -> Tokens:
        """The authorization-code flow through the test identity provider, as a browser would
        run it: PAR with PKCE, the sign-in form, the redirect, the code for tokens."""
        verifier = jose.b64url(os.urandom(32))
        state = jose.b64url(os.urandom(12))
        params = {
            "response_type": "code",
            "redirect_uri": redirect_uri,
            "scope": scope,
            "code_challenge": jose.sha256_b64url(verifier),
            "code_challenge_method": "S256",
            "state": state,
            "nonce": jose.b64url(os.urandom(12)),
        }
        if authorization_details is not None:
            params["authorization_details"] = orjson.dumps(authorization_details).decode()
        request_uri = self.push(params)
        query = {"client_id": self.client_id, "request_uri": request_uri}
        page = self.http.get(self.issuer + "/connect/authorize", params=query)
        if page.status_code != 200:
            raise _page_failure(page)
        form = {**_hidden_fields(page.text), "pid": pid, "security_level": str(security_level),
                "action": "login"}  # fmt: skip
        done = self.http.post(self.issuer + "/connect/authorize", data=form)
        if done.status_code != 303:
            raise _page_failure(done)
        answer = parse_qs(urlsplit(done.headers["location"]).query)
        if answer.get("state") != [state] or "code" not in answer:
            raise TokenRequestError(400, {"error": answer.get("error", ["no_code"])[0]})
        return self.token(
            {
                "grant_type": "authorization_code",
                "code": answer["code"][0],
                "redirect_uri": redirect_uri,
                "code_verifier": verifier,
            }
        )


class DpopAuth(httpx.Auth):
    """httpx authentication: ``Authorization: DPoP <token>`` and a fresh proof per request;
    a new token is fetched (by ``renew``) shortly before the current one expires."""

    def __init__(self, tokens: Tokens, key: DpopKey, renew: Any = None) -> None:
        self.tokens = tokens
        self.key = key
        self.renew = renew

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        if self.renew is not None and self.tokens.expires_at - time.time() < 30:
            self.tokens = self.renew()
        token = self.tokens.access_token
        url = str(request.url.copy_with(query=None, fragment=None))
        request.headers["Authorization"] = f"DPoP {token}"
        request.headers["DPoP"] = self.key.proof(request.method, url, access_token=token)
        yield request


def _hidden_fields(html: str) -> dict[str, str]:
    fields = {}
    for tag in re.findall(r"<input[^>]*type=\"hidden\"[^>]*>", html):
        name = re.search(r'name="([^"]*)"', tag)
        value = re.search(r'value="([^"]*)"', tag)
        if name and value:
            fields[unescape(name.group(1))] = unescape(value.group(1))
    return fields


def _page_failure(response: httpx.Response) -> TokenRequestError:
    found = re.search(r'role=["\']alert["\']>([^<]*)<', response.text)
    message = unescape(found.group(1)) if found else response.text[:200]
    return TokenRequestError(
        response.status_code, {"error": "sign_in", "error_description": message}
    )
