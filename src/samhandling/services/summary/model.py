"""Kjernejournal's FHIR model: which resource types hold what, and its code systems.

Critical information (kritisk informasjon) uses the resource types of Kjernejournal's
profiles (norway.md §2.2): AllergyIntolerance (drug reactions and other allergies),
Condition (complications of anaesthesia, critical medical conditions, infections),
Procedure (ongoing treatment that must not be interrupted), DeviceUseStatement (implants)
and Flag (other changes to procedures). Each carries its Kjernejournal category.
"""

from __future__ import annotations

from samhandling.services.registries.model import OWN

SERVICE_NAME = "kjernejournal"  # in audit records, reservations and powers of attorney
CRITICAL_TYPES = frozenset(
    {"AllergyIntolerance", "Condition", "Procedure", "DeviceUseStatement", "Flag"}
)
SUMMARY_TYPES = CRITICAL_TYPES

# Kjernejournal's categories of critical information (the numbering of its FHIR API)
CATEGORY = f"{OWN}/CodeSystem/critical-information-category"
