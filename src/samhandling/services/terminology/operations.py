"""The FHIR R4 terminology operations: ``CodeSystem/$lookup``, ``CodeSystem/$validate-code``,
``CodeSystem/$subsumes``, ``ValueSet/$validate-code``, ``ValueSet/$expand`` and
``ConceptMap/$translate``, at type and instance level, over GET and POST.

Each takes the R4 parameters and answers with ``Parameters`` (``$expand``: a ValueSet). A
code that is unknown is an answer (``result`` false with a message), not an error; a code
system, value set or concept map the server does not know is a 404 (for ``$validate-code``:
``result`` false), and malformed input a 400.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from samhandling.platform.fhir.errors import FhirError
from samhandling.platform.fhir.operations import Operation, OperationCall, OperationParameters
from samhandling.services.terminology.codesystems import CodeSystemIndex, Concept
from samhandling.services.terminology.registry import Canonical, TerminologyRegistry
from samhandling.services.terminology.valuesets import Code, Expansion, expand

DEFAULT_COUNT = 1000  # codes per $expand page unless count says otherwise
MAX_COUNT = 10_000
_BASE = "http://hl7.org/fhir/OperationDefinition/"
_SUMMARY = ("id", "url", "version", "name", "title")  # what an expansion repeats of its set


def operations(registry: TerminologyRegistry) -> list[Operation]:
    """The terminology operations over ``registry``."""
    ops = TerminologyOperations(registry)
    return [
        Operation("lookup", ops.lookup, ("CodeSystem",), definition=_BASE + "CodeSystem-lookup"),
        Operation(
            "validate-code",
            ops.validate_in_codesystem,
            ("CodeSystem",),
            definition=_BASE + "CodeSystem-validate-code",
        ),
        Operation(
            "subsumes", ops.subsumes, ("CodeSystem",), definition=_BASE + "CodeSystem-subsumes"
        ),
        Operation(
            "validate-code",
            ops.validate_in_valueset,
            ("ValueSet",),
            definition=_BASE + "ValueSet-validate-code",
        ),
        Operation("expand", ops.expand, ("ValueSet",), definition=_BASE + "ValueSet-expand"),
        Operation(
            "translate", ops.translate, ("ConceptMap",), definition=_BASE + "ConceptMap-translate"
        ),
    ]


class TerminologyOperations:
    """The operations' implementations (one method each)."""

    def __init__(self, registry: TerminologyRegistry) -> None:
        self.registry = registry

    # CodeSystem

    async def lookup(self, call: OperationCall) -> dict:
        """Details of a code: name and version of its system, display, designations and
        properties (``property`` selects which; parent and child included)."""
        p = call.parameters
        system, code = _coded(p, "system", "code", "coding")
        index = await self._codesystem(call, system, p.text("version"))
        concept = index.get(code) if code else None
        if code is None:
            raise FhirError.of(400, "required", "$lookup needs code and system, or coding")
        if concept is None:
            raise FhirError.of(404, "not-found", f"{code!r} is not a code in {index.url}")
        wanted = {str(v) for v in p.all("property")}
        out: list[dict] = [{"name": "name", "valueString": index.name or index.url}]
        if index.version:
            out.append({"name": "version", "valueString": index.version})
        display = _display(concept, p.text("displayLanguage"))
        if display:
            out.append({"name": "display", "valueString": display})
        if concept.definition and (not wanted or "definition" in wanted):
            out.append({"name": "definition", "valueString": concept.definition})
        for designation in concept.designations:
            parts = [
                {"name": "language", "valueCode": designation["language"]}
                if designation.get("language")
                else None,
                {"name": "use", "valueCoding": designation["use"]}
                if designation.get("use")
                else None,
                {"name": "value", "valueString": designation.get("value", "")},
            ]
            out.append({"name": "designation", "part": [x for x in parts if x]})
        for prop, value in _properties(concept):
            if not wanted or prop in wanted:
                out.append({"name": "property", "part": [{"name": "code", "valueCode": prop},
                                                          {"name": "value", **value}]})  # fmt: skip
        return _parameters(out)

    async def validate_in_codesystem(self, call: OperationCall) -> dict:
        """Whether a code is in a code system (and its display right: a wrong display is a
        warning, an inactive code says so)."""
        p = call.parameters
        system, code, display = _coded_with_display(p, "url")
        if code is None:
            raise FhirError.of(
                400, "required", "$validate-code needs code, coding or codeableConcept"
            )
        try:
            index = await self._codesystem(call, system, p.text("version"))
        except FhirError as error:
            if error.status != 404:
                raise
            return _result(False, f"the code system {system!r} is not known here")
        concept = index.get(code)
        if concept is None:
            return _result(False, f"{code!r} is not a code in {index.url}")
        return _checked(concept, display, index.url, p.text("displayLanguage"))

    async def subsumes(self, call: OperationCall) -> dict:
        """How code A relates to code B: equivalent, subsumes, subsumed-by, not-subsumed."""
        p = call.parameters
        system_a, a = _coded(p, "system", "codeA", "codingA")
        system_b, b = _coded(p, "system", "codeB", "codingB")
        if a is None or b is None:
            raise FhirError.of(400, "required", "$subsumes needs codeA and codeB (or codings)")
        if system_a and system_b and system_a != system_b:
            raise FhirError.of(400, "invalid", "codingA and codingB are in different systems")
        index = await self._codesystem(call, system_a or system_b, p.text("version"))
        for code in (a, b):
            if index.get(code) is None:
                raise FhirError.of(404, "not-found", f"{code!r} is not a code in {index.url}")
        a_code, b_code = index.get(a).code, index.get(b).code  # type: ignore[union-attr]
        return _parameters([{"name": "outcome", "valueCode": index.subsumes(a_code, b_code)}])

    async def _codesystem(
        self, call: OperationCall, system: str | None, version: str | None
    ) -> CodeSystemIndex:
        if call.id is not None:
            resource = await self.registry.by_id("CodeSystem", call.id)
            if system and system != resource.get("url"):
                raise FhirError.of(400, "invalid", f"{system!r} is not this code system's url")
            return self.registry.index_of(resource)
        if not system:
            raise FhirError.of(400, "required", "the code system (system or url) is required")
        index = await self.registry.codesystem(Canonical.parse(system, version))
        if index is None:
            raise FhirError.of(404, "not-found", f"the code system {system!r} is not known here")
        return index

    # ValueSet

    async def validate_in_valueset(self, call: OperationCall) -> dict:
        """Whether a code is in a value set."""
        p = call.parameters
        system, code, display = _coded_with_display(p, "system")
        if code is None:
            raise FhirError.of(
                400, "required", "$validate-code needs code, coding or codeableConcept"
            )
        try:
            valueset = await self._valueset(call)
        except FhirError as error:
            if error.status != 404:
                raise
            return _result(False, error.issues[0].diagnostics)
        expansion = await expand(self.registry, valueset)
        found = expansion.contains(system, code)
        label = valueset.get("url") or valueset.get("id") or "the value set"
        if found is None:
            where = f"{system}|{code}" if system else repr(code)
            return _result(False, f"{where} is not in {label}")
        if p.boolean("activeOnly") and found.inactive:
            return _result(False, f"{code!r} is inactive")
        index = await self.registry.codesystem(Canonical(found.system, found.version))
        concept = index.get(found.code) if index else None
        if concept is None:  # enumerated in the value set, system not known: trust the set
            return _result(True, None, found.display)
        return _checked(concept, display, found.system, p.text("displayLanguage"))

    async def expand(self, call: OperationCall) -> dict:
        """The value set's codes: ``filter`` (words at the start of words), ``offset`` and
        ``count`` paging, ``activeOnly``, ``includeDesignations``, ``displayLanguage``."""
        p = call.parameters
        valueset = await self._valueset(call)
        expansion = await expand(self.registry, valueset)
        codes: list[Code] = expansion.codes
        if p.boolean("activeOnly"):
            codes = [c for c in codes if not c.inactive]
        text = p.text("filter")
        if text:
            codes = await self._filtered(expansion, codes, text)
        offset = p.integer("offset", 0) or 0
        count = p.integer("count", DEFAULT_COUNT)
        assert count is not None
        count = min(count, MAX_COUNT)
        page = codes[offset : offset + count]
        language = p.text("displayLanguage")
        designations = p.boolean("includeDesignations")
        contains = [await self._entry(c, language, designations) for c in page]
        given = (
            ("offset", "Integer", offset),
            ("count", "Integer", count),
            ("filter", "String", text),
            ("activeOnly", "Boolean", p.boolean("activeOnly")),
            ("includeDesignations", "Boolean", designations),
            ("displayLanguage", "Code", language),
        )
        parameters = [
            {"name": name, "value" + kind: value}
            for name, kind, value in given
            if value is not None and (name in p.names() or name in ("offset", "count"))
        ]
        parameters.extend({"name": "used-codesystem", "valueUri": u} for u in expansion.used)
        result = {key: valueset[key] for key in _SUMMARY if key in valueset}
        result["resourceType"] = "ValueSet"
        result["status"] = valueset.get("status", "active")
        result["expansion"] = {
            "identifier": f"urn:uuid:{uuid.uuid4()}",
            "timestamp": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "total": len(codes),
            "offset": offset,
            "parameter": parameters,
            **({"contains": contains} if contains else {}),
        }
        return result

    async def _filtered(self, expansion: Expansion, codes: list[Code], text: str) -> list[Code]:
        """The codes whose code, display or designations match ``text`` (through their code
        system's word index; codes of systems not held here by their code and display), in
        the expansion's order."""
        systems = dict.fromkeys((c.system, c.version) for c in codes)
        matched: set[tuple[str, str]] = set()
        unindexed: set[str] = set()
        for system, version in systems:
            index = await self.registry.codesystem(Canonical(system, version))
            if index is None:
                unindexed.add(system)
            else:
                matched.update((system, code) for code in index.text_matches(text))
        words = text.casefold().split()
        for code in codes:
            if code.system in unindexed and all(
                word in f"{code.code} {code.display or ''}".casefold() for word in words
            ):
                matched.add((code.system, code.code))
        if len(codes) == len(expansion.codes):  # not narrowed (activeOnly): keep its order
            return expansion.in_order(matched)
        keep = {(c.system, c.code) for c in codes}
        return expansion.in_order(matched & keep)

    async def _entry(self, code: Code, language: str | None, designations: bool) -> dict:
        entry: dict[str, Any] = {"system": code.system}
        if code.version:
            entry["version"] = code.version
        if code.abstract:
            entry["abstract"] = True
        if code.inactive:
            entry["inactive"] = True
        entry["code"] = code.code
        concept = None
        if language or designations:
            index = await self.registry.codesystem(Canonical(code.system, code.version))
            concept = index.get(code.code) if index else None
        display = _display(concept, language) if concept else code.display
        if display:
            entry["display"] = display
        if designations and concept and concept.designations:
            entry["designation"] = concept.designations
        return entry

    async def _valueset(self, call: OperationCall) -> dict:
        p = call.parameters
        if call.id is not None:
            return await self.registry.by_id("ValueSet", call.id)
        inline = p.resource("valueSet")
        if inline is not None:
            if inline.get("resourceType") != "ValueSet":
                raise FhirError.of(400, "invalid", "valueSet must be a ValueSet")
            return inline
        url = p.text("url")
        if not url:
            raise FhirError.of(400, "required", "the value set (url or valueSet) is required")
        found = await self.registry.resource(
            "ValueSet", Canonical.parse(url, p.text("valueSetVersion"))
        )
        if found is None:
            raise FhirError.of(404, "not-found", f"the value set {url!r} is not known here")
        return found

    # ConceptMap

    async def translate(self, call: OperationCall) -> dict:
        """The concepts a code maps to in a concept map (``reverse``: from the targets)."""
        p = call.parameters
        system, code = _coded(p, "system", "code", "coding")
        if code is None:
            raise FhirError.of(400, "required", "$translate needs code and system, or coding")
        if call.id is not None:
            conceptmap = await self.registry.by_id("ConceptMap", call.id)
        else:
            url = p.text("url")
            inline = p.resource("conceptMap")
            if inline is not None:
                conceptmap = inline
            elif url:
                found = await self.registry.resource(
                    "ConceptMap", Canonical.parse(url, p.text("conceptMapVersion"))
                )
                if found is None:
                    raise FhirError.of(404, "not-found", f"the concept map {url!r} is not known")
                conceptmap = found
            else:
                raise FhirError.of(400, "required", "the concept map (url or id) is required")
        target_system = p.text("targetsystem")
        matches = _translations(conceptmap, system, code, target_system, p.boolean("reverse"))
        out: list[dict] = [{"name": "result", "valueBoolean": any(
            m["equivalence"] not in ("unmatched", "disjoint") for m in matches)}]  # fmt: skip
        if not matches:
            out.append({"name": "message", "valueString": f"no mapping of {code!r}"})
        for match in matches:
            parts = [{"name": "equivalence", "valueCode": match["equivalence"]}]
            if match.get("concept"):
                parts.append({"name": "concept", "valueCoding": match["concept"]})
            parts.append({"name": "source", "valueUri": conceptmap.get("url", "")})
            out.append({"name": "match", "part": parts})
        return _parameters(out)


def _translations(
    conceptmap: dict, system: str | None, code: str, target_system: str | None, reverse: bool
) -> list[dict]:
    matches = []
    for group in conceptmap.get("group") or ():
        source, target = group.get("source"), group.get("target")
        if reverse:
            source, target = target, source
        if system and source and system != source:
            continue
        if target_system and target != target_system:
            continue
        for element in group.get("element") or ():
            for mapping in element.get("target") or ():
                frm, to = (mapping, element) if reverse else (element, mapping)
                if frm.get("code") != code:
                    continue
                concept = {"system": target, "code": to.get("code")} if to.get("code") else None
                if concept and to.get("display"):
                    concept["display"] = to["display"]
                matches.append(
                    {"equivalence": mapping.get("equivalence", "equivalent"), "concept": concept}
                )
    return matches


# helpers


def _coded(
    p: OperationParameters, system_name: str, code_name: str, coding_name: str
) -> tuple[str | None, str | None]:
    """(system, code) from ``code`` + ``system`` parameters or a ``coding``."""
    coding = p.get(coding_name)
    if coding is not None:
        if not isinstance(coding, dict):
            raise FhirError.of(400, "invalid", f"{coding_name} must be a Coding")
        return coding.get("system") or p.text(system_name), coding.get("code")
    return p.text(system_name), p.text(code_name)


def _coded_with_display(
    p: OperationParameters, system_name: str
) -> tuple[str | None, str | None, str | None]:
    """(system, code, display) from code/system/display, a coding, or a codeableConcept."""
    concept = p.get("codeableConcept")
    if concept is not None:
        if not isinstance(concept, dict) or not concept.get("coding"):
            raise FhirError.of(400, "invalid", "codeableConcept must have a coding")
        coding = concept["coding"][0]
        return coding.get("system"), coding.get("code"), coding.get("display")
    coding = p.get("coding")
    if coding is not None:
        if not isinstance(coding, dict):
            raise FhirError.of(400, "invalid", "coding must be a Coding")
        return coding.get("system"), coding.get("code"), coding.get("display")
    system = p.text(system_name) or (p.text("system") if system_name != "system" else None)
    return system, p.text("code"), p.text("display")


def _checked(concept: Concept, display: str | None, system: str, language: str | None) -> dict:
    shown = _display(concept, language)
    messages = []
    if concept.inactive:
        messages.append(f"{concept.code!r} is inactive in {system}")
    if display is not None and not _display_ok(concept, display):
        messages.append(
            f"the display {display!r} is not a display of {concept.code!r} (expected {shown!r})"
        )
    return _result(True, "; ".join(messages) or None, shown)


def _display_ok(concept: Concept, display: str) -> bool:
    wanted = display.strip().casefold()
    names = [concept.display or ""] + [d.get("value", "") for d in concept.designations]
    return any(isinstance(n, str) and n.strip().casefold() == wanted for n in names)


def _display(concept: Concept, language: str | None) -> str | None:
    if language:
        for designation in concept.designations:
            lang = designation.get("language") or ""
            if lang == language or lang.split("-")[0] == language.split("-")[0]:
                return designation.get("value")
    return concept.display


def _properties(concept: Concept) -> list[tuple[str, dict]]:
    found = [("parent", {"valueCode": code}) for code in concept.parents]
    found += [("child", {"valueCode": code}) for code in concept.children]
    found.append(("inactive", {"valueBoolean": concept.inactive}))
    for prop in concept.properties:
        value = {k: v for k, v in prop.items() if k.startswith("value")}
        if prop.get("code") not in ("parent", "child", "inactive") and value:
            found.append((prop["code"], value))
    return found


def _result(result: bool, message: str | None, display: str | None = None) -> dict:
    out: list[dict] = [{"name": "result", "valueBoolean": result}]
    if message:
        out.append({"name": "message", "valueString": message})
    if display:
        out.append({"name": "display", "valueString": display})
    return _parameters(out)


def _parameters(parameters: list[dict]) -> dict:
    return {"resourceType": "Parameters", "parameter": parameters}
