"""Document signatures with the platform key: a compact JWS whose payload is detached.

A `Signer` signs the exact bytes of a document (RFC 7515 Appendix F): the JWS is
``<header>..<signature>``, the payload left out, and a verifier puts the base64url of the
bytes back between the dots. The header names the algorithm and the key (``alg``, ``kid``);
the key is the trust service's current signing key, published in its JWKS
(``<issuer>/.well-known/openid-configuration/jwks``), which the trust service wraps in a
`KeySigner` as ``runtime.services["signer"]`` when it starts.

`canonical_json` is the byte form a JSON document is signed in: keys sorted, no
whitespace, UTF-8, FHIR decimals with their own digits.
"""

from __future__ import annotations

from typing import Any, Protocol

import orjson

from samhandling.platform.auth import jose
from samhandling.platform.auth.jose import JoseError
from samhandling.platform.fhir.content import FhirDecimal

JWS_TYPE = "JOSE"  # the compact serialization (RFC 7515 §4.1.9); never an access token's


class Signer(Protocol):
    """Signs documents with the platform key."""

    async def sign(self, payload: bytes, content_type: str | None = None) -> str:
        """A compact JWS of ``payload`` with the payload detached (``<header>..<signature>``);
        the header names ``alg``, ``kid`` and, when given, the payload's ``cty``."""
        ...


class CurrentKey(Protocol):
    """A private signing key and its published key id (the trust service's `SigningKey`)."""

    @property
    def kid(self) -> str: ...

    @property
    def alg(self) -> str: ...

    @property
    def key(self) -> jose.PrivateKey: ...


class KeySource(Protocol):
    """Where the current signing key comes from (the trust service's `SigningKeys`)."""

    async def current(self) -> CurrentKey: ...


class KeySigner:
    """A `Signer` with the current key of a `KeySource` (rotation is the source's)."""

    def __init__(self, keys: KeySource) -> None:
        self._keys = keys

    async def sign(self, payload: bytes, content_type: str | None = None) -> str:
        key = await self._keys.current()
        header = {"alg": key.alg, "kid": key.kid, "typ": JWS_TYPE}
        if content_type is not None:
            header["cty"] = content_type
        protected, _, signature = jose.sign_bytes(header, payload, key.key).split(".")
        return f"{protected}..{signature}"


def detached_header(jws: str) -> dict[str, Any]:
    """The header of a detached compact JWS (unverified); `JoseError` when it is not one."""
    parts = jws.split(".")
    if len(parts) != 3 or parts[1] or not parts[0] or not parts[2]:
        raise JoseError("not a compact JWS with a detached payload (<header>..<signature>)")
    try:
        header = orjson.loads(jose.b64url_decode(parts[0]))
    except orjson.JSONDecodeError:
        raise JoseError("the JWS header is not JSON") from None
    if not isinstance(header, dict):
        raise JoseError("the JWS header must be a JSON object")
    alg = header.get("alg")
    if not isinstance(alg, str) or alg not in jose.ALGORITHMS:
        raise JoseError(f"algorithm {alg!r} is not allowed (RS/PS/ES 256/384/512 only)")
    if "crit" in header:
        raise JoseError("critical header parameters are not supported")
    if not isinstance(header.get("kid"), str):
        raise JoseError("the JWS header names no kid")
    return header


def verify_detached(jws: str, payload: bytes, jwks: dict[str, Any]) -> dict[str, Any]:
    """Check ``jws`` over ``payload`` with the key its ``kid`` names in ``jwks`` (a JWK Set);
    its header, or `JoseError` when the key is unknown or the signature does not match."""
    header = detached_header(jws)
    keys = jwks.get("keys") if isinstance(jwks, dict) else None
    jwk = next(
        (k for k in keys or () if isinstance(k, dict) and k.get("kid") == header["kid"]), None
    )
    if jwk is None:
        raise JoseError(f"key {header['kid']!r} is not in the key set")
    if jwk.get("alg") not in (None, header["alg"]):
        raise JoseError(f"key {header['kid']!r} is not for {header['alg']}")
    protected, _, signature = jws.split(".")
    signing_input = f"{protected}.{jose.b64url(payload)}".encode("ascii")
    parsed = jose.Jws(header, {}, signing_input, jose.b64url_decode(signature))
    jose.verify(parsed, jose.public_key(jwk))
    return header


def canonical_json(value: object) -> bytes:
    """``value`` as signed: sorted keys, no whitespace, UTF-8, decimals as written."""
    return orjson.dumps(value, default=_decimal, option=orjson.OPT_SORT_KEYS)


def _decimal(value: object) -> object:
    if isinstance(value, FhirDecimal):
        return orjson.Fragment(value.text)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")
