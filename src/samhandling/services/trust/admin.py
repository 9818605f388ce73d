"""Administration of the trust service from the command line, on the server's own database."""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import orjson

from samhandling.platform.auth import claims as c
from samhandling.services.trust import Trust, build
from samhandling.services.trust.clients import (
    AUTHORIZATION_CODE,
    CLIENT_CREDENTIALS,
    LOGIN_CITIZEN,
    LOGIN_PERSONNEL,
    REFRESH_TOKEN,
    TOKEN_EXCHANGE,
    Client,
)
from samhandling.settings import Settings

CLI_CLIENTS_FILE = "cli-clients.json"
CLI_REDIRECT_URI = "http://localhost/samhandling-cli/callback"
CLI_DEFAULT_ORGNR = "991000003"  # a synthetic organisation number (valid check digit)
USER_SCOPES = (
    "openid profile offline_access helseid://scopes/identity/pid "
    "helseid://scopes/identity/security_level helseid://scopes/identity/assurance_level "
    "helseid://scopes/hpr/hpr_number"
)


@contextlib.asynccontextmanager
async def opened(settings: Settings) -> AsyncIterator[Trust]:
    """The trust service over the configured database, for one command."""
    from samhandling.app import start_runtime
    from samhandling.platform.fhir.storage import open_store

    store = await open_store(settings.effective_database_url)
    runtime = await start_runtime(settings, store)
    try:
        yield build(runtime)
    finally:
        runtime.replay.close()
        await store.close()


def client_configuration(trust: Trust, client: Client, private_jwk: dict[str, Any]) -> dict:
    """What a vendor needs to configure their system (``--json`` output of client create)."""
    endpoints = trust.server.settings
    return {
        "client_id": client.client_id,
        "client_name": client.name,
        "issuer": endpoints.issuer,
        "authority": endpoints.issuer,
        "token_endpoint": endpoints.token_endpoint,
        "par_endpoint": endpoints.par_endpoint,
        "authorization_endpoint": endpoints.authorization_endpoint,
        "scope": " ".join(client.scopes),
        "grant_types": client.grant_types,
        "redirect_uris": client.redirect_uris,
        "orgnr": client.orgnr,
        "tenancy": client.tenancy,
        "dpop_required": not client.allow_bearer,
        "jwk": private_jwk,
    }


def client_summary(client: Client) -> dict[str, Any]:
    """A client without its keys, for listings."""
    return {
        "client_id": client.client_id,
        "name": client.name,
        "enabled": client.enabled,
        "orgnr": client.orgnr,
        "tenancy": client.tenancy,
        "login": client.login,
        "grant_types": client.grant_types,
        "scopes": client.scopes,
        "key_ids": [k.get("kid") for k in client.jwks],
    }


async def cli_client(trust: Trust, settings: Settings, citizen: bool, orgnr: str | None) -> dict:
    """The CLI's own client for this database (made on first use; the private key is kept in
    the data directory, readable by its owner only)."""
    path = settings.data_dir / CLI_CLIENTS_FILE
    saved: dict[str, Any] = orjson.loads(path.read_bytes()) if path.exists() else {}
    kind = "citizen" if citizen else f"personnel:{orgnr or CLI_DEFAULT_ORGNR}"
    entry = saved.get(kind)
    api_scopes = sorted({s for r in trust.server.resources.values() for s in r.scopes})
    if entry:
        client = await trust.clients.get(entry["client_id"])
        # a client made before a service added its API is made anew
        if client is not None and client.enabled and set(api_scopes) <= set(client.scopes):
            return entry
    client, jwk = await trust.clients.create(
        name="samhandling CLI (innbygger)" if citizen else "samhandling CLI",
        scopes=[*api_scopes, *USER_SCOPES.split()],
        known_scopes=set(api_scopes) | c.IDENTITY_SCOPES,
        grant_types=[CLIENT_CREDENTIALS, AUTHORIZATION_CODE, REFRESH_TOKEN, TOKEN_EXCHANGE],
        redirect_uris=[CLI_REDIRECT_URI],
        orgnr=None if citizen else orgnr or CLI_DEFAULT_ORGNR,
        login=LOGIN_CITIZEN if citizen else LOGIN_PERSONNEL,
    )
    entry = client_configuration(trust, client, jwk)
    saved[kind] = entry
    _write_private(path, orjson.dumps(saved, option=orjson.OPT_INDENT_2))
    return entry


def _write_private(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as file:
        file.write(data)
