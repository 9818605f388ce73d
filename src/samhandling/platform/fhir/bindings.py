"""Terminology binding validation on write: the engine's mechanism, fed by a code validator.

Two rules, for every write once a `CodeValidator` (the terminology service) is installed:

- **Unknown codes in known code systems are refused.** Any Coding anywhere in the resource
  whose system the server holds completely, with a code that system does not have, is an
  error naming the element and the code.
- **Bindings are checked.** The R4 bindings of coded elements (CodeableConcept, Coding) and
  those services declare for their profiles (`Binding`, optionally for the codings of one
  system only, as a profile's sliced binding is): ``required`` — a coded value none of whose
  codings is in the value set is an error; ``extensible`` and ``preferred`` — a warning.
  A value set the validator cannot expand (not loaded, or a code system it needs is not)
  is not checked.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Protocol

from samhandling.platform.fhir.definitions import bindings as r4_bindings
from samhandling.platform.fhir.errors import Issue

REQUIRED = "required"


class CodeValidator(Protocol):
    """What binding validation asks the terminology service."""

    async def known_code(self, system: str, code: str) -> bool | None:
        """Whether ``system`` has ``code``; None when the server does not hold ``system``
        completely (then nothing can be said)."""
        ...

    async def in_valueset(self, valueset: str, system: str, code: str) -> bool | None:
        """Whether the value set contains ``system|code``; None when it cannot be expanded."""
        ...


@dataclass(frozen=True, slots=True)
class Binding:
    """A coded element bound to a value set."""

    path: str  # e.g. "Condition.clinicalStatus", "RelatedPerson.relationship"
    strength: str  # required | extensible | preferred
    valueset: str
    system: str | None = None  # only codings of this system (a sliced binding)


class BindingRules:
    """The bindings per resource type: R4's and the ones services add."""

    def __init__(self) -> None:
        self._added: dict[str, list[Binding]] = {}
        self._cache: dict[str, tuple[Binding, ...]] = {}

    def add(self, binding: Binding) -> None:
        """Check ``binding`` on writes of its resource type from now on."""
        type_name = binding.path.partition(".")[0]
        self._added.setdefault(type_name, []).append(binding)
        self._cache.pop(type_name, None)

    def of(self, type_name: str) -> tuple[Binding, ...]:
        """Every binding of ``type_name``."""
        found = self._cache.get(type_name)
        if found is None:
            found = tuple(Binding(*row) for row in r4_bindings(type_name)) + tuple(
                self._added.get(type_name, ())
            )
            self._cache[type_name] = found
        return found

    async def check(self, type_name: str, resource: dict, codes: CodeValidator) -> list[Issue]:
        """The issues of ``resource``: errors for unknown codes and required bindings, and
        warnings for extensible and preferred ones."""
        issues: list[Issue] = []
        for path, coding in _codings(resource, type_name):
            system, code = coding.get("system"), coding.get("code")
            if (
                isinstance(system, str)
                and isinstance(code, str)
                and await codes.known_code(system, code) is False
            ):
                issues.append(
                    Issue("error", "code-invalid", f"{code!r} is not a code in {system}",
                          (f"{path}.code",))
                )  # fmt: skip
        for binding in self.of(type_name):
            for path, value in _values(resource, binding.path):
                codings = _codings_of(value)
                if binding.system is not None:
                    codings = [c for c in codings if c.get("system") == binding.system]
                if not codings:
                    continue
                found = [
                    await codes.in_valueset(binding.valueset, c["system"], c["code"])
                    for c in codings
                    if isinstance(c.get("system"), str) and isinstance(c.get("code"), str)
                ]
                if not found or None in found or True in found:
                    continue
                shown = ", ".join(f"{c.get('system')}|{c.get('code')}" for c in codings)
                severity = "error" if binding.strength == REQUIRED else "warning"
                issues.append(
                    Issue(severity, "code-invalid",
                          f"{shown} is not in the value set {binding.valueset} "
                          f"({binding.strength} binding)", (path,))
                )  # fmt: skip
        return issues


def _values(resource: dict, path: str) -> Iterator[tuple[str, Any]]:
    """(expression, value) of every value at a dotted element path, arrays walked."""
    names = path.split(".")[1:]

    def walk(node: Any, at: str, rest: list[str]) -> Iterator[tuple[str, Any]]:
        if not rest:
            yield at, node
            return
        child = node.get(rest[0]) if isinstance(node, dict) else None
        if child is None:
            return
        if isinstance(child, list):
            for index, item in enumerate(child):
                yield from walk(item, f"{at}.{rest[0]}[{index}]", rest[1:])
        else:
            yield from walk(child, f"{at}.{rest[0]}", rest[1:])

    yield from walk(resource, path.split(".")[0], names)


def _codings_of(value: Any) -> list[dict]:
    """The codings of a CodeableConcept or a Coding."""
    if not isinstance(value, dict):
        return []
    if "coding" in value:
        return [c for c in value["coding"] if isinstance(c, dict)]
    return [value] if "code" in value or "system" in value else []


def _codings(node: Any, at: str) -> Iterator[tuple[str, dict]]:
    """Every Coding-like object (with ``system`` and ``code``) below ``node``."""
    if isinstance(node, dict):
        if "system" in node and "code" in node and "value" not in node:
            yield at, node
        for key, value in node.items():
            if isinstance(value, (dict, list)) and key not in ("contained", "text"):
                yield from _codings(value, f"{at}.{key}")
    elif isinstance(node, list):
        for index, item in enumerate(node):
            yield from _codings(item, f"{at}[{index}]")
