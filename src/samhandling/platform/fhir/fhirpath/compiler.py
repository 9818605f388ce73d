"""Compile search-parameter FHIRPath expressions into plain closures over resource JSON.

Supported subset (everything else raises `UnsupportedExpression` at compile time):

- paths ``Patient.name.given``: the leading name is a resource type (``Resource`` and
  ``DomainResource`` included) and filters on ``resourceType``, or else an element of the
  resource (``name | alias``, for every resource type that has that element); arrays are
  flattened, JSON ``null`` entries are skipped and ``_x`` primitive-extension companions are
  ignored
- choice elements: ``Observation.value`` visits ``valueQuantity``, ``valueString``, ...
  (resolved statically with the R4 element definitions)
- ``X as T``, ``X.as(T)``, ``X.ofType(T)``: on a choice element, visit only the variants of
  type ``T`` or a subtype (``as uri`` includes ``canonical``, ``as Quantity`` includes
  ``Age``); elsewhere the static type must decide the answer. ``as`` does not insist on a
  single input (R4 search parameters such as ``Observation.component.value as Quantity``
  rely on that)
- union ``a | b`` (duplicates removed, as in FHIRPath), parentheses, ``[n]`` indexes
- ``where(resolve() is T)`` on references: true when ``reference`` is ``T/id``, optionally
  followed by ``/_history/vid``, or an absolute URL ending with those segments. Contained
  (``#id``), ``urn:uuid:`` and logical (identifier-only) references never match.
- ``where(path = literal)`` equality filters (``where(system='phone')``)
- ``exists()``, ``first()``, ``extension('url')``

Each expression is specialised per resource type at compile time: the closure looks up the
resource's ``resourceType`` in a dict and runs a chain of small list -> list steps.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from samhandling.platform.fhir.definitions import ancestry, resource_types, type_def
from samhandling.platform.fhir.fhirpath.parser import Node, UnsupportedExpression, parse

__all__ = ["UnsupportedExpression", "compile_expression", "compile_relative", "result_types"]

Step = Callable[[list], list]
Types = frozenset[str]


@functools.cache
def _is_a(type_name: str, wanted: str) -> bool:
    """FHIR type inheritance: ``canonical`` is a ``uri``, ``Age`` a ``Quantity``, ..."""
    return type_name == wanted or wanted in ancestry(type_name)


def _matches_root(name: str, resource_type: str) -> bool:
    """Whether a path starting with ``name`` can match resources of ``resource_type``.

    A name that is not a resource type is an element of the resource (``name | alias``).
    """
    if not _is_resource_type_name(name):
        definition = type_def(resource_type)
        return definition is not None and (
            name in definition.elements
            or any(e.choice == name for e in definition.elements.values())
        )
    return _is_a(resource_type, name)


@functools.cache
def _is_resource_type_name(name: str) -> bool:
    definition = type_def(name)
    return definition is not None and definition.kind == "resource"


@functools.lru_cache(maxsize=4096)
def compile_expression(expression: str) -> Callable[[dict], list]:
    """Compile a FHIRPath search expression into ``f(resource_json) -> list of values``.

    Raises UnsupportedExpression for anything outside the supported subset.
    """
    tree = parse(expression)
    roots = _root_names(tree)
    if not roots:
        raise UnsupportedExpression("the expression does not start with a path")
    table: dict[str, Step] = {}
    for resource_type in sorted(resource_types()):
        if not any(_matches_root(name, resource_type) for name in roots):
            continue
        step, _types = _Compiler(resource_type).compile(tree, None)
        if step is not None:
            table[resource_type] = step
    get = table.get

    def evaluate(resource: dict) -> list:
        step = get(resource.get("resourceType"))  # type: ignore[arg-type]
        if step is None:
            return []
        return step([resource])

    evaluate.__doc__ = f"FHIRPath: {expression}"
    return evaluate


@functools.lru_cache(maxsize=8192)
def result_types(expression: str, resource_type: str) -> frozenset[str]:
    """The FHIR types the expression can yield on ``resource_type`` (empty if it never applies)."""
    tree = parse(expression)
    if not any(_matches_root(name, resource_type) for name in _root_names(tree)):
        return frozenset()
    step, types = _Compiler(resource_type).compile(tree, None)
    return types if step is not None else frozenset()


@functools.lru_cache(maxsize=4096)
def compile_relative(
    expression: str, context_types: frozenset[str]
) -> tuple[Callable[[list], list], frozenset[str]]:
    """Compile an expression evaluated on values of ``context_types`` (composite components).

    Returns ``f(values) -> values`` and the types it yields.
    """
    step, types = _Compiler("").compile(parse(expression), context_types)
    if step is None:
        return (lambda items: []), frozenset()
    return step, types


def _root_names(node: Node) -> set[str]:
    """Type names at the start of each root path of ``node``."""
    kind = node[0]
    if kind == "ident":
        return {node[1]}
    if kind in ("child", "index", "as", "is", "call"):
        if node[1] is None:
            raise UnsupportedExpression(f"function {node[2]}() at the start of a path")
        return _root_names(node[1])
    if kind == "paren":
        return _root_names(node[1])
    if kind == "union":
        return set().union(*(_root_names(operand) for operand in node[1]))
    raise UnsupportedExpression(f"unsupported {kind!r} at the root of the expression")


# ---------------------------------------------------------------------------------------------
# Runtime steps: each takes and returns a list of JSON values.


def _identity(items: list) -> list:
    return items


def _path_step(groups: tuple[tuple[str, ...], ...]) -> Step:
    """Navigate successive child names; each group holds the JSON keys of one name (several
    for a choice element). One closure for the whole path keeps call overhead low."""
    if len(groups) == 1 and len(groups[0]) == 1:
        # the common case (one plain name), specialised: no loops over groups and keys
        (key,) = groups[0]

        def child(items: list) -> list:
            out: list = []
            for item in items:
                if type(item) is dict:
                    value = item.get(key)
                    if value is None:
                        continue
                    if type(value) is list:
                        out.extend([v for v in value if v is not None])
                    else:
                        out.append(value)
            return out

        step = child
    else:

        def path(items: list) -> list:
            for keys in groups:
                out: list = []
                for item in items:
                    if type(item) is dict:
                        for key in keys:
                            value = item.get(key)
                            if value is None:
                                continue
                            if type(value) is list:
                                out.extend([v for v in value if v is not None])
                            else:
                                out.append(value)
                if not out:
                    return out
                items = out
            return items

        step = path
    step.groups = groups  # type: ignore[attr-defined]
    return step


def _chain(first: Step, second: Step) -> Step:
    def chained(items: list) -> list:
        items = first(items)
        return second(items) if items else items

    return chained


def _distinct(items: list) -> list:
    """FHIRPath union semantics: drop later duplicates (deep JSON equality)."""
    if len(items) < 2:
        return items
    out: list = []
    for item in items:
        for seen in out:
            if type(seen) is type(item) and seen == item:
                break
        else:
            out.append(item)
    return out


def _union_step(steps: list[Step]) -> Step:
    def union(items: list) -> list:
        out: list = []
        for step in steps:
            out.extend(step(items))
        return _distinct(out)

    return union


def _is_reference_to(reference: object, type_name: str) -> bool:
    """Whether a literal reference points at ``type_name`` (see the module docstring)."""
    if type(reference) is not str or reference.startswith(("#", "urn:")):
        return False
    segments = reference.split("/")
    if len(segments) >= 4 and segments[-2] == "_history":
        segments = segments[:-2]
    return len(segments) >= 2 and segments[-2] == type_name and segments[-1] != ""


def _literal_equals(value: object, literal: object) -> bool:
    if type(literal) is bool or type(value) is bool:
        return value is literal
    if type(literal) is str:
        return value == literal
    return type(value) in (int, float) and value == literal


# ---------------------------------------------------------------------------------------------
# Compilation with static types.


class _Compiler:
    """Compiles an AST for resources of one type; a None step means "always empty"."""

    def __init__(self, resource_type: str) -> None:
        self.resource_type = resource_type

    def compile(self, node: Node, types: Types | None) -> tuple[Step | None, Types]:
        """``types`` is None at the root (the input is the resource)."""
        kind = node[0]
        method = getattr(self, f"_compile_{kind}", None)
        if method is None:
            raise UnsupportedExpression(f"unsupported {kind!r} here")
        return method(node, types)

    def _compile_paren(self, node: Node, types: Types | None) -> tuple[Step | None, Types]:
        return self.compile(node[1], types)

    def _compile_ident(self, node: Node, types: Types | None) -> tuple[Step | None, Types]:
        name = node[1]
        if types is None:
            if not _matches_root(name, self.resource_type):
                return None, frozenset()
            if _is_resource_type_name(name):
                return _identity, frozenset({self.resource_type})
            types = frozenset({self.resource_type})
        return self._navigate(None, types, name, None)

    def _compile_child(self, node: Node, types: Types | None) -> tuple[Step | None, Types]:
        return self._child(node, types, None)

    def _child(
        self, node: Node, types: Types | None, only: str | None
    ) -> tuple[Step | None, Types]:
        base, base_types = self.compile(node[1], types)
        if base is None:
            return None, frozenset()
        return self._navigate(base, base_types, node[2], only)

    def _navigate(
        self, base: Step | None, types: Types, name: str, only: str | None
    ) -> tuple[Step | None, Types]:
        keys: list[str] = []
        out_types: set[str] = set()
        known = False
        for type_name in sorted(types):
            definition = type_def(type_name)
            if definition is None:
                continue
            element = definition.elements.get(name)
            candidates = (
                [element]
                if element is not None
                else [e for e in definition.elements.values() if e.choice == name]
            )
            if candidates:
                known = True
            for candidate in candidates:
                if only is not None and not _is_a(candidate.type, only):
                    continue
                if candidate.type == "Resource":
                    # contained/entry resources: their type is only known at run time
                    out_types.add("Resource")
                else:
                    out_types.add(candidate.type)
                if candidate.name not in keys:
                    keys.append(candidate.name)
        if not known:
            raise UnsupportedExpression(f"no element {name!r} in {sorted(types)}")
        if not keys:
            return None, frozenset()
        if base is None or base is _identity:
            return _path_step((tuple(keys),)), frozenset(out_types)
        groups = getattr(base, "groups", None)
        if groups is not None:
            return _path_step((*groups, tuple(keys))), frozenset(out_types)
        return _chain(base, _path_step((tuple(keys),))), frozenset(out_types)

    def _compile_index(self, node: Node, types: Types | None) -> tuple[Step | None, Types]:
        base, base_types = self.compile(node[1], types)
        if base is None:
            return None, frozenset()
        index = node[2]
        return _chain(base, lambda items: items[index : index + 1]), base_types

    def _compile_union(self, node: Node, types: Types | None) -> tuple[Step | None, Types]:
        steps: list[Step] = []
        out_types: set[str] = set()
        for operand in node[1]:
            step, operand_types = self.compile(operand, types)
            if step is not None:
                steps.append(step)
                out_types |= operand_types
        if not steps:
            return None, frozenset()
        return _union_step(steps), frozenset(out_types)

    def _compile_as(self, node: Node, types: Types | None) -> tuple[Step | None, Types]:
        return self._type_filter(node[1], node[2], types)

    def _type_filter(self, operand: Node, type_name: str, types: Types | None):
        while operand[0] == "paren":
            operand = operand[1]
        if operand[0] == "child":
            return self._child(operand, types, type_name)
        if operand[0] == "ident" and types is not None:  # a relative path (composite component)
            return self._navigate(None, types, operand[1], type_name)
        step, operand_types = self.compile(operand, types)
        matching = {t for t in operand_types if _is_a(t, type_name)}
        if step is None or not matching:
            return None, frozenset()
        if matching == operand_types:
            return step, operand_types
        raise UnsupportedExpression(f"cannot decide 'as {type_name}' statically")

    def _compile_call(self, node: Node, types: Types | None) -> tuple[Step | None, Types]:
        _, base_node, name, args = node
        if name in ("as", "ofType"):
            if len(args) != 1 or args[0][0] != "type":
                raise UnsupportedExpression(f"{name}() takes one type name")
            return self._type_filter(base_node, args[0][1], types)
        base, base_types = self.compile(base_node, types)
        if base is None:
            return None, frozenset()
        if name == "exists" and not args:
            return (lambda items: [bool(base(items))]), frozenset({"boolean"})
        if name == "first" and not args:
            return _chain(base, lambda items: items[:1]), base_types
        if name == "extension" and len(args) == 1 and args[0][0] == "literal":
            url = args[0][1]
            if type(url) is not str:
                raise UnsupportedExpression("extension() takes a string literal url")
            step, ext_types = self._navigate(base, base_types, "extension", None)
            if step is None:
                return None, frozenset()
            return (
                _chain(
                    step,
                    lambda items: [e for e in items if type(e) is dict and e.get("url") == url],
                ),
                ext_types,
            )
        if name == "where" and len(args) == 1:
            predicate = self._predicate(args[0], base_types)
            return (
                _chain(base, lambda items: [item for item in items if predicate(item)]),
                base_types,
            )
        raise UnsupportedExpression(f"unsupported function {name}()")

    def _predicate(self, node: Node, types: Types) -> Callable[[Any], bool]:
        kind = node[0]
        if kind == "is" and node[1] == ("call", None, "resolve", []):
            if "Reference" not in types:
                raise UnsupportedExpression("resolve() on something that is not a Reference")
            target = node[2]

            def resolves_to(item: Any) -> bool:
                return type(item) is dict and _is_reference_to(item.get("reference"), target)

            return resolves_to
        if kind == "eq":
            left, right = node[1], node[2]
            if left[0] == "literal":
                left, right = right, left
            if right[0] != "literal":
                raise UnsupportedExpression("only comparisons with a literal are supported")
            literal = right[1]
            step, _ = self.compile(left, types)
            if step is None:
                return lambda item: False

            def equals(item: Any) -> bool:
                values = step([item])
                return len(values) == 1 and _literal_equals(values[0], literal)

            return equals
        raise UnsupportedExpression(f"unsupported where() criteria {kind!r}")
