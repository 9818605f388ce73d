"""Index extraction: the rows a resource contributes to the search index tables.

`extract` runs every indexable parameter of the resource's type and turns each value into
rows of the parameter type's table. A row is ``(pid, grp, *values)``; the store adds the
resource's rid. ``grp`` is None except for composite components, where it numbers the
composite's root value so that the components of one value can be joined.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from typing import Any

from samhandling.platform.fhir.search.params import TABLE_OF_TYPE, SearchParam, SearchRegistry
from samhandling.platform.fhir.search.ucum import canonical
from samhandling.platform.fhir.search.values import (
    MAX_TIME,
    MIN_TIME,
    fold,
    split_reference,
    try_date_range,
)

IndexRows = dict[str, list[tuple]]  # table -> rows (pid, grp, *values)

UCUM = "http://unitsofmeasure.org"
_NAME_PARTS = ("text", "family", "given", "prefix", "suffix")
_ADDRESS_PARTS = ("text", "line", "city", "district", "state", "postalCode", "country")
_MAX_TEXT = 2048  # longer string values are indexed by their first 2048 characters


def extract(
    registry: SearchRegistry,
    resource_type: str,
    resource: dict,
    local_bases: Collection[str] = (),
) -> IndexRows:
    """Index rows of ``resource`` (parsed JSON of type ``resource_type``).

    Absolute references under one of ``local_bases`` (this server's base URLs) are indexed
    as the local ``Type/id`` they name.
    """
    rows: dict[str, set[tuple]] = {}
    for param in registry.indexed(resource_type):
        values = param.evaluate(resource)  # type: ignore[misc]
        if not values:
            continue
        if param.type == "composite":
            _composite(param, values, rows, local_bases)
        else:
            _add(param.type, param.pid, None, values, param, rows, local_bases)
    return {table: list(found) for table, found in rows.items()}


def _composite(
    param: SearchParam, roots: list, rows: dict[str, set[tuple]], local_bases: Collection[str]
) -> None:
    for grp, root in enumerate(roots):
        parts = [component.evaluate([root]) for component in param.components]
        if not all(parts):  # a composite value needs every component: this root never matches
            continue
        for component, values in zip(param.components, parts, strict=True):
            _add(
                component.type, component.pid, grp, values, param, rows, local_bases,
                component.types,
            )  # fmt: skip


def _add(
    kind: str,
    pid: int,
    grp: int | None,
    values: list,
    param: SearchParam,
    rows: dict[str, set[tuple]],
    local_bases: Collection[str],
    types: frozenset[str] | None = None,
) -> None:
    types = param.types if types is None else types
    table = TABLE_OF_TYPE[kind]
    target = rows.setdefault(table, set())
    if kind == "string":
        for text in _strings(values):
            text = text[:_MAX_TEXT]
            target.add((pid, grp, fold(text), text))
    elif kind == "token":
        for system, code, text in _tokens(values, types):
            target.add((pid, grp, system, code, text))
        of_type = param.derived.get("of-type")
        if of_type is not None and grp is None:
            for system, code in _identifier_types(values):
                target.add((of_type, None, system, code, None))
    elif kind == "reference":
        identifier_pid = param.derived.get("identifier")
        for item in values:
            if type(item) is str:  # canonical or uri
                target.add((pid, grp, None, None, item.partition("|")[0]))
            elif type(item) is dict:
                reference = item.get("reference")
                if type(reference) is str:
                    ref_type, ref_id, url = split_reference(_local(reference, local_bases))
                    if ref_type or url:
                        target.add((pid, grp, ref_type, ref_id, url))
                identifier = item.get("identifier")
                if identifier_pid is not None and type(identifier) is dict:
                    value = identifier.get("value")
                    if type(value) is str:
                        rows.setdefault("search_token", set()).add(
                            (identifier_pid, None, identifier.get("system"), value, None)
                        )
    elif kind == "date":
        for low, high in _dates(values):
            target.add((pid, grp, low, high))
    elif kind == "number":
        for item in values:
            number = _number(item)
            if number is not None:
                target.add((pid, grp, number))
    elif kind == "quantity":
        for item in values:
            row = _quantity(item)
            if row is not None:
                target.add((pid, grp, *row))
    elif kind == "uri":
        for item in values:
            if type(item) is str:
                target.add((pid, grp, item))


def _local(reference: str, local_bases: Collection[str]) -> str:
    """``{base}/Patient/1`` -> ``Patient/1`` when base is this server's."""
    if local_bases and "://" in reference:
        for base in local_bases:
            if reference.startswith(base) and reference[len(base) : len(base) + 1] == "/":
                return reference[len(base) + 1 :]
    return reference


def _strings(values: Iterable) -> Iterable[str]:
    for item in values:
        if type(item) is str:
            yield item
        elif type(item) is dict:
            parts = _NAME_PARTS if "family" in item or "given" in item else _ADDRESS_PARTS
            for key in parts:
                part = item.get(key)
                if type(part) is str:
                    yield part
                elif type(part) is list:
                    yield from (p for p in part if type(p) is str)
            if (
                "family" not in item
                and "given" not in item
                and not any(k in item for k in _ADDRESS_PARTS)
            ):
                yield from (v for v in item.values() if type(v) is str)


def _tokens(values: Iterable, types: frozenset[str]) -> Iterable[tuple[Any, Any, Any]]:
    for item in values:
        kind = type(item)
        if kind is str:
            yield None, item, None
        elif kind is bool:
            yield None, "true" if item else "false", None
        elif kind is int:
            yield None, str(item), None
        elif kind is dict:
            if "coding" in item or ("text" in item and "value" not in item and "code" not in item):
                text = item.get("text")
                for coding in item.get("coding") or ():
                    if type(coding) is dict:
                        yield _coding(coding)
                if type(text) is str:
                    yield None, None, fold(text)
            elif "value" in item and ("Identifier" in types or "ContactPoint" not in types):
                value = item.get("value")
                if type(value) is str:
                    kind_text = (item.get("type") or {}).get("text")
                    system = item.get("system") if "Identifier" in types else None
                    yield system, value, fold(kind_text) if type(kind_text) is str else None
            elif "value" in item:  # ContactPoint: the value is the token
                value = item.get("value")
                if type(value) is str:
                    yield None, value, None
            elif "code" in item or "system" in item:
                yield _coding(item)


def _coding(coding: dict) -> tuple[Any, Any, Any]:
    display = coding.get("display")
    code = coding.get("code")
    return (
        coding.get("system"),
        code if type(code) is str else None,
        fold(display) if type(display) is str else None,
    )


def _identifier_types(values: Iterable) -> Iterable[tuple[Any, str]]:
    """Rows for ``:of-type``: (type system, "type code|value")."""
    for item in values:
        if type(item) is not dict or type(item.get("value")) is not str:
            continue
        for coding in (item.get("type") or {}).get("coding") or ():
            if type(coding) is dict and type(coding.get("code")) is str:
                yield coding.get("system"), f"{coding['code']}|{item['value']}"


def _dates(values: Iterable) -> Iterable[tuple[int, int]]:
    for item in values:
        if type(item) is str:
            found = try_date_range(item)
            if found is not None:
                yield found
        elif type(item) is dict:
            if "start" in item or "end" in item:  # Period
                start = try_date_range(item.get("start"))
                end = try_date_range(item.get("end"))
                yield (start[0] if start else MIN_TIME), (end[1] if end else MAX_TIME)
            elif "event" in item or "repeat" in item:  # Timing
                events = [r for r in map(try_date_range, item.get("event") or ()) if r]
                bounds = (item.get("repeat") or {}).get("boundsPeriod")
                if type(bounds) is dict:
                    yield from _dates([bounds])
                if events:
                    yield min(e[0] for e in events), max(e[1] for e in events)


def _number(item: object) -> float | None:
    if type(item) is bool or not isinstance(item, int | float):
        return None
    return float(item)


def _quantity(item: object) -> tuple | None:
    if type(item) is not dict:
        return None
    value = _number(item.get("value"))
    if value is None:
        return None
    system = item.get("system")
    code = item.get("code")
    if type(code) is not str:
        code = item.get("unit") if type(item.get("unit")) is str else None
    if code is None and type(item.get("currency")) is str:  # Money
        system, code = "urn:iso:std:iso:4217", item["currency"]
    canon_value = canon_code = None
    if system == UCUM and type(code) is str:
        found = canonical(value, code)
        if found is not None:
            canon_value, canon_code = found
    return value, system if type(system) is str else None, code, canon_value, canon_code
