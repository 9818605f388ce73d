"""Grunndata: the national registers (persons, health personnel, enterprises, addresses and
GP lists) on the FHIR engine.

The registers are the masters other services ask: who a person is and who may act for them,
whether a health worker is authorised now, which organisation is acting, where to send a
message, and who a person's GP is. See docs/services/registries.md.
"""

from __future__ import annotations

from dataclasses import dataclass

from samhandling.platform.auth.guard import ApiResource
from samhandling.platform.fhir.engine import FhirEngine
from samhandling.platform.policy import ServicePolicy
from samhandling.platform.service import Runtime, Service
from samhandling.services.registries.checks import identifier_check
from samhandling.services.registries.citizens import CitizenView
from samhandling.services.registries.directory import RegisterDirectory
from samhandling.services.registries.hpr import HprRegister
from samhandling.services.registries.lookups import RegisterLookups
from samhandling.services.registries.model import PROFILE_BINDINGS, REGISTER_TYPES
from samhandling.services.registries.policy import (
    ADMIN_SCOPE,
    PROTECTED_SCOPE,
    READ_SCOPE,
    registers_policy,
)
from samhandling.services.registries.protection import AddressProtection, searchable_patient
from samhandling.settings import Settings

GRUNNDATA_API = ApiResource(
    name="samhandling:grunndata",
    title="Grunndata (the national registers)",
    scopes={
        READ_SCOPE: "read and search persons, health personnel, enterprises, addresses, GPs",
        ADMIN_SCOPE: "write to the registers (the registers' feeds and administrators)",
        PROTECTED_SCOPE: "see the address, contact details and GP of persons with protection",
    },
)


@dataclass
class Registers:
    """The registers' parts, as other services and the CLI use them."""

    engine: FhirEngine
    hpr: HprRegister
    directory: RegisterDirectory
    protection: AddressProtection
    lookups: RegisterLookups  # what the access policy and the audit trail ask


def configure(engine: FhirEngine, *, allow_synthetic_identifiers: bool = False) -> Registers:
    """Add the registers' write checks and index views to ``engine``; their parts."""
    for type_name in sorted(REGISTER_TYPES):
        engine.add_write_check(
            type_name, identifier_check(type_name, allow_synthetic=allow_synthetic_identifiers)
        )
    engine.set_index_view("Patient", searchable_patient)
    for binding in PROFILE_BINDINGS:
        engine.bindings.add(binding)
    hpr = HprRegister(engine)
    return Registers(
        engine,
        hpr,
        RegisterDirectory(engine, hpr),
        AddressProtection(engine, PROTECTED_SCOPE),
        RegisterLookups(engine, hpr),
    )


def _configure(engine: FhirEngine, settings: Settings) -> Registers:
    return configure(engine, allow_synthetic_identifiers=settings.allow_synthetic_identifiers)


async def _start(runtime: Runtime) -> None:
    registers = runtime.services["registries"]  # configured with the engine
    runtime.services["person_directory"] = registers.directory
    runtime.services["register_lookups"] = registers.lookups


def _policy(runtime: Runtime) -> ServicePolicy:
    registers = runtime.services["registries"]
    return registers_policy(registers.protection, CitizenView(registers.engine))


SERVICE = Service(
    name="registries",
    api_resources=(GRUNNDATA_API,),
    configure=_configure,
    policy=_policy,
    start=_start,
)
