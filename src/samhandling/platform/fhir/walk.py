"""Type-aware traversal of resource JSON, driven by the R4 element definitions."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from samhandling.platform.fhir.definitions import ElementDef, is_resource_type, type_def


@dataclass(frozen=True, slots=True)
class Node:
    """A value found in a resource, with its element definition and FHIRPath-style location."""

    value: object
    element: ElementDef
    path: str  # e.g. "Observation.component[1].valueQuantity"


def walk(resource: dict, path: str | None = None) -> Iterator[Node]:
    """Every element value in ``resource`` (depth first), contained resources included.

    Unknown properties are skipped: structure validation reports those.
    """
    type_name = resource.get("resourceType")
    if not isinstance(type_name, str) or not is_resource_type(type_name):
        return
    yield from _walk_object(resource, type_name, path or type_name)


def _walk_object(value: dict, type_name: str, path: str) -> Iterator[Node]:
    definition = type_def(type_name)
    if definition is None:
        return
    elements = definition.elements
    for key, item in value.items():
        element = elements.get(key)
        if element is None:
            continue
        if element.array and isinstance(item, list):
            for index, entry in enumerate(item):
                yield from _walk_value(entry, element, f"{path}.{key}[{index}]")
        else:
            yield from _walk_value(item, element, f"{path}.{key}")


def _walk_value(value: object, element: ElementDef, path: str) -> Iterator[Node]:
    yield Node(value, element, path)
    if not isinstance(value, dict):
        return
    if element.type == "Resource":
        yield from walk(value, path)
    else:
        yield from _walk_object(value, element.type, path)
