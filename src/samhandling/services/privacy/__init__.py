"""Personvern: the citizens' privacy choices and the powers of attorney, as FHIR Consent.

A person reserves themself against services (reservasjon), hides entries from health
personnel (sperring), blocks named health personnel (blokkering av helsepersonell) and
gives others a power of attorney (fullmakt) to act for them. Each choice is one Consent
following the profile in docs/services/privacy.md; `ConsentRegister` is the
`PrivacyRegister` the access policy asks on every request about a person.
"""

from __future__ import annotations

from samhandling.platform.auth.guard import ApiResource
from samhandling.platform.fhir.engine import FhirEngine
from samhandling.platform.policy.service import ServicePolicy
from samhandling.platform.service import Runtime, Service
from samhandling.services.privacy.checks import consent_check
from samhandling.services.privacy.policy import READ_SCOPE, WRITE_SCOPE, privacy_policy
from samhandling.services.privacy.register import ConsentRegister
from samhandling.settings import Settings

PRIVACY_API = ApiResource(
    name="samhandling:privacy",
    title="Personvern (the citizens' privacy choices and powers of attorney)",
    scopes={
        READ_SCOPE: "read and search privacy choices and powers of attorney (Consent)",
        WRITE_SCOPE: "make, change and withdraw privacy choices and powers of attorney",
    },
)
REGISTER_KEY = "privacy_register"  # where the platform's policy finds the register


def configure(engine: FhirEngine, *, allow_synthetic_identifiers: bool = False) -> ConsentRegister:
    """Add the Consent write check to ``engine``; the register over its Consents."""
    engine.add_write_check("Consent", consent_check(allow_synthetic=allow_synthetic_identifiers))
    return ConsentRegister(engine)


def _configure(engine: FhirEngine, settings: Settings) -> ConsentRegister:
    return configure(engine, allow_synthetic_identifiers=settings.allow_synthetic_identifiers)


async def _start(runtime: Runtime) -> None:
    runtime.services[REGISTER_KEY] = runtime.services["privacy"]  # configured with the engine


def _policy(runtime: Runtime) -> ServicePolicy:
    return privacy_policy(runtime.engine)


SERVICE = Service(
    name="privacy",
    api_resources=(PRIVACY_API,),
    configure=_configure,
    policy=_policy,
    start=_start,
)
