"""The search parameters the engine knows: the R4 core ones plus SearchParameter resources.

Every parameter is compiled once: its FHIRPath expression into a closure (see
`samhandling.platform.fhir.fhirpath`), and its identity into ``pid``, a 63-bit hash of
``Base.code`` (plus the url for custom parameters) that keys its index rows. Parameters
defined on ``Resource`` are indexed once under ``Resource.code`` for every type, so a
system-wide search (``_type``) finds them with one key.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from samhandling.platform.fhir.definitions import (
    ancestry,
    is_resource_type,
    resource_types,
    search_parameters,
)
from samhandling.platform.fhir.fhirpath import (
    UnsupportedExpression,
    compile_expression,
    compile_relative,
    result_types,
)

# parameters answered from the resource table itself, not from index rows
COLUMN_PARAMETERS = frozenset({"_id", "_lastUpdated"})
# result parameters: they shape the answer, not the set of matches
RESULT_PARAMETERS = frozenset(
    {
        "_sort", "_count", "_include", "_revinclude", "_summary", "_total", "_elements",
        "_contained", "_containedType", "_format", "_pretty", "_cursor", "_type",
    }
)  # fmt: skip
# the parameter types a SearchParameter can have, and the index table of each
TABLE_OF_TYPE = {
    "string": "search_string",
    "token": "search_token",
    "reference": "search_reference",
    "date": "search_date",
    "number": "search_number",
    "quantity": "search_quantity",
    "uri": "search_uri",
}
_ABSTRACT_BASES = ("Resource", "DomainResource")


def parameter_id(key: str) -> int:
    """A stable signed 63-bit id for ``key`` (e.g. ``Observation.code``)."""
    digest = hashlib.blake2b(key.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") >> 1


@dataclass(frozen=True, slots=True)
class Component:
    """One part of a composite parameter: evaluated on each value of the composite's root."""

    pid: int
    type: str
    evaluate: Callable[[list], list]
    types: frozenset[str]


@dataclass(frozen=True)
class SearchParam:
    """A search parameter as it applies to one resource type."""

    code: str
    key: str  # "Observation.code", "Resource._tag"
    pid: int
    type: str
    url: str
    resource_type: str
    expression: str | None
    evaluate: Callable[[dict], list] | None  # None: not indexable (column or unsupported)
    types: frozenset[str]  # FHIR types the expression yields on resource_type
    targets: tuple[str, ...] = ()
    components: tuple[Component, ...] = ()
    custom: bool = False
    derived: Mapping[str, int] = field(default_factory=dict)  # modifier -> pid of its rows

    @property
    def table(self) -> str | None:
        """The index table of this parameter's values (None for composites and columns)."""
        return TABLE_OF_TYPE.get(self.type)

    @property
    def supported(self) -> bool:
        """Whether searches on this parameter work."""
        return self.code in COLUMN_PARAMETERS or self.evaluate is not None


def _key(base: str, code: str, url: str | None) -> str:
    return f"{base}.{code}" if url is None else f"{base}.{code}|{url}"


def build_param(
    resource_type: str,
    *,
    code: str,
    type: str,
    url: str,
    expression: str | None,
    bases: Iterable[str],
    targets: Iterable[str] = (),
    components: Iterable[tuple[str, str]] = (),
    component_type: Callable[[str], str | None] = lambda _url: None,
    custom: bool = False,
) -> SearchParam:
    """Compile one parameter for ``resource_type`` (unsupported ones get no ``evaluate``)."""
    bases = tuple(bases)
    defining = next((b for b in _ABSTRACT_BASES if b in bases), resource_type)
    key = _key(defining, code, url if custom else None)
    pid = parameter_id(key)
    evaluate = None
    types: frozenset[str] = frozenset()
    compiled_components: list[Component] = []
    supported_type = type in TABLE_OF_TYPE or type == "composite"
    if expression and code not in COLUMN_PARAMETERS and supported_type:
        try:
            evaluate = compile_expression(expression)
            types = result_types(expression, resource_type)
            for index, (definition, component_expression) in enumerate(components):
                kind = component_type(definition)
                if kind not in TABLE_OF_TYPE:
                    raise UnsupportedExpression(f"component {definition} has no usable type")
                step, step_types = compile_relative(component_expression, types)
                compiled_components.append(
                    Component(parameter_id(f"{key}${index}"), kind, step, step_types)
                )
        except UnsupportedExpression:
            evaluate, types, compiled_components = None, frozenset(), []
        if type == "composite" and not compiled_components:
            evaluate = None
    derived: dict[str, int] = {}
    if evaluate is not None and type == "reference":
        derived["identifier"] = parameter_id(f"{key}:identifier")
    if evaluate is not None and type == "token" and "Identifier" in types:
        derived["of-type"] = parameter_id(f"{key}:of-type")
    return SearchParam(
        code=code,
        key=key,
        pid=pid,
        type=type,
        url=url,
        resource_type=resource_type,
        expression=expression,
        evaluate=evaluate,
        types=types,
        targets=tuple(targets),
        components=tuple(compiled_components),
        custom=custom,
        derived=MappingProxyType(derived),
    )


class SearchRegistry:
    """Search parameters by resource type and code; custom ones replace core ones by code."""

    def __init__(self, custom: Iterable[dict] = ()) -> None:
        self._by_url_type = {sp.url: sp.type for sp in search_parameters()}
        self._custom_defs = [c for c in custom if _usable(c)]
        for definition in self._custom_defs:
            self._by_url_type.setdefault(definition["url"], definition["type"])
        self._cache: dict[str, Mapping[str, SearchParam]] = {}

    @property
    def custom_definitions(self) -> list[dict]:
        """The SearchParameter resources in effect."""
        return list(self._custom_defs)

    def for_type(self, resource_type: str) -> Mapping[str, SearchParam]:
        """Every parameter of ``resource_type`` by code (supported or not)."""
        found = self._cache.get(resource_type)
        if found is None:
            found = MappingProxyType(self._build(resource_type))
            self._cache[resource_type] = found
        return found

    def get(self, resource_type: str, code: str) -> SearchParam | None:
        """One parameter, or None when the type has no parameter of that code."""
        return self.for_type(resource_type).get(code)

    def indexed(self, resource_type: str) -> list[SearchParam]:
        """The parameters that produce index rows for ``resource_type``."""
        return [p for p in self.for_type(resource_type).values() if p.evaluate is not None]

    def _component_type(self, url: str) -> str | None:
        return self._by_url_type.get(url)

    def _build(self, resource_type: str) -> dict[str, SearchParam]:
        if not is_resource_type(resource_type):
            return {}
        lineage = set(ancestry(resource_type))
        found: dict[str, SearchParam] = {}
        for sp in search_parameters():
            if lineage.isdisjoint(sp.base):
                continue
            found[sp.code] = build_param(
                resource_type,
                code=sp.code,
                type=sp.type,
                url=sp.url,
                expression=sp.expression,
                bases=sp.base,
                targets=sp.target,
                components=[(c.definition, c.expression) for c in sp.component],
                component_type=self._component_type,
            )
        for definition in self._custom_defs:
            if lineage.isdisjoint(definition["base"]):
                continue
            found[definition["code"]] = build_param(
                resource_type,
                code=definition["code"],
                type=definition["type"],
                url=definition["url"],
                expression=definition.get("expression"),
                bases=definition["base"],
                targets=definition.get("target", ()),
                components=[
                    (c.get("definition", ""), c.get("expression", ""))
                    for c in definition.get("component", ())
                ],
                component_type=self._component_type,
                custom=True,
            )
        return found


def _usable(definition: dict) -> bool:
    """Whether a stored SearchParameter resource can be honoured (it is validated R4 JSON)."""
    return (
        definition.get("status") in ("active", "draft")
        and isinstance(definition.get("code"), str)
        and isinstance(definition.get("url"), str)
        and definition.get("type") in (*TABLE_OF_TYPE, "composite")
        and isinstance(definition.get("expression"), str)
        and all(base in resource_types() or base in _ABSTRACT_BASES
                for base in definition.get("base", ()))
    )  # fmt: skip
