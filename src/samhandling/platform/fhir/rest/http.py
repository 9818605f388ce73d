"""HTTP details of the FHIR REST API: media types, preconditions, Prefer, response headers."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime
from email.utils import formatdate, parsedate_to_datetime
from functools import lru_cache

from starlette.datastructures import QueryParams
from starlette.responses import Response

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


def error_response(error: FhirError) -> Response:
    """An error as an OperationOutcome response."""
    return fhir_response(error.outcome(), error.status, error.headers or None)
