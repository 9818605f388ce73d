"""FHIR operations (``$name``): how services add them to the engine, and their parameters.

An `Operation` names where it may be invoked (system, type, instance level, on which
resource types), whether it changes state (then only POST, with the write scope), and the
async function that runs it. The REST layer parses the parameters — from the query string
of a GET or a form POST, or from a ``Parameters`` body — into `OperationParameters`, and
the function answers with a resource (usually ``Parameters``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from samhandling.platform.fhir.access import Touched
from samhandling.platform.fhir.errors import FhirError

SYSTEM = "system"
TYPE = "type"
INSTANCE = "instance"


class OperationParameters:
    """An operation's input: each parameter name with its values, in order.

    A value is what a ``Parameters.parameter`` carried: a primitive (``valueX``) as the
    Python value, a ``resource``, or for a parameter with ``part`` the nested parameters.
    Query-string values are strings.
    """

    def __init__(self, items: Iterable[tuple[str, Any]] = ()) -> None:
        self._items: list[tuple[str, Any]] = list(items)

    @classmethod
    def from_query(cls, items: Iterable[tuple[str, str]]) -> OperationParameters:
        """Parameters of a GET (or a form POST): every value a string."""
        return cls((name, value) for name, value in items if name not in ("_format", "_pretty"))

    @classmethod
    def from_resource(cls, body: object) -> OperationParameters:
        """Parameters of a POST body, which must be a ``Parameters`` resource."""
        if not isinstance(body, dict) or body.get("resourceType") != "Parameters":
            raise FhirError.of(
                400, "invalid", "the body of an operation must be a Parameters resource"
            )
        return cls(_parameter_items(body.get("parameter", []), "Parameters.parameter"))

    def __iter__(self) -> Iterator[tuple[str, Any]]:
        return iter(self._items)

    def names(self) -> set[str]:
        """The names given."""
        return {name for name, _ in self._items}

    def all(self, name: str) -> list[Any]:
        """Every value of ``name``."""
        return [value for key, value in self._items if key == name]

    def get(self, name: str) -> Any:
        """The one value of ``name`` (None when absent; 400 when given more than once)."""
        values = self.all(name)
        if len(values) > 1:
            raise FhirError.of(400, "invalid", f"parameter {name!r} may be given only once")
        return values[0] if values else None

    def text(self, name: str) -> str | None:
        """The value of ``name`` as a string (400 when it is not a primitive)."""
        value = self.get(name)
        if value is None:
            return None
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, (str, int, float)):
            return str(value)
        raise FhirError.of(400, "invalid", f"parameter {name!r} must be a simple value")

    def boolean(self, name: str, default: bool = False) -> bool:
        """The value of ``name`` as a boolean (``true``/``false``)."""
        value = self.get(name)
        if value is None:
            return default
        if isinstance(value, bool):
            return value
        if value in ("true", "false"):
            return value == "true"
        raise FhirError.of(400, "invalid", f"parameter {name!r} must be true or false")

    def integer(self, name: str, default: int | None = None, minimum: int = 0) -> int | None:
        """The value of ``name`` as a non-negative integer."""
        value = self.get(name)
        if value is None:
            return default
        if isinstance(value, bool) or not (
            isinstance(value, int)
            or (isinstance(value, str) and value.isascii() and value.isdigit())
        ):
            raise FhirError.of(400, "invalid", f"parameter {name!r} must be an integer")
        number = int(value)
        if number < minimum or number > 10**9:
            raise FhirError.of(400, "invalid", f"parameter {name!r} is out of range")
        return number

    def resource(self, name: str) -> dict | None:
        """The resource given as ``name`` (400 when the value is not a resource)."""
        value = self.get(name)
        if value is None:
            return None
        if not isinstance(value, dict) or "resourceType" not in value:
            raise FhirError.of(400, "invalid", f"parameter {name!r} must be a resource")
        return value


def _parameter_items(raw: object, where: str) -> list[tuple[str, Any]]:
    if not isinstance(raw, list):
        raise FhirError.of(400, "structure", f"{where} must be an array", where)
    items = []
    for index, parameter in enumerate(raw):
        at = f"{where}[{index}]"
        if not isinstance(parameter, dict) or not isinstance(parameter.get("name"), str):
            raise FhirError.of(400, "structure", f"{at} needs a name", at)
        values = [(key, value) for key, value in parameter.items() if key.startswith("value")]
        if "resource" in parameter:
            values.append(("resource", parameter["resource"]))
        if "part" in parameter:
            values.append(("part", OperationParameters(_parameter_items(parameter["part"], at))))
        if len(values) != 1:
            raise FhirError.of(
                400, "structure", f"{at} must have exactly one value, resource or part", at
            )
        items.append((parameter["name"], values[0][1]))
    return items


@dataclass(frozen=True, slots=True)
class OperationCall:
    """One invocation: where it was invoked, its parameters, and who called."""

    type: str | None  # None at system level
    id: str | None  # set at instance level
    parameters: OperationParameters
    context: object  # the caller (opaque to the engine; the policy's AccessContext)
    base: str
    # the resource versions the handler looked at on the caller's behalf (for the trail)
    touched: list[Touched] = field(default_factory=list)
    headers: dict[str, str] = field(default_factory=dict)  # more HTTP response headers


Handler = Callable[[OperationCall], Awaitable[dict]]


@dataclass(frozen=True)
class Operation:
    """A ``$name`` operation a service adds to the engine."""

    name: str  # without the "$"
    handler: Handler
    types: tuple[str, ...] = ()  # resource types it is defined on (none: system level only)
    levels: frozenset[str] = field(default_factory=lambda: frozenset({TYPE, INSTANCE}))
    affects_state: bool = False  # True: POST only, and the write scope
    # the resource type whose access rules govern it (default: the type it is invoked on)
    access_type: str | None = None
    definition: str | None = None  # canonical URL of its OperationDefinition
    documentation: str = ""


class OperationRegistry:
    """The operations the engine offers, by level, type and name."""

    def __init__(self) -> None:
        self._by_key: dict[tuple[str, str | None, str], Operation] = {}

    def add(self, operation: Operation) -> None:
        """Offer ``operation`` (a second operation with the same name and place is an error)."""
        places = [(level, t) for level in operation.levels for t in operation.types]
        if SYSTEM in operation.levels:
            places.append((SYSTEM, None))
        for level, type_name in places:
            key = (level, type_name if level != SYSTEM else None, operation.name)
            if key in self._by_key:
                raise ValueError(f"${operation.name} is defined twice at {level} {type_name}")
            self._by_key[key] = operation

    def find(self, name: str, type: str | None, id: str | None) -> Operation | None:
        """The operation ``$name`` invoked on ``type``/``id`` (None: not defined there)."""
        level = SYSTEM if type is None else (INSTANCE if id else TYPE)
        return self._by_key.get((level, type, name))

    def for_type(self, type: str) -> list[Operation]:
        """Operations on ``type`` at type or instance level, by name."""
        found = {op.name: op for (level, t, _), op in self._by_key.items() if t == type}
        return [found[name] for name in sorted(found)]

    def system(self) -> list[Operation]:
        """System-level operations, by name."""
        return sorted(
            (op for (level, _, _), op in self._by_key.items() if level == SYSTEM),
            key=lambda op: op.name,
        )
