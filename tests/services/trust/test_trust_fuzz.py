"""Property-based fuzzing of the trust endpoints and the API guard over real HTTP.

Properties: never a 5xx; OAuth endpoints answer errors as ``{"error", "error_description"}``
JSON; the API guard answers 400/401/403 with an OperationOutcome and a challenge; nothing
random ever gets a token or through the guard.
"""

from __future__ import annotations

import os

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from trust_helpers import assertion, b64, system_client

from conftest import Server
from samhandling.services.trust.tokentool import DpopKey

SCALE = float(os.environ.get("SAMHANDLING_FUZZ_SCALE", "1"))
FUZZ = settings(
    max_examples=max(1, int(150 * SCALE)),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
NAMES = st.sampled_from(
    ["grant_type", "client_id", "client_assertion", "client_assertion_type", "scope", "code",
     "redirect_uri", "code_verifier", "refresh_token", "subject_token", "subject_token_type",
     "resource", "response_type", "code_challenge", "code_challenge_method", "request",
     "request_uri", "authorization_details", "state", "nonce", "dpop_jkt"]
)  # fmt: skip
VALUES = st.one_of(
    st.text(max_size=40),
    st.sampled_from(["client_credentials", "authorization_code", "refresh_token", "code",
                     "S256", "urn:ietf:params:oauth:grant-type:token-exchange",
                     "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
                     "urn:ietf:params:oauth:token-type:access_token", "samhandling:fhir/read",
                     '{"type":"helseid_authorization"}', '[{"type":1}]', "[]", "null", "a.b.c",
                     b64({"alg": "none"}) + "." + b64({"iss": "x"}) + "."]),
)  # fmt: skip
JWT_PARTS = st.one_of(
    st.builds(lambda h, p: f"{b64(h)}.{b64(p)}.c2ln",
              st.dictionaries(st.sampled_from(["alg", "typ", "jwk", "kid", "crit"]),
                              st.one_of(st.text(max_size=8), st.integers(), st.none(),
                                        st.sampled_from(["ES256", "dpop+jwt", "at+jwt"]),
                                        st.just({"kty": "EC", "crv": "P-256", "x": "", "y": ""}))),
              st.dictionaries(st.sampled_from(["iss", "sub", "aud", "exp", "iat", "jti", "htm",
                                               "htu", "ath", "cnf", "nonce"]),
                              st.one_of(st.text(max_size=8), st.integers(), st.floats(),
                                        st.booleans(), st.lists(st.integers(), max_size=2),
                                        st.sampled_from(["http://[::1", "http://h:x/", "GET"])))),
    st.text(max_size=60),
)  # fmt: skip


def _legal_header(value: str) -> bool:
    """A value HTTP lets through (others never reach the application: the HTTP layer or
    the client refuses them)."""
    return bool(value) and value.isascii() and value.isprintable() and value == value.strip()


def _oauth_error(response: httpx.Response) -> None:
    assert response.status_code < 500, response.text
    assert response.status_code in (400, 401), response.text
    body = response.json()
    assert isinstance(body.get("error"), str) and body["error"]
    assert isinstance(body.get("error_description"), str)


@pytest.fixture(scope="module")
def config(server: Server) -> dict:
    return system_client(server)


@FUZZ
@given(form=st.dictionaries(NAMES, VALUES, max_size=8), with_auth=st.booleans(),
       proof=st.one_of(st.none(), JWT_PARTS))  # fmt: skip
def test_token_endpoint(
    server: Server, config: dict, form: dict, with_auth: bool, proof: str | None
) -> None:
    if with_auth:  # a valid assertion, so the grant handling is reached too
        form = {**form, "client_assertion": assertion(config, server.url),
                "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
                "client_id": config["client_id"]}  # fmt: skip
    headers = {"DPoP": proof} if proof is not None and _legal_header(proof) else {}
    response = httpx.post(f"{server.url}/connect/token", data=form, headers=headers)
    _oauth_error(response)


@FUZZ
@given(form=st.dictionaries(NAMES, VALUES, max_size=10))
def test_par_endpoint(server: Server, config: dict, form: dict) -> None:
    form = {
        **form,
        "client_assertion": assertion(config, server.url),
        "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
    }
    proof = DpopKey().proof("POST", f"{server.url}/connect/par")
    response = httpx.post(f"{server.url}/connect/par", data=form, headers={"DPoP": proof})
    _oauth_error(response)


@FUZZ
@given(query=st.dictionaries(NAMES, VALUES, max_size=4), post=st.booleans())
def test_authorize_endpoint(server: Server, query: dict, post: bool) -> None:
    url = f"{server.url}/connect/authorize"
    response = httpx.post(url, data=query) if post else httpx.get(url, params=query)
    assert response.status_code in (400, 401), response.text
    assert "Innlogging feilet" in response.text


@FUZZ
@given(
    scheme=st.sampled_from(["DPoP", "Bearer", "dpop", "Basic", ""]),
    token=JWT_PARTS,
    proof=st.one_of(st.none(), JWT_PARTS),
    method=st.sampled_from(["GET", "POST", "DELETE"]),
)
def test_api_guard(server: Server, scheme: str, token: str, proof: str | None, method: str) -> None:
    headers = {}
    value = f"{scheme} {token}".strip()
    if _legal_header(value):
        headers["Authorization"] = value
    if proof is not None and _legal_header(proof):
        headers["DPoP"] = proof
    response = httpx.request(method, f"{server.fhir}/Observation", headers=headers)
    assert response.status_code in (400, 401, 403), response.text
    assert response.json()["resourceType"] == "OperationOutcome"
    assert response.headers.get_list("www-authenticate")
