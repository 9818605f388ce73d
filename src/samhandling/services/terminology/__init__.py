"""Kodeverk: the terminology service (CodeSystem, ValueSet, ConceptMap and their operations).

See docs/services/terminology.md.
"""

from __future__ import annotations

from dataclasses import dataclass

from samhandling.platform.auth.guard import ApiResource
from samhandling.platform.fhir.engine import FhirEngine
from samhandling.platform.policy import ServicePolicy
from samhandling.platform.service import Runtime, Service
from samhandling.services.terminology.operations import operations
from samhandling.services.terminology.registry import TERMINOLOGY_TYPES, TerminologyRegistry
from samhandling.services.terminology.resolver import TerminologyCodes
from samhandling.settings import Settings

READ_SCOPE = "samhandling:terminology/read"
ADMIN_SCOPE = "samhandling:terminology/admin"
TERMINOLOGY_API = ApiResource(
    name="samhandling:terminology",
    title="Kodeverk (the terminology service)",
    scopes={
        READ_SCOPE: "read and search code systems, value sets and concept maps; the operations",
        ADMIN_SCOPE: "write code systems, value sets and concept maps",
    },
)


@dataclass
class Terminology:
    """The terminology service's parts, as other services use them."""

    registry: TerminologyRegistry


def configure(engine: FhirEngine) -> Terminology:
    """Add the terminology operations, the codes for the search modifiers ``:in``,
    ``:not-in``, ``:below`` and ``:above``, and binding validation on write to ``engine``;
    the service's parts."""
    registry = TerminologyRegistry(engine)
    for operation in operations(registry):
        engine.add_operation(operation)
    codes = TerminologyCodes(registry)
    engine.terminology = codes
    engine.codes = codes
    return Terminology(registry)


def _configure(engine: FhirEngine, settings: Settings) -> Terminology:
    return configure(engine)


def _policy(runtime: Runtime) -> ServicePolicy:
    return ServicePolicy(frozenset(TERMINOLOGY_TYPES), READ_SCOPE, ADMIN_SCOPE, "terminology")


SERVICE = Service(
    name="terminology",
    api_resources=(TERMINOLOGY_API,),
    configure=_configure,
    policy=_policy,
)
