"""The registers' FHIR model: resource types, profiles, code systems and extensions.

Which FHIR resource holds what (docs/services/registries.md has the whole model):

- person register (Folkeregisteret): Patient, and RelatedPerson for family relations and
  parental responsibility;
- health personnel register (HPR): Practitioner, one ``qualification`` per approval;
- enterprise register (Enhetsregisteret, RESH): Organization with ``partOf``;
- address register (Adresseregisteret): the communication parties (Organization,
  HealthcareService, PractitionerRole with a HER-id) and their Endpoints;
- GP register (Fastlegeregisteret): the GP's PractitionerRole (the list) and one
  EpisodeOfCare per person and GP (the history of a person's GPs).
"""

from __future__ import annotations

from samhandling.platform.fhir.bindings import Binding

OWN = "http://samhandling.no/fhir"  # the canonical base of samhandling's own definitions
NO_BASIS = "http://hl7.no/fhir/StructureDefinition/no-basis-"

REGISTER_TYPES = frozenset(
    {
        "Patient",
        "RelatedPerson",
        "Practitioner",
        "PractitionerRole",
        "Organization",
        "HealthcareService",
        "Endpoint",
        "EpisodeOfCare",
    }
)

# address protection (Folkeregisteret's "adressebeskyttelse"), as a meta.security label
ADDRESS_CONFIDENTIALITY = "http://ehelse.no/fhir/CodeSystem/gd-address-confidentiality"
CONFIDENTIAL = "fortrolig"  # kode 7
STRICTLY_CONFIDENTIAL = "strengtFortrolig"  # kode 6
PROTECTED_LEVELS = (CONFIDENTIAL, STRICTLY_CONFIDENTIAL)
REDACTED = ("http://terminology.hl7.org/CodeSystem/v3-ObservationValue", "REDACTED")

# HPR
PROFESSION = "urn:oid:2.16.578.1.12.4.1.1.9060"  # Volven 9060 helsepersonellkategori
APPROVAL_TYPE = "urn:oid:2.16.578.1.12.4.1.1.7704"  # Volven 7704 godkjenningstype
SPECIALITY = "urn:oid:2.16.578.1.12.4.1.1.7426"  # Volven 7426 spesialitet
REQUISITION_RIGHT = f"{OWN}/CodeSystem/requisition-right"
HPR_SUSPENSION = f"{OWN}/StructureDefinition/hpr-suspension"

# enterprise register
ENTERPRISE_TYPE = f"{OWN}/CodeSystem/enterprise-type"

# address register
ADDRESS_COMPONENT_TYPE = "urn:oid:2.16.578.1.12.4.1.1.9044"  # Volven 9044: E_EDI, E_FHIR, ...
PUBLIC_KEY = f"{OWN}/StructureDefinition/public-key"

# GP register
GP_ROLE = f"{OWN}/CodeSystem/gp-role"  # code "fastlege"
GP_LIST = f"{OWN}/StructureDefinition/gp-list"  # listLength, openForNewPatients
EPISODE_TYPE = f"{OWN}/CodeSystem/episode-type"  # code "fastlege"

# family relations (no-basis)
FAMILY_RELATION = "http://hl7.no/fhir/CodeSystem/no-basis-family-relation"
PARENTAL_RESPONSIBILITY = "http://hl7.no/fhir/CodeSystem/no-basis-parental-responsibility"

# no-basis-RelatedPerson's sliced bindings: each relationship coding of these systems must be
# in its value set
PROFILE_BINDINGS = (
    Binding(
        "RelatedPerson.relationship",
        "required",
        "http://hl7.no/fhir/ValueSet/no-basis-family-relation",
        FAMILY_RELATION,
    ),
    Binding(
        "RelatedPerson.relationship",
        "required",
        "http://hl7.no/fhir/ValueSet/no-basis-parental-responsibility",
        PARENTAL_RESPONSIBILITY,
    ),
)
