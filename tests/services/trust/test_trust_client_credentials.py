"""client_credentials with private_key_jwt and DPoP: happy paths (raw HTTP and authlib) and
every way a client assertion or a token-endpoint DPoP proof can be wrong."""

from __future__ import annotations

import hashlib
import hmac
import time

import httpx
import pytest
from authlib.integrations.base_client.errors import OAuthError as AuthlibError
from authlib.integrations.httpx_client import OAuth2Client
from authlib.oauth2.rfc7523 import PrivateKeyJWT
from joserfc.jwk import ECKey
from trust_helpers import (
    FHIR_SCOPES,
    api_get,
    assertion,
    decode,
    header_of,
    nonce,
    system_client,
    token_request,
    tool,
    unsigned,
)

from conftest import Server, samhandling_cli
from samhandling.platform.auth import jose
from samhandling.services.trust.tokentool import DpopAuth, DpopKey, TokenRequestError


@pytest.fixture(scope="module")
def client_config(server: Server) -> dict:
    return system_client(server)


def test_client_credentials_over_raw_http(server: Server, client_config: dict) -> None:
    key = DpopKey()
    url = f"{server.url}/connect/token"
    form = {
        "grant_type": "client_credentials",
        "scope": FHIR_SCOPES,
        "client_id": client_config["client_id"],
        "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
    }
    first = httpx.post(
        url,
        data={**form, "client_assertion": assertion(client_config, server.url)},
        headers={"DPoP": key.proof("POST", url)},
    )
    assert first.status_code == 400
    assert first.json()["error"] == "use_dpop_nonce"
    server_nonce = first.headers["DPoP-Nonce"]
    # the retry uses a fresh assertion: the first one was never consumed, but HelseID's
    # samples make a new one for every request
    second = httpx.post(
        url,
        data={**form, "client_assertion": assertion(client_config, f"{server.url}/connect/token")},
        headers={"DPoP": key.proof("POST", url, nonce=server_nonce)},
    )
    assert second.status_code == 200, second.text
    assert second.headers["cache-control"] == "no-store"
    body = second.json()
    assert body["token_type"] == "DPoP"
    assert body["expires_in"] == 600
    assert set(body["scope"].split()) == set(FHIR_SCOPES.split())
    token = body["access_token"]
    assert header_of(token)["typ"] == "at+jwt"
    jwks = httpx.get(f"{server.url}/.well-known/openid-configuration/jwks").json()
    assert header_of(token)["kid"] in {k["kid"] for k in jwks["keys"]}
    claims = decode(token)
    assert claims["iss"] == server.url
    assert claims["aud"] == "samhandling:fhir"
    assert claims["client_id"] == claims["sub"] == client_config["client_id"]
    assert claims["cnf"] == {"jkt": key.jkt}
    assert claims["helseid://claims/client/claims/orgnr_parent"] == "912159523"
    assert claims["helseid://claims/client/claims/client_tenancy"] == "single-tenant"
    assert claims["samhandling://claims/principal"] == "system"
    assert claims["exp"] - claims["iat"] == 600
    assert "helseid://claims/identity/pid" not in claims
    read = api_get(server, "/Observation?_count=1", token, key)
    assert read.status_code == 200, read.text


class HelseIdPrivateKeyJWT(PrivateKeyJWT):
    """authlib's private_key_jwt with HelseID's rules: a fresh jti and exp 30 s after iat
    (authlib's default of 3600 s is refused, as HelseID refuses it)."""

    def sign(self, auth, token_endpoint):  # type: ignore[no-untyped-def]
        self.claims = {"exp": int(time.time()) + 30}
        return super().sign(auth, token_endpoint)


def test_client_credentials_with_authlib(server: Server, client_config: dict) -> None:
    """authlib's OAuth2Client with private_key_jwt; DPoP proofs added by an httpx hook."""
    key = DpopKey()
    token_url = f"{server.url}/connect/token"
    state = {"nonce": None}

    def add_proof(request: httpx.Request) -> None:
        if str(request.url) == token_url:
            request.headers["DPoP"] = key.proof("POST", token_url, nonce=state["nonce"])

    def keep_nonce(response: httpx.Response) -> None:
        state["nonce"] = response.headers.get("DPoP-Nonce", state["nonce"])

    jwk = client_config["jwk"]
    session = OAuth2Client(
        client_id=client_config["client_id"],
        client_secret=ECKey.import_key(jwk),
        token_endpoint_auth_method=HelseIdPrivateKeyJWT(token_url, alg=jwk["alg"]),
        scope=FHIR_SCOPES,
        event_hooks={"request": [add_proof], "response": [keep_nonce]},
    )
    with pytest.raises(AuthlibError) as refused:
        session.fetch_token(token_url, grant_type="client_credentials")
    assert refused.value.error == "use_dpop_nonce"
    token = session.fetch_token(token_url, grant_type="client_credentials")
    assert token["token_type"] == "DPoP"
    assert decode(token["access_token"])["cnf"]["jkt"] == key.jkt
    response = api_get(server, "/Observation?_count=1", token["access_token"], key)
    assert response.status_code == 200


def _assertion_cases(config: dict, server: Server) -> dict[str, str]:
    now = int(time.time())
    jwk = config["jwk"]
    public = jose.public_jwk(jwk)
    hs256_key = str(public).encode()
    payload = {"iss": config["client_id"], "sub": config["client_id"], "aud": server.url,
               "iat": now, "exp": now + 30, "jti": "x" + str(now)}  # fmt: skip
    signing_input = f"{unsigned({'alg': 'HS256', 'kid': jwk['kid']}, payload)[:-1]}"
    forged = hmac.new(hs256_key, signing_input.rstrip(".").encode(), hashlib.sha256).digest()
    return {
        "expired": assertion(config, server.url, iat=now - 120, nbf=now - 120, exp=now - 60),
        "future": assertion(config, server.url, iat=now + 120, nbf=now + 120, exp=now + 150),
        "exp more than 60 s after iat": assertion(config, server.url, exp=now + 120),
        "no exp": assertion(config, server.url, drop=("exp",)),
        "no jti": assertion(config, server.url, drop=("jti",)),
        "wrong aud": assertion(config, "https://helseid-sts.nhn.no"),
        "iss is not sub": assertion(config, server.url, sub="someone-else"),
        "alg none": unsigned({"alg": "none", "typ": "JWT"}, payload),
        "HS256 with the public key as secret": unsigned(
            {"alg": "HS256", "kid": jwk["kid"]}, payload, forged
        ),
        "unknown kid": assertion(config, server.url, header={"kid": "no-such-key"}),
        "wrong typ": assertion(config, server.url, header={"typ": "at+jwt"}),
        "bad signature": assertion(config, server.url)[:-8] + "AAAAAAAA",
        "unknown client": assertion(config, server.url, iss="sh-unknown", sub="sh-unknown"),
        "not a JWT": "not-a-jwt",
    }


CASES = [
    "expired", "future", "exp more than 60 s after iat", "no exp", "no jti", "wrong aud",
    "iss is not sub", "alg none", "HS256 with the public key as secret", "unknown kid",
    "wrong typ", "bad signature", "unknown client", "not a JWT",
]  # fmt: skip


@pytest.mark.parametrize("case", CASES)
def test_bad_client_assertions_are_refused(server: Server, client_config: dict, case: str) -> None:
    bad = _assertion_cases(client_config, server)[case]
    response = token_request(server, client_config, client_assertion=bad)
    assert response.status_code == 401, response.text
    assert response.json()["error"] == "invalid_client"
    assert "WWW-Authenticate" in response.headers


def test_replayed_assertion_is_refused(server: Server, client_config: dict) -> None:
    once = assertion(client_config, server.url)
    assert token_request(server, client_config, client_assertion=once).status_code == 200
    again = token_request(server, client_config, client_assertion=once)
    assert again.status_code == 401
    assert again.json() == {
        "error": "invalid_client",
        "error_description": "client_assertion jti was used before",
    }


def test_other_client_authentication_is_refused(server: Server, client_config: dict) -> None:
    response = httpx.post(
        f"{server.url}/connect/token",
        data={"grant_type": "client_credentials", "client_id": client_config["client_id"],
              "client_secret": "secret"},
        headers={"DPoP": DpopKey().proof("POST", f"{server.url}/connect/token",
                                         nonce=nonce(server))},
    )  # fmt: skip
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"


def _proof_cases(server: Server) -> dict[str, str | None]:
    url = f"{server.url}/connect/token"
    fresh = nonce(server)
    key = DpopKey()
    private_jwk = dict(key.jwk)
    return {
        "missing": None,
        "wrong htm": key.proof("GET", url, nonce=fresh),
        "wrong htu": key.proof("POST", f"{server.url}/connect/par", nonce=fresh),
        "stale iat": _proof_at(key, url, fresh, time.time() - 300),
        "iat in the future": _proof_at(key, url, fresh, time.time() + 300),
        "wrong typ": jose.sign(
            {"typ": "JWT", "alg": "ES256", "jwk": key.public},
            {"jti": "a", "htm": "POST", "htu": url, "iat": int(time.time()), "nonce": fresh},
            jose.private_key(key.jwk),
        ),
        "private key in jwk": jose.sign(
            {"typ": "dpop+jwt", "alg": "ES256", "jwk": private_jwk},
            {"jti": "b", "htm": "POST", "htu": url, "iat": int(time.time()), "nonce": fresh},
            jose.private_key(key.jwk),
        ),
        "signed by another key": jose.sign(
            {"typ": "dpop+jwt", "alg": "ES256", "jwk": key.public},
            {"jti": "c", "htm": "POST", "htu": url, "iat": int(time.time()), "nonce": fresh},
            jose.private_key(DpopKey().jwk),
        ),
        "alg none": unsigned(
            {"typ": "dpop+jwt", "alg": "none", "jwk": key.public},
            {"jti": "d", "htm": "POST", "htu": url, "iat": int(time.time()), "nonce": fresh},
        ),
    }


def _proof_at(key: DpopKey, url: str, server_nonce: str, iat: float) -> str:
    claims = {"jti": jose.b64url(b"%f" % iat), "htm": "POST", "htu": url, "iat": int(iat),
              "nonce": server_nonce}  # fmt: skip
    return jose.sign({"typ": "dpop+jwt", "alg": "ES256", "jwk": key.public}, claims,
                     jose.private_key(key.jwk))  # fmt: skip


PROOF_CASES = ["missing", "wrong htm", "wrong htu", "stale iat", "iat in the future",
               "wrong typ", "private key in jwk", "signed by another key", "alg none"]  # fmt: skip


@pytest.mark.parametrize("case", PROOF_CASES)
def test_bad_token_endpoint_proofs_are_refused(
    server: Server, client_config: dict, case: str
) -> None:
    proof = _proof_cases(server)[case]
    response = token_request(server, client_config, proof=proof or False)
    assert response.status_code == 400, response.text
    assert response.json()["error"] == "invalid_dpop_proof"


def test_nonce_is_required_and_checked(server: Server, client_config: dict) -> None:
    url = f"{server.url}/connect/token"
    for bad_nonce in (None, "not-the-nonce"):
        response = token_request(
            server, client_config, proof=DpopKey().proof("POST", url, nonce=bad_nonce)
        )
        assert response.status_code == 400
        assert response.json()["error"] == "use_dpop_nonce"
        assert response.headers["DPoP-Nonce"]


def test_replayed_token_endpoint_proof_is_refused(server: Server, client_config: dict) -> None:
    proof = DpopKey().proof("POST", f"{server.url}/connect/token", nonce=nonce(server))
    assert token_request(server, client_config, proof=proof).status_code == 200
    again = token_request(server, client_config, proof=proof)
    assert again.status_code == 400
    assert again.json()["error"] == "invalid_dpop_proof"


def test_scopes_are_limited_to_the_client(server: Server) -> None:
    reader = system_client(server)  # read and write
    only_read = tool(server, _register_reader(server))
    with pytest.raises(TokenRequestError) as refused:
        only_read.client_credentials("samhandling:fhir/write")
    assert refused.value.error == "invalid_scope"
    with pytest.raises(TokenRequestError) as identity:
        tool(server, reader).client_credentials("openid samhandling:fhir/read")
    assert identity.value.error == "invalid_scope"
    with pytest.raises(TokenRequestError) as unknown:
        tool(server, reader).client_credentials("samhandling:fhir/read nhn:kjernejournal/api")
    assert unknown.value.error == "invalid_scope"
    granted = tool(server, reader).client_credentials("samhandling:fhir/read")
    assert decode(granted.access_token)["scope"] == "samhandling:fhir/read"


def _register_reader(server: Server) -> dict:
    from conftest import register_client

    return register_client(server, "--scope", "samhandling:fhir/read", "--orgnr", "912159523")


def test_disabled_client_gets_no_tokens(server: Server) -> None:
    config = system_client(server)
    client = tool(server, config)
    client.client_credentials()
    samhandling_cli(server, "client", "disable", config["client_id"])
    with pytest.raises(TokenRequestError) as refused:
        tool(server, config).client_credentials()
    assert (refused.value.status, refused.value.error) == (401, "invalid_client")
    samhandling_cli(server, "client", "enable", config["client_id"])
    assert tool(server, config).client_credentials().access_token


def test_client_key_rotation(server: Server) -> None:
    import json

    config = system_client(server)
    new_jwk = json.loads(samhandling_cli(server, "client", "rotate-key", config["client_id"]))
    with pytest.raises(TokenRequestError) as refused:
        tool(server, config).client_credentials()
    assert refused.value.error == "invalid_client"
    assert tool(server, {**config, "jwk": new_jwk}).client_credentials().access_token


def test_bearer_tokens_only_for_clients_configured_for_them(server: Server) -> None:
    dpop_client = system_client(server)
    refused = token_request(server, dpop_client, proof=False)
    assert refused.status_code == 400
    assert refused.json()["error"] == "invalid_dpop_proof"
    bearer_client = system_client(server, "--bearer")
    response = token_request(server, bearer_client, proof=False)
    assert response.status_code == 200, response.text
    assert response.json()["token_type"] == "Bearer"
    token = response.json()["access_token"]
    assert "cnf" not in decode(token)
    bearer = {"Authorization": f"Bearer {token}"}
    read = httpx.get(f"{server.fhir}/Observation?_count=1", headers=bearer)
    assert read.status_code == 200, read.text
    # a bearer token presented with the DPoP scheme is refused: it is bound to no key
    key = DpopKey()
    as_dpop = api_get(server, "/Observation?_count=1", token, key)
    assert as_dpop.status_code == 401
    assert 'error="invalid_token"' in as_dpop.headers["www-authenticate"]


def test_dpop_auth_helper_renews_tokens(server: Server, client_config: dict) -> None:
    client = tool(server, client_config)
    tokens = client.client_credentials()
    tokens.expires_at = time.time()  # pretend it is about to expire
    renewed = []

    def renew():  # type: ignore[no-untyped-def]
        renewed.append(1)
        return client.client_credentials()

    auth = DpopAuth(tokens, client.dpop, renew=renew)
    assert httpx.get(f"{server.fhir}/Observation?_count=1", auth=auth).status_code == 200
    assert renewed == [1]
