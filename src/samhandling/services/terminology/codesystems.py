"""Code systems in memory: concepts by code, their hierarchy and closure, text search.

A `CodeSystemIndex` is built once from a stored CodeSystem resource and answers the
terminology operations without touching the database: a code lookup is one dictionary
access, subsumption a set membership in a closure computed on first use, a text filter one
pass over prepared lower-case displays. Hierarchy comes from nested ``concept`` elements
and from the ``parent``/``child`` properties.
"""

from __future__ import annotations

import bisect
import re
import unicodedata
from dataclasses import dataclass, field
from typing import Any

EQUIVALENT = "equivalent"
SUBSUMES = "subsumes"
SUBSUMED_BY = "subsumed-by"
NOT_SUBSUMED = "not-subsumed"
_INACTIVE_STATUS = frozenset({"retired", "inactive"})
_WORDS = re.compile(r"[\W_]+")  # what separates words in a text filter


@dataclass
class Concept:
    """One concept of a code system."""

    code: str
    display: str | None = None
    definition: str | None = None
    designations: list[dict[str, Any]] = field(default_factory=list)
    properties: list[dict[str, Any]] = field(default_factory=list)  # CodeSystem.concept.property
    parents: list[str] = field(default_factory=list)
    children: list[str] = field(default_factory=list)
    inactive: bool = False
    abstract: bool = False  # notSelectable

    def property_values(self, code: str) -> list[Any]:
        """The values of property ``code`` (any ``value[x]``)."""
        return [
            next((v for k, v in p.items() if k.startswith("value")), None)
            for p in self.properties
            if p.get("code") == code
        ]


def fold(text: str) -> str:
    """Text as the filter compares it: lower case, accents removed (``ø``, ``æ`` kept)."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


class CodeSystemIndex:
    """A CodeSystem's concepts, ready for lookups, subsumption and filters."""

    def __init__(self, resource: dict[str, Any]) -> None:
        self.resource_id: str = resource.get("id", "")
        self.url: str = resource.get("url", "")
        self.version: str | None = resource.get("version")
        self.name: str | None = resource.get("name") or resource.get("title")
        self.content: str = resource.get("content", "complete")
        self.case_sensitive: bool = resource.get("caseSensitive", True)
        self.concepts: dict[str, Concept] = {}
        self._folded_codes: dict[str, str] = {}
        self._ancestors: dict[str, frozenset[str]] = {}
        self._descendants: dict[str, frozenset[str]] = {}
        # the words of every concept's code, display and designations, sorted, and for each
        # the codes it occurs in: a prefix is a range found by bisection
        self._words: tuple[list[str], list[tuple[str, ...]]] | None = None
        for concept in resource.get("concept") or ():
            self._add(concept, None)
        self._link_properties()

    def _add(self, raw: dict[str, Any], parent: str | None) -> None:
        code = raw.get("code")
        if not isinstance(code, str):
            return
        concept = self.concepts.get(code)
        if concept is None:
            concept = Concept(
                code,
                raw.get("display"),
                raw.get("definition"),
                list(raw.get("designation") or ()),
                list(raw.get("property") or ()),
            )
            concept.inactive = _inactive(concept)
            concept.abstract = True in concept.property_values("notSelectable")
            self.concepts[code] = concept
            self._folded_codes.setdefault(code.casefold(), code)
        if parent is not None:
            _link(self.concepts[parent], concept)
        for child in raw.get("concept") or ():
            self._add(child, code)

    def _link_properties(self) -> None:
        for concept in list(self.concepts.values()):
            for parent in concept.property_values("parent"):
                if isinstance(parent, str) and parent in self.concepts:
                    _link(self.concepts[parent], concept)
            for child in concept.property_values("child"):
                if isinstance(child, str) and child in self.concepts:
                    _link(concept, self.concepts[child])

    # lookups

    def get(self, code: str) -> Concept | None:
        """The concept with ``code`` (case-insensitively when the system is)."""
        found = self.concepts.get(code)
        if found is None and not self.case_sensitive:
            exact = self._folded_codes.get(code.casefold())
            found = self.concepts.get(exact) if exact else None
        return found

    def ancestors(self, code: str) -> frozenset[str]:
        """Every concept above ``code`` (its closure, without itself)."""
        known = self._ancestors.get(code)
        if known is None:
            known = self._closure(code, lambda c: c.parents)
            self._ancestors[code] = known
        return known

    def descendants(self, code: str) -> frozenset[str]:
        """Every concept below ``code`` (without itself)."""
        known = self._descendants.get(code)
        if known is None:
            known = self._closure(code, lambda c: c.children)
            self._descendants[code] = known
        return known

    def _closure(self, code: str, step: Any) -> frozenset[str]:
        seen: set[str] = set()
        todo = list(step(self.concepts[code])) if code in self.concepts else []
        while todo:
            current = todo.pop()
            if current not in seen:
                seen.add(current)
                todo.extend(step(self.concepts[current]))
        seen.discard(code)
        return frozenset(seen)

    def subsumes(self, a: str, b: str) -> str:
        """How concept ``a`` relates to ``b``: equivalent, subsumes, subsumed-by or not."""
        if a == b:
            return EQUIVALENT
        if a in self.ancestors(b):
            return SUBSUMES
        if b in self.ancestors(a):
            return SUBSUMED_BY
        return NOT_SUBSUMED

    def text_matches(self, text: str) -> set[str]:
        """Codes whose code, display or a designation has every word of ``text`` at the
        start of one of its words (the usual type-ahead filter)."""
        words = _WORDS.sub(" ", fold(text)).split()
        if not words:
            return set(self.concepts)
        if self._words is None:
            self._words = _word_index(self.concepts)
        vocabulary, postings = self._words
        found: set[str] | None = None
        for word in sorted(set(words), key=len, reverse=True):  # the rarest first
            matched: set[str] = set()
            start = bisect.bisect_left(vocabulary, word)
            for position in range(start, len(vocabulary)):
                if not vocabulary[position].startswith(word):
                    break
                matched.update(postings[position])
            found = matched if found is None else found & matched
            if not found:
                return set()
        return found or set()

    def filter(self, property: str, op: str, value: str) -> set[str]:
        """Codes meeting a ValueSet ``compose.include.filter`` (ValueError when unsupported)."""
        concepts = self.concepts
        if op == "is-a":
            return {value, *self.descendants(value)} if value in concepts else set()
        if op == "descendent-of":
            return set(self.descendants(value))
        if op == "is-not-a":
            excluded = {value, *self.descendants(value)}
            return {code for code in concepts if code not in excluded}
        if op == "generalizes":
            return {value, *self.ancestors(value)} if value in concepts else set()
        if op == "regex":
            pattern = re.compile(value)
            return {
                code
                for code, concept in concepts.items()
                if any(
                    isinstance(v, str) and pattern.fullmatch(v) for v in _values(concept, property)
                )
            }
        if op in ("=", "in", "not-in"):
            wanted = {value} if op == "=" else {v.strip() for v in value.split(",")}
            matching = {
                code
                for code, concept in concepts.items()
                if any(_text(v) in wanted for v in _values(concept, property))
            }
            return set(concepts) - matching if op == "not-in" else matching
        if op == "exists":
            present = {code for code, c in concepts.items() if _values(c, property)}
            return present if value == "true" else set(concepts) - present
        raise ValueError(f"the filter operator {op!r} is not supported")


def _link(parent: Concept, child: Concept) -> None:
    if child.code not in parent.children:
        parent.children.append(child.code)
    if parent.code not in child.parents:
        child.parents.append(parent.code)


def _inactive(concept: Concept) -> bool:
    if True in concept.property_values("inactive"):
        return True
    return any(v in _INACTIVE_STATUS for v in concept.property_values("status"))


def _word_index(concepts: dict[str, Concept]) -> tuple[list[str], list[tuple[str, ...]]]:
    occurrences: dict[str, list[str]] = {}
    for code, concept in concepts.items():
        for word in set(_searchable(concept).split()):
            occurrences.setdefault(word, []).append(code)
    vocabulary = sorted(occurrences)
    return vocabulary, [tuple(occurrences[word]) for word in vocabulary]


def _searchable(concept: Concept) -> str:
    texts = [concept.code, concept.display or ""]
    texts.extend(d.get("value", "") for d in concept.designations if isinstance(d, dict))
    return _WORDS.sub(" ", " ".join(fold(t) for t in texts if isinstance(t, str)))


def _values(concept: Concept, property: str) -> list[Any]:
    if property == "code":
        return [concept.code]
    if property == "display":
        return [concept.display]
    if property == "concept":
        return [concept.code]
    return concept.property_values(property)


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):  # valueCoding
        return str(value.get("code", ""))
    return str(value)
