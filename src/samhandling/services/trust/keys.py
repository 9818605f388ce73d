"""Token signing keys: stored encrypted in the database, published as JWKS, rotated.

After `SigningKeys.rotate` new tokens are signed with the new key; the previous key stays
published (and accepted) until every token it signed has expired.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from typing import Any

import orjson
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from samhandling.infrastructure.secrets import derive
from samhandling.platform.auth import jose
from samhandling.services.trust.store import StoredKey, TrustStore


class KeyDecryptionError(RuntimeError):
    """The stored signing key was encrypted under another platform secret."""


REFRESH_SECONDS = 2.0  # how stale a worker's view of the current key may be
# An unknown kid reloads the keys at most this often: soon enough that a key another worker
# has just made (two workers starting on a new database each make one) is found for the
# first token it signs, rarely enough that tokens with made-up kids cannot flood the database.
MISS_RELOAD_SECONDS = 0.05


@dataclass(frozen=True, slots=True)
class SigningKey:
    """The key new tokens are signed with."""

    kid: str
    alg: str
    key: jose.PrivateKey


class SigningKeys:
    """The issuer's keys; also the `KeySource` the API guard verifies tokens with."""

    def __init__(
        self, store: TrustStore, secret: bytes, *, alg: str = "RS256", grace_seconds: int = 3600
    ) -> None:
        self._store = store
        self.grace_seconds = grace_seconds  # at least the longest token lifetime
        self._aead = AESGCM(derive(secret, "samhandling/trust/signing-keys"))
        self.alg = alg
        self._current: SigningKey | None = None
        self._public: dict[str, jose.PublicKey] = {}
        self._published: list[dict[str, Any]] = []
        self._loaded_at = 0.0

    async def current(self) -> SigningKey:
        """The newest key (creating the first one when there is none)."""
        if self._current is None or time.monotonic() - self._loaded_at > REFRESH_SECONDS:
            await self._load()
            if self._current is None:
                await self.rotate()
        assert self._current is not None
        return self._current

    async def verification_key(self, kid: str) -> jose.PublicKey | None:
        key = self._public.get(kid)
        if key is None and time.monotonic() - self._loaded_at > MISS_RELOAD_SECONDS:
            await self._load()
            key = self._public.get(kid)
        return key

    async def jwks(self) -> dict[str, Any]:
        """The published keys (current and not yet retired)."""
        if time.monotonic() - self._loaded_at > REFRESH_SECONDS:
            await self._load()
        return {"keys": self._published}

    async def rotate(self, grace_seconds: int | None = None) -> str:
        """Make a new current key; the others stay published for ``grace_seconds``
        (default: the configured grace, longer than any token lives)."""
        grace_seconds = self.grace_seconds if grace_seconds is None else grace_seconds
        kid = jose.b64url(os.urandom(12))
        jwk = jose.generate_jwk(self.alg, kid)
        nonce = os.urandom(12)
        sealed = nonce + self._aead.encrypt(nonce, orjson.dumps(jwk), kid.encode())
        now = int(time.time())
        stored = StoredKey(kid, self.alg, jose.public_jwk(jwk), sealed, now, None)
        await self._store.add_key(stored, now + grace_seconds)
        await self._load()
        return kid

    async def _load(self) -> None:
        now = int(time.time())
        live = [k for k in await self._store.keys() if k.retire_at is None or k.retire_at > now]
        self._public = {k.kid: jose.public_key(k.public_jwk) for k in live}
        self._published = [k.public_jwk for k in live]
        current = next((k for k in live if k.retire_at is None), None)
        if current is not None and (self._current is None or self._current.kid != current.kid):
            sealed = current.private_jwk
            try:
                jwk = orjson.loads(
                    self._aead.decrypt(sealed[:12], sealed[12:], current.kid.encode())
                )
            except InvalidTag:
                raise KeyDecryptionError(
                    f"cannot decrypt signing key {current.kid}: the platform secret"
                    " (SAMHANDLING_SECRET_KEY or <data dir>/secret.key) is not the one that"
                    " encrypted it; every worker and command needs the same secret"
                ) from None
            self._current = SigningKey(current.kid, current.alg, jose.private_key(jwk))
        self._loaded_at = time.monotonic()
