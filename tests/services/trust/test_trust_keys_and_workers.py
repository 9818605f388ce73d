"""Signing-key rotation, token expiry, replay caches across worker processes, and the
``samhandling token`` / ``client`` commands."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from trust_helpers import (
    api_get,
    assertion,
    decode,
    header_of,
    nonce,
    system_client,
    token_request,
    tool,
)

from conftest import Server, database_url_for, samhandling_cli, start_server, stop_server
from samhandling.services.trust.tokentool import DpopKey


@pytest.fixture(scope="module")
def short_lived(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, server: Server
) -> Iterator[Server]:
    """A server (on the session server's backend) whose access tokens live 2 s."""
    data_dir = tmp_path_factory.mktemp(f"short-{server.backend}")
    url = database_url_for(server.backend, request, data_dir)
    if server.backend == "postgresql":  # a second server on the session database
        url = server.database_url
    running = start_server(url, data_dir, server.backend,
                           env={"SAMHANDLING_ACCESS_TOKEN_LIFETIME": "2"})  # fmt: skip
    yield running
    stop_server(running)


def test_expired_token_is_refused(short_lived: Server) -> None:
    client = tool(short_lived, system_client(short_lived))
    tokens = client.client_credentials()
    assert api_get(short_lived, "/Observation", tokens.access_token, client.dpop).status_code == 200
    time.sleep(2 + 5 + 1)  # lifetime plus the 5 s clock-skew allowance
    late = api_get(short_lived, "/Observation", tokens.access_token, client.dpop)
    assert late.status_code == 401
    assert "expired" in late.json()["issue"][0]["diagnostics"]


def test_key_rotation_keeps_old_tokens_valid(server: Server) -> None:
    client = tool(server, system_client(server))
    before = client.client_credentials()
    old_kid = header_of(before.access_token)["kid"]
    out = samhandling_cli(server, "keys", "rotate")
    new_kid = out.split()[-1]
    assert new_kid != old_kid
    deadline = time.monotonic() + 10
    while True:  # every worker notices the new key within a few seconds
        after = client.client_credentials()
        if header_of(after.access_token)["kid"] == new_kid or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert header_of(after.access_token)["kid"] == new_kid
    jwks = httpx.get(f"{server.url}/.well-known/openid-configuration/jwks").json()
    assert {old_kid, new_kid} <= {k["kid"] for k in jwks["keys"]}
    assert all("d" not in k for k in jwks["keys"])  # public keys only
    assert api_get(server, "/Observation", before.access_token, client.dpop).status_code == 200
    assert api_get(server, "/Observation", after.access_token, client.dpop).status_code == 200
    listing = samhandling_cli(server, "keys", "list")
    assert new_kid in listing and "current" in listing and "retires at" in listing


def test_another_secret_cannot_use_the_keys(server: Server, tmp_path: Path) -> None:
    """A worker started with another platform secret stops with a clear message."""
    if server.backend != "postgresql":
        pytest.skip("needs a database shared by two data directories")
    other = {"SAMHANDLING_SECRET_KEY": "b3RoZXItc2VjcmV0LW90aGVyLXNlY3JldC0zMi1ieXRlcw"}
    with pytest.raises(RuntimeError, match="cannot decrypt signing key"):
        start_server(server.database_url, tmp_path, server.backend, env=other)


def test_private_keys_are_encrypted_at_rest(server: Server) -> None:
    if server.backend != "sqlite":
        pytest.skip("reads the SQLite file directly")
    import sqlite3

    path = server.database_url.removeprefix("sqlite:///")
    with sqlite3.connect(path) as conn:
        rows = conn.execute("SELECT public_jwk, private_jwk FROM trust_signing_key").fetchall()
    assert rows
    for public, sealed in rows:
        assert b'"d"' not in bytes(sealed) and b"kty" not in bytes(sealed)
        assert '"d"' not in public


@pytest.fixture(scope="module")
def two_workers(tmp_path_factory: pytest.TempPathFactory, server: Server) -> Iterator[Server]:
    """A server with two worker processes on the session server's database."""
    data_dir = server.data_dir  # the same secret and SQLite file
    running = start_server(server.database_url, data_dir, server.backend, "--workers", "2")
    yield running
    stop_server(running)


def test_replay_caches_hold_across_workers(two_workers: Server) -> None:
    """Each proof and assertion is accepted once, whichever worker sees it again: 30 replays
    on new connections (spread over both workers by the kernel) are all refused."""
    client = tool(two_workers, system_client(two_workers))
    tokens = client.client_credentials()
    url = f"{two_workers.fhir}/Observation"
    for _ in range(30):
        proof = client.dpop.proof("GET", url, access_token=tokens.access_token)
        headers = {"Authorization": f"DPoP {tokens.access_token}", "DPoP": proof}
        with httpx.Client() as first:
            assert first.get(url, headers=headers).status_code == 200
        with httpx.Client() as second:
            replay = second.get(url, headers=headers)
        assert replay.status_code == 401, replay.text
    config = system_client(two_workers)
    for _ in range(10):
        once = assertion(config, two_workers.url)
        assert token_request(two_workers, config, client_assertion=once).status_code == 200
        again = token_request(two_workers, config, client_assertion=once)
        assert again.status_code == 401
        assert again.json()["error"] == "invalid_client"


@pytest.fixture(scope="module")
def twin(server: Server) -> Iterator[Server]:
    """A second server process on the session server's database and public address."""
    running = start_server(server.database_url, server.data_dir, server.backend,
                           env={"SAMHANDLING_PUBLIC_URL": server.url})  # fmt: skip
    yield running
    stop_server(running)


def test_replays_are_refused_by_another_process(server: Server, twin: Server) -> None:
    """Deterministic: what one process accepted, the other refuses (same public address,
    so the twin accepts the proof's htu and the assertion's aud)."""
    client = tool(server, system_client(server))
    tokens = client.client_credentials()
    proof = client.dpop.proof("GET", f"{server.fhir}/Observation", access_token=tokens.access_token)
    headers = {"Authorization": f"DPoP {tokens.access_token}", "DPoP": proof}
    assert httpx.get(f"{server.fhir}/Observation", headers=headers).status_code == 200
    assert httpx.get(f"{twin.fhir}/Observation", headers=headers).status_code == 401
    fresh = client.dpop.proof("GET", f"{server.fhir}/Observation", access_token=tokens.access_token)
    headers["DPoP"] = fresh
    assert httpx.get(f"{twin.fhir}/Observation", headers=headers).status_code == 200
    config = system_client(server)
    once = assertion(config, server.url)
    assert token_request(server, config, client_assertion=once).status_code == 200
    url = f"{twin.url}/connect/token"
    replay = httpx.post(url, data={
        "grant_type": "client_credentials", "client_id": config["client_id"],
        "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
        "client_assertion": once,
    }, headers={"DPoP": DpopKey().proof("POST", f"{server.url}/connect/token",
                                        nonce=nonce(server))})  # fmt: skip
    assert replay.status_code == 401, replay.text
    assert replay.json()["error_description"] == "client_assertion jti was used before"


def test_nonce_from_one_worker_works_at_the_other(two_workers: Server) -> None:
    config = system_client(two_workers)
    for _ in range(10):
        fresh = nonce(two_workers)
        proof = DpopKey().proof("POST", f"{two_workers.url}/connect/token", nonce=fresh)
        response = token_request(two_workers, config, proof=proof)
        assert response.status_code == 200, response.text


def test_token_command(server: Server) -> None:
    out = samhandling_cli(server, "token", "--json")
    issued = json.loads(out)
    assert issued["token_type"] == "DPoP"
    assert decode(issued["access_token"])["cnf"]["jkt"]
    from samhandling.services.trust.tokentool import DpopKey as Key

    key = Key(issued["dpop_jwk"])
    assert api_get(server, "/Observation", issued["access_token"], key).status_code == 200
    # the plain output is a curl line that works once
    line = samhandling_cli(server, "token", "--url", f"{server.fhir}/Observation?_count=1")
    assert line.startswith("curl -s '")
    curl = subprocess.run(["bash", "-c", line.strip()], capture_output=True, text=True)
    assert json.loads(curl.stdout)["resourceType"] == "Bundle"


def test_token_command_for_a_person(server: Server) -> None:
    from trust_helpers import person

    pid = person(server, "13097248022", "Lege", "Line", hpr="9144889")
    issued = json.loads(samhandling_cli(server, "token", "--json", "--person", pid))
    claims = decode(issued["access_token"])
    assert claims["helseid://claims/hpr/hpr_number"] == "9144889"
    assert claims["helseid://claims/identity/security_level"] == "4"
    assert issued["refresh_token"] and issued["id_token"]
    citizen = json.loads(samhandling_cli(server, "token", "--json", "--person", pid,
                                         "--citizen", "--security-level", "3"))  # fmt: skip
    claims = decode(citizen["access_token"])
    assert claims["samhandling://claims/principal"] == "citizen"
    assert claims["helseid://claims/identity/security_level"] == "3"
    unknown = subprocess.run(
        [sys.executable, "-m", "samhandling", "token", "--person", "01010112345",
         "--data-dir", str(server.data_dir), "--database-url", server.database_url],
        capture_output=True, text=True, env={**__import__("os").environ,
                                             "SAMHANDLING_PUBLIC_URL": server.url},
    )  # fmt: skip
    assert unknown.returncode == 1
    assert "Fant ingen person" in unknown.stderr


def test_client_commands(server: Server, tmp_path: Path) -> None:
    created = json.loads(samhandling_cli(
        server, "client", "create", "--name", "EPJ Leverandør AS", "--scope",
        "samhandling:fhir/read", "--orgnr", "912159523", "--json",
    ))  # fmt: skip
    assert {"client_id", "jwk", "issuer", "scope"} <= created.keys()
    assert created["issuer"] == server.url
    assert "d" in created["jwk"]
    listing = json.loads(samhandling_cli(server, "client", "list", "--json"))
    assert created["client_id"] in {c["client_id"] for c in listing}
    assert all("jwk" not in c and "jwks" not in c for c in listing)
    config_file = tmp_path / "client.json"
    config_file.write_text(json.dumps(created))
    issued = json.loads(samhandling_cli(server, "token", "--json", "--scope",
                                        "samhandling:fhir/read", "--client-config",
                                        str(config_file)))  # fmt: skip
    assert decode(issued["access_token"])["client_id"] == created["client_id"]
    bad = subprocess.run(
        [sys.executable, "-m", "samhandling", "client", "create", "--name", "x", "--scope",
         "samhandling:fhir/read", "--orgnr", "123456789", "--data-dir", str(server.data_dir),
         "--database-url", server.database_url],
        capture_output=True, text=True,
    )  # fmt: skip
    assert bad.returncode == 2
    assert "organisation number" in bad.stderr
