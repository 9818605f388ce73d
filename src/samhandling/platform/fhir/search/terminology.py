"""Token modifiers that need a terminology service: ``:in``, ``:not-in``, ``:below``, ``:above``.

Before a search runs, `resolve` rewrites each such criterion (at any depth of chains and
``_has``) into plain token codes: ``code:in=<value set>`` becomes ``code=<system|code>,...``
over the value set's expansion, ``:not-in`` the same under ``:not``, ``:below=system|code``
the code and every code it subsumes, ``:above`` the code and every code that subsumes it.
The codes come from a `TerminologyResolver` the platform's terminology service provides;
without one these modifiers are refused as not supported.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Protocol

from samhandling.platform.fhir.errors import FhirError
from samhandling.platform.fhir.search.query import (
    Chain,
    Criterion,
    Has,
    Leaf,
    SearchRequest,
    split_values,
    unescape,
)

TERMINOLOGY_MODIFIERS = frozenset({"in", "not-in", "below", "above"})
MAX_CODES = 2_000  # codes one criterion may stand for
_NOTHING = "urn:samhandling:no-code|-"  # a token no resource has (an empty value set)


class TerminologyResolver(Protocol):
    """What search asks a terminology service."""

    async def codes_in(self, valueset: str) -> list[tuple[str, str]] | None:
        """(system, code) of the value set's expansion; None when it is not known."""
        ...

    async def related(self, system: str, code: str, direction: str) -> list[str] | None:
        """``code`` with the codes it subsumes (``below``) or that subsume it (``above``);
        None when the code system is not known."""
        ...


def needs_terminology(request: SearchRequest) -> bool:
    """Whether any criterion uses one of the terminology modifiers."""
    return any(_uses(c) for c in request.criteria)


def _is_terminology(leaf: Leaf) -> bool:
    """A token criterion with one of the modifiers (uri has its own :below and :above)."""
    return (
        leaf.modifier in TERMINOLOGY_MODIFIERS
        and leaf.param is not None
        and leaf.param.type == "token"
    )


def _uses(criterion: Criterion) -> bool:
    if isinstance(criterion, Leaf):
        return _is_terminology(criterion)
    if isinstance(criterion, Chain):
        return any(_uses(c) for c in criterion.inner.values())
    if isinstance(criterion, Has):
        return _uses(criterion.inner)
    return False


async def resolve(request: SearchRequest, resolver: TerminologyResolver | None) -> None:
    """Rewrite the terminology modifiers of ``request`` into plain token criteria."""
    if resolver is None:
        raise FhirError.of(
            400, "not-supported", "the modifiers :in, :not-in, :below and :above need the "
            "terminology service, which this server does not run",
        )  # fmt: skip
    request.criteria = [await _rewrite(c, resolver) for c in request.criteria]


async def _rewrite(criterion: Criterion, resolver: TerminologyResolver) -> Criterion:
    if isinstance(criterion, Chain):
        inner = {t: await _rewrite(c, resolver) for t, c in criterion.inner.items()}
        return replace(criterion, inner=inner)
    if isinstance(criterion, Has):
        return replace(criterion, inner=await _rewrite(criterion.inner, resolver))
    if not isinstance(criterion, Leaf) or not _is_terminology(criterion):
        return criterion
    name = f"{criterion.code}:{criterion.modifier}"
    tokens: list[str] = []
    for value in criterion.values:
        if criterion.modifier in ("in", "not-in"):
            codes = await resolver.codes_in(unescape(value))
            if codes is None:
                raise FhirError.of(
                    400, "not-found", f"{name}: the value set {value!r} is not known"
                )
            tokens.extend(f"{_escape(system)}|{_escape(code)}" for system, code in codes)
        else:
            parts = split_values(value, "|")
            if len(parts) != 2 or not all(parts):
                raise FhirError.of(400, "invalid", f"{name} takes system|code, not {value!r}")
            system, code = unescape(parts[0]), unescape(parts[1])
            related = await resolver.related(system, code, criterion.modifier)
            if related is None:
                raise FhirError.of(
                    400, "not-found", f"{name}: the code system {system!r} is not known"
                )
            tokens.extend(f"{_escape(system)}|{_escape(c)}" for c in related)
        if len(tokens) > MAX_CODES:
            raise FhirError.of(
                400, "too-costly", f"{name} stands for more than {MAX_CODES} codes", name
            )
    modifier = "not" if criterion.modifier == "not-in" else None
    values = tuple(dict.fromkeys(tokens)) or (_NOTHING,)
    return Leaf(criterion.param, criterion.code, modifier, values)


def _escape(text: str) -> str:
    """A value as search syntax writes it (``\\``, ``,``, ``|``, ``$`` escaped)."""
    for char in ("\\", ",", "|", "$"):
        text = text.replace(char, "\\" + char)
    return text
