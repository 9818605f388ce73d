"""A deterministic synthetic population for the national registers (grunndata), as FHIR R4.

:func:`register_population` builds, from ``(persons, seed)`` alone, the registers other
services look things up in:

- the enterprise register (Organization): the four regional health authorities, their hospital
  trusts, hospitals and hospital laboratories, private laboratories, every municipality with its
  nursing homes and emergency room (legevakt), pharmacy chains and their pharmacies, GP offices
  and contract specialists; organisation number (ENH) on all, RESH-id on specialist care units,
  HER-id on every communication party;
- the health personnel register (Practitioner): HPR number and fødselsnummer, approvals (9060
  profession + 7704 approval type, with validity periods, suspensions and revocations),
  specialities (7426) and requisition rights; and their PractitionerRoles, the GPs' with a
  HER-id (person in role) and their list (length, open for new patients);
- the address register: HealthcareServices (service-addressed parties) and Endpoints (E_EDI,
  E_FHIR, and E_KS/E_SS carrying the party's public encryption/signing key as a JWK; the private
  keys come from :meth:`RegisterPopulation.private_jwk`);
- the person register (Patient): households (couples, children under 18, single parents),
  D-number-only persons, replaced D-numbers, deceased persons, address protection;
- family relations (RelatedPerson, one per child and parent, with parental responsibility);
- the GP register (EpisodeOfCare ``fastlege``: the current GP relation and earlier ones).

The person register holds everyone: each practitioner is also a Patient with the same
fødselsnummer, living alone in the municipality of their workplace. ``persons`` counts the
residents generated in households; the practitioners' Patients come on top (they are in
:attr:`RegisterPopulation.persons` and in ``counts["Patient"]``).

Everything is a pure function of ``(persons, seed)``: named ``random.Random`` streams, no
clock; "today" is :data:`REFERENCE_DATE`. The fixed part (specialist care, municipalities,
laboratories, pharmacy chains; their endpoints, services, staff and roles) is the same for
every ``persons`` of a seed, ids included; GP offices (one per about 1,500 persons),
pharmacies (one per about 2,000), contract specialists and their staff scale. Resources are
written as PUTs with fixed ids ``<kind>-<seed>-<nnnnnn>``, so loading twice is idempotent;
every resource carries the HTEST tag and, where one exists, its no-basis profile.
"""

from __future__ import annotations

import base64
import bisect
import functools
import hashlib
import math
import random
import re
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any, Generic, NamedTuple, TypeVar

import orjson
from cryptography.hazmat.primitives.asymmetric import ec

from samhandling.services.registries.model import (  # the registers' own definitions
    ADDRESS_COMPONENT_TYPE as ADDRESS_COMPONENT_SYSTEM,
)
from samhandling.services.registries.model import (
    ADDRESS_CONFIDENTIALITY as ADDRESS_CONFIDENTIALITY_SYSTEM,
)
from samhandling.services.registries.model import APPROVAL_TYPE as APPROVAL_TYPE_SYSTEM
from samhandling.services.registries.model import ENTERPRISE_TYPE as ENTERPRISE_TYPE_SYSTEM
from samhandling.services.registries.model import EPISODE_TYPE as EPISODE_TYPE_SYSTEM
from samhandling.services.registries.model import FAMILY_RELATION as FAMILY_RELATION_SYSTEM
from samhandling.services.registries.model import GP_LIST as GP_LIST_URL
from samhandling.services.registries.model import GP_ROLE as GP_ROLE_SYSTEM
from samhandling.services.registries.model import HPR_SUSPENSION as HPR_SUSPENSION_URL
from samhandling.services.registries.model import NO_BASIS as NO_BASIS_PROFILE_BASE
from samhandling.services.registries.model import OWN as SAMHANDLING_FHIR_BASE
from samhandling.services.registries.model import (
    PARENTAL_RESPONSIBILITY as PARENTAL_RESPONSIBILITY_SYSTEM,
)
from samhandling.services.registries.model import PROFESSION as PROFESSION_SYSTEM
from samhandling.services.registries.model import PUBLIC_KEY as PUBLIC_KEY_URL
from samhandling.services.registries.model import REQUISITION_RIGHT as REQUISITION_RIGHT_SYSTEM
from samhandling.services.registries.model import SPECIALITY as SPECIALITY_SYSTEM
from samhandling.synth.identifiers import (
    DNR_SYSTEM,
    FNR_SYSTEM,
    HER_SYSTEM,
    HPR_SYSTEM,
    ORGNR_SYSTEM,
    RESH_SYSTEM,
    hpr_number,
    nth_fodselsnummer,
    organisasjonsnummer,
)
from samhandling.synth.places import NURSING_HOME_NAMES, PHARMACY_CHAINS, PRIVATE_LABS, REGIONS
from samhandling.synth.population import (
    _FEMALE_NAMES,
    _MALE_NAMES,
    _MUNICIPALITIES,
    _MUNICIPALITY_WEIGHTS,
    _ORG_NAME_PATTERNS,
    _STREETS,
    _SURNAMES,
    REFERENCE_DATE,
    _address,
    _age,
    _meta,
    _mix64,
    _Municipality,
    _phone,
)

__all__ = [
    "ADDRESS_COMPONENT_SYSTEM",
    "ADDRESS_CONFIDENTIALITY_SYSTEM",
    "APPROVAL_TYPE_SYSTEM",
    "EDI_MAIL_DOMAIN",
    "ENDPOINT_PAYLOAD_SYSTEM",
    "ENTERPRISE_TYPES",
    "ENTERPRISE_TYPE_SYSTEM",
    "EPISODE_TYPE_SYSTEM",
    "FACTS_VALID_UNTIL",
    "FAMILY_RELATION_SYSTEM",
    "FHIR_HOST_SUFFIX",
    "GP_LIST_URL",
    "GP_ROLE_SYSTEM",
    "HPR_SUSPENSION_URL",
    "JWK_URN_PREFIX",
    "MAX_PERSONS",
    "NO_BASIS_PROFILE_BASE",
    "PARENTAL_RESPONSIBILITY_SYSTEM",
    "PRACTITIONER_ROLE_SYSTEM",
    "PROFESSION_SYSTEM",
    "PROFILES",
    "PUBLIC_KEY_URL",
    "REFERENCE_DATE",
    "REQUISITION_RIGHT_SYSTEM",
    "SAMHANDLING_FHIR_BASE",
    "SPECIALITY_SYSTEM",
    "GpRecord",
    "OrganizationRecord",
    "PersonRecord",
    "PractitionerRecord",
    "RegisterPopulation",
    "register_population",
]

# ----------------------------------------------------------------------------------- URLs

# Identifier systems (FNR_SYSTEM, DNR_SYSTEM, HPR_SYSTEM, ORGNR_SYSTEM, RESH_SYSTEM,
# HER_SYSTEM) come from samhandling.synth.identifiers.
PROFILES = {
    t: NO_BASIS_PROFILE_BASE + t
    for t in (
        "Organization",
        "Endpoint",
        "Practitioner",
        "PractitionerRole",
        "HealthcareService",
        "Patient",
        "RelatedPerson",
    )
}  # EpisodeOfCare has no no-basis profile
PRACTITIONER_ROLE_SYSTEM = "http://terminology.hl7.org/CodeSystem/practitioner-role"
ENDPOINT_PAYLOAD_SYSTEM = "http://terminology.hl7.org/CodeSystem/endpoint-payload-type"
EDI_MAIL_DOMAIN = "edi.samhandling.test"  # E_EDI: mailto:<her-id>@EDI_MAIL_DOMAIN
FHIR_HOST_SUFFIX = "samhandling.test"  # E_FHIR: https://<slug>.FHIR_HOST_SUFFIX/fhir
JWK_URN_PREFIX = "urn:samhandling:jwk:"  # E_KS/E_SS: JWK_URN_PREFIX + kid

# ------------------------------------------------------------------------------ code tables

ENTERPRISE_TYPES = {
    "rhf": "Regionalt helseforetak",
    "hf": "Helseforetak",
    "sykehus": "Sykehus",
    "kommune": "Kommune",
    "fastlegekontor": "Fastlegekontor",
    "sykehjem": "Sykehjem",
    "legevakt": "Legevakt",
    "apotek": "Apotek",
    "laboratorium": "Laboratorium",
    "avtalespesialist": "Avtalespesialist",
}
_FHIR_PARTY_TYPES = frozenset({"hf", "sykehus", "laboratorium"})  # also get an E_FHIR endpoint


@dataclass(frozen=True, slots=True)
class _Profession:
    display: str  # 9060
    role_code: str | None  # practitioner-role code, where R4 has one
    function: str  # Norwegian text of the role
    female: float  # share of women
    graduation_age: tuple[int, int]


_PROFESSIONS = {
    "LE": _Profession("Lege", "doctor", "Lege", 0.5, (25, 30)),
    "SP": _Profession("Sykepleier", "nurse", "Sykepleier", 0.9, (22, 27)),
    "FA1": _Profession("Provisorfarmasøyt", "pharmacist", "Provisorfarmasøyt", 0.8, (24, 28)),
    "FA2": _Profession("Reseptarfarmasøyt", "pharmacist", "Reseptarfarmasøyt", 0.85, (21, 25)),
    "BI": _Profession("Bioingeniør", None, "Bioingeniør", 0.85, (22, 26)),
    "HF": _Profession("Helsefagarbeider", None, "Helsefagarbeider", 0.85, (19, 25)),
    "PS": _Profession("Psykolog", None, "Psykolog", 0.75, (24, 29)),
    "FT": _Profession("Fysioterapeut", None, "Fysioterapeut", 0.6, (22, 27)),
    "JO": _Profession("Jordmor", "nurse", "Jordmor", 1.0, (22, 27)),
    "TL": _Profession("Tannlege", None, "Tannlege", 0.55, (24, 29)),
}
_ROLE_DISPLAYS = {"doctor": "Doctor", "nurse": "Nurse", "pharmacist": "Pharmacist"}
AUTHORISATION, LICENCE, LIS1_LICENCE, TURNUS_LICENCE = "1", "4", "18", "2"
_APPROVAL_TYPES = {
    AUTHORISATION: "Autorisasjon",
    LICENCE: "Lisens",
    LIS1_LICENCE: "LIS1-lisens",
    TURNUS_LICENCE: "Turnuslisens",
}
# Only the two 7426 codes confirmed in public sources (the no-basis Practitioner example).
GENERAL_PRACTICE, ORTHOPAEDIC_SURGERY = "1", "152"
_SPECIALITIES = {GENERAL_PRACTICE: "Allmennmedisin", ORTHOPAEDIC_SURGERY: "Ortopedisk kirurgi"}
_REQUISITION_RIGHTS = {
    "legemidler": "Rekvisisjonsrett for legemidler",
    "laboratorieprover": "Rekvisisjonsrett for laboratorieprøver",
    "prevensjon": "Rekvisisjonsrett for prevensjonsmidler",
}
_FAMILY_RELATIONS = {"mor": "Mor", "far": "Far", "medmor": "Medmor"}
_RESPONSIBILITIES = {"felles": "Felles", "mor": "Mor", "far": "Far", "medmor": "Medmor"}
_PROTECTIONS = {"fortrolig": "Fortrolig", "strengtFortrolig": "Strengt fortrolig"}
_KEY_USES = {"E_KS": "enc", "E_SS": "sig"}  # JWK "use" of the key an endpoint carries
_ENDPOINT_NAMES = {
    "E_EDI": "EDI-adresse",
    "E_FHIR": "FHIR-endepunkt",
    "E_KS": "Krypteringsnøkkel",
    "E_SS": "Signeringsnøkkel",
}
_SERVICES = {  # enterprise type -> service-addressed party's name
    "sykehus": "Mottak av henvisninger",
    "laboratorium": "Laboratoriesvar",
    "legevakt": "Legevakt",
    "kommune": "Tildelingskontor for helse- og omsorgstjenester",
}
# Staff of the fixed workplaces, by enterprise type: (profession, variant).
_STAFF: dict[str, tuple[tuple[str, str], ...]] = {
    "sykehus": (
        ("LE", "hospital"),
        ("LE", "hospital"),
        ("LE", "hospital"),
        ("SP", ""),
        ("SP", ""),
        ("SP", ""),
        ("JO", ""),
        ("FT", ""),
        ("PS", ""),
    ),
    "laboratorium": (("BI", ""), ("BI", ""), ("LE", "")),
    "kommune": (("SP", "helsesykepleier"), ("JO", ""), ("FT", "")),
    "sykehjem": (("SP", ""), ("HF", ""), ("HF", ""), ("LE", "nursing-home")),
    "legevakt": (("LE", ""), ("SP", "")),
}

# No approval, licence or suspension changes state after REFERENCE_DATE until this day.
FACTS_VALID_UNTIL = date(2030, 12, 31)
_GP_SCHEME_START = date(2001, 6, 1)  # fastlegeordningen
_LIS1_START = date(2017, 9, 1)  # LIS1 replaced turnus
_AUTHORISATION_AT_GRADUATION = date(2013, 1, 1)
_REF = REFERENCE_DATE.toordinal()
_YEAR = 365.2425
_P256_ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
_MUNICIPALITY_BY_NUMBER = {m.number: m for m in _MUNICIPALITIES}
_MUNICIPALITY_CUM = tuple(
    sum(_MUNICIPALITY_WEIGHTS[: i + 1]) for i in range(len(_MUNICIPALITY_WEIGHTS))
)
_PERSONS_PER_GP_OFFICE = 1_500
_PERSONS_PER_PHARMACY = 2_000
_PERSONS_PER_SPECIALIST = 5_500
_PERSONS_PER_GP = 1_100
MAX_PERSONS = 2_000_000
_NUMBERS_PER_DATE = 200  # every birth date 1900-2039 has at least 200 per gender

# ------------------------------------------------------------------------------ public records


class PersonRecord(NamedTuple):
    """A person in the person register (a Patient)."""

    id: str  # Patient id
    pid: str  # current official number: fødselsnummer, or D-number when kind == "DNR"
    kind: str  # "FNR" | "DNR"
    birth_date: date
    gender: str  # "female" | "male"
    protection: str | None  # None | "fortrolig" | "strengtFortrolig"
    deceased: date | None
    gp_role_id: str | None  # the current GP's PractitionerRole id
    household_id: int
    municipality: str  # kommunenummer of the home address
    practitioner_id: str | None  # set when the person is also a Practitioner
    old_dnr: str | None  # replaced D-number (then kind == "FNR")


class OrganizationRecord(NamedTuple):
    """An organisation in the enterprise register."""

    id: str
    name: str
    type: str  # key of ENTERPRISE_TYPES
    orgnr: str
    resh: str | None
    her_id: str | None
    part_of: str | None  # Organization id
    municipality: str
    endpoint_ids: tuple[str, ...]


class PractitionerRecord(NamedTuple):
    """A person in the health personnel register."""

    id: str
    hpr: str
    fnr: str
    person_id: str  # the same person's Patient id
    role_ids: tuple[str, ...]


class GpRecord(NamedTuple):
    """A GP's role in the GP register."""

    role_id: str
    practitioner_id: str
    organization_id: str
    her_id: str
    list_length: int
    listed: int  # persons with an active GP relation to this GP
    open_for_new_patients: bool


# ---------------------------------------------------------------------------- internal state

_T = TypeVar("_T")


@dataclass(slots=True)
class _Org:
    id: str
    name: str
    type: str
    orgnr: str
    resh: str | None
    her_id: str | None
    parent: int | None
    muni: _Municipality
    line: str
    postal: tuple[str, str]
    phone: str
    owner: tuple[str, str] | None = None  # (profession, family name) of a contract specialist
    endpoints: list[int] = field(default_factory=list)
    fhir_slug: str | None = None


@dataclass(slots=True)
class _Endpoint:
    id: str
    kind: str
    org: int
    address: str
    jwk: dict[str, str] | None = None  # public key (E_KS, E_SS)


@dataclass(slots=True)
class _Service:
    id: str
    org: int
    name: str
    her_id: str


@dataclass(slots=True)
class _Approval:
    profession: str
    type: str
    start: date
    end: date | None = None
    suspension: tuple[date, date | None] | None = None

    def valid(self, on: date) -> bool:
        if self.start > on or (self.end is not None and self.end < on):
            return False
        return not self.suspended(on)

    def suspended(self, on: date) -> bool:
        s = self.suspension
        return s is not None and s[0] <= on and (s[1] is None or s[1] >= on)


@dataclass(slots=True)
class _Prac:
    id: str
    hpr: str
    person: int
    approvals: list[_Approval]
    specialities: list[tuple[str, date]]
    requisitions: list[list[Any]]  # [code, start, end | None]
    roles: list[int] = field(default_factory=list)


@dataclass(slots=True)
class _Role:
    id: str
    prac: int
    org: int
    profession: str
    function: str
    start: date
    speciality: str | None = None
    gp: bool = False
    her_id: str | None = None
    list_length: int = 0
    listed: int = 0


@dataclass(slots=True)
class _Person:
    id: str
    female: bool
    birth: int  # ordinal
    given: str
    family: str
    household: int
    muni: _Municipality
    line: str
    postal: tuple[str, str]
    adult_phone: str | None
    pid: str = ""
    kind: str = "FNR"
    old_dnr: str | None = None
    old_dnr_end: date | None = None
    deceased: date | None = None
    protection: str | None = None
    gp: int | None = None  # role index
    practitioner: int | None = None
    parents: list[tuple[int, str, str | None]] = field(default_factory=list)
    # (parent person index, family relation, parental responsibility code or None)


class _Episode(NamedTuple):
    id: str
    person: int
    role: int
    start: date
    end: date | None


class _Row(NamedTuple):
    """A finished _Person: a tuple of atomic values, so the garbage collector skips it."""

    id: str
    female: bool
    birth: int
    given: str
    family: str
    household: int
    muni: int  # index into _MUNICIPALITIES
    line: str
    postal: tuple[str, str]
    adult_phone: str | None
    pid: str
    kind: str
    old_dnr: str | None
    old_dnr_end: date | None
    deceased: date | None
    protection: str | None
    gp: int | None
    practitioner: int | None
    parents: tuple[tuple[int, str, str | None], ...]


class _Rows(Generic[_T]):
    """A list of plain tuples read as NamedTuples.

    The garbage collector untracks plain tuples of atomic values but not NamedTuples: with
    100,000 persons, a few hundred thousand tracked records it walks over again and again
    made rendering the Bundles three times slower.
    """

    __slots__ = ("_data", "_make")

    def __init__(self, data: list[tuple[Any, ...]], kind: type[_T]) -> None:
        self._data = data
        self._make: Callable[[tuple[Any, ...]], _T] = kind._make  # type: ignore[attr-defined]

    def __len__(self) -> int:
        return len(self._data)

    def __getitem__(self, index: int) -> _T:
        return self._make(self._data[index])

    def __iter__(self) -> Iterator[_T]:
        return map(self._make, self._data)


# ------------------------------------------------------------------------------ small helpers


def _coding(system: str, code: str, display: str | None = None) -> dict[str, str]:
    if display is None:
        return {"system": system, "code": code}
    return {"system": system, "code": code, "display": display}


def _ref(type_: str, id_: str, display: str | None = None) -> dict[str, str]:
    if display is None:
        return {"reference": f"{type_}/{id_}"}
    return {"reference": f"{type_}/{id_}", "display": display}


def _meta_for(resource_type: str) -> dict[str, Any]:
    meta = _meta()
    profile = PROFILES.get(resource_type)
    if profile is not None:
        meta["profile"] = [profile]
    return meta


def _put(resource: dict[str, Any]) -> dict[str, Any]:
    return {
        "resource": resource,
        "request": {"method": "PUT", "url": f"{resource['resourceType']}/{resource['id']}"},
    }


def _day(ordinal: int) -> date:
    return date.fromordinal(ordinal)


def _years(n: float) -> int:
    """``n`` years in days."""
    return int(n * _YEAR)


def _between(rng: random.Random, first: date, last: date) -> date:
    """A date in [first, last] (``first`` when the range is empty)."""
    a, b = first.toordinal(), last.toordinal()
    return _day(a if b <= a else rng.randint(a, b))


def _after_facts(rng: random.Random) -> date:
    """An end date 1 day to 3 years after FACTS_VALID_UNTIL."""
    return FACTS_VALID_UNTIL + timedelta(days=rng.randint(1, _years(3)))


def _quota(rate: float, n: int) -> int:
    """How many of ``n`` get a property of frequency ``rate`` (at least one from 100 on)."""
    k = round(rate * n)
    return max(1, k) if n >= 100 else k


def _apportion(total: int, weights: tuple[int, ...]) -> list[int]:
    """Largest-remainder apportionment of ``total`` seats by ``weights``."""
    s = sum(weights)
    exact = [total * w / s for w in weights]
    seats = [math.floor(x) for x in exact]
    order = sorted(range(len(weights)), key=lambda i: (-(exact[i] - seats[i]), i))
    for i in order[: total - sum(seats)]:
        seats[i] += 1
    return seats


_SLUG = str.maketrans({"æ": "ae", "ø": "o", "å": "a", "é": "e"})


def _slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower().translate(_SLUG)).strip("-")


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _private_key(seed: int, her_id: str, use: str) -> ec.EllipticCurvePrivateKey:
    digest = hashlib.sha256(f"samhandling.synth/registers/{seed}/key/{her_id}/{use}".encode())
    scalar = int.from_bytes(digest.digest(), "big") % (_P256_ORDER - 1) + 1
    return ec.derive_private_key(scalar, ec.SECP256R1())


def _jwk(key: ec.EllipticCurvePrivateKey, use: str, *, private: bool) -> dict[str, str]:
    """The key as a JWK (``kid`` = RFC 7638 thumbprint); with ``d`` when ``private``."""
    numbers = key.public_key().public_numbers()
    x, y = _b64url(numbers.x.to_bytes(32, "big")), _b64url(numbers.y.to_bytes(32, "big"))
    thumbprint = orjson.dumps({"crv": "P-256", "kty": "EC", "x": x, "y": y})
    alg = "ECDH-ES" if use == "enc" else "ES256"
    jwk = {"kty": "EC", "crv": "P-256", "x": x, "y": y}
    if private:
        jwk["d"] = _b64url(key.private_numbers().private_value.to_bytes(32, "big"))
    jwk |= {"kid": _b64url(hashlib.sha256(thumbprint).digest()), "use": use, "alg": alg}
    return jwk


class _Numbers:
    """Hands out distinct fødselsnumre / D-numbers.

    The numbers of one birth date and gender are taken in individnummer order from a
    starting point that depends on the seed and the date, so they spread like real ones.
    """

    def __init__(self, seed: int) -> None:
        self.seed = seed
        self.used: dict[tuple[int, bool, bool], int] = {}

    def take(self, birth: int, female: bool, d_number: bool) -> tuple[int, str]:
        """(birth date ordinal, number); the date moves on only if its numbers run out."""
        while True:
            key = (birth, female, d_number)
            n = self.used.get(key, 0)
            start = _mix64((self.seed << 32) ^ (birth << 2) ^ (female << 1) ^ d_number)
            try:
                if n >= _NUMBERS_PER_DATE:
                    raise IndexError(n)
                slot = (start + n) % _NUMBERS_PER_DATE
                number = nth_fodselsnummer(_day(birth), female, slot, d_number=d_number)
            except IndexError:
                birth += 1
                continue
            self.used[key] = n + 1
            return birth, number


# ----------------------------------------------------------------------------------- builder


class _Builder:
    """Builds the registers in a fixed order of named random streams."""

    def __init__(self, persons: int, seed: int) -> None:
        self.seed = seed
        self.n_residents = persons
        self.orgs: list[_Org] = []
        self.endpoints: list[_Endpoint] = []
        self.services: list[_Service] = []
        self.pracs: list[_Prac] = []
        self.roles: list[_Role] = []
        self.people: list[_Person] = []
        self.staff_people: list[_Person] = []  # the practitioners, until place_staff
        self.episodes: list[tuple[Any, ...]] = []  # _Episode fields, as a plain tuple
        self.rows: _Rows[_Row] = _Rows([], _Row)  # the persons, once built
        self.related = 0
        self.households = 0
        self.ids = self._rng("identifiers")
        self.taken: set[str] = set()  # orgnr, RESH, HER and HPR: no value is used twice
        self.slugs: set[str] = set()
        self.allocator = _Numbers(seed)
        self.keys: dict[str, dict[str, dict[str, str]]] = {}  # her -> use -> public JWK

    def _rng(self, stream: str) -> random.Random:
        return random.Random(f"samhandling.synth/registers/{self.seed}/{stream}")

    def _id(self, kind: str, n: int) -> str:
        return f"{kind}-{self.seed}-{n:06d}"

    def _unique(self, make: Any) -> str:
        value = make()
        while value in self.taken:
            value = make()
        self.taken.add(value)
        return value

    def _her(self) -> str:
        return self._unique(lambda: str(self.ids.randrange(50_000, 10_000_000)))

    # -- enterprise and address registers ----------------------------------------------------

    def org(
        self,
        rng: random.Random,
        name: str,
        type_: str,
        municipality: str,
        parent: int | None = None,
        *,
        resh: bool = False,
        party: bool = True,
    ) -> int:
        muni = _MUNICIPALITY_BY_NUMBER[municipality]
        index = len(self.orgs)
        org = _Org(
            id=self._id("org", index + 1),
            name=name,
            type=type_,
            orgnr=self._unique(lambda: organisasjonsnummer(self.ids)),
            resh=self._unique(lambda: str(self.ids.randrange(100_000, 1_000_000)))
            if resh
            else None,
            her_id=self._her() if party else None,
            parent=parent,
            muni=muni,
            line=f"{rng.choice(_STREETS)} {rng.randint(1, 90)}",
            postal=rng.choice(muni.postal),
            phone=_phone(rng, False, muni.phone_prefix),
        )
        self.orgs.append(org)
        if org.her_id is not None:
            kinds = ["E_EDI", "E_KS", "E_SS"]
            if type_ in _FHIR_PARTY_TYPES:
                slug = base = _slug(name)
                k = 1
                while slug in self.slugs:
                    k += 1
                    slug = f"{base}-{k}"
                self.slugs.add(slug)
                org.fhir_slug = slug
                kinds.insert(1, "E_FHIR")
            for kind in kinds:
                self.endpoint(index, kind)
        return index

    def endpoint(self, org_index: int, kind: str) -> None:
        org = self.orgs[org_index]
        assert org.her_id is not None
        jwk = None
        if kind == "E_EDI":
            address = f"mailto:{org.her_id}@{EDI_MAIL_DOMAIN}"
        elif kind == "E_FHIR":
            address = f"https://{org.fhir_slug}.{FHIR_HOST_SUFFIX}/fhir"
        else:
            use = _KEY_USES[kind]
            jwk = _jwk(_private_key(self.seed, org.her_id, use), use, private=False)
            self.keys.setdefault(org.her_id, {})[use] = jwk
            address = JWK_URN_PREFIX + jwk["kid"]
        org.endpoints.append(len(self.endpoints))
        self.endpoints.append(
            _Endpoint(self._id("endpoint", len(self.endpoints) + 1), kind, org_index, address, jwk)
        )

    def fixed_organizations(self) -> None:
        rng = self._rng("organizations")
        for region in REGIONS:
            rhf = self.org(rng, region.name, "rhf", region.municipality, resh=True, party=False)
            for trust in region.trusts:
                hf = self.org(rng, trust.name, "hf", trust.municipality, rhf, resh=True)
                for name, municipality in trust.hospitals:
                    self.org(rng, name, "sykehus", municipality, hf, resh=True)
                if trust.lab is not None:
                    self.org(rng, trust.lab, "laboratorium", trust.municipality, hf, resh=True)
        for name, municipality in PRIVATE_LABS:
            self.org(rng, name, "laboratorium", municipality)
        for muni in _MUNICIPALITIES:
            kommune = self.org(rng, f"{muni.name} kommune", "kommune", muni.number)
            for name in rng.sample(NURSING_HOME_NAMES, 1 + muni.weight // 5):
                self.org(rng, name, "sykehjem", muni.number, kommune)
            self.org(rng, f"{muni.name} legevakt", "legevakt", muni.number, kommune)
        for name, _, municipality in PHARMACY_CHAINS:
            self.org(rng, name, "apotek", municipality, party=False)
        for index, org in enumerate(self.orgs):
            name = _SERVICES.get(org.type)
            if name is not None:
                service_id = self._id("service", len(self.services) + 1)
                self.services.append(_Service(service_id, index, name, self._her()))

    def scaled_organizations(self) -> None:
        rng = self._rng("organizations-scaled")
        persons = self.n_residents
        offices = _apportion(max(4, round(persons / _PERSONS_PER_GP_OFFICE)), _MUNICIPALITY_WEIGHTS)
        for muni, count in zip(_MUNICIPALITIES, offices, strict=True):
            for k in range(count):
                round_, pattern = divmod(k, len(_ORG_NAME_PATTERNS))
                name = _ORG_NAME_PATTERNS[pattern].format(
                    city=muni.name, street=rng.choice(_STREETS)
                )
                self.org(
                    rng,
                    name if not round_ else f"{name} {round_ + 1}",
                    "fastlegekontor",
                    muni.number,
                )
        chains = [i for i, o in enumerate(self.orgs) if o.type == "apotek"]
        pharmacies = _apportion(
            max(3, round(persons / _PERSONS_PER_PHARMACY)), _MUNICIPALITY_WEIGHTS
        )
        for muni, count in zip(_MUNICIPALITIES, pharmacies, strict=True):
            streets = rng.sample(_STREETS, min(count, len(_STREETS)))
            for k in range(count):
                chain = rng.randrange(len(chains))
                brand = PHARMACY_CHAINS[chain][1]
                name = f"{brand} {muni.name}"
                if count > 1:
                    name += f" {streets[k % len(streets)]}" + (
                        f" {k // len(streets) + 1}" if k >= len(streets) else ""
                    )
                self.org(rng, name, "apotek", muni.number, chains[chain])
        specialists = _apportion(
            max(3, round(persons / _PERSONS_PER_SPECIALIST)), _MUNICIPALITY_WEIGHTS
        )
        n = 0
        for muni, count in zip(_MUNICIPALITIES, specialists, strict=True):
            for _ in range(count):
                family = rng.choice(_SURNAMES)
                profession = "PS" if n % 3 == 2 else "LE"
                n += 1
                kind = "Psykologspesialist" if profession == "PS" else "Ortopedspesialist"
                index = self.org(rng, f"{kind} {family} AS", "avtalespesialist", muni.number)
                self.orgs[index].owner = (profession, family)

    # -- person register: residents ----------------------------------------------------------

    def _adult(self, rng: random.Random, lo: float, hi: float) -> int:
        """A birth date ordinal of someone aged [lo, hi) years today."""
        return _REF - rng.randint(_years(lo), _years(hi) - 1)

    def _new_person(
        self,
        rng: random.Random,
        birth: int,
        female: bool,
        family: str,
        household: int,
        home: tuple[_Municipality, str, tuple[str, str]],
    ) -> _Person:
        muni, line, postal = home
        adult = _age(_day(birth), REFERENCE_DATE) >= 18
        return _Person(
            id="",  # given by _add
            female=female,
            birth=birth,
            given=rng.choice(_FEMALE_NAMES if female else _MALE_NAMES),
            family=family,
            household=household,
            muni=muni,
            line=line,
            postal=postal,
            adult_phone=_phone(rng, True) if adult else None,
        )

    def _add(self, person: _Person) -> int:
        """Put ``person`` in the register; its index."""
        person.id = self._id("person", len(self.people) + 1)
        self.people.append(person)
        return len(self.people) - 1

    def _person(
        self,
        rng: random.Random,
        birth: int,
        female: bool,
        family: str,
        household: int,
        home: tuple[_Municipality, str, tuple[str, str]],
    ) -> int:
        return self._add(self._new_person(rng, birth, female, family, household, home))

    def _home(
        self, rng: random.Random, muni: _Municipality | None = None
    ) -> tuple[_Municipality, str, tuple[str, str]]:
        if muni is None:
            muni = _MUNICIPALITIES[
                bisect.bisect_right(_MUNICIPALITY_CUM, rng.random() * _MUNICIPALITY_CUM[-1])
            ]
        return muni, f"{rng.choice(_STREETS)} {rng.randint(1, 120)}", rng.choice(muni.postal)

    @staticmethod
    def _fits(parent: int, children: list[int]) -> bool:
        return all(18 <= _age(_day(parent), _day(c)) <= 45 for c in children)

    def _children(self, rng: random.Random, most: int) -> tuple[list[int], int]:
        """Birth ordinals of 1..``most`` children under 18, and their mother's."""
        k = min(most, rng.choices((1, 2, 3, 4), cum_weights=(35, 80, 97, 100))[0])
        gaps = [rng.randint(365, 1_600) for _ in range(k - 1)]
        while sum(gaps) > _years(17):
            gaps.pop()
        span = sum(gaps)
        youngest = _REF - rng.randint(0, _years(18) - span - 2)
        births = [youngest - sum(gaps[i:]) for i in range(len(gaps))] + [youngest]
        while True:
            first_age = rng.uniform(20, max(20.5, min(38, 44 - span / _YEAR)))
            mother = births[0] - _years(first_age) - rng.randrange(200)
            if self._fits(mother, births):
                return births, mother

    def _partner_of(self, rng: random.Random, mother: int, children: list[int]) -> int:
        """Birth ordinal of the other parent: usually a little older, always 18-45 older."""
        for _ in range(50):
            other = mother - _years(rng.gauss(2.5, 3.0))
            if self._fits(other, children):
                return other
        return mother

    def residents(self) -> None:
        rng = self._rng("households")
        remaining = self.n_residents
        while remaining > 0:
            household = self.households
            self.households += 1
            home = self._home(rng)
            surname = rng.choice(_SURNAMES)
            kind = rng.choices(
                ("single", "couple", "family", "single-parent"), cum_weights=(42, 73, 96, 100)
            )[0]
            if remaining == 1:
                kind = "single"
            elif remaining < 4 and kind in ("family", "single-parent"):
                kind = "couple"
            if kind == "single":
                r = rng.random()
                lo, hi = (20, 35) if r < 0.35 else (35, 67) if r < 0.65 else (67, 98)
                self._person(
                    rng, self._adult(rng, lo, hi), rng.random() < 0.5, surname, household, home
                )
                remaining -= 1
            elif kind == "couple":
                lo, hi = (22, 40) if rng.random() < 0.3 else (45, 92)
                first = self._adult(rng, lo, hi)
                second = min(first + _years(rng.gauss(2.0, 3.0)), _REF - _years(18) - 1)
                same_sex = rng.random() < 0.03
                female = rng.random() < 0.5 if same_sex else False
                partner_female = female if same_sex else True
                self._person(rng, first, female, surname, household, home)
                partner_name = surname if rng.random() < 0.5 else rng.choice(_SURNAMES)
                self._person(rng, second, partner_female, partner_name, household, home)
                remaining -= 2
            elif kind == "family":
                births, mother = self._children(rng, remaining - 2)
                co_mother = rng.random() < 0.015
                other = self._partner_of(rng, mother, births)
                father_name = surname if rng.random() < 0.5 else rng.choice(_SURNAMES)
                m = self._person(
                    rng,
                    mother,
                    True,
                    surname if rng.random() < 0.5 else rng.choice(_SURNAMES),
                    household,
                    home,
                )
                f = self._person(rng, other, co_mother, father_name, household, home)
                children_name = rng.choice((surname, father_name))
                for b in births:
                    c = self._person(rng, b, rng.random() < 0.49, children_name, household, home)
                    self.people[c].parents = [
                        (m, "mor", "felles"),
                        (f, "medmor" if co_mother else "far", "felles"),
                    ]
                remaining -= 2 + len(births)
            else:  # single parent, the other parent unknown or living elsewhere
                births, mother = self._children(rng, min(3, remaining - 1))
                r = rng.random()
                father_lives = r < 0.2  # the father has the children
                other_listed = father_lives or r > 0.55
                other = self._partner_of(rng, mother, births)
                parent_birth, parent_female = (other, False) if father_lives else (mother, True)
                p = self._person(rng, parent_birth, parent_female, surname, household, home)
                code = "mor" if parent_female else "far"
                for b in births:
                    c = self._person(rng, b, rng.random() < 0.49, surname, household, home)
                    self.people[c].parents = [(p, code, code)]
                remaining -= 1 + len(births)
                if other_listed and remaining > 0:
                    ex_household = self.households
                    self.households += 1
                    ex_home = self._home(rng, home[0] if rng.random() < 0.7 else None)
                    ex_birth, ex_female = (mother, True) if father_lives else (other, False)
                    ex = self._person(
                        rng, ex_birth, ex_female, rng.choice(_SURNAMES), ex_household, ex_home
                    )
                    ex_code = "mor" if ex_female else "far"
                    for c in range(len(self.people) - 1 - len(births), len(self.people) - 1):
                        self.people[c].parents.append((ex, ex_code, None))
                    remaining -= 1
        # The other parent of a single-parent family is listed first: put the parents in
        # family order (mor, far/medmor) so RelatedPersons come out in a stable order.
        for person in self.people:
            if len(person.parents) == 2 and person.parents[0][1] != "mor":
                person.parents.reverse()

    # -- health personnel register -----------------------------------------------------------

    def fixed_staff(self) -> None:
        """The staff of the fixed organisations (the same whatever ``persons``)."""
        plan: list[tuple[int, str, str]] = []
        first_hospital: set[int] = set()
        for index, org in enumerate(self.orgs):
            if org.type == "sykehus" and org.parent not in first_hospital:
                first_hospital.add(org.parent)  # type: ignore[arg-type]
                plan.append((index, "TL", ""))  # oral surgery, one per hospital trust
            plan.extend(
                (index, profession, variant) for profession, variant in _STAFF.get(org.type, ())
            )
        self.hire(self._rng("staff"), plan)
        self.hpr_events(self._rng("hpr"), range(len(self.pracs)), minimum=True)

    def scaled_staff(self) -> None:
        """Pharmacists, contract specialists and the GP offices' GPs and staff.

        One GP per about 1,100 persons (everyone in the person register needs one); GPs
        often also take shifts at their municipality's legevakt (a second role).
        """
        rng = self._rng("staff-scaled")
        first = len(self.pracs)
        plan: list[tuple[int, str, str]] = []
        for index, org in enumerate(self.orgs):
            if org.type == "apotek" and org.parent is not None:
                plan.append((index, "FA1", ""))
                plan.append((index, "FA2", ""))
                if rng.random() < 0.5:
                    plan.append((index, "FA2", ""))
            elif org.type == "avtalespesialist":
                assert org.owner is not None
                plan.append((index, org.owner[0], "specialist"))
        offices = [i for i, o in enumerate(self.orgs) if o.type == "fastlegekontor"]
        everyone = self.n_residents + len(self.staff_people) + len(plan)
        gps = max(len(offices), math.ceil(everyone / _PERSONS_PER_GP))
        extra = set(rng.sample(range(len(offices)), gps % len(offices)))
        for k, index in enumerate(offices):
            count = gps // len(offices) + (1 if k in extra else 0)
            plan.extend((index, "LE", "gp") for _ in range(count))
            plan.append((index, "SP" if rng.random() < 0.5 else "HF", ""))
        self.hire(rng, plan)
        self.hpr_events(self._rng("hpr-scaled"), range(first, len(self.pracs)), minimum=False)

    def hire(self, rng: random.Random, plan: list[tuple[int, str, str]]) -> None:
        legevakt = {o.muni.number: i for i, o in enumerate(self.orgs) if o.type == "legevakt"}
        for index, profession, variant in plan:
            prac = self.practitioner(rng, profession, variant, self.orgs[index])
            self.role(rng, prac, index, profession, variant)
            if variant == "gp" and rng.random() < 0.3:
                self.role(rng, prac, legevakt[self.orgs[index].muni.number], "LE", "legevakt")

    def place_staff(self) -> None:
        """Put the practitioners in the person register, after the residents."""
        base = len(self.people)
        for person in self.staff_people:
            self._add(person)
        for index, prac in enumerate(self.pracs):
            prac.person += base
            self.people[prac.person].practitioner = index
        self.staff_people = []

    def practitioner(self, rng: random.Random, profession: str, variant: str, org: _Org) -> int:
        spec = _PROFESSIONS[profession]
        female = rng.random() < spec.female
        lo_grad, hi_grad = spec.graduation_age
        grad_age = rng.uniform(lo_grad, hi_grad)
        specialist = variant == "specialist" or (variant == "hospital" and rng.random() < 0.5)
        # Doctors have finished LIS1/turnus (a licence ending after REFERENCE_DATE would
        # change the facts before FACTS_VALID_UNTIL); specialists have had time to become one.
        least = 1.5 + (8 if specialist else 3 if profession == "LE" else 1)
        age = rng.uniform(hi_grad + least, 66.5)
        graduated = _REF - _years(age) + _years(grad_age)
        birth = graduated - _years(grad_age)
        grad = _day(graduated)
        approvals: list[_Approval] = []
        specialities: list[tuple[str, date]] = []
        requisitions: list[list[Any]] = []
        if profession == "LE":
            if grad < _AUTHORISATION_AT_GRADUATION or grad >= _LIS1_START:
                licence = TURNUS_LICENCE if grad < _AUTHORISATION_AT_GRADUATION else LIS1_LICENCE
                end = _day(graduated + 548)
                approvals.append(_Approval("LE", licence, grad, end))
                authorised = end + timedelta(days=1)
            else:
                authorised = grad
            approvals.append(_Approval("LE", AUTHORISATION, authorised))
            speciality = (
                ORTHOPAEDIC_SURGERY
                if specialist
                else GENERAL_PRACTICE
                if variant in ("gp", "nursing-home") and rng.random() < 0.75
                else None
            )
            if speciality is not None:
                since = authorised + timedelta(days=rng.randint(_years(5), _years(7)))
                if since <= REFERENCE_DATE - timedelta(days=30):
                    specialities.append((speciality, since))
            requisitions.append(["legemidler", grad, None])
            requisitions.append(["laboratorieprover", grad, None])
        elif profession == "JO":
            approvals.append(_Approval("SP", AUTHORISATION, grad))
            midwife = grad + timedelta(days=rng.randint(_years(2), _years(6)))
            midwife = min(midwife, REFERENCE_DATE - timedelta(days=60))
            approvals.append(_Approval("JO", AUTHORISATION, midwife))
            requisitions.append(["prevensjon", midwife, None])
        else:
            approvals.append(_Approval(profession, AUTHORISATION, grad))
            if profession == "TL":
                requisitions.append(["legemidler", grad, None])
            elif variant == "helsesykepleier" and rng.random() < 0.6:
                requisitions.append(["prevensjon", grad + timedelta(days=_years(2)), None])
        family = org.owner[1] if org.owner is not None else rng.choice(_SURNAMES)
        home = self._home(rng, org.muni)
        self.staff_people.append(
            self._new_person(rng, birth, female, family, self.households, home)
        )
        self.households += 1
        person = len(self.staff_people) - 1  # an index into staff_people until place_staff
        index = len(self.pracs)
        self.pracs.append(
            _Prac(
                id=self._id("prac", index + 1),
                hpr=self._unique(lambda: hpr_number(self.ids)),
                person=person,
                approvals=approvals,
                specialities=specialities,
                requisitions=requisitions,
            )
        )
        return index

    def role(
        self, rng: random.Random, prac_index: int, org_index: int, profession: str, variant: str
    ) -> None:
        prac = self.pracs[prac_index]
        first = prac.approvals[-1].start  # the approval the role needs (not an old licence)
        start = _between(rng, max(first, date(1990, 1, 1)), REFERENCE_DATE - timedelta(days=30))
        if variant == "gp":  # GPs tend to have kept their list for long
            start = min(start, _between(rng, first, REFERENCE_DATE - timedelta(days=30)))
        function = {
            "gp": "Fastlege",
            "legevakt": "Legevaktlege",
            "nursing-home": "Sykehjemslege",
            "helsesykepleier": "Helsesykepleier",
            "specialist": "Avtalespesialist",
        }.get(variant, _PROFESSIONS[profession].function)
        role = _Role(
            id=self._id("role", len(self.roles) + 1),
            prac=prac_index,
            org=org_index,
            profession=profession,
            function=function,
            start=start,
            speciality=prac.specialities[0][0] if prac.specialities else None,
            gp=variant == "gp",
        )
        if role.gp:
            role.her_id = self._her()
        prac.roles.append(len(self.roles))
        self.roles.append(role)

    def hpr_events(self, rng: random.Random, group: range, *, minimum: bool) -> None:
        """Suspensions (~1% of approvals), revocations, expired and time-limited licences
        among the practitioners ``group`` (with ``minimum``: at least a few of each)."""
        approvals = sum(len(self.pracs[i].approvals) for i in group)
        least = 1 if minimum else 0
        late = REFERENCE_DATE - timedelta(days=400)
        single = [
            i
            for i in group
            if len(self.pracs[i].approvals) == 1 and self.pracs[i].approvals[0].start < late
        ]
        n_suspended = max(3 * least, round(0.01 * approvals))
        n_current = n_suspended - n_suspended // 3
        n_revoked = max(2 * least, round(0.003 * approvals))
        n_expired = max(2 * least, round(0.003 * approvals))
        n_licensed = max(2 * least, round(0.005 * approvals))
        picks = rng.sample(single, min(len(single), n_current + n_revoked + n_expired + n_licensed))
        for k, i in enumerate(picks):
            approval = self.pracs[i].approvals[0]
            if k < n_current:
                start = _between(
                    rng,
                    max(approval.start, REFERENCE_DATE - timedelta(days=730)),
                    REFERENCE_DATE - timedelta(days=1),
                )
                end = None if rng.random() < 0.5 else _after_facts(rng)
                approval.suspension = (start, end)
            elif k < n_current + n_revoked:
                approval.end = _between(
                    rng,
                    max(approval.start, REFERENCE_DATE - timedelta(days=1_095)),
                    REFERENCE_DATE - timedelta(days=1),
                )
                for requisition in self.pracs[i].requisitions:
                    requisition[2] = approval.end
            elif k < n_current + n_revoked + n_expired:
                approval.type = LICENCE
                approval.end = _between(
                    rng,
                    max(
                        approval.start + timedelta(days=180), REFERENCE_DATE - timedelta(days=1_095)
                    ),
                    REFERENCE_DATE - timedelta(days=1),
                )
            else:
                approval.type = LICENCE
                approval.end = _after_facts(rng)  # a time-limited licence
        chosen = set(picks)
        historical = [
            a
            for i in group
            if i not in chosen
            for a in self.pracs[i].approvals
            if a.end is None and a.start < late
        ]
        for approval in rng.sample(historical, min(len(historical), n_suspended // 3)):
            start = _between(rng, approval.start + timedelta(days=30), late)
            approval.suspension = (start, start + timedelta(days=rng.randint(30, 180)))

    # -- person register: statuses and numbers ----------------------------------------------

    def statuses(self) -> None:
        rng = self._rng("status")
        residents = self.people[: self.n_residents]
        age = [_age(_day(p.birth), REFERENCE_DATE) for p in residents]
        parents = {parent for p in residents for parent, _, _ in p.parents}
        elderly = [i for i, a in enumerate(age) if a >= 72]
        for i in rng.sample(elderly, min(len(elderly), _quota(0.008, len(residents)))):
            p = residents[i]
            lo = max(_day(p.birth + _years(70) + 1), REFERENCE_DATE - timedelta(days=_years(6)))
            p.deceased = _between(rng, lo, REFERENCE_DATE - timedelta(days=1))
            p.adult_phone = None
        living_adults = [
            i
            for i, a in enumerate(age)
            if 18 <= a <= 66 and residents[i].deceased is None and i not in parents
        ]
        for i in rng.sample(living_adults, min(len(living_adults), _quota(0.02, len(residents)))):
            residents[i].kind = "DNR"
        movers = [
            i
            for i, a in enumerate(age)
            if a >= 20 and residents[i].kind == "FNR" and residents[i].deceased is None
        ]
        for i in rng.sample(movers, min(len(movers), _quota(0.005, len(residents)))):
            p = residents[i]
            lo = max(_day(p.birth + _years(18) + 1), date(1995, 1, 1))
            p.old_dnr_end = _between(rng, lo, REFERENCE_DATE - timedelta(days=30))
            p.old_dnr = ""  # assigned with the numbers
        members: dict[int, list[_Person]] = {}
        for p in residents:
            members.setdefault(p.household, []).append(p)
        order = list(members)
        rng.shuffle(order)
        targets = [
            ("strengtFortrolig", _quota(0.002, len(residents))),
            ("fortrolig", _quota(0.005, len(residents))),
        ]
        position = 0
        for level, target in targets:
            protected = 0
            while protected < target and position < len(order):
                household = members[order[position]]
                position += 1
                if protected + len(household) > target * 2 + 2:
                    continue
                for p in household:
                    p.protection = level
                protected += len(household)

    def assign_numbers(self) -> None:
        """Practitioners' numbers first (stable whatever ``persons``), then the residents'."""
        order = self.people[self.n_residents :] + self.people[: self.n_residents]
        for p in order:
            p.birth, p.pid = self.allocator.take(p.birth, p.female, p.kind == "DNR")
            if p.old_dnr is not None:
                p.birth, p.old_dnr = self.allocator.take(p.birth, p.female, True)

    # -- GP register ----------------------------------------------------------------------

    def gp_lists(self) -> None:
        rng = self._rng("gp")
        gps = [i for i, r in enumerate(self.roles) if r.gp]
        by_muni: dict[str, list[int]] = {}
        for i in gps:
            by_muni.setdefault(self.orgs[self.roles[i].org].muni.number, []).append(i)
        living = [i for i, p in enumerate(self.people) if p.deceased is None]
        without = set(rng.sample(living, _quota(0.01, len(living))))
        demand = Counter(self.people[i].muni.number for i in living if i not in without)
        unserved = sum(n for m, n in demand.items() if m not in by_muni)
        for m, roles in sorted(by_muni.items()):
            for i in roles:
                expected = demand[m] / len(roles) + unserved / len(gps)
                self.roles[i].list_length = max(1, round(expected * rng.uniform(0.9, 1.3)))

        def candidates(p: _Person) -> tuple[list[int], list[int]]:
            """(GPs in the person's municipality, else all; every GP): never oneself."""
            own = by_muni.get(p.muni.number, gps)
            if p.practitioner is None:
                return own, gps
            mine = self.pracs[p.practitioner].roles
            every = [i for i in gps if i not in mine]
            return [i for i in own if i not in mine] or every, every

        def choose(options: list[int], every: list[int]) -> int:
            """A GP with room, in the municipality if possible; the list grows if none has."""
            roles = self.roles
            for pool in (options, every):
                room = [i for i in pool if roles[i].listed < roles[i].list_length]
                if room:
                    weights = [roles[i].list_length - roles[i].listed for i in room]
                    return rng.choices(room, weights=weights)[0]
            return rng.choices(options, weights=[roles[i].list_length for i in options])[0]

        household_gp: dict[int, int] = {}
        for index, p in enumerate(self.people):
            options, every = candidates(p)
            if p.deceased is not None:
                self._episode_of_deceased(rng, index, rng.choice(options))
                continue
            if index in without:
                continue
            shared = household_gp.get(p.household)
            if (
                shared is not None
                and rng.random() < 0.85
                and shared in options
                and self.roles[shared].listed < self.roles[shared].list_length
            ):
                gp = shared
            else:
                gp = choose(options, every)
                household_gp.setdefault(p.household, gp)
            p.gp = gp
            self.roles[gp].listed += 1
            others = [i for i in options if i != gp] or [i for i in every if i != gp]
            self._episodes_of(rng, index, gp, others)
        first = self.roles[gps[0]]  # at least one GP has a full list
        first.list_length = max(1, min(first.list_length, first.listed))

    def _start_bound(self, p: _Person, role: int) -> date:
        return max(_day(p.birth), _GP_SCHEME_START, self.roles[role].start)

    def _episode(self, person: int, role: int, start: date, end: date | None) -> None:
        episode_id = self._id("gp", len(self.episodes) + 1)
        self.episodes.append((episode_id, person, role, start, end))

    def _episodes_of(self, rng: random.Random, index: int, gp: int, others: list[int]) -> None:
        """The current GP relation, and for ~10% an earlier one with one of ``others``."""
        p = self.people[index]
        lo = self._start_bound(p, gp)
        if others and rng.random() < 0.1:
            previous = rng.choice(others)
            prev_lo = self._start_bound(p, previous)
            change_lo = max(prev_lo + timedelta(days=90), lo)
            if change_lo < REFERENCE_DATE:
                change = _between(rng, change_lo, REFERENCE_DATE)
                prev_start = _between(rng, prev_lo, change - timedelta(days=60))
                self._episode(index, previous, prev_start, change - timedelta(days=1))
                self._episode(index, gp, change, None)
                return
        if lo == _GP_SCHEME_START and rng.random() < 0.4:
            start = lo
        elif lo == _day(p.birth):
            start = min(REFERENCE_DATE, lo + timedelta(days=rng.randint(7, 90)))
        else:
            start = _between(rng, lo, REFERENCE_DATE)
        self._episode(index, gp, start, None)

    def _episode_of_deceased(self, rng: random.Random, index: int, gp: int) -> None:
        p = self.people[index]
        assert p.deceased is not None
        lo = self._start_bound(p, gp)
        if lo < p.deceased:
            self._episode(index, gp, _between(rng, lo, p.deceased - timedelta(days=1)), p.deceased)

    def build(self) -> RegisterPopulation:
        self.fixed_organizations()
        self.fixed_staff()
        self.scaled_organizations()
        self.residents()
        self.scaled_staff()
        self.place_staff()
        self.statuses()
        self.assign_numbers()
        self.gp_lists()
        self.related = sum(len(p.parents) for p in self.people)
        self.finish()
        return RegisterPopulation(self)

    def finish(self) -> None:
        """Freeze the persons into tuples and drop what only building needed.

        Few tracked objects stay alive while the Bundles are rendered (see _Rows).
        """
        index = {m.number: i for i, m in enumerate(_MUNICIPALITIES)}
        self.rows = _Rows(
            [
                (
                    p.id,
                    p.female,
                    p.birth,
                    p.given,
                    p.family,
                    p.household,
                    index[p.muni.number],
                    p.line,
                    p.postal,
                    p.adult_phone,
                    p.pid,
                    p.kind,
                    p.old_dnr,
                    p.old_dnr_end,
                    p.deceased,
                    p.protection,
                    p.gp,
                    p.practitioner,
                    tuple(p.parents),
                )
                for p in self.people
            ],
            _Row,
        )
        self.people = []
        self.allocator.used = {}
        self.taken = set()


# --------------------------------------------------------------------------------- resources


class _Renderer:
    """Turns the built registers into FHIR resources (fresh dicts every time)."""

    def __init__(self, b: _Builder) -> None:
        self.b = b

    def endpoint_refs(self, org: _Org) -> list[dict[str, str]]:
        return [{"reference": f"Endpoint/{self.b.endpoints[i].id}"} for i in org.endpoints]

    def organization(self, org: _Org) -> dict[str, Any]:
        identifier = [{"use": "official", "system": ORGNR_SYSTEM, "value": org.orgnr}]
        if org.resh is not None:
            identifier.append({"system": RESH_SYSTEM, "value": org.resh})
        if org.her_id is not None:
            identifier.append({"system": HER_SYSTEM, "value": org.her_id})
        resource: dict[str, Any] = {
            "resourceType": "Organization",
            "id": org.id,
            "meta": _meta_for("Organization"),
            "identifier": identifier,
            "active": True,
            "type": [
                {"coding": [_coding(ENTERPRISE_TYPE_SYSTEM, org.type, ENTERPRISE_TYPES[org.type])]}
            ],
            "name": org.name,
            "telecom": [{"system": "phone", "value": org.phone, "use": "work"}],
            "address": [_address(org.line, org.postal, org.muni, "work")],
        }
        if org.parent is not None:
            parent = self.b.orgs[org.parent]
            resource["partOf"] = _ref("Organization", parent.id, parent.name)
        if org.endpoints:
            resource["endpoint"] = self.endpoint_refs(org)
        return resource

    def endpoint(self, ep: _Endpoint) -> dict[str, Any]:
        org = self.b.orgs[ep.org]
        resource: dict[str, Any] = {
            "resourceType": "Endpoint",
            "id": ep.id,
            "meta": _meta_for("Endpoint"),
        }
        if ep.jwk is not None:
            data = base64.b64encode(orjson.dumps(ep.jwk)).decode("ascii")
            resource["extension"] = [
                {
                    "url": PUBLIC_KEY_URL,
                    "valueAttachment": {"contentType": "application/jwk+json", "data": data},
                }
            ]
        resource |= {
            "status": "active",
            "connectionType": _coding(ADDRESS_COMPONENT_SYSTEM, ep.kind),
            "name": f"{_ENDPOINT_NAMES[ep.kind]} – {org.name}",
            "managingOrganization": _ref("Organization", org.id, org.name),
            "payloadType": [{"coding": [_coding(ENDPOINT_PAYLOAD_SYSTEM, "any", "Any")]}],
        }
        if ep.kind == "E_FHIR":
            resource["payloadMimeType"] = ["application/fhir+json"]
        resource["address"] = ep.address
        return resource

    def practitioner(self, prac: _Prac) -> dict[str, Any]:
        person = self.b.rows[prac.person]
        org = self.b.orgs[self.b.roles[prac.roles[0]].org]
        issuer = "Helsedirektoratet"
        qualification: list[dict[str, Any]] = []
        for a in prac.approvals:
            q: dict[str, Any] = {}
            if a.suspension is not None:
                period = {"start": a.suspension[0].isoformat()}
                if a.suspension[1] is not None:
                    period["end"] = a.suspension[1].isoformat()
                q["extension"] = [{"url": HPR_SUSPENSION_URL, "valuePeriod": period}]
            q["code"] = {
                "coding": [
                    _coding(PROFESSION_SYSTEM, a.profession, _PROFESSIONS[a.profession].display),
                    _coding(APPROVAL_TYPE_SYSTEM, a.type, _APPROVAL_TYPES[a.type]),
                ]
            }
            q["period"] = {"start": a.start.isoformat()}
            if a.end is not None:
                q["period"]["end"] = a.end.isoformat()
            q["issuer"] = {"display": issuer}
            qualification.append(q)
        for code, since in prac.specialities:
            qualification.append(
                {
                    "code": {"coding": [_coding(SPECIALITY_SYSTEM, code, _SPECIALITIES[code])]},
                    "period": {"start": since.isoformat()},
                    "issuer": {"display": issuer},
                }
            )
        for code, since, until in prac.requisitions:
            period = {"start": since.isoformat()}
            if until is not None:
                period["end"] = until.isoformat()
            qualification.append(
                {
                    "code": {
                        "coding": [
                            _coding(REQUISITION_RIGHT_SYSTEM, code, _REQUISITION_RIGHTS[code])
                        ]
                    },
                    "period": period,
                    "issuer": {"display": issuer},
                }
            )
        resource: dict[str, Any] = {
            "resourceType": "Practitioner",
            "id": prac.id,
            "meta": _meta_for("Practitioner"),
            "identifier": [
                {"use": "official", "system": FNR_SYSTEM, "value": person.pid},
                {"use": "official", "system": HPR_SYSTEM, "value": prac.hpr},
            ],
            "active": True,
            "name": [{"use": "official", "family": person.family, "given": [person.given]}],
        }
        if person.adult_phone is not None:
            resource["telecom"] = [
                {"system": "phone", "value": person.adult_phone, "use": "mobile"}
            ]
        resource |= {
            "address": [_address(org.line, org.postal, org.muni, "work")],
            "gender": "female" if person.female else "male",
            "birthDate": _day(person.birth).isoformat(),
            "qualification": qualification,
        }
        return resource

    def role(self, role: _Role) -> dict[str, Any]:
        b = self.b
        prac, org = b.pracs[role.prac], b.orgs[role.org]
        person = b.rows[prac.person]
        resource: dict[str, Any] = {
            "resourceType": "PractitionerRole",
            "id": role.id,
            "meta": _meta_for("PractitionerRole"),
        }
        if role.gp:
            resource["extension"] = [
                {
                    "url": GP_LIST_URL,
                    "extension": [
                        {"url": "listLength", "valueInteger": role.list_length},
                        {
                            "url": "openForNewPatients",
                            "valueBoolean": role.listed < role.list_length,
                        },
                    ],
                }
            ]
            resource["identifier"] = [{"system": HER_SYSTEM, "value": role.her_id}]
        code_system = _PROFESSIONS[role.profession].role_code
        if role.function == "Legevaktlege":
            code_system = "doctor"
        concept: dict[str, Any] = {}
        if code_system is not None:
            concept["coding"] = [
                _coding(PRACTITIONER_ROLE_SYSTEM, code_system, _ROLE_DISPLAYS[code_system])
            ]
        concept["text"] = role.function
        codes = [concept]
        if role.gp:
            codes.append({"coding": [_coding(GP_ROLE_SYSTEM, "fastlege", "Fastlege")]})
        resource |= {
            "active": True,
            "period": {"start": role.start.isoformat()},
            "practitioner": _ref("Practitioner", prac.id, f"{person.given} {person.family}"),
            "organization": _ref("Organization", org.id, org.name),
            "code": codes,
        }
        if role.speciality is not None:
            resource["specialty"] = [
                {
                    "coding": [
                        _coding(SPECIALITY_SYSTEM, role.speciality, _SPECIALITIES[role.speciality])
                    ]
                }
            ]
        resource["telecom"] = [{"system": "phone", "value": org.phone, "use": "work"}]
        if role.gp and org.endpoints:
            resource["endpoint"] = self.endpoint_refs(org)
        return resource

    def service(self, service: _Service) -> dict[str, Any]:
        org = self.b.orgs[service.org]
        return {
            "resourceType": "HealthcareService",
            "id": service.id,
            "meta": _meta_for("HealthcareService"),
            "identifier": [{"system": HER_SYSTEM, "value": service.her_id}],
            "active": True,
            "providedBy": _ref("Organization", org.id, org.name),
            "name": service.name,
            "telecom": [{"system": "phone", "value": org.phone, "use": "work"}],
            "endpoint": self.endpoint_refs(org),
        }

    def patient(self, p: _Person) -> dict[str, Any]:
        meta = _meta_for("Patient")
        if p.protection is not None:
            meta["security"] = [
                _coding(ADDRESS_CONFIDENTIALITY_SYSTEM, p.protection, _PROTECTIONS[p.protection])
            ]
        identifier: list[dict[str, Any]] = [
            {
                "use": "official",
                "system": FNR_SYSTEM if p.kind == "FNR" else DNR_SYSTEM,
                "value": p.pid,
            }
        ]
        if p.old_dnr is not None:
            assert p.old_dnr_end is not None
            identifier.append(
                {
                    "use": "old",
                    "system": DNR_SYSTEM,
                    "value": p.old_dnr,
                    "period": {"end": p.old_dnr_end.isoformat()},
                }
            )
        resource: dict[str, Any] = {
            "resourceType": "Patient",
            "id": p.id,
            "meta": meta,
            "identifier": identifier,
            "active": True,
            "name": [{"use": "official", "family": p.family, "given": [p.given]}],
        }
        if p.adult_phone is not None:
            resource["telecom"] = [{"system": "phone", "value": p.adult_phone, "use": "mobile"}]
        resource["gender"] = "female" if p.female else "male"
        resource["birthDate"] = _day(p.birth).isoformat()
        if p.deceased is not None:
            resource["deceasedDateTime"] = p.deceased.isoformat()
        resource["address"] = [_address(p.line, p.postal, _MUNICIPALITIES[p.muni], "home")]
        if p.gp is not None:
            role = self.b.roles[p.gp]
            gp = self.b.rows[self.b.pracs[role.prac].person]
            resource["generalPractitioner"] = [
                _ref("PractitionerRole", role.id, f"{gp.given} {gp.family}")
            ]
        return resource

    def related(
        self, n: int, child: _Person, parent: _Person, relation: str, responsibility: str | None
    ) -> dict[str, Any]:
        relationship = [
            {"coding": [_coding(FAMILY_RELATION_SYSTEM, relation, _FAMILY_RELATIONS[relation])]}
        ]
        if responsibility is not None:
            relationship.append(
                {
                    "coding": [
                        _coding(
                            PARENTAL_RESPONSIBILITY_SYSTEM,
                            responsibility,
                            _RESPONSIBILITIES[responsibility],
                        )
                    ]
                }
            )
        return {
            "resourceType": "RelatedPerson",
            "id": self.b._id("related", n),
            "meta": _meta_for("RelatedPerson"),
            "identifier": [{"use": "official", "system": FNR_SYSTEM, "value": parent.pid}],
            "active": True,
            "patient": _ref("Patient", child.id),
            "relationship": relationship,
            "name": [{"use": "official", "family": parent.family, "given": [parent.given]}],
            "gender": "female" if parent.female else "male",
            "birthDate": _day(parent.birth).isoformat(),
        }

    def episode(self, e: _Episode) -> dict[str, Any]:
        b = self.b
        role = b.roles[e.role]
        org = b.orgs[role.org]
        gp = b.rows[b.pracs[role.prac].person]
        period = {"start": e.start.isoformat()}
        if e.end is not None:
            period["end"] = e.end.isoformat()
        return {
            "resourceType": "EpisodeOfCare",
            "id": e.id,
            "meta": _meta_for("EpisodeOfCare"),
            "status": "active" if e.end is None else "finished",
            "type": [{"coding": [_coding(EPISODE_TYPE_SYSTEM, "fastlege", "Fastlegeforhold")]}],
            "patient": _ref("Patient", b.rows[e.person].id),
            "managingOrganization": _ref("Organization", org.id, org.name),
            "period": period,
            # the GP's Practitioner: R4's care-manager parameter indexes only Practitioner
            "careManager": _ref("Practitioner", b.pracs[role.prac].id, f"{gp.given} {gp.family}"),
        }

    def resources(self) -> Iterator[dict[str, Any]]:
        b = self.b
        for org in b.orgs:
            yield self.organization(org)
        for ep in b.endpoints:
            yield self.endpoint(ep)
        for prac in b.pracs:
            yield self.practitioner(prac)
        for role in b.roles:
            yield self.role(role)
        for service in b.services:
            yield self.service(service)
        for p in b.rows:
            yield self.patient(p)
        n = 0
        for child in b.rows:
            for parent, relation, responsibility in child.parents:
                n += 1
                yield self.related(n, child, b.rows[parent], relation, responsibility)
        for e in map(_Episode._make, b.episodes):
            yield self.episode(e)


# -------------------------------------------------------------------------------- population


class RegisterPopulation:
    """The synthetic registers of one ``(persons, seed)``: FHIR Bundles and plain facts.

    Facts are as of :data:`REFERENCE_DATE` and stay true through :data:`FACTS_VALID_UNTIL`
    (so they hold for a register asked "today"). An approval is valid when its period covers
    the day and no suspension does; ``authorised_hpr_numbers`` maps every HPR number with a valid
    approval (authorisation or licence) to its professions (9060 codes);
    ``suspended_hpr_numbers`` are those with an approval suspended that day (they have no other
    valid one), ``expired_hpr_numbers`` those whose approvals all ended (licence expired or
    authorisation revoked). The three are disjoint.
    """

    def __init__(self, b: _Builder) -> None:
        self._b = b
        self._render = _Renderer(b)
        self.seed = b.seed
        self.counts: dict[str, int] = {
            "Organization": len(b.orgs),
            "Endpoint": len(b.endpoints),
            "Practitioner": len(b.pracs),
            "PractitionerRole": len(b.roles),
            "HealthcareService": len(b.services),
            "Patient": len(b.rows),
            "RelatedPerson": b.related,
            "EpisodeOfCare": len(b.episodes),
        }
        self.total_resources: int = sum(self.counts.values())
        roles, pracs, orgs = b.roles, b.pracs, b.orgs
        self.organizations: tuple[OrganizationRecord, ...] = tuple(
            OrganizationRecord(
                id=o.id,
                name=o.name,
                type=o.type,
                orgnr=o.orgnr,
                resh=o.resh,
                her_id=o.her_id,
                part_of=orgs[o.parent].id if o.parent is not None else None,
                municipality=o.muni.number,
                endpoint_ids=tuple(b.endpoints[i].id for i in o.endpoints),
            )
            for o in orgs
        )
        self.practitioners: tuple[PractitionerRecord, ...] = tuple(
            PractitionerRecord(
                id=p.id,
                hpr=p.hpr,
                fnr=b.rows[p.person].pid,
                person_id=b.rows[p.person].id,
                role_ids=tuple(roles[i].id for i in p.roles),
            )
            for p in pracs
        )
        self.gp_roles: tuple[GpRecord, ...] = tuple(
            GpRecord(
                role_id=r.id,
                practitioner_id=pracs[r.prac].id,
                organization_id=orgs[r.org].id,
                her_id=r.her_id or "",
                list_length=r.list_length,
                listed=r.listed,
                open_for_new_patients=r.listed < r.list_length,
            )
            for r in roles
            if r.gp
        )
        authorised: dict[str, frozenset[str]] = {}
        suspended: set[str] = set()
        expired: set[str] = set()
        for p in pracs:
            valid = frozenset(a.profession for a in p.approvals if a.valid(REFERENCE_DATE))
            if valid:
                authorised[p.hpr] = valid
            elif any(a.suspended(REFERENCE_DATE) for a in p.approvals):
                suspended.add(p.hpr)
            else:
                expired.add(p.hpr)
        self.authorised_hpr_numbers: dict[str, frozenset[str]] = authorised
        self.suspended_hpr_numbers: frozenset[str] = frozenset(suspended)
        self.expired_hpr_numbers: frozenset[str] = frozenset(expired)
        self.replaced_numbers: dict[str, str] = {
            p.old_dnr: p.pid for p in b.rows if p.old_dnr is not None
        }
        parties: dict[str, str] = {}
        owner: dict[str, str] = {}  # HER-id -> HER-id of the organisation holding the keys
        for o in orgs:
            if o.her_id is not None:
                parties[o.her_id] = f"Organization/{o.id}"
                owner[o.her_id] = o.her_id
        for s in b.services:
            parties[s.her_id] = f"HealthcareService/{s.id}"
            owner[s.her_id] = orgs[s.org].her_id  # type: ignore[assignment]
        for r in roles:
            if r.her_id is not None:
                parties[r.her_id] = f"PractitionerRole/{r.id}"
                owner[r.her_id] = orgs[r.org].her_id  # type: ignore[assignment]
        self.communication_parties: dict[str, str] = parties
        self._key_owner = owner

    @functools.cached_property
    def persons(self) -> tuple[PersonRecord, ...]:
        """Everyone in the person register, in Patient id order (made on first use)."""
        b = self._b
        roles, pracs = b.roles, b.pracs
        return tuple(
            PersonRecord(
                id=p.id,
                pid=p.pid,
                kind=p.kind,
                birth_date=_day(p.birth),
                gender="female" if p.female else "male",
                protection=p.protection,
                deceased=p.deceased,
                gp_role_id=roles[p.gp].id if p.gp is not None else None,
                household_id=p.household,
                municipality=_MUNICIPALITIES[p.muni].number,
                practitioner_id=pracs[p.practitioner].id if p.practitioner is not None else None,
                old_dnr=p.old_dnr,
            )
            for p in b.rows
        )

    @functools.cached_property
    def _children(self) -> dict[str, tuple[tuple[str, bool], ...]]:
        rows = self._b.rows
        children: dict[str, list[tuple[str, bool]]] = {}
        for child in rows:
            for parent, _, responsibility in child.parents:
                children.setdefault(rows[parent].pid, []).append(
                    (child.pid, responsibility is not None)
                )
        return {pid: tuple(links) for pid, links in children.items()}

    def children_of(self, pid: str) -> list[tuple[str, bool]]:
        """(child's number, whether ``pid`` has parental responsibility) for children under 18."""
        return list(self._children.get(pid, ()))

    def _owner(self, her_id: str | int) -> str:
        her = str(her_id)
        if her not in self._key_owner:
            raise KeyError(f"no communication party with HER-id {her}")
        return self._key_owner[her]

    def public_jwk(self, her_id: str | int, use: str) -> dict[str, str]:
        """The public JWK (``use`` "enc" or "sig") published for a communication party."""
        return dict(self._b.keys[self._owner(her_id)][use])

    def private_jwk(self, her_id: str | int, use: str) -> dict[str, str]:
        """The private JWK (``use`` "enc" or "sig") of a communication party.

        Services and GPs (persons in role) have no keys of their own: messages to them are
        encrypted for, and signed by, their organisation, whose keys this returns.
        """
        if use not in ("enc", "sig"):
            raise ValueError("use must be 'enc' or 'sig'")
        key = _private_key(self.seed, self._owner(her_id), use)
        return _jwk(key, use, private=True)

    def resources(self) -> Iterator[dict[str, Any]]:
        """Every resource: organisations, endpoints, practitioners, roles, services, then the
        person register (Patients, RelatedPersons, EpisodeOfCares)."""
        return self._render.resources()

    @property
    def marker(self) -> tuple[str, str]:
        """(type, id) of the last resource :meth:`bundles` writes: once it is stored, the
        whole population is (a loader's "already loaded" check)."""
        b = self._b
        if b.episodes:
            return "EpisodeOfCare", _Episode._make(b.episodes[-1]).id
        if b.related:
            return "RelatedPerson", b._id("related", b.related)
        return "Patient", b.rows[-1].id

    def bundles(self, batch: int = 500) -> Iterator[dict[str, Any]]:
        """Transaction Bundles of at most ``batch`` PUT entries, in :meth:`resources` order."""
        if batch < 1:
            raise ValueError("batch must be >= 1")
        entries: list[dict[str, Any]] = []
        for resource in self.resources():
            entries.append(_put(resource))
            if len(entries) == batch:
                yield {"resourceType": "Bundle", "type": "transaction", "entry": entries}
                entries = []
        if entries:
            yield {"resourceType": "Bundle", "type": "transaction", "entry": entries}


def register_population(persons: int, seed: int = 42) -> RegisterPopulation:
    """The synthetic national registers for ``persons`` residents (plus the practitioners).

    A pure function of its arguments; see the module docstring for what it holds.
    """
    if not 1 <= persons <= MAX_PERSONS:
        raise ValueError(f"persons must be in [1, {MAX_PERSONS}]")
    if seed < 0:
        raise ValueError("seed must be >= 0")
    return _Builder(persons, seed).build()
