"""Address protection ("adressebeskyttelse"): what others may see and find of a protected person.

A person whose Patient carries the security label ``fortrolig`` or ``strengtFortrolig``
keeps their address, contact details and GP to themself: responses to anyone but the
person and callers with the protected-data scope leave those elements out (and say so with
the REDACTED label), their GP relations (EpisodeOfCare) are hidden, and the search index
never holds those elements, so no search, chain or ``_has`` can find a protected person by
where they live, their phone or their GP.
"""

from __future__ import annotations

from typing import Any

import orjson

from samhandling.platform.auth.context import AccessContext
from samhandling.platform.fhir.engine import FhirEngine
from samhandling.platform.fhir.errors import FhirError
from samhandling.platform.fhir.search.query import Has, SearchRequest
from samhandling.platform.identifiers import PERSON_SYSTEMS
from samhandling.services.registries.model import (
    ADDRESS_CONFIDENTIALITY,
    PROTECTED_LEVELS,
    REDACTED,
)

PROTECTED_ELEMENTS = ("address", "telecom", "generalPractitioner", "contact")
_MARKER = ADDRESS_CONFIDENTIALITY.encode()
_UNPROTECTED = tuple(
    ("_security:not", f"{ADDRESS_CONFIDENTIALITY}|{level}") for level in PROTECTED_LEVELS
)
_HIDDEN_EPISODES = tuple(("patient." + name, value) for name, value in _UNPROTECTED)


def protection(patient: dict[str, Any]) -> str | None:
    """The person's address protection level, or None."""
    for label in (patient.get("meta") or {}).get("security") or ():
        if label.get("system") == ADDRESS_CONFIDENTIALITY and label.get("code") in PROTECTED_LEVELS:
            return label["code"]
    return None


def searchable_patient(patient: dict[str, Any]) -> dict[str, Any]:
    """The index view of a Patient: a protected person without the protected elements."""
    if protection(patient) is None:
        return patient
    return {k: v for k, v in patient.items() if k not in PROTECTED_ELEMENTS}


def is_the_person(context: AccessContext, patient: dict[str, Any]) -> bool:
    """Whether the caller is signed in as the person ``patient`` is (or, for a citizen, acts
    for them: the access policy has checked the representation)."""
    pid = context.patient_person
    return pid is not None and any(
        identifier.get("value") == pid and identifier.get("system") in PERSON_SYSTEMS
        for identifier in patient.get("identifier") or ()
    )


def redacted(patient: dict[str, Any]) -> dict[str, Any]:
    """The Patient without the protected elements, labelled REDACTED."""
    shown = {k: v for k, v in patient.items() if k not in PROTECTED_ELEMENTS}
    meta = dict(shown.get("meta") or {})
    system, code = REDACTED
    meta["security"] = [*meta.get("security", []), {"system": system, "code": code}]
    shown["meta"] = meta
    return shown


async def current_patient(engine: FhirEngine, id: object) -> dict[str, Any] | None:
    """The current version of Patient ``id`` (None when there is none)."""
    if not isinstance(id, str) or not id:
        return None
    try:
        found = await engine.read("Patient", id)
    except FhirError:
        return None
    return orjson.loads(found.content) if found.content else None


async def episode_patient(engine: FhirEngine, content: bytes) -> dict[str, Any] | None:
    """The current Patient a GP relation (EpisodeOfCare) is about (None: none stored)."""
    reference = (orjson.loads(content).get("patient") or {}).get("reference") or ""
    type_name, _, id = reference.partition("/")
    return await current_patient(engine, id) if type_name == "Patient" else None


class AddressProtection:
    """The registers' view rules for callers without the protected-data scope."""

    def __init__(self, engine: FhirEngine, protected_scope: str) -> None:
        self._engine = engine
        self._scope = protected_scope

    def sees_everything(self, context: AccessContext) -> bool:
        """Callers with the protected-data scope see protected persons whole."""
        return self._scope in context.scopes

    async def present_patient(
        self, context: AccessContext, content: bytes, current: bool
    ) -> bytes | None:
        """A protected person, redacted unless the caller is the person or privileged. An
        earlier version is redacted when the person is protected now (the old address may
        be where they moved away from)."""
        if self.sees_everything(context):
            return content
        if _MARKER in content:
            patient = orjson.loads(content)
            if protection(patient) is not None and not is_the_person(context, patient):
                return orjson.dumps(redacted(patient))
            return content
        if current:
            return content
        patient = orjson.loads(content)
        now = await current_patient(self._engine, patient.get("id"))
        if now is None or protection(now) is None or is_the_person(context, now):
            return content
        return orjson.dumps(redacted(patient))

    async def present_episode(
        self, context: AccessContext, content: bytes, current: bool
    ) -> bytes | None:
        """A GP relation, hidden when its person is protected (unless the caller may see)."""
        if self.sees_everything(context):
            return content
        patient = await episode_patient(self._engine, content)
        if patient is None or protection(patient) is None or is_the_person(context, patient):
            return content
        return None

    async def narrow_episodes(self, context: AccessContext, request: SearchRequest) -> None:
        """GP lists and GP histories leave out protected persons (in the query, so counts
        and pages stay right; a search of several types relies on `present_episode`)."""
        if self.sees_everything(context) or request.types != ("EpisodeOfCare",):
            return
        extra = self._engine.parse_search(("EpisodeOfCare",), list(_HIDDEN_EPISODES))
        request.criteria.extend(extra.criteria)

    async def narrow_patients(self, context: AccessContext, request: SearchRequest) -> None:
        """A person search through GP relations (``_has:EpisodeOfCare``) leaves out
        protected persons (the index view keeps their own address, phone and GP out)."""
        if self.sees_everything(context) or request.types != ("Patient",):
            return
        if any(isinstance(c, Has) and c.source_type == "EpisodeOfCare" for c in request.criteria):
            extra = self._engine.parse_search(("Patient",), list(_UNPROTECTED))
            request.criteria.extend(extra.criteria)
