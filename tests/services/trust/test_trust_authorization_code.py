"""Sign-in (PAR + PKCE + authorization code), refresh-token rotation, token exchange, and
the organisation a token speaks for (child organisations, multi-tenant delegations)."""

from __future__ import annotations

import os
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from trust_helpers import (
    FHIR_SCOPES,
    REDIRECT_URI,
    USER_SCOPES,
    clinical_search,
    decode,
    header_of,
    person,
    system_client,
    tool,
)

from conftest import Server, register_client, samhandling_cli
from samhandling.platform.auth import jose
from samhandling.services.trust.tokentool import DpopKey, TokenClient, TokenRequestError

DOCTOR_PID = "13097248022"
DOCTOR_HPR = "9144889"


@pytest.fixture(scope="module")
def people(server: Server) -> dict[str, str]:
    from samhandling.platform.identifiers import is_valid_fodselsnummer

    patient_pid = next(
        f"0101701{n:04d}" for n in range(10000) if is_valid_fodselsnummer(f"0101701{n:04d}")
    )
    person(server, DOCTOR_PID, "Lege", "Line", hpr=DOCTOR_HPR)
    person(server, patient_pid, "Pasient", "Per")
    return {"doctor": DOCTOR_PID, "patient": patient_pid}


@pytest.fixture(scope="module")
def login_client(server: Server) -> dict:
    return register_client(
        server, "--scope", "samhandling:fhir/read", "--scope", "samhandling:fhir/write",
        "--orgnr", "912159523", "--child-orgnr", "922734046", "--redirect-uri", REDIRECT_URI,
    )  # fmt: skip


def _pkce() -> tuple[str, str]:
    verifier = jose.b64url(os.urandom(32))
    return verifier, jose.sha256_b64url(verifier)


def _par_params(challenge: str, **extra: str) -> dict[str, str]:
    return {
        "response_type": "code",
        "redirect_uri": REDIRECT_URI,
        "scope": f"{USER_SCOPES} {FHIR_SCOPES}",
        "code_challenge": challenge,
        "code_challenge_method": "S256",
        "state": "st-123",
        "nonce": "n-456",
        **extra,
    }


def _sign_in(server: Server, client: TokenClient, pid: str, request_uri: str) -> httpx.Response:
    query = {"client_id": client.client_id, "request_uri": request_uri}
    page = httpx.get(f"{server.url}/connect/authorize", params=query)
    assert page.status_code == 200, page.text
    assert "Logg inn" in page.text
    form = {**query, "pid": pid, "security_level": "4", "action": "login"}
    return httpx.post(f"{server.url}/connect/authorize", data=form)


def _code(server: Server, client: TokenClient, pid: str, challenge: str) -> str:
    done = _sign_in(server, client, pid, client.push(_par_params(challenge)))
    assert done.status_code == 303, done.text
    answer = parse_qs(urlsplit(done.headers["location"]).query)
    assert done.headers["location"].startswith(REDIRECT_URI + "?")
    assert answer["state"] == ["st-123"]
    assert answer["iss"] == [server.url]
    return answer["code"][0]


def _redeem(client: TokenClient, code: str, verifier: str, **extra: str):  # type: ignore[no-untyped-def]
    return client.token(
        {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT_URI,
         "code_verifier": verifier, **extra}
    )  # fmt: skip


def test_sign_in_as_health_personnel(
    server: Server, people: dict[str, str], login_client: dict
) -> None:
    client = tool(server, login_client)
    verifier, challenge = _pkce()
    tokens = _redeem(client, _code(server, client, people["doctor"], challenge), verifier)
    claims = decode(tokens.access_token)
    assert claims["helseid://claims/identity/pid"] == DOCTOR_PID
    assert claims["helseid://claims/identity/security_level"] == "4"
    assert claims["helseid://claims/identity/assurance_level"] == "high"
    assert claims["helseid://claims/hpr/hpr_number"] == DOCTOR_HPR
    assert claims["helseid://claims/client/claims/orgnr_parent"] == "912159523"
    assert claims["samhandling://claims/principal"] == "personnel"
    assert claims["cnf"]["jkt"] == client.dpop.jkt
    assert claims["sub"] != DOCTOR_PID  # a pseudonym, as in HelseID
    id_token = tokens.raw["id_token"]
    assert header_of(id_token)["typ"] == "JWT"
    id_claims = decode(id_token)
    assert id_claims["aud"] == login_client["client_id"]
    assert id_claims["nonce"] == "n-456"
    assert id_claims["helseid://claims/identity/pid"] == DOCTOR_PID
    assert tokens.refresh_token and tokens.raw["rt_expires_in"] > 0
    assert clinical_search(server, tokens.access_token, client.dpop).status_code == 200


def test_people_without_hpr_get_no_hpr_claim(
    server: Server, people: dict[str, str], login_client: dict
) -> None:
    client = tool(server, login_client)
    tokens = client.sign_in(people["patient"], scope=USER_SCOPES, redirect_uri=REDIRECT_URI,
                            security_level=3)  # fmt: skip
    claims = decode(tokens.access_token)
    assert "helseid://claims/hpr/hpr_number" not in claims
    assert claims["helseid://claims/identity/security_level"] == "3"
    assert claims["helseid://claims/identity/assurance_level"] == "substantial"


def test_citizen_sign_in(server: Server, people: dict[str, str]) -> None:
    config = register_client(
        server, "--citizen", "--scope", "samhandling:fhir/read", "--redirect-uri", REDIRECT_URI
    )
    client = tool(server, config)
    tokens = client.sign_in(people["doctor"], scope=USER_SCOPES, redirect_uri=REDIRECT_URI)
    claims = decode(tokens.access_token)
    assert claims["samhandling://claims/principal"] == "citizen"
    assert claims["helseid://claims/identity/pid"] == DOCTOR_PID
    assert "helseid://claims/hpr/hpr_number" not in claims  # a citizen, even if a doctor
    assert claims["helseid://claims/client/claims/client_tenancy"] == "none"


def test_unknown_person_cannot_sign_in(server: Server, login_client: dict) -> None:
    client = tool(server, login_client)
    _, challenge = _pkce()
    done = _sign_in(server, client, "01010112345", client.push(_par_params(challenge)))
    assert done.status_code == 400
    assert "Fant ingen person" in done.text


def test_cancel_redirects_with_access_denied(server: Server, login_client: dict) -> None:
    client = tool(server, login_client)
    _, challenge = _pkce()
    request_uri = client.push(_par_params(challenge))
    form = {"client_id": client.client_id, "request_uri": request_uri, "action": "cancel"}
    done = httpx.post(f"{server.url}/connect/authorize", data=form)
    assert done.status_code == 303
    answer = parse_qs(urlsplit(done.headers["location"]).query)
    assert answer["error"] == ["access_denied"] and answer["state"] == ["st-123"]


def test_authorize_only_with_par(server: Server, login_client: dict) -> None:
    _, challenge = _pkce()
    plain = {"client_id": login_client["client_id"], **_par_params(challenge)}
    page = httpx.get(f"{server.url}/connect/authorize", params=plain)
    assert page.status_code == 400
    assert "invalid_request" in page.text
    unknown = {"client_id": login_client["client_id"],
               "request_uri": "urn:ietf:params:oauth:request_uri:nope"}  # fmt: skip
    assert httpx.get(f"{server.url}/connect/authorize", params=unknown).status_code == 400
    client = tool(server, login_client)
    request_uri = client.push(_par_params(challenge))
    other = {"client_id": "sh-other", "request_uri": request_uri}
    assert httpx.get(f"{server.url}/connect/authorize", params=other).status_code == 400


def test_request_uri_is_single_use(
    server: Server, people: dict[str, str], login_client: dict
) -> None:
    client = tool(server, login_client)
    _, challenge = _pkce()
    request_uri = client.push(_par_params(challenge))
    assert _sign_in(server, client, people["doctor"], request_uri).status_code == 303
    query = {"client_id": client.client_id, "request_uri": request_uri}
    assert httpx.get(f"{server.url}/connect/authorize", params=query).status_code == 400


@pytest.mark.parametrize(
    ("change", "error"),
    [
        ({"code_challenge_method": "plain"}, "invalid_request"),
        ({"code_challenge": "short"}, "invalid_request"),
        ({"redirect_uri": "http://evil.example/callback"}, "invalid_request"),
        ({"response_type": "token"}, "unsupported_response_type"),
        ({"scope": FHIR_SCOPES}, "invalid_scope"),  # no openid
        ({"scope": "openid nhn:kjernejournal/api"}, "invalid_scope"),
        ({"request_uri": "urn:x"}, "invalid_request"),
        ({"resource": "samhandling:nothing"}, "invalid_target"),
    ],
)
def test_bad_pushed_requests(
    server: Server, login_client: dict, change: dict[str, str], error: str
) -> None:
    _, challenge = _pkce()
    params = _par_params(challenge, **change)
    with pytest.raises(TokenRequestError) as refused:
        tool(server, login_client).push(params)
    assert refused.value.error == error


def test_par_without_pkce(server: Server, login_client: dict) -> None:
    _, challenge = _pkce()
    params = _par_params(challenge)
    del params["code_challenge"], params["code_challenge_method"]
    with pytest.raises(TokenRequestError) as refused:
        tool(server, login_client).push(params)
    assert refused.value.error == "invalid_request"


def test_client_without_authorization_code_cannot_push(server: Server) -> None:
    _, challenge = _pkce()
    with pytest.raises(TokenRequestError) as refused:
        tool(server, system_client(server)).push(_par_params(challenge))
    assert refused.value.error == "unauthorized_client"


def test_pkce_verifier_mismatch(server: Server, people: dict[str, str], login_client: dict) -> None:
    client = tool(server, login_client)
    _, challenge = _pkce()
    code = _code(server, client, people["doctor"], challenge)
    other_verifier, _ = _pkce()
    with pytest.raises(TokenRequestError) as refused:
        _redeem(client, code, other_verifier)
    assert refused.value.error == "invalid_grant"


def test_code_is_single_use_and_bound(
    server: Server, people: dict[str, str], login_client: dict
) -> None:
    client = tool(server, login_client)
    verifier, challenge = _pkce()
    code = _code(server, client, people["doctor"], challenge)
    with pytest.raises(TokenRequestError) as wrong_redirect:
        _redeem(client, code, verifier, redirect_uri="http://127.0.0.1:9/other")
    assert wrong_redirect.value.error == "invalid_grant"
    # the failed attempt spent the code: a code is good for one request, as in RFC 6749
    with pytest.raises(TokenRequestError) as reused:
        _redeem(client, code, verifier)
    assert reused.value.error == "invalid_grant"
    fresh_verifier, fresh_challenge = _pkce()
    fresh = _code(server, client, people["doctor"], fresh_challenge)
    assert _redeem(client, fresh, fresh_verifier).access_token
    with pytest.raises(TokenRequestError) as again:
        _redeem(client, fresh, fresh_verifier)
    assert again.value.error == "invalid_grant"


def test_code_of_another_client(server: Server, people: dict[str, str], login_client: dict) -> None:
    client = tool(server, login_client)
    verifier, challenge = _pkce()
    code = _code(server, client, people["doctor"], challenge)
    thief_config = register_client(
        server, "--scope", "samhandling:fhir/read", "--orgnr", "912159523",
        "--redirect-uri", REDIRECT_URI,
    )  # fmt: skip
    thief = tool(server, thief_config)
    with pytest.raises(TokenRequestError) as refused:
        _redeem(thief, code, verifier)
    assert refused.value.error == "invalid_grant"


def test_refresh_rotation_and_reuse_detection(
    server: Server, people: dict[str, str], login_client: dict
) -> None:
    client = tool(server, login_client)
    first = client.sign_in(people["doctor"], scope=f"{USER_SCOPES} {FHIR_SCOPES}",
                           redirect_uri=REDIRECT_URI)  # fmt: skip
    second = client.refresh(first.refresh_token)
    assert second.refresh_token != first.refresh_token
    assert second.raw["rt_expires_in"] <= first.raw["rt_expires_in"]
    claims = decode(second.access_token)
    assert claims["helseid://claims/hpr/hpr_number"] == DOCTOR_HPR
    narrower = client.refresh(
        second.refresh_token,
    )
    assert narrower.access_token
    # the spent token comes back: the whole family is revoked
    with pytest.raises(TokenRequestError) as reuse:
        client.refresh(first.refresh_token)
    assert reuse.value.error == "invalid_grant"
    with pytest.raises(TokenRequestError) as revoked:
        client.refresh(narrower.refresh_token)
    assert revoked.value.error == "invalid_grant"


def test_refresh_with_narrower_scope_and_another_key(
    server: Server, people: dict[str, str], login_client: dict
) -> None:
    client = tool(server, login_client)
    first = client.sign_in(people["doctor"], scope=f"{USER_SCOPES} {FHIR_SCOPES}",
                           redirect_uri=REDIRECT_URI)  # fmt: skip
    narrow = client.token({"grant_type": "refresh_token", "refresh_token": first.refresh_token,
                           "scope": "samhandling:fhir/read"})  # fmt: skip
    assert decode(narrow.access_token)["scope"] == "samhandling:fhir/read"
    with pytest.raises(TokenRequestError) as wider:
        client.token({"grant_type": "refresh_token", "refresh_token": narrow.refresh_token,
                      "scope": "samhandling:fhir/write nhn:other"})  # fmt: skip
    assert wider.value.error == "invalid_scope"
    stolen = tool(server, login_client, key=DpopKey())
    third = client.sign_in(people["doctor"], scope=f"{USER_SCOPES} {FHIR_SCOPES}",
                           redirect_uri=REDIRECT_URI)  # fmt: skip
    with pytest.raises(TokenRequestError) as other_key:
        stolen.refresh(third.refresh_token)
    assert other_key.value.error == "invalid_grant"


def test_child_organisation(server: Server, people: dict[str, str], login_client: dict) -> None:
    details = {"type": "helseid_authorization", "practitioner_role": {"organization": {
        "identifier": {"system": "urn:oid:2.16.578.1.12.4.1.2.101", "type": "ENH",
                       "value": "922734046"}}}}  # fmt: skip
    client = tool(server, login_client)
    system = client.client_credentials(FHIR_SCOPES, authorization_details=details)
    claims = decode(system.access_token)
    assert claims["helseid://claims/client/claims/orgnr_parent"] == "912159523"
    assert claims["helseid://claims/client/claims/orgnr_child"] == "922734046"
    user = client.sign_in(people["doctor"], scope=USER_SCOPES, redirect_uri=REDIRECT_URI,
                          authorization_details=details)  # fmt: skip
    assert decode(user.access_token)["helseid://claims/client/claims/orgnr_child"] == "922734046"
    unregistered = {**details}
    unregistered["practitioner_role"] = {"organization": {"identifier": {
        "system": "urn:oid:2.16.578.1.12.4.1.2.101", "value": "994598759"}}}  # fmt: skip
    with pytest.raises(TokenRequestError) as refused:
        client.client_credentials(FHIR_SCOPES, authorization_details=unregistered)
    assert refused.value.error == "invalid_authorization_details"
    # on refresh the child organisation can change (HelseID's recommended way)
    refreshed = client.refresh(user.refresh_token)
    assert "helseid://claims/client/claims/orgnr_child" in decode(refreshed.access_token)


def test_multi_tenant_needs_a_delegation(server: Server) -> None:
    supplier = register_client(
        server, "--scope", "samhandling:fhir/read", "--orgnr", "994598759", "--multi-tenant"
    )
    client = tool(server, supplier)
    details = [{"type": "helseid_authorization", "practitioner_role": {"organization": {
        "identifier": {"system": "urn:oid:1.0.6523", "type": "ENH",
                       "value": "NO:ORGNR:983974724:974633752"}}}},
        {"type": "nhn:sfm:journal-id", "value": {"journal_id": "abc"}}]  # fmt: skip
    own = decode(client.client_credentials().access_token)
    assert own["helseid://claims/client/claims/client_tenancy"] == "multi-tenant"
    assert own["helseid://claims/client/claims/orgnr_supplier"] == "994598759"
    assert "helseid://claims/client/claims/orgnr_parent" not in own
    with pytest.raises(TokenRequestError) as refused:
        client.client_credentials(authorization_details=details)
    assert refused.value.error == "invalid_authorization_details"
    samhandling_cli(server, "client", "delegate", "--parent-orgnr", "983974724",
                    "--supplier-orgnr", "994598759")  # fmt: skip
    claims = decode(client.client_credentials(authorization_details=details).access_token)
    assert claims["helseid://claims/client/claims/orgnr_parent"] == "983974724"
    assert claims["helseid://claims/client/claims/orgnr_child"] == "974633752"
    assert claims["helseid://claims/client/claims/orgnr_supplier"] == "994598759"
    bad_parent = [{**details[0], "practitioner_role": {"organization": {"identifier": {
        "system": "urn:oid:1.0.6523", "value": "NO:ORGNR:123:"}}}}]  # fmt: skip
    with pytest.raises(TokenRequestError) as malformed:
        client.client_credentials(authorization_details=bad_parent)
    assert malformed.value.error == "invalid_authorization_details"
    samhandling_cli(server, "client", "delegate", "--parent-orgnr", "983974724",
                    "--supplier-orgnr", "994598759", "--remove")  # fmt: skip
    with pytest.raises(TokenRequestError):
        client.client_credentials(authorization_details=details)


def test_token_exchange(server: Server, people: dict[str, str], login_client: dict) -> None:
    user_client = tool(server, login_client)
    user = user_client.sign_in(people["doctor"], scope=f"{USER_SCOPES} {FHIR_SCOPES}",
                               redirect_uri=REDIRECT_URI)  # fmt: skip
    actor_config = register_client(
        server, "--scope", "samhandling:fhir/read", "--orgnr", "994598759",
        "--grant", "urn:ietf:params:oauth:grant-type:token-exchange",
        "--exchange-audience", "samhandling:fhir",
    )  # fmt: skip
    actor = tool(server, actor_config)
    exchanged = actor.exchange(user.access_token, "samhandling:fhir/read")
    claims = decode(exchanged.access_token)
    assert claims["helseid://claims/identity/pid"] == DOCTOR_PID
    assert claims["helseid://claims/hpr/hpr_number"] == DOCTOR_HPR
    assert claims["act"] == {"client_id": actor_config["client_id"]}
    assert claims["client_id"] == actor_config["client_id"]
    assert claims["cnf"]["jkt"] == actor.dpop.jkt
    assert claims["helseid://claims/client/claims/orgnr_parent"] == "912159523"
    assert clinical_search(server, exchanged.access_token, actor.dpop).status_code == 200
    with pytest.raises(TokenRequestError) as not_allowed:
        actor.exchange(user.access_token, "samhandling:fhir/write")
    assert not_allowed.value.error == "invalid_scope"
    with pytest.raises(TokenRequestError) as garbage:
        actor.exchange("not-a-token", "samhandling:fhir/read")
    assert garbage.value.error == "invalid_grant"
    stranger = tool(server, register_client(
        server, "--scope", "samhandling:fhir/read", "--orgnr", "994598759",
        "--grant", "urn:ietf:params:oauth:grant-type:token-exchange",
    ))  # fmt: skip
    with pytest.raises(TokenRequestError) as foreign:
        stranger.exchange(user.access_token, "samhandling:fhir/read")
    assert foreign.value.error == "invalid_grant"
    with pytest.raises(TokenRequestError) as not_granted:
        user_client.exchange(user.access_token, "samhandling:fhir/read")
    assert not_granted.value.error == "unauthorized_client"
