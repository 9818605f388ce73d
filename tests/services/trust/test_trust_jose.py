"""The JWS parser and verifier the API guard relies on, and DPoP details, in-process."""

from __future__ import annotations

import time

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from samhandling.platform.auth import jose
from samhandling.platform.auth.dpop import DpopError, DpopVerifier, Nonces, normalise_url
from samhandling.services.trust.tokentool import DpopKey

RFC7638_KEY = {
    "kty": "RSA",
    "n": "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tS"
    "oc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_F"
    "DW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQ"
    "Fh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw",
    "e": "AQAB",
    "alg": "RS256",
    "kid": "2011-04-29",
}


def test_rfc7638_thumbprint() -> None:
    assert jose.thumbprint(RFC7638_KEY) == "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"


@pytest.mark.parametrize("alg", sorted(jose.ALGORITHMS))
def test_sign_and_verify_every_algorithm(alg: str) -> None:
    jwk = jose.generate_jwk(alg, "k")
    token = jose.sign({"alg": alg}, {"a": 1}, jose.private_key(jwk))
    parsed = jose.parse(token)
    jose.verify(parsed, jose.public_key(jose.public_jwk(jwk)))
    other = jose.public_key(jose.public_jwk(jose.generate_jwk(alg, "o")))
    with pytest.raises(jose.JoseError):
        jose.verify(parsed, other)


@pytest.mark.parametrize(
    ("header", "message"),
    [
        ({"alg": "none"}, "not allowed"),
        ({"alg": {"kty": "EC"}}, "not allowed"),  # once a 500 (unhashable) found by fuzzing
        ({"alg": "HS256"}, "not allowed"),
        ({"alg": "EdDSA"}, "not allowed"),
        ({}, "not allowed"),
        ({"alg": "ES256", "crit": ["exp"]}, "critical"),
    ],
)
def test_parse_refuses_headers(header: dict, message: str) -> None:
    token = f"{jose.b64url(jose.orjson.dumps(header))}.{jose.b64url(b'{}')}.c2ln"
    with pytest.raises(jose.JoseError, match=message):
        jose.parse(token)


@pytest.mark.parametrize(
    "token", ["", "a.b", "a.b.c.d", "..", "!!!.e30.c2ln", "e30.W10.c2ln", "x" * 20000]
)
def test_parse_refuses_malformed_tokens(token: str) -> None:
    with pytest.raises(jose.JoseError):
        jose.parse(token)


def test_algorithm_and_key_must_match() -> None:
    ec_jwk = jose.generate_jwk("ES256", "e")
    token = jose.sign({"alg": "ES256"}, {}, jose.private_key(ec_jwk))
    rsa_key = jose.public_key(jose.public_jwk(jose.generate_jwk("RS256", "r")))
    with pytest.raises(jose.JoseError, match="does not match"):
        jose.verify(jose.parse(token), rsa_key)
    p384 = jose.public_key(jose.public_jwk(jose.generate_jwk("ES384", "p")))
    with pytest.raises(jose.JoseError, match="does not match"):
        jose.verify(jose.parse(token), p384)
    relabelled = jose.parse(token)
    forged = jose.Jws({"alg": "ES384"}, relabelled.claims, relabelled.signing_input,
                      relabelled.signature)  # fmt: skip
    with pytest.raises(jose.JoseError):
        jose.verify(forged, jose.public_key(jose.public_jwk(ec_jwk)))


def test_public_key_refusals() -> None:
    private = jose.generate_jwk("ES256", "k")
    with pytest.raises(jose.JoseError, match="public"):
        jose.public_key(private)
    with pytest.raises(jose.JoseError):
        jose.public_key({"kty": "oct", "k": "c2VjcmV0"})
    with pytest.raises(jose.JoseError):
        jose.public_key({"kty": "OKP", "crv": "Ed25519", "x": "abc"})
    with pytest.raises(jose.JoseError):
        jose.public_key({"kty": "EC", "crv": "P-256", "x": "AAAA", "y": "AAAA"})  # off-curve
    small = rsa.generate_private_key(65537, 1024).public_key().public_numbers()
    weak = {"kty": "RSA", "n": jose.b64url(small.n.to_bytes(128, "big")), "e": "AQAB"}
    with pytest.raises(jose.JoseError, match="2048"):
        jose.public_key(weak)
    with pytest.raises(jose.JoseError):
        jose.public_key("not a dict")  # type: ignore[arg-type]


def test_normalise_url() -> None:
    assert normalise_url("HTTPS://Example.COM:443/a?b=1#c") == "https://example.com/a"
    assert (
        normalise_url("http://127.0.0.1:8080/fhir/Patient") == "http://127.0.0.1:8080/fhir/Patient"
    )
    assert normalise_url("http://[::1]:80/x") == "http://[::1]/x"


def test_nonces() -> None:
    nonces = Nonces(b"s" * 32, period=60)
    current = nonces.current()
    assert nonces.valid(current)
    assert not nonces.valid("x" + current[1:])
    assert not nonces.valid(None)
    assert not Nonces(b"t" * 32).valid(current)


class MemoryReplay:
    def __init__(self) -> None:
        self.seen: set[tuple[str, str]] = set()

    async def first_use(self, namespace: str, key: str, expires_at: int) -> bool:
        if (namespace, key) in self.seen:
            return False
        self.seen.add((namespace, key))
        return True

    def close(self) -> None:
        pass


async def test_dpop_verifier_in_process() -> None:
    verifier = DpopVerifier(MemoryReplay(), Nonces(b"s" * 32))
    key = DpopKey()
    url = "http://127.0.0.1:1/fhir/Patient"
    proof = key.proof("GET", url + "?x=1", access_token="tok")
    verified = await verifier.verify(proof, "GET", url, access_token="tok")
    assert verified.jkt == key.jkt
    with pytest.raises(DpopError, match="used before"):
        await verifier.verify(proof, "GET", url, access_token="tok")
    with pytest.raises(DpopError) as nonce_needed:
        await verifier.verify(key.proof("GET", url), "GET", url, require_nonce=True)
    assert nonce_needed.value.error == "use_dpop_nonce"
    rsa_key = DpopKey(jose.generate_jwk("PS256", "r"))
    assert (await verifier.verify(rsa_key.proof("GET", url), "GET", url)).jkt == rsa_key.jkt
    old = jose.sign({"typ": "dpop+jwt", "alg": "ES256", "jwk": key.public},
                    {"jti": "o", "htm": "GET", "htu": url, "iat": time.time() - 61},
                    jose.private_key(key.jwk))  # fmt: skip
    with pytest.raises(DpopError, match="window"):
        await verifier.verify(old, "GET", url)
    no_iat = jose.sign({"typ": "dpop+jwt", "alg": "ES256", "jwk": key.public},
                       {"jti": "n", "htm": "GET", "htu": url, "iat": True},
                       jose.private_key(key.jwk))  # fmt: skip
    with pytest.raises(DpopError, match="numeric iat"):
        await verifier.verify(no_iat, "GET", url)


def test_challenge_is_a_valid_header_value() -> None:
    """An error description quoting client input (here a non-Latin-1 alg) stays printable
    ASCII in WWW-Authenticate (once a 500, found by fuzzing)."""
    from samhandling.platform.auth.guard import challenge
    from samhandling.platform.auth.tokens import TokenError

    values = challenge(TokenError(401, "invalid_token", 'algorithm "\u0100\\" is not allowed'))
    for value in values:
        value.encode("latin-1")
        assert value.isascii() and "\\" not in value
        assert 'error_description="algorithm ???? is not allowed"' in value


def test_paths_compare_in_one_spelling() -> None:
    from samhandling.platform.auth.dpop import normalise_path

    assert normalise_path(b"/fhir/Patient/has%20space") == "/fhir/Patient/has%20space"
    assert normalise_path("/fhir/Patient/has space") == "/fhir/Patient/has%20space"
    assert normalise_path("/fhir/Patient/æøå") == normalise_path(
        b"/fhir/Patient/%c3%a6%C3%B8%c3%a5"
    )
    assert normalise_path(b"/fhir/%7Ea%2Fb") == "/fhir/~a%2Fb"  # unreserved decoded, / kept
    assert normalise_path(b"") == "/"
    assert normalise_url("http://h/a%20b?x") == normalise_url("http://h/a b")
