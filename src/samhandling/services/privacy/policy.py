"""Who may read and write the privacy choices (Consent).

Reading (read, search, history) needs ``samhandling:privacy/read``; writing needs
``samhandling:privacy/write``. A citizen reads, finds and writes only the Consents of the
person they act as (`AccessContext.patient_person`: themself, or whom they represent, as the
platform has verified); a representative does not give or withdraw powers of attorney for
the person they represent. Health personnel are refused every Consent interaction: the
choices are enforced on them, never shown to them. Systems with the scopes (the Helsenorge
back end, administrators) read and write all. Nobody moves a choice to another person: the
patient of a stored Consent never changes.
"""

from __future__ import annotations

from typing import Any

import orjson

from samhandling.platform.auth.context import AccessContext, Principal
from samhandling.platform.fhir.engine import FhirEngine
from samhandling.platform.fhir.errors import FhirError
from samhandling.platform.fhir.search.query import SearchRequest
from samhandling.platform.policy.service import ServicePolicy
from samhandling.services.privacy.model import CHOICE_SYSTEM, PERSON_SYSTEMS, Kind

READ_SCOPE = "samhandling:privacy/read"
WRITE_SCOPE = "samhandling:privacy/write"
SERVICE_NAME = "privacy"


def privacy_policy(engine: FhirEngine) -> ServicePolicy:
    """The privacy service's policy over Consent."""

    async def narrow(context: AccessContext, request: SearchRequest) -> None:
        """A citizen's search finds only their own Consents (in the query, so counts and
        pages stay right)."""
        _refuse_personnel(context)
        if context.principal is not Principal.CITIZEN:
            return
        if request.types != ("Consent",):
            raise FhirError.of(403, "forbidden", "a citizen searches Consent on its own")
        # the number in any system: one indexed lookup (the write check lets only
        # fødselsnumre and D-numbers name a patient)
        pid = context.patient_person or "-"
        extra = engine.parse_search(("Consent",), [("patient:identifier", pid)])
        request.criteria.extend(extra.criteria)

    async def present(context: AccessContext, content: bytes, current: bool) -> bytes | None:
        if context.principal is Principal.SYSTEM:
            return content
        _refuse_personnel(context)
        pid = context.patient_person
        if not pid or pid.encode() not in content:  # cheap first
            return None
        return content if person_of(orjson.loads(content)) == pid else None

    async def permit_write(context: AccessContext, new: dict | None, current: bytes | None) -> None:
        _refuse_personnel(context)
        stored = orjson.loads(current) if current is not None else None
        if new is not None and stored is not None and person_of(new) != person_of(stored):
            raise FhirError.of(
                403,
                "forbidden",
                "a privacy choice stays with its person: the patient cannot "
                "change (withdraw it and make a new one)",
                "Consent.patient",
            )
        if context.principal is not Principal.CITIZEN:
            return
        pid = context.patient_person
        for resource in (new, stored):
            if resource is None:
                continue
            if pid is None or person_of(resource) != pid:
                raise FhirError.of(
                    403,
                    "forbidden",
                    "a citizen writes only their own privacy choices "
                    "(or those of a person they represent)",
                    "Consent.patient",
                )
            if context.acting_for and kind_of(resource) == Kind.POWER_OF_ATTORNEY.value:
                raise FhirError.of(
                    403,
                    "forbidden",
                    "only the giver writes a power of attorney, not someone acting for them",
                    "Consent.category",
                )

    return ServicePolicy(
        types=frozenset({"Consent"}),
        read_scope=READ_SCOPE,
        write_scope=WRITE_SCOPE,
        service=SERVICE_NAME,
        health=False,
        narrow={"Consent": narrow},
        present={"Consent": present},
        permit_write={"Consent": permit_write},
    )


def _refuse_personnel(context: AccessContext) -> None:
    if context.principal is Principal.PERSONNEL:
        raise FhirError.of(
            403,
            "forbidden",
            "health personnel have no access to the citizens' privacy "
            "choices (they are applied to every request, and never shown)",
        )


def person_of(consent: dict[str, Any]) -> str | None:
    """The number of the person a Consent is about."""
    identifier = (consent.get("patient") or {}).get("identifier") or {}
    return identifier.get("value") if identifier.get("system") in PERSON_SYSTEMS else None


def kind_of(consent: dict[str, Any]) -> str | None:
    """The privacy-choice code of a Consent's category."""
    for category in consent.get("category") or ():
        for coding in category.get("coding") or ():
            if coding.get("system") == CHOICE_SYSTEM:
                return coding.get("code")
    return None
