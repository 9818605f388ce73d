"""The search interaction: type, system (``_type``) and compartment searches."""

from __future__ import annotations

from dataclasses import replace
from urllib.parse import urlencode

import orjson

from samhandling.platform.fhir.access import READ, SEARCH, Touched
from samhandling.platform.fhir.content import loads
from samhandling.platform.fhir.definitions import is_resource_type, patient_compartment
from samhandling.platform.fhir.elements import select_elements, summarize
from samhandling.platform.fhir.engine import FhirEngine
from samhandling.platform.fhir.errors import FhirError, Issue, operation_outcome
from samhandling.platform.fhir.search.executor import Row, SearchPage
from samhandling.platform.fhir.search.query import Compartment, SearchRequest
from samhandling.platform.fhir.storage import StoreTransaction


def search_types(target_type: str | None, items: list[tuple[str, str]]) -> tuple[str, ...]:
    """The types searched: the path's type, or those ``_type`` lists (none: every type)."""
    if target_type is not None:
        return (target_type,)
    types: list[str] = []
    for name, value in items:
        if name == "_type":
            for type_name in value.split(","):
                if not is_resource_type(type_name):
                    raise FhirError.of(
                        400, "invalid", f"_type: unknown type {type_name!r}", "_type"
                    )
                if type_name not in types:
                    types.append(type_name)
    return tuple(types)


def compartment_criterion(
    engine: FhirEngine, owner_type: str, owner_id: str, resource_types: tuple[str, ...]
) -> Compartment:
    """The criterion ``{owner_type}/{owner_id}/{type}`` adds to a search of one type, or
    ``{owner_type}/{owner_id}/*?_type=...`` to one of several."""
    if owner_type != "Patient":
        raise FhirError.of(
            400, "not-supported", f"only the Patient compartment is supported, not {owner_type}"
        )
    params = []
    for resource_type in resource_types:
        codes = patient_compartment().get(resource_type)
        if not codes:
            raise FhirError.of(400, "invalid", f"{resource_type} is not in the Patient compartment")
        params += [p for c in codes if (p := engine.registry.get(resource_type, c)) is not None]
    return Compartment(tuple(params), owner_type, owner_id)


async def run_search(
    engine: FhirEngine,
    *,
    path: str,
    target_type: str | None,
    items: list[tuple[str, str]],
    base: str,
    strict: bool,
    compartment: tuple[str, str] | None = None,
    tx: StoreTransaction | None = None,
    context: object = None,
    touched: list[Touched] | None = None,
    headers: dict[str, str] | None = None,
) -> dict:
    """The searchset Bundle of one page, as the caller (``context``) may see it (the
    resources in it added to ``touched``, the response headers the access control adds to
    ``headers``)."""
    types = search_types(target_type, items)
    request = engine.parse_search(types, items, strict=strict)
    if compartment is not None:
        if not types:
            raise FhirError.of(400, "invalid", "a compartment search names the types it searches")
        request.criteria.insert(
            0, compartment_criterion(engine, compartment[0], compartment[1], types)
        )
    if target_type is None:
        request.used.extend(("_type", t) for t in types)
    page = await visible_search(engine, request, base=base, tx=tx, context=context)
    if headers is not None:
        headers.update(page.headers)
    if touched is not None:
        touched.extend(
            Touched(r.type, r.id, r.version, r.content) for r in (*page.matches, *page.included)
        )
    return searchset(page, request, f"{base}/{path}", base)


async def visible_search(
    engine: FhirEngine,
    request: SearchRequest,
    *,
    base: str,
    tx: StoreTransaction | None = None,
    context: object = None,
) -> SearchPage:
    """One page of ``request`` as the caller may see it: the access control authorizes the
    caller for each searched type, narrows the query, annotates the page and presents each
    row (redacted, or left out)."""
    access = engine.access
    for type_name in request.types or (None,):  # no types: a search of every type
        await access.authorize(context, SEARCH, type_name)
    await access.narrow(context, request)
    page = await engine.search(request, base, tx)
    await access.annotate(context, request, page)
    page.matches = await visible_rows(engine, context, page.matches)
    page.included = await visible_rows(engine, context, page.included, check_type=True)
    return page


async def visible_rows(
    engine: FhirEngine, context: object, rows: list[Row], *, check_type: bool = False
) -> list[Row]:
    """The rows as the caller may see them (redacted, or left out); with ``check_type``,
    also leave out rows of types the caller may not read (included resources)."""
    access = engine.access
    visible = []
    for row in rows:
        if check_type:
            try:
                await access.authorize(context, READ, row.type)
            except FhirError:
                continue
        try:
            content = await access.present(context, row.type, row.content)
        except FhirError:  # refused for this caller: left out, as hidden ones are
            continue
        if content is None:
            continue
        visible.append(row if content is row.content else replace(row, content=content))
    return visible


def searchset(page: SearchPage, request: SearchRequest, self_url: str, base: str) -> dict:
    """Build the Bundle: links, matches, included resources and warnings."""
    links = [{"relation": "self", "url": _url(self_url, request.used)}]
    if page.next_cursor:
        links.append({"relation": "next", "url": _url(self_url, request.used, page.next_cursor)})
    if page.previous_cursor:
        links.append(
            {"relation": "previous", "url": _url(self_url, request.used, page.previous_cursor)}
        )
    entries = []
    if page.warnings:
        outcome = operation_outcome(
            [Issue("warning", "informational", message) for message in page.warnings]
        )
        entries.append({"resource": outcome, "search": {"mode": "outcome"}})
    for row in page.matches:
        entries.append(_entry(row, "match", request, base))
    for row in page.included:
        entries.append(_entry(row, "include", request, base))
    bundle: dict = {"resourceType": "Bundle", "type": "searchset"}
    if page.total is not None:
        bundle["total"] = page.total
    bundle["link"] = links
    if entries:
        bundle["entry"] = entries
    return bundle


def _entry(row: Row, mode: str, request: SearchRequest, base: str) -> dict:
    resource: object
    if request.summary not in (None, "false") or request.elements is not None:
        value = loads(row.content)
        assert isinstance(value, dict)
        if request.summary not in (None, "false", "count"):
            value = summarize(value, request.summary)  # type: ignore[arg-type]
        if request.elements is not None and mode == "match":
            value = select_elements(value, request.elements)
        resource = value
    else:
        resource = orjson.Fragment(row.content)
    return {
        "fullUrl": f"{base}/{row.type}/{row.id}",
        "resource": resource,
        "search": {"mode": mode},
    }


def _url(url: str, used: list[tuple[str, str]], cursor: str | None = None) -> str:
    items = [(k, v) for k, v in used if k != "_cursor"]
    if cursor is not None:
        items.append(("_cursor", cursor))
    return f"{url}?{urlencode(items)}" if items else url
