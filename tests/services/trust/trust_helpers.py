"""Helpers for the trust-service tests (imported as ``trust_helpers``): raw assertions and
proofs with any claim or header changed, and raw token requests."""

from __future__ import annotations

import base64
import json
import os
import time
from typing import Any

import httpx

from conftest import Server, register_client
from samhandling.platform.auth import jose
from samhandling.services.trust.tokentool import DpopKey, TokenClient

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
FHIR_SCOPES = "samhandling:fhir/read samhandling:fhir/write"
# an HPR approval in force: a doctor (Volven 9060 LE) with an authorisation (7704 "1")
AUTHORISED_DOCTOR = {
    "code": {
        "coding": [
            {"system": "urn:oid:2.16.578.1.12.4.1.1.9060", "code": "LE"},
            {"system": "urn:oid:2.16.578.1.12.4.1.1.7704", "code": "1"},
        ]
    },
    "period": {"start": "2001-01-01"},
}
REDIRECT_URI = "http://127.0.0.1:9/callback"
USER_SCOPES = (
    "openid profile offline_access helseid://scopes/identity/pid "
    "helseid://scopes/identity/security_level helseid://scopes/hpr/hpr_number"
)


def b64(data: dict) -> str:
    """base64url of compact JSON."""
    return jose.b64url(json.dumps(data, separators=(",", ":")).encode())


def decode(token: str) -> dict[str, Any]:
    """A JWT's payload, unverified."""
    return json.loads(base64.urlsafe_b64decode(token.split(".")[1] + "=="))


def header_of(token: str) -> dict[str, Any]:
    """A JWT's header, unverified."""
    return json.loads(base64.urlsafe_b64decode(token.split(".")[0] + "=="))


def assertion(
    config: dict, aud: str, *, header: dict | None = None, drop: tuple[str, ...] = (), **claims: Any
) -> str:
    """A client assertion for ``config`` with claims or header members overridden."""
    now = int(time.time())
    payload = {
        "iss": config["client_id"],
        "sub": config["client_id"],
        "aud": aud,
        "iat": now,
        "nbf": now,
        "exp": now + 30,
        "jti": jose.b64url(os.urandom(16)),
        **claims,
    }
    for name in drop:
        payload.pop(name, None)
    jwk = config["jwk"]
    head = {"alg": jwk["alg"], "kid": jwk["kid"], "typ": "client-authentication+jwt"}
    head.update(header or {})
    return jose.sign(head, payload, jose.private_key(jwk))


def unsigned(header: dict, payload: dict, signature: bytes = b"") -> str:
    """A JWT with any header (e.g. alg none) and the given signature bytes."""
    return f"{b64(header)}.{b64(payload)}.{jose.b64url(signature)}"


def nonce(server: Server) -> str:
    """A current DPoP nonce (from a token request the server refuses for lacking one)."""
    key = DpopKey()
    response = httpx.post(
        f"{server.url}/connect/token",
        data={"grant_type": "client_credentials"},
        headers={"DPoP": key.proof("POST", f"{server.url}/connect/token")},
    )
    assert response.status_code == 400, response.text
    assert response.json()["error"] == "use_dpop_nonce"
    return response.headers["DPoP-Nonce"]


def token_request(
    server: Server,
    config: dict,
    form: dict[str, str] | None = None,
    *,
    client_assertion: str | None = None,
    proof: str | bool | None = True,
    key: DpopKey | None = None,
) -> httpx.Response:
    """A raw client_credentials (or ``form``) request; ``proof=True`` makes a valid proof."""
    url = f"{server.url}/connect/token"
    body = {
        "grant_type": "client_credentials",
        "client_id": config["client_id"],
        "client_assertion_type": ASSERTION_TYPE,
        "client_assertion": client_assertion or assertion(config, server.url),
        **(form or {}),
    }
    headers = {}
    if proof is True:
        headers["DPoP"] = (key or DpopKey()).proof("POST", url, nonce=nonce(server))
    elif proof:
        headers["DPoP"] = proof
    return httpx.post(url, data=body, headers=headers)


def tool(server: Server, config: dict, key: DpopKey | None = None) -> TokenClient:
    """A token client for a registered client."""
    return TokenClient(server.url, config["client_id"], config["jwk"], dpop=key)


def system_client(server: Server, *options: str) -> dict:
    """A client with FHIR read and write scopes (and any other ``client create`` options)."""
    return register_client(
        server, "--scope", "samhandling:fhir/read", "--scope", "samhandling:fhir/write",
        "--orgnr", "912159523", *options,
    )  # fmt: skip


def api_get(
    server: Server,
    path: str,
    token: str,
    key: DpopKey,
    *,
    scheme: str = "DPoP",
    headers: dict[str, str] | None = None,
    **proof: Any,
) -> httpx.Response:
    """GET on the FHIR API with a token and a proof (``proof`` overrides proof arguments)."""
    url = f"{server.fhir}{path}"
    arguments = {"method": "GET", "url": url, "access_token": token, **proof}
    headers = {**(headers or {}), "Authorization": f"{scheme} {token}"}
    made = key.proof(arguments.pop("method"), arguments.pop("url"), **arguments)
    if made:
        headers["DPoP"] = made
    return httpx.get(url, headers=headers)


def person(
    server: Server, pid: str, family: str, given: str, *, hpr: str | None = None, active=True
) -> str:
    """Store a person in the register: a Patient, or a Practitioner when ``hpr`` is given."""
    from samhandling.platform.identifiers import FNR_SYSTEM, HPR_SYSTEM

    identifiers = [{"system": FNR_SYSTEM, "value": pid}]
    kind = "Patient"
    body: dict[str, Any] = {}
    if hpr:
        identifiers.append({"system": HPR_SYSTEM, "value": hpr})
        kind = "Practitioner"
        body["qualification"] = [AUTHORISED_DOCTOR]
    body = {"resourceType": kind, "id": f"person-{pid}", "identifier": identifiers,
            "active": active, "name": [{"family": family, "given": [given]}], **body}  # fmt: skip
    response = httpx.put(f"{server.fhir}/{kind}/person-{pid}", json=body, auth=server.auth)
    assert response.status_code in (200, 201), response.text
    return pid


def clinical_search(server: Server, token: str, key: DpopKey) -> httpx.Response:
    """A health worker's search of one patient's information, with an access basis."""
    path = "/Observation?subject=Patient/nobody&_count=1"
    return api_get(server, path, token, key, headers={"nhn-access-basis": "UNNTAK"})
