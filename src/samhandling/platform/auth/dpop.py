"""DPoP proofs (RFC 9449): checked at the token endpoint and on every API call."""

from __future__ import annotations

import hashlib
import hmac
import re
import string
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote_from_bytes, urlsplit

from samhandling.platform.auth import jose
from samhandling.platform.auth.replay import ReplayCache

PROOF_TYPE = "dpop+jwt"
MAX_JTI_LENGTH = 256
_DEFAULT_PORTS = {"http": 80, "https": 443}
_PATH_SAFE = "/%:@!$&'()*+,;=-._~"
_UNRESERVED = frozenset(string.ascii_letters + string.digits + "-._~")
_ESCAPE = re.compile(r"%[0-9A-Fa-f]{2}")


class DpopError(Exception):
    """A proof that is missing or wrong; ``error`` is the RFC 9449 error code."""

    def __init__(self, description: str, error: str = "invalid_dpop_proof") -> None:
        super().__init__(description)
        self.error = error
        self.description = description


@dataclass(frozen=True, slots=True)
class DpopProof:
    """A verified proof: the thumbprint of its key binds tokens to the key."""

    jkt: str
    jti: str


class Nonces:
    """Server nonces without server state: an HMAC of the current time window.

    Every worker derives the same nonce from the shared secret; a nonce stays valid for
    one to two periods.
    """

    def __init__(self, secret: bytes, period: int = 60) -> None:
        self._secret = secret
        self._period = period

    def _for(self, window: int) -> str:
        mac = hmac.new(self._secret, f"dpop-nonce:{window}".encode(), hashlib.sha256)
        return jose.b64url(mac.digest()[:18])

    def current(self) -> str:
        """The nonce to hand out now."""
        return self._for(int(time.time()) // self._period)

    def valid(self, nonce: object) -> bool:
        """Whether ``nonce`` was handed out in this period or the previous one."""
        if not isinstance(nonce, str):
            return False
        window = int(time.time()) // self._period
        return any(hmac.compare_digest(nonce, self._for(w)) for w in (window, window - 1))


def normalise_path(path: bytes | str) -> str:
    """A URL path in one spelling: every byte outside RFC 3986's path characters
    percent-encoded, escapes of unreserved characters decoded, hex digits upper case."""
    raw = path.encode("utf-8") if isinstance(path, str) else path
    quoted = quote_from_bytes(raw, safe=_PATH_SAFE) or "/"
    return _ESCAPE.sub(_normal_escape, quoted)


def _normal_escape(match: re.Match[str]) -> str:
    char = chr(int(match.group(0)[1:], 16))
    return char if char in _UNRESERVED else match.group(0).upper()


def normalise_url(url: str) -> str:
    """Scheme, host, port and path of ``url`` as RFC 9449 compares them (no query)."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    port = parts.port
    netloc = host if port in (None, _DEFAULT_PORTS.get(scheme)) else f"{host}:{port}"
    if ":" in host:  # IPv6 literal
        netloc = f"[{host}]" if port in (None, _DEFAULT_PORTS.get(scheme)) else f"[{host}]:{port}"
    return f"{scheme}://{netloc}{normalise_path(parts.path)}"


class DpopVerifier:
    """Checks proofs: signature by the embedded public key, method, URL, age, replay."""

    def __init__(
        self,
        replay: ReplayCache,
        nonces: Nonces,
        *,
        max_age: int = 60,
        max_skew: int = 5,
    ) -> None:
        self.replay = replay
        self.nonces = nonces
        self.max_age = max_age
        self.max_skew = max_skew

    async def verify(
        self,
        proof: str | None,
        method: str,
        url: str,
        *,
        access_token: str | None = None,
        require_nonce: bool = False,
    ) -> DpopProof:
        """The verified proof for a request to ``method url``; `DpopError` otherwise.

        ``url`` is the request URL as the server's public address spells it; ``access_token``
        is given on API calls (the proof must carry its hash as ``ath``).
        """
        if not proof:
            raise DpopError("a DPoP proof is required (DPoP header)")
        try:
            jws = jose.parse(proof)
        except jose.JoseError as exc:
            raise DpopError(f"DPoP proof: {exc}") from None
        header, claims = jws.header, jws.claims
        if header.get("typ") != PROOF_TYPE:
            raise DpopError(f"DPoP proof typ must be {PROOF_TYPE}")
        try:
            key, jkt = jose.public_key_and_thumbprint(header.get("jwk"))  # type: ignore[arg-type]
            jose.verify(jws, key)
        except jose.JoseError as exc:
            raise DpopError(f"DPoP proof: {exc}") from None
        jti = _claim_str(claims, "jti")
        if len(jti) > MAX_JTI_LENGTH:
            raise DpopError("DPoP proof jti is too long")
        if _claim_str(claims, "htm") != method:
            raise DpopError(f"DPoP proof htm does not match the request method {method}")
        htu = _claim_str(claims, "htu")
        try:  # the usual case, the same spelling, needs no parsing
            same_url = htu == url or normalise_url(htu) == normalise_url(url)
        except ValueError:  # an unparsable URL (bad port, broken IPv6 literal)
            same_url = False
        if not same_url:
            raise DpopError("DPoP proof htu does not match the request URL")
        iat = claims.get("iat")
        now = time.time()
        if not isinstance(iat, int | float) or isinstance(iat, bool):
            raise DpopError("DPoP proof needs a numeric iat")
        if iat > now + self.max_skew or iat < now - self.max_age:
            raise DpopError("DPoP proof iat is outside the accepted window")
        if access_token is not None and claims.get("ath") != jose.sha256_b64url(access_token):
            raise DpopError("DPoP proof ath does not match the access token")
        if require_nonce and not self.nonces.valid(claims.get("nonce")):
            raise DpopError("the DPoP proof must carry the server's nonce", "use_dpop_nonce")
        expires = int(iat) + self.max_age + self.max_skew + 1
        if not await self.replay.first_use("dpop:" + jkt, jti, expires):
            raise DpopError("DPoP proof jti was used before")
        return DpopProof(jkt, jti)


def _claim_str(claims: dict[str, Any], name: str) -> str:
    value = claims.get(name)
    if not isinstance(value, str) or not value:
        raise DpopError(f"DPoP proof needs a {name} claim")
    return value
