"""FHIR interactions described as plain values, and executed against the engine.

The HTTP endpoint and the Bundle (batch/transaction) processor both turn their input into
an `Interaction` and call `execute`, so single requests and Bundle entries behave alike.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime
from http import HTTPStatus
from urllib.parse import parse_qsl

import orjson
from starlette.datastructures import QueryParams

from samhandling.platform.fhir import access, binaries
from samhandling.platform.fhir.access import Accessed, Touched
from samhandling.platform.fhir.binaries import BINARY, Content, RawContent, Upload
from samhandling.platform.fhir.content import dumps, loads
from samhandling.platform.fhir.datetimes import (
    DateTimeFormatError,
    format_instant,
    parse_instant,
    parse_range,
)
from samhandling.platform.fhir.elements import SUMMARY_MODES, select_elements, summarize
from samhandling.platform.fhir.engine import (
    NO_PRECONDITIONS,
    FhirEngine,
    Preconditions,
    WriteResult,
)
from samhandling.platform.fhir.errors import FhirError, information, not_found
from samhandling.platform.fhir.ids import new_id
from samhandling.platform.fhir.operations import OperationCall, OperationParameters
from samhandling.platform.fhir.rest.search import run_search
from samhandling.platform.fhir.storage import HistoryQuery, ResourceVersion, StoreTransaction
from samhandling.platform.fhir.validation import check_resource_type

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 1000


@dataclass(frozen=True, slots=True)
class Target:
    """What a request path names, relative to the FHIR base."""

    type: str | None = None
    id: str | None = None
    history: bool = False
    version: str | None = None
    operation: str | None = None  # "$name", or "metadata", "_search"
    compartment: tuple[str, str] | None = None  # Patient/123/Observation: ("Patient", "123")

    def path(self) -> str:
        """The path back as text (without the base)."""
        if self.compartment is not None:
            owner_type, owner_id = self.compartment
            return "/".join((owner_type, owner_id, self.type or "*"))
        parts = [p for p in (self.type, self.id) if p]
        if self.history:
            parts.append("_history")
        if self.version:
            parts.append(self.version)
        if self.operation:
            parts.append(self.operation)
        return "/".join(parts)


@dataclass(frozen=True, slots=True)
class Interaction:
    """One request: from HTTP, or one Bundle entry."""

    method: str
    target: Target
    params: QueryParams = field(default_factory=QueryParams)
    body: object = None  # parsed JSON: a resource, Parameters, or a JSON Patch document
    patch_format: str | None = None
    preconditions: Preconditions = NO_PRECONDITIONS
    prefer_return: str = "representation"
    base: str = ""
    strict: bool = False  # Prefer: handling=strict
    if_none_exist: str | None = None  # conditional create criteria (a query string)
    context: object = None  # the caller, as the platform's access control knows them
    raw: bool = False  # a read of a Binary's content itself, not of the resource
    content: Upload | None = None  # a Binary's raw content (a create or update)


@dataclass(frozen=True, slots=True)
class Result:
    """What an interaction produced."""

    status: int
    version: ResourceVersion | None = None  # gives ETag, Last-Modified (and Location)
    body: bytes | dict | RawContent | None = None
    location: bool = False
    touched: tuple[Touched, ...] = ()  # the resources it returned (for the trail)
    headers: dict[str, str] = field(default_factory=dict)  # more HTTP response headers

    @property
    def status_line(self) -> str:
        """E.g. ``201 Created``, as in Bundle.entry.response.status."""
        return f"{self.status} {HTTPStatus(self.status).phrase}"


def parse_target(path: str) -> Target:
    """Split a path such as ``Patient/1/_history/2`` (no base, no query) into a Target."""
    path = path.strip("/")
    if not path:
        return Target()
    segments = path.split("/")
    first = segments[0]
    if len(segments) == 1:
        if first in ("metadata", "_history", "_search") or first.startswith("$"):
            return Target(
                history=first == "_history", operation=None if first == "_history" else first
            )
        return Target(type=first)
    second = segments[1]
    if len(segments) == 2:
        if second == "_history":
            return Target(type=first, history=True)
        if second.startswith("$") or second == "_search":
            return Target(type=first, operation=second)
        return Target(type=first, id=second)
    if len(segments) == 3 and segments[2] == "_history":
        return Target(type=first, id=second, history=True)
    if len(segments) == 3 and segments[2].startswith("$"):
        return Target(type=first, id=second, operation=segments[2])
    if len(segments) == 3 and segments[2] and segments[2][0].isupper():
        return Target(type=segments[2], compartment=(first, second))
    if len(segments) == 4 and segments[2] == "_history":
        return Target(type=first, id=second, history=True, version=segments[3])
    raise FhirError.of(404, "not-found", f"no FHIR interaction at {path!r}")


def interaction_kind(interaction: Interaction) -> str:
    """The kind of an interaction, as `AccessControl.authorize` receives it."""
    method, target = interaction.method, interaction.target
    if target.operation is not None and target.operation.startswith("$"):
        return access.OPERATION
    if target.operation == "_search" or (
        method in ("GET", "HEAD") and target.id is None and not target.history
    ):
        return access.SEARCH
    if method in ("GET", "HEAD"):
        return access.HISTORY if target.history and target.version is None else access.READ
    return {
        "POST": access.CREATE,
        "PUT": access.UPDATE,
        "PATCH": access.PATCH,
        "DELETE": access.DELETE,
    }.get(method, access.OPERATION)


async def authorize(engine: FhirEngine, interaction: Interaction) -> None:
    """Ask the access control whether the caller may run ``interaction`` at all (a search
    asks for each type it searches, once its ``_type`` parameter is read)."""
    kind = interaction_kind(interaction)
    if kind not in (access.SEARCH, access.OPERATION):  # those decide once they know more
        await engine.access.authorize(interaction.context, kind, interaction.target.type)


async def execute(
    engine: FhirEngine, interaction: Interaction, tx: StoreTransaction | None = None
) -> Result:
    """Run one interaction (inside ``tx`` when it is part of a transaction Bundle), and tell
    the engine's trail of it before returning: of reads, searches and operations here, of
    writes the engine does in their transaction; a failure outside a transaction here (one
    inside is the transaction owner's to report: it is rolled back)."""
    try:
        result = await _execute(engine, interaction, tx)
    except FhirError as error:
        if tx is None:
            await engine.trail.record(_accessed(engine, interaction, error.status, (), error), None)
        raise
    # writes are told by the engine; a write that wrote nothing but returned a resource (a
    # conditional create that found one) is told here, as what it showed
    if interaction_kind(interaction) not in access.WRITE_KINDS or result.touched:
        await engine.trail.record(_accessed(engine, interaction, result.status, result.touched), tx)
    return result


def _accessed(
    engine: FhirEngine,
    interaction: Interaction,
    status: int,
    touched: tuple[Touched, ...],
    error: FhirError | None = None,
) -> Accessed:
    target = interaction.target
    query = str(interaction.params) or interaction.if_none_exist or None
    governed_by = None
    if target.operation is not None:
        operation = engine.operations.find(target.operation[1:], target.type, target.id)
        governed_by = operation.access_type if operation is not None else None
    return Accessed(
        interaction.context,
        interaction_kind(interaction),
        target.type,
        target.path(),
        query,
        list(touched),
        status,
        error,
        governed_by,
    )


async def _execute(
    engine: FhirEngine, interaction: Interaction, tx: StoreTransaction | None = None
) -> Result:
    await authorize(engine, interaction)
    if interaction.content is not None:  # received once the caller may write, before any
        await interaction.content.receive()  # transaction (a slow upload holds no lock)
    method, target = interaction.method, interaction.target
    if (target.operation == "_search" and method == "POST") or (
        method in ("GET", "HEAD")
        and target.id is None
        and not target.history
        and target.operation is None
    ):
        return await search(engine, interaction, tx)
    if target.operation is not None and target.operation.startswith("$"):
        return await run_operation(engine, interaction)
    if target.operation is not None:
        raise FhirError.of(404, "not-supported", f"{method} {target.path()} is not supported")
    if target.type is None:
        if target.history and method in ("GET", "HEAD"):
            return await history(engine, interaction, tx)
        raise FhirError.of(
            405, "not-supported", f"{method} on {target.path() or 'the base'} is not supported here"
        )
    check_resource_type(target.type)
    if target.history and target.version is None:
        if method in ("GET", "HEAD"):
            return await history(engine, interaction, tx)
        raise _method_not_allowed(method, target)
    if target.version is not None:
        if method in ("GET", "HEAD"):
            found = await engine.vread(target.type, target.id, target.version, tx)  # type: ignore[arg-type]
            return await _read_result(engine, interaction, found, tx, current=False)
        raise _method_not_allowed(method, target)
    if target.id is None:
        if method == "POST" and interaction.if_none_exist is not None:
            return await _conditional_create(engine, interaction, tx)
        if method == "POST":
            created = await engine.create(
                target.type,
                interaction.body,
                tx,
                context=interaction.context,
                content=await _received(interaction),
            )
            return await visible_write_result(engine, interaction, created)
        if method in ("PUT", "PATCH", "DELETE") and criteria_of(interaction.params):
            return await _conditional(engine, interaction, tx)
        raise _method_not_allowed(method, target)
    if method in ("GET", "HEAD"):
        found = await engine.read(target.type, target.id, tx)
        return await _read_result(engine, interaction, found, tx)
    if method == "PUT":
        written = await engine.update(
            target.type,
            target.id,
            interaction.body,
            interaction.preconditions,
            tx,
            context=interaction.context,
            content=await _received(interaction),
        )
        return await visible_write_result(engine, interaction, written)
    if method == "PATCH":
        patched = await engine.patch(
            target.type,
            target.id,
            interaction.body,
            interaction.patch_format or "",
            interaction.preconditions,
            tx,
            context=interaction.context,
        )
        return await visible_write_result(engine, interaction, patched)
    if method == "DELETE":
        deleted = await engine.delete(
            target.type, target.id, interaction.preconditions, tx, context=interaction.context
        )
        return Result(204, deleted.resource if deleted else None)
    raise _method_not_allowed(method, target)


async def _received(interaction: Interaction) -> Content | None:
    """A raw write's content (received by `_execute` after `authorize`)."""
    return await interaction.content.receive() if interaction.content is not None else None


async def run_operation(engine: FhirEngine, interaction: Interaction) -> Result:
    """A ``$name`` operation: its parameters from the query or a Parameters body."""
    method, target = interaction.method, interaction.target
    assert target.operation is not None
    name = target.operation[1:]
    if target.type is not None:
        check_resource_type(target.type)
    operation = engine.operations.find(name, target.type, target.id)
    if operation is None:
        where = f"{target.type} instances" if target.id else target.type or "the system"
        raise FhirError.of(501, "not-supported", f"{target.operation} is not supported on {where}")
    kind = access.OPERATION if operation.affects_state else access.READ
    await engine.access.authorize(interaction.context, kind, operation.access_type or target.type)
    if method in ("GET", "HEAD") and not operation.affects_state:
        parameters = OperationParameters.from_query(interaction.params.multi_items())
    elif method == "POST":
        parameters = OperationParameters.from_resource(interaction.body)
    else:
        allowed = "POST" if operation.affects_state else "GET or POST"
        raise FhirError.of(405, "not-supported", f"{target.operation} takes {allowed}")
    call = OperationCall(target.type, target.id, parameters, interaction.context, interaction.base)
    body = await operation.handler(call)
    return Result(200, None, dumps(body), touched=tuple(call.touched), headers=call.headers)


def criteria_of(params: QueryParams) -> list[tuple[str, str]]:
    """The search criteria of a conditional interaction (format parameters left out)."""
    return [(k, v) for k, v in params.multi_items() if k not in ("_format", "_pretty")]


async def _conditional_create(
    engine: FhirEngine, interaction: Interaction, tx: StoreTransaction | None
) -> Result:
    criteria = parse_qsl(interaction.if_none_exist or "", keep_blank_values=True)
    if not criteria:
        raise FhirError.of(400, "invalid", "If-None-Exist must carry search criteria")
    async with engine.transaction(tx) as t:
        written = await engine.conditional_create(
            interaction.target.type,  # type: ignore[arg-type]
            interaction.body,
            criteria,
            t,
            context=interaction.context,
            content=await _received(interaction),
        )
    if written.created:
        return await visible_write_result(engine, interaction, written)
    version = written.resource
    body = None
    if interaction.prefer_return != "minimal":
        body = await visible_content(engine, interaction.context, version)
    return Result(200, version, body, touched=(_touched(version),))


async def resolve_conditional(
    engine: FhirEngine, interaction: Interaction, tx: StoreTransaction
) -> list[Interaction]:
    """The plain interactions a conditional PUT, PATCH or DELETE stands for, inside ``tx``.

    DELETE: one per match (none when nothing matches). PATCH: the one match (404 when
    nothing matches). PUT: the match, or a create with the body's id or a new one.
    """
    method, type_ = interaction.method, interaction.target.type
    assert type_ is not None
    found = await engine.conditional_target(method, type_, criteria_of(interaction.params), tx)
    if method == "PATCH" and not found:
        raise FhirError.of(404, "not-found", f"no {type_} matches the criteria")
    if method == "PUT":
        body = interaction.body
        body_id = body.get("id") if isinstance(body, dict) else None
        if found and body_id is not None and body_id != found[0]:
            raise FhirError.of(
                400,
                "invalid",
                f"the body's id {body_id!r} is not the id of the matching {type_} ({found[0]})",
                f"{type_}.id",
            )
        id = found[0] if found else (body_id if isinstance(body_id, str) else new_id())
        if isinstance(body, dict):
            interaction = replace(interaction, body={**body, "id": id})
        found = [id]
    return [
        replace(interaction, target=Target(type=type_, id=id), params=QueryParams()) for id in found
    ]


async def _conditional(
    engine: FhirEngine, interaction: Interaction, tx: StoreTransaction | None
) -> Result:
    """Conditional update, patch or delete: the criteria pick the resource(s)."""
    async with engine.transaction(tx) as t:
        plain = await resolve_conditional(engine, interaction, t)
        results = [await execute(engine, one, t) for one in plain]
    if len(results) == 1:
        return results[0]
    return Result(204)  # a conditional DELETE of none or several resources


async def search(
    engine: FhirEngine, interaction: Interaction, tx: StoreTransaction | None
) -> Result:
    """A type, system or compartment search."""
    target = interaction.target
    if target.compartment is not None:
        check_resource_type(target.compartment[0])
    if target.type is not None:
        check_resource_type(target.type)
    touched: list[Touched] = []
    headers: dict[str, str] = {}
    bundle = await run_search(
        engine,
        path=target.path() if target.operation != "_search" else (target.type or ""),
        target_type=target.type,
        items=interaction.params.multi_items(),
        base=interaction.base,
        strict=interaction.strict,
        compartment=target.compartment,
        tx=tx,
        context=interaction.context,
        touched=touched,
        headers=headers,
    )
    return Result(200, None, dumps(bundle), touched=tuple(touched), headers=headers)


def _method_not_allowed(method: str, target: Target) -> FhirError:
    return FhirError.of(405, "not-supported", f"{method} is not allowed on {target.path()}")


async def visible_content(
    engine: FhirEngine, context: object, version: ResourceVersion, current: bool = True
) -> bytes:
    """The stored content as the caller may see it; 404 when they may not see it at all."""
    assert version.content is not None
    content = await engine.access.present(context, version.type, version.content, current)
    if content is None:
        raise not_found(version.type, version.id)
    return content


async def _read_result(
    engine: FhirEngine,
    interaction: Interaction,
    version: ResourceVersion,
    tx: StoreTransaction | None,
    current: bool = True,
) -> Result:
    params = interaction.params
    summary = params.get("_summary")
    elements = params.get("_elements")
    content = await visible_content(engine, interaction.context, version, current)
    touched = (Touched(version.type, version.id, version.version, content),)
    if version.type == BINARY:
        source = tx if tx is not None else engine.store
        if interaction.raw:
            return await _raw_result(source, version, content, touched)
        if interaction.method != "HEAD":  # a HEAD sends no body: the data stays where it is
            content = await binaries.attach(source, version, content)
    if summary is None and elements is None:
        return Result(200, version, content, touched=touched)
    resource = loads(content)
    if summary is not None:
        if summary not in SUMMARY_MODES or summary == "count":
            raise FhirError.of(
                400, "invalid", f"_summary={summary} is not valid on a read", "_summary"
            )
        resource = summarize(resource, summary)
    if elements is not None:
        resource = select_elements(resource, elements.split(","))
    return Result(200, version, resource, touched=touched)


async def _raw_result(
    source: binaries.ContentSource,
    version: ResourceVersion,
    shown: bytes,
    touched: tuple[Touched, ...],
) -> Result:
    """A raw read of a Binary: its content, and the reference in its securityContext."""
    resource = loads(shown)
    assert isinstance(resource, dict)
    raw = await binaries.raw_content(source, version, resource)
    context = resource.get("securityContext")
    reference = context.get("reference") if isinstance(context, dict) else None
    headers = {"x-security-context": reference} if isinstance(reference, str) else {}
    return Result(200, version, raw, touched=touched, headers=headers)


def _touched(version: ResourceVersion) -> Touched:
    return Touched(version.type, version.id, version.version, version.content)


def write_result(interaction: Interaction, written: WriteResult) -> Result:
    """The result of a create, update or patch, shaped by `Prefer: return=...`."""
    status = 201 if written.created else 200
    version = written.resource
    prefer = interaction.prefer_return
    if prefer == "minimal":
        body = None
    elif prefer == "OperationOutcome":
        done = "created" if written.created else "updated"
        body = information(f"{version.type}/{version.id} version {version.version} {done}")
        body["issue"].extend(issue.to_json() for issue in written.warnings)
    else:
        body = version.content
    return Result(status, version, body, location=True)


async def visible_write_result(
    engine: FhirEngine, interaction: Interaction, written: WriteResult
) -> Result:
    """`write_result`, with the returned representation as the caller may see it."""
    result = write_result(interaction, written)
    if isinstance(result.body, bytes):
        content = await engine.access.present(
            interaction.context, written.resource.type, result.body
        )
        return replace(result, body=content)
    return result


async def history(
    engine: FhirEngine, interaction: Interaction, tx: StoreTransaction | None
) -> Result:
    """A history Bundle (instance, type or system), newest first, with keyset paging."""
    target, params = interaction.target, interaction.params
    count = _int_param(params, "_count", minimum=0)
    query = HistoryQuery(
        type=target.type,
        id=target.id,
        since=_instant_param(params, "_since"),
        at=_range_param(params, "_at"),
        before_seq=_int_param(params, "_cursor", minimum=1),
        count=DEFAULT_PAGE_SIZE if count is None else min(count, MAX_PAGE_SIZE),
    )
    rows = await engine.history(query, tx)
    more = len(rows) > query.count
    rows = rows[: query.count]
    base = interaction.base
    self_url = f"{base}/{target.path()}"
    links = [{"relation": "self", "url": _with_params(self_url, params, {})}]
    if more and rows:
        links.append(
            {
                "relation": "next",
                "url": _with_params(self_url, params, {"_cursor": str(rows[-1].seq)}),
            }
        )
    entries = []
    touched = []
    present = engine.access.present
    for row in rows:
        version = row.resource
        entry: dict = {"fullUrl": f"{base}/{version.type}/{version.id}"}
        shown = version.content
        if shown is None and version.version > 1:  # a deletion: shown if what it deleted is
            deleted = await engine.store.vread(version.type, version.id, version.version - 1)
            shown = deleted.content if deleted is not None else None
        if shown is not None:
            try:
                content = await present(interaction.context, version.type, shown, False)
            except FhirError:  # refused for this caller: left out, as hidden ones are
                continue
            if content is None:
                continue
            if version.content is not None:
                entry["resource"] = orjson.Fragment(content)
                touched.append(Touched(version.type, version.id, version.version, content))
        entry["request"] = {
            "method": row.method,
            "url": version.type if row.method == "POST" else f"{version.type}/{version.id}",
        }
        entry["response"] = {
            "status": {"POST": "201 Created", "DELETE": "204 No Content"}.get(row.method, "200 OK"),
            "etag": f'W/"{version.version}"',
            "lastModified": format_instant(version.last_updated),
        }
        entries.append(entry)
    bundle = {"resourceType": "Bundle", "type": "history", "link": links, "entry": entries}
    if not entries:
        del bundle["entry"]
    return Result(200, None, dumps(bundle), touched=tuple(touched))


def _with_params(url: str, params: QueryParams, override: dict[str, str]) -> str:
    items = [(k, v) for k, v in params.multi_items() if k not in override and k != "_cursor"]
    items.extend(override.items())
    return f"{url}?{QueryParams(items)}" if items else url


def _instant_param(params: QueryParams, name: str) -> datetime | None:
    value = params.get(name)
    if value is None:
        return None
    try:
        return parse_instant(value)
    except DateTimeFormatError as exc:
        raise FhirError.of(400, "invalid", f"{name}: {exc}", name) from None


def _range_param(params: QueryParams, name: str) -> tuple[datetime, datetime] | None:
    value = params.get(name)
    if value is None:
        return None
    try:
        return parse_range(value)
    except DateTimeFormatError as exc:
        raise FhirError.of(400, "invalid", f"{name}: {exc}", name) from None


def _int_param(params: QueryParams, name: str, *, minimum: int) -> int | None:
    value = params.get(name)
    if value is None:
        return None
    if not (value.isascii() and value.isdigit()) or len(value) > 12 or int(value) < minimum:
        raise FhirError.of(
            400, "invalid", f"{name} must be an integer >= {minimum}, not {value!r}", name
        )
    return int(value)
