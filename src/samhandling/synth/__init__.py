"""Synthetic Norwegian population for demos, benchmarks and tests.

Deterministic FHIR R4 transaction Bundles: :func:`care_providers_bundle` (GP offices and
their staff, PUT with fixed ids) and :func:`patient_bundle` / :func:`patient_bundles` (one
patient's record per Bundle, POST with ``urn:uuid`` references), plus generators and
validators for Norwegian identifiers.
"""

from samhandling.synth.identifiers import (
    DNR_SYSTEM,
    FNR_SYSTEM,
    HER_SYSTEM,
    HPR_SYSTEM,
    ORGNR_SYSTEM,
    RESH_SYSTEM,
    d_nummer,
    duf_nummer,
    fh_nummer,
    fodselsnummer,
    fodselsnummer_birth_date,
    fodselsnumre,
    h_nummer,
    her_id,
    hpr_number,
    is_valid_d_nummer,
    is_valid_fodselsnummer,
    is_valid_organisasjonsnummer,
    nth_fodselsnummer,
    organisasjonsnummer,
    resh_id,
)
from samhandling.synth.population import (
    ICD10_SYSTEM,
    MAX_PATIENTS_PER_SEED,
    REFERENCE_DATE,
    care_providers_bundle,
    patient_bundle,
    patient_bundles,
)

__all__ = [
    "DNR_SYSTEM",
    "FNR_SYSTEM",
    "HER_SYSTEM",
    "HPR_SYSTEM",
    "ICD10_SYSTEM",
    "MAX_PATIENTS_PER_SEED",
    "ORGNR_SYSTEM",
    "REFERENCE_DATE",
    "RESH_SYSTEM",
    "care_providers_bundle",
    "d_nummer",
    "duf_nummer",
    "fh_nummer",
    "fodselsnummer",
    "fodselsnummer_birth_date",
    "fodselsnumre",
    "h_nummer",
    "her_id",
    "hpr_number",
    "is_valid_d_nummer",
    "is_valid_fodselsnummer",
    "is_valid_organisasjonsnummer",
    "nth_fodselsnummer",
    "organisasjonsnummer",
    "patient_bundle",
    "patient_bundles",
    "resh_id",
]
