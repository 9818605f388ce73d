"""FHIR R4 PATCH: JSON Patch (RFC 6902) and FHIRPath Patch (http://hl7.org/fhir/R4/fhirpatch.html).

Both entry points work on a private copy of the resource and return it; the input resource and
the patch document are never modified, and nothing of them is shared with the result.  Every
problem with a patch is reported as :class:`PatchError`; no other exception escapes.

What the engine does not do: it does not validate the patched resource (element names, value
types, cardinality beyond what it needs to shape JSON, invariants).  The caller validates the
result, as FHIR requires a server to reject a patch whose outcome is not a valid resource.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from typing import Any

import fhirpathpy
import jsonpatch
import jsonpointer
import orjson
from antlr4 import CommonTokenStream, InputStream, Token
from antlr4.error.ErrorListener import ErrorListener
from antlr4.tree.Tree import ParseTreeWalker
from fhirpathpy.models import models as _fhirpath_models
from fhirpathpy.parser.ASTPathListener import ASTPathListener
from fhirpathpy.parser.generated.FHIRPathLexer import FHIRPathLexer
from fhirpathpy.parser.generated.FHIRPathParser import FHIRPathParser

from samhandling.platform.fhir.definitions import repeating_element_paths

__all__ = ["PatchError", "apply_fhirpath_patch", "apply_json_patch"]


class PatchError(Exception):
    """A patch that cannot be applied; `expression` points at the offending operation, e.g.
    'Parameters.parameter[2]' or for JSON Patch '/3' (the operation index)."""

    message: str
    expression: str | None

    def __init__(self, message: str, expression: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.expression = expression

    def __str__(self) -> str:
        return self.message if self.expression is None else f"{self.message} (at {self.expression})"


# --------------------------------------------------------------------------------------------
# shared helpers


def _clone(value: Any, depth: int = 0) -> Any:
    """Deep copy of a JSON value; the copy shares no dict or list with the original."""
    if depth > 500:
        raise PatchError("The document is nested too deeply")
    if isinstance(value, dict):
        return {key: _clone(item, depth + 1) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_clone(item, depth + 1) for item in value]
    return value


def _json_equal(left: Any, right: Any) -> bool:
    """JSON equality (RFC 6902 section 4.6): unlike Python, true != 1 and "1" != 1."""
    if isinstance(left, bool) or isinstance(right, bool):
        return isinstance(left, bool) and isinstance(right, bool) and left == right
    if isinstance(left, int | float) and isinstance(right, int | float):
        return left == right
    if isinstance(left, dict) and isinstance(right, dict):
        return left.keys() == right.keys() and all(_json_equal(left[k], right[k]) for k in left)
    if isinstance(left, list) and isinstance(right, list):
        return len(left) == len(right) and all(map(_json_equal, left, right))
    return type(left) is type(right) and left == right


# --------------------------------------------------------------------------------------------
# JSON Patch

_JSON_PATCH_OPS = frozenset({"add", "remove", "replace", "move", "copy", "test"})


def apply_json_patch(resource: dict, operations: object) -> dict:
    """Apply an RFC 6902 JSON Patch document (a list of operations) to a copy of `resource`.

    The operations are applied in order and atomically: any failing operation (including a
    failed `test`) raises PatchError with `expression` set to '/<operation index>'.
    """
    if not isinstance(resource, dict):
        raise PatchError("The resource to patch must be a JSON object")
    if not isinstance(operations, list):
        raise PatchError("A JSON Patch document must be a JSON array of operations")
    try:
        document = _clone(resource)
        operations = _clone(operations)
    except RecursionError as exc:  # pragma: no cover - guarded by the depth limit
        raise PatchError("The document is nested too deeply") from exc
    for index, operation in enumerate(operations):
        where = f"/{index}"
        _check_json_operation(operation, where)
        try:
            if operation["op"] == "test":
                _json_patch_test(document, operation, where)
            else:
                document = jsonpatch.JsonPatch([operation]).apply(document, in_place=True)
                if operation["op"] == "copy":
                    _check_size(document, where)
        except PatchError:
            raise
        except (jsonpatch.JsonPatchException, jsonpointer.JsonPointerException) as exc:
            raise PatchError(
                f"JSON Patch operation '{operation['op']}' failed: {_brief(exc)}", where
            ) from exc
        except Exception as exc:  # anything else from jsonpatch on odd input
            raise PatchError(
                f"JSON Patch operation '{operation['op']}' failed: "
                f"{type(exc).__name__}: {_brief(exc)}",
                where,
            ) from exc
    if not isinstance(document, dict):
        raise PatchError("The patched document is not a JSON object")
    return document


MAX_PATCHED_BYTES = 16 * 1024 * 1024


def _brief(exc: Exception, limit: int = 200) -> str:
    """A library's message, cut short: some quote the whole document."""
    text = str(exc)
    return text if len(text) <= limit else f"{text[:limit]}..."


def _check_size(document: Any, where: str) -> None:
    """Refuse a document grown past MAX_PATCHED_BYTES (each `copy` can double it)."""
    if len(orjson.dumps(document, default=str)) > MAX_PATCHED_BYTES:
        raise PatchError(f"the patched resource would exceed {MAX_PATCHED_BYTES} bytes", where)


def _check_json_operation(operation: object, where: str) -> None:
    if not isinstance(operation, dict):
        raise PatchError("A JSON Patch operation must be a JSON object", where)
    op = operation.get("op")
    if not isinstance(op, str):
        raise PatchError("A JSON Patch operation needs an 'op' string", where)
    if op not in _JSON_PATCH_OPS:
        raise PatchError(f"Unknown JSON Patch operation '{op}'", where)
    if not isinstance(operation.get("path"), str):
        raise PatchError(f"JSON Patch operation '{op}' needs a 'path' string", where)
    if op in ("move", "copy") and not isinstance(operation.get("from"), str):
        raise PatchError(f"JSON Patch operation '{op}' needs a 'from' string", where)
    if op in ("add", "replace", "test") and "value" not in operation:
        raise PatchError(f"JSON Patch operation '{op}' needs a 'value'", where)


def _json_patch_test(document: Any, operation: dict, where: str) -> None:
    path = operation["path"]
    try:
        actual = jsonpointer.resolve_pointer(document, path)
    except jsonpointer.JsonPointerException as exc:
        raise PatchError(f"JSON Patch test failed: {_brief(exc)}", where) from exc
    if not _json_equal(actual, operation["value"]):
        raise PatchError(f"JSON Patch test failed: the value at '{path}' is not equal", where)


# --------------------------------------------------------------------------------------------
# FHIRPath Patch: the patch document

_R4 = _fhirpath_models["r4"]
_PATH2TYPE: dict[str, str] = _R4["path2Type"]
_CHOICE_PATHS: dict[str, list[str]] = _R4["choiceTypePaths"]
_DEFINED_ELSEWHERE: dict[str, str] = _R4["pathsDefinedElsewhere"]
_TYPE2PARENT: dict[str, str] = _R4["type2Parent"]
_EVAL_OPTIONS = {"returnRawData": True}

_REQUIRED_PARTS = {
    "add": frozenset({"path", "name", "value"}),
    "insert": frozenset({"path", "value", "index"}),
    "delete": frozenset({"path"}),
    "replace": frozenset({"path", "value"}),
    "move": frozenset({"path", "source", "destination"}),
}
_KNOWN_PARTS = frozenset({"type", "path", "name", "value", "index", "source", "destination"})
_VALUE_KEY = re.compile(r"value([A-Z][A-Za-z0-9]*)")
_ELEMENT_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]*")
_PROP_SEGMENT = re.compile(r"([^.\[\]]+)(?:\[(\d+)\])?")
_ALWAYS_REPEATING = frozenset({"extension", "modifierExtension", "contained"})
_KEYWORD_NAMES = frozenset({"div", "mod", "and", "or", "xor", "implies", "true", "false"})


@dataclass(frozen=True)
class _Operation:
    type: str
    path: str
    where: str
    name: str | None = None
    value: dict | None = None  # the `value` part itself (value[x], resource or nested parts)
    index: int | None = None
    source: int | None = None
    destination: int | None = None


def _parse_parameters(parameters: object) -> list[_Operation]:
    if not isinstance(parameters, dict) or parameters.get("resourceType") != "Parameters":
        raise PatchError("A FHIRPath Patch document must be a Parameters resource")
    raw = parameters.get("parameter", [])
    if not isinstance(raw, list):
        raise PatchError("Parameters.parameter must be an array", "Parameters.parameter")
    return [_parse_operation(param, f"Parameters.parameter[{i}]") for i, param in enumerate(raw)]


def _parse_operation(param: object, where: str) -> _Operation:
    if not isinstance(param, dict):
        raise PatchError("A patch parameter must be an object", where)
    if param.get("name") != "operation":
        raise PatchError("A FHIRPath Patch parameter must be named 'operation'", where)
    parts = param.get("part")
    if not isinstance(parts, list) or not parts:
        raise PatchError("A patch operation needs its parts", where)
    by_name: dict[str, tuple[dict, str]] = {}
    for i, part in enumerate(parts):
        part_where = f"{where}.part[{i}]"
        if not isinstance(part, dict) or not isinstance(part.get("name"), str):
            raise PatchError("A patch operation part must be an object with a name", part_where)
        name = part["name"]
        if name not in _KNOWN_PARTS:
            raise PatchError(f"Unknown patch operation part '{name}'", part_where)
        if name in by_name:
            raise PatchError(f"Patch operation part '{name}' is repeated", part_where)
        by_name[name] = (part, part_where)

    if "type" not in by_name:
        raise PatchError("A patch operation needs a 'type' part", where)
    op_type = _part_primitive(*by_name["type"], ("valueCode", "valueString"), str)
    if op_type not in _REQUIRED_PARTS:
        raise PatchError(f"Unknown patch operation type '{op_type}'", by_name["type"][1])
    required = _REQUIRED_PARTS[op_type]
    missing = sorted(required - by_name.keys())
    if missing:
        raise PatchError(
            f"Patch operation '{op_type}' needs the part(s) {', '.join(missing)}", where
        )
    path = _part_primitive(*by_name["path"], ("valueString",), str)
    if not path.strip():
        raise PatchError("The patch path is empty", by_name["path"][1])

    fields: dict[str, Any] = {}
    if "name" in required:
        fields["name"] = _part_primitive(*by_name["name"], ("valueString",), str)
    if "value" in required:
        value_part, value_where = by_name["value"]
        _check_value_part(value_part, value_where)
        fields["value"] = value_part
    for number in ("index", "source", "destination"):
        if number in required:
            fields[number] = _part_primitive(
                *by_name[number], ("valueInteger", "valueUnsignedInt", "valuePositiveInt"), int
            )
            if fields[number] < 0:
                raise PatchError(f"The patch {number} must not be negative", by_name[number][1])
    return _Operation(type=op_type, path=path, where=where, **fields)


def _part_primitive(part: dict, where: str, keys: tuple[str, ...], kind: type) -> Any:
    present = [key for key in part if key.startswith("value")]
    if len(present) != 1 or present[0] not in keys:
        expected = " or ".join(keys)
        raise PatchError(f"Patch operation part '{part['name']}' needs a {expected}", where)
    value = part[present[0]]
    if not isinstance(value, kind) or isinstance(value, bool):
        raise PatchError(f"Patch operation part '{part['name']}' has a value of wrong type", where)
    return value


def _check_value_part(part: dict, where: str) -> None:
    """A `value` part (or a nested part of an anonymous value) carries exactly one value."""
    carriers = [key for key in part if _VALUE_KEY.fullmatch(key) or key in ("resource", "part")]
    if len(carriers) != 1:
        extensions_only = [k for k in part if k[:1] == "_" and _VALUE_KEY.fullmatch(k[1:])]
        if not carriers and len(extensions_only) == 1:
            if not isinstance(part[extensions_only[0]], dict):
                raise PatchError(f"'{extensions_only[0]}' must be an object", where)
            return  # a primitive that only has extensions (`_valueString`)
        raise PatchError(
            f"Patch part '{part.get('name')}' needs exactly one value (value[x], resource or part)",
            where,
        )
    carrier = carriers[0]
    if carrier == "resource":
        resource = part["resource"]
        if not isinstance(resource, dict) or not isinstance(resource.get("resourceType"), str):
            raise PatchError("A resource value must be a resource (with resourceType)", where)
    elif carrier == "part":
        sub_parts = part["part"]
        if not isinstance(sub_parts, list) or not sub_parts:
            raise PatchError("An anonymous value needs a non-empty list of parts", where)
        for i, sub in enumerate(sub_parts):
            sub_where = f"{where}.part[{i}]"
            if not isinstance(sub, dict):
                raise PatchError("A value part must be an object", sub_where)
            name = sub.get("name")
            if not isinstance(name, str) or not _ELEMENT_NAME.fullmatch(name):
                raise PatchError("A value part needs a valid element name", sub_where)
            _check_value_part(sub, sub_where)
    elif part[carrier] is None:
        raise PatchError(f"Patch part '{part.get('name')}' has a null value", where)
    companion = part.get(f"_{carrier}") if carrier.startswith("value") else None
    if companion is not None and not isinstance(companion, dict):
        raise PatchError(f"'_{carrier}' must be an object", where)


# --------------------------------------------------------------------------------------------
# FHIR structure knowledge: which elements repeat, which are choices, how paths map to types


def _child_def(base: str, name: str) -> str:
    """Definition path of element `name` below the type or backbone element `base`."""
    path = f"{base}.{name}"
    return _DEFINED_ELSEWHERE.get(path, path)


def _element_base(def_path: str, choice_type: str | None = None) -> str:
    """What the children of the element `def_path` are defined under: its type, or the element
    itself for backbone elements."""
    if choice_type:
        return choice_type
    return _PATH2TYPE.get(def_path) or def_path


def _is_repeating(base: str, name: str) -> bool:
    if name in _ALWAYS_REPEATING:
        return True
    seen = 0
    while base and seen < 10:
        if _child_def(base, name) in repeating_element_paths():
            return True
        base = _TYPE2PARENT.get(base, "")
        seen += 1
    return False


def _choice_key(base: str, name: str, value_type: str | None, where: str | None) -> str:
    """The JSON property name for element `name` of `base` holding a value of `value_type`."""
    if name.endswith("[x]"):
        name = name[:-3]
    types = _CHOICE_PATHS.get(_child_def(base, name))
    if types:
        if not value_type:
            raise PatchError(f"'{name}' is a choice element: the value needs a type", where)
        if value_type not in types:
            raise PatchError(f"'{name}' cannot hold a value of type {value_type}", where)
        return name + value_type
    return name


def _existing_choice_key(container: dict, base: str, name: str) -> str | None:
    """The property (e.g. 'deceasedBoolean') holding the choice element `name` of `base`."""
    types = _CHOICE_PATHS.get(_child_def(base, name))
    if not types:
        return None
    for key in container:
        if key.startswith(name) and key[len(name) :] in types:
            return key
    return None


# --------------------------------------------------------------------------------------------
# FHIRPath Patch: values


def _materialise(part: dict, base: str | None) -> tuple[Any, Any, str | None]:
    """(JSON value, `_x` companion or None, FHIR type name or None) of a `value` part.

    `base` is what the target element's children are defined under (for anonymous values)."""
    for key in part:
        match = _VALUE_KEY.fullmatch(key)
        if match:
            return _clone(part[key]), _clone(part.get(f"_{key}")), match.group(1)
    if "resource" in part:
        return _clone(part["resource"]), None, None
    if "part" in part:
        return _build_anonymous(part["part"], base), None, None
    for key in part:  # only `_value[x]`: a primitive without a value, with extensions
        if key.startswith("_") and _VALUE_KEY.fullmatch(key[1:]):
            return None, _clone(part[key]), _VALUE_KEY.fullmatch(key[1:]).group(1)
    raise PatchError("The value part has no value")  # pragma: no cover - checked on parsing


def _build_anonymous(parts: list[dict], base: str | None) -> dict:
    result: dict[str, Any] = {}
    for sub in parts:
        name = sub["name"]
        child_def = _child_def(base, name) if base else None
        value, companion, value_type = _materialise(
            sub, _element_base(child_def) if child_def else None
        )
        key = _choice_key(base, name, value_type, None) if base else name
        repeating = bool(base) and _is_repeating(base, name)
        if key in result or repeating:
            _append(result, key, value, companion)
        else:
            _set(result, key, value, companion)
    return result


def _set(container: dict, key: str, value: Any, companion: Any) -> None:
    if value is None:
        container.pop(key, None)
    else:
        container[key] = value
    if companion is None:
        container.pop(f"_{key}", None)
    else:
        container[f"_{key}"] = companion


def _append(container: dict, key: str, value: Any, companion: Any) -> None:
    existing = container.get(key)
    if existing is None:
        existing = container[key] = []
    elif not isinstance(existing, list):
        existing = container[key] = [existing]
        if f"_{key}" in container:
            container[f"_{key}"] = [container[f"_{key}"]]
    _insert_item(container, key, len(existing), value, companion)


def _insert_item(container: dict, key: str, index: int, value: Any, companion: Any) -> None:
    items = container[key]
    comp_key = f"_{key}"
    companions = container.get(comp_key)
    if companion is not None or isinstance(companions, list):
        if not isinstance(companions, list):
            companions = []
        companions = companions + [None] * (len(items) - len(companions))
        companions.insert(index, companion)
        container[comp_key] = companions
    items.insert(index, value)
    _normalise_list(container, key)


def _normalise_list(container: dict, key: str) -> None:
    """Drop an emptied list and a companion list that carries nothing."""
    comp_key = f"_{key}"
    if isinstance(container.get(key), list) and not container[key]:
        del container[key]
    companions = container.get(comp_key)
    if isinstance(companions, list):
        length = len(container.get(key) or [])
        del companions[length:]
        if all(item is None for item in companions):
            del container[comp_key]


# --------------------------------------------------------------------------------------------
# FHIRPath Patch: finding elements in the resource


class _SyntaxErrorListener(ErrorListener):
    def syntaxError(self, recognizer, offendingSymbol, line, column, msg, e):
        raise _FhirPathSyntaxError(f"column {column + 1}: {msg}")


class _FhirPathSyntaxError(Exception):
    pass


def _delimit_keyword_members(expression: str) -> str:
    """Quote element names that the FHIRPath grammar reserves as keywords, so that
    'Patient.text.div' parses as FHIR means it (`div` is also the division operator)."""
    lexer = FHIRPathLexer(InputStream(expression))
    lexer.removeErrorListeners()
    lexer.addErrorListener(_SyntaxErrorListener())
    tokens = [t for t in lexer.getAllTokens() if t.channel == Token.DEFAULT_CHANNEL]
    keywords = [
        token
        for before, token, after in zip(tokens, tokens[1:], [*tokens[2:], None], strict=False)
        if before.text == "."
        and token.text in _KEYWORD_NAMES
        and (after is None or after.text != "(")
    ]
    for token in reversed(keywords):
        expression = f"{expression[: token.start]}`{token.text}`{expression[token.stop + 1 :]}"
    return expression


# Functions a patch path has no need for, and that let a client make the server work without
# bound: a crafted regular expression backtracks for minutes (ReDoS), `repeat` and
# `aggregate` iterate as long as the expression says.
_FORBIDDEN_FUNCTIONS = re.compile(r"\b(?:matches|replaceMatches|repeat|aggregate)\s*\(")


@functools.lru_cache(maxsize=1024)
def _parse_fhirpath(expression: str) -> dict:
    """Parse like fhirpathpy.parser.parse, but reject syntax errors (fhirpathpy recovers)."""
    if _FORBIDDEN_FUNCTIONS.search(expression):
        raise PatchError("matches, replaceMatches, repeat and aggregate are not allowed in a path")
    listener = _SyntaxErrorListener()
    lexer = FHIRPathLexer(InputStream(_delimit_keyword_members(expression)))
    lexer.removeErrorListeners()
    lexer.addErrorListener(listener)
    tokens = CommonTokenStream(lexer)
    parser = FHIRPathParser(tokens)
    parser.buildParseTrees = True
    parser.removeErrorListeners()
    parser.addErrorListener(listener)
    tree = parser.expression()
    if tokens.LA(1) != Token.EOF:
        raise _FhirPathSyntaxError(f"unexpected '{tokens.LT(1).text}' after the expression")
    ast = ASTPathListener()
    ParseTreeWalker().walk(ast, tree)
    root = ast.parentStack[0]
    if not root.get("children"):
        raise _FhirPathSyntaxError("empty expression")
    return root


@functools.lru_cache(maxsize=1024)
def _split_last_step(expression: str) -> tuple[dict | None, str] | None:
    """For 'X.name' the parsed X (None when the expression is just 'name') and 'name'."""
    node = _parse_fhirpath(expression)["children"][0]
    if node.get("type") == "InvocationExpression":
        left, last = node["children"]
        parent: dict | None = {"children": [left]}
    elif node.get("type") == "TermExpression":
        parent, last = None, node["children"][0]
        if last.get("type") != "InvocationTerm":
            return None
        last = last["children"][0]
    else:
        return None
    if last.get("type") != "MemberInvocation":
        return None
    name = last["children"][0]["text"].strip("`")
    return parent, name


@dataclass
class _Location:
    """Where an element sits: `frames` lead from the resource root to it, each frame being
    (containing object, JSON key, list index or None, FHIR element name).  `base` is what the
    element's children are defined under (a type name or a backbone element path)."""

    frames: list[tuple[dict, str, int | None, str]]
    value: Any
    base: str

    @property
    def identity(self) -> tuple:
        if not self.frames:
            return ("root",)
        parent, key, index, _ = self.frames[-1]
        return (id(parent), key.lstrip("_"), index)


def _evaluate(root: dict, parsed: dict, expression: str, where: str) -> list[_Location]:
    context = {"resource": root, "rootResource": root}
    try:
        nodes = fhirpathpy.apply_parsed_path(root, parsed, context, _R4, _EVAL_OPTIONS)
    except PatchError:
        raise
    except Exception as exc:
        raise PatchError(f"Cannot evaluate FHIRPath '{expression}': {exc}", where) from exc
    found: dict[tuple, _Location] = {}
    for node in nodes if isinstance(nodes, list) else [nodes]:
        location = _locate(root, node)
        if location is None:
            raise PatchError(
                f"FHIRPath '{expression}' selects something that is not an element of the resource",
                where,
            )
        found.setdefault(location.identity, location)
    return list(found.values())


def _locate(root: dict, node: Any) -> _Location | None:
    if not isinstance(node, fhirpathpy.ResourceNode):  # e.g. %resource, or a computed value
        if node is root:
            return _Location([], root, root.get("resourceType", ""))
        return _find_by_identity(root, node) if isinstance(node, dict | list) else None
    data = node.data
    if data is root:
        return _Location([], root, root.get("resourceType", ""))
    prop_name = node.propName
    location = _walk(root, prop_name) if isinstance(prop_name, str) else None
    if location is not None and _matches(location, data):
        return location
    if isinstance(data, dict | list):  # fall back on object identity
        return _find_by_identity(root, data)
    return None


def _matches(location: _Location, data: Any) -> bool:
    value = location.value
    if isinstance(data, dict | list) or isinstance(value, dict | list):
        return value is data or _companion(location) is data
    if data is None:  # fhirpathpy's node for a null item of a primitive or `_x` list
        return location.frames[-1][2] is not None
    return _json_equal(value, data)


def _companion(location: _Location) -> Any:
    if not location.frames:
        return None
    parent, key, index, _ = location.frames[-1]
    companion = parent.get(f"_{key}")
    if index is None:
        return companion
    if isinstance(companion, list) and index < len(companion):
        return companion[index]
    return None


def _walk(root: dict, prop_name: str) -> _Location | None:
    """Follow fhirpathpy's `propName` ('Patient.contact[0].name.text') through the JSON."""
    segments = prop_name.split(".")
    if len(segments) < 2:
        return None
    frames: list[tuple[dict, str, int | None, str]] = []
    current: Any = root
    base = root.get("resourceType", "")
    for segment in segments[1:]:
        match = _PROP_SEGMENT.fullmatch(segment)
        if match is None:
            return None
        name, index = match.group(1), None if match.group(2) is None else int(match.group(2))
        if not isinstance(current, dict):
            # below a primitive: its id and extensions live in the `_x` companion
            if not frames:
                return None
            location = _Location(frames, current, base)
            companion = _companion(location)
            if not isinstance(companion, dict):
                return None
            parent, key, at, fhir_name = frames[-1]
            frames[-1] = (parent, f"_{key}", at, fhir_name)
            current, base = companion, "Element"
        if isinstance(current.get("resourceType"), str):
            base = current["resourceType"]
        key = name
        if name not in current and f"_{name}" not in current:
            key = _existing_choice_key(current, base, name) or ""
            if not key:
                return None
        choice_type = key[len(name) :] or None
        value = current.get(key)
        if index is not None:
            if isinstance(value, list):
                value = value[index] if index < len(value) else None
            elif value is None and isinstance(current.get(f"_{key}"), list):
                value = None  # list of primitives that only have extensions
            else:
                return None
        elif isinstance(value, list):
            return None
        frames.append((current, key, index, name))
        base = _element_base(_child_def(base, name), choice_type)
        current = value
    return _Location(frames, current, base)


def _find_by_identity(root: dict, target: Any) -> _Location | None:
    def search(current: Any, frames: list, base: str) -> _Location | None:
        if not isinstance(current, dict):
            return None
        if isinstance(current.get("resourceType"), str):
            base = current["resourceType"]
        for key, value in current.items():
            name = key.lstrip("_")
            items = list(enumerate(value)) if isinstance(value, list) else [(None, value)]
            for index, item in items:
                if not isinstance(item, dict | list):
                    continue
                child_frames = [*frames, (current, key, index, name)]
                child_base = (
                    "Element" if key.startswith("_") else _element_base(_child_def(base, name))
                )
                if item is target:
                    return _Location(child_frames, item, child_base)
                found = search(item, child_frames, child_base)
                if found is not None:
                    return found
        return None

    return search(root, [], root.get("resourceType", ""))


def _select(root: dict, op: _Operation) -> list[_Location]:
    try:
        parsed = _parse_fhirpath(op.path)
    except _FhirPathSyntaxError as exc:
        raise PatchError(f"Invalid FHIRPath '{op.path}': {exc}", op.where) from exc
    except Exception as exc:
        raise PatchError(f"Invalid FHIRPath '{op.path}': {exc}", op.where) from exc
    return _evaluate(root, parsed, op.path, op.where)


def _select_one(root: dict, op: _Operation, what: str) -> _Location:
    found = _select(root, op)
    if not found:
        raise PatchError(f"No content found at {op.path} when {what}", op.where)
    if len(found) > 1:
        raise PatchError(
            f"The path {op.path} matches {len(found)} elements when {what}; it must match "
            "exactly one",
            op.where,
        )
    return found[0]


def _select_list(root: dict, op: _Operation) -> tuple[dict, str, _Location]:
    """The container object and property name of the list that `op.path` names."""
    try:
        split = _split_last_step(op.path)
    except Exception as exc:
        raise PatchError(f"Invalid FHIRPath '{op.path}': {exc}", op.where) from exc
    if split is None or not _ELEMENT_NAME.fullmatch(split[1]):
        raise PatchError(
            f"The {op.type} path must end with the name of a list element: {op.path}", op.where
        )
    parent_parsed, name = split
    if parent_parsed is None:
        owners = [_Location([], root, root.get("resourceType", ""))]
    else:
        owners = _evaluate(root, parent_parsed, op.path, op.where)
    if len(owners) != 1:
        raise PatchError(
            f"The list at {op.path} must be in exactly one element (found {len(owners)})",
            op.where,
        )
    owner = owners[0]
    if not isinstance(owner.value, dict):
        raise PatchError(f"{op.path} is not a list in the resource", op.where)
    items = owner.value.get(name)
    if items is not None and not isinstance(items, list):
        raise PatchError(f"{op.path} is not a list", op.where)
    return owner.value, name, owner


# --------------------------------------------------------------------------------------------
# FHIRPath Patch: operations


def _remove(location: _Location) -> None:
    frames = location.frames
    _remove_frame(frames[-1])
    # prune containers that the removal left empty (an empty object is not valid FHIR)
    for depth in range(len(frames) - 2, -1, -1):
        parent, key, index, _ = frames[depth]
        value = parent.get(key)
        if index is not None:
            value = value[index] if isinstance(value, list) and index < len(value) else None
        if value in ({}, []):
            _remove_frame(frames[depth])
        else:
            break


def _remove_frame(frame: tuple[dict, str, int | None, str]) -> None:
    parent, key, index, _ = frame
    if index is None:
        parent.pop(key, None)
        if not key.startswith("_"):
            parent.pop(f"_{key}", None)
        return
    base_key = key.lstrip("_")
    items, companions = parent.get(base_key), parent.get(f"_{base_key}")
    if key.startswith("_"):  # drop the id/extensions of a primitive list item
        if isinstance(companions, list) and index < len(companions):
            companions[index] = None
        if not (isinstance(items, list) and index < len(items) and items[index] is not None):
            _pop(items, index)  # neither value nor extensions left: the item is gone
            _pop(companions, index)
    else:
        _pop(items, index)
        _pop(companions, index)
    _normalise_list(parent, base_key)


def _pop(items: Any, index: int) -> None:
    if isinstance(items, list) and index < len(items):
        del items[index]


def _op_delete(root: dict, op: _Operation) -> None:
    found = _select(root, op)
    if not found:
        return  # deleting what is not there is not an error
    if len(found) > 1:
        raise PatchError(
            f"The path {op.path} matches {len(found)} elements; only a single element can be "
            "deleted",
            op.where,
        )
    if not found[0].frames:
        raise PatchError("The resource itself cannot be deleted", op.where)
    _remove(found[0])


def _op_replace(root: dict, op: _Operation) -> None:
    target = _select_one(root, op, "replacing")
    if not target.frames:
        raise PatchError("The resource itself cannot be replaced", op.where)
    assert op.value is not None
    parent, key, index, name = target.frames[-1]
    if key.startswith("_"):  # pragma: no cover - the final frame never points at a companion
        raise PatchError(f"Cannot replace {op.path}", op.where)
    value, companion, value_type = _materialise(op.value, target.base)
    if key != name and value_type:  # a choice element: the new value brings its own type
        new_key = name + value_type
        if new_key != key:
            if index is not None:
                raise PatchError(f"Cannot change the type of {op.path} in a list", op.where)
            parent.pop(key, None)
            parent.pop(f"_{key}", None)
            key = new_key
    if index is None:
        _set(parent, key, value, companion)
        return
    parent[key][index] = value
    companions = parent.get(f"_{key}")
    if companion is not None or isinstance(companions, list):
        if not isinstance(companions, list):
            companions = []
        companions.extend([None] * (len(parent[key]) - len(companions)))
        companions[index] = companion
        parent[f"_{key}"] = companions
        _normalise_list(parent, key)


def _op_add(root: dict, op: _Operation) -> None:
    target = _select_one(root, op, "adding")
    assert op.name is not None and op.value is not None
    name = op.name[:-3] if op.name.endswith("[x]") else op.name
    if not _ELEMENT_NAME.fullmatch(name) or name == "resourceType":
        raise PatchError(f"'{op.name}' is not an element name", op.where)
    container = target.value
    base = target.base
    if not isinstance(container, dict):
        # a primitive: only its id and extensions can be added, in the `_x` companion
        if name not in ("id", "extension") or not target.frames:
            raise PatchError(f"Cannot add '{name}' to the primitive value at {op.path}", op.where)
        parent, key, index, _ = target.frames[-1]
        container = _companion(target)
        if container is None:
            container = {}
            if index is None:
                parent[f"_{key}"] = container
            else:
                companions = parent.get(f"_{key}")
                if not isinstance(companions, list):
                    companions = []
                companions.extend([None] * (len(parent[key]) - len(companions)))
                companions[index] = container
                parent[f"_{key}"] = companions
        base = "Element"
    child_def = _child_def(base, name)
    value, companion, value_type = _materialise(op.value, _element_base(child_def))
    if value is None and companion is None:  # pragma: no cover - checked on parsing
        raise PatchError("The value to add is empty", op.where)
    if name in container or f"_{name}" in container:
        key: str | None = name
    else:
        key = _existing_choice_key(container, base, name)
    if key is None:  # a new element
        key = _choice_key(base, name, value_type, op.where)
        if _is_repeating(base, name):
            _append(container, key, value, companion)
        else:
            _set(container, key, value, companion)
        return
    # the element exists: only a list takes more
    if not isinstance(container.get(key), list):
        if container.get(key) is not None or not isinstance(container.get(f"_{key}"), list):
            raise PatchError(
                f"'{name}' already has a value at {op.path}; add only adds to a list or an "
                "element that is not there yet (use replace)",
                op.where,
            )
        container[key] = [None] * len(container[f"_{key}"])  # primitives with extensions only
    _append(container, key, value, companion)


def _op_insert(root: dict, op: _Operation) -> None:
    container, name, owner = _select_list(root, op)
    assert op.index is not None and op.value is not None
    items = container.get(name) or []
    if op.index > len(items):
        raise PatchError(
            f"Insert index {op.index} is outside the list {op.path} ({len(items)} items)",
            op.where,
        )
    if name not in container and not _is_repeating(owner.base, name):
        raise PatchError(f"{op.path} is not a list element", op.where)
    value, companion, _ = _materialise(op.value, _element_base(_child_def(owner.base, name)))
    container[name] = items
    _insert_item(container, name, op.index, value, companion)


def _op_move(root: dict, op: _Operation) -> None:
    container, name, _ = _select_list(root, op)
    assert op.source is not None and op.destination is not None
    items = container.get(name) or []
    for label, index in (("source", op.source), ("destination", op.destination)):
        if index >= len(items):
            raise PatchError(
                f"Move {label} {index} is outside the list {op.path} ({len(items)} items)",
                op.where,
            )
    items.insert(op.destination, items.pop(op.source))
    companions = container.get(f"_{name}")
    if isinstance(companions, list):
        companions.extend([None] * (len(items) - len(companions)))
        companions.insert(op.destination, companions.pop(op.source))


_OPERATIONS = {
    "add": _op_add,
    "insert": _op_insert,
    "delete": _op_delete,
    "replace": _op_replace,
    "move": _op_move,
}


def apply_fhirpath_patch(resource: dict, parameters: object) -> dict:
    """Apply a FHIRPath Patch (a Parameters resource of `operation` parameters) to a copy of
    `resource` and return the copy.

    Operations are applied in order.  `delete` of a path that matches nothing does nothing;
    add/insert/replace/move need their path to match exactly one element (insert and move: one
    list, named by the path's last step).  Deleting leaves no empty objects or lists behind.
    """
    if not isinstance(resource, dict) or not isinstance(resource.get("resourceType"), str):
        raise PatchError("The resource to patch must be a JSON object with a resourceType")
    try:
        operations = _parse_parameters(parameters)
    except PatchError:
        raise
    except Exception as exc:  # e.g. absurdly deep nesting, keys that are not strings
        raise PatchError(f"Malformed FHIRPath Patch document: {type(exc).__name__}") from exc
    result = _clone(resource)
    for op in operations:
        try:
            _OPERATIONS[op.type](result, op)
        except PatchError as exc:
            if exc.expression is None:
                exc.expression = op.where
            raise
        except Exception as exc:  # a defect here must still not escape as anything else
            raise PatchError(
                f"Cannot apply the {op.type} operation: {type(exc).__name__}: {exc}", op.where
            ) from exc
    return result
