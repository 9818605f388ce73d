"""Which persons a resource or a search concerns, through the Patient compartment.

A resource type in R4's Patient compartment names its patients through the compartment's
search parameters (an Observation through ``subject`` and ``performer``, ...). The keys
returned are ``Patient/<id>`` for a reference to a Patient, or a person's number for a
logical reference by fødselsnummer or D-number.
"""

from __future__ import annotations

from typing import Any

import orjson

from samhandling.platform.fhir.definitions import patient_compartment
from samhandling.platform.fhir.engine import FhirEngine
from samhandling.platform.fhir.search.params import SearchParam
from samhandling.platform.fhir.search.query import Chain, Compartment, Leaf, SearchRequest
from samhandling.platform.identifiers import PERSON_SYSTEMS

PATIENT_PREFIX = "Patient/"
CONTEXT_PREFIX = "context:"  # a key standing for the patients of a resource's securityContext
# types whose patients are those of the resource their securityContext names (R4: a Binary
# holding a document is as confidential as its DocumentReference)
SECURITY_CONTEXT_TYPES = frozenset({"Binary"})


def in_patient_compartment(type: str) -> bool:
    """Whether resources of ``type`` can concern a patient (the Patient itself included,
    and a Binary through its securityContext)."""
    return type == "Patient" or type in patient_compartment() or type in SECURITY_CONTEXT_TYPES


class PatientFinder:
    """Finds the patients of resources and searches."""

    def __init__(self, engine: FhirEngine) -> None:
        self._engine = engine

    async def patients_of(self, type: str, resource: dict[str, Any]) -> set[str]:
        """`of_resource`, with a securityContext followed to the resource it names."""
        keys = self.of_resource(type, resource)
        for key in [k for k in keys if k.startswith(CONTEXT_PREFIX)]:
            keys.discard(key)
            context_type, _, context_id = key[len(CONTEXT_PREFIX) :].partition("/")
            if context_type in SECURITY_CONTEXT_TYPES or not context_id:
                continue
            found = await self._engine.store.read(context_type, context_id)
            if found is not None and found.content is not None:
                keys.update(self.of_resource(context_type, orjson.loads(found.content)))
        return keys

    def of_resource(self, type: str, resource: dict[str, Any]) -> set[str]:
        """The patients ``resource`` concerns: ``Patient/<id>`` or a person's number (for a
        securityContext type, a `CONTEXT_PREFIX` key `patients_of` follows)."""
        if type in SECURITY_CONTEXT_TYPES:
            context = resource.get("securityContext")
            reference = context.get("reference") if isinstance(context, dict) else None
            if not isinstance(reference, str):
                return set()
            key = self._key(context)
            return {key} if key is not None else {CONTEXT_PREFIX + self._local(reference)}
        if type == "Patient":  # the person themself: by number when it has one
            for identifier in resource.get("identifier") or ():
                if (
                    isinstance(identifier, dict)
                    and identifier.get("system") in PERSON_SYSTEMS
                    and identifier.get("use") != "old"
                    and isinstance(identifier.get("value"), str)
                ):
                    return {identifier["value"]}
            id = resource.get("id")
            return {PATIENT_PREFIX + id} if isinstance(id, str) else set()
        keys: set[str] = set()
        registry = self._engine.registry
        for code in patient_compartment().get(type, ()):
            param = registry.get(type, code)
            if param is None or param.evaluate is None:
                continue
            for value in param.evaluate(resource):
                if isinstance(value, dict):
                    key = self._key(value)
                    if key is not None:
                        keys.add(key)
        return keys

    def _local(self, text: str) -> str:
        """A reference without the server's own base URL."""
        for base in self._engine.local_bases:
            if text.startswith(base + "/"):
                return text[len(base) + 1 :]
        return text

    def _key(self, reference: dict[str, Any]) -> str | None:
        text = reference.get("reference")
        if isinstance(text, str):
            text = self._local(text)
            if text.startswith(PATIENT_PREFIX):
                id = text[len(PATIENT_PREFIX) :].split("/", 1)[0]
                return PATIENT_PREFIX + id if id else None
            return None
        identifier = reference.get("identifier")
        if isinstance(identifier, dict) and identifier.get("system") in PERSON_SYSTEMS:
            value = identifier.get("value")
            return value if isinstance(value, str) else None
        return None

    def of_search(self, request: SearchRequest) -> set[str]:
        """The patients a search names in its criteria (by compartment, by a reference to
        a Patient, or by a person's number); empty when it names none."""
        keys: set[str] = set()
        for criterion in request.criteria:
            if isinstance(criterion, Compartment) and criterion.owner_type == "Patient":
                keys.add(PATIENT_PREFIX + criterion.owner_id)
            elif isinstance(criterion, Leaf) and criterion.param is not None:
                keys.update(self._leaf_patients(criterion))
            elif isinstance(criterion, Chain):
                keys.update(self._chain_patients(criterion))
        return keys

    def _leaf_patients(self, leaf: Leaf) -> set[str]:
        param = leaf.param
        assert param is not None
        if param.type != "reference" or not _names_patient(param):
            return set()
        if leaf.modifier == "identifier":
            return {pid for value in leaf.values if (pid := _person_number(value))}
        keys = set()
        for value in leaf.values:
            if value.startswith(PATIENT_PREFIX):
                keys.add(PATIENT_PREFIX + value[len(PATIENT_PREFIX) :])
            elif leaf.modifier == "Patient" or ("/" not in value and _bare_is_patient(param)):
                keys.add(PATIENT_PREFIX + value)
        return keys

    def _chain_patients(self, chain: Chain) -> set[str]:
        """``patient.identifier=<system>|<number>`` (one level, a person's number)."""
        if not _names_patient(chain.param):
            return set()
        inner = chain.inner.get("Patient")
        if isinstance(inner, Leaf) and inner.code == "identifier" and inner.modifier is None:
            return {pid for value in inner.values if (pid := _person_number(value))}
        return set()


def _names_patient(param: SearchParam) -> bool:
    """Whether a reference parameter keeps a search to the patients it names: one of the
    type's Patient compartment parameters, or one that refers to patients (R4's
    ``patient`` parameters, such as Observation's, a subset of ``subject``)."""
    type, code = param.resource_type, param.code
    return (
        code in patient_compartment().get(type, ())
        or (type == "Patient" and code == "link")
        or ("Patient" in param.targets and set(param.targets) <= {"Patient", "Group"})
    )


def _bare_is_patient(param: SearchParam) -> bool:
    """Whether a bare id (no type) in ``param`` can only name a Patient: it targets Patients
    only, or it is R4's ``patient`` parameter, whose expression keeps only references that
    resolve to a Patient (``subject.where(resolve() is Patient)``)."""
    return param.targets == ("Patient",) or (param.code == "patient" and "Patient" in param.targets)


def _person_number(token: str) -> str | None:
    system, bar, value = token.partition("|")
    if bar and system in PERSON_SYSTEMS and value:
        return value
    return None
