"""The FHIR REST API as one ASGI endpoint: HTTP in, `Interaction` to the engine, HTTP out."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from urllib.parse import parse_qsl

from starlette.datastructures import QueryParams
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Scope

from samhandling.platform.auth.guard import ACCESS_CONTEXT  # the caller (opaque here)
from samhandling.platform.fhir.binaries import BINARY, RawContent, Upload, raw_resource
from samhandling.platform.fhir.content import parse_json
from samhandling.platform.fhir.engine import NO_PRECONDITIONS, FhirEngine
from samhandling.platform.fhir.errors import FhirError
from samhandling.platform.fhir.rest.bundle import process_bundle
from samhandling.platform.fhir.rest.capability import capability_statement
from samhandling.platform.fhir.rest.http import (
    check_acceptable,
    check_json_body,
    content_length,
    content_sha256,
    error_response,
    fhir_response,
    media_type,
    not_modified,
    patch_format,
    preconditions,
    prefer_handling,
    prefer_return,
    raw_content_type,
    raw_response,
    version_headers,
    wants_resource,
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
        self._capability_key: tuple[str, int] | None = None
        self._capability: dict = {}

    async def __call__(self, request: Request) -> Response:
        try:
            return await self._handle(request)
        except FhirError as error:
            return error_response(error)
        except Exception:
            log.exception("unexpected error in %s %s", request.method, request.scope["path"])
            return error_response(FhirError.of(500, "exception", "internal server error"))

    async def _handle(self, request: Request) -> Response:
        method = request.method
        scope = request.scope
        # a plain dict: Starlette's Headers scans the raw list on every lookup
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        params = request.query_params
        path = scope["path"][len(self.prefix) :]
        target = parse_target(path)
        raw = (
            method in ("GET", "HEAD")
            and _binary(target)
            and target.id is not None
            and not wants_resource(headers, params)
        )
        if not raw:
            check_acceptable(headers, params)
        base = self.base_url(scope, headers)
        if base not in self.engine.local_bases and len(self.engine.local_bases) < 64:
            self.engine.local_bases.add(base)
        if target.operation == "metadata":
            if method not in ("GET", "HEAD"):
                raise FhirError.of(405, "not-supported", "metadata is read-only")
            return fhir_response(self._capabilities(base))
        body: object = None
        fmt = None
        upload = None
        if method == "POST" and target.operation == "_search":
            params = QueryParams([*params.multi_items(), *await self._form(request, headers)])
        elif method in ("POST", "PUT") and _binary(target) and (kind := raw_content_type(headers)):
            body = raw_resource(kind, headers.get("x-security-context"), target.id)
            upload = self._upload(request, headers)
        elif method in _BODY_METHODS:
            fmt = patch_format(headers) if method == "PATCH" else None
            if method != "PATCH":
                check_json_body(headers)
            body = parse_json(await self._read_body(request, headers))
        if method == "POST" and target == Target():
            bundle = await process_bundle(
                self.engine, body, base, prefer_return(headers), scope.get(ACCESS_CONTEXT)
            )
            return fhir_response(bundle)
        interaction = Interaction(
            method=method,
            target=target,
            params=params,
            body=body,
            patch_format=fmt,
            preconditions=preconditions(headers)
            if method in ("PUT", "PATCH", "DELETE")
            else NO_PRECONDITIONS,
            prefer_return=prefer_return(headers) if method in _BODY_METHODS else "representation",
            base=base,
            strict=prefer_handling(headers) == "strict",
            if_none_exist=headers.get("if-none-exist") if method == "POST" else None,
            context=scope.get(ACCESS_CONTEXT),
            raw=raw,
            content=upload,
        )
        try:
            result = await execute(self.engine, interaction)
        finally:
            if upload is not None:
                upload.close()
        return _respond(method, headers, result, base)

    def _capabilities(self, base: str) -> dict:
        """The CapabilityStatement (rebuilt when the search parameters change)."""
        key = (base, id(self.engine.registry))
        if self._capability_key != key:
            self._capability = capability_statement(
                base,
                self.software_version,
                self._started,
                self.engine.registry,
                self.engine.conditional_delete_max,
                self.engine.operations,
            )
            self._capability_key = key
        return self._capability

    async def _form(self, request: Request, headers: dict[str, str]) -> list[tuple[str, str]]:
        """The parameters of a ``POST _search`` form body."""
        kind = media_type(headers)
        body = await self._read_body(request, headers)
        if not body:
            return []
        if kind != "application/x-www-form-urlencoded":
            raise FhirError.of(
                415,
                "not-supported",
                "POST _search takes application/x-www-form-urlencoded parameters",
            )
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            raise FhirError.of(400, "invalid", "the form body is not UTF-8") from None
        return parse_qsl(text, keep_blank_values=True)

    def _upload(self, request: Request, headers: dict[str, str]) -> Upload:
        """The body of a raw Binary write, to be received when the interaction runs."""
        limit = self.engine.max_binary_bytes
        return Upload(request.stream(), limit, content_length(headers), content_sha256(headers))

    async def _read_body(self, request: Request, headers: dict[str, str]) -> bytes:
        declared = content_length(headers)
        if declared is not None and declared > self.max_body_bytes:
            raise _too_large(self.max_body_bytes)
        chunks = []
        size = 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > self.max_body_bytes:
                raise _too_large(self.max_body_bytes)
            chunks.append(chunk)
        return b"".join(chunks)

    def base_url(self, scope: Scope, headers: dict[str, str]) -> str:
        """The FHIR base URL as the client addressed it."""
        host = headers.get("host")
        if not host:
            server_host, server_port = scope.get("server") or ("localhost", 80)
            host = f"{server_host}:{server_port}"
        return f"{scope['scheme']}://{host}{scope.get('root_path', '')}{self.prefix}"


def _respond(method: str, request_headers: dict[str, str], result: Result, base: str) -> Response:
    version = result.version
    headers = version_headers(version) if version is not None else {}
    headers.update(result.headers)
    if version is None:
        return fhir_response(result.body, result.status, headers)
    if result.location:
        headers["location"] = f"{base}/{version.type}/{version.id}/_history/{version.version}"
    if (
        method in ("GET", "HEAD")
        and result.status == 200
        and ("if-none-match" in request_headers or "if-modified-since" in request_headers)
        and not_modified(request_headers, version)
    ):
        return Response(status_code=304, headers=headers)
    if isinstance(result.body, RawContent):
        return raw_response(result.body, headers, head=method == "HEAD")
    return fhir_response(None if method == "HEAD" else result.body, result.status, headers)  # type: ignore[arg-type]


def _binary(target: Target) -> bool:
    """Whether ``target`` is the Binary type or one Binary (or a version of it), where raw
    content may be read or written (R4 binary.html#rest)."""
    return (
        target.type == BINARY
        and target.compartment is None
        and target.operation is None
        and (not target.history or target.version is not None)
    )


def _too_large(limit: int) -> FhirError:
    return FhirError.of(413, "too-costly", f"the request body is larger than {limit} bytes")
