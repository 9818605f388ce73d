"""Access policy: one model for every service, behind the FHIR engine's access hook points.

Each service declares a `ServicePolicy` for the resource types it owns: the scopes that
allow reading and writing them, whether they are health information, and small functions,
per resource type, that narrow searches, redact or hide resources, annotate search results
and permit writes. `Policy` combines them (types no service owns fall under the platform's
own FHIR API scopes) with the health-data rules (`rules`: security level, HPR, access
basis, representation, the citizens' reservations and blocks) and is what the engine asks
(`samhandling.platform.fhir.access.AccessControl`).
"""

from samhandling.platform.policy.control import Policy
from samhandling.platform.policy.rules import Decision, Denied, Reason, Rules
from samhandling.platform.policy.service import (
    Annotate,
    Narrow,
    PermitWrite,
    Present,
    ServicePolicy,
)

__all__ = [
    "Annotate",
    "Decision",
    "Denied",
    "Narrow",
    "PermitWrite",
    "Policy",
    "Present",
    "Reason",
    "Rules",
    "ServicePolicy",
]
