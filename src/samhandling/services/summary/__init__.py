"""Kjernejournal (the summary care record): critical information, the health indicator,
document sharing (IHE MHD) and the patient summary, on the FHIR engine under the
platform's health-data rules. See docs/services/kjernejournal.md.
"""

from __future__ import annotations

from samhandling.platform.auth.guard import ApiResource
from samhandling.platform.fhir.engine import FhirEngine
from samhandling.platform.policy import ServicePolicy
from samhandling.platform.policy.choices import NoPrivacyRegister
from samhandling.platform.policy.registers import NoRegisters
from samhandling.platform.service import Runtime, Service
from samhandling.services.summary.checks import critical_check
from samhandling.services.summary.documents import configure_documents
from samhandling.services.summary.indicator import indicator_operation
from samhandling.services.summary.model import CODE_BINDINGS, CRITICAL_TYPES
from samhandling.services.summary.open_record import open_record_operation
from samhandling.services.summary.patient_summary import install_patient_summary
from samhandling.services.summary.policy import READ_SCOPE, WRITE_SCOPE, summary_policy
from samhandling.services.summary.search_parameters import install_search_parameters
from samhandling.settings import Settings

KJERNEJOURNAL_API = ApiResource(
    name="samhandling:kjernejournal",
    title="Kjernejournal (critical information, documents, patient summary)",
    scopes={
        READ_SCOPE: "read a patient's critical information, documents and summary",
        WRITE_SCOPE: "register and correct critical information, share documents",
    },
)


def configure(engine: FhirEngine, settings: Settings) -> None:
    """Add Kjernejournal's write checks (the critical-information profiles) and code
    bindings to ``engine``."""
    for type_name in sorted(CRITICAL_TYPES):
        engine.add_write_check(
            type_name,
            critical_check(type_name, allow_synthetic=settings.allow_synthetic_identifiers),
        )
    for binding in CODE_BINDINGS:
        engine.bindings.add(binding)
    configure_documents(
        engine,
        max_bytes=settings.max_binary_bytes,
        allow_synthetic=settings.allow_synthetic_identifiers,
    )


def _policy(runtime: Runtime) -> ServicePolicy:
    return summary_policy(runtime.engine)


async def _start(runtime: Runtime) -> None:
    """Install Kjernejournal's search parameters; offer the health indicator (it asks the
    registers and the privacy register)."""
    lookups = runtime.services.get("register_lookups", NoRegisters())
    privacy = runtime.services.get("privacy_register", NoPrivacyRegister())
    await install_search_parameters(runtime.engine)
    runtime.engine.add_operation(indicator_operation(runtime.engine, lookups, privacy))
    runtime.engine.add_operation(open_record_operation(runtime.engine, lookups, privacy))
    install_patient_summary(runtime)


SERVICE = Service(
    name="summary",
    api_resources=(KJERNEJOURNAL_API,),
    configure=configure,
    policy=_policy,
    start=_start,
)
