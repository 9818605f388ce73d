"""HelseID's flows driven by a real OAuth client library (authlib's httpx OAuth2Client with
private_key_jwt), as a vendor would integrate: PAR + PKCE sign-in, refresh with rotation,
token exchange, and a child organisation in the client assertion. DPoP proofs are added by
httpx event hooks, with the nonce the server hands out."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from authlib.common.security import generate_token
from authlib.integrations.base_client.errors import OAuthError as AuthlibError
from authlib.integrations.httpx_client import OAuth2Client
from authlib.oauth2.rfc7523 import PrivateKeyJWT
from joserfc.jwk import ECKey
from trust_helpers import (
    FHIR_SCOPES,
    REDIRECT_URI,
    USER_SCOPES,
    clinical_search,
    decode,
    person,
)

from conftest import Server, register_client
from samhandling.services.trust.tokentool import DpopKey

DOCTOR = ("13097248022", "9144889")


class HelseIdPrivateKeyJWT(PrivateKeyJWT):
    """private_key_jwt as HelseID wants it: a fresh jti, exp 30 s after iat, and optional
    extra claims (``authorization_details``) in every assertion."""

    def __init__(self, token_endpoint: str, alg: str, extra: dict | None = None) -> None:
        super().__init__(token_endpoint, alg=alg)
        self.extra = extra or {}

    def sign(self, auth, token_endpoint):  # type: ignore[no-untyped-def]
        self.claims = {"exp": int(time.time()) + 30, **self.extra}
        return super().sign(auth, token_endpoint)


class HelseIdSession:
    """An authlib session plus the DPoP key and nonce handling around it."""

    def __init__(self, server: Server, config: dict, **assertion_claims: Any) -> None:
        self.server = server
        self.key = DpopKey()
        self.nonce: str | None = None
        self.token_url = f"{server.url}/connect/token"
        self.par_url = f"{server.url}/connect/par"
        jwk = config["jwk"]
        self.session = OAuth2Client(
            client_id=config["client_id"],
            client_secret=ECKey.import_key(jwk),
            token_endpoint_auth_method=HelseIdPrivateKeyJWT(
                self.token_url, jwk["alg"], assertion_claims
            ),
            code_challenge_method="S256",
            redirect_uri=REDIRECT_URI,
            event_hooks={"request": [self._add_proof], "response": [self._keep_nonce]},
        )

    def _add_proof(self, request: httpx.Request) -> None:
        url = str(request.url)
        if url in (self.token_url, self.par_url):
            request.headers["DPoP"] = self.key.proof("POST", url, nonce=self.nonce)

    def _keep_nonce(self, response: httpx.Response) -> None:
        self.nonce = response.headers.get("DPoP-Nonce", self.nonce)

    def with_nonce(self, call: Callable[[], Any]) -> Any:
        """Run a token request, retrying once when the server asks for its nonce."""
        try:
            return call()
        except AuthlibError as error:
            if error.error != "use_dpop_nonce":
                raise
            return call()

    def push(self, **params: str) -> str:
        """PAR, authenticated by authlib's private_key_jwt."""
        auth = self.session.client_auth(self.session.token_endpoint_auth_method)
        for _ in range(2):
            response = self.session.post(self.par_url, data=params, auth=auth)
            if response.status_code != 400 or response.json()["error"] != "use_dpop_nonce":
                break
        assert response.status_code == 201, response.text
        return response.json()["request_uri"]


def _browser_sign_in(server: Server, client_id: str, request_uri: str, pid: str) -> str:
    """What the user does in the browser; returns the URL the browser is sent back to."""
    query = {"client_id": client_id, "request_uri": request_uri}
    assert httpx.get(f"{server.url}/connect/authorize", params=query).status_code == 200
    form = {**query, "pid": pid, "security_level": "4", "action": "login"}
    done = httpx.post(f"{server.url}/connect/authorize", data=form)
    assert done.status_code == 303, done.text
    return done.headers["location"]


@pytest.fixture(scope="module")
def login_config(server: Server) -> dict:
    person(server, DOCTOR[0], "Lege", "Line", hpr=DOCTOR[1])
    return register_client(
        server, "--scope", "samhandling:fhir/read", "--scope", "samhandling:fhir/write",
        "--orgnr", "912159523", "--child-orgnr", "922734046", "--redirect-uri", REDIRECT_URI,
    )  # fmt: skip


def _sign_in(server: Server, login: HelseIdSession, scope: str) -> dict:
    verifier = generate_token(48)
    authorize_url, state = login.session.create_authorization_url(
        f"{server.url}/connect/authorize", code_verifier=verifier, scope=scope
    )
    # PAR: the parameters authlib put in the URL are pushed instead
    params = dict(httpx.URL(authorize_url).params)
    params.pop("client_id")
    request_uri = login.push(**params)
    callback = _browser_sign_in(server, login.session.client_id, request_uri, DOCTOR[0])
    return login.with_nonce(
        lambda: login.session.fetch_token(
            login.token_url, authorization_response=callback, code_verifier=verifier, state=state
        )
    )


def test_par_pkce_sign_in_refresh_and_exchange(server: Server, login_config: dict) -> None:
    login = HelseIdSession(server, login_config)
    token = _sign_in(server, login, f"{USER_SCOPES} {FHIR_SCOPES}")
    claims = decode(token["access_token"])
    assert claims["helseid://claims/hpr/hpr_number"] == DOCTOR[1]
    assert claims["cnf"]["jkt"] == login.key.jkt
    assert token["token_type"] == "DPoP" and token["refresh_token"]
    assert clinical_search(server, token["access_token"], login.key).status_code == 200

    refreshed = login.with_nonce(
        lambda: login.session.refresh_token(login.token_url, refresh_token=token["refresh_token"])
    )
    assert refreshed["refresh_token"] != token["refresh_token"]
    assert decode(refreshed["access_token"])["helseid://claims/identity/pid"] == DOCTOR[0]
    with pytest.raises(AuthlibError) as reuse:
        login.with_nonce(
            lambda: login.session.refresh_token(
                login.token_url, refresh_token=token["refresh_token"]
            )
        )
    assert reuse.value.error == "invalid_grant"

    actor_config = register_client(
        server, "--scope", "samhandling:fhir/read", "--orgnr", "994598759",
        "--grant", "urn:ietf:params:oauth:grant-type:token-exchange",
        "--exchange-audience", "samhandling:fhir",
    )  # fmt: skip
    actor = HelseIdSession(server, actor_config)
    exchanged = actor.with_nonce(
        lambda: actor.session.fetch_token(
            actor.token_url,
            grant_type="urn:ietf:params:oauth:grant-type:token-exchange",
            subject_token=refreshed["access_token"],
            subject_token_type="urn:ietf:params:oauth:token-type:access_token",
            scope="samhandling:fhir/read",
        )
    )
    claims = decode(exchanged["access_token"])
    assert claims["act"] == {"client_id": actor_config["client_id"]}
    assert claims["helseid://claims/hpr/hpr_number"] == DOCTOR[1]
    assert claims["cnf"]["jkt"] == actor.key.jkt


def test_child_organisation_in_the_assertion(server: Server, login_config: dict) -> None:
    details = {"type": "helseid_authorization", "practitioner_role": {"organization": {
        "identifier": {"system": "urn:oid:2.16.578.1.12.4.1.2.101", "type": "ENH",
                       "value": "922734046"}}}}  # fmt: skip
    system = HelseIdSession(server, login_config, authorization_details=details)
    token = system.with_nonce(
        lambda: system.session.fetch_token(
            system.token_url, grant_type="client_credentials", scope=FHIR_SCOPES
        )
    )
    claims = decode(token["access_token"])
    assert claims["helseid://claims/client/claims/orgnr_child"] == "922734046"
    assert claims["helseid://claims/client/claims/orgnr_parent"] == "912159523"


def test_multi_tenant_in_the_assertion(server: Server) -> None:
    from conftest import samhandling_cli

    supplier = register_client(
        server, "--scope", "samhandling:fhir/read", "--orgnr", "994598759", "--multi-tenant"
    )
    samhandling_cli(server, "client", "delegate", "--parent-orgnr", "925308293",
                    "--supplier-orgnr", "994598759")  # fmt: skip
    details = {"type": "helseid_authorization", "practitioner_role": {"organization": {
        "identifier": {"system": "urn:oid:1.0.6523", "value": "NO:ORGNR:925308293:"}}}}  # fmt: skip
    tenant = HelseIdSession(server, supplier, authorization_details=details)
    token = tenant.with_nonce(
        lambda: tenant.session.fetch_token(tenant.token_url, grant_type="client_credentials")
    )
    claims = decode(token["access_token"])
    assert claims["helseid://claims/client/claims/orgnr_parent"] == "925308293"
    assert "helseid://claims/client/claims/orgnr_child" not in claims
    assert claims["helseid://claims/client/claims/orgnr_supplier"] == "994598759"
