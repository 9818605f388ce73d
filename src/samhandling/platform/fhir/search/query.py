"""Search requests parsed from query parameters: criteria, chains, ``_has`` and result options.

`parse_search` turns ``[(name, value), ...]`` into a `SearchRequest`. Malformed values are a
400; unknown or unsupported parameters are dropped with a warning, or a 400 when the client
asked for ``Prefer: handling=strict``. Values are kept as text here and interpreted per
parameter type when the SQL is built (`samhandling.platform.fhir.search.sql`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from samhandling.platform.fhir.definitions import is_resource_type
from samhandling.platform.fhir.errors import FhirError
from samhandling.platform.fhir.search.params import (
    COLUMN_PARAMETERS,
    RESULT_PARAMETERS,
    SearchParam,
    SearchRegistry,
)

DEFAULT_COUNT = 50
MAX_COUNT = 1000
MAX_CHAIN_DEPTH = 4
MAX_OR_VALUES = 100

# modifiers each parameter type accepts (beyond :missing, which all accept)
MODIFIERS: dict[str, frozenset[str]] = {
    "string": frozenset({"exact", "contains"}),
    "token": frozenset({"not", "text", "of-type", "in", "not-in", "below", "above"}),
    "reference": frozenset({"identifier"}),  # and :[type]
    "date": frozenset(),
    "number": frozenset(),
    "quantity": frozenset(),
    "uri": frozenset({"above", "below"}),
    "composite": frozenset(),
}
PREFIXES = ("eq", "ne", "gt", "lt", "ge", "le", "sa", "eb", "ap")
PREFIXED_TYPES = frozenset({"date", "number", "quantity"})


@dataclass(frozen=True)
class Leaf:
    """``param[:modifier]=v1,v2``: matches when any value matches."""

    param: SearchParam | None  # None for the column parameters _id and _lastUpdated
    code: str
    modifier: str | None
    values: tuple[str, ...]


@dataclass(frozen=True)
class Chain:
    """``ref[:Type].rest=...``: resources whose reference points at a match of ``inner``."""

    param: SearchParam
    inner: dict[str, Criterion]  # target type -> criterion on that type


@dataclass(frozen=True)
class Has:
    """``_has:Type:ref:rest=...``: resources referenced by a ``Type`` that matches ``inner``."""

    source_type: str
    reference: SearchParam  # the reference parameter on source_type
    inner: Criterion
    target_type: str  # the type searched (what the references point at)


@dataclass(frozen=True)
class Compartment:
    """Resources in the compartment of ``owner_type/owner_id`` (via ``params``)."""

    params: tuple[SearchParam, ...]
    owner_type: str
    owner_id: str


Criterion = Leaf | Chain | Has | Compartment


@dataclass(frozen=True)
class Include:
    """``_include`` / ``_revinclude`` = ``Source:param[:Target]`` (or ``*``)."""

    source_type: str
    param: SearchParam | None  # None: every reference parameter (``*``)
    target_type: str | None
    iterate: bool
    reverse: bool


@dataclass
class SearchRequest:
    """A parsed search."""

    types: tuple[str, ...]  # empty: every type
    criteria: list[Criterion] = field(default_factory=list)
    includes: list[Include] = field(default_factory=list)
    sort: list[tuple[str, SearchParam | None, bool]] = field(default_factory=list)  # desc?
    count: int = DEFAULT_COUNT
    total: str = "none"
    summary: str | None = None
    elements: list[str] | None = None
    cursor: str | None = None
    used: list[tuple[str, str]] = field(default_factory=list)  # the parameters applied
    warnings: list[str] = field(default_factory=list)


def invalid(message: str, expression: str | None = None) -> FhirError:
    """A 400 for a malformed search."""
    return FhirError.of(400, "invalid", message, expression)


def split_values(text: str, separator: str = ",") -> list[str]:
    """Split on ``separator`` where it is not escaped with a backslash; keep escapes."""
    parts: list[str] = []
    current: list[str] = []
    escaped = False
    for char in text:
        if escaped:
            current.append("\\" + char)
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == separator:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    if escaped:
        current.append("\\")
    parts.append("".join(current))
    return parts


def unescape(text: str) -> str:
    """Remove search escapes: ``\\,`` ``\\$`` ``\\|`` ``\\\\``."""
    if "\\" not in text:
        return text
    out: list[str] = []
    escaped = False
    for char in text:
        if escaped:
            out.append(char)
            escaped = False
        elif char == "\\":
            escaped = True
        else:
            out.append(char)
    return "".join(out)


class _Parser:
    def __init__(self, registry: SearchRegistry, types: tuple[str, ...], strict: bool) -> None:
        self.registry = registry
        self.types = types
        self.strict = strict
        self.warnings: list[str] = []

    def ignore(self, name: str, why: str) -> None:
        message = f"search parameter {name!r} {why}"
        if self.strict:
            raise invalid(message + " (Prefer: handling=strict)", name)
        self.warnings.append(message + "; it was ignored")

    def param(self, resource_type: str | None, code: str) -> SearchParam | None:
        """The parameter ``code`` on one type, or (type None) on every searched type."""
        if resource_type is not None:
            return self.registry.get(resource_type, code)
        types = self.types or ("Resource",)
        found = [self.registry.get(t, code) for t in types if t != "Resource"]
        if not self.types:
            found = [self.registry.get("Patient", code)]  # any type: Resource params only
        if not found or any(p is None for p in found):
            return None
        first = found[0]
        assert first is not None
        if len(found) > 1 and any(p.pid != first.pid for p in found if p is not None):
            return None  # not one shared parameter (differently indexed on each type)
        if not self.types and not first.key.startswith("Resource."):
            return None
        return first

    def criterion(
        self, resource_type: str | None, name: str, value: str, depth: int = 0
    ) -> Criterion | None:
        if depth > MAX_CHAIN_DEPTH:
            raise invalid(f"{name}: chains and _has may nest at most {MAX_CHAIN_DEPTH} deep", name)
        if name.startswith("_has:"):
            return self.has(resource_type, name, value, depth)
        head, dot, rest = name.partition(".")
        code, _, modifier = head.partition(":")
        param = self.param(resource_type, code)
        if code in COLUMN_PARAMETERS and not dot:
            return self.column(code, modifier or None, value, name)
        if param is None:
            self.ignore(name, f"is not defined for {resource_type or 'every searched type'}")
            return None
        if not param.supported:
            self.ignore(name, "is not supported by this server")
            return None
        if dot:
            return self.chain(param, modifier or None, rest, value, name, depth)
        return self.leaf(param, modifier or None, value, name)

    def column(self, code: str, modifier: str | None, value: str, name: str) -> Leaf:
        if modifier == "missing":
            raise invalid(f"{name}: every resource has {code}", name)
        if modifier is not None and not (code == "_id" and modifier == "not"):
            raise invalid(f"{name}: modifier :{modifier} is not supported on {code}", name)
        return Leaf(None, code, modifier, self.values(value, name))

    def values(self, value: str, name: str) -> tuple[str, ...]:
        parts = split_values(value)
        if len(parts) > MAX_OR_VALUES:
            raise invalid(f"{name}: at most {MAX_OR_VALUES} comma-separated values", name)
        if any(p == "" for p in parts):
            raise invalid(f"{name}: empty value", name)
        return tuple(parts)

    def leaf(self, param: SearchParam, modifier: str | None, value: str, name: str) -> Leaf:
        if modifier == "missing":
            if value not in ("true", "false"):
                raise invalid(f"{name}: :missing takes true or false, not {value!r}", name)
            return Leaf(param, param.code, modifier, (value,))
        if modifier is not None:
            allowed = MODIFIERS.get(param.type, frozenset())
            is_type_modifier = param.type == "reference" and is_resource_type(modifier)
            if modifier == "of-type" and "of-type" not in param.derived:
                raise invalid(f"{name}: :of-type applies to Identifier parameters only", name)
            if modifier not in allowed and not is_type_modifier:
                if modifier in _R4_MODIFIERS:  # e.g. :in before the terminology service
                    raise FhirError.of(
                        400,
                        "not-supported",
                        f"{name}: modifier :{modifier} is not supported on {param.type} "
                        "parameters by this server",
                        name,
                    )
                raise invalid(f"{name}: unknown modifier :{modifier}", name)
            if is_type_modifier and param.targets and modifier not in param.targets:
                raise invalid(f"{name}: {param.code} cannot refer to a {modifier}", name)
        return Leaf(param, param.code, modifier, self.values(value, name))

    def chain(
        self,
        param: SearchParam,
        type_modifier: str | None,
        rest: str,
        value: str,
        name: str,
        depth: int,
    ) -> Chain | None:
        if param.type != "reference":
            raise invalid(f"{name}: only reference parameters can be chained", name)
        if type_modifier is not None:
            if not is_resource_type(type_modifier):
                raise invalid(f"{name}: {type_modifier!r} is not a resource type", name)
            targets: tuple[str, ...] = (type_modifier,)
        else:
            targets = tuple(t for t in param.targets if is_resource_type(t))
        inner: dict[str, Criterion] = {}
        for target in targets:
            code = rest.partition(".")[0].partition(":")[0]
            if not rest.startswith("_has:") and code not in COLUMN_PARAMETERS:
                found = self.registry.get(target, code)
                if found is None or not found.supported:
                    continue
            criterion = self.criterion(target, rest, value, depth + 1)
            if criterion is not None:
                inner[target] = criterion
        if not inner:
            self.ignore(name, f"names no parameter on {', '.join(targets) or 'the target'}")
            return None
        return Chain(param, inner)

    def has(self, resource_type: str | None, name: str, value: str, depth: int) -> Has | None:
        parts = name.split(":", 3)
        if len(parts) != 4 or not all(parts[1:]):
            raise invalid(f"{name}: _has takes the form _has:Type:reference:parameter", name)
        _, source, reference_code, rest = parts
        if resource_type is None:
            raise invalid(f"{name}: _has needs one resource type to search", name)
        if not is_resource_type(source):
            raise invalid(f"{name}: {source!r} is not a resource type", name)
        reference = self.registry.get(source, reference_code)
        if reference is None or reference.type != "reference" or not reference.supported:
            raise invalid(f"{name}: {source} has no reference parameter {reference_code!r}", name)
        if reference.targets and resource_type not in reference.targets:
            raise invalid(f"{name}: {source}.{reference_code} never refers to {resource_type}")
        inner = self.criterion(source, rest, value, depth + 1)
        if inner is None:
            return None
        return Has(source, reference, inner, resource_type)


_R4_MODIFIERS = frozenset(
    {"missing", "exact", "contains", "not", "text", "in", "not-in", "below", "above",
     "type", "identifier", "ofType", "of-type", "iterate"}
)  # fmt: skip


def parse_search(
    registry: SearchRegistry,
    types: tuple[str, ...],
    items: list[tuple[str, str]],
    *,
    strict: bool = False,
) -> SearchRequest:
    """Parse query parameters for a search of ``types`` (empty: every type)."""
    parser = _Parser(registry, types, strict)
    request = SearchRequest(types=types)
    single = types[0] if len(types) == 1 else None
    for name, value in items:
        if "\x00" in name or "\x00" in value:
            raise invalid("search parameters may not contain NUL characters", name)
        if name in RESULT_PARAMETERS or name.startswith(("_include", "_revinclude", "_sort")):
            _result_parameter(request, parser, name, value)
            continue
        if name in ("_text", "_content", "_list", "_query", "_filter"):
            parser.ignore(name, "is not supported by this server")
            continue
        criterion = parser.criterion(single, name, value)
        if criterion is not None:
            request.criteria.append(criterion)
            request.used.append((name, value))
    request.warnings = [*parser.warnings, *request.warnings]
    return request


def _result_parameter(request: SearchRequest, parser: _Parser, name: str, value: str) -> None:
    base, _, modifier = name.partition(":")
    if base in ("_include", "_revinclude"):
        if modifier not in ("", "iterate", "recurse"):
            raise invalid(f"{name}: unknown modifier :{modifier}", name)
        request.includes.append(
            _include(parser, value, name, iterate=bool(modifier), reverse=base == "_revinclude")
        )
    elif name == "_sort":
        for key in value.split(","):
            descending = key.startswith("-")
            code = key.removeprefix("-")
            if code in COLUMN_PARAMETERS:
                request.sort.append((code, None, descending))
                continue
            single = request.types[0] if len(request.types) == 1 else None
            param = parser.param(single, code)
            if param is None or not param.supported or param.type == "composite":
                raise invalid(f"_sort: cannot sort by {code!r}", "_sort")
            request.sort.append((code, param, descending))
    elif name == "_count":
        if not (value.isascii() and value.isdigit()) or len(value) > 9:
            raise invalid(f"_count must be a non-negative integer, not {value!r}", "_count")
        count = int(value)
        if count > MAX_COUNT:
            request.warnings.append(
                f"_count={count} is more than the maximum page size; pages hold {MAX_COUNT}"
            )
            count = MAX_COUNT
        request.count = count
    elif name == "_total":
        if value not in ("none", "estimate", "accurate"):
            raise invalid(f"_total must be none, estimate or accurate, not {value!r}", "_total")
        request.total = value
    elif name == "_summary":
        if value not in ("true", "false", "text", "data", "count"):
            raise invalid(f"_summary must be true, false, text, data or count: {value!r}")
        request.summary = value
    elif name == "_elements":
        request.elements = [e.strip() for e in value.split(",") if e.strip()]
    elif name == "_cursor":
        request.cursor = value
    elif name in ("_contained", "_containedType"):
        parser.ignore(name, "is not supported by this server")
        return
    elif name in ("_format", "_pretty", "_type"):
        return
    else:
        parser.ignore(name, "is not supported by this server")
        return
    request.used.append((name, value))


def _include(parser: _Parser, value: str, name: str, *, iterate: bool, reverse: bool) -> Include:
    if value == "*":
        if reverse:
            raise FhirError.of(400, "not-supported", "_revinclude=* is not supported", name)
        return Include("*", None, None, iterate, reverse)
    parts = value.split(":")
    if len(parts) not in (2, 3):
        raise invalid(f"{name}={value}: use Type:parameter or Type:parameter:Target", name)
    source, code = parts[0], parts[1]
    target = parts[2] if len(parts) == 3 else None
    if not is_resource_type(source) or (target is not None and not is_resource_type(target)):
        raise invalid(f"{name}={value}: unknown resource type", name)
    if code == "*":
        return Include(source, None, target, iterate, reverse)
    param = parser.registry.get(source, code)
    if param is None or param.type != "reference" or not param.supported:
        raise invalid(f"{name}={value}: {source} has no reference parameter {code!r}", name)
    return Include(source, param, target, iterate, reverse)
