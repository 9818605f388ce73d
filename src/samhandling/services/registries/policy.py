"""Who may read and write the registers, and what is hidden from whom.

Reading (read, search, history) needs ``samhandling:grunndata/read``; writing needs the
administrator scope ``samhandling:grunndata/admin`` (the registers' feeds and
administrators: the national registers are the masters). Protected persons' addresses,
contact details and GP are shown only to the person and to callers with
``samhandling:grunndata/protected`` (`protection`). A search by a replaced number says so.
"""

from __future__ import annotations

from samhandling.platform.policy import ServicePolicy
from samhandling.services.registries.model import REGISTER_TYPES
from samhandling.services.registries.protection import AddressProtection
from samhandling.services.registries.replaced import annotate_replaced

READ_SCOPE = "samhandling:grunndata/read"
ADMIN_SCOPE = "samhandling:grunndata/admin"
PROTECTED_SCOPE = "samhandling:grunndata/protected"


def registers_policy(protection: AddressProtection) -> ServicePolicy:
    """The registers' policy over their resource types."""
    return ServicePolicy(
        types=REGISTER_TYPES,
        read_scope=READ_SCOPE,
        write_scope=ADMIN_SCOPE,
        narrow={
            "EpisodeOfCare": protection.narrow_episodes,
            "Patient": protection.narrow_patients,
        },
        present={
            "Patient": protection.present_patient,
            "EpisodeOfCare": protection.present_episode,
        },
        annotate={"Patient": annotate_replaced},
    )
