"""The client registry: who may get tokens, with which keys, grants, scopes and organisations."""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from samhandling.platform.auth import claims as c
from samhandling.platform.auth import jose
from samhandling.platform.identifiers import is_valid_organisasjonsnummer
from samhandling.services.trust.store import TrustStore

CLIENT_CREDENTIALS = "client_credentials"
AUTHORIZATION_CODE = "authorization_code"
REFRESH_TOKEN = "refresh_token"
TOKEN_EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange"
GRANT_TYPES = (CLIENT_CREDENTIALS, AUTHORIZATION_CODE, REFRESH_TOKEN, TOKEN_EXCHANGE)
LOGIN_PERSONNEL = "personnel"
LOGIN_CITIZEN = "citizen"


class ClientError(ValueError):
    """A client configuration that cannot be registered."""


@dataclass(frozen=True, slots=True)
class Client:
    """A registered client's configuration (stored as JSON)."""

    client_id: str
    name: str
    jwks: list[dict[str, Any]]  # public keys for private_key_jwt
    grant_types: list[str]
    scopes: list[str]
    redirect_uris: list[str] = field(default_factory=list)
    tenancy: str = c.TENANCY_SINGLE
    orgnr: str | None = None  # single-tenant: the legal entity; multi-tenant: the supplier
    child_orgnrs: list[str] = field(default_factory=list)  # single-tenant sub-units allowed
    allow_bearer: bool = False  # tokens without DPoP binding
    login: str = LOGIN_PERSONNEL  # who signs in through this client: personnel or citizen
    exchange_audiences: list[str] = field(default_factory=list)  # token exchange subjects' aud
    enabled: bool = True

    def document(self) -> dict[str, Any]:
        """The stored form (everything but the enabled flag)."""
        doc = asdict(self)
        del doc["enabled"]
        return doc

    @classmethod
    def from_document(cls, document: dict[str, Any], enabled: bool) -> Client:
        """The client of a stored document."""
        known = {name for name in cls.__dataclass_fields__}
        return cls(**{k: v for k, v in document.items() if k in known}, enabled=enabled)


def new_client_id() -> str:
    """A fresh client id."""
    return "sh-" + jose.b64url(os.urandom(12))


def check_orgnr(value: str) -> str:
    """A nine-digit organisation number with a valid mod-11 check digit."""
    if not is_valid_organisasjonsnummer(value):
        raise ClientError(f"{value!r} is not a valid organisation number (nine digits, mod 11)")
    return value


class ClientRegistry:
    """Clients and delegations in the database."""

    def __init__(self, store: TrustStore) -> None:
        self._store = store

    async def get(self, client_id: str) -> Client | None:
        """A client by id (enabled or not)."""
        found = await self._store.client(client_id)
        return Client.from_document(*found) if found else None

    async def all(self) -> list[Client]:
        """Every client."""
        return [Client.from_document(doc, enabled) for doc, enabled in await self._store.clients()]

    async def create(
        self,
        *,
        name: str,
        scopes: list[str],
        known_scopes: set[str],
        grant_types: list[str] | None = None,
        redirect_uris: list[str] | None = None,
        tenancy: str = c.TENANCY_SINGLE,
        orgnr: str | None = None,
        child_orgnrs: list[str] | None = None,
        allow_bearer: bool = False,
        login: str = LOGIN_PERSONNEL,
        exchange_audiences: list[str] | None = None,
        alg: str = "ES256",
    ) -> tuple[Client, dict[str, Any]]:
        """Register a client with a fresh key pair; returns it and its private JWK."""
        unknown = sorted(set(scopes) - known_scopes)
        if unknown:
            raise ClientError(f"unknown scope(s): {' '.join(unknown)}")
        redirect_uris = redirect_uris or []
        if grant_types is None:
            grant_types = [CLIENT_CREDENTIALS]
            if redirect_uris:
                grant_types += [AUTHORIZATION_CODE, REFRESH_TOKEN]
        bad = sorted(set(grant_types) - set(GRANT_TYPES))
        if bad:
            raise ClientError(f"unknown grant type(s): {' '.join(bad)}")
        if AUTHORIZATION_CODE in grant_types and not redirect_uris:
            raise ClientError("authorization_code needs at least one --redirect-uri")
        if tenancy not in (c.TENANCY_SINGLE, c.TENANCY_MULTI):
            raise ClientError("tenancy must be single-tenant or multi-tenant")
        if login not in (LOGIN_PERSONNEL, LOGIN_CITIZEN):
            raise ClientError("login must be personnel or citizen")
        if orgnr is None and login == LOGIN_PERSONNEL:
            raise ClientError("a health-sector client needs its organisation number (--orgnr)")
        if orgnr is not None:
            check_orgnr(orgnr)
        for child in child_orgnrs or []:
            check_orgnr(child)
        if alg not in jose.ALGORITHMS:
            raise ClientError(f"algorithm {alg} is not allowed")
        client_id = new_client_id()
        private = jose.generate_jwk(alg, jose.b64url(os.urandom(9)))
        client = Client(
            client_id=client_id,
            name=name,
            jwks=[jose.public_jwk(private)],
            grant_types=grant_types,
            scopes=sorted(set(scopes)),
            redirect_uris=redirect_uris,
            tenancy=tenancy,
            orgnr=orgnr,
            child_orgnrs=child_orgnrs or [],
            allow_bearer=allow_bearer,
            login=login,
            exchange_audiences=exchange_audiences or [],
        )
        await self._save(client)
        return client, private

    async def set_enabled(self, client_id: str, enabled: bool) -> Client:
        """Enable or disable a client (a disabled client gets no new tokens)."""
        client = await self._require(client_id)
        client = replace(client, enabled=enabled)
        await self._save(client)
        return client

    async def rotate_key(self, client_id: str, *, keep_old: bool = False) -> dict[str, Any]:
        """A new key pair for a client; returns the private JWK. The old public key is
        removed unless ``keep_old`` (to let a deployment switch over)."""
        client = await self._require(client_id)
        alg = client.jwks[-1].get("alg", "ES256") if client.jwks else "ES256"
        private = jose.generate_jwk(alg, jose.b64url(os.urandom(9)))
        jwks = [*client.jwks, jose.public_jwk(private)] if keep_old else [jose.public_jwk(private)]
        await self._save(replace(client, jwks=jwks))
        return private

    async def delegate(self, parent_orgnr: str, supplier_orgnr: str, present: bool = True) -> None:
        """Record (or remove) that ``parent_orgnr`` lets ``supplier_orgnr`` act for it."""
        await self._store.set_delegation(
            check_orgnr(parent_orgnr), check_orgnr(supplier_orgnr), present
        )

    async def delegated(self, parent_orgnr: str, supplier_orgnr: str) -> bool:
        """Whether the delegation exists."""
        return await self._store.delegated(parent_orgnr, supplier_orgnr)

    async def _require(self, client_id: str) -> Client:
        client = await self.get(client_id)
        if client is None:
            raise ClientError(f"no client {client_id}")
        return client

    async def _save(self, client: Client) -> None:
        await self._store.save_client(client.client_id, client.document(), client.enabled)
