"""The FHIR API's protection: only a valid, DPoP-bound token with the right audience and
scope gets through; every refusal has the RFC 6750 / RFC 9449 status and challenge."""

from __future__ import annotations

import httpx
import pytest
from trust_helpers import REDIRECT_URI, api_get, decode, person, system_client, tool

from conftest import Server, register_client
from samhandling.services.trust.tokentool import DpopKey, Tokens


@pytest.fixture(scope="module")
def issued(server: Server) -> tuple[Tokens, DpopKey]:
    client = tool(server, system_client(server))
    return client.client_credentials(), client.dpop


def _challenge(response: httpx.Response) -> str:
    return ", ".join(response.headers.get_list("www-authenticate"))


def test_open_endpoints_need_no_token(server: Server) -> None:
    for path in ("/fhir/metadata", "/.well-known/openid-configuration",
                 "/.well-known/openid-configuration/jwks", "/health"):  # fmt: skip
        assert httpx.get(server.url + path).status_code == 200, path


def test_no_token(server: Server) -> None:
    for method in ("GET", "POST", "DELETE"):
        response = httpx.request(method, f"{server.fhir}/Observation")
        assert response.status_code == 401
        assert response.json()["resourceType"] == "OperationOutcome"
        assert response.json()["issue"][0]["code"] == "login"
        assert response.headers.get_list("www-authenticate")[0].startswith('DPoP algs="ES256')
        assert "error=" not in _challenge(response)  # RFC 6750 §3.1: no error without a token


def test_valid_request(server: Server, issued: tuple[Tokens, DpopKey]) -> None:
    tokens, key = issued
    response = api_get(server, "/Observation?_count=1", tokens.access_token, key)
    assert response.status_code == 200, response.text


@pytest.mark.parametrize(
    ("case", "error"),
    [
        ("missing proof", "invalid_dpop_proof"),
        ("missing ath", "invalid_dpop_proof"),
        ("ath of another token", "invalid_dpop_proof"),
        ("wrong htm", "invalid_dpop_proof"),
        ("wrong htu", "invalid_dpop_proof"),
        ("stale proof", "invalid_dpop_proof"),
        ("proof by another key", "invalid_token"),
        ("bearer use of a DPoP-bound token", "invalid_token"),
        ("tampered token", "invalid_token"),
        ("not a token", "invalid_token"),
    ],
)
def test_refused_requests(
    server: Server, issued: tuple[Tokens, DpopKey], case: str, error: str
) -> None:
    tokens, key = issued
    token = tokens.access_token
    url = f"{server.fhir}/Observation"
    if case == "missing proof":
        response = httpx.get(url, headers={"Authorization": f"DPoP {token}"})
    elif case == "missing ath":
        response = api_get(server, "/Observation", token, key, access_token=None)
    elif case == "ath of another token":
        response = api_get(server, "/Observation", token, key, access_token=token + "x")
    elif case == "wrong htm":
        response = api_get(server, "/Observation", token, key, method="POST")
    elif case == "wrong htu":
        response = api_get(server, "/Observation", token, key, url=f"{server.fhir}/Encounter")
    elif case == "stale proof":
        response = _stale(server, token, key)
    elif case == "proof by another key":
        response = api_get(server, "/Observation", token, DpopKey())
    elif case == "bearer use of a DPoP-bound token":
        response = httpx.get(url, headers={"Authorization": f"Bearer {token}"})
    elif case == "tampered token":
        head, body, signature = token.split(".")
        forged = f"{head}.{body[:-4]}AAAA.{signature}"
        response = api_get(server, "/Observation", forged, key)
    else:
        response = api_get(server, "/Observation", "abc", key)
    assert response.status_code == 401, response.text
    assert f'error="{error}"' in _challenge(response)
    assert response.json()["resourceType"] == "OperationOutcome"


def _stale(server: Server, token: str, key: DpopKey) -> httpx.Response:
    import time

    from samhandling.platform.auth import jose

    url = f"{server.fhir}/Observation"
    claims = {"jti": "stale", "htm": "GET", "htu": url, "iat": int(time.time()) - 600,
              "ath": jose.sha256_b64url(token)}  # fmt: skip
    proof = jose.sign({"typ": "dpop+jwt", "alg": "ES256", "jwk": key.public}, claims,
                      jose.private_key(key.jwk))  # fmt: skip
    return httpx.get(url, headers={"Authorization": f"DPoP {token}", "DPoP": proof})


def test_replayed_proof(server: Server, issued: tuple[Tokens, DpopKey]) -> None:
    tokens, key = issued
    url = f"{server.fhir}/Observation"
    proof = key.proof("GET", url, access_token=tokens.access_token)
    headers = {"Authorization": f"DPoP {tokens.access_token}", "DPoP": proof}
    assert httpx.get(url, headers=headers).status_code == 200
    again = httpx.get(url, headers=headers)
    assert again.status_code == 401
    assert 'error="invalid_dpop_proof"' in _challenge(again)


def test_two_proofs_or_two_authorizations(server: Server, issued: tuple[Tokens, DpopKey]) -> None:
    tokens, key = issued
    url = f"{server.fhir}/Observation"
    token = tokens.access_token
    two_proofs = httpx.get(
        url,
        headers=[
            ("Authorization", f"DPoP {token}"),
            ("DPoP", key.proof("GET", url, access_token=token)),
            ("DPoP", key.proof("GET", url, access_token=token)),
        ],
    )
    assert two_proofs.status_code == 401
    two_tokens = httpx.get(
        url, headers=[("Authorization", f"DPoP {token}"), ("Authorization", f"DPoP {token}")]
    )
    assert two_tokens.status_code == 400
    assert 'error="invalid_request"' in _challenge(two_tokens)
    odd_scheme = httpx.get(url, headers={"Authorization": f"Basic {token}"})
    assert odd_scheme.status_code == 400


def test_missing_scope_is_403(server: Server) -> None:
    reader = register_client(server, "--scope", "samhandling:fhir/read", "--orgnr", "912159523")
    client = tool(server, reader)
    tokens = client.client_credentials()
    url = f"{server.fhir}/Observation"
    token = tokens.access_token
    read = httpx.get(url, auth=_auth(tokens, client.dpop))
    assert read.status_code == 200
    search = httpx.post(f"{url}/_search", auth=_auth(tokens, client.dpop), data={"_count": "1"})
    assert search.status_code == 200, search.text
    write = httpx.post(
        url,
        json={"resourceType": "Observation"},
        headers={"Authorization": f"DPoP {token}",
                 "DPoP": client.dpop.proof("POST", url, access_token=token)},
    )  # fmt: skip
    assert write.status_code == 403
    assert 'error="insufficient_scope"' in _challenge(write)
    assert 'scope="samhandling:fhir/write"' in _challenge(write)
    assert write.json()["issue"][0]["code"] == "forbidden"


def _auth(tokens: Tokens, key: DpopKey):  # type: ignore[no-untyped-def]
    from samhandling.services.trust.tokentool import DpopAuth

    return DpopAuth(tokens, key)


def test_wrong_audience_is_401(server: Server) -> None:
    """A token for no API (sign-in with identity scopes only) does not open the FHIR API."""
    config = register_client(
        server, "--scope", "samhandling:fhir/read", "--orgnr", "912159523",
        "--redirect-uri", REDIRECT_URI,
    )  # fmt: skip
    pid = person(server, "13097248022", "Testesen", "Tone")
    client = tool(server, config)
    tokens = client.sign_in(pid, scope="openid", redirect_uri=REDIRECT_URI)
    assert decode(tokens.access_token)["aud"] == server.url
    response = api_get(server, "/Observation", tokens.access_token, client.dpop)
    assert response.status_code == 401
    assert 'error="invalid_token"' in _challenge(response)
    assert "samhandling:fhir" in response.json()["issue"][0]["diagnostics"]
