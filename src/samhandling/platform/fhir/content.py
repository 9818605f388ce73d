"""Serialising resources as stored and served: server-maintained meta, exact JSON bytes."""

from __future__ import annotations

import json
import re
from datetime import datetime

import orjson

from samhandling.platform.fhir.datetimes import format_instant
from samhandling.platform.fhir.errors import FhirError


def stamp(resource: dict, id: str, version: int, last_updated: datetime) -> bytes:
    """The stored JSON of ``resource`` as version ``version``: id and meta set by the server.

    ``resourceType``, ``id`` and ``meta`` come first; everything else keeps the client's order.
    """
    meta = {"versionId": str(version), "lastUpdated": format_instant(last_updated)}
    client_meta = resource.get("meta")
    if isinstance(client_meta, dict):
        for key, value in client_meta.items():
            if key not in meta:
                meta[key] = value
    out = {"resourceType": resource["resourceType"], "id": id, "meta": meta}
    for key, value in resource.items():
        if key not in out:
            out[key] = value
    return dumps(out)


class FhirDecimal(float):
    """A JSON number that keeps its text, so ``1.50`` is stored and served as ``1.50``.

    FHIR decimals carry their precision in their digits; a plain float would turn ``1.50``
    into ``1.5``. Only bodies that hold such numbers take this slower path.
    """

    __slots__ = ("text",)

    def __new__(cls, text: str) -> FhirDecimal:
        number = super().__new__(cls, text)
        number.text = text
        return number

    def __reduce__(self) -> tuple:
        return (FhirDecimal, (self.text,))


# A JSON number token whose float would print differently: trailing fraction zeros, an
# exponent, more digits than a double holds, or an integer beyond 64 bits (orjson would make
# it a float). The token must stand between JSON delimiters, so text such as
# "urn:uuid:366195e8-..." does not count; what still matches inside strings only costs speed.
_PRECISE_NUMBER = re.compile(
    rb"[:\[,]\s*-?(?:\d+(?:\.\d*0|\.\d{15,}|(?:\.\d+)?[eE][+-]?\d+)|\d{19,})\s*[,}\]]"
)


def loads(data: bytes) -> object:
    """Parse JSON, keeping the text of decimals that a float would not reproduce exactly."""
    value = orjson.loads(data)  # strict: rejects NaN, Infinity and lone surrogates
    if _PRECISE_NUMBER.search(data):
        return json.loads(data, parse_float=_decimal, parse_int=_integer)
    return value


def _decimal(text: str) -> float:
    """A float, or a FhirDecimal when the float would not be written back as ``text``."""
    number = float(text)
    return number if orjson.dumps(number) == text.encode() else FhirDecimal(text)


def _integer(text: str) -> int | FhirDecimal:
    """An integer; beyond 64 bits kept as text, as orjson cannot write such an int."""
    return int(text) if len(text) < 19 else FhirDecimal(text)


def dumps(value: object) -> bytes:
    """Serialise JSON (decimals with their original text)."""
    return orjson.dumps(value, default=_default)


def _default(value: object) -> object:
    if isinstance(value, FhirDecimal):
        return orjson.Fragment(value.text)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def parse_json(body: bytes) -> object:
    """Parse a request body; malformed JSON is a 400 OperationOutcome."""
    if not body.strip():
        raise FhirError.of(400, "structure", "the request body is empty")
    try:
        return loads(body)
    except orjson.JSONDecodeError as exc:
        raise FhirError.of(400, "structure", f"malformed JSON: {exc}") from None
