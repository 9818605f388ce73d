"""The FHIR REST API as one ASGI endpoint: HTTP in, `Interaction` to the engine, HTTP out."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from starlette.requests import Request
from starlette.responses import Response

from samhandling.platform.fhir.content import parse_json
from samhandling.platform.fhir.engine import NO_PRECONDITIONS, FhirEngine
from samhandling.platform.fhir.errors import FhirError
from samhandling.platform.fhir.rest.bundle import process_bundle
from samhandling.platform.fhir.rest.capability import capability_statement
from samhandling.platform.fhir.rest.http import (
    check_acceptable,
    check_json_body,
    error_response,
    fhir_response,
    not_modified,
    patch_format,
    preconditions,
    prefer_return,
    version_headers,
)
from samhandling.platform.fhir.rest.interactions import (
    Interaction,
    Result,
    Target,
    execute,
    parse_target,
)

log = logging.getLogger(__name__)
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})


class FhirEndpoint:
    """Serves ``{prefix}/...``: every FHIR interaction, errors as OperationOutcome."""

    def __init__(
        self, engine: FhirEngine, *, prefix: str, max_body_bytes: int, software_version: str
    ) -> None:
        self.engine = engine
        self.prefix = prefix
        self.max_body_bytes = max_body_bytes
        self.software_version = software_version
        self._started = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")

    async def __call__(self, request: Request) -> Response:
        try:
            return await self._handle(request)
        except FhirError as error:
            return error_response(error)
        except Exception:
            log.exception("unexpected error in %s %s", request.method, request.url.path)
            return error_response(FhirError.of(500, "exception", "internal server error"))

    async def _handle(self, request: Request) -> Response:
        method = request.method
        headers = request.headers
        check_acceptable(headers, request.query_params)
        path = request.url.path[len(self.prefix) :]
        base = self.base_url(request)
        target = parse_target(path)
        if target.operation == "metadata":
            if method not in ("GET", "HEAD"):
                raise FhirError.of(405, "not-supported", "metadata is read-only")
            return fhir_response(capability_statement(base, self.software_version, self._started))
        body: object = None
        fmt = None
        if method in _BODY_METHODS:
            fmt = patch_format(headers) if method == "PATCH" else None
            if method != "PATCH":
                check_json_body(headers)
            body = parse_json(await self._read_body(request))
        if method == "POST" and target == Target():
            bundle = await process_bundle(self.engine, body, base, prefer_return(headers))
            return fhir_response(bundle)
        interaction = Interaction(
            method=method,
            target=target,
            params=request.query_params,
            body=body,
            patch_format=fmt,
            preconditions=preconditions(headers)
            if method in ("PUT", "PATCH", "DELETE")
            else NO_PRECONDITIONS,
            prefer_return=prefer_return(headers) if method in _BODY_METHODS else "representation",
            base=base,
        )
        result = await execute(self.engine, interaction)
        return self._respond(request, result, base)

    def _respond(self, request: Request, result: Result, base: str) -> Response:
        version = result.version
        headers = version_headers(version) if version is not None else {}
        if version is not None and result.location:
            headers["location"] = f"{base}/{version.type}/{version.id}/_history/{version.version}"
        if (
            request.method in ("GET", "HEAD")
            and version is not None
            and _not_modified(request, result)
        ):
            return Response(status_code=304, headers=headers)
        body = None if request.method == "HEAD" else result.body
        return fhir_response(body, result.status, headers)

    async def _read_body(self, request: Request) -> bytes:
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_body_bytes:
            raise _too_large(self.max_body_bytes)
        chunks = []
        size = 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > self.max_body_bytes:
                raise _too_large(self.max_body_bytes)
            chunks.append(chunk)
        return b"".join(chunks)

    def base_url(self, request: Request) -> str:
        """The FHIR base URL as the client addressed it."""
        host = request.headers.get("host") or f"{request.url.hostname}:{request.url.port}"
        return f"{request.url.scheme}://{host}{self.prefix}"


def _not_modified(request: Request, result: Result) -> bool:
    return result.status == 200 and not_modified(request.headers, result.version)  # type: ignore[arg-type]


def _too_large(limit: int) -> FhirError:
    return FhirError.of(413, "too-costly", f"the request body is larger than {limit} bytes")
