"""Subsetting resources: ``_summary`` and ``_elements``."""

from __future__ import annotations

from samhandling.platform.fhir.definitions import TypeDef, type_def
from samhandling.platform.fhir.errors import FhirError

SUBSETTED = {
    "system": "http://terminology.hl7.org/CodeSystem/v3-ObservationValue",
    "code": "SUBSETTED",
    "display": "subsetted",
}
SUMMARY_MODES = frozenset({"true", "text", "data", "count", "false"})
_ALWAYS = ("resourceType", "id", "meta")


def summarize(resource: dict, mode: str) -> dict:
    """``resource`` reduced as ``_summary=mode`` asks (true, text, data or false)."""
    if mode == "false":
        return resource
    definition = type_def(resource["resourceType"])
    if definition is None:
        return resource
    if mode == "true":
        out = _summary_object(resource, definition)
    elif mode == "text":
        out = {
            k: v
            for k, v in resource.items()
            if k in _ALWAYS or k == "text" or _mandatory(definition, k)
        }
    elif mode == "data":
        out = {k: v for k, v in resource.items() if k != "text"}
    else:
        raise FhirError.of(400, "invalid", f"_summary={mode} is not valid here", "_summary")
    return _mark_subsetted(out)


def select_elements(resource: dict, names: list[str]) -> dict:
    """``resource`` with only the named top-level elements (plus id, meta and mandatory ones)."""
    definition = type_def(resource["resourceType"])
    if definition is None:
        return resource
    wanted = {name.strip() for name in names if name.strip()}
    out = {}
    for key, value in resource.items():
        element = definition.elements.get(key)
        base = element.choice if element is not None and element.choice else key
        if key in _ALWAYS or base in wanted or key in wanted or _mandatory(definition, key):
            out[key] = value
    return _mark_subsetted(out)


def _summary_object(value: dict, definition: TypeDef) -> dict:
    out = {}
    for key, item in value.items():
        element = definition.elements.get(key)
        if key == "resourceType":
            out[key] = item
            continue
        if element is None:
            # "_x" companions of primitives follow their element
            element = definition.elements.get(key[1:]) if key.startswith("_") else None
            if element is not None and (element.summary or element.min > 0):
                out[key] = item
            continue
        if not (element.summary or element.min > 0):
            continue
        nested = type_def(element.type) if element.type != "Resource" else None
        if nested is not None and nested.kind == "backbone":
            items = item if isinstance(item, list) else [item]
            reduced = [_summary_object(v, nested) if isinstance(v, dict) else v for v in items]
            out[key] = reduced if isinstance(item, list) else reduced[0]
        else:
            out[key] = item
    return out


def _mandatory(definition: TypeDef, key: str) -> bool:
    element = definition.elements.get(key)
    return element is not None and element.min > 0


def _mark_subsetted(resource: dict) -> dict:
    meta = dict(resource.get("meta") or {})
    tags = list(meta.get("tag") or [])
    if not any(
        t.get("code") == "SUBSETTED" and t.get("system") == SUBSETTED["system"] for t in tags
    ):
        tags.append(SUBSETTED)
    meta["tag"] = tags
    resource["meta"] = meta
    return resource
