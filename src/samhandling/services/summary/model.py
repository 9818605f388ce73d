"""Kjernejournal's FHIR model: which resource types hold what, and its code systems.

Critical information (kritisk informasjon) uses the resource types of Kjernejournal's
profiles (norway.md §2.2): AllergyIntolerance (drug reactions and other allergies),
Condition (complications of anaesthesia, critical medical conditions, infections),
Procedure (ongoing treatment that must not be interrupted), DeviceUseStatement (implants)
and Flag (other changes to procedures). Each carries its Kjernejournal category.
"""

from __future__ import annotations

from samhandling.platform.fhir.bindings import Binding
from samhandling.services.registries.model import OWN

SERVICE_NAME = "kjernejournal"  # in audit records, reservations and powers of attorney
CRITICAL_TYPES = frozenset(
    {"AllergyIntolerance", "Condition", "Procedure", "DeviceUseStatement", "Flag"}
)
# shared documents (IHE MHD): the metadata, the SubmissionSet List, the content
SHARING_TYPES = frozenset({"DocumentReference", "List", "Binary"})
SUMMARY_TYPES = CRITICAL_TYPES | SHARING_TYPES

# Kjernejournal's categories of critical information (the numbering of its FHIR API)
CATEGORY = f"{OWN}/CodeSystem/critical-information-category"
# code -> Norwegian display. Numbering of KJ's FHIR API (norway.md §2.2): 3, 4, 5, 6, 9 and
# 10 are verified against its profiles' category codes. UNVERIFIED: 1 and 2 (KJ codes the
# allergy kinds through AllergyIntolerance's own category: medication = legemiddelreaksjon,
# the others = annen allergi; the numbers follow the main categories' order) and 7 (the
# implant profile's code is not in the reference; "likely 7"). 8 (behandlingsbegrensning,
# unverified) is left out until its profile is known.
CATEGORIES: dict[str, str] = {
    "1": "Legemiddelreaksjon",
    "2": "Annen allergi",
    "3": "Intubasjonsproblem",
    "4": "Annet problem ved anestesi",
    "5": "Kritisk medisinsk tilstand",
    "6": "Pågående behandling",
    "7": "Implantat",
    "9": "Annen prosedyreendring",
    "10": "Smitte",
}
# which categories each resource type holds
CATEGORIES_OF_TYPE: dict[str, frozenset[str]] = {
    "AllergyIntolerance": frozenset({"1", "2"}),
    "Condition": frozenset({"3", "4", "5", "10"}),
    "Procedure": frozenset({"6"}),
    "DeviceUseStatement": frozenset({"7"}),
    "Flag": frozenset({"9"}),
}
# AllergyIntolerance keeps FHIR's own category too: medication for 1, the others for 2
ALLERGY_CATEGORIES: dict[str, frozenset[str]] = {
    "1": frozenset({"medication"}),
    "2": frozenset({"food", "environment", "biologic"}),
}

# the source of the information (KJ: KjSourceOfInformation, CodeSystem SourceOfInformation)
SOURCE = f"{OWN}/CodeSystem/critical-information-source"
# 1 and 2 are KJ's (norway.md §2.2); 3-5 are UNVERIFIED (guessed: the reference's list is
# cut off after 2)
SOURCES: dict[str, str] = {
    "1": "Resultat av tester/analyser",
    "2": "Observert av behandlende lege",
    "3": "Opplyst av pasienten",
    "4": "Opplyst av pårørende",
    "5": "Opplysninger fra annen helsetjeneste",
}

# extensions of samhandling's critical-information profiles
CATEGORY_EXTENSION = f"{OWN}/StructureDefinition/critical-information-category"
SOURCE_EXTENSION = f"{OWN}/StructureDefinition/critical-information-source"
VERIFIED_EXTENSION = f"{OWN}/StructureDefinition/critical-information-verified"
RECORDED_EXTENSION = f"{OWN}/StructureDefinition/critical-information-recorded"

RECORDER_ID = "recorder"  # the contained PractitionerRole: who registered it, and where
ENTERED_IN_ERROR = "entered-in-error"  # a retracted entry (never deleted)

# Codes are validated by the terminology service: a coding in a code system it holds whole
# (ICD-10, the Volven code systems, ...) must be one of its codes, for every write of every
# type. On top of that, the SNOMED CT codings of what an entry is about are bound to R4's
# value sets (extensible: a warning outside them; checked once SNOMED CT is loaded).
SNOMED = "http://snomed.info/sct"
ICD10_SYSTEMS = ("http://hl7.org/fhir/sid/icd-10", "http://hl7.org/fhir/sid/icd-10-no")
CODE_BINDINGS = (
    Binding("AllergyIntolerance.code", "extensible",
            "http://hl7.org/fhir/ValueSet/allergyintolerance-code", SNOMED),
    Binding("Condition.code", "extensible", "http://hl7.org/fhir/ValueSet/condition-code",
            SNOMED),
    Binding("Procedure.code", "extensible", "http://hl7.org/fhir/ValueSet/procedure-code",
            SNOMED),
    Binding("Flag.code", "extensible", "http://hl7.org/fhir/ValueSet/flag-code", SNOMED),
)  # fmt: skip
