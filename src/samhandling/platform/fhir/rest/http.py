"""HTTP details of the FHIR REST API: media types, preconditions, Prefer, response headers."""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping
from datetime import datetime
from email.utils import formatdate, parsedate_to_datetime
from functools import lru_cache

from starlette.datastructures import QueryParams
from starlette.responses import Response, StreamingResponse

from samhandling.platform.fhir.binaries import RawContent
from samhandling.platform.fhir.content import dumps
from samhandling.platform.fhir.engine import FHIRPATH_PATCH, JSON_PATCH, Preconditions
from samhandling.platform.fhir.errors import FhirError
from samhandling.platform.fhir.storage import ResourceVersion

FHIR_JSON = "application/fhir+json"
CONTENT_TYPE = f"{FHIR_JSON}; charset=utf-8"
_JSON_TYPES = frozenset({FHIR_JSON, "application/json", "application/json+fhir", "text/json"})
_FORMAT_ALIASES = frozenset({"json", *_JSON_TYPES})
_XML_TYPES = frozenset(
    {"application/fhir+xml", "application/xml", "text/xml", "application/xml+fhir", "xml"}
)
_ETAG = re.compile(r'\s*(?:W/)?"(\d{1,9})"\s*')
# R4 binary.html#rest: a Binary is read and written as a resource in FHIR's own formats
# (application/json and text/json too: this server takes them as FHIR JSON), as its raw
# content in any other media type (application/xml included: a CDA document, say)
_FHIR_TYPES = _JSON_TYPES | {"application/fhir+xml", "application/xml+fhir"}
_MEDIA_TYPE = re.compile(r"[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]*/[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]*")
_SHA256_DIGEST = re.compile(r"(?:^|,)\s*sha-256\s*=\s*:([A-Za-z0-9+/=]+):", re.IGNORECASE)
# raw content is the client's, served from the API's origin: never sniffed, and run (if a
# browser opens an HTML document) in a sandbox without scripts or this origin's cookies
_RAW_HEADERS = {
    "x-content-type-options": "nosniff",
    "content-security-policy": "default-src 'none'; sandbox",
}


def check_acceptable(headers: Mapping[str, str], query: QueryParams) -> None:
    """406 unless the client accepts JSON (``_format`` overrides ``Accept``)."""
    wanted = query.get("_format")
    if wanted is not None:
        kind = wanted.split(";")[0].strip().lower()
        if kind not in _FORMAT_ALIASES:
            raise FhirError.of(
                406, "not-supported", f"_format {wanted!r} is not supported; use json"
            )
        return
    accept = headers.get("accept")
    if not accept:
        return
    kinds = [part.split(";")[0].strip().lower() for part in accept.split(",")]
    for kind in kinds:
        if kind in _JSON_TYPES or kind in ("*/*", "application/*", "") or kind.endswith("+json"):
            return
    raise FhirError.of(
        406, "not-supported", f"cannot answer as {accept!r}; this server speaks FHIR JSON"
    )


def wants_resource(headers: Mapping[str, str], query: QueryParams) -> bool:
    """Whether a read of a Binary asks for the resource (``_format``, or a FHIR media type
    in ``Accept``) rather than its raw content."""
    if "_format" in query:
        return True
    for part in (headers.get("accept") or "").split(","):
        kind, _, parameters = part.partition(";")
        if kind.strip().lower() in _FHIR_TYPES and not _refused(parameters):
            return True
    return False


def _refused(parameters: str) -> bool:
    """Whether media-range parameters say ``q=0``."""
    for parameter in parameters.split(";"):
        name, _, value = parameter.partition("=")
        if name.strip().lower() == "q":
            try:
                return float(value) == 0
            except ValueError:
                return False
    return False


def raw_content_type(headers: Mapping[str, str]) -> str | None:
    """The Content-Type of a Binary write whose body is the raw content (any media type but
    FHIR's), whitespace normalised; None for a FHIR body. 415 for a malformed one."""
    kind = media_type(headers)
    if kind is None or kind in _FHIR_TYPES:
        return None
    if not _MEDIA_TYPE.fullmatch(kind):
        raise FhirError.of(415, "not-supported", f"Content-Type {kind!r} is not a media type")
    return " ".join(headers["content-type"].split())


def content_length(headers: Mapping[str, str]) -> int | None:
    """The declared Content-Length, when it is a number."""
    declared = headers.get("content-length")
    if declared is not None and declared.isascii() and declared.isdigit():
        return int(declared)
    return None


def content_sha256(headers: Mapping[str, str]) -> bytes | None:
    """The SHA-256 a client states for its body (RFC 9530 ``Content-Digest`` or
    ``Repr-Digest``: ``sha-256=:<base64>:``), None when it states none; 400 when malformed."""
    for name in ("content-digest", "repr-digest"):
        value = headers.get(name)
        match = _SHA256_DIGEST.search(value) if value else None
        if match:
            try:
                digest = base64.b64decode(match[1], validate=True)
            except (binascii.Error, ValueError):
                digest = b""
            if len(digest) != 32:
                raise FhirError.of(400, "invalid", f"{name}: sha-256 must be 32 bytes, base64")
            return digest
    return None


def check_json_body(headers: Mapping[str, str]) -> None:
    """415 unless the request body is declared as JSON (absent Content-Type is taken as JSON)."""
    kind = media_type(headers)
    if kind is None or kind in _JSON_TYPES or kind.endswith("+json"):
        return
    raise FhirError.of(
        415, "not-supported", f"Content-Type {kind!r} is not supported; send {FHIR_JSON}"
    )


def patch_format(headers: Mapping[str, str]) -> str:
    """Which patch format the Content-Type names (415 for XML Patch or anything else)."""
    kind = media_type(headers)
    if kind == "application/json-patch+json":
        return JSON_PATCH
    if kind is None or kind in _JSON_TYPES:
        return FHIRPATH_PATCH
    raise FhirError.of(
        415,
        "not-supported",
        f"PATCH with {kind!r} is not supported; use application/json-patch+json (JSON Patch) "
        f"or {FHIR_JSON} (FHIRPath Patch Parameters)",
    )


def media_type(headers: Mapping[str, str]) -> str | None:
    """The request's Content-Type without parameters, lower case."""
    value = headers.get("content-type")
    return value.split(";")[0].strip().lower() if value else None


def parse_etag(value: str, header: str) -> int:
    """The version number in an ETag such as ``W/"3"``."""
    version = _etag_version(value)
    if version is None:
        raise FhirError.of(400, "invalid", f'{header} must be an ETag like W/"3", not {value!r}')
    return version


def _etag_version(value: str) -> int | None:
    match = _ETAG.fullmatch(value)
    return int(match[1]) if match else None


def preconditions(headers: Mapping[str, str]) -> Preconditions:
    """If-Match and If-None-Match (only ``*``) of a write."""
    if_match = headers.get("if-match")
    if_none_match = headers.get("if-none-match")
    return Preconditions(
        if_match=parse_etag(if_match, "If-Match") if if_match else None,
        if_none_match_any=if_none_match is not None and if_none_match.strip() == "*",
    )


def not_modified(headers: Mapping[str, str], current: ResourceVersion) -> bool:
    """Whether a conditional read may answer 304 (If-None-Match, else If-Modified-Since)."""
    if_none_match = headers.get("if-none-match")
    if if_none_match is not None:
        return any(
            tag.strip() == "*" or _etag_version(tag) == current.version
            for tag in if_none_match.split(",")
        )
    if_modified_since = headers.get("if-modified-since")
    if if_modified_since is not None:
        try:
            since = parsedate_to_datetime(if_modified_since)
        except (TypeError, ValueError):
            return False  # an unparsable date is ignored, as HTTP says
        if since.tzinfo is None:
            return False
        return current.last_updated.replace(microsecond=0) <= since
    return False


def prefer_return(headers: Mapping[str, str]) -> str:
    """``Prefer: return=...``: minimal, representation (default) or OperationOutcome."""
    return _prefer(headers, "return", ("representation", "minimal", "OperationOutcome"))


def prefer_handling(headers: Mapping[str, str]) -> str:
    """``Prefer: handling=strict|lenient`` (lenient when absent)."""
    return _prefer(headers, "handling", ("lenient", "strict"))


def _prefer(headers: Mapping[str, str], preference: str, allowed: tuple[str, ...]) -> str:
    """The value of one ``Prefer`` preference, or the first allowed value (the default)."""
    prefer = headers.get("prefer")
    if prefer:
        for token in prefer.split(","):
            key, _, value = token.strip().partition("=")
            if key.strip() == preference and value.strip() in allowed:
                return value.strip()
    return allowed[0]


def version_headers(version: ResourceVersion) -> dict[str, str]:
    """ETag and Last-Modified of a version."""
    return {"etag": f'W/"{version.version}"', "last-modified": http_date(version.last_updated)}


def http_date(moment: datetime) -> str:
    """An HTTP-date (RFC 9110), e.g. ``Sun, 22 Nov 2026 01:43:43 GMT``."""
    return _http_date(int(moment.timestamp()))


@lru_cache(maxsize=4096)
def _http_date(seconds: int) -> str:
    return formatdate(seconds, usegmt=True)


def fhir_response(
    body: bytes | dict | None, status: int = 200, headers: dict[str, str] | None = None
) -> Response:
    """A FHIR JSON response (stored bytes are sent as they are)."""
    if isinstance(body, dict):
        body = dumps(body)
    return Response(
        body if body is not None else b"",
        status,
        headers,
        media_type=None if body is None else CONTENT_TYPE,
    )


def raw_response(raw: RawContent, headers: dict[str, str], head: bool = False) -> Response:
    """A Binary's content as its own media type, streamed chunk by chunk."""
    headers = {
        **headers,
        **_RAW_HEADERS,
        "content-type": raw.content_type,
        "content-length": str(raw.size),
        "repr-digest": f"sha-256=:{base64.b64encode(raw.sha256).decode()}:",
    }
    if head:
        return Response(status_code=200, headers=headers)
    return StreamingResponse(raw.chunks(), 200, headers)


def error_response(error: FhirError) -> Response:
    """An error as an OperationOutcome response."""
    return fhir_response(error.outcome(), error.status, error.headers or None)
