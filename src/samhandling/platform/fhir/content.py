"""Serialising resources as stored and served: server-maintained meta, exact JSON bytes."""

from __future__ import annotations

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
    return orjson.dumps(out)


def parse_json(body: bytes) -> object:
    """Parse a request body; malformed JSON is a 400 OperationOutcome."""
    if not body.strip():
        raise FhirError.of(400, "structure", "the request body is empty")
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise FhirError.of(400, "structure", f"malformed JSON: {exc}") from None
