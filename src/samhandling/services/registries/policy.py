"""Who may read and write the registers, and what is hidden from whom.

Reading (read, search, history) needs ``samhandling:grunndata/read``; writing needs the
administrator scope ``samhandling:grunndata/admin`` (the registers' feeds and
administrators: the national registers are the masters). A citizen sees only their own
person entry, GP relations and family relations (`citizens`). Protected persons' addresses,
contact details and GP are shown only to the person and to callers with
``samhandling:grunndata/protected`` (`protection`). A search by a replaced number says so.
"""

from __future__ import annotations

from samhandling.platform.auth.context import AccessContext
from samhandling.platform.fhir.search.query import SearchRequest
from samhandling.platform.policy import ServicePolicy
from samhandling.services.registries.citizens import CitizenView, is_citizen
from samhandling.services.registries.model import REGISTER_TYPES
from samhandling.services.registries.protection import AddressProtection
from samhandling.services.registries.replaced import annotate_replaced

READ_SCOPE = "samhandling:grunndata/read"
ADMIN_SCOPE = "samhandling:grunndata/admin"
PROTECTED_SCOPE = "samhandling:grunndata/protected"


def registers_policy(protection: AddressProtection, citizens: CitizenView) -> ServicePolicy:
    """The registers' policy over their resource types."""

    async def narrow_patients(context: AccessContext, request: SearchRequest) -> None:
        await citizens.narrow(context, request)
        await protection.narrow_patients(context, request)

    async def narrow_episodes(context: AccessContext, request: SearchRequest) -> None:
        await citizens.narrow(context, request)
        await protection.narrow_episodes(context, request)

    async def present_patient(
        context: AccessContext, content: bytes, current: bool
    ) -> bytes | None:
        if is_citizen(context) and not citizens.sees_person(context, content):
            return None
        return await protection.present_patient(context, content, current)

    async def present_episode(
        context: AccessContext, content: bytes, current: bool
    ) -> bytes | None:
        if is_citizen(context):  # their own relations only, which protection never hides
            return content if await citizens.sees_episode(context, content) else None
        return await protection.present_episode(context, content, current)

    async def present_related(
        context: AccessContext, content: bytes, current: bool
    ) -> bytes | None:
        if is_citizen(context) and not citizens.sees_person(context, content):
            return None
        return content

    return ServicePolicy(
        types=REGISTER_TYPES,
        read_scope=READ_SCOPE,
        write_scope=ADMIN_SCOPE,
        service="registries",
        narrow={
            "EpisodeOfCare": narrow_episodes,
            "Patient": narrow_patients,
            "RelatedPerson": citizens.narrow,
        },
        present={
            "Patient": present_patient,
            "EpisodeOfCare": present_episode,
            "RelatedPerson": present_related,
        },
        annotate={"Patient": annotate_replaced},
    )
