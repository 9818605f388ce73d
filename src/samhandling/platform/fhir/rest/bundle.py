"""Batch and transaction Bundles (POST to the base).

A transaction is atomic: one store transaction, entries processed in the order the spec
requires (DELETE, POST, PUT/PATCH, GET/HEAD), ``urn:uuid:`` and other fullUrls of new
resources rewritten to the ids the server assigns. A batch runs every entry on its own.
"""

from __future__ import annotations

import base64
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from urllib.parse import parse_qsl

import orjson
from starlette.datastructures import QueryParams

from samhandling.platform.fhir.access import TRANSACTION, Accessed
from samhandling.platform.fhir.content import loads
from samhandling.platform.fhir.datetimes import format_instant
from samhandling.platform.fhir.definitions import is_resource_type
from samhandling.platform.fhir.engine import (
    FHIRPATH_PATCH,
    JSON_PATCH,
    NO_PRECONDITIONS,
    FhirEngine,
    Preconditions,
)
from samhandling.platform.fhir.errors import FhirError, Issue
from samhandling.platform.fhir.ids import new_id
from samhandling.platform.fhir.rest.http import parse_etag
from samhandling.platform.fhir.rest.interactions import (
    Interaction,
    Result,
    authorize,
    criteria_of,
    execute,
    parse_target,
    resolve_conditional,
    visible_content,
    visible_write_result,
)
from samhandling.platform.fhir.storage import StoreTransaction
from samhandling.platform.fhir.walk import find

log = logging.getLogger(__name__)

_ORDER = {"DELETE": 0, "POST": 1, "PUT": 2, "PATCH": 2, "GET": 3, "HEAD": 3}
MAX_ENTRIES = 10_000
_REFERENCE = frozenset({"Reference"})
# R4 (http.html#trules) has links to a new resource's fullUrl replaced in elements of type
# url too: Attachment.url is how a DocumentReference names its Binary (IHE MHD ITI-65)
_REFERENCE_OR_ATTACHMENT = frozenset({"Reference", "Attachment"})


@dataclass(slots=True)
class Entry:
    """A parsed Bundle entry."""

    index: int
    interaction: Interaction
    full_url: str | None
    new_id: str | None = None  # pre-assigned id of a POST inside a transaction
    result: Result | None = None  # decided while resolving conditions (e.g. it exists)
    more: tuple[Interaction, ...] = ()  # further deletions a conditional DELETE stands for


async def process_bundle(
    engine: FhirEngine, bundle: object, base: str, prefer_return: str, context: object = None
) -> dict:
    """Run a batch or transaction Bundle for the caller ``context``; returns the response."""
    if not isinstance(bundle, dict) or bundle.get("resourceType") != "Bundle":
        raise FhirError.of(
            400, "invalid", "POST to the base takes a Bundle of type batch or transaction"
        )
    kind = bundle.get("type")
    if kind not in ("batch", "transaction"):
        raise FhirError.of(
            400, "invalid", f"Bundle.type must be batch or transaction, not {kind!r}", "Bundle.type"
        )
    raw_entries = bundle.get("entry", [])
    if not isinstance(raw_entries, list):
        raise FhirError.of(400, "structure", "Bundle.entry must be an array", "Bundle.entry")
    if len(raw_entries) > MAX_ENTRIES:
        raise FhirError.of(
            413, "too-costly", f"a Bundle may have at most {MAX_ENTRIES} entries", "Bundle.entry"
        )
    if kind == "transaction":
        entries = [
            _parse_entry(i, raw, base, prefer_return, context) for i, raw in enumerate(raw_entries)
        ]
        try:
            issues = [issue for check in engine.transaction_checks for issue in check(bundle)]
            errors = [issue for issue in issues if issue.severity in ("error", "fatal")]
            if errors:
                raise FhirError(422, errors)
            results = await _transaction(engine, entries)
        except FhirError as error:  # rolled back: what its entries recorded is gone too
            failed = Accessed(context, TRANSACTION, None, "", status=error.status, error=error)
            await engine.trail.record(failed, None)
            raise
    else:
        results = await _batch(engine, raw_entries, base, prefer_return, context)
    return {
        "resourceType": "Bundle",
        "type": f"{kind}-response",
        "entry": [_response_entry(result, base) for result in results],
    }


async def _transaction(engine: FhirEngine, entries: list[Entry]) -> list[Result]:
    for entry in entries:
        with _in_entry(entry):
            await authorize(engine, entry.interaction)
    _assign_ids(entries)
    results: dict[int, Result] = {}
    async with engine.transaction() as tx:
        for entry in entries:
            with _in_entry(entry):
                await _resolve_condition(engine, entry, tx)
        _check_distinct_targets(entries)
        _rewrite_references(entries)
        for entry in entries:
            with _in_entry(entry):
                await _resolve_conditional_references(engine, entry, tx)
        creates = [e for e in entries if e.interaction.method == "POST" and e.result is None]
        new_resources = []
        for entry in creates:
            with _in_entry(entry):
                type_ = entry.interaction.target.type
                body, _ = await engine.prepare_create(type_, entry.interaction.body)  # type: ignore[arg-type]
                new_resources.append((type_, entry.new_id, body))
        for entry in entries:
            if entry.result is not None:
                results[entry.index] = entry.result
        for entry in entries:
            if entry.interaction.method == "DELETE" and entry.result is None:
                with _in_entry(entry):
                    for extra in entry.more:
                        await execute(engine, extra, tx)
                    results[entry.index] = await execute(engine, entry.interaction, tx)
        if creates:
            written = await engine.create_many(
                new_resources,  # type: ignore[arg-type]
                tx,
                context=entries[0].interaction.context,
            )
            for entry, write in zip(creates, written, strict=True):
                results[entry.index] = await visible_write_result(engine, entry.interaction, write)
        for phase in (("PUT", "PATCH"), ("GET", "HEAD")):
            for entry in entries:
                if entry.interaction.method in phase and entry.result is None:
                    with _in_entry(entry):
                        results[entry.index] = await execute(engine, entry.interaction, tx)
    return [results[e.index] for e in entries]


async def _resolve_condition(engine: FhirEngine, entry: Entry, tx: StoreTransaction) -> None:
    """Turn a conditional entry into a plain one (or decide its result) inside ``tx``."""
    interaction = entry.interaction
    method, target = interaction.method, interaction.target
    if method == "POST" and interaction.if_none_exist is not None:
        criteria = parse_qsl(interaction.if_none_exist, keep_blank_values=True)
        existing = await engine.existing_match(target.type, criteria, tx)  # type: ignore[arg-type]
        if existing is not None:
            entry.new_id = existing.id
            content = await visible_content(engine, interaction.context, existing)
            entry.result = Result(200, existing, content)
        return
    if method not in ("PUT", "PATCH", "DELETE") or target.id is not None:
        return
    if not criteria_of(interaction.params):
        return
    plain = await resolve_conditional(engine, interaction, tx)
    if not plain:  # a conditional DELETE that matched nothing
        entry.result = Result(204)
        return
    entry.interaction, entry.more = plain[0], tuple(plain[1:])


async def _resolve_conditional_references(
    engine: FhirEngine, entry: Entry, tx: StoreTransaction
) -> None:
    """Replace ``Type?criteria`` references in the entry's resource by ``Type/id``."""
    body = entry.interaction.body
    if entry.result is not None or entry.interaction.method not in ("POST", "PUT"):
        return
    if not isinstance(body, dict):
        return
    for node in find(body, _REFERENCE):
        if isinstance(node.value, dict):
            reference = node.value.get("reference")
            if isinstance(reference, str) and "?" in reference and "://" not in reference:
                node.value["reference"] = await engine.resolve_reference(reference, tx)


async def _batch(
    engine: FhirEngine, raw_entries: list, base: str, prefer_return: str, context: object
) -> list[Result | FhirError]:
    """Every entry on its own; a failing entry gets its error, the others still run."""
    parsed: list[Entry | FhirError] = []
    for index, raw in enumerate(raw_entries):
        try:
            parsed.append(_parse_entry(index, raw, base, prefer_return, context))
        except FhirError as error:
            parsed.append(error)
    results: dict[int, Result | FhirError] = {}
    for index, item in enumerate(parsed):
        if isinstance(item, FhirError):
            results[index] = item
    runnable = sorted(
        (e for e in parsed if isinstance(e, Entry)), key=lambda e: _ORDER[e.interaction.method]
    )
    for entry in runnable:
        try:
            with _in_entry(entry):
                results[entry.index] = await execute(engine, entry.interaction)
        except FhirError as error:
            results[entry.index] = error
    return [results[index] for index in range(len(parsed))]


@contextmanager
def _in_entry(entry: Entry) -> Iterator[None]:
    """Re-raise errors of one entry with where in the Bundle they arose."""
    try:
        yield
    except FhirError as error:
        where = f"Bundle.entry[{entry.index}]"
        label = f"{where} ({entry.interaction.method} {entry.interaction.target.path()})"
        error.issues = [
            Issue(
                issue.severity,
                issue.code,
                f"{label}: {issue.diagnostics}",
                tuple(_entry_expression(where, e) for e in issue.expression),
            )
            for issue in error.issues
        ]
        raise


def _entry_expression(where: str, expression: str) -> str:
    """``Patient.gender`` inside entry 1 is ``Bundle.entry[1].resource.gender``."""
    head, dot, rest = expression.partition(".")
    if is_resource_type(head) or head == "Parameters":
        return f"{where}.resource{dot}{rest}"
    if expression == "resourceType":
        return f"{where}.resource.resourceType"
    return expression


def _parse_entry(
    index: int, raw: object, base: str, prefer_return: str, context: object = None
) -> Entry:
    where = f"Bundle.entry[{index}]"

    def fail(message: str, expression: str) -> FhirError:
        return FhirError.of(400, "invalid", f"{where}: {message}", expression)

    if not isinstance(raw, dict):
        raise fail("an entry must be an object", where)
    request = raw.get("request")
    if not isinstance(request, dict):
        raise fail("entry.request is required in a batch or transaction", f"{where}.request")
    method = request.get("method")
    if not isinstance(method, str) or method not in _ORDER:
        raise fail(f"request.method must be one of {', '.join(_ORDER)}", f"{where}.request.method")
    url = request.get("url")
    if not isinstance(url, str) or not url:
        raise fail("request.url is required", f"{where}.request.url")
    if url.startswith(base + "/"):
        url = url[len(base) + 1 :]
    elif "://" in url:
        raise fail(f"request.url {url!r} is not on this server", f"{where}.request.url")
    path, _, query = url.partition("?")
    target = parse_target(path)
    if query and method != "GET" and target.id is not None:
        raise fail(
            f"{method} {path} names a resource; search criteria belong on the type "
            f"({target.type}?...)",
            f"{where}.request.url",
        )
    if_none_exist = request.get("ifNoneExist")
    if if_none_exist is not None and (not isinstance(if_none_exist, str) or not if_none_exist):
        raise fail("request.ifNoneExist must be a query string", f"{where}.request.ifNoneExist")
    resource = raw.get("resource")
    body: object = None
    patch_format = None
    if method in ("POST", "PUT"):
        if not isinstance(resource, dict):
            raise fail(f"a {method} entry needs a resource", f"{where}.resource")
        body = resource
    elif method == "PATCH":
        body, patch_format = _patch_body(resource, where)
    full_url = raw.get("fullUrl")
    if full_url is not None and not isinstance(full_url, str):
        raise fail("fullUrl must be a string", f"{where}.fullUrl")
    return Entry(
        index,
        Interaction(
            method=method,
            target=target,
            params=QueryParams(query),
            body=body,
            patch_format=patch_format,
            preconditions=_entry_preconditions(request, where),
            prefer_return=prefer_return,
            base=base,
            if_none_exist=if_none_exist if method == "POST" else None,
            context=context,
        ),
        full_url,
    )


def _patch_body(resource: object, where: str) -> tuple[object, str]:
    """A PATCH entry carries a Parameters resource (FHIRPath Patch) or a Binary (JSON Patch)."""
    if isinstance(resource, dict) and resource.get("resourceType") == "Parameters":
        return resource, FHIRPATH_PATCH
    if isinstance(resource, dict) and resource.get("resourceType") == "Binary":
        if resource.get("contentType") != "application/json-patch+json":
            raise FhirError.of(
                415,
                "not-supported",
                f"{where}: a Binary patch must be application/json-patch+json",
                f"{where}.resource",
            )
        try:
            return loads(base64.b64decode(resource.get("data", ""), validate=True)), JSON_PATCH
        except (ValueError, TypeError, orjson.JSONDecodeError):
            raise FhirError.of(
                400,
                "invalid",
                f"{where}: Binary.data is not base64-encoded JSON",
                f"{where}.resource.data",
            ) from None
    raise FhirError.of(
        400,
        "invalid",
        f"{where}: a PATCH entry needs a Parameters or Binary resource",
        f"{where}.resource",
    )


def _entry_preconditions(request: dict, where: str) -> Preconditions:
    if_match = request.get("ifMatch")
    if_none_match = request.get("ifNoneMatch")
    if if_match is None and if_none_match is None:
        return NO_PRECONDITIONS
    if if_match is not None and not isinstance(if_match, str):
        raise FhirError.of(
            400, "invalid", f"{where}: request.ifMatch must be a string", f"{where}.request.ifMatch"
        )
    return Preconditions(
        if_match=parse_etag(if_match, "ifMatch") if if_match else None,
        if_none_match_any=isinstance(if_none_match, str) and if_none_match.strip() == "*",
    )


def _assign_ids(entries: list[Entry]) -> None:
    """Give every POST its id now, so references to its fullUrl can be rewritten."""
    for entry in entries:
        if entry.interaction.method == "POST":
            if entry.interaction.target.id is not None:
                raise FhirError.of(
                    400, "invalid", f"Bundle.entry[{entry.index}]: POST must name a type, not an id"
                )
            entry.new_id = new_id()


def _check_distinct_targets(entries: list[Entry]) -> None:
    """A transaction may not touch the same resource twice, nor reuse a fullUrl."""
    seen: dict[str, int] = {}
    full_urls: dict[str, int] = {}
    for entry in entries:
        target = entry.interaction.target
        if entry.full_url:
            if entry.full_url in full_urls:
                raise FhirError.of(
                    400,
                    "invalid",
                    f"Bundle.entry[{entry.index}]: fullUrl {entry.full_url!r} is used by "
                    f"entry {full_urls[entry.full_url]} too",
                    f"Bundle.entry[{entry.index}].fullUrl",
                )
            full_urls[entry.full_url] = entry.index
        if entry.interaction.method in ("PUT", "PATCH", "DELETE") and target.id:
            key = f"{target.type}/{target.id}"
            if key in seen:
                raise FhirError.of(
                    400,
                    "invalid",
                    f"Bundle.entry[{entry.index}]: {key} is changed by entry {seen[key]} too",
                    f"Bundle.entry[{entry.index}].request.url",
                )
            seen[key] = entry.index


def _rewrite_references(entries: list[Entry]) -> None:
    """Point references to a new or updated resource's fullUrl at its server id."""
    mapping: dict[str, str] = {}
    for entry in entries:
        target = entry.interaction.target
        if not entry.full_url:
            continue
        if entry.interaction.method == "POST":
            mapping[entry.full_url] = f"{target.type}/{entry.new_id}"
        elif entry.interaction.method == "PUT" and target.id:
            mapping[entry.full_url] = f"{target.type}/{target.id}"
    if not mapping:
        return
    for entry in entries:
        body = entry.interaction.body
        if isinstance(body, dict) and entry.interaction.method in ("POST", "PUT"):
            for node in find(body, _REFERENCE_OR_ATTACHMENT):
                if isinstance(node.value, dict):
                    key = "url" if node.element.type == "Attachment" else "reference"
                    reference = node.value.get(key)
                    if isinstance(reference, str) and reference in mapping:
                        node.value[key] = mapping[reference]


def _response_entry(result: Result | FhirError, base: str) -> dict:
    if isinstance(result, FhirError):
        return {"response": {"status": f"{result.status}", "outcome": result.outcome()}}
    response: dict = {"status": result.status_line}
    entry: dict = {}
    version = result.version
    if version is not None:
        if version.content is not None:
            entry["fullUrl"] = f"{base}/{version.type}/{version.id}"
        if result.location:
            response["location"] = f"{version.type}/{version.id}/_history/{version.version}"
        response["etag"] = f'W/"{version.version}"'
        response["lastModified"] = format_instant(version.last_updated)
    if isinstance(result.body, bytes):
        entry["resource"] = orjson.Fragment(result.body)
    elif isinstance(result.body, dict):
        if result.body.get("resourceType") == "OperationOutcome":
            response["outcome"] = result.body
        else:
            entry["resource"] = result.body
    entry["response"] = response
    return entry
