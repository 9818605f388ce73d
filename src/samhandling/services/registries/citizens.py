"""What a citizen (a citizen token) may see of the registers: their own person entry, GP
relations and family relations (those in which they are the parent); the directories
(health personnel, enterprises, the address register) are open to them as to anyone with
the read scope.

A citizen acting for another person (``samhandling-acting-for``: a parent for a child, or
with a power of attorney) sees that person's entries instead; the platform's access policy
has checked the representation before these rules run.
"""

from __future__ import annotations

import orjson

from samhandling.platform.auth.context import AccessContext, Principal
from samhandling.platform.fhir.engine import FhirEngine
from samhandling.platform.fhir.errors import FhirError
from samhandling.platform.fhir.search.query import SearchRequest
from samhandling.platform.identifiers import DNR_SYSTEM, FNR_SYSTEM
from samhandling.services.registries.protection import episode_patient, is_the_person

# the search parameter that finds a citizen's own entries, per type
OWN_ENTRIES = {
    "Patient": "identifier",
    "EpisodeOfCare": "patient.identifier",
    "RelatedPerson": "identifier",  # the relations in which the citizen is the parent
}


def is_citizen(context: AccessContext) -> bool:
    """Whether the caller is a signed-in citizen."""
    return context.principal is Principal.CITIZEN


class CitizenView:
    """Search narrowing and visibility of the person-related registers for citizens."""

    def __init__(self, engine: FhirEngine) -> None:
        self._engine = engine

    async def narrow(self, context: AccessContext, request: SearchRequest) -> None:
        """A citizen's search of persons, GP relations or family relations finds only their
        own entries (in the query, so counts and pages stay right)."""
        if not is_citizen(context):
            return
        own = [t for t in request.types if t in OWN_ENTRIES]
        if not own:
            return
        if len(request.types) != 1:
            raise FhirError.of(
                403, "forbidden", "a citizen searches one person-register type at a time"
            )
        pid = context.patient_person or "-"
        value = f"{FNR_SYSTEM}|{pid},{DNR_SYSTEM}|{pid}"
        extra = self._engine.parse_search(request.types, [(OWN_ENTRIES[own[0]], value)])
        request.criteria.extend(extra.criteria)

    def sees_person(self, context: AccessContext, content: bytes) -> bool:
        """A Patient or RelatedPerson entry: the citizen's own (their number on it)."""
        pid = context.patient_person
        if not pid or pid.encode() not in content:  # cheap first
            return False
        return is_the_person(context, orjson.loads(content))

    async def sees_episode(self, context: AccessContext, content: bytes) -> bool:
        """A GP relation: the citizen's own (its patient is the citizen)."""
        patient = await episode_patient(self._engine, content)
        return patient is not None and is_the_person(context, patient)
